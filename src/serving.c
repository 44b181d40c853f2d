/*
 * serving.c
 *	  Serving statistics in shared memory: per model version (per
 *	  database), calls, rows, errors and a histogram of call latencies, for
 *	  credit_risk.serving_stats, cr_monitor's latency rule and Prometheus.
 *
 * Needs shared_preload_libraries = 'credit_risk'; without it scoring counts
 * nothing and the view says why.  A call adds to its entry's counters with
 * atomic additions, into one of SERVING_STRIPES copies chosen by the
 * backend's PGPROC number, so that backends scoring the same model at full
 * speed rarely share a cache line.  The entry's slot is looked up once per
 * backend and cached model (under a shared lock), and again only after a
 * reset.  An ERROR after the model was resolved counts as an error of that
 * version: the call is pushed on a short stack that a (sub)transaction
 * abort unwinds.
 *
 * A reset empties the table, so a slot can go to another version.  A
 * backend about to add to a slot first publishes the generation it found
 * the slot in (its "in flight" mark), then checks that generation is still
 * current; the reset advances the generation and waits until no backend is
 * in flight under the old one before it zeroes and frees the slots.  So a
 * count lands in the version it belongs to, or nowhere.
 *
 * Latency percentiles describe the calls that score one applicant; a batch
 * call (cr_predict_batch, cr_explain_batch) counts in calls, rows and
 * errors, and its time in batch_seconds.
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "credit_risk.h"
#include "serving.h"

PG_FUNCTION_INFO_V1(cr_serving_stats);
PG_FUNCTION_INFO_V1(cr_serving_histogram);
PG_FUNCTION_INFO_V1(cr_reset_serving_stats);

bool		cr_metrics = true;
int			cr_metrics_max_models = 256;

/*
 * Latency buckets: 0 holds calls under 1 µs; bucket i (1 .. LAST - 1) holds
 * [2^((i-1)/8), 2^(i/8)) µs, eight to an octave, so that a bucket's
 * geometric middle is within 4.4% of any latency in it; LAST holds what is
 * beyond 2^((LAST-1)/8) µs (10.9 s).
 */
#define SERVING_PER_OCTAVE	8
#define SERVING_NBUCKETS	189
#define SERVING_LAST		(SERVING_NBUCKETS - 1)
#define SERVING_STRIPES		4
#define SERVING_NAMELEN		64		/* model names are at most 63 bytes */
#define SERVING_MAX_PENDING 32
#define SERVING_SAMPLE		16		/* a call site's repeated calls: one in 16 timed */
#define SERVING_FLUSH_CALLS 256		/* local counts go to shared memory at least this often */

/*
 * A finished single call is counted in its latency bucket when it was
 * timed, else in untimed; calls and rows are the sums of those, the batch
 * calls and the errors.
 */
typedef struct ServingCounters
{
	pg_atomic_uint64 sum_ns;	/* of finished single calls that were timed */
	pg_atomic_uint64 max_ns;
	pg_atomic_uint64 untimed;	/* finished single calls not timed */
	pg_atomic_uint64 errors;	/* failed calls, single or batch */
	pg_atomic_uint64 batch_calls;	/* finished batch calls */
	pg_atomic_uint64 batch_rows;
	pg_atomic_uint64 batch_ns;
	pg_atomic_uint64 buckets[SERVING_NBUCKETS];	/* finished single calls */
} ServingCounters;

/* a backend's in-flight mark, on a cache line of its own */
typedef union ServingInflight
{
	pg_atomic_uint32 gen;
	char		pad[PG_CACHE_LINE_SIZE];
} ServingInflight;

/* a stripe on cache lines of its own */
typedef union ServingStripe
{
	ServingCounters c;
	char		pad[TYPEALIGN(PG_CACHE_LINE_SIZE, sizeof(ServingCounters))];
} ServingStripe;

