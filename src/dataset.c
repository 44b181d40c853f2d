/*
 * dataset.c
 *	  Read a relation or a query through an SPI cursor, in batches, into
 *	  column-major double arrays (NULL becomes NaN) and a 0/1 label array.
 *
 * The caller must be connected to SPI.  Arrays are allocated in the
 * caller's current memory context; each fetched batch is freed before the
 * next one is read.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "tcop/dest.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "dataset.h"
#include "random.h"
#include "fmgr.h"
#include "hugemem.h"
#include "progress.h"
#include "model.h"

#define DATASET_BATCH_ROWS	10000

static bool
SourceIsQuery(const char *source)
{
	static const char *const keywords[] = {"select", "with", "values", "table"};
	const char *p = source;

	while (*p && (isspace((unsigned char) *p) || *p == '('))
		p++;
	for (int i = 0; i < lengthof(keywords); i++)
	{
		size_t		len = strlen(keywords[i]);

		if (pg_strncasecmp(p, keywords[i], len) == 0 &&
			(p[len] == '\0' || isspace((unsigned char) p[len]) || p[len] == '('))
			return true;
	}
	return false;
}

/*
 * Turn a training or scoring source into a query: a relation name becomes
 * SELECT * FROM the relation (which must exist), anything that starts like
 * a query is wrapped as a subquery.
 */
/*
 * Row-count estimate for a source, from pg_class.reltuples when the source
 * is an analyzed relation; sizing the arrays once avoids copying them as
 * they grow.
 */
static int64
SourceRowEstimate(Oid relid)
{
	HeapTuple	tup;
	double		reltuples = -1;

	if (!OidIsValid(relid))
		return 0;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tup))
	{
		reltuples = ((Form_pg_class) GETSTRUCT(tup))->reltuples;
		ReleaseSysCache(tup);
	}
	if (reltuples <= 0 || reltuples > 1e10)
		return 0;
	return (int64) (reltuples * 1.02) + 1024;
}

static char *
SourceQuery(const char *source, Oid *relid_out)
{
	List	   *names;
	RangeVar   *rv;
	Oid			relid;

	*relid_out = InvalidOid;

	if (source == NULL || *source == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source must not be empty"),
				 errhint("Pass a table or view name, or a SELECT query.")));

	if (SourceIsQuery(source))
		return psprintf("SELECT * FROM (%s\n) AS cr_source", source);

	names = stringToQualifiedNameList(source);
	rv = makeRangeVarFromNameList(names);
	relid = RangeVarGetRelid(rv, AccessShareLock, true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("source relation \"%s\" does not exist", source),
				 errhint("Pass a table or view name, or a query starting with SELECT, WITH, VALUES or TABLE.")));
	*relid_out = relid;
	return psprintf("SELECT * FROM %s",
					quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
											   get_rel_name(relid)));
}

/* The same, and the source relation's OID (InvalidOid for a query). */
char *
DatasetSourceQueryOf(const char *source, Oid *relid)
{
	return SourceQuery(source, relid);
}

char *
DatasetSourceQuery(const char *source)
{
	Oid			relid;

	return SourceQuery(source, &relid);
}

bool
DatasetTypeIsNumeric(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return true;
		default:
			return false;
	}
}

