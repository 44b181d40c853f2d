/*
 * train.c
 *	  cr_train: load, split, impute, fit, evaluate, encode and register a
 *	  model version, all in the caller's transaction.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "dataset.h"
#include "binning.h"
#include "drift.h"
#include "holdout.h"
#include "random.h"
#include "gbm.h"
#include "hugemem.h"
#include "logit.h"
#include "metrics.h"
#include "model.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_train);

typedef struct TrainParams
{
	CrAlgorithm algorithm;
	double		holdout;
	int64		seed;
	char	   *key;
	CrLogitOptions logit;
	CrGbmParams gbm;
	JsonbValue	monotone;		/* jbvBinary object, or jbvNull */
	CrScoring	scoring;
	double		drift_moderate;
	double		drift_major;
} TrainParams;

static const char *const CommonParams[] = {
	"holdout", "seed", "key", "threshold", "drift_moderate", "drift_major",
	"risk_cutoffs", "risk_labels", "score_points", "score_odds", "score_pdo"
};
static const char *const LogisticParams[] = {"l2", "max_iter", "tol"};
static const char *const GbmParams[] = {
	"n_trees", "max_depth", "learning_rate", "lambda", "gamma",
	"min_child_weight", "subsample", "colsample_bytree", "scale_pos_weight",
	"max_bin", "base_score", "early_stopping_rounds", "monotone", "threads"
};

static bool
InList(const char *key, const char *const *list, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

/* ------------------------------------------------------------ parameters */

static void pg_attribute_noreturn()
BadParam(const char *key, const char *want)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("params.%s must be %s", key, want)));
}

static double
ParamNumber(const char *key, JsonbValue *v, double lo, double hi,
			bool lo_open, bool hi_open)
{
	double		d;

	if (v->type != jbvNumeric)
		BadParam(key, psprintf("a number between %g and %g", lo, hi));
	d = DatasetNumericToDouble(v->val.numeric, psprintf("params.%s", key), NULL);
	if (isnan(d) || (lo_open ? d <= lo : d < lo) || (hi_open ? d >= hi : d > hi))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.%s is %g, out of range", key, d),
				 errdetail("It must be %s %g and %s %g.", lo_open ? "above" : "at least", lo,
						   hi_open ? "below" : "at most", hi)));
	return d;
}

static int64
ParamInteger(const char *key, JsonbValue *v, int64 lo, int64 hi)
{
	double		d = ParamNumber(key, v, (double) lo, (double) hi, false, false);

	if (d != floor(d))
		BadParam(key, "a whole number");
	return (int64) d;
}

static char *
ParamString(const char *key, JsonbValue *v)
{
	if (v->type != jbvString || v->val.string.len == 0)
		BadParam(key, "a non-empty string");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Iterate the elements of an array given as a jbvBinary value. */
static int
ParamArray(const char *key, JsonbValue *v, JsonbValue *elems, int max)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		BadParam(key, "an array");
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n >= max)
			BadParam(key, psprintf("an array of at most %d elements", max));
		elems[n++] = e;
	}
	return n;
}

