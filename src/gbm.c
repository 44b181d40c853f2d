/*
 * gbm.c
 *	  Histogram gradient boosting for the logistic loss, grown depth-wise.
 *
 * It trains on rows cut into bins once (gbm_bins.c).  A categorical
 * feature's bin is its code (category.h): codes have no order, so its
 * splits send a set of codes left (see CatSplit).  Each tree (GbmBoost):
 *
 *	- gradients and hessians of the logistic loss at the current margins;
 *	- level by level: the best split of every node of the level, from its
 *	  gradient/hessian histogram, trying missing values on either side;
 *	  the rows of split nodes partitioned (stably) into the children; the
 *	  histogram of the smaller child built from its rows and the larger
 *	  child's obtained by subtraction from the parent's;
 *	- leaves get -G / (H + lambda) times the learning rate, clamped to the
 *	  bounds that monotone constraints impose;
 *	- margins updated: the rows of the tree's sample by their leaf's value
 *	  (the partitions put each in its leaf), the others, and the holdout's,
 *	  by walking the tree over their bins, eight rows side by side without
 *	  branches (gbm_margin.c); holdout log loss drives early stopping.
 *
 * Work is split into tasks (a node and a feature; a chunk of rows) run by
 * the pool in threads.c.  Tasks touch only plain memory; each writes its
 * own output, and reductions are done by the backend in a fixed order, so
 * the model does not depend on the number of threads.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "binning.h"
#include "credit_risk.h"
#include "gbm_int.h"
#include "progress.h"
#include "hugemem.h"
#include "random.h"
#include "threads.h"

#define GBM_MIN_GAIN		1e-6

/*
 * A piece of a node's rows whose histogram one task builds.  A node is cut
 * into a number of chunks that depends only on its size, and chunk sums are
 * added in chunk order, so the histograms do not depend on the threads.
 */
typedef struct HistChunk
{
	GrowNode   *node;
	int64		begin;
	int64		end;
	HistBin    *hist;			/* the node's own, or a partial to add up */
} HistChunk;

#define GBM_HIST_CHUNK_ROWS		32768
#define GBM_HIST_MAX_CHUNKS		16

Size
GbmBytesPerRow(int nfeatures)
{
	/* bins (row- and column-major), gradients, margins, row lists, label */
	return (Size) 2 * nfeatures + sizeof(GradPair) + 2 * sizeof(double) +
		2 * sizeof(uint32) + sizeof(double);
}

/* ----------------------------------------------------------- gradients */

static void
GradientTask(void *arg, int chunk, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	int64		start = (int64) chunk * GBM_CHUNK_ROWS;
	int64		end = Min(start + GBM_CHUNK_ROWS, gbm->ntr);
	float		w1 = (float) (gbm->params->scale_pos_weight * gbm->params->class_weight[1]);
	float		w0 = (float) gbm->params->class_weight[0];

	/* single precision, as the gradient pairs are stored */
	for (int64 i = start; i < end; i++)
	{
		float		p = 1.0f / (1.0f + expf((float) -gbm->mtr[i]));
		float		y = (float) gbm->ytr[i];
		float		w = y > 0.5f ? w1 : w0;

		gbm->gp[i].g = (p - y) * w;
		gbm->gp[i].h = Max(p * (1.0f - p), 1e-16f) * w;
	}
}

/* ---------------------------------------------------------- histograms */

static void
HistTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	HistChunk  *c = &gbm->chunks[task];
	HistBin    *hist = c->hist;
	int			p = gbm->p;
	const uint8 *bins = gbm->bins;
	const uint32 *rows = gbm->rows;
	const GradPair *gp = gbm->gp;
	bool		all_feats = gbm->nfeats == p;

	for (int k = 0; k < gbm->nfeats; k++)
		memset(hist + (Size) gbm->feats[k] * GBM_NBINS, 0, sizeof(HistBin) * GBM_NBINS);

	for (int64 i = c->begin; i < c->end; i++)
	{
		uint32		r = rows[i];
		const uint8 *rb = bins + (Size) r * p;
		double		g = gp[r].g;
		double		h = gp[r].h;

		if (all_feats)
		{
			for (int f = 0; f < p; f++)
				HistAddTo(hist + (Size) f * GBM_NBINS + rb[f], g, h);
		}
		else
		{
			for (int k = 0; k < gbm->nfeats; k++)
			{
				int			f = gbm->feats[k];

				HistAddTo(hist + (Size) f * GBM_NBINS + rb[f], g, h);
			}
		}
	}
}

/* Add a node's chunk histograms, in chunk order, for one feature. */
static void
ReduceTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	int			ci = gbm->reduce_first[task / gbm->nfeats];
	int			f = gbm->feats[task % gbm->nfeats];
	GrowNode   *node = gbm->chunks[ci].node;
	HistBin    *out = node->hist + (Size) f * GBM_NBINS;

	for (int c = ci; c < gbm->nchunks && gbm->chunks[c].node == node; c++)
	{
		const HistBin *in = gbm->chunks[c].hist + (Size) f * GBM_NBINS;

		if (c == ci)
			memcpy(out, in, sizeof(HistBin) * GBM_NBINS);
		else
			HistMerge(out, in, GBM_NBINS, false);
	}
}

/* ------------------------------------------------------- split finding */

