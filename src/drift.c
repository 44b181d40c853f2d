/*
 * drift.c
 *	  Drift baselines, built from the training rows and stored in the model,
 *	  and population stability against them: PSI and KS per feature and for
 *	  the score, in one pass over a source.
 */
#include "postgres.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"

#include "binning.h"
#include "drift.h"
#include "hugemem.h"
#include "dataset.h"
#include "metrics.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_drift_score);
PG_FUNCTION_INFO_V1(cr_drift_baseline);

#define DRIFT_EPSILON	1e-4	/* share used for an empty bucket */

/* ------------------------------------------------------------ baselines */

#define DRIFT_BINS		10		/* deciles */
#define DRIFT_LINEAR_CUTS 16	/* up to this many cuts, a value's bin is a count */

/*
 * The number of cuts <= each of eight values (NaN: 0), by comparing each
 * value with every cut: for a handful of cuts, cheaper than a search.
 */
static inline void
CountCuts8(const double *cuts, int ncuts, const double *v, int32 *bin)
{
#ifdef __SSE2__
	__m128d		x0 = _mm_loadu_pd(v),
				x1 = _mm_loadu_pd(v + 2),
				x2 = _mm_loadu_pd(v + 4),
				x3 = _mm_loadu_pd(v + 6);
	__m128i		a0 = _mm_setzero_si128(),
				a1 = _mm_setzero_si128(),
				a2 = _mm_setzero_si128(),
				a3 = _mm_setzero_si128();
	int64		count[8];

	for (int c = 0; c < ncuts; c++)
	{
		__m128d		cv = _mm_set1_pd(cuts[c]);

		/* a true comparison is all ones: -1 */
		a0 = _mm_sub_epi64(a0, _mm_castpd_si128(_mm_cmple_pd(cv, x0)));
		a1 = _mm_sub_epi64(a1, _mm_castpd_si128(_mm_cmple_pd(cv, x1)));
		a2 = _mm_sub_epi64(a2, _mm_castpd_si128(_mm_cmple_pd(cv, x2)));
		a3 = _mm_sub_epi64(a3, _mm_castpd_si128(_mm_cmple_pd(cv, x3)));
	}
	_mm_storeu_si128((__m128i *) count, a0);
	_mm_storeu_si128((__m128i *) (count + 2), a1);
	_mm_storeu_si128((__m128i *) (count + 4), a2);
	_mm_storeu_si128((__m128i *) (count + 6), a3);
	for (int r = 0; r < 8; r++)
		bin[r] = (int32) count[r];
#else
	for (int r = 0; r < 8; r++)
	{
		int32		n = 0;

		for (int c = 0; c < ncuts; c++)
			n += cuts[c] <= v[r];
		bin[r] = n;
	}
#endif
}

/*
 * Count the rows not excluded in the bins of cuts, and missing (slot
 * ncuts + 1); eight rows at a time and without branches, which the bins
 * of random values defeat.
 */
static void
BaselineCount(const double *cuts, int ncuts, const double *x, const bool *exclude, int64 n,
			  int64 *count)
{
	memset(count, 0, sizeof(int64) * (ncuts + 2));
	for (int64 i0 = 0; i0 < n; i0 += 8)
	{
		int			m = (int) Min(8, n - i0);
		double		v[8];
		int32		bin[8];

		for (int r = 0; r < 8; r++)
			v[r] = r < m ? x[i0 + r] : 0.0;
		if (ncuts <= DRIFT_LINEAR_CUTS)
			CountCuts8(cuts, ncuts, v, bin);	/* deciles: count the cuts */
		else
			BinSearch8(cuts, ncuts, v, bin);
		for (int r = 0; r < m; r++)
		{
			int32		slot = isnan(v[r]) ? ncuts + 1 : bin[r];

			count[slot] += exclude == NULL || !exclude[i0 + r];
		}
	}
}

/*
 * The distribution of one column over the rows not excluded: decile cut
 * points (fewer when the column has few distinct values) and the rows in
 * each bin and missing.  work has BinWorkBytes(n) bytes.  It allocates
 * nothing, so that the training pool's threads may run it, a feature each.
 */
void
DriftBaselineCompute(CrBaselineWork *w, const double *x, const bool *exclude, int64 n,
					 uint64 seed, double *work)
{
	StaticAssertStmt(DRIFT_BINS <= CR_MAX_DRIFT_CUTS, "deciles fit a baseline");
	w->ncuts = BinFindCuts(x, exclude, n, DRIFT_BINS, BIN_SAMPLE_MAX, seed, work, w->cuts);
	BaselineCount(w->cuts, w->ncuts, x, exclude, n, w->count);
}

/*
 * A categorical feature's distribution: the rows of each level (codes,
 * most frequent first) and of other, with cut points between the codes.
 * Past CR_MAX_DRIFT_CUTS levels the rarest share the last bin with other.
 */
