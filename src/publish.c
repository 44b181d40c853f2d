/*
 * publish.c
 *	  cr_publish: the coordinator's registry and routes on every shard, all
 *	  at once or on none.
 *
 * For each named foreign server (a postgres_fdw shard), cr_publish opens a
 * connection with the caller's user mapping and, in one transaction there,
 * writes every version of the coordinator's credit_risk.models (those that
 * are no longer champions first, so that a name never has two) and makes
 * the shard's credit_risk.routes the coordinator's, then checks that the
 * shard serves exactly what the coordinator serves.  Each shard's
 * transaction is prepared (PREPARE TRANSACTION); when every shard has
 * prepared, each is committed; when any fails, every one is rolled back,
 * and no shard changes.  That is two-phase commit: should a shard become
 * unreachable between its PREPARE and its COMMIT PREPARED, cr_publish says
 * so and names the prepared transaction, and the shard keeps serving what
 * it had until that is committed.
 *
 * The rows travel as text, both sides set to the same DateStyle, TimeZone
 * and extra_float_digits.  Versions only the shard has are left alone (as
 * cr_mirror leaves them), unless they would make it serve something the
 * coordinator does not, which fails the check.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "remote.h"

PG_FUNCTION_INFO_V1(cr_publish);

/* what the coordinator and a shard serve: name@version:status, in order, and the routes */
#define SERVING_SQL \
	"SELECT coalesce((SELECT string_agg(name || '@' || version || ':' || status, ' ' ORDER BY name, version)" \
	"                   FROM credit_risk.models WHERE status IN ('champion', 'challenger')), '')" \
	"    || ' routes ' ||" \
	"       coalesce((SELECT string_agg(name || '@' || challenger_version || ':' || share, ' ' ORDER BY name)" \
	"                   FROM credit_risk.routes), '')"

/* the settings both sides write and read the rows' text under */
#define TEXT_SETTINGS(fn) \
	"SELECT " fn "('DateStyle', 'ISO', true), " fn "('TimeZone', 'UTC', true), " \
	fn "('extra_float_digits', '3', true), " fn "('bytea_output', 'hex', true)"

/* a table's rows as text, each column's text and its name */
typedef struct TextRows
{
	int			ncols;
	char	  **cols;
	int			nrows;
	char	 ***values;			/* NULL where NULL */
} TextRows;

typedef struct Shard
{
	CrRemote	r;				/* first: a Shard is a CrRemote */
	bool		prepared;		/* PREPARE TRANSACTION done */
	bool		committed;
	char	   *gid;
	int64		counts[3];		/* versions sent, inserted, updated */
	char	   *failure;		/* of COMMIT PREPARED */
} Shard;

/* Undo whatever a failed publish left on the shards. */
static void
PublishAbort(Shard *shards, int n)
{
	for (int i = 0; i < n; i++)
	{
		Shard	   *sh = &shards[i];

		if (sh->r.conn == NULL)
			continue;
		if (sh->prepared && !sh->committed)
		{
			char	   *sql = psprintf("ROLLBACK PREPARED '%s'", sh->gid);
			PGresult   *res;

			res = PQexec(sh->r.conn, sql);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				ereport(WARNING,
						(errmsg("could not roll back prepared transaction \"%s\" on server \"%s\"",
								sh->gid, sh->r.server),
						 errhint("Run ROLLBACK PREPARED '%s' on that server.", sh->gid)));
			PQclear(res);
		}
		else
			RemoteCancel(&sh->r);	/* a query still running there */
		RemoteClose(&sh->r);	/* an open transaction ends with the session */
	}
}

/* s, in the memory of the procedure that connected to SPI */
static char *
SpiStrdup(const char *s)
{
	Size		len = strlen(s) + 1;
	char	   *d = SPI_palloc(len);

	memcpy(d, s, len);
	return d;
}

