/*
 * forest.c
 *	  The scoring forest: growing the node arrays, building the dense copy
 *	  from them, and every walk: one row (ForestMargin), a block of rows
 *	  (ForestScoreBlock, scalar or AVX-512), and the node arrays themselves
 *	  for forests too deep for the dense copy; and the explanation of one
 *	  row's margin (ForestShap).
 *
 * Every walk adds the trees' leaf values to base_margin one tree at a time,
 * in tree order, so every path gives the same margin to the last bit.
 */
#include "postgres.h"

#include <math.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CR_SIMD_SCORERS 1
#endif

#include "miscadmin.h"
#include "port/pg_bitutils.h"

#include "binning.h"
#include "credit_risk.h"
#include "forest.h"

/*
 * The dense copy holds forests over at most this many features, so that a
 * row's codes fit on the stack of ForestMargin; model bytes never hold more
 * (CR_MAX_FEATURES).
 */
#define FOREST_DENSE_MAX_FEATURES	4096

StaticAssertDecl(FOREST_GROUP == 16, "the tree scorers assume groups of sixteen rows");

/* ---------------------------------------------------------------- growing */

/* An empty forest for up to ntrees_max trees, node arrays grown as needed. */
void
ForestInit(CrForest *f, int nfeatures, int ntrees_max)
{
	memset(f, 0, sizeof(CrForest));
	f->nfeatures = nfeatures;
	f->tree_start = palloc0(sizeof(int32) * (ntrees_max + 1));
	ForestReserve(f, 1024);
}

/* Room for at least `nodes` nodes in every node array. */
void
ForestReserve(CrForest *f, int32 nodes)
{
	int32		cap = Max(f->capacity, 1024);

	if (nodes <= f->capacity)
		return;
	while (cap < nodes)
		cap *= 2;
	if (f->capacity == 0)
	{
		f->feature = palloc(sizeof(int32) * cap);
		f->threshold = palloc(sizeof(double) * cap);
		f->left = palloc(sizeof(int32) * cap);
		f->right = palloc(sizeof(int32) * cap);
		f->default_left = palloc(sizeof(bool) * cap);
		f->value = palloc(sizeof(double) * cap);
		f->cover = palloc(sizeof(double) * cap);
	}
	else
	{
		f->feature = repalloc(f->feature, sizeof(int32) * cap);
		f->threshold = repalloc(f->threshold, sizeof(double) * cap);
		f->left = repalloc(f->left, sizeof(int32) * cap);
		f->right = repalloc(f->right, sizeof(int32) * cap);
		f->default_left = repalloc(f->default_left, sizeof(bool) * cap);
		f->value = repalloc(f->value, sizeof(double) * cap);
		f->cover = repalloc(f->cover, sizeof(double) * cap);
		/* the trainer allocates cat_set at its first category split */
		if (f->cat_set != NULL)
			f->cat_set = repalloc(f->cat_set, sizeof(int32) * cap);
	}
	f->capacity = cap;
}

/*
 * Whether value x (NaN for missing) goes left at node i (absolute): every
 * walk of the node arrays decides through here, so they all agree.
 */
static inline bool
ForestGoesLeft(const CrForest *f, int32 i, double x)
{
	if (isnan(x))
		return f->default_left[i];
	if (f->cat_set != NULL && f->cat_set[i] >= 0)
		return ForestCatLeft(f->cat_bits + (Size) f->cat_set[i] * FOREST_CAT_WORDS, x);
	return x < f->threshold[i];
}

/* ------------------------------------------------------- the dense copy */

/* Fill the complete tree below dense position pos from node k (relative). */
static void
DenseFill(CrForest *f, int t, int32 k, int pos, int depth)
{
	CrDenseForest *d = &f->dense;
	int			D = d->depth;
	int			nint = (1 << D) - 1;
	int32		i = f->tree_start[t] + k;
	int32		feat = f->feature[i];
	uint32		j;

	if (depth == D)
	{
		d->leaf[(Size) t * (nint + 1) + (pos - nint)] = f->value[i];
		return;
	}
	if (feat < 0)
	{
		d->node[(Size) t * nint + pos] = FOREST_WORD_LEFT;
		DenseFill(f, t, k, 2 * pos + 1, depth + 1);
		DenseFill(f, t, k, 2 * pos + 2, depth + 1);
		return;
	}

	/* the threshold is cut number j (1-based): see FOREST_WORD */
	j = ForestCode(d, feat, f->threshold[i]) - 1;
	if (f->default_left[i])
		d->node[(Size) t * nint + pos] = FOREST_WORD(feat, j);
	else
		d->node[(Size) t * nint + pos] = FOREST_WORD(f->nfeatures + feat, j - 1);
	DenseFill(f, t, f->left[i], 2 * pos + 1, depth + 1);
	DenseFill(f, t, f->right[i], 2 * pos + 2, depth + 1);
}

/*
 * Sorted unique split thresholds per feature (dense.cuts); false when a
 * feature has too many for 16-bit codes.
 */
static bool
BuildDenseCuts(CrForest *f)
{
	CrDenseForest *d = &f->dense;
	int			F = f->nfeatures;
	int32		total = f->tree_start[f->ntrees];
	int32	   *count = palloc0(sizeof(int32) * (F + 1));
	int32	   *fill;

	for (int32 i = 0; i < total; i++)
		if (f->feature[i] >= 0)
			count[f->feature[i] + 1]++;
	for (int j = 0; j < F; j++)
		count[j + 1] += count[j];
	d->cut_start = count;
	d->cuts = palloc(sizeof(double) * Max(count[F], 1));
	fill = palloc(sizeof(int32) * F);
	memcpy(fill, count, sizeof(int32) * F);
	for (int32 i = 0; i < total; i++)
		if (f->feature[i] >= 0)
			d->cuts[fill[f->feature[i]]++] = f->threshold[i];
	pfree(fill);

	/*
	 * Sort each feature's run (a radix sort: a fresh backend's first score
	 * of a large model waited on qsort) and deduplicate it, compacting in
	 * place.
	 */
	{
		int32		out = 0;
		int32		most = 1;
		double	   *tmp;

		for (int j = 0; j < F; j++)
			most = Max(most, count[j + 1] - count[j]);
		tmp = palloc(sizeof(double) * most);
		for (int j = 0; j < F; j++)
		{
			int32		lo = count[j];
			int32		n = count[j + 1] - lo;
			int32		first = out;

			if (n > 1)
				BinSortDoubles(d->cuts + lo, n, tmp);
			for (int32 k = 0; k < n; k++)
				if (out == first || d->cuts[lo + k] != d->cuts[out - 1])
					d->cuts[out++] = d->cuts[lo + k];
			count[j] = first;
			if (out - first > 0xFFFE)
			{
				pfree(tmp);
				return false;
			}
		}
		count[F] = out;
		pfree(tmp);
	}
	return true;
}

