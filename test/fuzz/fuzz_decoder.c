/*
 * fuzz_decoder.c
 *	  libFuzzer harness for the model-bytes decoder (src/model.c):
 *	  ModelDecode, ModelPeekChecksum, and the SQL functions cr_model_info
 *	  and cr_model_trees that report on decoded bytes.
 *
 * Each input is decoded twice: as it is, and with the header's length and
 * CRC-32C rewritten to match it.  Without the second pass almost every
 * mutation would stop at the checksum and the section decoders would go
 * untested; with it, seeds that are real models (corpus/decoder) mutate
 * into bytes that get all the way through.
 *
 * An ERROR is the expected answer to bad bytes.  A crash, a sanitizer
 * report, an ERROR without a proper errcode, or a decoded model that
 * breaks what its readers rely on (checked below, and by walking every
 * tree as the scorers do) is a finding.  The harness also checks that the
 * complete-tree copy the scorers use (dense_node, dense_leaf) gives every
 * test row the same leaf as a walk of the node arrays
 * (CR_FUZZ_DENSE_ORACLE=0 turns that off), and that ForestMargin and the
 * block scorer give the walk's margin, bit for bit, for forests with
 * category splits (which walk the node arrays) and small ones.
 */
#include "postgres.h"

#include <math.h>
#include <stdlib.h>

#include "fmgr.h"
#include "funcapi.h"
#include "nodes/execnodes.h"
#include "port/pg_crc32c.h"
#include "utils/builtins.h"

#include "credit_risk.h"
#include "model.h"
#include "pgstub.h"

extern Datum cr_model_info(PG_FUNCTION_ARGS);
extern Datum cr_model_trees(PG_FUNCTION_ARGS);

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger inputs only slow the fuzzer down; the format has no use for them. */
#define FUZZ_MAX_INPUT			(4 * 1024 * 1024)
#define NROWS				8

static bool dense_oracle = false;

/* Reads through a volatile sink, so checks that only touch memory stay. */
static volatile double sink;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *v = getenv("CR_FUZZ_DENSE_ORACLE");

	FuzzInit();
	dense_oracle = v == NULL || v[0] == '\0' || v[0] != '0';
	return 0;
}

static void
CheckName(const char *what, const char *s)
{
	size_t		len;

	if (s == NULL)
		FuzzFail("decoded %s is NULL", what);
	len = strlen(s);
	if (len == 0 || len > CR_MAX_NAME_LEN)
		FuzzFail("decoded %s has length %zu", what, len);
}

static void
CheckScoring(const CrScoring *s)
{
	if (!(s->threshold >= 0.0 && s->threshold <= 1.0) ||
		!(s->odds_base > 0.0) || !(s->pdo > 0.0) || !isfinite(s->points_base))
		FuzzFail("decoded scoring parameters out of range");
	if (s->nbands < 1 || s->nbands > CR_MAX_BANDS)
		FuzzFail("decoded band count %d", s->nbands);
	for (int i = 0; i + 1 < s->nbands; i++)
		if (!(s->cutoffs[i] > 0.0 && s->cutoffs[i] < 1.0) ||
			(i > 0 && !(s->cutoffs[i] > s->cutoffs[i - 1])))
			FuzzFail("decoded risk cut-offs not increasing in (0, 1)");
	for (int i = 0; i < s->nbands; i++)
		CheckName("risk label", s->labels[i]);
}

static void
CheckBaseline(const CrModel *m)
{
	if (!(m->drift_moderate > 0.0 && m->drift_moderate < m->drift_major) ||
		!isfinite(m->drift_major))
		FuzzFail("decoded drift thresholds out of order");
	for (int f = 0; f <= m->nfeatures; f++)
	{
		const CrBaseline *b = &m->baseline[f];

		if (b->ncuts < 0 || b->ncuts > CR_MAX_DRIFT_CUTS)
			FuzzFail("decoded baseline %d has %d cuts", f, b->ncuts);
		for (int i = 0; i < b->ncuts; i++)
			if (!isfinite(b->cuts[i]) || (i > 0 && !(b->cuts[i] > b->cuts[i - 1])))
				FuzzFail("decoded baseline %d cut points not increasing", f);
		for (int i = 0; i <= b->ncuts; i++)
			if (!(b->shares[i] >= 0.0 && b->shares[i] <= 1.0))
				FuzzFail("decoded baseline %d share out of range", f);
		if (!(b->missing >= 0.0 && b->missing <= 1.0))
			FuzzFail("decoded baseline %d missing share out of range", f);
	}
}

