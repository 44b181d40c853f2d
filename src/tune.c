/*
 * tune.c
 *	  Model development on the rows of one training run: k-fold
 *	  cross-validation (params.cv), and the hyper-parameter search of
 *	  cr_tune.
 *
 * Folds are made once per run (HoldoutFolds): the training rows of each
 * label, ordered by the same seeded number that decides the holdout, are
 * dealt to folds 0, 1, ..., k - 1 in turn, so every fold has the same share
 * of defaults to within one row.  A fold's model is fitted as cr_train
 * fits one (the same code, its own imputation means and levels' dummy
 * columns) on the other folds, and scored on the fold.  Trees are the
 * exception in one respect: the rows are binned once for every fold and
 * trial, with the cut points of all the training rows.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "gbm.h"
#include "hugemem.h"
#include "predict.h"
#include "progress.h"
#include "random.h"
#include "registry.h"
#include "train.h"

PG_FUNCTION_INFO_V1(cr_tune);

/*
 * A logistic model fitted on the rows with fold[i] >= 0 and not f, scored
 * on the rows of fold f.
 */
static void
FoldLogistic(CrTrainData *td, const CrTrainParams *tp, const int8 *fold, int f,
			 double *prob, double *label, int64 *n)
{
	CrDataset  *ds = td->ds;
	CrModel		m = td->skeleton;
	double	   *x = palloc(sizeof(double) * ds->nfeatures);
	bool	   *exclude = HugeAlloc(sizeof(bool) * Max(ds->nrows, 1));

	for (int64 i = 0; i < ds->nrows; i++)
		exclude[i] = fold[i] < 0 || fold[i] == f;
	m.impute = DatasetColumnMeans(ds, exclude, "training");
	for (int j = 0; j < ds->nfeatures; j++)
		if (ds->cats != NULL && ds->cats[j] != NULL)
			m.impute[j] = 0.0;
	(void) TrainLogitFit(ds, exclude, tp, &m, NULL);
	*n = 0;
	for (int64 i = 0; i < ds->nrows; i++)
	{
		if (fold[i] != f)
			continue;
		if ((*n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < ds->nfeatures; j++)
			x[j] = ds->cols[j][i];
		prob[*n] = PredictProbability(&m, x);
		label[(*n)++] = ds->label[i];
	}
	HugeFree(exclude);
	pfree(x);
}

/*
 * Trees fitted on the rows with fold[i] >= 0 and not f, scored on fold f:
 * from the run's rows as binned once (the cut points are the training
 * rows', shared by every fold), the fold's bytes copied out.
 */
static CrGbmResult *
FoldGbm(CrTrainData *td, CrTrainParams *tp, const int8 *fold, int f)
{
	CrGbmBins  *all = TrainGbmBins(td, tp);

	return GbmBoost(GbmBinsFold(all, td->holdout, td->ds->nrows, fold, f), &tp->gbm);
}

/*
 * The metrics on fold f of a model fitted with tp on the other folds (rows
 * with fold -1 take no part): logistic from the float columns, trees from
 * the bins of the fold's rows (FoldGbm).
 */
/* A fold's out-of-fold PDs and labels, kept for calibration (keep may be NULL). */
static void
FoldKeep(CrCvResult *keep, const double *prob, const double *label, int64 n)
{
	if (keep == NULL || keep->oof_prob == NULL)
		return;
	memcpy(keep->oof_prob + keep->n_oof, prob, sizeof(double) * n);
	memcpy(keep->oof_label + keep->n_oof, label, sizeof(double) * n);
	keep->n_oof += n;
}

static void
EvalFold(CrTrainData *td, CrTrainParams *tp, const int8 *fold, int f, CrMetrics *out,
		 CrCvResult *keep)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk fold",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	CHECK_FOR_INTERRUPTS();
	if (tp->algorithm == CR_ALGO_LOGISTIC)
	{
		double	   *prob = HugeAlloc(sizeof(double) * Max(td->ds->nrows, 1));
		double	   *label = HugeAlloc(sizeof(double) * Max(td->ds->nrows, 1));
		int64		n;

		FoldLogistic(td, tp, fold, f, prob, label, &n);
		MetricsCompute(prob, label, n, tp->scoring.threshold, out);
		FoldKeep(keep, prob, label, n);
		HugeFree(prob);
		HugeFree(label);
	}
	else
	{
		CrGbmResult *res = FoldGbm(td, tp, fold, f);

		MetricsCompute(res->holdout_prob, res->holdout_label, res->nholdout,
					   tp->scoring.threshold, out);
		FoldKeep(keep, res->holdout_prob, res->holdout_label, res->nholdout);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

/* mean and sample sd of the AUCs of the first n folds */
static void
AucMeanSd(const CrMetrics *folds, int n, double *mean, double *sd)
{
	double		sum = 0.0,
				sum2 = 0.0;

	for (int f = 0; f < n; f++)
	{
		sum += folds[f].auc;
		sum2 += folds[f].auc * folds[f].auc;
	}
	*mean = sum / n;
	*sd = n > 1 ? sqrt(Max(sum2 - sum * sum / n, 0.0) / (n - 1)) : NAN;
}

void
TrainCrossValidate(CrTrainData *td, CrTrainParams *tp, CrCvResult *res)
{
	instr_time	t0,
				t1;

	INSTR_TIME_SET_CURRENT(t0);
	res->k = td->nfolds;
	res->folds = palloc0(sizeof(CrMetrics) * res->k);
	res->oof_prob = res->oof_label = NULL;
	res->n_oof = 0;
	if (tp->calibration != CR_CALIBRATION_NONE)
	{
		res->oof_prob = HugeAlloc(sizeof(double) * Max(td->ds->nrows, 1));
		res->oof_label = HugeAlloc(sizeof(double) * Max(td->ds->nrows, 1));
	}
	for (int f = 0; f < res->k; f++)
	{
		ProgressContext(psprintf("fold %d of %d", f + 1, res->k));
		EvalFold(td, tp, td->fold, f, &res->folds[f], res);
	}
	ProgressContext(NULL);
	AucMeanSd(res->folds, res->k, &res->auc_mean, &res->auc_sd);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	res->seconds = INSTR_TIME_GET_DOUBLE(t1);
}

/* mean and sample sd of one metric over the folds, as "name": {"mean", "sd"} */
static void
AppendMeanSd(StringInfo buf, const char *name, const CrCvResult *res, size_t offset)
{
	double		sum = 0.0,
				sum2 = 0.0;

	for (int f = 0; f < res->k; f++)
	{
		double		v = *(const double *) ((const char *) &res->folds[f] + offset);

		sum += v;
		sum2 += v * v;
	}
	appendStringInfo(buf, ", \"%s\": {\"mean\": ", name);
	CrAppendDouble(buf, sum / res->k);
	appendStringInfoString(buf, ", \"sd\": ");
	CrAppendDouble(buf, sqrt(Max(sum2 - sum * sum / res->k, 0.0) / (res->k - 1)));
	appendStringInfoChar(buf, '}');
}

/* "cv": {"k", "auc": {"mean", "sd"}, ..., "folds": [...], "seconds"} */
void
TrainCvAppendJson(StringInfo buf, const CrCvResult *res)
{
	appendStringInfo(buf, "{\"k\": %d", res->k);
	AppendMeanSd(buf, "auc", res, offsetof(CrMetrics, auc));
	AppendMeanSd(buf, "ks", res, offsetof(CrMetrics, ks));
	AppendMeanSd(buf, "gini", res, offsetof(CrMetrics, gini));
	AppendMeanSd(buf, "log_loss", res, offsetof(CrMetrics, log_loss));
	AppendMeanSd(buf, "brier", res, offsetof(CrMetrics, brier));
	appendStringInfoString(buf, ", \"folds\": [");
	for (int f = 0; f < res->k; f++)
	{
		const CrMetrics *m = &res->folds[f];

		appendStringInfo(buf, "%s{\"fold\": %d, \"rows\": " INT64_FORMAT ", \"positives\": " INT64_FORMAT,
						 f > 0 ? ", " : "", f, m->rows, m->positives);
		appendStringInfoString(buf, ", \"auc\": ");
		CrAppendDouble(buf, m->auc);
		appendStringInfoString(buf, ", \"ks\": ");
		CrAppendDouble(buf, m->ks);
		appendStringInfoString(buf, ", \"log_loss\": ");
		CrAppendDouble(buf, m->log_loss);
		appendStringInfoString(buf, ", \"brier\": ");
		CrAppendDouble(buf, m->brier);
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoString(buf, "], \"seconds\": ");
	CrAppendDouble(buf, res->seconds);
	appendStringInfoChar(buf, '}');
}

/* ------------------------------------------------------------ cr_tune */

#define TUNE_MAX_TRIALS			1000	/* without a time budget */
#define TUNE_MAX_TRIALS_BUDGET	100000
#define TUNE_MAX_VALUES			1000

typedef enum TuneDimKind
{
	DIM_RANGE,					/* [lo, hi], uniform */
	DIM_LOG,					/* {"log": [lo, hi]}, uniform in the logarithm */
	DIM_VALUES					/* {"values": [...]}, one of them */
} TuneDimKind;

typedef struct TuneDim
{
	char	   *name;
	TuneDimKind kind;
	bool		integer;
	double		lo;
	double		hi;
	int			nvalues;
	double	   *values;
} TuneDim;

typedef struct TuneSearch
{
	bool		grid;
	int			trials;
	int			ndims;
	TuneDim    *dims;
	bool		halving;
	bool		minimize;		/* log loss; AUC is maximised */
	const char *metric;
	double		time_budget;	/* seconds, 0 for none */
	uint64		seed;
	Jsonb	   *given;			/* as the caller wrote it */
} TuneSearch;

/* One trial: its params, and its metric on each fold evaluated. */
typedef struct TuneTrial
{
	char	   *overrides;		/* JSON object of the params it varies */
	CrTrainParams tp;
	CrMetrics  *folds;			/* per fold (or one: the holdout) */
	int			nevaluated;
	double		metric;
	double		metric_sd;
	double		seconds;
	bool		stopped;		/* dropped by successive halving */
	int			number;			/* 1, 2, ... in the order drawn */
} TuneTrial;

static void pg_attribute_noreturn()
BadSearch(const char *what, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("search %s", what),
			 hint ? errhint("%s", hint) : 0));
}

static double
SearchNumber(const char *key, JsonbValue *v)
{
	double		d;

	if (v->type != jbvNumeric)
		BadSearch(psprintf("%s must be a number", key), NULL);
	d = DatasetNumericToDouble(v->val.numeric, "search value", key);
	if (!isfinite(d))
		BadSearch(psprintf("%s must be finite", key), NULL);
	return d;
}

/* The elements of a jsonb array value, at most max. */
static int
SearchArray(const char *key, JsonbValue *v, JsonbValue *out, int max)
{
	JsonbIterator *it;
	JsonbValue	e;
	JsonbIteratorToken tok;
	int			n = 0;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		BadSearch(psprintf("%s must be an array", key), NULL);
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &e, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (n >= max)
			BadSearch(psprintf("%s has more than %d elements", key, max), NULL);
		out[n++] = e;
	}
	return n;
}

