/*
 * registry_write.c
 *	  Every change to credit_risk.models and credit_risk.routes: registering
 *	  a trained version (with its version number and status), promotion and
 *	  routing, each under the name's lock (RegistryLockName).
 *
 * No role but the registry's owner may write the registry directly (a
 * statement trigger refuses everyone else), so which version serves changes
 * only through these functions.  They write with the owner's rights, the
 * way a SECURITY DEFINER function would: the user id is switched to the
 * owner of credit_risk.models for the extension's own fixed statements
 * only, with search_path pinned to pg_catalog, and switched back before
 * anything of the caller's runs.  User SQL (the training source, labels,
 * features) is never run under the owner's id.  The caller's name is
 * recorded as created_by / updated_by.
 *
 * An error inside restores the user id and settings through transaction
 * (or subtransaction) abort, so no cleanup block is needed.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "credit_risk.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_promote);
PG_FUNCTION_INFO_V1(cr_route);
PG_FUNCTION_INFO_V1(cr_registry_guard);
PG_FUNCTION_INFO_V1(cr_drop_guard);

/* The owner of credit_risk.models: the role the registry is written as. */
static Oid
RegistryOwner(void)
{
	Oid			nsp = get_namespace_oid("credit_risk", false);
	Oid			relid = get_relname_relid("models", nsp);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"credit_risk.models\" does not exist")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * The registry's tables carry the extension's own triggers only.  A role
 * granted TRIGGER on them could otherwise add one whose function runs when
 * the functions below write, with the owner's rights.
 */
static void
RegistryCheckTriggers(void)
{
	int			rc = SPI_execute("SELECT c.relname, t.tgname FROM pg_catalog.pg_trigger t"
								 " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.tgrelid"
								 " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
								 " WHERE n.nspname OPERATOR(pg_catalog.=) 'credit_risk'"
								 " AND c.relname OPERATOR(pg_catalog.=) ANY ('{models,routes,tuning_runs}'::pg_catalog.text[])"
								 " AND NOT t.tgisinternal"
								 " AND NOT t.tgname OPERATOR(pg_catalog.=) ANY ('{models_changed,routes_changed,models_guard,routes_guard,tuning_runs_guard}'::pg_catalog.text[])"
								 " LIMIT 1", true, 1);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not list the registry's triggers: %s", SPI_result_code_string(rc));
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("credit_risk.%s has a trigger \"%s\" that is not the extension's",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errdetail("The registry is written with its owner's rights; a trigger on it would run with them."),
				 errhint("Drop the trigger, and grant no one TRIGGER on the registry's tables.")));
}