/* The structure every tree walk relies on (see DecodeGbm). */
static void
CheckTreeArrays(const CrModel *m)
{
	if (m->forest.ntrees < 1 || m->forest.ntrees > CR_MAX_TREES || m->forest.tree_start[0] != 0)
		FuzzFail("decoded tree count %d or first offset wrong", m->forest.ntrees);
	if (!isfinite(m->forest.base_margin))
		FuzzFail("decoded base margin not finite");
	for (int t = 0; t < m->forest.ntrees; t++)
	{
		int32		start = m->forest.tree_start[t];
		int32		n = m->forest.tree_start[t + 1] - start;

		if (n < 1)
			FuzzFail("decoded tree %d has %d nodes", t, n);
		for (int32 k = 0; k < n; k++)
		{
			int32		i = start + k;
			int32		f = m->forest.feature[i];

			if (!isfinite(m->forest.value[i]) || !(m->forest.cover[i] >= 0.0) ||
				!isfinite(m->forest.cover[i]))
				FuzzFail("decoded tree %d node %d: bad value or cover", t, k);
			sink += m->forest.default_left[i];
			if (f == -1)
			{
				if (m->forest.left[i] != -1 || m->forest.right[i] != -1)
					FuzzFail("decoded tree %d leaf %d has children", t, k);
				continue;
			}
			if (f < 0 || f >= m->nfeatures)
				FuzzFail("decoded tree %d node %d splits on feature %d", t, k, f);
			if (!isfinite(m->forest.threshold[i]))
				FuzzFail("decoded tree %d node %d: threshold not finite", t, k);
			if (m->forest.left[i] <= k || m->forest.left[i] >= n ||
				m->forest.right[i] <= k || m->forest.right[i] >= n)
				FuzzFail("decoded tree %d node %d: child outside (node, tree end)", t, k);
		}
	}
}

/* The complete-tree copy: cut lists, and every node word within bounds. */
static void
CheckDenseArrays(const CrModel *m)
{
	int			D = m->forest.dense.depth;
	int			F = m->nfeatures;
	int			nint = (1 << D) - 1;

	if (D < 0 || D > FOREST_DENSE_MAX_DEPTH)
		FuzzFail("decoded dense depth %d", D);
	if (D == 0)
		return;
	if (m->forest.dense.cut_start[0] != 0)
		FuzzFail("dense cut offsets do not start at 0");
	for (int f = 0; f < F; f++)
	{
		int32		lo = m->forest.dense.cut_start[f];
		int32		hi = m->forest.dense.cut_start[f + 1];

		if (hi < lo || hi - lo > 0xFFFE)
			FuzzFail("dense cuts of feature %d: %d..%d", f, lo, hi);
		for (int32 c = lo; c < hi; c++)
			if (!isfinite(m->forest.dense.cuts[c]) || (c > lo && !(m->forest.dense.cuts[c] > m->forest.dense.cuts[c - 1])))
				FuzzFail("dense cuts of feature %d not increasing", f);
	}
	for (Size i = 0; i < (Size) m->forest.ntrees * nint; i++)
	{
		uint32		w = m->forest.dense.node[i];

		if (FOREST_WORD_SLOT(w) >= (uint32) (2 * F))
			FuzzFail("dense node word %u names code slot %u of %d", w, FOREST_WORD_SLOT(w), 2 * F);
	}
	for (Size i = 0; i < (Size) m->forest.ntrees * (nint + 1); i++)
		sink += m->forest.dense.leaf[i];
}

/*
 * Test rows built from the model's own thresholds (at, just below, and
 * missing) and its imputation values, so walks take both ways at splits.
 */
