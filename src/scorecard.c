/*
 * scorecard.c
 *	  Weight-of-Evidence binning (cr_woe_bins) and the information value of
 *	  features (cr_information_value); see scorecard.h.
 *
 * A number's bins start as quantile pre-bins (binning.c); a categorical
 * feature's as its levels in the order of their event rates.  Adjacent
 * bins are then merged, and only merged, so every bin stays an interval
 * (or a run of levels in rate order):
 *
 *	 1. to the trend: pool-adjacent-violators makes the event rates strictly
 *		rise (ascending) or fall (descending); peak and valley take the
 *		turning point whose rising and falling fits have the largest
 *		binomial log-likelihood;
 *	 2. a bin under min_bin_share of the rows joins the neighbour whose
 *		event rate is closer, smallest bin first;
 *	 3. while there are more than max_bins, the adjacent pair whose merge
 *		loses the least information value is merged.
 *
 * Merging two adjacent bins of a monotone (or single-peaked) sequence of
 * rates leaves it so, since the merged rate lies between the two, so steps
 * 2 and 3 keep the trend of step 1.  auto runs ascending and descending and
 * keeps the one with the larger information value (ascending on a tie).
 *
 * A bin of one class (no events, or no non-events) is kept: it is where a
 * feature separates the classes.  Its WoE would be infinite, so it counts
 * half an event and half a non-event more (WoeOf), as does a missing bin
 * of one class.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/tuplestore.h"

#include "binning.h"
#include "credit_risk.h"
#include "dataset.h"
#include "hugemem.h"
#include "logit.h"
#include "model.h"
#include "params.h"
#include "registry.h"
#include "scorecard.h"
#include "train.h"

PG_FUNCTION_INFO_V1(cr_woe_bins);
PG_FUNCTION_INFO_V1(cr_information_value);
PG_FUNCTION_INFO_V1(cr_scorecard);

#define WOE_SEED		UINT64CONST(0x5C0EC4D)	/* pre-bins of over BIN_SAMPLE_MAX values */
#define WOE_OTHER_TEXT	"(other)"

/* ---------------------------------------------------------- sequences */

/*
 * Adjacent bins, each a run first..last of the pre-bins (a number's, in
 * value order) or of the levels in rate order (a categorical feature's).
 */
typedef struct WoeSeq
{
	int			k;
	int64	   *n;
	int64	   *e;
	int		   *first;
	int		   *last;
	int64		total_n;		/* every row, missing ones too */
	int64		total_e;
} WoeSeq;

static WoeSeq *
SeqCreate(int cap, int64 total_n, int64 total_e)
{
	WoeSeq	   *s = palloc0(sizeof(WoeSeq));

	cap = Max(cap, 1);
	s->n = palloc0(sizeof(int64) * cap);
	s->e = palloc0(sizeof(int64) * cap);
	s->first = palloc0(sizeof(int) * cap);
	s->last = palloc0(sizeof(int) * cap);
	s->total_n = total_n;
	s->total_e = total_e;
	return s;
}

static WoeSeq *
SeqCopy(const WoeSeq *from)
{
	WoeSeq	   *s = SeqCreate(from->k, from->total_n, from->total_e);

	s->k = from->k;
	memcpy(s->n, from->n, sizeof(int64) * from->k);
	memcpy(s->e, from->e, sizeof(int64) * from->k);
	memcpy(s->first, from->first, sizeof(int) * from->k);
	memcpy(s->last, from->last, sizeof(int) * from->k);
	return s;
}

/* Merge bin i + 1 into bin i. */
static void
SeqMerge(WoeSeq *s, int i)
{
	int			rest = s->k - i - 2;

	Assert(i >= 0 && i + 1 < s->k);
	s->n[i] += s->n[i + 1];
	s->e[i] += s->e[i + 1];
	s->last[i] = s->last[i + 1];
	memmove(s->n + i + 1, s->n + i + 2, sizeof(int64) * rest);
	memmove(s->e + i + 1, s->e + i + 2, sizeof(int64) * rest);
	memmove(s->first + i + 1, s->first + i + 2, sizeof(int) * rest);
	memmove(s->last + i + 1, s->last + i + 2, sizeof(int) * rest);
	s->k--;
}

