/*
 * xgboost.c
 *	  cr_import_xgboost: register a binary classifier saved by XGBoost's
 *	  Booster.save_model (the JSON format of XGBoost 1.x) as a GBM version.
 *
 * The JSON comes from users and is read as hostile input: every key, type,
 * count and index is checked before use, and anything out of place is an
 * ERROR naming it.  The trees are renumbered breadth-first from the root so
 * that the model bytes obey the decoder's rules (a child after its parent,
 * one parent per node); nodes the root does not reach are skipped, as
 * XGBoost leaves pruned nodes in its arrays.  The model is encoded and then
 * decoded again before it is registered, so the registry never holds bytes
 * its own decoder refuses.
 *
 * XGBoost reads features as 32-bit floats and compares them with 32-bit
 * thresholds; leaf values, covers and base_score are 32-bit floats too.
 * Thresholds are therefore stored as the double below which a double rounds
 * to a float under the threshold (XgbThreshold), so that a double goes the
 * way XGBoost sends the float it becomes.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "credit_risk.h"
#include "dataset.h"
#include "drift.h"
#include "metrics.h"
#include "model.h"
#include "params.h"
#include "predict.h"
#include "registry.h"
#include "train.h"
#include "xgboost.h"

PG_FUNCTION_INFO_V1(cr_import_xgboost);

/* the largest tree, and forest, an import takes (model bytes hold 37 bytes a node) */
#define XGB_MAX_TREE_NODES		(1 << 20)
#define XGB_MAX_TOTAL_NODES		(1 << 23)

/* params keys the import takes; the scoring ones go through ParamsParse */
static const char *const XgbParamKeys[] = {
	"label", "baseline_source", "baseline_label", "threshold", "risk_cutoffs",
	"risk_labels", "score_points", "score_odds", "score_pdo", "reasons",
	"drift_moderate", "drift_major", "seed"
};

/* the params of an import that are not scoring params */
typedef struct XgbOptions
{
	char	   *label;			/* the registry's label column */
	char	   *baseline_source;	/* relation or query, or NULL */
	char	   *baseline_label;
} XgbOptions;

/* ------------------------------------------------------- reading the JSON */

static void pg_attribute_noreturn()
XgbBad(const char *path, const char *problem)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid xgboost model: %s %s", path, problem),
			 errhint("Pass the JSON written by XGBoost's Booster.save_model.")));
}

static const char *
XgbTypeName(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "not a json value";
	}
}

/* The value of key in object container c; path names c in messages. */
static JsonbValue *
XgbGet(JsonbContainer *c, const char *path, const char *key, bool required)
{
	JsonbValue *v = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);

	if (v == NULL && required)
		XgbBad(psprintf("%s.%s", path, key), "is missing");
	return v;
}

static JsonbContainer *
XgbContainer(JsonbValue *v, const char *path, bool array)
{
	if (v->type != jbvBinary ||
		(array ? !JsonContainerIsArray(v->val.binary.data)
		 : !JsonContainerIsObject(v->val.binary.data)))
		XgbBad(path, psprintf("must be %s, not %s", array ? "an array" : "an object",
							  XgbTypeName(v)));
	return v->val.binary.data;
}

static JsonbContainer *
XgbObject(JsonbContainer *c, const char *path, const char *key)
{
	char	   *p = psprintf("%s.%s", path, key);

	return XgbContainer(XgbGet(c, path, key, true), p, false);
}

static char *
XgbString(JsonbContainer *c, const char *path, const char *key)
{
	JsonbValue *v = XgbGet(c, path, key, true);

	if (v->type != jbvString)
		XgbBad(psprintf("%s.%s", path, key), psprintf("must be a string, not %s", XgbTypeName(v)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A finite number: a JSON number, or where XGBoost writes its parameters
 * as strings (allow_string), a string holding one.
 */
static double
XgbNumberOrString(const JsonbValue *v, const char *path, bool allow_string)
{
	double		d;

	if (v->type == jbvNumeric)
		d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
											   NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString && allow_string)
	{
		char	   *s = pnstrdup(v->val.string.val, v->val.string.len);
		char	   *end;

		errno = 0;
		d = strtod(s, &end);
		if (end == s || *end != '\0' || errno == ERANGE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid xgboost model: %s is not a number: \"%s\"", path, s)));
	}
	else
		XgbBad(path, psprintf("must be a number, not %s", XgbTypeName(v)));
	if (!isfinite(d))
		XgbBad(path, "is not finite");
	return d;
}