/* what a version is counted under */
typedef struct ServingKey
{
	Oid			dbid;
	int32		version;		/* 0 for a model passed as bytes */
	uint32		checksum;		/* of the model's bytes */
	char		name[SERVING_NAMELEN];	/* "" for a model passed as bytes */
} ServingKey;

typedef struct ServingEntry
{
	ServingStripe stripe[SERVING_STRIPES];
	ServingKey	key;
	TimestampTz since;
} ServingEntry;

typedef struct ServingShared
{
	LWLock	   *lock;			/* guards nentries, keys and resets */
	pg_atomic_uint32 generation;	/* advanced by a reset; never 0 */
	pg_atomic_uint64 uncounted; /* calls of versions beyond the table, or nested too deep */
	int			nentries;
	int			maxentries;
	int			nprocs;
	ServingInflight *inflight;	/* per PGPROC: the generation it adds under, or 0 */
	ServingEntry entries[FLEXIBLE_ARRAY_MEMBER];
} ServingShared;

static ServingShared *serving = NULL;

/* calls begun and not yet finished in this backend */
typedef struct ServingPending
{
	int			slot;
	uint32		gen;
	int			nest_level;
} ServingPending;

static ServingPending pending[SERVING_MAX_PENDING];
static int	npending = 0;

/*
 * This backend's counts not yet in shared memory, per slot: calls at one
 * call site in one statement (cr_predict over a table) add here, and go to
 * shared memory every SERVING_FLUSH_CALLS calls and at the end of each
 * transaction, so that scoring row after row pays for a few increments,
 * not for atomic additions to lines other backends write.
 */
typedef struct ServingLocal
{
	uint32		gen;			/* the generation the counts belong to */
	bool		dirty;			/* on the dirty list */
	struct
	{
		uint32		calls_since_flush;
		uint64		untimed;
		uint64		sum_ns;
		uint64		max_ns;
		uint64		batch_calls;
		uint64		batch_rows;
		uint64		batch_ns;
		uint64		buckets[SERVING_NBUCKETS];
	}			counts;
} ServingLocal;

static ServingLocal **locals = NULL;	/* by slot */
static int *dirty = NULL;		/* slots with counts to flush */
static int	ndirty = 0;


Size
ServingShmemSize(void)
{
	Size		size = add_size(offsetof(ServingShared, entries),
								mul_size(cr_metrics_max_models, sizeof(ServingEntry)));

	return add_size(size, mul_size(MaxBackends, sizeof(ServingInflight)));
}

void
ServingShmemInit(void)
{
	bool		found;

	serving = ShmemInitStruct("credit_risk serving statistics", ServingShmemSize(), &found);
	if (!found)
	{
		memset(serving, 0, ServingShmemSize());
		serving->lock = &(GetNamedLWLockTranche("credit_risk"))[0].lock;
		pg_atomic_init_u32(&serving->generation, 1);
		pg_atomic_init_u64(&serving->uncounted, 0);
		serving->maxentries = cr_metrics_max_models;
		serving->nprocs = MaxBackends;
		serving->inflight = (ServingInflight *) &serving->entries[cr_metrics_max_models];
		for (int i = 0; i < MaxBackends; i++)
			pg_atomic_init_u32(&serving->inflight[i].gen, 0);
	}
}

void
ServingStart(CrServingCall *call, bool batch, uint32 *site_calls)
{
	call->attached = 0;
	call->batch = batch;
	call->on = cr_metrics && serving != NULL && MyProc != NULL &&
		MyProc->pgprocno < serving->nprocs;
	/* a call site's first call is timed, then one in SERVING_SAMPLE */
	call->timed = call->on && (batch || site_calls == NULL ||
							   (*site_calls)++ % SERVING_SAMPLE == 0);
	if (call->timed)
		INSTR_TIME_SET_CURRENT(call->start);
}

