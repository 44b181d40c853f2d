/*
 * predict.c
 *	  cr_predict in its array, row, jsonb and model-as-value forms.
 *
 * Each call site keeps its state in fn_extra: the model it resolved for the
 * current statement, the mapping from the model's features to the columns
 * of the applicant row type, and scratch arrays, so scoring a row
 * allocates nothing.
 */
#include "postgres.h"

#include <math.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CR_AVX512_SCORER 1
#endif

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "credit_risk.h"
#include "dataset.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_predict_array);
PG_FUNCTION_INFO_V1(cr_predict_record);
PG_FUNCTION_INFO_V1(cr_predict_jsonb);
PG_FUNCTION_INFO_V1(cr_predict_bytes_array);
PG_FUNCTION_INFO_V1(cr_predict_bytes_record);
PG_FUNCTION_INFO_V1(cr_predict_batch);

typedef struct PredictState
{
	/* model resolved by name for the current statement */
	char	   *name;
	CrStamp		stamp;
	CrCachedModel *entry;

	/* model passed as a TOASTed value: the pointer it came from */
	bool		have_toast;
	struct varatt_external toast;

	/* applicant row type and its mapping to the model's features */
	Oid			rowtype;
	int32		rowtypmod;
	const CrModel *mapped_for;
	int			natts;
	int		   *attnum;			/* per feature: 0-based column */
	Oid		   *atttype;		/* per feature */
	TupleDesc	tupdesc;		/* copy of the applicant row's descriptor */
	Datum	   *values;			/* natts */
	bool	   *nulls;			/* natts */

	double	   *x;				/* nfeatures scratch */
	int			xcap;

	/* champion/challenger route of the name, for the current statement */
	CrStamp		route_stamp;
	bool		route_valid;
	CrCachedModel *challenger;
	double		share;
} PredictState;

static PredictState *
GetState(FunctionCallInfo fcinfo)
{
	PredictState *st = (PredictState *) fcinfo->flinfo->fn_extra;

	if (st == NULL)
	{
		st = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PredictState));
		fcinfo->flinfo->fn_extra = st;
	}
	return st;
}

static double *
Scratch(FunctionCallInfo fcinfo, PredictState *st, int n)
{
	if (st->xcap < n)
	{
		st->x = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(double) * n);
		st->xcap = n;
	}
	return st->x;
}

/* Resolve a model by name once per statement and call site. */
static CrCachedModel *
ResolveByName(FunctionCallInfo fcinfo, PredictState *st, text *name)
{
	CrStamp		now;
	char	   *cname;

	RegistryStamp(&now);
	if (st->entry != NULL && RegistryStampEqual(&now, &st->stamp) &&
		strlen(st->name) == VARSIZE_ANY_EXHDR(name) &&
		memcmp(st->name, VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)) == 0)
		return st->entry;

	cname = text_to_cstring(name);
	st->entry = NULL;
	st->entry = RegistryLookup(cname, 0);
	if (st->name)
		pfree(st->name);
	st->name = MemoryContextStrdup(fcinfo->flinfo->fn_mcxt, cname);
	st->stamp = now;
	return st->entry;
}

/* The name's challenger route, once per statement (after ResolveByName). */
static CrCachedModel *
ResolveRoute(PredictState *st, double *share)
{
	CrStamp		now;

	RegistryStamp(&now);
	if (!st->route_valid || !RegistryStampEqual(&now, &st->route_stamp))
	{
		st->challenger = NULL;
		st->challenger = RegistryRoute(st->name, &st->share);
		st->route_stamp = now;
		st->route_valid = true;
	}
	*share = st->share;
	return st->challenger;
}

/* Resolve a model passed as bytes, skipping the detoast when possible. */
static CrCachedModel *
ResolveByBytes(FunctionCallInfo fcinfo, PredictState *st, Datum d)
{
	struct varlena *raw = (struct varlena *) DatumGetPointer(d);
	CrStamp		now;
	bytea	   *bytes;
	CrCachedModel *entry;

	RegistryStamp(&now);
	if (VARATT_IS_EXTERNAL_ONDISK(raw))
	{
		struct varatt_external ptr;

		VARATT_EXTERNAL_GET_POINTER(ptr, raw);
		if (st->have_toast && st->entry != NULL &&
			RegistryStampEqual(&now, &st->stamp) &&
			ptr.va_valueid == st->toast.va_valueid &&
			ptr.va_toastrelid == st->toast.va_toastrelid)
			return st->entry;
		bytes = DatumGetByteaPP(d);
		entry = RegistryFromBytes(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
		st->toast = ptr;
		st->have_toast = true;
	}
	else
	{
		bytes = DatumGetByteaPP(d);
		entry = RegistryFromBytes(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
		st->have_toast = false;
	}
	if ((Pointer) bytes != DatumGetPointer(d))
		pfree(bytes);
	st->entry = entry;
	st->stamp = now;
	return entry;
}

/*
 * base_margin plus the dense trees' leaf values for one row's codes, added
 * in tree order.  Four trees are walked at once: one row's walk is a chain
 * of dependent loads, and four independent chains let the CPU overlap them.
 * (No straight-line vectorizing: see ScoreDenseBlock.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static double
DenseMargin(const CrModel *m, const uint16 *code)
{
	int			D = m->dense_depth;
	int			nint = (1 << D) - 1;
	double		margin = m->base_margin;
	int			t = 0;

	for (; t + 4 <= m->ntrees; t += 4)
	{
		const uint32 *n0 = m->dense_node + (Size) t * nint;
		const uint32 *n1 = n0 + nint;
		const uint32 *n2 = n1 + nint;
		const uint32 *n3 = n2 + nint;
		const double *leaf = m->dense_leaf + (Size) t * (nint + 1);
		uint32		i0 = 0, i1 = 0, i2 = 0, i3 = 0;

		for (int d = 0; d < D; d++)
		{
			uint32		w0 = n0[i0], w1 = n1[i1], w2 = n2[i2], w3 = n3[i3];

			i0 = 2 * i0 + 1 + (code[w0 >> 16] > (w0 & 0xFFFF));
			i1 = 2 * i1 + 1 + (code[w1 >> 16] > (w1 & 0xFFFF));
			i2 = 2 * i2 + 1 + (code[w2 >> 16] > (w2 & 0xFFFF));
			i3 = 2 * i3 + 1 + (code[w3 >> 16] > (w3 & 0xFFFF));
		}
		/* leaf i of tree t + r is at r * (nint + 1) + i - nint */
		margin += leaf[i0 - nint];
		margin += leaf[i1 + 1];
		margin += leaf[i2 + nint + 2];
		margin += leaf[i3 + 2 * nint + 3];
	}
	for (; t < m->ntrees; t++)
		margin += m->dense_leaf[(Size) t * (nint + 1) +
								ModelDenseWalk(m->dense_node + (Size) t * nint, D, code)];
	return margin;
}

