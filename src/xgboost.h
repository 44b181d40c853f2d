/*
 * xgboost.h
 *	  Reading the JSON model format of XGBoost's Booster.save_model into a
 *	  tree model (the part of cr_import_xgboost that needs no server, so
 *	  that test/fuzz can run it on hostile input).
 */
#ifndef CR_XGBOOST_H
#define CR_XGBOOST_H

#include "postgres.h"

#include "utils/array.h"
#include "utils/jsonb.h"

#include "model.h"

/* Per-feature importance, summed over the splits. */
typedef struct XgbImportance
{
	double	   *gain;
	double	   *cover;
	int64	   *splits;
} XgbImportance;

extern void XgbReadModel(Jsonb *json, ArrayType *features, const CrScoring *scoring,
						 CrModel *model, XgbImportance *imp, char **objective,
						 double *base_score, char **version);

#endif							/* CR_XGBOOST_H */
