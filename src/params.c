/*
 * params.c
 *	  The params of cr_train, each described once, in ParamTable: what it
 *	  applies to, its type and bounds, where it goes and its default.  The
 *	  table drives the parsing, the hint that lists the known params and
 *	  the effective params stored with a model.
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "credit_risk.h"
#include "dataset.h"
#include "params.h"

/* The algorithms a param applies to, as bits. */
#define ALGO_BIT(a)		(1 << (a))
#define LOGISTIC		ALGO_BIT(CR_ALGO_LOGISTIC)
#define GBM				ALGO_BIT(CR_ALGO_GBM)
#define SCORECARD		ALGO_BIT(CR_ALGO_SCORECARD)
#define LOGIT_FIT		(LOGISTIC | SCORECARD)	/* the logistic fit's own */
#define COMMON			(LOGISTIC | GBM | SCORECARD)

/* Which ends of [lo, hi] are open. */
#define CLOSED			0
#define LO_OPEN			1
#define HI_OPEN			2

typedef enum ParamKind
{
	PARAM_NUMBER,				/* double */
	PARAM_INTEGER,				/* int */
	PARAM_INT64,				/* int64 */
	PARAM_STRING_OR_NULL,		/* char *, NULL for null */
	PARAM_BOOL,					/* bool */
	PARAM_NUMBER_OR_NULL,		/* double, 0 for null; written as null when <= 0 */
	PARAM_ARRAY,				/* these two through the entry's handlers */
	PARAM_OBJECT
} ParamKind;

/*
 * What the parse collects for the checks that need more than one param:
 * the risk bands, whose counts must match, and params.monotone.
 */
typedef struct ParamsState
{
	CrTrainParams *tp;
	JsonbValue	cut[CR_MAX_BANDS];
	JsonbValue	lab[CR_MAX_BANDS];
	int			ncut;			/* -1: not given */
	int			nlab;
	JsonbValue	monotone;		/* jbvBinary object, or jbvNull */
} ParamsState;

typedef struct ParamDef ParamDef;

struct ParamDef
{
	const char *name;
	int			algorithms;		/* LOGISTIC, GBM or COMMON */
	ParamKind	kind;
	double		lo;				/* bounds of a number, or of each element */
	double		hi;
	int			open;			/* LO_OPEN, HI_OPEN */
	int			offset;			/* in CrTrainParams; -1 with handlers */
	double		default_value;
	const int  *default_setting;	/* a setting to default to instead */
	void		(*parse) (const ParamDef *def, JsonbValue *v, ParamsState *ps);
	void		(*push) (const ParamDef *def, const CrTrainParams *tp,
						 JsonbParseState **st);
	const char *doc;
};