/* The sign of e1/n1 - e2/n2, exactly. */
static int
RateCmp(int64 e1, int64 n1, int64 e2, int64 n2)
{
#ifdef HAVE_INT128
	int128		a = (int128) e1 * n2;
	int128		b = (int128) e2 * n1;
#else
	long double a = (long double) e1 * n2;
	long double b = (long double) e2 * n1;
#endif

	return a < b ? -1 : a > b ? 1 : 0;
}

static double
Rate(const WoeSeq *s, int i)
{
	return (double) s->e[i] / (double) s->n[i];
}

/*
 * Pool adjacent violators over bins from .. end - 1: merge until the rates
 * strictly rise (dir 1) or fall (dir -1).  Returns the new end.
 */
static int
SeqPava(WoeSeq *s, int from, int end, int dir)
{
	int			i = from + 1;

	while (i < end)
	{
		if (RateCmp(s->e[i - 1], s->n[i - 1], s->e[i], s->n[i]) * dir >= 0)
		{
			SeqMerge(s, i - 1);
			end--;
			if (i - 1 > from)
				i--;
		}
		else
			i++;
	}
	return end;
}

/* Binomial log-likelihood of the rows under their bins' rates. */
static double
SeqLogLik(const WoeSeq *s)
{
	double		ll = 0.0;

	for (int i = 0; i < s->k; i++)
	{
		double		p = Rate(s, i);

		if (s->e[i] > 0)
			ll += (double) s->e[i] * log(p);
		if (s->e[i] < s->n[i])
			ll += (double) (s->n[i] - s->e[i]) * log1p(-p);
	}
	return ll;
}

/* Shape to a peak (dir 1) or a valley (dir -1): the turning point of best fit. */
static WoeSeq *
SeqTurning(const WoeSeq *s, int dir)
{
	WoeSeq	   *best = NULL;
	double		best_ll = -INFINITY;

	for (int t = 0; t < s->k; t++)
	{
		WoeSeq	   *c = SeqCopy(s);
		int			end = SeqPava(c, 0, t + 1, dir);
		double		ll;

		(void) SeqPava(c, end, c->k, -dir);
		ll = SeqLogLik(c);
		if (best == NULL || ll > best_ll)
		{
			best = c;
			best_ll = ll;
		}
		CHECK_FOR_INTERRUPTS();
	}
	return best != NULL ? best : SeqCopy(s);
}

/*
 * A bin's WoE and IV contribution; a bin without events or without
 * non-events counts half a row more of each, so both are finite.
 */
static void
WoeOf(int64 n, int64 e, int64 total_n, int64 total_e, double *woe, double *iv)
{
	double		g = (double) (n - e);
	double		ev = (double) e;
	double		G = (double) (total_n - total_e);
	double		E = (double) total_e;

	if (n == 0)
	{
		*woe = 0.0;
		*iv = 0.0;
		return;
	}
	if (e == 0 || e == n)
	{
		g += 0.5;
		ev += 0.5;
	}
	*woe = log((g / G) / (ev / E));
	*iv = (g / G - ev / E) * *woe;
}

static double
IvOf(const WoeSeq *s, int64 n, int64 e)
{
	double		woe;
	double		iv;

	WoeOf(n, e, s->total_n, s->total_e, &woe, &iv);
	return iv;
}

/* Merge bin i with its neighbour whose event rate is closer (the smaller on a tie). */
static void
SeqMergeNeighbour(WoeSeq *s, int i)
{
	int			j;

	if (i == 0)
		j = 1;
	else if (i == s->k - 1)
		j = i - 1;
	else
	{
		double		dl = fabs(Rate(s, i) - Rate(s, i - 1));
		double		dr = fabs(Rate(s, i + 1) - Rate(s, i));

		if (dl != dr)
			j = dl < dr ? i - 1 : i + 1;
		else
			j = s->n[i - 1] <= s->n[i + 1] ? i - 1 : i + 1;
	}
	SeqMerge(s, Min(i, j));
}