/* A number as a JSON value: whole numbers without a fraction. */
static void
AppendValue(StringInfo buf, double v, bool integer)
{
	if (integer)
		appendStringInfo(buf, "%.0f", v);
	else
		CrAppendDouble(buf, v);
}

/* base params with the overrides (a JSON object's text) on top */
static Jsonb *
MergeParams(Jsonb *base, const char *overrides)
{
	Datum		over = DirectFunctionCall1(jsonb_in, CStringGetDatum(overrides));

	if (base == NULL)
		return DatumGetJsonbP(over);
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(base), over));
}

/* A value of a dimension is checked as params would check it. */
static void
CheckDimValue(Jsonb *base, CrAlgorithm algorithm, const TuneDim *d, double v)
{
	StringInfoData buf;
	CrTrainParams tp;

	if (d->integer && v != floor(v))
		BadSearch(psprintf("space.%s holds %g; %s takes whole numbers", d->name, v, d->name),
				  NULL);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{");
	escape_json(&buf, d->name);
	appendStringInfoString(&buf, ": ");
	AppendValue(&buf, v, d->integer);
	appendStringInfoString(&buf, "}");
	memset(&tp, 0, sizeof(tp));
	tp.algorithm = algorithm;
	ParamsParse(MergeParams(base, buf.data), &tp);
}

static void
ParseDim(TuneDim *d, JsonbValue *v, Jsonb *base, CrAlgorithm algorithm)
{
	JsonbValue	pair[2];
	JsonbValue *values;
	const char *want = "[lo, hi], {\"log\": [lo, hi]} or {\"values\": [...]}";

	if (!ParamsTunable(d->name, algorithm, &d->integer))
		BadSearch(psprintf("space names \"%s\", which a %s search cannot vary", d->name,
						   ModelAlgorithmName(algorithm)),
				  psprintf("A %s search varies: %s.", ModelAlgorithmName(algorithm),
						   ParamsTunableList(algorithm)));
	if (v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data))
	{
		if (SearchArray(d->name, v, pair, 2) != 2)
			BadSearch(psprintf("space.%s must be %s", d->name, want), NULL);
		d->kind = DIM_RANGE;
	}
	else if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
	{
		JsonbValue	inner;
		JsonbValue *log = getKeyJsonValueFromContainer(v->val.binary.data, "log", 3, &inner);

		if (log != NULL && JsonContainerSize(v->val.binary.data) == 1)
		{
			if (SearchArray(psprintf("%s.log", d->name), log, pair, 2) != 2)
				BadSearch(psprintf("space.%s must be %s", d->name, want), NULL);
			d->kind = DIM_LOG;
		}
		else
		{
			JsonbValue	vals;
			JsonbValue *got = getKeyJsonValueFromContainer(v->val.binary.data, "values", 6, &vals);

			if (got == NULL || JsonContainerSize(v->val.binary.data) != 1)
				BadSearch(psprintf("space.%s must be %s", d->name, want), NULL);
			values = palloc(sizeof(JsonbValue) * TUNE_MAX_VALUES);
			d->nvalues = SearchArray(psprintf("space.%s.values", d->name), got, values,
									 TUNE_MAX_VALUES);
			if (d->nvalues == 0)
				BadSearch(psprintf("space.%s.values is empty", d->name), NULL);
			d->kind = DIM_VALUES;
			d->values = palloc(sizeof(double) * d->nvalues);
			for (int i = 0; i < d->nvalues; i++)
			{
				d->values[i] = SearchNumber(d->name, &values[i]);
				CheckDimValue(base, algorithm, d, d->values[i]);
			}
			return;
		}
	}
	else
		BadSearch(psprintf("space.%s must be %s", d->name, want), NULL);

	d->lo = SearchNumber(d->name, &pair[0]);
	d->hi = SearchNumber(d->name, &pair[1]);
	if (d->lo > d->hi)
		BadSearch(psprintf("space.%s is reversed: %g is above %g", d->name, d->lo, d->hi),
				  "Give the range as [low, high].");
	if (d->kind == DIM_LOG && d->lo <= 0.0)
		BadSearch(psprintf("space.%s.log starts at %g; a log range must be above 0", d->name, d->lo),
				  NULL);
	CheckDimValue(base, algorithm, d, d->lo);
	CheckDimValue(base, algorithm, d, d->hi);
}