void
DriftBaselineComputeCategories(CrBaselineWork *w, const double *codes, const bool *exclude,
							   int64 n, int nlevels)
{
	w->ncuts = Min(nlevels, CR_MAX_DRIFT_CUTS);
	for (int k = 0; k < w->ncuts; k++)
		w->cuts[k] = k + 0.5;
	BaselineCount(w->cuts, w->ncuts, codes, exclude, n, w->count);
}

/* The baseline of a computed distribution: its cuts and shares. */
void
DriftBaselineFinish(CrBaseline *b, const CrBaselineWork *w)
{
	int64		rows = 0;

	b->ncuts = w->ncuts;
	b->cuts = palloc(sizeof(double) * Max(b->ncuts, 1));
	memcpy(b->cuts, w->cuts, sizeof(double) * b->ncuts);
	b->shares = palloc0(sizeof(double) * (b->ncuts + 1));
	for (int i = 0; i <= b->ncuts + 1; i++)
		rows += w->count[i];
	for (int i = 0; i <= b->ncuts; i++)
		b->shares[i] = rows > 0 ? (double) w->count[i] / rows : 0.0;
	b->missing = rows > 0 ? (double) w->count[b->ncuts + 1] / rows : 0.0;
}

/* DriftBaselineCompute and DriftBaselineFinish; work may be NULL */
void
DriftBaselineBuild(CrBaseline *b, const double *x, const bool *exclude, int64 n,
				   uint64 seed, double *work)
{
	double	   *own = NULL;
	CrBaselineWork w;

	if (work == NULL)
		work = own = HugeAlloc(BinWorkBytes(n));
	DriftBaselineCompute(&w, x, exclude, n, seed, work);
	if (own != NULL)
		HugeFree(own);
	DriftBaselineFinish(b, &w);
}

/* --------------------------------------------------------------- drift */

typedef struct DriftReceiver
{
	DestReceiver pub;
	const CrModel *model;
	const char *version_label;
	MemoryContext cxt;
	int		   *attnum;			/* per feature */
	Oid		   *atttype;
	FmgrInfo   *outfunc;
	double	   *x;
	int64	  **counts;			/* per feature and the score: value bins, then missing */
	int64		rows;
} DriftReceiver;

static void
DriftStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	DriftReceiver *dr = (DriftReceiver *) self;
	const CrModel *m = dr->model;
	MemoryContext old = MemoryContextSwitchTo(dr->cxt);
	dr->attnum = palloc(sizeof(int) * m->nfeatures);
	dr->atttype = palloc(sizeof(Oid) * m->nfeatures);
	dr->outfunc = palloc0(sizeof(FmgrInfo) * m->nfeatures);
	dr->x = palloc(sizeof(double) * m->nfeatures);
	DatasetMapColumns(tupdesc, m->features, m->nfeatures, m->cats, dr->version_label,
					  dr->attnum, dr->atttype, dr->outfunc);
	dr->counts = palloc(sizeof(int64 *) * (m->nfeatures + 1));
	for (int j = 0; j <= m->nfeatures; j++)
		dr->counts[j] = palloc0(sizeof(int64) * (m->baseline[j].ncuts + 2));
	MemoryContextSwitchTo(old);
}

static inline void
CountValue(const CrBaseline *b, int64 *counts, double v)
{
	CrBinEdges	e;

	if (isnan(v))
	{
		counts[b->ncuts + 1]++;
		return;
	}
	e.ncuts = b->ncuts;
	e.cuts = b->cuts;
	counts[BinValue(&e, v)]++;
}

static bool
DriftReceive(TupleTableSlot *slot, DestReceiver *self)
{
	DriftReceiver *dr = (DriftReceiver *) self;
	const CrModel *m = dr->model;

	if ((dr->rows++ & 0x3FF) == 0)
		CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);
	for (int j = 0; j < m->nfeatures; j++)
	{
		int			a = dr->attnum[j];
		double		v = NAN;

		if (!slot->tts_isnull[a])
		{
			v = DatasetFeatureValue(m->cats ? m->cats[j] : NULL, slot->tts_values[a],
									dr->atttype[j], &dr->outfunc[j]);
			if (isinf(v))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is %s in source row " INT64_FORMAT,
								m->features[j], v > 0 ? "Infinity" : "-Infinity", dr->rows)));
		}
		dr->x[j] = v;
		CountValue(&m->baseline[j], dr->counts[j], v);
	}
	CountValue(&m->baseline[m->nfeatures], dr->counts[m->nfeatures],
			   PredictProbability(m, dr->x));
	return true;
}

/*
 * PSI = sum over buckets (value bins, then missing) of (a - e) ln(a / e),
 * with a and e the actual and expected shares, each at least DRIFT_EPSILON;
 * KS = the largest gap between the cumulative shares over the same buckets.
 */
