/*
 * export.h
 *	  The trees of a model in XGBoost's JSON model format, as cr_export
 *	  writes them (exposed for test/fuzz).
 */
#ifndef CR_EXPORT_H
#define CR_EXPORT_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "model.h"

/*
 * XGBoost holds base_score as a float probability, which is coarse near 0
 * and 1: when the float's log-odds would miss the base margin by more than
 * 1e-7 (relative to 1 + |margin|), or the float would be 0, subnormal or 1,
 * the export writes base_score 0.5 (margin 0) and adds the base margin to
 * every leaf of the first tree instead, which scores and explains the same.
 */
extern bool ExportXgboostShiftsBase(double base_margin);
extern void ExportXgboost(StringInfo buf, const CrModel *m);

#endif							/* CR_EXPORT_H */