static inline double
LeafWeight(double G, double H, double lambda, double lower, double upper)
{
	double		w;

	/* no rows, or no curvature and no L2: nothing to move the margin by */
	if (!(H + lambda > 0.0))
		return Min(Max(0.0, lower), upper);
	w = -G / (H + lambda);
	if (w < lower)
		w = lower;
	if (w > upper)
		w = upper;
	return w;
}

/* Loss reduction of a leaf with weight w: -(2 G w + (H + lambda) w^2). */
static inline double
GainGivenWeight(double G, double H, double lambda, double w)
{
	return -(2.0 * G * w + (H + lambda) * w * w);
}

/*
 * Try a split whose left child has sums GL, HL before the missing values
 * (Gm, Hm) are placed: with them right, then left.  Updates best and
 * returns true when either beats it.
 */
static inline bool
SplitTry(SplitCand *best, const GrowNode *node, const CrGbmParams *params, int mono,
		 double parent_gain, double GL, double HL, double Gm, double Hm)
{
	double		lambda = params->lambda;
	double		mcw = params->min_child_weight;
	bool		better = false;

	for (int dir = 0; dir < 2; dir++)
	{
		/* dir 0: missing goes right; dir 1: missing goes left */
		double		gl = dir ? GL + Gm : GL;
		double		hl = dir ? HL + Hm : HL;
		double		gr = node->G - gl;
		double		hr = node->H - hl;
		double		wl,
					wr,
					gain;

		if (dir == 1 && Hm <= 0.0)
			break;
		if (hl < mcw || hr < mcw)
			continue;
		wl = LeafWeight(gl, hl, lambda, node->lower, node->upper);
		wr = LeafWeight(gr, hr, lambda, node->lower, node->upper);
		if ((mono > 0 && wl > wr) || (mono < 0 && wl < wr))
			continue;
		gain = GainGivenWeight(gl, hl, lambda, wl) +
			GainGivenWeight(gr, hr, lambda, wr) - parent_gain;
		if (gain > best->gain)
		{
			best->gain = gain;
			best->default_left = dir == 1;
			best->GL = gl;
			best->HL = hl;
			best->wl = wl;
			best->wr = wr;
			better = true;
		}
	}
	return better;
}

/*
 * A code's bin at a node holds rows when its hessian is more than this share
 * of the node's: a bin emptied by histogram subtraction keeps rounding
 * residue, which must not make it a candidate (or place it by noise).
 */
#define GBM_CAT_EMPTY_SHARE		1e-10

/* A code of a categorical feature with rows at a node, and its sort key. */
typedef struct CatStat
{
	double		key;
	int			code;
} CatStat;

static int
CatStatCmp(const void *a, const void *b)
{
	const CatStat *x = (const CatStat *) a;
	const CatStat *y = (const CatStat *) b;

	if (x->key < y->key)
		return -1;
	if (x->key > y->key)
		return 1;
	return x->code - y->code;
}

/*
 * The best split of a categorical feature with ncodes codes, from its
 * histogram at a node.  With at most params->max_cat_to_onehot codes that
 * hold rows, each is tried alone on the left against the rest; with more,
 * the codes are sorted by their leaf weight G / (H + lambda) and every
 * prefix of that order is tried as the left set: for a convex loss the best
 * binary partition of the codes is one of these (Fisher 1958, as LightGBM
 * and XGBoost use it).  Codes without rows at the node are in no set, so
 * they go right.  Ties in the key are broken by code, and the first best
 * candidate is kept, so the split does not depend on the threads.
 */
static void
CatSplit(const Gbm *gbm, const GrowNode *node, const HistBin *hist, int ncodes,
		 double parent_gain, SplitCand *best)
{
	const CrGbmParams *params = gbm->params;
	CatStat		stat[GBM_NBINS];
	int			n = 0;
	int			chosen = -1;
	double		Gm = hist[CR_MISSING_BIN].g;
	double		Hm = hist[CR_MISSING_BIN].h;
	double		empty = GBM_CAT_EMPTY_SHARE * node->H;

	for (int c = 0; c < ncodes; c++)
		if (hist[c].h > empty)
		{
			stat[n].key = hist[c].g / (hist[c].h + params->lambda);
			stat[n].code = c;
			n++;
		}

	if (n <= params->max_cat_to_onehot)
	{
		for (int k = 0; k < n; k++)
		{
			const HistBin *hb = &hist[stat[k].code];

			if (SplitTry(best, node, params, 0, parent_gain, hb->g, hb->h, Gm, Hm))
				chosen = k;
		}
		if (chosen < 0)
			return;
		memset(best->cat, 0, sizeof(best->cat));
		best->cat[stat[chosen].code >> 6] |= UINT64CONST(1) << (stat[chosen].code & 63);
	}
	else
	{
		double		GL = 0.0,
					HL = 0.0;

		qsort(stat, n, sizeof(CatStat), CatStatCmp);
		/* left = the first k + 1 codes; the whole order leaves nothing right */
		for (int k = 0; k < n - 1; k++)
		{
			GL += hist[stat[k].code].g;
			HL += hist[stat[k].code].h;
			if (SplitTry(best, node, params, 0, parent_gain, GL, HL, Gm, Hm))
				chosen = k;
		}
		if (chosen < 0)
			return;
		memset(best->cat, 0, sizeof(best->cat));
		for (int k = 0; k <= chosen; k++)
			best->cat[stat[k].code >> 6] |= UINT64CONST(1) << (stat[k].code & 63);
	}
	best->bin = 0;
	best->is_cat = true;
}

