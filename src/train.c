/*
 * train.c
 *	  cr_train: load, split, impute, fit, evaluate, encode and register a
 *	  model version, all in the caller's transaction.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "dataset.h"
#include "binning.h"
#include "drift.h"
#include "holdout.h"
#include "random.h"
#include "gbm.h"
#include "hugemem.h"
#include "logit.h"
#include "metrics.h"
#include "model.h"
#include "params.h"
#include "progress.h"
#include "predict.h"
#include "registry.h"
#include "threads.h"
#include "train.h"

PG_FUNCTION_INFO_V1(cr_train);

/* Append a JSON fragment: prefix (e.g. ", \"key\": ") then the number. */
static void
AppendKeyDouble(StringInfo buf, const char *prefix, double v)
{
	appendStringInfoString(buf, prefix);
	CrAppendDouble(buf, v);
}

/* -------------------------------------------------------------- helpers */

static Datum
JsonbFromText(const char *s)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(s));
}

/* --------------------------------------------------------- the fitters */

/* What a trainer hands back besides the model it fills in. */

/*
 * The metrics of a fit: on the holdout's probabilities when there is a
 * holdout (and the training AUC apart), else on the training rows'.
 */
void
TrainEvaluate(TrainFit *fit, double threshold,
			double *hold_prob, const double *hold_label, int64 nhold,
			double *train_prob, const double *train_label, int64 ntrain)
{
	if (nhold > 0)
	{
		MetricsCompute(hold_prob, hold_label, nhold, threshold, &fit->eval);
		fit->train_auc = MetricsAuc(train_prob, train_label, ntrain);
		fit->eval_prob = hold_prob;
		fit->eval_label = hold_label;
		fit->neval = nhold;
	}
	else
	{
		MetricsCompute(train_prob, train_label, ntrain, threshold, &fit->eval);
		fit->train_auc = fit->eval.auc;
		fit->eval_prob = train_prob;
		fit->eval_label = train_label;
		fit->neval = ntrain;
	}
}

/*
 * params.calibration: fitted on the holdout's PDs and labels (without a
 * holdout, on the cross-validation's out-of-fold ones), after which the
 * metrics are those of the calibrated PDs; metrics.calibration keeps the
 * method, what was fitted, on which rows, and their Brier score and log
 * loss before and after.
 */
/* The calibrated PDs of n uncalibrated ones. */
static double *
CalibratePds(const CrCalibration *c, const double *prob, int64 n)
{
	double	   *cal = HugeAlloc(sizeof(double) * Max(n, 1));

	for (int64 i = 0; i < n; i++)
	{
		double		p = Min(Max(prob[i], 1e-300), 1.0 - 1e-16);

		cal[i] = CalibrationApply(c, log(p / (1.0 - p)));
	}
	return cal;
}

static void
TrainCalibrate(const CrTrainParams *tp, CrModel *model, TrainFit *fit, int64 nhold,
			   const CrCvResult *cv)
{
	CrMetrics	before;
	CrMetrics	after;
	const CrCalibration *c;
	const double *prob = fit->eval_prob;
	const double *label = fit->eval_label;
	int64		n = fit->neval;
	bool		on_cv = nhold == 0;

	/* the holdout's PDs; without a holdout, the cross-validation's out-of-fold ones */
	if (on_cv)
	{
		if (cv == NULL || cv->oof_prob == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("params.calibration without a holdout needs the cross-validation's out-of-fold PDs, which a search does not keep"),
					 errhint("Give cr_tune a holdout (params.holdout above 0) to calibrate on.")));
		prob = cv->oof_prob;
		label = cv->oof_label;
		n = cv->n_oof;
	}
	model->calibration = CalibrationFit(tp->calibration, prob, label, n);
	c = model->calibration;
	before = fit->eval;
	if (on_cv)
	{
		MetricsCompute(prob, label, n, tp->scoring.threshold, &before);
		MetricsCompute(CalibratePds(c, prob, n), label, n, tp->scoring.threshold, &after);
	}
	/* the metrics' rows: on a holdout, the very rows the map was fitted on */
	fit->eval_prob = CalibratePds(c, fit->eval_prob, fit->neval);
	MetricsCompute(fit->eval_prob, fit->eval_label, fit->neval, tp->scoring.threshold, &fit->eval);
	if (!on_cv)
		after = fit->eval;
	appendStringInfo(&fit->extra, ", \"calibration\": {\"method\": \"%s\"",
					 CalibrationMethodName(c->method));
	if (c->method == CR_CALIBRATION_PLATT)
	{
		AppendKeyDouble(&fit->extra, ", \"a\": ", c->a);
		AppendKeyDouble(&fit->extra, ", \"b\": ", c->b);
	}
	else
		appendStringInfo(&fit->extra, ", \"points\": %d", c->npoints);
	appendStringInfo(&fit->extra, ", \"fitted_on\": \"%s\", \"rows\": " INT64_FORMAT,
					 on_cv ? "cv" : "holdout", n);
	AppendKeyDouble(&fit->extra, ", \"brier_before\": ", before.brier);
	AppendKeyDouble(&fit->extra, ", \"brier_after\": ", after.brier);
	AppendKeyDouble(&fit->extra, ", \"log_loss_before\": ", before.log_loss);
	AppendKeyDouble(&fit->extra, ", \"log_loss_after\": ", after.log_loss);
	appendStringInfoChar(&fit->extra, '}');
}