static void
ParseSearch(TuneSearch *s, Jsonb *search, Jsonb *base, const CrTrainParams *tp)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	JsonbValue	space = {0};
	bool		have_space = false;
	bool		have_trials = false;

	memset(s, 0, sizeof(TuneSearch));
	s->trials = 20;
	s->metric = "auc";
	s->seed = (uint64) tp->seed;
	s->given = search;
	if (!JB_ROOT_IS_OBJECT(search))
		BadSearch("must be a jsonb object",
				  "For example {\"method\": \"random\", \"trials\": 30, \"space\": {\"max_depth\": [3, 8]}}.");
	it = JsonbIteratorInit(&search->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "method") == 0)
		{
			if (v.type == jbvString && v.val.string.len == 4 && memcmp(v.val.string.val, "grid", 4) == 0)
				s->grid = true;
			else if (!(v.type == jbvString && v.val.string.len == 6 &&
					   memcmp(v.val.string.val, "random", 6) == 0))
				BadSearch("method must be \"random\" or \"grid\"", NULL);
		}
		else if (strcmp(key, "trials") == 0)
		{
			double		d = SearchNumber("trials", &v);

			if (d != floor(d) || d < 1 || d > TUNE_MAX_TRIALS_BUDGET)
				BadSearch(psprintf("trials must be a whole number from 1 to %d", TUNE_MAX_TRIALS_BUDGET),
						  NULL);
			s->trials = (int) d;
			have_trials = true;
		}
		else if (strcmp(key, "space") == 0)
		{
			space = v;
			have_space = true;
		}
		else if (strcmp(key, "metric") == 0)
		{
			if (v.type == jbvString && v.val.string.len == 3 && memcmp(v.val.string.val, "auc", 3) == 0)
				s->metric = "auc";
			else if (v.type == jbvString && v.val.string.len == 8 &&
					 memcmp(v.val.string.val, "log_loss", 8) == 0)
			{
				s->metric = "log_loss";
				s->minimize = true;
			}
			else
				BadSearch("metric must be \"auc\" or \"log_loss\"", NULL);
		}
		else if (strcmp(key, "halving") == 0)
		{
			if (v.type != jbvBool)
				BadSearch("halving must be true or false", NULL);
			s->halving = v.val.boolean;
		}
		else if (strcmp(key, "time_budget") == 0)
		{
			s->time_budget = SearchNumber("time_budget", &v);
			if (s->time_budget <= 0)
				BadSearch("time_budget must be a number of seconds above 0", NULL);
		}
		else if (strcmp(key, "seed") == 0)
		{
			double		d = SearchNumber("seed", &v);

			if (d != floor(d) || d < 0 || d > PG_INT32_MAX)
				BadSearch("seed must be a whole number from 0 to 2147483647", NULL);
			s->seed = (uint64) d;
		}
		else
			BadSearch(psprintf("has key \"%s\"", key),
					  "A search takes method, trials, space, metric, halving, time_budget and seed.");
	}

	if (!have_space || space.type != jbvBinary || !JsonContainerIsObject(space.val.binary.data) ||
		JsonContainerSize(space.val.binary.data) == 0)
		BadSearch("needs a space: an object of the params to vary",
				  "For example \"space\": {\"max_depth\": [3, 8], \"learning_rate\": {\"log\": [0.01, 0.3]}}.");
	s->dims = palloc0(sizeof(TuneDim) * JsonContainerSize(space.val.binary.data));
	it = JsonbIteratorInit(space.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			s->dims[s->ndims].name = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			ParseDim(&s->dims[s->ndims++], &v, base, tp->algorithm);
	}

	if (s->grid)
	{
		double		n = 1;

		if (have_trials)
			BadSearch("takes no trials with method \"grid\": the grid is every combination", NULL);
		for (int d = 0; d < s->ndims; d++)
		{
			TuneDim    *dim = &s->dims[d];

			if (dim->kind != DIM_VALUES && !(dim->kind == DIM_RANGE && dim->integer))
				BadSearch(psprintf("space.%s must list its values for a grid", dim->name),
						  "Use {\"values\": [...]}; a grid takes ranges of whole numbers only.");
			n *= dim->kind == DIM_VALUES ? dim->nvalues : dim->hi - dim->lo + 1;
		}
		if (n > TUNE_MAX_TRIALS_BUDGET)
			BadSearch(psprintf("grid has %.0f combinations, more than %d", n, TUNE_MAX_TRIALS_BUDGET),
					  "Use method \"random\" with a number of trials.");
		s->trials = (int) n;
	}
	if (s->trials > TUNE_MAX_TRIALS && s->time_budget == 0)
		BadSearch(psprintf("of %d trials needs a time_budget", s->trials),
				  psprintf("Up to %d trials run without one; give \"time_budget\" in seconds to run more.",
						   TUNE_MAX_TRIALS));
	if (s->halving && tp->cv < 2)
		BadSearch("with halving needs params.cv",
				  "Successive halving drops trials fold by fold: give params.cv of 2 or more.");
}

