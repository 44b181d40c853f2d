/*
 * logit.c
 *	  Logistic regression by Newton's method (iteratively reweighted least
 *	  squares) on standardized features.
 *
 * Each iteration is one pass over the rows at the trial coefficients: the
 * log-likelihood, X'WX and the gradient X'(y - p), block by block, each
 * block of X built from the dataset's columns as it is needed (no copy of
 * X is ever whole).  The pass runs in the training thread pool: a task
 * takes a fixed run of blocks and adds them into its own sums, and the
 * backend adds the tasks' sums in task order, so the fit does not depend
 * on the number of threads.  The products are our own (LogitKernel), as
 * OpenBLAS's serial build may not be called from two threads at once.
 * The step solves with a LAPACK Cholesky factorisation; a step that lowers
 * the (penalised) log-likelihood is halved until it does not.
 * Coefficients and their covariance are mapped back to the original
 * feature scale at the end.
 */
#include "postgres.h"

#include <dlfcn.h>
#include <limits.h>
#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "hugemem.h"
#include "logit.h"
#include "progress.h"
#include "threads.h"

/*
 * Fortran BLAS/LAPACK entry points of OpenBLAS (32-bit integers).  The
 * library is loaded on the first fit rather than with the module: it is
 * large, and scoring, which never needs it, should not pay for loading it
 * in every backend.
 */
typedef void (*DpotrfFn) (const char *uplo, const int *n, double *a, const int *lda,
						  int *info, size_t uplo_len);
typedef void (*DpotrsFn) (const char *uplo, const int *n, const int *nrhs,
						  const double *a, const int *lda, double *b, const int *ldb,
						  int *info, size_t uplo_len);
typedef void (*DpotriFn) (const char *uplo, const int *n, double *a, const int *lda,
						  int *info, size_t uplo_len);

static struct
{
	DpotrfFn	dpotrf;
	DpotrsFn	dpotrs;
	DpotriFn	dpotri;
}			Blas;

#define dpotrf_ (*Blas.dpotrf)
#define dpotrs_ (*Blas.dpotrs)
#define dpotri_ (*Blas.dpotri)

static void *
BlasSymbol(void *lib, const char *name)
{
	void	   *sym = dlsym(lib, name);

	if (sym == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("OpenBLAS library \"%s\" has no function %s", CR_OPENBLAS_LIB, name)));
	return sym;
}

static void
BlasLoad(void)
{
	void	   *lib;
	void		(*set_threads) (int);

	if (Blas.dpotri != NULL)
		return;
	lib = dlopen(CR_OPENBLAS_LIB, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("could not load OpenBLAS from \"%s\": %s", CR_OPENBLAS_LIB, dlerror()),
				 errhint("Install Debian's libopenblas-serial-dev (or libopenblas-dev) and rebuild credit_risk.")));
	/* a multi-threaded build would start threads in the backend: one is enough */
	set_threads = (void (*) (int)) dlsym(lib, "openblas_set_num_threads");
	if (set_threads != NULL)
		set_threads(1);
	Blas.dpotrf = (DpotrfFn) BlasSymbol(lib, "dpotrf_");
	Blas.dpotrs = (DpotrsFn) BlasSymbol(lib, "dpotrs_");
	Blas.dpotri = (DpotriFn) BlasSymbol(lib, "dpotri_");
}

#define LOGIT_BLOCK_ROWS		2048
#define LOGIT_TASK_BLOCKS		8	/* blocks a task adds up: 16,384 rows */
#define LOGIT_ROUND_TASKS		16	/* most tasks run between two checks for interrupts */
#define LOGIT_ROUND_BYTES		(32 * 1024 * 1024)	/* for their X'WX sums */
#define LOGIT_SEPARATION_COEF	20.0	/* standardized slope beyond which we call it separation */

static double
Penalty(const double *beta, int k, double l2)
{
	double		s = 0.0;

	for (int j = 1; j < k; j++)
		s += beta[j] * beta[j];
	return 0.5 * l2 * s;
}

/*
 * The training rows, read from the dataset's columns a block at a time:
 * gathered (the rows not excluded), imputed and standardized into a
 * k-column block whose column 0 is the intercept.  The fit makes no copy
 * of the whole design matrix: on a large table, faulting in that much
 * fresh memory costs more than rebuilding each block on every pass.
 */
