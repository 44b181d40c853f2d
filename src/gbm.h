/*
 * gbm.h
 *	  Histogram gradient boosting for the logistic loss.
 */
#ifndef CR_GBM_H
#define CR_GBM_H

#include "postgres.h"

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
	double	   *holdout_label;
	double	   *train_label;
	int64		ntrain;
	int64		nholdout;
	double		bin_seconds;
} CrGbmResult;

/*
 * Train on ds (rows with holdout[i] set are the holdout).  The float
 * columns of ds are freed once binned: only binned data stays in memory
 * while trees grow.
 */
extern CrGbmResult *GbmFit(CrDataset *ds, const bool *holdout,
						   const CrGbmParams *params);

/* bytes per training row the trainer needs, for the memory check */
extern Size GbmBytesPerRow(int nfeatures);

#endif							/* CR_GBM_H */
