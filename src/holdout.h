/*
 * holdout.h
 *	  The training/holdout split.
 */
#ifndef CR_HOLDOUT_H
#define CR_HOLDOUT_H

#include "postgres.h"

#include "dataset.h"

extern bool *HoldoutSplit(const CrDataset *ds, int64 seed, double holdout,
						  int64 *ntrain, int64 *nhold);

#endif							/* CR_HOLDOUT_H */
