/*
 * registry.c
 *	  Look models up in credit_risk.models and keep decoded models in a
 *	  per-backend cache.
 *
 * The serving version of a name is found through the registry's indexes
 * (the partial index of champions, else the newest by (name, version)), or,
 * for a user who may not read the registry whole, through a query that
 * applies the user's privileges.  The model bytes are read and decoded only
 * when the cache has no entry for the row's id and xmin.  So a promotion, a
 * new version or an update of the row is seen by the next statement, while
 * the decode cost is paid once per backend.
 *
 * Entries are never freed while the current statement may hold them: an
 * entry is evicted only when its last lookup was in an earlier statement.
 *
 * Even an index lookup costs, so in READ COMMITTED the answer (name and
 * version to entry, name to route) is kept across statements until the
 * registry changes.  A statement trigger on credit_risk.models and
 * credit_risk.routes sends a relcache invalidation for the table; every
 * backend receives it at its next statement (this one at once, others when
 * the change commits), and the callback starts a new generation, which
 * retires every kept answer.  Freeing a cache entry starts one too.  Under
 * REPEATABLE READ and SERIALIZABLE each statement resolves afresh, since
 * the answer depends on the transaction's snapshot; so does a user who may
 * not read the registry tables whole (see RegistryReadable), whose every
 * statement asks through queries that apply its privileges.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "parser/parse_relation.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "random.h"
#include "registry.h"

#define CR_CACHE_MAX_ENTRIES	64

typedef struct CacheSlot
{
	int64		key;			/* registry id, or checksum for bytes */
	CrCachedModel *entry;
} CacheSlot;

typedef struct CrCachedModelStamped
{
	CrCachedModel pub;
	CrStamp		stamp;
} CrCachedModelStamped;

/* A kept answer: version -1 is the name's route */
typedef struct ResolvedKey
{
	char		name[NAMEDATALEN];
	int32		version;
} ResolvedKey;

typedef struct Resolved
{
	ResolvedKey key;
	uint64		generation;
	CrCachedModel *entry;		/* NULL: a route with no challenger */
	double		share;
} Resolved;

/*
 * The registry's tables and indexes.  Callers work on a copy: opening or
 * checking a relation takes in invalidations, and the callback then forgets
 * the OIDs cached here.
 */
typedef struct RegistryRels
{
	Oid			models;
	Oid			routes;
	Oid			models_by_name_version; /* UNIQUE (name, version) */
	Oid			models_champion;	/* UNIQUE (name) WHERE champion */
	Oid			routes_by_name; /* PRIMARY KEY (name) */
} RegistryRels;

PG_FUNCTION_INFO_V1(cr_registry_changed);

static MemoryContext CacheContext = NULL;
static HTAB *ResolvedCache = NULL;
static uint64 Generation = 1;
static RegistryRels Registry;	/* all InvalidOid until looked up */
static CrStamp AcceptedStamp;
static bool AcceptedValid = false;
static HTAB *RegistryCache = NULL;	/* by registry id */
static HTAB *BytesCache = NULL; /* by checksum */
/*
 * The registry's queries, for when the index path cannot be taken (see
 * DirectLookup).  They run in the caller's search_path (and are planned
 * again when it changes), so every operator is named with its schema: no
 * operator of another role's can stand in for one of these.
 */
typedef enum RegistryQuery
{
	QUERY_SERVING,				/* the serving version of $1 */
	QUERY_VERSION,				/* version $2 of $1 */
	QUERY_BYTES,				/* the bytes and params of row id $1 */
	QUERY_ROUTE,				/* the live challenger route of $1 */
	QUERY_COUNT
} RegistryQuery;

static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[2];
}			RegistryQueries[QUERY_COUNT] =
{
	[QUERY_SERVING] = {
		"SELECT id, version, xmin FROM credit_risk.models"
		" WHERE id OPERATOR(pg_catalog.=) (credit_risk.cr_serving_version($1)).id",
	1, {TEXTOID}},
	[QUERY_VERSION] = {
		"SELECT id, version, xmin FROM credit_risk.models"
		" WHERE name OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.=) $2",
	2, {TEXTOID, INT4OID}},
	[QUERY_BYTES] = {
		"SELECT model, params FROM credit_risk.models WHERE id OPERATOR(pg_catalog.=) $1",
	1, {INT8OID}},
	[QUERY_ROUTE] = {
		"SELECT challenger_version, share FROM credit_risk.routes"
		" WHERE name OPERATOR(pg_catalog.=) $1"
		" AND share OPERATOR(pg_catalog.>) 0::pg_catalog.float8",
	1, {TEXTOID}},
};