double
PredictProbability(const CrModel *model, const double *x)
{
	switch (model->algorithm)
	{
		case CR_ALGO_LOGISTIC:
			{
				const double *coef = model->coef;
				double		eta = coef[0];

				for (int j = 0; j < model->nfeatures; j++)
				{
					double		v = isnan(x[j]) ? model->impute[j] : x[j];

					eta += coef[j + 1] * v;
				}
				return 1.0 / (1.0 + exp(-eta));
			}
		case CR_ALGO_GBM:
			{
				double		margin = model->base_margin;

				if (model->dense_depth > 0)
				{
					uint16	   *code = model->dense_code;

					for (int j = 0; j < model->nfeatures; j++)
						ModelDenseSetCode(model, code, j, x[j]);
					return 1.0 / (1.0 + exp(-DenseMargin(model, code)));
				}

				/* the decoder guarantees every walk ends at a leaf */
				for (int t = 0; t < model->ntrees; t++)
				{
					int32		start = model->tree_start[t];
					int32		node = 0;
					int32		f;

					while ((f = model->node_feature[start + node]) >= 0)
					{
						double		v = x[f];
						bool		left = isnan(v) ? model->node_default_left[start + node]
							: v < model->node_threshold[start + node];

						node = left ? model->node_left[start + node]
							: model->node_right[start + node];
					}
					margin += model->node_value[start + node];
				}
				return 1.0 / (1.0 + exp(-margin));
			}
	}
	elog(ERROR, "cannot score algorithm %d", (int) model->algorithm);
	return 0.0;					/* keep compiler quiet */
}

int
PredictBand(const CrScoring *scoring, double p)
{
	for (int i = 0; i < scoring->nbands - 1; i++)
		if (p < scoring->cutoffs[i])
			return i;
	return scoring->nbands - 1;
}

const char *
PredictCategory(const CrScoring *scoring, double p)
{
	return scoring->labels[PredictBand(scoring, p)];
}

/*
 * Scorecard points with points-to-double-odds scaling:
 * points = offset + factor * ln(odds), odds = (1 - p) / p (good:bad),
 * factor = pdo / ln 2, offset = points_base - factor * ln(odds_base).
 */
int
PredictPoints(const CrScoring *scoring, double p)
{
	double		factor = scoring->pdo / M_LN2;
	double		offset = scoring->points_base - factor * log(scoring->odds_base);
	double		pc = Min(Max(p, 1e-15), 1.0 - 1e-15);
	double		points = offset + factor * log((1.0 - pc) / pc);

	points = rint(points);
	if (points > PG_INT32_MAX)
		return PG_INT32_MAX;
	if (points < PG_INT32_MIN)
		return PG_INT32_MIN;
	return (int) points;
}

static void
CheckFinite(const CrModel *model, int j, double v)
{
	if (isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature \"%s\" is %s", model->features[j],
						v > 0 ? "Infinity" : "-Infinity"),
				 errhint("Pass NULL (or NaN) for a missing value.")));
}

/* ------------------------------------------------------------ array form */

static double
ScoreArray(FunctionCallInfo fcinfo, PredictState *st, const CrModel *model,
		   ArrayType *arr)
{
	int			n = model->nfeatures;
	int			len;
	double	   *x;
	const double *data;
	bits8	   *bitmap;
	int			bitmask = 1;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features must be a one-dimensional array")));
	len = ARR_NDIM(arr) == 0 ? 0 : ARR_DIMS(arr)[0];
	if (len != n)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("features array has %d elements, but the model expects %d", len, n),
				 errhint("The model's features, in order, are listed in credit_risk.models.features.")));

	x = Scratch(fcinfo, st, n);
	data = (const double *) ARR_DATA_PTR(arr);
	bitmap = ARR_NULLBITMAP(arr);
	for (int j = 0; j < n; j++)
	{
		if (bitmap && !(*bitmap & bitmask))
			x[j] = NAN;
		else
		{
			x[j] = *data++;
			CheckFinite(model, j, x[j]);
		}
		if (bitmap)
		{
			bitmask <<= 1;
			if (bitmask == 0x100)
			{
				bitmap++;
				bitmask = 1;
			}
		}
	}
	return PredictProbability(model, x);
}

