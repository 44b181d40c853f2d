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

#include "forest.h"

#define CR_MODEL_MAGIC			0x444D5243	/* "CRMD" read as little-endian */
#define CR_FORMAT_VERSION		1
#define CR_HEADER_SIZE			20

#define CR_MAX_FEATURES			4096
#define CR_MAX_NAME_LEN			(NAMEDATALEN - 1)
#define CR_MAX_BANDS			16

typedef enum CrAlgorithm
{
	CR_ALGO_LOGISTIC = 1,
	CR_ALGO_GBM = 2
} CrAlgorithm;

typedef enum CrSectionTag
{
	CR_SECT_FEATURES = 1,
	CR_SECT_IMPUTE = 2,
	CR_SECT_SCORING = 3,
	CR_SECT_LOGIT = 4,
	CR_SECT_GBM = 5,
	CR_SECT_BASELINE = 6
} CrSectionTag;

#define CR_SECT_MAX			CR_SECT_BASELINE
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

typedef struct CrModel
{
	CrAlgorithm algorithm;
	int			nfeatures;
	char	  **features;		/* feature names */
	double	   *impute;			/* value used for a missing feature */
	CrScoring	scoring;

	/* logistic regression, original feature scale; [0] is the intercept */
	double	   *coef;
	double	   *std_error;

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

#endif							/* CR_MODEL_H */