static void
ServingKeyOf(const CrCachedModel *entry, ServingKey *key)
{
	memset(key->name, 0, SERVING_NAMELEN);
	key->dbid = MyDatabaseId;
	/* the checksum tells apart a name's version 1 before and after a re-created extension */
	key->checksum = entry->model->checksum;
	key->version = 0;
	if (entry->name != NULL)
	{
		strlcpy(key->name, entry->name, SERVING_NAMELEN);
		key->version = entry->version;
	}
}

static bool
ServingKeyEqual(const ServingKey *a, const ServingKey *b)
{
	return a->dbid == b->dbid && a->version == b->version &&
		a->checksum == b->checksum && strcmp(a->name, b->name) == 0;
}

/* The entry's slot, found or made; -1 when the table is full. */
static int
ServingFindSlot(const CrCachedModel *entry, uint32 *gen)
{
	ServingKey	key;
	int			slot = -1;

	ServingKeyOf(entry, &key);
	LWLockAcquire(serving->lock, LW_SHARED);
	for (int i = 0; i < serving->nentries && slot < 0; i++)
		if (ServingKeyEqual(&serving->entries[i].key, &key))
			slot = i;
	*gen = pg_atomic_read_u32(&serving->generation);
	LWLockRelease(serving->lock);
	if (slot >= 0)
		return slot;

	LWLockAcquire(serving->lock, LW_EXCLUSIVE);
	for (int i = 0; i < serving->nentries && slot < 0; i++)
		if (ServingKeyEqual(&serving->entries[i].key, &key))
			slot = i;
	if (slot < 0 && serving->nentries < serving->maxentries)
	{
		ServingEntry *e = &serving->entries[serving->nentries];

		/* counters are zero: the slot is new, or was zeroed by a reset */
		e->key = key;
		e->since = GetCurrentTimestamp();
		slot = serving->nentries++;
	}
	*gen = pg_atomic_read_u32(&serving->generation);
	LWLockRelease(serving->lock);
	return slot;
}

void
ServingAttach(CrServingCall *call, CrCachedModel *entry)
{
	uint32		gen;

	if (!call->on)
		return;
	if (npending == SERVING_MAX_PENDING)
	{
		/* nested too deep to count */
		pg_atomic_fetch_add_u64(&serving->uncounted, 1);
		return;
	}
	gen = pg_atomic_read_u32(&serving->generation);
	if (entry->serving_gen != gen)
	{
		entry->serving_slot = ServingFindSlot(entry, &gen);
		entry->serving_gen = gen;
	}
	pending[npending].slot = entry->serving_slot;
	pending[npending].gen = entry->serving_gen;
	pending[npending].nest_level = GetCurrentTransactionNestLevel();
	npending++;
	call->attached++;
}

static inline int
ServingBucket(uint64 ns)
{
	double		us = (double) ns / 1000.0;
	int			b;

	if (us < 1.0)
		return 0;
	b = (int) floor(log2(us) * SERVING_PER_OCTAVE) + 1;
	return Min(b, SERVING_LAST);
}

/*
 * The slot's counters for this backend, when the slot is still the one it
 * was found as under gen; then the caller adds and calls ServingLeave.
 * NULL: not counted (a reset since).
 */
static ServingCounters *
ServingEnter(int slot, uint32 gen)
{
	pg_atomic_uint32 *mine = &serving->inflight[MyProc->pgprocno].gen;

	pg_atomic_write_u32(mine, gen);
	pg_memory_barrier();
	if (pg_atomic_read_u32(&serving->generation) != gen)
	{
		pg_atomic_write_u32(mine, 0);
		return NULL;
	}
	return &serving->entries[slot].stripe[MyProc->pgprocno % SERVING_STRIPES].c;
}

static void
ServingLeave(void)
{
	/* the additions (locked instructions) are visible before the mark goes */
	pg_write_barrier();
	pg_atomic_write_u32(&serving->inflight[MyProc->pgprocno].gen, 0);
}

static inline void
AddIf(pg_atomic_uint64 *counter, uint64 v)
{
	if (v != 0)
		pg_atomic_fetch_add_u64(counter, v);
}

