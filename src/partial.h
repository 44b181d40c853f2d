/*
 * partial.h
 *	  The partial sums of a training pass, computed where the rows are.
 *
 * cr_train with params.distributed runs each pass over the training rows as
 * the aggregate credit_risk.cr_train_partial(spec, features, label, unit)
 * on every part of the source (a foreign partition's shard, a Citus
 * worker, or the local table) and adds the parts' sums up.  spec says what
 * to sum; the result is a state of that kind:
 *
 * - moments: the training and holdout rows and defaults, and each feature's
 *   count of values, mean and sum of squared deviations over the training
 *   rows;
 * - newton: at the coefficients in spec, the weighted log-likelihood, the
 *   gradient X'c(y - p) and X'WX over the training rows, on the
 *   standardized scale of the logistic fit (logit.c).
 *
 * A row is in the holdout when its unit (cr_split_unit of its key) is
 * below spec's holdout.  Both spec and state are bytes that anyone can
 * hand to the functions, so both are checked before use.
 */
#ifndef CR_PARTIAL_H
#define CR_PARTIAL_H

#include "postgres.h"

#include "fmgr.h"

#define CR_PARTIAL_MAX_FEATURES	1000	/* X'WX of 1,001 columns: 4 MB */

typedef enum CrPartialKind
{
	CR_PARTIAL_MOMENTS = 1,
	CR_PARTIAL_NEWTON = 2
} CrPartialKind;

/* what a pass sums, as the coordinator gives it */
typedef struct CrPartialSpec
{
	CrPartialKind kind;
	int			p;				/* features */
	double		holdout;
	double		class_weight[2];
	char	  **names;			/* p feature names, for messages */
	/* newton: k = p + 1 each, [0] the intercept's */
	const double *beta;
	const double *mean;
	const double *inv_sd;
	const double *impute;		/* p */
} CrPartialSpec;

/*
 * The doubles of a moments state: the training and holdout rows, their
 * defaults, then per feature j, at PARTIAL_FEATURE(j), the count of its
 * values in the training rows, their mean and their sum of squared
 * deviations.
 */
#define PARTIAL_ROWS			0	/* [0] training, [1] holdout */
#define PARTIAL_DEFAULTS		2	/* the same */
#define PARTIAL_FEATURE(j)		(4 + 3 * (j))	/* count, mean, m2 */

/* the sums, added up over the parts */
typedef struct CrPartialSums
{
	CrPartialKind kind;
	int			p;
	double	   *moments;		/* moments: a state's doubles, laid out as above */
	/* newton */
	double		ll;
	double	   *g;				/* k */
	double	   *H;				/* k x k, column-major, upper triangle set */
} CrPartialSums;

extern bytea *PartialSpecEncode(const CrPartialSpec *spec);
extern void PartialSumsInit(CrPartialSums *sums, CrPartialKind kind, int p);
extern uint64 PartialSpecHash(const bytea *spec);
extern void PartialSumsAdd(CrPartialSums *sums, const bytea *state, uint64 spec_hash);

extern double PartialRowArgs(FunctionCallInfo fcinfo, int p, char **names, double *x,
							 double *unit);

#endif							/* CR_PARTIAL_H */
