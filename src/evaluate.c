/*
 * evaluate.c
 *	  A model version's scores on any rows, and what is measured of them:
 *	  cr_evaluate (the holdout metric set: AUC, KS, Gini, log loss, Brier,
 *	  confusion counts), cr_calibration (reliability, Hosmer-Lemeshow, and
 *	  the binomial and Jeffreys tests of each risk category's PD) and
 *	  cr_fairness (approval rates and scores by group).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "dataset.h"
#include "evaluate.h"
#include "metrics.h"
#include "params.h"
#include "predict.h"
#include "registry.h"
#include "statdist.h"

PG_FUNCTION_INFO_V1(cr_evaluate);
PG_FUNCTION_INFO_V1(cr_calibration);
PG_FUNCTION_INFO_V1(cr_fairness);

typedef struct EvalReceiver
{
	DestReceiver pub;
	const CrModel *model;
	const char *label;			/* NULL: no labels */
	bool		label_optional; /* a NULL label is NaN, not an ERROR */
	const char *group;			/* a column whose text groups the rows, or NULL */
	const char *version_label;
	MemoryContext cxt;
	int		   *attnum;
	Oid		   *atttype;
	FmgrInfo   *outfunc;
	int			labelatt;
	Oid			labeltype;
	int			groupatt;
	FmgrInfo	groupout;
	double	   *x;
	double	   *prob;
	double	   *y;
	char	  **groups;			/* each row's group text, NULL for NULL */
	int64		n;
	int64		cap;
} EvalReceiver;

static void
EvalStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	EvalReceiver *er = (EvalReceiver *) self;
	const CrModel *m = er->model;
	MemoryContext old;

	er->labelatt = -1;
	if (er->label != NULL)
	{
		er->labelatt = DatasetRequireColumn(tupdesc, er->label, "label");
		er->labeltype = TupleDescAttr(tupdesc, er->labelatt)->atttypid;
		if (!DatasetTypeIsNumeric(er->labeltype) && er->labeltype != BOOLOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("label column \"%s\" has type %s, not a number or boolean",
							er->label, format_type_be(er->labeltype))));
	}
	old = MemoryContextSwitchTo(er->cxt);
	er->groupatt = -1;
	if (er->group != NULL)
	{
		Oid			outfunc;
		bool		isvarlena;

		er->groupatt = DatasetRequireColumn(tupdesc, er->group, "group");
		getTypeOutputInfo(TupleDescAttr(tupdesc, er->groupatt)->atttypid, &outfunc, &isvarlena);
		fmgr_info(outfunc, &er->groupout);
	}
	er->attnum = palloc(sizeof(int) * m->nfeatures);
	er->atttype = palloc(sizeof(Oid) * m->nfeatures);
	er->outfunc = palloc0(sizeof(FmgrInfo) * m->nfeatures);
	er->x = palloc(sizeof(double) * m->nfeatures);
	DatasetMapColumns(tupdesc, m->features, m->nfeatures, m->cats, er->version_label,
					  er->attnum, er->atttype, er->outfunc);
	MemoryContextSwitchTo(old);
	er->cap = 1024;
	er->prob = MemoryContextAllocHuge(er->cxt, sizeof(double) * er->cap);
	er->y = MemoryContextAllocHuge(er->cxt, sizeof(double) * er->cap);
	if (er->group != NULL)
		er->groups = MemoryContextAllocHuge(er->cxt, sizeof(char *) * er->cap);
}