/* An integer within [lo, hi]; a string holding one for a parameter. */
static int64
XgbIntegerOrString(const JsonbValue *v, const char *path, int64 lo, int64 hi,
				   bool allow_string)
{
	double		d = XgbNumberOrString(v, path, allow_string);

	if (d != floor(d) || d < (double) lo || d > (double) hi)
		XgbBad(path, psprintf("must be an integer from " INT64_FORMAT " to " INT64_FORMAT ", not %.17g",
							  lo, hi, d));
	return (int64) d;
}

static int64
XgbInteger(const JsonbValue *v, const char *path, int64 lo, int64 hi)
{
	return XgbIntegerOrString(v, path, lo, hi, false);
}

/* An integer parameter, which XGBoost writes as a string. */
static int64
XgbParamInteger(const JsonbValue *v, const char *path, int64 lo, int64 hi)
{
	return XgbIntegerOrString(v, path, lo, hi, true);
}

/*
 * A 32-bit float, as XGBoost holds every value it writes, rounded from the
 * decimal in one step as XGBoost's reader rounds it.  Through a double, a
 * decimal just past the midpoint of two floats can land on the midpoint
 * and then round to the other float.
 */
static double
XgbFloatOrString(const JsonbValue *v, const char *path, bool allow_string)
{
	char	   *text;
	float		f;

	(void) XgbNumberOrString(v, path, allow_string);
	if (v->type == jbvNumeric)
		text = DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	else
		text = pnstrdup(v->val.string.val, v->val.string.len);
	f = strtof(text, NULL);
	if (!isfinite(f))
		XgbBad(path, "is out of range for a 32-bit float");
	return (double) f;
}

static double
XgbFloat(const JsonbValue *v, const char *path)
{
	return XgbFloatOrString(v, path, false);
}

/*
 * XGBoost sends a row left when (float) x < t.  The double x rounds to a
 * float below t exactly when x is below the midpoint between t and the
 * float before it, or on that midpoint when rounding to even picks the
 * float before (then the least double above the midpoint is the cut).
 * Below -FLT_MAX the float before is -infinity, which a double rounds to
 * from FLT_MAX plus half an ulp of it on, that point included: as if the
 * float before were -2^128, whose significand is even.
 */
static double
XgbThreshold(double t)
{
	float		tf = (float) t;
	float		prev = nextafterf(tf, -INFINITY);
	double		mid;
	uint32		bits;

	if (!isfinite(prev))
	{
		double		half_ulp = ((double) FLT_MAX - (double) nextafterf(FLT_MAX, 0.0f)) / 2.0;

		return nextafter(-(double) FLT_MAX - half_ulp, INFINITY);
	}
	mid = ((double) prev + (double) tf) / 2.0;
	memcpy(&bits, &prev, sizeof(bits));
	if ((bits & 1) == 0)
		mid = nextafter(mid, INFINITY);
	return mid;
}

/* The array under key of a tree, with exactly n elements (or NULL if optional and absent). */
static JsonbContainer *
XgbTreeArray(JsonbContainer *tree, const char *path, const char *key, int32 n, bool required)
{
	JsonbValue *v = XgbGet(tree, path, key, required);
	JsonbContainer *c;
	char	   *p;

	if (v == NULL)
		return NULL;
	p = psprintf("%s.%s", path, key);
	c = XgbContainer(v, p, true);
	if (JsonContainerSize(c) != (uint32) n)
		XgbBad(p, psprintf("has %u elements, not num_nodes (%d)", JsonContainerSize(c), n));
	return c;
}

/* Element i of array c, named path[i] in messages. */
static JsonbValue *
XgbElem(JsonbContainer *c, const char *path, int32 i)
{
	JsonbValue *v = getIthJsonbValueFromContainer(c, (uint32) i);

	if (v == NULL)
		XgbBad(psprintf("%s[%d]", path, i), "is missing");
	return v;
}

/* ------------------------------------------------------------ the trees */

/*
 * Append tree t (the JSON object tree, at path) to the forest: renumbered
 * breadth-first from the root, every reached node checked.
 */