static void
MakeRow(const CrModel *m, int r, double *x)
{
	int32		total = m->forest.tree_start[m->forest.ntrees];

	for (int j = 0; j < m->nfeatures; j++)
	{
		uint32		h = (uint32) r * 2654435761u + (uint32) j * 40503u + 12345u;
		int32		i = (int32) (h % (uint32) total);
		double		thr = m->forest.feature[i] >= 0 ? m->forest.threshold[i] : m->impute[j];

		/*
		 * A categorical feature's value is a code: each level, "other",
		 * and, past the rows above, one beyond the codes (no scorer makes
		 * it, but a walk must not read past a set with it) or a fraction.
		 */
		if (m->cats != NULL && m->cats[j] != NULL && r >= 3)
		{
			int			ncodes = m->cats[j]->nlevels + 1;

			switch ((h >> 8) % 8)
			{
				case 0:
					x[j] = NAN;
					break;
				case 1:
					x[j] = 300.0;
					break;
				case 2:
					x[j] = (h >> 12) % ncodes + 0.5;
					break;
				default:
					x[j] = (h >> 12) % ncodes;
					break;
			}
			continue;
		}

		switch (r)
		{
			case 0:
				x[j] = NAN;
				break;
			case 1:
				x[j] = -1e308;
				break;
			case 2:
				x[j] = 1e308;
				break;
			default:
				switch ((h >> 8) % 4)
				{
					case 0:
						x[j] = thr;
						break;
					case 1:
						x[j] = nextafter(thr, -INFINITY);
						break;
					case 2:
						x[j] = NAN;
						break;
					default:
						x[j] = m->impute[j];
						break;
				}
		}
	}
}

/*
 * Explain a row (ForestShap) by TreeSHAP's recursion and from explanation
 * tables (ForestShapPrepare, built on the model's first row with room for a
 * part of the trees, so that both kinds of tree are explained), and, when
 * the covers and values are moderate (crafted bytes may hold covers that do
 * not add up, but not ones whose sum overflows), check that the two agree
 * and that the expected margin and the contributions add up to the margin:
 * the children's shares of a node always add up to 1.
 */
static void
CheckExplanation(CrModel *m, const double *x)
{
	CrForest   *f = &m->forest;
	CrShapTables *tables = f->shap;
	double	   *phi;
	double	   *phi_rec;
	double		total;
	double		scale = 1.0 + fabs(f->base_margin);
	bool		moderate = true;

	if (f->max_depth > FOREST_SHAP_MAX_DEPTH)
		return;
	for (int32 i = 0; i < f->tree_start[f->ntrees]; i++)
	{
		if (fabs(f->value[i]) > 1e100 || f->cover[i] > 1e100)
			moderate = false;
		scale += fabs(f->value[i]);
	}
	phi_rec = palloc0(sizeof(double) * m->nfeatures);
	f->shap = NULL;
	ForestShap(f, x, phi_rec);
	f->shap = tables;
	if (f->shap == NULL)
		ForestShapPrepare(f, 4096);
	phi = palloc0(sizeof(double) * m->nfeatures);
	ForestShap(f, x, phi);
	for (int j = 0; j < m->nfeatures; j++)
		if (moderate && fabs(phi[j] - phi_rec[j]) > 1e-9 * scale)
			FuzzFail("feature %d: %.17g from the tables, %.17g by the recursion",
					 j, phi[j], phi_rec[j]);
	pfree(phi_rec);
	total = f->expected_margin;
	for (int j = 0; j < m->nfeatures; j++)
		total += phi[j];
	sink += total;
	if (moderate && fabs(total - ForestMargin(f, x)) > 1e-9 * scale)
		FuzzFail("explanation adds up to %.17g, the margin is %.17g",
				 total, ForestMargin(f, x));
	pfree(phi);
}

/*
 * Walk every tree for a few rows as the scorers do (PredictProbability's
 * node walk and ForestDenseWalk), with a step bound that a well-formed
 * tree never reaches.
 */
