/*
 * export.c
 *	  cr_export: a model version as one jsonb document for audit, and for
 *	  tree models the same trees in XGBoost's JSON model format.
 *
 * The document repeats what the registry row records (params, metrics,
 * importance, row counts) and spells out everything the model bytes hold:
 * features with their training means, the scoring settings, the
 * coefficients or every tree node, and the drift baselines.  Numbers are
 * written in their shortest exact decimal form, so each converts back to
 * the same double.
 *
 * The XGBoost member follows the schema XGBoost 1.7's Booster.save_model
 * writes for a binary:logistic gbtree, so that xgboost.Booster(model_file=)
 * loads it.  XGBoost holds thresholds, leaf values, covers and base_score
 * as 32-bit floats and reads features as 32-bit floats; each value is
 * written as the float nearest to it.  A double threshold t becomes the
 * float nearest t, which sends every value the same way as t does except
 * values that become that very float (XGBoost cannot tell them from t).
 * XGBoost's JSON reader also tells integers from numbers, so every float is
 * written with a decimal point (jsonb keeps it).
 *
 * A categorical feature's value is its code (category.h); the document
 * lists each such feature's levels, whose index is their code (the code
 * after the last level is "other"), and each category split's codes that
 * go left.  XGBoost 1.7 has category splits of its own (split_type 1), but
 * sends a category in its list right and one missing from it left: its
 * list is the complement of ours, over the codes the feature has.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "credit_risk.h"
#include "export.h"
#include "metrics.h"
#include "model.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_export);
PG_FUNCTION_INFO_V1(cr_export_bytes);

/* XGBoost's parent of a root node */
#define XGB_NO_PARENT		2147483647

/*
 * A double as the 32-bit float nearest to it, written so that XGBoost's
 * reader sees a number (not an integer) and gets that float back.  Values
 * past the float range become the largest float of their sign.
 */
static void
AppendFloat32(StringInfo buf, double v)
{
	char		tmp[FLOAT_SHORTEST_DECIMAL_LEN];
	float		f;

	if (v > FLT_MAX)
		f = FLT_MAX;
	else if (v < -FLT_MAX)
		f = -FLT_MAX;
	else
		f = (float) v;
	float_to_shortest_decimal_buf(f, tmp);
	if (strchr(tmp, 'e') != NULL && fabsf(f) >= 1.0f)
	{
		/* numeric_in keeps no decimal point for "1e+20": write it out */
		appendStringInfo(buf, "%.1f", (double) f);
		return;
	}
	appendStringInfoString(buf, tmp);
	if (strchr(tmp, '.') == NULL && strchr(tmp, 'e') == NULL)
		appendStringInfoString(buf, ".0");
}

static void
AppendDoubleArray(StringInfo buf, const double *v, int n)
{
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		CrAppendDouble(buf, v[i]);
	}
	appendStringInfoChar(buf, ']');
}

static void
AppendKeyDouble(StringInfo buf, const char *key, double v)
{
	appendStringInfo(buf, ", \"%s\": ", key);
	CrAppendDouble(buf, v);
}

/*
 * A scorecard: the intercept, and per feature its coefficient on WoE and
 * its bins in order, the missing one (bin 0) last: a number's bounds
 * (lower <= x < upper, null for an open end), a categorical feature's
 * levels (a level without training rows scores WoE 0 and is in no bin),
 * each bin's WoE and training rows and events.  PD = sigmoid(intercept +
 * the sum of coefficient * WoE).
 */