static void
XgbParseTree(JsonbContainer *tree, const char *path, CrForest *f, int t,
			 int nfeatures, XgbImportance *imp)
{
	JsonbContainer *tp = XgbObject(tree, path, "tree_param");
	char	   *tpp = psprintf("%s.tree_param", path);
	int64		n;
	JsonbContainer *left,
			   *right,
			   *index,
			   *cond,
			   *dleft,
			   *hess,
			   *weight,
			   *loss,
			   *stype;
	int32	   *lc,
			   *rc,
			   *newid,
			   *order,
			   *depth;
	int32		start = f->tree_start[t];
	int32		next = 1;
	MemoryContext nodecxt;
	MemoryContext old;

	n = XgbParamInteger(XgbGet(tp, tpp, "num_nodes", true), psprintf("%s.num_nodes", tpp),
				   1, PG_INT32_MAX);
	if (n > XGB_MAX_TREE_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("xgboost tree %d has " INT64_FORMAT " nodes, more than the %d an import takes",
						t, n, XGB_MAX_TREE_NODES)));
	if ((int64) start + n > XGB_MAX_TOTAL_NODES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("xgboost model has more than %d nodes", XGB_MAX_TOTAL_NODES)));

	left = XgbTreeArray(tree, path, "left_children", n, true);
	right = XgbTreeArray(tree, path, "right_children", n, true);
	index = XgbTreeArray(tree, path, "split_indices", n, true);
	cond = XgbTreeArray(tree, path, "split_conditions", n, true);
	dleft = XgbTreeArray(tree, path, "default_left", n, true);
	hess = XgbTreeArray(tree, path, "sum_hessian", n, true);
	weight = XgbTreeArray(tree, path, "base_weights", n, false);
	loss = XgbTreeArray(tree, path, "loss_changes", n, false);
	stype = XgbTreeArray(tree, path, "split_type", n, false);

	/* the shape first: children of every node, then a breadth-first walk */
	lc = palloc(sizeof(int32) * n);
	rc = palloc(sizeof(int32) * n);
	newid = palloc(sizeof(int32) * n);
	order = palloc(sizeof(int32) * n);
	depth = palloc(sizeof(int32) * n);

	/* what reading one node allocates (values, message paths) goes per node */
	nodecxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk import node",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(nodecxt);
	for (int32 i = 0; i < n; i++)
	{
		if ((i & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		MemoryContextReset(nodecxt);
		lc[i] = (int32) XgbInteger(XgbElem(left, "left_children", i),
								   psprintf("%s.left_children[%d]", path, i), -1, n - 1);
		rc[i] = (int32) XgbInteger(XgbElem(right, "right_children", i),
								   psprintf("%s.right_children[%d]", path, i), -1, n - 1);
		if ((lc[i] < 0) != (rc[i] < 0))
			XgbBad(psprintf("%s node %d", path, i), "has one child");
		newid[i] = -1;
	}
	MemoryContextSwitchTo(old);
	newid[0] = 0;
	order[0] = 0;
	depth[0] = 0;
	for (int32 q = 0; q < next; q++)
	{
		int32		i = order[q];

		if (lc[i] < 0)
			continue;
		for (int side = 0; side < 2; side++)
		{
			int32		c = side == 0 ? lc[i] : rc[i];

			if (newid[c] >= 0)
				XgbBad(psprintf("%s node %d", path, c),
					   "is reached twice: the nodes do not form a tree");
			newid[c] = next;
			order[next] = c;
			depth[next] = depth[q] + 1;
			if (depth[next] > FOREST_SHAP_MAX_DEPTH)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("xgboost tree %d is deeper than %d levels", t, FOREST_SHAP_MAX_DEPTH)));
			next++;
		}
	}

	ForestReserve(f, start + next);
	old = MemoryContextSwitchTo(nodecxt);
	for (int32 q = 0; q < next; q++)
	{
		int32		i = order[q];
		int32		k = start + q;
		JsonbValue *dl;
		char	   *np;

		if ((q & 0xFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		MemoryContextReset(nodecxt);
		np = psprintf("%s node %d", path, i);
		f->cover[k] = XgbFloat(XgbElem(hess, "sum_hessian", i), psprintf("%s sum_hessian", np));
		if (f->cover[k] < 0.0)
			XgbBad(psprintf("%s sum_hessian", np), "is negative");
		if (lc[i] < 0)
		{
			f->feature[k] = -1;
			f->threshold[k] = 0.0;
			f->left[k] = -1;
			f->right[k] = -1;
			f->default_left[k] = false;
			f->value[k] = XgbFloat(XgbElem(cond, "split_conditions", i),
								   psprintf("%s leaf value", np));
			continue;
		}
		if (stype != NULL &&
			XgbInteger(XgbElem(stype, "split_type", i), psprintf("%s split_type", np), 0, 1) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("xgboost %s splits on a categorical feature", np),
					 errhint("Only numerical splits can be imported.")));
		f->feature[k] = (int32) XgbInteger(XgbElem(index, "split_indices", i),
										   psprintf("%s split_indices", np), 0, PG_INT32_MAX);
		if (f->feature[k] >= nfeatures)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("xgboost %s splits on feature %d, but the model has %d feature names",
							np, f->feature[k], nfeatures),
					 errhint("Pass one name per feature the model was trained on.")));
		f->threshold[k] = XgbThreshold(XgbFloat(XgbElem(cond, "split_conditions", i),
												psprintf("%s split_conditions", np)));
		f->left[k] = newid[lc[i]];
		f->right[k] = newid[rc[i]];
		dl = XgbElem(dleft, "default_left", i);
		if (dl->type == jbvBool)
			f->default_left[k] = dl->val.boolean;
		else
			f->default_left[k] = XgbInteger(dl, psprintf("%s default_left", np), 0, 1) == 1;
		f->value[k] = weight == NULL ? 0.0
			: XgbFloat(XgbElem(weight, "base_weights", i), psprintf("%s base_weights", np));

		imp->splits[f->feature[k]]++;
		imp->cover[f->feature[k]] += f->cover[k];
		if (loss != NULL)
			imp->gain[f->feature[k]] += XgbFloat(XgbElem(loss, "loss_changes", i),
												 psprintf("%s loss_changes", np));
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(nodecxt);
	pfree(lc);
	pfree(rc);
	pfree(newid);
	pfree(order);
	pfree(depth);
	f->tree_start[t + 1] = start + next;
}