static void
DriftStatistics(const CrBaseline *b, const int64 *counts, int64 rows,
				double *psi, double *ks)
{
	double		cum_a = 0.0,
				cum_e = 0.0;

	*psi = 0.0;
	*ks = 0.0;
	for (int i = 0; i <= b->ncuts + 1; i++)
	{
		double		e = i <= b->ncuts ? b->shares[i] : b->missing;
		double		a = (double) counts[i] / rows;
		double		ea = Max(e, DRIFT_EPSILON);
		double		aa = Max(a, DRIFT_EPSILON);

		*psi += (aa - ea) * log(aa / ea);
		cum_a += a;
		cum_e += e;
		if (fabs(cum_a - cum_e) > *ks)
			*ks = fabs(cum_a - cum_e);
	}
}

static const char *
Severity(const CrModel *m, double psi)
{
	if (psi < m->drift_moderate)
		return "stable";
	if (psi <= m->drift_major)
		return "moderate";
	return "major";
}

static const CrCachedModel *
ModelWithBaseline(const char *name)
{
	CrCachedModel *entry = RegistryLookup(name, 0);

	if (entry->model->baseline == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("model %s has no drift baseline", entry->version_label),
				 errdetail("Its bytes were written before credit_risk stored baselines with each model."),
				 errhint("Train a new version to measure drift against.")));
	return entry;
}

/*
 * cr_drift_score(name, source): one row per feature, then "__score__":
 * feature, psi, ks, severity (stable below the model's moderate threshold,
 * 0.10 by default; major above its major one, 0.25 by default).
 */
Datum
cr_drift_score(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const CrCachedModel *entry;
	const CrModel *m;
	DriftReceiver dr;
	char	   *source;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name and source must not be null")));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));
	InitMaterializedSRF(fcinfo, 0);
	entry = ModelWithBaseline(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	m = entry->model;

	memset(&dr, 0, sizeof(dr));
	DatasetInitReceiver(&dr.pub, DriftStartup, DriftReceive);
	dr.model = m;
	dr.version_label = entry->version_label;
	dr.cxt = CurrentMemoryContext;

	DatasetScanSource(source, &dr.pub, "drift");

	if (dr.rows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("drift source returned no rows"),
				 errdetail("Source: %s", source)));

	for (int j = 0; j <= m->nfeatures; j++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		double		psi,
					ks;

		DriftStatistics(&m->baseline[j], dr.counts[j], dr.rows, &psi, &ks);
		values[0] = CStringGetTextDatum(j < m->nfeatures ? m->features[j] : "__score__");
		values[1] = Float8GetDatum(psi);
		/* levels have no order for a KS statistic to follow */
		if (j < m->nfeatures && m->cats != NULL && m->cats[j] != NULL)
			nulls[2] = true;
		else
			values[2] = Float8GetDatum(ks);
		values[3] = CStringGetTextDatum(Severity(m, psi));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * cr_drift_baseline(name): the stored bins, one row per bucket: feature,
 * bucket (0-based; the last one of each feature is "missing"), lower and
 * upper bound (NULL where open), expected share.
 */
Datum
cr_drift_baseline(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *name = RegistryNameArg(fcinfo, 0);
	const CrModel *m;

	InitMaterializedSRF(fcinfo, 0);
	m = ModelWithBaseline(name)->model;

	for (int j = 0; j <= m->nfeatures; j++)
	{
		const CrBaseline *b = &m->baseline[j];
		const CrCategoryMap *map = (j < m->nfeatures && m->cats) ? m->cats[j] : NULL;

		for (int i = 0; i <= b->ncuts + 1; i++)
		{
			Datum		values[7];
			bool		nulls[7] = {false, false, false, false, false, false, false};

			values[0] = CStringGetTextDatum(j < m->nfeatures ? m->features[j] : "__score__");
			values[1] = Int32GetDatum(i);
			values[2] = BoolGetDatum(i > b->ncuts);
			if (i == 0 || i > b->ncuts)
				nulls[3] = true;
			else
				values[3] = Float8GetDatum(b->cuts[i - 1]);
			if (i >= b->ncuts)
				nulls[4] = true;
			else
				values[4] = Float8GetDatum(b->cuts[i]);
			values[5] = Float8GetDatum(i <= b->ncuts ? b->shares[i] : b->missing);
			/* a categorical feature's bucket is a level (the last: other and the rarest) */
			if (map != NULL && i < b->ncuts)
			{
				nulls[3] = nulls[4] = true;
				values[6] = CStringGetTextDatum(map->levels[i]);
			}
			else if (map != NULL && i == b->ncuts)
			{
				nulls[3] = nulls[4] = true;
				values[6] = CStringGetTextDatum("(other)");
			}
			else
				nulls[6] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
