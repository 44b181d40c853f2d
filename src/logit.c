/*
 * logit.c
 *	  Logistic regression by Newton's method (iteratively reweighted least
 *	  squares) on standardized features.
 *
 * Each iteration is one pass over the rows at the trial coefficients: the
 * log-likelihood, X'WX block by block with dsyrk and the gradient X'(y - p)
 * with dgemv, each block of X built from the dataset's columns as it is
 * needed (no copy of X is ever whole).  The step solves with a LAPACK
 * Cholesky factorisation; a step that lowers the (penalised)
 * log-likelihood is halved until it does not.  Coefficients and their
 * covariance are mapped back to the original feature scale at the end.
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

/*
 * Fortran BLAS/LAPACK entry points of OpenBLAS (32-bit integers).  The
 * library is loaded on the first fit rather than with the module: it is
 * large, and scoring, which never needs it, should not pay for loading it
 * in every backend.
 */
typedef void (*DsyrkFn) (const char *uplo, const char *trans, const int *n, const int *k,
						 const double *alpha, const double *a, const int *lda,
						 const double *beta, double *c, const int *ldc,
						 size_t uplo_len, size_t trans_len);
typedef void (*DgemvFn) (const char *trans, const int *m, const int *n,
						 const double *alpha, const double *a, const int *lda,
						 const double *x, const int *incx, const double *beta,
						 double *y, const int *incy, size_t trans_len);
typedef void (*DpotrfFn) (const char *uplo, const int *n, double *a, const int *lda,
						  int *info, size_t uplo_len);
typedef void (*DpotrsFn) (const char *uplo, const int *n, const int *nrhs,
						  const double *a, const int *lda, double *b, const int *ldb,
						  int *info, size_t uplo_len);
typedef void (*DpotriFn) (const char *uplo, const int *n, double *a, const int *lda,
						  int *info, size_t uplo_len);

static struct
{
	DsyrkFn		dsyrk;
	DgemvFn		dgemv;
	DpotrfFn	dpotrf;
	DpotrsFn	dpotrs;
	DpotriFn	dpotri;
}			Blas;

#define dsyrk_	(*Blas.dsyrk)
#define dgemv_	(*Blas.dgemv)
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
	Blas.dsyrk = (DsyrkFn) BlasSymbol(lib, "dsyrk_");
	Blas.dgemv = (DgemvFn) BlasSymbol(lib, "dgemv_");
	Blas.dpotrf = (DpotrfFn) BlasSymbol(lib, "dpotrf_");
	Blas.dpotrs = (DpotrsFn) BlasSymbol(lib, "dpotrs_");
	Blas.dpotri = (DpotriFn) BlasSymbol(lib, "dpotri_");
}

#define LOGIT_BLOCK_ROWS		2048
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
	double	  **cols;
	const int64 *rowidx;		/* n dataset rows, or NULL: rows 0 .. n-1 */
	const bool *has_nan;		/* p: some training row is missing */
	const double *impute;
	const double *mean;			/* k; [0] is 0 */
	const double *inv_sd;		/* k; [0] is 1 */
} LogitRows;

/*
 * Fill xb (b x k, column-major) with block blk's rows; returns b.  (GCC
 * vectorizes these loops only with a cost model above -O2's.)
 */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("vect-cost-model=cheap")))