/* 10^0 .. 10^22: every one an exact double */
static const double CrPow10[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

/*
 * A numeric as a double without going through its text, where that gives
 * exactly what numeric_out and strtod would; false otherwise (the caller
 * takes the text way).  A numeric is stored as base-10000 digits with the
 * weight of the first (the on-disk format, which pg_upgrade relies on
 * staying the same): a two-byte header for most values (sign, display
 * scale, a 7-bit weight) or a four-byte one (sign and display scale, then a
 * 16-bit weight); NaN and the infinities have neither.  When the digits
 * make an integer m of at most 2^53 and the decimal exponent e is within
 * +-22, m and 10^|e| are exact doubles and one multiplication or division
 * rounds correctly, as strtod does (Clinger's fast path).
 */
static bool
NumericToDoubleFast(Numeric num, double *out)
{
	const char *data = VARDATA_ANY(num);
	Size		len = VARSIZE_ANY_EXHDR(num);
	uint16		head;
	int			weight;
	int			hdr;
	int			ndigits;
	bool		neg;
	uint64		m = 0;
	int			e;
	double		d;

	if (len < sizeof(uint16))
		return false;
	memcpy(&head, data, sizeof(uint16));
	switch (head & 0xC000)
	{
		case 0x8000:			/* short: sign 0x2000, weight sign 0x0040, weight 0x003F */
			neg = (head & 0x2000) != 0;
			weight = (head & 0x0040) ? (int) (~0x003F | (head & 0x003F)) : (int) (head & 0x003F);
			hdr = 2;
			break;
		case 0x0000:			/* long, positive */
		case 0x4000:			/* long, negative */
			{
				int16		w;

				if (len < 4)
					return false;
				memcpy(&w, data + 2, sizeof(int16));
				neg = (head & 0xC000) == 0x4000;
				weight = w;
				hdr = 4;
				break;
			}
		default:				/* NaN, infinities */
			return false;
	}
	ndigits = (int) ((len - hdr) / sizeof(int16));
	if (ndigits == 0)
	{
		*out = 0.0;				/* zero is stored without digits */
		return true;
	}
	if (ndigits > 4)
		return false;			/* more than 16 decimal digits */
	for (int i = 0; i < ndigits; i++)
	{
		int16		digit;

		memcpy(&digit, data + hdr + i * sizeof(int16), sizeof(int16));
		if (digit < 0 || digit >= 10000)
			return false;
		m = m * 10000 + digit;
	}
	e = 4 * (weight - ndigits + 1);
	while (e < 0 && m % 10 == 0)
	{
		m /= 10;
		e++;
	}
	if (m > (UINT64CONST(1) << 53) || e < -22 || e > 22)
		return false;
	d = e >= 0 ? (double) m * CrPow10[e] : (double) m / CrPow10[-e];
	*out = neg ? -d : d;
	return true;
}

/*
 * A numeric as a double.  What numeric_float8 refuses (beyond the range of
 * double, or so small it would become 0) is refused here too, but the
 * message shows at most the first 20 characters of the value: a jsonb
 * number such as 1e-400 prints with 400 digits.  what names the value, and
 * name, when not NULL, follows it in quotes (applicant field "age").
 */
double
DatasetNumericToDouble(Numeric num, const char *what, const char *name)
{
	char	   *s;
	char	   *end;
	double		d;

	if (NumericToDoubleFast(num, &d))
		return d;
	s = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(num)));
	errno = 0;
	d = strtod(s, &end);
	if (end == s || *end != '\0')
		elog(ERROR, "unexpected numeric text \"%s\"", s);
	if (errno == ERANGE && (d == 0.0 || isinf(d)))
	{
		size_t		len = strlen(s);
		const char *more = len > 20 ? "..." : "";

		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 name ? errmsg("%s \"%s\" \"%.20s%s\" is out of range for type double precision",
							   what, name, s, more)
				 : errmsg("%s \"%.20s%s\" is out of range for type double precision", what, s, more),
				 len > 20 ? errdetail("The value has %zu characters.", len) : 0));
	}
	pfree(s);
	return d;
}

/* Convert a non-null numeric or boolean datum to double. */
double
DatasetDatumToDouble(Datum value, Oid typid)
{
	switch (typid)
	{
		case INT2OID:
			return (double) DatumGetInt16(value);
		case INT4OID:
			return (double) DatumGetInt32(value);
		case INT8OID:
			return (double) DatumGetInt64(value);
		case FLOAT4OID:
			return (double) DatumGetFloat4(value);
		case FLOAT8OID:
			return DatumGetFloat8(value);
		case NUMERICOID:
			return DatasetNumericToDouble(DatumGetNumeric(value), "value", NULL);
		case BOOLOID:
			return DatumGetBool(value) ? 1.0 : 0.0;
		default:
			elog(ERROR, "unexpected type %u", typid);
	}
	return 0.0;					/* keep compiler quiet */
}

/*
 * A key is hashed from its value (integers) or its text form: a row or an
 * array has no stable text form to split by, so it is refused.
 */
void
DatasetCheckKeyType(Oid keytype, const char *name)
{
	if (type_is_rowtype(keytype) || OidIsValid(get_element_type(keytype)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 name ? errmsg("key column \"%s\" has type %s, not a scalar", name, format_type_be(keytype))
				 : errmsg("key has type %s, not a scalar", format_type_be(keytype)),
				 errhint("Use an applicant id column: an integer or text.")));
}

/* The 0-based column of tupdesc named name, or -1. */
int
DatasetFindColumn(TupleDesc tupdesc, const char *name)
{
	return DatasetFindColumnFrom(tupdesc, name, 0);
}