/* Every row of query (run under TEXT_SETTINGS) as text, in the caller's memory. */
static void
ReadTextRows(const char *query, TextRows *tr)
{
	TupleDesc	td;

	if (SPI_execute(query, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the registry: %s", query);
	td = SPI_tuptable->tupdesc;
	tr->ncols = td->natts;
	tr->nrows = (int) SPI_processed;
	tr->cols = SPI_palloc(sizeof(char *) * tr->ncols);
	tr->values = SPI_palloc(sizeof(char **) * Max(tr->nrows, 1));
	for (int c = 0; c < tr->ncols; c++)
		tr->cols[c] = SpiStrdup(NameStr(TupleDescAttr(td, c)->attname));
	for (int r = 0; r < tr->nrows; r++)
	{
		tr->values[r] = SPI_palloc(sizeof(char *) * tr->ncols);
		for (int c = 0; c < tr->ncols; c++)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[r], td, c + 1);

			tr->values[r][c] = v ? SpiStrdup(v) : NULL;
		}
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * INSERT INTO table (cols) VALUES ($1, ...) ON CONFLICT (key) DO UPDATE
 * SET every other column, when any differs; RETURNING whether it inserted.
 */
static char *
UpsertSql(const char *table, const char *key, const TextRows *tr)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfo(&b, "INSERT INTO %s AS t (", table);
	for (int c = 0; c < tr->ncols; c++)
		appendStringInfo(&b, "%s%s", c ? ", " : "", quote_identifier(tr->cols[c]));
	appendStringInfoString(&b, ") VALUES (");
	for (int c = 0; c < tr->ncols; c++)
		appendStringInfo(&b, "%s$%d", c ? ", " : "", c + 1);
	appendStringInfo(&b, ") ON CONFLICT (%s) DO UPDATE SET ", quote_identifier(key));
	for (int c = 0, n = 0; c < tr->ncols; c++)
		if (strcmp(tr->cols[c], key) != 0)
			appendStringInfo(&b, "%s%s = EXCLUDED.%s", n++ ? ", " : "",
							 quote_identifier(tr->cols[c]), quote_identifier(tr->cols[c]));
	appendStringInfoString(&b, " WHERE t IS DISTINCT FROM EXCLUDED RETURNING t.xmax = 0");
	return b.data;
}

/* Send every row of tr to sh with sql (UpsertSql's), counting inserts and updates. */
static void
SendRows(Shard *sh, const char *sql, const TextRows *tr, bool count)
{
	for (int r = 0; r < tr->nrows; r++)
	{
		PGresult   *res = RemoteExecParams(&sh->r, sql, tr->ncols, tr->values[r]);

		if (count && PQntuples(res) == 1)
			sh->counts[strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 1 : 2]++;
		PQclear(res);
	}
	if (count)
		sh->counts[0] += tr->nrows;
}

/*
 * cr_publish(servers text[]): for each server, a row: server, the versions
 * sent, those inserted and updated on it, and whether it is committed.
 */
Datum
cr_publish(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *names;
	bool	   *nulls;
	int			n;
	char	   *serving;
	TextRows	models;
	TextRows	routes;
	TextRows	now_serving;
	char	   *models_sql;
	char	   *routes_sql;
	char	   *route_names;
	Shard	   *shards;
	uint64		nonce;

	PreventInTransactionBlock(true, "cr_publish()");
	/* a caller that cannot take the rows fails here, before any shard is touched */
	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("servers must not be null")));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_publish needs at least one server")));
	shards = palloc0(sizeof(Shard) * n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("server names must not be null")));
		shards[i].r.server = TextDatumGetCString(names[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(shards[j].r.server, shards[i].r.server) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("server \"%s\" is named twice", shards[i].r.server)));
	}

	/*
	 * What the coordinator has and serves, as this statement sees it: the
	 * versions that are not champions first, so that a shard's champion
	 * steps down before its successor arrives.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(TEXT_SETTINGS("pg_catalog.set_config"), false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not set the publish's settings");
	ReadTextRows("SELECT * FROM credit_risk.models ORDER BY status = 'champion', id", &models);
	ReadTextRows("SELECT * FROM credit_risk.routes ORDER BY name", &routes);
	ReadTextRows(SERVING_SQL, &now_serving);
	serving = now_serving.values[0][0];
	SPI_finish();
	models_sql = UpsertSql("credit_risk.models", "id", &models);
	routes_sql = UpsertSql("credit_risk.routes", "name", &routes);
	{
		StringInfoData b;

		initStringInfo(&b);
		appendStringInfoString(&b, "DELETE FROM credit_risk.routes WHERE NOT name = ANY (ARRAY[");
		for (int r = 0; r < routes.nrows; r++)
			appendStringInfo(&b, "%s%s", r ? ", " : "", quote_literal_cstr(routes.values[r][0]));
		appendStringInfoString(&b, "]::text[])");
		route_names = b.data;
	}
	nonce = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 40);

	PG_TRY();
	{
		/* phase one: every shard takes the rows, checks and prepares */
		for (int i = 0; i < n; i++)
		{
			Shard	   *sh = &shards[i];
			char	   *theirs;

			CHECK_FOR_INTERRUPTS();
			RemoteConnect(&sh->r, "credit_risk cr_publish");
			PQclear(RemoteExec(&sh->r, "BEGIN ISOLATION LEVEL READ COMMITTED"));
			PQclear(RemoteExec(&sh->r, TEXT_SETTINGS("pg_catalog.set_config")));
			SendRows(sh, models_sql, &models, true);
			PQclear(RemoteExec(&sh->r, route_names));
			SendRows(sh, routes_sql, &routes, false);
			theirs = RemoteValue(&sh->r, SERVING_SQL);
			if (strcmp(theirs, serving) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("server \"%s\" would not serve what the coordinator serves", sh->r.server),
						 errdetail("The coordinator serves \"%s\"; the server would serve \"%s\".",
								   serving, theirs),
						 errhint("A version only the server has is a champion or challenger there: retire it on the server.")));
			sh->gid = psprintf("cr_publish_" UINT64_FORMAT "_%d", nonce, i);
			PQclear(RemoteExec(&sh->r, psprintf("PREPARE TRANSACTION '%s'", sh->gid)));
			sh->prepared = true;
		}
	}
	PG_CATCH();
	{
		PublishAbort(shards, n);
		PG_RE_THROW();
	}
	PG_END_TRY();

	/* phase two: every shard has prepared; commit each */
	for (int i = 0; i < n; i++)
	{
		Shard	   *sh = &shards[i];
		PGresult   *res = PQexec(sh->r.conn, psprintf("COMMIT PREPARED '%s'", sh->gid));

		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			sh->committed = true;
		else
		{
			sh->failure = pstrdup(pchomp(PQerrorMessage(sh->r.conn)));
			ereport(WARNING,
					(errmsg("server \"%s\" has prepared the publish but could not commit it: %s",
							sh->r.server, sh->failure),
					 errhint("Run COMMIT PREPARED '%s' on server \"%s\"; until then it serves what it had.",
							 sh->gid, sh->r.server)));
		}
		PQclear(res);
		RemoteClose(&sh->r);
	}

	/* the rows */
	for (int i = 0; i < n; i++)
	{
		Datum		v[5];
		bool		isnull[5] = {false, false, false, false, false};

		v[0] = CStringGetTextDatum(shards[i].r.server);
		for (int c = 0; c < 3; c++)
		{
			v[c + 1] = Int64GetDatum(shards[i].counts[c]);
			isnull[c + 1] = shards[i].counts[c] < 0;
		}
		v[4] = BoolGetDatum(shards[i].committed);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, isnull);
	}
	return (Datum) 0;
}