typedef struct LogitRows
{
	int			n;				/* training rows */
	int			k;				/* p + 1 */
	int			kp;				/* k rounded up to LOGIT_LANES: the block's columns */
	double	  **cols;
	const int64 *rowidx;		/* n dataset rows, or NULL: rows 0 .. n-1 */
	const bool *has_nan;		/* p: some training row is missing */
	const double *impute;
	const double *mean;			/* k; [0] is 0 */
	const double *inv_sd;		/* k; [0] is 1 */
} LogitRows;

/*
 * Four doubles, loaded from any 8-byte aligned address.  GCC and clang
 * lower the arithmetic to the widest vectors the function's target has.
 */
#define LOGIT_LANES		4
typedef double LogitVec __attribute__((vector_size(32), aligned(8), may_alias));

/* b rounded up to whole vectors: a block's column stride */
#define LOGIT_STRIDE(b)	(((b) + LOGIT_LANES - 1) / LOGIT_LANES * LOGIT_LANES)

/*
 * Fill xb (column-major, stride LOGIT_STRIDE(b), kp columns) with block
 * blk's rows; returns b.  The rows past b and the columns past k are zero,
 * so they add nothing to the sums.  (GCC vectorizes these loops only with
 * a cost model above -O2's.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("vect-cost-model=cheap")))
#endif
static int
LogitBlock(const LogitRows *d, int blk, double *xb)
{
	int			start = blk * LOGIT_BLOCK_ROWS;
	int			b = Min(LOGIT_BLOCK_ROWS, d->n - start);
	int			bp = LOGIT_STRIDE(b);
	const int64 *idx = d->rowidx != NULL ? d->rowidx + start : NULL;

	for (int i = 0; i < b; i++)
		xb[i] = 1.0;
	for (int j = 1; j < d->k; j++)
	{
		const double *x = d->cols[j - 1];
		double		m = d->mean[j],
					s = d->inv_sd[j],
					imp = d->impute[j - 1];
		double	   *restrict xc = xb + (Size) j * bp;

		if (idx != NULL)
			for (int i = 0; i < b; i++)
			{
				double		v = x[idx[i]];

				xc[i] = ((isnan(v) ? imp : v) - m) * s;
			}
		else if (d->has_nan[j - 1])
			for (int i = 0; i < b; i++)
			{
				double		v = x[start + i];

				xc[i] = ((isnan(v) ? imp : v) - m) * s;
			}
		else
		{
			const double *restrict xs = x + start;

			for (int i = 0; i < b; i++)
				xc[i] = (xs[i] - m) * s;
		}
	}
	for (int j = 0; j < d->k; j++)
		for (int i = b; i < bp; i++)
			xb[(Size) j * bp + i] = 0.0;
	memset(xb + (Size) d->k * bp, 0, sizeof(double) * bp * (d->kp - d->k));
	return b;
}

/* the sum of a vector's lanes, in lane order */
#define LogitLaneSum(v)	((((v)[0] + (v)[1]) + (v)[2]) + (v)[3])

/*
 * The products of one block of bp rows (a multiple of LOGIT_LANES) and kp
 * columns (likewise), column-major with stride bp:
 *	eta = X beta;  g += X' r (r from eta, by the caller, between the two
 *	calls);  H += Z' Z with Z = X scaled by row weights, upper triangle,
 *	column-major kp x kp (H[c * kp + r], r <= c).
 * Written once (always inlined) and compiled for each instruction set.
 */