static void
ExportScorecard(StringInfo buf, const CrModel *m)
{
	appendStringInfoString(buf, ", \"scorecard\": {\"intercept\": ");
	CrAppendDouble(buf, m->coef[0]);
	appendStringInfoString(buf, ", \"intercept_std_error\": ");
	CrAppendDouble(buf, m->std_error[0]);
	appendStringInfoString(buf, ", \"features\": [");
	for (int j = 0; j < m->nfeatures; j++)
	{
		const CrWoeFeature *w = &m->woe[j];
		const CrCategoryMap *map = m->cats != NULL ? m->cats[j] : NULL;

		appendStringInfoString(buf, j > 0 ? ", {\"feature\": " : "{\"feature\": ");
		escape_json(buf, m->features[j]);
		AppendKeyDouble(buf, "coefficient", m->coef[j + 1]);
		AppendKeyDouble(buf, "std_error", m->std_error[j + 1]);
		appendStringInfoString(buf, ", \"bins\": [");
		for (int i = 0; i <= w->nbins; i++)
		{
			bool		missing = i == w->nbins;

			appendStringInfo(buf, "%s{\"bin\": %d", i > 0 ? ", " : "", missing ? 0 : i + 1);
			if (missing)
				appendStringInfoString(buf, ", \"missing\": true");
			else if (map != NULL)
			{
				bool		first = true;

				appendStringInfoString(buf, ", \"levels\": [");
				for (int c = 0; c < w->ncodes; c++)
				{
					if (w->code_bin[c] != i)
						continue;
					if (!first)
						appendStringInfoString(buf, ", ");
					escape_json(buf, c < map->nlevels ? map->levels[c] : "(other)");
					first = false;
				}
				appendStringInfoChar(buf, ']');
			}
			else
			{
				appendStringInfoString(buf, ", \"lower\": ");
				if (i > 0)
					CrAppendDouble(buf, w->cuts[i - 1]);
				else
					appendStringInfoString(buf, "null");
				appendStringInfoString(buf, ", \"upper\": ");
				if (i < w->nbins - 1)
					CrAppendDouble(buf, w->cuts[i]);
				else
					appendStringInfoString(buf, "null");
			}
			AppendKeyDouble(buf, "woe", w->woe[i]);
			appendStringInfo(buf, ", \"n\": " INT64_FORMAT ", \"events\": " INT64_FORMAT "}",
							 w->n[i], w->events[i]);
		}
		appendStringInfoString(buf, "]}");
	}
	appendStringInfoString(buf, "]}");
}

/*
 * The children of tree nodes start .. start + n - 1 in child (f->left or
 * f->right) as a JSON array's elements, -1 for a leaf.
 */
static void
AppendChildren(StringInfo buf, const CrForest *f, int32 start, int32 n, const int32 *child)
{
	for (int32 i = 0; i < n; i++)
		appendStringInfo(buf, "%s%d", i > 0 ? ", " : "",
						 f->feature[start + i] >= 0 ? child[start + i] : -1);
}

/* one drift baseline: {"cuts": [...], "shares": [...], "missing": m} */
static void
AppendBaseline(StringInfo buf, const CrBaseline *b)
{
	appendStringInfoString(buf, "\"cuts\": ");
	AppendDoubleArray(buf, b->cuts, b->ncuts);
	appendStringInfoString(buf, ", \"shares\": ");
	AppendDoubleArray(buf, b->shares, b->ncuts + 1);
	AppendKeyDouble(buf, "missing", b->missing);
}

/* Whether node k (absolute) of a forest splits on a set of codes. */
static inline bool
ExportIsCatSplit(const CrForest *f, int32 k)
{
	return f->cat_set != NULL && f->cat_set[k] >= 0 && f->feature[k] >= 0;
}

/* Whether code c is in the category set of node k. */
static inline bool
ExportCatHas(const CrForest *f, int32 k, int c)
{
	return ForestCatLeft(f->cat_bits + (Size) f->cat_set[k] * FOREST_CAT_WORDS, (double) c);
}

/*
 * XGBoost's categories of category split k: the feature's codes (levels
 * and other) that do not go left.  XGBoost refuses a split with an empty
 * list; when every code goes left, the list holds the first code past
 * them, which no value is coded as.  Returns how many were written.
 */
