/*
 * scorecard.h
 *	  Weight-of-Evidence binning of one feature against a 0/1 label.
 *
 * WoE of a bin = ln(share of the non-events in it / share of the events in
 * it), shares of all the rows considered (missing values included): a bin
 * with less risk than the whole has a positive WoE.  Its information value
 * is (share of non-events - share of events) * WoE, never negative; a
 * feature's IV is the sum over its bins, the missing bin included.
 *
 * A number's value bins are intervals lower <= x < upper (the first from
 * -Infinity, the last to Infinity); a categorical feature's are sets of its
 * codes (category.h).  Missing values (NaN) have a bin of their own.
 */
#ifndef CR_SCORECARD_H
#define CR_SCORECARD_H

#include "postgres.h"

typedef enum CrWoeTrend
{
	CR_TREND_AUTO,				/* ascending or descending, the higher IV */
	CR_TREND_ASCENDING,			/* event rate rises with the value */
	CR_TREND_DESCENDING,
	CR_TREND_PEAK,				/* rises, then falls */
	CR_TREND_VALLEY				/* falls, then rises */
} CrWoeTrend;

typedef struct CrWoeOptions
{
	int			max_bins;		/* value bins at most (params.max_bins) */
	double		min_bin_share;	/* of all rows, per value bin */
	int			prebins;		/* quantile pre-bins of a number */
	CrWoeTrend	trend;
	bool		categorical;	/* params.categorical: an integer or boolean as levels */
} CrWoeOptions;

typedef struct CrWoeBin
{
	double		lower;			/* numbers: lower <= x < upper */
	double		upper;
	int64		n;
	int64		events;
	double		woe;
	double		iv;
} CrWoeBin;

typedef struct CrWoeBinning
{
	int			nbins;			/* value bins; bins[nbins] is the missing bin */
	CrWoeBin   *bins;
	CrWoeTrend	trend;			/* the trend the bins follow (never auto) */
	int			ncodes;			/* categorical: codes 0 .. ncodes - 1; 0 for a number */
	int		   *code_bin;		/* categorical: each code's value bin, -1 when it has no rows */
	int64	   *code_n;
	int64	   *code_events;
	int64		n;				/* rows considered */
	int64		events;
	double		iv;				/* the feature's: every bin's, the missing one's too */
} CrWoeBinning;

/* A trend's name in params: auto, ascending, descending, peak, valley. */
static inline const char *
WoeTrendName(CrWoeTrend trend)
{
	static const char *const names[] = {"auto", "ascending", "descending", "peak", "valley"};

	return names[trend];
}


/* The trend a params value names (auto, ascending, ...): false for none. */
static inline bool
WoeTrendFromName(const char *name, CrWoeTrend *trend)
{
	for (int t = CR_TREND_AUTO; t <= CR_TREND_VALLEY; t++)
		if (strcmp(name, WoeTrendName((CrWoeTrend) t)) == 0)
		{
			*trend = (CrWoeTrend) t;
			return true;
		}
	return false;
}

/*
 * The bins of one feature: x its values (NaN missing; for a categorical
 * feature, ncodes > 0, its codes), y the labels (0 or 1), over the rows not
 * excluded (exclude may be NULL).  feature names it in messages.
 */
extern CrWoeBinning *WoeFindBins(const double *x, const double *y, const bool *exclude,
								 int64 n, int ncodes, const CrWoeOptions *opt,
								 const char *feature);

/* The strength band of an information value: useless, weak, ... suspicious. */
extern const char *WoeStrength(double iv);

#endif							/* CR_SCORECARD_H */