/* Call with SPI connected. */
void
RegistryBeginAsOwner(CrAsOwner *state)
{
	RegistryCheckTriggers();
	GetUserIdAndSecContext(&state->save_user, &state->save_sec);
	state->caller = pstrdup(GetUserNameFromId(state->save_user, false));
	state->owner = RegistryOwner();
	state->save_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SetUserIdAndSecContext(state->owner,
						   state->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
RegistryEndAsOwner(CrAsOwner *state)
{
	SetUserIdAndSecContext(state->save_user, state->save_sec);
	AtEOXact_GUC(false, state->save_nest);
}

/*
 * A tuple of the composite type want, its columns taken by name from the
 * SPI result row (spitup, spidesc), built in the current memory context
 * (heap_form_tuple copies the values: call it before SPI_finish).
 */
HeapTuple
RegistryResultTuple(TupleDesc want, HeapTuple spitup, TupleDesc spidesc)
{
	Datum	   *values = palloc0(sizeof(Datum) * want->natts);
	bool	   *nulls = palloc(sizeof(bool) * want->natts);

	for (int i = 0; i < want->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(want, i);
		int			fno;

		nulls[i] = true;
		if (att->attisdropped)
			continue;
		fno = SPI_fnumber(spidesc, NameStr(att->attname));
		if (fno > 0)
			values[i] = SPI_getbinval(spitup, spidesc, fno, &nulls[i]);
	}
	return heap_form_tuple(want, values, nulls);
}

/*
 * Serialise the changes to one name's versions (registering a version,
 * promotion, routing) until the end of the transaction: an advisory lock
 * on the hash of 'credit_risk:' || name, the one key every writer takes.
 */
void
RegistryLockName(const char *name)
{
	Datum		key = CStringGetTextDatum(psprintf("credit_risk:%s", name));
	int32		hash = DatumGetInt32(DirectFunctionCall1Coll(hashtext, DEFAULT_COLLATION_OID, key));

	DirectFunctionCall1(pg_advisory_xact_lock_int8, Int64GetDatum((int64) hash));
}

/*
 * Register a trained version, as the registry's owner, and return its row
 * as a tuple of want, built in resultcxt.  Version numbers follow the
 * name's highest.  The first version of a name becomes its champion; a
 * later one is a candidate until promoted, so training never changes which
 * version serves.  A name registered before that rule, with versions but no
 * champion, first gets the version that serves it now (the newest) as its
 * champion.  The caller is connected to SPI.
 */
HeapTuple
RegistryInsertVersion(const CrNewVersion *v, TupleDesc want, MemoryContext resultcxt)
{
	Oid			argtypes[13] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID,
		JSONBOID, JSONBOID, JSONBOID, INT8OID, INT8OID, FLOAT8OID, BYTEAOID, TEXTOID};
	Datum		args[13];
	Datum	   *fnames = palloc(sizeof(Datum) * v->nfeatures);
	CrAsOwner	as_owner;
	MemoryContext old;
	HeapTuple	result;
	int			rc;

	for (int j = 0; j < v->nfeatures; j++)
		fnames[j] = CStringGetTextDatum(v->features[j]);
	args[0] = CStringGetTextDatum(v->name);
	args[1] = CStringGetTextDatum(v->algorithm);
	args[2] = CStringGetTextDatum(v->source);
	args[3] = CStringGetTextDatum(v->label);
	args[4] = PointerGetDatum(construct_array(fnames, v->nfeatures, TEXTOID, -1, false, TYPALIGN_INT));
	args[5] = v->params;
	args[6] = v->metrics;
	args[7] = v->importance;
	args[8] = Int64GetDatum(v->train_rows);
	args[9] = Int64GetDatum(v->holdout_rows);
	args[10] = Float8GetDatum(v->train_seconds);
	args[11] = PointerGetDatum(v->model);

	RegistryLockName(v->name);
	RegistryBeginAsOwner(&as_owner);
	args[12] = CStringGetTextDatum(as_owner.caller);
	rc = SPI_execute_with_args("UPDATE credit_risk.models m SET status = 'champion'"
							   " WHERE m.id OPERATOR(pg_catalog.=) (SELECT n.id FROM credit_risk.models n"
							   "   WHERE n.name OPERATOR(pg_catalog.=) $1"
							   "   ORDER BY n.version DESC LIMIT 1)"
							   " AND NOT EXISTS (SELECT FROM credit_risk.models c"
							   "   WHERE c.name OPERATOR(pg_catalog.=) $1"
							   "   AND c.status OPERATOR(pg_catalog.=) 'champion')",
							   1, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not register the model: %s", SPI_result_code_string(rc));
	rc = SPI_execute_with_args("INSERT INTO credit_risk.models"
							   " (name, version, algorithm, source, label, features, params,"
							   "  metrics, importance, train_rows, holdout_rows, train_seconds, model,"
							   "  status, created_by)"
							   " SELECT $1, COALESCE(pg_catalog.max(m.version), 0) OPERATOR(pg_catalog.+) 1,"
							   " $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
							   " CASE WHEN pg_catalog.count(*) OPERATOR(pg_catalog.=) 0"
							   "  THEN 'champion' ELSE 'candidate' END, $13"
							   " FROM credit_risk.models m WHERE m.name OPERATOR(pg_catalog.=) $1"
							   " RETURNING *",
							   13, argtypes, args, NULL, false, 0);
	RegistryEndAsOwner(&as_owner);
	if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
		elog(ERROR, "could not register the model: %s", SPI_result_code_string(rc));

	/* columns matched by name: the table may have been altered since */
	old = MemoryContextSwitchTo(resultcxt);
	result = RegistryResultTuple(BlessTupleDesc(want), SPI_tuptable->vals[0],
								 SPI_tuptable->tupdesc);
	MemoryContextSwitchTo(old);
	return result;
}

/*
 * Call one of the registry's internal functions (sql, with the caller's
 * arguments as $1..$nargs, the first the model name, and the caller's name
 * as the last one) as the registry's owner, under the name's lock, and
 * return its one row as the caller's result type.
 */
static Datum
CallAsOwner(FunctionCallInfo fcinfo, const char *sql, int nargs, const Oid *argtypes)
{
	MemoryContext callercxt = CurrentMemoryContext;
	TupleDesc	rettupdesc;
	Oid			types[FUNC_MAX_ARGS];
	Datum		values[FUNC_MAX_ARGS];
	char		nulls[FUNC_MAX_ARGS];
	CrAsOwner	as_owner;
	HeapTuple	result;
	int			rc;

	if (get_call_result_type(fcinfo, NULL, &rettupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	rettupdesc = BlessTupleDesc(rettupdesc);

	for (int i = 0; i < nargs; i++)
	{
		types[i] = argtypes[i];
		values[i] = fcinfo->args[i].value;
		nulls[i] = fcinfo->args[i].isnull ? 'n' : ' ';
	}

	if (!fcinfo->args[0].isnull)
		RegistryLockName(TextDatumGetCString(fcinfo->args[0].value));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	RegistryBeginAsOwner(&as_owner);
	types[nargs] = TEXTOID;
	values[nargs] = CStringGetTextDatum(as_owner.caller);
	nulls[nargs] = ' ';
	rc = SPI_execute_with_args(sql, nargs + 1, types, values, nulls, false, 1);
	RegistryEndAsOwner(&as_owner);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "registry call failed: %s", SPI_result_code_string(rc));

	MemoryContextSwitchTo(callercxt);
	result = RegistryResultTuple(rettupdesc, SPI_tuptable->vals[0], SPI_tuptable->tupdesc);
	SPI_finish();
	return HeapTupleGetDatum(result);
}

/* cr_promote(name text, version integer): the version becomes the champion */
Datum
cr_promote(PG_FUNCTION_ARGS)
{
	static const Oid types[2] = {TEXTOID, INT4OID};

	return CallAsOwner(fcinfo,
					   "SELECT * FROM credit_risk.cr_promote_internal($1, $2, $3)",
					   2, types);
}

/* cr_route(name text, challenger_version integer, share float8) */
Datum
cr_route(PG_FUNCTION_ARGS)
{
	static const Oid types[3] = {TEXTOID, INT4OID, FLOAT8OID};

	return CallAsOwner(fcinfo,
					   "SELECT * FROM credit_risk.cr_route_internal($1, $2, $3, $4)",
					   3, types);
}

/*
 * Trigger on credit_risk.models and credit_risk.routes (BEFORE, FOR EACH
 * STATEMENT): only the owner of the table (and roles with its privileges,
 * superusers among them) may write it.  Everyone else goes through
 * cr_train, cr_promote and cr_route, which write as the owner; so a GRANT
 * of INSERT or UPDATE to a trainer cannot put a version into service.
 */
Datum
cr_registry_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Oid			owner;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cr_registry_guard() must be called as a trigger")));
	owner = td->tg_relation->rd_rel->relowner;
	if (!has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("credit_risk.%s is changed only through the extension's functions",
						RelationGetRelationName(td->tg_relation)),
				 errdetail("Role \"%s\" may not write it directly.",
						   GetUserNameFromId(GetUserId(), false)),
				 errhint("Use credit_risk.cr_train() to register a version, and credit_risk.cr_promote() or credit_risk.cr_route() to change which version serves.")));
	return PointerGetDatum(NULL);
}

/*
 * Whether a DROP EXTENSION statement names credit_risk, or a DROP SCHEMA
 * statement names the schema it lives in (schema, looked up by the
 * extension, so a renamed schema is still seen).
 */
static bool
DropNamesCreditRisk(DropStmt *stmt, const char *schema)
{
	ListCell   *lc;
	const char *want;

	if (stmt->removeType == OBJECT_EXTENSION)
		want = "credit_risk";
	else if (stmt->removeType == OBJECT_SCHEMA)
		want = schema;
	else
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), want) == 0)
			return true;
	}
	return false;
}

