/*
 * batch_shards.c
 *	  cr_predict_batch and cr_explain_batch run on the shards: when the
 *	  source is a foreign table, or a partitioned table whose partitions all
 *	  are, of postgres_fdw servers that list credit_risk in their extensions
 *	  option, each shard runs the same function over its own table and only
 *	  the results come back.
 *
 * postgres_fdw cannot send a set-returning function to a shard, so we reach
 * each shard with a connection of our own (remote.c), with the caller's
 * user mapping.  Every shard works at once; their rows come back through a
 * cursor on each, 10,000 at a fetch.  On each shard, in one REPEATABLE READ
 * transaction, the shard must first serve for the name exactly what the
 * coordinator serves (versions, statuses, the route), or the run stops
 * before any row is scored: cr_publish brings the shards up to date.  A
 * cancel on the coordinator cancels every shard's query.  The rows come in
 * binary, read by each column type's receive function (a float8 is its 8
 * bytes, not text to parse).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"

#include "batch_shards.h"
#include "dataset.h"
#include "remote.h"

/* what a shard serves for a name: its versions that serve, and its route */
#define NAME_SERVING_SQL \
	"SELECT coalesce((SELECT string_agg(version || ':' || status, ' ' ORDER BY version)" \
	"                   FROM credit_risk.models WHERE name = $1 AND status IN ('champion', 'challenger')), '')" \
	"    || ' route ' ||" \
	"       coalesce((SELECT challenger_version || ':' || share FROM credit_risk.routes WHERE name = $1), '')"

typedef struct BatchShard
{
	CrRemote	r;
	char	   *table;			/* the shard's table, qualified */
	bool		done;
} BatchShard;

/*
 * How a result column is read from its binary form.  The batches' columns
 * are numbers and text (the key as text), built-in types whose OIDs and
 * binary forms are the same on every server.  A number goes through its
 * type's receive function.  Text is taken as it comes: the shard sends it
 * in this database's encoding (the connection's client_encoding), where
 * text's receive function would convert it from this session's
 * client_encoding, which may be another.
 */
typedef struct BatchColumn
{
	bool		is_text;
	FmgrInfo	recv;			/* a number's receive function */
	Oid			ioparam;
	int32		typmod;
} BatchColumn;

/* The shard behind foreign table relid, or false if it is not one of ours. */
static bool
ShardOf(Oid relid, BatchShard *sh)
{
	memset(sh, 0, sizeof(*sh));
	return RemoteTableOf(relid, &sh->r.server, &sh->table);
}

/*
 * The shards of source, when it is a foreign table or a partitioned table
 * whose leaves all are (postgres_fdw, credit_risk in the server's
 * extensions); else NULL.  The caller must be allowed to read the source.
 */
static BatchShard *
BatchShardsOf(const char *source, int *nshards)
{
	Oid			relid;
	List	   *leaves;
	BatchShard *shards;
	ListCell   *lc;
	int			n = 0;

	(void) DatasetSourceQueryOf(source, &relid);
	if (!OidIsValid(relid))
		return NULL;			/* a query */
	leaves = RemoteForeignLeaves(relid);
	if (leaves == NIL)
		return NULL;
	shards = palloc0(sizeof(BatchShard) * list_length(leaves));
	foreach(lc, leaves)
		if (!ShardOf(lfirst_oid(lc), &shards[n++]))
			return NULL;

	/* the shards read as the user mapping's role: the caller must be allowed here */
	{
		AclResult	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);

		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, get_relkind_objtype(get_rel_relkind(relid)), get_rel_name(relid));
	}
	*nshards = n;
	return shards;
}

static void
BatchShardsAbort(BatchShard *shards, int n)
{
	for (int i = 0; i < n; i++)
	{
		RemoteCancel(&shards[i].r);
		RemoteClose(&shards[i].r);
	}
}

/* rows a FETCH asks a shard for */
#define BATCH_FETCH_ROWS	10000

/* Ask sh for its next rows, in binary, without waiting for them. */
static void
BatchShardFetch(BatchShard *sh)
{
	RemoteSendBytea(&sh->r, "FETCH " CppAsString2(BATCH_FETCH_ROWS) " FROM cr_batch", NULL);
}

/*
 * Start the run on sh: connect, check what it serves, open a cursor over
 * its batch and ask for the first rows (the shard computes its batch then).
 */