/*
 * Move a slot's local counts to shared memory (or drop them: a reset
 * since).  The slot stays on the dirty list until ServingFlush.
 */
static void
ServingFlushSlot(int slot)
{
	ServingLocal *l = locals[slot];
	ServingCounters *c = ServingEnter(slot, l->gen);

	if (c != NULL)
	{
		uint64		max = pg_atomic_read_u64(&c->max_ns);

		AddIf(&c->untimed, l->counts.untimed);
		AddIf(&c->sum_ns, l->counts.sum_ns);
		AddIf(&c->batch_calls, l->counts.batch_calls);
		AddIf(&c->batch_rows, l->counts.batch_rows);
		AddIf(&c->batch_ns, l->counts.batch_ns);
		for (int b = 0; b < SERVING_NBUCKETS; b++)
			AddIf(&c->buckets[b], l->counts.buckets[b]);
		while (l->counts.max_ns > max && !pg_atomic_compare_exchange_u64(&c->max_ns, &max, l->counts.max_ns))
			;
		ServingLeave();
	}
	memset(&l->counts, 0, sizeof(l->counts));
}

/* Every slot's local counts to shared memory: at the end of a transaction, and before reading. */
void
ServingFlush(void)
{
	for (int i = 0; i < ndirty; i++)
	{
		ServingFlushSlot(dirty[i]);
		locals[dirty[i]]->dirty = false;
	}
	ndirty = 0;
}

/* This backend's counts of slot under gen (allocated at its first use). */
static ServingLocal *
ServingLocalOf(int slot, uint32 gen)
{
	ServingLocal *l;

	if (locals == NULL)
	{
		locals = MemoryContextAllocZero(TopMemoryContext, sizeof(ServingLocal *) * serving->maxentries);
		dirty = MemoryContextAlloc(TopMemoryContext, sizeof(int) * serving->maxentries);
	}
	l = locals[slot];
	if (l == NULL)
		l = locals[slot] = MemoryContextAllocZero(TopMemoryContext, sizeof(ServingLocal));
	if (l->gen != gen)
	{
		/* counts of an older generation were reset away */
		memset(&l->counts, 0, sizeof(l->counts));
		l->gen = gen;
	}
	if (!l->dirty)
	{
		l->dirty = true;
		dirty[ndirty++] = slot;
	}
	return l;
}

void
ServingFinish(CrServingCall *call, const int64 *rows)
{
	uint64		ns = 0;
	int			bucket = 0;

	if (!call->on || call->attached == 0)
		return;
	if (call->timed)
	{
		instr_time	end;

		INSTR_TIME_SET_CURRENT(end);
		INSTR_TIME_SUBTRACT(end, call->start);
		ns = (uint64) (INSTR_TIME_GET_DOUBLE(end) * 1e9);
		bucket = ServingBucket(ns);
	}

	for (int k = call->attached - 1; k >= 0; k--)
	{
		ServingPending *p = &pending[--npending];
		ServingLocal *l;

		if (p->slot < 0)
		{
			pg_atomic_fetch_add_u64(&serving->uncounted, 1);
			continue;
		}
		/* begun before a reset: not counted (its slot may be another's now) */
		if (p->gen != pg_atomic_read_u32(&serving->generation))
			continue;
		l = ServingLocalOf(p->slot, p->gen);
		if (call->batch)
		{
			l->counts.batch_calls++;
			l->counts.batch_rows += rows[k];
			l->counts.batch_ns += ns;
		}
		else if (call->timed)
		{
			l->counts.buckets[bucket]++;
			l->counts.sum_ns += ns;
			l->counts.max_ns = Max(l->counts.max_ns, ns);
		}
		else
			l->counts.untimed++;
		if (++l->counts.calls_since_flush >= SERVING_FLUSH_CALLS)
			ServingFlushSlot(p->slot);
	}
	call->attached = 0;
}

void
ServingFinishOne(CrServingCall *call, int64 rows)
{
	ServingFinish(call, &rows);
}