static void
SplitTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	int			ni = task / gbm->nfeats;
	GrowNode   *node = gbm->level[ni];
	int			f = gbm->feats[task % gbm->nfeats];
	const CrGbmParams *params = gbm->params;
	SplitCand  *best = &gbm->cands[task];
	const HistBin *hist;
	int			ncuts = gbm->edges[f].ncuts;
	int			mono = params->monotone ? params->monotone[f] : 0;
	double		Gm,
				Hm,
				wp,
				parent_gain;
	double		GL = 0.0,
				HL = 0.0;

	best->gain = -1.0;
	best->bin = -1;
	best->is_cat = false;

	/* a node that cannot split (too little hessian) has no histogram */
	if (node->hist == NULL)
		return;
	hist = node->hist + (Size) f * GBM_NBINS;
	/* a larger sibling holds its parent's histogram: minus the smaller one's */
	if (node->sibling != NULL)
		HistMerge(node->hist + (Size) f * GBM_NBINS,
				  node->sibling->hist + (Size) f * GBM_NBINS, GBM_NBINS, true);
	Gm = hist[CR_MISSING_BIN].g;
	Hm = hist[CR_MISSING_BIN].h;
	wp = LeafWeight(node->G, node->H, params->lambda, node->lower, node->upper);
	parent_gain = GainGivenWeight(node->G, node->H, params->lambda, wp);

	if (gbm->ncodes[f] > 0)
	{
		CatSplit(gbm, node, hist, gbm->ncodes[f], parent_gain, best);
		return;
	}

	/* left = value bins 0..b; the last value bin cannot be a split point */
	for (int b = 0; b < ncuts; b++)
	{
		GL += hist[b].g;
		HL += hist[b].h;
		if (SplitTry(best, node, params, mono, parent_gain, GL, HL, Gm, Hm))
			best->bin = b;
	}
}

/* ---------------------------------------------------------- partitions */

/* Whether a row with bin b at a split node goes left. */
static inline bool
NodeGoesLeft(const GrowNode *node, int b)
{
	return GbmGoesLeft(b, node->default_left, node->is_cat, node->cat, node->bin);
}

/*
 * Partition a split node's rows from the current row buffer into the other
 * one: left rows from the front, right rows from the back (so in reverse
 * order).  Without branches: each row is written to both ends and only one
 * of the two cursors moves.
 */
static void
PartitionTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	GrowNode   *node = gbm->level[task];
	const uint32 *src = gbm->rows;
	uint32	   *dst = gbm->scratch;
	const uint8 *bins;
	uint32	   *dl;
	uint32	   *dr;

	if (!node->split)
		return;
	bins = gbm->cols + (Size) node->feature * gbm->ntr;
	dl = dst + node->begin;
	dr = dst + node->end - 1;
	for (int64 i = node->begin; i < node->end; i++)
	{
		uint32		r = src[i];
		int			left = NodeGoesLeft(node, bins[r]);

		*dl = r;
		*dr = r;
		dl += left;
		dr -= 1 - left;
	}
	node->nleft = dl - (dst + node->begin);
}

/*
 * A big node is partitioned by several tasks in two steps that give the
 * same order as PartitionTask: each chunk first marks and counts its left
 * rows, then, once the backend has added up the counts, writes its rows to
 * their final places.
 */
typedef struct PartChunk
{
	GrowNode   *node;
	int64		begin;
	int64		end;
	int64		nleft;
	int64		left_at;		/* where this chunk's first left row goes */
	int64		right_at;		/* ... and its first right row (going down) */
} PartChunk;

#define GBM_PART_CHUNK_ROWS		16384

static void
PartFlagTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	PartChunk  *c = &gbm->pchunks[task];
	GrowNode   *node = c->node;
	const uint8 *bins;
	int64		nl = 0;

	if (node == NULL)
	{
		/* a small node: partitioned whole, by one task */
		PartitionTask(arg, (int) c->begin, worker);
		return;
	}
	bins = gbm->cols + (Size) node->feature * gbm->ntr;
	for (int64 i = c->begin; i < c->end; i++)
	{
		uint8		left = NodeGoesLeft(node, bins[gbm->rows[i]]);

		gbm->flags[i] = left;
		nl += left;
	}
	c->nleft = nl;
}

static void
PartScatterTask(void *arg, int task, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	PartChunk  *c = &gbm->pchunks[task];
	const uint32 *src = gbm->rows;
	uint32	   *dst = gbm->scratch;
	int64		l = c->left_at;
	int64		r = c->right_at;

	if (c->node == NULL)
		return;
	for (int64 i = c->begin; i < c->end; i++)
	{
		int			f = gbm->flags[i];

		dst[f ? l : r] = src[i];
		l += f;
		r -= 1 - f;
	}
}

