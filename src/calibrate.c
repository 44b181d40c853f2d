/*
 * calibrate.c
 *	  See calibrate.h.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "calibrate.h"
#include "credit_risk.h"

#define PLATT_MAX_ITER	100

const char *
CalibrationMethodName(CrCalibrationMethod method)
{
	switch (method)
	{
		case CR_CALIBRATION_NONE:
			return "none";
		case CR_CALIBRATION_PLATT:
			return "platt";
		case CR_CALIBRATION_ISOTONIC:
			return "isotonic";
	}
	return "unknown";
}

bool
CalibrationMethodFromName(const char *name, CrCalibrationMethod *method)
{
	for (int m = CR_CALIBRATION_NONE; m <= CR_CALIBRATION_ISOTONIC; m++)
		if (strcmp(name, CalibrationMethodName((CrCalibrationMethod) m)) == 0)
		{
			*method = (CrCalibrationMethod) m;
			return true;
		}
	return false;
}

/* The margin of a PD, its ends held off 0 and 1. */
static double
Logit(double p)
{
	p = Min(Max(p, 1e-15), 1.0 - 1e-15);
	return log(p / (1.0 - p));
}

/* sum of y log p + (1 - y) log(1 - p) at a, b */
static double
PlattLogLik(const double *m, const double *label, int64 n, double a, double b)
{
	double		ll = 0.0;

	for (int64 i = 0; i < n; i++)
	{
		double		z = a * m[i] + b;

		/* log sigmoid(z) = -log1p(exp(-z)), written to stay finite */
		if (label[i] > 0.5)
			ll -= z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
		else
			ll -= z >= 0 ? z + log1p(exp(-z)) : log1p(exp(z));
	}
	return ll;
}

/* Newton's method on (a, b), each step halved while it lowers the likelihood. */
static void
PlattFit(CrCalibration *c, const double *prob, const double *label, int64 n)
{
	double	   *m = palloc(sizeof(double) * Max(n, 1));
	double		a = 1.0,
				b = 0.0;
	double		ll;
	int			iter;

	for (int64 i = 0; i < n; i++)
		m[i] = Logit(prob[i]);
	ll = PlattLogLik(m, label, n, a, b);
	for (iter = 0; iter < PLATT_MAX_ITER; iter++)
	{
		double		ga = 0.0,
					gb = 0.0,
					haa = 0.0,
					hab = 0.0,
					hbb = 0.0;
		double		det,
					da,
					db,
					step = 1.0,
					next;

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < n; i++)
		{
			double		p = CrSigmoid(a * m[i] + b);
			double		r = label[i] - p;
			double		w = p * (1.0 - p);

			ga += r * m[i];
			gb += r;
			haa += w * m[i] * m[i];
			hab += w * m[i];
			hbb += w;
		}
		det = haa * hbb - hab * hab;
		if (!(det > 0.0) || !isfinite(det))
			break;
		da = (hbb * ga - hab * gb) / det;
		db = (haa * gb - hab * ga) / det;
		for (;;)
		{
			next = PlattLogLik(m, label, n, a + step * da, b + step * db);
			if (next >= ll || step < 1e-10)
				break;
			step /= 2.0;
		}
		a += step * da;
		b += step * db;
		if (fabs(next - ll) <= 1e-12 * fabs(ll))
		{
			ll = next;
			break;
		}
		ll = next;
	}
	pfree(m);
	if (iter == PLATT_MAX_ITER || !isfinite(a) || !isfinite(b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Platt scaling did not converge on the holdout"),
				 errdetail("The holdout margins may separate the classes."),
				 errhint("Use params.calibration = 'isotonic', or a larger holdout.")));
	c->a = a;
	c->b = b;
}

typedef struct IsoPoint
{
	double		x;
	double		y;				/* label */
} IsoPoint;

static int
IsoPointCmp(const void *l, const void *r)
{
	const IsoPoint *p = l;
	const IsoPoint *q = r;

	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return p->y < q->y ? -1 : p->y > q->y;
}

/*
 * Pool adjacent violators over the distinct PDs (each the mean label of its
 * rows, weighted by their count), then keep each distinct PD with its
 * fitted value, but the inner points of runs of one value (interpolation
 * does not need them).
 */
