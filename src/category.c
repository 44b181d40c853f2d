/*
 * category.c
 *	  Categorical features: the levels found in training rows, the map a
 *	  model keeps, and the code of a value at scoring time.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "category.h"

/* ------------------------------------------------------- the builder */

struct CrCategoryBuilder
{
	MemoryContext cxt;			/* where it grows: callers add values from short-lived contexts */
	int			n;				/* distinct values seen */
	int			cap;
	char	  **text;			/* n */
	int		   *len;
	uint32	   *hash;
	int			nslots;			/* power of two, at least 2n */
	int32	   *slots;			/* id + 1, or 0 */
};

CrCategoryBuilder *
CategoryBuilderCreate(void)
{
	CrCategoryBuilder *b = palloc0(sizeof(CrCategoryBuilder));

	b->cxt = CurrentMemoryContext;
	b->cap = 16;
	b->text = palloc(sizeof(char *) * b->cap);
	b->len = palloc(sizeof(int) * b->cap);
	b->hash = palloc(sizeof(uint32) * b->cap);
	b->nslots = 64;
	b->slots = palloc0(sizeof(int32) * b->nslots);
	return b;
}

static void
BuilderRehash(CrCategoryBuilder *b)
{
	int			nslots = b->nslots * 2;
	int32	   *slots = palloc0(sizeof(int32) * nslots);

	for (int id = 0; id < b->n; id++)
	{
		uint32		i = b->hash[id] & (nslots - 1);

		while (slots[i] != 0)
			i = (i + 1) & (nslots - 1);
		slots[i] = id + 1;
	}
	pfree(b->slots);
	b->slots = slots;
	b->nslots = nslots;
}

/* The provisional id of a value's text, a new one the first time. */
int
CategoryBuilderId(CrCategoryBuilder *b, const char *s, int len)
{
	uint32		h = hash_bytes((const unsigned char *) s, len);
	uint32		i = h & (b->nslots - 1);
	int			id;
	MemoryContext old;

	while (b->slots[i] != 0)
	{
		id = b->slots[i] - 1;
		if (b->hash[id] == h && b->len[id] == len && memcmp(b->text[id], s, len) == 0)
			return id;
		i = (i + 1) & (b->nslots - 1);
	}
	if (b->n >= PG_INT32_MAX / 4)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a categorical column has too many distinct values")));
	if (b->n == b->cap)
	{
		b->cap *= 2;
		b->text = repalloc_huge(b->text, sizeof(char *) * b->cap);
		b->len = repalloc_huge(b->len, sizeof(int) * b->cap);
		b->hash = repalloc_huge(b->hash, sizeof(uint32) * b->cap);
	}
	old = MemoryContextSwitchTo(b->cxt);
	id = b->n++;
	b->text[id] = pnstrdup(s, len);
	b->len[id] = len;
	b->hash[id] = h;
	b->slots[i] = id + 1;
	if ((int64) b->n * 2 > b->nslots)
		BuilderRehash(b);
	MemoryContextSwitchTo(old);
	return id;
}

int
CategoryBuilderCount(const CrCategoryBuilder *b)
{
	return b->n;
}

const char *
CategoryBuilderText(const CrCategoryBuilder *b, int id)
{
	return b->text[id];
}

typedef struct LevelCount
{
	int			id;
	int64		count;
	const char *text;
} LevelCount;

/* most rows first; ties by text (bytewise), so the order is the data's own */
static int
LevelCountCmp(const void *a, const void *b)
{
	const LevelCount *x = (const LevelCount *) a;
	const LevelCount *y = (const LevelCount *) b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return strcmp(x->text, y->text);
}