Datum
cr_predict_array(PG_FUNCTION_ARGS)
{
	PredictState *st = GetState(fcinfo);
	CrCachedModel *entry = ResolveByName(fcinfo, st, PG_GETARG_TEXT_PP(0));

	PG_RETURN_FLOAT8(ScoreArray(fcinfo, st, entry->model, PG_GETARG_ARRAYTYPE_P(1)));
}

Datum
cr_predict_bytes_array(PG_FUNCTION_ARGS)
{
	PredictState *st = GetState(fcinfo);
	CrCachedModel *entry = ResolveByBytes(fcinfo, st, PG_GETARG_DATUM(0));

	PG_RETURN_FLOAT8(ScoreArray(fcinfo, st, entry->model, PG_GETARG_ARRAYTYPE_P(1)));
}

/* -------------------------------------------------------------- row form */

static void
MapRow(FunctionCallInfo fcinfo, PredictState *st, const CrModel *model,
	   TupleDesc tupdesc)
{
	MemoryContext mcxt = fcinfo->flinfo->fn_mcxt;

	if (st->attnum)
		pfree(st->attnum);
	if (st->atttype)
		pfree(st->atttype);
	if (st->values)
		pfree(st->values);
	if (st->nulls)
		pfree(st->nulls);
	if (st->tupdesc)
		FreeTupleDesc(st->tupdesc);
	st->tupdesc = NULL;
	st->mapped_for = NULL;
	st->attnum = MemoryContextAlloc(mcxt, sizeof(int) * model->nfeatures);
	st->atttype = MemoryContextAlloc(mcxt, sizeof(Oid) * model->nfeatures);
	st->natts = tupdesc->natts;
	st->values = MemoryContextAlloc(mcxt, sizeof(Datum) * Max(tupdesc->natts, 1));
	st->nulls = MemoryContextAlloc(mcxt, sizeof(bool) * Max(tupdesc->natts, 1));

	for (int j = 0; j < model->nfeatures; j++)
	{
		int			found = DatasetFindColumn(tupdesc, model->features[j]);

		if (found >= 0 && DatasetFindColumnFrom(tupdesc, model->features[j], found + 1) >= 0)
			ereport(ERROR,
					(errcode(ERRCODE_AMBIGUOUS_COLUMN),
					 errmsg("applicant row has two columns named \"%s\"", model->features[j]),
					 errhint("Give the columns distinct names: the row form matches the model's features by name.")));
		if (found < 0)
		{
			StringInfoData need;

			initStringInfo(&need);
			for (int k = 0; k < model->nfeatures; k++)
				appendStringInfo(&need, "%s%s", k > 0 ? ", " : "", model->features[k]);
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("applicant row has no column \"%s\"", model->features[j]),
					 errdetail("The model needs the columns: %s.", need.data)));
		}
		st->atttype[j] = TupleDescAttr(tupdesc, found)->atttypid;
		if (!DatasetTypeIsNumeric(st->atttype[j]) && st->atttype[j] != BOOLOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("applicant column \"%s\" has type %s, not a number",
							model->features[j], format_type_be(st->atttype[j]))));
		st->attnum[j] = found;
	}
	{
		MemoryContext old = MemoryContextSwitchTo(mcxt);

		st->tupdesc = CreateTupleDescCopy(tupdesc);
		MemoryContextSwitchTo(old);
	}
	st->mapped_for = model;
}

static double
ScoreRecord(FunctionCallInfo fcinfo, PredictState *st, const CrModel *model,
			HeapTupleHeader td)
{
	Oid			rowtype = HeapTupleHeaderGetTypeId(td);
	int32		rowtypmod = HeapTupleHeaderGetTypMod(td);
	HeapTupleData tuple;
	double	   *x;

	if (st->mapped_for != model || st->rowtype != rowtype ||
		st->rowtypmod != rowtypmod)
	{
		TupleDesc	tupdesc = lookup_rowtype_tupdesc(rowtype, rowtypmod);

		MapRow(fcinfo, st, model, tupdesc);
		ReleaseTupleDesc(tupdesc);
		st->rowtype = rowtype;
		st->rowtypmod = rowtypmod;
	}

	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;

	heap_deform_tuple(&tuple, st->tupdesc, st->values, st->nulls);

	x = Scratch(fcinfo, st, model->nfeatures);
	for (int j = 0; j < model->nfeatures; j++)
	{
		int			a = st->attnum[j];

		if (st->nulls[a])
			x[j] = NAN;
		else
		{
			x[j] = DatasetDatumToDouble(st->values[a], st->atttype[j]);
			CheckFinite(model, j, x[j]);
		}
	}
	return PredictProbability(model, x);
}

static HeapTupleHeader
GetApplicantRow(FunctionCallInfo fcinfo)
{
	Oid			argtype = get_fn_expr_argtype(fcinfo->flinfo, 1);

	if (!OidIsValid(argtype) || !type_is_rowtype(argtype))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("applicant must be a row, an array of float8 or a jsonb object, not %s",
						OidIsValid(argtype) ? format_type_be(argtype) : "unknown"),
				 errhint("Pass a table row, for example: SELECT credit_risk.cr_predict('m', t) FROM applicants t;")));
	return PG_GETARG_HEAPTUPLEHEADER(1);
}