static void ParseRiskCutoffs(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushRiskCutoffs(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void ParseRiskLabels(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushRiskLabels(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void ParseMonotone(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushMonotone(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void ParseClassWeight(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushClassWeight(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void ParseSplit(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushString(JsonbParseState **st, JsonbIteratorToken tok, const char *s);
static void ParseCategorical(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushCategorical(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void ParseReference(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushReference(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void PushSplit(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void ParseTrend(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void ParseCalibration(const ParamDef *def, JsonbValue *v, ParamsState *ps);
static void PushCalibration(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);
static void PushTrend(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st);

#define OFF(field)		((int) offsetof(CrTrainParams, field))
#define NUMBER(name, algos, field, lo, hi, open, def, doc) \
	{name, algos, PARAM_NUMBER, lo, hi, open, OFF(field), def, NULL, NULL, NULL, doc}
#define NUMBER_OR_NULL(name, algos, field, lo, hi, open, doc) \
	{name, algos, PARAM_NUMBER_OR_NULL, lo, hi, open, OFF(field), 0, NULL, NULL, NULL, doc}
#define INTEGER(name, algos, field, lo, hi, def, doc) \
	{name, algos, PARAM_INTEGER, lo, hi, CLOSED, OFF(field), def, NULL, NULL, NULL, doc}
#define INTEGER_SETTING(name, algos, field, lo, hi, setting, doc) \
	{name, algos, PARAM_INTEGER, lo, hi, CLOSED, OFF(field), 0, setting, NULL, NULL, doc}
#define INT64(name, algos, field, lo, hi, def, doc) \
	{name, algos, PARAM_INT64, lo, hi, CLOSED, OFF(field), def, NULL, NULL, NULL, doc}
#define STRING_OR_NULL(name, algos, field, doc) \
	{name, algos, PARAM_STRING_OR_NULL, 0, 0, CLOSED, OFF(field), 0, NULL, NULL, NULL, doc}
#define BOOLEAN(name, algos, field, def, doc) \
	{name, algos, PARAM_BOOL, 0, 0, CLOSED, OFF(field), def, NULL, NULL, NULL, doc}
#define HANDLED(name, algos, kind, lo, hi, open, handler, doc) \
	{name, algos, kind, lo, hi, open, -1, 0, NULL, Parse##handler, Push##handler, doc}

/*
 * Every param, in the order the unknown-parameter hint lists them (common
 * ones first wherever they are).  The default risk bands are set by
 * DefaultBands.
 */
static const ParamDef ParamTable[] = {
	NUMBER("holdout", COMMON, holdout, 0.0, 1.0, HI_OPEN, 0.2,
		   "share of rows held out for the metrics (0: evaluate on the training rows)"),
	INT64("seed", COMMON, seed, 0, PG_INT32_MAX, 42,
		  "seed of the split, the key hash, sampling and the drift baselines"),
	STRING_OR_NULL("key", COMMON, key,
				   "column whose hash decides the split (null: row order)"),
	HANDLED("split", COMMON, PARAM_OBJECT, 0, 0, CLOSED, Split,
			"{\"column\": c, \"holdout_from\": v}: rows with c >= v are the holdout (null: a random holdout)"),
	INTEGER("cv", COMMON, cv, 0, 100, 0,
			"folds of a cross-validation of the training rows, stored in metrics.cv (0: none)"),
	NUMBER("threshold", COMMON, scoring.threshold, 0.0, 1.0, CLOSED, 0.5,
		   "cut-off for accuracy, precision, recall, F1"),
	HANDLED("risk_cutoffs", COMMON, PARAM_ARRAY, 0.0, 1.0, LO_OPEN | HI_OPEN, RiskCutoffs,
			"increasing PDs between the risk categories"),
	HANDLED("risk_labels", COMMON, PARAM_ARRAY, 0, 0, CLOSED, RiskLabels,
			"names of the risk categories, one more than the cut-offs"),
	NUMBER("score_points", COMMON, scoring.points_base, -1e6, 1e6, CLOSED, 600.0,
		   "points at score_odds"),
	NUMBER("score_odds", COMMON, scoring.odds_base, 0.0, 1e9, LO_OPEN, 50.0,
		   "good:bad odds that score score_points"),
	NUMBER("score_pdo", COMMON, scoring.pdo, 0.0, 1e6, LO_OPEN, 20.0,
		   "points to double the odds"),
	NUMBER("drift_moderate", COMMON, drift_moderate, 0.0, 100.0, LO_OPEN, 0.10,
		   "PSI from which drift is moderate"),
	NUMBER("drift_major", COMMON, drift_major, 0.0, 100.0, LO_OPEN, 0.25,
		   "PSI above which drift is major"),
	BOOLEAN("reasons", COMMON, reasons, 0,
			"cr_predict's jsonb form adds the applicant's principal adverse reasons"),
	BOOLEAN("verbose", COMMON, verbose, 0,
			"report each phase of the run as a NOTICE (not kept with the model)"),
	HANDLED("class_weight", COMMON, PARAM_OBJECT, 0.0, 1e9, LO_OPEN, ClassWeight,
			"\"balanced\" or {\"0\": w0, \"1\": w1}: weights of the training rows by label (null: 1 and 1)"),

	HANDLED("categorical", COMMON, PARAM_ARRAY, 0, 0, CLOSED, Categorical,
			"columns to treat as categories besides text, varchar, char and enum ones (integers, booleans)"),
	INTEGER("min_category_count", COMMON, min_category_count, 1, PG_INT32_MAX, 10,
			"training rows a category level needs; rarer levels are pooled into other"),
	HANDLED("calibration", COMMON, PARAM_STRING_OR_NULL, 0, 0, CLOSED, Calibration,
			"none, platt or isotonic: a map from the margin to the PD, fitted on the holdout"),

	BOOLEAN("distributed", LOGISTIC | GBM, distributed, 0,
			"fit where the rows are (each shard, worker or partition), never loading them: from sums, or trees from histograms"),
	HANDLED("reference", LOGISTIC, PARAM_OBJECT, 0, 0, CLOSED, Reference,
			"feature: level left out of the dummy coding (default: the most frequent level)"),
	NUMBER("l2", LOGIT_FIT, logit.l2, 0.0, 1e12, CLOSED, 0.0,
		   "ridge penalty on standardized slopes"),
	INTEGER("max_iter", LOGIT_FIT, logit.max_iter, 1, 10000, 100,
			"most Newton iterations"),
	NUMBER("tol", LOGIT_FIT, logit.tol, 0.0, 1.0, LO_OPEN, 1e-10,
		   "relative change in log-likelihood that ends the fit"),

	INTEGER("max_bins", SCORECARD, woe.max_bins, 2, 100, 6,
			"value bins of a feature at most"),
	NUMBER("min_bin_share", SCORECARD, woe.min_bin_share, 0.0, 0.5, LO_OPEN, 0.05,
		   "share of the training rows each value bin holds at least"),
	INTEGER("prebins", SCORECARD, woe.prebins, 2, CR_MAX_VALUE_BINS - 1, 20,
			"quantile pre-bins of a number"),
	HANDLED("trend", SCORECARD, PARAM_STRING_OR_NULL, 0, 0, CLOSED, Trend,
			"auto, ascending, descending, peak or valley: how the event rate may run over a number's bins"),

	INTEGER("n_trees", GBM, gbm.n_trees, 1, CR_MAX_TREES, 100,
			"boosting rounds"),
	INTEGER("max_depth", GBM, gbm.max_depth, 1, 12, 6,
			"depth of a tree"),
	NUMBER("learning_rate", GBM, gbm.learning_rate, 0.0, 1.0, LO_OPEN, 0.1,
		   "shrinkage"),
	NUMBER("lambda", GBM, gbm.lambda, 0.0, 1e9, CLOSED, 1.0,
		   "L2 on leaf weights"),
	NUMBER("gamma", GBM, gbm.gamma, 0.0, 1e12, CLOSED, 0.0,
		   "minimum gain to split"),
	NUMBER("min_child_weight", GBM, gbm.min_child_weight, 0.0, 1e12, CLOSED, 1.0,
		   "minimum hessian sum in a child"),
	NUMBER("subsample", GBM, gbm.subsample, 0.0, 1.0, LO_OPEN, 1.0,
		   "share of rows drawn per tree"),
	NUMBER("colsample_bytree", GBM, gbm.colsample_bytree, 0.0, 1.0, LO_OPEN, 1.0,
		   "share of features drawn per tree"),
	NUMBER("scale_pos_weight", GBM, gbm.scale_pos_weight, 0.0, 1e9, LO_OPEN, 1.0,
		   "weight of defaults"),
	INTEGER("max_bin", GBM, gbm.max_bin, 2, 256, 256,
			"histogram bins per feature (values get at most 255; missing has its own)"),
	NUMBER_OR_NULL("base_score", GBM, gbm.base_score, 0.0, 1.0, LO_OPEN | HI_OPEN,
				   "initial probability (null: the training default rate)"),
	INTEGER("early_stopping_rounds", GBM, gbm.early_stopping_rounds, 0, CR_MAX_TREES, 0,
			"stop after this many trees without a better holdout log loss (0: off)"),
	INTEGER("max_cat_to_onehot", GBM, gbm.max_cat_to_onehot, 1, CR_MAX_LEVELS + 1, 4,
			"categorical features with at most this many levels at a node split one level against the rest"),
	HANDLED("monotone", GBM, PARAM_OBJECT, -1, 1, CLOSED, Monotone,
			"feature: 1 (PD rises with it), -1 (falls) or 0"),
	INTEGER_SETTING("threads", GBM, gbm.threads, 1, CR_MAX_THREADS, &cr_threads,
					"worker threads (default: credit_risk.threads)"),
};

/* ------------------------------------------------------------- lookups */

/* The entry named name (len bytes) that applies to algorithm, or NULL. */
static const ParamDef *
ParamFind(const char *name, int len, CrAlgorithm algorithm)
{
	for (int i = 0; i < lengthof(ParamTable); i++)
	{
		const ParamDef *def = &ParamTable[i];

		if ((def->algorithms & ALGO_BIT(algorithm)) &&
			strlen(def->name) == len && memcmp(def->name, name, len) == 0)
			return def;
	}
	return NULL;
}

/*
 * The params a search (cr_tune) may vary: those of the fit itself.  What
 * shapes the data every trial shares (the split, the levels, max_bin) is
 * not among them.
 */
static const char *const TunableParams[] = {
	"l2", "n_trees", "max_depth", "learning_rate", "lambda", "gamma",
	"min_child_weight", "subsample", "colsample_bytree", "scale_pos_weight",
	"max_cat_to_onehot"
};

bool
ParamsTunable(const char *name, CrAlgorithm algorithm, bool *integer)
{
	const ParamDef *def = ParamFind(name, strlen(name), algorithm);

	if (def == NULL)
		return false;
	for (int i = 0; i < lengthof(TunableParams); i++)
		if (strcmp(TunableParams[i], name) == 0)
		{
			*integer = def->kind == PARAM_INTEGER;
			return true;
		}
	return false;
}

char *
ParamsTunableList(CrAlgorithm algorithm)
{
	StringInfoData buf;
	bool		integer;

	initStringInfo(&buf);
	for (int i = 0; i < lengthof(TunableParams); i++)
		if (ParamsTunable(TunableParams[i], algorithm, &integer))
			appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "", TunableParams[i]);
	return buf.data;
}

/* An entry the code below names itself: always there. */
static const ParamDef *
ParamByName(const char *name)
{
	for (int i = 0; i < lengthof(ParamTable); i++)
		if (strcmp(ParamTable[i].name, name) == 0)
			return &ParamTable[i];
	elog(ERROR, "no param \"%s\" in the table", name);
	return NULL;				/* keep compiler quiet */
}

/* The names of algorithm's params, common ones first, for the hint. */
static char *
ParamsKnown(CrAlgorithm algorithm)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int common = 1; common >= 0; common--)
		for (int i = 0; i < lengthof(ParamTable); i++)
		{
			const ParamDef *def = &ParamTable[i];

			if ((def->algorithms == COMMON) != common ||
				!(def->algorithms & ALGO_BIT(algorithm)))
				continue;
			if (buf.len > 0)
				appendStringInfoString(&buf, ", ");
			appendStringInfoString(&buf, def->name);
		}
	return buf.data;
}

/* ------------------------------------------------------------- values */

void
ParamsBadValue(const char *key, const char *want)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("params.%s must be %s", key, want)));
}

/* A JSON number as a double; anything else is refused as not what is wanted. */
double
ParamsNumberValue(const char *key, JsonbValue *v, const char *want)
{
	if (v->type != jbvNumeric)
		ParamsBadValue(key, want);
	return DatasetNumericToDouble(v->val.numeric, psprintf("params.%s", key), NULL);
}

/* A number within def's bounds. */
static double
ParamNumber(const ParamDef *def, JsonbValue *v)
{
	const char *key = def->name;
	bool		lo_open = (def->open & LO_OPEN) != 0;
	bool		hi_open = (def->open & HI_OPEN) != 0;
	double		d;

	d = ParamsNumberValue(key, v, psprintf("a number between %g and %g", def->lo, def->hi));
	if (isnan(d) || (lo_open ? d <= def->lo : d < def->lo) ||
		(hi_open ? d >= def->hi : d > def->hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.%s is %g, out of range", key, d),
				 errdetail("It must be %s %g and %s %g.", lo_open ? "above" : "at least", def->lo,
						   hi_open ? "below" : "at most", def->hi)));
	return d;
}

/* A whole number within def's (closed) bounds. */
static int64
ParamInteger(const ParamDef *def, JsonbValue *v)
{
	double		d = ParamNumber(def, v);

	if (d != floor(d))
		ParamsBadValue(def->name, "a whole number");
	return (int64) d;
}

static char *
ParamString(const char *key, JsonbValue *v)
{
	if (v->type != jbvString || v->val.string.len == 0)
		ParamsBadValue(key, "a non-empty string");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Collect the elements of an array given as a jbvBinary value. */
static int
ParamArray(const char *key, JsonbValue *v, JsonbValue *elems, int max)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ParamsBadValue(key, "an array");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n >= max)
			ParamsBadValue(key, psprintf("an array of at most %d elements", max));
		elems[n++] = e;
	}
	return n;
}

/* ------------------------------------------------------------- handlers */

static void
ParseRiskCutoffs(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	ps->ncut = ParamArray(def->name, v, ps->cut, CR_MAX_BANDS - 1);
}

static void
ParseRiskLabels(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	ps->nlab = ParamArray(def->name, v, ps->lab, CR_MAX_BANDS);
}

/* Only the shape here: the directions are checked after every other param. */
static void
ParseMonotone(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ParamsBadValue(def->name, "an object such as {\"credit_utilization\": 1, \"payment_history_score\": -1}");
	ps->monotone = *v;
}

/*
 * null, "balanced", or an object of positive weights for "0" and "1" (a
 * label left out keeps weight 1).
 */
static void
ParseClassWeight(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	CrTrainParams *tp = ps->tp;
	const char *want = "\"balanced\", an object such as {\"0\": 1, \"1\": 5}, or null";
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			label = -1;

	tp->class_weights[0] = tp->class_weights[1] = 1.0;
	if (v->type == jbvNull)
	{
		tp->class_weight = CR_CLASS_WEIGHT_NONE;
		return;
	}
	if (v->type == jbvString)
	{
		if (v->val.string.len != 8 || memcmp(v->val.string.val, "balanced", 8) != 0)
			ParamsBadValue(def->name, want);
		tp->class_weight = CR_CLASS_WEIGHT_BALANCED;
		return;
	}
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ParamsBadValue(def->name, want);
	tp->class_weight = CR_CLASS_WEIGHT_GIVEN;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (e.val.string.len == 1 && (e.val.string.val[0] == '0' || e.val.string.val[0] == '1'))
				label = e.val.string.val[0] - '0';
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("params.class_weight has key \"%s\"; the labels are \"0\" and \"1\"",
								pnstrdup(e.val.string.val, e.val.string.len))));
		}
		else if (tok == WJB_VALUE)
		{
			ParamDef	each = *def;

			each.name = psprintf("class_weight.%d", label);
			tp->class_weights[label] = ParamNumber(&each, &e);
		}
	}
}

/* An array of distinct column names. */
static void
ParseCategorical(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	CrTrainParams *tp = ps->tp;
	JsonbValue *elems = palloc(sizeof(JsonbValue) * CR_MAX_FEATURES);
	int			n = ParamArray(def->name, v, elems, CR_MAX_FEATURES);

	tp->categorical = palloc(sizeof(char *) * Max(n, 1));
	tp->ncategorical = n;
	for (int i = 0; i < n; i++)
	{
		tp->categorical[i] = ParamString("categorical", &elems[i]);
		for (int k = 0; k < i; k++)
			if (strcmp(tp->categorical[k], tp->categorical[i]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("params.categorical names \"%s\" twice", tp->categorical[i])));
	}
	pfree(elems);
}

static void
PushCategorical(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < tp->ncategorical; i++)
		PushString(st, WJB_ELEM, tp->categorical[i]);
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* An object of feature -> level (a string, or a number or boolean as its JSON text). */
static void
ParseReference(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	CrTrainParams *tp = ps->tp;
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			cap = 8;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ParamsBadValue(def->name, "an object such as {\"employment_status\": \"employed\"}");
	tp->reference_feature = palloc(sizeof(char *) * cap);
	tp->reference_level = palloc(sizeof(char *) * cap);
	tp->nreference = 0;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (tp->nreference == cap)
			{
				cap *= 2;
				tp->reference_feature = repalloc(tp->reference_feature, sizeof(char *) * cap);
				tp->reference_level = repalloc(tp->reference_level, sizeof(char *) * cap);
			}
			tp->reference_feature[tp->nreference] = pnstrdup(e.val.string.val, e.val.string.len);
		}
		else if (tok == WJB_VALUE)
		{
			char	   *level;

			if (e.type == jbvString)
				level = ParamString("reference", &e);
			else if (e.type == jbvNumeric)
				level = DatumGetCString(DirectFunctionCall1(numeric_out,
															NumericGetDatum(e.val.numeric)));
			else if (e.type == jbvBool)
				level = pstrdup(e.val.boolean ? "true" : "false");
			else
				ParamsBadValue("reference", "an object whose values are levels (strings)");
			tp->reference_level[tp->nreference++] = level;
		}
	}
}

static void
PushReference(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < tp->nreference; i++)
	{
		PushString(st, WJB_KEY, tp->reference_feature[i]);
		PushString(st, WJB_VALUE, tp->reference_level[i]);
	}
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

const char *
ParamsReference(const char *feature, void *arg)
{
	const CrTrainParams *tp = (const CrTrainParams *) arg;

	for (int i = 0; i < tp->nreference; i++)
		if (strcmp(tp->reference_feature[i], feature) == 0)
			return tp->reference_level[i];
	return NULL;
}

/*
 * null, or {"column": name, "holdout_from": value}: the value a string (a
 * date or timestamp as the column's type reads it) or a number, kept as
 * text until the column's type is known (DatasetLoad).
 */
static void
ParseSplit(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	CrTrainParams *tp = ps->tp;
	const char *want = "an object such as {\"column\": \"application_date\", \"holdout_from\": \"2024-01-01\"}, or null";
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	tp->split_column = tp->split_from = NULL;
	if (v->type == jbvNull)
		return;
	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		ParamsBadValue(def->name, want);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(e.val.string.val, e.val.string.len);
		else if (tok != WJB_VALUE)
			continue;
		else if (strcmp(key, "column") == 0)
		{
			tp->split_column = ParamString("split.column", &e);
			if (strlen(tp->split_column) > CR_MAX_NAME_LEN)
				ParamsBadValue("split.column", psprintf("a column name of at most %d bytes", CR_MAX_NAME_LEN));
		}
		else if (strcmp(key, "holdout_from") == 0)
		{
			if (e.type == jbvNumeric)
				tp->split_from = DatumGetCString(DirectFunctionCall1(numeric_out,
																	 NumericGetDatum(e.val.numeric)));
			else
				tp->split_from = ParamString("split.holdout_from", &e);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("params.split has key \"%s\"", key),
					 errhint("params.split takes \"column\" and \"holdout_from\".")));
	}
	if (tp->split_column == NULL || tp->split_from == NULL)
		ParamsBadValue(def->name, want);
}