static pg_attribute_always_inline void
LogitEtaBody(const double *xb, int bp, int kp, const double *beta, double *eta)
{
	int			i = 0;

	/* 32 rows at a time: each column's 256 bytes of them read in a row */
	for (; i + 8 * LOGIT_LANES <= bp; i += 8 * LOGIT_LANES)
	{
		LogitVec	acc[8];

		memset(acc, 0, sizeof(acc));
		for (int j = 0; j < kp; j++)
		{
			const double *x = xb + (Size) j * bp + i;

			for (int v = 0; v < 8; v++)
				acc[v] += *(const LogitVec *) (x + v * LOGIT_LANES) * beta[j];
		}
		for (int v = 0; v < 8; v++)
			*(LogitVec *) (eta + i + v * LOGIT_LANES) = acc[v];
	}
	for (; i < bp; i += LOGIT_LANES)
	{
		LogitVec	acc = {0.0, 0.0, 0.0, 0.0};

		for (int j = 0; j < kp; j++)
			acc += *(const LogitVec *) (xb + (Size) j * bp + i) * beta[j];
		*(LogitVec *) (eta + i) = acc;
	}
}

static pg_attribute_always_inline void
LogitGradBody(const double *xb, int bp, int kp, const double *r, double *g)
{
	for (int j = 0; j < kp; j += 2)
	{
		const double *x0 = xb + (Size) j * bp;
		const double *x1 = x0 + bp;
		LogitVec	a0 = {0.0, 0.0, 0.0, 0.0};
		LogitVec	a1 = {0.0, 0.0, 0.0, 0.0};

		for (int i = 0; i < bp; i += LOGIT_LANES)
		{
			LogitVec	rv = *(const LogitVec *) (r + i);

			a0 += *(const LogitVec *) (x0 + i) * rv;
			a1 += *(const LogitVec *) (x1 + i) * rv;
		}
		g[j] += LogitLaneSum(a0);
		g[j + 1] += LogitLaneSum(a1);
	}
}

/* H += Z'Z in tiles of 2 x 4 columns: 8 running sums, 6 loads a step */
static pg_attribute_always_inline void
LogitSyrkBody(const double *z, int bp, int kp, double *H)
{
	for (int j0 = 0; j0 < kp; j0 += 2)
		for (int l0 = j0 & ~3; l0 < kp; l0 += 4)
		{
			const double *zj0 = z + (Size) j0 * bp;
			const double *zj1 = zj0 + bp;
			const double *zl0 = z + (Size) l0 * bp;
			const double *zl1 = zl0 + bp;
			const double *zl2 = zl1 + bp;
			const double *zl3 = zl2 + bp;
			LogitVec	s[2][4];

			memset(s, 0, sizeof(s));
			for (int i = 0; i < bp; i += LOGIT_LANES)
			{
				LogitVec	a = *(const LogitVec *) (zj0 + i);
				LogitVec	b = *(const LogitVec *) (zj1 + i);
				LogitVec	c0 = *(const LogitVec *) (zl0 + i);
				LogitVec	c1 = *(const LogitVec *) (zl1 + i);
				LogitVec	c2 = *(const LogitVec *) (zl2 + i);
				LogitVec	c3 = *(const LogitVec *) (zl3 + i);

				s[0][0] += a * c0;
				s[0][1] += a * c1;
				s[0][2] += a * c2;
				s[0][3] += a * c3;
				s[1][0] += b * c0;
				s[1][1] += b * c1;
				s[1][2] += b * c2;
				s[1][3] += b * c3;
			}
			for (int r = 0; r < 2; r++)
				for (int c = 0; c < 4; c++)
					if (j0 + r <= l0 + c)
						H[(Size) (l0 + c) * kp + j0 + r] += LogitLaneSum(s[r][c]);
		}
}

typedef struct LogitKernel
{
	void		(*eta) (const double *xb, int bp, int kp, const double *beta, double *eta);
	void		(*grad) (const double *xb, int bp, int kp, const double *r, double *g);
	void		(*syrk) (const double *z, int bp, int kp, double *H);
} LogitKernel;

#define LOGIT_KERNEL(SUFFIX, ATTR) \
ATTR static void \
LogitEta##SUFFIX(const double *xb, int bp, int kp, const double *beta, double *eta) \
{ LogitEtaBody(xb, bp, kp, beta, eta); } \
ATTR static void \
LogitGrad##SUFFIX(const double *xb, int bp, int kp, const double *r, double *g) \
{ LogitGradBody(xb, bp, kp, r, g); } \
ATTR static void \
LogitSyrk##SUFFIX(const double *z, int bp, int kp, double *H) \
{ LogitSyrkBody(z, bp, kp, H); } \
static const LogitKernel LogitKernel##SUFFIX = {LogitEta##SUFFIX, LogitGrad##SUFFIX, LogitSyrk##SUFFIX};

