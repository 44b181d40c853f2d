/*
 * fuzz_params.c
 *	  libFuzzer harness for the training params: ParamsParse, ParamsMonotone
 *	  and ParamsToJsonb in src/params.c.
 *
 * The input is JSON text, the params argument of cr_train (empty for SQL
 * NULL).  It is parsed by fakejson.c into containers that the stand-in
 * JsonbIteratorInit/Next walk (see that file for how they match the real
 * ones), and given to ParamsParse for each algorithm.  When ParamsParse
 * accepts it:
 *
 *	- ParamsMonotone resolves params.monotone against a fixed feature list;
 *	- the effective params (ParamsToJsonb, stored in the registry) must be
 *	  a jsonb whose text jsonb_in accepts, and, given back to ParamsParse,
 *	  must be accepted and give the same settings: the registry records
 *	  what the model was trained with; their monotone must be the one
 *	  given, numbers as written;
 *	- the scoring and drift settings must survive model bytes: a one-feature
 *	  model carrying them is encoded with ModelEncode and must decode with
 *	  ModelDecode to the same values, or training would store a model that
 *	  no one can read.
 *
 * An ERROR from ParamsParse or ParamsMonotone is the expected answer to bad
 * params; the other checks failing is a finding.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"

#include "model.h"
#include "params.h"

#include "fakejson.h"
#include "pgstub.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT	65536

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FuzzInit();
	return 0;
}

static char *fuzz_feature_names[] = {"u", "v", "x", "credit_utilization"};

static void
CheckMonotone(CrTrainParams *tp)
{
	int			n = lengthof(fuzz_feature_names);
	sigjmp_buf	jb;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		int8	   *mono = ParamsMonotone(tp, fuzz_feature_names, n);

		if ((mono == NULL) != (tp->monotone == NULL))
			FuzzFail("monotone constraints %s, but params.monotone %s",
					 mono ? "made" : "not made", tp->monotone ? "given" : "not given");
		if (mono != NULL)
			for (int j = 0; j < n; j++)
				if (mono[j] < -1 || mono[j] > 1)
					FuzzFail("monotone constraint %d for feature %d", mono[j], j);
	}
	fuzz_catch = NULL;
}

/* The settings a and b differ in, or NULL. */
static const char *
SettingsDiffer(const CrTrainParams *a, const CrTrainParams *b)
{
	const CrGbmParams *ga = &a->gbm;
	const CrGbmParams *gb = &b->gbm;

	if (a->holdout != b->holdout)
		return "holdout";
	if (a->seed != b->seed)
		return "seed";
	if ((a->key == NULL) != (b->key == NULL) || (a->key && strcmp(a->key, b->key) != 0))
		return "key";
	if (a->logit.l2 != b->logit.l2 || a->logit.max_iter != b->logit.max_iter ||
		a->logit.tol != b->logit.tol)
		return "logistic settings";
	if (ga->n_trees != gb->n_trees || ga->max_depth != gb->max_depth ||
		ga->learning_rate != gb->learning_rate || ga->lambda != gb->lambda ||
		ga->gamma != gb->gamma || ga->min_child_weight != gb->min_child_weight ||
		ga->subsample != gb->subsample || ga->colsample_bytree != gb->colsample_bytree ||
		ga->scale_pos_weight != gb->scale_pos_weight || ga->max_bin != gb->max_bin ||
		ga->base_score != gb->base_score ||
		ga->early_stopping_rounds != gb->early_stopping_rounds ||
		ga->threads != gb->threads)
		return "tree settings";
	/* not given and {} are the same: no constraints */
	if (a->nmonotone != b->nmonotone)
		return "monotone";
	for (int i = 0; i < a->nmonotone; i++)
		if (strcmp(a->monotone[i].feature, b->monotone[i].feature) != 0 ||
			a->monotone[i].direction != b->monotone[i].direction)
			return "monotone";
	if (a->scoring.threshold != b->scoring.threshold ||
		a->scoring.points_base != b->scoring.points_base ||
		a->scoring.odds_base != b->scoring.odds_base ||
		a->scoring.pdo != b->scoring.pdo ||
		a->scoring.nbands != b->scoring.nbands)
		return "scoring";
	for (int i = 0; i < a->scoring.nbands; i++)
		if (strcmp(a->scoring.labels[i], b->scoring.labels[i]) != 0 ||
			(i + 1 < a->scoring.nbands && a->scoring.cutoffs[i] != b->scoring.cutoffs[i]))
			return "risk bands";
	if (a->drift_moderate != b->drift_moderate || a->drift_major != b->drift_major)
		return "drift thresholds";
	return NULL;
}