/* Partition the split nodes of a level from rows into scratch. */
static void
PartitionLevel(Gbm *gbm, GrowNode **level, int nlevel)
{
	int			ntasks = 0;
	bool		chunked = PoolSize(gbm->pool) > 1;

	gbm->level = level;
	gbm->nlevel = nlevel;
	if (!chunked)
	{
		PoolRun(gbm->pool, nlevel, PartitionTask, gbm);
		return;
	}

	gbm->pchunks = palloc(sizeof(PartChunk) * (nlevel + gbm->ntr / GBM_PART_CHUNK_ROWS + 1));
	for (int n = 0; n < nlevel; n++)
	{
		GrowNode   *node = level[n];
		int64		rows = node->end - node->begin;
		int64		k = rows / GBM_PART_CHUNK_ROWS;

		if (!node->split)
			continue;
		if (k < 2)
		{
			PartChunk  *c = &gbm->pchunks[ntasks++];

			c->node = NULL;
			c->begin = n;		/* the level index, for PartitionTask */
			continue;
		}
		for (int64 j = 0; j < k; j++)
		{
			PartChunk  *c = &gbm->pchunks[ntasks++];

			c->node = node;
			c->begin = node->begin + rows * j / k;
			c->end = node->begin + rows * (j + 1) / k;
		}
	}
	PoolRun(gbm->pool, ntasks, PartFlagTask, gbm);

	/* offsets: left rows in order from the front, right rows from the back */
	for (int t = 0; t < ntasks;)
	{
		GrowNode   *node = gbm->pchunks[t].node;
		int64		left_at;
		int64		right_at;
		int64		nl = 0;

		if (node == NULL)
		{
			t++;
			continue;
		}
		left_at = node->begin;
		right_at = node->end - 1;
		for (; t < ntasks && gbm->pchunks[t].node == node; t++)
		{
			PartChunk  *c = &gbm->pchunks[t];

			c->left_at = left_at;
			c->right_at = right_at;
			left_at += c->nleft;
			right_at -= (c->end - c->begin) - c->nleft;
			nl += c->nleft;
		}
		node->nleft = nl;
	}
	PoolRun(gbm->pool, ntasks, PartScatterTask, gbm);
}

/*
 * The column-major copy of a chunk of training rows' bins, for partitions:
 * a node's rows are in row order (or its reverse), so one feature's bytes
 * of them lie close together, where a row-major read takes a cache line a
 * row.
 */
static void
TransposeTask(void *arg, int chunk, int worker)
{
	Gbm		   *gbm = (Gbm *) arg;
	int			p = gbm->p;
	int64		start = (int64) chunk * GBM_CHUNK_ROWS;
	int64		end = Min(start + GBM_CHUNK_ROWS, gbm->ntr);

	for (int64 i0 = start; i0 < end; i0 += 2048)
	{
		int64		i1 = Min(i0 + 2048, end);

		for (int f = 0; f < p; f++)
		{
			uint8	   *dst = gbm->cols + (Size) f * gbm->ntr;
			const uint8 *src = gbm->bins + f;

			for (int64 i = i0; i < i1; i++)
				dst[i] = src[(Size) i * p];
		}
	}
}

/* ------------------------------------------------------------- a tree */

/* A new leaf in the tree being written: its index within the tree. */
static int
TreeAddNode(Gbm *gbm)
{
	CrForest   *f = gbm->forest;
	int			i = gbm->tree_nodes++;
	int32		k = gbm->tree_base + i;

	Assert(i < gbm->tree_cap && k < f->capacity);
	f->feature[k] = -1;
	f->threshold[k] = 0.0;
	f->left[k] = -1;
	f->right[k] = -1;
	f->default_left[k] = false;
	f->value[k] = 0.0;
	f->cover[k] = 0.0;
	if (f->cat_set != NULL)
		f->cat_set[k] = -1;
	gbm->node_bin[k] = -1;
	gbm->node_gain[k] = 0.0;
	return i;
}

/* Give forest node k (absolute) the category set bits. */
static void
TreeAddCatSet(Gbm *gbm, int32 k, const uint64 *bits)
{
	CrForest   *f = gbm->forest;

	if (f->cat_set == NULL)
	{
		f->cat_set = MemoryContextAlloc(gbm->cxt, sizeof(int32) * f->capacity);
		for (int32 i = 0; i < f->capacity; i++)
			f->cat_set[i] = -1;
	}
	if (f->ncat_sets == gbm->cat_cap)
	{
		gbm->cat_cap = Max(gbm->cat_cap * 2, 64);
		f->cat_bits = f->cat_bits == NULL
			? MemoryContextAlloc(gbm->cxt, sizeof(uint64) * FOREST_CAT_WORDS * gbm->cat_cap)
			: repalloc(f->cat_bits, sizeof(uint64) * FOREST_CAT_WORDS * gbm->cat_cap);
	}
	memcpy(f->cat_bits + (Size) f->ncat_sets * FOREST_CAT_WORDS, bits,
		   sizeof(uint64) * FOREST_CAT_WORDS);
	f->cat_set[k] = f->ncat_sets++;
}

/* Room in the forest (and the trainer's per-node arrays) for one more tree. */
void
GbmTreeReserve(Gbm *gbm)
{
	int32		had = gbm->forest->capacity;

	ForestReserve(gbm->forest, gbm->tree_base + gbm->tree_cap);
	if (gbm->node_bin == NULL)
	{
		gbm->node_bin = palloc(sizeof(int32) * gbm->forest->capacity);
		gbm->node_gain = palloc(sizeof(double) * gbm->forest->capacity);
	}
	else if (gbm->forest->capacity > had)
	{
		gbm->node_bin = repalloc(gbm->node_bin, sizeof(int32) * gbm->forest->capacity);
		gbm->node_gain = repalloc(gbm->node_gain, sizeof(double) * gbm->forest->capacity);
	}
}