LOGIT_KERNEL(Base, )
#if defined(__x86_64__) && defined(__GNUC__)
#define LOGIT_X86_KERNELS
LOGIT_KERNEL(Avx2, __attribute__((target("avx2,fma"))))
LOGIT_KERNEL(Avx512, __attribute__((target("avx512f,avx512vl,fma"))))
#endif

/* the widest kernel this CPU runs */
static const LogitKernel *
LogitKernelChoose(void)
{
#ifdef LOGIT_X86_KERNELS
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
		return &LogitKernelAvx512;
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		return &LogitKernelAvx2;
#endif
	return &LogitKernelBase;
}

/*
 * One pass at coefficients beta: every task's sums (log-likelihood, X'WX
 * and the gradient over its blocks) in its own slot of the current round.
 */
typedef struct LogitPassJob
{
	const LogitRows *d;
	const LogitKernel *kern;
	double	   *beta;			/* kp, zero past k */
	const double *y;
	const double *cw;
	int			first_task;		/* of the round */
	int			round_tasks;	/* tasks in a round: at most LOGIT_ROUND_TASKS */
	double	   *H;				/* round_tasks x kp x kp */
	double	   *g;				/* round_tasks x kp */
	double		ll[LOGIT_ROUND_TASKS];
	double	   *work;			/* per worker: a block, eta and r */
	Size		work_doubles;	/* of one worker */
} LogitPassJob;

static void
LogitPassTask(void *arg, int task, int worker)
{
	LogitPassJob *job = (LogitPassJob *) arg;
	const LogitRows *d = job->d;
	int			kp = d->kp;
	int			t = job->first_task + task;
	int			nblocks = (d->n + LOGIT_BLOCK_ROWS - 1) / LOGIT_BLOCK_ROWS;
	int			blk_end = Min((t + 1) * LOGIT_TASK_BLOCKS, nblocks);
	double	   *H = job->H + (Size) task * kp * kp;
	double	   *g = job->g + (Size) task * kp;
	double	   *xb = job->work + job->work_doubles * worker;
	double	   *eta = xb + (Size) kp * LOGIT_BLOCK_ROWS;
	double	   *r = eta + LOGIT_BLOCK_ROWS;
	double		ll = 0.0;

	memset(H, 0, sizeof(double) * kp * kp);
	memset(g, 0, sizeof(double) * kp);
	for (int blk = t * LOGIT_TASK_BLOCKS; blk < blk_end; blk++)
	{
		int			start = blk * LOGIT_BLOCK_ROWS;
		int			b = LogitBlock(d, blk, xb);
		int			bp = LOGIT_STRIDE(b);

		job->kern->eta(xb, bp, kp, job->beta, eta);
		for (int i = 0; i < b; i++)
		{
			double		yi = job->y[start + i];
			double		c = job->cw[yi > 0.5];
			double		e = exp(-fabs(eta[i]));
			double		inv = 1.0 / (1.0 + e);
			double		p = eta[i] >= 0 ? inv : e * inv;

			/* log(1 + exp(eta)) = max(eta, 0) + log1p(exp(-|eta|)) */
			ll += c * (yi * eta[i] - (Max(eta[i], 0.0) + log1p(e)));
			r[i] = c * (yi - p);
			eta[i] = sqrt(c * p * (1.0 - p));	/* now the row's weight */
		}
		for (int i = b; i < bp; i++)
			r[i] = eta[i] = 0.0;
		job->kern->grad(xb, bp, kp, r, g);
		for (int j = 0; j < d->k; j++)
		{
			double	   *zc = xb + (Size) j * bp;

			for (int i = 0; i < b; i++)
				zc[i] *= eta[i];
		}
		job->kern->syrk(xb, bp, kp, H);
	}
	job->ll[task] = ll;
}

/*
 * One pass over the training rows at coefficients beta: returns the
 * log-likelihood (each row weighted by its class's weight cw[y]), and sets
 * H = X' W X (upper triangle, k x k column-major; w = c p(1-p)) and the
 * gradient g = X' c (y - p), c the row's class weight.  Tasks of
 * LOGIT_TASK_BLOCKS blocks, so each block is in cache for all its
 * products; their sums are added in task order.
 */