Datum
cr_predict_record(PG_FUNCTION_ARGS)
{
	PredictState *st = GetState(fcinfo);
	HeapTupleHeader td = GetApplicantRow(fcinfo);
	CrCachedModel *entry = ResolveByName(fcinfo, st, PG_GETARG_TEXT_PP(0));

	PG_RETURN_FLOAT8(ScoreRecord(fcinfo, st, entry->model, td));
}

Datum
cr_predict_bytes_record(PG_FUNCTION_ARGS)
{
	PredictState *st = GetState(fcinfo);
	HeapTupleHeader td = GetApplicantRow(fcinfo);
	CrCachedModel *entry = ResolveByBytes(fcinfo, st, PG_GETARG_DATUM(0));

	PG_RETURN_FLOAT8(ScoreRecord(fcinfo, st, entry->model, td));
}

/* ------------------------------------------------------------ jsonb form */

static const char *
ApplicantValueKind(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return "a string";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return "an object or array";
		default:
			return "not a number";
	}
}

/* A numeric that converts back to exactly the same double. */
static Numeric
Float8ToNumericExact(double d)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(d, buf);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* The text an applicant key is routed by: a string as is, anything else as JSON. */
static char *
JsonbKeyText(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvNull:
			return pstrdup("null");
		default:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	}
}

static void
PushKey(JsonbParseState **state, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
}

Datum
cr_predict_jsonb(PG_FUNCTION_ARGS)
{
	PredictState *st = GetState(fcinfo);
	Jsonb	   *jb = PG_GETARG_JSONB_P(1);
	CrCachedModel *entry;
	const CrModel *model;
	double	   *x;
	double		p;
	StringInfoData missing;
	int			nmissing = 0;
	JsonbValue	v;
	JsonbValue	custval;
	JsonbValue *found;
	JsonbValue *cust;
	JsonbParseState *state = NULL;
	JsonbValue *result;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("applicant must be a jsonb object"),
				 errhint("Send one applicant as {\"customer_id\": \"...\", \"feature\": value, ...}.")));

	entry = ResolveByName(fcinfo, st, PG_GETARG_TEXT_PP(0));
	cust = getKeyJsonValueFromContainer(&jb->root, "customer_id",
										strlen("customer_id"), &custval);
	{
		double		share;
		CrCachedModel *challenger = ResolveRoute(st, &share);

		if (challenger != NULL && cust != NULL)
		{
			char	   *key = JsonbKeyText(cust);

			if (RegistryRouteToChallenger(key, strlen(key), share))
				entry = challenger;
		}
	}
	model = entry->model;
	x = Scratch(fcinfo, st, model->nfeatures);
	initStringInfo(&missing);

	for (int j = 0; j < model->nfeatures; j++)
	{
		const char *f = model->features[j];

		found = getKeyJsonValueFromContainer(&jb->root, f, strlen(f), &v);
		if (found == NULL)
		{
			appendStringInfo(&missing, "%s%s", nmissing > 0 ? ", " : "", f);
			nmissing++;
			continue;
		}
		if (found->type == jbvNull)
			x[j] = NAN;
		else if (found->type == jbvNumeric)
		{
			x[j] = DatasetNumericToDouble(found->val.numeric, "applicant field", f);
			CheckFinite(model, j, x[j]);
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("applicant field \"%s\" must be a number, not %s", f,
							ApplicantValueKind(found)),
					 errhint("Send numbers as JSON numbers, and null for a missing value.")));
	}
	if (nmissing > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("applicant is missing %d field%s the model needs: %s",
						nmissing, nmissing == 1 ? "" : "s", missing.data),
				 errhint("Send null for a field whose value is unknown; it is imputed.")));

	p = PredictProbability(model, x);

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);

	PushKey(&state, "customer_id");
	if (cust == NULL)
	{
		v.type = jbvNull;
		cust = &v;
	}
	pushJsonbValue(&state, WJB_VALUE, cust);

	PushKey(&state, "default_probability");
	v.type = jbvNumeric;
	v.val.numeric = Float8ToNumericExact(p);
	pushJsonbValue(&state, WJB_VALUE, &v);

	PushKey(&state, "risk_category");
	v.type = jbvString;
	v.val.string.val = (char *) PredictCategory(&model->scoring, p);
	v.val.string.len = strlen(v.val.string.val);
	pushJsonbValue(&state, WJB_VALUE, &v);

	PushKey(&state, "score");
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(PredictPoints(&model->scoring, p));
	pushJsonbValue(&state, WJB_VALUE, &v);

	PushKey(&state, "model_version");
	v.type = jbvString;
	v.val.string.val = entry->version_label;
	v.val.string.len = strlen(entry->version_label);
	pushJsonbValue(&state, WJB_VALUE, &v);

	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	PG_RETURN_JSONB_P(JsonbValueToJsonb(result));
}

/* ----------------------------------------------------------- batch form */

#define BATCH_BLOCK		1024