/*
 * The design of a logistic fit: a number's column as it is, and for a
 * categorical feature one 0/1 column per group (level, other, missing) with
 * training rows, but the reference level.
 */
typedef struct LogitDesign
{
	int			n;
	double	  **cols;
	double	   *impute;
	char	  **names;
	int		   *feature;		/* per column: the feature */
	int		   *group;			/* per column: the group, or -1 for a number */
} LogitDesign;

static void
TrainLogitDesign(CrDataset *ds, const bool *holdout, const double *impute, LogitDesign *d)
{
	int			p = ds->nfeatures;
	int			cap = p;

	d->n = 0;
	for (int j = 0; j < p; j++)
		if (ds->cats != NULL && ds->cats[j] != NULL)
			cap += ds->cats[j]->nlevels + 1;
	d->cols = palloc(sizeof(double *) * cap);
	d->impute = palloc(sizeof(double) * cap);
	d->names = palloc(sizeof(char *) * cap);
	d->feature = palloc(sizeof(int) * cap);
	d->group = palloc(sizeof(int) * cap);
	for (int j = 0; j < p; j++)
	{
		const CrCategoryMap *map = ds->cats ? ds->cats[j] : NULL;
		int64		count[CR_MAX_LEVELS + 2];

		if (map == NULL)
		{
			d->cols[d->n] = ds->cols[j];
			d->impute[d->n] = impute[j];
			d->names[d->n] = ds->names[j];
			d->feature[d->n] = j;
			d->group[d->n++] = -1;
			continue;
		}
		memset(count, 0, sizeof(count));
		for (int64 i = 0; i < ds->nrows; i++)
			if (!holdout[i])
				count[ModelLogitGroup(map, ds->cols[j][i])]++;
		for (int g = 0; g < map->nlevels + 2; g++)
		{
			double	   *col;

			if (g == map->reference || count[g] == 0)
				continue;
			if (d->n >= CR_MAX_FEATURES)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("a logistic model takes at most %d columns after dummy coding",
								CR_MAX_FEATURES),
						 errhint("Raise params.min_category_count to pool rare levels.")));
			CHECK_FOR_INTERRUPTS();
			col = HugeAlloc(sizeof(double) * Max(ds->nrows, 1));
			for (int64 i = 0; i < ds->nrows; i++)
				col[i] = ModelLogitGroup(map, ds->cols[j][i]) == g ? 1.0 : 0.0;
			d->cols[d->n] = col;
			d->impute[d->n] = 0.0;
			d->names[d->n] = CategoryLevelName(ds->names[j], map, g);
			d->feature[d->n] = j;
			d->group[d->n++] = g;
		}
	}
}

/*
 * Fit a logistic model on the rows not excluded, into model (whose
 * features, cats and impute, the means of the rows fitted on, are set):
 * its coefficients, a categorical feature's mean coefficient as its impute,
 * and, when importance is not NULL, each feature's importance.
 */
