/*
 * gbm_shard.c
 *	  A part's side of a distributed tree fit (gbm_dist.h): its rows binned
 *	  and kept for the run, and the level messages that grow each tree.
 *
 * The aggregate credit_risk.cr_gbm_shard_load(spec, features, label, unit)
 * bins the rows it is given into this backend's run (one at a time: a new
 * load drops the last), and credit_risk.cr_gbm_shard(message) then moves
 * the rows through each level's decisions and returns the histograms the
 * coordinator asks for.  The run lives in its own memory context, freed by
 * a message with GBM_MSG_CLOSE, by the next load, or with the backend:
 * the coordinator's connection ends with the fit.
 *
 * A row's histogram sums and margin updates are those of gbm.c: gradients
 * in single precision, added in double, a node's in the order of its rows
 * (the loaded fit's order within a node may differ, so the sums agree to
 * rounding); a leaf's value added to the margin once per tree.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "gbm_dist.h"
#include "gbm_int.h"
#include "partial.h"
#include "threads.h"

PG_FUNCTION_INFO_V1(cr_gbm_shard_load_step);
PG_FUNCTION_INFO_V1(cr_gbm_shard_load_final);
PG_FUNCTION_INFO_V1(cr_gbm_shard);

/*
 * bytes a row keeps besides its p bins: flags, margin, gradient pair, two
 * row lists, and where it goes at a split
 */
#define SHARD_ROW_BYTES		(1 + sizeof(double) + sizeof(GradPair) + 2 * sizeof(uint32) + 1)

#define ROW_HOLDOUT		0x1
#define ROW_DEFAULT		0x2

typedef struct ShardRun
{
	MemoryContext cxt;
	uint64		id;				/* the load spec's hash */
	uint64		generation;		/* which run of this session */
	const void *spec_ptr;		/* the spec datum the load was started with */
	bool		loaded;			/* the load's final function ran */
	bool		broken;			/* a message failed part-way: the rows are out of step */
	int			p;
	double		holdout;
	float		weight[2];
	CrBinEdges *edges;
	double		base_margin;	/* every row's margin before the first tree */
	double	   *x;				/* p: the row being binned */
	int64		n;
	int64		cap;
	int64		ntrain;
	int64		nhold;
	int64		pos;
	uint8	   *bins;			/* cap rows of p bins */
	uint8	   *flags;
	double	   *margin;
	GradPair   *gp;
	/*
	 * The rows of the current level's nodes, node by node, each node's in
	 * row order: node k's are rows[nbegin[k] .. nbegin[k + 1]).  Rows in
	 * a leaf have left the lists.
	 */
	uint32	   *rows;
	uint32	   *scratch;		/* the next level's lists are written here */
	uint8	   *left;			/* by list position: the row goes left */
	int64	   *nbegin;			/* GBM_SHARD_MAX_NODES + 1 */
	int64	   *nbegin_next;
	int			nnodes;			/* nodes in the current level; 0 between trees */
	CrPool	   *pool;			/* credit_risk.threads, for the histograms */
	int		   *feats;			/* the tree's features */
	int			nfeats;			/* 0: no tree yet */
} ShardRun;

static ShardRun *shard_run = NULL;
static uint64 shard_generation = 0;

/*
 * The load aggregate's state: the run it bins into, by generation, so a
 * state whose run another load replaced is found out even if the new run
 * has the old one's address.  A reset callback on the aggregate's memory
 * frees a run whose load did not finish (an error, a cancel).
 */
typedef struct LoadState
{
	ShardRun   *run;
	uint64		generation;
	MemoryContextCallback cb;
} LoadState;

void
GbmWireBad(const char *what, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid %s: %s", what, why),
			 errdetail("It is made by cr_train with params.distributed for one of its parts.")));
}

/* FNV-1a over the bytes, mixed: a run's name */
uint64
GbmWireHash(const char *data, Size len)
{
	uint64		h = UINT64CONST(0xcbf29ce484222325);

	for (Size i = 0; i < len; i++)
		h = (h ^ (uint8) data[i]) * UINT64CONST(0x100000001b3);
	return h ^ (h >> 29);
}

/* ------------------------------------------------------------ the spec */

