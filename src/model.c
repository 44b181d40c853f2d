/*
 * model.c
 *	  Encode and decode model bytes.  The decoder treats its input as
 *	  hostile: every read is bounds-checked, every count and value is
 *	  validated, and anything out of place is an ERROR.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "metrics.h"
#include "model.h"

PG_FUNCTION_INFO_V1(cr_model_info);
PG_FUNCTION_INFO_V1(cr_model_trees);

const char *
ModelAlgorithmName(CrAlgorithm algorithm)
{
	switch (algorithm)
	{
		case CR_ALGO_LOGISTIC:
			return "logistic";
		case CR_ALGO_GBM:
			return "gbm";
	}
	return "unknown";
}

void
ModelScoringDefaults(CrScoring *scoring)
{
	memset(scoring, 0, sizeof(CrScoring));
	scoring->threshold = 0.5;
	scoring->nbands = 3;
	scoring->cutoffs[0] = 0.20;
	scoring->cutoffs[1] = 0.50;
	scoring->labels[0] = "low";
	scoring->labels[1] = "medium";
	scoring->labels[2] = "high";
	scoring->points_base = 600.0;
	scoring->odds_base = 50.0;
	scoring->pdo = 20.0;
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
PutStr(StringInfo buf, const char *s)
{
	size_t		len = strlen(s);

	Assert(len <= CR_MAX_NAME_LEN);
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
	PutU16(&buf, CR_FORMAT_VERSION);
	PutU16(&buf, (uint16) model->algorithm);
	PutU32(&buf, 0);
	PutU32(&buf, 0);
	PutU32(&buf, 0);

	s = SectionBegin(&buf, CR_SECT_FEATURES);
	PutU32(&buf, (uint32) model->nfeatures);
	for (int i = 0; i < model->nfeatures; i++)
		PutStr(&buf, model->features[i]);
	SectionEnd(&buf, s);

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

	if (model->algorithm == CR_ALGO_LOGISTIC)
	{
		k = model->nfeatures + 1;
		s = SectionBegin(&buf, CR_SECT_LOGIT);
		PutU32(&buf, (uint32) k);
		for (int i = 0; i < k; i++)
			PutF8(&buf, model->coef[i]);
		for (int i = 0; i < k; i++)
			PutF8(&buf, model->std_error[i]);
		SectionEnd(&buf, s);
	}
	else if (model->algorithm == CR_ALGO_GBM)
	{
		int			total = model->tree_start[model->ntrees];

		s = SectionBegin(&buf, CR_SECT_GBM);
		PutU32(&buf, (uint32) model->ntrees);
		PutF8(&buf, model->base_margin);
		for (int t = 0; t < model->ntrees; t++)
			PutU32(&buf, (uint32) (model->tree_start[t + 1] - model->tree_start[t]));
		for (int i = 0; i < total; i++)
		{
			PutU32(&buf, (uint32) model->node_feature[i]);
			PutF8(&buf, model->node_threshold[i]);
			PutU32(&buf, (uint32) model->node_left[i]);
			PutU32(&buf, (uint32) model->node_right[i]);
			appendStringInfoChar(&buf, model->node_default_left[i] ? 1 : 0);
			PutF8(&buf, model->node_value[i]);
			PutF8(&buf, model->node_cover[i]);
		}
		SectionEnd(&buf, s);
	}
	else
		elog(ERROR, "cannot encode algorithm %d", (int) model->algorithm);

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

static void
Need(Reader *r, Size n)
{
	if (n > r->len || r->pos > r->len - n)
		BadModel("The model bytes end before the data they describe.");
}

static uint16
GetU16(Reader *r)
{
	uint16		v;

	Need(r, 2);
	v = (uint16) r->data[r->pos] | ((uint16) r->data[r->pos + 1] << 8);
	r->pos += 2;
	return v;
}

static uint32
GetU32(Reader *r)
{
	uint32		v = 0;

	Need(r, 4);
	for (int i = 0; i < 4; i++)
		v |= (uint32) r->data[r->pos + i] << (8 * i);
	r->pos += 4;
	return v;
}

static double
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

static void
DecodeLogit(Reader *r, CrModel *m)
{
	uint32		k = GetU32(r);

	if (m->features == NULL || k != (uint32) m->nfeatures + 1)
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

static uint8
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
	m->ntrees = (int) ntrees;
	m->base_margin = GetFiniteF8(r, "base margin");
	Need(r, (Size) ntrees * 4);
	m->tree_start = palloc(sizeof(int32) * (ntrees + 1));
	for (uint32 t = 0; t < ntrees; t++)
	{
		uint32		n = GetU32(r);

		if (n == 0 || n > (uint32) (r->len / GBM_NODE_BYTES))
			BadModel("A tree's node count is out of range.");
		m->tree_start[t] = (int32) total;
		total += n;
		if (total > (int64) (r->len / GBM_NODE_BYTES))
			BadModel("The trees have more nodes than the bytes hold.");
	}
	m->tree_start[ntrees] = (int32) total;
	Need(r, (Size) total * GBM_NODE_BYTES);

	m->node_feature = palloc(sizeof(int32) * total);
	m->node_threshold = palloc(sizeof(double) * total);
	m->node_left = palloc(sizeof(int32) * total);
	m->node_right = palloc(sizeof(int32) * total);
	m->node_default_left = palloc(sizeof(bool) * total);
	m->node_value = palloc(sizeof(double) * total);
	m->node_cover = palloc(sizeof(double) * total);

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
		int32		start = m->tree_start[t];
		int32		n = m->tree_start[t + 1] - start;

		memset(has_parent, 0, sizeof(bool) * n);
		for (int32 k = 0; k < n; k++)
		{
			int32		i = start + k;
			int32		feature = (int32) GetU32(r);
			uint8		dl;

			m->node_feature[i] = feature;
			m->node_threshold[i] = GetF8(r);
			m->node_left[i] = (int32) GetU32(r);
			m->node_right[i] = (int32) GetU32(r);
			dl = GetU8(r);
			m->node_value[i] = GetFiniteF8(r, "node value");
			m->node_cover[i] = GetFiniteF8(r, "node cover");
			if (dl > 1 || m->node_cover[i] < 0.0)
				BadModel("A tree node holds an invalid flag or cover.");
			m->node_default_left[i] = dl == 1;
			if (feature == -1)
			{
				if (m->node_left[i] != -1 || m->node_right[i] != -1)
					BadModel("A leaf has children.");
			}
			else
			{
				if (feature < 0 || feature >= m->nfeatures)
					BadModel("A tree node splits on a feature the model does not have.");
				if (!isfinite(m->node_threshold[i]))
					BadModel("A tree node has a non-finite threshold.");
				if (m->node_left[i] <= k || m->node_left[i] >= n ||
					m->node_right[i] <= k || m->node_right[i] >= n)
					BadModel("A tree node points to a child outside its tree.");
				if (m->node_left[i] == m->node_right[i] ||
					has_parent[m->node_left[i]] || has_parent[m->node_right[i]])
					BadModel("A tree node has two parents.");
				has_parent[m->node_left[i]] = true;
				has_parent[m->node_right[i]] = true;
			}
		}
		for (int32 k = 1; k < n; k++)
			if (!has_parent[k])
				BadModel("A tree node is not reachable from the root.");
	}
	pfree(has_parent);
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

/* Fill the complete tree below dense position pos from node k (relative). */
static void
DenseFill(CrModel *m, int t, int32 k, int pos, int depth)
{
	int			D = m->dense_depth;
	int			nint = (1 << D) - 1;
	int32		i = m->tree_start[t] + k;
	int32		f = m->node_feature[i];
	uint32		j;

	if (depth == D)
	{
		m->dense_leaf[(Size) t * (nint + 1) + (pos - nint)] = m->node_value[i];
		return;
	}
	if (f < 0)
	{
		/* a leaf above the bottom: no code exceeds 0xFFFF, so all go left */
		m->dense_node[(Size) t * nint + pos] = 0xFFFF;
		DenseFill(m, t, k, 2 * pos + 1, depth + 1);
		DenseFill(m, t, k, 2 * pos + 2, depth + 1);
		return;
	}

	/*
	 * The threshold is cut number j (1-based): x < threshold is code <= j;
	 * with missing values going right, code - 1 <= j - 1 with the missing
	 * code 0 wrapping to 0xFFFF.
	 */
	j = ModelDenseCode(m, f, m->node_threshold[i]) - 1;
	if (m->node_default_left[i])
		m->dense_node[(Size) t * nint + pos] = ((uint32) f << 16) | j;
	else
		m->dense_node[(Size) t * nint + pos] =
			((uint32) (m->nfeatures + f) << 16) | (j - 1);
	DenseFill(m, t, m->node_left[i], 2 * pos + 1, depth + 1);
	DenseFill(m, t, m->node_right[i], 2 * pos + 2, depth + 1);
}