CrLogitFit *
TrainLogitFit(CrDataset *ds, const bool *exclude, const CrTrainParams *tp,
			  CrModel *model, double *importance)
{
	int			p = ds->nfeatures;
	CrLogitFit *lf;
	LogitDesign d;
	int64		nfit = 0;

	model->algorithm = CR_ALGO_LOGISTIC;
	if (ds->cats == NULL)
	{
		lf = LogitFit(ds->nrows, p, ds->cols, ds->label, exclude, model->impute,
					  ds->names, &tp->logit);
		model->coef = lf->coef;
		model->std_error = lf->std_error;
		for (int j = 0; importance && j < p; j++)
			importance[j] = fabs(lf->std_coef[j + 1]);
		return lf;
	}

	/* coefficients per group: the reference's and absent groups' are 0 */
	TrainLogitDesign(ds, exclude, model->impute, &d);
	lf = LogitFit(ds->nrows, d.n, d.cols, ds->label, exclude, d.impute,
				  d.names, &tp->logit);
	ModelSetCoefLayout(model);
	model->coef = palloc0(sizeof(double) * model->ncoef);
	model->std_error = palloc(sizeof(double) * model->ncoef);
	for (int k = 0; k < model->ncoef; k++)
		model->std_error[k] = NAN;
	model->coef[0] = lf->coef[0];
	model->std_error[0] = lf->std_error[0];
	for (int c = 0; c < d.n; c++)
	{
		int			k = model->coef_start[d.feature[c]] + Max(d.group[c], 0);

		model->coef[k] = lf->coef[c + 1];
		model->std_error[k] = lf->std_error[c + 1];
		if (d.group[c] < 0)
		{
			if (importance)
				importance[d.feature[c]] = fabs(lf->std_coef[c + 1]);
		}
		else
			HugeFree(d.cols[c]);
	}

	/*
	 * A categorical feature's mean coefficient over the rows fitted on is
	 * what explanations measure a level against; its importance is the
	 * standard deviation of its coefficient, as |std_coef| is a number's.
	 */
	for (int64 i = 0; i < ds->nrows; i++)
		nfit += !exclude[i];
	for (int j = 0; j < p; j++)
	{
		const CrCategoryMap *map = ds->cats[j];
		double		sum = 0.0,
					sum2 = 0.0;

		if (map == NULL)
			continue;
		for (int64 i = 0; i < ds->nrows; i++)
			if (!exclude[i])
			{
				double		c = model->coef[model->coef_start[j] +
											ModelLogitGroup(map, ds->cols[j][i])];

				sum += c;
				sum2 += c * c;
			}
		model->impute[j] = sum / nfit;
		if (importance)
			importance[j] = sqrt(Max(sum2 / nfit - model->impute[j] * model->impute[j], 0.0));
	}
	return lf;
}

/* Logistic regression or a scorecard: fit, score every row, metrics and importance. */
static void
TrainLogistic(CrDataset *ds, const bool *holdout, int64 ntrain, int64 nhold,
			  const CrTrainParams *tp, CrModel *model, TrainFit *fit)
{
	int			p = ds->nfeatures;
	CrLogitFit *lf;
	double	   *x = palloc(sizeof(double) * p);
	bool		has_holdout = tp->holdout > 0;
	double	   *tp_prob;
	double	   *tp_label;
	double	   *hp_prob = NULL;
	double	   *hp_label = NULL;
	int64		h = 0,
				t = 0;
	double	   *importance = palloc0(sizeof(double) * p);

	lf = tp->algorithm == CR_ALGO_SCORECARD
		? ScorecardFit(ds, holdout, tp, model, importance, &fit->extra)
		: TrainLogitFit(ds, holdout, tp, model, importance);

	/* score every row once: holdout metrics (or training ones) and train AUC */
	tp_prob = HugeAlloc(sizeof(double) * ntrain);
	tp_label = HugeAlloc(sizeof(double) * ntrain);
	if (has_holdout)
	{
		hp_prob = HugeAlloc(sizeof(double) * nhold);
		hp_label = HugeAlloc(sizeof(double) * nhold);
	}
	for (int64 i = 0; i < ds->nrows; i++)
	{
		double		prob;

		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < p; j++)
			x[j] = ds->cols[j][i];
		prob = PredictProbability(model, x);
		if (holdout[i])
		{
			hp_prob[h] = prob;
			hp_label[h++] = ds->label[i];
		}
		else
		{
			tp_prob[t] = prob;
			tp_label[t++] = ds->label[i];
		}
	}
	TrainEvaluate(fit, tp->scoring.threshold, hp_prob, hp_label, has_holdout ? nhold : 0,
				tp_prob, tp_label, ntrain);

	appendStringInfo(&fit->extra, ", \"iterations\": %d", lf->iterations);
	AppendKeyDouble(&fit->extra, ", \"log_likelihood\": ", lf->log_likelihood);
	AppendKeyDouble(&fit->extra, ", \"null_log_likelihood\": ", lf->null_log_likelihood);
	AppendKeyDouble(&fit->extra, ", \"pseudo_r2\": ",
					1.0 - lf->log_likelihood / lf->null_log_likelihood);

	/* importance of a logistic model: |coefficient| per standard deviation */
	appendStringInfoChar(&fit->importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(&fit->importance, ", ");
		escape_json(&fit->importance, ds->names[j]);
		AppendKeyDouble(&fit->importance, ": ", importance[j]);
	}
	appendStringInfoChar(&fit->importance, '}');
}

/*
 * The run's rows binned for trees, made at the first tree fit, in the run's
 * memory; the float columns go then (TrainLoad has built the drift
 * baselines from them), so a cross-validation or a search bins once.
 */