static HistBin *
NewHist(Gbm *gbm)
{
	char	   *mem;

	if (gbm->nfree > 0)
		return gbm->free_hists[--gbm->nfree];
	/* 16-byte aligned for the pair additions; freed with histcxt only */
	mem = MemoryContextAllocHuge(gbm->histcxt,
								 sizeof(HistBin) * GBM_NBINS * (Size) gbm->p + 16);
	return (HistBin *) TYPEALIGN(16, mem);
}

static void
ReleaseHist(Gbm *gbm, GrowNode *node)
{
	if (node->hist == NULL)
		return;
	if (gbm->nfree == gbm->free_cap)
	{
		gbm->free_cap = Max(gbm->free_cap * 2, 64);
		gbm->free_hists = gbm->free_hists == NULL
			? MemoryContextAlloc(gbm->histcxt, sizeof(HistBin *) * gbm->free_cap)
			: repalloc(gbm->free_hists, sizeof(HistBin *) * gbm->free_cap);
	}
	gbm->free_hists[gbm->nfree++] = node->hist;
	node->hist = NULL;
}

/* Build the histograms of nodes[0 .. n), each node in size-dependent chunks. */
static void
BuildHistograms(Gbm *gbm, GrowNode **nodes, int n)
{
	int			total = 0;
	int			nmulti = 0;
	int			c = 0;

	for (int i = 0; i < n; i++)
	{
		int64		rows = nodes[i]->end - nodes[i]->begin;
		int64		k = (rows + GBM_HIST_CHUNK_ROWS - 1) / GBM_HIST_CHUNK_ROWS;

		total += (int) Min(Max(k, 1), GBM_HIST_MAX_CHUNKS);
	}
	gbm->chunks = palloc(sizeof(HistChunk) * total);
	gbm->reduce_first = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		GrowNode   *node = nodes[i];
		int64		rows = node->end - node->begin;
		int			k = (int) Min(Max((rows + GBM_HIST_CHUNK_ROWS - 1) / GBM_HIST_CHUNK_ROWS, 1),
								  GBM_HIST_MAX_CHUNKS);

		if (k > 1)
			gbm->reduce_first[nmulti++] = c;
		for (int j = 0; j < k; j++)
		{
			HistChunk  *ch = &gbm->chunks[c++];

			ch->node = node;
			ch->begin = node->begin + rows * j / k;
			ch->end = node->begin + rows * (j + 1) / k;
			ch->hist = k == 1 ? node->hist : NewHist(gbm);
		}
	}
	gbm->nchunks = total;
	PoolRun(gbm->pool, total, HistTask, gbm);
	if (nmulti > 0)
	{
		PoolRun(gbm->pool, nmulti * gbm->nfeats, ReduceTask, gbm);
		for (int i = 0; i < total; i++)
			if (gbm->chunks[i].hist != gbm->chunks[i].node->hist)
			{
				GrowNode	tmp;

				tmp.hist = gbm->chunks[i].hist;
				ReleaseHist(gbm, &tmp);
			}
	}
}

/*
 * Grow one tree over rows[0 .. nrows), or, in a distributed fit
 * (gbm->dist), over the rows the shards hold: their histograms come from
 * the shards (GbmDistBuild), which partition their rows by the decisions
 * of each level (GbmDistLevel).  Memory: the caller's per-tree context.
 */