/*
 * Build the dense copy of a measured forest (f->max_depth), or leave
 * dense.depth 0 when the forest is too deep, its codes do not fit in 16
 * bits, padding would make the copy much larger than the trees, or it has
 * category splits.
 */
static void
ForestBuildDense(CrForest *f)
{
	CrDenseForest *d = &f->dense;
	int			D = f->max_depth;
	int			nint;

	memset(d, 0, sizeof(CrDenseForest));
	if (f->nfeatures > FOREST_DENSE_MAX_FEATURES || D > FOREST_DENSE_MAX_DEPTH)
		return;

	/*
	 * A set of codes is not one cut: a forest with category splits walks
	 * its node arrays.
	 */
	if (f->ncat_sets > 0)
		return;

	/*
	 * Padding can multiply a tree's size: keep the dense copy within a small
	 * multiple of the real nodes, so crafted bytes cannot make it huge.
	 */
	if (((Size) f->ntrees << D) > (Size) 8 * f->tree_start[f->ntrees] + 65536)
		return;
	if (!BuildDenseCuts(f))
	{
		d->cut_start = NULL;
		d->cuts = NULL;
		return;
	}
	d->depth = D;
	nint = (1 << D) - 1;
	d->node = palloc(sizeof(uint32) * Max((Size) f->ntrees * nint, 1));
	d->leaf = palloc(sizeof(double) * (Size) f->ntrees * (nint + 1));
	for (int t = 0; t < f->ntrees; t++)
		DenseFill(f, t, 0, 0, 0);
}

/* ---------------------------------------------------------- one row */

/*
 * base_margin plus the dense trees' leaf values for one row's codes, added
 * in tree order.  Four trees are walked at once: one row's walk is a chain
 * of dependent loads, and four independent chains let the CPU overlap them.
 * (No straight-line vectorizing: see ScoreDenseBlock.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static double
DenseMargin(const CrForest *f, const uint16 *code)
{
	const CrDenseForest *dn = &f->dense;
	int			D = dn->depth;
	int			nint = (1 << D) - 1;
	double		margin = f->base_margin;
	int			t = 0;

	for (; t + 4 <= f->ntrees; t += 4)
	{
		const uint32 *n0 = dn->node + (Size) t * nint;
		const uint32 *n1 = n0 + nint;
		const uint32 *n2 = n1 + nint;
		const uint32 *n3 = n2 + nint;
		const double *leaf = dn->leaf + (Size) t * (nint + 1);
		uint32		i0 = 0, i1 = 0, i2 = 0, i3 = 0;

		for (int d = 0; d < D; d++)
		{
			uint32		w0 = n0[i0], w1 = n1[i1], w2 = n2[i2], w3 = n3[i3];

			i0 = FOREST_STEP(i0, w0, code);
			i1 = FOREST_STEP(i1, w1, code);
			i2 = FOREST_STEP(i2, w2, code);
			i3 = FOREST_STEP(i3, w3, code);
		}
		/* leaf i of tree t + r is at r * (nint + 1) + i - nint */
		margin += leaf[i0 - nint];
		margin += leaf[i1 + 1];
		margin += leaf[i2 + nint + 2];
		margin += leaf[i3 + 2 * nint + 3];
	}
	for (; t < f->ntrees; t++)
		margin += dn->leaf[(Size) t * (nint + 1) +
						   ForestDenseWalk(dn->node + (Size) t * nint, D, code)];
	return margin;
}

/*
 * The margin of one row (x in feature order, NaN for missing).  The row's
 * codes live on this stack frame: the forest may be shared by every call
 * site that scores with the same cached model.
 */
double
ForestMargin(const CrForest *f, const double *x)
{
	double		margin = f->base_margin;

	if (f->dense.depth > 0)
	{
		uint16		code[2 * FOREST_DENSE_MAX_FEATURES];
		int			F = f->nfeatures;

		for (int j = 0; j < F; j++)
		{
			uint16		c = ForestCode(&f->dense, j, x[j]);

			code[j] = c;
			code[F + j] = (uint16) (c - 1);
		}
		return DenseMargin(f, code);
	}

	/* the decoder guarantees every walk ends at a leaf */
	for (int t = 0; t < f->ntrees; t++)
	{
		int32		start = f->tree_start[t];
		int32		node = 0;
		int32		feat;

		while ((feat = f->feature[start + node]) >= 0)
		{
			bool		left = ForestGoesLeft(f, start + node, x[feat]);

			node = left ? f->left[start + node] : f->right[start + node];
		}
		margin += f->value[start + node];
	}
	return margin;
}

/* ------------------------------------------------------- a block of rows */

/*
 * A block's rows are coded in groups of FOREST_GROUP, slot-major within a
 * group: slot s of row k is at (k / G) * G * 2F + s * G + k % G.  A walk
 * then finds every row of a group from one base pointer, and a group's
 * codes for one slot are one vector.
 */

/* bytes of a block's codes (0: the forest has no dense copy) */
Size
ForestBlockCodesSize(const CrForest *f)
{
	if (f->dense.depth == 0)
		return 0;
	/* the AVX-512 gathers read 2 bytes past the last group */
	return sizeof(uint16) * (2 * (Size) f->nfeatures * FOREST_BLOCK + FOREST_GROUP);
}

