/*
 * statdist.c
 *	  See statdist.h.  The incomplete beta and gamma functions by their
 *	  continued fractions (evaluated with the modified Lentz method) and the
 *	  gamma function's power series, as in the standard references
 *	  (Abramowitz and Stegun 6.5 and 26.5).
 */
#include "postgres.h"

#include <math.h>

#include "statdist.h"

#define STAT_EPS		1e-16
#define STAT_TINY		1e-300
#define STAT_MAX_ITER	100000

/*
 * One step of the modified Lentz method for a continued fraction
 * b0 + a1/(b1 + a2/(b2 + ...)): with the step's an and bn, updates c and d
 * and returns the factor the value is multiplied by.
 */
static inline double
LentzStep(double *c, double *d, double an, double bn)
{
	*d = bn + an * *d;
	if (fabs(*d) < STAT_TINY)
		*d = STAT_TINY;
	*c = bn + an / *c;
	if (fabs(*c) < STAT_TINY)
		*c = STAT_TINY;
	*d = 1.0 / *d;
	return *d * *c;
}

/* The continued fraction of I_x(a, b), for x < (a + 1) / (a + b + 2). */
static double
BetaFraction(double x, double a, double b)
{
	double		c = 1.0;
	double		d = 1.0 - (a + b) * x / (a + 1.0);
	double		h;

	if (fabs(d) < STAT_TINY)
		d = STAT_TINY;
	d = 1.0 / d;
	h = d;
	for (int m = 1; m < STAT_MAX_ITER; m++)
	{
		double		m2 = 2.0 * m;
		double		delta;

		/* the even step, then the odd one */
		h *= LentzStep(&c, &d, m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)), 1.0);
		delta = LentzStep(&c, &d, -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)), 1.0);
		h *= delta;
		if (fabs(delta - 1.0) < STAT_EPS)
			break;
	}
	return h;
}

double
StatBetaCdf(double x, double a, double b)
{
	double		front;

	if (!(x > 0.0))
		return 0.0;
	if (!(x < 1.0))
		return 1.0;
	front = exp(a * log(x) + b * log1p(-x) - (lgamma(a) + lgamma(b) - lgamma(a + b)));
	if (x < (a + 1.0) / (a + b + 2.0))
		return front * BetaFraction(x, a, b) / a;
	return 1.0 - front * BetaFraction(1.0 - x, b, a) / b;
}

double
StatBinomialUpper(int64 k, int64 n, double p)
{
	if (k <= 0)
		return 1.0;
	if (k > n)
		return 0.0;
	/* P(X >= k) = I_p(k, n - k + 1) */
	return StatBetaCdf(p, (double) k, (double) (n - k + 1));
}

/* Q(a, x), the regularized upper incomplete gamma function. */
static double
GammaUpper(double a, double x)
{
	double		front;

	if (!(x > 0.0))
		return 1.0;
	front = exp(a * log(x) - x - lgamma(a));
	if (x < a + 1.0)
	{
		/* P(a, x) by its series, Q = 1 - P */
		double		term = 1.0 / a;
		double		sum = term;

		for (int n = 1; n < STAT_MAX_ITER; n++)
		{
			term *= x / (a + n);
			sum += term;
			if (fabs(term) < fabs(sum) * STAT_EPS)
				break;
		}
		return 1.0 - front * sum;
	}
	else
	{
		/* Q(a, x) by its continued fraction */
		double		b = x + 1.0 - a;
		double		c = 1.0 / STAT_TINY;
		double		d = 1.0 / b;
		double		h = d;

		for (int i = 1; i < STAT_MAX_ITER; i++)
		{
			double		delta;

			b += 2.0;
			delta = LentzStep(&c, &d, -i * (i - a), b);
			h *= delta;
			if (fabs(delta - 1.0) < STAT_EPS)
				break;
		}
		return front * h;
	}
}

double
StatChiSquareUpper(double x, double df)
{
	if (isinf(x))
		return 0.0;
	return GammaUpper(df / 2.0, x / 2.0);
}
