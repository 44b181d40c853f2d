/*
 * drift.c
 *	  Population stability against the baselines stored in a model: PSI and
 *	  KS per feature and for the score, in one pass over a source.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "binning.h"
#include "dataset.h"
#include "metrics.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_drift_score);
PG_FUNCTION_INFO_V1(cr_drift_baseline);
PG_FUNCTION_INFO_V1(cr_evaluate);

#define DRIFT_EPSILON	1e-4	/* share used for an empty bucket */

typedef struct DriftReceiver
{
	DestReceiver pub;
	const CrModel *model;
	const char *version_label;
	MemoryContext cxt;
	int		   *attnum;			/* per feature */
	Oid		   *atttype;
	double	   *x;
	int64	  **counts;			/* per feature and the score: value bins, then missing */
	int64		rows;
} DriftReceiver;

static void
DriftStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	DriftReceiver *dr = (DriftReceiver *) self;
	const CrModel *m = dr->model;
	MemoryContext old = MemoryContextSwitchTo(dr->cxt);
	dr->attnum = palloc(sizeof(int) * m->nfeatures);
	dr->atttype = palloc(sizeof(Oid) * m->nfeatures);
	dr->x = palloc(sizeof(double) * m->nfeatures);
	DatasetMapColumns(tupdesc, m->features, m->nfeatures, dr->version_label,
					  dr->attnum, dr->atttype);
	dr->counts = palloc(sizeof(int64 *) * (m->nfeatures + 1));
	for (int j = 0; j <= m->nfeatures; j++)
		dr->counts[j] = palloc0(sizeof(int64) * (m->baseline[j].ncuts + 2));
	MemoryContextSwitchTo(old);
}

static inline void
CountValue(const CrBaseline *b, int64 *counts, double v)
{
	CrBinEdges	e;

	if (isnan(v))
	{
		counts[b->ncuts + 1]++;
		return;
	}
	e.ncuts = b->ncuts;
	e.cuts = b->cuts;
	counts[BinValue(&e, v)]++;
}

static bool
DriftReceive(TupleTableSlot *slot, DestReceiver *self)
{
	DriftReceiver *dr = (DriftReceiver *) self;
	const CrModel *m = dr->model;

	if ((dr->rows++ & 0x3FF) == 0)
		CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);
	for (int j = 0; j < m->nfeatures; j++)
	{
		int			a = dr->attnum[j];
		double		v = NAN;

		if (!slot->tts_isnull[a])
		{
			v = DatasetDatumToDouble(slot->tts_values[a], dr->atttype[j]);
			if (isinf(v))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is %s in source row " INT64_FORMAT,
								m->features[j], v > 0 ? "Infinity" : "-Infinity", dr->rows)));
		}
		dr->x[j] = v;
		CountValue(&m->baseline[j], dr->counts[j], v);
	}
	CountValue(&m->baseline[m->nfeatures], dr->counts[m->nfeatures],
			   PredictProbability(m, dr->x));
	return true;
}

/*
 * PSI = sum over buckets (value bins, then missing) of (a - e) ln(a / e),
 * with a and e the actual and expected shares, each at least DRIFT_EPSILON;
 * KS = the largest gap between the cumulative shares over the same buckets.
 */
static void
DriftStatistics(const CrBaseline *b, const int64 *counts, int64 rows,
				double *psi, double *ks)
{
	double		cum_a = 0.0,
				cum_e = 0.0;

	*psi = 0.0;
	*ks = 0.0;
	for (int i = 0; i <= b->ncuts + 1; i++)
	{
		double		e = i <= b->ncuts ? b->shares[i] : b->missing;
		double		a = (double) counts[i] / rows;
		double		ea = Max(e, DRIFT_EPSILON);
		double		aa = Max(a, DRIFT_EPSILON);

		*psi += (aa - ea) * log(aa / ea);
		cum_a += a;
		cum_e += e;
		if (fabs(cum_a - cum_e) > *ks)
			*ks = fabs(cum_a - cum_e);
	}
}

static const char *
Severity(const CrModel *m, double psi)
{
	if (psi < m->drift_moderate)
		return "stable";
	if (psi <= m->drift_major)
		return "moderate";
	return "major";
}

static const CrCachedModel *
ModelWithBaseline(const char *name)
{
	CrCachedModel *entry = RegistryLookup(name, 0);

	if (entry->model->baseline == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model %s has no drift baseline", entry->version_label),
				 errdetail("Its bytes were written before credit_risk stored baselines with each model."),
				 errhint("Train a new version to measure drift against.")));
	return entry;
}

/*
 * cr_drift_score(name, source): one row per feature, then "__score__":
 * feature, psi, ks, severity (stable below the model's moderate threshold,
 * 0.10 by default; major above its major one, 0.25 by default).
 */