CrGbmBins *
TrainGbmBins(CrTrainData *td, const CrTrainParams *tp)
{
	if (td->bins == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(td->cxt);

		ProgressPhase("binning", td->ds->nrows);
		td->bins = GbmBin(td->ds, td->holdout, &tp->gbm);
		for (int f = 0; f < td->ds->nfeatures; f++)
		{
			HugeFree(td->ds->cols[f]);
			td->ds->cols[f] = NULL;
		}
		MemoryContextSwitchTo(old);
	}
	return td->bins;
}

/* Gradient-boosted trees: fit, metrics from the trainer's own scores. */
static void
TrainGbm(CrTrainData *td, CrTrainParams *tp, CrModel *model, TrainFit *fit)
{
	CrDataset  *ds = td->ds;
	int			p = ds->nfeatures;
	CrGbmResult *res;

	tp->gbm.seed = (uint64) tp->seed;
	tp->gbm.monotone = ParamsMonotone(tp, ds->names, ds->nfeatures);
	res = GbmBoost(TrainGbmBins(td, tp), &tp->gbm);

	model->algorithm = CR_ALGO_GBM;
	model->forest = res->forest;

	TrainEvaluate(fit, tp->scoring.threshold, res->holdout_prob, res->holdout_label,
				res->nholdout, res->train_prob, res->train_label, res->ntrain);
	TrainGbmReport(fit, res, ds->names, p);
}

/* A tree fit's own metrics (its trees, nodes, early stopping) and its importance. */
void
TrainGbmReport(TrainFit *fit, const CrGbmResult *res, char **names, int p)
{
	appendStringInfo(&fit->extra, ", \"n_trees\": %d, \"trees_built\": %d, \"best_iteration\": %d",
					 res->forest.ntrees, res->trees_built, res->best_iteration);
	if (!isnan(res->best_score))
		AppendKeyDouble(&fit->extra, ", \"best_holdout_log_loss\": ", res->best_score);
	appendStringInfo(&fit->extra, ", \"nodes\": %d, \"threads\": %d",
					 res->forest.tree_start[res->forest.ntrees], res->threads_used);
	AppendKeyDouble(&fit->extra, ", \"bin_seconds\": ", res->bin_seconds);

	/* importance: total gain, total cover and split count per feature */
	appendStringInfoChar(&fit->importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(&fit->importance, ", ");
		escape_json(&fit->importance, names[j]);
		AppendKeyDouble(&fit->importance, ": {\"gain\": ", res->gain[j]);
		AppendKeyDouble(&fit->importance, ", \"cover\": ", res->cover[j]);
		appendStringInfo(&fit->importance, ", \"splits\": " INT64_FORMAT "}", res->splits[j]);
	}
	appendStringInfoChar(&fit->importance, '}');
}

/*
 * The split must leave training rows, a holdout when one was asked for,
 * and both classes among the training rows.  Returns the training rows'
 * defaults.
 */
static int64
TrainCheckSplit(const CrDataset *ds, const bool *holdout, int64 ntrain, int64 nhold,
				double holdout_share, const char *label)
{
	int64		pos = 0;

	for (int64 i = 0; i < ds->nrows; i++)
		if (!holdout[i])
			pos += ds->label[i] > 0.5;
	TrainCheckCounts(ds->nrows, ntrain, nhold, pos, holdout_share, label);
	return pos;
}

/* The same, from the counts: rows, training and holdout rows, training defaults. */
void
TrainCheckCounts(int64 nrows, int64 ntrain, int64 nhold, int64 pos, double holdout_share,
				 const char *label)
{
	if (ntrain == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout of %.15g leaves no training rows out of " INT64_FORMAT, holdout_share, nrows),
				 errhint("Use a smaller params.holdout.")));
	if (holdout_share > 0 && nhold == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout of %g selected no rows out of " INT64_FORMAT, holdout_share, nrows),
				 errhint("Use more rows, a larger holdout, or params.holdout = 0 to train and evaluate on every row.")));
	if (pos == 0 || pos == ntrain)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label column \"%s\" has a single class (%s) in the " INT64_FORMAT " training rows",
						label, pos == 0 ? "all 0" : "all 1", ntrain),
				 errhint("A model needs both defaults (1) and non-defaults (0).")));
}

/*
 * The out-of-time split (params.split): the rows the loader found at or
 * past the cut-off are the holdout.  Each side must have rows; the stored
 * params.holdout becomes the share held out.
 */
