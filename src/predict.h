/*
 * predict.h
 *	  Scoring: probability of default, risk category and scorecard points.
 */
#ifndef CR_PREDICT_H
#define CR_PREDICT_H

#include "postgres.h"

#include "fmgr.h"
#include "access/htup.h"
#include "utils/array.h"
#include "utils/jsonb.h"

#include "credit_risk.h"
#include "model.h"
#include "registry.h"

/* x holds one applicant's features in model order; NaN means missing */
extern double PredictProbability(const CrModel *model, const double *x);

/*
 * A call site's state (in fn_extra): the model it resolved for the current
 * statement, the applicant row's mapping, scratch.  The readers return the
 * applicant's features in model order (NaN for missing) in that scratch.
 */
typedef struct PredictState PredictState;

/* the call site's count of calls, for the serving statistics */
extern uint32 *PredictSiteCalls(PredictState *st);
extern PredictState *PredictGetState(FunctionCallInfo fcinfo);
extern CrCachedModel *PredictResolveByName(FunctionCallInfo fcinfo, PredictState *st, text *name);
extern CrCachedModel *PredictResolveByBytes(FunctionCallInfo fcinfo, PredictState *st, Datum d);
extern CrCachedModel *PredictResolveJsonb(FunctionCallInfo fcinfo, PredictState *st, text *name,
										  Jsonb *jb, JsonbValue **cust, JsonbValue *custbuf);
extern HeapTupleHeader PredictApplicantRow(FunctionCallInfo fcinfo);
extern const double *PredictReadArray(FunctionCallInfo fcinfo, PredictState *st,
									  const CrModel *model, ArrayType *arr);
extern const double *PredictReadRecord(FunctionCallInfo fcinfo, PredictState *st,
									   const CrModel *model, HeapTupleHeader td);
extern const double *PredictReadJsonb(FunctionCallInfo fcinfo, PredictState *st,
									  const CrModel *model, Jsonb *jb);
extern void PredictCheckFinite(const CrModel *model, int j, double v);
extern void PredictMarginNotANumber(const CrModel *model) pg_attribute_noreturn();

/*
 * A model's PD from its margin: the sigmoid, or its calibration's.  Every
 * scorer comes through here, so a margin that is not a number (see
 * PredictMarginNotANumber) is refused here, once.
 */
static inline double
PredictFromMargin(const CrModel *model, double margin)
{
	if (unlikely(isnan(margin)))
		PredictMarginNotANumber(model);
	if (model->calibration != NULL)
		return CalibrationApply(model->calibration, margin);
	return CrSigmoid(margin);
}
extern int	PredictBand(const CrScoring *scoring, double p);
extern const char *PredictCategory(const CrScoring *scoring, double p);
extern int	PredictPoints(const CrScoring *scoring, double p);

#endif							/* CR_PREDICT_H */
