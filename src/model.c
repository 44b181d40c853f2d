/*
 * model.c
 *	  Encode and decode model bytes.  The decoder treats its input as
 *	  hostile: every read is bounds-checked, every count and value is
 *	  validated, and anything out of place is an ERROR.
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "port/pg_crc32c.h"

#include "model.h"

const char *
ModelAlgorithmName(CrAlgorithm algorithm)
{
	switch (algorithm)
	{
		case CR_ALGO_LOGISTIC:
			return "logistic";
		case CR_ALGO_GBM:
			return "gbm";
		case CR_ALGO_SCORECARD:
			return "scorecard";
	}
	return "unknown";
}

/* ---------------------------------------------------------------- writing */

static void
PutU16(StringInfo buf, uint16 v)
{
	uint8		b[2];

	b[0] = v & 0xff;
	b[1] = (v >> 8) & 0xff;
	appendBinaryStringInfo(buf, (char *) b, 2);
}

static void
PutU32(StringInfo buf, uint32 v)
{
	uint8		b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (v >> (8 * i)) & 0xff;
	appendBinaryStringInfo(buf, (char *) b, 4);
}

static void
PutF8(StringInfo buf, double d)
{
	uint64		v;
	uint8		b[8];

	memcpy(&v, &d, sizeof(v));
	for (int i = 0; i < 8; i++)
		b[i] = (v >> (8 * i)) & 0xff;
	appendBinaryStringInfo(buf, (char *) b, 8);
}

static void
PutU64(StringInfo buf, uint64 v)
{
	PutU32(buf, (uint32) (v & 0xFFFFFFFF));
	PutU32(buf, (uint32) (v >> 32));
}

static void
PutStr(StringInfo buf, const char *s)
{
	size_t		len = strlen(s);

	Assert(len <= CR_MAX_NAME_LEN);
	PutU16(buf, (uint16) len);
	appendBinaryStringInfo(buf, s, len);
}

/* a level's text: a longer length field than a name's */
static void
PutLevel(StringInfo buf, const char *s)
{
	size_t		len = strlen(s);

	Assert(len <= CR_MAX_LEVEL_LEN);
	PutU16(buf, (uint16) len);
	appendBinaryStringInfo(buf, s, len);
}

static void
PatchU32(StringInfo buf, int offset, uint32 v)
{
	for (int i = 0; i < 4; i++)
		buf->data[offset + i] = (char) ((v >> (8 * i)) & 0xff);
}

static int
SectionBegin(StringInfo buf, CrSectionTag tag)
{
	int			start;

	PutU16(buf, (uint16) tag);
	PutU16(buf, 0);
	start = buf->len;
	PutU32(buf, 0);
	return start;
}

static void
SectionEnd(StringInfo buf, int start)
{
	PatchU32(buf, start, (uint32) (buf->len - start - 4));
}

static uint32
ModelComputeChecksum(const char *data, Size len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, 16);
	COMP_CRC32C(crc, data + CR_HEADER_SIZE, len - CR_HEADER_SIZE);
	FIN_CRC32C(crc);
	return (uint32) crc;
}