static double
LogitPass(const LogitRows *d, CrPool *pool, LogitPassJob *job, const double *beta,
		  double *H, double *g)
{
	int			k = d->k,
				kp = d->kp;
	int			nblocks = (d->n + LOGIT_BLOCK_ROWS - 1) / LOGIT_BLOCK_ROWS;
	int			ntasks = (nblocks + LOGIT_TASK_BLOCKS - 1) / LOGIT_TASK_BLOCKS;
	double		ll = 0.0;

	memcpy(job->beta, beta, sizeof(double) * k);	/* zero past k */
	memset(H, 0, sizeof(double) * k * k);
	memset(g, 0, sizeof(double) * k);
	for (int first = 0; first < ntasks; first += job->round_tasks)
	{
		int			nt = Min(job->round_tasks, ntasks - first);

		job->first_task = first;
		PoolRun(pool, nt, LogitPassTask, job);
		for (int t = 0; t < nt; t++)
		{
			const double *Ht = job->H + (Size) t * kp * kp;
			const double *gt = job->g + (Size) t * kp;

			ll += job->ll[t];
			for (int c = 0; c < k; c++)
			{
				g[c] += gt[c];
				for (int r = 0; r <= c; r++)
					H[c * k + r] += Ht[(Size) c * kp + r];
			}
		}
		CHECK_FOR_INTERRUPTS();
	}
	return ll;
}

static void pg_attribute_noreturn()
Singular(int info, int k, char **names)
{
	/* info is the 1-based order of the failing pivot; column 0 is the intercept */
	if (info >= 2 && info <= k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature \"%s\" is a linear combination of the intercept and earlier features",
						names[info - 2]),
				 errdetail("X'WX is singular, so the logistic regression has no unique solution."),
				 errhint("Remove the feature, or set params.l2 above 0.")));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("X'WX is singular"),
			 errhint("Remove linearly dependent features, or set params.l2 above 0.")));
}

/* Report the feature whose coefficient runs away. */
static void pg_attribute_noreturn()
Separation(const double *beta, int k, char **names)
{
	int			worst = 1;

	for (int j = 2; j < k; j++)
		if (fabs(beta[j]) > fabs(beta[worst]))
			worst = j;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("feature \"%s\" separates the classes (nearly) perfectly", names[worst - 1]),
			 errdetail("Its coefficient grows without bound: %g per standard deviation.", beta[worst]),
			 errhint("Remove the feature, or set params.l2 above 0.")));
}

/* A feature's mean, standard deviation and missing count over the training rows. */
typedef struct LogitStatsJob
{
	double	  **cols;
	const double *impute;
	const int64 *rowidx;		/* or NULL */
	int			n;
	int64	   *nan;			/* per feature */
	double	   *mean;			/* per feature */
	double	   *sd;				/* per feature */
} LogitStatsJob;

static void
LogitStatsTask(void *arg, int j, int worker)
{
	LogitStatsJob *sj = (LogitStatsJob *) arg;
	const double *x = sj->cols[j];
	const int64 *rowidx = sj->rowidx;
	double		imp = sj->impute[j];
	double		m = 0.0,
				v = 0.0;
	int64		nan = 0;

	for (int r = 0; r < sj->n; r++)
	{
		double		xi = x[rowidx != NULL ? rowidx[r] : r];

		nan += isnan(xi);
		m += isnan(xi) ? imp : xi;
	}
	m /= sj->n;
	for (int r = 0; r < sj->n; r++)
	{
		double		xi = x[rowidx != NULL ? rowidx[r] : r];

		xi = isnan(xi) ? imp : xi;
		v += (xi - m) * (xi - m);
	}
	sj->nan[j] = nan;
	sj->mean[j] = m;
	sj->sd[j] = sqrt(v / sj->n);
}

/*
 * Newton's method from the intercept-only model (intercept log(ybar / (1 -
 * ybar)), ybar the weighted default rate) on the standardized scale, given
 * mean and sd, each pass over the rows done by pass; the coefficients,
 * their standard errors and the log-likelihoods, mapped back to the
 * original scale.  names (k - 1 of them) are for messages.
 */
