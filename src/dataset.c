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
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "dataset.h"

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
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, value));
		case BOOLOID:
			return DatumGetBool(value) ? 1.0 : 0.0;
		default:
			elog(ERROR, "unexpected type %u", typid);
	}
	return 0.0;					/* keep compiler quiet */
}

static int
FindColumn(TupleDesc tupdesc, const char *name)
{
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	return -1;
}

static int
RequireColumn(TupleDesc tupdesc, const char *name, const char *role)
{
	int			i = FindColumn(tupdesc, name);

	if (i < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s column \"%s\" does not exist in the source", role, name)));
	return i;
}

static void
DatasetGrow(CrDataset *ds, int64 need, bool haskey)
{
	int64		newcap;

	if (need <= ds->capacity)
		return;
	newcap = Max(ds->capacity * 2, Max(need, 1024));
	if ((Size) newcap * sizeof(double) > MaxAllocHugeSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("training source has too many rows (more than " INT64_FORMAT ")",
						ds->capacity)));
	for (int j = 0; j < ds->nfeatures; j++)
		ds->cols[j] = ds->cols[j] == NULL
			? MemoryContextAllocHuge(CurrentMemoryContext, newcap * sizeof(double))
			: repalloc_huge(ds->cols[j], newcap * sizeof(double));
	ds->label = ds->label == NULL
		? MemoryContextAllocHuge(CurrentMemoryContext, newcap * sizeof(double))
		: repalloc_huge(ds->label, newcap * sizeof(double));
	if (haskey)
		ds->keyhash = ds->keyhash == NULL
			? MemoryContextAllocHuge(CurrentMemoryContext, newcap * sizeof(uint64))
			: repalloc_huge(ds->keyhash, newcap * sizeof(uint64));
	ds->capacity = newcap;
}

static uint64
HashKey(Datum value, Oid typid, Oid outfunc, uint64 seed)
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

