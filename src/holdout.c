/*
 * holdout.c
 *	  The holdout split of cr_train, and cr_in_holdout, which tells SQL which
 *	  rows it put in the holdout.  A row is in the holdout when a uniform
 *	  number drawn from its key's hash (params.key), else from the seed and
 *	  its position in the source, is below params.holdout.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "holdout.h"
#include "random.h"

PG_FUNCTION_INFO_V1(cr_in_holdout);
PG_FUNCTION_INFO_V1(cr_split_unit);

/* The uniform number that puts row i in the holdout or not, and orders its fold. */
static inline double
RowUnit(const CrDataset *ds, int64 seed, int64 i)
{
	return ds->keyhash ? CrUnit(ds->keyhash[i])
		: CrUnit(CrMix64(((uint64) seed << 40) ^ (uint64) i));
}

/*
 * Which rows of ds are in the holdout (an array of ds->nrows flags, in the
 * current memory context), and how many rows each side has.
 */
bool *
HoldoutSplit(const CrDataset *ds, int64 seed, double holdout,
			 int64 *ntrain, int64 *nhold)
{
	bool	   *in = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(bool) * Max(ds->nrows, 1));

	*ntrain = 0;
	*nhold = 0;
	for (int64 i = 0; i < ds->nrows; i++)
	{
		double		u = RowUnit(ds, seed, i);

		in[i] = u < holdout;
		if (in[i])
			(*nhold)++;
		else
			(*ntrain)++;
	}
	return in;
}

typedef struct FoldKey
{
	double		label;
	double		unit;
	int64		row;
} FoldKey;

static int
FoldKeyCmp(const void *a, const void *b)
{
	const FoldKey *x = a;
	const FoldKey *y = b;

	if (x->label != y->label)
		return x->label < y->label ? -1 : 1;
	if (x->unit != y->unit)
		return x->unit < y->unit ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

/*
 * The fold of each training row (-1 for the holdout's): the training rows
 * of each label, in the order of their number (RowUnit, then their place
 * in the source), go to folds 0, 1, ..., k - 1, 0, 1, ... in turn.
 */
int8 *
HoldoutFolds(const CrDataset *ds, const bool *holdout, int64 seed, int k)
{
	int8	   *fold = MemoryContextAllocHuge(CurrentMemoryContext, Max(ds->nrows, 1));
	FoldKey    *keys = MemoryContextAllocHuge(CurrentMemoryContext,
											  sizeof(FoldKey) * Max(ds->nrows, 1));
	int64		n = 0;
	int64		rank = 0;

	Assert(k >= 2 && k <= PG_INT8_MAX);
	for (int64 i = 0; i < ds->nrows; i++)
	{
		fold[i] = -1;
		if (holdout[i])
			continue;
		keys[n].label = ds->label[i];
		keys[n].unit = RowUnit(ds, seed, i);
		keys[n++].row = i;
	}
	qsort(keys, n, sizeof(FoldKey), FoldKeyCmp);
	for (int64 r = 0; r < n; r++)
	{
		if (r > 0 && keys[r].label != keys[r - 1].label)
			rank = 0;
		fold[keys[r].row] = (int8) (rank++ % k);
	}
	pfree(keys);
	return fold;
}

/* The key's type and output function, looked up once per call site. */
typedef struct KeyHashInfo
{
	Oid			keytype;
	Oid			outfunc;
} KeyHashInfo;

static const KeyHashInfo *
KeyHashInfoOf(FunctionCallInfo fcinfo)
{
	KeyHashInfo *ki = (KeyHashInfo *) fcinfo->flinfo->fn_extra;
	Oid			keytype;

	/* a call site's argument type does not change */
	if (ki != NULL)
		return ki;
	keytype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	if (!OidIsValid(keytype))
		elog(ERROR, "could not determine the key's type");
	DatasetCheckKeyType(keytype, NULL);
	ki = fcinfo->flinfo->fn_extra = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt,
													   sizeof(KeyHashInfo));
	{
		bool		isvarlena;

		getTypeOutputInfo(keytype, &ki->outfunc, &isvarlena);
	}
	ki->keytype = keytype;
	return ki;
}

/*
 * cr_split_unit(key, seed): the number in [0, 1) that cr_train with
 * params.key and seed draws for the row with this key: the row is in the
 * holdout when it is below params.holdout, and the training rows of a label
 * go to their folds in its order.
 */
Datum
cr_split_unit(PG_FUNCTION_ARGS)
{
	const KeyHashInfo *ki = KeyHashInfoOf(fcinfo);

	PG_RETURN_FLOAT8(CrUnit(DatasetKeyHash(PG_GETARG_DATUM(0), ki->keytype, ki->outfunc,
										   (uint64) PG_GETARG_INT64(1))));
}

/*
 * cr_in_holdout(key, seed, holdout): whether cr_train with params.key, seed
 * and holdout puts the row with this key in the holdout.  Lets SQL pick out
 * a model's holdout rows, for example to score another model on them.
 */
Datum
cr_in_holdout(PG_FUNCTION_ARGS)
{
	const KeyHashInfo *ki = KeyHashInfoOf(fcinfo);
	int64		seed = PG_GETARG_INT64(1);
	double		holdout = PG_GETARG_FLOAT8(2);
	uint64		h;

	if (isnan(holdout) || holdout < 0.0 || holdout >= 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout is %g, out of range", holdout),
				 errdetail("It must be at least 0 and below 1, as params.holdout of cr_train.")));
	h = DatasetKeyHash(PG_GETARG_DATUM(0), ki->keytype, ki->outfunc, (uint64) seed);
	PG_RETURN_BOOL(CrUnit(h) < holdout);
}
