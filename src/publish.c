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
#include "commands/defrem.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

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
	char	   *server;
	PGconn	   *conn;
	bool		in_xact;		/* BEGIN sent */
	bool		prepared;		/* PREPARE TRANSACTION done */
	bool		committed;
	char	   *gid;
	int64		counts[3];		/* versions sent, inserted, updated */
	char	   *failure;		/* of COMMIT PREPARED */
} Shard;

/* Wait for conn's result, interruptibly; the last result, or NULL. */
static PGresult *
RemoteWait(PGconn *conn)
{
	PGresult   *last = NULL;

	for (;;)
	{
		PGresult   *res;

		while (PQisBusy(conn))
		{
			int			rc = WaitLatchOrSocket(MyLatch,
											   WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
											   PQsocket(conn), -1L, PG_WAIT_EXTENSION);

			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			{
				if (last)
					PQclear(last);
				return NULL;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			return last;
		if (last)
			PQclear(last);
		last = res;
	}
}

/* Run sql with nparams text params on sh; its result (PGRES_TUPLES_OK or COMMAND_OK), or an ERROR naming the server. */
static PGresult *
RemoteExecParams(Shard *sh, const char *sql, int nparams, char **params)
{
	PGresult   *res = NULL;
	ExecStatusType st;

	if (!PQsendQueryParams(sh->conn, sql, nparams, NULL, (const char *const *) params, NULL, NULL, 0) ||
		(res = RemoteWait(sh->conn)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("lost the connection to server \"%s\" while publishing", sh->server),
				 errdetail_internal("%s", pchomp(PQerrorMessage(sh->conn)))));
	st = PQresultStatus(res);
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		char	   *msg = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
								  ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
								  : pchomp(PQerrorMessage(sh->conn)));
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		char	   *hint_copy = hint ? pstrdup(hint) : NULL;
		int			code = state && strlen(state) == 5
			? MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])
			: ERRCODE_CONNECTION_FAILURE;

		PQclear(res);
		ereport(ERROR,
				(errcode(code),
				 errmsg("server \"%s\" refused the publish: %s", sh->server, msg),
				 hint_copy ? errhint("%s", hint_copy) : 0,
				 errcontext("remote SQL: %s", sql)));
	}
	return res;
}

static PGresult *
RemoteExec(Shard *sh, const char *sql)
{
	return RemoteExecParams(sh, sql, 0, NULL);
}

/* One value of a one-row result, copied. */
static char *
RemoteValue(Shard *sh, const char *sql)
{
	PGresult   *res = RemoteExec(sh, sql);
	char	   *v = PQntuples(res) == 1 && PQnfields(res) >= 1 ? pstrdup(PQgetvalue(res, 0, 0)) : NULL;

	PQclear(res);
	if (v == NULL)
		elog(ERROR, "server \"%s\" returned no row for: %s", sh->server, sql);
	return v;
}

/* Connect to a postgres_fdw server with the caller's user mapping. */
static void
RemoteConnect(Shard *sh)
{
	ForeignServer *server = GetForeignServerByName(sh->server, false);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	UserMapping *um;
	PQconninfoOption *defaults = PQconndefaults();
	List	   *opts;
	ListCell   *lc;
	const char **keys;
	const char **vals;
	int			n = 0;
	AclResult	acl;

	if (strcmp(fdw->fdwname, "postgres_fdw") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a postgres_fdw server", sh->server)));
	acl = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FOREIGN_SERVER, server->servername);
	um = GetUserMapping(GetUserId(), server->serverid);
	opts = list_concat(list_copy(server->options), um->options);

	keys = palloc(sizeof(char *) * (list_length(opts) + 3));
	vals = palloc(sizeof(char *) * (list_length(opts) + 3));
	/* the options libpq knows; postgres_fdw's own (fetch_size, ...) are not for it */
	foreach(lc, opts)
	{
		DefElem    *d = lfirst(lc);

		for (PQconninfoOption *o = defaults; o && o->keyword; o++)
			if (strcmp(o->keyword, d->defname) == 0 && strchr(o->dispchar, 'D') == NULL &&
				strcmp(o->keyword, "replication") != 0)
			{
				keys[n] = d->defname;
				vals[n++] = defGetString(d);
				break;
			}
	}
	PQconninfoFree(defaults);
	keys[n] = "fallback_application_name";
	vals[n++] = "credit_risk cr_publish";
	keys[n] = "client_encoding";
	vals[n++] = GetDatabaseEncodingName();
	keys[n] = NULL;
	vals[n] = NULL;

	sh->conn = PQconnectdbParams(keys, vals, false);
	if (sh->conn == NULL || PQstatus(sh->conn) != CONNECTION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to server \"%s\"", sh->server),
				 errdetail_internal("%s", sh->conn ? pchomp(PQerrorMessage(sh->conn)) : "out of memory")));
	/* as postgres_fdw: only a superuser may connect without a password */
	if (!superuser() && !PQconnectionUsedPassword(sh->conn))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to publish to server \"%s\"", sh->server),
				 errdetail("Non-superusers must authenticate to the shard with a password, as postgres_fdw requires.")));
}