static int
DoubleCmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Sorted unique split thresholds per feature (dense_cuts); false when a
 * feature has too many for 16-bit codes.
 */
static bool
BuildDenseCuts(CrModel *m)
{
	int			F = m->nfeatures;
	int32		total = m->tree_start[m->ntrees];
	int32	   *count = palloc0(sizeof(int32) * (F + 1));
	int32	   *fill;

	for (int32 i = 0; i < total; i++)
		if (m->node_feature[i] >= 0)
			count[m->node_feature[i] + 1]++;
	for (int f = 0; f < F; f++)
		count[f + 1] += count[f];
	m->dense_cut_start = count;
	m->dense_cuts = palloc(sizeof(double) * Max(count[F], 1));
	fill = palloc(sizeof(int32) * F);
	memcpy(fill, count, sizeof(int32) * F);
	for (int32 i = 0; i < total; i++)
		if (m->node_feature[i] >= 0)
			m->dense_cuts[fill[m->node_feature[i]]++] = m->node_threshold[i];
	pfree(fill);

	/* sort and deduplicate each feature's run, compacting in place */
	{
		int32		out = 0;

		for (int f = 0; f < F; f++)
		{
			int32		lo = count[f];
			int32		n = count[f + 1] - lo;
			int32		first = out;

			qsort(m->dense_cuts + lo, n, sizeof(double), DoubleCmp);
			for (int32 k = 0; k < n; k++)
				if (out == first || m->dense_cuts[lo + k] != m->dense_cuts[out - 1])
					m->dense_cuts[out++] = m->dense_cuts[lo + k];
			count[f] = first;
			if (out - first > 0xFFFE)
				return false;
		}
		count[F] = out;
	}
	return true;
}