/*
 * The risk bands: risk_cutoffs alone keeps the default labels, risk_labels
 * alone the default cutoffs, when the counts fit: n cutoffs make n + 1
 * bands.
 */
static void
ParamsRiskBands(ParamsState *ps)
{
	CrTrainParams *tp = ps->tp;
	int			ncut = ps->ncut;
	int			nlab = ps->nlab;
	JsonbValue *cut = ps->cut;
	JsonbValue *lab = ps->lab;
	const ParamDef *cutdef = ParamByName("risk_cutoffs");

	if (ncut >= 0 && nlab < 0)
	{
		if (ncut + 1 != tp->scoring.nbands)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("params.risk_cutoffs has %d cutoffs, so it needs params.risk_labels with %d labels",
							ncut, ncut + 1),
					 errdetail("The default labels (low, medium, high) fit 2 cutoffs.")));
		nlab = tp->scoring.nbands;
		for (int i = 0; i < nlab; i++)
		{
			lab[i].type = jbvString;
			lab[i].val.string.val = (char *) tp->scoring.labels[i];
			lab[i].val.string.len = strlen(tp->scoring.labels[i]);
		}
	}
	else if (nlab >= 0 && ncut < 0)
	{
		if (nlab != tp->scoring.nbands)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("params.risk_labels has %d labels, so it needs params.risk_cutoffs with %d cutoffs",
							nlab, nlab - 1),
					 errdetail("The default cutoffs (0.2, 0.5) fit 3 labels.")));
		ncut = tp->scoring.nbands - 1;
		for (int i = 0; i < ncut; i++)
		{
			cut[i].type = jbvNumeric;
			cut[i].val.numeric = DatumGetNumeric(DirectFunctionCall1(float8_numeric,
																	 Float8GetDatum(tp->scoring.cutoffs[i])));
		}
	}
	if (ncut < 0 && nlab < 0)
		return;
	if (nlab != ncut + 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.risk_labels has %d labels and params.risk_cutoffs %d cutoffs, but %d cutoffs need %d labels",
						nlab, ncut, ncut, ncut + 1),
				 errhint("For example: {\"risk_cutoffs\": [0.1, 0.3], \"risk_labels\": [\"low\", \"medium\", \"high\"]}.")));
	tp->scoring.nbands = nlab;
	for (int i = 0; i < ncut; i++)
	{
		tp->scoring.cutoffs[i] = ParamNumber(cutdef, &cut[i]);
		if (i > 0 && tp->scoring.cutoffs[i] <= tp->scoring.cutoffs[i - 1])
			ParamsBadValue("risk_cutoffs", "strictly increasing");
	}
	for (int i = 0; i < nlab; i++)
	{
		tp->scoring.labels[i] = ParamString("risk_labels", &lab[i]);
		if (strlen(tp->scoring.labels[i]) > CR_MAX_NAME_LEN)
			ParamsBadValue("risk_labels", psprintf("strings of at most %d bytes", CR_MAX_NAME_LEN));
	}
}

