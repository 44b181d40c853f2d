/*
 * forest.h
 *	  The trees of a gradient-boosted model and how they score: the node
 *	  arrays the trainer writes and the model bytes hold, and the dense copy
 *	  the scorers walk (one row at a time, or a block of rows at once).
 */
#ifndef CR_FOREST_H
#define CR_FOREST_H

#include "postgres.h"

#include <math.h>

/* the deepest tree the dense copy holds; deeper forests walk the node arrays */
#define FOREST_DENSE_MAX_DEPTH	10

/*
 * Block scoring: rows are scored FOREST_BLOCK at a time, coded in groups of
 * FOREST_GROUP rows (see ForestScoreBlock).
 */
#define FOREST_BLOCK			1024
#define FOREST_GROUP			16

/*
 * The dense copy: every tree as a complete binary tree of depth `depth` (a
 * leaf above that depth is padded with nodes that send everything left)
 * over features coded as small integers, so a walk is a fixed number of
 * levels of one load and one compare each.  Feature f's split thresholds,
 * sorted and unique, are cuts[cut_start[f] .. cut_start[f + 1]); a value's
 * code is 1 + the number of them at or below it, and 0 when it is missing.
 * A row's codes fill 2F slots: slots 0..F-1 hold the codes and slots F..2F-1
 * the codes minus one, wrapped, which sends a missing value right (see
 * FOREST_WORD).  Built when depth <= FOREST_DENSE_MAX_DEPTH and the codes
 * fit in 16 bits; else depth is 0 and scoring walks the node arrays.
 */
typedef struct CrDenseForest
{
	int			depth;
	uint32	   *node;			/* ntrees * (2^depth - 1) node words */
	double	   *leaf;			/* ntrees * 2^depth */
	int32	   *cut_start;		/* nfeatures + 1 */
	double	   *cuts;
} CrDenseForest;

/*
 * Explanation tables (ForestShapPrepare): for each leaf of a tree that has
 * them, the distinct features on its path in order of first split
 * (path_feature, with each one's share of cover along the path in
 * path_zero) and a table of 2^npath values over the subsets of them, so that
 * a row's contributions from the leaf are a few lookups (see forest.c).
 */
typedef struct CrShapTables
{
	bool	   *tabled;			/* per tree: explained from tables */
	uint8	   *pos;			/* per node: its feature's place on the path */
	int32	   *leaf;			/* per node: the leaf's entry, or -1 */
	uint8	   *npath;			/* per leaf entry */
	int32	   *path_start;		/* per leaf entry, into path_feature/zero */
	int32	   *path_feature;
	double	   *path_zero;
	int64	   *table_start;	/* per leaf entry, into table */
	double	   *table;
	int32		max_nodes;		/* nodes of the largest tabled tree */
	int64		entries;		/* table size, in doubles */
} CrShapTables;

/*
 * The trees as flat node arrays, node indexes relative to their tree; a
 * child always comes after its parent.  The trainer grows them, the model
 * bytes hold them, the decoder validates them before ForestPrepare.
 */
typedef struct CrForest
{
	int			nfeatures;		/* features the nodes split on */
	int			ntrees;
	double		base_margin;
	int32	   *tree_start;		/* ntrees + 1 offsets into the node arrays */
	int32	   *feature;		/* -1 for a leaf */
	double	   *threshold;		/* x < threshold goes left */
	int32	   *left;
	int32	   *right;
	bool	   *default_left;	/* where a missing value goes */
	double	   *value;			/* leaf value (internal nodes: their weight) */
	double	   *cover;			/* sum of hessians of the node's rows */

	/*
	 * Category splits: cat_set[i] is -1 for a leaf or a split on a number;
	 * for a split on a categorical feature (whose values are codes, see
	 * category.h) it is k, and the row goes left when its code c has bit c
	 * set in cat_bits[4k .. 4k + 3] (a code beyond 255 never does); a
	 * missing value goes by default_left.  threshold is 0 there.  Both NULL
	 * when the forest has no category split.
	 */
	int32	   *cat_set;
	uint64	   *cat_bits;
	int32		ncat_sets;
	int32		capacity;		/* nodes allocated, while growing */
	int			max_depth;		/* of the deepest tree (ForestPrepare) */
	double		expected_margin;	/* over the training cover (ditto) */
	CrDenseForest dense;
	CrShapTables *shap;			/* NULL until ForestShapPrepare */
} CrForest;

