/*
 * predict.h
 *	  Scoring: probability of default, risk category and scorecard points.
 */
#ifndef CR_PREDICT_H
#define CR_PREDICT_H

#include "postgres.h"

#include "model.h"

/* x holds one applicant's features in model order; NaN means missing */
extern double PredictProbability(const CrModel *model, const double *x);
extern void PredictCheckFinite(const CrModel *model, int j, double v);
extern int	PredictBand(const CrScoring *scoring, double p);
extern const char *PredictCategory(const CrScoring *scoring, double p);
extern int	PredictPoints(const CrScoring *scoring, double p);

#endif							/* CR_PREDICT_H */