/*
 * Add the dense trees' leaf values to the margins of n block rows, coded
 * as above.  GCC's straight-line vectorizer packs the eight walks below
 * into SSE lanes, moving every value between vector and general registers
 * at each level: twice as slow as plain scalar code, so it is off here.
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void
ScoreDenseBlock(const CrForest *f, const uint16 *codes, int n, double *margin)
{
	int			D = f->dense.depth;
	int			nint = (1 << D) - 1;
	int			S = 2 * f->nfeatures;

	for (int t = 0; t < f->ntrees; t++)
	{
		const uint32 *node = f->dense.node + (Size) t * nint;
		const double *leaf = f->dense.leaf + (Size) t * (nint + 1);

		/*
		 * Eight rows at a time, their walks independent so the CPU
		 * overlaps them.  Rows past n in the last group walk stale
		 * codes, unused.
		 */
		for (int k = 0; k < n; k += 8)
		{
			const uint16 *c = codes + (Size) (k & ~(FOREST_GROUP - 1)) * S +
				(k & (FOREST_GROUP - 1));
			uint32		i0 = 0, i1 = 0, i2 = 0, i3 = 0,
						i4 = 0, i5 = 0, i6 = 0, i7 = 0;

			/* row r of the group reads slot s at c[s * FOREST_GROUP + r] */
#define BLOCK_STEP(i, r) \
	do { \
		uint32		w = node[i]; \
		i = 2 * i + 1 + (c[FOREST_WORD_SLOT(w) * FOREST_GROUP + (r)] > FOREST_WORD_CUT(w)); \
	} while (0)
			for (int d = 0; d < D; d++)
			{
				BLOCK_STEP(i0, 0);
				BLOCK_STEP(i1, 1);
				BLOCK_STEP(i2, 2);
				BLOCK_STEP(i3, 3);
				BLOCK_STEP(i4, 4);
				BLOCK_STEP(i5, 5);
				BLOCK_STEP(i6, 6);
				BLOCK_STEP(i7, 7);
			}
#undef BLOCK_STEP
			if (k + 8 <= n)
			{
				margin[k] += leaf[i0 - nint];
				margin[k + 1] += leaf[i1 - nint];
				margin[k + 2] += leaf[i2 - nint];
				margin[k + 3] += leaf[i3 - nint];
				margin[k + 4] += leaf[i4 - nint];
				margin[k + 5] += leaf[i5 - nint];
				margin[k + 6] += leaf[i6 - nint];
				margin[k + 7] += leaf[i7 - nint];
			}
			else
			{
				uint32		last[8] = {i0, i1, i2, i3, i4, i5, i6, i7};

				for (int r = 0; k + r < n; r++)
					margin[k + r] += leaf[last[r] - nint];
			}
		}
	}
}

/*
 * Whether this CPU runs the scorer for simd (off and auto: always).  GCC
 * and clang check the CPU once, before main.
 */
bool
CrCpuHasSimd(CrSimd simd)
{
	switch (simd)
	{
		case CR_SIMD_OFF:
		case CR_SIMD_AUTO:
			return true;
#ifdef CR_SIMD_SCORERS
		case CR_SIMD_AVX2:
			return __builtin_cpu_supports("avx2");
		case CR_SIMD_AVX512:
			return __builtin_cpu_supports("avx512f");
#else
		case CR_SIMD_AVX2:
		case CR_SIMD_AVX512:
			return false;
#endif
	}
	return false;
}

/* The block scorer credit_risk.simd picks on this CPU. */
CrSimd
CrSimdPath(void)
{
	if (cr_simd != CR_SIMD_AUTO)
		return CrCpuHasSimd(cr_simd) ? cr_simd : CR_SIMD_OFF;
	if (CrCpuHasSimd(CR_SIMD_AVX512))
		return CR_SIMD_AVX512;
	if (CrCpuHasSimd(CR_SIMD_AVX2))
		return CR_SIMD_AVX2;
	return CR_SIMD_OFF;
}

#ifdef CR_SIMD_SCORERS

/* ------------------------------------------------------------ AVX2 */

/* Eight rows' codes (one a lane) of the slot of node word w. */
__attribute__((target("avx2"), always_inline, no_sanitize_address))
static inline __m256i
Avx2SlotCodes(const uint16 *c, uint32 w)
{
	return _mm256_cvtepu16_epi32(_mm_loadu_si128((const void *) (c + FOREST_WORD_SLOT(w) * FOREST_GROUP)));
}

/*
 * One level of one tree's walk for eight rows of a group (c points at the
 * first one's codes): the AVX-512 step below, eight lanes wide.  Codes and
 * cuts are below 2^16, so the signed compare is the unsigned one.
 */
__attribute__((target("avx2"), always_inline, no_sanitize_address))
static inline __m256i
Avx2Step(const uint32 *node, int d, __m256i p, const uint16 *c)
{
	const uint32 *level = node + (1 << d) - 1;
	const __m256i one = _mm256_set1_epi32(1);
	const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256i		w;
	__m256i		code;
	__m256i		right;

	if (d <= 3)
	{
		/* the level's 1, 2, 4 or 8 words, loaded without reading past it */
		__m256i		have = _mm256_cmpgt_epi32(_mm256_set1_epi32(1 << d), lanes);

		w = _mm256_permutevar8x32_epi32(_mm256_maskload_epi32((const int *) level, have), p);
	}
	else if (d == 4)
	{
		__m256i		hi = _mm256_cmpgt_epi32(p, _mm256_set1_epi32(7));

		w = _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(_mm256_loadu_si256((const void *) level), p),
							   _mm256_permutevar8x32_epi32(_mm256_loadu_si256((const void *) (level + 8)), p),
							   hi);
	}
	else
		w = _mm256_i32gather_epi32((const int *) level, p, 4);

	if (d == 0)
		code = Avx2SlotCodes(c, level[0]);
	else if (d == 1)
		code = _mm256_blendv_epi8(Avx2SlotCodes(c, level[0]), Avx2SlotCodes(c, level[1]),
								  _mm256_cmpeq_epi32(p, one));
	else if (d == 2)
	{
		__m256i		odd = _mm256_cmpeq_epi32(_mm256_and_si256(p, one), one);
		__m256i		two = _mm256_set1_epi32(2);

		code = _mm256_blendv_epi8(_mm256_blendv_epi8(Avx2SlotCodes(c, level[0]),
													 Avx2SlotCodes(c, level[1]), odd),
								  _mm256_blendv_epi8(Avx2SlotCodes(c, level[2]),
													 Avx2SlotCodes(c, level[3]), odd),
								  _mm256_cmpeq_epi32(_mm256_and_si256(p, two), two));
	}
	else
	{
		/* the code of slot s of lane r is at c[s * FOREST_GROUP + r] */
		__m256i		at = _mm256_or_si256(_mm256_slli_epi32(_mm256_srli_epi32(w, 16), 4), lanes);

		code = _mm256_and_si256(_mm256_i32gather_epi32((const int *) c, at, 2),
								_mm256_set1_epi32(0xFFFF));
	}
	right = _mm256_cmpgt_epi32(code, _mm256_and_si256(w, _mm256_set1_epi32(0xFFFF)));
	/* 2p + 1 when right (the compare's lanes are -1) */
	return _mm256_sub_epi32(_mm256_add_epi32(p, p), right);
}

/* Add tree t's leaf values, at positions p, to eight rows' margins. */
__attribute__((target("avx2"), always_inline, no_sanitize_address))
static inline void
Avx2AddLeaves(const CrForest *f, int t, __m256i p, __m256d *lo, __m256d *hi)
{
	int			nint = (1 << f->dense.depth) - 1;
	const double *leaf = f->dense.leaf + (Size) t * (nint + 1);

	*lo = _mm256_add_pd(*lo, _mm256_i32gather_pd(leaf, _mm256_castsi256_si128(p), 8));
	*hi = _mm256_add_pd(*hi, _mm256_i32gather_pd(leaf, _mm256_extracti128_si256(p, 1), 8));
}