/* The same, looking at columns start and after only. */
int
DatasetFindColumnFrom(TupleDesc tupdesc, const char *name, int start)
{
	for (int i = start; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

/*
 * A column's type must suit the feature it feeds: a number or boolean, or
 * for a categorical feature also text, enum and the like (see
 * CategoryDatumText).  what says whose column ("source", "applicant").
 */
void
DatasetCheckFeatureType(const char *name, Oid typid, bool categorical, const char *what)
{
	if (DatasetTypeIsNumeric(typid) || typid == BOOLOID)
		return;
	if (categorical && CategoryTypeAllowed(typid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 categorical
			 ? errmsg("%s column \"%s\" has type %s, not a category's text",
					  what, name, format_type_be(typid))
			 : errmsg("%s column \"%s\" has type %s, not a number",
					  what, name, format_type_be(typid))));
}

/*
 * Map names (a model's features; cats, when not NULL, says which are
 * categorical) to the columns of a source.  The names the source lacks are
 * reported together; owner (e.g. "pd@3") says who needs them.  outfunc,
 * when not NULL, gets each categorical feature's output function.
 */
void
DatasetMapColumns(TupleDesc tupdesc, char **names, int n, CrCategoryMap **cats,
				  const char *owner, int *attnum, Oid *atttype, FmgrInfo *outfunc)
{
	StringInfoData missing;
	int			nmissing = 0;

	initStringInfo(&missing);
	for (int j = 0; j < n; j++)
	{
		bool		cat = cats != NULL && cats[j] != NULL;

		attnum[j] = DatasetFindColumn(tupdesc, names[j]);
		if (attnum[j] < 0)
		{
			appendStringInfo(&missing, "%s%s", nmissing++ ? ", " : "", names[j]);
			continue;
		}
		atttype[j] = TupleDescAttr(tupdesc, attnum[j])->atttypid;
		DatasetCheckFeatureType(names[j], atttype[j], cat, "source");
		if (cat && outfunc != NULL)
		{
			Oid			f;
			bool		isvarlena;

			getTypeOutputInfo(atttype[j], &f, &isvarlena);
			fmgr_info(f, &outfunc[j]);
		}
	}
	if (nmissing > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("source lacks %d column%s that model %s needs: %s",
						nmissing, nmissing == 1 ? "" : "s", owner, missing.data)));
	pfree(missing.data);
}

/* The same, or an ERROR naming the column's role ("label", "key", ...). */
int
DatasetRequireColumn(TupleDesc tupdesc, const char *name, const char *role)
{
	int			i = DatasetFindColumn(tupdesc, name);

	if (i < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s column \"%s\" does not exist in the source", role, name)));
	return i;
}

/* Bytes a training run over nrows rows is expected to need at its peak. */
static double
TrainingBytes(const CrDatasetSpec *spec, int nfeatures, int64 nrows)
{
	double		per_row = (double) nfeatures * sizeof(double) + sizeof(double) +
		(spec->key ? sizeof(uint64) : 0) + sizeof(bool) +
		spec->trainer_bytes_per_row +
		(double) nfeatures * spec->trainer_bytes_per_feature_row;

	return per_row * (double) nrows;
}

static void
CheckMemory(const CrDatasetSpec *spec, int nfeatures, int64 nrows, bool estimate)
{
	double		need;

	if (spec->max_bytes == 0)
		return;
	need = TrainingBytes(spec, nfeatures, nrows);
	if (need > (double) spec->max_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s on %s" INT64_FORMAT " rows of %d features needs about %.1f MB, more than credit_risk.train_memory (%.1f MB)",
						spec->what ? spec->what : "training",
						estimate ? "about " : "more than ", nrows, nfeatures,
						need / (1024.0 * 1024.0), spec->max_bytes / (1024.0 * 1024.0)),
				 errhint("Raise credit_risk.train_memory, or use a sample (TABLESAMPLE) or fewer features.")));
}

static void
DatasetGrow(CrDataset *ds, int64 need, bool haskey, bool hassplit)
{
	int64		newcap;

	if (need <= ds->capacity)
		return;
	newcap = Max(ds->capacity * 2, Max(need, 1024));
	/* a doubling may overshoot the limit: grow only as far as it allows */
	if (ds->spec && ds->spec->max_bytes > 0 &&
		TrainingBytes(ds->spec, ds->nfeatures, newcap) > (double) ds->spec->max_bytes)
		newcap = Max(need, ds->capacity + ds->capacity / 8 + 1024);
	if (ds->spec)
		CheckMemory(ds->spec, ds->nfeatures, newcap, false);
	if ((Size) newcap * sizeof(double) > MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training source has too many rows (more than " INT64_FORMAT ")",
						ds->capacity)));
	for (int j = 0; j < ds->nfeatures; j++)
		ds->cols[j] = ds->cols[j] == NULL
			? HugeAlloc(newcap * sizeof(double))
			: HugeRealloc(ds->cols[j], newcap * sizeof(double));
	ds->label = ds->label == NULL
		? HugeAlloc(newcap * sizeof(double))
		: HugeRealloc(ds->label, newcap * sizeof(double));
	if (haskey)
		ds->keyhash = ds->keyhash == NULL
			? HugeAlloc(newcap * sizeof(uint64))
			: HugeRealloc(ds->keyhash, newcap * sizeof(uint64));
	if (hassplit)
		ds->split_holdout = ds->split_holdout == NULL
			? HugeAlloc(newcap * sizeof(bool))
			: HugeRealloc(ds->split_holdout, newcap * sizeof(bool));
	ds->capacity = newcap;
}