void
GbmGrowTree(Gbm *gbm, int64 nrows)
{
	const CrGbmParams *params = gbm->params;
	GrowNode   *root = palloc0(sizeof(GrowNode));
	GrowNode  **level;
	int			nlevel;

	gbm->tree_nodes = 0;
	root->begin = 0;
	root->end = nrows;
	root->lower = -INFINITY;
	root->upper = INFINITY;
	root->out = TreeAddNode(gbm);
	root->index = 0;

	level = palloc(sizeof(GrowNode *));
	level[0] = root;
	nlevel = 1;
	gbm->leaves = palloc(sizeof(GrowNode *) * gbm->tree_cap);
	gbm->leaf_rows = palloc(sizeof(uint32 *) * gbm->tree_cap);
	gbm->nleaves = 0;

	/* the root's sums are any one feature's histogram, added up */
	root->hist = NewHist(gbm);
	if (gbm->dist != NULL)
		GbmDistBuild(gbm, level, 1);
	else
		BuildHistograms(gbm, level, 1);
	{
		const HistBin *h0 = root->hist + (Size) gbm->feats[0] * GBM_NBINS;

		for (int b = 0; b < GBM_NBINS; b++)
		{
			root->G += h0[b].g;
			root->H += h0[b].h;
		}
	}
	if (root->H < 2 * params->min_child_weight)
		ReleaseHist(gbm, root);

	for (int depth = 0; nlevel > 0; depth++)
	{
		GrowNode  **next;
		int			nnext = 0;
		bool		last = depth >= params->max_depth;

		CHECK_FOR_INTERRUPTS();

		/* best split of every node of the level */
		if (!last)
		{
			gbm->level = level;
			gbm->nlevel = nlevel;
			gbm->cands = palloc(sizeof(SplitCand) * nlevel * gbm->nfeats);
			PoolRun(gbm->pool, nlevel * gbm->nfeats, SplitTask, gbm);
		}

		for (int n = 0; n < nlevel; n++)
		{
			GrowNode   *node = level[n];
			SplitCand  *best = NULL;

			node->split = false;
			if (!last && node->hist != NULL)
			{
				/* lowest feature wins ties: the same model at any thread count */
				for (int k = 0; k < gbm->nfeats; k++)
				{
					SplitCand  *c = &gbm->cands[n * gbm->nfeats + k];

					if (c->bin >= 0 && (best == NULL || c->gain > best->gain))
					{
						best = c;
						node->feature = gbm->feats[k];
					}
				}
			}
			if (best != NULL && best->gain > Max(params->gamma, GBM_MIN_GAIN))
			{
				node->split = true;
				node->bin = best->bin;
				node->default_left = best->default_left;
				node->is_cat = best->is_cat;
				if (best->is_cat)
					memcpy(node->cat, best->cat, sizeof(node->cat));
				node->gain = best->gain;
				node->GL = best->GL;
				node->HL = best->HL;
				node->wl = best->wl;
				node->wr = best->wr;
			}

			gbm->forest->cover[gbm->tree_base + node->out] = node->H;
			gbm->forest->value[gbm->tree_base + node->out] = params->learning_rate *
				LeafWeight(node->G, node->H, params->lambda, node->lower, node->upper);
			if (!node->split)
			{
				gbm->leaf_rows[gbm->nleaves] = gbm->rows;
				gbm->leaves[gbm->nleaves++] = node;
			}
		}

		/* partition the rows of split nodes (on the shards: with the next build) */
		if (gbm->dist != NULL)
			GbmDistLevel(gbm, level, nlevel);
		else
		{
			uint32	   *tmp;

			PartitionLevel(gbm, level, nlevel);
			tmp = gbm->rows;
			gbm->rows = gbm->scratch;
			gbm->scratch = tmp;
		}

		next = palloc(sizeof(GrowNode *) * 2 * nlevel);
		gbm->build = palloc(sizeof(GrowNode *) * nlevel);
		gbm->nbuild = 0;
		for (int n = 0; n < nlevel; n++)
		{
			GrowNode   *node = level[n];
			GrowNode   *l,
					   *r;
			int64		nl = 0;
			int			mono;
			bool		more;

			if (!node->split)
				continue;

			nl = node->nleft;

			l = palloc0(sizeof(GrowNode));
			r = palloc0(sizeof(GrowNode));
			l->begin = node->begin;
			l->end = node->begin + nl;
			r->begin = l->end;
			r->end = node->end;
			l->G = node->GL;
			l->H = node->HL;
			r->G = node->G - node->GL;
			r->H = node->H - node->HL;
			l->lower = r->lower = node->lower;
			l->upper = r->upper = node->upper;
			mono = params->monotone ? params->monotone[node->feature] : 0;
			if (mono != 0)
			{
				double		mid = (node->wl + node->wr) / 2.0;

				if (mono > 0)
				{
					l->upper = Min(l->upper, mid);
					r->lower = Max(r->lower, mid);
				}
				else
				{
					l->lower = Max(l->lower, mid);
					r->upper = Min(r->upper, mid);
				}
			}

			l->out = TreeAddNode(gbm);
			r->out = TreeAddNode(gbm);
			l->index = nnext;
			r->index = nnext + 1;
			{
				CrForest   *f = gbm->forest;
				int32		k = gbm->tree_base + node->out;

				f->feature[k] = node->feature;
				if (node->is_cat)
				{
					f->threshold[k] = 0.0;
					TreeAddCatSet(gbm, k, node->cat);
				}
				else
					f->threshold[k] = gbm->edges[node->feature].cuts[node->bin];
				f->left[k] = l->out;
				f->right[k] = r->out;
				f->default_left[k] = node->default_left;
				gbm->node_bin[k] = node->bin;
				gbm->node_gain[k] = node->gain;
			}

			/* children that may split later need histograms */
			more = depth + 1 < params->max_depth;
			if (more)
			{
				GrowNode   *small;
				GrowNode   *large;

				/* the shards' rows are not counted here: the lesser hessian */
				if (gbm->dist != NULL)
					small = l->H <= r->H ? l : r;
				else
					small = (l->end - l->begin) <= (r->end - r->begin) ? l : r;
				large = small == l ? r : l;

				small->hist = NewHist(gbm);
				large->hist = node->hist;	/* becomes parent - small in SplitTask */
				node->hist = NULL;
				large->sibling = small;
				gbm->build[gbm->nbuild++] = small;
			}
			else
				ReleaseHist(gbm, node);
			next[nnext++] = l;
			next[nnext++] = r;
		}

		/*
		 * The larger siblings' histograms become parent minus the smaller
		 * one in SplitTask, one feature per task.
		 */
		if (gbm->nbuild > 0 && gbm->dist != NULL)
			GbmDistBuild(gbm, gbm->build, gbm->nbuild);
		else if (gbm->nbuild > 0)
			BuildHistograms(gbm, gbm->build, gbm->nbuild);
		for (int n = 0; n < nlevel; n++)
			ReleaseHist(gbm, level[n]);

		level = next;
		nlevel = nnext;
	}

	/*
	 * Every row of the sample is in a leaf's range: its margin takes the
	 * leaf's value without a walk down the tree.  Only with a sample of
	 * fewer than all the rows do the others need the walk.  The shards
	 * add a leaf's value with the decisions of the tree's last level.
	 */
	if (gbm->dist != NULL)
		return;
	GbmLeafUpdate(gbm);
	gbm->train_updated = nrows == gbm->ntr;
}