static bool *
TrainTimeSplit(CrDataset *ds, CrTrainParams *tp, int64 *ntrain, int64 *nhold)
{
	*ntrain = *nhold = 0;
	for (int64 i = 0; i < ds->nrows; i++)
	{
		if (ds->split_holdout[i])
			(*nhold)++;
		else
			(*ntrain)++;
	}
	if (*nhold == 0 || *ntrain == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("split on \"%s\" from %s leaves no %s rows out of " INT64_FORMAT,
						tp->split_column, tp->split_from, *nhold == 0 ? "holdout" : "training",
						ds->nrows),
				 errdetail("Rows whose \"%s\" is at or past %s are the holdout, the others train.",
						   tp->split_column, tp->split_from),
				 errhint("Choose a holdout_from %s.", *nhold == 0 ? "earlier" : "later")));
	tp->holdout = (double) *nhold / (double) ds->nrows;
	return ds->split_holdout;
}

/*
 * The weights of labels 0 and 1 for the fit: params.class_weight as given,
 * or "balanced" (n / (2 n_c) over the ntrain training rows, pos of them
 * defaults, as scikit-learn defines it), or 1 and 1.
 */
void
TrainClassWeights(int64 ntrain, int64 pos, CrTrainParams *tp)
{
	double		w[2] = {tp->class_weights[0], tp->class_weights[1]};

	if (tp->class_weight == CR_CLASS_WEIGHT_BALANCED)
	{
		/* TrainCheckSplit has made sure that both classes are there */
		w[0] = (double) ntrain / (2.0 * (double) (ntrain - pos));
		w[1] = (double) ntrain / (2.0 * (double) pos);
	}
	else if (tp->class_weight == CR_CLASS_WEIGHT_NONE)
		w[0] = w[1] = 1.0;
	tp->gbm.class_weight[0] = tp->logit.class_weight[0] = w[0];
	tp->gbm.class_weight[1] = tp->logit.class_weight[1] = w[1];
}

/*
 * params.reference must name categorical features, and params.monotone
 * numbers only: known once the source's columns are.
 */
static void
TrainCheckReference(const CrDataset *ds, const CrTrainParams *tp)
{
	for (int i = 0; i < tp->nreference; i++)
	{
		int			j = 0;

		while (j < ds->nfeatures && strcmp(ds->names[j], tp->reference_feature[i]) != 0)
			j++;
		if (j == ds->nfeatures || !DatasetIsCategorical(ds, j))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("params.reference names \"%s\", which is not a categorical feature",
							tp->reference_feature[i]),
					 errhint("Give reference levels for text, enum or params.categorical columns only.")));
	}
	for (int i = 0; i < tp->nmonotone; i++)
		for (int j = 0; j < ds->nfeatures; j++)
			if (strcmp(ds->names[j], tp->monotone[i].feature) == 0 &&
				DatasetIsCategorical(ds, j) && tp->monotone[i].direction != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("params.monotone names categorical feature \"%s\"",
								tp->monotone[i].feature),
						 errhint("A monotone constraint needs an ordered feature; its levels have no order.")));
}

/*
 * The drift baselines of the features, from the training rows, a feature
 * per task of the training pool (each worker with its own sample buffer);
 * stored in feature order by the backend.
 */
typedef struct BaselineJob
{
	CrDataset  *ds;
	const bool *exclude;
	uint64		seed;
	CrBaselineWork *out;		/* per feature */
	double	   *work;			/* per worker: BinWorkBytes(nrows) */
	Size		work_doubles;
} BaselineJob;

static void
BaselineTask(void *arg, int j, int worker)
{
	BaselineJob *job = (BaselineJob *) arg;
	CrDataset  *ds = job->ds;

	if (ds->cats != NULL && ds->cats[j] != NULL)
		DriftBaselineComputeCategories(&job->out[j], ds->cols[j], job->exclude, ds->nrows,
									   ds->cats[j]->nlevels);
	else
		DriftBaselineCompute(&job->out[j], ds->cols[j], job->exclude, ds->nrows,
							 job->seed + j, job->work + job->work_doubles * worker);
}

void
TrainBaselines(CrDataset *ds, const bool *exclude, const CrTrainParams *tp, CrBaseline *out)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk baselines",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			threads = tp->algorithm == CR_ALGO_GBM ? tp->gbm.threads : tp->logit.threads;
	CrPool	   *pool = PoolCreate(Min(Max(threads, 1), Max(ds->nfeatures, 1)));
	BaselineJob job;

	job.ds = ds;
	job.exclude = exclude;
	job.seed = tp->seed;
	job.out = palloc(sizeof(CrBaselineWork) * Max(ds->nfeatures, 1));
	job.work_doubles = TYPEALIGN(8, BinWorkBytes(ds->nrows)) / sizeof(double);
	job.work = HugeAlloc(sizeof(double) * job.work_doubles * PoolSize(pool));
	PoolRun(pool, ds->nfeatures, BaselineTask, &job);
	HugeFree(job.work);
	MemoryContextSwitchTo(old);
	for (int j = 0; j < ds->nfeatures; j++)
		DriftBaselineFinish(&out[j], &job.out[j]);
	MemoryContextDelete(cxt);
	CHECK_FOR_INTERRUPTS();
}