/* Trial t's params as a JSON object of the dimensions' values. */
static char *
DrawTrial(const TuneSearch *s, int t)
{
	StringInfoData buf;
	int64		rest = t;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int d = 0; d < s->ndims; d++)
	{
		const TuneDim *dim = &s->dims[d];
		double		v;

		if (s->grid)
		{
			/* the last dimension varies fastest */
			int64		n = 1;
			int64		idx;

			for (int e = d + 1; e < s->ndims; e++)
				n *= s->dims[e].kind == DIM_VALUES ? s->dims[e].nvalues
					: (int64) (s->dims[e].hi - s->dims[e].lo + 1);
			idx = rest / n;
			rest %= n;
			v = dim->kind == DIM_VALUES ? dim->values[idx] : dim->lo + idx;
		}
		else
		{
			double		u = CrUnit(CrMix64(s->seed ^ ((uint64) (t + 1) << 24) ^ (uint64) (d + 1)));

			switch (dim->kind)
			{
				case DIM_VALUES:
					v = dim->values[Min((int) (u * dim->nvalues), dim->nvalues - 1)];
					break;
				case DIM_LOG:
					v = exp(log(dim->lo) + u * (log(dim->hi) - log(dim->lo)));
					if (dim->integer)
						v = Min(Max(rint(v), dim->lo), dim->hi);
					break;
				default:
					if (dim->integer)
						v = dim->lo + Min(floor(u * (dim->hi - dim->lo + 1)), dim->hi - dim->lo);
					else
						v = dim->lo + u * (dim->hi - dim->lo);
					break;
			}
		}
		if (d > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, dim->name);
		appendStringInfoString(&buf, ": ");
		AppendValue(&buf, v, dim->integer);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Mean and sd of a trial's metric over the folds it was evaluated on. */
static void
TrialSummary(const TuneSearch *s, TuneTrial *t)
{
	double		sum = 0.0,
				sum2 = 0.0;
	int			n = t->nevaluated;

	for (int f = 0; f < n; f++)
	{
		double		v = s->minimize ? t->folds[f].log_loss : t->folds[f].auc;

		sum += v;
		sum2 += v * v;
	}
	t->metric = sum / n;
	t->metric_sd = n > 1 ? sqrt(Max(sum2 - sum * sum / n, 0.0) / (n - 1)) : NAN;
}

/* whether trial a is better than b (ties: the earlier trial) */
static bool
TrialBetter(const TuneSearch *s, const TuneTrial *a, const TuneTrial *b)
{
	return s->minimize ? a->metric < b->metric : a->metric > b->metric;
}

static int
TrialIndexCmp(const void *a, const void *b, void *arg)
{
	const TuneSearch *s = arg;
	const TuneTrial *x = *(TuneTrial *const *) a;
	const TuneTrial *y = *(TuneTrial *const *) b;

	if (TrialBetter(s, x, y))
		return -1;
	if (TrialBetter(s, y, x))
		return 1;
	return x < y ? -1 : (x > y);
}

/* A trial's params: the caller's params with the trial's values on top, resolved. */
static void
TrialParams(TrainRun *run, TuneTrial *t)
{
	CrTrainParams *tp = &t->tp;

	memset(tp, 0, sizeof(CrTrainParams));
	tp->algorithm = run->tp.algorithm;
	ParamsParse(MergeParams(run->params, t->overrides), tp);
	/* what the run resolved against its rows holds for every trial */
	memcpy(tp->gbm.class_weight, run->tp.gbm.class_weight, sizeof(tp->gbm.class_weight));
	memcpy(tp->logit.class_weight, run->tp.logit.class_weight, sizeof(tp->logit.class_weight));
	tp->gbm.seed = (uint64) tp->seed;
	tp->gbm.monotone = run->tp.gbm.monotone;
}

/* Log the run in credit_risk.tuning_runs, as the registry's owner. */
static void
LogRun(TrainRun *run, const TuneSearch *s, int64 id, TuneTrial *trials, int ntrials,
	   int best, int32 version, double seconds, bool budget_hit)
{
	StringInfoData buf;
	Oid			types[13] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, JSONBOID, TEXTOID,
		JSONBOID, INT4OID, INT4OID, FLOAT8OID, BOOLOID, TEXTOID};
	Datum		args[13];
	CrAsOwner	as_owner;
	int			rc;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (int t = 0; t < ntrials; t++)
	{
		TuneTrial  *tr = &trials[t];

		appendStringInfo(&buf, "%s{\"trial\": %d, \"params\": %s, \"metric\": ",
						 t > 0 ? ", " : "", t + 1, tr->overrides);
		CrAppendDouble(&buf, tr->metric);
		appendStringInfoString(&buf, ", \"metric_sd\": ");
		CrAppendDouble(&buf, tr->metric_sd);
		appendStringInfo(&buf, ", \"folds\": %d, \"stopped\": %s, \"seconds\": ",
						 tr->nevaluated, tr->stopped ? "true" : "false");
		CrAppendDouble(&buf, tr->seconds);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, ']');

	args[0] = Int64GetDatum(id);
	args[1] = CStringGetTextDatum(run->name);
	args[2] = CStringGetTextDatum(run->algorithm);
	args[3] = CStringGetTextDatum(run->source);
	args[4] = JsonbPGetDatum(s->given);
	args[5] = run->params ? JsonbPGetDatum(run->params)
		: DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	args[6] = CStringGetTextDatum(s->metric);
	args[7] = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
	args[8] = Int32GetDatum(best + 1);
	args[9] = Int32GetDatum(version);
	args[10] = Float8GetDatum(seconds);
	args[11] = BoolGetDatum(budget_hit);

	RegistryBeginAsOwner(&as_owner);
	args[12] = CStringGetTextDatum(as_owner.caller);
	rc = SPI_execute_with_args("INSERT INTO credit_risk.tuning_runs"
							   " (id, model_name, algorithm, source, search, params, metric, trials,"
							   "  best_trial, version, seconds, budget_exhausted, run_by)"
							   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
							   13, types, args, NULL, false, 0);
	RegistryEndAsOwner(&as_owner);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not log the tuning run: %s", SPI_result_code_string(rc));
}

