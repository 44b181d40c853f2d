/*
 * train_distributed.c
 *	  cr_train with params.distributed: a logistic regression fitted from
 *	  sums computed where the rows are, or gradient-boosted trees grown from
 *	  histograms of rows binned where they are (gbm_dist.c).
 *
 * The coordinator never loads the training rows.  Each pass over them is
 * the aggregate credit_risk.cr_train_partial (partial.c) over every part
 * of the source: each leaf of a partitioned table (so that postgres_fdw
 * sends a foreign partition's aggregate whole to its shard, and the shards
 * work at once under async_capable), or the source itself (a Citus table,
 * whose workers each sum their shards; a local table, whose parallel
 * workers may).  The coordinator adds the parts' sums:
 *
 *   1. the moments: training and holdout rows, defaults, and each
 *      feature's count, mean and spread (the imputed values and the
 *      standardization);
 *   2. a Newton step: X'WX, the gradient and the log-likelihood at the
 *      trial coefficients, (k + 1)(k + 2)/2 doubles per part, whatever
 *      the rows;
 *   3. the scores: every row scored where it is with the fitted model
 *      (cr_predict with the model as a parameter), only the PD, the label
 *      and the row's split unit coming back, for the metrics;
 *   4. a sample of the training rows, drawn by their key's hash, for the
 *      drift baselines.
 *
 * The split and the sample depend on each row's key only, and the metrics
 * and baselines take the rows in the order of their key's hash, so the
 * model does not depend on how the rows are spread over the parts.  The
 * Newton steps are those of logit.c, so the coefficients are one node's
 * to rounding (the sums are added in another order).
 *
 * Trees take the moments pass (counts and imputed values), the sample (the
 * cut points besides the drift baselines) and the scores pass; in place of
 * the Newton steps, each part bins its rows once and every tree level is a
 * round trip for the histograms of the nodes to build (gbm_dist.h).
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "binning.h"
#include "credit_risk.h"
#include "drift.h"
#include "gbm_dist.h"
#include "hugemem.h"
#include "logit.h"
#include "metrics.h"
#include "partial.h"
#include "params.h"
#include "progress.h"
#include "remote.h"
#include "train.h"

/* rows fetched from a cursor at a time */
#define DIST_FETCH_ROWS		10000

/* the sample of the drift baselines has its own seed, apart from the split's */
#define DIST_SAMPLE_SEED(seed)	(((seed) + 0x5851F42D) & PG_INT32_MAX)

/*
 * The rows drawn for the drift baselines: BIN_SAMPLE_MAX (what a loaded
 * fit bins from), fewer for a wide source, so that the sample stays within
 * 16 million values (128 MB).
 */
static int64
DistSampleRows(int p)
{
	return Min(BIN_SAMPLE_MAX, Max(4096, (int64) 16 * 1024 * 1024 / Max(p, 1)));
}

/* The source as the passes see it: its parts and the SQL of a row's values. */
typedef struct DistSource
{
	char	   *source;			/* the source's FROM item */
	char	  **parts;			/* FROM items */
	Oid		   *partoids;		/* a leaf's OID, or InvalidOid (the source itself) */
	int			nparts;
	int			p;
	char	  **names;
	char	   *features;		/* ARRAY[f1::float8, ...] */
	char	   *label;			/* the label as float8 */
	char	   *unit;			/* cr_split_unit(key, seed) */
	char	   *sample_unit;	/* the same with the sample's seed */
	int			newton_passes;
	int			remote_score_parts; /* parts scored on their shard */
	int64		sums_bytes;		/* of the parts' sums (moments, Newton steps) */
	int64		score_bytes;	/* of the scores (3 doubles a row) */
	int64		sample_bytes;	/* of the sample ((p + 1) doubles a row) */
	int64		score_rows;
	int64		sample_rows;
	/* seconds in each kind of pass */
	double		moments_seconds;
	double		newton_seconds;
	double		score_seconds;
	double		sample_seconds;
} DistSource;

static void
CheckSupported(const CrTrainParams *tp)
{
	const char *what = NULL;

	if (tp->key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.distributed needs params.key"),
				 errhint("The split, and the order the metrics take the rows in, come from each row's key, wherever the row is.")));
	if (tp->cv > 0)
		what = "params.cv";
	else if (tp->split_column != NULL)
		what = "params.split";
	else if (tp->calibration != CR_CALIBRATION_NONE)
		what = "params.calibration";
	else if (tp->ncategorical > 0)
		what = "params.categorical";
	else if (tp->algorithm == CR_ALGO_GBM && tp->gbm.subsample < 1.0)
		what = "params.subsample";
	if (what != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("params.distributed does not take %s", what),
				 errhint("Train without params.distributed (the rows are loaded), or leave out %s.", what)));
}

/*
 * Resolve the source: its columns (features: the given names, or every
 * numeric column but the label and key), and its parts.
 */
