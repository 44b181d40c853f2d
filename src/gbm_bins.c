/*
 * gbm_bins.c
 *	  The rows a tree fit trains on, cut into bins once.
 *
 * The training columns are cut into at most 255 quantile bins (plus a bin
 * for missing values) once (GbmBin) and kept as uint8, row-major (a row's
 * bins together), for every fit on those rows: a fold's or a trial's takes
 * a copy of its rows' bytes (GbmBinsFold).  A categorical feature's bin is
 * its code (category.h).  Finding the cuts and binning the rows run in the
 * pool of threads.c, a feature or a chunk of rows a task; every row's bins
 * are the same whatever the number of threads.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"

#include "binning.h"
#include "credit_risk.h"
#include "gbm.h"
#include "hugemem.h"
#include "threads.h"

#define GBM_BIN_CHUNK_ROWS	65536	/* dataset rows per binning task */

typedef struct BinTask
{
	CrGbmBins  *b;
	CrDataset  *ds;
	const bool *holdout;
	int			max_bin;
	uint64		seed;
	double	  **work;			/* per worker */
	int64	   *chunk_tr;		/* per chunk of dataset rows: first train position */
	int64	   *chunk_ho;		/* ... and first holdout position */
} BinTask;

static void
CutsTask(void *arg, int f, int worker)
{
	BinTask    *bt = (BinTask *) arg;
	CrGbmBins  *b = bt->b;

	/* a categorical feature is binned by its code: no cuts */
	if (b->ncodes[f] > 0)
	{
		b->edges[f].ncuts = 0;
		return;
	}
	b->edges[f].ncuts = BinFindCuts(bt->ds->cols[f], bt->holdout, bt->ds->nrows,
									Min(bt->max_bin, CR_MAX_VALUE_BINS),
									BIN_SAMPLE_MAX, bt->seed + (uint64) f,
									bt->work[worker], b->edges[f].cuts);
}

/*
 * Bin n values of one feature (x) into byte f of the rows at dst, eight at
 * a time (BinSearch8).  (No straight-line vectorizing: GCC's packs the
 * eight searches into SSE lanes and moves every index between vector and
 * general registers each step.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-slp-vectorize")))
#endif
static void
BinBlock(const CrBinEdges *e, const double *x, int n, uint8 *const *dst, int f)
{
	for (int k = 0; k < n; k += 8)
	{
		double		v[8];
		int32		b[8];

		for (int r = 0; r < 8; r++)
			v[r] = k + r < n ? x[k + r] : 0.0;
		BinSearch8(e->cuts, e->ncuts, v, b);
		for (int r = 0; r < 8 && k + r < n; r++)
			dst[k + r][f] = isnan(v[r]) ? CR_MISSING_BIN : (uint8) b[r];
	}
}

#define GBM_BIN_BLOCK	512

/*
 * Bin a chunk of dataset rows into the row-major train and holdout arrays,
 * a block of rows and a feature at a time (a row's bin is BinValue's).
 */
static void
BinRowsTask(void *arg, int chunk, int worker)
{
	BinTask    *bt = (BinTask *) arg;
	CrGbmBins  *b = bt->b;
	int			p = b->p;
	int64		start = (int64) chunk * GBM_BIN_CHUNK_ROWS;
	int64		end = Min(start + GBM_BIN_CHUNK_ROWS, bt->ds->nrows);
	int64		t = bt->chunk_tr[chunk];
	int64		h = bt->chunk_ho[chunk];
	uint8	   *dst[GBM_BIN_BLOCK];

	for (int64 i0 = start; i0 < end; i0 += GBM_BIN_BLOCK)
	{
		int			n = (int) Min(GBM_BIN_BLOCK, end - i0);

		for (int k = 0; k < n; k++)
			dst[k] = bt->holdout[i0 + k] ? b->hbins + (h++) * p : b->bins + (t++) * p;
		for (int f = 0; f < p; f++)
		{
			const double *x = bt->ds->cols[f] + i0;

			if (b->ncodes[f] == 0)
			{
				BinBlock(&b->edges[f], x, n, dst, f);
				continue;
			}
			for (int k = 0; k < n; k++)
			{
				double		v = x[k];

				/* the loader gives codes 0 .. nlevels; clamped all the same */
				dst[k][f] = isnan(v) ? CR_MISSING_BIN :
					(uint8) Min(Max(v, 0.0), (double) (b->ncodes[f] - 1));
			}
		}
	}
}