static void
IsotonicFit(CrCalibration *c, const double *prob, const double *label, int64 n)
{
	IsoPoint   *pts = palloc(sizeof(IsoPoint) * Max(n, 1));
	double	   *ux = palloc(sizeof(double) * Max(n, 1));
	double	   *sum = palloc(sizeof(double) * Max(n, 1));	/* block: sum of labels */
	double	   *wt = palloc(sizeof(double) * Max(n, 1));	/* block: rows */
	int64	   *first = palloc(sizeof(int64) * Max(n, 1));	/* block: first distinct PD */
	int64		nu = 0;
	int64		nb = 0;
	double	   *fitted;
	int			k = 0;

	for (int64 i = 0; i < n; i++)
	{
		pts[i].x = prob[i];
		pts[i].y = label[i];
	}
	qsort(pts, n, sizeof(IsoPoint), IsoPointCmp);
	for (int64 i = 0; i < n;)
	{
		double		s = 0.0;
		int64		j = i;

		while (j < n && pts[j].x == pts[i].x)
			s += pts[j++].y;
		ux[nu] = pts[i].x;
		/* a block per distinct PD, then merged back while they decrease */
		sum[nb] = s;
		wt[nb] = (double) (j - i);
		first[nb] = nu;
		nb++;
		nu++;
		while (nb > 1 && sum[nb - 2] / wt[nb - 2] >= sum[nb - 1] / wt[nb - 1])
		{
			sum[nb - 2] += sum[nb - 1];
			wt[nb - 2] += wt[nb - 1];
			nb--;
		}
		i = j;
		if ((nu & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	fitted = palloc(sizeof(double) * Max(nu, 1));
	for (int64 blk = 0; blk < nb; blk++)
	{
		int64		end = blk + 1 < nb ? first[blk + 1] : nu;

		for (int64 u = first[blk]; u < end; u++)
			fitted[u] = sum[blk] / wt[blk];
	}
	if (nu > CR_MAX_CALIBRATION_POINTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("isotonic calibration would keep " INT64_FORMAT " points, more than %d",
						nu, CR_MAX_CALIBRATION_POINTS)));
	c->x = palloc(sizeof(double) * Max(nu, 1));
	c->y = palloc(sizeof(double) * Max(nu, 1));
	for (int64 u = 0; u < nu; u++)
	{
		bool		inner = u > 0 && u + 1 < nu &&
			fitted[u] == fitted[u - 1] && fitted[u] == fitted[u + 1];

		if (inner)
			continue;
		c->x[k] = ux[u];
		c->y[k] = fitted[u];
		k++;
	}
	c->npoints = k;
	pfree(pts);
	pfree(ux);
	pfree(sum);
	pfree(wt);
	pfree(first);
	pfree(fitted);
}

CrCalibration *
CalibrationFit(CrCalibrationMethod method, const double *prob, const double *label, int64 n)
{
	CrCalibration *c = palloc0(sizeof(CrCalibration));

	c->method = method;
	if (method == CR_CALIBRATION_PLATT)
		PlattFit(c, prob, label, n);
	else if (method == CR_CALIBRATION_ISOTONIC)
		IsotonicFit(c, prob, label, n);
	return c;
}

double
CalibrationApply(const CrCalibration *c, double margin)
{
	double		p;
	int			lo,
				hi;

	if (c->method == CR_CALIBRATION_PLATT)
		return CrSigmoid(c->a * margin + c->b);
	p = CrSigmoid(margin);
	if (p <= c->x[0])
		return c->y[0];
	if (p >= c->x[c->npoints - 1])
		return c->y[c->npoints - 1];
	/* x[lo] <= p < x[hi], as numpy's interp finds them */
	lo = 0;
	hi = c->npoints - 1;
	while (hi - lo > 1)
	{
		int			mid = (lo + hi) / 2;

		if (c->x[mid] <= p)
			lo = mid;
		else
			hi = mid;
	}
	return (c->y[hi] - c->y[lo]) / (c->x[hi] - c->x[lo]) * (p - c->x[lo]) + c->y[lo];
}
