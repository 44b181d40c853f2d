/*
 * evaluate.c
 *	  cr_evaluate: the holdout metric set (AUC, KS, Gini, log loss, Brier,
 *	  confusion counts) of a model version on any labelled rows.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "dataset.h"
#include "metrics.h"
#include "params.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_evaluate);

typedef struct EvalReceiver
{
	DestReceiver pub;
	const CrModel *model;
	const char *label;
	const char *version_label;
	MemoryContext cxt;
	int		   *attnum;
	Oid		   *atttype;
	FmgrInfo   *outfunc;
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
	const CrModel *m = er->model;
	MemoryContext old;

	er->labelatt = DatasetRequireColumn(tupdesc, er->label, "label");
	er->labeltype = TupleDescAttr(tupdesc, er->labelatt)->atttypid;
	if (!DatasetTypeIsNumeric(er->labeltype) && er->labeltype != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" has type %s, not a number or boolean",
						er->label, format_type_be(er->labeltype))));
	old = MemoryContextSwitchTo(er->cxt);
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
	}
	er->prob[er->n] = PredictProbability(m, er->x);
	er->y[er->n] = y;
	er->n++;
	return true;
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

	memset(&er, 0, sizeof(er));
	DatasetInitReceiver(&er.pub, EvalStartup, EvalReceive);
	er.model = entry->model;
	er.version_label = entry->version_label;
	er.label = text_to_cstring(PG_GETARG_TEXT_PP(2));
	er.cxt = CurrentMemoryContext;

	DatasetScanSource(source, &er.pub, "evaluation");

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
