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

#include "credit_risk.h"
#include "dataset.h"
#include "binning.h"
#include "random.h"
#include "gbm.h"
#include "hugemem.h"
#include "logit.h"
#include "metrics.h"
#include "model.h"
#include "params.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_train);
PG_FUNCTION_INFO_V1(cr_coefficients);

/* Append a JSON fragment: prefix (e.g. ", \"key\": ") then the number. */
static void
AppendKeyDouble(StringInfo buf, const char *prefix, double v)
{
	appendStringInfoString(buf, prefix);
	CrAppendDouble(buf, v);
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

/* --------------------------------------------------------- baselines */

#define DRIFT_BINS		10		/* deciles */

/*
 * The distribution of one column over the rows not excluded: decile cut
 * points (fewer when the column has few distinct values), the share of rows
 * in each bin, and the share missing.
 */
static void
BaselineBuild(CrBaseline *b, const double *x, const bool *exclude, int64 n,
			  uint64 seed)
{
	double	   *work = HugeAlloc(sizeof(double) * Min(Max(n, 1), 131072));
	double		cuts[DRIFT_BINS];
	CrBinEdges	e;
	int64	   *count;
	int64		rows = 0,
				missing = 0;

	b->ncuts = BinFindCuts(x, exclude, n, DRIFT_BINS, 131072, seed, work, cuts);
	HugeFree(work);
	b->cuts = palloc(sizeof(double) * Max(b->ncuts, 1));
	memcpy(b->cuts, cuts, sizeof(double) * b->ncuts);
	b->shares = palloc0(sizeof(double) * (b->ncuts + 1));
	count = palloc0(sizeof(int64) * (b->ncuts + 1));
	e.ncuts = b->ncuts;
	e.cuts = b->cuts;
	for (int64 i = 0; i < n; i++)
	{
		if (exclude != NULL && exclude[i])
			continue;
		rows++;
		if (isnan(x[i]))
			missing++;
		else
			count[BinValue(&e, x[i])]++;
	}
	for (int i = 0; i <= b->ncuts; i++)
		b->shares[i] = rows > 0 ? (double) count[i] / rows : 0.0;
	b->missing = rows > 0 ? (double) missing / rows : 0.0;
	pfree(count);
}

/* --------------------------------------------------------- the fitters */

/* Logistic regression: fit, score every row, metrics and importance. */
static void
TrainLogistic(CrDataset *ds, const bool *holdout, int64 ntrain, int64 nhold,
			  const CrTrainParams *tp, CrModel *model, CrMetrics *eval,
			  double *train_auc, StringInfo extra, StringInfo importance,
			  double **eval_prob, int64 *neval)
{
	int			p = ds->nfeatures;
	CrLogitFit *fit;
	double	   *x = palloc(sizeof(double) * p);
	bool		has_holdout = tp->holdout > 0;
	double	   *tp_prob;
	double	   *tp_label;
	double	   *hp_prob = NULL;
	double	   *hp_label = NULL;
	int64		h = 0,
				t = 0;

	fit = LogitFit(ds->nrows, p, ds->cols, ds->label, holdout, model->impute,
				   ds->names, &tp->logit);
	model->algorithm = CR_ALGO_LOGISTIC;
	model->coef = fit->coef;
	model->std_error = fit->std_error;

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
	if (has_holdout)
	{
		MetricsCompute(hp_prob, hp_label, nhold, tp->scoring.threshold, eval);
		*train_auc = MetricsAuc(tp_prob, tp_label, ntrain);
		*eval_prob = hp_prob;
		*neval = nhold;
	}
	else
	{
		MetricsCompute(tp_prob, tp_label, ntrain, tp->scoring.threshold, eval);
		*train_auc = eval->auc;
		*eval_prob = tp_prob;
		*neval = ntrain;
	}

	appendStringInfo(extra, ", \"iterations\": %d", fit->iterations);
	AppendKeyDouble(extra, ", \"log_likelihood\": ", fit->log_likelihood);
	AppendKeyDouble(extra, ", \"null_log_likelihood\": ", fit->null_log_likelihood);
	AppendKeyDouble(extra, ", \"pseudo_r2\": ",
					1.0 - fit->log_likelihood / fit->null_log_likelihood);

	/* importance of a logistic model: |coefficient| per standard deviation */
	appendStringInfoChar(importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(importance, ", ");
		escape_json(importance, ds->names[j]);
		AppendKeyDouble(importance, ": ", fabs(fit->std_coef[j + 1]));
	}
	appendStringInfoChar(importance, '}');
}

/* Gradient-boosted trees: fit, metrics from the trainer's own scores. */
static void
TrainGbm(CrDataset *ds, const bool *holdout, CrTrainParams *tp, CrModel *model,
		 CrMetrics *eval, double *train_auc, StringInfo extra,
		 StringInfo importance, double **eval_prob, int64 *neval)
{
	int			p = ds->nfeatures;
	CrGbmResult *res;

	tp->gbm.seed = (uint64) tp->seed;
	tp->gbm.monotone = ParamsMonotone(tp, ds->names, ds->nfeatures);
	res = GbmFit(ds, holdout, &tp->gbm);

	model->algorithm = CR_ALGO_GBM;
	model->ntrees = res->forest.ntrees;
	model->base_margin = res->forest.base_margin;
	model->tree_start = res->forest.tree_start;
	model->node_feature = res->forest.feature;
	model->node_threshold = res->forest.threshold;
	model->node_left = res->forest.left;
	model->node_right = res->forest.right;
	model->node_default_left = res->forest.default_left;
	model->node_value = res->forest.value;
	model->node_cover = res->forest.cover;

	if (res->nholdout > 0)
	{
		MetricsCompute(res->holdout_prob, res->holdout_label, res->nholdout,
					   tp->scoring.threshold, eval);
		*train_auc = MetricsAuc(res->train_prob, res->train_label, res->ntrain);
		*eval_prob = res->holdout_prob;
		*neval = res->nholdout;
	}
	else
	{
		MetricsCompute(res->train_prob, res->train_label, res->ntrain,
					   tp->scoring.threshold, eval);
		*train_auc = eval->auc;
		*eval_prob = res->train_prob;
		*neval = res->ntrain;
	}

	appendStringInfo(extra, ", \"n_trees\": %d, \"trees_built\": %d, \"best_iteration\": %d",
					 res->forest.ntrees, res->trees_built, res->best_iteration);
	if (!isnan(res->best_score))
		AppendKeyDouble(extra, ", \"best_holdout_log_loss\": ", res->best_score);
	appendStringInfo(extra, ", \"nodes\": %d, \"threads\": %d",
					 res->forest.tree_start[res->forest.ntrees], res->threads_used);
	AppendKeyDouble(extra, ", \"bin_seconds\": ", res->bin_seconds);

	/* importance: total gain, total cover and split count per feature */
	appendStringInfoChar(importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(importance, ", ");
		escape_json(importance, ds->names[j]);
		AppendKeyDouble(importance, ": {\"gain\": ", res->gain[j]);
		AppendKeyDouble(importance, ", \"cover\": ", res->cover[j]);
		appendStringInfo(importance, ", \"splits\": " INT64_FORMAT "}", res->splits[j]);
	}
	appendStringInfoChar(importance, '}');
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
	CrTrainParams tp;
	CrDatasetSpec spec;
	CrDataset  *ds;
	int			p;
	bool	   *holdout;
	int64		ntrain = 0;
	int64		nhold = 0;
	CrModel		model;
	bytea	   *bytes;
	CrMetrics	eval;
	double		train_auc;
	StringInfoData metrics_json;
	StringInfoData importance_json;
	StringInfoData extra_json;
	double	   *eval_prob = NULL;
	int64		neval = 0;
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

	ParamsParse(PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5), &tp);

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

	/* holdout split: by key hash when a key is given, else by row order */
	holdout = MemoryContextAllocHuge(traincxt, sizeof(bool) * ds->nrows);
	for (int64 i = 0; i < ds->nrows; i++)
	{
		double		u = ds->keyhash
			? CrUnit(ds->keyhash[i])
			: CrUnit(CrMix64(((uint64) tp.seed << 40) ^ (uint64) i));

		holdout[i] = u < tp.holdout;
		if (holdout[i])
			nhold++;
		else
			ntrain++;
	}
	if (ntrain == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout of %.15g leaves no training rows out of " INT64_FORMAT, tp.holdout, ds->nrows),
				 errhint("Use a smaller params.holdout.")));
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
		if (!isfinite(model.impute[j]))
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
			model.impute[j] = sum;
			if (!isfinite(model.impute[j]))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("the mean of feature column \"%s\" is out of range for type double precision",
								ds->names[j]),
						 errhint("Scale the column down.")));
		}
	}

	model.nfeatures = p;
	model.features = ds->names;
	model.scoring = tp.scoring;
	initStringInfo(&extra_json);
	initStringInfo(&importance_json);
	/* drift baselines of the features, from the training rows (before a tree fit frees them) */
	model.baseline = palloc0(sizeof(CrBaseline) * (p + 1));
	model.drift_moderate = tp.drift_moderate;
	model.drift_major = tp.drift_major;
	for (int j = 0; j < p; j++)
	{
		CHECK_FOR_INTERRUPTS();
		BaselineBuild(&model.baseline[j], ds->cols[j], holdout, ds->nrows, tp.seed + j);
	}

	if (tp.algorithm == CR_ALGO_LOGISTIC)
		TrainLogistic(ds, holdout, ntrain, nhold, &tp, &model, &eval, &train_auc,
					  &extra_json, &importance_json, &eval_prob, &neval);
	else
		TrainGbm(ds, holdout, &tp, &model, &eval, &train_auc,
				 &extra_json, &importance_json, &eval_prob, &neval);
	INSTR_TIME_SET_CURRENT(t_fitted);

	/* ... and of the score, on the rows the metrics were computed on */
	BaselineBuild(&model.baseline[p], eval_prob, NULL, neval, tp.seed);

	bytes = ModelEncode(&model);

	initStringInfo(&metrics_json);
	appendStringInfo(&metrics_json, "{\"evaluated_on\": \"%s\", ",
					 tp.holdout > 0 ? "holdout" : "train");
	MetricsAppendJson(&metrics_json, &eval);
	AppendKeyDouble(&metrics_json, ", \"train_auc\": ", train_auc);
	appendStringInfoString(&metrics_json, extra_json.data);
	INSTR_TIME_SUBTRACT(t_fitted, t_loaded);
	INSTR_TIME_SUBTRACT(t_loaded, start);
	AppendKeyDouble(&metrics_json, ", \"load_seconds\": ", INSTR_TIME_GET_DOUBLE(t_loaded));
	AppendKeyDouble(&metrics_json, ", \"fit_seconds\": ", INSTR_TIME_GET_DOUBLE(t_fitted));
	appendStringInfoChar(&metrics_json, '}');

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);

	/*
	 * Register the version, as the registry's owner (see registry_write.c).
	 * The first version of a name becomes its champion; a later one is a
	 * candidate until promoted, so training never changes which version
	 * serves.  A name registered before that rule, with versions but no
	 * champion, first gets the version that serves it now (the newest) as
	 * its champion.
	 */
	{
		Oid			argtypes[13] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID,
			JSONBOID, JSONBOID, JSONBOID, INT8OID, INT8OID, FLOAT8OID, BYTEAOID, TEXTOID};
		Datum		args[13];
		Datum	   *fnames = palloc(sizeof(Datum) * p);
		int			rc;
		CrAsOwner	as_owner;
		HeapTuple	spitup;
		TupleDesc	spidesc;

		for (int j = 0; j < p; j++)
			fnames[j] = CStringGetTextDatum(ds->names[j]);
		args[0] = CStringGetTextDatum(name);
		args[1] = CStringGetTextDatum(algorithm);
		args[2] = CStringGetTextDatum(source);
		args[3] = CStringGetTextDatum(label);
		args[4] = PointerGetDatum(construct_array(fnames, p, TEXTOID, -1, false, TYPALIGN_INT));
		args[5] = JsonbPGetDatum(ParamsToJsonb(&tp));
		args[6] = JsonbFromText(metrics_json.data);
		args[7] = JsonbFromText(importance_json.data);
		args[8] = Int64GetDatum(ntrain);
		args[9] = Int64GetDatum(nhold);
		args[10] = Float8GetDatum(INSTR_TIME_GET_DOUBLE(elapsed));
		args[11] = PointerGetDatum(bytes);

		RegistryBeginAsOwner(&as_owner);
		args[12] = CStringGetTextDatum(as_owner.caller);
		rc = SPI_execute_with_args("SELECT pg_catalog.pg_advisory_xact_lock("
								   "pg_catalog.hashtext('credit_risk:' OPERATOR(pg_catalog.||) $1))",
								   1, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not lock model name: %s", SPI_result_code_string(rc));
		rc = SPI_execute_with_args("UPDATE credit_risk.models m SET status = 'champion'"
								   " WHERE m.id OPERATOR(pg_catalog.=) (SELECT n.id FROM credit_risk.models n"
								   "   WHERE n.name OPERATOR(pg_catalog.=) $1"
								   "   ORDER BY n.version DESC LIMIT 1)"
								   " AND NOT EXISTS (SELECT FROM credit_risk.models c"
								   "   WHERE c.name OPERATOR(pg_catalog.=) $1"
								   "   AND c.status OPERATOR(pg_catalog.=) 'champion')",
								   1, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_UPDATE)
			elog(ERROR, "could not register the model: %s", SPI_result_code_string(rc));
		rc = SPI_execute_with_args("INSERT INTO credit_risk.models"
								   " (name, version, algorithm, source, label, features, params,"
								   "  metrics, importance, train_rows, holdout_rows, train_seconds, model,"
								   "  status, created_by)"
								   " SELECT $1, COALESCE(pg_catalog.max(m.version), 0) OPERATOR(pg_catalog.+) 1,"
								   " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
								   " CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 0"
								   "  THEN 'champion' ELSE 'candidate' END, $13"
								   " FROM credit_risk.models m WHERE m.name OPERATOR(pg_catalog.=) $1"
								   " RETURNING *",
								   13, argtypes, args, NULL, false, 0);
		RegistryEndAsOwner(&as_owner);
		if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
			elog(ERROR, "could not register the model: %s", SPI_result_code_string(rc));

		/* the result in the caller's context, columns matched by name */
		spitup = SPI_tuptable->vals[0];
		spidesc = SPI_tuptable->tupdesc;
		MemoryContextSwitchTo(callercxt);
		result = HeapTupleGetDatum(RegistryResultTuple(BlessTupleDesc(rettupdesc),
													   spitup, spidesc));
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