/* Steps 2 and 3 of the file's header. */
static void
SeqConstrain(WoeSeq *s, const CrWoeOptions *opt)
{
	int64		min_n = (int64) ceil(opt->min_bin_share * (double) s->total_n);

	while (s->k >= 2)
	{
		int			small = 0;

		for (int i = 1; i < s->k; i++)
			if (s->n[i] < s->n[small])
				small = i;
		if (s->n[small] >= min_n)
			break;
		SeqMergeNeighbour(s, small);
	}
	while (s->k > opt->max_bins)
	{
		int			best = 0;
		double		best_loss = INFINITY;

		for (int i = 0; i + 1 < s->k; i++)
		{
			double		loss = IvOf(s, s->n[i], s->e[i]) + IvOf(s, s->n[i + 1], s->e[i + 1]) -
				IvOf(s, s->n[i] + s->n[i + 1], s->e[i] + s->e[i + 1]);

			if (loss < best_loss)
			{
				best = i;
				best_loss = loss;
			}
		}
		SeqMerge(s, best);
	}
}

static double
SeqIv(const WoeSeq *s)
{
	double		iv = 0.0;

	for (int i = 0; i < s->k; i++)
		iv += IvOf(s, s->n[i], s->e[i]);
	return iv;
}

/* Shape s to a trend (not auto), then constrain it. */
static WoeSeq *
SeqShape(const WoeSeq *s, CrWoeTrend trend, const CrWoeOptions *opt)
{
	WoeSeq	   *c;

	switch (trend)
	{
		case CR_TREND_PEAK:
		case CR_TREND_VALLEY:
			c = SeqTurning(s, trend == CR_TREND_PEAK ? 1 : -1);
			/* equal neighbours where the two fits meet */
			for (int i = 1; i < c->k;)
			{
				if (RateCmp(c->e[i - 1], c->n[i - 1], c->e[i], c->n[i]) == 0)
					SeqMerge(c, i - 1);
				else
					i++;
			}
			break;
		default:
			c = SeqCopy(s);
			(void) SeqPava(c, 0, c->k, trend == CR_TREND_DESCENDING ? -1 : 1);
			break;
	}
	SeqConstrain(c, opt);
	return c;
}

/* ------------------------------------------------------------ binning */

typedef struct LevelRate
{
	int			code;
	int64		n;
	int64		e;
} LevelRate;

static int
LevelOrder(const void *a, const void *b)
{
	const LevelRate *x = a;
	const LevelRate *y = b;
	int			c = RateCmp(x->e, x->n, y->e, y->n);

	if (c != 0)
		return c;
	return x->code < y->code ? -1 : x->code > y->code;
}