static void
DistResolve(TrainRun *run, DistSource *src)
{
	CrTrainParams *tp = &run->tp;
	Oid			relid;
	char	   *query = DatasetSourceQueryOf(run->source, &relid);
	TupleDesc	tupdesc;
	int			label_att,
				key_att;
	Oid			label_type;
	StringInfoData buf;

	/* the columns: a relation's row type (no query to the shards), or the query's */
	if (OidIsValid(relid))
		tupdesc = lookup_rowtype_tupdesc_copy(get_rel_type_id(relid), -1);
	else
	{
		if (SPI_execute(psprintf("%s LIMIT 0", query), true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the columns of the training source");
		tupdesc = CreateTupleDescCopy(SPI_tuptable->tupdesc);
		SPI_freetuptable(SPI_tuptable);
	}

	label_att = DatasetRequireColumn(tupdesc, run->label, "label");
	key_att = DatasetRequireColumn(tupdesc, tp->key, "key");
	label_type = TupleDescAttr(tupdesc, label_att)->atttypid;
	if (!DatasetTypeIsNumeric(label_type) && label_type != BOOLOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label column \"%s\" has type %s, not a number or boolean",
						run->label, format_type_be(label_type)),
				 errhint("The label must hold 1 for default and 0 for no default.")));
	DatasetCheckKeyType(TupleDescAttr(tupdesc, key_att)->atttypid, tp->key);
	/* the shards hash the key under their own settings: only types whose text does not depend on them */
	switch (getBaseType(TupleDescAttr(tupdesc, key_att)->atttypid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NUMERICOID:
		case UUIDOID:
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("params.distributed takes a key of an integer, text, numeric or uuid type, not %s",
							format_type_be(TupleDescAttr(tupdesc, key_att)->atttypid)),
					 errdetail("A key of another type is hashed from its text, which depends on settings (DateStyle, TimeZone, extra_float_digits) that the shards may not share."),
					 errhint("Use a query source that casts the key, e.g. extract(epoch FROM %s)::bigint.",
							 quote_identifier(tp->key))));
	}

	if (run->spec.features != NULL)
	{
		src->p = run->spec.nfeatures;
		src->names = run->spec.features;
	}
	else
	{
		src->names = palloc(sizeof(char *) * Max(tupdesc->natts, 1));
		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (!att->attisdropped && i != label_att && i != key_att &&
				DatasetTypeIsNumeric(att->atttypid))
				src->names[src->p++] = pstrdup(NameStr(att->attname));
		}
		if (src->p == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source has no numeric columns to use as features"),
					 errhint("List them in the features argument.")));
	}
	if (src->p > CR_PARTIAL_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("params.distributed takes at most %d features, not %d",
						CR_PARTIAL_MAX_FEATURES, src->p)));

	initStringInfo(&buf);
	appendStringInfoString(&buf, "ARRAY[");
	for (int j = 0; j < src->p; j++)
	{
		int			a = DatasetRequireColumn(tupdesc, src->names[j], "feature");
		Oid			t = TupleDescAttr(tupdesc, a)->atttypid;

		if (a == label_att || a == key_att)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s column \"%s\" cannot also be a feature",
							a == label_att ? "label" : "key", src->names[j])));
		if (strlen(src->names[j]) > CR_MAX_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("feature name \"%s\" is longer than %d bytes", src->names[j],
							CR_MAX_NAME_LEN)));
		if (!DatasetTypeIsNumeric(t))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("feature column \"%s\" has type %s; params.distributed takes numbers only",
							src->names[j], format_type_be(t)),
					 errhint("Train without params.distributed to use categorical features.")));
		appendStringInfo(&buf, "%s%s::float8", j ? ", " : "", quote_identifier(src->names[j]));
	}
	appendStringInfoChar(&buf, ']');
	src->features = buf.data;
	src->label = label_type == BOOLOID
		? psprintf("%s::int::float8", quote_identifier(run->label))
		: psprintf("%s::float8", quote_identifier(run->label));
	src->unit = psprintf("credit_risk.cr_split_unit(%s, " INT64_FORMAT ")",
						 quote_identifier(tp->key), tp->seed);
	src->sample_unit = psprintf("credit_risk.cr_split_unit(%s, " INT64_FORMAT ")",
								quote_identifier(tp->key), DIST_SAMPLE_SEED(tp->seed));

	/*
	 * The parts: a partitioned table's leaves when they all are foreign
	 * tables (each leaf's aggregate then goes whole to its shard), a
	 * foreign table itself, else the source.  Leaves are read as themselves, so the caller needs SELECT on
	 * them, and a parent whose row-level security applies to the caller is
	 * read through the parent, as a query of it would be.
	 */
	src->nparts = 1;
	src->parts = palloc(sizeof(char *));
	src->partoids = palloc0(sizeof(Oid));
	/* SELECT * FROM x: the FROM item is what follows */
	src->source = src->parts[0] = query + strlen("SELECT * FROM ");
	if (OidIsValid(relid) && (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE ||
							  get_rel_relkind(relid) == RELKIND_FOREIGN_TABLE))
	{
		List	   *leaves = RemoteForeignLeaves(relid);
		ListCell   *lc;
		int			i = 0;

		if (leaves == NIL)
			return;
		src->nparts = list_length(leaves);
		src->parts = palloc(sizeof(char *) * src->nparts);
		src->partoids = palloc(sizeof(Oid) * src->nparts);
		foreach(lc, leaves)
		{
			Oid			leaf = lfirst_oid(lc);

			src->partoids[i] = leaf;
			src->parts[i++] = quote_qualified_identifier(get_namespace_name(get_rel_namespace(leaf)),
														 get_rel_name(leaf));
		}
	}
}

