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
extern int8 *HoldoutFolds(const CrDataset *ds, const bool *holdout, int64 seed, int k);

#endif							/* CR_HOLDOUT_H */