bytea *
ModelEncode(const CrModel *model)
{
	StringInfoData buf;
	int			s;
	int			k;
	bytea	   *result;
	uint32		crc;

	initStringInfo(&buf);
	/* reserve room for the varlena header, filled in at the end */
	appendBinaryStringInfo(&buf, "\0\0\0\0", VARHDRSZ);

	/* header; length and checksum patched below */
	PutU32(&buf, CR_MODEL_MAGIC);
	PutU16(&buf, model->calibration != NULL ? 4 :
		   model->algorithm == CR_ALGO_SCORECARD ? 3 : model->cats != NULL ? 2 : 1);
	PutU16(&buf, (uint16) model->algorithm);
	PutU32(&buf, 0);
	PutU32(&buf, 0);
	PutU32(&buf, 0);

	s = SectionBegin(&buf, CR_SECT_FEATURES);
	PutU32(&buf, (uint32) model->nfeatures);
	for (int i = 0; i < model->nfeatures; i++)
		PutStr(&buf, model->features[i]);
	SectionEnd(&buf, s);

	if (model->cats != NULL)
	{
		s = SectionBegin(&buf, CR_SECT_CATEGORIES);
		PutU32(&buf, (uint32) model->nfeatures);
		for (int i = 0; i < model->nfeatures; i++)
		{
			const CrCategoryMap *map = model->cats[i];

			if (map == NULL)
			{
				PutU32(&buf, 0);
				continue;
			}
			PutU32(&buf, (uint32) map->nlevels);
			PutU32(&buf, (uint32) map->reference);
			for (int l = 0; l < map->nlevels; l++)
				PutLevel(&buf, map->levels[l]);
		}
		SectionEnd(&buf, s);
	}

	s = SectionBegin(&buf, CR_SECT_IMPUTE);
	for (int i = 0; i < model->nfeatures; i++)
		PutF8(&buf, model->impute[i]);
	SectionEnd(&buf, s);

	s = SectionBegin(&buf, CR_SECT_SCORING);
	PutF8(&buf, model->scoring.threshold);
	PutF8(&buf, model->scoring.points_base);
	PutF8(&buf, model->scoring.odds_base);
	PutF8(&buf, model->scoring.pdo);
	PutU32(&buf, (uint32) model->scoring.nbands);
	for (int i = 0; i < model->scoring.nbands - 1; i++)
		PutF8(&buf, model->scoring.cutoffs[i]);
	for (int i = 0; i < model->scoring.nbands; i++)
		PutStr(&buf, model->scoring.labels[i]);
	SectionEnd(&buf, s);

	if (model->algorithm == CR_ALGO_LOGISTIC || model->algorithm == CR_ALGO_SCORECARD)
	{
		k = model->algorithm == CR_ALGO_LOGISTIC && model->cats != NULL
			? model->ncoef : model->nfeatures + 1;
		s = SectionBegin(&buf, CR_SECT_LOGIT);
		PutU32(&buf, (uint32) k);
		for (int i = 0; i < k; i++)
			PutF8(&buf, model->coef[i]);
		for (int i = 0; i < k; i++)
			PutF8(&buf, model->std_error[i]);
		SectionEnd(&buf, s);
	}
	if (model->algorithm == CR_ALGO_SCORECARD)
	{
		s = SectionBegin(&buf, CR_SECT_WOE);
		PutU32(&buf, (uint32) model->nfeatures);
		for (int j = 0; j < model->nfeatures; j++)
		{
			const CrWoeFeature *w = &model->woe[j];

			PutU32(&buf, (uint32) w->nbins);
			if (w->ncodes > 0)
				for (int c = 0; c < w->ncodes; c++)
					PutU32(&buf, (uint32) w->code_bin[c]);
			else
				for (int b = 0; b + 1 < w->nbins; b++)
					PutF8(&buf, w->cuts[b]);
			for (int b = 0; b <= w->nbins; b++)
			{
				PutF8(&buf, w->woe[b]);
				PutU64(&buf, (uint64) w->n[b]);
				PutU64(&buf, (uint64) w->events[b]);
			}
		}
		SectionEnd(&buf, s);
	}
	if (model->algorithm == CR_ALGO_GBM)
	{
		int			total = model->forest.tree_start[model->forest.ntrees];

		s = SectionBegin(&buf, CR_SECT_GBM);
		PutU32(&buf, (uint32) model->forest.ntrees);
		PutF8(&buf, model->forest.base_margin);
		for (int t = 0; t < model->forest.ntrees; t++)
			PutU32(&buf, (uint32) (model->forest.tree_start[t + 1] - model->forest.tree_start[t]));
		for (int i = 0; i < total; i++)
		{
			PutU32(&buf, (uint32) model->forest.feature[i]);
			PutF8(&buf, model->forest.threshold[i]);
			PutU32(&buf, (uint32) model->forest.left[i]);
			PutU32(&buf, (uint32) model->forest.right[i]);
			appendStringInfoChar(&buf, model->forest.default_left[i] ? 1 : 0);
			PutF8(&buf, model->forest.value[i]);
			PutF8(&buf, model->forest.cover[i]);
		}
		SectionEnd(&buf, s);

		if (model->forest.ncat_sets > 0)
		{
			s = SectionBegin(&buf, CR_SECT_GBM_CATS);
			PutU32(&buf, (uint32) model->forest.ncat_sets);
			for (int i = 0; i < total; i++)
			{
				int32		k = model->forest.cat_set[i];

				if (k < 0)
					continue;
				PutU32(&buf, (uint32) i);
				for (int w = 0; w < FOREST_CAT_WORDS; w++)
				{
					uint64		v = model->forest.cat_bits[(Size) k * FOREST_CAT_WORDS + w];

					PutU32(&buf, (uint32) (v & 0xFFFFFFFF));
					PutU32(&buf, (uint32) (v >> 32));
				}
			}
			SectionEnd(&buf, s);
		}
	}
	if (model->algorithm != CR_ALGO_LOGISTIC && model->algorithm != CR_ALGO_GBM &&
		model->algorithm != CR_ALGO_SCORECARD)
		elog(ERROR, "cannot encode algorithm %d", (int) model->algorithm);

	if (model->calibration != NULL)
	{
		const CrCalibration *c = model->calibration;

		s = SectionBegin(&buf, CR_SECT_CALIBRATION);
		PutU32(&buf, (uint32) c->method);
		if (c->method == CR_CALIBRATION_PLATT)
		{
			PutF8(&buf, c->a);
			PutF8(&buf, c->b);
		}
		else
		{
			PutU32(&buf, (uint32) c->npoints);
			for (int i = 0; i < c->npoints; i++)
				PutF8(&buf, c->x[i]);
			for (int i = 0; i < c->npoints; i++)
				PutF8(&buf, c->y[i]);
		}
		SectionEnd(&buf, s);
	}

	if (model->baseline != NULL)
	{
		s = SectionBegin(&buf, CR_SECT_BASELINE);
		PutF8(&buf, model->drift_moderate);
		PutF8(&buf, model->drift_major);
		PutU32(&buf, (uint32) model->nfeatures + 1);
		for (int f = 0; f <= model->nfeatures; f++)
		{
			const CrBaseline *b = &model->baseline[f];

			PutU32(&buf, (uint32) b->ncuts);
			for (int i = 0; i < b->ncuts; i++)
				PutF8(&buf, b->cuts[i]);
			for (int i = 0; i <= b->ncuts; i++)
				PutF8(&buf, b->shares[i]);
			PutF8(&buf, b->missing);
		}
		SectionEnd(&buf, s);
	}

	PatchU32(&buf, VARHDRSZ + 12, (uint32) (buf.len - VARHDRSZ));
	crc = ModelComputeChecksum(buf.data + VARHDRSZ, buf.len - VARHDRSZ);
	PatchU32(&buf, VARHDRSZ + 16, crc);

	result = (bytea *) buf.data;
	SET_VARSIZE(result, buf.len);
	return result;
}