static SPIPlanPtr RegistryPlans[QUERY_COUNT];

void
RegistryStamp(CrStamp *stamp)
{
	stamp->lxid = MyProc->lxid;
	stamp->stmt_start = GetCurrentStatementStartTimestamp();
	stamp->cid = GetCurrentCommandId(false);
}

bool
RegistryStampEqual(const CrStamp *a, const CrStamp *b)
{
	return a->lxid == b->lxid && a->stmt_start == b->stmt_start &&
		a->cid == b->cid;
}

/* ASCII only, whatever the locale: the registry's CHECK constraint says so */
static inline bool
NameStartChar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

void
RegistryCheckName(const char *name)
{
	size_t		len = strlen(name);
	bool		ok = len > 0 && len <= CR_MAX_NAME_LEN && NameStartChar(name[0]);

	for (size_t i = 1; ok && i < len; i++)
		ok = NameStartChar(name[i]) || (name[i] >= '0' && name[i] <= '9') ||
			name[i] == '.' || name[i] == '-';
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid model name \"%s\"", name),
				 errhint("A model name starts with a letter or underscore and holds at most 63 letters, digits, underscores, dots or hyphens.")));
}

static void
RegistryRelcacheCallback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == Registry.models || relid == Registry.routes)
	{
		Generation++;
		/* the tables may be gone (DROP EXTENSION): look them up again */
		memset(&Registry, 0, sizeof(Registry));
	}
}

static bool
RegistryRelsValid(const RegistryRels *rels)
{
	return OidIsValid(rels->models) && OidIsValid(rels->routes) &&
		OidIsValid(rels->models_by_name_version) &&
		OidIsValid(rels->models_champion) && OidIsValid(rels->routes_by_name);
}

/* Find the registry's tables and indexes; false when they are not there. */
static bool
RegistryOids(RegistryRels *rels)
{
	if (!RegistryRelsValid(&Registry))
	{
		Oid			nsp = get_namespace_oid("credit_risk", true);

		if (!OidIsValid(nsp))
			return false;
		Registry.models = get_relname_relid("models", nsp);
		Registry.routes = get_relname_relid("routes", nsp);
		Registry.models_by_name_version = get_relname_relid("models_name_version_key", nsp);
		Registry.models_champion = get_relname_relid("models_one_champion", nsp);
		Registry.routes_by_name = get_relname_relid("routes_pkey", nsp);
	}
	*rels = Registry;
	return RegistryRelsValid(rels);
}

/*
 * Whether the current user may read the registry's tables whole: SELECT on
 * the tables, and no row-level security.  Only then are they read through
 * their indexes and answers kept across statements; otherwise every
 * statement asks through queries, which apply column privileges and
 * policies as the user's own queries would.  rels gets the OIDs to use.
 */
static bool
RegistryReadable(RegistryRels *rels)
{
	Oid			user = GetUserId();

	return RegistryOids(rels) &&
		pg_class_aclcheck(rels->models, user, ACL_SELECT) == ACLCHECK_OK &&
		pg_class_aclcheck(rels->routes, user, ACL_SELECT) == ACLCHECK_OK &&
		check_enable_rls(rels->models, InvalidOid, true) == RLS_NONE &&
		check_enable_rls(rels->routes, InvalidOid, true) == RLS_NONE;
}

/*
 * The generation at which kept answers may be used by this statement, or 0
 * when they may not.  Invalidations are taken in once per statement, so a
 * statement inside a transaction block sees changes committed before it.
 */
static uint64
ReuseGeneration(const CrStamp *now)
{
	RegistryRels rels;

	if (IsolationUsesXactSnapshot())
		return 0;
	if (!AcceptedValid || !RegistryStampEqual(now, &AcceptedStamp))
	{
		AcceptInvalidationMessages();
		AcceptedStamp = *now;
		AcceptedValid = true;
	}
	if (!RegistryReadable(&rels))
		return 0;
	return Generation;
}

