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

#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(cr_run_as);
PG_FUNCTION_INFO_V1(cr_caller_search_path);

static bool
RoleIsSuperuser(Oid role)
{
	HeapTuple	tup = SearchSysCache1(AUTHOID, ObjectIdGetDatum(role));
	bool		result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for role %u", role);
	result = ((Form_pg_authid) GETSTRUCT(tup))->rolsuper;
	ReleaseSysCache(tup);
	return result;
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
	if (RoleIsSuperuser(role) && !allow_superuser)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pipeline steps do not run as superuser \"%s\"", rolename),
				 errdetail("A step run as a superuser runs every function and view it touches with a superuser's rights."),
				 errhint("Set credit_risk.pipeline_steps.run_as to a role without superuser, or set allow_superuser to true for the step.")));

	save_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", GetConfigOptionResetString("search_path"),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute(command, false, 0);
	if (rc < 0)
		elog(ERROR, "could not run the step: %s", SPI_result_code_string(rc));
	SPI_finish();

	SetUserIdAndSecContext(save_user, save_sec);
	AtEOXact_GUC(false, save_nest);
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
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
	{
		struct config_generic *gen = vars[i];

		if (strcmp(gen->name, "search_path") != 0)
			continue;
		if (gen->vartype == PGC_STRING && gen->stack != NULL &&
			gen->stack->prior.val.stringval != NULL)
			PG_RETURN_TEXT_P(cstring_to_text(gen->stack->prior.val.stringval));
		break;
	}
	PG_RETURN_TEXT_P(cstring_to_text(GetConfigOption("search_path", false, false)));
}