/* ---------------------------------------------------------------- reading */

typedef struct Reader
{
	const uint8 *data;
	Size		len;
	Size		pos;
} Reader;

static void pg_attribute_noreturn()
BadModel(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid credit_risk model bytes"),
			 errdetail("%s", detail)));
}

static pg_attribute_always_inline void
Need(Reader *r, Size n)
{
	if (n > r->len || r->pos > r->len - n)
		BadModel("The model bytes end before the data they describe.");
}

static pg_attribute_always_inline uint16
GetU16(Reader *r)
{
	uint16		v;

	Need(r, 2);
	v = (uint16) r->data[r->pos] | ((uint16) r->data[r->pos + 1] << 8);
	r->pos += 2;
	return v;
}

static pg_attribute_always_inline uint32
GetU32(Reader *r)
{
	uint32		v = 0;

	Need(r, 4);
	for (int i = 0; i < 4; i++)
		v |= (uint32) r->data[r->pos + i] << (8 * i);
	r->pos += 4;
	return v;
}

static pg_attribute_always_inline double
GetF8(Reader *r)
{
	uint64		v = 0;
	double		d;

	Need(r, 8);
	for (int i = 0; i < 8; i++)
		v |= (uint64) r->data[r->pos + i] << (8 * i);
	r->pos += 8;
	memcpy(&d, &v, sizeof(d));
	return d;
}

static double
GetFiniteF8(Reader *r, const char *what)
{
	double		d = GetF8(r);

	if (!isfinite(d))
		BadModel(psprintf("The model holds a non-finite %s.", what));
	return d;
}

static char *
GetStr(Reader *r)
{
	uint16		len = GetU16(r);
	char	   *s;

	if (len == 0 || len > CR_MAX_NAME_LEN)
		BadModel("A name in the model has an invalid length.");
	Need(r, len);
	if (memchr(r->data + r->pos, '\0', len) != NULL ||
		!pg_verifymbstr((const char *) r->data + r->pos, len, true))
		BadModel("A name in the model is not valid text.");
	s = palloc(len + 1);
	memcpy(s, r->data + r->pos, len);
	s[len] = '\0';
	r->pos += len;
	return s;
}

/* A level's text: valid in the database encoding, no NUL; it may be empty. */
static char *
GetLevel(Reader *r)
{
	uint16		len = GetU16(r);
	char	   *s;

	if (len > CR_MAX_LEVEL_LEN)
		BadModel("A category level in the model has an invalid length.");
	Need(r, len);
	if (memchr(r->data + r->pos, '\0', len) != NULL ||
		!pg_verifymbstr((const char *) r->data + r->pos, len, true))
		BadModel("A category level in the model is not valid text.");
	s = palloc(len + 1);
	memcpy(s, r->data + r->pos, len);
	s[len] = '\0';
	r->pos += len;
	return s;
}

uint32
ModelPeekChecksum(const char *data, Size len)
{
	Reader		r = {(const uint8 *) data, len, 16};

	return GetU32(&r);
}