/* An ERROR unwound the calls begun at nest_level or deeper: each failed. */
void
ServingAtAbort(int nest_level)
{
	while (npending > 0 && pending[npending - 1].nest_level >= nest_level)
	{
		ServingPending *p = &pending[--npending];
		ServingCounters *c;

		if (p->slot < 0)
		{
			pg_atomic_fetch_add_u64(&serving->uncounted, 1);
			continue;
		}
		c = ServingEnter(p->slot, p->gen);
		if (c == NULL)
			continue;
		pg_atomic_fetch_add_u64(&c->errors, 1);
		ServingLeave();
	}
}

/* Nothing is pending once a transaction commits; what is left was never finished. */
void
ServingAtCommit(void)
{
	npending = 0;
}

/* ---------------------------------------------------------------- reading */

/* one entry's counters, summed over its stripes */
typedef struct ServingTotals
{
	uint64		calls;
	uint64		rows;
	uint64		errors;
	uint64		sum_ns;
	uint64		max_ns;
	uint64		batch_calls;
	uint64		batch_ns;
	uint64		buckets[SERVING_NBUCKETS];
} ServingTotals;

static void
ServingSum(const ServingEntry *e, ServingTotals *t)
{
	memset(t, 0, sizeof(*t));
	for (int s = 0; s < SERVING_STRIPES; s++)
	{
		ServingCounters *c = (ServingCounters *) &e->stripe[s].c;
		uint64		batch_rows = pg_atomic_read_u64(&c->batch_rows);
		uint64		untimed = pg_atomic_read_u64(&c->untimed);

		t->calls += untimed;
		t->rows += untimed;
		t->errors += pg_atomic_read_u64(&c->errors);
		t->sum_ns += pg_atomic_read_u64(&c->sum_ns);
		t->max_ns = Max(t->max_ns, pg_atomic_read_u64(&c->max_ns));
		t->batch_calls += pg_atomic_read_u64(&c->batch_calls);
		t->batch_ns += pg_atomic_read_u64(&c->batch_ns);
		t->rows += batch_rows;
		for (int b = 0; b < SERVING_NBUCKETS; b++)
			t->buckets[b] += pg_atomic_read_u64(&c->buckets[b]);
	}
	/* a finished single call is one call and one row */
	for (int b = 0; b < SERVING_NBUCKETS; b++)
	{
		t->calls += t->buckets[b];
		t->rows += t->buckets[b];
	}
	t->calls += t->batch_calls + t->errors;
}

/* upper bound of bucket b in seconds (infinity for the last) */
static double
ServingBucketUpper(int b)
{
	if (b >= SERVING_LAST)
		return INFINITY;
	return pow(2.0, (double) b / SERVING_PER_OCTAVE) * 1e-6;
}

/*
 * The q-quantile in milliseconds: the geometric middle of the bucket that
 * holds it (at most the largest call); false without single calls.
 */
static bool
ServingQuantile(const ServingTotals *t, double q, double *ms)
{
	uint64		n = 0;
	uint64		rank;
	uint64		seen = 0;
	double		max_ms = (double) t->max_ns / 1e6;

	for (int b = 0; b < SERVING_NBUCKETS; b++)
		n += t->buckets[b];
	if (n == 0)
		return false;
	rank = (uint64) ceil(q * (double) n);
	rank = Max(rank, 1);
	for (int b = 0; b < SERVING_NBUCKETS; b++)
	{
		seen += t->buckets[b];
		if (seen >= rank)
		{
			double		v;

			if (b == 0)
				v = 0.5e-3;
			else if (b == SERVING_LAST)
				v = max_ms;
			else
				v = pow(2.0, ((double) b - 0.5) / SERVING_PER_OCTAVE) * 1e-3;
			*ms = Min(v, max_ms);
			return true;
		}
	}
	*ms = max_ms;
	return true;
}