uint64
DatasetKeyHash(Datum value, Oid typid, Oid outfunc, uint64 seed)
{
	int64		iv;

	switch (typid)
	{
		case INT2OID:
			iv = DatumGetInt16(value);
			break;
		case INT4OID:
			iv = DatumGetInt32(value);
			break;
		case INT8OID:
			iv = DatumGetInt64(value);
			break;
		default:
			{
				/* any other type hashes its text form */
				char	   *s = OidOutputFunctionCall(outfunc, value);
				uint64		h = hash_bytes_extended((const unsigned char *) s,
													strlen(s), seed);

				pfree(s);
				return h;
			}
	}
	return hash_bytes_extended((const unsigned char *) &iv, sizeof(iv), seed);
}

/*
 * The loader is a DestReceiver: the executor hands it each row of the
 * source as a slot, and it writes the values straight into the column
 * arrays, with no intermediate copy of the tuples.
 */
typedef struct LoadReceiver
{
	DestReceiver pub;
	const CrDatasetSpec *spec;
	CrDataset  *ds;
	MemoryContext datacxt;		/* where the arrays live */
	MemoryContext rowcxt;		/* conversions; reset every few thousand rows */
	int64		estimate;
	int			label_att;
	int			key_att;
	Oid			label_type;
	Oid			key_type;
	Oid			key_out;
	int			split_att;		/* the out-of-time split column, or -1 */
	Datum		split_from;		/* its cut-off, in the column's type */
	FmgrInfo   *split_cmp;		/* the type's btree comparison */
	int		   *feat_att;
	Oid		   *feat_type;
	FmgrInfo   *feat_out;		/* categorical features: the output function */
} LoadReceiver;

/* Whether spec names column name in params.categorical. */
static bool
NamedCategorical(const CrDatasetSpec *spec, const char *name)
{
	for (int i = 0; i < spec->ncategorical; i++)
		if (strcmp(spec->categorical[i], name) == 0)
			return true;
	return false;
}