static void
DecodeFeatures(Reader *r, CrModel *m)
{
	uint32		n = GetU32(r);

	if (n == 0 || n > CR_MAX_FEATURES)
		BadModel("The feature count is out of range.");
	/* each name needs at least 3 bytes: do not allocate past the input */
	Need(r, (Size) n * 3);
	m->nfeatures = (int) n;
	m->features = palloc(sizeof(char *) * n);
	for (uint32 i = 0; i < n; i++)
	{
		m->features[i] = GetStr(r);
		for (uint32 j = 0; j < i; j++)
			if (strcmp(m->features[j], m->features[i]) == 0)
				BadModel("The model names a feature twice.");
	}
}

static void
DecodeScoring(Reader *r, CrScoring *s)
{
	uint32		nbands;

	s->threshold = GetFiniteF8(r, "threshold");
	s->points_base = GetFiniteF8(r, "base score");
	s->odds_base = GetFiniteF8(r, "base odds");
	s->pdo = GetFiniteF8(r, "points to double the odds");
	if (s->threshold < 0.0 || s->threshold > 1.0 ||
		s->odds_base <= 0.0 || s->pdo <= 0.0)
		BadModel("The model's scoring parameters are out of range.");
	nbands = GetU32(r);
	if (nbands < 1 || nbands > CR_MAX_BANDS)
		BadModel("The number of risk categories is out of range.");
	s->nbands = (int) nbands;
	for (uint32 i = 0; i + 1 < nbands; i++)
	{
		s->cutoffs[i] = GetFiniteF8(r, "risk cut-off");
		if (s->cutoffs[i] <= 0.0 || s->cutoffs[i] >= 1.0 ||
			(i > 0 && s->cutoffs[i] <= s->cutoffs[i - 1]))
			BadModel("The risk cut-offs are not increasing within (0, 1).");
	}
	for (uint32 i = 0; i < nbands; i++)
		s->labels[i] = GetStr(r);
}

/*
 * Categories: per feature 0 (a number) or its level count, the reference
 * level and the levels, each distinct.  At least one feature categorical.
 */
static void
DecodeCategories(Reader *r, CrModel *m)
{
	uint32		n = GetU32(r);
	bool		any = false;

	if (m->features == NULL || n != (uint32) m->nfeatures)
		BadModel("The categories do not match the features.");
	m->cats = palloc0(sizeof(CrCategoryMap *) * n);
	for (uint32 j = 0; j < n; j++)
	{
		uint32		nlevels = GetU32(r);
		uint32		reference;
		CrCategoryMap *map;

		if (nlevels == 0)
			continue;
		if (nlevels > CR_MAX_LEVELS)
			BadModel("A feature has too many category levels.");
		reference = GetU32(r);
		if (reference >= nlevels)
			BadModel("A feature's reference level is out of range.");
		/* each level needs at least 2 bytes: do not allocate past the input */
		Need(r, (Size) nlevels * 2);
		map = palloc0(sizeof(CrCategoryMap));
		map->nlevels = (int) nlevels;
		map->reference = (int) reference;
		map->levels = palloc(sizeof(char *) * nlevels);
		for (uint32 l = 0; l < nlevels; l++)
			map->levels[l] = GetLevel(r);
		CategoryMapIndex(map);
		for (uint32 l = 0; l < nlevels; l++)
			if (CategoryCode(map, map->levels[l], strlen(map->levels[l])) != (int) l)
				BadModel("A feature names a category level twice.");
		m->cats[j] = map;
		any = true;
	}
	if (!any)
		BadModel("The categories section has no categorical feature.");
}

void
ModelSetCoefLayout(CrModel *model)
{
	int32		k = 1;

	model->coef_start = palloc(sizeof(int32) * Max(model->nfeatures, 1));
	for (int j = 0; j < model->nfeatures; j++)
	{
		model->coef_start[j] = k;
		/* a scorecard has a coefficient per feature: its WoE's */
		k += (model->algorithm == CR_ALGO_LOGISTIC && model->cats != NULL &&
			  model->cats[j] != NULL)
			? model->cats[j]->nlevels + 2 : 1;
	}
	model->ncoef = k;
}

static void
DecodeLogit(Reader *r, CrModel *m)
{
	uint32		k = GetU32(r);

	if (m->features == NULL)
		BadModel("The coefficients precede the features.");
	ModelSetCoefLayout(m);
	if (k != (uint32) m->ncoef)
		BadModel("The coefficient count does not match the features.");
	m->coef = palloc(sizeof(double) * k);
	m->std_error = palloc(sizeof(double) * k);
	for (uint32 i = 0; i < k; i++)
		m->coef[i] = GetFiniteF8(r, "coefficient");
	for (uint32 i = 0; i < k; i++)
	{
		/* a standard error may be NaN (not estimable) but never negative */
		m->std_error[i] = GetF8(r);
		if (m->std_error[i] < 0.0 || isinf(m->std_error[i]))
			BadModel("The model holds an invalid standard error.");
	}
}