/* ------------------------------------------------------- names and params */

static void
XgbCheckName(const char *name, char **names, int i)
{
	size_t		len = strlen(name);

	if (len == 0 || len > CR_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature name \"%s\" must have 1 to %d bytes", name, CR_MAX_NAME_LEN)));
	for (int j = 0; j < i; j++)
		if (strcmp(names[j], name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature \"%s\" is listed twice", name)));
}

/*
 * The feature names: the features argument when given (it maps the model's
 * features onto columns), else learner.feature_names; both, when given,
 * have one name per feature.
 */
static char **
XgbFeatureNames(JsonbContainer *learner, ArrayType *arg, int *n)
{
	JsonbValue *v = XgbGet(learner, "learner", "feature_names", false);
	JsonbContainer *jn = NULL;
	int			njson = 0;
	char	  **names;

	if (v != NULL)
	{
		jn = XgbContainer(v, "learner.feature_names", true);
		njson = (int) JsonContainerSize(jn);
	}
	if (arg != NULL)
	{
		int			count;

		names = DatasetFeatureNames(arg, &count, NULL);
		if (njson > 0 && njson != count)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("features has %d names but the xgboost model names %d features", count, njson)));
		for (int i = 0; i < count; i++)
			XgbCheckName(names[i], names, i);
		*n = count;
		return names;
	}

	if (njson == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the xgboost model has no feature names"),
				 errhint("Pass the column names in the model's feature order as features.")));
	if (njson > CR_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a model takes at most %d features, not %d", CR_MAX_FEATURES, njson)));
	names = palloc(sizeof(char *) * njson);
	for (int i = 0; i < njson; i++)
	{
		JsonbValue *e = XgbElem(jn, "learner.feature_names", i);

		if (e->type != jbvString)
			XgbBad(psprintf("learner.feature_names[%d]", i),
				   psprintf("must be a string, not %s", XgbTypeName(e)));
		names[i] = pnstrdup(e->val.string.val, e->val.string.len);
		if (strlen(names[i]) != (size_t) e->val.string.len)
			XgbBad(psprintf("learner.feature_names[%d]", i), "holds a zero byte");
		XgbCheckName(names[i], names, i);
	}
	*n = njson;
	return names;
}