static void
BatchShardStart(BatchShard *sh, const char *name, const char *serving, const char *func,
				const char *key, bool explain, const char *top)
{
	char	   *params[4];
	char	   *theirs;
	char	   *sql;
	PGresult   *res;

	RemoteConnect(&sh->r, "credit_risk batch");
	PQclear(RemoteExec(&sh->r, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
	params[0] = (char *) name;
	res = RemoteExecParams(&sh->r, NAME_SERVING_SQL, 1, params);
	theirs = pstrdup(PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	if (strcmp(theirs, serving) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("server \"%s\" does not serve model \"%s\" as the coordinator does",
						sh->r.server, name),
				 errdetail("The coordinator serves \"%s\"; the server serves \"%s\".", serving, theirs),
				 errhint("Publish the registry to the shards with credit_risk.cr_publish.")));
	params[1] = sh->table;
	params[2] = (char *) key;
	params[3] = (char *) top;
	sql = psprintf("DECLARE cr_batch NO SCROLL CURSOR FOR SELECT * FROM credit_risk.%s($1, $2, $3%s)",
				   func, explain ? ", $4::int" : "");
	PQclear(RemoteExecParams(&sh->r, sql, explain ? 4 : 3, params));
	BatchShardFetch(sh);
}

/*
 * The rows of sh's FETCH into the tuplestore, when they have come; then the
 * next FETCH, or, after the last rows, the end of sh's transaction.  False
 * once sh is done.
 */
static bool
BatchShardDrain(BatchShard *sh, ReturnSetInfo *rsinfo, BatchColumn *cols,
				MemoryContext rowcxt, int version_col, const char *challenger, int64 *rows)
{
	TupleDesc	desc = rsinfo->setDesc;
	Size		challenger_len = challenger ? strlen(challenger) : 0;
	int			natts = rsinfo->setDesc->natts;
	PGresult   *res;
	int			n;

	if (!PQconsumeInput(sh->r.conn))
		RemoteLost(&sh->r);
	if (PQisBusy(sh->r.conn))
		return true;
	res = RemoteWait(sh->r.conn);	/* the FETCH's result, the query's end read */
	if (res == NULL)
		RemoteLost(&sh->r);
	RemoteCheck(&sh->r, res, "FETCH FROM cr_batch");
	if (PQnfields(res) != natts)
	{
		int			got = PQnfields(res);

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("server \"%s\" returned %d columns, not %d", sh->r.server, got, natts),
				 errhint("Install the same version of credit_risk on every shard.")));
	}
	n = PQntuples(res);
	PG_TRY();
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		Datum	   *values = palloc(sizeof(Datum) * natts);
		bool	   *nulls = palloc(sizeof(bool) * natts);

		for (int c = 0; c < natts; c++)
			if (PQfformat(res, c) != 1 || PQftype(res, c) != TupleDescAttr(desc, c)->atttypid)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("server \"%s\" returned column %d as another type", sh->r.server, c + 1),
						 errhint("Install the same version of credit_risk on every shard.")));
		for (int i = 0; i < n; i++)
		{
			for (int c = 0; c < natts; c++)
			{
				StringInfoData buf;

				nulls[c] = PQgetisnull(res, i, c);
				if (nulls[c])
				{
					values[c] = (Datum) 0;
					continue;
				}
				if (cols[c].is_text)
				{
					const char *v = PQgetvalue(res, i, c);
					int			len = PQgetlength(res, i, c);

					(void) pg_verifymbstr(v, len, false);
					values[c] = PointerGetDatum(cstring_to_text_with_len(v, len));
					continue;
				}
				/* libpq ends every value with a zero byte, as receive functions expect */
				buf.data = PQgetvalue(res, i, c);
				buf.len = PQgetlength(res, i, c);
				buf.maxlen = buf.len + 1;
				buf.cursor = 0;
				values[c] = ReceiveFunctionCall(&cols[c].recv, &buf, cols[c].ioparam, cols[c].typmod);
				if (buf.cursor != buf.len)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
							 errmsg("server \"%s\" returned column %d in a binary form it does not read as",
									sh->r.server, c + 1)));
			}
			tuplestore_putvalues(rsinfo->setResult, desc, values, nulls);
			/* rows[0] the champion's, rows[1] the challenger's (the version label's text) */
			rows[version_col >= 0 && challenger != NULL && !nulls[version_col] &&
				 (Size) PQgetlength(res, i, version_col) == challenger_len &&
				 memcmp(PQgetvalue(res, i, version_col), challenger, challenger_len) == 0]++;
			if ((i & 0x3FF) == 0x3FF)
			{
				MemoryContextReset(rowcxt);
				values = palloc(sizeof(Datum) * natts);
				nulls = palloc(sizeof(bool) * natts);
				CHECK_FOR_INTERRUPTS();
			}
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	PG_CATCH();
	{
		PQclear(res);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PQclear(res);
	if (n == BATCH_FETCH_ROWS)
	{
		BatchShardFetch(sh);
		return true;
	}
	sh->done = true;
	PQclear(RemoteExec(&sh->r, "COMMIT"));
	RemoteClose(&sh->r);
	return false;
}