bytea *
GbmLoadSpecEncode(const GbmLoadSpec *spec)
{
	StringInfoData buf;
	uint32		head[2] = {GBM_WIRE_LOAD, GBM_WIRE_VERSION};
	int32		p = spec->p;
	bytea	   *out;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) head, sizeof(head));
	appendBinaryStringInfo(&buf, (char *) &p, sizeof(p));
	appendBinaryStringInfo(&buf, (char *) &spec->holdout, sizeof(double));
	appendBinaryStringInfo(&buf, (char *) spec->weight, 2 * sizeof(double));
	appendBinaryStringInfo(&buf, (char *) &spec->base_margin, sizeof(double));
	for (int j = 0; j < p; j++)
	{
		int32		nc = spec->edges[j].ncuts;

		appendBinaryStringInfo(&buf, (char *) &nc, sizeof(nc));
		appendBinaryStringInfo(&buf, (char *) spec->edges[j].cuts, sizeof(double) * nc);
	}
	out = palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(out, VARHDRSZ + buf.len);
	memcpy(VARDATA(out), buf.data, buf.len);
	pfree(buf.data);
	return out;
}

/* A new run, from a load spec's bytes: every field checked. */
static ShardRun *
ShardRunNew(const bytea *spec)
{
	const char *what = "cr_gbm_shard_load spec";
	GbmReader	r = {VARDATA_ANY(spec), VARSIZE_ANY_EXHDR(spec), what};
	uint32		head[2];
	MemoryContext cxt;
	ShardRun   *run;
	double		w0,
				w1;

	GbmRead(&r, head, sizeof(head));
	if (head[0] != GBM_WIRE_LOAD)
		GbmWireBad(what, "it does not start as one");
	if (head[1] != GBM_WIRE_VERSION)
		GbmWireBad(what, "it is of another version of credit_risk");

	GbmShardFree();
	/* under the caller's memory until the spec is read: an error frees it */
	cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk gbm shard",
								ALLOCSET_DEFAULT_SIZES);
	run = MemoryContextAllocZero(cxt, sizeof(ShardRun));
	run->cxt = cxt;
	run->id = GbmWireHash(VARDATA_ANY(spec), VARSIZE_ANY_EXHDR(spec));
	run->p = GbmReadInt(&r);
	if (run->p < 1 || run->p > 1000)
		GbmWireBad(what, "its feature count is out of range");
	run->holdout = GbmReadDouble(&r);
	w0 = GbmReadDouble(&r);
	w1 = GbmReadDouble(&r);
	if (!(run->holdout >= 0.0 && run->holdout < 1.0) ||
		!(w0 > 0.0 && w0 < 1e12) || !(w1 > 0.0 && w1 < 1e12))
		GbmWireBad(what, "its holdout or class weights are out of range");
	/* single precision, as the gradients take them: a weight must not round to 0 */
	run->weight[0] = (float) w0;
	run->weight[1] = (float) w1;
	if (!(run->weight[0] > 0.0f) || !(run->weight[1] > 0.0f))
		GbmWireBad(what, "its class weights are out of range");
	run->base_margin = GbmReadDouble(&r);
	if (!isfinite(run->base_margin))
		GbmWireBad(what, "its first margin is not finite");
	run->edges = MemoryContextAllocZero(cxt, sizeof(CrBinEdges) * run->p);
	for (int j = 0; j < run->p; j++)
	{
		int32		nc = GbmReadInt(&r);

		if (nc < 0 || nc > CR_MAX_VALUE_BINS - 1)
			GbmWireBad(what, "a feature's cut count is out of range");
		run->edges[j].ncuts = nc;
		run->edges[j].cuts = MemoryContextAlloc(cxt, sizeof(double) * Max(nc, 1));
		GbmRead(&r, run->edges[j].cuts, sizeof(double) * nc);
		for (int c = 0; c < nc; c++)
			if (!isfinite(run->edges[j].cuts[c]) ||
				(c > 0 && !(run->edges[j].cuts[c] > run->edges[j].cuts[c - 1])))
				GbmWireBad(what, "a feature's cut points are not finite and increasing");
	}
	if (r.left != 0)
		GbmWireBad(what, "it has bytes past its end");
	run->feats = MemoryContextAlloc(cxt, sizeof(int) * run->p);
	run->x = MemoryContextAlloc(cxt, sizeof(double) * run->p);
	run->nbegin = MemoryContextAlloc(cxt, sizeof(int64) * (GBM_SHARD_MAX_NODES + 1));
	run->nbegin_next = MemoryContextAlloc(cxt, sizeof(int64) * (GBM_SHARD_MAX_NODES + 1));
	MemoryContextSetParent(cxt, TopMemoryContext);
	/* the run's threads go with its memory (the pool's reset callback) */
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		run->pool = PoolCreate(cr_threads);
		MemoryContextSwitchTo(old);
	}
	run->generation = ++shard_generation;
	shard_run = run;
	return run;
}