static Resolved *
ResolvedFind(const char *name, int32 version, uint64 generation)
{
	ResolvedKey key;
	Resolved   *r;

	if (generation == 0 || strlen(name) >= NAMEDATALEN)
		return NULL;
	memset(&key, 0, sizeof(key));
	strlcpy(key.name, name, NAMEDATALEN);
	key.version = version;
	r = hash_search(ResolvedCache, &key, HASH_FIND, NULL);
	return (r != NULL && r->generation == generation) ? r : NULL;
}

static void
ResolvedKeep(const char *name, int32 version, uint64 generation,
			 CrCachedModel *entry, double share)
{
	ResolvedKey key;
	Resolved   *r;

	if (generation == 0 || generation != Generation ||
		strlen(name) >= NAMEDATALEN)
		return;
	if (hash_get_num_entries(ResolvedCache) >= 4 * CR_CACHE_MAX_ENTRIES)
	{
		HASH_SEQ_STATUS status;

		hash_seq_init(&status, ResolvedCache);
		while ((r = hash_seq_search(&status)) != NULL)
			hash_search(ResolvedCache, &r->key, HASH_REMOVE, NULL);
	}
	memset(&key, 0, sizeof(key));
	strlcpy(key.name, name, NAMEDATALEN);
	key.version = version;
	r = hash_search(ResolvedCache, &key, HASH_ENTER, NULL);
	r->generation = generation;
	r->entry = entry;
	r->share = share;
}

/*
 * Trigger on credit_risk.models and credit_risk.routes (FOR EACH
 * STATEMENT): every backend's kept answers are retired (see above).
 */
Datum
cr_registry_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("cr_registry_changed() must be called as a trigger")));
	CacheInvalidateRelcache(td->tg_relation);
	return PointerGetDatum(NULL);
}