static void
ParseParams(Jsonb *params, TrainParams *tp)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	JsonbValue	cut[CR_MAX_BANDS];
	JsonbValue	lab[CR_MAX_BANDS];
	int			ncut = -1;
	int			nlab = -1;

	tp->holdout = 0.2;
	tp->seed = 42;
	tp->key = NULL;
	tp->logit.l2 = 0.0;
	tp->logit.max_iter = 100;
	tp->logit.tol = 1e-10;
	tp->gbm.n_trees = 100;
	tp->gbm.max_depth = 6;
	tp->gbm.learning_rate = 0.1;
	tp->gbm.lambda = 1.0;
	tp->gbm.gamma = 0.0;
	tp->gbm.min_child_weight = 1.0;
	tp->gbm.subsample = 1.0;
	tp->gbm.colsample_bytree = 1.0;
	tp->gbm.scale_pos_weight = 1.0;
	tp->gbm.max_bin = 256;
	tp->gbm.base_score = 0.0;
	tp->gbm.early_stopping_rounds = 0;
	tp->gbm.threads = cr_threads;
	tp->gbm.monotone = NULL;
	tp->monotone.type = jbvNull;
	tp->drift_moderate = 0.10;
	tp->drift_major = 0.25;
	ModelScoringDefaults(&tp->scoring);

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
		{
			bool		gbm = tp->algorithm == CR_ALGO_GBM;

			key = pnstrdup(v.val.string.val, v.val.string.len);
			if (!InList(key, CommonParams, lengthof(CommonParams)) &&
				!(gbm ? InList(key, GbmParams, lengthof(GbmParams))
				  : InList(key, LogisticParams, lengthof(LogisticParams))))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown parameter \"%s\" for algorithm \"%s\"", key,
								ModelAlgorithmName(tp->algorithm)),
						 errhint("Known parameters: holdout, seed, key, threshold, risk_cutoffs, risk_labels, score_points, score_odds, score_pdo, drift_moderate, drift_major, %s.",
								 gbm ? "n_trees, max_depth, learning_rate, lambda, gamma, min_child_weight, subsample, colsample_bytree, scale_pos_weight, max_bin, base_score, early_stopping_rounds, monotone, threads"
								 : "l2, max_iter, tol")));
			continue;
		}
		if (tok != WJB_VALUE)
			continue;

		if (strcmp(key, "holdout") == 0)
			tp->holdout = ParamNumber(key, &v, 0.0, 1.0, false, true);
		else if (strcmp(key, "seed") == 0)
			tp->seed = ParamInteger(key, &v, 0, PG_INT32_MAX);
		else if (strcmp(key, "key") == 0)
			tp->key = v.type == jbvNull ? NULL : ParamString(key, &v);
		else if (strcmp(key, "l2") == 0)
			tp->logit.l2 = ParamNumber(key, &v, 0.0, 1e12, false, false);
		else if (strcmp(key, "max_iter") == 0)
			tp->logit.max_iter = (int) ParamInteger(key, &v, 1, 10000);
		else if (strcmp(key, "tol") == 0)
			tp->logit.tol = ParamNumber(key, &v, 0.0, 1.0, true, false);
		else if (strcmp(key, "threshold") == 0)
			tp->scoring.threshold = ParamNumber(key, &v, 0.0, 1.0, false, false);
		else if (strcmp(key, "risk_cutoffs") == 0)
			ncut = ParamArray(key, &v, cut, CR_MAX_BANDS - 1);
		else if (strcmp(key, "risk_labels") == 0)
			nlab = ParamArray(key, &v, lab, CR_MAX_BANDS);
		else if (strcmp(key, "score_points") == 0)
			tp->scoring.points_base = ParamNumber(key, &v, -1e6, 1e6, false, false);
		else if (strcmp(key, "score_odds") == 0)
			tp->scoring.odds_base = ParamNumber(key, &v, 0.0, 1e9, true, false);
		else if (strcmp(key, "score_pdo") == 0)
			tp->scoring.pdo = ParamNumber(key, &v, 0.0, 1e6, true, false);
		else if (strcmp(key, "drift_moderate") == 0)
			tp->drift_moderate = ParamNumber(key, &v, 0.0, 100.0, true, false);
		else if (strcmp(key, "drift_major") == 0)
			tp->drift_major = ParamNumber(key, &v, 0.0, 100.0, true, false);
		else if (strcmp(key, "n_trees") == 0)
			tp->gbm.n_trees = (int) ParamInteger(key, &v, 1, CR_MAX_TREES);
		else if (strcmp(key, "max_depth") == 0)
			tp->gbm.max_depth = (int) ParamInteger(key, &v, 1, 12);
		else if (strcmp(key, "learning_rate") == 0)
			tp->gbm.learning_rate = ParamNumber(key, &v, 0.0, 1.0, true, false);
		else if (strcmp(key, "lambda") == 0)
			tp->gbm.lambda = ParamNumber(key, &v, 0.0, 1e9, false, false);
		else if (strcmp(key, "gamma") == 0)
			tp->gbm.gamma = ParamNumber(key, &v, 0.0, 1e12, false, false);
		else if (strcmp(key, "min_child_weight") == 0)
			tp->gbm.min_child_weight = ParamNumber(key, &v, 0.0, 1e12, false, false);
		else if (strcmp(key, "subsample") == 0)
			tp->gbm.subsample = ParamNumber(key, &v, 0.0, 1.0, true, false);
		else if (strcmp(key, "colsample_bytree") == 0)
			tp->gbm.colsample_bytree = ParamNumber(key, &v, 0.0, 1.0, true, false);
		else if (strcmp(key, "scale_pos_weight") == 0)
			tp->gbm.scale_pos_weight = ParamNumber(key, &v, 0.0, 1e9, true, false);
		else if (strcmp(key, "max_bin") == 0)
			tp->gbm.max_bin = (int) ParamInteger(key, &v, 2, 256);
		else if (strcmp(key, "base_score") == 0)
			tp->gbm.base_score = v.type == jbvNull ? 0.0
				: ParamNumber(key, &v, 0.0, 1.0, true, true);
		else if (strcmp(key, "early_stopping_rounds") == 0)
			tp->gbm.early_stopping_rounds = (int) ParamInteger(key, &v, 0, CR_MAX_TREES);
		else if (strcmp(key, "threads") == 0)
			tp->gbm.threads = (int) ParamInteger(key, &v, 1, CR_MAX_THREADS);
		else if (strcmp(key, "monotone") == 0)
		{
			if (v.type != jbvBinary || !JsonContainerIsObject(v.val.binary.data))
				BadParam(key, "an object such as {\"credit_utilization\": 1, \"payment_history_score\": -1}");
			tp->monotone = v;
		}
	}

	if (tp->drift_moderate >= tp->drift_major)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.drift_moderate (%g) must be below params.drift_major (%g)",
						tp->drift_moderate, tp->drift_major)));
	if (tp->gbm.early_stopping_rounds > 0 && tp->holdout == 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.early_stopping_rounds needs a holdout"),
				 errhint("Set params.holdout above 0, or early_stopping_rounds to 0.")));

	/*
	 * risk_cutoffs alone keeps the default labels, risk_labels alone the
	 * default cutoffs, when the counts fit: n cutoffs make n + 1 bands.
	 */
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
	if (ncut >= 0 || nlab >= 0)
	{
		if (nlab != ncut + 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("params.risk_labels has %d labels and params.risk_cutoffs %d cutoffs, but %d cutoffs need %d labels",
							nlab, ncut, ncut, ncut + 1),
					 errhint("For example: {\"risk_cutoffs\": [0.1, 0.3], \"risk_labels\": [\"low\", \"medium\", \"high\"]}.")));
		tp->scoring.nbands = nlab;
		for (int i = 0; i < ncut; i++)
		{
			tp->scoring.cutoffs[i] = ParamNumber("risk_cutoffs", &cut[i], 0.0, 1.0, true, true);
			if (i > 0 && tp->scoring.cutoffs[i] <= tp->scoring.cutoffs[i - 1])
				BadParam("risk_cutoffs", "strictly increasing");
		}
		for (int i = 0; i < nlab; i++)
		{
			tp->scoring.labels[i] = ParamString("risk_labels", &lab[i]);
			if (strlen(tp->scoring.labels[i]) > CR_MAX_NAME_LEN)
				BadParam("risk_labels", "strings of at most 63 bytes");
		}
	}
}