/*
 * select (with $1, a bytea, and where, which may be empty) over every part
 * but those skip marks (skip may be NULL), one SELECT per part under UNION
 * ALL; NULL if every part is skipped.
 */
static char *
DistQuerySkipping(const DistSource *src, const char *select, const char *where, const bool *skip)
{
	StringInfoData buf;
	bool		any = false;

	initStringInfo(&buf);
	for (int i = 0; i < src->nparts; i++)
	{
		if (skip != NULL && skip[i])
			continue;
		appendStringInfo(&buf, "%sSELECT %s FROM %s%s%s", any ? "\nUNION ALL " : "",
						 select, src->parts[i], *where ? " WHERE " : "", where);
		any = true;
	}
	return any ? buf.data : NULL;
}

static char *
DistQuery(const DistSource *src, const char *select, const char *where)
{
	return DistQuerySkipping(src, select, where, NULL);
}

/* One pass: cr_train_partial with spec over every part, the parts' sums added. */
static void
DistPass(DistSource *src, const CrPartialSpec *spec, CrPartialSums *sums)
{
	bytea	   *bytes = PartialSpecEncode(spec);
	uint64		hash = PartialSpecHash(bytes);
	Datum		arg = PointerGetDatum(bytes);
	Oid			argtype = BYTEAOID;
	char	   *select = psprintf("credit_risk.cr_train_partial($1, %s, %s, %s)",
								  src->features, src->label, src->unit);
	char	   *query = DistQuery(src, select, "");

	if (SPI_execute_with_args(query, 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run a training pass over the source");
	PartialSumsInit(sums, spec->kind, spec->p);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		if (isnull)
			continue;			/* a part without rows */
		src->sums_bytes += toast_raw_datum_size(d);
		PartialSumsAdd(sums, (bytea *) PG_DETOAST_DATUM(d), hash);
	}
	SPI_freetuptable(SPI_tuptable);
	pfree(query);
	pfree(select);
	pfree(bytes);
}

/* LogitNewton's pass: a Newton pass over the parts */
typedef struct DistNewton
{
	DistSource *src;
	CrPartialSpec spec;
} DistNewton;

static double
DistNewtonPass(void *arg, const double *beta, double *H, double *g)
{
	DistNewton *dn = (DistNewton *) arg;
	CrPartialSums sums;
	int			k = dn->spec.p + 1;

	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	dn->spec.beta = beta;
	DistPass(dn->src, &dn->spec, &sums);
	dn->src->newton_passes++;
	dn->src->newton_seconds += ProgressSecondsSince(start);
	memcpy(H, sums.H, sizeof(double) * k * k);
	memcpy(g, sums.g, sizeof(double) * k);
	pfree(sums.H);
	pfree(sums.g);
	return sums.ll;
}

/* a scored row, for the metrics */
typedef struct DistScore
{
	double		unit;
	double		label;
	double		prob;
} DistScore;

static int
DistScoreCmp(const void *a, const void *b)
{
	const DistScore *x = a;
	const DistScore *y = b;

	if (x->unit != y->unit)
		return x->unit < y->unit ? -1 : 1;
	if (x->label != y->label)
		return x->label < y->label ? -1 : 1;
	return (x->prob > y->prob) - (x->prob < y->prob);
}

/*
 * Rows of query (with $1 = arg, a bytea, or no parameter) a cursor-full
 * at a time, each given to row(ctx, tuple, tupdesc).
 */
static void
DistFetch(const char *query, bytea *arg,
		  void (*row) (void *ctx, HeapTuple tup, TupleDesc td), void *ctx)
{
	Datum		argd = PointerGetDatum(arg);
	Oid			argtype = BYTEAOID;
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL, query, arg ? 1 : 0, &argtype, &argd, NULL,
									   true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, DIST_FETCH_ROWS);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
			row(ctx, SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
}

/* A float8 column of a fetched row; NULL is an error (the row changed under us). */
static double
FetchedDouble(HeapTuple tup, TupleDesc td, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, col, &isnull);

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a training row changed while it was being trained on"),
				 errdetail("Its score, label or key was NULL in a later pass.")));
	return DatumGetFloat8(d);
}

typedef struct ScoreCollector
{
	DistScore  *rows;
	int64		n;
	int64		cap;
	int64		max_rows;		/* within credit_risk.train_memory */
} ScoreCollector;

/* what the metrics keep a row: its score, and its PD and label on one side */
#define DIST_SCORE_BYTES	(sizeof(DistScore) + 2 * sizeof(double))

