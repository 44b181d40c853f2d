/*
 * calibrate.h
 *	  Probability calibration fitted on a model's holdout predictions and
 *	  applied by every scoring form (params.calibration).
 *
 * Platt: PD = sigmoid(a * margin + b), a and b the maximum-likelihood
 * logistic regression of the holdout labels on the holdout margins.
 * Isotonic: the holdout PDs mapped through the non-decreasing step function
 * that pool-adjacent-violators fits to the labels, interpolated linearly
 * between its points and held at the end values outside them (as
 * scikit-learn's IsotonicRegression with out_of_bounds="clip").
 */
#ifndef CR_CALIBRATE_H
#define CR_CALIBRATE_H

#include "postgres.h"

typedef enum CrCalibrationMethod
{
	CR_CALIBRATION_NONE = 0,
	CR_CALIBRATION_PLATT = 1,
	CR_CALIBRATION_ISOTONIC = 2
} CrCalibrationMethod;

#define CR_MAX_CALIBRATION_POINTS	1000000

typedef struct CrCalibration
{
	CrCalibrationMethod method;
	double		a;				/* Platt */
	double		b;
	int			npoints;		/* isotonic: x strictly increasing PDs, y non-decreasing */
	double	   *x;
	double	   *y;
} CrCalibration;

extern const char *CalibrationMethodName(CrCalibrationMethod method);

/* The method a params value names (none, platt, isotonic): false for none. */
extern bool CalibrationMethodFromName(const char *name, CrCalibrationMethod *method);

/* Fit on n holdout rows: their uncalibrated PDs and labels (0 or 1). */
extern CrCalibration *CalibrationFit(CrCalibrationMethod method, const double *prob,
									 const double *label, int64 n);

/* The calibrated PD of a margin (logit of the uncalibrated PD). */
extern double CalibrationApply(const CrCalibration *c, double margin);

#endif							/* CR_CALIBRATE_H */