static bool
EvalReceive(TupleTableSlot *slot, DestReceiver *self)
{
	EvalReceiver *er = (EvalReceiver *) self;
	const CrModel *m = er->model;
	double		y;

	if ((er->n & 0x3FF) == 0)
		CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);
	if (er->labelatt < 0 || (er->label_optional && slot->tts_isnull[er->labelatt]))
		y = NAN;
	else if (slot->tts_isnull[er->labelatt])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("label column \"%s\" is NULL in source row " INT64_FORMAT,
						er->label, er->n + 1),
				 errhint("Evaluate on applicants whose outcome is known.")));
	else
	{
		y = DatasetDatumToDouble(slot->tts_values[er->labelatt], er->labeltype);
		/* a label that is there must be 0 or 1: NaN is not "no label" */
		if (y != 0.0 && y != 1.0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("label column \"%s\" holds %s in source row " INT64_FORMAT ", not 0 or 1",
							er->label, isnan(y) ? "NaN" : psprintf("%g", y), er->n + 1)));
	}
	for (int j = 0; j < m->nfeatures; j++)
	{
		int			a = er->attnum[j];

		er->x[j] = slot->tts_isnull[a] ? NAN
			: DatasetFeatureValue(m->cats ? m->cats[j] : NULL, slot->tts_values[a],
								  er->atttype[j], &er->outfunc[j]);
		if (isinf(er->x[j]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature \"%s\" is Infinity in source row " INT64_FORMAT,
							m->features[j], er->n + 1)));
	}
	if (er->n == er->cap)
	{
		er->cap *= 2;
		er->prob = repalloc_huge(er->prob, sizeof(double) * er->cap);
		er->y = repalloc_huge(er->y, sizeof(double) * er->cap);
		if (er->groups != NULL)
			er->groups = repalloc_huge(er->groups, sizeof(char *) * er->cap);
	}
	if (er->groups != NULL)
		er->groups[er->n] = NULL;
	if (er->groups != NULL && !slot->tts_isnull[er->groupatt])
	{
		char	   *text = OutputFunctionCall(&er->groupout, slot->tts_values[er->groupatt]);

		er->groups[er->n] = MemoryContextStrdup(er->cxt, text);
		pfree(text);
	}
	er->prob[er->n] = PredictProbability(m, er->x);
	er->y[er->n] = y;
	er->n++;
	return true;
}

/*
 * Score every row of source with a version: er gets each row's PD, label
 * (NaN where there is none, label NULL or label_optional) and, with a
 * group column, the group's text.  what names the work in messages.
 */
static void
EvalScan(EvalReceiver *er, const CrCachedModel *entry, const char *source,
		 const char *label, bool label_optional, const char *group, const char *what)
{
	memset(er, 0, sizeof(EvalReceiver));
	DatasetInitReceiver(&er->pub, EvalStartup, EvalReceive);
	er->model = entry->model;
	er->version_label = entry->version_label;
	er->label = label;
	er->label_optional = label_optional;
	er->group = group;
	er->cxt = CurrentMemoryContext;

	DatasetScanSource(source, &er->pub, what);

	if (er->n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s source returned no rows", what),
				 errdetail("Source: %s", source)));
}

static void
SplitArgContext(void *arg)
{
	errcontext("in cr_evaluate's split argument, which takes what params.split takes");
}

/*
 * The rows of source at or after split's cut-off: the out-of-time holdout
 * that params.split makes in cr_train, the cut-off read as the column's
 * type (an unknown-typed literal compared with the column).
 */
static char *
SplitSource(const char *source, Jsonb *split)
{
	CrTrainParams tp;
	ErrorContextCallback callback;
	char	   *params;

	memset(&tp, 0, sizeof(tp));
	tp.algorithm = CR_ALGO_LOGISTIC;
	params = psprintf("{\"split\": %s}", JsonbToCString(NULL, &split->root, VARSIZE(split)));
	callback.callback = SplitArgContext;
	callback.arg = NULL;
	callback.previous = error_context_stack;
	error_context_stack = &callback;
	ParamsParse(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(params))), &tp);
	error_context_stack = callback.previous;
	if (tp.split_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("split must be an object such as {\"column\": \"application_date\", \"holdout_from\": \"2024-01-01\"}"),
				 errhint("Pass NULL to evaluate every row of the source.")));
	return psprintf("SELECT * FROM (%s) AS cr_evaluate_source WHERE %s >= %s",
					DatasetSourceQuery(source), quote_identifier(tp.split_column),
					quote_literal_cstr(tp.split_from));
}

