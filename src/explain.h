/*
 * explain.h
 *	  Explanations of one applicant's score: each feature's contribution to
 *	  the margin, and the direction that names its reason.
 */
#ifndef CR_EXPLAIN_H
#define CR_EXPLAIN_H

#include "postgres.h"

#include "fmgr.h"

#include "utils/jsonb.h"

#include "model.h"
#include "registry.h"

/* reasons in cr_predict's jsonb answer: the usual number of principal reasons */
#define EXPLAIN_JSONB_REASONS	4

/* the reason codes that apply to one model: its own rows first */
typedef struct CrReasons
{
	int			n;
	char	  **feature;
	char	  **direction;
	char	  **code;
	char	  **reason;
} CrReasons;

/* a feature and its contribution, for ranking */
typedef struct CrRanked
{
	int			feature;
	double		contribution;
} CrRanked;

extern double ExplainWoeBest(const CrWoeFeature *w, double coef);
extern void ExplainContributions(const CrModel *m, const double *x, double *phi,
								 double *base);
extern char *ExplainValueText(const CrModel *m, int j, double v);
extern const char *ExplainDirection(const CrModel *m, int j, double v);
extern void ExplainRank(const double *phi, int n, CrRanked *ranked);
extern int	ExplainTopArg(FunctionCallInfo fcinfo, int argno);
extern CrReasons *ExplainLoadReasons(const char *model, MemoryContext cxt);
extern void ExplainPushReasons(JsonbParseState **state, const CrCachedModel *entry,
							   const double *x, int top);
extern void ExplainReason(const CrReasons *reasons, const char *feature,
						  const char *direction, char **code, char **reason);

#endif							/* CR_EXPLAIN_H */