CrWoeBinning *
WoeFindBins(const double *x, const double *y, const bool *exclude, int64 n,
			int ncodes, const CrWoeOptions *opt, const char *feature)
{
	CrWoeBinning *b = palloc0(sizeof(CrWoeBinning));
	int64		miss_n = 0;
	int64		miss_e = 0;
	int64		total_n = 0;
	int64		total_e = 0;
	int			npre;
	int64	   *pre_n;
	int64	   *pre_e;
	double	   *cuts = NULL;
	int			ncuts = 0;
	int		   *order;			/* pre-bin of each position of the sequence */
	WoeSeq	   *s;
	WoeSeq	   *done;

	if (ncodes > 0)
		npre = ncodes;
	else
	{
		double	   *work = palloc(BinWorkBytes(n) + sizeof(double));

		cuts = palloc(sizeof(double) * opt->prebins);
		ncuts = BinFindCuts(x, exclude, n, opt->prebins, BIN_SAMPLE_MAX, WOE_SEED, work, cuts);
		pfree(work);
		npre = ncuts + 1;
	}
	pre_n = palloc0(sizeof(int64) * npre);
	pre_e = palloc0(sizeof(int64) * npre);

	{
		CrBinEdges	edges = {ncuts, cuts};

		for (int64 i = 0; i < n; i++)
		{
			int			ev;

			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			if (exclude != NULL && exclude[i])
				continue;
			ev = y[i] > 0.5;
			total_n++;
			total_e += ev;
			if (isnan(x[i]))
			{
				miss_n++;
				miss_e += ev;
				continue;
			}
			if (ncodes > 0)
			{
				int			c = (int) x[i];

				if (c < 0 || c >= ncodes)
					elog(ERROR, "feature \"%s\" has code %g of %d", feature, x[i], ncodes);
				pre_n[c]++;
				pre_e[c] += ev;
			}
			else
			{
				int			bin = BinValue(&edges, x[i]);

				pre_n[bin]++;
				pre_e[bin] += ev;
			}
		}
	}
	if (total_e == 0 || total_e == total_n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label has a single class (%s) in the " INT64_FORMAT " rows",
						total_e == 0 ? "all 0" : "all 1", total_n),
				 errhint("WoE needs both defaults (1) and non-defaults (0).")));

	/* the sequence: a number's non-empty pre-bins, a categorical feature's levels by rate */
	order = palloc(sizeof(int) * npre);
	s = SeqCreate(npre, total_n, total_e);
	if (ncodes > 0)
	{
		LevelRate  *lv = palloc(sizeof(LevelRate) * npre);
		int			m = 0;

		for (int c = 0; c < ncodes; c++)
			if (pre_n[c] > 0)
			{
				lv[m].code = c;
				lv[m].n = pre_n[c];
				lv[m].e = pre_e[c];
				m++;
			}
		qsort(lv, m, sizeof(LevelRate), LevelOrder);
		for (int i = 0; i < m; i++)
		{
			order[i] = lv[i].code;
			s->n[i] = lv[i].n;
			s->e[i] = lv[i].e;
			s->first[i] = s->last[i] = i;
		}
		s->k = m;
	}
	else
	{
		/* an empty pre-bin joins the next bin with rows, or the last one */
		int			start = 0;

		for (int p = 0; p < npre; p++)
		{
			order[p] = p;
			if (pre_n[p] == 0)
				continue;
			s->n[s->k] = pre_n[p];
			s->e[s->k] = pre_e[p];
			s->first[s->k] = start;
			s->last[s->k] = p;
			s->k++;
			start = p + 1;
		}
		if (s->k > 0)
			s->last[s->k - 1] = npre - 1;
	}

	if (ncodes > 0)
	{
		/* levels in rate order rise by construction */
		done = SeqShape(s, CR_TREND_ASCENDING, opt);
		b->trend = CR_TREND_ASCENDING;
	}
	else if (opt->trend == CR_TREND_AUTO)
	{
		WoeSeq	   *up = SeqShape(s, CR_TREND_ASCENDING, opt);
		WoeSeq	   *down = SeqShape(s, CR_TREND_DESCENDING, opt);

		if (SeqIv(down) > SeqIv(up))
		{
			done = down;
			b->trend = CR_TREND_DESCENDING;
		}
		else
		{
			done = up;
			b->trend = CR_TREND_ASCENDING;
		}
	}
	else
	{
		done = SeqShape(s, opt->trend, opt);
		b->trend = opt->trend;
	}

	b->n = total_n;
	b->events = total_e;
	b->nbins = done->k;
	b->bins = palloc0(sizeof(CrWoeBin) * (done->k + 1));
	for (int i = 0; i <= done->k; i++)
	{
		CrWoeBin   *bin = &b->bins[i];

		if (i < done->k)
		{
			bin->n = done->n[i];
			bin->events = done->e[i];
			bin->lower = ncodes > 0 || done->first[i] == 0 ? -INFINITY : cuts[done->first[i] - 1];
			bin->upper = ncodes > 0 || done->last[i] == ncuts ? INFINITY : cuts[done->last[i]];
		}
		else
		{
			bin->n = miss_n;
			bin->events = miss_e;
			bin->lower = bin->upper = NAN;
		}
		WoeOf(bin->n, bin->events, total_n, total_e, &bin->woe, &bin->iv);
		b->iv += bin->iv;
	}
	if (ncodes > 0)
	{
		b->ncodes = ncodes;
		b->code_bin = palloc(sizeof(int) * ncodes);
		b->code_n = pre_n;
		b->code_events = pre_e;
		for (int c = 0; c < ncodes; c++)
			b->code_bin[c] = -1;
		for (int i = 0; i < done->k; i++)
			for (int p = done->first[i]; p <= done->last[i]; p++)
				b->code_bin[order[p]] = i;
	}
	return b;
}