/* One model's view of the source: its features' columns, and a block. */
typedef struct BatchModel
{
	CrCachedModel *entry;
	Datum		version_text;	/* made once: no per-row allocation */
	Datum	   *category_text;	/* per risk band */
	int		   *attnum;			/* per feature: source column */
	Oid		   *atttype;
	double	   *cols;			/* nfeatures * BATCH_BLOCK, column-major */
	uint16	   *codes;			/* dense trees: 2 * nfeatures codes a row */
	int		   *idx;			/* block positions scored by this model */
	int			n;
	double	   *margin;			/* BATCH_BLOCK */
} BatchModel;

typedef struct BatchReceiver
{
	DestReceiver pub;
	ReturnSetInfo *rsinfo;
	const char *keycol;
	int			keyatt;
	Oid			keyout;
	double		share;
	int			nmodels;		/* 1, or 2 with a challenger */
	BatchModel	models[2];
	int			n;				/* rows in the block */
	char	   *keys[BATCH_BLOCK];
	uint8		which[BATCH_BLOCK];
	double		prob[BATCH_BLOCK];
	MemoryContext blockcxt;		/* the block's keys */
	MemoryContext cxt;			/* outlives the source query's executor */
	int64		rows;
} BatchReceiver;

/*
 * Rows of a block are coded in groups of BATCH_GROUP, slot-major within a
 * group: slot s of row k is at (k / G) * G * 2F + s * G + k % G (slots as
 * in ModelDenseWalk).  A walk then finds every row of a group from one base
 * pointer, and a group's codes for one slot are one vector.
 */
#define BATCH_GROUP		16
StaticAssertDecl(BATCH_GROUP == 16, "the tree scorers assume groups of sixteen rows");

/*
 * Add the dense trees' leaf values to the margins of n block rows, coded
 * as above.  GCC's straight-line vectorizer packs the eight walks below
 * into SSE lanes, moving every value between vector and general registers
 * at each level: twice as slow as plain scalar code, so it is off here.
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void
ScoreDenseBlock(const CrModel *m, const uint16 *codes, int n, double *margin)
{
	int			D = m->dense_depth;
	int			nint = (1 << D) - 1;
	int			S = 2 * m->nfeatures;

	for (int t = 0; t < m->ntrees; t++)
	{
		const uint32 *node = m->dense_node + (Size) t * nint;
		const double *leaf = m->dense_leaf + (Size) t * (nint + 1);

		/*
		 * Eight rows at a time, their walks independent so the CPU
		 * overlaps them.  Rows past n in the last group walk stale
		 * codes, unused.
		 */
		for (int k = 0; k < n; k += 8)
		{
			const uint16 *c = codes + (Size) (k & ~(BATCH_GROUP - 1)) * S +
				(k & (BATCH_GROUP - 1));
			uint32		i0 = 0, i1 = 0, i2 = 0, i3 = 0,
						i4 = 0, i5 = 0, i6 = 0, i7 = 0;

#define BATCH_STEP(i, r) \
	do { \
		uint32		w = node[i]; \
		i = 2 * i + 1 + (c[((w >> 12) & ~15u) + (r)] > (w & 0xFFFF)); \
	} while (0)
			for (int d = 0; d < D; d++)
			{
				BATCH_STEP(i0, 0);
				BATCH_STEP(i1, 1);
				BATCH_STEP(i2, 2);
				BATCH_STEP(i3, 3);
				BATCH_STEP(i4, 4);
				BATCH_STEP(i5, 5);
				BATCH_STEP(i6, 6);
				BATCH_STEP(i7, 7);
			}
#undef BATCH_STEP
			if (k + 8 <= n)
			{
				margin[k] += leaf[i0 - nint];
				margin[k + 1] += leaf[i1 - nint];
				margin[k + 2] += leaf[i2 - nint];
				margin[k + 3] += leaf[i3 - nint];
				margin[k + 4] += leaf[i4 - nint];
				margin[k + 5] += leaf[i5 - nint];
				margin[k + 6] += leaf[i6 - nint];
				margin[k + 7] += leaf[i7 - nint];
			}
			else
			{
				uint32		last[8] = {i0, i1, i2, i3, i4, i5, i6, i7};

				for (int r = 0; k + r < n; r++)
					margin[k + r] += leaf[last[r] - nint];
			}
		}
	}
}

#ifdef CR_AVX512_SCORER

/* Whether to use the AVX-512 batch scorer: the CPU has it and it is not off. */
static bool
UseAvx512(void)
{
	static int	have_avx512 = -1;

	if (have_avx512 < 0)
		have_avx512 = __builtin_cpu_supports("avx512f") ? 1 : 0;
	return cr_simd && have_avx512;
}

/* The group's sixteen codes for the slot of node word w, one a lane. */
__attribute__((target("avx512f"), always_inline))
static inline __m512i
Avx512SlotCodes(const uint16 *c, uint32 w)
{
	return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *) (c + (w >> 16) * BATCH_GROUP)));
}