CrDataset *
DatasetLoad(const CrDatasetSpec *spec)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext batchcxt;
	CrDataset  *ds;
	SPIPlanPtr	plan;
	Portal		portal;
	char	   *query;
	int			label_att = -1;
	int			key_att = -1;
	Oid			label_type = InvalidOid;
	Oid			key_type = InvalidOid;
	Oid			key_out = InvalidOid;
	int		   *feat_att = NULL;
	Oid		   *feat_type = NULL;
	Datum	   *values = NULL;
	bool	   *nulls = NULL;
	bool		first = true;
	Oid			relid;
	int64		estimate;

	query = SourceQuery(spec->source, &relid);
	estimate = SourceRowEstimate(relid);
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for training source: %s",
			 SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);

	ds = palloc0(sizeof(CrDataset));
	batchcxt = AllocSetContextCreate(callercxt, "credit_risk load batch",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		TupleDesc	tupdesc;
		uint64		nfetched;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, DATASET_BATCH_ROWS);
		nfetched = SPI_processed;
		tupdesc = SPI_tuptable->tupdesc;

		if (first)
		{
			MemoryContext old = MemoryContextSwitchTo(callercxt);

			first = false;
			label_att = RequireColumn(tupdesc, spec->label, "label");
			label_type = TupleDescAttr(tupdesc, label_att)->atttypid;
			if (!DatasetTypeIsNumeric(label_type) && label_type != BOOLOID)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("label column \"%s\" has type %s, not a number or boolean",
								spec->label, format_type_be(label_type)),
						 errhint("The label must hold 1 for default and 0 for no default.")));

			if (spec->key != NULL)
			{
				bool		isvarlena;

				key_att = RequireColumn(tupdesc, spec->key, "key");
				key_type = TupleDescAttr(tupdesc, key_att)->atttypid;
				getTypeOutputInfo(key_type, &key_out, &isvarlena);
			}

			if (spec->features != NULL)
			{
				ds->nfeatures = spec->nfeatures;
				ds->names = palloc(sizeof(char *) * ds->nfeatures);
				feat_att = palloc(sizeof(int) * ds->nfeatures);
				for (int j = 0; j < ds->nfeatures; j++)
				{
					ds->names[j] = pstrdup(spec->features[j]);
					feat_att[j] = RequireColumn(tupdesc, spec->features[j], "feature");
				}
			}
			else
			{
				ds->names = palloc(sizeof(char *) * tupdesc->natts);
				feat_att = palloc(sizeof(int) * tupdesc->natts);
				for (int i = 0; i < tupdesc->natts; i++)
				{
					Form_pg_attribute att = TupleDescAttr(tupdesc, i);

					if (att->attisdropped || i == label_att || i == key_att ||
						!DatasetTypeIsNumeric(att->atttypid))
						continue;
					ds->names[ds->nfeatures] = pstrdup(NameStr(att->attname));
					feat_att[ds->nfeatures++] = i;
				}
				if (ds->nfeatures == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("source has no numeric columns to use as features"),
							 errhint("Cast the columns to a numeric type in a query, or list them in the features argument.")));
			}

			feat_type = palloc(sizeof(Oid) * ds->nfeatures);
			for (int j = 0; j < ds->nfeatures; j++)
			{
				Oid			t = TupleDescAttr(tupdesc, feat_att[j])->atttypid;

				if (feat_att[j] == label_att)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("label column \"%s\" cannot also be a feature",
									spec->label)));
				if (feat_att[j] == key_att)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("key column \"%s\" cannot also be a feature",
									spec->key)));
				if (!DatasetTypeIsNumeric(t) && t != BOOLOID)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("feature column \"%s\" has type %s, not a number",
									ds->names[j], format_type_be(t)),
							 errhint("Encode it as a number in a query, for example with CASE.")));
				feat_type[j] = t;
			}
			ds->cols = palloc0(sizeof(double *) * ds->nfeatures);
			values = palloc(sizeof(Datum) * tupdesc->natts);
			nulls = palloc(sizeof(bool) * tupdesc->natts);
			MemoryContextSwitchTo(old);
		}

		if (nfetched == 0)
			break;

		{
			MemoryContext old = MemoryContextSwitchTo(callercxt);

			DatasetGrow(ds, Max(ds->nrows + (int64) nfetched, estimate),
						spec->key != NULL);
			MemoryContextSwitchTo(old);
		}

		MemoryContextSwitchTo(batchcxt);
		for (uint64 r = 0; r < nfetched; r++)
		{
			int64		row = ds->nrows;
			double		y;

			heap_deform_tuple(SPI_tuptable->vals[r], tupdesc, values, nulls);

			if (nulls[label_att])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("label column \"%s\" is NULL in source row " INT64_FORMAT,
								spec->label, row + 1),
						 errhint("Filter out applicants whose outcome is not known yet.")));
			y = DatasetDatumToDouble(values[label_att], label_type);
			if (y != 0.0 && y != 1.0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("label column \"%s\" holds %g in source row " INT64_FORMAT ", not 0 or 1",
								spec->label, y, row + 1),
						 errhint("The label must hold 1 for default and 0 for no default.")));
			ds->label[row] = y;

			for (int j = 0; j < ds->nfeatures; j++)
			{
				double		x;

				if (nulls[feat_att[j]])
					x = NAN;
				else
				{
					x = DatasetDatumToDouble(values[feat_att[j]], feat_type[j]);
					if (!isfinite(x))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("feature column \"%s\" holds %s in source row " INT64_FORMAT,
										ds->names[j], isnan(x) ? "NaN" : (x > 0 ? "Infinity" : "-Infinity"), row + 1),
								 errhint("Use NULL for a missing value; it is imputed with the training mean.")));
				}
				ds->cols[j][row] = x;
			}

			if (key_att >= 0)
			{
				if (nulls[key_att])
					ereport(ERROR,
							(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							 errmsg("key column \"%s\" is NULL in source row " INT64_FORMAT,
									spec->key, row + 1)));
				ds->keyhash[row] = HashKey(values[key_att], key_type, key_out,
										   spec->key_seed);
			}
			ds->nrows++;
		}
		MemoryContextSwitchTo(callercxt);
		MemoryContextReset(batchcxt);
		SPI_freetuptable(SPI_tuptable);
	}

	SPI_cursor_close(portal);
	SPI_freeplan(plan);
	MemoryContextDelete(batchcxt);

	if (ds->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("training source returned no rows"),
				 errdetail("Source: %s", spec->source)));
	return ds;
}