static void
WalkTrees(CrModel *m)
{
	int			D = m->forest.dense.depth;
	int			nint = (1 << D) - 1;
	double	   *x = palloc(sizeof(double) * m->nfeatures);
	uint16	   *code = palloc(sizeof(uint16) * 2 * m->nfeatures);
	double		margin[NROWS];
	double	   *block = NULL;

	/* a block of FOREST_BLOCK rows: only for a few features, it is large */
	if (m->nfeatures <= 16 && m->forest.tree_start[m->forest.ntrees] <= 4096)
		block = palloc0(sizeof(double) * FOREST_BLOCK * m->nfeatures);
	for (int r = 0; r < NROWS; r++)
	{
		MakeRow(m, r, x);
		margin[r] = m->forest.base_margin;
		if (D > 0)
			for (int j = 0; j < m->nfeatures; j++)
			{
				code[j] = ForestCode(&m->forest.dense, j, x[j]);
				code[m->nfeatures + j] = (uint16) (code[j] - 1);
			}
		for (int t = 0; t < m->forest.ntrees; t++)
		{
			int32		start = m->forest.tree_start[t];
			int32		n = m->forest.tree_start[t + 1] - start;
			int32		node = 0;
			int32		steps = 0;
			int32		f;

			while ((f = m->forest.feature[start + node]) >= 0)
			{
				double		v = x[f];
				int32		k = m->forest.cat_set != NULL ? m->forest.cat_set[start + node] : -1;
				bool		left;

				if (isnan(v))
					left = m->forest.default_left[start + node];
				else if (k >= 0)
				{
					/* the code's bit, for a whole code 0..255; else right */
					left = v >= 0.0 && v < 256.0 &&
						((m->forest.cat_bits[(Size) k * FOREST_CAT_WORDS + ((int) v >> 6)]
						  >> ((int) v & 63)) & 1);
				}
				else
					left = v < m->forest.threshold[start + node];

				node = left ? m->forest.left[start + node] : m->forest.right[start + node];
				if (node < 0 || node >= n || ++steps > n)
					FuzzFail("walk of tree %d left the tree at node %d", t, node);
			}
			if (D > 0)
			{
				int			leaf = ForestDenseWalk(m->forest.dense.node + (Size) t * nint, D,
												   code);
				double		dv;

				if (leaf < 0 || leaf > nint)
					FuzzFail("dense walk of tree %d ended at leaf %d of %d", t, leaf, nint + 1);
				dv = m->forest.dense.leaf[(Size) t * (nint + 1) + leaf];
				if (dense_oracle && dv != m->forest.value[start + node])
					FuzzFail("tree %d, row %d: dense leaf value %.17g, node walk reaches node %d with %.17g",
							 t, r, dv, node, m->forest.value[start + node]);
				sink += dv;
			}
			sink += m->forest.value[start + node];
			margin[r] += m->forest.value[start + node];
		}
		if ((D == 0 || m->forest.ncat_sets > 0) && ForestMargin(&m->forest, x) != margin[r])
			FuzzFail("row %d: ForestMargin %.17g, the node walk %.17g",
					 r, ForestMargin(&m->forest, x), margin[r]);
		CheckExplanation(m, x);
		for (int j = 0; block != NULL && j < m->nfeatures; j++)
			block[(Size) j * FOREST_BLOCK + r] = x[j];
	}

	/*
	 * The block scorer on the same rows (dense or not), for small forests,
	 * with every credit_risk.simd path this CPU has.  The vector paths
	 * work on whole groups of rows: the margins have room for one.
	 */
	if (block != NULL)
	{
		double		bm[FOREST_GROUP];
		Size		csize = ForestBlockCodesSize(&m->forest);
		uint16	   *codes = csize > 0 ? palloc0(csize) : NULL;
		static const CrSimd paths[] = {CR_SIMD_OFF, CR_SIMD_AVX2, CR_SIMD_AVX512};

		for (int k = 0; k < lengthof(paths); k++)
		{
			if (!CrCpuHasSimd(paths[k]))
				continue;
			cr_simd = paths[k];
			ForestScoreBlock(&m->forest, block, NROWS, codes, bm);
			for (int r = 0; r < NROWS; r++)
				if (bm[r] != ForestMargin(&m->forest, (MakeRow(m, r, x), x)))
					FuzzFail("row %d, simd path %d: block margin %.17g, ForestMargin %.17g",
							 r, (int) paths[k], bm[r], ForestMargin(&m->forest, x));
		}
		cr_simd = CR_SIMD_OFF;
		if (codes != NULL)
			pfree(codes);
		pfree(block);
	}
	pfree(x);
	pfree(code);
}

