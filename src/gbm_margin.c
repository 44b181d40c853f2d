/*
 * gbm_margin.c
 *	  The tree trainer's row sample and margin updates (gbm_int.h).
 *
 * After a tree is grown, every training row's margin takes the value of the
 * leaf it falls in.  The rows of the tree's sample need no walk: the
 * partitions that grew the tree put each in its leaf (GbmLeafUpdate).  The
 * rows left out of the sample, and the holdout's, walk the tree over their
 * bins, eight side by side through a branch-free copy of it (WalkNode):
 * each takes exactly max_depth steps, a leaf being its own child.  Every
 * row adds its leaf's value once, as a walk of the stored tree would, so
 * the margins, and the model, are the same either way.
 */
#include "postgres.h"

#include "credit_risk.h"
#include "gbm_int.h"
#include "random.h"

/* Whether training row i is in the row sample of the tree seeded tseed. */
static inline bool
InSample(uint64 tseed, int64 i, double subsample)
{
	return CrUnit(CrMix64(tseed ^ (uint64) i)) < subsample;
}

/* A chunk's rows in the tree's sample, listed from the chunk's start. */
static void
SampleTask(void *arg, int chunk, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	int64		start = (int64) chunk * GBM_CHUNK_ROWS;
	int64		end = Min(start + GBM_CHUNK_ROWS, gbm->ntr);
	uint32	   *out = gbm->rows + start;
	double		subsample = gbm->params->subsample;

	for (int64 i = start; i < end; i++)
	{
		*out = (uint32) i;
		out += InSample(gbm->tseed, i, subsample);
	}
	gbm->sampled[chunk] = out - (gbm->rows + start);
}

/*
 * gbm->rows: the training rows of the tree seeded gbm->tseed, in row order
 * (every row without a sample); returns their count.  Each chunk lists its
 * sampled rows from its own start, then the lists are moved together.
 */
int64
GbmSampleRows(Gbm *gbm)
{
	int64		nrows = 0;

	if (gbm->params->subsample < 1.0)
	{
		int			nchunks = (int) ((gbm->ntr + GBM_CHUNK_ROWS - 1) / GBM_CHUNK_ROWS);

		PoolRun(gbm->pool, nchunks, SampleTask, gbm);
		for (int c = 0; c < nchunks; c++)
		{
			memmove(gbm->rows + nrows, gbm->rows + (int64) c * GBM_CHUNK_ROWS,
					sizeof(uint32) * gbm->sampled[c]);
			nrows += gbm->sampled[c];
		}
	}
	else
	{
		for (int64 i = 0; i < gbm->ntr; i++)
			gbm->rows[i] = (uint32) i;
		nrows = gbm->ntr;
	}
	return nrows;
}

#define GBM_WALK_ROWS	8		/* rows walked side by side */

typedef struct UpdateTask
{
	Gbm		   *gbm;
	const uint8 *bins;
	double	   *margin;
	int64		n;
	bool		skip_sampled;	/* rows in the tree's sample (gbm->tseed) are done */
} UpdateTask;

/* gbm->walk for the tree of nnodes nodes from gbm->tree_base, for GbmRunUpdate */
void
GbmBuildWalk(Gbm *gbm, int nnodes)
{
	const CrForest *forest = gbm->forest;
	int32		base = gbm->tree_base;

	for (int i = 0; i < nnodes; i++)
	{
		WalkNode   *w = &gbm->walk[i];
		int32		f = forest->feature[base + i];

		memset(w->left_bins, 0, sizeof(w->left_bins));
		if (f < 0)
		{
			w->feature = 0;
			w->child[0] = w->child[1] = i;
			continue;
		}
		w->feature = f;
		w->child[0] = forest->right[base + i];
		w->child[1] = forest->left[base + i];
		if (forest->cat_set != NULL && forest->cat_set[base + i] >= 0)
			memcpy(w->left_bins,
				   forest->cat_bits + (Size) forest->cat_set[base + i] * FOREST_CAT_WORDS,
				   sizeof(w->left_bins));
		else
			for (int b = 0; b <= gbm->node_bin[base + i] && b < CR_MISSING_BIN; b++)
				w->left_bins[b >> 6] |= UINT64CONST(1) << (b & 63);
		/* the missing bin's bit is the default direction, for both kinds */
		if (forest->default_left[base + i])
			w->left_bins[CR_MISSING_BIN >> 6] |= UINT64CONST(1) << (CR_MISSING_BIN & 63);
		else
			w->left_bins[CR_MISSING_BIN >> 6] &= ~(UINT64CONST(1) << (CR_MISSING_BIN & 63));
	}
}