#define GBM_NODE_BYTES	37		/* feature, threshold, left, right, default, value, cover */

static pg_attribute_always_inline uint8
GetU8(Reader *r)
{
	Need(r, 1);
	return r->data[r->pos++];
}

/*
 * Trees: each child index must be greater than its parent's and inside the
 * tree, so every walk from the root ends at a leaf within the tree.
 */
static void
DecodeGbm(Reader *r, CrModel *m)
{
	uint32		ntrees = GetU32(r);
	int64		total = 0;
	bool	   *has_parent;

	if (m->features == NULL)
		BadModel("The trees precede the features.");
	if (ntrees == 0 || ntrees > CR_MAX_TREES)
		BadModel("The tree count is out of range.");
	m->forest.ntrees = (int) ntrees;
	m->forest.base_margin = GetFiniteF8(r, "base margin");
	Need(r, (Size) ntrees * 4);
	m->forest.tree_start = palloc(sizeof(int32) * (ntrees + 1));
	for (uint32 t = 0; t < ntrees; t++)
	{
		uint32		n = GetU32(r);

		if (n == 0 || n > (uint32) (r->len / GBM_NODE_BYTES))
			BadModel("A tree's node count is out of range.");
		m->forest.tree_start[t] = (int32) total;
		total += n;
		if (total > (int64) (r->len / GBM_NODE_BYTES))
			BadModel("The trees have more nodes than the bytes hold.");
	}
	m->forest.tree_start[ntrees] = (int32) total;
	Need(r, (Size) total * GBM_NODE_BYTES);

	m->forest.feature = palloc(sizeof(int32) * total);
	m->forest.threshold = palloc(sizeof(double) * total);
	m->forest.left = palloc(sizeof(int32) * total);
	m->forest.right = palloc(sizeof(int32) * total);
	m->forest.default_left = palloc(sizeof(bool) * total);
	m->forest.value = palloc(sizeof(double) * total);
	m->forest.cover = palloc(sizeof(double) * total);

	/*
	 * Each tree must be a tree: every node but the root has exactly one
	 * parent, which comes before it (so every node is reached from the
	 * root).  The dense copy takes a node's depth from its parent; a node
	 * with two parents at different depths was once scored from an
	 * internal node's value.
	 */
	has_parent = palloc(sizeof(bool) * Max(total, 1));
	for (uint32 t = 0; t < ntrees; t++)
	{
		int32		start = m->forest.tree_start[t];
		int32		n = m->forest.tree_start[t + 1] - start;

		memset(has_parent, 0, sizeof(bool) * n);
		for (int32 k = 0; k < n; k++)
		{
			int32		i = start + k;
			int32		feature = (int32) GetU32(r);
			uint8		dl;

			m->forest.feature[i] = feature;
			m->forest.threshold[i] = GetF8(r);
			m->forest.left[i] = (int32) GetU32(r);
			m->forest.right[i] = (int32) GetU32(r);
			dl = GetU8(r);
			m->forest.value[i] = GetFiniteF8(r, "node value");
			m->forest.cover[i] = GetFiniteF8(r, "node cover");
			if (dl > 1 || m->forest.cover[i] < 0.0)
				BadModel("A tree node holds an invalid flag or cover.");
			m->forest.default_left[i] = dl == 1;
			if (feature == -1)
			{
				if (m->forest.left[i] != -1 || m->forest.right[i] != -1)
					BadModel("A leaf has children.");
			}
			else
			{
				if (feature < 0 || feature >= m->nfeatures)
					BadModel("A tree node splits on a feature the model does not have.");
				if (!isfinite(m->forest.threshold[i]))
					BadModel("A tree node has a non-finite threshold.");
				if (m->forest.left[i] <= k || m->forest.left[i] >= n ||
					m->forest.right[i] <= k || m->forest.right[i] >= n)
					BadModel("A tree node points to a child outside its tree.");
				if (m->forest.left[i] == m->forest.right[i] ||
					has_parent[m->forest.left[i]] || has_parent[m->forest.right[i]])
					BadModel("A tree node has two parents.");
				has_parent[m->forest.left[i]] = true;
				has_parent[m->forest.right[i]] = true;
			}
		}
		for (int32 k = 1; k < n; k++)
			if (!has_parent[k])
				BadModel("A tree node is not reachable from the root.");
	}
	pfree(has_parent);
}

/*
 * Category sets of tree nodes: for increasing node indexes, each an
 * internal node splitting on a categorical feature, with no bit set past
 * the feature's codes (its levels and other).
 */