/*
 * cr_evaluate(name, source, label, version DEFAULT NULL, split DEFAULT NULL)
 * returns jsonb: the holdout metric set of a model version on any labelled
 * rows (with split, on those at or after its cut-off).
 */
Datum
cr_evaluate(PG_FUNCTION_ARGS)
{
	EvalReceiver er;
	const CrCachedModel *entry;
	CrMetrics	metrics;
	StringInfoData buf;
	char	   *source;
	int32		version;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name, source and label must not be null")));
	version = RegistryVersionArg(fcinfo, 3);
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (PG_NARGS() > 4 && !PG_ARGISNULL(4))
		source = SplitSource(source, PG_GETARG_JSONB_P(4));
	entry = RegistryLookup(text_to_cstring(PG_GETARG_TEXT_PP(0)), version);

	EvalScan(&er, entry, source, text_to_cstring(PG_GETARG_TEXT_PP(2)), false, NULL,
			 "evaluation");

	MetricsCompute(er.prob, er.y, er.n, entry->model->scoring.threshold, &metrics);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"model_version\": ");
	escape_json(&buf, entry->version_label);
	appendStringInfoString(&buf, ", ");
	MetricsAppendJson(&buf, &metrics);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* ------------------------------------------------------------ calibration */

typedef struct PdRank
{
	double		pd;
	int64		row;
} PdRank;

