/*
 * params.h
 *	  cr_train's params: parsed from the caller's jsonb, with defaults, and
 *	  written back as the effective params the registry stores.
 */
#ifndef CR_PARAMS_H
#define CR_PARAMS_H

#include "postgres.h"

#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "gbm.h"
#include "logit.h"
#include "model.h"
#include "scorecard.h"

/* One entry of params.monotone, in the order jsonb keeps the keys. */
typedef struct CrMonotonePair
{
	char	   *feature;
	int8		direction;		/* -1, 0 or 1 */
	Numeric		value;			/* as given, so the stored params keep its text */
} CrMonotonePair;

typedef enum CrClassWeight
{
	CR_CLASS_WEIGHT_NONE,
	CR_CLASS_WEIGHT_BALANCED,	/* n / (2 n_c), from the training rows */
	CR_CLASS_WEIGHT_GIVEN
} CrClassWeight;

typedef struct CrTrainParams
{
	CrAlgorithm algorithm;
	double		holdout;
	int64		seed;
	char	   *key;
	CrLogitOptions logit;
	CrGbmParams gbm;
	CrMonotonePair *monotone;	/* NULL when params.monotone is not given */
	int			nmonotone;
	CrScoring	scoring;
	double		drift_moderate;
	double		drift_major;
	bool		reasons;		/* cr_predict's jsonb form adds reasons */
	bool		verbose;		/* phases as NOTICE lines (not stored) */
	bool		distributed;	/* passes as aggregates where the rows are */
	CrClassWeight class_weight;	/* params.class_weight as given */
	double		class_weights[2];	/* given (CR_CLASS_WEIGHT_GIVEN) */
	char	   *split_column;	/* params.split: out-of-time holdout, or NULL */
	char	   *split_from;		/* ... rows whose split_column >= this value */
	char	  **categorical;	/* params.categorical: columns to treat as categories */
	int			ncategorical;
	int			min_category_count; /* training rows a level needs to be kept */
	char	  **reference_feature;	/* params.reference: feature -> level */
	char	  **reference_level;
	int			nreference;
	int			cv;				/* params.cv: folds of cross-validation, 0 for none */
	CrWoeOptions woe;			/* scorecard: how its features are binned */
	CrCalibrationMethod calibration;	/* params.calibration: fitted on the holdout */
} CrTrainParams;

/*
 * Defaults, then params (NULL for none) for tp->algorithm, which the caller
 * sets first.  Every value is checked here, monotone directions included;
 * only the monotone feature names wait for the data (ParamsMonotone).
 */
extern void ParamsParse(Jsonb *params, CrTrainParams *tp);

/* cr_woe_bins' params: a scorecard's binning params, and categorical. */
extern void ParamsParseWoe(Jsonb *params, CrWoeOptions *opt);

/*
 * Helpers for other functions' params: fn(key, value, arg) for each key of
 * an object (NULL: none; anything but an object: an ERROR); the ERROR
 * "params.key must be want"; a JSON number as a double, else that ERROR.
 */
extern void ParamsEachKey(Jsonb *params, void (*fn) (const char *key, JsonbValue *v, void *arg),
						  void *arg);
extern void ParamsBadValue(const char *key, const char *want) pg_attribute_noreturn();
extern double ParamsNumberValue(const char *key, JsonbValue *v, const char *want);

/* Per feature: -1, 0 or 1; NULL when params.monotone is not given. */
extern int8 *ParamsMonotone(const CrTrainParams *tp, char **names, int nfeatures);

/* Whether a search may vary param name of algorithm, and if it is an integer. */
extern bool ParamsTunable(const char *name, CrAlgorithm algorithm, bool *integer);
extern char *ParamsTunableList(CrAlgorithm algorithm);

/* params.reference's level for feature, or NULL (arg: the CrTrainParams) */
extern const char *ParamsReference(const char *feature, void *arg);

/* Every param of tp->algorithm with its value, as the registry stores them. */
extern Jsonb *ParamsToJsonb(const CrTrainParams *tp);

#endif							/* CR_PARAMS_H */