/*
 * params.monotone's directions, checked before the data is loaded; which
 * names are features is known only after (ParamsMonotone).  The numbers
 * are kept as given for the stored params.
 */
static void
ParamsMonotoneDirections(ParamsState *ps)
{
	CrTrainParams *tp = ps->tp;
	const ParamDef *def = ParamByName("monotone");
	JsonbContainer *obj;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *feature = NULL;

	if (ps->monotone.type != jbvBinary)
		return;
	obj = ps->monotone.val.binary.data;
	tp->monotone = palloc(sizeof(CrMonotonePair) * Max(JsonContainerSize(obj), 1));
	tp->nmonotone = 0;
	it = JsonbIteratorInit(obj);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			feature = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
		{
			CrMonotonePair *pair = &tp->monotone[tp->nmonotone++];
			Size		len;

			pair->feature = feature;
			pair->direction = (int8) ParamInteger(def, &v);
			len = VARSIZE_ANY(v.val.numeric);
			pair->value = palloc(len);
			memcpy(pair->value, v.val.numeric, len);
		}
	}
}

/* ------------------------------------------------------------- parsing */

/* Store the number d in def's field (a number or integer param). */
static void
ParamStore(const ParamDef *def, CrTrainParams *tp, double d)
{
	char	   *field = (char *) tp + def->offset;

	switch (def->kind)
	{
		case PARAM_NUMBER:
		case PARAM_NUMBER_OR_NULL:
			*(double *) field = d;
			break;
		case PARAM_INTEGER:
			*(int *) field = (int) d;
			break;
		case PARAM_INT64:
			*(int64 *) field = (int64) d;
			break;
		default:
			elog(ERROR, "params.%s is not a number", def->name);
	}
}