static void
BuildDense(CrModel *m)
{
	int			D = 0;
	int			nint;

	m->dense_depth = 0;
	if (m->nfeatures > 0x8000)
		return;
	for (int t = 0; t < m->ntrees; t++)
	{
		int32		start = m->tree_start[t];
		int32		n = m->tree_start[t + 1] - start;
		int		   *depth = palloc0(sizeof(int) * n);

		/* children come after their parents: one pass in index order */
		for (int32 k = 0; k < n; k++)
		{
			if (depth[k] > D)
				D = depth[k];
			if (m->node_feature[start + k] >= 0)
			{
				depth[m->node_left[start + k]] = depth[k] + 1;
				depth[m->node_right[start + k]] = depth[k] + 1;
			}
		}
		pfree(depth);
		if (D > CR_DENSE_MAX_DEPTH)
			return;
	}
	/*
	 * Padding can multiply a tree's size: keep the dense copy within a small
	 * multiple of the real nodes, so crafted bytes cannot make it huge.
	 */
	if (((Size) m->ntrees << D) > (Size) 8 * m->tree_start[m->ntrees] + 65536)
		return;
	if (!BuildDenseCuts(m))
		return;
	m->dense_depth = D;
	nint = (1 << D) - 1;
	m->dense_node = palloc(sizeof(uint32) * Max((Size) m->ntrees * nint, 1));
	m->dense_leaf = palloc(sizeof(double) * (Size) m->ntrees * (nint + 1));
	m->dense_code = palloc(sizeof(uint16) * 2 * Max(m->nfeatures, 1));
	for (int t = 0; t < m->ntrees; t++)
		DenseFill(m, t, 0, 0, 0);
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
	if (algorithm != CR_ALGO_LOGISTIC && algorithm != CR_ALGO_GBM)
		BadModel(psprintf("Unknown algorithm code %u.", algorithm));
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
				if (algorithm != CR_ALGO_LOGISTIC)
					BadModel("A tree model holds coefficients.");
				DecodeLogit(&sub, m);
				break;
			case CR_SECT_GBM:
				if (algorithm != CR_ALGO_GBM)
					BadModel("A logistic model holds trees.");
				DecodeGbm(&sub, m);
				break;
			case CR_SECT_BASELINE:
				DecodeBaseline(&sub, m);
				break;
		}
		if (sub.pos != sub.len)
			BadModel(psprintf("Section %u has trailing bytes.", tag));
	}

	if (!seen[CR_SECT_FEATURES] || !seen[CR_SECT_IMPUTE] ||
		!seen[CR_SECT_SCORING] ||
		(algorithm == CR_ALGO_LOGISTIC && !seen[CR_SECT_LOGIT]) ||
		(algorithm == CR_ALGO_GBM && !seen[CR_SECT_GBM]))
		BadModel("A required section is missing.");

	if (algorithm == CR_ALGO_GBM)
		BuildDense(m);

	return m;
}