static void
LoadStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	LoadReceiver *lr = (LoadReceiver *) self;
	const CrDatasetSpec *spec = lr->spec;
	CrDataset  *ds = lr->ds;
	MemoryContext old = MemoryContextSwitchTo(lr->datacxt);

	lr->label_att = DatasetRequireColumn(tupdesc, spec->label, "label");
	lr->label_type = TupleDescAttr(tupdesc, lr->label_att)->atttypid;
	if (!DatasetTypeIsNumeric(lr->label_type) && lr->label_type != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" has type %s, not a number or boolean",
						spec->label, format_type_be(lr->label_type)),
				 errhint("The label must hold 1 for default and 0 for no default.")));

	lr->key_att = -1;
	if (spec->key != NULL)
	{
		bool		isvarlena;

		lr->key_att = DatasetRequireColumn(tupdesc, spec->key, "key");
		lr->key_type = TupleDescAttr(tupdesc, lr->key_att)->atttypid;
		DatasetCheckKeyType(lr->key_type, spec->key);
		getTypeOutputInfo(lr->key_type, &lr->key_out, &isvarlena);
	}

	lr->split_att = -1;
	if (spec->split_column != NULL)
	{
		Oid			t;
		Oid			typinput;
		Oid			typioparam;
		TypeCacheEntry *tce;

		lr->split_att = DatasetRequireColumn(tupdesc, spec->split_column, "split");
		t = TupleDescAttr(tupdesc, lr->split_att)->atttypid;
		if (t != DATEOID && t != TIMESTAMPOID && t != TIMESTAMPTZOID && !DatasetTypeIsNumeric(t))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("split column \"%s\" has type %s, not a date, timestamp or number",
							spec->split_column, format_type_be(t)),
					 errhint("Split on the application date, or cast the column in a query.")));
		getTypeInputInfo(t, &typinput, &typioparam);
		lr->split_from = OidInputFunctionCall(typinput, (char *) spec->split_from, typioparam, -1);
		tce = lookup_type_cache(t, TYPECACHE_CMP_PROC_FINFO);
		if (!OidIsValid(tce->cmp_proc_finfo.fn_oid))
			elog(ERROR, "type %s has no btree comparison", format_type_be(t));
		lr->split_cmp = &tce->cmp_proc_finfo;
	}

	if (spec->features != NULL)
	{
		ds->nfeatures = spec->nfeatures;
		ds->names = palloc(sizeof(char *) * ds->nfeatures);
		lr->feat_att = palloc(sizeof(int) * ds->nfeatures);
		for (int j = 0; j < ds->nfeatures; j++)
		{
			ds->names[j] = pstrdup(spec->features[j]);
			lr->feat_att[j] = DatasetRequireColumn(tupdesc, spec->features[j], "feature");
		}
	}
	else
	{
		ds->names = palloc(sizeof(char *) * Max(tupdesc->natts, 1));
		lr->feat_att = palloc(sizeof(int) * Max(tupdesc->natts, 1));
		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (att->attisdropped || i == lr->label_att || i == lr->key_att ||
				i == lr->split_att ||
				!(DatasetTypeIsNumeric(att->atttypid) ||
				  NamedCategorical(spec, NameStr(att->attname)) ||
				  (spec->text_features && CategoryTypeIsText(att->atttypid))))
				continue;
			ds->names[ds->nfeatures] = pstrdup(NameStr(att->attname));
			lr->feat_att[ds->nfeatures++] = i;
		}
		if (ds->nfeatures == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source has no numeric columns to use as features"),
					 errhint("Cast the columns to a numeric type in a query, or list them in the features argument.")));
	}

	/* every column named categorical must be a feature */
	for (int i = 0; i < spec->ncategorical; i++)
	{
		bool		found = false;

		for (int j = 0; j < ds->nfeatures && !found; j++)
			found = strcmp(ds->names[j], spec->categorical[i]) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 DatasetFindColumn(tupdesc, spec->categorical[i]) < 0
					 ? errmsg("params.categorical names \"%s\", which is not a column of the source",
							  spec->categorical[i])
					 : errmsg("params.categorical names \"%s\", which is not a feature",
							  spec->categorical[i]),
					 errhint("List only columns that are among the features.")));
	}

	lr->feat_type = palloc(sizeof(Oid) * ds->nfeatures);
	lr->feat_out = palloc0(sizeof(FmgrInfo) * ds->nfeatures);
	for (int j = 0; j < ds->nfeatures; j++)
	{
		Oid			t = TupleDescAttr(tupdesc, lr->feat_att[j])->atttypid;
		bool		named = NamedCategorical(spec, ds->names[j]);

		if (lr->feat_att[j] == lr->label_att)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("label column \"%s\" cannot also be a feature",
							spec->label)));
		if (lr->feat_att[j] == lr->key_att)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key column \"%s\" cannot also be a feature",
							spec->key)));
		if (lr->feat_att[j] == lr->split_att)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("split column \"%s\" cannot also be a feature",
							spec->split_column),
					 errhint("A model that splits on time should not learn from the time itself.")));
		if (named && !CategoryTypeAllowed(t))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature column \"%s\" has type %s, which cannot be categorical",
							ds->names[j], format_type_be(t)),
					 errhint("params.categorical takes text, varchar, char, enum, boolean and integer columns.")));
		if (named || CategoryTypeIsText(t))
		{
			Oid			outfunc;
			bool		isvarlena;

			if (ds->builders == NULL)
				ds->builders = palloc0(sizeof(CrCategoryBuilder *) * ds->nfeatures);
			ds->builders[j] = CategoryBuilderCreate();
			getTypeOutputInfo(t, &outfunc, &isvarlena);
			fmgr_info(outfunc, &lr->feat_out[j]);
		}
		else if (!DatasetTypeIsNumeric(t) && t != BOOLOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("feature column \"%s\" has type %s, not a number or a category",
							ds->names[j], format_type_be(t)),
					 errhint("Features are numbers, or text, enum, boolean and integer columns named in params.categorical.")));
		lr->feat_type[j] = t;
	}
	ds->cols = palloc0(sizeof(double *) * ds->nfeatures);
	MemoryContextSwitchTo(old);

	/* refuse before reading when the table's size already says no */
	if (lr->estimate > 0)
		CheckMemory(spec, ds->nfeatures, lr->estimate, true);
}