/*
 * The pairs of params.monotone, numbers as numeric_out writes them: empty
 * when there is none (the stored {} for none given).
 */
static char *
MonotonePairs(Jsonb *params)
{
	StringInfoData buf;
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	initStringInfo(&buf);
	if (params == NULL)
		return buf.data;
	it = JsonbIteratorInit(&params->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		JsonbIterator *mit;

		if (tok != WJB_KEY || v.val.string.len != 8 ||
			memcmp(v.val.string.val, "monotone", 8) != 0)
			continue;
		if (JsonbIteratorNext(&it, &v, true) != WJB_VALUE || v.type != jbvBinary)
			FuzzFail("params.monotone accepted, but not an object");
		mit = JsonbIteratorInit(v.val.binary.data);
		while ((tok = JsonbIteratorNext(&mit, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
				appendStringInfo(&buf, "%.*s: ", v.val.string.len, v.val.string.val);
			else if (tok == WJB_VALUE && v.type == jbvNumeric)
				appendStringInfo(&buf, "%s, ",
								 DatumGetCString(DirectFunctionCall1(numeric_out,
																	 NumericGetDatum(v.val.numeric))));
			else if (tok == WJB_VALUE)
				appendStringInfoString(&buf, "(not a number), ");
		}
		break;
	}
	return buf.data;
}

static void
CheckEffectiveParams(Jsonb *params, CrTrainParams *tp)
{
	Jsonb	   *volatile stored = NULL;
	CrTrainParams back;
	const char *differ;
	char	   *given;
	char	   *kept;
	sigjmp_buf	jb;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) != 0)
		FuzzFail("effective params %s: %s (%s)",
				 stored ? "are not valid JSON" : "could not be made",
				 fuzz_error.message, fuzz_error.detail);
	stored = ParamsToJsonb(tp);
	(void) DirectFunctionCall1(jsonb_in,
							   CStringGetDatum(JsonbToCString(NULL, &stored->root, 0)));
	fuzz_catch = NULL;

	memset(&back, 0, sizeof(back));
	back.algorithm = tp->algorithm;
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) != 0)
		FuzzFail("effective params rejected as params: %s (%s)",
				 fuzz_error.message, fuzz_error.detail);
	ParamsParse(stored, &back);
	fuzz_catch = NULL;
	differ = SettingsDiffer(tp, &back);
	if (differ != NULL)
		FuzzFail("effective params, parsed again, change the %s", differ);

	/* monotone is stored as given, its numbers as written (1.0 stays 1.0) */
	given = MonotonePairs(params);
	kept = MonotonePairs(stored);
	if (strcmp(given, kept) != 0)
		FuzzFail("params.monotone stored as {%s}, given as {%s}", kept, given);
}