/* The next id of credit_risk.tuning_runs, drawn as the registry's owner. */
static int64
NextRunId(void)
{
	CrAsOwner	as_owner;
	int			rc;
	bool		isnull;
	int64		id;

	RegistryBeginAsOwner(&as_owner);
	rc = SPI_execute("SELECT pg_catalog.nextval('credit_risk.tuning_runs_id_seq')", false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not draw a tuning run id: %s", SPI_result_code_string(rc));
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	RegistryEndAsOwner(&as_owner);
	return id;
}

/* Evaluate trial t on folds [from, to) of fold (or the holdout: one "fold"). */
static void
RunTrial(TrainRun *run, const TuneSearch *s, TuneTrial *t, const int8 *fold, int from, int to)
{
	instr_time	t0,
				t1;

	INSTR_TIME_SET_CURRENT(t0);
	for (int f = from; f < to; f++)
	{
		if (run->td.nfolds > 1)
			ProgressContext(psprintf("trial %d of %d, fold %d of %d", t->number, s->trials,
									 f + 1, run->td.nfolds));
		else
			ProgressContext(psprintf("trial %d of %d", t->number, s->trials));
		EvalFold(&run->td, &t->tp, fold, f, &t->folds[f], NULL);
	}
	t->nevaluated = to;
	TrialSummary(s, t);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	t->seconds += INSTR_TIME_GET_DOUBLE(t1);
}

/*
 * cr_tune(name, source, label, algorithm, features, search, params): the
 * trials of a search on the rows loaded (and, for trees, binned) once, each
 * scored by cross-validation (params.cv) or on the holdout; the best
 * registered as a new (candidate) version, the run logged in tuning_runs.
 */
Datum
cr_tune(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TrainRun	run;
	TuneSearch	search;
	TuneTrial  *trials;
	int			ntrials = 0;
	int			nfolds;
	int8	   *fold;
	int			best = -1;
	bool		budget_hit = false;
	int64		run_id;
	int32		version;
	CrCvResult	cv;
	char	   *extra;
	HeapTupleHeader row;
	bool		isnull;

	if (PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("search must not be null"),
				 errhint("For example {\"method\": \"random\", \"trials\": 20, \"space\": {\"max_depth\": [3, 8]}}.")));
	InitMaterializedSRF(fcinfo, 0);
	TrainBegin(&run, fcinfo, PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4),
			   PG_ARGISNULL(6) ? NULL : PG_GETARG_JSONB_P(6));
	run.rettupdesc = RelationNameGetTupleDesc("credit_risk.models");
	if (run.tp.algorithm == CR_ALGO_SCORECARD)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cr_tune searches gbm and logistic models, not scorecards"),
				 errhint("Compare scorecards of a few max_bins and min_bin_share values with cr_train.")));
	if (run.tp.distributed)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cr_tune loads the rows; it does not take params.distributed"),
				 errhint("Search with the rows loaded, then train the chosen params with cr_train and params.distributed.")));
	if (run.tp.calibration != CR_CALIBRATION_NONE && run.tp.holdout == 0.0 &&
		run.tp.split_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("params.calibration without a holdout needs the cross-validation's out-of-fold PDs, which a search does not keep"),
				 errhint("Give cr_tune a holdout (params.holdout above 0) to calibrate on.")));
	ParseSearch(&search, PG_GETARG_JSONB_P(5), run.params, &run.tp);
	if (run.tp.cv == 0 && run.tp.holdout == 0.0 && run.tp.split_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_tune needs params.cv or a holdout to score its trials on"),
				 errhint("Give params.cv (5 is usual), or keep params.holdout above 0.")));

	ProgressBegin("cr_tune", run.name, run.tp.verbose);
	TrainLoad(&run);
	if (run.tp.cv > 0)
	{
		nfolds = run.td.nfolds;
		fold = run.td.fold;
	}
	else
	{
		/* the holdout is the one "fold" every trial is scored on */
		nfolds = 1;
		fold = MemoryContextAllocHuge(CurrentMemoryContext, Max(run.td.ds->nrows, 1));
		for (int64 i = 0; i < run.td.ds->nrows; i++)
			fold[i] = run.td.holdout[i] ? 0 : 1;
	}

	trials = palloc0(sizeof(TuneTrial) * search.trials);
	if (!search.halving)
	{
		for (int t = 0; t < search.trials; t++)
		{
			if (t > 0 && search.time_budget > 0 && ProgressSecondsSince(run.start) >= search.time_budget)
			{
				budget_hit = true;
				break;
			}
			trials[t].overrides = DrawTrial(&search, t);
			TrialParams(&run, &trials[t]);
			trials[t].folds = palloc0(sizeof(CrMetrics) * nfolds);
			trials[t].number = t + 1;
			RunTrial(&run, &search, &trials[t], fold, 0, nfolds);
			ntrials++;
		}
	}
	else
	{
		/*
		 * Successive halving: every trial on the first fold, the better half
		 * on the first two, the better half of those on four, ... and the
		 * last ones on every fold.  A dropped trial keeps the metric of the
		 * folds it had.
		 */
		TuneTrial **alive = palloc(sizeof(TuneTrial *) * search.trials);
		int			nalive = 0;
		int			done = 0;

		for (int t = 0; t < search.trials; t++)
		{
			trials[t].overrides = DrawTrial(&search, t);
			TrialParams(&run, &trials[t]);
			trials[t].folds = palloc0(sizeof(CrMetrics) * nfolds);
			trials[t].number = t + 1;
			alive[nalive++] = &trials[t];
		}
		ntrials = search.trials;
		for (int upto = 1; done < nfolds; upto = Min(upto * 2, nfolds))
		{
			for (int a = 0; a < nalive; a++)
			{
				if (search.time_budget > 0 && ProgressSecondsSince(run.start) >= search.time_budget &&
					(done > 0 || a > 0))
				{
					budget_hit = true;
					break;
				}
				RunTrial(&run, &search, alive[a], fold, done, upto);
			}
			if (budget_hit)
				break;
			done = upto;
			if (done < nfolds && nalive > 1)
			{
				qsort_arg(alive, nalive, sizeof(TuneTrial *), TrialIndexCmp, &search);
				for (int a = (nalive + 1) / 2; a < nalive; a++)
					alive[a]->stopped = true;
				nalive = (nalive + 1) / 2;
			}
		}
		/* trials never evaluated (the budget ran out) are not reported */
		if (budget_hit)
		{
			int			kept = 0;

			for (int t = 0; t < ntrials; t++)
				if (trials[t].nevaluated > 0)
					trials[kept++] = trials[t];
			ntrials = kept;
		}
	}

	/* the best of the trials evaluated on every fold */
	for (int t = 0; t < ntrials; t++)
		if (trials[t].nevaluated == nfolds &&
			(best < 0 || TrialBetter(&search, &trials[t], &trials[best])))
			best = t;
	if (best < 0)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("the time budget of %g seconds ended before any trial was scored on every fold",
						search.time_budget),
				 errhint("Give a larger time_budget, or fewer folds.")));

	run_id = NextRunId();
	extra = psprintf(", \"tuning\": {\"run\": " INT64_FORMAT ", \"trial\": %d, \"trials\": %d, "
					 "\"method\": \"%s\", \"metric\": \"%s\"}",
					 run_id, best + 1, ntrials, search.grid ? "grid" : "random", search.metric);
	if (run.tp.cv > 0)
	{
		cv.k = nfolds;
		cv.folds = trials[best].folds;
		cv.oof_prob = cv.oof_label = NULL;	/* a search keeps no out-of-fold PDs */
		cv.n_oof = 0;
		AucMeanSd(cv.folds, nfolds, &cv.auc_mean, &cv.auc_sd);
		cv.seconds = trials[best].seconds;
	}
	ProgressContext("the best trial");
	row = DatumGetHeapTupleHeader(TrainFinish(&run, &trials[best].tp,
											  run.tp.cv > 0 ? &cv : NULL, extra));
	version = DatumGetInt32(GetAttributeByName(row, "version", &isnull));
	LogRun(&run, &search, run_id, trials, ntrials, best, version, ProgressSecondsSince(run.start), budget_hit);

	for (int t = 0; t < ntrials; t++)
	{
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};

		values[0] = Int32GetDatum(t + 1);
		values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(trials[t].overrides));
		values[2] = Float8GetDatum(trials[t].metric);
		if (isnan(trials[t].metric_sd))
			nulls[3] = true;
		else
			values[3] = Float8GetDatum(trials[t].metric_sd);
		values[4] = Float8GetDatum(trials[t].seconds);
		values[5] = BoolGetDatum(t == best);
		values[6] = Int32GetDatum(version);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	TrainEnd(&run);
	ProgressEnd();
	return (Datum) 0;
}
