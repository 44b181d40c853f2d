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

#include "access/detoast.h"
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

#include "credit_risk.h"
#include "dataset.h"
#include "explain.h"
#include "metrics.h"
#include "predict.h"
#include "registry.h"
#include "serving.h"

PG_FUNCTION_INFO_V1(cr_predict_array);
PG_FUNCTION_INFO_V1(cr_predict_record);
PG_FUNCTION_INFO_V1(cr_predict_jsonb);
PG_FUNCTION_INFO_V1(cr_predict_bytes_array);
PG_FUNCTION_INFO_V1(cr_predict_bytes_record);

/* what the call's model argument is */
#define ARG_OTHER	0			/* an expression: its value may change row by row */
#define ARG_CONST	1			/* a literal: the same datum for the whole execution */
#define ARG_PARAM	2			/* an external parameter */

struct PredictState
{
	uint32		calls;			/* calls at this call site (serving statistics time some) */

	/* model resolved by name for the current statement */
	char	   *name;
	CrStamp		stamp;
	CrCachedModel *entry;

	/* model passed as a TOASTed value: the pointer it came from */
	bool		have_toast;
	struct varatt_external toast;
	/* model bytes in memory: where they were last, and what the call's model
	 * argument is (see PredictResolveByBytes) */
	const char *mem_data;
	int			arg_kind;		/* ARG_OTHER, ARG_CONST or ARG_PARAM */

	/* applicant row type and its mapping to the model's features */
	Oid			rowtype;
	int32		rowtypmod;
	const CrModel *mapped_for;
	int			natts;
	int		   *attnum;			/* per feature: 0-based column */
	Oid		   *atttype;		/* per feature */
	FmgrInfo   *outfunc;		/* per feature: categorical ones' output functions */
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
};

uint32 *
PredictSiteCalls(PredictState *st)
{
	return &st->calls;
}

PredictState *
PredictGetState(FunctionCallInfo fcinfo)
{
	PredictState *st = (PredictState *) fcinfo->flinfo->fn_extra;

	if (st == NULL)
	{
		Node	   *expr = fcinfo->flinfo->fn_expr;

		st = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PredictState));
		fcinfo->flinfo->fn_extra = st;
		if (expr != NULL && IsA(expr, FuncExpr) && list_length(((FuncExpr *) expr)->args) > 0)
		{
			Node	   *arg = linitial(((FuncExpr *) expr)->args);

			if (IsA(arg, Const))
				st->arg_kind = ARG_CONST;
			else if (IsA(arg, Param) && ((Param *) arg)->paramkind == PARAM_EXTERN)
				st->arg_kind = ARG_PARAM;
		}
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
CrCachedModel *
PredictResolveByName(FunctionCallInfo fcinfo, PredictState *st, text *name)
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

/*
 * A parameter at the address it had: the same datum, for a statement's
 * parameter (a prepared statement's, or what postgres_fdw or Citus ship to
 * a shard as $1).  A PL/pgSQL variable is a parameter too, and a new value
 * of it can land where the old one was: its header, which holds the
 * checksum over all the bytes, and 32 words spread over them tell a
 * different model apart in constant time.
 */
static bool
SameParamBytes(const char *cached, const char *data, Size len)
{
	if (memcmp(cached, data, Min(len, 64)) != 0)
		return false;
	for (int k = 1; k <= 32 && len >= 8; k++)
	{
		Size		at = (len - 8) / 32 * k;

		if (memcmp(cached + at, data + at, 8) != 0)
			return false;
	}
	return true;
}

/* Whether bytes in memory are the model the call site used last (see SameParamBytes). */
static bool
SameMemoryBytes(const PredictState *st, const char *data, Size len)
{
	if (st->entry->bytes == NULL || len != st->entry->model->nbytes)
		return false;
	if (data == st->mem_data && st->arg_kind == ARG_CONST)
		return true;
	if (data == st->mem_data && st->arg_kind == ARG_PARAM)
		return SameParamBytes(st->entry->bytes, data, len);
	return memcmp(st->entry->bytes, data, len) == 0;
}

