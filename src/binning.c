/*
 * binning.c
 *	  Quantile cut points for histogram training and drift baselines.
 *
 * The cut points of a feature are quantiles of a uniform sample of its
 * non-missing training values (all of them when there are few), with
 * duplicates removed, so a feature with fewer distinct values than bins gets
 * one bin per value.  Runs in worker threads: no PostgreSQL calls.
 */
#include "postgres.h"

#include <math.h>

#include "binning.h"
#include "credit_risk.h"
#include "random.h"

/*
 * Sort m doubles (no NaN) ascending, with tmp room for m more: a radix sort
 * by bytes of keys whose unsigned order is the numeric order (a negative's
 * bits flipped, a non-negative's sign bit set), skipping the bytes that
 * every key shares.  -0 sorts before +0; equal values are equal either way.
 */
void
BinSortDoubles(double *v, int64 m, double *tmp)
{
	uint64	   *a = (uint64 *) v;
	uint64	   *b = (uint64 *) tmp;
	int64		count[8][256];

	if (m <= 1)
		return;
	memset(count, 0, sizeof(count));
	for (int64 i = 0; i < m; i++)
	{
		uint64		u;

		memcpy(&u, &v[i], sizeof(u));
		u ^= (u >> 63) ? ~UINT64CONST(0) : (UINT64CONST(1) << 63);
		a[i] = u;
		for (int d = 0; d < 8; d++)
			count[d][(u >> (8 * d)) & 0xFF]++;
	}
	for (int d = 0; d < 8; d++)
	{
		int64		at = 0;
		uint64	   *t;

		/* every key has the same byte d: nothing moves */
		if (count[d][(a[0] >> (8 * d)) & 0xFF] == m)
			continue;
		for (int k = 0; k < 256; k++)
		{
			int64		c = count[d][k];

			count[d][k] = at;
			at += c;
		}
		for (int64 i = 0; i < m; i++)
			b[count[d][(a[i] >> (8 * d)) & 0xFF]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	for (int64 i = 0; i < m; i++)
	{
		uint64		u = a[i];

		u ^= (u >> 63) ? (UINT64CONST(1) << 63) : ~UINT64CONST(0);
		memcpy(&v[i], &u, sizeof(u));
	}
}

int
BinFindCuts(const double *x, const bool *exclude, int64 n, int max_bins,
			int64 sample_max, uint64 seed, double *work, double *cuts)
{
	int64		nvalid = 0;
	int64		m = 0;
	int			ncuts = 0;

	/*
	 * The loops below select without branches (each value is written, and
	 * kept by advancing m), since on random data a branch per row
	 * mispredicts; work has room for one value past the last kept.
	 */
	for (int64 i = 0; i < n; i++)
		nvalid += (exclude == NULL || !exclude[i]) && !isnan(x[i]);
	if (nvalid == 0)
		return 0;

	if (nvalid <= sample_max)
	{
		for (int64 i = 0; i < n; i++)
		{
			work[m] = x[i];
			m += (exclude == NULL || !exclude[i]) && !isnan(x[i]);
		}
	}
	else
	{
		/* a deterministic Bernoulli sample, topped up to sample_max */
		double		keep = (double) sample_max / (double) nvalid;
		uint64		threshold = (uint64) (keep * 18446744073709551615.0);

		for (int64 i = 0; i < n && m < sample_max; i++)
		{
			int			take = exclude == NULL || !exclude[i];

			take &= !isnan(x[i]);
			take &= CrMix64(seed ^ (uint64) i) <= threshold;
			work[m] = x[i];
			m += take;
		}
	}
	if (m > 0)
		BinSortDoubles(work, m, work + Min(n, sample_max));

	/* few distinct values: one bin each */
	{
		int64		distinct = 1;

		for (int64 i = 1; i < m && distinct <= max_bins; i++)
			distinct += work[i] != work[i - 1];
		if (distinct <= max_bins)
		{
			for (int64 i = 1; i < m; i++)
				if (work[i] != work[i - 1])
					cuts[ncuts++] = work[i];
			return ncuts;
		}
	}

	/*
	 * Cut at the values that start each of max_bins equal-count groups; a
	 * cut equal to the smallest value would leave bin 0 empty, so skip it.
	 */
	for (int b = 1; b < max_bins; b++)
	{
		int64		pos = (int64) ((double) b * (double) m / (double) max_bins);
		double		c;

		if (pos <= 0 || pos >= m)
			continue;
		c = work[pos];
		if (c <= work[0])
			continue;
		if (ncuts > 0 && c <= cuts[ncuts - 1])
			continue;
		cuts[ncuts++] = c;
	}
	return ncuts;
}
