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
 * sample_max).
 */
extern int	BinFindCuts(const double *x, const bool *exclude, int64 n,
						int max_bins, int64 sample_max, uint64 seed,
						double *work, double *cuts);

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