/*
 * Resolve a model passed as bytes: an on-disk datum by its toast pointer;
 * bytes in memory that are the call's literal by their address, its
 * parameter by its address as above, other bytes in memory compared whole
 * with the model the call site used last, and anything else through the
 * cache by checksum.
 */
CrCachedModel *
PredictResolveByBytes(FunctionCallInfo fcinfo, PredictState *st, Datum d)
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
		st->mem_data = NULL;
	}
	else if (!VARATT_IS_EXTENDED(raw))
	{
		/* in memory, uncompressed */
		const char *data = VARDATA_ANY(raw);
		Size		len = VARSIZE_ANY_EXHDR(raw);
		bool		same = st->entry != NULL && RegistryStampEqual(&now, &st->stamp) &&
			SameMemoryBytes(st, data, len);

		st->mem_data = data;
		if (same)
			return st->entry;
		bytes = (bytea *) raw;
		entry = RegistryFromBytes(data, len);
		st->have_toast = false;
	}
	else
	{
		bytes = DatumGetByteaPP(d);
		entry = RegistryFromBytes(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
		st->have_toast = false;
		st->mem_data = NULL;
	}
	if ((Pointer) bytes != DatumGetPointer(d))
		pfree(bytes);
	st->entry = entry;
	st->stamp = now;
	return entry;
}

/*
 * The probability of default of one applicant (x in the model's feature
 * order, NaN for missing).  Reads the model only: the model may be shared
 * by every call site that scores with it.
 */
double
PredictProbability(const CrModel *model, const double *x)
{
	double		margin;

	switch (model->algorithm)
	{
		case CR_ALGO_LOGISTIC:
			margin = ModelLogitMargin(model, x);
			break;
		case CR_ALGO_GBM:
			margin = ForestMargin(&model->forest, x);
			break;
		case CR_ALGO_SCORECARD:
			margin = ModelScorecardMargin(model, x);
			break;
		default:
			elog(ERROR, "cannot score algorithm %d", (int) model->algorithm);
			return 0.0;			/* keep compiler quiet */
	}
	return PredictFromMargin(model, margin);
}

/*
 * Finite values whose terms overflow (a coefficient times 1e308, say) can
 * add up to Infinity - Infinity: no probability at all.  Refused, so that
 * no NaN reaches a metric, a ranking or a stored result.
 */
void
PredictMarginNotANumber(const CrModel *model)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("the %s model's margin for these feature values is not a number",
					ModelAlgorithmName(model->algorithm)),
			 errdetail("Terms of the margin overflow the range of double precision."),
			 errhint("Check the feature values for magnitudes near 1e308.")));
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
	double		pc = CrClampProbability(p);
	double		points = offset + factor * log((1.0 - pc) / pc);

	points = rint(points);
	if (points > PG_INT32_MAX)
		return PG_INT32_MAX;
	if (points < PG_INT32_MIN)
		return PG_INT32_MIN;
	return (int) points;
}

/* An infinite feature value is an error; NaN is a missing value. */
void
PredictCheckFinite(const CrModel *model, int j, double v)
{
	if (isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature \"%s\" is %s", model->features[j],
						v > 0 ? "Infinity" : "-Infinity"),
				 errhint("Pass NULL (or NaN) for a missing value.")));
}

/* ------------------------------------------------------------ array form */

/*
 * An applicant given as an array of the model's features in order: its
 * values in the call site's scratch (NaN for NULL).
 */
const double *
PredictReadArray(FunctionCallInfo fcinfo, PredictState *st, const CrModel *model,
				 ArrayType *arr)
{
	int			n = model->nfeatures;
	int			len;
	double	   *x;
	const double *data;
	bits8	   *bitmap;
	int			bitmask = 1;

	if (model->cats != NULL)
	{
		int			j = 0;

		while (model->cats[j] == NULL)
			j++;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model has categorical feature \"%s\", which an array of float8 cannot carry",
						model->features[j]),
				 errhint("Pass the applicant as a row or as a jsonb object, with the category as text.")));
	}
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
			PredictCheckFinite(model, j, x[j]);
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
	return x;
}