static void
CacheInit(void)
{
	HASHCTL		ctl;

	if (CacheContext != NULL)
		return;
	CacheContext = AllocSetContextCreate(TopMemoryContext,
										 "credit_risk model cache",
										 ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(CacheSlot);
	ctl.hcxt = CacheContext;
	RegistryCache = hash_create("credit_risk registry cache", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	BytesCache = hash_create("credit_risk bytes cache", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = sizeof(ResolvedKey);
	ctl.entrysize = sizeof(Resolved);
	ResolvedCache = hash_create("credit_risk resolved names", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(RegistryRelcacheCallback, (Datum) 0);
}

/*
 * Drop an entry.  If the current statement may still use it, hand its
 * memory to the transaction instead of freeing it now.
 */
static void
EntryRelease(CrCachedModel *entry, const CrStamp *now)
{
	CrCachedModelStamped *e = (CrCachedModelStamped *) entry;

	Generation++;				/* kept answers may point to it */
	if (RegistryStampEqual(&e->stamp, now))
		MemoryContextSetParent(entry->cxt, CurTransactionContext);
	else
		MemoryContextDelete(entry->cxt);
}

static void
CacheEvict(HTAB *cache, const CrStamp *now)
{
	HASH_SEQ_STATUS status;
	CacheSlot  *slot;

	if (hash_get_num_entries(cache) < CR_CACHE_MAX_ENTRIES)
		return;
	hash_seq_init(&status, cache);
	while ((slot = hash_seq_search(&status)) != NULL)
	{
		CrCachedModelStamped *e = (CrCachedModelStamped *) slot->entry;

		if (!RegistryStampEqual(&e->stamp, now))
		{
			Generation++;
			MemoryContextDelete(slot->entry->cxt);
			hash_search(cache, &slot->key, HASH_REMOVE, NULL);
		}
	}
}

/*
 * Decode bytes into a new cache entry.  The entry's context starts under
 * the caller's context, so an ERROR while decoding leaks nothing into the
 * cache; it is moved under the cache only once complete.
 */
static CrCachedModel *
EntryCreate(const char *data, Size len, bool keep_bytes)
{
	MemoryContext cxt;
	MemoryContext old;
	CrCachedModelStamped *e;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk model",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	e = palloc0(sizeof(CrCachedModelStamped));
	e->pub.cxt = cxt;
	e->pub.model = ModelDecode(data, len);
	if (keep_bytes)
	{
		e->pub.bytes = palloc(len);
		memcpy(e->pub.bytes, data, len);
	}
	MemoryContextSwitchTo(old);
	return &e->pub;
}

static void
EntryTouch(CrCachedModel *entry, const CrStamp *now)
{
	((CrCachedModelStamped *) entry)->stamp = *now;
}

/*
 * A query's kept plan, prepared on first use, each on its own: a fresh
 * backend's first score should not pay for planning queries it does not run.
 */
static SPIPlanPtr
PlanGet(RegistryQuery q)
{
	if (RegistryPlans[q] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(RegistryQueries[q].sql, RegistryQueries[q].nargs,
									   (Oid *) RegistryQueries[q].argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		RegistryPlans[q] = plan;
	}
	return RegistryPlans[q];
}

/*
 * Fetch into slot the first row of rel, in direction dir through index
 * indexid, whose name (the index's first column) equals name and, when
 * version is not 0, whose version (its second) equals version.  Returns -1
 * when the index is being rebuilt (REINDEX CONCURRENTLY), so the caller
 * asks through a query instead; else whether a row was found.
 */
static int
IndexFetch(Relation rel, Oid indexid, const char *name, int32 version,
		   ScanDirection dir, TupleTableSlot *slot)
{
	Relation	idx = index_open(indexid, AccessShareLock);
	ScanKeyData keys[2];
	int			nkeys = 1;
	IndexScanDesc scan;
	bool		found;

	if (!idx->rd_index->indisvalid)
	{
		index_close(idx, NoLock);
		return -1;
	}
	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(name));
	if (version != 0)
	{
		ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
							   idx->rd_indcollation[1], F_INT4EQ, Int32GetDatum(version));
		nkeys = 2;
	}
	scan = index_beginscan(rel, idx,
						   ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(),
						   nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	found = index_getnext_slot(scan, dir, slot);
	index_endscan(scan);
	index_close(idx, NoLock);
	return found ? 1 : 0;
}

/*
 * The registry row of a name's version (0: the serving version: the
 * champion, else the newest), read through the registry's indexes rather
 * than a query: a fresh backend's first score then plans nothing.  Returns
 * -1 when this path may not be used (see RegistryReadable, IndexFetch), 0
 * when there is no such row, 1 when found.  The bytes are read only when
 * the backend cache holds no entry for the row's id and xmin.
 */
/* Whether a version's params ask cr_predict's jsonb form for reasons. */
static bool
ParamsWantReasons(Datum params)
{
	Jsonb	   *jb = DatumGetJsonbP(params);
	JsonbValue	v;
	JsonbValue *found = getKeyJsonValueFromContainer(&jb->root, "reasons", strlen("reasons"), &v);

	return found != NULL && found->type == jbvBool && found->val.boolean;
}

static int
DirectLookup(const char *name, int32 version, int64 *id, int32 *found_version,
			 TransactionId *xmin, bytea **bytes, bool *reasons)
{
	Relation	rel;
	TupleTableSlot *slot;
	int			found;
	bool		isnull;
	RegistryRels rels;

	*bytes = NULL;
	if (!RegistryReadable(&rels))
		return -1;
	rel = table_open(rels.models, AccessShareLock);
	slot = table_slot_create(rel, NULL);

	/*
	 * The champion, through the partial index of champions; else backward
	 * by (name, version): the newest version first.
	 */
	found = version == 0 ?
		IndexFetch(rel, rels.models_champion, name, 0, ForwardScanDirection, slot) : 0;
	if (found == 0)
		found = IndexFetch(rel, rels.models_by_name_version, name, version,
						   version == 0 ? BackwardScanDirection : ForwardScanDirection, slot);
	if (found == 1)
	{
		CacheSlot  *cached;

		*id = DatumGetInt64(slot_getattr(slot, attnameAttNum(rel, "id", false), &isnull));
		*found_version = DatumGetInt32(slot_getattr(slot, attnameAttNum(rel, "version", false),
													&isnull));
		*xmin = DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber,
													  &isnull));
		cached = hash_search(RegistryCache, id, HASH_FIND, NULL);
		if (cached == NULL || cached->entry->xmin != *xmin)
		{
			Datum		d = slot_getattr(slot, attnameAttNum(rel, "model", false), &isnull);

			if (isnull)
				elog(ERROR, "model row " INT64_FORMAT " has no bytes", *id);
			*bytes = DatumGetByteaPCopy(d);
			d = slot_getattr(slot, attnameAttNum(rel, "params", false), &isnull);
			*reasons = !isnull && ParamsWantReasons(d);
		}
	}
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return found;
}

/* A function's model-name argument, which must not be NULL. */
char *
RegistryNameArg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* A function's version argument: 0 (the serving version) when NULL. */
int32
RegistryVersionArg(FunctionCallInfo fcinfo, int argno)
{
	int32		version;

	if (PG_ARGISNULL(argno))
		return 0;
	version = PG_GETARG_INT32(argno);
	if (version <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model version must be positive, not %d", version)));
	return version;
}

/* No row for the name (and version): the error says which is missing. */
static void
RegistryNotFound(const char *name, int32 version, bool name_exists)
{
	if (version != 0 && name_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no version %d", name, version),
				 errhint("List its versions with: SELECT version, status FROM credit_risk.models WHERE name = %s;",
						 quote_literal_cstr(name))));
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("model \"%s\" does not exist", name),
			 errhint("Train it with credit_risk.cr_train(), or list models with: SELECT DISTINCT name FROM credit_risk.models;")));
}