/* A non-empty string param. */
static char *
XgbParamString(const char *key, const JsonbValue *v)
{
	if (v->type != jbvString || v->val.string.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.%s must be a non-empty string", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * params: label (the registry's label column), baseline_source and
 * baseline_label, and the scoring and drift params of cr_train, checked by
 * ParamsParse; nothing else applies to an import.
 */
static void
XgbParams(Jsonb *params, CrTrainParams *tp, XgbOptions *opt)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	const char *key = NULL;
	Datum		rest;

	memset(opt, 0, sizeof(*opt));
	opt->label = "label";
	memset(tp, 0, sizeof(*tp));
	tp->algorithm = CR_ALGO_GBM;
	if (params == NULL)
	{
		ParamsParse(NULL, tp);
		return;
	}
	if (!JB_ROOT_IS_OBJECT(params))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params must be a jsonb object")));
	it = JsonbIteratorInit(&params->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = NULL;
			for (int i = 0; i < lengthof(XgbParamKeys); i++)
				if (strlen(XgbParamKeys[i]) == (size_t) v.val.string.len &&
					memcmp(XgbParamKeys[i], v.val.string.val, v.val.string.len) == 0)
					key = XgbParamKeys[i];
			if (key == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown parameter \"%s\" for cr_import_xgboost",
								pnstrdup(v.val.string.val, v.val.string.len)),
						 errhint("Known parameters: label, baseline_source, baseline_label, threshold, risk_cutoffs, risk_labels, score_points, score_odds, score_pdo, reasons, drift_moderate, drift_major, seed.")));
		}
		else if (tok == WJB_VALUE && strcmp(key, "label") == 0)
			opt->label = XgbParamString(key, &v);
		else if (tok == WJB_VALUE && strcmp(key, "baseline_source") == 0)
			opt->baseline_source = XgbParamString(key, &v);
		else if (tok == WJB_VALUE && strcmp(key, "baseline_label") == 0)
			opt->baseline_label = XgbParamString(key, &v);
	}
	if ((opt->baseline_source == NULL) != (opt->baseline_label == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("params.baseline_source and params.baseline_label go together"),
				 errhint("The baseline's metrics need its label column.")));
	rest = JsonbPGetDatum(params);
	rest = DirectFunctionCall2(jsonb_delete, rest, CStringGetTextDatum("label"));
	rest = DirectFunctionCall2(jsonb_delete, rest, CStringGetTextDatum("baseline_source"));
	rest = DirectFunctionCall2(jsonb_delete, rest, CStringGetTextDatum("baseline_label"));
	ParamsParse(DatumGetJsonbP(rest), tp);
}

/*
 * What training data would have given the model, from the rows of
 * params.baseline_source (read with the caller's rights, as cr_train reads
 * its source): imputation means, drift baselines of the features and of
 * the score, and metrics on those rows, appended to metrics.  decoded is
 * the model as the decoder gives it, for scoring.  Returns the row count.
 */
static int64
XgbBaseline(CrModel *model, const CrModel *decoded, const CrTrainParams *tp,
			const XgbOptions *opt, StringInfo metrics)
{
	CrDatasetSpec spec;
	CrDataset  *ds;
	int			p = model->nfeatures;
	double	   *prob;
	double	   *x;
	CrMetrics	m;

	memset(&spec, 0, sizeof(spec));
	spec.source = opt->baseline_source;
	spec.label = opt->baseline_label;
	spec.features = model->features;
	spec.nfeatures = p;
	spec.max_bytes = (Size) cr_train_memory_kb * 1024;
	spec.trainer_bytes_per_row = sizeof(double) * 2;
	ds = DatasetLoad(&spec);

	model->impute = DatasetColumnMeans(ds, NULL, "baseline");

	prob = palloc(sizeof(double) * ds->nrows);
	x = palloc(sizeof(double) * p);
	for (int64 i = 0; i < ds->nrows; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < p; j++)
			x[j] = ds->cols[j][i];
		prob[i] = PredictProbability(decoded, x);
	}
	MetricsCompute(prob, ds->label, ds->nrows, tp->scoring.threshold, &m);
	if (m.positives == 0 || m.positives == ds->nrows)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label column \"%s\" has a single class in the " INT64_FORMAT " baseline rows",
						opt->baseline_label, ds->nrows),
				 errhint("The baseline's metrics need both defaults (1) and non-defaults (0).")));
	appendStringInfoString(metrics, "{\"evaluated_on\": \"baseline\", ");
	MetricsAppendJson(metrics, &m);
	appendStringInfoChar(metrics, '}');

	model->baseline = palloc0(sizeof(CrBaseline) * (p + 1));
	model->drift_moderate = tp->drift_moderate;
	model->drift_major = tp->drift_major;
	TrainBaselines(ds, NULL, tp, model->baseline);
	DriftBaselineBuild(&model->baseline[p], prob, NULL, ds->nrows, tp->seed, NULL);
	return ds->nrows;
}

