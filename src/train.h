/*
 * train.h
 *	  What cr_train, cross-validation and the hyper-parameter search share:
 *	  the loaded rows, fitted again on other rows or with other params.
 */
#ifndef CR_TRAIN_H
#define CR_TRAIN_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "dataset.h"
#include "gbm.h"
#include "logit.h"
#include "metrics.h"
#include "model.h"
#include "params.h"

/*
 * The rows of a training run, loaded once: the dataset (its float columns
 * until the first tree fit bins them, once for every fit, and frees them),
 * the holdout, the folds of the training rows, and what a fitted model
 * starts from (features, levels, scoring settings).
 */
typedef struct CrTrainData
{
	CrDataset  *ds;
	bool	   *holdout;		/* per row */
	int64		ntrain;
	int64		nhold;
	int8	   *fold;			/* per row: a training row's fold, -1 in the holdout */
	int			nfolds;			/* 0: no folds */
	CrModel		skeleton;		/* features, cats, scoring; no coefficients or trees */
	CrGbmBins  *bins;			/* the rows binned for trees (TrainGbmBins), or NULL */
	MemoryContext cxt;			/* the run's, where they live */
} CrTrainData;

/* Metrics of a cross-validation: per fold, and their mean and sd. */
typedef struct CrCvResult
{
	int			k;
	CrMetrics  *folds;
	double		auc_mean;
	double		auc_sd;
	double		seconds;
	/* params.calibration: every fold's out-of-fold PDs and labels, else NULL */
	double	   *oof_prob;
	double	   *oof_label;
	int64		n_oof;
} CrCvResult;

/* What a fit measured, for its metrics and importance. */
typedef struct TrainFit
{
	CrMetrics	eval;			/* on the holdout, or on the training rows without one */
	double		train_auc;
	double	   *eval_prob;		/* the probabilities eval is computed on */
	const double *eval_label;
	int64		neval;
	StringInfoData extra;		/* the algorithm's own metrics: , "key": value ... */
	StringInfoData importance;	/* a JSON object, feature -> importance */
} TrainFit;

/* A training run: cr_train's, or a search's (cr_tune). */
typedef struct TrainRun
{
	char	   *name;
	char	   *source;
	char	   *label;
	char	   *algorithm;
	Jsonb	   *params;			/* as given, or NULL */
	CrTrainParams tp;
	CrDatasetSpec spec;
	CrTrainData td;
	int64		positives;		/* defaults among the training rows */
	TupleDesc	rettupdesc;		/* credit_risk.models, or NULL */
	MemoryContext callercxt;
	MemoryContext traincxt;
	instr_time	start;
	instr_time	loaded;
} TrainRun;

extern void TrainBegin(TrainRun *run, FunctionCallInfo fcinfo, ArrayType *features,
					   Jsonb *params);
extern void TrainLoad(TrainRun *run);
extern Datum TrainFinish(TrainRun *run, CrTrainParams *tp, const CrCvResult *cv,
						 const char *params_extra);
extern Datum TrainRegister(TrainRun *run, CrTrainParams *tp, CrModel *model, TrainFit *fit,
							const CrCvResult *cv, const char *params_extra,
							int64 ntrain, int64 nhold);
extern void TrainEvaluate(TrainFit *fit, double threshold,
						  double *hold_prob, const double *hold_label, int64 nhold,
						  double *train_prob, const double *train_label, int64 ntrain);
extern void TrainCheckCounts(int64 nrows, int64 ntrain, int64 nhold, int64 pos,
							 double holdout_share, const char *label);
extern void TrainClassWeights(int64 ntrain, int64 pos, CrTrainParams *tp);
extern void TrainGbmReport(TrainFit *fit, const CrGbmResult *res, char **names, int p);
extern void TrainEnd(TrainRun *run);
/* cr_train with params.distributed: the passes run where the rows are (train_distributed.c) */
extern Datum TrainDistributed(TrainRun *run);

extern void TrainBaselines(CrDataset *ds, const bool *exclude, const CrTrainParams *tp,
						   CrBaseline *out);
extern CrGbmBins *TrainGbmBins(CrTrainData *td, const CrTrainParams *tp);
extern CrLogitFit *TrainLogitFit(CrDataset *ds, const bool *exclude, const CrTrainParams *tp,
								 CrModel *model, double *importance);

/* k-fold cross-validation of tp on td's training rows (td->nfolds folds) */
/* A scorecard's bins (model->woe) and its fit on their WoE (scorecard.c). */
extern CrLogitFit *ScorecardFit(CrDataset *ds, const bool *exclude, const CrTrainParams *tp,
								CrModel *model, double *importance, StringInfo extra);
extern void TrainCrossValidate(CrTrainData *td, CrTrainParams *tp, CrCvResult *res);
extern void TrainCvAppendJson(StringInfo buf, const CrCvResult *res);

#endif							/* CR_TRAIN_H */
