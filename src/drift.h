/*
 * drift.h
 *	  Drift baselines: the training distribution of each feature and of the
 *	  score, stored in the model and compared with later data.
 */
#ifndef CR_DRIFT_H
#define CR_DRIFT_H

#include "postgres.h"

#include "model.h"

/* a baseline's distribution before it is stored (no allocation) */
typedef struct CrBaselineWork
{
	int			ncuts;
	double		cuts[CR_MAX_DRIFT_CUTS];
	int64		count[CR_MAX_DRIFT_CUTS + 2];	/* bins, then missing */
} CrBaselineWork;

extern void DriftBaselineCompute(CrBaselineWork *w, const double *x, const bool *exclude,
								 int64 n, uint64 seed, double *work);
extern void DriftBaselineComputeCategories(CrBaselineWork *w, const double *codes,
										   const bool *exclude, int64 n, int nlevels);
extern void DriftBaselineFinish(CrBaseline *b, const CrBaselineWork *w);
extern void DriftBaselineBuild(CrBaseline *b, const double *x, const bool *exclude,
							   int64 n, uint64 seed, double *work);

#endif							/* CR_DRIFT_H */