/*
 * A scorecard's bins as the decoder promises them, and its margin for
 * values at, around and far from every cut, every code and missing.
 */
static void
CheckScorecard(const CrModel *m)
{
	double	   *x = palloc(sizeof(double) * m->nfeatures);

	for (int i = 0; i <= m->nfeatures; i++)
		if (!isfinite(m->coef[i]))
			FuzzFail("decoded scorecard coefficient %d not finite", i);
	for (int j = 0; j < m->nfeatures; j++)
	{
		const CrWoeFeature *w = &m->woe[j];
		const CrCategoryMap *map = m->cats != NULL ? m->cats[j] : NULL;

		if (w->nbins < 0 || w->nbins > CR_MAX_WOE_BINS)
			FuzzFail("feature %d has %d scorecard bins", j, w->nbins);
		for (int b = 0; b <= w->nbins; b++)
			if (!isfinite(w->woe[b]) || w->n[b] < 0 || w->events[b] < 0 || w->events[b] > w->n[b])
				FuzzFail("feature %d, bin %d: WoE or counts invalid", j, b);
		if (map != NULL)
		{
			if (w->ncodes != map->nlevels + 1)
				FuzzFail("feature %d has %d codes for %d levels", j, w->ncodes, map->nlevels);
			for (int c = 0; c < w->ncodes; c++)
				if (w->code_bin[c] < -1 || w->code_bin[c] >= w->nbins)
					FuzzFail("feature %d, code %d in bin %d of %d", j, c, w->code_bin[c], w->nbins);
		}
		else
		{
			if (w->ncodes != 0)
				FuzzFail("numeric feature %d has codes", j);
			for (int b = 0; b + 1 < w->nbins; b++)
				if (!isfinite(w->cuts[b]) || (b > 0 && w->cuts[b] <= w->cuts[b - 1]))
					FuzzFail("feature %d: scorecard cuts not increasing", j);
		}
	}
	for (int r = 0; r < NROWS; r++)
	{
		for (int j = 0; j < m->nfeatures; j++)
		{
			const CrWoeFeature *w = &m->woe[j];
			static const double far[] = {NAN, -1e308, 1e308, -1.0, 0.0, 1e9, -INFINITY, INFINITY};
			int			b;

			if (r < lengthof(far))
				x[j] = far[r];
			else if (w->ncodes > 0)
				x[j] = (double) (r % (w->ncodes + 2)) - 1.0;
			else if (w->nbins > 1)
				x[j] = w->cuts[r % (w->nbins - 1)] + ((r / 2) % 3 - 1) * 1e-9;
			else
				x[j] = r;
			if (isnan(x[j]))
				continue;
			b = ModelWoeBin(w, x[j]);
			if (b < -1 || b >= Max(w->nbins, 1))
				FuzzFail("feature %d: value %g in bin %d of %d", j, x[j], b, w->nbins);
			if (w->ncodes == 0 && w->nbins > 0 &&
				((b > 0 && !(w->cuts[b - 1] <= x[j])) || (b < w->nbins - 1 && !(x[j] < w->cuts[b]))))
				FuzzFail("feature %d: value %g in the wrong bin %d", j, x[j], b);
		}
		sink += ModelScorecardMargin(m, x);
	}
	pfree(x);
}