/* Append a JSON fragment: prefix (e.g. ", \"key\": ") then the number. */
static void
AppendKeyDouble(StringInfo buf, const char *prefix, double v)
{
	appendStringInfoString(buf, prefix);
	CrAppendDouble(buf, v);
}

static void
AppendParamsJson(StringInfo buf, const TrainParams *tp)
{
	AppendKeyDouble(buf, "{\"holdout\": ", tp->holdout);
	appendStringInfo(buf, ", \"seed\": " INT64_FORMAT ", \"key\": ", tp->seed);
	if (tp->key)
		escape_json(buf, tp->key);
	else
		appendStringInfoString(buf, "null");
	if (tp->algorithm == CR_ALGO_LOGISTIC)
	{
		AppendKeyDouble(buf, ", \"l2\": ", tp->logit.l2);
		appendStringInfo(buf, ", \"max_iter\": %d", tp->logit.max_iter);
		AppendKeyDouble(buf, ", \"tol\": ", tp->logit.tol);
	}
	else
	{
		const CrGbmParams *g = &tp->gbm;

		appendStringInfo(buf, ", \"n_trees\": %d, \"max_depth\": %d", g->n_trees, g->max_depth);
		AppendKeyDouble(buf, ", \"learning_rate\": ", g->learning_rate);
		AppendKeyDouble(buf, ", \"lambda\": ", g->lambda);
		AppendKeyDouble(buf, ", \"gamma\": ", g->gamma);
		AppendKeyDouble(buf, ", \"min_child_weight\": ", g->min_child_weight);
		AppendKeyDouble(buf, ", \"subsample\": ", g->subsample);
		AppendKeyDouble(buf, ", \"colsample_bytree\": ", g->colsample_bytree);
		AppendKeyDouble(buf, ", \"scale_pos_weight\": ", g->scale_pos_weight);
		appendStringInfo(buf, ", \"max_bin\": %d", g->max_bin);
		if (g->base_score > 0)
			AppendKeyDouble(buf, ", \"base_score\": ", g->base_score);
		else
			appendStringInfoString(buf, ", \"base_score\": null");
		appendStringInfo(buf, ", \"early_stopping_rounds\": %d, \"threads\": %d",
						 g->early_stopping_rounds, g->threads);
		appendStringInfoString(buf, ", \"monotone\": ");
		if (tp->monotone.type == jbvBinary)
			appendStringInfoString(buf, JsonbToCString(NULL, tp->monotone.val.binary.data,
													   tp->monotone.val.binary.len));
		else
			appendStringInfoString(buf, "{}");
	}
	AppendKeyDouble(buf, ", \"threshold\": ", tp->scoring.threshold);
	appendStringInfoString(buf, ", \"risk_cutoffs\": [");
	for (int i = 0; i < tp->scoring.nbands - 1; i++)
		AppendKeyDouble(buf, i ? ", " : "", tp->scoring.cutoffs[i]);
	appendStringInfoString(buf, "], \"risk_labels\": [");
	for (int i = 0; i < tp->scoring.nbands; i++)
	{
		if (i)
			appendStringInfoString(buf, ", ");
		escape_json(buf, tp->scoring.labels[i]);
	}
	AppendKeyDouble(buf, "], \"drift_moderate\": ", tp->drift_moderate);
	AppendKeyDouble(buf, ", \"drift_major\": ", tp->drift_major);
	AppendKeyDouble(buf, ", \"score_points\": ", tp->scoring.points_base);
	AppendKeyDouble(buf, ", \"score_odds\": ", tp->scoring.odds_base);
	AppendKeyDouble(buf, ", \"score_pdo\": ", tp->scoring.pdo);
	appendStringInfoChar(buf, '}');
}