/* ----------------------------------------------------------- training */

/* gbm->feats: the features of the tree seeded tseed (params.colsample_bytree). */
void
GbmTreeFeatures(Gbm *gbm, uint64 tseed)
{
	const CrGbmParams *params = gbm->params;
	int			p = gbm->p;

	gbm->nfeats = 0;
	if (params->colsample_bytree < 1.0)
	{
		int			want = Max(1, (int) rint(params->colsample_bytree * p));
		int		   *perm = palloc(sizeof(int) * p);

		for (int f = 0; f < p; f++)
			perm[f] = f;
		for (int f = 0; f < want; f++)
		{
			int			k = f + (int) (CrUnit(CrMix64(tseed + (uint64) f)) * (p - f));
			int			tmp = perm[f];

			perm[f] = perm[k];
			perm[k] = tmp;
		}
		/* keep feature order, for ties */
		for (int f = 0; f < p; f++)
			for (int k = 0; k < want; k++)
				if (perm[k] == f)
					gbm->feats[gbm->nfeats++] = f;
		pfree(perm);
	}
	else
	{
		for (int f = 0; f < p; f++)
			gbm->feats[gbm->nfeats++] = f;
	}
}

static double
HoldoutLogLoss(const Gbm *gbm)
{
	double		ll = 0.0;

	for (int64 i = 0; i < gbm->nho; i++)
	{
		double		p = CrClampProbability(CrSigmoid(gbm->mho[i]));

		ll -= gbm->yho[i] > 0.5 ? log(p) : log(1.0 - p);
	}
	return ll / gbm->nho;
}

/*
 * Keep trees 0 .. res->best_iteration of the forest grown (res->forest),
 * with their category sets, and add up the features' gain, cover and
 * splits over them.
 */
void
GbmForestKeep(Gbm *gbm, CrGbmResult *res)
{
	CrForest   *forest = &res->forest;
	int			p = gbm->p;
	int			total_nodes;

	/* keep trees 0 .. best_iteration */
	forest->ntrees = res->best_iteration + 1;
	total_nodes = forest->tree_start[forest->ntrees];

	/*
	 * Sets are numbered in node order, so the kept trees' sets are the
	 * first ones; without any, the forest has no category arrays.
	 */
	if (forest->cat_set != NULL)
	{
		int32		kept = 0;

		for (int i = 0; i < total_nodes; i++)
			if (forest->cat_set[i] >= 0)
				kept++;
		forest->ncat_sets = kept;
		if (kept == 0)
		{
			pfree(forest->cat_set);
			pfree(forest->cat_bits);
			forest->cat_set = NULL;
			forest->cat_bits = NULL;
		}
	}

	res->gain = palloc0(sizeof(double) * p);
	res->cover = palloc0(sizeof(double) * p);
	res->splits = palloc0(sizeof(int64) * p);
	for (int i = 0; i < total_nodes; i++)
		if (forest->feature[i] >= 0)
		{
			res->gain[forest->feature[i]] += gbm->node_gain[i];
			res->cover[forest->feature[i]] += forest->cover[i];
			res->splits[forest->feature[i]]++;
		}
}