static int
AppendXgboostCats(StringInfo buf, const CrModel *m, int32 k, bool first)
{
	const CrForest *f = &m->forest;
	int			ncodes = m->cats[f->feature[k]]->nlevels + 1;
	int			n = 0;

	for (int c = 0; c < ncodes; c++)
		if (!ExportCatHas(f, k, c))
		{
			appendStringInfo(buf, "%s%d", first && n == 0 ? "" : ", ", c);
			n++;
		}
	if (n == 0)
	{
		appendStringInfo(buf, "%s%d", first ? "" : ", ", ncodes);
		n++;
	}
	return n;
}

/*
 * The trees in XGBoost 1.7's JSON model format (binary:logistic, gbtree).
 * Node numbers are kept: XGBoost needs no particular order, only that the
 * parents array agree with the children arrays, which the decoder has
 * checked (every node but a root has exactly one parent).
 */
bool
ExportXgboostShiftsBase(double base_margin)
{
	float		p = (float) CrSigmoid(base_margin);
	double		back;

	if (!(p > FLT_MIN && p < 1.0f))
		return true;
	back = log((double) p / (1.0 - (double) p));
	return fabs(back - base_margin) > 1e-7 * (1.0 + fabs(base_margin));
}

void
ExportXgboost(StringInfo buf, const CrModel *m)
{
	const CrForest *f = &m->forest;
	double		base_score = CrSigmoid(f->base_margin);
	double		shift = 0.0;
	char		nfeat[16];

	snprintf(nfeat, sizeof(nfeat), "%d", m->nfeatures);

	if (ExportXgboostShiftsBase(f->base_margin))
	{
		shift = f->base_margin;
		base_score = 0.5;
	}

	appendStringInfoString(buf, "{\"version\": [1, 7, 0], \"learner\": {\"attributes\": {}, \"feature_names\": [");
	for (int j = 0; j < m->nfeatures; j++)
	{
		if (j > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, m->features[j]);
	}
	appendStringInfoString(buf, "], \"feature_types\": [");
	/* a model without categorical features keeps XGBoost's default: none */
	for (int j = 0; m->cats != NULL && j < m->nfeatures; j++)
		appendStringInfo(buf, "%s\"%s\"", j > 0 ? ", " : "",
						 m->cats[j] != NULL ? "c" : "float");
	appendStringInfoString(buf, "], \"learner_model_param\": {\"base_score\": \"");
	{
		char		tmp[FLOAT_SHORTEST_DECIMAL_LEN];

		float_to_shortest_decimal_buf((float) base_score, tmp);
		appendStringInfoString(buf, tmp);
	}
	appendStringInfo(buf, "\", \"boost_from_average\": \"0\", \"num_class\": \"0\", "
					 "\"num_feature\": \"%s\", \"num_target\": \"1\"}, "
					 "\"objective\": {\"name\": \"binary:logistic\", "
					 "\"reg_loss_param\": {\"scale_pos_weight\": \"1\"}}, "
					 "\"gradient_booster\": {\"name\": \"gbtree\", \"model\": {"
					 "\"gbtree_model_param\": {\"num_parallel_tree\": \"1\", "
					 "\"num_trees\": \"%d\", \"size_leaf_vector\": \"0\"}, "
					 "\"tree_info\": [",
					 nfeat, f->ntrees);
	for (int t = 0; t < f->ntrees; t++)
		appendStringInfoString(buf, t > 0 ? ", 0" : "0");
	appendStringInfoString(buf, "], \"trees\": [");

	for (int t = 0; t < f->ntrees; t++)
	{
		int32		start = f->tree_start[t];
		int32		n = f->tree_start[t + 1] - start;
		int32	   *parent;

		CHECK_FOR_INTERRUPTS();
		parent = palloc(sizeof(int32) * n);
		parent[0] = XGB_NO_PARENT;
		for (int32 i = 0; i < n; i++)
			if (f->feature[start + i] >= 0)
			{
				parent[f->left[start + i]] = i;
				parent[f->right[start + i]] = i;
			}

		appendStringInfo(buf, "%s{\"id\": %d, \"tree_param\": {\"num_deleted\": \"0\", "
						 "\"num_feature\": \"%s\", \"num_nodes\": \"%d\", "
						 "\"size_leaf_vector\": \"0\"}",
						 t > 0 ? ", " : "", t, nfeat, n);

		/* the internal nodes' weights, and leaf values (shifted in tree 0) */
		appendStringInfoString(buf, ", \"base_weights\": [");
		for (int32 i = 0; i < n; i++)
		{
			appendStringInfoString(buf, i > 0 ? ", " : "");
			AppendFloat32(buf, f->value[start + i] + (t == 0 ? shift : 0.0));
		}
		appendStringInfoString(buf, "], \"split_conditions\": [");
		for (int32 i = 0; i < n; i++)
		{
			int32		k = start + i;

			appendStringInfoString(buf, i > 0 ? ", " : "");
			if (f->feature[k] >= 0)
				AppendFloat32(buf, f->threshold[k]);
			else
				AppendFloat32(buf, f->value[k] + (t == 0 ? shift : 0.0));
		}
		appendStringInfoString(buf, "], \"sum_hessian\": [");
		for (int32 i = 0; i < n; i++)
		{
			appendStringInfoString(buf, i > 0 ? ", " : "");
			AppendFloat32(buf, f->cover[start + i]);
		}
		/* split gains are not kept in the model bytes */
		appendStringInfoString(buf, "], \"loss_changes\": [");
		for (int32 i = 0; i < n; i++)
			appendStringInfoString(buf, i > 0 ? ", 0.0" : "0.0");

		appendStringInfoString(buf, "], \"left_children\": [");
		AppendChildren(buf, f, start, n, f->left);
		appendStringInfoString(buf, "], \"right_children\": [");
		AppendChildren(buf, f, start, n, f->right);
		appendStringInfoString(buf, "], \"parents\": [");
		for (int32 i = 0; i < n; i++)
			appendStringInfo(buf, "%s%d", i > 0 ? ", " : "", parent[i]);
		appendStringInfoString(buf, "], \"split_indices\": [");
		for (int32 i = 0; i < n; i++)
			appendStringInfo(buf, "%s%d", i > 0 ? ", " : "",
							 f->feature[start + i] >= 0 ? f->feature[start + i] : 0);
		appendStringInfoString(buf, "], \"default_left\": [");
		for (int32 i = 0; i < n; i++)
			appendStringInfo(buf, "%s%d", i > 0 ? ", " : "",
							 f->feature[start + i] >= 0 && f->default_left[start + i] ? 1 : 0);
		appendStringInfoString(buf, "], \"split_type\": [");
		for (int32 i = 0; i < n; i++)
			appendStringInfo(buf, "%s%d", i > 0 ? ", " : "",
							 ExportIsCatSplit(f, start + i) ? 1 : 0);
		if (f->ncat_sets == 0)
			appendStringInfoString(buf, "], \"categories\": [], \"categories_nodes\": [], "
								   "\"categories_segments\": [], \"categories_sizes\": []}");
		else
		{
			int32	   *size = palloc0(sizeof(int32) * n);
			int64		at = 0;
			bool		first = true;

			/* the lists of the category splits in node order, one after another */
			appendStringInfoString(buf, "], \"categories\": [");
			for (int32 i = 0; i < n; i++)
				if (ExportIsCatSplit(f, start + i))
				{
					size[i] = AppendXgboostCats(buf, m, start + i, first);
					first = false;
				}
			appendStringInfoString(buf, "], \"categories_nodes\": [");
			first = true;
			for (int32 i = 0; i < n; i++)
				if (size[i] > 0)
				{
					appendStringInfo(buf, "%s%d", first ? "" : ", ", i);
					first = false;
				}
			appendStringInfoString(buf, "], \"categories_segments\": [");
			first = true;
			for (int32 i = 0; i < n; i++)
				if (size[i] > 0)
				{
					appendStringInfo(buf, "%s" INT64_FORMAT, first ? "" : ", ", at);
					at += size[i];
					first = false;
				}
			appendStringInfoString(buf, "], \"categories_sizes\": [");
			first = true;
			for (int32 i = 0; i < n; i++)
				if (size[i] > 0)
				{
					appendStringInfo(buf, "%s%d", first ? "" : ", ", size[i]);
					first = false;
				}
			appendStringInfoString(buf, "]}");
			pfree(size);
		}
		pfree(parent);
	}
	appendStringInfoString(buf, "]}}}}");
}

