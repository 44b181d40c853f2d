/*
 * drift.h
 *	  Drift baselines: the training distribution of each feature and of the
 *	  score, stored in the model and compared with later data.
 */
#ifndef CR_DRIFT_H
#define CR_DRIFT_H

#include "postgres.h"

#include "model.h"

extern void DriftBaselineBuild(CrBaseline *b, const double *x, const bool *exclude,
							   int64 n, uint64 seed, double *work);
extern void DriftBaselineCategories(CrBaseline *b, const double *codes, const bool *exclude,
									int64 n, int nlevels);

#endif							/* CR_DRIFT_H */