/* One level of one tree's walk for a group's sixteen rows (see below). */
__attribute__((target("avx512f"), always_inline))
static inline __m512i
Avx512Step(const uint32 *node, int d, __m512i p, const uint16 *c)
{
	const uint32 *level = node + (1 << d) - 1;
	const __m512i one = _mm512_set1_epi32(1);
	__m512i		w;
	__m512i		code;
	__mmask16	right;

	if (d <= 4)
		w = _mm512_permutexvar_epi32(p,
									 _mm512_maskz_loadu_epi32((__mmask16) ((1u << (1 << d)) - 1),
															  level));
	else if (d == 5)
		w = _mm512_permutex2var_epi32(_mm512_loadu_si512(level), p,
									  _mm512_loadu_si512(level + 16));
	else
		w = _mm512_i32gather_epi32(p, (const void *) level, 4);

	/*
	 * A row's code is a gather, except on the top levels, whose one, two or
	 * four slots are plain loads of the group's codes, blended by position:
	 * cheaper than a gather.
	 */
	if (d == 0)
		code = Avx512SlotCodes(c, level[0]);
	else if (d == 1)
		code = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(p, one),
									   Avx512SlotCodes(c, level[0]),
									   Avx512SlotCodes(c, level[1]));
	else if (d == 2)
	{
		__mmask16	odd = _mm512_test_epi32_mask(p, one);

		code = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(p, _mm512_set1_epi32(2)),
									   _mm512_mask_blend_epi32(odd,
															   Avx512SlotCodes(c, level[0]),
															   Avx512SlotCodes(c, level[1])),
									   _mm512_mask_blend_epi32(odd,
															   Avx512SlotCodes(c, level[2]),
															   Avx512SlotCodes(c, level[3])));
	}
	else
	{
		__m512i		at = _mm512_or_si512(_mm512_slli_epi32(_mm512_srli_epi32(w, 16), 4),
										 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7,
														   8, 9, 10, 11, 12, 13, 14, 15));

		code = _mm512_and_si512(_mm512_i32gather_epi32(at, (const void *) c, 2),
								_mm512_set1_epi32(0xFFFF));
	}
	right = _mm512_cmpgt_epu32_mask(code, _mm512_and_si512(w, _mm512_set1_epi32(0xFFFF)));
	p = _mm512_add_epi32(p, p);
	return _mm512_mask_add_epi32(p, right, p, one);
}

/* Add tree t's leaf values, at positions p, to a group's margins. */
__attribute__((target("avx512f"), always_inline))
static inline void
Avx512AddLeaves(const CrModel *m, int t, __m512i p, __m512d *lo, __m512d *hi)
{
	int			nint = (1 << m->dense_depth) - 1;
	const double *leaf = m->dense_leaf + (Size) t * (nint + 1);

	*lo = _mm512_add_pd(*lo, _mm512_i32gather_pd(_mm512_castsi512_si256(p), leaf, 8));
	*hi = _mm512_add_pd(*hi, _mm512_i32gather_pd(_mm512_extracti64x4_epi64(p, 1), leaf, 8));
}

/*
 * The same with AVX-512: a group's sixteen rows walk a tree together, one
 * lane each, with p their node's position within the level.  A level's
 * node words come from a permute of the level's nodes (up to 32; a gather
 * deeper down), a row's code from a gather (or loads, near the root), and
 * the leaf values from two gathers of doubles.  A level waits for the
 * gather before it, so four trees are walked at once.  Each lane adds its
 * trees' leaf values in tree order, so the margins equal ScoreDenseBlock's
 * to the last bit.  The codes array must extend 2 bytes past the last
 * group (the gathers read 4 bytes).
 */
__attribute__((target("avx512f")))
static void
ScoreDenseBlockAvx512(const CrModel *m, const uint16 *codes, int n,
					  double *margin)
{
	int			D = m->dense_depth;
	int			nint = (1 << D) - 1;
	int			S = 2 * m->nfeatures;

	for (int k = 0; k < n; k += BATCH_GROUP)
	{
		const uint16 *c = codes + (Size) k * S;
		__m512d		lo = _mm512_loadu_pd(margin + k);
		__m512d		hi = _mm512_loadu_pd(margin + k + 8);
		int			t = 0;

		for (; t + 4 <= m->ntrees; t += 4)
		{
			const uint32 *n0 = m->dense_node + (Size) t * nint;
			__m512i		p0 = _mm512_setzero_si512();
			__m512i		p1 = p0,
						p2 = p0,
						p3 = p0;

			for (int d = 0; d < D; d++)
			{
				p0 = Avx512Step(n0, d, p0, c);
				p1 = Avx512Step(n0 + nint, d, p1, c);
				p2 = Avx512Step(n0 + 2 * nint, d, p2, c);
				p3 = Avx512Step(n0 + 3 * nint, d, p3, c);
			}
			Avx512AddLeaves(m, t, p0, &lo, &hi);
			Avx512AddLeaves(m, t + 1, p1, &lo, &hi);
			Avx512AddLeaves(m, t + 2, p2, &lo, &hi);
			Avx512AddLeaves(m, t + 3, p3, &lo, &hi);
		}
		for (; t < m->ntrees; t++)
		{
			__m512i		p = _mm512_setzero_si512();

			for (int d = 0; d < D; d++)
				p = Avx512Step(m->dense_node + (Size) t * nint, d, p, c);
			Avx512AddLeaves(m, t, p, &lo, &hi);
		}
		_mm512_storeu_pd(margin + k, lo);
		_mm512_storeu_pd(margin + k + 8, hi);
	}
}
#endif