Datum
cr_drift_score(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const CrCachedModel *entry;
	const CrModel *m;
	DriftReceiver dr;
	char	   *source;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name and source must not be null")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	InitMaterializedSRF(fcinfo, 0);
	entry = ModelWithBaseline(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	m = entry->model;

	memset(&dr, 0, sizeof(dr));
	DatasetInitReceiver(&dr.pub, DriftStartup, DriftReceive);
	dr.model = m;
	dr.version_label = entry->version_label;
	dr.cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	DatasetRunQuery(DatasetSourceQuery(source), source, &dr.pub, true, false, "drift");
	SPI_finish();

	if (dr.rows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("drift source returned no rows"),
				 errdetail("Source: %s", source)));

	for (int j = 0; j <= m->nfeatures; j++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		double		psi,
					ks;

		DriftStatistics(&m->baseline[j], dr.counts[j], dr.rows, &psi, &ks);
		values[0] = CStringGetTextDatum(j < m->nfeatures ? m->features[j] : "__score__");
		values[1] = Float8GetDatum(psi);
		values[2] = Float8GetDatum(ks);
		values[3] = CStringGetTextDatum(Severity(m, psi));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * cr_drift_baseline(name): the stored bins, one row per bucket: feature,
 * bucket (0-based; the last one of each feature is "missing"), lower and
 * upper bound (NULL where open), expected share.
 */
Datum
cr_drift_baseline(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const CrModel *m;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be null")));
	InitMaterializedSRF(fcinfo, 0);
	m = ModelWithBaseline(text_to_cstring(PG_GETARG_TEXT_PP(0)))->model;

	for (int j = 0; j <= m->nfeatures; j++)
	{
		const CrBaseline *b = &m->baseline[j];

		for (int i = 0; i <= b->ncuts + 1; i++)
		{
			Datum		values[6];
			bool		nulls[6] = {false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(j < m->nfeatures ? m->features[j] : "__score__");
			values[1] = Int32GetDatum(i);
			values[2] = BoolGetDatum(i > b->ncuts);
			if (i == 0 || i > b->ncuts)
				nulls[3] = true;
			else
				values[3] = Float8GetDatum(b->cuts[i - 1]);
			if (i >= b->ncuts)
				nulls[4] = true;
			else
				values[4] = Float8GetDatum(b->cuts[i]);
			values[5] = Float8GetDatum(i <= b->ncuts ? b->shares[i] : b->missing);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------ evaluate */

typedef struct EvalReceiver
{
	DestReceiver pub;
	const CrModel *model;
	const char *label;
	const char *version_label;
	MemoryContext cxt;
	int		   *attnum;
	Oid		   *atttype;
	int			labelatt;
	Oid			labeltype;
	double	   *x;
	double	   *prob;
	double	   *y;
	int64		n;
	int64		cap;
} EvalReceiver;

static void
EvalStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	EvalReceiver *er = (EvalReceiver *) self;
	DriftReceiver dr;

	/* the features are mapped as for drift */
	memset(&dr, 0, sizeof(dr));
	dr.model = er->model;
	dr.version_label = er->version_label;
	dr.cxt = er->cxt;
	er->labelatt = DatasetRequireColumn(tupdesc, er->label, "label");
	er->labeltype = TupleDescAttr(tupdesc, er->labelatt)->atttypid;
	if (!DatasetTypeIsNumeric(er->labeltype) && er->labeltype != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" has type %s, not a number or boolean",
						er->label, format_type_be(er->labeltype))));
	DriftStartup(&dr.pub, operation, tupdesc);
	er->attnum = dr.attnum;
	er->atttype = dr.atttype;
	er->x = dr.x;
	er->cap = 1024;
	er->prob = MemoryContextAllocHuge(er->cxt, sizeof(double) * er->cap);
	er->y = MemoryContextAllocHuge(er->cxt, sizeof(double) * er->cap);
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
	if (slot->tts_isnull[er->labelatt])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("label column \"%s\" is NULL in source row " INT64_FORMAT,
						er->label, er->n + 1),
				 errhint("Evaluate on applicants whose outcome is known.")));
	y = DatasetDatumToDouble(slot->tts_values[er->labelatt], er->labeltype);
	if (y != 0.0 && y != 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label column \"%s\" holds %g in source row " INT64_FORMAT ", not 0 or 1",
						er->label, y, er->n + 1)));
	for (int j = 0; j < m->nfeatures; j++)
	{
		int			a = er->attnum[j];

		er->x[j] = slot->tts_isnull[a] ? NAN
			: DatasetDatumToDouble(slot->tts_values[a], er->atttype[j]);
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
	}
	er->prob[er->n] = PredictProbability(m, er->x);
	er->y[er->n] = y;
	er->n++;
	return true;
}

/*
 * cr_evaluate(name, source, label, version DEFAULT NULL) returns jsonb: the
 * holdout metric set of a model version on any labelled rows.
 */
Datum
cr_evaluate(PG_FUNCTION_ARGS)
{
	EvalReceiver er;
	const CrCachedModel *entry;
	CrMetrics	metrics;
	StringInfoData buf;
	char	   *source;
	int32		version = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name, source and label must not be null")));
	if (!PG_ARGISNULL(3))
	{
		version = PG_GETARG_INT32(3);
		if (version <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("model version must be positive, not %d", version)));
	}
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	entry = RegistryLookup(text_to_cstring(PG_GETARG_TEXT_PP(0)), version);

	memset(&er, 0, sizeof(er));
	DatasetInitReceiver(&er.pub, EvalStartup, EvalReceive);
	er.model = entry->model;
	er.version_label = entry->version_label;
	er.label = text_to_cstring(PG_GETARG_TEXT_PP(2));
	er.cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	DatasetRunQuery(DatasetSourceQuery(source), source, &er.pub, true, false, "evaluation");
	SPI_finish();

	if (er.n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("evaluation source returned no rows"),
				 errdetail("Source: %s", source)));

	MetricsCompute(er.prob, er.y, er.n, entry->model->scoring.threshold, &metrics);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"model_version\": ");
	escape_json(&buf, entry->version_label);
	appendStringInfoString(&buf, ", ");
	MetricsAppendJson(&buf, &metrics);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