/*
 * Find a model version in the registry (version 0: the serving version)
 * and return its decoded form from the cache, decoding it on a miss.
 */
CrCachedModel *
RegistryLookup(const char *name, int32 version)
{
	MemoryContext callercxt = CurrentMemoryContext;
	int64		id;
	int32		found_version;
	TransactionId xmin;
	CacheSlot  *slot;
	bool		found;
	CrStamp		now;
	CrCachedModel *entry;
	Resolved   *kept;
	uint64		generation;
	bytea	   *bytes;
	bool		reasons = false;
	int			direct;

	CacheInit();
	RegistryStamp(&now);
	generation = ReuseGeneration(&now);
	kept = ResolvedFind(name, version, generation);
	if (kept != NULL)
	{
		EntryTouch(kept->entry, &now);
		return kept->entry;
	}

	direct = DirectLookup(name, version, &id, &found_version, &xmin, &bytes, &reasons);
	if (direct == 0)
	{
		int64		other_id;
		int32		other_version;
		TransactionId other_xmin;
		bytea	   *other_bytes;
		bool		other_reasons;

		RegistryNotFound(name, version,
						 version != 0 &&
						 DirectLookup(name, 0, &other_id, &other_version, &other_xmin,
									  &other_bytes, &other_reasons) == 1);
	}
	if (direct < 0)
	{
		/* through queries, which apply column privileges and row security */
		Datum		args[2];
		bool		isnull;
		int			rc;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = CStringGetTextDatum(name);
		args[1] = Int32GetDatum(version);
		rc = SPI_execute_plan(version == 0 ? PlanGet(QUERY_SERVING) : PlanGet(QUERY_VERSION), args, NULL,
							  true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "registry lookup failed: %s", SPI_result_code_string(rc));
		if (SPI_processed == 0)
			RegistryNotFound(name, version,
							 version != 0 &&
							 SPI_execute_plan(PlanGet(QUERY_SERVING), args, NULL, true, 1) == SPI_OK_SELECT &&
							 SPI_processed > 0);
		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		found_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		slot = hash_search(RegistryCache, &id, HASH_FIND, &found);
		if (!found || slot->entry->xmin != xmin)
		{
			Datum		d;

			args[0] = Int64GetDatum(id);
			rc = SPI_execute_plan(PlanGet(QUERY_BYTES), args, NULL, true, 1);
			if (rc != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "model row " INT64_FORMAT " vanished", id);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (isnull)
				elog(ERROR, "model row " INT64_FORMAT " has no bytes", id);
			bytes = (bytea *) SPI_datumTransfer(d, false, -1);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
			reasons = !isnull && ParamsWantReasons(d);
		}
		SPI_finish();
		MemoryContextSwitchTo(callercxt);
	}

	slot = hash_search(RegistryCache, &id, HASH_FIND, &found);
	if (found && slot->entry->xmin == xmin)
	{
		entry = slot->entry;
		EntryTouch(entry, &now);
		ResolvedKeep(name, version, generation, entry, 0.0);
		return entry;
	}
	Assert(bytes != NULL);
	bytes = DatumGetByteaPP(PointerGetDatum(bytes));
	entry = EntryCreate(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), false);
	pfree(bytes);

	entry->id = id;
	entry->version = found_version;
	entry->xmin = xmin;
	entry->reasons = reasons;
	entry->name = MemoryContextStrdup(entry->cxt, name);
	entry->version_label = MemoryContextStrdup(entry->cxt,
											   psprintf("%s@%d", name, found_version));
	EntryTouch(entry, &now);

	if (found)
	{
		EntryRelease(slot->entry, &now);
		hash_search(RegistryCache, &id, HASH_REMOVE, NULL);
	}
	CacheEvict(RegistryCache, &now);
	MemoryContextSetParent(entry->cxt, CacheContext);
	slot = hash_search(RegistryCache, &id, HASH_ENTER, NULL);
	slot->entry = entry;
	ResolvedKeep(name, version, generation, entry, 0.0);
	return entry;
}