/* -------------------------------------------------------------- helpers */

static char **
FeatureList(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	char	  **names;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &count);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must not be empty"),
				 errhint("Pass NULL to use every numeric column.")));
	if (count > CR_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a model takes at most %d features, not %d", CR_MAX_FEATURES, count)));
	names = palloc(sizeof(char *) * count);
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("features must not contain NULL")));
		names[i] = TextDatumGetCString(elems[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(names[i], names[j]) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is listed twice", names[i])));
	}
	*n = count;
	return names;
}

static Datum
JsonbFromText(const char *s)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
}

/* --------------------------------------------------------- the fitters */

/* What a trainer hands back besides the model it fills in. */
typedef struct TrainFit
{
	CrMetrics	eval;			/* on the holdout, or on the training rows without one */
	double		train_auc;
	double	   *eval_prob;		/* the probabilities eval is computed on */
	int64		neval;
	StringInfoData extra;		/* the algorithm's own metrics: , "key": value ... */
	StringInfoData importance;	/* a JSON object, feature -> importance */
} TrainFit;

/*
 * The metrics of a fit: on the holdout's probabilities when there is a
 * holdout (and the training AUC apart), else on the training rows'.
 */
static void
FitEvaluate(TrainFit *fit, double threshold,
			double *hold_prob, double *hold_label, int64 nhold,
			double *train_prob, double *train_label, int64 ntrain)
{
	if (nhold > 0)
	{
		MetricsCompute(hold_prob, hold_label, nhold, threshold, &fit->eval);
		fit->train_auc = MetricsAuc(train_prob, train_label, ntrain);
		fit->eval_prob = hold_prob;
		fit->neval = nhold;
	}
	else
	{
		MetricsCompute(train_prob, train_label, ntrain, threshold, &fit->eval);
		fit->train_auc = fit->eval.auc;
		fit->eval_prob = train_prob;
		fit->neval = ntrain;
	}
}

