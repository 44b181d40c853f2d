/*
 * train.c
 *	  cr_train: load, split, impute, fit, evaluate, encode and register a
 *	  model version, all in the caller's transaction; and cr_coefficients.
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

#include "dataset.h"
#include "logit.h"
#include "metrics.h"
#include "model.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_train);
PG_FUNCTION_INFO_V1(cr_coefficients);

typedef struct TrainParams
{
	double		holdout;
	int64		seed;
	char	   *key;
	CrLogitOptions logit;
	CrScoring	scoring;
} TrainParams;

static const char *const LogisticParams[] = {
	"holdout", "seed", "key", "l2", "max_iter", "tol", "threshold",
	"risk_cutoffs", "risk_labels", "score_points", "score_odds", "score_pdo"
};

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
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
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
			bool		known = false;

			key = pnstrdup(v.val.string.val, v.val.string.len);
			for (int i = 0; i < lengthof(LogisticParams); i++)
				known |= strcmp(key, LogisticParams[i]) == 0;
			if (!known)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown parameter \"%s\" for algorithm \"logistic\"", key),
						 errhint("Known parameters: holdout, seed, key, l2, max_iter, tol, threshold, risk_cutoffs, risk_labels, score_points, score_odds, score_pdo.")));
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
	}

	if (ncut >= 0 || nlab >= 0)
	{
		if (ncut < 0 || nlab < 0 || nlab != ncut + 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("params.risk_labels must have one more element than params.risk_cutoffs"),
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
	AppendKeyDouble(buf, ", \"l2\": ", tp->logit.l2);
	appendStringInfo(buf, ", \"max_iter\": %d", tp->logit.max_iter);
	AppendKeyDouble(buf, ", \"tol\": ", tp->logit.tol);
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
	AppendKeyDouble(buf, "], \"score_points\": ", tp->scoring.points_base);
	AppendKeyDouble(buf, ", \"score_odds\": ", tp->scoring.odds_base);
	AppendKeyDouble(buf, ", \"score_pdo\": ", tp->scoring.pdo);
	appendStringInfoChar(buf, '}');
}

/* -------------------------------------------------------------- helpers */