/*
 * The block loop both SIMD scorers share: ROWS rows a vector (VI lanes of
 * node positions, two VD vectors of margins), each row group walking the
 * trees four at a time so that a level's loads overlap, then the trees
 * left over one at a time.  Each lane adds its trees' leaf values in tree
 * order, so the margins equal ScoreDenseBlock's to the last bit.  STEP and
 * ADD_LEAVES are the path's walk step and leaf gather.
 *
 * Not instrumented by AddressSanitizer (test/sanitize): gcc 12's ASan stack
 * frames kept their base in an AVX-512 register in this loop and faulted
 * on a margin load at -O1 under ASan only; the kernels' loads stay within
 * the block's arrays, and UBSan still checks them.
 */
#define DENSE_SIMD_KERNEL(NAME, TARGET, ROWS, VI, VD, ZERO, LOADU_PD, STOREU_PD, STEP, ADD_LEAVES) \
__attribute__((target(TARGET), no_sanitize_address)) \
static void \
NAME(const CrForest *f, const uint16 *codes, int n, double *margin) \
{ \
	int			D = f->dense.depth; \
	int			nint = (1 << D) - 1; \
	int			S = 2 * f->nfeatures; \
 \
	for (int k = 0; k < n; k += (ROWS)) \
	{ \
		const uint16 *c = codes + (Size) (k & ~(FOREST_GROUP - 1)) * S + \
			(k & (FOREST_GROUP - 1)); \
		VD			lo = LOADU_PD(margin + k); \
		VD			hi = LOADU_PD(margin + k + (ROWS) / 2); \
		int			t = 0; \
 \
		for (; t + 4 <= f->ntrees; t += 4) \
		{ \
			const uint32 *n0 = f->dense.node + (Size) t * nint; \
			VI			p0 = ZERO(); \
			VI			p1 = p0, \
						p2 = p0, \
						p3 = p0; \
 \
			for (int d = 0; d < D; d++) \
			{ \
				p0 = STEP(n0, d, p0, c); \
				p1 = STEP(n0 + nint, d, p1, c); \
				p2 = STEP(n0 + 2 * nint, d, p2, c); \
				p3 = STEP(n0 + 3 * nint, d, p3, c); \
			} \
			ADD_LEAVES(f, t, p0, &lo, &hi); \
			ADD_LEAVES(f, t + 1, p1, &lo, &hi); \
			ADD_LEAVES(f, t + 2, p2, &lo, &hi); \
			ADD_LEAVES(f, t + 3, p3, &lo, &hi); \
		} \
		for (; t < f->ntrees; t++) \
		{ \
			VI			p = ZERO(); \
 \
			for (int d = 0; d < D; d++) \
				p = STEP(f->dense.node + (Size) t * nint, d, p, c); \
			ADD_LEAVES(f, t, p, &lo, &hi); \
		} \
		STOREU_PD(margin + k, lo); \
		STOREU_PD(margin + k + (ROWS) / 2, hi); \
	} \
}

/*
 * ScoreDenseBlock with AVX2: each half of a group, eight rows, walks the
 * trees as ScoreDenseBlockAvx512 below does with sixteen.  The codes array
 * must extend 2 bytes past the last group.
 */
DENSE_SIMD_KERNEL(ScoreDenseBlockAvx2, "avx2", 8, __m256i, __m256d,
				  _mm256_setzero_si256, _mm256_loadu_pd, _mm256_storeu_pd,
				  Avx2Step, Avx2AddLeaves)

/* ---------------------------------------------------------- AVX-512 */

/* The group's sixteen codes for the slot of node word w, one a lane. */
__attribute__((target("avx512f"), always_inline, no_sanitize_address))
static inline __m512i
Avx512SlotCodes(const uint16 *c, uint32 w)
{
	return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *) (c + FOREST_WORD_SLOT(w) * FOREST_GROUP)));
}

/* One level of one tree's walk for a group's sixteen rows (see below). */
__attribute__((target("avx512f"), always_inline, no_sanitize_address))
static inline __m512i
Avx512Step(const uint32 *node, int d, __m512i p, const uint16 *c)
{
	const uint32 *level = node + (1 << d) - 1;
	const __m512i one = _mm512_set1_epi32(1);
	__m512i		w;
	__m512i		code;
	__mmask16	right;

	if (d <= 4)
		w = _mm512_permutexvar_epi32(p,
									 _mm512_maskz_loadu_epi32((__mmask16) ((1u << (1 << d)) - 1),
															  level));
	else if (d == 5)
		w = _mm512_permutex2var_epi32(_mm512_loadu_si512(level), p,
									  _mm512_loadu_si512(level + 16));
	else
		w = _mm512_i32gather_epi32(p, (const void *) level, 4);

	/*
	 * A row's code is a gather, except on the top levels, whose one, two or
	 * four slots are plain loads of the group's codes, blended by position:
	 * cheaper than a gather.
	 */
	if (d == 0)
		code = Avx512SlotCodes(c, level[0]);
	else if (d == 1)
		code = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(p, one),
									   Avx512SlotCodes(c, level[0]),
									   Avx512SlotCodes(c, level[1]));
	else if (d == 2)
	{
		__mmask16	odd = _mm512_test_epi32_mask(p, one);

		code = _mm512_mask_blend_epi32(_mm512_test_epi32_mask(p, _mm512_set1_epi32(2)),
									   _mm512_mask_blend_epi32(odd,
															   Avx512SlotCodes(c, level[0]),
															   Avx512SlotCodes(c, level[1])),
									   _mm512_mask_blend_epi32(odd,
															   Avx512SlotCodes(c, level[2]),
															   Avx512SlotCodes(c, level[3])));
	}
	else
	{
		/* the code of slot s of lane r is at c[s * FOREST_GROUP + r] */
		__m512i		at = _mm512_or_si512(_mm512_slli_epi32(_mm512_srli_epi32(w, 16), 4),
										 _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7,
														   8, 9, 10, 11, 12, 13, 14, 15));

		code = _mm512_and_si512(_mm512_i32gather_epi32(at, (const void *) c, 2),
								_mm512_set1_epi32(0xFFFF));
	}
	/* the cut of each lane's node word (FOREST_WORD_CUT) */
	right = _mm512_cmpgt_epu32_mask(code, _mm512_and_si512(w, _mm512_set1_epi32(0xFFFF)));
	p = _mm512_add_epi32(p, p);
	return _mm512_mask_add_epi32(p, right, p, one);
}

