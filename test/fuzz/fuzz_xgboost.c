/*
 * fuzz_xgboost.c
 *	  libFuzzer harness for the XGBoost import and export: XgbReadModel in
 *	  src/xgboost.c (what cr_import_xgboost reads of the model JSON) and
 *	  ExportXgboost in src/export.c (the "xgboost" member of cr_export).
 *
 * The input is JSON text, the model argument of cr_import_xgboost.  It is
 * parsed by fakejson.c into containers that the stand-in jsonb lookups walk,
 * and read by XgbReadModel with no features argument (the names come from
 * learner.feature_names) and the default scoring settings.  An ERROR with a
 * proper errcode is the expected answer to bad input.  When the model is
 * accepted:
 *
 *	- its ModelEncode bytes must be accepted by ModelDecode and decode to the
 *	  same model.  The import decodes what it encoded before registering it,
 *	  so a refusal would reach the user as "invalid credit_risk model bytes"
 *	  about JSON the reader accepted: the reader must refuse such JSON itself,
 *	  naming what is wrong.  Any refusal here is a finding, whatever its
 *	  errcode.
 *	- test rows (all missing, zeros, infinities, the float range's ends, and
 *	  for a sample of splits rows at the split's cut and at the double just
 *	  below it) must get exactly the same margin from ForestMargin on the
 *	  decoded model (its dense copy when it has one), from ForestMargin on
 *	  the model as read, and from a walk of the node arrays here; for the
 *	  first rows, ForestShap's contributions plus the expected margin must
 *	  add up to the margin.
 *	- every tree must send every test row to the leaf XGBoost would: a walk
 *	  of the JSON's own arrays as XGBoost does it (features and
 *	  split_conditions as 32-bit floats, the decimal read straight to a
 *	  float as XGBoost's reader does; left when x < condition, a missing
 *	  value by default_left) must end at a leaf whose value is the one the
 *	  imported tree gives, bit for bit.  With the rows at and just below each
 *	  cut this finds any cut placed wrongly, by as little as one double.
 *	- the export of the decoded model must be JSON; its "parents" arrays
 *	  must agree with its children; read back by XgbReadModel it must be
 *	  accepted and encode to bytes ModelDecode accepts, with the same
 *	  feature names, trees and importance (split counts and covers; the
 *	  export writes no gains); and exporting that model again must give the
 *	  same JSON as jsonb holds it (cr_export returns jsonb): export, import,
 *	  export is a fixed point.  jsonb keeps no negative zero (numeric has
 *	  none), so a leaf or cover of -0 is exported as -0.0 and read back as
 *	  0; values and covers read back are compared as numbers, everything
 *	  else bit for bit.
 *
 * The export cannot carry every base margin exactly: XGBoost holds
 * base_score as a 32-bit float probability.  When the model was read from a
 * binary:logistic or reg:logistic model whose base_score is a normal float,
 * the margin is that float's log-odds, which comes back bit for bit, and
 * then the round trip must give every test row the same margin bit for bit.
 * Otherwise (binary:logitraw, whose base_score is a margin, or a base_score
 * so small that it is 0 or subnormal as a float probability) the tightest
 * true properties are checked instead: the exported base_score is the float
 * nearest the base probability, and the model read back has that float's
 * log-odds (to a few double roundings); or, where the export moves the base
 * margin into the first tree's leaves (ExportXgboostShiftsBase: the float
 * would be 0, subnormal or 1, or its log-odds would miss the margin by more
 * than 1e-7 of 1 + |margin|, as near a probability of 1), the base margin
 * read back is 0 and those leaves are the floats nearest leaf plus margin
 * (the largest float of their sign past the range); and each row's margin
 * differs by exactly what those changes add, to the rounding of the sums.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "credit_risk.h"
#include "export.h"
#include "model.h"
#include "params.h"
#include "xgboost.h"

#include "fakejson.h"
#include "pgstub.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Larger inputs only slow the fuzzer down. */
#define FUZZ_MAX_INPUT		(1024 * 1024)

/* splits whose cut gets test rows of its own, two rows each */
#define PROBE_SPLITS		16
/* the first rows, which are also explained */
#define SHAP_ROWS			8