/* PD order; ties in source order, so the groups are the same on every run */
static int
PdRankCmp(const void *a, const void *b)
{
	const PdRank *x = a;
	const PdRank *y = b;

	if (x->pd != y->pd)
		return x->pd < y->pd ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

static void
PutCalibrationRow(ReturnSetInfo *rsinfo, const char *section, const char *band,
				  int64 n, int64 defaults, double sum_pd, double lower, double upper,
				  double statistic, double p_value)
{
	Datum		values[10];
	bool		nulls[10] = {false};
	double		f[6] = {sum_pd / (double) n, (double) defaults / (double) n,
	lower, upper, statistic, p_value};

	values[0] = CStringGetTextDatum(section);
	if (band != NULL)
		values[1] = CStringGetTextDatum(band);
	else
		nulls[1] = true;
	values[2] = Int64GetDatum(n);
	values[3] = Int64GetDatum(defaults);
	for (int i = 0; i < 6; i++)
	{
		values[4 + i] = Float8GetDatum(f[i]);
		nulls[4 + i] = isnan(f[i]);
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * cr_calibration(name, source, label, version DEFAULT NULL, bins DEFAULT
 * 10): how well a version's PDs match the outcomes of labelled rows.
 * Rows of section
 *	 reliability	  per group of the rows in PD order (bins groups of equal
 *					  size): mean PD, observed rate, the PD range (lower,
 *					  upper) and the group's term of the Hosmer-Lemeshow sum
 *	 hosmer_lemeshow  the sum over the groups of (O - E)^2 / (E (1 - E/n))
 *					  and its p-value, chi-square with bins - 2 degrees of
 *					  freedom
 *	 binomial		  per risk category: P(X >= defaults) for X binomial
 *					  with the category's rows and mean PD (one-sided: a
 *					  small p-value says the PD is too low)
 *	 jeffreys		  per risk category: the Beta(d + 1/2, n - d + 1/2) CDF
 *					  at the mean PD, the posterior probability that the
 *					  default rate is below the PD (small: too low)
 * A risk category's lower and upper are its PD band from the model's cut-offs.
 */
Datum
cr_calibration(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EvalReceiver er;
	const CrCachedModel *entry;
	const CrScoring *sc;
	char	   *source;
	int32		version;
	int			bins;
	PdRank	   *rank;
	double		hl = 0.0;
	int64		total_d = 0;
	double		total_pd = 0.0;
	int64		band_n[CR_MAX_BANDS] = {0};
	int64		band_d[CR_MAX_BANDS] = {0};
	double		band_sum[CR_MAX_BANDS] = {0};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name, source and label must not be null")));
	version = RegistryVersionArg(fcinfo, 3);
	bins = PG_ARGISNULL(4) ? 10 : PG_GETARG_INT32(4);
	if (bins < 3 || bins > 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bins must be from 3 to 1000, not %d", bins),
				 errhint("The Hosmer-Lemeshow test has bins - 2 degrees of freedom.")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	entry = RegistryLookup(text_to_cstring(PG_GETARG_TEXT_PP(0)), version);
	InitMaterializedSRF(fcinfo, 0);

	EvalScan(&er, entry, source, text_to_cstring(PG_GETARG_TEXT_PP(2)), false, NULL,
			 "calibration");
	if (er.n < bins)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("calibration in %d bins needs at least %d rows, and the source has " INT64_FORMAT,
						bins, bins, er.n),
				 errhint("Pass fewer bins.")));

	rank = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(PdRank) * er.n);
	for (int64 i = 0; i < er.n; i++)
	{
		rank[i].pd = er.prob[i];
		rank[i].row = i;
		total_d += er.y[i] > 0.5;
		total_pd += er.prob[i];
	}
	qsort(rank, er.n, sizeof(PdRank), PdRankCmp);

	for (int g = 0; g < bins; g++)
	{
		int64		from = (int64) ((double) g * (double) er.n / bins);
		int64		to = (int64) ((double) (g + 1) * (double) er.n / bins);
		int64		n = to - from;
		int64		d = 0;
		double		e = 0.0;
		double		denom;
		double		term = NAN;
		char		band[16];

		CHECK_FOR_INTERRUPTS();
		for (int64 i = from; i < to; i++)
		{
			d += er.y[rank[i].row] > 0.5;
			e += rank[i].pd;
		}
		/*
		 * Every PD of the group 0 (or 1) leaves no variance: the term is 0
		 * when the outcomes agree exactly, else infinite (p-value 0), never
		 * left out, which would read as a perfect fit.
		 */
		denom = e * (1.0 - e / (double) n);
		if (denom > 0.0)
			term = ((double) d - e) * ((double) d - e) / denom;
		else
			term = (double) d == e ? 0.0 : INFINITY;
		hl += term;
		snprintf(band, sizeof(band), "%d", g + 1);
		PutCalibrationRow(rsinfo, "reliability", band, n, d, e, rank[from].pd, rank[to - 1].pd,
						  term, NAN);
	}
	PutCalibrationRow(rsinfo, "hosmer_lemeshow", NULL, er.n, total_d, total_pd, NAN, NAN, hl,
					  StatChiSquareUpper(hl, bins - 2));

	/* each row's risk category once, then both tests of each */
	sc = &entry->model->scoring;
	for (int64 i = 0; i < er.n; i++)
	{
		int			b = PredictBand(sc, er.prob[i]);

		band_n[b]++;
		band_d[b] += er.y[i] > 0.5;
		band_sum[b] += er.prob[i];
	}
	for (int pass = 0; pass < 2; pass++)
		for (int b = 0; b < sc->nbands; b++)
		{
			int64		n = band_n[b];
			int64		d = band_d[b];
			double		sum = band_sum[b];
			double		mean;

			if (n == 0)
				continue;
			mean = sum / (double) n;
			PutCalibrationRow(rsinfo, pass == 0 ? "binomial" : "jeffreys", sc->labels[b], n, d, sum,
							  b == 0 ? 0.0 : sc->cutoffs[b - 1],
							  b == sc->nbands - 1 ? 1.0 : sc->cutoffs[b], NAN,
							  pass == 0 ? StatBinomialUpper(d, n, mean)
							  : StatBetaCdf(mean, (double) d + 0.5, (double) (n - d) + 0.5));
		}
	return (Datum) 0;
}

/* ------------------------------------------------------------ fairness */

typedef struct FairnessOptions
{
	double		approve_below;	/* PD cut-off, or NaN: the first risk category */
	const char *label;
	int32		version;
	double		min_ratio;
} FairnessOptions;