/*
 * Everything the model bytes hold, as the members of one JSON object
 * (without its braces).
 */
static void
AppendModel(StringInfo buf, const CrModel *m)
{
	appendStringInfoString(buf, "\"algorithm\": ");
	escape_json(buf, ModelAlgorithmName(m->algorithm));
	appendStringInfo(buf, ", \"format_version\": %d, \"bytes\": %zu, \"checksum\": %u",
					 m->format_version, m->nbytes, m->checksum);

	appendStringInfoString(buf, ", \"features\": [");
	for (int j = 0; j < m->nfeatures; j++)
	{
		appendStringInfoString(buf, j > 0 ? ", {\"name\": " : "{\"name\": ");
		escape_json(buf, m->features[j]);
		AppendKeyDouble(buf, "impute", m->impute[j]);
		if (m->cats != NULL && m->cats[j] != NULL)
		{
			const CrCategoryMap *map = m->cats[j];

			/* a level's code is its index; code nlevels is "other" */
			appendStringInfoString(buf, ", \"levels\": [");
			for (int l = 0; l < map->nlevels; l++)
			{
				if (l > 0)
					appendStringInfoString(buf, ", ");
				escape_json(buf, map->levels[l]);
			}
			appendStringInfo(buf, "], \"other_code\": %d", map->nlevels);
		}
		appendStringInfoChar(buf, '}');
	}

	appendStringInfoString(buf, "], \"scoring\": {\"threshold\": ");
	CrAppendDouble(buf, m->scoring.threshold);
	appendStringInfoString(buf, ", \"risk_bands\": [");
	for (int i = 0; i < m->scoring.nbands; i++)
	{
		appendStringInfoString(buf, i > 0 ? ", {\"label\": " : "{\"label\": ");
		escape_json(buf, m->scoring.labels[i]);
		appendStringInfoString(buf, ", \"below\": ");
		if (i < m->scoring.nbands - 1)
			CrAppendDouble(buf, m->scoring.cutoffs[i]);
		else
			appendStringInfoString(buf, "null");
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoString(buf, "]");
	AppendKeyDouble(buf, "score_points", m->scoring.points_base);
	AppendKeyDouble(buf, "score_odds", m->scoring.odds_base);
	AppendKeyDouble(buf, "score_pdo", m->scoring.pdo);
	appendStringInfoChar(buf, '}');

	appendStringInfoString(buf, ", \"calibration\": ");
	if (m->calibration == NULL)
		appendStringInfoString(buf, "null");
	else
	{
		const CrCalibration *c = m->calibration;

		appendStringInfo(buf, "{\"method\": \"%s\"", CalibrationMethodName(c->method));
		if (c->method == CR_CALIBRATION_PLATT)
		{
			AppendKeyDouble(buf, "a", c->a);
			AppendKeyDouble(buf, "b", c->b);
		}
		else
		{
			appendStringInfoString(buf, ", \"pd\": ");
			AppendDoubleArray(buf, c->x, c->npoints);
			appendStringInfoString(buf, ", \"calibrated_pd\": ");
			AppendDoubleArray(buf, c->y, c->npoints);
		}
		appendStringInfoChar(buf, '}');
	}

	if (m->algorithm == CR_ALGO_LOGISTIC)
	{
		appendStringInfoString(buf, ", \"logistic\": {\"intercept\": ");
		CrAppendDouble(buf, m->coef[0]);
		appendStringInfoString(buf, ", \"intercept_std_error\": ");
		CrAppendDouble(buf, m->std_error[0]);
		appendStringInfoString(buf, ", \"coefficients\": [");
		for (int j = 0; j < m->nfeatures; j++)
		{
			const CrCategoryMap *map = m->cats != NULL ? m->cats[j] : NULL;
			int			at = m->cats != NULL ? m->coef_start[j] : j + 1;

			if (map == NULL)
			{
				appendStringInfoString(buf, j > 0 ? ", {\"feature\": " : "{\"feature\": ");
				escape_json(buf, m->features[j]);
				AppendKeyDouble(buf, "coefficient", m->coef[at]);
				AppendKeyDouble(buf, "std_error", m->std_error[at]);
				appendStringInfoChar(buf, '}');
				continue;
			}

			/*
			 * One coefficient per code, then one for a missing value, each
			 * named feature=level (CategoryLevelName); the reference
			 * level's is 0.
			 */
			for (int g = 0; g <= map->nlevels + 1; g++)
			{
				appendStringInfoString(buf, j > 0 || g > 0 ? ", {\"feature\": " : "{\"feature\": ");
				escape_json(buf, CategoryLevelName(m->features[j], map, g));
				AppendKeyDouble(buf, "coefficient", m->coef[at + g]);
				AppendKeyDouble(buf, "std_error", m->std_error[at + g]);
				if (g == map->reference)
					appendStringInfoString(buf, ", \"reference\": true");
				appendStringInfoChar(buf, '}');
			}
		}
		appendStringInfoString(buf, "]}");
	}
	else if (m->algorithm == CR_ALGO_SCORECARD)
		ExportScorecard(buf, m);
	else
	{
		const CrForest *f = &m->forest;

		appendStringInfoString(buf, ", \"gbm\": {\"base_margin\": ");
		CrAppendDouble(buf, f->base_margin);
		appendStringInfoString(buf, ", \"expected_margin\": ");
		CrAppendDouble(buf, f->expected_margin);
		appendStringInfo(buf, ", \"max_depth\": %d, \"nodes\": %d, \"trees\": [",
						 f->max_depth, f->tree_start[f->ntrees]);
		for (int t = 0; t < f->ntrees; t++)
		{
			int32		start = f->tree_start[t];
			int32		n = f->tree_start[t + 1] - start;

			CHECK_FOR_INTERRUPTS();
			appendStringInfoString(buf, t > 0 ? ", {\"feature\": [" : "{\"feature\": [");
			for (int32 i = 0; i < n; i++)
				appendStringInfo(buf, "%s%d", i > 0 ? ", " : "", f->feature[start + i]);
			appendStringInfoString(buf, "], \"threshold\": [");
			for (int32 i = 0; i < n; i++)
			{
				appendStringInfoString(buf, i > 0 ? ", " : "");
				if (f->feature[start + i] >= 0)
					CrAppendDouble(buf, f->threshold[start + i]);
				else
					appendStringInfoString(buf, "null");
			}
			appendStringInfoString(buf, "], \"left\": [");
			AppendChildren(buf, f, start, n, f->left);
			appendStringInfoString(buf, "], \"right\": [");
			AppendChildren(buf, f, start, n, f->right);
			appendStringInfoString(buf, "], \"default_left\": [");
			for (int32 i = 0; i < n; i++)
				appendStringInfo(buf, "%s%s", i > 0 ? ", " : "",
								 f->feature[start + i] >= 0 && f->default_left[start + i] ? "true" : "false");
			if (f->ncat_sets > 0)
			{
				/* per node: null, or the codes of a category split that go left */
				appendStringInfoString(buf, "], \"categories\": [");
				for (int32 i = 0; i < n; i++)
				{
					int32		k = start + i;

					appendStringInfoString(buf, i > 0 ? ", " : "");
					if (!ExportIsCatSplit(f, k))
					{
						appendStringInfoString(buf, "null");
						continue;
					}
					appendStringInfoChar(buf, '[');
					for (int c = 0, nc = 0; c < 256; c++)
						if (ExportCatHas(f, k, c))
							appendStringInfo(buf, "%s%d", nc++ > 0 ? ", " : "", c);
					appendStringInfoChar(buf, ']');
				}
			}
			appendStringInfoString(buf, "], \"value\": ");
			AppendDoubleArray(buf, f->value + start, n);
			appendStringInfoString(buf, ", \"cover\": ");
			AppendDoubleArray(buf, f->cover + start, n);
			appendStringInfoChar(buf, '}');
		}
		appendStringInfoString(buf, "]}, \"xgboost\": ");
		ExportXgboost(buf, m);
	}

	appendStringInfoString(buf, ", \"drift_baseline\": ");
	if (m->baseline == NULL)
		appendStringInfoString(buf, "null");
	else
	{
		appendStringInfoString(buf, "{\"psi_moderate\": ");
		CrAppendDouble(buf, m->drift_moderate);
		AppendKeyDouble(buf, "psi_major", m->drift_major);
		appendStringInfoString(buf, ", \"features\": [");
		for (int j = 0; j < m->nfeatures; j++)
		{
			appendStringInfoString(buf, j > 0 ? ", {\"feature\": " : "{\"feature\": ");
			escape_json(buf, m->features[j]);
			appendStringInfoString(buf, ", ");
			AppendBaseline(buf, &m->baseline[j]);
			appendStringInfoChar(buf, '}');
		}
		appendStringInfoString(buf, "], \"score\": {");
		AppendBaseline(buf, &m->baseline[m->nfeatures]);
		appendStringInfoString(buf, "}}");
	}
}

static Datum
ExportJsonb(const CrModel *m)
{
	StringInfoData buf;
	Datum		result;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	AppendModel(&buf, m);
	appendStringInfoChar(&buf, '}');
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data));
	pfree(buf.data);
	return result;
}