void
GbmShardFree(void)
{
	if (shard_run != NULL)
	{
		MemoryContext cxt = shard_run->cxt;

		shard_run = NULL;
		MemoryContextDelete(cxt);
	}
}

/* -------------------------------------------------------------- loading */

/* Make room for one more row, within credit_risk.train_memory. */
static void
ShardGrow(ShardRun *run)
{
	int64		cap = Max(run->cap * 2, 16384);
	Size		row = (Size) run->p + SHARD_ROW_BYTES;

	/* rows are numbered in 32 bits */
	if (run->n >= (int64) PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a part of a distributed tree fit takes at most %u rows", PG_UINT32_MAX),
				 errhint("Spread the rows over more shards.")));
	cap = Min(cap, (int64) PG_UINT32_MAX);

	if ((double) cap * row > (double) cr_train_memory_kb * 1024.0)
	{
		cap = (int64) ((double) cr_train_memory_kb * 1024.0 / row);
		if (cap <= run->n)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the binned rows of this part need more than credit_risk.train_memory (%d kB)",
							cr_train_memory_kb),
					 errdetail("A part of a distributed tree fit keeps %d bytes a row for %d features.",
							   (int) row, run->p),
					 errhint("Raise credit_risk.train_memory on this server (a superuser setting), or spread the rows over more shards.")));
	}
#define GROW(ptr, type, width) \
	(ptr) = (ptr) == NULL \
		? MemoryContextAllocHuge(run->cxt, sizeof(type) * (width) * cap) \
		: repalloc_huge((ptr), sizeof(type) * (width) * cap)
	GROW(run->bins, uint8, (Size) run->p);
	GROW(run->flags, uint8, 1);
	GROW(run->margin, double, 1);
	GROW(run->gp, GradPair, 1);
	GROW(run->rows, uint32, 1);
	GROW(run->scratch, uint32, 1);
	GROW(run->left, uint8, 1);
#undef GROW
	run->cap = cap;
}

/* The load's memory goes (its query ended or failed): an unfinished run goes too. */
static void
LoadStateReset(void *arg)
{
	LoadState  *st = (LoadState *) arg;

	if (shard_run != NULL && shard_run->generation == st->generation && !shard_run->loaded)
		GbmShardFree();
}

/* A state's run must still be the session's, and still loading. */
static void
LoadStateCheck(const LoadState *st)
{
	if (shard_run == NULL || shard_run->generation != st->generation || shard_run->loaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cr_gbm_shard_load bins one set of rows at a time in a session"),
				 errdetail("Another load, or the end of this one, replaced the rows it was binning: it cannot be computed for several groups, windows or calls in one query.")));
}

/*
 * cr_gbm_shard_load_step(state internal, spec bytea, features float8[],
 * label float8, unit float8): bin a row into this backend's run.
 */
Datum
cr_gbm_shard_load_step(PG_FUNCTION_ARGS)
{
	LoadState  *st;
	ShardRun   *run;
	bytea	   *spec;
	double		y,
				unit;
	uint8	   *rb;
	int			p;
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "cr_gbm_shard_load_step called in non-aggregate context");
	if (PG_ARGISNULL(1))
		GbmWireBad("cr_gbm_shard_load spec", "it is NULL");
	spec = PG_GETARG_BYTEA_PP(1);
	if (PG_ARGISNULL(0))
	{
		run = ShardRunNew(spec);
		run->spec_ptr = spec;
		st = MemoryContextAllocZero(aggcxt, sizeof(LoadState));
		st->run = run;
		st->generation = run->generation;
		st->cb.func = LoadStateReset;
		st->cb.arg = st;
		MemoryContextRegisterResetCallback(aggcxt, &st->cb);
	}
	else
	{
		st = (LoadState *) PG_GETARG_POINTER(0);
		run = st->run;
		LoadStateCheck(st);
		if ((const void *) spec != run->spec_ptr &&
			GbmWireHash(VARDATA_ANY(spec), VARSIZE_ANY_EXHDR(spec)) != run->id)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cr_gbm_shard_load was given another spec in the middle of its rows")));
	}
	p = run->p;

	y = PartialRowArgs(fcinfo, p, NULL, run->x, &unit);
	if (run->n == run->cap)
		ShardGrow(run);
	rb = run->bins + (Size) run->n * p;
	for (int j = 0; j < p; j++)
		rb[j] = BinValue(&run->edges[j], run->x[j]);
	run->flags[run->n] = (unit < run->holdout ? ROW_HOLDOUT : 0) | (y > 0.5 ? ROW_DEFAULT : 0);
	run->margin[run->n] = run->base_margin;
	if (unit < run->holdout)
		run->nhold++;
	else
	{
		run->ntrain++;
		run->pos += y > 0.5;
	}
	run->n++;
	PG_RETURN_POINTER(st);
}

