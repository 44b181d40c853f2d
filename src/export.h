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

extern void ExportXgboost(StringInfo buf, const CrModel *m);

#endif							/* CR_EXPORT_H */