/*
 * Code a block's values of feature j (v[0..n-1]) into the model's codes
 * (see BATCH_GROUP): the binary search of ModelDenseCode, step for step,
 * for eight rows at once, since one row's search is a chain of dependent
 * loads.  (No straight-line vectorizing: see ScoreDenseBlock.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void
BatchCodeFeature(const CrModel *m, int j, const double *v, int n, uint16 *codes)
{
	const double *cuts = m->dense_cuts + m->dense_cut_start[j];
	int32		K = m->dense_cut_start[j + 1] - m->dense_cut_start[j];
	int			F = m->nfeatures;

	for (int k = 0; k < n; k += 8)
	{
		/* rows past n read stale values of the block: in bounds, unused */
		const double *x = v + k;
		int32		b0 = 0, b1 = 0, b2 = 0, b3 = 0,
					b4 = 0, b5 = 0, b6 = 0, b7 = 0;
		int32		b[8];
		uint16	   *g = codes + (Size) (k & ~(BATCH_GROUP - 1)) * 2 * F +
			(k & (BATCH_GROUP - 1));

		if (K > 0)
		{
			for (int32 len = K; len > 1;)
			{
				int32		half = len / 2;

				b0 += (cuts[b0 + half] <= x[0]) ? half : 0;
				b1 += (cuts[b1 + half] <= x[1]) ? half : 0;
				b2 += (cuts[b2 + half] <= x[2]) ? half : 0;
				b3 += (cuts[b3 + half] <= x[3]) ? half : 0;
				b4 += (cuts[b4 + half] <= x[4]) ? half : 0;
				b5 += (cuts[b5 + half] <= x[5]) ? half : 0;
				b6 += (cuts[b6 + half] <= x[6]) ? half : 0;
				b7 += (cuts[b7 + half] <= x[7]) ? half : 0;
				len -= half;
			}
			b0 += cuts[b0] <= x[0];
			b1 += cuts[b1] <= x[1];
			b2 += cuts[b2] <= x[2];
			b3 += cuts[b3] <= x[3];
			b4 += cuts[b4] <= x[4];
			b5 += cuts[b5] <= x[5];
			b6 += cuts[b6] <= x[6];
			b7 += cuts[b7] <= x[7];
		}
		b[0] = b0, b[1] = b1, b[2] = b2, b[3] = b3;
		b[4] = b4, b[5] = b5, b[6] = b6, b[7] = b7;
		for (int r = 0; r < 8 && k + r < n; r++)
		{
			uint16		c = isnan(x[r]) ? 0 : (uint16) (b[r] + 1);

			g[j * BATCH_GROUP + r] = c;
			g[(F + j) * BATCH_GROUP + r] = (uint16) (c - 1);
		}
	}
}

/*
 * Score the block's rows of one model, tree by tree for trees (a tree's
 * nodes stay in cache across the block).  The arithmetic is the same, in
 * the same order, as PredictProbability's, so results are bit-identical.
 */
static void
ScoreBlock(BatchModel *bm, double *prob)
{
	const CrModel *m = bm->entry->model;
	int			p = m->nfeatures;

	if (m->algorithm == CR_ALGO_LOGISTIC)
	{
		for (int k = 0; k < bm->n; k++)
		{
			int			i = bm->idx[k];
			double		eta = m->coef[0];

			for (int j = 0; j < p; j++)
			{
				double		v = bm->cols[j * BATCH_BLOCK + k];

				eta += m->coef[j + 1] * (isnan(v) ? m->impute[j] : v);
			}
			prob[i] = 1.0 / (1.0 + exp(-eta));
		}
		return;
	}

	for (int k = 0; k < bm->n; k++)
		bm->margin[k] = m->base_margin;
	if (m->dense_depth > 0)
	{
		for (int j = 0; j < p; j++)
			BatchCodeFeature(m, j, bm->cols + j * BATCH_BLOCK, bm->n, bm->codes);
#ifdef CR_AVX512_SCORER
		if (UseAvx512())
			ScoreDenseBlockAvx512(m, bm->codes, bm->n, bm->margin);
		else
#endif
			ScoreDenseBlock(m, bm->codes, bm->n, bm->margin);
		for (int k = 0; k < bm->n; k++)
			prob[bm->idx[k]] = 1.0 / (1.0 + exp(-bm->margin[k]));
		return;
	}
	for (int t = 0; t < m->ntrees; t++)
	{
		int32		start = m->tree_start[t];
		const int32 *feature = m->node_feature + start;
		const double *threshold = m->node_threshold + start;
		const int32 *left = m->node_left + start;
		const int32 *right = m->node_right + start;
		const bool *dleft = m->node_default_left + start;
		const double *value = m->node_value + start;

		for (int k = 0; k < bm->n; k++)
		{
			int32		node = 0;
			int32		f;

			while ((f = feature[node]) >= 0)
			{
				double		v = bm->cols[f * BATCH_BLOCK + k];
				bool		goleft = isnan(v) ? dleft[node] : v < threshold[node];

				node = goleft ? left[node] : right[node];
			}
			bm->margin[k] += value[node];
		}
	}
	for (int k = 0; k < bm->n; k++)
		prob[bm->idx[k]] = 1.0 / (1.0 + exp(-bm->margin[k]));
}

static void
BatchFlush(BatchReceiver *br)
{
	MemoryContext old = MemoryContextSwitchTo(br->blockcxt);

	for (int mi = 0; mi < br->nmodels; mi++)
	{
		ScoreBlock(&br->models[mi], br->prob);
		br->models[mi].n = 0;
	}
	for (int i = 0; i < br->n; i++)
	{
		const CrModel *m = br->models[br->which[i]].entry->model;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		if (br->keys[i] != NULL)
			values[0] = CStringGetTextDatum(br->keys[i]);
		else
			nulls[0] = true;
		values[1] = Float8GetDatum(br->prob[i]);
		values[2] = br->models[br->which[i]].category_text[PredictBand(&m->scoring, br->prob[i])];
		values[3] = Int32GetDatum(PredictPoints(&m->scoring, br->prob[i]));
		values[4] = br->models[br->which[i]].version_text;
		tuplestore_putvalues(br->rsinfo->setResult, br->rsinfo->setDesc, values, nulls);
	}
	br->n = 0;
	MemoryContextSwitchTo(old);
	MemoryContextReset(br->blockcxt);
}