/*
 * cr_export(model bytea) returns jsonb: what the bytes hold, for a model
 * passed as a value.
 */
Datum
cr_export_bytes(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	CrModel    *m = ModelDecode(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));

	PG_RETURN_DATUM(ExportJsonb(m));
}

/*
 * cr_export(name, version DEFAULT NULL) returns jsonb: a registered version
 * (the serving one when version is NULL), its registry row and its bytes.
 * The row is read with the caller's rights, as scoring reads it.
 */
Datum
cr_export(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	char	   *name;
	int32		version;
	CrCachedModel *entry;
	Datum		row;
	Datum		arg;
	bool		isnull;
	int			rc;

	name = RegistryNameArg(fcinfo, 0);
	version = RegistryVersionArg(fcinfo, 1);
	entry = RegistryLookup(name, version);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	arg = Int64GetDatum(entry->id);
	rc = SPI_execute_with_args("SELECT pg_catalog.jsonb_build_object("
							   "'export_format', 1, "
							   "'name', name, 'version', version, "
							   "'model', name OPERATOR(pg_catalog.||) '@' OPERATOR(pg_catalog.||) version, "
							   "'status', status, 'created_at', created_at, "
							   "'created_by', created_by, 'source', source, 'label', label, "
							   "'params', params, 'metrics', metrics, 'importance', importance, "
							   "'train_rows', train_rows, 'holdout_rows', holdout_rows, "
							   "'train_seconds', train_seconds) "
							   "FROM credit_risk.models WHERE id OPERATOR(pg_catalog.=) $1",
							   1, (Oid[]) {INT8OID}, &arg, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "registry read failed: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model \"%s\" changed while it was being exported", entry->version_label),
				 errhint("Run the export again.")));
	row = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	row = SPI_datumTransfer(row, false, -1);
	SPI_finish();
	MemoryContextSwitchTo(callercxt);

	PG_RETURN_DATUM(DirectFunctionCall2(jsonb_concat, row, ExportJsonb(entry->model)));
}