/* Logistic regression: fit, score every row, metrics and importance. */
static void
TrainLogistic(CrDataset *ds, const bool *holdout, int64 ntrain, int64 nhold,
			  const TrainParams *tp, CrModel *model, TrainFit *fit)
{
	int			p = ds->nfeatures;
	CrLogitFit *lf;
	double	   *x = palloc(sizeof(double) * p);
	bool		has_holdout = tp->holdout > 0;
	double	   *tp_prob;
	double	   *tp_label;
	double	   *hp_prob = NULL;
	double	   *hp_label = NULL;
	int64		h = 0,
				t = 0;

	lf = LogitFit(ds->nrows, p, ds->cols, ds->label, holdout, model->impute,
				   ds->names, &tp->logit);
	model->algorithm = CR_ALGO_LOGISTIC;
	model->coef = lf->coef;
	model->std_error = lf->std_error;

	/* score every row once: holdout metrics (or training ones) and train AUC */
	tp_prob = HugeAlloc(sizeof(double) * ntrain);
	tp_label = HugeAlloc(sizeof(double) * ntrain);
	if (has_holdout)
	{
		hp_prob = HugeAlloc(sizeof(double) * nhold);
		hp_label = HugeAlloc(sizeof(double) * nhold);
	}
	for (int64 i = 0; i < ds->nrows; i++)
	{
		double		prob;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < p; j++)
			x[j] = ds->cols[j][i];
		prob = PredictProbability(model, x);
		if (holdout[i])
		{
			hp_prob[h] = prob;
			hp_label[h++] = ds->label[i];
		}
		else
		{
			tp_prob[t] = prob;
			tp_label[t++] = ds->label[i];
		}
	}
	FitEvaluate(fit, tp->scoring.threshold, hp_prob, hp_label, has_holdout ? nhold : 0,
				tp_prob, tp_label, ntrain);

	appendStringInfo(&fit->extra, ", \"iterations\": %d", lf->iterations);
	AppendKeyDouble(&fit->extra, ", \"log_likelihood\": ", lf->log_likelihood);
	AppendKeyDouble(&fit->extra, ", \"null_log_likelihood\": ", lf->null_log_likelihood);
	AppendKeyDouble(&fit->extra, ", \"pseudo_r2\": ",
					1.0 - lf->log_likelihood / lf->null_log_likelihood);

	/* importance of a logistic model: |coefficient| per standard deviation */
	appendStringInfoChar(&fit->importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(&fit->importance, ", ");
		escape_json(&fit->importance, ds->names[j]);
		AppendKeyDouble(&fit->importance, ": ", fabs(lf->std_coef[j + 1]));
	}
	appendStringInfoChar(&fit->importance, '}');
}