static bool
LoadReceive(TupleTableSlot *slot, DestReceiver *self)
{
	LoadReceiver *lr = (LoadReceiver *) self;
	const CrDatasetSpec *spec = lr->spec;
	CrDataset  *ds = lr->ds;
	int64		row = ds->nrows;
	Datum	   *values;
	bool	   *nulls;
	double		y;
	MemoryContext old;

	if (row >= ds->capacity)
	{
		old = MemoryContextSwitchTo(lr->datacxt);
		DatasetGrow(ds, Max(row + 1, lr->estimate), spec->key != NULL,
					spec->split_column != NULL);
		MemoryContextSwitchTo(old);
	}
	if ((row % DATASET_BATCH_ROWS) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(lr->rowcxt);
	}

	slot_getallattrs(slot);
	values = slot->tts_values;
	nulls = slot->tts_isnull;
	old = MemoryContextSwitchTo(lr->rowcxt);

	if (nulls[lr->label_att])
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("label column \"%s\" is NULL in source row " INT64_FORMAT,
						spec->label, row + 1),
				 errhint("Filter out applicants whose outcome is not known yet.")));
	y = DatasetDatumToDouble(values[lr->label_att], lr->label_type);
	if (y != 0.0 && y != 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label column \"%s\" holds %g in source row " INT64_FORMAT ", not 0 or 1",
						spec->label, y, row + 1),
				 errhint("The label must hold 1 for default and 0 for no default.")));
	ds->label[row] = y;

	for (int j = 0; j < ds->nfeatures; j++)
	{
		int			a = lr->feat_att[j];
		double		x;

		if (nulls[a])
			x = NAN;
		else if (ds->builders != NULL && ds->builders[j] != NULL)
		{
			int			len;
			char	   *text = CategoryDatumText(values[a], lr->feat_type[j],
												 &lr->feat_out[j], &len);

			/* a provisional id; too long to be a level: -1 (other) */
			x = len > CR_MAX_LEVEL_LEN ? -1.0
				: (double) CategoryBuilderId(ds->builders[j], text, len);
		}
		else
		{
			x = DatasetDatumToDouble(values[a], lr->feat_type[j]);
			if (!isfinite(x))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature column \"%s\" holds %s in source row " INT64_FORMAT,
								ds->names[j], isnan(x) ? "NaN" : (x > 0 ? "Infinity" : "-Infinity"), row + 1),
						 errhint("Use NULL for a missing value; it is imputed with the training mean.")));
		}
		ds->cols[j][row] = x;
	}

	if (lr->key_att >= 0)
	{
		if (nulls[lr->key_att])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key column \"%s\" is NULL in source row " INT64_FORMAT,
							spec->key, row + 1)));
		ds->keyhash[row] = DatasetKeyHash(values[lr->key_att], lr->key_type, lr->key_out,
								   spec->key_seed);
	}
	if (lr->split_att >= 0)
	{
		if (nulls[lr->split_att])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("split column \"%s\" is NULL in source row " INT64_FORMAT,
							spec->split_column, row + 1),
					 errhint("Filter out the rows without a value, or give them one in a query.")));
		ds->split_holdout[row] =
			DatumGetInt32(FunctionCall2Coll(lr->split_cmp, InvalidOid,
											values[lr->split_att], lr->split_from)) >= 0;
	}
	MemoryContextSwitchTo(old);
	if ((++ds->nrows & 0xFFFF) == 0)
		ProgressRows(ds->nrows);
	return true;
}

static void
ReceiverNoOp(DestReceiver *self)
{
}

bool
DatasetIsCategorical(const CrDataset *ds, int j)
{
	return (ds->cats != NULL && ds->cats[j] != NULL) ||
		(ds->builders != NULL && ds->builders[j] != NULL);
}

void
DatasetFinishCategories(CrDataset *ds, const bool *exclude, int min_count, int max_levels,
						const char *(*reference_for) (const char *feature, void *arg),
						void *arg)
{
	if (ds->builders == NULL)
		return;
	ds->cats = palloc0(sizeof(CrCategoryMap *) * ds->nfeatures);
	for (int j = 0; j < ds->nfeatures; j++)
	{
		CrCategoryBuilder *b = ds->builders[j];
		int		   *remap;
		double	   *col = ds->cols[j];
		CrCategoryMap *map;

		if (b == NULL)
			continue;
		remap = palloc(sizeof(int) * Max(CategoryBuilderCount(b), 1));
		map = CategoryBuilderFinish(b, col, exclude, ds->nrows, min_count, max_levels,
									reference_for ? reference_for(ds->names[j], arg) : NULL,
									ds->names[j], remap);
		for (int64 i = 0; i < ds->nrows; i++)
		{
			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			if (isnan(col[i]))
				continue;
			col[i] = col[i] < 0.0 ? (double) map->nlevels : (double) remap[(int) col[i]];
		}
		pfree(remap);
		ds->cats[j] = map;
	}
	ds->builders = NULL;
}