/* The risk bands without params.risk_cutoffs and params.risk_labels. */
static void
DefaultBands(CrScoring *scoring)
{
	scoring->nbands = 3;
	scoring->cutoffs[0] = 0.20;
	scoring->cutoffs[1] = 0.50;
	scoring->labels[0] = "low";
	scoring->labels[1] = "medium";
	scoring->labels[2] = "high";
}

static void
ParamsDefaults(CrTrainParams *tp)
{
	memset(&tp->scoring, 0, sizeof(CrScoring));
	DefaultBands(&tp->scoring);
	tp->monotone = NULL;
	tp->nmonotone = 0;
	tp->gbm.monotone = NULL;
	tp->class_weight = CR_CLASS_WEIGHT_NONE;
	tp->class_weights[0] = tp->class_weights[1] = 1.0;
	tp->split_column = tp->split_from = NULL;
	tp->categorical = NULL;
	tp->ncategorical = 0;
	tp->reference_feature = tp->reference_level = NULL;
	tp->nreference = 0;
	/* resolved against the training rows by cr_train (TrainClassWeights) */
	tp->gbm.class_weight[0] = tp->gbm.class_weight[1] = 1.0;
	tp->logit.class_weight[0] = tp->logit.class_weight[1] = 1.0;
	tp->logit.threads = cr_threads;
	tp->woe.trend = CR_TREND_AUTO;
	tp->calibration = CR_CALIBRATION_NONE;
	tp->woe.categorical = false;
	for (int i = 0; i < lengthof(ParamTable); i++)
	{
		const ParamDef *def = &ParamTable[i];

		if (def->offset < 0)
			continue;			/* the handlers' params: set above */
		if (def->kind == PARAM_STRING_OR_NULL)
			*(char **) ((char *) tp + def->offset) = NULL;
		else if (def->kind == PARAM_BOOL)
			*(bool *) ((char *) tp + def->offset) = def->default_value != 0;
		else
			ParamStore(def, tp, def->default_setting ? *def->default_setting
					   : def->default_value);
	}
}

