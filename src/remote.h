/*
 * remote.h
 *	  Connections of our own to postgres_fdw servers (remote.c).
 */
#ifndef CR_REMOTE_H
#define CR_REMOTE_H

#include "libpq-fe.h"
#include "nodes/pg_list.h"

typedef struct CrRemote
{
	char	   *server;			/* the foreign server's name */
	PGconn	   *conn;			/* NULL until connected, and once closed */
} CrRemote;

extern List *RemoteForeignLeaves(Oid relid);
extern bool RemoteTableOf(Oid relid, char **server, char **table);
extern void RemoteConnect(CrRemote *r, const char *application_name);
extern PGresult *RemoteWait(PGconn *conn);
extern void RemoteLost(CrRemote *r) pg_attribute_noreturn();
extern void RemoteCheck(CrRemote *r, PGresult *res, const char *sql);
extern PGresult *RemoteExecParams(CrRemote *r, const char *sql, int nparams, char **params);
extern PGresult *RemoteExec(CrRemote *r, const char *sql);
extern PGresult *RemoteExecBinary(CrRemote *r, const char *sql);
extern char *RemoteValue(CrRemote *r, const char *sql);
extern void RemoteSendBytea(CrRemote *r, const char *sql, const bytea *param);
extern PGresult *RemoteReceive(CrRemote *r, const char *sql);
extern void RemoteCancel(CrRemote *r);
extern void RemoteClose(CrRemote *r);

#endif							/* CR_REMOTE_H */
