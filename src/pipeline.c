/*
 * pipeline.c
 *	  Run the user's SQL from the extension's PL/pgSQL functions: a pipeline
 *	  step's SQL as the role recorded with the step, and sources in the
 *	  caller's search_path.
 *
 * pg_cron runs a job as the job's user, often a superuser.  A step's SQL
 * reads views and calls functions that other roles own; run as a
 * superuser, any of those runs with a superuser's rights.  So the step runs
 * as pipeline_steps.run_as instead: the user id is switched for the step
 * and back, as SECURITY DEFINER does, which also forbids SET ROLE and SET
 * SESSION AUTHORIZATION inside the step, so it cannot switch back itself.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"

#include "credit_risk.h"

PG_FUNCTION_INFO_V1(cr_run_as);
PG_FUNCTION_INFO_V1(cr_caller_search_path);

/* The names of the session's open cursors, as a text[] (SPI connected). */
static Datum
CursorNames(void)
{
	bool		isnull;
	Datum		names;
	int			rc = SPI_execute("SELECT pg_catalog.array_agg(c.name) FROM pg_catalog.pg_cursors c",
								 true, 1);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not list cursors: %s", SPI_result_code_string(rc));
	names = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? PointerGetDatum(construct_empty_array(TEXTOID))
		: PointerGetDatum(DatumGetArrayTypePCopy(names));
}

/* How many of the session's open cursors are not among names. */
static int64
CursorsOpenedSince(Datum names)
{
	bool		isnull;
	Oid			argtype = TEXTARRAYOID;
	int			rc = SPI_execute_with_args("SELECT pg_catalog.count(*) FROM pg_catalog.pg_cursors c"
										   " WHERE c.name OPERATOR(pg_catalog.<>) ALL ($1)",
										   1, &argtype, &names, NULL, true, 1);

	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not list cursors: %s", SPI_result_code_string(rc));
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * A superuser, or a role with membership in one (pg_has_role counts a role
 * as a member of itself): either has a superuser's rights in a step.
 */
static bool
RoleIsSuperuserLike(Oid role)
{
	bool		isnull;
	Datum		arg = ObjectIdGetDatum(role);
	Oid			argtype = OIDOID;
	int			rc;

	rc = SPI_execute_with_args("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles s"
							   " WHERE s.rolsuper AND pg_catalog.pg_has_role($1, s.oid, 'MEMBER'))",
							   1, &argtype, &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not check role membership: %s", SPI_result_code_string(rc));
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * cr_run_as(role name, command text, allow_superuser boolean DEFAULT false)
 *
 * Runs command as role, with the session's default search_path.  The
 * caller must be a member of role, as SET ROLE requires, so this gives no
 * right that the caller does not already have.
 */
Datum
cr_run_as(PG_FUNCTION_ARGS)
{
	char	   *rolename;
	char	   *command;
	bool		allow_superuser;
	Oid			role;
	Oid			save_user;
	int			save_sec;
	int			save_nest;
	int			rc;
	Datum		cursors;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("role and command must not be null")));
	rolename = NameStr(*PG_GETARG_NAME(0));
	command = text_to_cstring(PG_GETARG_TEXT_PP(1));
	allow_superuser = !PG_ARGISNULL(2) && PG_GETARG_BOOL(2);

	role = get_role_oid(rolename, false);
	GetUserIdAndSecContext(&save_user, &save_sec);
	if (!is_member_of_role(save_user, role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not run SQL as role \"%s\"",
						GetUserNameFromId(save_user, false), rolename),
				 errdetail("Running a step as a role needs membership in that role, as SET ROLE does.")));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (!allow_superuser && RoleIsSuperuserLike(role))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pipeline steps do not run as superuser \"%s\" or a member of a superuser role", rolename),
				 errdetail("A step run as a superuser runs every function and view it touches with a superuser's rights."),
				 errhint("Set credit_risk.pipeline_steps.run_as to a role without superuser, or set allow_superuser to true for the step.")));

	cursors = CursorNames();

	save_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", GetConfigOptionResetString("search_path"),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE);

	rc = SPI_execute(command, false, 0);
	if (rc == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a step cannot control the transaction"),
				 errdetail("The step runs inside the transaction of its caller; COMMIT, ROLLBACK and savepoints are not allowed in it.")));
	if (rc == SPI_ERROR_COPY)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a step cannot COPY to or from the client"),
				 errhint("COPY to or from a file or a program on the server, or use INSERT ... SELECT.")));
	if (rc < 0)
		elog(ERROR, "could not run the step: %s", SPI_result_code_string(rc));

	/*
	 * Work the step queued for later must run now, as role: at commit the
	 * user id is the caller's again (a superuser's, under pg_cron).  So
	 * deferred triggers fire here, and a cursor the step left open (a WITH
	 * HOLD cursor is run to completion at commit) is refused.
	 */
	rc = SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0);
	if (rc < 0)
		elog(ERROR, "could not fire deferred triggers: %s", SPI_result_code_string(rc));
	SetUserIdAndSecContext(save_user, save_sec);
	AtEOXact_GUC(false, save_nest);
	if (CursorsOpenedSince(cursors) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_CURSOR_STATE),
				 errmsg("a step must not leave a cursor open"),
				 errdetail("An open cursor would go on running after the step, with its caller's rights."),
				 errhint("Close the cursor (CLOSE) before the step ends.")));
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * cr_caller_search_path(): the search_path of the caller of the running
 * PL/pgSQL function.
 *
 * The extension's PL/pgSQL functions pin search_path to pg_catalog,
 * pg_temp (SET in their definition), so that no object of another role
 * can stand in for one of theirs.  Some of them are given the caller's
 * SQL, a source such as "applicants", which must resolve as the caller
 * wrote it; they set the caller's search_path around just those
 * statements.  The function's SET pushed the caller's value onto the
 * setting's stack: that prior value is the answer.  Call it first thing,
 * before the function changes search_path itself.
 */
Datum
cr_caller_search_path(PG_FUNCTION_ARGS)
{
	struct config_generic *gen = CrFindSetting("search_path");

	if (gen != NULL && gen->vartype == PGC_STRING && gen->stack != NULL &&
		gen->stack->prior.val.stringval != NULL)
		PG_RETURN_TEXT_P(cstring_to_text(gen->stack->prior.val.stringval));
	PG_RETURN_TEXT_P(cstring_to_text(GetConfigOption("search_path", false, false)));
}