/* XGBoost's parent of a root node */
#define XGB_NO_PARENT		2147483647

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FuzzInit();
	return 0;
}

/* What XgbReadModel gives. */
typedef struct Import
{
	CrModel		model;
	XgbImportance imp;
	char	   *objective;
	double		base_score;
	char	   *version;
} Import;

/*
 * XgbReadModel on json, true when it accepts it.  An ERROR leaves
 * CurrentMemoryContext wherever the reader was; the harness works in the
 * stand-in's top context (NULL).
 */
static bool
ReadModel(Jsonb *json, const CrScoring *scoring, Import *out)
{
	volatile bool ok = false;
	sigjmp_buf	jb;

	memset(out, 0, sizeof(*out));
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		XgbReadModel(json, NULL, scoring, &out->model, &out->imp, &out->objective,
					 &out->base_score, &out->version);
		ok = true;
	}
	fuzz_catch = NULL;
	CurrentMemoryContext = NULL;
	return ok;
}

/* ModelEncode then ModelDecode; what, when they refuse, names the model. */
static CrModel *
EncodeDecode(const CrModel *m, const char *what)
{
	CrModel    *volatile back = NULL;
	sigjmp_buf	jb;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		bytea	   *bytes = ModelEncode(m);

		back = ModelDecode(VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ);
	}
	fuzz_catch = NULL;
	CurrentMemoryContext = NULL;
	if (back == NULL)
		FuzzFail("ModelDecode refuses the bytes of %s: %s (%s)",
				 what, fuzz_error.message, fuzz_error.detail);
	return back;
}

static char *
Export(const CrModel *m)
{
	StringInfoData buf;
	volatile bool ok = false;
	sigjmp_buf	jb;

	initStringInfo(&buf);
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		ExportXgboost(&buf, m);
		ok = true;
	}
	fuzz_catch = NULL;
	CurrentMemoryContext = NULL;
	if (!ok)
		FuzzFail("ExportXgboost failed: %s (%s)", fuzz_error.message, fuzz_error.detail);
	return buf.data;
}

/* ------------------------------------------------------- the model read */

static bool
SameDouble(double a, double b)
{
	return memcmp(&a, &b, sizeof(double)) == 0;
}

/* What the reader promises: names, counts, and the trees' structure. */
static void
CheckImport(const Import *in)
{
	const CrModel *m = &in->model;
	const CrForest *f = &m->forest;
	int64		splits = 0;
	int64		imp_splits = 0;
	double	   *cover;

	if (m->algorithm != CR_ALGO_GBM || m->nfeatures < 1 || m->nfeatures > CR_MAX_FEATURES)
		FuzzFail("read a model of algorithm %d with %d features", (int) m->algorithm, m->nfeatures);
	for (int j = 0; j < m->nfeatures; j++)
	{
		size_t		len = strlen(m->features[j]);

		if (len == 0 || len > CR_MAX_NAME_LEN || m->impute[j] != 0.0)
			FuzzFail("read feature %d with a name of %zu bytes or imputation %g",
					 j, len, m->impute[j]);
	}
	if (strcmp(in->objective, "binary:logistic") != 0 &&
		strcmp(in->objective, "reg:logistic") != 0 &&
		strcmp(in->objective, "binary:logitraw") != 0)
		FuzzFail("read a model with objective \"%s\"", in->objective);
	if (!isfinite(in->base_score) || (double) (float) in->base_score != in->base_score ||
		!isfinite(f->base_margin))
		FuzzFail("read base_score %.17g, base margin %.17g", in->base_score, f->base_margin);
	if (f->ntrees < 1 || f->ntrees > CR_MAX_TREES || f->tree_start[0] != 0)
		FuzzFail("read %d trees", f->ntrees);

	/* the importance: one split counted a split node, covers summed in node order */
	cover = palloc0(sizeof(double) * m->nfeatures);
	for (int32 i = 0; i < f->tree_start[f->ntrees]; i++)
		if (f->feature[i] >= 0)
		{
			splits++;
			cover[f->feature[i]] += f->cover[i];
		}
	for (int j = 0; j < m->nfeatures; j++)
	{
		imp_splits += in->imp.splits[j];
		if (in->imp.cover[j] != cover[j] || !isfinite(in->imp.gain[j]))
			FuzzFail("importance of feature %d: cover %.17g for %.17g, gain %g",
					 j, in->imp.cover[j], cover[j], in->imp.gain[j]);
	}
	if (imp_splits != splits)
		FuzzFail("importance counts " INT64_FORMAT " splits of " INT64_FORMAT,
				 imp_splits, splits);
	pfree(cover);
}