/*
 * credit_risk.threads is a superuser's setting: a role that may not set it
 * may not go past it for its own run either.
 */
static void
TrainCheckThreads(const CrTrainParams *tp)
{
	if (tp->algorithm == CR_ALGO_GBM && tp->gbm.threads > cr_threads && !superuser() &&
		pg_parameter_aclcheck("credit_risk.threads", GetUserId(), ACL_SET) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("params.threads is %d, more than credit_risk.threads (%d)",
						tp->gbm.threads, cr_threads),
				 errdetail("Only a role that may set credit_risk.threads may ask for more threads than it allows."),
				 errhint("Ask for at most %d threads, or ask a superuser to raise credit_risk.threads for your role.",
						 cr_threads)));
}

/*
 * k folds need k training rows of each label (pos of the ntrain are
 * defaults): each fold must hold both for its AUC.
 */
static void
TrainCheckFolds(int64 ntrain, int64 pos, int k)
{
	if (k > pos || k > ntrain - pos)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.cv of %d is more than the training rows of a label (" INT64_FORMAT " defaults, " INT64_FORMAT " others)",
						k, pos, ntrain - pos),
				 errhint("Every fold needs rows of both labels: use fewer folds.")));
}

/* ------------------------------------------------------------- cr_train */

/*
 * Start a run from the SQL arguments: name, source, label, algorithm,
 * features (NULL: every numeric column) and params (NULL: none).
 */
void
TrainBegin(TrainRun *run, FunctionCallInfo fcinfo, ArrayType *features,
		   Jsonb *params)
{
	CrTrainParams *tp = &run->tp;
	CrDatasetSpec *spec = &run->spec;

	memset(run, 0, sizeof(TrainRun));
	INSTR_TIME_SET_CURRENT(run->start);
	run->callercxt = CurrentMemoryContext;

	CrCheckSettings();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, source, label and algorithm must not be null")));
	if (get_call_result_type(fcinfo, NULL, &run->rettupdesc) != TYPEFUNC_COMPOSITE)
		run->rettupdesc = NULL;

	run->name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	run->source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	run->label = text_to_cstring(PG_GETARG_TEXT_PP(2));
	run->algorithm = text_to_cstring(PG_GETARG_TEXT_PP(3));

	RegistryCheckName(run->name);
	if (strcmp(run->algorithm, "gbm") == 0)
		tp->algorithm = CR_ALGO_GBM;
	else if (strcmp(run->algorithm, "logistic") == 0)
		tp->algorithm = CR_ALGO_LOGISTIC;
	else if (strcmp(run->algorithm, "scorecard") == 0)
		tp->algorithm = CR_ALGO_SCORECARD;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown algorithm \"%s\"", run->algorithm),
				 errhint("Use 'gbm' (gradient-boosted trees), 'logistic' or 'scorecard' (logistic regression on WoE bins).")));

	run->params = params;
	ParamsParse(params, tp);
	if (tp->algorithm == CR_ALGO_SCORECARD && tp->cv > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("params.cv is not available for scorecards"),
				 errhint("Judge a scorecard on its holdout, or cross-validate a logistic model.")));
	TrainCheckThreads(tp);

	spec->max_bytes = (Size) cr_train_memory_kb * 1024;
	/* the logistic fit keeps a row's label and, under a holdout, its index */
	spec->trainer_bytes_per_row = tp->algorithm == CR_ALGO_GBM
		? GbmBytesPerRow(0) : sizeof(double) + sizeof(int64);
	/* a scorecard fits on a column of WoE per feature */
	spec->trainer_bytes_per_feature_row = tp->algorithm == CR_ALGO_GBM
		? GbmBytesPerRow(1) - GbmBytesPerRow(0)
		: tp->algorithm == CR_ALGO_SCORECARD ? sizeof(double) : 0;
	spec->source = run->source;
	spec->label = run->label;
	spec->key = tp->key;
	spec->key_seed = (uint64) tp->seed;
	spec->split_column = tp->split_column;
	spec->split_from = tp->split_from;
	spec->categorical = tp->categorical;
	spec->ncategorical = tp->ncategorical;
	if (features != NULL)
		spec->features = DatasetFeatureNames(features, &spec->nfeatures,
											 "Pass NULL to use every numeric column.");
}