/* One key of cr_fairness' params. */
static void
FairnessKey(const char *key, JsonbValue *v, void *arg)
{
	FairnessOptions *opt = (FairnessOptions *) arg;
	double		d;

	if (strcmp(key, "approve_below") == 0)
	{
		d = ParamsNumberValue(key, v, "a PD above 0 and below 1");
		if (!(d > 0.0 && d < 1.0))
			ParamsBadValue(key, "a PD above 0 and below 1");
		opt->approve_below = d;
	}
	else if (strcmp(key, "min_ratio") == 0)
	{
		d = ParamsNumberValue(key, v, "a ratio above 0 and at most 1");
		if (!(d > 0.0 && d <= 1.0))
			ParamsBadValue(key, "a ratio above 0 and at most 1");
		opt->min_ratio = d;
	}
	else if (strcmp(key, "version") == 0)
	{
		d = ParamsNumberValue(key, v, "a positive integer");
		if (!(d >= 1 && d <= PG_INT32_MAX) || d != floor(d))
			ParamsBadValue(key, "a positive integer");
		opt->version = (int32) d;
	}
	else if (strcmp(key, "label") == 0)
	{
		if (v->type != jbvString)
			ParamsBadValue(key, "a column name");
		opt->label = pnstrdup(v->val.string.val, v->val.string.len);
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown parameter \"%s\" for cr_fairness", key),
				 errhint("Known: approve_below, label, min_ratio, version.")));
}

static void
FairnessParse(Jsonb *params, FairnessOptions *opt)
{
	opt->approve_below = NAN;
	opt->label = NULL;
	opt->version = 0;
	opt->min_ratio = 0.8;
	ParamsEachKey(params, FairnessKey, opt);
}

typedef struct FairGroup
{
	const char *value;			/* NULL: the rows whose group is NULL */
	int64		n;
	int64		approved;
	double		sum_pd;
	int64		labelled;
	int64		defaults;
	double		auc;
	double		score_mean;
	double		score_var;		/* sample variance */
} FairGroup;

typedef struct GroupRank
{
	const char *group;
	int64		row;
} GroupRank;

/* by group text, NULL last; rows in source order within a group */
static int
GroupRankCmp(const void *a, const void *b)
{
	const GroupRank *x = a;
	const GroupRank *y = b;
	int			c;

	if (x->group == NULL || y->group == NULL)
		c = (x->group == NULL) - (y->group == NULL);
	else
		c = strcmp(x->group, y->group);
	if (c != 0)
		return c;
	return x->row < y->row ? -1 : x->row > y->row;
}

