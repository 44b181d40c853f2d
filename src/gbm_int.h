/*
 * gbm_int.h
 *	  The tree trainer's working state, shared by gbm.c (growing a tree) and
 *	  gbm_margin.c (the row sample and the margin updates).  Not for other
 *	  files: gbm.h is the trainer's interface.
 */
#ifndef CR_GBM_INT_H
#define CR_GBM_INT_H

#include "postgres.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "binning.h"
#include "forest.h"
#include "gbm.h"
#include "threads.h"

#define GBM_NBINS			256		/* histogram slots per feature */
#define GBM_CHUNK_ROWS		16384	/* rows per task for row-wise work */

typedef struct GradPair
{
	float		g;
	float		h;
} GradPair;

typedef struct HistBin
{
	double		g;
	double		h;
} HistBin;

/*
 * A bin's two sums are added as one pair where SSE2 is there (every x86-64
 * CPU): the same two IEEE additions as the scalar code, in one instruction.
 * Histograms are 16-byte aligned (NewHist).
 */
#ifdef __SSE2__
#define HistAddTo(hb, g, h) \
	_mm_store_pd((double *) (hb), _mm_add_pd(_mm_load_pd((double *) (hb)), _mm_set_pd((h), (g))))
#else
#define HistAddTo(hb, g_, h_) \
	do { (hb)->g += (g_); (hb)->h += (h_); } while (0)
#endif

/*
 * out[b] += in[b], or out[b] -= in[b] with subtract, for n bins; a pair at
 * a time where SSE2 is there.  Inlined, so subtract is a constant.
 */
static inline void
HistMerge(HistBin *restrict out, const HistBin *restrict in, int n, bool subtract)
{
	for (int b = 0; b < n; b++)
	{
#ifdef __SSE2__
		__m128d		o = _mm_load_pd((double *) &out[b]);
		__m128d		i = _mm_load_pd((const double *) &in[b]);

		_mm_store_pd((double *) &out[b], subtract ? _mm_sub_pd(o, i) : _mm_add_pd(o, i));
#else
		out[b].g = subtract ? out[b].g - in[b].g : out[b].g + in[b].g;
		out[b].h = subtract ? out[b].h - in[b].h : out[b].h + in[b].h;
#endif
	}
}

/*
 * Whether a row with bin b goes left at a split: missing values by
 * default_left; a category split's codes in cat, a numeric split's bins up
 * to bin.
 */
static inline bool
GbmGoesLeft(int b, bool default_left, bool is_cat, const uint64 *cat, int bin)
{
	if (b == CR_MISSING_BIN)
		return default_left;
	if (is_cat)
		return (cat[b >> 6] >> (b & 63)) & 1;
	return b <= bin;
}

/* A node while its tree grows. */
typedef struct GrowNode
{
	int64		begin;			/* rows[begin .. end) are the node's rows */
	int64		end;
	double		G;
	double		H;
	double		lower;			/* bounds on the (unscaled) weight */
	double		upper;
	HistBin    *hist;			/* nfeatures * GBM_NBINS, or NULL */
	struct GrowNode *sibling;	/* for the larger child: the one built */
	int			out;			/* index in the tree's output arrays */
	int			index;			/* index in its level (a distributed fit's name for it) */
	int64		nleft;			/* rows sent left by the partition */
	/* the chosen split */
	bool		split;
	int			feature;
	int			bin;
	bool		default_left;
	bool		is_cat;			/* a category split: the codes in cat go left */
	uint64		cat[FOREST_CAT_WORDS];
	double		gain;
	double		GL;
	double		HL;
	double		wl;
	double		wr;
} GrowNode;

/* Best split found for one (node, feature). */
typedef struct SplitCand
{
	double		gain;
	int			bin;
	bool		default_left;
	bool		is_cat;
	uint64		cat[FOREST_CAT_WORDS];	/* a category split's left codes */
	double		GL;
	double		HL;
	double		wl;
	double		wr;
} SplitCand;

/*
 * A tree in the form the margin updates walk: per node, which bins go left
 * (a numeric split's bins up to its cut, a categorical split's set, the
 * missing bin where missing goes left) and its two children; a leaf is its
 * own child both ways.  Every row then takes exactly max_depth steps with
 * no branch, and the walks of several rows interleave.
 */