#endif
static int
LogitBlock(const LogitRows *d, int blk, double *xb)
{
	int			start = blk * LOGIT_BLOCK_ROWS;
	int			b = Min(LOGIT_BLOCK_ROWS, d->n - start);
	const int64 *idx = d->rowidx != NULL ? d->rowidx + start : NULL;

	for (int i = 0; i < b; i++)
		xb[i] = 1.0;
	for (int j = 1; j < d->k; j++)
	{
		const double *x = d->cols[j - 1];
		double		m = d->mean[j],
					s = d->inv_sd[j],
					imp = d->impute[j - 1];
		double	   *restrict xc = xb + (Size) j * b;

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
	return b;
}

/*
 * One pass over the training rows at coefficients beta: returns the
 * log-likelihood (each row weighted by its class's weight cw[y]), and sets
 * H = X' W X (upper triangle, k x k; w = c p(1-p)) and the gradient
 * g = X' c (y - p), c the row's class weight.  A block of rows at a time,
 * so the block is in cache for every product; nothing of row size is
 * kept.  block holds LOGIT_BLOCK_ROWS * k doubles, r LOGIT_BLOCK_ROWS.
 */
static double
LogitPass(const LogitRows *d, const double *beta, const double *y, const double *cw,
		  double *H, double *g, double *block, double *r)
{
	const double one = 1.0,
				zero = 0.0;
	const int	inc = 1;
	int			k = d->k;
	double		ll = 0.0;

	memset(H, 0, sizeof(double) * k * k);
	memset(g, 0, sizeof(double) * k);
	for (int blk = 0; blk * LOGIT_BLOCK_ROWS < d->n; blk++)
	{
		int			start = blk * LOGIT_BLOCK_ROWS;
		int			b = LogitBlock(d, blk, block);
		double		eta[LOGIT_BLOCK_ROWS];

		dgemv_("N", &b, &k, &one, block, &b, beta, &inc, &zero, eta, &inc, 1);
		for (int i = 0; i < b; i++)
		{
			double		yi = y[start + i];
			double		c = cw[yi > 0.5];
			double		e = exp(-fabs(eta[i]));
			double		inv = 1.0 / (1.0 + e);
			double		p = eta[i] >= 0 ? inv : e * inv;

			/* log(1 + exp(eta)) = max(eta, 0) + log1p(exp(-|eta|)) */
			ll += c * (yi * eta[i] - (Max(eta[i], 0.0) + log1p(e)));
			r[i] = c * (yi - p);
			eta[i] = sqrt(c * p * (1.0 - p));	/* now the row's weight */
		}
		dgemv_("T", &b, &k, &one, block, &b, r, &inc, &one, g, &inc, 1);
		for (int j = 0; j < k; j++)
		{
			double	   *zc = block + (Size) j * b;

			for (int i = 0; i < b; i++)
				zc[i] *= eta[i];
		}
		dsyrk_("U", "T", &k, &b, &one, block, &b, &one, H, &k, 1, 1);
		if (blk % 64 == 0)
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
	double	   *beta;
	double	   *trial;
	double	   *work;
	double	   *block;
	double	   *H;			/* X'WX and the gradient at beta */
	double	   *g;
	double	   *H_trial;	/* ... and at trial */
	double	   *g_trial;
	double	   *chol;
	double	   *step_dir;
	double		ll;				/* at beta, penalised */
	double		ll_raw;			/* at beta, without the penalty */
	double		ybar = 0.0;
	double		wsum = 0.0;
	bool		converged = false;
	int			iter = 0;
	int			info;
	const int	nrhs = 1;
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
	for (int j = 0; j < p; j++)
	{
		const double *x = cols[j];
		double		m = 0.0,
					v = 0.0;
		int64		nan = 0;

		CHECK_FOR_INTERRUPTS();
		for (int r = 0; r < n; r++)
		{
			double		xi = x[rowidx != NULL ? rowidx[r] : r];

			nan += isnan(xi);
			m += isnan(xi) ? impute[j] : xi;
		}
		m /= n;
		for (int r = 0; r < n; r++)
		{
			double		xi = x[rowidx != NULL ? rowidx[r] : r];

			xi = isnan(xi) ? impute[j] : xi;
			v += (xi - m) * (xi - m);
		}
		v = sqrt(v / n);
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
		mean[j + 1] = m;
		sd[j + 1] = v;
		inv_sd[j + 1] = 1.0 / v;
		has_nan[j] = nan > 0;
	}
	rows.n = n;
	rows.k = k;
	rows.cols = cols;
	rows.rowidx = rowidx;
	rows.has_nan = has_nan;
	rows.impute = impute;
	rows.mean = mean;
	rows.inv_sd = inv_sd;

	beta = palloc0(sizeof(double) * k);
	trial = palloc0(sizeof(double) * k);
	g = palloc0(sizeof(double) * k);
	H = palloc0(sizeof(double) * k * k);
	g_trial = palloc0(sizeof(double) * k);
	H_trial = palloc0(sizeof(double) * k * k);
	chol = palloc0(sizeof(double) * k * k);
	step_dir = palloc0(sizeof(double) * k);
	work = palloc(sizeof(double) * LOGIT_BLOCK_ROWS);
	block = palloc(sizeof(double) * LOGIT_BLOCK_ROWS * k);

	fit = palloc0(sizeof(CrLogitFit));

	/*
	 * Start from the intercept-only model.  Each pass at a trial point also
	 * forms X'WX and the gradient there, so an accepted step (the usual
	 * case) needs no second pass: one pass over the rows per iteration.
	 */
	beta[0] = log(ybar / (1.0 - ybar));
	ll_raw = ll = LogitPass(&rows, beta, y, opts->class_weight, H, g, block, work);
	fit->null_log_likelihood = ll;

	while (iter < opts->max_iter || (converged && iter < opts->max_iter + 1))
	{
		double		step = 1.0;
		double		ll_trial = ll;
		double		ll_trial_raw = ll_raw;
		bool		accepted = false;

		CHECK_FOR_INTERRUPTS();
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
			ll_trial_raw = LogitPass(&rows, trial, y, opts->class_weight, H_trial, g_trial,
									 block, work);
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

	HugeFree(y);
	if (rowidx != NULL)
		HugeFree(rowidx);
	pfree(work);
	pfree(block);
	return fit;
}