const char *
WoeStrength(double iv)
{
	if (iv < 0.02)
		return "useless";
	if (iv < 0.1)
		return "weak";
	if (iv < 0.3)
		return "medium";
	if (iv <= 0.5)
		return "strong";
	return "suspicious";
}

/* ---------------------------------------------------------- training */

/* A scorecard feature's bins, kept in the model, from a binning. */
static void
WoeFeatureFrom(const CrWoeBinning *b, CrWoeFeature *w)
{
	w->nbins = b->nbins;
	w->woe = palloc(sizeof(double) * (b->nbins + 1));
	w->n = palloc(sizeof(int64) * (b->nbins + 1));
	w->events = palloc(sizeof(int64) * (b->nbins + 1));
	for (int i = 0; i <= b->nbins; i++)
	{
		w->woe[i] = b->bins[i].woe;
		w->n[i] = b->bins[i].n;
		w->events[i] = b->bins[i].events;
	}
	if (b->ncodes > 0)
	{
		w->ncodes = b->ncodes;
		w->code_bin = palloc(sizeof(int) * b->ncodes);
		memcpy(w->code_bin, b->code_bin, sizeof(int) * b->ncodes);
	}
	else
	{
		/* bin i starts at the cut i - 1 */
		w->cuts = palloc(sizeof(double) * Max(b->nbins, 1));
		for (int i = 1; i < b->nbins; i++)
			w->cuts[i - 1] = b->bins[i].lower;
	}
}

/*
 * A scorecard: each feature binned on the rows not excluded (the training
 * rows), its values replaced by their bins' WoE, and a logistic regression
 * fitted on those.  A feature whose WoE does not vary over the training
 * rows (one bin) gets coefficient 0 and is left out of the fit, which
 * could not separate it from the intercept.  extra gets the features'
 * information values.
 */
CrLogitFit *
ScorecardFit(CrDataset *ds, const bool *exclude, const CrTrainParams *tp,
			 CrModel *model, double *importance, StringInfo extra)
{
	int			p = ds->nfeatures;
	double	  **cols = palloc(sizeof(double *) * p);
	double	  **fit_cols = palloc(sizeof(double *) * p);
	char	  **fit_names = palloc(sizeof(char *) * p);
	int		   *fit_feature = palloc(sizeof(int) * p);
	double	   *zero = palloc0(sizeof(double) * p);
	int			nfit = 0;
	CrLogitFit *lf;

	model->algorithm = CR_ALGO_SCORECARD;
	model->woe = palloc0(sizeof(CrWoeFeature) * p);
	appendStringInfoString(extra, ", \"information_value\": {");
	for (int j = 0; j < p; j++)
	{
		const CrCategoryMap *map = ds->cats != NULL ? ds->cats[j] : NULL;
		CrWoeBinning *b = WoeFindBins(ds->cols[j], ds->label, exclude, ds->nrows,
									  map != NULL ? map->nlevels + 1 : 0, &tp->woe,
									  ds->names[j]);
		CrWoeFeature *w = &model->woe[j];
		double		first = NAN;
		bool		varies = false;

		WoeFeatureFrom(b, w);
		cols[j] = HugeAlloc(sizeof(double) * Max(ds->nrows, 1));
		for (int64 i = 0; i < ds->nrows; i++)
		{
			double		v = ModelWoe(w, ds->cols[j][i]);

			if ((i & 0xFFFF) == 0)
				CHECK_FOR_INTERRUPTS();
			cols[j][i] = v;
			if (exclude[i])
				continue;
			if (isnan(first))
				first = v;
			else if (v != first)
				varies = true;
		}
		if (varies)
		{
			fit_cols[nfit] = cols[j];
			fit_names[nfit] = ds->names[j];
			fit_feature[nfit++] = j;
		}
		if (j > 0)
			appendStringInfoString(extra, ", ");
		escape_json(extra, ds->names[j]);
		appendStringInfo(extra, ": %.17g", b->iv);
	}
	appendStringInfoChar(extra, '}');
	if (nfit == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no feature of the scorecard has more than one bin on the training rows"),
				 errhint("Give features that tell defaults apart, or lower params.min_bin_share.")));

	lf = LogitFit(ds->nrows, nfit, fit_cols, ds->label, exclude, zero, fit_names, &tp->logit);
	model->coef = palloc0(sizeof(double) * (p + 1));
	model->std_error = palloc(sizeof(double) * (p + 1));
	for (int j = 0; j <= p; j++)
		model->std_error[j] = NAN;
	model->coef[0] = lf->coef[0];
	model->std_error[0] = lf->std_error[0];
	for (int k = 0; k < nfit; k++)
	{
		int			j = fit_feature[k];

		model->coef[j + 1] = lf->coef[k + 1];
		model->std_error[j + 1] = lf->std_error[k + 1];
		if (importance != NULL)
			importance[j] = fabs(lf->std_coef[k + 1]);
	}
	ModelSetCoefLayout(model);
	for (int j = 0; j < p; j++)
		HugeFree(cols[j]);
	return lf;
}