static void
DecodeGbmCats(Reader *r, CrModel *m)
{
	uint32		n = GetU32(r);
	int32		total;
	int64		prev = -1;

	if (m->forest.tree_start == NULL || m->cats == NULL)
		BadModel("The category sets precede the trees or the categories.");
	total = m->forest.tree_start[m->forest.ntrees];
	if (n == 0 || n > (uint32) total)
		BadModel("The category set count is out of range.");
	Need(r, (Size) n * (4 + 8 * FOREST_CAT_WORDS));
	m->forest.ncat_sets = (int32) n;
	m->forest.cat_set = palloc(sizeof(int32) * total);
	for (int32 i = 0; i < total; i++)
		m->forest.cat_set[i] = -1;
	m->forest.cat_bits = palloc0(sizeof(uint64) * n * FOREST_CAT_WORDS);
	for (uint32 k = 0; k < n; k++)
	{
		uint32		node = GetU32(r);
		int32		f;
		const CrCategoryMap *map;
		int			ncodes;

		if ((int64) node <= prev || node >= (uint32) total)
			BadModel("A category set names an invalid node.");
		prev = node;
		f = m->forest.feature[node];
		if (f < 0)
			BadModel("A category set belongs to a leaf.");
		map = m->cats[f];
		if (map == NULL)
			BadModel("A category set splits on a feature that is a number.");
		ncodes = map->nlevels + 1;
		for (int w = 0; w < FOREST_CAT_WORDS; w++)
		{
			uint64		lo = GetU32(r);
			uint64		hi = GetU32(r);
			uint64		v = lo | (hi << 32);
			int			first = w * 64;

			if (first >= ncodes)
			{
				if (v != 0)
					BadModel("A category set holds a code the feature does not have.");
			}
			else if (ncodes - first < 64 && (v >> (ncodes - first)) != 0)
				BadModel("A category set holds a code the feature does not have.");
			m->forest.cat_bits[(Size) k * FOREST_CAT_WORDS + w] = v;
		}
		m->forest.cat_set[node] = (int32) k;
	}
}

static uint64
GetU64(Reader *r)
{
	uint64		lo = GetU32(r);
	uint64		hi = GetU32(r);

	return lo | (hi << 32);
}

/*
 * A scorecard's bins: per feature the value bin count, a number's
 * increasing cuts or a categorical feature's bin per code, then per bin
 * (the missing one last) a finite WoE and the training rows and events.
 */
static void
DecodeWoe(Reader *r, CrModel *m)
{
	uint32		n = GetU32(r);

	if (m->features == NULL || n != (uint32) m->nfeatures)
		BadModel("The scorecard bins do not match the features.");
	m->woe = palloc0(sizeof(CrWoeFeature) * n);
	for (uint32 j = 0; j < n; j++)
	{
		CrWoeFeature *w = &m->woe[j];
		uint32		nbins = GetU32(r);
		const CrCategoryMap *map = m->cats != NULL ? m->cats[j] : NULL;

		if (nbins > CR_MAX_WOE_BINS)
			BadModel("A scorecard feature has too many bins.");
		w->nbins = (int) nbins;
		if (map != NULL)
		{
			w->ncodes = map->nlevels + 1;
			w->code_bin = palloc(sizeof(int) * w->ncodes);
			for (int c = 0; c < w->ncodes; c++)
			{
				uint32		b = GetU32(r);

				if (b != PG_UINT32_MAX && b >= nbins)
					BadModel("A scorecard level is in a bin the feature does not have.");
				w->code_bin[c] = b == PG_UINT32_MAX ? -1 : (int) b;
			}
		}
		else
		{
			w->cuts = palloc(sizeof(double) * Max(nbins, 1));
			for (uint32 b = 0; b + 1 < nbins; b++)
			{
				w->cuts[b] = GetFiniteF8(r, "scorecard cut point");
				if (b > 0 && w->cuts[b] <= w->cuts[b - 1])
					BadModel("Scorecard cut points are not increasing.");
			}
		}
		/* each bin needs 24 bytes: do not allocate past the input */
		Need(r, (Size) (nbins + 1) * 24);
		w->woe = palloc(sizeof(double) * (nbins + 1));
		w->n = palloc(sizeof(int64) * (nbins + 1));
		w->events = palloc(sizeof(int64) * (nbins + 1));
		for (uint32 b = 0; b <= nbins; b++)
		{
			uint64		rows;
			uint64		events;

			w->woe[b] = GetFiniteF8(r, "weight of evidence");
			rows = GetU64(r);
			events = GetU64(r);
			if (rows > (uint64) PG_INT64_MAX || events > rows)
				BadModel("A scorecard bin's counts are out of range.");
			w->n[b] = (int64) rows;
			w->events[b] = (int64) events;
		}
	}
}

/*
 * Calibration: Platt's finite a and b, or isotonic points: PDs strictly
 * increasing in [0, 1] and their calibrated PDs non-decreasing in [0, 1].
 */