static void
BatchStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	BatchReceiver *br = (BatchReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(br->cxt);

	br->keyatt = -1;
	if (br->keycol != NULL)
	{
		bool		isvarlena;

		br->keyatt = DatasetRequireColumn(tupdesc, br->keycol, "key");
		getTypeOutputInfo(TupleDescAttr(tupdesc, br->keyatt)->atttypid, &br->keyout, &isvarlena);
	}

	for (int mi = 0; mi < br->nmodels; mi++)
	{
		BatchModel *bm = &br->models[mi];
		const CrModel *m = bm->entry->model;
		bm->attnum = palloc(sizeof(int) * m->nfeatures);
		bm->atttype = palloc(sizeof(Oid) * m->nfeatures);
		DatasetMapColumns(tupdesc, m->features, m->nfeatures, bm->entry->version_label,
						  bm->attnum, bm->atttype);
		bm->version_text = CStringGetTextDatum(bm->entry->version_label);
		bm->category_text = palloc(sizeof(Datum) * m->scoring.nbands);
		for (int b = 0; b < m->scoring.nbands; b++)
			bm->category_text[b] = CStringGetTextDatum(m->scoring.labels[b]);
		if (m->algorithm == CR_ALGO_GBM && m->dense_depth > 0)
			bm->codes = palloc0(sizeof(uint16) * (2 * m->nfeatures * BATCH_BLOCK + BATCH_GROUP));
		bm->cols = palloc0(sizeof(double) * m->nfeatures * BATCH_BLOCK);
		bm->idx = palloc(sizeof(int) * BATCH_BLOCK);
		bm->margin = palloc0(sizeof(double) * BATCH_BLOCK);
		bm->n = 0;
	}
	MemoryContextSwitchTo(old);
}

static bool
BatchReceive(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *br = (BatchReceiver *) self;
	int			i = br->n;
	int			mi = 0;
	BatchModel *bm;
	const CrModel *m;

	if ((br->rows++ & 0x3FF) == 0)
		CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);

	br->keys[i] = NULL;
	if (br->keyatt >= 0 && !slot->tts_isnull[br->keyatt])
	{
		MemoryContext old = MemoryContextSwitchTo(br->blockcxt);

		br->keys[i] = OidOutputFunctionCall(br->keyout, slot->tts_values[br->keyatt]);
		MemoryContextSwitchTo(old);
		if (br->nmodels > 1 &&
			RegistryRouteToChallenger(br->keys[i], strlen(br->keys[i]), br->share))
			mi = 1;
	}
	br->which[i] = (uint8) mi;
	bm = &br->models[mi];
	m = bm->entry->model;
	for (int j = 0; j < m->nfeatures; j++)
	{
		int			a = bm->attnum[j];
		double		v;

		if (slot->tts_isnull[a])
			v = NAN;
		else
		{
			v = DatasetDatumToDouble(slot->tts_values[a], bm->atttype[j]);
			CheckFinite(m, j, v);
		}
		bm->cols[j * BATCH_BLOCK + bm->n] = v;
	}
	bm->idx[bm->n++] = i;
	if (++br->n == BATCH_BLOCK)
		BatchFlush(br);
	return true;
}

static void
BatchShutdown(DestReceiver *self)
{
}

static void
BatchDestroy(DestReceiver *self)
{
}

/*
 * cr_predict_batch(name, source, key DEFAULT NULL): every row of a relation
 * or query, scored in blocks by the serving version (and, with a key and a
 * route, a stable share of keys by the challenger).
 */
Datum
cr_predict_batch(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BatchReceiver br;
	char	   *name;
	char	   *source;
	CrCachedModel *challenger;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name and source must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));

	InitMaterializedSRF(fcinfo, 0);

	memset(&br, 0, sizeof(br));
	br.pub.receiveSlot = BatchReceive;
	br.pub.rStartup = BatchStartup;
	br.pub.rShutdown = BatchShutdown;
	br.pub.rDestroy = BatchDestroy;
	br.pub.mydest = DestNone;
	br.rsinfo = rsinfo;
	br.keycol = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	br.models[0].entry = RegistryLookup(name, 0);
	br.nmodels = 1;
	challenger = br.keycol ? RegistryRoute(name, &br.share) : NULL;
	if (challenger != NULL && challenger != br.models[0].entry)
	{
		br.models[1].entry = challenger;
		br.nmodels = 2;
	}
	br.cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk batch",
								   ALLOCSET_DEFAULT_SIZES);
	br.blockcxt = AllocSetContextCreate(br.cxt, "credit_risk batch keys",
										ALLOCSET_DEFAULT_SIZES);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	DatasetRunQuery(DatasetSourceQuery(source), source, &br.pub, true, false, "scoring");
	if (br.n > 0)
		BatchFlush(&br);
	SPI_finish();
	MemoryContextDelete(br.cxt);
	return (Datum) 0;
}