/* ------------------------------------------------------------ SQL */

static Jsonb *
WoeParamsArg(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : PG_GETARG_JSONB_P(argno);
}

/*
 * The levels of the categorical features, every one with a row kept.  A
 * feature with no value that can be a level (all NULL, or all longer than
 * a level may be) has none: its values are all "other" (code 0), and its
 * missing ones missing, where training would refuse it.
 */
static void
WoeFinishCategories(CrDataset *ds)
{
	CrCategoryMap **empty = palloc0(sizeof(CrCategoryMap *) * ds->nfeatures);

	for (int j = 0; ds->builders != NULL && j < ds->nfeatures; j++)
	{
		if (ds->builders[j] == NULL || CategoryBuilderCount(ds->builders[j]) > 0)
			continue;
		empty[j] = palloc0(sizeof(CrCategoryMap));
		for (int64 i = 0; i < ds->nrows; i++)
			if (!isnan(ds->cols[j][i]))
				ds->cols[j][i] = 0.0;
		ds->builders[j] = NULL;
	}
	DatasetFinishCategories(ds, NULL, 1, CR_MAX_LEVELS, NULL, NULL);
	for (int j = 0; j < ds->nfeatures; j++)
		if (empty[j] != NULL)
			ds->cats[j] = empty[j];
}

/* Load the source's label and features for binning. */
static CrDataset *
WoeLoad(const char *source, const char *label, char **features, int nfeatures,
		const CrWoeOptions *opt)
{
	CrDatasetSpec *spec = palloc0(sizeof(CrDatasetSpec));
	CrDataset  *ds;
	MemoryContext cxt = CurrentMemoryContext;

	spec->source = source;
	spec->label = label;
	spec->features = features;
	spec->nfeatures = nfeatures;
	spec->text_features = true;
	spec->what = "binning";
	spec->max_bytes = (Size) cr_train_memory_kb * 1024;
	if (opt->categorical && features != NULL)
	{
		spec->categorical = features;
		spec->ncategorical = nfeatures;
	}
	/* the rows stay in the caller's context, past SPI_finish */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);
	ds = DatasetLoad(spec);
	SPI_finish();
	MemoryContextSwitchTo(cxt);
	WoeFinishCategories(ds);
	return ds;
}

static CrWoeBinning *
WoeFeature(const CrDataset *ds, int j, const CrWoeOptions *opt)
{
	const CrCategoryMap *map = ds->cats ? ds->cats[j] : NULL;

	return WoeFindBins(ds->cols[j], ds->label, NULL, ds->nrows,
					   map ? map->nlevels + 1 : 0, opt, ds->names[j]);
}

/*
 * cr_woe_bins(source, label, feature, params): the value bins in order
 * (bin 1 ..), then the missing bin (bin 0).  A categorical feature has a
 * row per level, with the level's rows and its bin's WoE.
 */