/* Add tree t's leaf values, at positions p, to a group's margins. */
__attribute__((target("avx512f"), always_inline, no_sanitize_address))
static inline void
Avx512AddLeaves(const CrForest *f, int t, __m512i p, __m512d *lo, __m512d *hi)
{
	int			nint = (1 << f->dense.depth) - 1;
	const double *leaf = f->dense.leaf + (Size) t * (nint + 1);

	*lo = _mm512_add_pd(*lo, _mm512_i32gather_pd(_mm512_castsi512_si256(p), leaf, 8));
	*hi = _mm512_add_pd(*hi, _mm512_i32gather_pd(_mm512_extracti64x4_epi64(p, 1), leaf, 8));
}

/*
 * The same with AVX-512: a group's sixteen rows walk a tree together, one
 * lane each, with p their node's position within the level.  A level's
 * node words come from a permute of the level's nodes (up to 32; a gather
 * deeper down), a row's code from a gather (or loads, near the root), and
 * the leaf values from two gathers of doubles.  A level waits for the
 * gather before it, so four trees are walked at once (DENSE_SIMD_KERNEL).
 * The codes array must extend 2 bytes past the last group (the gathers
 * read 4 bytes).
 */
DENSE_SIMD_KERNEL(ScoreDenseBlockAvx512, "avx512f", FOREST_GROUP, __m512i, __m512d,
				  _mm512_setzero_si512, _mm512_loadu_pd, _mm512_storeu_pd,
				  Avx512Step, Avx512AddLeaves)
#endif

/*
 * Code a block's values of feature j (v[0..n-1]) into the block's codes,
 * eight rows at once (BinSearch8: the count of cuts <= x, as ForestCode
 * finds it).  (No straight-line vectorizing: see ScoreDenseBlock.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void
CodeFeature(const CrForest *f, int j, const double *v, int n, uint16 *codes)
{
	const double *cuts = f->dense.cuts + f->dense.cut_start[j];
	int32		K = f->dense.cut_start[j + 1] - f->dense.cut_start[j];
	int			F = f->nfeatures;

	for (int k = 0; k < n; k += 8)
	{
		/* rows past n read stale values of the block: in bounds, unused */
		const double *x = v + k;
		int32		b[8];
		uint16	   *g = codes + (Size) (k & ~(FOREST_GROUP - 1)) * 2 * F +
			(k & (FOREST_GROUP - 1));

		BinSearch8(cuts, K, x, b);
		for (int r = 0; r < 8 && k + r < n; r++)
		{
			uint16		c = isnan(x[r]) ? 0 : (uint16) (b[r] + 1);

			g[j * FOREST_GROUP + r] = c;
			g[(F + j) * FOREST_GROUP + r] = (uint16) (c - 1);
		}
	}
}

/*
 * The margins of n <= FOREST_BLOCK rows whose values are column-major in
 * cols (feature j of row k at cols[j * FOREST_BLOCK + k], NaN for missing),
 * tree by tree, so a tree's nodes stay in cache across the block.  codes
 * is ForestBlockCodesSize bytes of scratch.
 */
void
ForestScoreBlock(const CrForest *f, const double *cols, int n,
				 uint16 *codes, double *margin)
{
	for (int k = 0; k < n; k++)
		margin[k] = f->base_margin;
	if (f->dense.depth > 0)
	{
		for (int j = 0; j < f->nfeatures; j++)
			CodeFeature(f, j, cols + j * FOREST_BLOCK, n, codes);
		switch (CrSimdPath())
		{
#ifdef CR_SIMD_SCORERS
			case CR_SIMD_AVX512:
				ScoreDenseBlockAvx512(f, codes, n, margin);
				break;
			case CR_SIMD_AVX2:
				ScoreDenseBlockAvx2(f, codes, n, margin);
				break;
#endif
			default:
				ScoreDenseBlock(f, codes, n, margin);
				break;
		}
		return;
	}
	for (int t = 0; t < f->ntrees; t++)
	{
		int32		start = f->tree_start[t];
		const int32 *feature = f->feature + start;
		const int32 *left = f->left + start;
		const int32 *right = f->right + start;
		const double *value = f->value + start;

		for (int k = 0; k < n; k++)
		{
			int32		node = 0;
			int32		feat;

			while ((feat = feature[node]) >= 0)
			{
				bool		goleft = ForestGoesLeft(f, start + node,
													cols[feat * FOREST_BLOCK + k]);

				node = goleft ? left[node] : right[node];
			}
			margin[k] += value[node];
		}
	}
}

/* ------------------------------------------------------- explanations */

/*
 * Path-dependent TreeSHAP (Lundberg, Erion and Lee, "Consistent
 * individualized feature attribution for tree ensembles", 2018, Algorithm
 * 2): the exact Shapley values of one row's margin, where a feature left
 * out of a coalition is integrated out by following both children of its
 * splits in proportion to their training cover.  A missing value goes the
 * learned default way, as in scoring.
 *
 * A child's share of its parent is its cover over the two children's
 * (which is the parent's cover in a trained tree); when both are zero the
 * two children share equally.  The expected margin (ForestPrepare)
 * uses the same shares, so base + sum of contributions = margin.
 */

/* the smallest share of cover whose cold branch is explained (see ShapRecurse) */
#define FOREST_SHAP_MIN_SHARE	1e-100

/* One element of the path: a feature, and the fractions of the paths that
 * go this way when it is out of (zero) and in (one) the coalition. */
typedef struct ShapPath
{
	int32		feature;
	double		zero;
	double		one;
	double		weight;
} ShapPath;

typedef struct ShapWalk
{
	const CrForest *f;
	const double *x;
	double	   *phi;
	int32		start;			/* the tree's first node */
	int			stride;			/* tree depth + 2: room for one level's path */
	ShapPath   *scratch;		/* a path per level of the recursion */
} ShapWalk;

/*
 * 1 / i for the path lengths there can be: the recursion's divisions by
 * small integers become multiplications.
 */
static double ShapInverse[FOREST_SHAP_MAX_DEPTH + 4];

static void
ShapInit(void)
{
	if (ShapInverse[1] == 0.0)
		for (int i = 1; i < lengthof(ShapInverse); i++)
			ShapInverse[i] = 1.0 / i;
}

static void
ShapExtend(ShapPath *m, int len, double zero, double one, int32 feature)
{
	double		inv = ShapInverse[len + 1];

	m[len].feature = feature;
	m[len].zero = zero;
	m[len].one = one;
	m[len].weight = len == 0 ? 1.0 : 0.0;
	for (int i = len - 1; i >= 0; i--)
	{
		m[i + 1].weight += one * m[i].weight * (i + 1) * inv;
		m[i].weight = zero * m[i].weight * (len - i) * inv;
	}
}

