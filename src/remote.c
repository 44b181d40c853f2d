/*
 * remote.c
 *	  Connections of our own to the shards behind postgres_fdw servers, for
 *	  what postgres_fdw cannot send them: a two-phase publish (publish.c)
 *	  and a batch scoring run on each shard (batch_shards.c).
 *
 * A connection uses the server's options and the caller's user mapping,
 * as postgres_fdw's own would, and its rules: USAGE on the server, and a
 * password unless the caller is a superuser.  Every wait is interruptible,
 * and a connection is the caller's to close (PQfinish), on error too.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

#include "remote.h"

/* Wait for conn's result, interruptibly; the last result, or NULL. */
PGresult *
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

/*
 * An ERROR naming the server with the message (and SQLSTATE, detail and hint) of
 * res, unless res succeeded (PGRES_TUPLES_OK, PGRES_COMMAND_OK or
 * PGRES_SINGLE_TUPLE).  sql is what failed, for the context.
 */
void
RemoteCheck(CrRemote *r, PGresult *res, const char *sql)
{
	ExecStatusType st = PQresultStatus(res);

	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK || st == PGRES_SINGLE_TUPLE)
		return;
	{
		char	   *msg = pstrdup(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
								  ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
								  : pchomp(PQerrorMessage(r->conn)));
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		char	   *hint_copy = hint ? pstrdup(hint) : NULL;
		char	   *detail_copy = detail ? pstrdup(detail) : NULL;
		int			code = state && strlen(state) == 5
			? MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])
			: ERRCODE_CONNECTION_FAILURE;

		PQclear(res);
		ereport(ERROR,
				(errcode(code),
				 errmsg("server \"%s\": %s", r->server, msg),
				 detail_copy ? errdetail_internal("%s", detail_copy) : 0,
				 hint_copy ? errhint("%s", hint_copy) : 0,
				 errcontext("remote SQL: %s", sql)));
	}
}

/* The ERROR for a connection to r that failed under us. */
void
RemoteLost(CrRemote *r)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("lost the connection to server \"%s\"", r->server),
			 errdetail_internal("%s", pchomp(PQerrorMessage(r->conn)))));
}

/*
 * Run sql with nparams text params on r, its result in format (0 text, 1
 * binary); the result, or an ERROR naming the server.
 */
static PGresult *
RemoteRun(CrRemote *r, const char *sql, int nparams, char **params, int format)
{
	PGresult   *res = NULL;

	if (!PQsendQueryParams(r->conn, sql, nparams, NULL, (const char *const *) params, NULL, NULL,
						   format) ||
		(res = RemoteWait(r->conn)) == NULL)
		RemoteLost(r);
	RemoteCheck(r, res, sql);
	return res;
}

/*
 * Send sql with param, a bytea, as $1 in binary (or no param when NULL),
 * its result to come in binary; RemoteReceive waits for it.  Sending to
 * several servers first and then receiving from each lets them work at
 * once.
 */
void
RemoteSendBytea(CrRemote *r, const char *sql, const bytea *param)
{
	Oid			type = BYTEAOID;
	const char *value = param ? VARDATA_ANY(param) : NULL;
	int			length = param ? (int) VARSIZE_ANY_EXHDR(param) : 0;
	int			format = 1;

	if (!PQsendQueryParams(r->conn, sql, param ? 1 : 0, &type, &value, &length, &format, 1))
		RemoteLost(r);
}

/* The result of what RemoteSendBytea sent (sql, for the context), or an ERROR naming the server. */
PGresult *
RemoteReceive(CrRemote *r, const char *sql)
{
	PGresult   *res = RemoteWait(r->conn);

	if (res == NULL)
		RemoteLost(r);
	RemoteCheck(r, res, sql);
	return res;
}

/* Run sql with nparams text params on r: its result (text), or an ERROR naming the server. */
PGresult *
RemoteExecParams(CrRemote *r, const char *sql, int nparams, char **params)
{
	return RemoteRun(r, sql, nparams, params, 0);
}

/* The same without params, its result in binary. */
PGresult *
RemoteExecBinary(CrRemote *r, const char *sql)
{
	return RemoteRun(r, sql, 0, NULL, 1);
}

PGresult *
RemoteExec(CrRemote *r, const char *sql)
{
	return RemoteExecParams(r, sql, 0, NULL);
}

/* One value of a one-row result, copied. */
char *
RemoteValue(CrRemote *r, const char *sql)
{
	PGresult   *res = RemoteExec(r, sql);
	char	   *v = PQntuples(res) == 1 && PQnfields(res) >= 1 ? pstrdup(PQgetvalue(res, 0, 0)) : NULL;

	PQclear(res);
	if (v == NULL)
		elog(ERROR, "server \"%s\" returned no row for: %s", r->server, sql);
	return v;
}