CrGbmResult *
GbmBoost(const CrGbmBins *b, const CrGbmParams *params)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext treecxt;
	Gbm			gbmdata;
	Gbm		   *gbm = &gbmdata;
	CrGbmResult *res;
	int			p = b->p;
	int64		ntr = b->ntr,
				nho = b->nho;
	double		ybar = 0.0;
	double		base;
	int			total_nodes = 0;
	int			since_best = 0;
	CrForest   *forest;

	if (params->max_bin != b->max_bin || params->seed != b->seed)
		elog(ERROR, "rows binned with max_bin %d and seed " UINT64_FORMAT
			 " boosted with max_bin %d and seed " UINT64_FORMAT,
			 b->max_bin, b->seed, params->max_bin, params->seed);
	memset(gbm, 0, sizeof(Gbm));
	gbm->params = params;
	gbm->p = p;
	gbm->cxt = cxt;
	gbm->ntr = ntr;
	gbm->nho = nho;
	gbm->bins = b->bins;
	gbm->hbins = b->hbins;
	gbm->edges = b->edges;
	gbm->ncodes = b->ncodes;
	gbm->ytr = b->ytr;
	gbm->yho = b->yho;

	res = palloc0(sizeof(CrGbmResult));
	forest = &res->forest;
	ForestInit(forest, p, params->n_trees);
	gbm->forest = forest;
	gbm->pool = PoolCreate(params->threads);
	res->threads_used = PoolSize(gbm->pool);
	res->bin_seconds = b->seconds;

	{
		double		wsum = 0.0;

		/* the default rate weighted by the class weights (1 and 1 by default) */
		for (int64 i = 0; i < ntr; i++)
		{
			double		w = params->class_weight[b->ytr[i] > 0.5];

			ybar += w * b->ytr[i];
			wsum += w;
		}
		ybar /= wsum;
	}

	base = params->base_score > 0 ? params->base_score : ybar;
	res->forest.base_margin = log(base / (1.0 - base));
	gbm->mtr = HugeAlloc(sizeof(double) * Max(ntr, 1));
	gbm->mho = HugeAlloc(sizeof(double) * Max(nho, 1));
	for (int64 i = 0; i < ntr; i++)
		gbm->mtr[i] = res->forest.base_margin;
	for (int64 i = 0; i < nho; i++)
		gbm->mho[i] = res->forest.base_margin;
	gbm->gp = HugeAlloc(sizeof(GradPair) * Max(ntr, 1));
	gbm->rows = HugeAlloc(sizeof(uint32) * Max(ntr, 1));
	gbm->scratch = HugeAlloc(sizeof(uint32) * Max(ntr, 1));
	gbm->flags = HugeAlloc(Max(ntr, 1));
	gbm->sampled = palloc(sizeof(int64) * ((ntr + GBM_CHUNK_ROWS - 1) / GBM_CHUNK_ROWS + 1));
	gbm->feats = palloc(sizeof(int) * p);
	gbm->cols = HugeAlloc((Size) Max(ntr, 1) * p);
	PoolRun(gbm->pool, (int) ((ntr + GBM_CHUNK_ROWS - 1) / GBM_CHUNK_ROWS),
			TransposeTask, gbm);

	/* a tree has at most 2^(depth+1) - 1 nodes */
	gbm->tree_cap = (1 << (params->max_depth + 1)) - 1;
	gbm->walk = palloc(sizeof(WalkNode) * gbm->tree_cap);

	res->best_iteration = -1;
	res->best_score = NAN;
	treecxt = AllocSetContextCreate(cxt, "credit_risk gbm tree", ALLOCSET_DEFAULT_SIZES);
	gbm->histcxt = AllocSetContextCreate(cxt, "credit_risk gbm histograms", ALLOCSET_DEFAULT_SIZES);

	ProgressPhase("building tree", -1);
	for (int t = 0; t < params->n_trees; t++)
	{
		uint64		tseed = CrMix64(params->seed ^ ((uint64) (t + 1) << 32));
		int64		nrows = 0;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		ProgressStep(t + 1, params->n_trees);
		PoolRun(gbm->pool, (int) ((ntr + GBM_CHUNK_ROWS - 1) / GBM_CHUNK_ROWS),
				GradientTask, gbm);

		/* rows of this tree */
		gbm->tseed = tseed;
		nrows = GbmSampleRows(gbm);

		/* features of this tree */
		GbmTreeFeatures(gbm, tseed);

		gbm->tree_base = total_nodes;
		GbmTreeReserve(gbm);
		old = MemoryContextSwitchTo(treecxt);
		GbmGrowTree(gbm, nrows);
		MemoryContextSwitchTo(old);
		MemoryContextReset(treecxt);

		forest->tree_start[t] = total_nodes;
		total_nodes += gbm->tree_nodes;
		res->trees_built = t + 1;

		/* margins */
		GbmBuildWalk(gbm, gbm->tree_nodes);
		if (!gbm->train_updated)
			GbmRunUpdate(gbm, gbm->bins, gbm->mtr, ntr, true);
		if (nho > 0)
			GbmRunUpdate(gbm, gbm->hbins, gbm->mho, nho, false);

		if (nho > 0)
		{
			double		ll = HoldoutLogLoss(gbm);

			if (res->best_iteration < 0 || ll < res->best_score)
			{
				res->best_iteration = t;
				res->best_score = ll;
				since_best = 0;
			}
			else
				since_best++;
			if (params->early_stopping_rounds > 0 &&
				since_best >= params->early_stopping_rounds)
				break;
		}
		else
			res->best_iteration = t;
	}
	forest->tree_start[res->trees_built] = total_nodes;
	if (params->early_stopping_rounds <= 0)
	{
		/* no early stopping: every tree is kept */
		res->best_iteration = res->trees_built - 1;
		res->best_score = NAN;
	}

	GbmForestKeep(gbm, res);
	total_nodes = forest->tree_start[forest->ntrees];

	/* probabilities of the kept trees, from the bins */
	{
		res->ntrain = ntr;
		res->nholdout = nho;
		res->train_label = b->ytr;
		res->holdout_label = b->yho;
		res->train_prob = gbm->mtr;
		res->holdout_prob = gbm->mho;
		/* early stopping dropped trees: add up the kept ones again */
		if (res->forest.ntrees < res->trees_built)
		{
			for (int64 i = 0; i < ntr; i++)
				gbm->mtr[i] = res->forest.base_margin;
			for (int64 i = 0; i < nho; i++)
				gbm->mho[i] = res->forest.base_margin;
		}
		for (int t = 0; forest->ntrees < res->trees_built && t < forest->ntrees; t++)
		{
			CHECK_FOR_INTERRUPTS();
			gbm->tree_base = forest->tree_start[t];
			GbmBuildWalk(gbm, forest->tree_start[t + 1] - forest->tree_start[t]);
			GbmRunUpdate(gbm, gbm->bins, gbm->mtr, ntr, false);
			if (nho > 0)
				GbmRunUpdate(gbm, gbm->hbins, gbm->mho, nho, false);
		}
		for (int64 i = 0; i < ntr; i++)
			gbm->mtr[i] = CrSigmoid(gbm->mtr[i]);
		for (int64 i = 0; i < nho; i++)
			gbm->mho[i] = CrSigmoid(gbm->mho[i]);
	}

	MemoryContextDelete(treecxt);
	MemoryContextDelete(gbm->histcxt);
	return res;
}