/* Take element k out of a path of len + 1 elements (0..len). */
static void
ShapUnwind(ShapPath *m, int len, int k)
{
	double		one = m[k].one;
	double		zero = m[k].zero;
	double		n = m[len].weight;
	double		inv = ShapInverse[len + 1];

	/* one is 1 or 0 (the path goes this way or not); zero > 0 when one is 0 */
	if (one != 0.0)
	{
		double		inv_one = 1.0 / one;

		for (int j = len - 1; j >= 0; j--)
		{
			double		t = m[j].weight;

			m[j].weight = n * (len + 1) * ShapInverse[j + 1] * inv_one;
			n = t - m[j].weight * zero * (len - j) * inv;
		}
	}
	else
	{
		double		inv_zero = 1.0 / zero;

		for (int j = len - 1; j >= 0; j--)
			m[j].weight = m[j].weight * (len + 1) * inv_zero * ShapInverse[len - j];
	}
	for (int j = k; j < len; j++)
	{
		m[j].feature = m[j + 1].feature;
		m[j].zero = m[j + 1].zero;
		m[j].one = m[j + 1].one;
	}
}

/* The total weight of a path of len + 1 elements with element k taken out. */
static double
ShapUnwoundSum(const ShapPath *m, int len, int k)
{
	double		one = m[k].one;
	double		zero = m[k].zero;
	double		n = m[len].weight;
	double		total = 0.0;
	double		inv = ShapInverse[len + 1];

	if (one != 0.0)
	{
		double		inv_one = 1.0 / one;

		for (int j = len - 1; j >= 0; j--)
		{
			double		t = n * (len + 1) * ShapInverse[j + 1] * inv_one;

			total += t;
			n = m[j].weight - t * zero * (len - j) * inv;
		}
	}
	else
	{
		double		inv_zero = 1.0 / zero;

		for (int j = len - 1; j >= 0; j--)
			total += m[j].weight * (len + 1) * inv_zero * ShapInverse[len - j];
	}
	return total;
}

/* A child's share of its parent's cover (see above). */
static inline double
ShapShare(const CrForest *f, int32 start, int32 node, int32 child)
{
	double		l = f->cover[start + f->left[start + node]];
	double		r = f->cover[start + f->right[start + node]];

	if (l + r <= 0.0)
		return 0.5;
	return f->cover[start + child] / (l + r);
}

/*
 * The recursion of Algorithm 2 at node, level levels below the root, with
 * the path so far in parent[0..len-1]; this level's path goes in its own
 * part of the scratch.
 */
static void
ShapRecurse(ShapWalk *w, int32 node, int level, const ShapPath *parent, int len,
			double zero, double one, int32 feature)
{
	const CrForest *f = w->f;
	int32		i = w->start + node;
	ShapPath   *m;
	int32		feat = f->feature[i];

	/*
	 * A cold branch (one = 0) reached by a negligible share of the cover
	 * adds a negligible amount, and would be divided by that share again
	 * when unwound: 1 / 1e-320 is infinite.  It is left out.
	 */
	if (one == 0.0 && zero < FOREST_SHAP_MIN_SHARE)
		return;
	check_stack_depth();
	if (len + 1 > w->stride || level + 1 > w->stride)
		elog(ERROR, "explanation path deeper than the tree");
	m = w->scratch + (Size) level * w->stride;
	if (len > 0)
		memcpy(m, parent, sizeof(ShapPath) * len);
	ShapExtend(m, len, zero, one, feature);

	if (feat < 0)
	{
		/* element 0 is the root's placeholder, not a feature */
		for (int k = 1; k <= len; k++)
			w->phi[m[k].feature] += ShapUnwoundSum(m, len, k) *
				(m[k].one - m[k].zero) * f->value[i];
		return;
	}
	else
	{
		bool		goleft = ForestGoesLeft(f, i, w->x[feat]);
		int32		hot = goleft ? f->left[i] : f->right[i];
		int32		cold = goleft ? f->right[i] : f->left[i];
		double		in_zero = 1.0;
		double		in_one = 1.0;
		double		hot_share = ShapShare(f, w->start, node, hot);
		double		cold_share = ShapShare(f, w->start, node, cold);
		int			plen = len + 1;

		/* a feature split on again above: take its element out first */
		for (int k = 1; k < plen; k++)
			if (m[k].feature == feat)
			{
				in_zero = m[k].zero;
				in_one = m[k].one;
				ShapUnwind(m, plen - 1, k);
				plen--;
				break;
			}
		ShapRecurse(w, hot, level + 1, m, plen, in_zero * hot_share, in_one, feat);
		ShapRecurse(w, cold, level + 1, m, plen, in_zero * cold_share, 0.0, feat);
	}
}

/* The deepest root-to-leaf path of tree t, in nodes. */
static int
TreeDepth(const CrForest *f, int t, int *depth)
{
	int32		start = f->tree_start[t];
	int32		n = f->tree_start[t + 1] - start;
	int			D = 0;

	/* children come after their parents: one pass in index order */
	memset(depth, 0, sizeof(int) * n);
	for (int32 k = 0; k < n; k++)
	{
		D = Max(D, depth[k]);
		if (f->feature[start + k] >= 0)
		{
			depth[f->left[start + k]] = depth[k] + 1;
			depth[f->right[start + k]] = depth[k] + 1;
		}
	}
	return D;
}

/*
 * The expected margin over the training population as the trees see it:
 * base_margin plus each tree's leaf values weighted by the share of cover
 * that reaches them.  Explanations start from it.
 */
static double
ExpectedMargin(const CrForest *f)
{
	double		expected = f->base_margin;
	int32		maxn = 0;
	double	   *reach;

	for (int t = 0; t < f->ntrees; t++)
		maxn = Max(maxn, f->tree_start[t + 1] - f->tree_start[t]);
	reach = palloc(sizeof(double) * Max(maxn, 1));
	for (int t = 0; t < f->ntrees; t++)
	{
		int32		start = f->tree_start[t];
		int32		n = f->tree_start[t + 1] - start;
		double		tree = 0.0;

		reach[0] = 1.0;
		for (int32 k = 0; k < n; k++)
		{
			int32		i = start + k;

			if (f->feature[i] < 0)
				tree += reach[k] * f->value[i];
			else
			{
				reach[f->left[i]] = reach[k] * ShapShare(f, start, k, f->left[i]);
				reach[f->right[i]] = reach[k] * ShapShare(f, start, k, f->right[i]);
			}
		}
		expected += tree;
	}
	pfree(reach);
	return expected;
}

/*
 * Make a complete, validated forest (every child after its parent, one
 * parent a node) ready to score and explain: the depth of its deepest tree,
 * its dense copy, and its expected margin.
 */