/* A calibration as the decoder promises it, applied to margins far and near. */
static void
CheckCalibration(const CrCalibration *c)
{
	static const double margins[] = {-800, -40, -1, 0, 1e-300, 0.5, 3, 40, 800};

	if (c->method == CR_CALIBRATION_PLATT)
	{
		if (!isfinite(c->a) || !isfinite(c->b))
			FuzzFail("Platt calibration not finite");
	}
	else if (c->method == CR_CALIBRATION_ISOTONIC)
	{
		if (c->npoints < 1 || c->npoints > CR_MAX_CALIBRATION_POINTS)
			FuzzFail("isotonic calibration with %d points", c->npoints);
		for (int i = 0; i < c->npoints; i++)
			if (!(c->x[i] >= 0 && c->x[i] <= 1 && c->y[i] >= 0 && c->y[i] <= 1) ||
				(i > 0 && (c->x[i] <= c->x[i - 1] || c->y[i] < c->y[i - 1])))
				FuzzFail("isotonic point %d out of order or range", i);
	}
	else
		FuzzFail("calibration method %d", (int) c->method);
	for (int i = 0; i < lengthof(margins); i++)
	{
		double		p = CalibrationApply(c, margins[i]);

		if (c->method == CR_CALIBRATION_ISOTONIC && !(p >= 0.0 && p <= 1.0))
			FuzzFail("isotonic calibration gives %g", p);
		sink += p;
	}
}

static void
CheckModel(const CrModel *m, const char *bytes, size_t size)
{
	if (m->algorithm != CR_ALGO_LOGISTIC && m->algorithm != CR_ALGO_GBM &&
		m->algorithm != CR_ALGO_SCORECARD)
		FuzzFail("decoded algorithm %d", (int) m->algorithm);
	if (m->format_version < 1 || m->format_version > CR_FORMAT_VERSION ||
		m->nbytes != size || ModelPeekChecksum(bytes, size) != m->checksum)
		FuzzFail("decoded header fields do not match the bytes");
	if (m->nfeatures < 1 || m->nfeatures > CR_MAX_FEATURES)
		FuzzFail("decoded feature count %d", m->nfeatures);
	for (int f = 0; f < m->nfeatures; f++)
	{
		CheckName("feature name", m->features[f]);
		if (!isfinite(m->impute[f]))
			FuzzFail("decoded imputation value %d not finite", f);
	}
	CheckScoring(&m->scoring);
	if (m->baseline != NULL)
		CheckBaseline(m);
	if ((m->calibration != NULL) != (m->format_version == 4))
		FuzzFail("format %d with%s a calibration", m->format_version,
				 m->calibration != NULL ? "" : "out");
	if (m->calibration != NULL)
		CheckCalibration(m->calibration);

	if (m->algorithm == CR_ALGO_SCORECARD)
	{
		CheckScorecard(m);
		return;
	}
	if (m->algorithm == CR_ALGO_LOGISTIC)
	{
		for (int i = 0; i <= m->nfeatures; i++)
		{
			if (!isfinite(m->coef[i]) || m->std_error[i] < 0.0 || isinf(m->std_error[i]))
				FuzzFail("decoded coefficient %d or its standard error invalid", i);
			sink += m->coef[i];
		}
		return;
	}
	CheckTreeArrays(m);
	CheckDenseArrays(m);
	WalkTrees(m);
}

/* ------------------------------------------- the SQL-callable reporters */

static const CrModel *rows_model;
static int64 rows_seen;

/* One cr_model_trees row: (tree, node, feature, threshold, left, right, default_left, value, cover). */
static void
CheckTreeRow(TupleDesc desc, Datum *values, bool *isnull)
{
	int32		t = DatumGetInt32(values[0]);
	int32		k = DatumGetInt32(values[1]);
	int32		i;

	if (isnull[0] || isnull[1] || isnull[7] || isnull[8] ||
		t < 0 || t >= rows_model->forest.ntrees || k < 0 ||
		k >= rows_model->forest.tree_start[t + 1] - rows_model->forest.tree_start[t])
		FuzzFail("cr_model_trees row names tree %d node %d", t, k);
	i = rows_model->forest.tree_start[t] + k;
	if (isnull[2] != (rows_model->forest.feature[i] < 0))
		FuzzFail("cr_model_trees row for tree %d node %d: leaf and feature disagree", t, k);
	if (!isnull[2])
	{
		text	   *name = DatumGetTextPP(values[2]);

		if (VARSIZE_ANY_EXHDR(name) != strlen(rows_model->features[rows_model->forest.feature[i]]))
			FuzzFail("cr_model_trees row for tree %d node %d: wrong feature name", t, k);
		sink += DatumGetFloat8(values[3]) + DatumGetInt32(values[4]) +
			DatumGetInt32(values[5]) + DatumGetBool(values[6]);
	}
	sink += DatumGetFloat8(values[7]) + DatumGetFloat8(values[8]);
	rows_seen++;
}