static void
ServingRequire(void)
{
	if (serving == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("serving statistics need credit_risk in shared_preload_libraries"),
				 errdetail("Scoring works without it, but nothing is counted."),
				 errhint("Add credit_risk to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* an entry's key, copied under the lock (a reset may reuse the slot) */
typedef struct ServingKeyCopy
{
	int			slot;
	ServingKey	key;
	TimestampTz since;
} ServingKeyCopy;

/*
 * This database's entries, copied under the lock, with their counters
 * summed (read after the copy: a reset in between shows them as zero).
 */
static ServingKeyCopy *
ServingKeys(int *n, ServingTotals **totals)
{
	ServingKeyCopy *keys;
	int			all;
	int			k = 0;

	LWLockAcquire(serving->lock, LW_SHARED);
	all = serving->nentries;
	keys = palloc(sizeof(ServingKeyCopy) * Max(all, 1));
	for (int i = 0; i < all; i++)
	{
		ServingEntry *e = &serving->entries[i];

		if (e->key.dbid != MyDatabaseId)
			continue;
		keys[k].slot = i;
		keys[k].key = e->key;
		keys[k].key.name[SERVING_NAMELEN - 1] = '\0';
		keys[k].since = e->since;
		k++;
	}
	LWLockRelease(serving->lock);
	*totals = palloc(sizeof(ServingTotals) * Max(k, 1));
	for (int i = 0; i < k; i++)
		ServingSum(&serving->entries[keys[i].slot], &(*totals)[i]);
	*n = k;
	return keys;
}

static Datum
ServingModelName(const ServingKeyCopy *k)
{
	if (k->key.name[0] != '\0')
		return CStringGetTextDatum(k->key.name);
	return CStringGetTextDatum(psprintf("(bytes %08x)", k->key.checksum));
}

#define SERVING_STATS_COLS	13

/*
 * cr_serving_stats(): per model version of this database, calls, rows,
 * errors, p50, p95, p99 and max latency of single calls in milliseconds,
 * since when, the seconds of the single calls, and the batch calls and
 * their seconds.  Calls not counted (the table full, or nested too deep:
 * in every database) come as a row "(not counted)" once there are any.
 */
Datum
cr_serving_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ServingKeyCopy *keys;
	ServingTotals *totals;
	uint64		uncounted;
	int			n;

	ServingRequire();
	ServingFlush();				/* this backend's own calls so far */
	InitMaterializedSRF(fcinfo, 0);
	keys = ServingKeys(&n, &totals);

	for (int i = 0; i < n; i++)
	{
		ServingTotals *t = &totals[i];
		Datum		values[SERVING_STATS_COLS];
		bool		nulls[SERVING_STATS_COLS] = {0};
		double		ms;

		values[0] = ServingModelName(&keys[i]);
		values[1] = Int32GetDatum(keys[i].key.version);
		nulls[1] = keys[i].key.version == 0;
		values[2] = Int64GetDatum((int64) t->calls);
		values[3] = Int64GetDatum((int64) t->rows);
		values[4] = Int64GetDatum((int64) t->errors);
		nulls[5] = !ServingQuantile(t, 0.50, &ms);
		values[5] = Float8GetDatum(ms);
		nulls[6] = !ServingQuantile(t, 0.95, &ms);
		values[6] = Float8GetDatum(ms);
		nulls[7] = !ServingQuantile(t, 0.99, &ms);
		values[7] = Float8GetDatum(ms);
		values[8] = Float8GetDatum((double) t->max_ns / 1e6);
		nulls[8] = nulls[5];
		values[9] = TimestampTzGetDatum(keys[i].since);
		values[10] = Float8GetDatum((double) t->sum_ns / 1e9);
		values[11] = Int64GetDatum((int64) t->batch_calls);
		values[12] = Float8GetDatum((double) t->batch_ns / 1e9);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	uncounted = pg_atomic_read_u64(&serving->uncounted);
	if (uncounted > 0)
	{
		Datum		values[SERVING_STATS_COLS] = {0};
		bool		nulls[SERVING_STATS_COLS];

		for (int k = 0; k < SERVING_STATS_COLS; k++)
			nulls[k] = true;
		values[0] = CStringGetTextDatum("(not counted)");
		nulls[0] = false;
		values[2] = Int64GetDatum((int64) uncounted);
		nulls[2] = false;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

#define SERVING_MAX_BOUNDS	1000

/*
 * cr_serving_histogram(le float8[]): per model version, the number of
 * finished single calls that took at most each bound (seconds, cumulative,
 * as a Prometheus histogram's buckets, then +Infinity), and their total
 * seconds.  A call counts under a bound when its bucket ends at or below
 * it, so a bound falls on this module's nearest bucket edge below (within
 * 9%).
 */
Datum
cr_serving_histogram(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *arr;
	Datum	   *bounds;
	bool	   *bnulls;
	int			nb;
	ServingKeyCopy *keys;
	ServingTotals *totals;
	int			n;

	ServingRequire();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the bucket bounds must not be null")));
	arr = PG_GETARG_ARRAYTYPE_P(0);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the bucket bounds must be a one-dimensional array")));
	if (ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)) > SERVING_MAX_BOUNDS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("at most %d bucket bounds, not %d", SERVING_MAX_BOUNDS,
						ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr))),
				 errhint("The latency histogram has %d buckets of its own; a few dozen bounds cover them.",
						 SERVING_NBUCKETS)));
	deconstruct_array(arr, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
					  &bounds, &bnulls, &nb);
	for (int k = 0; k < nb; k++)
		if (bnulls[k] || !isfinite(DatumGetFloat8(bounds[k])) ||
			(k > 0 && DatumGetFloat8(bounds[k]) <= DatumGetFloat8(bounds[k - 1])))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the bucket bounds must be finite numbers in increasing order"),
					 errdetail("+Infinity is always the last bucket.")));

	ServingFlush();
	InitMaterializedSRF(fcinfo, 0);
	keys = ServingKeys(&n, &totals);

	for (int i = 0; i < n; i++)
	{
		ServingTotals *t = &totals[i];
		Datum		name = ServingModelName(&keys[i]);
		uint64		cum = 0;
		int			b = 0;

		CHECK_FOR_INTERRUPTS();
		for (int k = 0; k <= nb; k++)
		{
			double		le = k < nb ? DatumGetFloat8(bounds[k]) : INFINITY;
			Datum		values[5];
			bool		nulls[5] = {0};

			while (b < SERVING_NBUCKETS && ServingBucketUpper(b) <= le)
				cum += t->buckets[b++];
			values[0] = name;
			values[1] = Int32GetDatum(keys[i].key.version);
			nulls[1] = keys[i].key.version == 0;
			values[2] = Float8GetDatum(le);
			values[3] = Int64GetDatum((int64) cum);
			values[4] = Float8GetDatum((double) t->sum_ns / 1e9);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

/*
 * cr_reset_serving_stats(): forget every version's statistics, in every
 * database.  The generation advances first; once no backend is still
 * adding under the old one, the slots are zeroed and freed.
 */
Datum
cr_reset_serving_stats(PG_FUNCTION_ARGS)
{
	uint32		old;

	ServingRequire();
	LWLockAcquire(serving->lock, LW_EXCLUSIVE);
	old = pg_atomic_fetch_add_u32(&serving->generation, 1);
	if (old + 1 == 0)
		pg_atomic_write_u32(&serving->generation, 1);	/* 0 means "not in flight" */
	pg_memory_barrier();
	for (int i = 0; i < serving->nprocs; i++)
		while (pg_atomic_read_u32(&serving->inflight[i].gen) == old)
			pg_usleep(10);		/* a few atomic additions away */
	for (int i = 0; i < serving->nentries; i++)
		memset(serving->entries[i].stripe, 0, sizeof(serving->entries[i].stripe));
	serving->nentries = 0;
	pg_atomic_write_u64(&serving->uncounted, 0);
	LWLockRelease(serving->lock);
	PG_RETURN_VOID();
}