static inline int32
WalkStep(const WalkNode *walk, int32 node, const uint8 *rb)
{
	const WalkNode *w = &walk[node];
	uint8		b = rb[w->feature];

	return w->child[(w->left_bins[b >> 6] >> (b & 63)) & 1];
}

static void
UpdateMarginTask(void *arg, int chunk, int worker)
{
	UpdateTask *ut = (UpdateTask *) arg;
	Gbm		   *gbm = ut->gbm;
	int64		start = (int64) chunk * GBM_CHUNK_ROWS;
	int64		end = Min(start + GBM_CHUNK_ROWS, ut->n);
	const WalkNode *walk = gbm->walk;
	const double *value = gbm->forest->value + gbm->tree_base;
	int			depth = gbm->params->max_depth;
	int			p = gbm->p;
	int64		i = start;

	while (i < end)
	{
		int64		rows[GBM_WALK_ROWS];
		int32		node[GBM_WALK_ROWS];
		int			n = 0;

		/* the next rows to walk */
		for (; i < end && n < GBM_WALK_ROWS; i++)
			if (!ut->skip_sampled || !InSample(gbm->tseed, i, gbm->params->subsample))
				rows[n++] = i;
		if (n == 0)
			break;
		/* a short last group walks its first row again in the empty places */
		for (int j = 0; j < GBM_WALK_ROWS; j++)
		{
			rows[j] = rows[j < n ? j : 0];
			node[j] = 0;
		}
		for (int d = 0; d < depth; d++)
			for (int j = 0; j < GBM_WALK_ROWS; j++)
				node[j] = WalkStep(walk, node[j], ut->bins + (Size) rows[j] * p);
		for (int j = 0; j < n; j++)
			ut->margin[rows[j]] += value[node[j]];
	}
}

/* Rows of the tree's sample: each leaf adds its value to its own rows. */
static void
LeafUpdateTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	GrowNode   *leaf = gbm->leaves[task];
	const uint32 *rows = gbm->leaf_rows[task];
	double		v = gbm->forest->value[gbm->tree_base + leaf->out];

	for (int64 i = leaf->begin; i < leaf->end; i++)
		gbm->mtr[rows[i]] += v;
}

/*
 * The training margins of the rows of the tree just grown (GrowTree's
 * leaves): the partitions put each row in its leaf, so none walks the tree.
 */
void
GbmLeafUpdate(Gbm *gbm)
{
	PoolRun(gbm->pool, gbm->nleaves, LeafUpdateTask, gbm);
}

/*
 * Add the tree's leaf values to n margins by walking each row's bins down
 * it; with skip_sampled (the training rows of a tree grown on a sample),
 * only the rows left out of the sample, whose leaves GrowTree did not
 * visit.
 */
void
GbmRunUpdate(Gbm *gbm, const uint8 *bins, double *margin, int64 n, bool skip_sampled)
{
	UpdateTask	ut = {gbm, bins, margin, n, skip_sampled};

	PoolRun(gbm->pool, (int) ((n + GBM_CHUNK_ROWS - 1) / GBM_CHUNK_ROWS),
			UpdateMarginTask, &ut);
}
