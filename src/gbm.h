/*
 * gbm.h
 *	  Histogram gradient boosting for the logistic loss.
 */
#ifndef CR_GBM_H
#define CR_GBM_H

#include "postgres.h"

#include "binning.h"
#include "dataset.h"
#include "forest.h"

typedef struct CrGbmParams
{
	int			n_trees;
	int			max_depth;
	double		learning_rate;
	double		lambda;
	double		gamma;
	double		min_child_weight;
	double		subsample;
	double		colsample_bytree;
	double		scale_pos_weight;
	double		class_weight[2];	/* of labels 0 and 1 (params.class_weight) */
	int			max_bin;
	double		base_score;		/* probability; <= 0 means the training base rate */
	int			early_stopping_rounds;	/* 0: off */
	int			threads;
	uint64		seed;
	int8	   *monotone;		/* per feature: -1, 0 or 1; NULL for none */
	int			max_cat_to_onehot;	/* a categorical feature with at most this many
									 * codes at a node is split one level against the
									 * rest; with more, by sorted gradient statistics */
} CrGbmParams;

typedef struct CrGbmResult
{
	CrForest	forest;			/* the kept trees */
	double	   *gain;			/* per feature, over kept trees */
	double	   *cover;
	int64	   *splits;
	int			trees_built;
	int			best_iteration; /* 0-based; trees kept = best_iteration + 1 */
	double		best_score;		/* holdout log loss at best_iteration, or NaN */
	int			threads_used;
	double	   *holdout_prob;	/* nholdout probabilities from the kept trees */
	double	   *train_prob;		/* ntrain probabilities */
	const double *holdout_label;
	const double *train_label;
	int64		ntrain;
	int64		nholdout;
	double		bin_seconds;
} CrGbmResult;

/*
 * Rows cut into bins once (GbmBin, gbm_bins.c), for every fit on them:
 * cr_train's, and each fold's and each trial's of a cross-validation or a
 * search.  The cut points come from the training rows; each row is a
 * feature's bin (a value bin, CR_MISSING_BIN, or a categorical feature's
 * code).
 */
typedef struct CrGbmBins
{
	int			p;
	int64		ntr;			/* training rows, in dataset order */
	int64		nho;			/* holdout rows, likewise */
	uint8	   *bins;			/* ntr rows of p bins, row-major */
	uint8	   *hbins;			/* nho rows of p bins */
	double	   *ytr;
	double	   *yho;
	CrBinEdges *edges;			/* p */
	int		   *ncodes;			/* p: codes of a categorical feature, or 0 */
	int			max_bin;		/* the params the cuts were found with */
	uint64		seed;
	double		seconds;		/* spent binning */
} CrGbmBins;

/* Bin ds's rows; rows with holdout[i] set are the holdout, the rest train. */
extern CrGbmBins *GbmBin(CrDataset *ds, const bool *holdout, const CrGbmParams *params);

/*
 * The rows of b for a fit on fold f: rows with fold[i] == f are its
 * holdout, rows with another fold >= 0 its training rows, rows with -1
 * take no part (holdout and nrows as b was binned with).  Copies the
 * fold's bytes, or shares b's when the fold is b's holdout.
 */
extern CrGbmBins *GbmBinsFold(const CrGbmBins *b, const bool *holdout, int64 nrows,
							  const int8 *fold, int f);

/* Boost on b's training rows, b's holdout for early stopping and metrics. */
extern CrGbmResult *GbmBoost(const CrGbmBins *b, const CrGbmParams *params);

/* bytes per training row the trainer needs, for the memory check */
extern Size GbmBytesPerRow(int nfeatures);

#endif							/* CR_GBM_H */