/* The ERROR for more scores than the metrics may keep. */
static void pg_attribute_noreturn()
ScoreLimitError(const ScoreCollector *sc)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("the metrics of more than " INT64_FORMAT " rows need more than credit_risk.train_memory (%d kB)",
					sc->max_rows, cr_train_memory_kb),
			 errdetail("A distributed fit keeps %d bytes a row on the coordinator for its metrics.",
					   (int) DIST_SCORE_BYTES),
			 errhint("Raise credit_risk.train_memory (a superuser setting).")));
}

/* Keep a row's score, label and split unit. */
static void
CollectScoreValues(ScoreCollector *sc, double prob, double label, double unit)
{
	if (sc->n == sc->max_rows)
		ScoreLimitError(sc);
	if (sc->n == sc->cap)
	{
		sc->cap = Min(Max(sc->cap * 2, 65536), sc->max_rows);
		sc->rows = sc->rows == NULL ? HugeAlloc(sizeof(DistScore) * sc->cap)
			: HugeRealloc(sc->rows, sizeof(DistScore) * sc->cap);
	}
	sc->rows[sc->n].prob = prob;
	sc->rows[sc->n].label = label;
	sc->rows[sc->n].unit = unit;
	sc->n++;
}

static void
CollectScore(void *ctx, HeapTuple tup, TupleDesc td)
{
	CollectScoreValues((ScoreCollector *) ctx, FetchedDouble(tup, td, 1),
					   FetchedDouble(tup, td, 2), FetchedDouble(tup, td, 3));
}

/* rows a FETCH asks a shard for */
#define DIST_REMOTE_FETCH	10000

/* Keep the scores of a FETCH's binary result (PD, label, unit); false if one is not a float8. */
static bool
CollectRemoteScores(PGresult *res, ScoreCollector *sc)
{
	int			n = PQntuples(res);

	if (PQnfields(res) != 3)
		return false;
	for (int c = 0; c < 3; c++)
		if (PQftype(res, c) != FLOAT8OID || PQfformat(res, c) != 1)
			return false;
	for (int i = 0; i < n; i++)
	{
		double		v[3];

		for (int c = 0; c < 3; c++)
		{
			uint64		be;

			if (PQgetisnull(res, i, c) || PQgetlength(res, i, c) != sizeof(be))
				return false;
			memcpy(&be, PQgetvalue(res, i, c), sizeof(be));
			be = pg_ntoh64(be);
			memcpy(&v[c], &be, sizeof(double));
		}
		CollectScoreValues(sc, v[0], v[1], v[2]);
	}
	return true;
}

/*
 * The scores of the rows of n shards' tables, computed on each shard (a
 * connection of our own: postgres_fdw would bring the features here to
 * compute them), the model as a parameter.  The shards work at once: a
 * FETCH goes to each before the results are read.
 */