/*
 * Event trigger (ddl_command_start, DROP EXTENSION and DROP SCHEMA):
 * dropping the extension drops the registry with it, every model version
 * included, and CASCADE or not makes no difference (the tables belong to
 * the extension).  So the drop is refused while the registry holds models,
 * unless credit_risk.allow_drop is on.
 */
Datum
cr_drop_guard(PG_FUNCTION_ARGS)
{
	EventTriggerData *trigdata = (EventTriggerData *) fcinfo->context;
	int64		nmodels;
	bool		isnull;
	int			rc;
	char	   *schema;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cr_drop_guard() must be called as an event trigger")));
	if (cr_allow_drop || !IsA(trigdata->parsetree, DropStmt))
		PG_RETURN_VOID();

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e"
					 " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
					 " WHERE e.extname OPERATOR(pg_catalog.=) 'credit_risk'", true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not find the extension's schema: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		SPI_finish();
		PG_RETURN_VOID();
	}
	schema = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (!DropNamesCreditRisk((DropStmt *) trigdata->parsetree, schema))
	{
		SPI_finish();
		PG_RETURN_VOID();
	}
	rc = SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s.models", quote_identifier(schema)),
					 true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count models: %s", SPI_result_code_string(rc));
	nmodels = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();

	if (nmodels > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension credit_risk: its registry holds " INT64_FORMAT " model versions", nmodels),
				 errdetail("Dropping the extension drops credit_risk.models and every model version in it, with or without CASCADE."),
				 errhint("Back the models up first (pg_dump keeps them), then SET credit_risk.allow_drop = on and drop it again.")));
	PG_RETURN_VOID();
}