/*
 * Values equal bit for bit; but through JSON only as numbers, since jsonb
 * keeps no negative zero (numeric has none): a leaf or cover of -0 is
 * exported as -0.0 and read back as 0.
 */
static bool
SameValue(double a, double b, bool through_json)
{
	return through_json ? a == b : SameDouble(a, b);
}

/*
 * Two models alike in everything the model bytes hold, bit for bit (b read
 * from the export of a: see SameValue); but the base margins only when
 * same_base, and when shift0 is not NULL, tree 0's values must be
 * shift0(value, a's base margin).
 */
static void
CompareModels(const CrModel *a, const CrModel *b, const char *what, bool through_json,
			  bool same_base, double (*shift0) (double v, double margin))
{
	const CrForest *fa = &a->forest;
	const CrForest *fb = &b->forest;

	if (a->algorithm != b->algorithm || a->nfeatures != b->nfeatures ||
		fa->ntrees != fb->ntrees)
		FuzzFail("%s: %d features and %d trees for %d and %d", what,
				 b->nfeatures, fb->ntrees, a->nfeatures, fa->ntrees);
	for (int j = 0; j < a->nfeatures; j++)
		if (strcmp(a->features[j], b->features[j]) != 0 || a->impute[j] != b->impute[j])
			FuzzFail("%s: feature %d is \"%s\", not \"%s\"", what, j,
					 b->features[j], a->features[j]);
	if (same_base && !SameDouble(fa->base_margin, fb->base_margin))
		FuzzFail("%s: base margin %.17g, not %.17g", what, fb->base_margin, fa->base_margin);
	for (int t = 0; t <= fa->ntrees; t++)
		if (fa->tree_start[t] != fb->tree_start[t])
			FuzzFail("%s: tree %d starts at node %d, not %d", what, t,
					 fb->tree_start[t], fa->tree_start[t]);
	for (int32 i = 0; i < fa->tree_start[fa->ntrees]; i++)
	{
		double		va = fa->value[i];

		if (shift0 != NULL && i < fa->tree_start[1])
			va = shift0(va, fa->base_margin);
		if (fa->feature[i] != fb->feature[i] ||
			!SameValue(va, fb->value[i], through_json) ||
			!SameValue(fa->cover[i], fb->cover[i], through_json))
			FuzzFail("%s: node %d is (feature %d, value %.17g, cover %.17g), not (%d, %.17g, %.17g)",
					 what, i, fb->feature[i], fb->value[i], fb->cover[i],
					 fa->feature[i], va, fa->cover[i]);
		if (fa->feature[i] >= 0 &&
			(memcmp(&fa->threshold[i], &fb->threshold[i], sizeof(double)) != 0 ||
			 fa->left[i] != fb->left[i] || fa->right[i] != fb->right[i] ||
			 fa->default_left[i] != fb->default_left[i]))
			FuzzFail("%s: split %d is (%.17g, %d, %d, %d), not (%.17g, %d, %d, %d)",
					 what, i, fb->threshold[i], fb->left[i], fb->right[i], fb->default_left[i],
					 fa->threshold[i], fa->left[i], fa->right[i], fa->default_left[i]);
	}
}

/* --------------------------------------------------------------- scoring */

typedef struct Rows
{
	int			n;
	int			nfeatures;
	double	   *x;				/* n rows of nfeatures */
} Rows;

/*
 * The test rows of model m: every feature missing, 0, infinite, at either
 * end of the float range or past it; then for up to PROBE_SPLITS splits a
 * row at the split's cut and one at the double just below it, other
 * features set from other splits' cuts, missing or 0.
 */