typedef struct WalkNode
{
	uint64		left_bins[FOREST_CAT_WORDS];
	int32		child[2];		/* [0] right, [1] left */
	int32		feature;		/* 0 at a leaf (any feature: both go home) */
	int32		pad;
} WalkNode;

typedef struct Gbm
{
	const CrGbmParams *params;
	struct GbmDist *dist;		/* a distributed fit's shards (gbm_dist.c), or NULL */
	CrPool	   *pool;
	int			p;
	int64		ntr;
	int64		nho;
	/* the binned rows (CrGbmBins), read only */
	const uint8 *bins;			/* ntr rows of p bins, row-major */
	const uint8 *hbins;			/* nho rows of p bins */
	uint8	   *cols;			/* the training bins column-major: p columns
								 * of ntr, for the partitions */
	const CrBinEdges *edges;	/* p */
	const int  *ncodes;			/* p: codes of a categorical feature, or 0 */
	const double *ytr;
	const double *yho;
	double	   *mtr;			/* margins */
	double	   *mho;
	GradPair   *gp;				/* ntr */
	uint32	   *rows;			/* node membership, ntr */
	uint32	   *scratch;		/* ntr */
	int		   *feats;			/* features of the current tree */
	int			nfeats;

	/* leaves of the tree just grown: their rows get the leaf value */
	GrowNode  **leaves;
	int			nleaves;
	uint32	  **leaf_rows;		/* the row buffer each leaf's range is in */
	bool		train_updated;	/* the leaves updated every training margin */
	WalkNode   *walk;			/* tree_cap: the tree the margin updates walk */
	uint64		tseed;			/* the seed of the tree being grown */
	int64	   *sampled;		/* per chunk of rows: how many are in the sample */

	/* current level, for tasks */
	GrowNode  **level;
	int			nlevel;
	SplitCand  *cands;			/* nlevel * nfeats */
	GrowNode  **build;			/* nodes whose histogram is built */
	int			nbuild;
	struct PartChunk *pchunks;	/* partition work of the current level */
	uint8	   *flags;			/* ntr: row goes left, for chunked partitions */
	struct HistChunk *chunks;	/* the row chunks of the nodes being built */
	int			nchunks;
	int		   *reduce_first;	/* first chunk of each node built in pieces */

	/* histogram buffers, reused from tree to tree (their pages stay warm) */
	MemoryContext histcxt;
	HistBin   **free_hists;
	int			nfree;
	int			free_cap;

	/*
	 * The forest as it grows.  The tree being written is the forest's nodes
	 * from tree_base on, node indexes relative to it; each node's bin and
	 * gain are kept alongside, for the trainer only.
	 */
	CrForest   *forest;
	int32		tree_base;
	int			tree_nodes;
	int			tree_cap;		/* the most nodes a tree can have */
	int32	   *node_bin;		/* forest->capacity */
	double	   *node_gain;

	/*
	 * The forest's category sets are allocated at the first category split
	 * (in cxt, the caller's context), so a forest without one keeps them
	 * NULL and its model bytes are those of a model without categories.
	 */
	MemoryContext cxt;
	int32		cat_cap;		/* sets cat_bits has room for */
} Gbm;

/* gbm.c */
extern void GbmGrowTree(Gbm *gbm, int64 nrows);
extern void GbmTreeFeatures(Gbm *gbm, uint64 tseed);
extern void GbmTreeReserve(Gbm *gbm);
extern void GbmForestKeep(Gbm *gbm, CrGbmResult *res);

/* gbm_dist.c: a tree level of a distributed fit */
extern void GbmDistLevel(Gbm *gbm, GrowNode **level, int nlevel);
extern void GbmDistBuild(Gbm *gbm, GrowNode **nodes, int n);

/* gbm_margin.c */
extern int64 GbmSampleRows(Gbm *gbm);
extern void GbmLeafUpdate(Gbm *gbm);
extern void GbmBuildWalk(Gbm *gbm, int nnodes);
extern void GbmRunUpdate(Gbm *gbm, const uint8 *bins, double *margin, int64 n, bool skip_sampled);

#endif							/* CR_GBM_INT_H */