/*
 * Load the rows (in an SPI connection the run keeps until TrainFinish) and
 * make everything every fit shares: the split, the class weights, the
 * levels of categorical features, the imputation means, the drift
 * baselines, the folds of params.cv.
 */
void
TrainLoad(TrainRun *run)
{
	CrTrainParams *tp = &run->tp;
	CrTrainData *td = &run->td;
	CrModel    *model = &td->skeleton;
	CrDataset  *ds;
	int			p;

	/* everything the fit allocates lives here and goes at the end */
	run->traincxt = AllocSetContextCreate(run->callercxt, "credit_risk train",
										  ALLOCSET_DEFAULT_SIZES);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	MemoryContextSwitchTo(run->traincxt);
	td->cxt = run->traincxt;
	ProgressPhase("loading", -1);
	ds = td->ds = DatasetLoad(&run->spec);
	ProgressPhase("preparing", ds->nrows);
	INSTR_TIME_SET_CURRENT(run->loaded);
	p = ds->nfeatures;
	if (p > CR_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a model takes at most %d features, not %d", CR_MAX_FEATURES, p)));
	for (int j = 0; j < p; j++)
		if (strlen(ds->names[j]) > CR_MAX_NAME_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("feature name \"%s\" is longer than %d bytes", ds->names[j],
							CR_MAX_NAME_LEN)));

	if (tp->split_column != NULL)
		td->holdout = TrainTimeSplit(ds, tp, &td->ntrain, &td->nhold);
	else
		td->holdout = HoldoutSplit(ds, tp->seed, tp->holdout, &td->ntrain, &td->nhold);
	run->positives = TrainCheckSplit(ds, td->holdout, td->ntrain, td->nhold, tp->holdout,
									 run->label);
	TrainClassWeights(td->ntrain, run->positives, tp);
	TrainCheckReference(ds, tp);
	/* the levels of categorical features, from the training rows */
	DatasetFinishCategories(ds, td->holdout, tp->min_category_count, CR_MAX_LEVELS,
							ParamsReference, tp);
	model->cats = ds->cats;
	/* missing values are imputed with the mean of the training rows */
	model->impute = DatasetColumnMeans(ds, td->holdout, "training");
	for (int j = 0; j < p; j++)
		if (ds->cats != NULL && ds->cats[j] != NULL)
			model->impute[j] = 0.0;	/* logistic: set by the fit */

	model->nfeatures = p;
	model->features = ds->names;
	model->scoring = tp->scoring;
	/* drift baselines of the features, from the training rows (before a tree fit frees them) */
	model->baseline = palloc0(sizeof(CrBaseline) * (p + 1));
	model->drift_moderate = tp->drift_moderate;
	model->drift_major = tp->drift_major;
	TrainBaselines(ds, td->holdout, tp, model->baseline);

	tp->gbm.seed = (uint64) tp->seed;
	tp->gbm.monotone = ParamsMonotone(tp, ds->names, ds->nfeatures);
	if (tp->cv > 0)
	{
		TrainCheckFolds(td->ntrain, run->positives, tp->cv);
		td->nfolds = tp->cv;
		td->fold = HoldoutFolds(ds, td->holdout, tp->seed, tp->cv);
	}
}

/*
 * The final fit with tp (run->tp, or a search's best), registered as a new
 * version with its metrics (cv: its cross-validation, or NULL); params_extra,
 * when not NULL, is a JSON member (", \"key\": value") the stored params
 * get besides the effective ones.  Returns the registry row.
 */
Datum
TrainFinish(TrainRun *run, CrTrainParams *tp, const CrCvResult *cv, const char *params_extra)
{
	CrTrainData *td = &run->td;
	CrDataset  *ds = td->ds;
	CrModel		model = td->skeleton;
	TrainFit	fit;

	memset(&fit, 0, sizeof(fit));
	initStringInfo(&fit.extra);
	initStringInfo(&fit.importance);
	if (tp->algorithm != CR_ALGO_GBM)
		TrainLogistic(ds, td->holdout, td->ntrain, td->nhold, tp, &model, &fit);
	else
		TrainGbm(td, tp, &model, &fit);
	if (tp->calibration != CR_CALIBRATION_NONE)
	{
		ProgressPhase("calibrating", -1);
		TrainCalibrate(tp, &model, &fit, td->nhold, cv);
	}
	return TrainRegister(run, tp, &model, &fit, cv, params_extra, td->ntrain, td->nhold);
}

/*
 * Register a fitted model (its metrics in fit; cv: its cross-validation,
 * or NULL) as the run's new version, trained on ntrain rows with nhold
 * held out; params_extra as TrainFinish's.  Returns the registry row.
 */
