/*
 * fuzz_gbm_shard.c
 *	  libFuzzer harness for the bytes a part of a distributed tree fit is
 *	  handed: cr_gbm_shard_load's spec and cr_gbm_shard's messages
 *	  (src/gbm_shard.c, included whole so that its run can be set up
 *	  directly).
 *
 * The first byte picks what the rest is:
 *
 *	0: a load spec.  ShardRunNew must reject it with an ERROR or accept
 *	   it; an accepted one must be in range (features, holdout, weights,
 *	   increasing finite cut points) and encode back to its bytes;
 *	1: a sequence of messages, each a 2-byte length and its bytes, sent
 *	   in turn to a run of 300 rows over 3 features (some missing, some in
 *	   the holdout).  The run's name is written into each message's bytes
 *	   8 to 15 when the message is long enough, so that the fuzzer need not
 *	   guess it.  Each message must be rejected with an ERROR or answered;
 *	   after each, the level's row lists must be in order, within the rows
 *	   and hold no row twice, and an
 *	   answer must read back as whole histograms (GbmHistRead), no more
 *	   than the level has nodes.
 *
 * An ERROR is the expected answer to bad bytes; anything else failing is a
 * finding.
 */
#include "gbm_shard.c"

#include "pgstub.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT	(1 << 20)
#define FUZZ_ROWS		300
#define FUZZ_P			3

MemoryContext TopMemoryContext = NULL;
int			cr_histogram_message_kb = 64;	/* small: several batches a message */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FuzzInit();
	cr_train_memory_kb = 1024 * 1024;	/* room for the run's rows */
	return 0;
}

/* The stand-ins gbm_shard.c needs beyond pgstub.c's. */
double
PartialRowArgs(FunctionCallInfo fcinfo, int p, char **names, double *x, double *unit)
{
	FuzzFail("the harness does not run the load aggregate");
	return 0.0;
}

/* the pool, without threads: every task in turn */
CrPool *
PoolCreate(int nthreads)
{
	return NULL;
}

void
PoolRun(CrPool *pool, int ntasks, CrTaskFn fn, void *arg)
{
	for (int t = 0; t < ntasks; t++)
		fn(arg, t, 0);
}

/* the harness's contexts all go with FuzzMemReset: where they hang does not matter */
void
MemoryContextSetParent(MemoryContext context, MemoryContext new_parent)
{
}

void
MemoryContextRegisterResetCallback(MemoryContext context, MemoryContextCallback *cb)
{
}

void *
MemoryContextAllocHuge(MemoryContext context, Size size)
{
	return MemoryContextAlloc(context, size);
}

static bytea *
Bytes(const uint8_t *data, size_t size)
{
	bytea	   *b = palloc(VARHDRSZ + size);

	SET_VARSIZE(b, VARHDRSZ + size);
	memcpy(VARDATA(b), data, size);
	return b;
}

static void
CheckSpec(const bytea *b)
{
	ShardRun   *run = ShardRunNew(b);
	GbmLoadSpec spec;
	bytea	   *again;

	if (run->p < 1 || run->p > 1000)
		FuzzFail("accepted a spec over %d features", run->p);
	if (!(run->holdout >= 0.0 && run->holdout < 1.0) || !(run->weight[0] > 0.0) ||
		!(run->weight[1] > 0.0) || !isfinite(run->base_margin))
		FuzzFail("accepted a holdout of %g, weights %g and %g, margin %g", run->holdout,
				 run->weight[0], run->weight[1], run->base_margin);
	for (int j = 0; j < run->p; j++)
		for (int c = 0; c < run->edges[j].ncuts; c++)
			if (!isfinite(run->edges[j].cuts[c]) ||
				(c > 0 && !(run->edges[j].cuts[c] > run->edges[j].cuts[c - 1])))
				FuzzFail("accepted cut points that are not finite and increasing");

	/* the coordinator writes what the part reads (weights go through float) */
	memset(&spec, 0, sizeof(spec));
	spec.p = run->p;
	spec.holdout = run->holdout;
	memcpy(&spec.weight[0], VARDATA_ANY(b) + 20, sizeof(double));
	memcpy(&spec.weight[1], VARDATA_ANY(b) + 28, sizeof(double));
	spec.base_margin = run->base_margin;
	spec.edges = run->edges;
	again = GbmLoadSpecEncode(&spec);
	if (VARSIZE(again) != VARSIZE_ANY(b) ||
		memcmp(VARDATA(again), VARDATA_ANY(b), VARSIZE(again) - VARHDRSZ) != 0)
		FuzzFail("the spec does not encode back to its bytes");
	GbmShardFree();
}