static void
ParamParseValue(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	if (def->parse)
		def->parse(def, v, ps);
	else if (def->kind == PARAM_STRING_OR_NULL)
		*(char **) ((char *) ps->tp + def->offset) =
			v->type == jbvNull ? NULL : ParamString(def->name, v);
	else if (def->kind == PARAM_BOOL)
	{
		if (v->type != jbvBool)
			ParamsBadValue(def->name, "true or false");
		*(bool *) ((char *) ps->tp + def->offset) = v->val.boolean;
	}
	else if (def->kind == PARAM_NUMBER_OR_NULL && v->type == jbvNull)
		ParamStore(def, ps->tp, 0.0);
	else if (def->kind == PARAM_INTEGER || def->kind == PARAM_INT64)
		ParamStore(def, ps->tp, (double) ParamInteger(def, v));
	else
		ParamStore(def, ps->tp, ParamNumber(def, v));
}

void
ParamsEachKey(Jsonb *params, void (*fn) (const char *key, JsonbValue *v, void *arg), void *arg)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (params == NULL)
		return;
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a jsonb object")));
	it = JsonbIteratorInit(&params->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			fn(key, &v, arg);
	}
}

/* One key of cr_train's params: a param of the algorithm's, or an ERROR. */
static void
ParamsParseKey(const char *key, JsonbValue *v, void *arg)
{
	ParamsState *ps = (ParamsState *) arg;
	const ParamDef *def = ParamFind(key, strlen(key), ps->tp->algorithm);

	if (def == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown parameter \"%s\" for algorithm \"%s\"",
						key, ModelAlgorithmName(ps->tp->algorithm)),
				 errhint("Known parameters: %s.", ParamsKnown(ps->tp->algorithm))));
	ParamParseValue(def, v, ps);
}