Datum
TrainRegister(TrainRun *run, CrTrainParams *tp, CrModel *model, TrainFit *fit,
			  const CrCvResult *cv, const char *params_extra, int64 ntrain, int64 nhold)
{
	int			p = model->nfeatures;
	bytea	   *bytes;
	StringInfoData metrics_json;
	instr_time	fitted;
	instr_time	elapsed;
	instr_time	loaded = run->loaded;
	Datum		params;
	Datum		result;

	INSTR_TIME_SET_CURRENT(fitted);
	ProgressPhase("evaluating", -1);

	/* ... and of the score, on the rows the metrics were computed on */
	DriftBaselineBuild(&model->baseline[p], fit->eval_prob, NULL, fit->neval, tp->seed, NULL);

	bytes = ModelEncode(model);

	initStringInfo(&metrics_json);
	appendStringInfo(&metrics_json, "{\"evaluated_on\": \"%s\", ",
					 tp->holdout > 0 ? "holdout" : "train");
	MetricsAppendJson(&metrics_json, &fit->eval);
	AppendKeyDouble(&metrics_json, ", \"train_auc\": ", fit->train_auc);
	if (tp->class_weight != CR_CLASS_WEIGHT_NONE)
	{
		AppendKeyDouble(&metrics_json, ", \"class_weights\": [", tp->gbm.class_weight[0]);
		AppendKeyDouble(&metrics_json, ", ", tp->gbm.class_weight[1]);
		appendStringInfoChar(&metrics_json, ']');
	}
	if (cv != NULL)
	{
		appendStringInfoString(&metrics_json, ", \"cv\": ");
		TrainCvAppendJson(&metrics_json, cv);
	}
	appendStringInfoString(&metrics_json, fit->extra.data);
	INSTR_TIME_SUBTRACT(fitted, loaded);
	INSTR_TIME_SUBTRACT(loaded, run->start);
	AppendKeyDouble(&metrics_json, ", \"load_seconds\": ", INSTR_TIME_GET_DOUBLE(loaded));
	AppendKeyDouble(&metrics_json, ", \"fit_seconds\": ", INSTR_TIME_GET_DOUBLE(fitted));
	appendStringInfoChar(&metrics_json, '}');

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, run->start);

	params = JsonbPGetDatum(ParamsToJsonb(tp));
	if (params_extra != NULL)
	{
		char	   *text = JsonbToCString(NULL, &DatumGetJsonbP(params)->root, 0);

		/* the effective params end with their closing brace */
		text[strlen(text) - 1] = '\0';
		params = JsonbFromText(psprintf("%s%s}", text, params_extra));
	}

	/* register it (see registry_write.c); the row in the caller's context */
	ProgressPhase("registering", -1);
	{
		CrNewVersion nv;

		nv.name = run->name;
		nv.algorithm = run->algorithm;
		nv.source = run->source;
		nv.label = run->label;
		nv.features = model->features;
		nv.nfeatures = p;
		nv.params = params;
		nv.metrics = JsonbFromText(metrics_json.data);
		nv.importance = JsonbFromText(fit->importance.data);
		nv.train_rows = ntrain;
		nv.holdout_rows = nhold;
		nv.train_seconds = INSTR_TIME_GET_DOUBLE(elapsed);
		nv.model = bytes;
		result = HeapTupleGetDatum(RegistryInsertVersion(&nv, run->rettupdesc, run->callercxt));
	}
	return result;
}

/* The end of a run: the SPI connection and the run's memory go. */
void
TrainEnd(TrainRun *run)
{
	SPI_finish();
	MemoryContextSwitchTo(run->callercxt);
	MemoryContextDelete(run->traincxt);
}

Datum
cr_train(PG_FUNCTION_ARGS)
{
	TrainRun	run;
	CrCvResult	cv;
	Datum		result;

	TrainBegin(&run, fcinfo, PG_ARGISNULL(4) ? NULL : PG_GETARG_ARRAYTYPE_P(4),
			   PG_ARGISNULL(5) ? NULL : PG_GETARG_JSONB_P(5));
	if (run.rettupdesc == NULL)
		elog(ERROR, "cr_train must return credit_risk.models");
	ProgressBegin("cr_train", run.name, run.tp.verbose);
	if (run.tp.distributed)
	{
		result = TrainDistributed(&run);
		ProgressEnd();
		PG_RETURN_DATUM(result);
	}
	TrainLoad(&run);
	/* cross-validation on the training rows, before the final fit */
	if (run.tp.cv > 0)
		TrainCrossValidate(&run.td, &run.tp, &cv);
	result = TrainFinish(&run, &run.tp, run.tp.cv > 0 ? &cv : NULL, NULL);
	TrainEnd(&run);
	ProgressEnd();
	PG_RETURN_DATUM(result);
}
