/*
 * metrics.h
 *	  Discrimination and calibration metrics for a binary outcome.
 */
#ifndef CR_METRICS_H
#define CR_METRICS_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/numeric.h"

typedef struct CrMetrics
{
	int64		rows;
	int64		positives;
	double		base_rate;
	double		auc;			/* NaN when only one class is present */
	double		ks;
	double		gini;
	double		log_loss;
	double		brier;
	double		threshold;
	double		accuracy;
	double		precision;
	double		recall;
	double		f1;
} CrMetrics;

extern double MetricsAuc(const double *score, const double *label, int64 n);
extern void MetricsCompute(const double *prob, const double *label, int64 n,
						   double threshold, CrMetrics *m);
extern void MetricsAppendJson(StringInfo buf, const CrMetrics *m);
extern void CrAppendDouble(StringInfo buf, double v);
extern Numeric CrFloat8ToNumeric(double d);

#endif							/* CR_METRICS_H */