/* Resolve params.monotone against the loaded feature names. */
static int8 *
MonotoneVector(const TrainParams *tp, const CrDataset *ds)
{
	int8	   *mono;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			current = -1;

	if (tp->monotone.type != jbvBinary)
		return NULL;
	mono = palloc0(sizeof(int8) * ds->nfeatures);
	it = JsonbIteratorInit(tp->monotone.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *f = pnstrdup(v.val.string.val, v.val.string.len);

			current = -1;
			for (int j = 0; j < ds->nfeatures; j++)
				if (strcmp(ds->names[j], f) == 0)
					current = j;
			if (current < 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("params.monotone names \"%s\", which is not a feature", f)));
		}
		else if (tok == WJB_VALUE)
		{
			int64		c = ParamInteger("monotone", &v, -1, 1);

			mono[current] = (int8) c;
		}
	}
	return mono;
}

/* Gradient-boosted trees: fit, metrics from the trainer's own scores. */
static void
TrainGbm(CrDataset *ds, const bool *holdout, TrainParams *tp, CrModel *model,
		 TrainFit *fit)
{
	int			p = ds->nfeatures;
	CrGbmResult *res;

	tp->gbm.seed = (uint64) tp->seed;
	tp->gbm.monotone = MonotoneVector(tp, ds);
	res = GbmFit(ds, holdout, &tp->gbm);

	model->algorithm = CR_ALGO_GBM;
	model->forest = res->forest;

	FitEvaluate(fit, tp->scoring.threshold, res->holdout_prob, res->holdout_label,
				res->nholdout, res->train_prob, res->train_label, res->ntrain);

	appendStringInfo(&fit->extra, ", \"n_trees\": %d, \"trees_built\": %d, \"best_iteration\": %d",
					 res->forest.ntrees, res->trees_built, res->best_iteration);
	if (!isnan(res->best_score))
		AppendKeyDouble(&fit->extra, ", \"best_holdout_log_loss\": ", res->best_score);
	appendStringInfo(&fit->extra, ", \"nodes\": %d, \"threads\": %d",
					 res->forest.tree_start[res->forest.ntrees], res->threads_used);
	AppendKeyDouble(&fit->extra, ", \"bin_seconds\": ", res->bin_seconds);

	/* importance: total gain, total cover and split count per feature */
	appendStringInfoChar(&fit->importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(&fit->importance, ", ");
		escape_json(&fit->importance, ds->names[j]);
		AppendKeyDouble(&fit->importance, ": {\"gain\": ", res->gain[j]);
		AppendKeyDouble(&fit->importance, ", \"cover\": ", res->cover[j]);
		appendStringInfo(&fit->importance, ", \"splits\": " INT64_FORMAT "}", res->splits[j]);
	}
	appendStringInfoChar(&fit->importance, '}');
}

/*
 * The split must leave training rows, a holdout when one was asked for,
 * and both classes among the training rows.
 */
static void
TrainCheckSplit(const CrDataset *ds, const bool *holdout, int64 ntrain, int64 nhold,
				double holdout_share, const char *label)
{
	int64		pos = 0;

	if (ntrain == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout of %.15g leaves no training rows out of " INT64_FORMAT, holdout_share, ds->nrows),
				 errhint("Use a smaller params.holdout.")));
	if (holdout_share > 0 && nhold == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout of %g selected no rows out of " INT64_FORMAT, holdout_share, ds->nrows),
				 errhint("Use more rows, a larger holdout, or params.holdout = 0 to train and evaluate on every row.")));
	for (int64 i = 0; i < ds->nrows; i++)
		if (!holdout[i])
			pos += ds->label[i] > 0.5;
	if (pos == 0 || pos == ntrain)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label column \"%s\" has a single class (%s) in the " INT64_FORMAT " training rows",
						label, pos == 0 ? "all 0" : "all 1", ntrain),
				 errhint("A model needs both defaults (1) and non-defaults (0).")));
}