/*
 * Run func (cr_predict_batch, or cr_explain_batch with top: NULL for all)
 * for name on every shard of source into fcinfo's tuplestore, if source
 * is sharded so; false (nothing done) if it is not.  rows[0] and rows[1]
 * count the rows of the champion and of the challenger (by its version
 * label; explanations, which do not say, count as the champion's).
 */
bool
BatchOnShards(FunctionCallInfo fcinfo, const char *func, const char *name, const char *source,
			  const char *key, bool explain, const char *top, const char *challenger,
			  int64 *rows)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BatchShard *shards;
	int			n = 0;
	char	   *serving;
	BatchColumn *cols;
	MemoryContext rowcxt;
	volatile int version_col = -1;

	shards = BatchShardsOf(source, &n);
	if (shards == NULL)
		return false;

	/* what the coordinator serves for the name */
	{
		Oid			argtype = TEXTOID;
		Datum		arg = CStringGetTextDatum(name);

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args(NAME_SERVING_SQL, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not read what model \"%s\" serves", name);
		serving = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		serving = MemoryContextStrdup(rsinfo->econtext->ecxt_per_query_memory, serving);
		SPI_finish();
	}

	cols = palloc(sizeof(BatchColumn) * rsinfo->setDesc->natts);
	for (int c = 0; c < rsinfo->setDesc->natts; c++)
	{
		Form_pg_attribute att = TupleDescAttr(rsinfo->setDesc, c);
		Oid			recv;

		cols[c].is_text = att->atttypid == TEXTOID;
		cols[c].typmod = att->atttypmod;
		if (cols[c].is_text)
			continue;
		if (att->atttypid != FLOAT8OID && att->atttypid != INT4OID && att->atttypid != INT8OID)
			elog(ERROR, "a batch's column %d is of type %s, not a number or text",
				 c + 1, format_type_be(att->atttypid));
		getTypeBinaryInputInfo(att->atttypid, &recv, &cols[c].ioparam);
		fmgr_info(recv, &cols[c].recv);
	}
	for (int c = 0; c < rsinfo->setDesc->natts; c++)
		if (strcmp(NameStr(TupleDescAttr(rsinfo->setDesc, c)->attname), "model_version") == 0)
			version_col = c;
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk batch row",
								   ALLOCSET_SMALL_SIZES);
	rows[0] = rows[1] = 0;
	PG_TRY();
	{
		int			remaining = n;

		for (int i = 0; i < n; i++)
			BatchShardStart(&shards[i], name, serving, func, key, explain, top);
		while (remaining > 0)
		{
			bool		waiting = true;
			int			rc;
			pgsocket	sock = PGINVALID_SOCKET;

			for (int i = 0; i < n; i++)
			{
				if (shards[i].done)
					continue;
				if (!BatchShardDrain(&shards[i], rsinfo, cols, rowcxt, version_col, challenger, rows))
				{
					remaining--;
					waiting = false;
				}
				else if (sock == PGINVALID_SOCKET)
					sock = PQsocket(shards[i].r.conn);
			}
			if (remaining == 0 || !waiting)
				continue;
			/* the first busy shard's socket, or a short nap for the others */
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH |
								   (n > 1 ? WL_TIMEOUT : 0),
								   sock, n > 1 ? 1L : -1L, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
				ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		BatchShardsAbort(shards, n);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextDelete(rowcxt);
	return true;
}