static void
MakeRows(const CrModel *m, Rows *rows)
{
	static const double fixed[] = {
		NAN, 0.0, -INFINITY, INFINITY, -FLT_MAX, FLT_MAX, -DBL_MAX, DBL_MAX
	};
	const CrForest *f = &m->forest;
	int			F = m->nfeatures;
	int32		total = f->tree_start[f->ntrees];
	int32	   *split = palloc(sizeof(int32) * total);
	int32		nsplit = 0;
	int			nprobe;
	int			r = 0;

	for (int32 i = 0; i < total; i++)
		if (f->feature[i] >= 0)
			split[nsplit++] = i;
	nprobe = Min(nsplit, PROBE_SPLITS);
	rows->nfeatures = F;
	rows->n = lengthof(fixed) + 2 * nprobe;
	rows->x = palloc(sizeof(double) * rows->n * F);
	for (; r < lengthof(fixed); r++)
		for (int j = 0; j < F; j++)
			rows->x[r * F + j] = fixed[r];
	for (int p = 0; p < nprobe; p++)
	{
		int32		s = split[(int64) p * nsplit / nprobe];

		for (int below = 0; below < 2; below++, r++)
		{
			double	   *x = rows->x + (Size) r * F;

			for (int j = 0; j < F; j++)
			{
				uint32		h = (uint32) r * 2654435761u + (uint32) j * 40503u + 12345u;
				int32		o = split[h % (uint32) nsplit];

				switch ((h >> 8) % 4)
				{
					case 0:
						x[j] = f->threshold[o];
						break;
					case 1:
						x[j] = nextafter(f->threshold[o], -INFINITY);
						break;
					case 2:
						x[j] = NAN;
						break;
					default:
						x[j] = 0.0;
						break;
				}
			}
			x[f->feature[s]] = below ? nextafter(f->threshold[s], -INFINITY) : f->threshold[s];
		}
	}
	pfree(split);
}

/* The node tree t sends x to, walking the node arrays. */
static int32
WalkTree(const CrForest *f, int t, const double *x)
{
	int32		start = f->tree_start[t];
	int32		n = f->tree_start[t + 1] - start;
	int32		node = 0;
	int32		feat;

	while ((feat = f->feature[start + node]) >= 0)
	{
		double		v = x[feat];
		bool		left = isnan(v) ? f->default_left[start + node]
			: v < f->threshold[start + node];
		int32		next = left ? f->left[start + node] : f->right[start + node];

		if (next <= node || next >= n)
			FuzzFail("tree %d: node %d has child %d", t, node, next);
		node = next;
	}
	return start + node;
}

/* base margin plus each tree's leaf, in tree order, as every scorer adds them */
static double
WalkMargin(const CrForest *f, const double *x)
{
	double		margin = f->base_margin;

	for (int t = 0; t < f->ntrees; t++)
		margin += f->value[WalkTree(f, t, x)];
	return margin;
}

/*
 * Score every row of the decoded model d: ForestMargin (its dense copy when
 * it has one), the node walk here, and ForestMargin on the model as read
 * (no dense copy) must agree bit for bit, and explanations add up.  The
 * margins go to margin[].
 */
static void
ScoreRows(const CrModel *d, const CrModel *read, const Rows *rows, double *margin)
{
	const CrForest *f = &d->forest;
	double	   *phi = palloc(sizeof(double) * d->nfeatures);
	double		scale = 1.0 + fabs(f->base_margin);

	for (int32 i = 0; i < f->tree_start[f->ntrees]; i++)
		scale += fabs(f->value[i]);
	if (read->forest.dense.depth != 0)
		FuzzFail("the model as read has a dense copy");
	for (int r = 0; r < rows->n; r++)
	{
		const double *x = rows->x + (Size) r * rows->nfeatures;
		double		m = ForestMargin(f, x);
		double		w = WalkMargin(f, x);
		double		mr = ForestMargin(&read->forest, x);

		if (!isfinite(m) || !SameDouble(m, w) || !SameDouble(m, mr))
			FuzzFail("row %d: ForestMargin %.17g (dense depth %d), node walk %.17g, as read %.17g",
					 r, m, f->dense.depth, w, mr);
		margin[r] = m;
		if (r < SHAP_ROWS)
		{
			double		total = f->expected_margin;

			memset(phi, 0, sizeof(double) * d->nfeatures);
			ForestShap(f, x, phi);
			for (int j = 0; j < d->nfeatures; j++)
				total += phi[j];
			if (!(fabs(total - m) <= 1e-9 * scale))
				FuzzFail("row %d: the explanation adds up to %.17g, the margin is %.17g",
						 r, total, m);
		}
	}
	pfree(phi);
}