void
ForestPrepare(CrForest *f)
{
	int32		maxn = 0;
	int		   *depth;

	for (int t = 0; t < f->ntrees; t++)
		maxn = Max(maxn, f->tree_start[t + 1] - f->tree_start[t]);
	depth = palloc(sizeof(int) * Max(maxn, 1));
	f->max_depth = 0;
	for (int t = 0; t < f->ntrees; t++)
		f->max_depth = Max(f->max_depth, TreeDepth(f, t, depth));
	pfree(depth);
	ForestBuildDense(f);
	f->expected_margin = ExpectedMargin(f);
}

/*
 * Explanation tables.  For one leaf, let P be the d distinct features split
 * on along its path, z_j the share of cover that the path's splits on
 * feature j pass on (the product over those splits), and, for a row, O the
 * features of P whose splits on the path the row follows.  The leaf's value
 * v reaches a coalition S with weight prod(j in S) [j in O] * prod(j in P\S)
 * z_j, so the Shapley value of feature i, summing over S within O only, is
 *
 *	i in O:		v (1 - z_i) Z(P\O) R(O\{i})
 *	i not in O:	-v Z(P\O) R(O)
 *
 * where Z(A) is the product of z_j over A, and
 *
 *	R(T) = sum(k = 0 .. |T|) k! (d - k - 1)! / d! * e_{|T|-k}(z_j : j in T)
 *
 * with e_m the elementary symmetric polynomial of degree m.  R depends on
 * the tree only: each leaf keeps it for all 2^d subsets T, and a row needs
 * one pass over the tree's nodes (to find each leaf's O) and d + 1 lookups
 * a leaf, against TreeSHAP's d^2 operations a leaf.  Nothing is divided, so
 * no share is too small.  The same Shapley values as ShapRecurse; the
 * expected margin uses the same shares.
 *
 * Tables take 8 * 2^d bytes a leaf: a tree is tabled when its paths have
 * at most FOREST_SHAP_TABLE_MAX_PATH distinct features and the forest's
 * tables stay within the budget given (credit_risk.explain_memory); other
 * trees use ShapRecurse.
 */

/*
 * Per node of tree t: plen distinct features on the path to it, and their
 * features and shares in pfeat/pzero[node * stride ...].
 */
static void
ShapTreePaths(const CrForest *f, int t, int stride, uint8 *plen, int32 *pfeat,
			  double *pzero, uint8 *pos)
{
	int32		start = f->tree_start[t];
	int32		n = f->tree_start[t + 1] - start;

	plen[0] = 0;
	for (int32 k = 0; k < n; k++)
	{
		int32		i = start + k;
		int32		feat = f->feature[i];
		int			p;

		if (feat < 0)
			continue;
		if (plen[k] > stride)
		{
			/* already too many distinct features: the tree is not tabled */
			pos[i] = 0;
			plen[f->left[i]] = plen[f->right[i]] = plen[k];
			continue;
		}
		for (p = 0; p < plen[k]; p++)
			if (pfeat[(Size) k * stride + p] == feat)
				break;
		pos[i] = (uint8) Min(p, 255);
		for (int side = 0; side < 2; side++)
		{
			int32		c = side == 0 ? f->left[i] : f->right[i];
			double		share = ShapShare(f, start, k, c);
			int			len = plen[k];

			memcpy(pfeat + (Size) c * stride, pfeat + (Size) k * stride, sizeof(int32) * len);
			memcpy(pzero + (Size) c * stride, pzero + (Size) k * stride, sizeof(double) * len);
			if (p < len)
				pzero[(Size) c * stride + p] *= share;
			else if (len < stride)
			{
				pfeat[(Size) c * stride + len] = feat;
				pzero[(Size) c * stride + len] = share;
				len++;
			}
			else
				len = stride + 1;	/* too many: the tree is not tabled */
			plen[c] = (uint8) Min(len, 255);
		}
	}
}

/*
 * R(T) for every subset T of d features with shares z into table (see
 * above); e is scratch for 2^d * (d + 1) doubles.
 */
static void
ShapLeafTable(int d, const double *z, double *table, double *e)
{
	double		weight[FOREST_SHAP_TABLE_MAX_PATH];
	double		fact[FOREST_SHAP_TABLE_MAX_PATH + 1];
	uint32		full = (1u << d) - 1;

	fact[0] = 1.0;
	for (int k = 1; k <= d; k++)
		fact[k] = fact[k - 1] * k;
	for (int k = 0; k < d; k++)
		weight[k] = fact[k] * fact[d - k - 1] / fact[d];

	/* e[T * (d + 1) + m] = e_m over T, built from T without its lowest member */
	e[0] = 1.0;
	for (int m = 1; m <= d; m++)
		e[m] = 0.0;
	for (uint32 T = 1; T <= full; T++)
	{
		int			low = pg_rightmost_one_pos32(T);
		const double *prev = e + (Size) (T & (T - 1)) * (d + 1);
		double	   *cur = e + (Size) T * (d + 1);

		cur[0] = 1.0;
		for (int m = 1; m <= d; m++)
			cur[m] = prev[m] + z[low] * prev[m - 1];
	}
	for (uint32 T = 0; T <= full; T++)
	{
		int			size = pg_popcount32(T);
		const double *et = e + (Size) T * (d + 1);
		double		r = 0.0;

		/* never looked up for T = P (some feature of P lies outside O) */
		if (size == d)
		{
			table[T] = 0.0;
			continue;
		}
		for (int k = 0; k <= size; k++)
			r += weight[k] * et[size - k];
		table[T] = r;
	}
}

/*
 * Build the explanation tables of a prepared forest in CurrentMemoryContext
 * (explain.c keeps them with the cached model), at most budget values in
 * all.  Afterwards f->shap is set, whether or not any tree fits.
 */