static void
ParamsStateInit(ParamsState *ps, CrTrainParams *tp)
{
	ps->tp = tp;
	ps->ncut = -1;
	ps->nlab = -1;
	ps->monotone.type = jbvNull;
}

void
ParamsParse(Jsonb *params, CrTrainParams *tp)
{
	ParamsState ps;

	ParamsDefaults(tp);
	if (params == NULL)
		return;
	ParamsStateInit(&ps, tp);
	ParamsEachKey(params, ParamsParseKey, &ps);

	if (tp->drift_moderate >= tp->drift_major)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.drift_moderate (%g) must be below params.drift_major (%g)",
						tp->drift_moderate, tp->drift_major)));
	if (tp->cv == 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.cv must be 0 (none) or at least 2, not 1"),
				 errhint("A cross-validation needs at least two folds; 5 or 10 are usual.")));
	if (tp->calibration != CR_CALIBRATION_NONE && tp->holdout == 0.0 && tp->split_column == NULL &&
		tp->cv == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.calibration needs a holdout or a cross-validation to be fitted on"),
				 errhint("Set params.holdout above 0, params.split, or params.cv.")));
	if (tp->gbm.early_stopping_rounds > 0 && tp->holdout == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.early_stopping_rounds needs a holdout"),
				 errhint("Set params.holdout above 0, or early_stopping_rounds to 0.")));
	ParamsRiskBands(&ps);
	ParamsMonotoneDirections(&ps);
}

/* One key of cr_woe_bins' params: a scorecard's binning param, or categorical. */
static void
ParamsParseWoeKey(const char *key, JsonbValue *v, void *arg)
{
	ParamsState *ps = (ParamsState *) arg;
	const ParamDef *def;

	if (strcmp(key, "categorical") == 0)
	{
		if (v->type != jbvBool)
			ParamsBadValue(key, "true or false");
		ps->tp->woe.categorical = v->val.boolean;
		return;
	}
	def = ParamFind(key, strlen(key), CR_ALGO_SCORECARD);
	if (def == NULL || def->algorithms != SCORECARD)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown parameter \"%s\" for WoE binning", key),
				 errhint("Known: max_bins, min_bin_share, prebins, trend, categorical.")));
	ParamParseValue(def, v, ps);
}

/*
 * The params of cr_woe_bins and cr_information_value: a scorecard's binning
 * params, checked as cr_train checks them, and categorical (false).
 */
void
ParamsParseWoe(Jsonb *params, CrWoeOptions *opt)
{
	CrTrainParams tp;
	ParamsState ps;

	tp.algorithm = CR_ALGO_SCORECARD;
	ParamsDefaults(&tp);
	ParamsStateInit(&ps, &tp);
	ParamsEachKey(params, ParamsParseWoeKey, &ps);
	*opt = tp.woe;
}

/* Resolve params.monotone against the loaded feature names. */
int8 *
ParamsMonotone(const CrTrainParams *tp, char **names, int nfeatures)
{
	int8	   *mono;

	if (tp->monotone == NULL)
		return NULL;
	mono = palloc0(sizeof(int8) * nfeatures);
	for (int i = 0; i < tp->nmonotone; i++)
	{
		const CrMonotonePair *pair = &tp->monotone[i];
		int			current = -1;

		for (int j = 0; j < nfeatures; j++)
			if (strcmp(names[j], pair->feature) == 0)
				current = j;
		if (current < 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("params.monotone names \"%s\", which is not a feature",
							pair->feature)));
		mono[current] = pair->direction;
	}
	return mono;
}

/* ------------------------------------------------------------- output */

/*
 * The stored params were once JSON text read by jsonb_in, which makes each
 * number with numeric_in from its text; the same texts through numeric_in
 * keep the stored bytes as they were.
 */
static void
PushNumberText(JsonbParseState **st, JsonbIteratorToken tok, const char *text)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
														CStringGetDatum(text),
														ObjectIdGetDatum(InvalidOid),
														Int32GetDatum(-1)));
	pushJsonbValue(st, tok, &v);
}

static void
PushNull(JsonbParseState **st, JsonbIteratorToken tok)
{
	JsonbValue	v;

	v.type = jbvNull;
	pushJsonbValue(st, tok, &v);
}