/*
 * Whatever ModelDecode accepts, cr_model_info must describe (as JSON that
 * jsonb_in takes) and cr_model_trees must list, node for node.
 */
static void
CheckSqlFunctions(const CrModel *m, const char *bytes, size_t size)
{
	bytea	   *value = palloc(size + VARHDRSZ);
	sigjmp_buf	jb;
	LOCAL_FCINFO(fcinfo, 1);
	ReturnSetInfo rsinfo;

	SET_VARSIZE(value, size + VARHDRSZ);
	memcpy(VARDATA(value), bytes, size);

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) != 0)
		FuzzFail("cr_model_info failed on bytes ModelDecode accepted: %s (%s)",
				 fuzz_error.message, fuzz_error.detail);
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = PointerGetDatum(value);
	fcinfo->args[0].isnull = false;
	(void) cr_model_info(fcinfo);
	fuzz_catch = NULL;

	memset(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.allowedModes = SFRM_Materialize;
	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, (Node *) &rsinfo);
	fcinfo->args[0].value = PointerGetDatum(value);
	fcinfo->args[0].isnull = false;
	rows_model = m;
	rows_seen = 0;
	fuzz_row_hook = CheckTreeRow;
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		(void) cr_model_trees(fcinfo);
		fuzz_catch = NULL;
		if (m->algorithm != CR_ALGO_GBM)
			FuzzFail("cr_model_trees listed a model without trees");
		if (rows_seen != m->forest.tree_start[m->forest.ntrees])
			FuzzFail("cr_model_trees gave " INT64_FORMAT " rows for %d nodes",
					 rows_seen, m->forest.tree_start[m->forest.ntrees]);
	}
	else
	{
		fuzz_catch = NULL;
		if (m->algorithm == CR_ALGO_GBM)
			FuzzFail("cr_model_trees failed on a tree model ModelDecode accepted: %s",
					 fuzz_error.message);
	}
	fuzz_row_hook = NULL;
}

static void
DecodeAndCheck(const char *bytes, size_t size)
{
	CrModel    *volatile m = NULL;
	sigjmp_buf	jb;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
		m = ModelDecode(bytes, size);
	fuzz_catch = NULL;
	if (m != NULL)
	{
		CheckModel(m, bytes, size);
		CheckSqlFunctions(m, bytes, size);
	}
	FuzzMemReset();
}

/* Rewrite the header's length and checksum to match the bytes. */
static void
FixHeader(uint8 *b, size_t size)
{
	pg_crc32c	crc;

	for (int i = 0; i < 4; i++)
		b[12 + i] = (uint8) ((uint32) size >> (8 * i));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, b, 16);
	COMP_CRC32C(crc, b + CR_HEADER_SIZE, size - CR_HEADER_SIZE);
	FIN_CRC32C(crc);
	for (int i = 0; i < 4; i++)
		b[16 + i] = (uint8) ((uint32) crc >> (8 * i));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8	   *fixed;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	DecodeAndCheck((const char *) data, size);
	if (size < CR_HEADER_SIZE)
		return 0;

	/* an exact-size copy, so a read past the end is still caught */
	fixed = malloc(size);
	memcpy(fixed, data, size);
	FixHeader(fixed, size);
	if (memcmp(fixed + 12, data + 12, 8) != 0)
		DecodeAndCheck((const char *) fixed, size);
	free(fixed);
	return 0;
}
