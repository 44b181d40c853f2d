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
		double		u = ds->keyhash
			? CrUnit(ds->keyhash[i])
			: CrUnit(CrMix64(((uint64) seed << 40) ^ (uint64) i));

		in[i] = u < holdout;
		if (in[i])
			(*nhold)++;
		else
			(*ntrain)++;
	}
	return in;
}

/*
 * cr_in_holdout(key, seed, holdout): whether cr_train with params.key, seed
 * and holdout puts the row with this key in the holdout.  Lets SQL pick out
 * a model's holdout rows, for example to score another model on them.
 */
Datum
cr_in_holdout(PG_FUNCTION_ARGS)
{
	Oid			keytype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	int64		seed = PG_GETARG_INT64(1);
	double		holdout = PG_GETARG_FLOAT8(2);
	Oid			outfunc;
	bool		isvarlena;
	uint64		h;

	if (!OidIsValid(keytype))
		elog(ERROR, "could not determine the key's type");
	DatasetCheckKeyType(keytype, NULL);
	if (isnan(holdout) || holdout < 0.0 || holdout >= 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("holdout is %g, out of range", holdout),
				 errdetail("It must be at least 0 and below 1, as params.holdout of cr_train.")));
	getTypeOutputInfo(keytype, &outfunc, &isvarlena);
	h = DatasetKeyHash(PG_GETARG_DATUM(0), keytype, outfunc, (uint64) seed);
	PG_RETURN_BOOL(CrUnit(h) < holdout);
}