static bool
GroupSame(const char *a, const char *b)
{
	return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

/*
 * cr_fairness(name, source, group_column, params): per value of a column
 * of the source (never a feature the model needs), the approval rate at a
 * cut-off (params.approve_below, a PD; else the model's first risk
 * category), its ratio to the most favoured group's (flagged below
 * params.min_ratio, 0.8: the four-fifths rule), the mean PD and, with
 * params.label, the observed default rate and the AUC of the rows with a
 * label; and the standardized mean difference of the points score against
 * the most favoured group.
 */
Datum
cr_fairness(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EvalReceiver er;
	FairnessOptions opt;
	const CrCachedModel *entry;
	const CrScoring *sc;
	GroupRank  *rank;
	FairGroup  *groups;
	int64		ngroups = 0;
	int64		ref = 0;
	double	   *gp;
	double	   *gy;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name, source and group column must not be null")));
	FairnessParse(PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3), &opt);
	entry = RegistryLookup(text_to_cstring(PG_GETARG_TEXT_PP(0)), opt.version);
	InitMaterializedSRF(fcinfo, 0);
	EvalScan(&er, entry, text_to_cstring(PG_GETARG_TEXT_PP(1)), opt.label, true,
			 text_to_cstring(PG_GETARG_TEXT_PP(2)), "fairness");
	sc = &entry->model->scoring;

	rank = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(GroupRank) * er.n);
	for (int64 i = 0; i < er.n; i++)
	{
		rank[i].group = er.groups[i];
		rank[i].row = i;
	}
	qsort(rank, er.n, sizeof(GroupRank), GroupRankCmp);
	groups = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(FairGroup) * er.n);
	gp = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * er.n);
	gy = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * er.n);

	for (int64 from = 0; from < er.n;)
	{
		FairGroup  *g = &groups[ngroups++];
		int64		to = from;
		double		mean = 0.0;
		double		m2 = 0.0;

		CHECK_FOR_INTERRUPTS();
		memset(g, 0, sizeof(FairGroup));
		g->value = rank[from].group;
		while (to < er.n && GroupSame(rank[to].group, g->value))
			to++;
		for (int64 i = from; i < to; i++)
		{
			int64		r = rank[i].row;
			double		p = er.prob[r];
			double		score = (double) PredictPoints(sc, p);
			double		delta;

			g->n++;
			g->approved += isnan(opt.approve_below) ? PredictBand(sc, p) == 0 : p < opt.approve_below;
			g->sum_pd += p;
			/* Welford's running mean and variance */
			delta = score - mean;
			mean += delta / (double) g->n;
			m2 += delta * (score - mean);
			if (!isnan(er.y[r]))
			{
				gp[g->labelled] = p;
				gy[g->labelled] = er.y[r];
				g->labelled++;
				g->defaults += er.y[r] > 0.5;
			}
		}
		g->score_mean = mean;
		g->score_var = g->n > 1 ? m2 / (double) (g->n - 1) : NAN;
		g->auc = g->labelled > 0 ? MetricsAuc(gp, gy, g->labelled) : NAN;
		from = to;
	}

	/* the most favoured group: the highest approval rate, then the most rows */
	for (int64 k = 1; k < ngroups; k++)
	{
		double		rk = (double) groups[k].approved / (double) groups[k].n;
		double		rr = (double) groups[ref].approved / (double) groups[ref].n;

		if (rk > rr || (rk == rr && groups[k].n > groups[ref].n))
			ref = k;
	}

	for (int64 k = 0; k < ngroups; k++)
	{
		const FairGroup *g = &groups[k];
		const FairGroup *r = &groups[ref];
		double		rate = (double) g->approved / (double) g->n;
		double		ref_rate = (double) r->approved / (double) r->n;
		double		pooled = sqrt((g->score_var + r->score_var) / 2.0);
		Datum		values[12];
		bool		nulls[12] = {false};

		if (g->value != NULL)
			values[0] = CStringGetTextDatum(g->value);
		else
			nulls[0] = true;
		values[1] = Int64GetDatum(g->n);
		values[2] = Int64GetDatum(g->approved);
		values[3] = Float8GetDatum(rate);
		if (ref_rate > 0.0)
		{
			values[4] = Float8GetDatum(rate / ref_rate);
			values[5] = BoolGetDatum(rate / ref_rate < opt.min_ratio);
		}
		else
			nulls[4] = nulls[5] = true;
		values[6] = Float8GetDatum(g->sum_pd / (double) g->n);
		values[7] = Int64GetDatum(g->labelled);
		if (g->labelled > 0)
			values[8] = Float8GetDatum((double) g->defaults / (double) g->labelled);
		else
			nulls[8] = true;
		values[9] = Float8GetDatum(g->auc);
		nulls[9] = isnan(g->auc);
		if (k == ref)
			values[10] = Float8GetDatum(0.0);
		else if (pooled > 0.0)
			values[10] = Float8GetDatum((g->score_mean - r->score_mean) / pooled);
		else
			nulls[10] = true;
		values[11] = BoolGetDatum(k == ref);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * Every row of source scored by a version, with its label: the PDs and
 * labels (0 or 1) in source order, for the model report.
 */
int64
EvaluateScore(const CrCachedModel *entry, const char *source, const char *label,
			  double **prob, double **y)
{
	EvalReceiver er;

	EvalScan(&er, entry, source, label, false, NULL, "report");
	*prob = er.prob;
	*y = er.y;
	return er.n;
}