Datum
cr_woe_bins(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CrWoeOptions opt;
	char	   *feature;
	CrDataset  *ds;
	CrWoeBinning *b;
	const CrCategoryMap *map;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source, label and feature must not be null")));
	ParamsParseWoe(WoeParamsArg(fcinfo, 3), &opt);
	feature = text_to_cstring(PG_GETARG_TEXT_PP(2));
	InitMaterializedSRF(fcinfo, 0);

	ds = WoeLoad(text_to_cstring(PG_GETARG_TEXT_PP(0)), text_to_cstring(PG_GETARG_TEXT_PP(1)),
				 &feature, 1, &opt);
	map = ds->cats ? ds->cats[0] : NULL;
	b = WoeFeature(ds, 0, &opt);

	for (int i = 0; i <= b->nbins; i++)
	{
		const CrWoeBin *bin = &b->bins[i];
		int			bin_no = i < b->nbins ? i + 1 : 0;

		for (int c = -1; c < b->ncodes; c++)
		{
			Datum		values[9];
			bool		nulls[9] = {false};
			int64		n = bin->n;
			int64		e = bin->events;
			double		iv = bin->iv;

			/* a number's bin, or the missing bin, is one row (c == -1) */
			if (map != NULL && i < b->nbins)
			{
				double		G = (double) (b->n - b->events);
				double		E = (double) b->events;

				if (c < 0 || b->code_bin[c] != i)
					continue;
				n = b->code_n[c];
				e = b->code_events[c];
				iv = ((double) (n - e) / G - (double) e / E) * bin->woe;
				values[3] = CStringGetTextDatum(c < map->nlevels ? map->levels[c] : WOE_OTHER_TEXT);
			}
			else if (c >= 0)
				break;
			else
				nulls[3] = true;

			values[0] = Int32GetDatum(bin_no);
			if (map != NULL || i == b->nbins)
				nulls[1] = nulls[2] = true;
			else
			{
				values[1] = Float8GetDatum(bin->lower);
				values[2] = Float8GetDatum(bin->upper);
			}
			values[4] = Int64GetDatum(n);
			values[5] = Int64GetDatum(e);
			if (n > 0)
				values[6] = Float8GetDatum((double) e / (double) n);
			else
				nulls[6] = true;
			values[7] = Float8GetDatum(bin->woe);
			values[8] = Float8GetDatum(iv);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

typedef struct IvRank
{
	const char *feature;
	double		iv;
	int			bins;
} IvRank;

static int
IvOrder(const void *a, const void *b)
{
	const IvRank *x = a;
	const IvRank *y = b;

	if (x->iv != y->iv)
		return x->iv > y->iv ? -1 : 1;
	return strcmp(x->feature, y->feature);
}

/*
 * cr_information_value(source, label, features, params): every feature's
 * IV, the highest first, with its band and its number of value bins.
 */
Datum
cr_information_value(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CrWoeOptions opt;
	char	  **features = NULL;
	int			nfeatures = 0;
	CrDataset  *ds;
	IvRank	   *rank;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source and label must not be null")));
	ParamsParseWoe(WoeParamsArg(fcinfo, 3), &opt);
	if (!PG_ARGISNULL(2))
		features = DatasetFeatureNames(PG_GETARG_ARRAYTYPE_P(2), &nfeatures,
									   "Pass NULL to rank every numeric and text column.");
	InitMaterializedSRF(fcinfo, 0);

	ds = WoeLoad(text_to_cstring(PG_GETARG_TEXT_PP(0)), text_to_cstring(PG_GETARG_TEXT_PP(1)),
				 features, nfeatures, &opt);
	rank = palloc(sizeof(IvRank) * ds->nfeatures);
	for (int j = 0; j < ds->nfeatures; j++)
	{
		CrWoeBinning *b = WoeFeature(ds, j, &opt);

		rank[j].feature = ds->names[j];
		rank[j].iv = b->iv;
		rank[j].bins = b->nbins;
	}
	qsort(rank, ds->nfeatures, sizeof(IvRank), IvOrder);
	for (int j = 0; j < ds->nfeatures; j++)
	{
		Datum		values[5];
		bool		nulls[5] = {false};

		values[0] = Int32GetDatum(j + 1);
		values[1] = CStringGetTextDatum(rank[j].feature);
		values[2] = Float8GetDatum(rank[j].iv);
		values[3] = CStringGetTextDatum(WoeStrength(rank[j].iv));
		values[4] = Int32GetDatum(rank[j].bins);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

static void
PutScorecardRow(ReturnSetInfo *rsinfo, const char *feature, int bin, double lower, double upper,
				const char *category, double woe, double coef, double points)
{
	Datum		values[8];
	bool		nulls[8] = {false};

	values[0] = CStringGetTextDatum(feature);
	values[1] = Int32GetDatum(bin);
	nulls[1] = bin < 0;
	values[2] = Float8GetDatum(lower);
	nulls[2] = isnan(lower);
	values[3] = Float8GetDatum(upper);
	nulls[3] = isnan(upper);
	if (category != NULL)
		values[4] = CStringGetTextDatum(category);
	else
		nulls[4] = true;
	values[5] = Float8GetDatum(woe);
	values[6] = Float8GetDatum(coef);
	values[7] = Float8GetDatum(points);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/*
 * cr_scorecard(name, version DEFAULT NULL): a scorecard's points table.
 * With factor = score_pdo / ln 2 and offset = score_points - factor *
 * ln(score_odds), the score is offset - factor * (intercept + the sum of
 * coefficient * WoE); a bin's points are -factor * (coefficient * WoE +
 * intercept / p) + offset / p, the intercept and offset spread evenly over
 * the p features, so an applicant's bins' points add up to the score
 * before rounding.  Per feature: its value bins in order (a categorical
 * feature's a row per level), the missing bin (0), and a row without a bin
 * for the values that score WoE 0 (levels without training rows; a number
 * whose training values were all missing).
 */
Datum
cr_scorecard(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const CrCachedModel *entry;
	const CrModel *m;
	const CrScoring *sc;
	double		factor;
	double		offset;
	int			p;

	entry = RegistryLookup(RegistryNameArg(fcinfo, 0), RegistryVersionArg(fcinfo, 1));
	m = entry->model;
	if (m->algorithm != CR_ALGO_SCORECARD)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is a %s model, not a scorecard", entry->version_label,
						ModelAlgorithmName(m->algorithm)),
				 errhint("Train one with cr_train(name, source, label, 'scorecard').")));
	InitMaterializedSRF(fcinfo, 0);
	sc = &m->scoring;
	p = m->nfeatures;
	factor = sc->pdo / M_LN2;
	offset = sc->points_base - factor * log(sc->odds_base);

	for (int j = 0; j < p; j++)
	{
		const CrWoeFeature *w = &m->woe[j];
		const CrCategoryMap *map = m->cats != NULL ? m->cats[j] : NULL;
		double		b = m->coef[j + 1];
		bool		unbinned = false;

#define POINTS(woe) (-factor * (b * (woe) + m->coef[0] / p) + offset / p)
		for (int i = 0; i < w->nbins; i++)
		{
			if (map == NULL)
			{
				PutScorecardRow(rsinfo, m->features[j], i + 1,
								i > 0 ? w->cuts[i - 1] : -INFINITY,
								i < w->nbins - 1 ? w->cuts[i] : INFINITY,
								NULL, w->woe[i], b, POINTS(w->woe[i]));
				continue;
			}
			for (int c = 0; c < w->ncodes; c++)
				if (w->code_bin[c] == i)
					PutScorecardRow(rsinfo, m->features[j], i + 1, NAN, NAN,
									c < map->nlevels ? map->levels[c] : WOE_OTHER_TEXT,
									w->woe[i], b, POINTS(w->woe[i]));
		}
		PutScorecardRow(rsinfo, m->features[j], 0, NAN, NAN, NULL, w->woe[w->nbins], b,
						POINTS(w->woe[w->nbins]));
		/* what scores WoE 0: levels without training rows, or every value of an unbinned number */
		if (map != NULL)
		{
			for (int c = 0; c < w->ncodes; c++)
				if (w->code_bin[c] < 0)
					PutScorecardRow(rsinfo, m->features[j], -1, NAN, NAN,
									c < map->nlevels ? map->levels[c] : WOE_OTHER_TEXT,
									0.0, b, POINTS(0.0));
		}
		else
			unbinned = w->nbins == 0;
		if (unbinned)
			PutScorecardRow(rsinfo, m->features[j], -1, -INFINITY, INFINITY, NULL, 0.0, b,
							POINTS(0.0));
#undef POINTS
	}
	return (Datum) 0;
}