CrCategoryMap *
CategoryBuilderFinish(CrCategoryBuilder *b, const double *ids, const bool *exclude,
					  int64 nrows, int min_count, int max_levels,
					  const char *reference, const char *what, int *remap)
{
	LevelCount *lc = palloc(sizeof(LevelCount) * Max(b->n, 1));
	CrCategoryMap *map = palloc0(sizeof(CrCategoryMap));
	int			keep = 0;

	for (int id = 0; id < b->n; id++)
	{
		lc[id].id = id;
		lc[id].count = 0;
		lc[id].text = b->text[id];
	}
	for (int64 i = 0; i < nrows; i++)
	{
		if ((i & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (ids[i] >= 0.0 && !(exclude && exclude[i]))
			lc[(int) ids[i]].count++;
	}
	qsort(lc, b->n, sizeof(LevelCount), LevelCountCmp);
	while (keep < b->n && keep < max_levels && lc[keep].count >= Max(min_count, 1))
		keep++;

	if (keep == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("categorical feature \"%s\" has no level with at least %d training rows",
						what, Max(min_count, 1)),
				 errdetail("It has %d distinct values in the training rows.", b->n),
				 errhint("Lower params.min_category_count, or leave the column out.")));

	map->nlevels = keep;
	map->levels = palloc(sizeof(char *) * keep);
	for (int id = 0; id < b->n; id++)
		remap[id] = keep;		/* other */
	for (int l = 0; l < keep; l++)
	{
		map->levels[l] = pstrdup(lc[l].text);
		remap[lc[l].id] = l;
	}
	CategoryMapIndex(map);

	map->reference = 0;
	if (reference != NULL)
	{
		int			r = CategoryCode(map, reference, strlen(reference));

		if (r >= keep)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("reference level \"%s\" of feature \"%s\" is not among its levels",
							reference, what),
					 errdetail("A level needs at least %d training rows (params.min_category_count).",
							   Max(min_count, 1)),
					 errhint("Name one of the levels the column holds, for example \"%s\".",
							 map->levels[0])));
		map->reference = r;
	}
	pfree(lc);
	return map;
}

/* ------------------------------------------------------------ the map */

void
CategoryMapIndex(CrCategoryMap *map)
{
	int			nslots = 8;

	while (nslots < 2 * map->nlevels)
		nslots *= 2;
	map->nslots = nslots;
	map->slots = palloc0(sizeof(int16) * nslots);
	for (int l = 0; l < map->nlevels; l++)
	{
		const char *s = map->levels[l];
		int			len = strlen(s);
		uint32		i = hash_bytes((const unsigned char *) s, len) & (nslots - 1);
		bool		dup = false;

		while (map->slots[i] != 0)
		{
			const char *t = map->levels[map->slots[i] - 1];

			if (strcmp(t, s) == 0)
			{
				dup = true;		/* the first keeps the text: the decoder notices */
				break;
			}
			i = (i + 1) & (nslots - 1);
		}
		if (!dup)
			map->slots[i] = (int16) (l + 1);
	}
}

int
CategoryCode(const CrCategoryMap *map, const char *s, int len)
{
	uint32		i;

	if (len > CR_MAX_LEVEL_LEN)
		return map->nlevels;
	i = hash_bytes((const unsigned char *) s, len) & (map->nslots - 1);
	while (map->slots[i] != 0)
	{
		const char *t = map->levels[map->slots[i] - 1];

		if (strncmp(t, s, len) == 0 && t[len] == '\0')
			return map->slots[i] - 1;
		i = (i + 1) & (map->nslots - 1);
	}
	return map->nlevels;
}

/* ------------------------------------------------------------- values */

char *
CategoryDatumText(Datum value, Oid typid, FmgrInfo *outfunc, int *len)
{
	char	   *s;
	int			n;

	if (typid == BOOLOID)
	{
		s = DatumGetBool(value) ? "true" : "false";
		*len = strlen(s);
		return s;
	}
	if (typid == TEXTOID || typid == VARCHAROID)
	{
		text	   *t = DatumGetTextPP(value);

		*len = VARSIZE_ANY_EXHDR(t);
		return VARDATA_ANY(t);
	}
	s = OutputFunctionCall(outfunc, value);
	n = strlen(s);
	if (typid == BPCHAROID)
		while (n > 0 && s[n - 1] == ' ')
			n--;
	*len = n;
	return s;
}

double
CategoryDatumCode(const CrCategoryMap *map, Datum value, Oid typid, FmgrInfo *outfunc)
{
	int			len;
	char	   *s;
	int			code;

	/* scoring allocates nothing that outlives a row */
	if (typid == TEXTOID || typid == VARCHAROID)
	{
		text	   *t = DatumGetTextPP(value);

		code = CategoryCode(map, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		if ((Pointer) t != DatumGetPointer(value))
			pfree(t);
		return (double) code;
	}
	s = CategoryDatumText(value, typid, outfunc, &len);
	code = CategoryCode(map, s, len);
	if (typid != BOOLOID)
		pfree(s);
	return (double) code;
}

bool
CategoryTypeIsText(Oid typid)
{
	return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID ||
		type_is_enum(typid);
}

bool
CategoryTypeAllowed(Oid typid)
{
	return CategoryTypeIsText(typid) || typid == BOOLOID ||
		typid == INT2OID || typid == INT4OID || typid == INT8OID;
}

char *
CategoryLevelName(const char *feature, const CrCategoryMap *map, int code)
{
	if (code < map->nlevels)
		return psprintf("%s=%s", feature, map->levels[code]);
	if (code == map->nlevels)
		return psprintf("%s=(other)", feature);
	return psprintf("%s=(missing)", feature);
}