static void
DistRemoteScores(const DistSource *src, char **server, char **table, int n,
				 const bytea *model, ScoreCollector *sc)
{
	CrRemote   *r = palloc0(sizeof(CrRemote) * n);
	bool	   *done = palloc0(sizeof(bool) * n);
	const char *fetch = "FETCH " CppAsString2(DIST_REMOTE_FETCH) " FROM cr_scores";
	int			left = n;

	PG_TRY();
	{
		for (int i = 0; i < n; i++)
		{
			/* the model goes as a binary parameter: its bytes as they are */
			char	   *declare = psprintf("DECLARE cr_scores NO SCROLL CURSOR FOR"
										   " SELECT credit_risk.cr_predict($1, %s), %s, %s FROM %s",
										   src->features, src->label, src->unit, table[i]);

			r[i].server = server[i];
			RemoteConnect(&r[i], "credit_risk cr_train");
			PQclear(RemoteExec(&r[i], "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
			RemoteSendBytea(&r[i], declare, model);
			PQclear(RemoteReceive(&r[i], declare));
		}
		while (left > 0)
		{
			/* in binary: 8 bytes a value, exact, and nothing to parse */
			for (int i = 0; i < n; i++)
				if (!done[i])
					RemoteSendBytea(&r[i], fetch, NULL);
			for (int i = 0; i < n; i++)
			{
				PGresult   *res;
				bool		ok;

				if (done[i])
					continue;
				res = RemoteReceive(&r[i], fetch);
				if (sc->n + PQntuples(res) > sc->max_rows)
				{
					PQclear(res);
					ScoreLimitError(sc);
				}
				ok = CollectRemoteScores(res, sc);
				if (PQntuples(res) < DIST_REMOTE_FETCH)
				{
					done[i] = true;
					left--;
				}
				PQclear(res);
				if (!ok)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_EXCEPTION),
							 errmsg("server \"%s\" returned a score, label or key that is not a float8 value",
									server[i]),
							 errdetail("A training row may have changed while it was being trained on.")));
			}
			CHECK_FOR_INTERRUPTS();
		}
		for (int i = 0; i < n; i++)
			PQclear(RemoteExec(&r[i], "COMMIT"));
	}
	PG_CATCH();
	{
		for (int i = 0; i < n; i++)
		{
			RemoteCancel(&r[i]);
			RemoteClose(&r[i]);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	for (int i = 0; i < n; i++)
		RemoteClose(&r[i]);
}

/*
 * Score every row where it is with the fitted model, and compute the
 * metrics as cr_train does: the rows in the order of their key's hash.
 */
static void
DistEvaluate(DistSource *src, const CrTrainParams *tp, CrModel *model, TrainFit *fit,
			 int64 *ntrain, int64 *nhold)
{
	CrModel		scorer = *model;
	bytea	   *bytes;
	char	   *select = psprintf("credit_risk.cr_predict($1, %s), %s, %s",
								  src->features, src->label, src->unit);
	ScoreCollector sc = {NULL, 0, 0, (int64) cr_train_memory_kb * 1024 / DIST_SCORE_BYTES};
	double	   *hp,
			   *hl,
			   *trp,
			   *trl;
	int64		h = 0,
				t = 0;

	/* the score's baseline comes from these scores: the scorer goes without */
	scorer.baseline = NULL;
	bytes = ModelEncode(&scorer);
	/* a shard's foreign table scored on the shard, the other parts through SPI */
	{
		bool	   *remote = palloc0(sizeof(bool) * src->nparts);
		char	  **server = palloc0(sizeof(char *) * src->nparts);
		char	  **table = palloc0(sizeof(char *) * src->nparts);
		char	   *local;

		for (int i = 0; i < src->nparts; i++)
			remote[i] = OidIsValid(src->partoids[i]) &&
				RemoteTableOf(src->partoids[i], &server[i], &table[i]);
		{
			char	  **rs = palloc(sizeof(char *) * src->nparts);
			char	  **rt = palloc(sizeof(char *) * src->nparts);
			int			nr = 0;

			for (int i = 0; i < src->nparts; i++)
				if (remote[i])
				{
					rs[nr] = server[i];
					rt[nr++] = table[i];
				}
			if (nr > 0)
				DistRemoteScores(src, rs, rt, nr, bytes, &sc);
			src->remote_score_parts = nr;
		}
		local = DistQuerySkipping(src, select, "", remote);
		if (local != NULL)
			DistFetch(local, bytes, CollectScore, &sc);
	}
	src->score_rows = sc.n;
	src->score_bytes = sc.n * 3 * sizeof(double);
	if (sc.n > 0)
		qsort(sc.rows, sc.n, sizeof(DistScore), DistScoreCmp);
	hp = HugeAlloc(sizeof(double) * Max(sc.n, 1));
	hl = HugeAlloc(sizeof(double) * Max(sc.n, 1));
	trp = HugeAlloc(sizeof(double) * Max(sc.n, 1));
	trl = HugeAlloc(sizeof(double) * Max(sc.n, 1));
	for (int64 i = 0; i < sc.n; i++)
	{
		if (sc.rows[i].unit < tp->holdout)
		{
			hp[h] = sc.rows[i].prob;
			hl[h++] = sc.rows[i].label;
		}
		else
		{
			trp[t] = sc.rows[i].prob;
			trl[t++] = sc.rows[i].label;
		}
	}
	if (sc.rows != NULL)
		HugeFree(sc.rows);
	/* the rows must be those the fit saw */
	if (t != *ntrain || h != *nhold)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the training source changed while it was being trained on"),
				 errdetail("The fit saw " INT64_FORMAT " training and " INT64_FORMAT
						   " holdout rows; the scores came back for " INT64_FORMAT " and " INT64_FORMAT ".",
						   *ntrain, *nhold, t, h),
				 errhint("Train from a source that returns the same rows each time it is read: one that does not change during the run (or a REPEATABLE READ transaction on a single node), without volatile functions such as random().")));
	TrainEvaluate(fit, tp->scoring.threshold, hp, hl, h, trp, trl, t);
	pfree(bytes);
}

typedef struct SampleCollector
{
	int			p;
	double	  **cols;
	int64		n;
	int64		cap;
} SampleCollector;

static void
CollectSample(void *ctx, HeapTuple tup, TupleDesc td)
{
	SampleCollector *sc = (SampleCollector *) ctx;
	bool		isnull;
	Datum		d = SPI_getbinval(tup, td, 2, &isnull);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;

	if (isnull)
		elog(ERROR, "a sampled row has no features");
	arr = DatumGetArrayTypeP(d);
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &elems, &nulls, &n);
	if (n != sc->p)
		elog(ERROR, "a sampled row has %d features, not %d", n, sc->p);
	if (sc->n == sc->cap)
	{
		sc->cap = Max(sc->cap * 2, 16384);
		for (int j = 0; j < sc->p; j++)
			sc->cols[j] = sc->cols[j] == NULL ? HugeAlloc(sizeof(double) * sc->cap)
				: HugeRealloc(sc->cols[j], sizeof(double) * sc->cap);
	}
	for (int j = 0; j < sc->p; j++)
		sc->cols[j][sc->n] = nulls[j] ? NAN : DatumGetFloat8(elems[j]);
	sc->n++;
	pfree(elems);
	pfree(nulls);
}