/*
 * The array and row forms: resolve the model (by name, or bytes), read the
 * applicant (td: a row; NULL: the float8[] argument), score, and count the
 * call in the serving statistics.
 */
static double
PredictCounted(FunctionCallInfo fcinfo, bool by_bytes, HeapTupleHeader td)
{
	PredictState *st = PredictGetState(fcinfo);
	CrServingCall call;
	CrCachedModel *entry;
	const double *x;
	double		p;

	ServingStart(&call, false, &st->calls);
	entry = by_bytes ? PredictResolveByBytes(fcinfo, st, PG_GETARG_DATUM(0))
		: PredictResolveByName(fcinfo, st, PG_GETARG_TEXT_PP(0));
	ServingAttach(&call, entry);
	x = td ? PredictReadRecord(fcinfo, st, entry->model, td)
		: PredictReadArray(fcinfo, st, entry->model, PG_GETARG_ARRAYTYPE_P(1));
	p = PredictProbability(entry->model, x);
	ServingFinishOne(&call, 1);
	return p;
}

Datum
cr_predict_array(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(PredictCounted(fcinfo, false, NULL));
}

Datum
cr_predict_bytes_array(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(PredictCounted(fcinfo, true, NULL));
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
	if (st->outfunc)
		pfree(st->outfunc);
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
	st->outfunc = MemoryContextAllocZero(mcxt, sizeof(FmgrInfo) * model->nfeatures);
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
		DatasetCheckFeatureType(model->features[j], st->atttype[j],
								model->cats != NULL && model->cats[j] != NULL, "applicant");
		if (model->cats != NULL && model->cats[j] != NULL)
		{
			Oid			f;
			bool		isvarlena;

			getTypeOutputInfo(st->atttype[j], &f, &isvarlena);
			fmgr_info_cxt(f, &st->outfunc[j], mcxt);
		}
		st->attnum[j] = found;
	}
	{
		MemoryContext old = MemoryContextSwitchTo(mcxt);

		st->tupdesc = CreateTupleDescCopy(tupdesc);
		MemoryContextSwitchTo(old);
	}
	st->mapped_for = model;
}

/* An applicant given as a row: its features' columns, found by name. */
const double *
PredictReadRecord(FunctionCallInfo fcinfo, PredictState *st, const CrModel *model,
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
			x[j] = DatasetFeatureValue(model->cats ? model->cats[j] : NULL, st->values[a],
									   st->atttype[j], &st->outfunc[j]);
			PredictCheckFinite(model, j, x[j]);
		}
	}
	return x;
}

/* The applicant row argument (the second), checked to be a row. */
HeapTupleHeader
PredictApplicantRow(FunctionCallInfo fcinfo)
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
	PG_RETURN_FLOAT8(PredictCounted(fcinfo, false, PredictApplicantRow(fcinfo)));
}

Datum
cr_predict_bytes_record(PG_FUNCTION_ARGS)
{
	PG_RETURN_FLOAT8(PredictCounted(fcinfo, true, PredictApplicantRow(fcinfo)));
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

/*
 * The model that scores a jsonb applicant by name: the serving version, or
 * the challenger for a routed share of customer_id values.  *cust points to
 * the applicant's customer_id (in custbuf), or NULL.
 */
CrCachedModel *
PredictResolveJsonb(FunctionCallInfo fcinfo, PredictState *st, text *name, Jsonb *jb,
					JsonbValue **cust, JsonbValue *custbuf)
{
	CrCachedModel *entry;
	CrCachedModel *challenger;
	double		share;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("applicant must be a jsonb object"),
				 errhint("Send one applicant as {\"customer_id\": \"...\", \"feature\": value, ...}.")));

	entry = PredictResolveByName(fcinfo, st, name);
	*cust = getKeyJsonValueFromContainer(&jb->root, "customer_id",
										 strlen("customer_id"), custbuf);
	challenger = ResolveRoute(st, &share);
	if (challenger != NULL && *cust != NULL)
	{
		char	   *key = JsonbKeyText(*cust);

		if (RegistryRouteToChallenger(key, strlen(key), share))
			entry = challenger;
	}
	return entry;
}

