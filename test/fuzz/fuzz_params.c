/*
 * fuzz_params.c
 *	  libFuzzer harness for the training-params parser: ParseParams,
 *	  MonotoneVector and AppendParamsJson in src/train.c.
 *
 * Those functions are static, so this file includes train.c itself; the
 * rest of train.c (loading, fitting, the registry) is linked against
 * unreached.c and never runs.
 *
 * The input is JSON text, the params argument of cr_train (empty for SQL
 * NULL).  It is parsed by fakejson.c into containers that the stand-in
 * JsonbIteratorInit/Next walk (see that file for how they match the real
 * ones), and given to ParseParams for each algorithm.  When ParseParams
 * accepts it:
 *
 *	- MonotoneVector resolves params.monotone against a fixed feature list;
 *	- the effective-params JSON (AppendParamsJson, stored in the registry)
 *	  must be JSON that jsonb_in accepts;
 *	- the scoring and drift settings must survive model bytes: a one-feature
 *	  model carrying them is encoded with ModelEncode and must decode with
 *	  ModelDecode to the same values, or training would store a model that
 *	  no one can read.
 *
 * An ERROR from ParseParams or MonotoneVector is the expected answer to bad
 * params; the other two checks failing is a finding.
 */
#include "train.c"

#include "mb/pg_wchar.h"

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
CheckMonotone(TrainParams *tp)
{
	CrDataset	ds;
	sigjmp_buf	jb;

	memset(&ds, 0, sizeof(ds));
	ds.nfeatures = lengthof(fuzz_feature_names);
	ds.names = fuzz_feature_names;
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		int8	   *mono = MonotoneVector(tp, &ds);

		if (mono != NULL)
			for (int j = 0; j < ds.nfeatures; j++)
				if (mono[j] < -1 || mono[j] > 1)
					FuzzFail("monotone constraint %d for feature %d", mono[j], j);
	}
	fuzz_catch = NULL;
}

static void
CheckEffectiveParams(TrainParams *tp)
{
	StringInfoData buf;
	sigjmp_buf	jb;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) != 0)
		FuzzFail("effective params are not valid JSON: %s (%s)",
				 fuzz_error.message, fuzz_error.detail);
	initStringInfo(&buf);
	AppendParamsJson(&buf, tp);
	(void) JsonbFromText(buf.data);
	fuzz_catch = NULL;
}

/* Encode a minimal model with tp's settings, decode it, compare. */
static void
CheckModelRoundTrip(TrainParams *tp)
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
		FuzzFail("params ParseParams accepted make model bytes ModelDecode rejects: %s (%s)",
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
	TrainParams tp;
	volatile bool ok = false;
	sigjmp_buf	jb;

	memset(&tp, 0, sizeof(tp));
	tp.algorithm = algorithm;
	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		ParseParams(params, &tp);
		ok = true;
	}
	fuzz_catch = NULL;
	if (!ok)
		return;
	CheckMonotone(&tp);
	CheckEffectiveParams(&tp);
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
