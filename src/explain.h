/*
 * explain.h
 *	  Explanations of one applicant's score: each feature's contribution to
 *	  the margin, and the direction that names its reason.
 */
#ifndef CR_EXPLAIN_H
#define CR_EXPLAIN_H

#include "postgres.h"

#include "model.h"

extern void ExplainContributions(const CrModel *m, const double *x, double *phi,
								 double *base);
extern const char *ExplainDirection(const CrModel *m, int j, double v);

#endif							/* CR_EXPLAIN_H */