CrLogitFit *
LogitNewton(LogitPassFn pass, void *arg, int k, double ybar, const double *mean,
			const double *sd, char **names, const CrLogitOptions *opts)
{
	double	   *beta = palloc0(sizeof(double) * k);
	double	   *trial = palloc0(sizeof(double) * k);
	double	   *g = palloc0(sizeof(double) * k);
	double	   *H = palloc0(sizeof(double) * k * k);
	double	   *g_trial = palloc0(sizeof(double) * k);
	double	   *H_trial = palloc0(sizeof(double) * k * k);
	double	   *chol = palloc0(sizeof(double) * k * k);
	double	   *step_dir = palloc0(sizeof(double) * k);
	double		ll;				/* at beta, penalised */
	double		ll_raw;			/* at beta, without the penalty */
	bool		converged = false;
	int			iter = 0;
	int			info;
	const int	nrhs = 1;
	CrLogitFit *fit;

	BlasLoad();
	fit = palloc0(sizeof(CrLogitFit));

	/*
	 * Start from the intercept-only model.  Each pass at a trial point also
	 * forms X'WX and the gradient there, so an accepted step (the usual
	 * case) needs no second pass: one pass over the rows per iteration.
	 */
	beta[0] = log(ybar / (1.0 - ybar));
	ll_raw = ll = pass(arg, beta, H, g);
	fit->null_log_likelihood = ll;

	ProgressPhase("Newton step", -1);
	while (iter < opts->max_iter || (converged && iter < opts->max_iter + 1))
	{
		double		step = 1.0;
		double		ll_trial = ll;
		double		ll_trial_raw = ll_raw;
		bool		accepted = false;

		CHECK_FOR_INTERRUPTS();
		ProgressStep(iter + 1, 0);
		memcpy(chol, H, sizeof(double) * k * k);
		memcpy(step_dir, g, sizeof(double) * k);
		for (int j = 1; j < k; j++)
		{
			step_dir[j] -= opts->l2 * beta[j];
			chol[j * k + j] += opts->l2;
		}
		dpotrf_("U", &k, chol, &k, &info, 1);
		if (info > 0 && iter == 0)
			Singular(info, k, names);	/* equal weights: X itself is rank-deficient */
		else if (info > 0)
			Separation(beta, k, names);	/* the weights collapsed */
		else if (info < 0)
			elog(ERROR, "dpotrf failed: illegal argument %d", -info);
		dpotrs_("U", &k, &nrhs, chol, &k, step_dir, &k, &info, 1);
		if (info != 0)
			elog(ERROR, "dpotrs failed: %d", info);

		for (int halvings = 0; halvings < 40; halvings++)
		{
			for (int j = 0; j < k; j++)
				trial[j] = beta[j] + step * step_dir[j];
			ll_trial_raw = pass(arg, trial, H_trial, g_trial);
			ll_trial = ll_trial_raw - Penalty(trial, k, opts->l2);
			if (ll_trial >= ll - 1e-12 * fabs(ll))
			{
				accepted = true;
				break;
			}
			step *= 0.5;
		}
		iter++;
		if (!accepted)
		{
			/* no step improves: we are at the optimum to machine precision */
			converged = true;
			break;
		}

		{
			double		change = ll_trial - ll;
			double	   *tmp;

			memcpy(beta, trial, sizeof(double) * k);
			tmp = H;
			H = H_trial;
			H_trial = tmp;
			tmp = g;
			g = g_trial;
			g_trial = tmp;
			ll = ll_trial;
			ll_raw = ll_trial_raw;
			if (converged)
				break;
			/*
			 * A small change in log-likelihood means the step just taken
			 * landed close to the optimum; one more Newton step (quadratic
			 * convergence) polishes the coefficients to machine precision.
			 */
			if (fabs(change) <= opts->tol * (fabs(ll) + opts->tol))
				converged = true;
		}
	}

	if (!converged)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("logistic regression did not converge in %d iterations", opts->max_iter),
				 errhint("Raise params.max_iter, or set params.l2 above 0 if the classes are (nearly) separable.")));

	if (opts->l2 == 0.0)
	{
		int			worst = -1;

		for (int j = 1; j < k; j++)
			if (fabs(beta[j]) > LOGIT_SEPARATION_COEF &&
				(worst < 0 || fabs(beta[j]) > fabs(beta[worst])))
				worst = j;
		if (worst > 0)
			Separation(beta, k, names);
	}

	/* covariance: inverse of the (penalised) Hessian at the solution */
	for (int j = 1; j < k; j++)
		H[j * k + j] += opts->l2;
	dpotrf_("U", &k, H, &k, &info, 1);
	if (info > 0)
		Separation(beta, k, names);
	dpotri_("U", &k, H, &k, &info, 1);
	if (info != 0)
		Singular(info, k, names);
	/* fill the lower triangle: H[c*k + r] holds (r, c) for r <= c */
	for (int c = 0; c < k; c++)
		for (int r = c + 1; r < k; r++)
			H[c * k + r] = H[r * k + c];

	fit->coef = palloc(sizeof(double) * k);
	fit->std_error = palloc(sizeof(double) * k);
	fit->std_coef = palloc(sizeof(double) * k);
	memcpy(fit->std_coef, beta, sizeof(double) * k);

	/*
	 * Original scale: b_j = s_j / sd_j and b_0 = s_0 - sum_j s_j mean_j / sd_j,
	 * a linear map A of the standardized coefficients; cov = A C A'.
	 */
	fit->coef[0] = beta[0];
	for (int j = 1; j < k; j++)
	{
		fit->coef[j] = beta[j] / sd[j];
		fit->coef[0] -= beta[j] * mean[j] / sd[j];
		fit->std_error[j] = sqrt(H[j * k + j]) / sd[j];
	}
	{
		double		v = 0.0;

		/* a = (1, -mean_1/sd_1, ..., -mean_p/sd_p) */
		for (int r = 0; r < k; r++)
		{
			double		ar = r == 0 ? 1.0 : -mean[r] / sd[r];

			for (int c = 0; c < k; c++)
			{
				double		ac = c == 0 ? 1.0 : -mean[c] / sd[c];

				v += ar * H[c * k + r] * ac;
			}
		}
		fit->std_error[0] = sqrt(Max(v, 0.0));
	}

	fit->iterations = iter;
	fit->log_likelihood = ll_raw;

	pfree(trial);
	pfree(g);
	pfree(g_trial);
	pfree(H);
	pfree(H_trial);
	pfree(chol);
	pfree(step_dir);
	pfree(beta);
	return fit;
}