static uint64
SplitMix64(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

static inline double
UnitInterval(uint64 h)
{
	return (double) (h >> 11) * (1.0 / 9007199254740992.0);
}

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
	CrLogitFit *fit;
	CrModel		model;
	bytea	   *bytes;
	CrMetrics	eval;
	double		train_auc;
	StringInfoData params_json;
	StringInfoData metrics_json;
	StringInfoData importance_json;
	instr_time	start;
	instr_time	elapsed;
	instr_time	t_loaded;
	instr_time	t_fitted;
	Datum		result;

	INSTR_TIME_SET_CURRENT(start);

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
	if (strcmp(algorithm, "gbm") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("algorithm \"gbm\" is not available in this version of credit_risk"),
				 errhint("Train a logistic model: algorithm => 'logistic'.")));
	if (strcmp(algorithm, "logistic") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown algorithm \"%s\"", algorithm),
				 errhint("Use 'logistic'.")));

	ParseParams(PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5), &tp);

	memset(&spec, 0, sizeof(spec));
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

	/* holdout split: by key hash when a key is given, else by row order */
	holdout = MemoryContextAllocHuge(traincxt, sizeof(bool) * ds->nrows);
	for (int64 i = 0; i < ds->nrows; i++)
	{
		double		u = ds->keyhash
			? UnitInterval(ds->keyhash[i])
			: UnitInterval(SplitMix64(((uint64) tp.seed << 40) ^ (uint64) i));

		holdout[i] = u < tp.holdout;
		if (holdout[i])
			nhold++;
		else
			ntrain++;
	}
	if (tp.holdout > 0 && nhold == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout of %g selected no rows out of " INT64_FORMAT, tp.holdout, ds->nrows),
				 errhint("Use more rows, a larger holdout, or params.holdout = 0 to train and evaluate on every row.")));

	/* both classes among the training rows */
	{
		int64		pos = 0;

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

	/* missing values are imputed with the mean of the training rows */
	model.impute = palloc(sizeof(double) * p);
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
		model.impute[j] = sum / cnt;
	}

	fit = LogitFit(ds->nrows, p, ds->cols, ds->label, holdout, model.impute,
				   ds->names, &tp.logit);
	INSTR_TIME_SET_CURRENT(t_fitted);

	model.algorithm = CR_ALGO_LOGISTIC;
	model.nfeatures = p;
	model.features = ds->names;
	model.scoring = tp.scoring;
	model.coef = fit->coef;
	model.std_error = fit->std_error;

	/* score every row once: holdout metrics (or training ones) and train AUC */
	{
		double	   *x = palloc(sizeof(double) * p);
		bool		has_holdout = tp.holdout > 0;
		double	   *tp_prob = MemoryContextAllocHuge(traincxt, sizeof(double) * ntrain);
		double	   *tp_label = MemoryContextAllocHuge(traincxt, sizeof(double) * ntrain);
		double	   *hp_prob = has_holdout ? MemoryContextAllocHuge(traincxt, sizeof(double) * nhold) : NULL;
		double	   *hp_label = has_holdout ? MemoryContextAllocHuge(traincxt, sizeof(double) * nhold) : NULL;
		int64		h = 0,
					t = 0;

		for (int64 i = 0; i < ds->nrows; i++)
		{
			double		prob;

			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			for (int j = 0; j < p; j++)
				x[j] = ds->cols[j][i];
			prob = PredictProbability(&model, x);
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
		if (has_holdout)
		{
			MetricsCompute(hp_prob, hp_label, nhold, tp.scoring.threshold, &eval);
			train_auc = MetricsAuc(tp_prob, tp_label, ntrain);
		}
		else
		{
			MetricsCompute(tp_prob, tp_label, ntrain, tp.scoring.threshold, &eval);
			train_auc = eval.auc;
		}
	}

	bytes = ModelEncode(&model);

	initStringInfo(&params_json);
	AppendParamsJson(&params_json, &tp);

	initStringInfo(&metrics_json);
	appendStringInfo(&metrics_json, "{\"evaluated_on\": \"%s\", ",
					 tp.holdout > 0 ? "holdout" : "train");
	MetricsAppendJson(&metrics_json, &eval);
	AppendKeyDouble(&metrics_json, ", \"train_auc\": ", train_auc);
	appendStringInfo(&metrics_json, ", \"iterations\": %d", fit->iterations);
	AppendKeyDouble(&metrics_json, ", \"log_likelihood\": ", fit->log_likelihood);
	AppendKeyDouble(&metrics_json, ", \"null_log_likelihood\": ", fit->null_log_likelihood);
	AppendKeyDouble(&metrics_json, ", \"pseudo_r2\": ",
					1.0 - fit->log_likelihood / fit->null_log_likelihood);
	INSTR_TIME_SUBTRACT(t_fitted, t_loaded);
	INSTR_TIME_SUBTRACT(t_loaded, start);
	AppendKeyDouble(&metrics_json, ", \"load_seconds\": ", INSTR_TIME_GET_DOUBLE(t_loaded));
	AppendKeyDouble(&metrics_json, ", \"fit_seconds\": ", INSTR_TIME_GET_DOUBLE(t_fitted));
	appendStringInfoChar(&metrics_json, '}');

	/* importance of a logistic model: |coefficient| per standard deviation */
	initStringInfo(&importance_json);
	appendStringInfoChar(&importance_json, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(&importance_json, ", ");
		escape_json(&importance_json, ds->names[j]);
		AppendKeyDouble(&importance_json, ": ", fabs(fit->std_coef[j + 1]));
	}
	appendStringInfoChar(&importance_json, '}');

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	/* register the version */
	{
		Oid			lockargtypes[1] = {TEXTOID};
		Datum		lockargs[1];
		Oid			argtypes[12] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID,
		JSONBOID, JSONBOID, JSONBOID, INT8OID, INT8OID, FLOAT8OID, BYTEAOID};
		Datum		args[12];
		Datum	   *fnames = palloc(sizeof(Datum) * p);
		int			rc;
		HeapTuple	spitup;
		TupleDesc	spidesc;
		Datum	   *values;
		bool	   *nulls;
		HeapTuple	rettup;

		lockargs[0] = CStringGetTextDatum(name);
		rc = SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
								   "pg_catalog.hashtext('credit_risk:' OPERATOR(pg_catalog.||) $1))",
								   1, lockargtypes, lockargs, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not lock model name: %s", SPI_result_code_string(rc));

		for (int j = 0; j < p; j++)
			fnames[j] = CStringGetTextDatum(ds->names[j]);
		args[0] = CStringGetTextDatum(name);
		args[1] = CStringGetTextDatum(algorithm);
		args[2] = CStringGetTextDatum(source);
		args[3] = CStringGetTextDatum(label);
		args[4] = PointerGetDatum(construct_array(fnames, p, TEXTOID, -1, false, TYPALIGN_INT));
		args[5] = JsonbFromText(params_json.data);
		args[6] = JsonbFromText(metrics_json.data);
		args[7] = JsonbFromText(importance_json.data);
		args[8] = Int64GetDatum(ntrain);
		args[9] = Int64GetDatum(nhold);
		args[10] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(elapsed));
		args[11] = PointerGetDatum(bytes);

		rc = SPI_execute_with_args("INSERT INTO credit_risk.models"
								   " (name, version, algorithm, source, label, features, params,"
								   "  metrics, importance, train_rows, holdout_rows, train_seconds, model)"
								   " SELECT $1, COALESCE(pg_catalog.max(m.version), 0) OPERATOR(pg_catalog.+) 1,"
								   " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12"
								   " FROM credit_risk.models m WHERE m.name OPERATOR(pg_catalog.=) $1"
								   " RETURNING *",
								   12, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
			elog(ERROR, "could not register the model: %s", SPI_result_code_string(rc));

		/* build the result in the caller's context, matching columns by name */
		spitup = SPI_tuptable->vals[0];
		spidesc = SPI_tuptable->tupdesc;
		MemoryContextSwitchTo(callercxt);
		rettupdesc = BlessTupleDesc(rettupdesc);
		values = palloc0(sizeof(Datum) * rettupdesc->natts);
		nulls = palloc(sizeof(bool) * rettupdesc->natts);
		for (int i = 0; i < rettupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(rettupdesc, i);
			int			fno;

			nulls[i] = true;
			if (att->attisdropped)
				continue;
			fno = SPI_fnumber(spidesc, NameStr(att->attname));
			if (fno > 0)
				values[i] = SPI_getbinval(spitup, spidesc, fno, &nulls[i]);
		}
		rettup = heap_form_tuple(rettupdesc, values, nulls);
		result = HeapTupleGetDatum(rettup);
	}

	SPI_finish();
	MemoryContextDelete(traincxt);
	PG_RETURN_DATUM(result);
}

/* ------------------------------------------------------ cr_coefficients */

Datum
cr_coefficients(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	int32		version = 0;
	CrCachedModel *entry;
	const CrModel *m;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
	{
		version = PG_GETARG_INT32(1);
		if (version <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model version must be positive, not %d", version)));
	}

	InitMaterializedSRF(fcinfo, 0);
	entry = RegistryLookup(name, version);
	m = entry->model;
	if (m->algorithm != CR_ALGO_LOGISTIC)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is a %s model; coefficients exist only for logistic models",
						entry->version_label, ModelAlgorithmName(m->algorithm))));

	for (int j = 0; j <= m->nfeatures; j++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		double		b = m->coef[j];
		double		se = m->std_error[j];

		values[0] = CStringGetTextDatum(j == 0 ? "(intercept)" : m->features[j - 1]);
		values[1] = Float8GetDatum(b);
		if (isnan(se) || se <= 0.0)
		{
			nulls[2] = nulls[3] = nulls[4] = true;
		}
		else
		{
			double		z = b / se;

			values[2] = Float8GetDatum(se);
			values[3] = Float8GetDatum(z);
			values[4] = Float8GetDatum(erfc(fabs(z) / M_SQRT2));
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