/* The params the registry stores: what was imported, and the scoring params. */
static char *
XgbParamsJson(const CrTrainParams *tp, const XgbOptions *opt, const char *objective,
			  double base_score, const char *version, int ntrees, int32 nodes)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"imported\": \"xgboost\", \"label\": ");
	escape_json(&b, opt->label);
	if (opt->baseline_source != NULL)
	{
		appendStringInfoString(&b, ", \"baseline_source\": ");
		escape_json(&b, opt->baseline_source);
		appendStringInfoString(&b, ", \"baseline_label\": ");
		escape_json(&b, opt->baseline_label);
		appendStringInfo(&b, ", \"seed\": " INT64_FORMAT ", \"drift_moderate\": ", tp->seed);
		CrAppendDouble(&b, tp->drift_moderate);
		appendStringInfoString(&b, ", \"drift_major\": ");
		CrAppendDouble(&b, tp->drift_major);
	}
	appendStringInfoString(&b, ", \"objective\": ");
	escape_json(&b, objective);
	appendStringInfoString(&b, ", \"base_score\": ");
	CrAppendDouble(&b, base_score);
	appendStringInfoString(&b, ", \"xgboost_version\": ");
	escape_json(&b, version);
	appendStringInfo(&b, ", \"n_trees\": %d, \"nodes\": %d, \"threshold\": ", ntrees, nodes);
	CrAppendDouble(&b, tp->scoring.threshold);
	appendStringInfoString(&b, ", \"risk_cutoffs\": [");
	for (int i = 0; i < tp->scoring.nbands - 1; i++)
	{
		if (i)
			appendStringInfoString(&b, ", ");
		CrAppendDouble(&b, tp->scoring.cutoffs[i]);
	}
	appendStringInfoString(&b, "], \"risk_labels\": [");
	for (int i = 0; i < tp->scoring.nbands; i++)
	{
		if (i)
			appendStringInfoString(&b, ", ");
		escape_json(&b, tp->scoring.labels[i]);
	}
	appendStringInfoString(&b, "], \"score_points\": ");
	CrAppendDouble(&b, tp->scoring.points_base);
	appendStringInfoString(&b, ", \"score_odds\": ");
	CrAppendDouble(&b, tp->scoring.odds_base);
	appendStringInfoString(&b, ", \"score_pdo\": ");
	CrAppendDouble(&b, tp->scoring.pdo);
	appendStringInfo(&b, ", \"reasons\": %s}", tp->reasons ? "true" : "false");
	return b.data;
}

/* "1.7.4" from the JSON's version array; "unknown" when it has none. */
static char *
XgbVersion(JsonbContainer *root)
{
	JsonbValue *v = XgbGet(root, "model", "version", false);
	JsonbContainer *c;
	StringInfoData b;

	if (v == NULL)
		return "unknown";
	c = XgbContainer(v, "version", true);
	if (JsonContainerSize(c) == 0 || JsonContainerSize(c) > 4)
		XgbBad("version", "must have 1 to 4 elements");
	initStringInfo(&b);
	for (uint32 i = 0; i < JsonContainerSize(c); i++)
		appendStringInfo(&b, "%s" INT64_FORMAT, i ? "." : "",
						 XgbInteger(XgbElem(c, "version", i), psprintf("version[%u]", i), 0, 1000000));
	return b.data;
}

/* ------------------------------------------------------- the model JSON */

/*
 * Read the JSON that Booster.save_model writes into model: the trees, the
 * feature names (features when not NULL, else the JSON's own), scoring as
 * given, imputation values of 0.  Also what the registry's params record
 * (objective, base_score as a float, XGBoost's version) and the features'
 * importance.  Anything the import cannot take is an ERROR.
 */
