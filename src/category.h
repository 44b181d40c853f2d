/*
 * category.h
 *	  Categorical features: the levels a model keeps for a text, enum,
 *	  boolean or integer column, and how a value becomes a level's code.
 *
 * A categorical feature's value, wherever the scorers and trainers see a
 * row as doubles, is a code: 0 .. nlevels - 1 for the levels kept (most
 * frequent first, ties by their text), nlevels for "other" (levels pooled
 * because they were rare, too many or too long, and levels never seen in
 * training), and NaN for NULL.  The code is always a whole number in
 * [0, nlevels], so a tree's category set (see forest.h) and a logistic
 * model's coefficient for the level are found by indexing.
 */
#ifndef CR_CATEGORY_H
#define CR_CATEGORY_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"

#define CR_MAX_LEVELS		254		/* levels a feature keeps; "other" is code 254 at most */
#define CR_MAX_LEVEL_LEN	200		/* bytes of a level's text; longer values are "other" */

typedef struct CrCategoryMap
{
	int			nlevels;		/* codes 0 .. nlevels - 1; nlevels is "other" */
	char	  **levels;			/* their text */
	int			reference;		/* logistic: the code of the reference level */
	/* lookup: open addressing over the level texts (CategoryMapIndex) */
	int			nslots;			/* a power of two */
	int16	   *slots;			/* code + 1, or 0 for an empty slot */
} CrCategoryMap;

/*
 * Building a map from training rows: each distinct value gets a provisional
 * id in the order first seen; CategoryBuilderFinish then keeps the levels
 * with enough training rows and gives the final codes.
 */
typedef struct CrCategoryBuilder CrCategoryBuilder;

extern CrCategoryBuilder *CategoryBuilderCreate(void);
extern int	CategoryBuilderId(CrCategoryBuilder *b, const char *s, int len);
extern int	CategoryBuilderCount(const CrCategoryBuilder *b);
extern const char *CategoryBuilderText(const CrCategoryBuilder *b, int id);

/*
 * ids: provisional id per row as a double (NaN for NULL, -1 for a value too
 * long to be a level), counted over the rows not excluded.  Keeps the levels with at
 * least min_count such rows, the max_levels most frequent, and returns the
 * map and, in remap[id], each provisional id's code (nlevels for other).
 * reference: the level logistic models leave out (NULL: the most frequent);
 * an ERROR when it is not among the levels kept.  what names the column.
 * The builder's memory goes with it: b is not to be used again.
 */
extern CrCategoryMap *CategoryBuilderFinish(CrCategoryBuilder *b, const double *ids,
											const bool *exclude, int64 nrows,
											int min_count, int max_levels,
											const char *reference, const char *what,
											int *remap);

/* Build the lookup of a map whose levels are set (after decoding). */
extern void CategoryMapIndex(CrCategoryMap *map);

/* The code of a level's text: its index, or nlevels (other) when unknown. */
extern int	CategoryCode(const CrCategoryMap *map, const char *s, int len);

/*
 * The text a value of type typid is known by as a level: booleans as true
 * and false, char(n) without its trailing blanks, anything else as its
 * output function writes it.  outfunc is the type's output function.
 */
extern char *CategoryDatumText(Datum value, Oid typid, FmgrInfo *outfunc, int *len);

/* The code of a non-null value of a categorical feature (see CategoryDatumText). */
extern double CategoryDatumCode(const CrCategoryMap *map, Datum value, Oid typid,
								FmgrInfo *outfunc);

/* Whether a column of type typid is categorical without being named so. */
extern bool CategoryTypeIsText(Oid typid);

/* Whether params.categorical may name a column of type typid. */
extern bool CategoryTypeAllowed(Oid typid);

/* A level as the model's display name: feature=level, other and missing. */
extern char *CategoryLevelName(const char *feature, const CrCategoryMap *map, int code);

#endif							/* CR_CATEGORY_H */