/* The run's counts, as bytes: magic, version, run, ntrain, nhold, pos, bytes. */
Datum
cr_gbm_shard_load_final(PG_FUNCTION_ARGS)
{
	LoadState  *st;
	ShardRun   *run;
	bytea	   *out;
	uint32		head[2] = {GBM_WIRE_LOADED, GBM_WIRE_VERSION};
	int64		v[5];

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "cr_gbm_shard_load_final called in non-aggregate context");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* no rows here */
	st = (LoadState *) PG_GETARG_POINTER(0);
	LoadStateCheck(st);
	run = st->run;
	run->loaded = true;
	run->spec_ptr = NULL;
	memcpy(&v[0], &run->id, sizeof(uint64));
	v[1] = run->ntrain;
	v[2] = run->nhold;
	v[3] = run->pos;
	v[4] = run->cap * ((int64) run->p + (int64) SHARD_ROW_BYTES);
	out = palloc(VARHDRSZ + sizeof(head) + sizeof(v));
	SET_VARSIZE(out, VARHDRSZ + sizeof(head) + sizeof(v));
	memcpy(VARDATA(out), head, sizeof(head));
	memcpy(VARDATA(out) + sizeof(head), v, sizeof(v));
	PG_RETURN_BYTEA_P(out);
}

void
GbmLoadedDecode(const bytea *bytes, GbmLoaded *out)
{
	const char *what = "cr_gbm_shard_load result";
	GbmReader	r = {VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes), what};
	uint32		head[2];
	int64		v[5];

	GbmRead(&r, head, sizeof(head));
	if (head[0] != GBM_WIRE_LOADED || head[1] != GBM_WIRE_VERSION)
		GbmWireBad(what, "it is not one of this version of credit_risk");
	GbmRead(&r, v, sizeof(v));
	if (r.left != 0)
		GbmWireBad(what, "it has bytes past its end");
	memcpy(&out->run, &v[0], sizeof(uint64));
	out->ntrain = v[1];
	out->nhold = v[2];
	out->pos = v[3];
	out->bytes = v[4];
	if (out->ntrain < 0 || out->nhold < 0 || out->pos < 0 || out->pos > out->ntrain)
		GbmWireBad(what, "its counts are out of range");
}

/* ----------------------------------------------------------- histograms */

/*
 * A feature's histogram of a node, as a reply carries it: a uint16 count
 * of the bins that hold rows, then each such bin's number (uint8) and sums;
 * or, when that is no shorter, GBM_HIST_DENSE and the sums of bins 0 ..
 * ncuts and the missing bin.  A bin holds rows exactly when its hessian is
 * not 0 (every row adds more than 0), so nothing is lost.
 */
void
GbmHistWrite(StringInfo out, const HistBin *hb, int nc)
{
	uint16		n = 0;

	for (int b = 0; b <= nc; b++)
		n += hb[b].h != 0.0;
	n += hb[CR_MISSING_BIN].h != 0.0;
	if ((Size) n * (1 + sizeof(HistBin)) >= (Size) (nc + 2) * sizeof(HistBin))
	{
		n = GBM_HIST_DENSE;
		appendBinaryStringInfo(out, (char *) &n, sizeof(n));
		appendBinaryStringInfo(out, (char *) hb, sizeof(HistBin) * (nc + 1));
		appendBinaryStringInfo(out, (char *) &hb[CR_MISSING_BIN], sizeof(HistBin));
		return;
	}
	appendBinaryStringInfo(out, (char *) &n, sizeof(n));
	for (int b = 0; b < GBM_NBINS; b++)
		if ((b <= nc || b == CR_MISSING_BIN) && hb[b].h != 0.0)
		{
			uint8		bin = (uint8) b;

			appendBinaryStringInfo(out, (char *) &bin, 1);
			appendBinaryStringInfo(out, (char *) &hb[b], sizeof(HistBin));
		}
}