/*
 * A sample of the training rows: those whose sample unit is below the
 * share that draws DistSampleRows of them, in the order of that unit.
 */
static void
DistSample(DistSource *src, const CrTrainParams *tp, int64 ntrain, SampleCollector *sc)
{
	StringInfoData select;
	double		share = Min(1.0, (double) DistSampleRows(src->p) / Max(ntrain, 1));
	char	   *where = psprintf("%s >= %.17g AND %s < %.17g", src->unit, tp->holdout,
								 src->sample_unit, share);
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	/* the array whole (a subscript each would build it p times), in the units' order */
	initStringInfo(&select);
	appendStringInfo(&select, "SELECT s.u, s.f FROM (%s) s ORDER BY s.u, s.f",
					 DistQuery(src, psprintf("%s AS u, %s AS f", src->sample_unit, src->features),
							   where));
	memset(sc, 0, sizeof(*sc));
	sc->p = src->p;
	sc->cols = palloc0(sizeof(double *) * src->p);
	DistFetch(select.data, NULL, CollectSample, sc);
	src->sample_rows = sc->n;
	src->sample_bytes = sc->n * (src->p + 1) * sizeof(double);
	src->sample_seconds = ProgressSecondsSince(start);
}

/* The drift baselines of the features, from the sample (freed). */
static void
DistBaselines(SampleCollector *sc, const CrTrainParams *tp, CrModel *model)
{
	double	   *work = HugeAlloc(BinWorkBytes(sc->n));

	model->baseline = palloc0(sizeof(CrBaseline) * (sc->p + 1));
	for (int j = 0; j < sc->p; j++)
	{
		DriftBaselineBuild(&model->baseline[j], sc->cols[j] ? sc->cols[j] : work, NULL, sc->n,
						   (uint64) tp->seed, work);
		if (sc->cols[j] != NULL)
			HugeFree(sc->cols[j]);
		sc->cols[j] = NULL;
	}
	HugeFree(work);
}

/*
 * Gradient-boosted trees from histograms summed over the parts
 * (gbm_dist.c), with cut points from the sample as a fit of loaded rows
 * finds them from its training rows.
 */
static void
DistGbm(DistSource *src, CrTrainParams *tp, CrModel *model, TrainFit *fit,
		int64 ntrain, int64 nhold, int64 pos)
{
	int			p = src->p;
	SampleCollector sc;
	GbmLoadSpec spec;
	GbmDistPart *parts;
	int			nparts = src->nparts;
	GbmDistStats st;
	CrGbmResult *res;
	int64		lt,
				lh,
				lp;
	double		ybar,
				base;
	double	   *work;
	instr_time	start;

	tp->gbm.seed = (uint64) tp->seed;
	tp->gbm.monotone = ParamsMonotone(tp, src->names, p);

	/* the cut points, then the drift baselines, from one key-hash sample */
	ProgressPhase("sampling the rows for the cut points and the drift baselines", -1);
	DistSample(src, tp, ntrain, &sc);
	INSTR_TIME_SET_CURRENT(start);
	memset(&spec, 0, sizeof(spec));
	spec.p = p;
	spec.edges = palloc(sizeof(CrBinEdges) * p);
	work = HugeAlloc(BinWorkBytes(sc.n));
	for (int j = 0; j < p; j++)
	{
		spec.edges[j].cuts = palloc(sizeof(double) * CR_MAX_VALUE_BINS);
		spec.edges[j].ncuts = sc.cols[j] == NULL ? 0
			: BinFindCuts(sc.cols[j], NULL, sc.n, Min(tp->gbm.max_bin, CR_MAX_VALUE_BINS),
						  BIN_SAMPLE_MAX, tp->gbm.seed + (uint64) j, work, spec.edges[j].cuts);
	}
	HugeFree(work);
	DistBaselines(&sc, tp, model);

	/* the first margin: the default rate weighted by the class weights */
	ybar = tp->gbm.class_weight[1] * pos /
		(tp->gbm.class_weight[0] * (ntrain - pos) + tp->gbm.class_weight[1] * pos);
	base = tp->gbm.base_score > 0 ? tp->gbm.base_score : ybar;
	spec.holdout = tp->holdout;
	spec.weight[0] = tp->gbm.class_weight[0];
	spec.weight[1] = tp->gbm.scale_pos_weight * tp->gbm.class_weight[1];
	spec.base_margin = log(base / (1.0 - base));

	/*
	 * The parts: each shard's table, when every part is one of a server
	 * that lists credit_risk (the rows stay there); else the source, binned
	 * in this backend.
	 */
	parts = palloc0(sizeof(GbmDistPart) * nparts);
	for (int i = 0; i < nparts; i++)
		if (!OidIsValid(src->partoids[i]) ||
			!RemoteTableOf(src->partoids[i], &parts[i].server, &parts[i].table))
		{
			nparts = 1;
			parts[0].server = NULL;
			parts[0].table = src->source;
			break;
		}
	res = GbmBoostDistributed(parts, nparts,
							  psprintf("credit_risk.cr_gbm_shard_load($1, %s, %s, %s)",
									   src->features, src->label, src->unit),
							  &spec, &tp->gbm, &lt, &lh, &lp, &st);
	res->bin_seconds = ProgressSecondsSince(start) - st.tree_seconds;
	if (lt != ntrain || lh != nhold || lp != pos)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("the training source changed while it was being trained on"),
				 errdetail("The first pass saw " INT64_FORMAT " training rows (" INT64_FORMAT
						   " defaults) and " INT64_FORMAT " holdout rows; the parts binned "
						   INT64_FORMAT " (" INT64_FORMAT ") and " INT64_FORMAT ".",
						   ntrain, pos, nhold, lt, lp, lh)));
	model->algorithm = CR_ALGO_GBM;
	model->forest = res->forest;
	TrainGbmReport(fit, res, src->names, p);
	appendStringInfo(&fit->extra,
					 ", \"distributed\": {\"parts\": %d, \"parts_binned_on_shard\": %d"
					 ", \"round_trips\": " INT64_FORMAT ", \"levels\": " INT64_FORMAT
					 ", \"bytes_sent\": " INT64_FORMAT ", \"bytes_received\": " INT64_FORMAT
					 ", \"shard_bytes\": " INT64_FORMAT,
					 src->nparts, st.parts_on_shard, st.round_trips, st.levels,
					 st.bytes_sent, st.bytes_received, st.shard_bytes);
	appendStringInfoString(&fit->extra, ", \"load_seconds\": ");
	CrAppendDouble(&fit->extra, st.load_seconds);
	appendStringInfoString(&fit->extra, ", \"tree_seconds\": ");
	CrAppendDouble(&fit->extra, st.tree_seconds);
}

