/*
 * dataset.h
 *	  Load a relation or a query into column-major float arrays and labels.
 */
#ifndef CR_DATASET_H
#define CR_DATASET_H

#include "postgres.h"

#include "utils/numeric.h"

#include "access/tupdesc.h"
#include "tcop/dest.h"
#include "utils/array.h"

#include "category.h"

typedef struct CrDataset
{
	int64		nrows;
	int			nfeatures;
	char	  **names;			/* feature names */
	double	  **cols;			/* nfeatures arrays of nrows; NULL is NaN (hugemem.c) */
	double	   *label;			/* nrows values, each 0 or 1 */
	uint64	   *keyhash;		/* nrows hashes of the key, or NULL */
	bool	   *split_holdout;	/* nrows: in the out-of-time holdout, or NULL */

	/*
	 * Categorical features: per feature NULL for a number, else its levels
	 * (DatasetFinishCategories), the column holding codes (category.h);
	 * NULL when every feature is a number.  Until then a categorical
	 * column holds the builder's provisional ids.
	 */
	CrCategoryMap **cats;
	CrCategoryBuilder **builders;
	int64		capacity;
	const struct CrDatasetSpec *spec;
} CrDataset;

struct CrDatasetSpec;

typedef struct CrDatasetSpec
{
	const char *source;			/* relation name or query */
	const char *label;			/* label column */
	const char *key;			/* key column, or NULL */
	char	  **features;		/* feature columns, or NULL for all numeric */
	int			nfeatures;
	uint64		key_seed;		/* seed mixed into key hashes */
	const char *split_column;	/* out-of-time split column, or NULL */
	const char *split_from;		/* rows whose split column is at or past it: holdout */
	char	  **categorical;	/* columns named categorical (params.categorical) */
	int			ncategorical;
	bool		text_features;	/* features NULL: text columns are (categorical) features too */
	const char *what;			/* what the rows are for, in messages; NULL: "training" */

	/*
	 * Memory limit for the whole training run: the loaded arrays plus what
	 * the trainer will need per row and per feature and row.  0: no limit.
	 */
	Size		max_bytes;
	Size		trainer_bytes_per_row;
	Size		trainer_bytes_per_feature_row;
} CrDatasetSpec;

extern char *DatasetSourceQuery(const char *source);
extern char *DatasetSourceQueryOf(const char *source, Oid *relid);
extern bool DatasetTypeIsNumeric(Oid typid);
extern double DatasetDatumToDouble(Datum value, Oid typid);
extern void DatasetCanonicalOrder(CrDataset *ds);
extern CrDataset *DatasetLoad(const CrDatasetSpec *spec);

/*
 * The levels of each categorical feature, from the rows not excluded (the
 * training rows): see CategoryBuilderFinish.  reference_for(feature, arg)
 * gives a feature's reference level or NULL.
 */
extern void DatasetFinishCategories(CrDataset *ds, const bool *exclude, int min_count,
									int max_levels,
									const char *(*reference_for) (const char *feature, void *arg),
									void *arg);
extern bool DatasetIsCategorical(const CrDataset *ds, int j);
extern void DatasetInitReceiver(DestReceiver *dest,
								void (*startup) (DestReceiver *self, int operation, TupleDesc tupdesc),
								bool (*receive) (TupleTableSlot *slot, DestReceiver *self));
extern double *DatasetColumnMeans(const CrDataset *ds, const bool *exclude, const char *rows);
extern char **DatasetFeatureNames(ArrayType *arr, int *n, const char *empty_hint);
extern void DatasetScanSource(const char *source, DestReceiver *dest, const char *what);
extern void DatasetRunQuery(const char *query, const char *source, DestReceiver *dest,
							bool read_only, bool fixed_order, const char *what);
extern int	DatasetFindColumn(TupleDesc tupdesc, const char *name);
extern int	DatasetFindColumnFrom(TupleDesc tupdesc, const char *name, int start);
extern void DatasetCheckKeyType(Oid keytype, const char *name);
extern double DatasetNumericToDouble(Numeric num, const char *what, const char *name);
extern int	DatasetRequireColumn(TupleDesc tupdesc, const char *name, const char *role);
extern void DatasetMapColumns(TupleDesc tupdesc, char **names, int n,
							  CrCategoryMap **cats, const char *owner,
							  int *attnum, Oid *atttype, FmgrInfo *outfunc);
extern void DatasetCheckFeatureType(const char *name, Oid typid, bool categorical,
									const char *what);

/* A non-null value of a feature: a number, or a categorical feature's code. */
static inline double
DatasetFeatureValue(const CrCategoryMap *map, Datum value, Oid typid, FmgrInfo *outfunc)
{
	if (map != NULL)
		return CategoryDatumCode(map, value, typid, outfunc);
	return DatasetDatumToDouble(value, typid);
}
extern uint64 DatasetKeyHash(Datum value, Oid typid, Oid outfunc, uint64 seed);

#endif							/* CR_DATASET_H */