static void
DecodeCalibration(Reader *r, CrModel *m)
{
	CrCalibration *c = palloc0(sizeof(CrCalibration));
	uint32		method = GetU32(r);

	if (method == CR_CALIBRATION_PLATT)
	{
		c->a = GetFiniteF8(r, "calibration slope");
		c->b = GetFiniteF8(r, "calibration intercept");
	}
	else if (method == CR_CALIBRATION_ISOTONIC)
	{
		uint32		n = GetU32(r);

		if (n == 0 || n > CR_MAX_CALIBRATION_POINTS)
			BadModel("The calibration's point count is out of range.");
		Need(r, (Size) n * 16);
		c->npoints = (int) n;
		c->x = palloc(sizeof(double) * n);
		c->y = palloc(sizeof(double) * n);
		for (uint32 i = 0; i < n; i++)
		{
			c->x[i] = GetFiniteF8(r, "calibration point");
			if (c->x[i] < 0.0 || c->x[i] > 1.0 || (i > 0 && c->x[i] <= c->x[i - 1]))
				BadModel("The calibration's PDs are not increasing within [0, 1].");
		}
		for (uint32 i = 0; i < n; i++)
		{
			c->y[i] = GetFiniteF8(r, "calibrated PD");
			if (c->y[i] < 0.0 || c->y[i] > 1.0 || (i > 0 && c->y[i] < c->y[i - 1]))
				BadModel("The calibrated PDs are not non-decreasing within [0, 1].");
		}
	}
	else
		BadModel(psprintf("Unknown calibration method %u.", method));
	c->method = (CrCalibrationMethod) method;
	m->calibration = c;
}

static void
DecodeBaseline(Reader *r, CrModel *m)
{
	uint32		n;

	m->drift_moderate = GetFiniteF8(r, "drift threshold");
	m->drift_major = GetFiniteF8(r, "drift threshold");
	if (!(m->drift_moderate > 0.0 && m->drift_moderate < m->drift_major))
		BadModel("The drift thresholds are out of order.");
	n = GetU32(r);

	if (m->features == NULL || n != (uint32) m->nfeatures + 1)
		BadModel("The drift baseline does not match the features.");
	m->baseline = palloc0(sizeof(CrBaseline) * n);
	for (uint32 f = 0; f < n; f++)
	{
		CrBaseline *b = &m->baseline[f];
		uint32		ncuts = GetU32(r);

		if (ncuts > CR_MAX_DRIFT_CUTS)
			BadModel("A drift baseline has too many bins.");
		b->ncuts = (int) ncuts;
		b->cuts = palloc(sizeof(double) * Max(ncuts, 1));
		b->shares = palloc(sizeof(double) * (ncuts + 1));
		for (uint32 i = 0; i < ncuts; i++)
		{
			b->cuts[i] = GetFiniteF8(r, "baseline cut point");
			if (i > 0 && b->cuts[i] <= b->cuts[i - 1])
				BadModel("Baseline cut points are not increasing.");
		}
		for (uint32 i = 0; i <= ncuts; i++)
		{
			b->shares[i] = GetFiniteF8(r, "baseline share");
			if (b->shares[i] < 0.0 || b->shares[i] > 1.0)
				BadModel("A baseline share is out of range.");
		}
		b->missing = GetFiniteF8(r, "baseline missing share");
		if (b->missing < 0.0 || b->missing > 1.0)
			BadModel("A baseline share is out of range.");
	}
}

/*
 * Decode model bytes (the payload of a bytea, without its varlena header).
 * The result is palloc'd in CurrentMemoryContext.
 */
