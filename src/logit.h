/*
 * logit.h
 *	  Logistic regression by Newton's method (IRLS) on standardized
 *	  features, with OpenBLAS and LAPACK.
 */
#ifndef CR_LOGIT_H
#define CR_LOGIT_H

#include "postgres.h"

typedef struct CrLogitOptions
{
	double		l2;				/* ridge penalty on standardized slopes */
	int			max_iter;
	double		tol;			/* convergence: relative change in log-likelihood */
	double		class_weight[2];	/* of labels 0 and 1: the likelihood is weighted */
	int			threads;		/* of the passes over the rows (credit_risk.threads) */
} CrLogitOptions;

typedef struct CrLogitFit
{
	double	   *coef;			/* k = p + 1, original scale, [0] intercept */
	double	   *std_error;		/* k */
	double	   *std_coef;		/* k, on the standardized scale */
	int			iterations;
	double		log_likelihood;
	double		null_log_likelihood;
} CrLogitFit;

/*
 * One pass over the training rows at (standardized) coefficients beta, k of
 * them: returns the weighted log-likelihood, and sets H = X'WX (the upper
 * triangle of k x k, column-major) and g = X'c(y - p).
 */
typedef double (*LogitPassFn) (void *arg, const double *beta, double *H, double *g);

extern CrLogitFit *LogitNewton(LogitPassFn pass, void *arg, int k, double ybar,
							   const double *mean, const double *sd, char **names,
							   const CrLogitOptions *opts);

/*
 * cols: p arrays of nrows values, NaN where missing (replaced by impute[j]);
 * label: nrows values 0/1; rows with exclude[i] set (e.g. the holdout) are
 * left out; exclude may be NULL.  names are used in error messages.
 */
extern CrLogitFit *LogitFit(int64 nrows, int p, double **cols,
							const double *label, const bool *exclude,
							const double *impute, char **names,
							const CrLogitOptions *opts);

#endif							/* CR_LOGIT_H */