void
ForestShapPrepare(CrForest *f, int64 budget)
{
	CrShapTables *s = palloc0(sizeof(CrShapTables));
	int32		total = f->tree_start[f->ntrees];
	int32		maxn = 0;
	int			stride = FOREST_SHAP_TABLE_MAX_PATH;
	uint8	   *plen;
	int32	   *pfeat;
	double	   *pzero;
	double	   *e;
	int32		nleaves = 0;
	int			maxd = 0;
	int64		npath_total = 0;
	int32		leaf_index = 0;
	int32		path_at = 0;
	int64		table_at = 0;

	for (int t = 0; t < f->ntrees; t++)
		maxn = Max(maxn, f->tree_start[t + 1] - f->tree_start[t]);
	s->tabled = palloc0(sizeof(bool) * Max(f->ntrees, 1));
	s->pos = palloc0(sizeof(uint8) * Max(total, 1));
	s->leaf = palloc(sizeof(int32) * Max(total, 1));
	for (int32 i = 0; i < total; i++)
		s->leaf[i] = -1;
	plen = palloc(sizeof(uint8) * Max(maxn, 1));
	pfeat = palloc(sizeof(int32) * (Size) Max(maxn, 1) * stride);
	pzero = palloc(sizeof(double) * (Size) Max(maxn, 1) * stride);

	/* which trees fit, and how much room they take */
	for (int t = 0; t < f->ntrees; t++)
	{
		int32		start = f->tree_start[t];
		int32		n = f->tree_start[t + 1] - start;
		int64		entries = 0;
		int32		leaves = 0;
		int64		paths = 0;
		int			depth = 0;
		bool		fits = true;

		CHECK_FOR_INTERRUPTS();
		ShapTreePaths(f, t, stride, plen, pfeat, pzero, s->pos);
		for (int32 k = 0; k < n && fits; k++)
		{
			if (f->feature[start + k] >= 0)
				continue;
			if (plen[k] > FOREST_SHAP_TABLE_MAX_PATH)
				fits = false;
			else
			{
				entries += (int64) 1 << plen[k];
				paths += plen[k];
				depth = Max(depth, plen[k]);
				leaves++;
			}
		}
		if (!fits || s->entries + entries > budget)
			continue;
		s->tabled[t] = true;
		s->entries += entries;
		nleaves += leaves;
		npath_total += paths;
		maxd = Max(maxd, depth);
		s->max_nodes = Max(s->max_nodes, n);
	}

	s->npath = palloc(sizeof(uint8) * Max(nleaves, 1));
	s->path_start = palloc(sizeof(int32) * Max(nleaves, 1));
	s->table_start = palloc(sizeof(int64) * Max(nleaves, 1));
	s->path_feature = palloc(sizeof(int32) * Max(npath_total, 1));
	s->path_zero = palloc(sizeof(double) * Max(npath_total, 1));
	s->table = palloc(sizeof(double) * Max(s->entries, 1));
	e = palloc(sizeof(double) * ((Size) 1 << maxd) * (maxd + 1));

	for (int t = 0; t < f->ntrees; t++)
	{
		int32		start = f->tree_start[t];
		int32		n = f->tree_start[t + 1] - start;

		if (!s->tabled[t])
			continue;
		CHECK_FOR_INTERRUPTS();
		ShapTreePaths(f, t, stride, plen, pfeat, pzero, s->pos);
		for (int32 k = 0; k < n; k++)
		{
			int			d = plen[k];

			if (f->feature[start + k] >= 0)
				continue;
			s->leaf[start + k] = leaf_index;
			s->npath[leaf_index] = (uint8) d;
			s->path_start[leaf_index] = path_at;
			s->table_start[leaf_index] = table_at;
			memcpy(s->path_feature + path_at, pfeat + (Size) k * stride, sizeof(int32) * d);
			memcpy(s->path_zero + path_at, pzero + (Size) k * stride, sizeof(double) * d);
			ShapLeafTable(d, pzero + (Size) k * stride, s->table + table_at, e);
			path_at += d;
			table_at += (int64) 1 << d;
			leaf_index++;
		}
	}
	pfree(e);
	pfree(plen);
	pfree(pfeat);
	pfree(pzero);
	f->shap = s;
}

/* Tree t's contributions from its tables (see above); mask is scratch. */
static void
ShapTabledTree(const CrForest *f, const CrShapTables *s, int t, const double *x,
			   double *phi, uint32 *mask)
{
	int32		start = f->tree_start[t];
	int32		n = f->tree_start[t + 1] - start;

	/* a cleared bit: the row leaves the path at a split on that feature */
	mask[0] = ~(uint32) 0;
	for (int32 k = 0; k < n; k++)
	{
		int32		i = start + k;
		int32		feat = f->feature[i];

		if (feat >= 0)
		{
			bool		goleft = ForestGoesLeft(f, i, x[feat]);
			uint32		off = mask[k] & ~((uint32) 1 << s->pos[i]);

			mask[f->left[i]] = goleft ? mask[k] : off;
			mask[f->right[i]] = goleft ? off : mask[k];
		}
		else
		{
			int32		e = s->leaf[i];
			int			d = s->npath[e];
			uint32		O = mask[k] & (((uint32) 1 << d) - 1);
			const int32 *pf = s->path_feature + s->path_start[e];
			const double *pz = s->path_zero + s->path_start[e];
			const double *R = s->table + s->table_start[e];
			double		g = f->value[i];
			double		rO;

			for (int p = 0; p < d; p++)
				if ((O & ((uint32) 1 << p)) == 0)
					g *= pz[p];
			if (g == 0.0)
				continue;
			rO = g * R[O];
			for (int p = 0; p < d; p++)
			{
				uint32		bit = (uint32) 1 << p;

				if (O & bit)
					phi[pf[p]] += g * (1.0 - pz[p]) * R[O ^ bit];
				else
					phi[pf[p]] -= rO;
			}
		}
	}
}

/*
 * Add each feature's contribution to one row's margin (x in feature order,
 * NaN for missing) to phi[0 .. nfeatures - 1].  The forest has been through
 * ForestPrepare; trees deeper than FOREST_SHAP_MAX_DEPTH are refused.  Trees
 * with tables (ForestShapPrepare) are explained from them, the others by
 * ShapRecurse.
 */
void
ForestShap(const CrForest *f, const double *x, double *phi)
{
	ShapWalk	w;
	int			D = f->max_depth;
	uint32	   *mask;

	ShapInit();
	if (D > FOREST_SHAP_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("model has a tree %d levels deep; explanations take trees of at most %d",
						D, FOREST_SHAP_MAX_DEPTH)));

	w.f = f;
	w.x = x;
	w.phi = phi;
	/*
	 * Levels 0..D, and a path of at most D + 1 elements at each: the root's
	 * placeholder and one for each split above a leaf.
	 */
	w.stride = D + 2;
	w.scratch = palloc(sizeof(ShapPath) * (Size) w.stride * w.stride);
	mask = f->shap != NULL ? palloc(sizeof(uint32) * Max(f->shap->max_nodes, 1)) : NULL;
	for (int t = 0; t < f->ntrees; t++)
	{
		CHECK_FOR_INTERRUPTS();
		if (f->shap != NULL && f->shap->tabled[t])
		{
			ShapTabledTree(f, f->shap, t, x, phi, mask);
			continue;
		}
		w.start = f->tree_start[t];
		ShapRecurse(&w, 0, 0, NULL, 0, 1.0, 1.0, -1);
	}
	if (mask != NULL)
		pfree(mask);
	pfree(w.scratch);
}
