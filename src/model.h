/*
 * model.h
 *	  The model struct and its self-describing byte format.
 *
 * Layout of the bytes (all integers and doubles little-endian):
 *
 *	header (20 bytes): magic "CRMD", format version (u16), algorithm (u16),
 *		reserved (u32, zero), total length (u32), CRC-32C (u32)
 *	sections, each: tag (u16), reserved (u16), length (u32), payload
 *
 * The checksum covers the header up to the checksum field and every byte
 * after the header.  Required sections: FEATURES, IMPUTE, SCORING and the
 * algorithm's own (LOGIT or GBM); BASELINE is optional (older models lack
 * it).  The decoder validates every count, length and value before use; any
 * inconsistency is an ERROR.
 */
#ifndef CR_MODEL_H
#define CR_MODEL_H

#include "postgres.h"

#include <math.h>

#include "calibrate.h"
#include "category.h"
#include "forest.h"

#define CR_MODEL_MAGIC			0x444D5243	/* "CRMD" read as little-endian */
/*
 * Format 2 adds the CATEGORIES and GBM_CATS sections; a model without
 * categorical features is still written as format 1, byte for byte as
 * before, so older builds read it.  Format 3 adds the scorecard algorithm
 * and its WOE section; only scorecards are written as format 3.  Format 4
 * adds the CALIBRATION section, of a model of any algorithm fitted with
 * params.calibration; only such models are written as format 4.
 */
#define CR_FORMAT_VERSION		4
#define CR_HEADER_SIZE			20

#define CR_MAX_FEATURES			4096
#define CR_MAX_NAME_LEN			(NAMEDATALEN - 1)
#define CR_MAX_BANDS			16

typedef enum CrAlgorithm
{
	CR_ALGO_LOGISTIC = 1,
	CR_ALGO_GBM = 2,
	CR_ALGO_SCORECARD = 3		/* logistic regression on WoE-binned features */
} CrAlgorithm;

typedef enum CrSectionTag
{
	CR_SECT_FEATURES = 1,
	CR_SECT_IMPUTE = 2,
	CR_SECT_SCORING = 3,
	CR_SECT_LOGIT = 4,
	CR_SECT_GBM = 5,
	CR_SECT_BASELINE = 6,
	CR_SECT_CATEGORIES = 7,		/* format 2: the levels of categorical features */
	CR_SECT_GBM_CATS = 8,		/* format 2: the category sets of tree nodes */
	CR_SECT_WOE = 9,			/* format 3: a scorecard's bins */
	CR_SECT_CALIBRATION = 10	/* format 4: Platt or isotonic calibration */
} CrSectionTag;

#define CR_SECT_MAX			CR_SECT_CALIBRATION
#define CR_MAX_WOE_BINS		255
#define CR_MAX_DRIFT_CUTS	63
#define CR_MAX_TREES		100000

/* How a probability becomes a risk category and scorecard points. */
typedef struct CrScoring
{
	double		threshold;		/* classification cut-off for metrics */
	int			nbands;			/* number of risk categories */
	double		cutoffs[CR_MAX_BANDS - 1];	/* PD < cutoffs[i] -> labels[i] */
	char	   *labels[CR_MAX_BANDS];
	double		points_base;	/* points at odds_base (good:bad) */
	double		odds_base;
	double		pdo;			/* points to double the odds */
} CrScoring;

/*
 * The distribution of one feature (or of the score) in the training data:
 * ncuts quantile cut points, the share of non-missing rows in each of the
 * ncuts + 1 bins (a value x is in bin b when cuts[b-1] <= x < cuts[b]), and
 * the share of rows missing.  Drift is measured against it.
 */
typedef struct CrBaseline
{
	int			ncuts;
	double	   *cuts;
	double	   *shares;			/* ncuts + 1, over all rows */
	double		missing;		/* share of rows missing */
} CrBaseline;

/*
 * A scorecard feature's bins (see scorecard.h): nbins value bins, a
 * number's bin b holding cuts[b-1] <= x < cuts[b]; a categorical feature's
 * codes each in a bin (code_bin, -1 for a code without training rows,
 * which scores WoE 0).  woe, n and events have nbins + 1 entries: the last
 * is the missing bin.  n and events count the training rows.
 */
typedef struct CrWoeFeature
{
	int			nbins;
	double	   *cuts;			/* nbins - 1, numbers only */
	int			ncodes;			/* categorical: nlevels + 1; 0 for a number */
	int		   *code_bin;
	double	   *woe;
	int64	   *n;
	int64	   *events;
} CrWoeFeature;