CrGbmBins *
GbmBin(CrDataset *ds, const bool *holdout, const CrGbmParams *params)
{
	CrGbmBins  *b = palloc0(sizeof(CrGbmBins));
	int			p = ds->nfeatures;
	CrPool	   *pool;
	int			nthreads;
	BinTask		bt;
	int			nchunks = (int) ((ds->nrows + GBM_BIN_CHUNK_ROWS - 1) / GBM_BIN_CHUNK_ROWS);
	int64		t = 0,
				h = 0;
	instr_time	t0,
				t1;

	INSTR_TIME_SET_CURRENT(t0);
	b->p = p;
	b->max_bin = params->max_bin;
	b->seed = params->seed;
	b->ncodes = palloc0(sizeof(int) * p);
	for (int f = 0; f < p; f++)
		if (ds->cats != NULL && ds->cats[f] != NULL)
			b->ncodes[f] = ds->cats[f]->nlevels + 1;
	for (int64 i = 0; i < ds->nrows; i++)
	{
		if (holdout[i])
			b->nho++;
		else
			b->ntr++;
	}
	if (b->ntr > (int64) PG_UINT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("gradient boosting takes at most %u training rows", PG_UINT32_MAX - 1)));

	b->edges = palloc(sizeof(CrBinEdges) * p);
	b->bins = HugeAlloc((Size) Max(b->ntr, 1) * p);
	b->hbins = HugeAlloc((Size) Max(b->nho, 1) * p);
	for (int f = 0; f < p; f++)
		b->edges[f].cuts = palloc(sizeof(double) * CR_MAX_VALUE_BINS);

	pool = PoolCreate(params->threads);
	nthreads = PoolSize(pool);
	bt.b = b;
	bt.ds = ds;
	bt.holdout = holdout;
	bt.max_bin = params->max_bin;
	bt.seed = params->seed;
	bt.work = palloc(sizeof(double *) * nthreads);
	for (int w = 0; w < nthreads; w++)
		bt.work[w] = HugeAlloc(BinWorkBytes(ds->nrows));
	bt.chunk_tr = palloc(sizeof(int64) * (nchunks + 1));
	bt.chunk_ho = palloc(sizeof(int64) * (nchunks + 1));
	for (int c = 0; c < nchunks; c++)
	{
		bt.chunk_tr[c] = t;
		bt.chunk_ho[c] = h;
		for (int64 i = (int64) c * GBM_BIN_CHUNK_ROWS;
			 i < Min((int64) (c + 1) * GBM_BIN_CHUNK_ROWS, ds->nrows); i++)
		{
			if (holdout[i])
				h++;
			else
				t++;
		}
	}
	CHECK_FOR_INTERRUPTS();
	PoolRun(pool, p, CutsTask, &bt);
	CHECK_FOR_INTERRUPTS();
	PoolRun(pool, nchunks, BinRowsTask, &bt);
	for (int w = 0; w < nthreads; w++)
		HugeFree(bt.work[w]);
	pfree(bt.chunk_tr);
	pfree(bt.chunk_ho);

	b->ytr = HugeAlloc(sizeof(double) * Max(b->ntr, 1));
	b->yho = HugeAlloc(sizeof(double) * Max(b->nho, 1));
	t = h = 0;
	for (int64 i = 0; i < ds->nrows; i++)
	{
		if (holdout[i])
			b->yho[h++] = ds->label[i];
		else
			b->ytr[t++] = ds->label[i];
	}

	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	b->seconds = INSTR_TIME_GET_DOUBLE(t1);
	return b;
}

CrGbmBins *
GbmBinsFold(const CrGbmBins *b, const bool *holdout, int64 nrows, const int8 *fold, int f)
{
	CrGbmBins  *out = palloc(sizeof(CrGbmBins));
	int			p = b->p;
	int64		t = 0,
				h = 0;
	int64		ntr = 0,
				nho = 0;
	bool		same = true;

	*out = *b;
	for (int64 i = 0; i < nrows; i++)
	{
		if (fold[i] == f)
			nho++;
		else if (fold[i] >= 0)
			ntr++;
		same = same && fold[i] >= 0 && (fold[i] == f) == holdout[i];
	}
	/* the fold is the holdout and the rest the training rows: nothing to copy */
	if (same)
		return out;

	out->ntr = ntr;
	out->nho = nho;
	out->bins = HugeAlloc((Size) Max(ntr, 1) * p);
	out->hbins = HugeAlloc((Size) Max(nho, 1) * p);
	out->ytr = HugeAlloc(sizeof(double) * Max(ntr, 1));
	out->yho = HugeAlloc(sizeof(double) * Max(nho, 1));
	ntr = nho = 0;
	for (int64 i = 0; i < nrows; i++)
	{
		const uint8 *row;
		double		y;

		/* where row i was binned */
		if (holdout[i])
		{
			row = b->hbins + (Size) h * p;
			y = b->yho[h++];
		}
		else
		{
			row = b->bins + (Size) t * p;
			y = b->ytr[t++];
		}
		if (fold[i] < 0)
			continue;
		if (fold[i] == f)
		{
			memcpy(out->hbins + (Size) nho * p, row, p);
			out->yho[nho++] = y;
		}
		else
		{
			memcpy(out->bins + (Size) ntr * p, row, p);
			out->ytr[ntr++] = y;
		}
	}
	return out;
}