/*
 * A categorical feature's field: a string is the level's text; a number or
 * a boolean is taken as its JSON text (3, true), which is how an integer or
 * boolean column's levels are written.
 */
static double
JsonbCategoryCode(const CrCategoryMap *map, JsonbValue *v, const char *f)
{
	char	   *s;
	double		code;

	switch (v->type)
	{
		case jbvString:
			return (double) CategoryCode(map, v->val.string.val, v->val.string.len);
		case jbvNumeric:
		case jbvBool:
			s = JsonbKeyText(v);
			code = (double) CategoryCode(map, s, strlen(s));
			pfree(s);
			return code;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("applicant field \"%s\" must be a category's text, not an object or array", f),
					 errhint("Send the level as a JSON string, and null for a missing value.")));
	}
	return 0.0;					/* keep compiler quiet */
}

/* An applicant given as a jsonb object: its fields named as the features. */
const double *
PredictReadJsonb(FunctionCallInfo fcinfo, PredictState *st, const CrModel *model, Jsonb *jb)
{
	double	   *x = Scratch(fcinfo, st, model->nfeatures);
	StringInfoData missing;
	int			nmissing = 0;
	JsonbValue	v;
	JsonbValue *found;

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
		else if (model->cats != NULL && model->cats[j] != NULL)
			x[j] = JsonbCategoryCode(model->cats[j], found, f);
		else if (found->type == jbvNumeric)
		{
			x[j] = DatasetNumericToDouble(found->val.numeric, "applicant field", f);
			PredictCheckFinite(model, j, x[j]);
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
	pfree(missing.data);
	return x;
}

/*
 * Whether the answer carries reasons: the request's "reasons" (true or
 * false) when given, else the version's params.reasons.  A feature of the
 * model named "reasons" takes the key for itself.
 */
static bool
WantReasons(const CrCachedModel *entry, Jsonb *jb)
{
	JsonbValue	v;
	JsonbValue *opt = getKeyJsonValueFromContainer(&jb->root, "reasons", strlen("reasons"), &v);

	/* the usual answer: no "reasons" in the request, nothing to look up */
	if (opt == NULL)
		return entry->reasons;
	for (int j = 0; j < entry->model->nfeatures; j++)
		if (strcmp(entry->model->features[j], "reasons") == 0)
			return entry->reasons;
	if (opt->type != jbvBool)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"reasons\" must be true or false, not %s",
						opt->type == jbvNumeric ? "a number" :
						opt->type == jbvNull ? "null" : ApplicantValueKind(opt)),
				 errhint("Send \"reasons\": true for the applicant's principal adverse reasons.")));
	return opt->val.boolean;
}

Datum
cr_predict_jsonb(PG_FUNCTION_ARGS)
{
	PredictState *st = PredictGetState(fcinfo);
	Jsonb	   *jb = PG_GETARG_JSONB_P(1);
	CrCachedModel *entry;
	const CrModel *model;
	const double *x;
	double		p;
	JsonbValue	v;
	JsonbValue	custval;
	JsonbValue *cust;
	JsonbParseState *state = NULL;
	JsonbValue *result;
	CrServingCall call;

	ServingStart(&call, false, &st->calls);
	entry = PredictResolveJsonb(fcinfo, st, PG_GETARG_TEXT_PP(0), jb, &cust, &custval);
	ServingAttach(&call, entry);
	model = entry->model;
	x = PredictReadJsonb(fcinfo, st, model, jb);

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
	v.val.numeric = CrFloat8ToNumeric(p);
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

	if (WantReasons(entry, jb))
		ExplainPushReasons(&state, entry, x, EXPLAIN_JSONB_REASONS);

	result = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	result = (JsonbValue *) JsonbValueToJsonb(result);
	ServingFinishOne(&call, 1);
	PG_RETURN_JSONB_P((Jsonb *) result);
}