/* As CrAppendDouble writes it: shortest decimal, null when not finite. */
static void
PushDouble(JsonbParseState **st, JsonbIteratorToken tok, double d)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (!isfinite(d))
	{
		PushNull(st, tok);
		return;
	}
	double_to_shortest_decimal_buf(d, buf);
	PushNumberText(st, tok, buf);
}

static void
PushString(JsonbParseState **st, JsonbIteratorToken tok, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	pushJsonbValue(st, tok, &v);
}

static void
PushRiskCutoffs(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < tp->scoring.nbands - 1; i++)
		PushDouble(st, WJB_ELEM, tp->scoring.cutoffs[i]);
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

static void
PushRiskLabels(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < tp->scoring.nbands; i++)
		PushString(st, WJB_ELEM, tp->scoring.labels[i]);
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* As given (1.0 stays 1.0), or {} when not given. */
static void
PushMonotone(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < tp->nmonotone; i++)
	{
		JsonbValue	v;

		PushString(st, WJB_KEY, tp->monotone[i].feature);
		v.type = jbvNumeric;
		v.val.numeric = tp->monotone[i].value;
		pushJsonbValue(st, WJB_VALUE, &v);
	}
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

static void
ParseTrend(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	if (v->type != jbvString ||
		!WoeTrendFromName(pnstrdup(v->val.string.val, v->val.string.len), &ps->tp->woe.trend))
		ParamsBadValue(def->name, "auto, ascending, descending, peak or valley");
}

static void
ParseCalibration(const ParamDef *def, JsonbValue *v, ParamsState *ps)
{
	if (v->type != jbvString ||
		!CalibrationMethodFromName(pnstrdup(v->val.string.val, v->val.string.len),
								   &ps->tp->calibration))
		ParamsBadValue(def->name, "none, platt or isotonic");
}

static void
PushCalibration(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	PushString(st, WJB_VALUE, CalibrationMethodName(tp->calibration));
}

static void
PushTrend(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	PushString(st, WJB_VALUE, WoeTrendName(tp->woe.trend));
}

/* null, or the column and the value as text. */
static void
PushSplit(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	if (tp->split_column == NULL)
	{
		PushNull(st, WJB_VALUE);
		return;
	}
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	PushString(st, WJB_KEY, "column");
	PushString(st, WJB_VALUE, tp->split_column);
	PushString(st, WJB_KEY, "holdout_from");
	PushString(st, WJB_VALUE, tp->split_from);
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* As parsed: null, "balanced", or both weights. */
static void
PushClassWeight(const ParamDef *def, const CrTrainParams *tp, JsonbParseState **st)
{
	if (tp->class_weight == CR_CLASS_WEIGHT_NONE)
		PushNull(st, WJB_VALUE);
	else if (tp->class_weight == CR_CLASS_WEIGHT_BALANCED)
		PushString(st, WJB_VALUE, "balanced");
	else
	{
		pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
		PushString(st, WJB_KEY, "0");
		PushDouble(st, WJB_VALUE, tp->class_weights[0]);
		PushString(st, WJB_KEY, "1");
		PushDouble(st, WJB_VALUE, tp->class_weights[1]);
		pushJsonbValue(st, WJB_END_OBJECT, NULL);
	}
}

Jsonb *
ParamsToJsonb(const CrTrainParams *tp)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < lengthof(ParamTable); i++)
	{
		const ParamDef *def = &ParamTable[i];
		const char *field;

		if (!(def->algorithms & ALGO_BIT(tp->algorithm)))
			continue;
		/* how a run reports is not part of what it fitted */
		if (def->offset == offsetof(CrTrainParams, verbose))
			continue;
		/* nor, unless it was used, where it ran */
		if (def->offset == offsetof(CrTrainParams, distributed) && !tp->distributed)
			continue;
		PushString(&st, WJB_KEY, def->name);
		if (def->push)
		{
			def->push(def, tp, &st);
			continue;
		}
		field = (const char *) tp + def->offset;
		switch (def->kind)
		{
			case PARAM_NUMBER:
				PushDouble(&st, WJB_VALUE, *(const double *) field);
				break;
			case PARAM_INTEGER:
				PushNumberText(&st, WJB_VALUE, psprintf("%d", *(const int *) field));
				break;
			case PARAM_INT64:
				PushNumberText(&st, WJB_VALUE, psprintf(INT64_FORMAT, *(const int64 *) field));
				break;
			case PARAM_STRING_OR_NULL:
				if (*(char *const *) field)
					PushString(&st, WJB_VALUE, *(char *const *) field);
				else
					PushNull(&st, WJB_VALUE);
				break;
			case PARAM_NUMBER_OR_NULL:
				if (*(const double *) field > 0)
					PushDouble(&st, WJB_VALUE, *(const double *) field);
				else
					PushNull(&st, WJB_VALUE);
				break;
			case PARAM_BOOL:
				{
					JsonbValue	v;

					v.type = jbvBool;
					v.val.boolean = *(const bool *) field;
					pushJsonbValue(&st, WJB_VALUE, &v);
				}
				break;
			case PARAM_ARRAY:
			case PARAM_OBJECT:
				break;			/* by the handler above */
		}
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}
