/*
 * statdist.h
 *	  Tail probabilities of the binomial, beta and chi-square distributions,
 *	  for the calibration tests (cr_calibration).  Plain C.
 */
#ifndef CR_STATDIST_H
#define CR_STATDIST_H

#include "postgres.h"

/* The regularized incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1. */
extern double StatBetaCdf(double x, double a, double b);

/* P(X >= k) for X ~ Binomial(n, p). */
extern double StatBinomialUpper(int64 k, int64 n, double p);

/* P(X > x) for X ~ chi-square with df degrees of freedom. */
extern double StatChiSquareUpper(double x, double df);

#endif							/* CR_STATDIST_H */