/* Undo whatever a failed publish left on the shards. */
static void
PublishAbort(Shard *shards, int n)
{
	for (int i = 0; i < n; i++)
	{
		Shard	   *sh = &shards[i];

		if (sh->conn == NULL)
			continue;
		if (sh->prepared && !sh->committed)
		{
			char	   *sql = psprintf("ROLLBACK PREPARED '%s'", sh->gid);
			PGresult   *res;

			/* a running query first (a cancel), then the rollback */
			res = PQexec(sh->conn, sql);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				ereport(WARNING,
						(errmsg("could not roll back prepared transaction \"%s\" on server \"%s\"",
								sh->gid, sh->server),
						 errhint("Run ROLLBACK PREPARED '%s' on that server.", sh->gid)));
			PQclear(res);
		}
		else if (sh->in_xact && PQtransactionStatus(sh->conn) == PQTRANS_ACTIVE)
		{
			PGcancel   *c = PQgetCancel(sh->conn);
			char		err[256];

			if (c)
			{
				(void) PQcancel(c, err, sizeof(err));
				PQfreeCancel(c);
			}
		}
		PQfinish(sh->conn);		/* an open transaction ends with the session */
		sh->conn = NULL;
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
		PGresult   *res = RemoteExecParams(sh, sql, tr->ncols, tr->values[r]);

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
		shards[i].server = TextDatumGetCString(names[i]);
		for (int j = 0; j < i; j++)
			if (strcmp(shards[j].server, shards[i].server) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("server \"%s\" is named twice", shards[i].server)));
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
			RemoteConnect(sh);
			PQclear(RemoteExec(sh, "BEGIN ISOLATION LEVEL READ COMMITTED"));
			sh->in_xact = true;
			PQclear(RemoteExec(sh, TEXT_SETTINGS("pg_catalog.set_config")));
			SendRows(sh, models_sql, &models, true);
			PQclear(RemoteExec(sh, route_names));
			SendRows(sh, routes_sql, &routes, false);
			theirs = RemoteValue(sh, SERVING_SQL);
			if (strcmp(theirs, serving) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("server \"%s\" would not serve what the coordinator serves", sh->server),
						 errdetail("The coordinator serves \"%s\"; the server would serve \"%s\".",
								   serving, theirs),
						 errhint("A version only the server has is a champion or challenger there: retire it on the server.")));
			sh->gid = psprintf("cr_publish_" UINT64_FORMAT "_%d", nonce, i);
			PQclear(RemoteExec(sh, psprintf("PREPARE TRANSACTION '%s'", sh->gid)));
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
		PGresult   *res = PQexec(sh->conn, psprintf("COMMIT PREPARED '%s'", sh->gid));

		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			sh->committed = true;
		else
		{
			sh->failure = pstrdup(pchomp(PQerrorMessage(sh->conn)));
			ereport(WARNING,
					(errmsg("server \"%s\" has prepared the publish but could not commit it: %s",
							sh->server, sh->failure),
					 errhint("Run COMMIT PREPARED '%s' on server \"%s\"; until then it serves what it had.",
							 sh->gid, sh->server)));
		}
		PQclear(res);
		PQfinish(sh->conn);
		sh->conn = NULL;
	}

	/* the rows */
	for (int i = 0; i < n; i++)
	{
		Datum		v[5];
		bool		isnull[5] = {false, false, false, false, false};

		v[0] = CStringGetTextDatum(shards[i].server);
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