/*
 * Read a histogram GbmHistWrite wrote for a feature of nc cuts into out
 * (GBM_NBINS bins, the bins not sent left as they are): sums must be
 * finite, hessians not negative, bins of the feature and in order.
 */
void
GbmHistRead(GbmReader *r, int nc, HistBin *out)
{
	uint16		n;
	int			last = -1;

	GbmRead(r, &n, sizeof(n));
	if (n == GBM_HIST_DENSE)
	{
		GbmRead(r, out, sizeof(HistBin) * (nc + 1));
		GbmRead(r, &out[CR_MISSING_BIN], sizeof(HistBin));
	}
	else
	{
		if (n > nc + 2)
			GbmWireBad(r->what, "a histogram has more bins than its feature");
		for (int i = 0; i < n; i++)
		{
			uint8		bin;

			GbmRead(r, &bin, 1);
			if (bin <= last || (bin > nc && bin != CR_MISSING_BIN))
				GbmWireBad(r->what, "a histogram's bins are out of range or out of order");
			GbmRead(r, &out[bin], sizeof(HistBin));
			last = bin;
		}
	}
	for (int b = 0; b < GBM_NBINS; b++)
		if (!isfinite(out[b].g) || !isfinite(out[b].h) || out[b].h < 0.0)
			GbmWireBad(r->what, "a histogram's sums are not finite");
}

/* ------------------------------------------------------------- messages */

/* a node's decision, as a level message gives it */
typedef struct ShardNode
{
	int			kind;
	int			feature;
	int			bin;
	bool		default_left;
	uint64		cat[FOREST_CAT_WORDS];
	double		value;			/* a leaf's */
	int32		child;			/* a split's left child in the next level */
} ShardNode;

static inline bool
ShardGoesLeft(const ShardNode *d, int b)
{
	return GbmGoesLeft(b, d->default_left, d->kind == GBM_NODE_CAT, d->cat, d->bin);
}

/* Read a level's decisions and move every row of the level on by them. */
static void
ShardApplyLevel(ShardRun *run, GbmReader *r)
{
	int32		nn = GbmReadInt(r);
	ShardNode  *d;
	int			nsplit = 0;

	if (nn != run->nnodes || nn == 0)
		GbmWireBad(r->what, "a level's node count is not that of the part's current level");
	d = palloc(sizeof(ShardNode) * nn);
	for (int i = 0; i < nn; i++)
	{
		uint8		kind;
		uint8		dl;

		GbmRead(r, &kind, 1);
		d[i].kind = kind;
		if (kind == GBM_NODE_LEAF)
		{
			d[i].value = GbmReadDouble(r);
			if (!isfinite(d[i].value))
				GbmWireBad(r->what, "a leaf's value is not finite");
			continue;
		}
		if (kind != GBM_NODE_SPLIT && kind != GBM_NODE_CAT)
			GbmWireBad(r->what, "a node's kind is unknown");
		d[i].feature = GbmReadInt(r);
		if (d[i].feature < 0 || d[i].feature >= run->p)
			GbmWireBad(r->what, "a split's feature is out of range");
		GbmRead(r, &dl, 1);
		d[i].default_left = dl != 0;
		if (kind == GBM_NODE_SPLIT)
			d[i].bin = GbmReadInt(r);
		else
			GbmRead(r, d[i].cat, sizeof(d[i].cat));
		d[i].child = 2 * nsplit++;
	}
	if (2 * nsplit > GBM_SHARD_MAX_NODES)
		GbmWireBad(r->what, "a level has too many nodes");

	/* leaves' rows take the leaf's value; split nodes' rows go to their children, in order */
	run->broken = true;			/* until the message is done */
	{
		const uint32 *src = run->rows;
		uint32	   *dst = run->scratch;
		int64	   *nb = run->nbegin_next;
		int64		out = 0;

		for (int k = 0; k < nn; k++)
		{
			const ShardNode *nd = &d[k];
			int64		b = run->nbegin[k];
			int64		e = run->nbegin[k + 1];
			int64		nl = 0;
			int64		l,
						rt;

			CHECK_FOR_INTERRUPTS();
			if (nd->kind == GBM_NODE_LEAF)
			{
				for (int64 i = b; i < e; i++)
					run->margin[src[i]] += nd->value;
				continue;
			}
			/* each row's bin read once; then the rows written, without branches */
			for (int64 i = b; i < e; i++)
			{
				uint8		go = ShardGoesLeft(nd, run->bins[(Size) src[i] * run->p + nd->feature]);

				run->left[i] = go;
				nl += go;
			}
			nb[nd->child] = out;
			nb[nd->child + 1] = out + nl;
			l = out;
			rt = out + nl;
			for (int64 i = b; i < e; i++)
			{
				uint8		go = run->left[i];

				dst[go ? l : rt] = src[i];
				l += go;
				rt += 1 - go;
			}
			out += e - b;
		}
		nb[2 * nsplit] = out;
		run->scratch = run->rows;
		run->rows = dst;
		run->nbegin_next = run->nbegin;
		run->nbegin = nb;
	}
	run->nnodes = 2 * nsplit;
	pfree(d);
}