/*
 * cr_model_info(bytea) returns jsonb: what the bytes hold, after full
 * validation.
 */
Datum
cr_model_info(PG_FUNCTION_ARGS)
{
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	CrModel    *m = ModelDecode(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"format_version\": %d, \"algorithm\": ",
					 m->format_version);
	escape_json(&buf, ModelAlgorithmName(m->algorithm));
	appendStringInfo(&buf, ", \"bytes\": %zu, \"checksum\": %u, \"features\": [",
					 m->nbytes, m->checksum);
	for (int i = 0; i < m->nfeatures; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, m->features[i]);
	}
	if (m->algorithm == CR_ALGO_GBM)
	{
		appendStringInfo(&buf, "], \"trees\": %d, \"nodes\": %d, \"base_margin\": ",
						 m->ntrees, m->tree_start[m->ntrees]);
		CrAppendDouble(&buf, m->base_margin);
		appendStringInfoString(&buf, ", \"impute\": [");
	}
	else
		appendStringInfoString(&buf, "], \"impute\": [");
	for (int i = 0; i < m->nfeatures; i++)
	{
		appendStringInfoString(&buf, i > 0 ? ", " : "");
		CrAppendDouble(&buf, m->impute[i]);
	}
	appendStringInfoString(&buf, "], \"risk_labels\": [");
	for (int i = 0; i < m->scoring.nbands; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, m->scoring.labels[i]);
	}
	appendStringInfoString(&buf, "], \"risk_cutoffs\": [");
	for (int i = 0; i < m->scoring.nbands - 1; i++)
	{
		appendStringInfoString(&buf, i > 0 ? ", " : "");
		CrAppendDouble(&buf, m->scoring.cutoffs[i]);
	}
	appendStringInfo(&buf, "], \"drift_baseline\": %s, \"threshold\": ",
					 m->baseline ? "true" : "false");
	CrAppendDouble(&buf, m->scoring.threshold);
	appendStringInfoString(&buf, ", \"score_points\": ");
	CrAppendDouble(&buf, m->scoring.points_base);
	appendStringInfoString(&buf, ", \"score_odds\": ");
	CrAppendDouble(&buf, m->scoring.odds_base);
	appendStringInfoString(&buf, ", \"score_pdo\": ");
	CrAppendDouble(&buf, m->scoring.pdo);
	appendStringInfoChar(&buf, '}');

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/*
 * cr_model_trees(bytea): a tree model's nodes, one row each, as the bytes
 * hold them: a row goes left when its value is below the threshold, and a
 * missing value goes the default way.  Leaves have no feature.
 */
Datum
cr_model_trees(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bytea	   *bytes = PG_GETARG_BYTEA_PP(0);
	CrModel    *m = ModelDecode(VARDATA_ANY(bytes), VARSIZE_ANY_EXHDR(bytes));

	if (m->algorithm != CR_ALGO_GBM)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model is not a tree model"),
				 errdetail("Its algorithm is %s.", ModelAlgorithmName(m->algorithm))));
	InitMaterializedSRF(fcinfo, 0);
	for (int t = 0; t < m->ntrees; t++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int32 i = m->tree_start[t]; i < m->tree_start[t + 1]; i++)
		{
			Datum		values[9];
			bool		nulls[9] = {false};
			int32		f = m->node_feature[i];

			values[0] = Int32GetDatum(t);
			values[1] = Int32GetDatum(i - m->tree_start[t]);
			if (f >= 0)
			{
				values[2] = CStringGetTextDatum(m->features[f]);
				values[3] = Float8GetDatum(m->node_threshold[i]);
				values[4] = Int32GetDatum(m->node_left[i]);
				values[5] = Int32GetDatum(m->node_right[i]);
				values[6] = BoolGetDatum(m->node_default_left[i]);
			}
			else
				nulls[2] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = true;
			values[7] = Float8GetDatum(m->node_value[i]);
			values[8] = Float8GetDatum(m->node_cover[i]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