void
XgbReadModel(Jsonb *json, ArrayType *features, const CrScoring *scoring,
			 CrModel *model, XgbImportance *imp, char **objective_out,
			 double *base_score_out, char **version_out)
{
	JsonbContainer *root,
			   *learner,
			   *lmp,
			   *booster,
			   *gbmodel,
			   *trees;
	JsonbValue *v;
	char	   *objective;
	char	   *booster_name;
	char	   *version;
	double		base_score;
	int			ntrees;
	int			p;
	char	  **names;

	if (!JB_ROOT_IS_OBJECT(json))
		XgbBad("model", "must be a json object");
	root = &json->root;
	learner = XgbObject(root, "model", "learner");
	lmp = XgbObject(learner, "learner", "learner_model_param");

	/* one output: a binary classifier on the logit scale */
	objective = XgbString(XgbObject(learner, "learner", "objective"), "learner.objective", "name");
	if (strcmp(objective, "binary:logistic") != 0 && strcmp(objective, "reg:logistic") != 0 &&
		strcmp(objective, "binary:logitraw") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("xgboost objective \"%s\" cannot be imported", objective),
				 errhint("Import a model trained with binary:logistic, binary:logitraw or reg:logistic.")));
	v = XgbGet(lmp, "learner.learner_model_param", "num_class", false);
	if (v != NULL && XgbParamInteger(v, "learner.learner_model_param.num_class", 0, PG_INT32_MAX) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("xgboost model has more than one class"),
				 errhint("Only binary classifiers can be imported.")));
	v = XgbGet(lmp, "learner.learner_model_param", "num_target", false);
	if (v != NULL && XgbParamInteger(v, "learner.learner_model_param.num_target", 0, PG_INT32_MAX) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("xgboost model has more than one target"),
				 errhint("Only binary classifiers can be imported.")));

	/*
	 * base_score is a probability for the logistic objectives, and already a
	 * margin for logitraw (XGBoost does not transform it there).
	 */
	v = XgbGet(lmp, "learner.learner_model_param", "base_score", true);
	base_score = XgbFloatOrString(v, "learner.learner_model_param.base_score", true);
	if (strcmp(objective, "binary:logitraw") != 0 && !(base_score > 0.0 && base_score < 1.0))
		XgbBad("learner.learner_model_param.base_score",
			   psprintf("must be a probability between 0 and 1, not %.9g", base_score));

	booster = XgbObject(learner, "learner", "gradient_booster");
	booster_name = XgbString(booster, "learner.gradient_booster", "name");
	if (strcmp(booster_name, "gbtree") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("xgboost booster \"%s\" cannot be imported", booster_name),
				 errhint("Only gbtree models can be imported.")));
	gbmodel = XgbObject(booster, "learner.gradient_booster", "model");
	trees = XgbContainer(XgbGet(gbmodel, "learner.gradient_booster.model", "trees", true),
						 "learner.gradient_booster.model.trees", true);
	ntrees = (int) Min(JsonContainerSize(trees), (uint32) PG_INT32_MAX);
	if (ntrees == 0)
		XgbBad("learner.gradient_booster.model.trees", "is empty");
	if (ntrees > CR_MAX_TREES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("xgboost model has %d trees, more than the %d a model takes", ntrees, CR_MAX_TREES)));
	v = XgbGet(gbmodel, "learner.gradient_booster.model", "tree_info", false);
	if (v != NULL)
	{
		JsonbContainer *ti = XgbContainer(v, "learner.gradient_booster.model.tree_info", true);

		if (JsonContainerSize(ti) != (uint32) ntrees)
			XgbBad("learner.gradient_booster.model.tree_info", "does not have one element per tree");
		for (int t = 0; t < ntrees; t++)
			if (XgbInteger(XgbElem(ti, "tree_info", t), "learner.gradient_booster.model.tree_info[]",
						   0, PG_INT32_MAX) != 0)
				XgbBad(psprintf("learner.gradient_booster.model.tree_info[%d]", t),
					   "is not 0: the trees belong to more than one class");
	}

	names = XgbFeatureNames(learner, features, &p);
	version = XgbVersion(root);

	memset(model, 0, sizeof(CrModel));
	model->algorithm = CR_ALGO_GBM;
	model->nfeatures = p;
	model->features = names;
	/* imputation values: 0 unless a baseline gives means (XgbBaseline) */
	model->impute = palloc0(sizeof(double) * p);
	model->scoring = *scoring;
	ForestInit(&model->forest, p, ntrees);
	if (strcmp(objective, "binary:logitraw") == 0)
		model->forest.base_margin = base_score;
	else
		model->forest.base_margin = log(base_score / (1.0 - base_score));

	imp->gain = palloc0(sizeof(double) * p);
	imp->cover = palloc0(sizeof(double) * p);
	imp->splits = palloc0(sizeof(int64) * p);
	for (int t = 0; t < ntrees; t++)
	{
		char	   *path = psprintf("tree %d", t);
		JsonbValue *tv = XgbElem(trees, "trees", t);

		CHECK_FOR_INTERRUPTS();
		XgbParseTree(XgbContainer(tv, path, false), path, &model->forest, t, p, imp);
	}
	model->forest.ntrees = ntrees;

	*objective_out = objective;
	*base_score_out = base_score;
	*version_out = version;
}