/*
 * A model passed as a value: cached by checksum, confirmed byte for byte.
 */
CrCachedModel *
RegistryFromBytes(const char *data, Size len)
{
	CrStamp		now;
	int64		key;
	CacheSlot  *slot;
	bool		found;
	CrCachedModel *entry;

	CacheInit();
	RegistryStamp(&now);

	if (len < CR_HEADER_SIZE)
		(void) ModelDecode(data, len);	/* reports the error */
	key = (int64) ModelPeekChecksum(data, len);

	slot = hash_search(BytesCache, &key, HASH_FIND, &found);
	if (found && slot->entry->model->nbytes == len &&
		memcmp(slot->entry->bytes, data, len) == 0)
	{
		EntryTouch(slot->entry, &now);
		return slot->entry;
	}

	entry = EntryCreate(data, len, true);
	entry->version_label = MemoryContextStrdup(entry->cxt, "bytes");
	EntryTouch(entry, &now);
	if (found)
	{
		EntryRelease(slot->entry, &now);
		hash_search(BytesCache, &key, HASH_REMOVE, NULL);
	}
	CacheEvict(BytesCache, &now);
	MemoryContextSetParent(entry->cxt, CacheContext);
	slot = hash_search(BytesCache, &key, HASH_ENTER, NULL);
	slot->entry = entry;
	return entry;
}

/*
 * A name's active route (share > 0) through the routes' primary key, as
 * DirectLookup reads models: -1 when this path may not be used, 0 when
 * there is none, 1 when found.
 */
static int
DirectRoute(const char *name, int32 *version, double *share)
{
	Relation	rel;
	TupleTableSlot *slot;
	int			found;
	bool		isnull;

	RegistryRels rels;

	if (!RegistryReadable(&rels))
		return -1;
	rel = table_open(rels.routes, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	found = IndexFetch(rel, rels.routes_by_name, name, 0, ForwardScanDirection, slot);
	if (found == 1)
	{
		*version = DatumGetInt32(slot_getattr(slot, attnameAttNum(rel, "challenger_version", false),
											  &isnull));
		*share = DatumGetFloat8(slot_getattr(slot, attnameAttNum(rel, "share", false), &isnull));
		if (!(*share > 0))
			found = 0;
	}
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return found;
}

/*
 * The challenger a name routes a share of its applicants to, or NULL when
 * it has no active route.
 */
CrCachedModel *
RegistryRoute(const char *name, double *share)
{
	Datum		args[1];
	bool		isnull;
	int32		version = 0;
	int			rc;
	CrStamp		now;
	uint64		generation;
	Resolved   *kept;
	CrCachedModel *entry;
	int			direct;

	CacheInit();
	RegistryStamp(&now);
	generation = ReuseGeneration(&now);
	kept = ResolvedFind(name, -1, generation);
	if (kept != NULL)
	{
		*share = kept->share;
		if (kept->entry != NULL)
			EntryTouch(kept->entry, &now);
		return kept->entry;
	}

	*share = 0.0;
	direct = DirectRoute(name, &version, share);
	if (direct == 0)
	{
		version = 0;
		*share = 0.0;
	}
	else if (direct < 0)
	{
		/* through a query, which applies the user's privileges */
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = CStringGetTextDatum(name);
		rc = SPI_execute_plan(PlanGet(QUERY_ROUTE), args, NULL, true, 1);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "route lookup failed: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
		{
			version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			*share = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		}
		SPI_finish();
	}
	entry = version > 0 ? RegistryLookup(name, version) : NULL;
	ResolvedKeep(name, -1, generation, entry, *share);
	return entry;
}

/* Stable assignment of an applicant key to the challenger. */
bool
RegistryRouteToChallenger(const char *key, Size len, double share)
{
	uint64		h = hash_bytes_extended((const unsigned char *) key, len,
										UINT64CONST(0x63725f726f757465));

	return CrUnit(h) < share;
}
