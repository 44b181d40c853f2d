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

typedef struct CrDataset
{
	int64		nrows;
	int			nfeatures;
	char	  **names;			/* feature names */
	double	  **cols;			/* nfeatures arrays of nrows; NULL is NaN (hugemem.c) */
	double	   *label;			/* nrows values, each 0 or 1 */
	uint64	   *keyhash;		/* nrows hashes of the key, or NULL */
	bool	   *split_holdout;	/* nrows: in the out-of-time holdout, or NULL */
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

	/*
	 * Memory limit for the whole training run: the loaded arrays plus what
	 * the trainer will need per row and per feature and row.  0: no limit.
	 */
	Size		max_bytes;
	Size		trainer_bytes_per_row;
	Size		trainer_bytes_per_feature_row;
} CrDatasetSpec;

extern char *DatasetSourceQuery(const char *source);
extern bool DatasetTypeIsNumeric(Oid typid);
extern double DatasetDatumToDouble(Datum value, Oid typid);
extern CrDataset *DatasetLoad(const CrDatasetSpec *spec);
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
							  const char *owner, int *attnum, Oid *atttype);
extern uint64 DatasetKeyHash(Datum value, Oid typid, Oid outfunc, uint64 seed);

#endif							/* CR_DATASET_H */
