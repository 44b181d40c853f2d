/*
 * binning.h
 *	  Quantile bin edges per feature and uint8 binned columns.
 *
 * A feature with m cut points c_1 < ... < c_m has value bins 0..m: a value
 * x falls in bin b when c_b <= x < c_{b+1} (c_0 = -inf, c_{m+1} = +inf).
 * Missing values (NaN) go to bin CR_MISSING_BIN.  So "bin <= b" is
 * "x < c_{b+1}", which is how a split on bins becomes a threshold.
 */
#ifndef CR_BINNING_H
#define CR_BINNING_H

#include "postgres.h"

#define CR_MISSING_BIN		255
#define CR_MAX_VALUE_BINS	255
#define BIN_SAMPLE_MAX		131072	/* values sampled to find a column's cut points */

typedef struct CrBinEdges
{
	int			ncuts;			/* value bins are 0..ncuts */
	double	   *cuts;			/* ncuts increasing cut points */
} CrBinEdges;

/*
 * Cut points for one column: quantiles of its non-missing values over the
 * rows selected by mask (NULL: all), from a sample of at most sample_max
 * values; at most max_bins value bins.  Plain C, safe in worker threads:
 * cuts must have room for max_bins - 1 values, work for 2 * Min(n,
 * sample_max) (BinWorkBytes when sample_max is BIN_SAMPLE_MAX).
 */
/* Sort m doubles (no NaN) ascending; tmp has room for m.  Thread-safe. */
extern void BinSortDoubles(double *v, int64 m, double *tmp);

/* bytes of BinFindCuts' work for a column of n values */
static inline Size
BinWorkBytes(int64 n)
{
	return sizeof(double) * 2 * Min(Max(n, 1), BIN_SAMPLE_MAX);
}

extern int	BinFindCuts(const double *x, const bool *exclude, int64 n,
						int max_bins, int64 sample_max, uint64 seed,
						double *work, double *cuts);

/*
 * The bins of eight values at once (x[0..7], each the number of cuts <= it;
 * NaN gives 0): BinValue's branch-free binary search, step for step, for
 * eight rows, since one row's search is a chain of dependent loads and a
 * branch per step mispredicts on random data.  Callers that build with
 * loop vectorizing off keep this as eight scalar chains.
 */
static inline void
BinSearch8(const double *cuts, int32 ncuts, const double *x, int32 *bin)
{
	int32		b0 = 0, b1 = 0, b2 = 0, b3 = 0,
				b4 = 0, b5 = 0, b6 = 0, b7 = 0;

	if (ncuts > 0)
	{
		for (int32 len = ncuts; len > 1;)
		{
			int32		half = len >> 1;

			b0 += half & -(int32) (cuts[b0 + half - 1] <= x[0]);
			b1 += half & -(int32) (cuts[b1 + half - 1] <= x[1]);
			b2 += half & -(int32) (cuts[b2 + half - 1] <= x[2]);
			b3 += half & -(int32) (cuts[b3 + half - 1] <= x[3]);
			b4 += half & -(int32) (cuts[b4 + half - 1] <= x[4]);
			b5 += half & -(int32) (cuts[b5 + half - 1] <= x[5]);
			b6 += half & -(int32) (cuts[b6 + half - 1] <= x[6]);
			b7 += half & -(int32) (cuts[b7 + half - 1] <= x[7]);
			len -= half;
		}
		b0 += cuts[b0] <= x[0];
		b1 += cuts[b1] <= x[1];
		b2 += cuts[b2] <= x[2];
		b3 += cuts[b3] <= x[3];
		b4 += cuts[b4] <= x[4];
		b5 += cuts[b5] <= x[5];
		b6 += cuts[b6] <= x[6];
		b7 += cuts[b7] <= x[7];
	}
	bin[0] = b0, bin[1] = b1, bin[2] = b2, bin[3] = b3;
	bin[4] = b4, bin[5] = b5, bin[6] = b6, bin[7] = b7;
}

static inline uint8
BinValue(const CrBinEdges *e, double x)
{
	const double *base = e->cuts;
	int			n = e->ncuts;

	if (isnan(x))
		return CR_MISSING_BIN;
	if (n == 0)
		return 0;
	/* number of cuts <= x: a binary search without branches to mispredict */
	while (n > 1)
	{
		int			half = n >> 1;

		base = base[half - 1] <= x ? base + half : base;
		n -= half;
	}
	return (uint8) ((base - e->cuts) + (base[0] <= x));
}

#endif							/* CR_BINNING_H */