/* The holdout's log loss at the margins, summed, as gbm.c's HoldoutLogLoss takes it. */
static double
ShardHoldoutLoss(const ShardRun *run)
{
	double		ll = 0.0;

	for (int64 i = 0; i < run->n; i++)
	{
		double		p;

		if (!(run->flags[i] & ROW_HOLDOUT))
			continue;
		p = CrClampProbability(CrSigmoid(run->margin[i]));
		ll -= (run->flags[i] & ROW_DEFAULT) ? log(p) : log(1.0 - p);
	}
	return ll;
}

/* A new tree: its features, every row at the root, the gradients at the margins. */
static void
ShardNewTree(ShardRun *run, GbmReader *r)
{
	int32		nf = GbmReadInt(r);

	if (run->nnodes != 0)
		GbmWireBad(r->what, "a tree starts while the last one has rows in no leaf");
	if (nf < 1 || nf > run->p)
		GbmWireBad(r->what, "a tree's feature count is out of range");
	for (int k = 0; k < nf; k++)
	{
		run->feats[k] = GbmReadInt(r);
		if (run->feats[k] < 0 || run->feats[k] >= run->p ||
			(k > 0 && run->feats[k] <= run->feats[k - 1]))
			GbmWireBad(r->what, "a tree's features are not increasing feature numbers");
	}
	run->nfeats = nf;
	run->broken = true;			/* until the message is done */
	for (int64 i = 0; i < run->n; i++)
	{
		run->rows[i] = (uint32) i;
		if (!(run->flags[i] & ROW_HOLDOUT))
		{
			/* as gbm.c's GradientTask: single precision */
			float		p = 1.0f / (1.0f + expf((float) -run->margin[i]));
			float		y = (run->flags[i] & ROW_DEFAULT) ? 1.0f : 0.0f;
			float		w = run->weight[y > 0.5f];

			run->gp[i].g = (p - y) * w;
			run->gp[i].h = Max(p * (1.0f - p), 1e-16f) * w;
		}
	}
	run->nbegin[0] = 0;
	run->nbegin[1] = run->n;
	run->nnodes = 1;
}

/*
 * A node's rows are cut into chunks whose histograms the pool's threads
 * build at once and the backend then adds up in chunk order.  The cut
 * depends only on the node's rows, the features and
 * credit_risk.histogram_message, never on the threads, so neither do the
 * sums.
 */
#define SHARD_CHUNK_ROWS	65536
#define SHARD_MAX_CHUNKS	8

typedef struct ShardChunk
{
	int64		begin;			/* rows[begin .. end) */
	int64		end;
	HistBin    *hist;			/* nfeats * GBM_NBINS, zeroed */
} ShardChunk;

typedef struct ShardHist
{
	const ShardRun *run;
	const ShardChunk *chunks;
} ShardHist;

