/*
 * model.h
 *	  The model struct and its self-describing byte format.
 *
 * Layout of the bytes (all integers and doubles little-endian):
 *
 *	header (20 bytes): magic "CRMD", format version (u16), algorithm (u16),
 *		reserved (u32, zero), total length (u32), CRC-32C (u32)
 *	sections, each: tag (u16), reserved (u16), length (u32), payload
 *
 * The checksum covers the header up to the checksum field and every byte
 * after the header.  Required sections: FEATURES, IMPUTE, SCORING and the
 * algorithm's own (LOGIT).  The decoder validates every count, length and
 * value before use; any inconsistency is an ERROR.
 */
#ifndef CR_MODEL_H
#define CR_MODEL_H

#include "postgres.h"

#include <math.h>

#define CR_MODEL_MAGIC			0x444D5243	/* "CRMD" read as little-endian */
#define CR_FORMAT_VERSION		1
#define CR_HEADER_SIZE			20

#define CR_MAX_FEATURES			4096
#define CR_MAX_NAME_LEN			(NAMEDATALEN - 1)
#define CR_MAX_BANDS			16

typedef enum CrAlgorithm
{
	CR_ALGO_LOGISTIC = 1,
	CR_ALGO_GBM = 2
} CrAlgorithm;

typedef enum CrSectionTag
{
	CR_SECT_FEATURES = 1,
	CR_SECT_IMPUTE = 2,
	CR_SECT_SCORING = 3,
	CR_SECT_LOGIT = 4,
	CR_SECT_GBM = 5,
	CR_SECT_BASELINE = 6
} CrSectionTag;

#define CR_SECT_MAX			CR_SECT_BASELINE
#define CR_MAX_DRIFT_CUTS	63
#define CR_MAX_TREES		100000
#define CR_DENSE_MAX_DEPTH	10

/* How a probability becomes a risk category and scorecard points. */
typedef struct CrScoring
{
	double		threshold;		/* classification cut-off for metrics */
	int			nbands;			/* number of risk categories */
	double		cutoffs[CR_MAX_BANDS - 1];	/* PD < cutoffs[i] -> labels[i] */
	char	   *labels[CR_MAX_BANDS];
	double		points_base;	/* points at odds_base (good:bad) */
	double		odds_base;
	double		pdo;			/* points to double the odds */
} CrScoring;

/*
 * The distribution of one feature (or of the score) in the training data:
 * ncuts quantile cut points, the share of non-missing rows in each of the
 * ncuts + 1 bins (a value x is in bin b when cuts[b-1] <= x < cuts[b]), and
 * the share of rows missing.  Drift is measured against it.
 */
typedef struct CrBaseline
{
	int			ncuts;
	double	   *cuts;
	double	   *shares;			/* ncuts + 1, over all rows */
	double		missing;		/* share of rows missing */
} CrBaseline;

typedef struct CrModel
{
	CrAlgorithm algorithm;
	int			nfeatures;
	char	  **features;		/* feature names */
	double	   *impute;			/* value used for a missing feature */
	CrScoring	scoring;

	/* logistic regression, original feature scale; [0] is the intercept */
	double	   *coef;
	double	   *std_error;

	/* gradient-boosted trees: flat node arrays, indexes relative to a tree */
	int			ntrees;
	double		base_margin;
	int32	   *tree_start;		/* ntrees + 1 offsets */
	int32	   *node_feature;	/* -1 for a leaf */
	double	   *node_threshold; /* x < threshold goes left */
	int32	   *node_left;
	int32	   *node_right;
	bool	   *node_default_left;	/* where a missing value goes */
	double	   *node_value;
	double	   *node_cover;

	/*
	 * The same trees for scoring, as complete binary trees of depth
	 * dense_depth (a leaf above that depth is padded with nodes that send
	 * everything left) over features coded as small integers, so a walk is
	 * a fixed number of levels of one load and one compare each.  Feature
	 * f's split thresholds, sorted and unique, are dense_cuts[dense_cut_start[f]
	 * .. dense_cut_start[f + 1]); a value's code is 1 + the number of them at
	 * or below it, and 0 when it is missing.  Since "x < threshold number j"
	 * is "code <= j", a node is (slot << 16) | t and a row goes right when
	 * code[slot] > t, where slots 0..F-1 hold the codes and slots F..2F-1
	 * the codes minus one, wrapped, which sends a missing value right.
	 * Built when dense_depth <= CR_DENSE_MAX_DEPTH and the codes fit in 16
	 * bits; else dense_depth is 0 and scoring walks the node arrays.
	 */
	int			dense_depth;
	uint32	   *dense_node;		/* ntrees * (2^depth - 1) */
	double	   *dense_leaf;		/* ntrees * 2^depth */
	int32	   *dense_cut_start;	/* nfeatures + 1 */
	double	   *dense_cuts;
	uint16	   *dense_code;		/* 2 * nfeatures: one row's codes, scratch */

	/* drift baselines: nfeatures features, then the score; NULL in old models */
	CrBaseline *baseline;
	double		drift_moderate; /* PSI from which drift is moderate */
	double		drift_major;	/* PSI above which it is major */

	int			format_version;
	uint32		checksum;
	Size		nbytes;
} CrModel;

/*
 * The code of value v of feature f (see dense_cuts): 1 + the number of
 * f's thresholds at or below v, 0 for NaN.  Branch-free binary search.
 */
static inline uint16
ModelDenseCode(const CrModel *m, int f, double v)
{
	const double *c = m->dense_cuts + m->dense_cut_start[f];
	const double *b = c;
	int32		n = m->dense_cut_start[f + 1] - m->dense_cut_start[f];

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

/* Store value v of feature f in a row's codes (2 * nfeatures slots). */
static inline void
ModelDenseSetCode(const CrModel *m, uint16 *code, int f, double v)
{
	uint16		c = ModelDenseCode(m, f, v);

	code[f] = c;
	code[m->nfeatures + f] = (uint16) (c - 1);
}

/* Walk one dense tree for a row's codes: the leaf's index among 2^D. */
static inline int
ModelDenseWalk(const uint32 *node, int D, const uint16 *code)
{
	uint32		idx = 0;

	for (int d = 0; d < D; d++)
	{
		uint32		w = node[idx];

		idx = 2 * idx + 1 + (code[w >> 16] > (w & 0xFFFF));
	}
	return (int) idx - ((1 << D) - 1);
}

extern const char *ModelAlgorithmName(CrAlgorithm algorithm);
extern bytea *ModelEncode(const CrModel *model);
extern CrModel *ModelDecode(const char *data, Size len);
extern void ModelScoringDefaults(CrScoring *scoring);
extern uint32 ModelPeekChecksum(const char *data, Size len);

#endif							/* CR_MODEL_H */