/*
 * The mean of each feature column over the rows not excluded (exclude may be
 * NULL), missing values left out; rows names them in the error for a column
 * with no value ("training", "baseline").
 */
double *
DatasetColumnMeans(const CrDataset *ds, const bool *exclude, const char *rows)
{
	int			p = ds->nfeatures;
	double	   *mean = palloc(sizeof(double) * p);

	for (int j = 0; j < p; j++)
	{
		double		sum = 0.0;
		int64		cnt = 0;

		CHECK_FOR_INTERRUPTS();

		/*
		 * Without branches: a row left out adds +0.0, which leaves the sum
		 * as it was (it starts at +0.0, so it is never -0.0).
		 */
		for (int64 i = 0; i < ds->nrows; i++)
		{
			double		x = ds->cols[j][i];
			bool		use = !(exclude && exclude[i]) & !isnan(x);

			sum += use ? x : 0.0;
			cnt += use;
		}
		if (cnt == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature column \"%s\" is NULL in every %s row", ds->names[j], rows)));
		mean[j] = sum / cnt;
		if (!isfinite(mean[j]))
		{
			/*
			 * Values near the limits of double precision overflow the sum;
			 * their mean does not, added up as x / cnt.  A model must not
			 * be stored with a value its own decoder refuses.
			 */
			sum = 0.0;
			for (int64 i = 0; i < ds->nrows; i++)
				if (!(exclude && exclude[i]) && !isnan(ds->cols[j][i]))
					sum += ds->cols[j][i] / cnt;
			mean[j] = sum;
			if (!isfinite(mean[j]))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("the mean of feature column \"%s\" is out of range for type double precision",
								ds->names[j]),
						 errhint("Scale the column down.")));
		}
	}
	return mean;
}

/*
 * The names of a features argument (text[]): one-dimensional, not empty
 * (empty_hint, if any, says what to pass instead), at most CR_MAX_FEATURES,
 * no NULL and no name twice.
 */
char **
DatasetFeatureNames(ArrayType *arr, int *n, const char *empty_hint)
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
				 empty_hint ? errhint("%s", empty_hint) : 0));
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

/*
 * Run source (a relation's name or a query, see DatasetSourceQuery),
 * read-only, into dest, in an SPI connection of its own.  what names the
 * work in errors ("scoring", "drift").
 */
void
DatasetScanSource(const char *source, DestReceiver *dest, const char *what)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	DatasetRunQuery(DatasetSourceQuery(source), source, dest, true, false, what);
	SPI_finish();
}

/*
 * Make dest a receiver of a query's rows (DatasetRunQuery): startup sees
 * the row type, receive each row; nothing to do at shutdown.
 */
void
DatasetInitReceiver(DestReceiver *dest,
					void (*startup) (DestReceiver *self, int operation, TupleDesc tupdesc),
					bool (*receive) (TupleTableSlot *slot, DestReceiver *self))
{
	dest->receiveSlot = receive;
	dest->rStartup = startup;
	dest->rShutdown = ReceiverNoOp;
	dest->rDestroy = ReceiverNoOp;
	dest->mydest = DestNone;
}

/* the canonical order of rows: key hash, then label and values */
static int
CanonicalCmp(const void *a, const void *b, void *arg)
{
	const CrDataset *ds = (const CrDataset *) arg;
	int64		ra = *(const int64 *) a;
	int64		rb = *(const int64 *) b;

	CHECK_FOR_INTERRUPTS();
	if (ds->keyhash[ra] != ds->keyhash[rb])
		return ds->keyhash[ra] < ds->keyhash[rb] ? -1 : 1;
	if (ds->label[ra] != ds->label[rb])
		return ds->label[ra] < ds->label[rb] ? -1 : 1;
	for (int j = 0; j < ds->nfeatures; j++)
	{
		double		va = ds->cols[j][ra];
		double		vb = ds->cols[j][rb];

		if (isnan(va) || isnan(vb))
		{
			if (isnan(va) != isnan(vb))
				return isnan(va) ? 1 : -1;
			continue;
		}
		/* a categorical column holds ids in order of arrival: compare their levels */
		if (ds->builders != NULL && ds->builders[j] != NULL)
		{
			int			c = va == vb ? 0 :
				strcmp(CategoryBuilderText(ds->builders[j], (int) va),
					   CategoryBuilderText(ds->builders[j], (int) vb));

			if (c != 0)
				return c;
			continue;
		}
		if (va != vb)
			return va < vb ? -1 : 1;
	}
	return ra < rb ? -1 : (ra > rb);
}