/* A chunk's histograms from its rows, in row order.  Plain memory only: this runs in a worker. */
static void
ShardHistTask(void *arg, int task, int worker)
{
	const ShardHist *t = (const ShardHist *) arg;
	const ShardRun *run = t->run;
	const ShardChunk *c = &t->chunks[task];
	HistBin    *hs = c->hist;

	for (int64 i = c->begin; i < c->end; i++)
	{
		uint32		row = run->rows[i];
		const uint8 *rb = run->bins + (Size) row * run->p;
		double		g,
					h;

		if (run->flags[row] & ROW_HOLDOUT)
			continue;
		g = run->gp[row].g;
		h = run->gp[row].h;
		for (int f = 0; f < run->nfeats; f++)
		{
			HistBin    *hb = hs + (Size) f * GBM_NBINS + rb[run->feats[f]];

			hb->g += g;
			hb->h += h;
		}
	}
}

/*
 * The histograms of nodes build[0 .. nbuild) into out, in batches of at
 * most credit_risk.histogram_message of sums.
 */
static void
ShardHistograms(ShardRun *run, const int32 *build, int nbuild, StringInfo out)
{
	Size		node_bytes = sizeof(HistBin) * GBM_NBINS * run->nfeats;
	Size		budget = Max(GBM_REPLY_BYTES, node_bytes);
	int		   *nchunks = palloc(sizeof(int) * nbuild);
	ShardChunk *chunks = palloc(sizeof(ShardChunk) * SHARD_MAX_CHUNKS * (Size) nbuild);
	int			b0 = 0;

	for (int b = 0; b < nbuild; b++)
	{
		int64		rows = run->nbegin[build[b] + 1] - run->nbegin[build[b]];

		nchunks[b] = (int) Min(Max(rows / SHARD_CHUNK_ROWS, 1), SHARD_MAX_CHUNKS);
		nchunks[b] = (int) Min(nchunks[b], Max(budget / node_bytes, 1));
	}
	while (b0 < nbuild)
	{
		int			b1 = b0;
		int			nc = 0;
		Size		used = 0;
		HistBin    *buf;
		ShardHist	task;

		while (b1 < nbuild && (b1 == b0 || used + nchunks[b1] * node_bytes <= budget))
			used += nchunks[b1++] * node_bytes;
		buf = palloc0(used);
		for (int b = b0; b < b1; b++)
		{
			int64		nb = run->nbegin[build[b]];
			int64		rows = run->nbegin[build[b] + 1] - nb;

			for (int j = 0; j < nchunks[b]; j++)
			{
				chunks[nc].begin = nb + rows * j / nchunks[b];
				chunks[nc].end = nb + rows * (j + 1) / nchunks[b];
				chunks[nc].hist = buf + (Size) nc * run->nfeats * GBM_NBINS;
				nc++;
			}
		}
		CHECK_FOR_INTERRUPTS();
		task.run = run;
		task.chunks = chunks;
		PoolRun(run->pool, nc, ShardHistTask, &task);

		/* each node's chunks added into its first, in chunk order; then written */
		nc = 0;
		for (int b = b0; b < b1; b++)
		{
			HistBin    *first = chunks[nc].hist;

			for (int j = 1; j < nchunks[b]; j++)
			{
				const HistBin *more = chunks[nc + j].hist;

				for (Size i = 0; i < (Size) run->nfeats * GBM_NBINS; i++)
				{
					first[i].g += more[i].g;
					first[i].h += more[i].h;
				}
			}
			for (int f = 0; f < run->nfeats; f++)
				GbmHistWrite(out, first + (Size) f * GBM_NBINS, run->edges[run->feats[f]].ncuts);
			nc += nchunks[b];
		}
		pfree(buf);
		b0 = b1;
	}
	pfree(chunks);
	pfree(nchunks);
}

/*
 * Handle a message (gbm_dist.h): apply its levels, report the holdout's
 * loss, start a tree, and return the histograms of the nodes it names.
 */