/* Connect to a postgres_fdw server with the caller's user mapping. */
void
RemoteConnect(CrRemote *r, const char *application_name)
{
	ForeignServer *server = GetForeignServerByName(r->server, false);
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
				 errmsg("server \"%s\" is not a postgres_fdw server", r->server)));
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
	vals[n++] = application_name;
	keys[n] = "client_encoding";
	vals[n++] = GetDatabaseEncodingName();
	keys[n] = NULL;
	vals[n] = NULL;

	r->conn = PQconnectdbParams(keys, vals, false);
	if (r->conn == NULL || PQstatus(r->conn) != CONNECTION_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to server \"%s\"", r->server),
				 errdetail_internal("%s", r->conn ? pchomp(PQerrorMessage(r->conn)) : "out of memory")));
	/* as postgres_fdw: only a superuser may connect without a password */
	if (!superuser() && !PQconnectionUsedPassword(r->conn))
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required to connect to server \"%s\"", r->server),
				 errdetail("Non-superusers must authenticate to the shard with a password, as postgres_fdw requires.")));
}

/* Cancel whatever r is running, if anything; the connection stays. */
void
RemoteCancel(CrRemote *r)
{
	PGcancel   *c;
	char		err[256];

	if (r->conn == NULL || PQtransactionStatus(r->conn) != PQTRANS_ACTIVE)
		return;
	c = PQgetCancel(r->conn);
	if (c)
	{
		(void) PQcancel(c, err, sizeof(err));
		PQfreeCancel(c);
	}
}

/* Close r's connection (an open transaction ends with it). */
void
RemoteClose(CrRemote *r)
{
	if (r->conn != NULL)
		PQfinish(r->conn);
	r->conn = NULL;
}

/* Does server list credit_risk in its extensions option? */
static bool
ServerHasCreditRisk(ForeignServer *server)
{
	ListCell   *lc;

	foreach(lc, server->options)
	{
		DefElem    *d = lfirst(lc);
		List	   *names;
		ListCell   *n;

		if (strcmp(d->defname, "extensions") != 0)
			continue;
		if (!SplitIdentifierString(pstrdup(defGetString(d)), ',', &names))
			return false;
		foreach(n, names)
			if (strcmp((char *) lfirst(n), "credit_risk") == 0)
				return true;
	}
	return false;
}

/*
 * Is foreign table relid a table of a shard we may run credit_risk's
 * functions on: a postgres_fdw server that lists credit_risk in its
 * extensions option, and no column renamed (column_name), so that the
 * shard's table has the local column names?  If so, sets *server and
 * *table (the shard's table, qualified).
 */
bool
RemoteTableOf(Oid relid, char **server_name, char **table_name)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *server = GetForeignServer(ft->serverid);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	char	   *schema = get_namespace_name(get_rel_namespace(relid));
	char	   *table = get_rel_name(relid);
	ListCell   *lc;
	int			natts;

	if (strcmp(fdw->fdwname, "postgres_fdw") != 0 || !ServerHasCreditRisk(server))
		return false;
	{
		Relation	rel = relation_open(relid, AccessShareLock);

		natts = RelationGetNumberOfAttributes(rel);
		relation_close(rel, AccessShareLock);
	}
	for (AttrNumber a = 1; a <= natts; a++)
	{
		foreach(lc, GetForeignColumnOptions(relid, a))
			if (strcmp(((DefElem *) lfirst(lc))->defname, "column_name") == 0)
				return false;
	}
	foreach(lc, ft->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "schema_name") == 0)
			schema = defGetString(d);
		else if (strcmp(d->defname, "table_name") == 0)
			table = defGetString(d);
	}
	*server_name = pstrdup(server->servername);
	*table_name = quote_qualified_identifier(schema, table);
	return true;
}

/*
 * The foreign tables that together are relid, when reading them one by
 * one reads what a query of relid would: relid itself if it is a foreign
 * table, or every leaf of a partitioned relid when all of them are
 * foreign tables.  NIL when a leaf is local, or when relid's row-level
 * security applies to the caller (a leaf read as itself would skip it).
 */
List *
RemoteForeignLeaves(Oid relid)
{
	char		relkind = get_rel_relkind(relid);
	List	   *leaves = NIL;
	ListCell   *lc;

	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return NIL;
	if (relkind == RELKIND_FOREIGN_TABLE)
		return list_make1_oid(relid);
	if (relkind != RELKIND_PARTITIONED_TABLE)
		return NIL;
	foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
	{
		char		k = get_rel_relkind(lfirst_oid(lc));

		if (k == RELKIND_PARTITIONED_TABLE)
			continue;
		if (k != RELKIND_FOREIGN_TABLE)
			return NIL;
		leaves = lappend_oid(leaves, lfirst_oid(lc));
	}
	return leaves;
}