/* Missing values are imputed with the mean of the training rows. */
static double *
TrainImputeValues(const CrDataset *ds, const bool *holdout)
{
	int			p = ds->nfeatures;
	double	   *impute = palloc(sizeof(double) * p);

	for (int j = 0; j < p; j++)
	{
		double		sum = 0.0;
		int64		cnt = 0;

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < ds->nrows; i++)
			if (!holdout[i] && !isnan(ds->cols[j][i]))
			{
				sum += ds->cols[j][i];
				cnt++;
			}
		if (cnt == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature column \"%s\" is NULL in every training row", ds->names[j])));
		impute[j] = sum / cnt;
		if (!isfinite(impute[j]))
		{
			/*
			 * Values near the limits of double precision overflow the sum;
			 * their mean does not, added up as x / cnt.  A model must not
			 * be stored with a value its own decoder refuses.
			 */
			sum = 0.0;
			for (int64 i = 0; i < ds->nrows; i++)
				if (!holdout[i] && !isnan(ds->cols[j][i]))
					sum += ds->cols[j][i] / cnt;
			impute[j] = sum;
			if (!isfinite(impute[j]))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("the mean of feature column \"%s\" is out of range for type double precision",
								ds->names[j]),
						 errhint("Scale the column down.")));
		}
	}
	return impute;
}

/* ------------------------------------------------------------- cr_train */

