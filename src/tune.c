/*
 * tune.c
 *	  Model development on the rows of one training run: k-fold
 *	  cross-validation (params.cv), and the hyper-parameter search of
 *	  cr_tune.
 *
 * Folds are made once per run (HoldoutFolds): the training rows of each
 * label, ordered by the same seeded number that decides the holdout, are
 * dealt to folds 0, 1, ..., k - 1 in turn, so every fold has the same share
 * of defaults to within one row.  A fold's model is fitted as cr_train
 * fits one (the same code, its own imputation means and levels' dummy
 * columns) on the other folds, and scored on the fold.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"

#include "gbm.h"
#include "hugemem.h"
#include "predict.h"
#include "train.h"

/* a fitted logistic model of one fold, scored on the fold's rows */
static void
CvLogistic(CrTrainData *td, const CrTrainParams *tp, int f, const bool *exclude,
		   double *prob, double *label, int64 *n)
{
	CrDataset  *ds = td->ds;
	CrModel		m = td->skeleton;
	double	   *x = palloc(sizeof(double) * ds->nfeatures);

	m.impute = DatasetColumnMeans(ds, exclude, "training");
	for (int j = 0; j < ds->nfeatures; j++)
		if (ds->cats != NULL && ds->cats[j] != NULL)
			m.impute[j] = 0.0;
	(void) TrainLogitFit(ds, exclude, tp, &m, NULL);
	*n = 0;
	for (int64 i = 0; i < ds->nrows; i++)
	{
		if (td->fold[i] != f)
			continue;
		if ((*n & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < ds->nfeatures; j++)
			x[j] = ds->cols[j][i];
		prob[*n] = PredictProbability(&m, x);
		label[(*n)++] = ds->label[i];
	}
	pfree(x);
}

void
TrainCrossValidate(CrTrainData *td, CrTrainParams *tp, CrCvResult *res)
{
	CrDataset  *ds = td->ds;
	int			k = td->nfolds;
	bool	   *exclude = HugeAlloc(sizeof(bool) * Max(ds->nrows, 1));
	double	   *prob = HugeAlloc(sizeof(double) * Max(td->ntrain, 1));
	double	   *label = HugeAlloc(sizeof(double) * Max(td->ntrain, 1));
	double		sum = 0.0,
				sum2 = 0.0;
	instr_time	t0,
				t1;

	INSTR_TIME_SET_CURRENT(t0);
	res->k = k;
	res->folds = palloc0(sizeof(CrMetrics) * k);
	for (int f = 0; f < k; f++)
	{
		int64		n;
		MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk fold",
												  ALLOCSET_DEFAULT_SIZES);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < ds->nrows; i++)
			exclude[i] = td->fold[i] < 0 || td->fold[i] == f;
		if (tp->algorithm == CR_ALGO_LOGISTIC)
			CvLogistic(td, tp, f, exclude, prob, label, &n);
		else
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("params.cv is not available for trees yet")));
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		MetricsCompute(prob, label, n, tp->scoring.threshold, &res->folds[f]);
		sum += res->folds[f].auc;
		sum2 += res->folds[f].auc * res->folds[f].auc;
	}
	res->auc_mean = sum / k;
	/* the sample standard deviation over the folds */
	res->auc_sd = sqrt(Max(sum2 - sum * sum / k, 0.0) / (k - 1));
	HugeFree(exclude);
	HugeFree(prob);
	HugeFree(label);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	res->seconds = INSTR_TIME_GET_DOUBLE(t1);
}

/* mean and sample sd of one metric over the folds, as "name": {"mean", "sd"} */
static void
AppendMeanSd(StringInfo buf, const char *name, const CrCvResult *res, size_t offset)
{
	double		sum = 0.0,
				sum2 = 0.0;

	for (int f = 0; f < res->k; f++)
	{
		double		v = *(const double *) ((const char *) &res->folds[f] + offset);

		sum += v;
		sum2 += v * v;
	}
	appendStringInfo(buf, ", \"%s\": {\"mean\": ", name);
	CrAppendDouble(buf, sum / res->k);
	appendStringInfoString(buf, ", \"sd\": ");
	CrAppendDouble(buf, sqrt(Max(sum2 - sum * sum / res->k, 0.0) / (res->k - 1)));
	appendStringInfoChar(buf, '}');
}

/* "cv": {"k", "auc": {"mean", "sd"}, ..., "folds": [...], "seconds"} */
void
TrainCvAppendJson(StringInfo buf, const CrCvResult *res)
{
	appendStringInfo(buf, "{\"k\": %d", res->k);
	AppendMeanSd(buf, "auc", res, offsetof(CrMetrics, auc));
	AppendMeanSd(buf, "ks", res, offsetof(CrMetrics, ks));
	AppendMeanSd(buf, "gini", res, offsetof(CrMetrics, gini));
	AppendMeanSd(buf, "log_loss", res, offsetof(CrMetrics, log_loss));
	AppendMeanSd(buf, "brier", res, offsetof(CrMetrics, brier));
	appendStringInfoString(buf, ", \"folds\": [");
	for (int f = 0; f < res->k; f++)
	{
		const CrMetrics *m = &res->folds[f];

		appendStringInfo(buf, "%s{\"fold\": %d, \"rows\": " INT64_FORMAT ", \"positives\": " INT64_FORMAT,
						 f > 0 ? ", " : "", f, m->rows, m->positives);
		appendStringInfoString(buf, ", \"auc\": ");
		CrAppendDouble(buf, m->auc);
		appendStringInfoString(buf, ", \"ks\": ");
		CrAppendDouble(buf, m->ks);
		appendStringInfoString(buf, ", \"log_loss\": ");
		CrAppendDouble(buf, m->log_loss);
		appendStringInfoString(buf, ", \"brier\": ");
		CrAppendDouble(buf, m->brier);
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoString(buf, "], \"seconds\": ");
	CrAppendDouble(buf, res->seconds);
	appendStringInfoChar(buf, '}');
}