/* LogitPass as a LogitPassFn */
typedef struct LocalPass
{
	const LogitRows *d;
	CrPool	   *pool;
	LogitPassJob *job;
} LocalPass;

static double
LocalPassRun(void *arg, const double *beta, double *H, double *g)
{
	LocalPass  *lp = (LocalPass *) arg;

	return LogitPass(lp->d, lp->pool, lp->job, beta, H, g);
}

CrLogitFit *
LogitFit(int64 nrows, int p, double **cols, const double *label,
		 const bool *exclude, const double *impute, char **names,
		 const CrLogitOptions *opts)
{
	int64		n64 = 0;
	int			n;
	double	   *y;
	int64	   *rowidx = NULL;
	bool	   *has_nan;
	int			k = p + 1;
	LogitRows	rows;
	double	   *mean;
	double	   *sd;
	double	   *inv_sd;
	MemoryContext poolcxt;
	CrPool	   *pool;
	int			round_tasks;
	LogitPassJob job;
	double		ybar = 0.0;
	double		wsum = 0.0;
	CrLogitFit *fit;

	for (int64 i = 0; i < nrows; i++)
		n64 += exclude == NULL || !exclude[i];
	BlasLoad();
	if (n64 > INT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("logistic regression takes at most %d training rows, not " INT64_FORMAT,
						INT_MAX, n64)));
	n = (int) n64;

	/* the labels of the training rows, and which rows those are */
	y = HugeAlloc(sizeof(double) * (Size) n);
	if (n < nrows)
		rowidx = HugeAlloc(sizeof(int64) * (Size) n);
	{
		int			r = 0;

		for (int64 i = 0; i < nrows; i++)
			if (exclude == NULL || !exclude[i])
			{
				if (rowidx != NULL)
					rowidx[r] = i;
				y[r] = label[i];
				ybar += opts->class_weight[y[r] > 0.5] * y[r];
				wsum += opts->class_weight[y[r] > 0.5];
				r++;
			}
	}
	ybar /= wsum;

	/* the mean and standard deviation of each feature over those rows */
	mean = palloc0(sizeof(double) * k);
	sd = palloc0(sizeof(double) * k);
	inv_sd = palloc0(sizeof(double) * k);
	has_nan = palloc0(sizeof(bool) * Max(p, 1));
	mean[0] = 0.0;
	sd[0] = 1.0;
	inv_sd[0] = 1.0;

	/* the pool lives in its own context: deleting it stops the threads */
	poolcxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk logit pool",
									ALLOCSET_SMALL_SIZES);
	{
		MemoryContext old = MemoryContextSwitchTo(poolcxt);

		/*
		 * A round's tasks each keep a kp x kp sum: with many columns, fewer
		 * at a time (and as many threads at most).  The sums are added in
		 * task order across rounds, so this changes nothing in the fit.
		 */
		Size		hbytes = sizeof(double) * LOGIT_STRIDE(k) * LOGIT_STRIDE(k);

		round_tasks = (int) Min(LOGIT_ROUND_TASKS, Max(1, LOGIT_ROUND_BYTES / hbytes));
		pool = PoolCreate(Min(Max(opts->threads, 1), round_tasks));
		MemoryContextSwitchTo(old);
	}

	/* the mean and standard deviation of each feature, a feature per task */
	{
		LogitStatsJob sj = {cols, impute, rowidx, n, palloc(sizeof(int64) * Max(p, 1)),
		mean + 1, sd + 1};

		PoolRun(pool, p, LogitStatsTask, &sj);
		for (int j = 0; j < p; j++)
		{
			double		m = mean[j + 1],
						v = sd[j + 1];

			if (!isfinite(m) || !isfinite(v))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("the values of feature \"%s\" are too large to standardise in double precision",
								names[j]),
						 errhint("Scale the column down.")));
			if (!(v > 1e-12 * Max(1.0, fabs(m))))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("feature \"%s\" is constant in the training rows", names[j]),
						 errhint("Remove it from the features.")));
			inv_sd[j + 1] = 1.0 / v;
			has_nan[j] = sj.nan[j] > 0;
		}
		pfree(sj.nan);
	}
	CHECK_FOR_INTERRUPTS();
	rows.n = n;
	rows.k = k;
	rows.kp = LOGIT_STRIDE(k);
	rows.cols = cols;
	rows.rowidx = rowidx;
	rows.has_nan = has_nan;
	rows.impute = impute;
	rows.mean = mean;
	rows.inv_sd = inv_sd;

	memset(&job, 0, sizeof(job));
	job.d = &rows;
	job.kern = LogitKernelChoose();
	job.y = y;
	job.cw = opts->class_weight;
	job.beta = palloc0(sizeof(double) * rows.kp);
	job.round_tasks = round_tasks;
	job.H = MemoryContextAllocHuge(CurrentMemoryContext,
								   sizeof(double) * round_tasks * rows.kp * rows.kp);
	job.g = palloc(sizeof(double) * round_tasks * rows.kp);
	/* a block of kp columns, eta and r; whole cache lines apart */
	job.work_doubles = TYPEALIGN(8, (Size) (rows.kp + 2) * LOGIT_BLOCK_ROWS);
	job.work = MemoryContextAllocHuge(CurrentMemoryContext,
									  sizeof(double) * job.work_doubles * PoolSize(pool));

	{
		LocalPass	lp = {&rows, pool, &job};

		fit = LogitNewton(LocalPassRun, &lp, k, ybar, mean, sd, names, opts);
	}

	HugeFree(y);
	if (rowidx != NULL)
		HugeFree(rowidx);
	MemoryContextDelete(poolcxt);
	pfree(job.work);
	pfree(job.H);
	pfree(job.g);
	pfree(job.beta);
	return fit;
}