/* ------------------------------------------ XGBoost's reading of the JSON */

/*
 * One tree's arrays in the JSON, how many nodes they hold, and the nodes
 * read so far (each is read once, when a walk first reaches it).
 */
typedef struct JsonNode
{
	bool		read;
	int32		left;			/* -1 for a leaf */
	int32		right;
	int32		feature;
	float		cond;			/* a leaf's value */
	bool		default_left;
} JsonNode;

typedef struct JsonTree
{
	JsonbContainer *left;
	JsonbContainer *right;
	JsonbContainer *index;
	JsonbContainer *cond;
	JsonbContainer *dleft;
	uint32		n;
	JsonNode   *node;
} JsonTree;

/*
 * Member key of object c, which an accepted model has (the reader checked
 * it): an array or an object.
 */
static JsonbContainer *
Member(JsonbContainer *c, const char *key, bool array)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(c, key, strlen(key), &v) == NULL ||
		v.type != jbvBinary ||
		(array ? !JsonContainerIsArray(v.val.binary.data)
		 : !JsonContainerIsObject(v.val.binary.data)))
		FuzzFail("an accepted model has no %s \"%s\"", array ? "array" : "object", key);
	return v.val.binary.data;
}

/* The trees of a model JSON the reader accepted. */
static JsonTree *
JsonTrees(Jsonb *json, int ntrees)
{
	JsonbContainer *c = Member(&json->root, "learner", false);
	JsonTree   *trees = palloc(sizeof(JsonTree) * ntrees);

	c = Member(c, "gradient_booster", false);
	c = Member(c, "model", false);
	c = Member(c, "trees", true);
	if (JsonContainerSize(c) != (uint32) ntrees)
		FuzzFail("read %d trees of %u", ntrees, JsonContainerSize(c));
	for (int t = 0; t < ntrees; t++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(c, (uint32) t);
		JsonbContainer *tree;

		if (v == NULL || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
			FuzzFail("an accepted model's tree %d is not an object", t);
		tree = v->val.binary.data;
		trees[t].left = Member(tree, "left_children", true);
		trees[t].right = Member(tree, "right_children", true);
		trees[t].index = Member(tree, "split_indices", true);
		trees[t].cond = Member(tree, "split_conditions", true);
		trees[t].dleft = Member(tree, "default_left", true);
		trees[t].n = JsonContainerSize(trees[t].left);
		trees[t].node = palloc0(sizeof(JsonNode) * Max(trees[t].n, 1));
	}
	return trees;
}

/* The JSON number at element i of array c, as its decimal text. */
static char *
JsonNumberText(JsonbContainer *c, uint32 i, const char *what)
{
	JsonbValue *v = getIthJsonbValueFromContainer(c, i);
	char	   *text;

	if (v == NULL || v->type != jbvNumeric)
		FuzzFail("an accepted tree's %s[%u] is not a number", what, i);
	text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	pfree(v);
	return text;
}

/* An integer in [lo, hi] (written as any number equal to one). */
static int64
JsonInteger(JsonbContainer *c, uint32 i, const char *what, int64 lo, int64 hi)
{
	char	   *text = JsonNumberText(c, i, what);
	double		d = strtod(text, NULL);

	if (d != floor(d) || d < (double) lo || d > (double) hi)
		FuzzFail("an accepted tree's %s[%u] is %s", what, i, text);
	pfree(text);
	return (int64) d;
}

/* A float as XGBoost reads one: the decimal rounded once, to a float. */
static float
JsonFloat(JsonbContainer *c, uint32 i, const char *what)
{
	char	   *text = JsonNumberText(c, i, what);
	float		f = strtof(text, NULL);

	if (!isfinite(f))
		FuzzFail("an accepted tree's %s[%u] is %s", what, i, text);
	pfree(text);
	return f;
}

static bool
JsonFlag(JsonbContainer *c, uint32 i)
{
	JsonbValue *v = getIthJsonbValueFromContainer(c, i);
	bool		flag;

	if (v != NULL && v->type == jbvBool)
		flag = v->val.boolean;
	else
		flag = JsonInteger(c, i, "default_left", 0, 1) == 1;
	if (v != NULL)
		pfree(v);
	return flag;
}

/* Node i of tree jt, read as XGBoost reads it (split conditions straight to floats). */
static const JsonNode *
ReadNode(JsonTree *jt, uint32 i, int nfeatures)
{
	JsonNode   *nd = &jt->node[i];

	if (nd->read)
		return nd;
	nd->left = (int32) JsonInteger(jt->left, i, "left_children", -1, jt->n - 1);
	nd->cond = JsonFloat(jt->cond, i, "split_conditions");
	if (nd->left >= 0)
	{
		nd->right = (int32) JsonInteger(jt->right, i, "right_children", 0, jt->n - 1);
		nd->feature = (int32) JsonInteger(jt->index, i, "split_indices", 0, nfeatures - 1);
		nd->default_left = JsonFlag(jt->dleft, i);
	}
	nd->read = true;
	return nd;
}

/*
 * The leaf value XGBoost's walk of tree jt gives row x: features as floats,
 * left when the float is below the float split condition, a missing value
 * by default_left; a leaf's value is its split condition.
 */
static double
XgbLeaf(JsonTree *jt, const double *x, int nfeatures, int t)
{
	uint32		i = 0;

	for (int depth = 0;; depth++)
	{
		const JsonNode *nd = ReadNode(jt, i, nfeatures);
		double		v;

		if (nd->left < 0)
			return (double) nd->cond;
		if (depth >= FOREST_SHAP_MAX_DEPTH)
			FuzzFail("tree %d was accepted with a path of more than %d splits",
					 t, FOREST_SHAP_MAX_DEPTH);
		v = x[nd->feature];
		if (isnan(v))
			i = (uint32) (nd->default_left ? nd->left : nd->right);
		else
			i = (uint32) ((float) v < nd->cond ? nd->left : nd->right);
	}
}

/* Every tree of d must give every row the leaf value XGBoost's walk of json does. */
static void
CheckXgboostWalk(Jsonb *json, const CrModel *d, const Rows *rows, const char *what)
{
	const CrForest *f = &d->forest;
	JsonTree   *trees = JsonTrees(json, f->ntrees);

	for (int r = 0; r < rows->n; r++)
	{
		const double *x = rows->x + (Size) r * rows->nfeatures;

		for (int t = 0; t < f->ntrees; t++)
		{
			double		ours = f->value[WalkTree(f, t, x)];
			double		xgb = XgbLeaf(&trees[t], x, d->nfeatures, t);

			if (!SameDouble(ours, xgb))
				FuzzFail("%s, tree %d, row %d: XGBoost's walk ends at leaf value %.9g, the imported tree at %.17g",
						 what, t, r, xgb, ours);
		}
	}
	pfree(trees);
}

/* ------------------------------------------------------------ the export */

/* Each exported tree's parents agree with its children. */
static void
CheckParents(Jsonb *json, int ntrees)
{
	JsonbContainer *c = Member(&json->root, "learner", false);

	c = Member(Member(Member(c, "gradient_booster", false), "model", false), "trees", true);
	for (int t = 0; t < ntrees; t++)
	{
		JsonbContainer *tree = getIthJsonbValueFromContainer(c, (uint32) t)->val.binary.data;
		JsonbContainer *left = Member(tree, "left_children", true);
		JsonbContainer *right = Member(tree, "right_children", true);
		JsonbContainer *parents = Member(tree, "parents", true);
		uint32		n = JsonContainerSize(left);

		if (JsonContainerSize(parents) != n ||
			JsonInteger(parents, 0, "parents", XGB_NO_PARENT, XGB_NO_PARENT) != XGB_NO_PARENT)
			FuzzFail("exported tree %d: parents do not start with the root's", t);
		for (uint32 i = 0; i < n; i++)
		{
			int64		l = JsonInteger(left, i, "left_children", -1, n - 1);

			if (l < 0)
				continue;
			if (JsonInteger(parents, (uint32) l, "parents", 0, n - 1) != i ||
				JsonInteger(parents, (uint32) JsonInteger(right, i, "right_children", 0, n - 1),
							"parents", 0, n - 1) != i)
				FuzzFail("exported tree %d: node %u's children do not have it as parent", t, i);
		}
	}
}

/* The 32-bit float nearest v, the largest of its sign past the range. */
static double
NearestFloat(double v)
{
	if (v > FLT_MAX)
		return FLT_MAX;
	if (v < -FLT_MAX)
		return -FLT_MAX;
	return (double) (float) v;
}

/* tree 0's values when the export moves the base margin into them */
static double
ShiftedLeaf(double v, double margin)
{
	return NearestFloat(v + margin);
}

/*
 * How the base margin comes back from the export (see the top of the
 * file): exactly, moved into tree 0, or as the float nearest the base
 * probability.
 */
typedef enum BaseTrip
{
	BASE_EXACT,
	BASE_SHIFTED,
	BASE_FLOAT
} BaseTrip;

static BaseTrip
ExpectedBaseTrip(const Import *a, const CrModel *d)
{
	if (ExportXgboostShiftsBase(d->forest.base_margin))
		return BASE_SHIFTED;
	if (strcmp(a->objective, "binary:logitraw") != 0)
		return BASE_EXACT;
	return BASE_FLOAT;
}

/* The base margin read back from the export of d. */
static void
CheckBaseMargin(BaseTrip trip, const CrModel *d, const Import *b)
{
	double		m = d->forest.base_margin;
	double		mb = b->model.forest.base_margin;

	if (strcmp(b->objective, "binary:logistic") != 0 || strcmp(b->version, "1.7.0") != 0)
		FuzzFail("export read back as objective \"%s\", version %s", b->objective, b->version);
	switch (trip)
	{
		case BASE_EXACT:
			if (!SameDouble(m, mb))
				FuzzFail("base margin %.17g came back as %.17g", m, mb);
			break;
		case BASE_SHIFTED:
			if (!SameDouble(mb, 0.0) || b->base_score != 0.5)
				FuzzFail("base margin %.17g moved into tree 0, but base_score is %.9g",
						 m, b->base_score);
			break;
		case BASE_FLOAT:
			{
				double		p = CrSigmoid(m);
				float		pf = (float) b->base_score;
				double		below = nextafterf(pf, 0.0f);
				double		above = nextafterf(pf, 2.0f);
				double		pb = CrSigmoid(mb);

				if (fabs(p - pf) > fabs(p - below) || fabs(p - pf) > fabs(p - above))
					FuzzFail("base probability %.17g exported as %.9g, not the nearest float",
							 p, (double) pf);
				if (fabs(pb - pf) > 1e-12 * Min(pf, 1.0 - pf) + 2 * DBL_EPSILON)
					FuzzFail("base_score %.9g read back as margin %.17g (probability %.17g)",
							 (double) pf, mb, pb);
				break;
			}
	}
}

/*
 * Each row's margin from the model read back from the export (mb) against
 * the original's (m): equal bit for bit when the base margin came back
 * exactly; else different by what the base margin and tree 0's leaf gained,
 * to the rounding of two sums of ntrees + 1 terms.
 */
static void
CheckRoundTripMargins(BaseTrip trip, const CrModel *d, const CrModel *b, const Rows *rows,
					  const double *m, const double *mb)
{
	for (int r = 0; r < rows->n; r++)
	{
		const double *x = rows->x + (Size) r * rows->nfeatures;
		double		gain;
		double		scale;

		if (trip == BASE_EXACT)
		{
			if (!SameDouble(m[r], mb[r]))
				FuzzFail("row %d: margin %.17g after export and import, %.17g before",
						 r, mb[r], m[r]);
			continue;
		}
		gain = b->forest.base_margin - d->forest.base_margin +
			b->forest.value[WalkTree(&b->forest, 0, x)] -
			d->forest.value[WalkTree(&d->forest, 0, x)];
		scale = fabs(d->forest.base_margin) + fabs(b->forest.base_margin) + fabs(gain);
		for (int t = 0; t < d->forest.ntrees; t++)
			scale += fabs(d->forest.value[WalkTree(&d->forest, t, x)]) +
				fabs(b->forest.value[WalkTree(&b->forest, t, x)]);
		if (!(fabs(mb[r] - m[r] - gain) <= 2 * (d->forest.ntrees + 2) * DBL_EPSILON * scale))
			FuzzFail("row %d: margin %.17g after export and import, %.17g before, %.17g expected",
					 r, mb[r], m[r], m[r] + gain);
	}
}

/* --------------------------------------------------------------- driver */

/* JSON text to a Jsonb, as jsonb_in would take it; NULL when it would not. */
static Jsonb *
ParseJson(const char *text, size_t size)
{
	const char *error = NULL;
	FjNode	   *root;

	if (memchr(text, '\0', size) != NULL ||
		pg_encoding_verifymbstr(PG_UTF8, text, (int) size) != (int) size)
		return NULL;
	root = FjParse(text, (int) size, &error);
	return root ? FjToJsonb(root) : NULL;
}

static void
RoundTrip(const Import *a, const CrModel *d, const Rows *rows, const double *margin)
{
	char	   *text = Export(d);
	char	   *again;
	char	   *first;
	char	   *second;
	Jsonb	   *json = ParseJson(text, strlen(text));
	Jsonb	   *json2;
	Import		b;
	CrModel    *db;
	double	   *mb;
	BaseTrip	trip = ExpectedBaseTrip(a, d);

	if (json == NULL)
		FuzzFail("the export is not JSON jsonb_in takes: %.200s", text);
	CheckParents(json, d->forest.ntrees);
	if (!ReadModel(json, &d->scoring, &b))
		FuzzFail("the export is refused by the import: %s (%s)",
				 fuzz_error.message, fuzz_error.detail);
	CheckImport(&b);
	CheckBaseMargin(trip, d, &b);
	for (int j = 0; j < d->nfeatures; j++)
		if (b.imp.splits[j] != a->imp.splits[j] || !SameDouble(b.imp.cover[j], a->imp.cover[j]) ||
			b.imp.gain[j] != 0.0)
			FuzzFail("feature %d's importance changed through the export", j);
	CompareModels(d, &b.model, "export read back", true, trip == BASE_EXACT,
				  trip == BASE_SHIFTED ? ShiftedLeaf : NULL);

	db = EncodeDecode(&b.model, "the export read back");
	CompareModels(&b.model, db, "export read back, decoded", false, true, NULL);
	mb = palloc(sizeof(double) * rows->n);
	ScoreRows(db, &b.model, rows, mb);
	CheckXgboostWalk(json, db, rows, "export");
	CheckRoundTripMargins(trip, d, db, rows, margin, mb);

	/* compared as jsonb holds them, as cr_export returns them */
	again = Export(db);
	json2 = ParseJson(again, strlen(again));
	if (json2 == NULL)
		FuzzFail("the second export is not JSON jsonb_in takes: %.200s", again);
	first = JsonbToCString(NULL, &json->root, 0);
	second = JsonbToCString(NULL, &json2->root, 0);
	if (strcmp(first, second) != 0)
		FuzzFail("export, import, export is not a fixed point:\n%.300s\n%.300s", first, second);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Jsonb	   *json;
	CrTrainParams tp;
	Import		a;
	CrModel    *d;
	Rows		rows;
	double	   *margin;
	sigjmp_buf	jb;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	json = ParseJson((const char *) data, size);
	if (json == NULL)
	{
		FuzzMemReset();
		return 0;
	}

	/* the import's scoring settings when it is given no params */
	memset(&tp, 0, sizeof(tp));
	tp.algorithm = CR_ALGO_GBM;
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) != 0)
		FuzzFail("default params refused: %s", fuzz_error.message);
	ParamsParse(NULL, &tp);
	fuzz_catch = NULL;

	if (ReadModel(json, &tp.scoring, &a))
	{
		CheckImport(&a);
		d = EncodeDecode(&a.model, "an accepted model");
		CompareModels(&a.model, d, "decoded", false, true, NULL);
		MakeRows(d, &rows);
		margin = palloc(sizeof(double) * rows.n);
		ScoreRows(d, &a.model, &rows, margin);
		CheckXgboostWalk(json, d, &rows, "input");
		RoundTrip(&a, d, &rows, margin);
	}
	FuzzMemReset();
	return 0;
}