Datum
TrainDistributed(TrainRun *run)
{
	CrTrainParams *tp = &run->tp;
	DistSource	src;
	CrPartialSpec spec;
	CrPartialSums mom;
	CrModel		model;
	TrainFit	fit;
	CrLogitFit *lf;
	DistNewton	dn;
	SampleCollector sample;
	int64		ntrain,
				nhold,
				pos;
	int			p,
				k;
	double	   *mean,
			   *sd,
			   *inv_sd;
	double		wsum,
				ybar;
	instr_time	start;
	int			save_nest;
	Datum		result;

	CheckSupported(tp);
	/*
	 * No JIT for the passes: compiling a pass's expressions (an array of p
	 * features) costs more than the pass, and cannot be interrupted.
	 */
	save_nest = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	run->traincxt = AllocSetContextCreate(run->callercxt, "credit_risk train",
										  ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(run->traincxt);

	memset(&src, 0, sizeof(src));
	DistResolve(run, &src);
	p = src.p;
	k = p + 1;

	/* 1. the moments */
	ProgressPhase("summing the rows' moments where they are", -1);
	memset(&spec, 0, sizeof(spec));
	spec.kind = CR_PARTIAL_MOMENTS;
	spec.p = p;
	spec.holdout = tp->holdout;
	spec.class_weight[0] = spec.class_weight[1] = 1.0;
	spec.names = src.names;
	INSTR_TIME_SET_CURRENT(start);
	DistPass(&src, &spec, &mom);
	src.moments_seconds = ProgressSecondsSince(start);
	ntrain = (int64) mom.moments[PARTIAL_ROWS];
	nhold = (int64) mom.moments[PARTIAL_ROWS + 1];
	pos = (int64) mom.moments[PARTIAL_DEFAULTS];
	if (ntrain + nhold == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("training source returned no rows")));
	TrainCheckCounts(ntrain + nhold, ntrain, nhold, pos, tp->holdout, run->label);
	TrainClassWeights(ntrain, pos, tp);
	INSTR_TIME_SET_CURRENT(run->loaded);

	memset(&model, 0, sizeof(model));
	model.algorithm = CR_ALGO_LOGISTIC;
	model.nfeatures = p;
	model.features = src.names;
	model.scoring = tp->scoring;
	model.drift_moderate = tp->drift_moderate;
	model.drift_major = tp->drift_major;
	model.impute = palloc(sizeof(double) * p);
	memset(&fit, 0, sizeof(fit));
	initStringInfo(&fit.extra);
	initStringInfo(&fit.importance);
	mean = palloc0(sizeof(double) * k);
	sd = palloc0(sizeof(double) * k);
	inv_sd = palloc0(sizeof(double) * k);
	sd[0] = inv_sd[0] = 1.0;
	for (int j = 0; j < p; j++)
	{
		const double *fm = mom.moments + PARTIAL_FEATURE(j);	/* count, mean, m2 */
		double		m = fm[1];
		double		v = sqrt(fm[2] / ntrain);	/* of the imputed values */

		if (fm[0] == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature column \"%s\" is NULL in every training row", src.names[j])));
		model.impute[j] = m;
		if (tp->algorithm == CR_ALGO_GBM)
			continue;			/* trees need neither the spread nor a varying column */
		if (!isfinite(m) || !isfinite(v))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("the values of feature \"%s\" are too large to standardise in double precision",
							src.names[j]),
					 errhint("Scale the column down.")));
		if (!(v > 1e-12 * Max(1.0, fabs(m))))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature \"%s\" is constant in the training rows", src.names[j]),
					 errhint("Remove it from the features.")));
		mean[j + 1] = m;
		sd[j + 1] = v;
		inv_sd[j + 1] = 1.0 / v;
	}

	if (tp->algorithm == CR_ALGO_GBM)
	{
		/* 2. the trees, 3. the drift baselines */
		DistGbm(&src, tp, &model, &fit, ntrain, nhold, pos);
		ProgressPhase("scoring the rows where they are", -1);
		INSTR_TIME_SET_CURRENT(start);
		DistEvaluate(&src, tp, &model, &fit, &ntrain, &nhold);
		src.score_seconds = ProgressSecondsSince(start);
	}
	else
	{
		/* 2. Newton's method, a pass over the parts per step */
		wsum = tp->logit.class_weight[0] * (ntrain - pos) + tp->logit.class_weight[1] * pos;
		ybar = tp->logit.class_weight[1] * pos / wsum;
		dn.src = &src;
		dn.spec = spec;
		dn.spec.kind = CR_PARTIAL_NEWTON;
		dn.spec.class_weight[0] = tp->logit.class_weight[0];
		dn.spec.class_weight[1] = tp->logit.class_weight[1];
		dn.spec.mean = mean;
		dn.spec.inv_sd = inv_sd;
		dn.spec.impute = model.impute;
		lf = LogitNewton(DistNewtonPass, &dn, k, ybar, mean, sd, src.names, &tp->logit);
		model.coef = lf->coef;
		model.std_error = lf->std_error;

		/* 3. the drift baselines and 4. the metrics */
		ProgressPhase("sampling the rows for the drift baselines", -1);
		DistSample(&src, tp, ntrain, &sample);
		DistBaselines(&sample, tp, &model);
		ProgressPhase("scoring the rows where they are", -1);
		INSTR_TIME_SET_CURRENT(start);
		DistEvaluate(&src, tp, &model, &fit, &ntrain, &nhold);
		src.score_seconds = ProgressSecondsSince(start);

		appendStringInfo(&fit.extra, ", \"iterations\": %d", lf->iterations);
		appendStringInfoString(&fit.extra, ", \"log_likelihood\": ");
		CrAppendDouble(&fit.extra, lf->log_likelihood);
		appendStringInfoString(&fit.extra, ", \"null_log_likelihood\": ");
		CrAppendDouble(&fit.extra, lf->null_log_likelihood);
		appendStringInfoString(&fit.extra, ", \"pseudo_r2\": ");
		CrAppendDouble(&fit.extra, 1.0 - lf->log_likelihood / lf->null_log_likelihood);
		appendStringInfo(&fit.extra,
						 ", \"distributed\": {\"parts\": %d, \"newton_passes\": %d"
						 ", \"sums_bytes\": " INT64_FORMAT,
						 src.nparts, src.newton_passes, src.sums_bytes);
		appendStringInfoString(&fit.extra, ", \"newton_seconds\": ");
		CrAppendDouble(&fit.extra, src.newton_seconds);
		appendStringInfoChar(&fit.importance, '{');
		for (int j = 0; j < p; j++)
		{
			if (j)
				appendStringInfoString(&fit.importance, ", ");
			escape_json(&fit.importance, src.names[j]);
			appendStringInfoString(&fit.importance, ": ");
			CrAppendDouble(&fit.importance, fabs(lf->std_coef[j + 1]));
		}
		appendStringInfoChar(&fit.importance, '}');
	}

	/* the passes both fits make */
	appendStringInfo(&fit.extra,
					 ", \"scored_rows\": " INT64_FORMAT ", \"score_bytes\": " INT64_FORMAT
					 ", \"sampled_rows\": " INT64_FORMAT ", \"sample_bytes\": " INT64_FORMAT,
					 src.score_rows, src.score_bytes, src.sample_rows, src.sample_bytes);
	appendStringInfo(&fit.extra, ", \"parts_scored_on_shard\": %d", src.remote_score_parts);
	appendStringInfoString(&fit.extra, ", \"moments_seconds\": ");
	CrAppendDouble(&fit.extra, src.moments_seconds);
	appendStringInfoString(&fit.extra, ", \"sample_seconds\": ");
	CrAppendDouble(&fit.extra, src.sample_seconds);
	appendStringInfoString(&fit.extra, ", \"score_seconds\": ");
	CrAppendDouble(&fit.extra, src.score_seconds);
	appendStringInfoChar(&fit.extra, '}');

	ProgressPhase("registering", -1);
	result = TrainRegister(run, tp, &model, &fit, NULL, NULL, ntrain, nhold);
	TrainEnd(run);
	AtEOXact_GUC(true, save_nest);
	return result;
}