/* A loaded run of FUZZ_ROWS rows over FUZZ_P features. */
static ShardRun *
FuzzRun(void)
{
	static const double cuts[FUZZ_P][3] = {{-1.0, 0.0, 1.0}, {0.5, 0.0, 0.0}, {0.0, 0.0, 0.0}};
	static const int ncuts[FUZZ_P] = {3, 1, 0};
	CrBinEdges	edges[FUZZ_P];
	GbmLoadSpec spec;
	ShardRun   *run;

	for (int j = 0; j < FUZZ_P; j++)
	{
		edges[j].ncuts = ncuts[j];
		edges[j].cuts = (double *) cuts[j];
	}
	spec.p = FUZZ_P;
	spec.holdout = 0.25;
	spec.weight[0] = 1.0;
	spec.weight[1] = 2.0;
	spec.base_margin = -0.5;
	spec.edges = edges;
	run = ShardRunNew(GbmLoadSpecEncode(&spec));
	while (run->n < FUZZ_ROWS)
	{
		int64		i = run->n;

		if (run->n == run->cap)
			ShardGrow(run);
		for (int j = 0; j < FUZZ_P; j++)
			run->bins[i * FUZZ_P + j] = (i + j) % 7 == 0 ? CR_MISSING_BIN
				: BinValue(&run->edges[j], (double) ((i * (j + 3)) % 11) / 4.0 - 1.25);
		run->flags[i] = (i % 4 == 0 ? ROW_HOLDOUT : 0) | (i % 3 == 0 ? ROW_DEFAULT : 0);
		run->margin[i] = run->base_margin;
		run->n++;
	}
	run->loaded = true;
	return run;
}

static void
CheckMessages(const uint8_t *data, size_t size)
{
	ShardRun   *run = FuzzRun();

	while (size >= 2)
	{
		size_t		len = data[0] | (data[1] << 8);
		uint8	   *msg;
		bytea	   *reply;

		data += 2;
		size -= 2;
		if (len > size)
			len = size;
		msg = palloc(Max(len, 1));
		memcpy(msg, data, len);
		if (len >= 16)
			memcpy(msg + 8, &run->id, sizeof(run->id));
		data += len;
		size -= len;

		/* the nodes asked for, when the message gets that far: from the reply's length */
		reply = GbmShardMessage((const char *) msg, len);
		if (reply == NULL)
		{
			if (shard_run != NULL)
				FuzzFail("a message closed the run and left it");
			return;
		}
		if (shard_run != run)
			FuzzFail("a message replaced the run");
		/* the level's row lists: in order, within the rows, no row twice */
		if (run->nnodes < 0 || run->nnodes > GBM_SHARD_MAX_NODES)
			FuzzFail("a level of %d nodes", run->nnodes);
		if (run->nnodes > 0)
		{
			bool		seen[FUZZ_ROWS] = {0};

			if (run->nbegin[0] != 0 || run->nbegin[run->nnodes] > run->n)
				FuzzFail("the row lists span %ld to %ld of %ld rows", (long) run->nbegin[0],
						 (long) run->nbegin[run->nnodes], (long) run->n);
			for (int k = 0; k < run->nnodes; k++)
				if (run->nbegin[k + 1] < run->nbegin[k])
					FuzzFail("node %d's rows end before they start", k);
			for (int64 i = 0; i < run->nbegin[run->nnodes]; i++)
			{
				if (run->rows[i] >= run->n || seen[run->rows[i]])
					FuzzFail("row %u is out of range or in two nodes", run->rows[i]);
				seen[run->rows[i]] = true;
			}
		}
		{
			GbmReader	r = {VARDATA(reply) + 24, VARSIZE(reply) - VARHDRSZ - 24, "reply"};
			int			blocks = 0;
			HistBin		out[GBM_NBINS];

			/* whole histograms, each of a feature of the tree, no more than the level has nodes */
			while (r.left > 0)
			{
				GbmHistRead(&r, run->edges[run->feats[blocks % Max(run->nfeats, 1)]].ncuts, out);
				blocks++;
			}
			if (blocks % Max(run->nfeats, 1) != 0 || blocks / Max(run->nfeats, 1) > run->nnodes)
				FuzzFail("a reply holds %d histograms for %d features and %d nodes", blocks,
						 run->nfeats, run->nnodes);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jb;
	int			mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0] % 2;
	data++;
	size--;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		if (mode == 0)
			CheckSpec(Bytes(data, size));
		else
			CheckMessages(data, size);
	}
	fuzz_catch = NULL;
	/* an ERROR may have left the run behind: gone with the harness's memory */
	shard_run = NULL;
	FuzzMemReset();
	return 0;
}