/*
 * A dense node word: the code slot it reads and the cut it compares with; a
 * row goes right when code[slot] > cut.  "x < threshold number j" is
 * "code <= j"; with the missing value going right, the node reads slot F + f
 * (code - 1, the missing code 0 wrapping to 0xFFFF) against j - 1.
 */
#define FOREST_WORD(slot, cut)	(((uint32) (slot) << 16) | ((uint32) (cut) & 0xFFFF))
#define FOREST_WORD_SLOT(w)		((w) >> 16)
#define FOREST_WORD_CUT(w)		((w) & 0xFFFF)
/* a padding node: no code exceeds 0xFFFF, so every row goes left */
#define FOREST_WORD_LEFT		FOREST_WORD(0, 0xFFFF)

/* one level of a dense walk: the child of node idx that the row's codes pick */
#define FOREST_STEP(idx, w, code) \
	(2 * (idx) + 1 + ((code)[FOREST_WORD_SLOT(w)] > FOREST_WORD_CUT(w)))

/*
 * The code of value v of feature f (see CrDenseForest): 1 + the number of
 * f's thresholds at or below v, 0 for NaN.  Branch-free binary search.
 */
static inline uint16
ForestCode(const CrDenseForest *d, int f, double v)
{
	const double *c = d->cuts + d->cut_start[f];
	const double *b = c;
	int32		n = d->cut_start[f + 1] - d->cut_start[f];

	if (isnan(v))
		return 0;
	if (n == 0)
		return 1;
	while (n > 1)
	{
		int32		half = n / 2;

		b = (b[half] <= v) ? b + half : b;
		n -= half;
	}
	return (uint16) ((b - c) + (*b <= v) + 1);
}

/* Walk one dense tree for a row's codes: the leaf's index among 2^D. */
static inline int
ForestDenseWalk(const uint32 *node, int D, const uint16 *code)
{
	uint32		idx = 0;

	for (int d = 0; d < D; d++)
		idx = FOREST_STEP(idx, node[idx], code);
	return (int) idx - ((1 << D) - 1);
}

#define FOREST_CAT_WORDS		4	/* uint64 words of one category set: codes 0..255 */

/* Whether a category split's set holds code value v (a whole number or not). */
static inline bool
ForestCatLeft(const uint64 *bits, double v)
{
	int			c;

	if (!(v >= 0.0 && v < 256.0))
		return false;
	c = (int) v;
	return (bits[c >> 6] >> (c & 63)) & 1;
}

/* growing (the trainer) */
extern void ForestInit(CrForest *f, int nfeatures, int ntrees_max);
extern void ForestReserve(CrForest *f, int32 nodes);

/* the dense copy and what explanations need, once the node arrays are valid */
extern void ForestPrepare(CrForest *f);

/* explanations: path-dependent TreeSHAP, in log-odds */
#define FOREST_SHAP_MAX_DEPTH	64
/* a tree whose leaves have at most this many distinct features on their path is tabled */
#define FOREST_SHAP_TABLE_MAX_PATH	12
extern void ForestShapPrepare(CrForest *f, int64 budget);
extern void ForestShap(const CrForest *f, const double *x, double *phi);

/* scoring: margins (log-odds), base_margin included */
extern double ForestMargin(const CrForest *f, const double *x);
extern Size ForestBlockCodesSize(const CrForest *f);
extern void ForestScoreBlock(const CrForest *f, const double *cols, int n,
							 uint16 *codes, double *margin);

#endif							/* CR_FOREST_H */