bytea *
GbmShardMessage(const char *msg, Size len)
{
	const char *what = "cr_gbm_shard message";
	GbmReader	r = {msg, len, what};
	ShardRun   *run = shard_run;
	uint32		head[2];
	uint64		id;
	int32		flags,
				nlevels,
				nbuild;
	int32	   *slot = NULL;
	int32	   *build = NULL;
	StringInfoData out;
	double		loss = 0.0;
	int64		nloss = 0;

	GbmRead(&r, head, sizeof(head));
	if (head[0] != GBM_WIRE_MSG)
		GbmWireBad(what, "it does not start as one");
	if (head[1] != GBM_WIRE_VERSION)
		GbmWireBad(what, "it is of another version of credit_risk");
	GbmRead(&r, &id, sizeof(id));
	flags = GbmReadInt(&r);
	if (flags & ~(GBM_MSG_NEW_TREE | GBM_MSG_LOSS | GBM_MSG_CLOSE))
		GbmWireBad(what, "its flags are unknown");
	if (flags & GBM_MSG_CLOSE)
	{
		GbmShardFree();
		return NULL;
	}
	if (run != NULL && run->broken)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a message to this session's binned rows failed part-way"),
				 errdetail("Its rows may have moved through some of its decisions and not others."),
				 errhint("Bin the rows again with credit_risk.cr_gbm_shard_load.")));
	if (run == NULL || !run->loaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this session holds no binned rows"),
				 errdetail("credit_risk.cr_gbm_shard_load must bin them first, in the same session.")));
	if (id != run->id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this session holds the binned rows of another run")));

	nlevels = GbmReadInt(&r);
	if (nlevels < 0)
		GbmWireBad(what, "its level count is negative");
	for (int l = 0; l < nlevels; l++)
	{
		CHECK_FOR_INTERRUPTS();
		ShardApplyLevel(run, &r);
	}
	if (flags & GBM_MSG_LOSS)
	{
		loss = ShardHoldoutLoss(run);
		nloss = run->nhold;
	}
	if (flags & GBM_MSG_NEW_TREE)
		ShardNewTree(run, &r);

	nbuild = GbmReadInt(&r);
	if (nbuild < 0 || nbuild > run->nnodes)
		GbmWireBad(what, "it asks for more histograms than the level has nodes");
	if (nbuild > 0)
	{
		Size		most = 0;

		slot = palloc(sizeof(int32) * run->nnodes);
		build = palloc(sizeof(int32) * nbuild);
		for (int i = 0; i < run->nnodes; i++)
			slot[i] = -1;
		for (int b = 0; b < nbuild; b++)
		{
			build[b] = GbmReadInt(&r);
			if (build[b] < 0 || build[b] >= run->nnodes || slot[build[b]] >= 0)
				GbmWireBad(what, "a node it asks for is out of range or asked for twice");
			slot[build[b]] = b;
		}
		/* the longest the reply can be: every histogram sent whole */
		for (int f = 0; f < run->nfeats; f++)
			most += sizeof(uint16) + sizeof(HistBin) * (run->edges[run->feats[f]].ncuts + 2);
		if ((double) most * nbuild > (double) (MaxAllocSize - 1024))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the histograms of %d nodes and %d features are more than one reply can hold",
							nbuild, run->nfeats),
					 errdetail("cr_train asks for at most credit_risk.histogram_message (%d kB) of histograms a message.",
							   cr_histogram_message_kb)));
	}
	if (r.left != 0)
		GbmWireBad(what, "it has bytes past its end");

	/* the reply: the loss, then each node's histogram of each feature */
	initStringInfo(&out);
	appendStringInfoSpaces(&out, VARHDRSZ);
	{
		uint32		rhead[2] = {GBM_WIRE_REPLY, GBM_WIRE_VERSION};

		appendBinaryStringInfo(&out, (char *) rhead, sizeof(rhead));
		appendBinaryStringInfo(&out, (char *) &loss, sizeof(loss));
		appendBinaryStringInfo(&out, (char *) &nloss, sizeof(nloss));
	}

	/*
	 * The histograms, a batch of nodes at a time (at most GBM_REPLY_BYTES of
	 * sums), in the pool's threads.
	 */
	if (nbuild > 0)
		ShardHistograms(run, build, nbuild, &out);
	SET_VARSIZE(out.data, out.len);
	run->broken = false;
	if (slot)
		pfree(slot);
	if (build)
		pfree(build);
	return (bytea *) out.data;
}

/* cr_gbm_shard(message bytea) returns bytea: GbmShardMessage */
Datum
cr_gbm_shard(PG_FUNCTION_ARGS)
{
	bytea	   *msg = PG_GETARG_BYTEA_PP(0);
	bytea	   *reply = GbmShardMessage(VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg));

	if (reply == NULL)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(reply);
}