/* values[i] = values[perm[i]], through one scratch array */
static void
Permute(void *values, Size width, const int64 *perm, int64 n, char *scratch)
{
	char	   *v = values;

	for (int64 i = 0; i < n; i++)
		memcpy(scratch + i * width, v + perm[i] * width, width);
	memcpy(v, scratch, n * width);
}

/*
 * Rows with a key go into the order of their key's hash (then label and
 * values, for rows of one key): the order they arrived in, from a
 * partitioned table, foreign shards or parallel workers, no longer
 * matters, so the same rows give the same model.
 */
void
DatasetCanonicalOrder(CrDataset *ds)
{
	int64		n = ds->nrows;
	int64	   *perm = HugeAlloc(sizeof(int64) * n);
	char	   *scratch;
	bool		sorted = true;

	for (int64 i = 0; i < n; i++)
		perm[i] = i;
	for (int64 i = 1; i < n && sorted; i++)
		sorted = CanonicalCmp(&perm[i - 1], &perm[i], ds) < 0;
	if (sorted)
	{
		HugeFree(perm);
		return;
	}
	ProgressPhase("ordering rows by key", -1);
	qsort_arg(perm, n, sizeof(int64), CanonicalCmp, ds);
	scratch = HugeAlloc(sizeof(double) * n);
	for (int j = 0; j < ds->nfeatures; j++)
	{
		Permute(ds->cols[j], sizeof(double), perm, n, scratch);
		CHECK_FOR_INTERRUPTS();
	}
	Permute(ds->label, sizeof(double), perm, n, scratch);
	Permute(ds->keyhash, sizeof(uint64), perm, n, scratch);
	if (ds->split_holdout != NULL)
		Permute(ds->split_holdout, sizeof(bool), perm, n, scratch);
	HugeFree(scratch);
	HugeFree(perm);
}

/*
 * Run a source query to completion, every row going to dest.  The caller is
 * connected to SPI; source is what the user gave, for messages, and what
 * says what the rows are for ("training", "scoring", ...).  With
 * fixed_order, synchronized scans are off: such a scan starts wherever
 * another scan of the table is, so rows would arrive in a different order
 * from run to run.
 */
void
DatasetRunQuery(const char *query, const char *source, DestReceiver *dest,
				bool read_only, bool fixed_order, const char *what)
{
	SPIPlanPtr	plan;
	SPIExecuteOptions options;
	int			rc;
	int			gucnest = 0;

	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for %s source: %s", what,
			 SPI_result_code_string(SPI_result));
	if (!SPI_is_cursor_plan(plan))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source must be a single query that returns rows"),
				 errdetail("Source: %s", source)));

	memset(&options, 0, sizeof(options));
	options.read_only = read_only;
	options.dest = dest;
	if (fixed_order)
	{
		gucnest = NewGUCNestLevel();
		(void) set_config_option("synchronize_seqscans", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	rc = SPI_execute_plan_extended(plan, &options);
	if (fixed_order)
		AtEOXact_GUC(true, gucnest);
	if (rc < 0)
		elog(ERROR, "could not read the %s source: %s", what, SPI_result_code_string(rc));
	SPI_freeplan(plan);
}

CrDataset *
DatasetLoad(const CrDatasetSpec *spec)
{
	LoadReceiver lr;
	Oid			relid;
	char	   *query = SourceQuery(spec->source, &relid);

	memset(&lr, 0, sizeof(lr));
	DatasetInitReceiver(&lr.pub, LoadStartup, LoadReceive);
	lr.spec = spec;
	lr.ds = palloc0(sizeof(CrDataset));
	lr.datacxt = CurrentMemoryContext;
	lr.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk load row",
									  ALLOCSET_DEFAULT_SIZES);
	lr.estimate = SourceRowEstimate(relid);
	lr.ds->spec = spec;

	/* rows always in the same order: the split (without a key) and the model depend on it */
	DatasetRunQuery(query, spec->source, &lr.pub, false, true,
					spec->what ? spec->what : "training");
	MemoryContextDelete(lr.rowcxt);

	if (lr.ds->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s source returned no rows", spec->what ? spec->what : "training"),
				 errdetail("Source: %s", spec->source)));
	if (lr.ds->keyhash != NULL)
		DatasetCanonicalOrder(lr.ds);
	return lr.ds;
}