/* Encode a minimal model with tp's settings, decode it, compare. */
static void
CheckModelRoundTrip(CrTrainParams *tp)
{
	char	   *features[1] = {"x"};
	double		impute[1] = {0.0};
	double		coef[2] = {0.0, 1.0};
	double		std_error[2] = {0.1, 0.1};
	int32		tree_start[2] = {0, 1};
	int32		leaf_feature[1] = {-1};
	int32		no_child[1] = {-1};
	double		zero[1] = {0.0};
	double		one[1] = {1.0};
	bool		dleft[1] = {false};
	double		share[1] = {1.0};
	CrBaseline	baseline[2];
	CrModel		model;
	CrModel    *volatile back = NULL;
	sigjmp_buf	jb;

	memset(&model, 0, sizeof(model));
	model.algorithm = tp->algorithm;
	model.nfeatures = 1;
	model.features = features;
	model.impute = impute;
	model.scoring = tp->scoring;
	model.coef = coef;
	model.std_error = std_error;
	model.forest.ntrees = 1;
	model.forest.tree_start = tree_start;
	model.forest.feature = leaf_feature;
	model.forest.threshold = zero;
	model.forest.left = no_child;
	model.forest.right = no_child;
	model.forest.default_left = dleft;
	model.forest.value = zero;
	model.forest.cover = one;
	for (int i = 0; i < 2; i++)
	{
		baseline[i].ncuts = 0;
		baseline[i].cuts = zero;
		baseline[i].shares = share;
		baseline[i].missing = 0.0;
	}
	model.baseline = baseline;
	model.drift_moderate = tp->drift_moderate;
	model.drift_major = tp->drift_major;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		bytea	   *bytes = ModelEncode(&model);

		back = ModelDecode(VARDATA(bytes), VARSIZE(bytes) - VARHDRSZ);
	}
	fuzz_catch = NULL;
	if (back == NULL)
		FuzzFail("params ParamsParse accepted make model bytes ModelDecode rejects: %s (%s)",
				 fuzz_error.message, fuzz_error.detail);

	if (back->scoring.threshold != tp->scoring.threshold ||
		back->scoring.points_base != tp->scoring.points_base ||
		back->scoring.odds_base != tp->scoring.odds_base ||
		back->scoring.pdo != tp->scoring.pdo ||
		back->scoring.nbands != tp->scoring.nbands ||
		back->drift_moderate != tp->drift_moderate ||
		back->drift_major != tp->drift_major)
		FuzzFail("scoring or drift settings changed through the model bytes");
	for (int i = 0; i < tp->scoring.nbands; i++)
		if (strcmp(back->scoring.labels[i], tp->scoring.labels[i]) != 0 ||
			(i + 1 < tp->scoring.nbands &&
			 back->scoring.cutoffs[i] != tp->scoring.cutoffs[i]))
			FuzzFail("risk band %d changed through the model bytes", i);
}

static void
TryParams(Jsonb *params, CrAlgorithm algorithm)
{
	CrTrainParams tp;
	volatile bool ok = false;
	sigjmp_buf	jb;

	memset(&tp, 0, sizeof(tp));
	tp.algorithm = algorithm;
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		ParamsParse(params, &tp);
		ok = true;
	}
	fuzz_catch = NULL;
	if (!ok)
		return;
	CheckMonotone(&tp);
	CheckEffectiveParams(params, &tp);
	CheckModelRoundTrip(&tp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	const char *error = NULL;
	FjNode	   *root;

	/* the empty input stands for SQL NULL params */
	if (size == 0)
	{
		TryParams(NULL, CR_ALGO_LOGISTIC);
		TryParams(NULL, CR_ALGO_GBM);
		FuzzMemReset();
		return 0;
	}

	/* jsonb_in takes a C string in the database encoding */
	if (size > FUZZ_MAX_INPUT || memchr(text, '\0', size) != NULL ||
		pg_encoding_verifymbstr(PG_UTF8, text, (int) size) != (int) size)
		return 0;

	root = FjParse(text, (int) size, &error);
	if (root != NULL)
	{
		Jsonb	   *params = FjToJsonb(root);

		TryParams(params, CR_ALGO_LOGISTIC);
		TryParams(params, CR_ALGO_GBM);
	}
	FuzzMemReset();
	return 0;
}