Datum
cr_train(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext traincxt;
	TupleDesc	rettupdesc;
	char	   *name;
	char	   *source;
	char	   *label;
	char	   *algorithm;
	TrainParams tp;
	CrDatasetSpec spec;
	CrDataset  *ds;
	int			p;
	bool	   *holdout;
	int64		ntrain = 0;
	int64		nhold = 0;
	CrModel		model;
	bytea	   *bytes;
	StringInfoData params_json;
	StringInfoData metrics_json;
	TrainFit	fit;
	instr_time	start;
	instr_time	elapsed;
	instr_time	t_loaded;
	instr_time	t_fitted;
	Datum		result;

	INSTR_TIME_SET_CURRENT(start);

	CrCheckSettings();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, source, label and algorithm must not be null")));
	if (get_call_result_type(fcinfo, NULL, &rettupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "cr_train must return credit_risk.models");

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	label = text_to_cstring(PG_GETARG_TEXT_PP(2));
	algorithm = text_to_cstring(PG_GETARG_TEXT_PP(3));

	RegistryCheckName(name);
	memset(&tp, 0, sizeof(tp));
	if (strcmp(algorithm, "gbm") == 0)
		tp.algorithm = CR_ALGO_GBM;
	else if (strcmp(algorithm, "logistic") == 0)
		tp.algorithm = CR_ALGO_LOGISTIC;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown algorithm \"%s\"", algorithm),
				 errhint("Use 'gbm' (gradient-boosted trees) or 'logistic'.")));

	ParseParams(PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5), &tp);

	memset(&spec, 0, sizeof(spec));
	spec.max_bytes = (Size) cr_train_memory_kb * 1024;
	spec.trainer_bytes_per_row = tp.algorithm == CR_ALGO_GBM
		? GbmBytesPerRow(0) : sizeof(double) * 5;
	spec.trainer_bytes_per_feature_row = tp.algorithm == CR_ALGO_GBM ? 1 : sizeof(double);
	spec.source = source;
	spec.label = label;
	spec.key = tp.key;
	spec.key_seed = (uint64) tp.seed;
	if (!PG_ARGISNULL(4))
		spec.features = FeatureList(PG_GETARG_ARRAYTYPE_P(4), &spec.nfeatures);

	/* everything the fit allocates lives here and goes at the end */
	traincxt = AllocSetContextCreate(callercxt, "credit_risk train",
									 ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	MemoryContextSwitchTo(traincxt);
	ds = DatasetLoad(&spec);
	INSTR_TIME_SET_CURRENT(t_loaded);
	p = ds->nfeatures;
	if (p > CR_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a model takes at most %d features, not %d", CR_MAX_FEATURES, p)));
	for (int j = 0; j < p; j++)
		if (strlen(ds->names[j]) > CR_MAX_NAME_LEN)
			elog(ERROR, "feature name too long: %s", ds->names[j]);

	holdout = HoldoutSplit(ds, tp.seed, tp.holdout, &ntrain, &nhold);
	TrainCheckSplit(ds, holdout, ntrain, nhold, tp.holdout, label);
	memset(&model, 0, sizeof(model));
	model.impute = TrainImputeValues(ds, holdout);

	model.nfeatures = p;
	model.features = ds->names;
	model.scoring = tp.scoring;
	memset(&fit, 0, sizeof(fit));
	initStringInfo(&fit.extra);
	initStringInfo(&fit.importance);
	/* drift baselines of the features, from the training rows (before a tree fit frees them) */
	model.baseline = palloc0(sizeof(CrBaseline) * (p + 1));
	model.drift_moderate = tp.drift_moderate;
	model.drift_major = tp.drift_major;
	for (int j = 0; j < p; j++)
	{
		CHECK_FOR_INTERRUPTS();
		DriftBaselineBuild(&model.baseline[j], ds->cols[j], holdout, ds->nrows, tp.seed + j);
	}

	if (tp.algorithm == CR_ALGO_LOGISTIC)
		TrainLogistic(ds, holdout, ntrain, nhold, &tp, &model, &fit);
	else
		TrainGbm(ds, holdout, &tp, &model, &fit);
	INSTR_TIME_SET_CURRENT(t_fitted);

	/* ... and of the score, on the rows the metrics were computed on */
	DriftBaselineBuild(&model.baseline[p], fit.eval_prob, NULL, fit.neval, tp.seed);

	bytes = ModelEncode(&model);

	initStringInfo(&params_json);
	AppendParamsJson(&params_json, &tp);

	initStringInfo(&metrics_json);
	appendStringInfo(&metrics_json, "{\"evaluated_on\": \"%s\", ",
					 tp.holdout > 0 ? "holdout" : "train");
	MetricsAppendJson(&metrics_json, &fit.eval);
	AppendKeyDouble(&metrics_json, ", \"train_auc\": ", fit.train_auc);
	appendStringInfoString(&metrics_json, fit.extra.data);
	INSTR_TIME_SUBTRACT(t_fitted, t_loaded);
	INSTR_TIME_SUBTRACT(t_loaded, start);
	AppendKeyDouble(&metrics_json, ", \"load_seconds\": ", INSTR_TIME_GET_DOUBLE(t_loaded));
	AppendKeyDouble(&metrics_json, ", \"fit_seconds\": ", INSTR_TIME_GET_DOUBLE(t_fitted));
	appendStringInfoChar(&metrics_json, '}');

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	/* register it (see registry_write.c); the row in the caller's context */
	{
		CrNewVersion nv;

		nv.name = name;
		nv.algorithm = algorithm;
		nv.source = source;
		nv.label = label;
		nv.features = ds->names;
		nv.nfeatures = p;
		nv.params = JsonbFromText(params_json.data);
		nv.metrics = JsonbFromText(metrics_json.data);
		nv.importance = JsonbFromText(fit.importance.data);
		nv.train_rows = ntrain;
		nv.holdout_rows = nhold;
		nv.train_seconds = INSTR_TIME_GET_DOUBLE(elapsed);
		nv.model = bytes;
		result = HeapTupleGetDatum(RegistryInsertVersion(&nv, rettupdesc, callercxt));
	}

	SPI_finish();
	MemoryContextDelete(traincxt);
	PG_RETURN_DATUM(result);
}