CrModel *
ModelDecode(const char *data, Size len)
{
	Reader		r = {(const uint8 *) data, len, 0};
	CrModel    *m;
	uint32		magic;
	uint16		version;
	uint16		algorithm;
	uint32		total;
	uint32		crc;
	bool		seen[CR_SECT_MAX + 1] = {false};

	if (len < CR_HEADER_SIZE)
		BadModel("The value is shorter than a model header.");
	magic = GetU32(&r);
	if (magic != CR_MODEL_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("value is not a credit_risk model"),
				 errdetail("The bytes do not start with the model magic number.")));
	version = GetU16(&r);
	if (version == 0 || version > CR_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unsupported credit_risk model format version %u", version),
				 errdetail("This build reads format versions 1 to %d.", CR_FORMAT_VERSION),
				 errhint("Upgrade the credit_risk extension.")));
	algorithm = GetU16(&r);
	if (algorithm != CR_ALGO_LOGISTIC && algorithm != CR_ALGO_GBM &&
		algorithm != CR_ALGO_SCORECARD)
		BadModel(psprintf("Unknown algorithm code %u.", algorithm));
	if (version == 3 ? algorithm != CR_ALGO_SCORECARD
		: version < 3 && algorithm == CR_ALGO_SCORECARD)
		BadModel("Scorecards, and only they, are format 3.");
	(void) GetU32(&r);			/* reserved */
	total = GetU32(&r);
	if (total != len)
		BadModel("The length recorded in the header does not match the value.");
	crc = GetU32(&r);
	if (crc != ModelComputeChecksum(data, len))
		BadModel("The checksum does not match: the bytes were truncated or altered.");

	m = palloc0(sizeof(CrModel));
	m->algorithm = (CrAlgorithm) algorithm;
	m->format_version = version;
	m->checksum = crc;
	m->nbytes = len;

	while (r.pos < r.len)
	{
		uint16		tag = GetU16(&r);
		uint32		slen;
		Reader		sub;

		(void) GetU16(&r);
		slen = GetU32(&r);
		Need(&r, slen);
		sub.data = r.data + r.pos;
		sub.len = slen;
		sub.pos = 0;
		r.pos += slen;

		if (tag == 0 || tag > CR_SECT_MAX)
			BadModel(psprintf("Unknown section tag %u.", tag));
		if (seen[tag])
			BadModel(psprintf("Section %u appears twice.", tag));
		seen[tag] = true;

		switch ((CrSectionTag) tag)
		{
			case CR_SECT_FEATURES:
				DecodeFeatures(&sub, m);
				break;
			case CR_SECT_IMPUTE:
				if (m->features == NULL)
					BadModel("The imputation section precedes the features.");
				m->impute = palloc(sizeof(double) * m->nfeatures);
				for (int i = 0; i < m->nfeatures; i++)
					m->impute[i] = GetFiniteF8(&sub, "imputation value");
				break;
			case CR_SECT_SCORING:
				DecodeScoring(&sub, &m->scoring);
				break;
			case CR_SECT_LOGIT:
				if (algorithm == CR_ALGO_GBM)
					BadModel("A tree model holds coefficients.");
				DecodeLogit(&sub, m);
				break;
			case CR_SECT_WOE:
				if (algorithm != CR_ALGO_SCORECARD)
					BadModel("A model other than a scorecard holds scorecard bins.");
				DecodeWoe(&sub, m);
				break;
			case CR_SECT_CALIBRATION:
				if (version < 4)
					BadModel("A model before format 4 holds a calibration.");
				DecodeCalibration(&sub, m);
				break;
			case CR_SECT_GBM:
				if (algorithm != CR_ALGO_GBM)
					BadModel("A logistic model holds trees.");
				DecodeGbm(&sub, m);
				break;
			case CR_SECT_BASELINE:
				DecodeBaseline(&sub, m);
				break;
			case CR_SECT_CATEGORIES:
				if (version < 2)
					BadModel("A format 1 model holds categories.");
				if (seen[CR_SECT_LOGIT] || seen[CR_SECT_GBM] || seen[CR_SECT_BASELINE] ||
					seen[CR_SECT_WOE])
					BadModel("The categories follow the sections that depend on them.");
				DecodeCategories(&sub, m);
				break;
			case CR_SECT_GBM_CATS:
				if (algorithm != CR_ALGO_GBM)
					BadModel("A model other than trees holds category sets.");
				DecodeGbmCats(&sub, m);
				break;
		}
		if (sub.pos != sub.len)
			BadModel(psprintf("Section %u has trailing bytes.", tag));
	}

	if (!seen[CR_SECT_FEATURES] || !seen[CR_SECT_IMPUTE] ||
		!seen[CR_SECT_SCORING] ||
		(algorithm != CR_ALGO_GBM && !seen[CR_SECT_LOGIT]) ||
		(algorithm == CR_ALGO_GBM && !seen[CR_SECT_GBM]) ||
		(algorithm == CR_ALGO_SCORECARD && !seen[CR_SECT_WOE]))
		BadModel("A required section is missing.");
	if (version == 2 && m->cats == NULL)
		BadModel("A format 2 model has no categories.");
	if (version == 4 && m->calibration == NULL)
		BadModel("A format 4 model has no calibration.");

	/* a tree that splits on a categorical feature must say how */
	if (algorithm == CR_ALGO_GBM && m->cats != NULL)
	{
		int32		total = m->forest.tree_start[m->forest.ntrees];

		for (int32 i = 0; i < total; i++)
			if (m->forest.feature[i] >= 0 && m->cats[m->forest.feature[i]] != NULL &&
				(m->forest.cat_set == NULL || m->forest.cat_set[i] < 0))
				BadModel("A tree node splits on a categorical feature without a category set.");
	}

	if (algorithm == CR_ALGO_GBM)
	{
		m->forest.nfeatures = m->nfeatures;
		ForestPrepare(&m->forest);
	}

	return m;
}