typedef struct CrModel
{
	CrAlgorithm algorithm;
	int			nfeatures;
	char	  **features;		/* feature names */
	double	   *impute;			/* value used for a missing feature */
	CrScoring	scoring;

	/*
	 * Categorical features (format 2): per feature, NULL for a number or the
	 * levels; cats itself is NULL when every feature is a number.
	 */
	CrCategoryMap **cats;

	/*
	 * Logistic regression, original feature scale; [0] is the intercept.
	 * Feature j's coefficients start at coef_start[j]: one for a number;
	 * nlevels + 2 for a categorical feature (its levels, other, missing),
	 * 0 for the reference level and for groups absent in training, which
	 * so score as the reference.  ncoef counts them all, the intercept too.
	 * Without categorical features coef_start[j] is j + 1.  For a
	 * categorical feature impute[j] holds the training mean of its
	 * coefficient (what an explanation measures a level against).
	 */
	double	   *coef;
	double	   *std_error;
	int32	   *coef_start;
	int			ncoef;

	/*
	 * Scorecard: per feature its bins; coef[j + 1] multiplies feature j's
	 * WoE (coef_start[j] is j + 1 even for a categorical feature).
	 */
	CrWoeFeature *woe;

	/* the PD from the margin: NULL for sigmoid(margin) */
	CrCalibration *calibration;

	/* gradient-boosted trees, and their dense copy for scoring */
	CrForest	forest;

	/* drift baselines: nfeatures features, then the score; NULL in old models */
	CrBaseline *baseline;
	double		drift_moderate; /* PSI from which drift is moderate */
	double		drift_major;	/* PSI above which it is major */

	int			format_version;
	uint32		checksum;
	Size		nbytes;
} CrModel;

extern const char *ModelAlgorithmName(CrAlgorithm algorithm);
extern bytea *ModelEncode(const CrModel *model);
extern CrModel *ModelDecode(const char *data, Size len);
extern uint32 ModelPeekChecksum(const char *data, Size len);

/* coef_start and ncoef from nfeatures and cats (after cats are set) */
extern void ModelSetCoefLayout(CrModel *model);

/* Feature j's logistic coefficient group for value v: its offset from coef_start[j]. */
static inline int
ModelLogitGroup(const CrCategoryMap *map, double v)
{
	if (isnan(v))
		return map->nlevels + 1;
	if (v >= 0.0 && v < (double) map->nlevels)
		return (int) v;
	return map->nlevels;
}

/* The linear predictor of a logistic model for x (codes for categorical features). */
static inline double
ModelLogitMargin(const CrModel *m, const double *x)
{
	const double *coef = m->coef;
	double		eta = coef[0];

	if (m->cats == NULL)
	{
		for (int j = 0; j < m->nfeatures; j++)
		{
			double		v = isnan(x[j]) ? m->impute[j] : x[j];

			eta += coef[j + 1] * v;
		}
		return eta;
	}
	for (int j = 0; j < m->nfeatures; j++)
	{
		const CrCategoryMap *map = m->cats[j];

		if (map != NULL)
			eta += coef[m->coef_start[j] + ModelLogitGroup(map, x[j])];
		else
			eta += coef[m->coef_start[j]] * (isnan(x[j]) ? m->impute[j] : x[j]);
	}
	return eta;
}

/* The value bin of x in a scorecard feature (x not NaN), or -1 for WoE 0. */
static inline int
ModelWoeBin(const CrWoeFeature *w, double x)
{
	if (w->ncodes > 0)
	{
		int			c = (x >= 0.0 && x < (double) w->ncodes) ? (int) x : w->ncodes - 1;

		return w->code_bin[c];
	}
	else
	{
		/* the number of cuts <= x */
		int			lo = 0,
					hi = w->nbins - 1;

		if (w->nbins == 0)
			return -1;
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (w->cuts[mid] <= x)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo;
	}
}

/* A scorecard feature's WoE for x (a code for a categorical feature; NaN missing). */
static inline double
ModelWoe(const CrWoeFeature *w, double x)
{
	int			b;

	if (isnan(x))
		return w->woe[w->nbins];
	b = ModelWoeBin(w, x);
	return b < 0 ? 0.0 : w->woe[b];
}

/* The linear predictor of a scorecard for x. */
static inline double
ModelScorecardMargin(const CrModel *m, const double *x)
{
	double		eta = m->coef[0];

	for (int j = 0; j < m->nfeatures; j++)
		eta += m->coef[j + 1] * ModelWoe(&m->woe[j], x[j]);
	return eta;
}

#endif							/* CR_MODEL_H */