/* ---------------------------------------------------------- the import */

Datum
cr_import_xgboost(PG_FUNCTION_ARGS)
{
	MemoryContext callercxt = CurrentMemoryContext;
	MemoryContext importcxt;
	TupleDesc	rettupdesc;
	char	   *name;
	Jsonb	   *json;
	char	   *objective;
	XgbOptions	opt;
	StringInfoData metrics;
	int64		baseline_rows = 0;
	char	   *version;
	CrTrainParams tp;
	double		base_score;
	int			ntrees;
	int			p;
	char	  **names;
	CrModel		model;
	CrModel    *decoded;
	XgbImportance imp;
	bytea	   *bytes;
	StringInfoData importance;
	instr_time	start;
	Datum		result;

	INSTR_TIME_SET_CURRENT(start);
	CrCheckSettings();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name and model must not be null")));
	if (get_call_result_type(fcinfo, NULL, &rettupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "cr_import_xgboost must return credit_risk.models");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	RegistryCheckName(name);
	json = PG_GETARG_JSONB_P(1);

	importcxt = AllocSetContextCreate(callercxt, "credit_risk import",
									  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(importcxt);

	XgbParams(PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3), &tp, &opt);

	XgbReadModel(json, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2), &tp.scoring,
				 &model, &imp, &objective, &base_score, &version);
	names = model.features;
	p = model.nfeatures;
	ntrees = model.forest.ntrees;

	/*
	 * The decoder checks what the registry will hold; the baseline's rows
	 * are scored by the decoded model, as cr_predict will score them.
	 */
	bytes = ModelEncode(&model);
	decoded = ModelDecode(VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(importcxt);
	initStringInfo(&metrics);
	if (opt.baseline_source != NULL)
	{
		baseline_rows = XgbBaseline(&model, decoded, &tp, &opt, &metrics);
		bytes = ModelEncode(&model);
		(void) ModelDecode(VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ);
	}
	else
		appendStringInfoString(&metrics, "{}");

	initStringInfo(&importance);
	appendStringInfoChar(&importance, '{');
	for (int j = 0; j < p; j++)
	{
		if (j)
			appendStringInfoString(&importance, ", ");
		escape_json(&importance, names[j]);
		appendStringInfoString(&importance, ": {\"gain\": ");
		CrAppendDouble(&importance, imp.gain[j]);
		appendStringInfoString(&importance, ", \"cover\": ");
		CrAppendDouble(&importance, imp.cover[j]);
		appendStringInfo(&importance, ", \"splits\": " INT64_FORMAT "}", imp.splits[j]);
	}
	appendStringInfoChar(&importance, '}');

	{
		CrNewVersion nv;
		instr_time	elapsed;

		INSTR_TIME_SET_CURRENT(elapsed);
		INSTR_TIME_SUBTRACT(elapsed, start);
		nv.name = name;
		nv.algorithm = "gbm";
		nv.source = "xgboost import";
		nv.label = opt.label;
		nv.features = names;
		nv.nfeatures = p;
		nv.params = DirectFunctionCall1(jsonb_in, CStringGetDatum(
			XgbParamsJson(&tp, &opt, objective, base_score, version, ntrees,
						  model.forest.tree_start[ntrees])));
		nv.metrics = DirectFunctionCall1(jsonb_in, CStringGetDatum(metrics.data));
		nv.importance = DirectFunctionCall1(jsonb_in, CStringGetDatum(importance.data));
		nv.train_rows = 0;
		/* the baseline's rows are evaluation rows, none trained on */
		nv.holdout_rows = baseline_rows;
		nv.train_seconds = INSTR_TIME_GET_DOUBLE(elapsed);
		nv.model = bytes;
		result = HeapTupleGetDatum(RegistryInsertVersion(&nv, rettupdesc, callercxt));
	}
	SPI_finish();
	MemoryContextSwitchTo(callercxt);
	MemoryContextDelete(importcxt);
	PG_RETURN_DATUM(result);
}
