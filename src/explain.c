/*
 * explain.c
 *	  cr_explain: why a model gave one applicant its PD.  Each feature's
 *	  contribution to the margin (log-odds), ordered by how much it raised
 *	  the risk, with a reason code for each that did: the principal reasons
 *	  of an adverse-action notice.
 *
 * Contributions add up: the expected margin (the "(base)" row) plus every
 * feature's contribution is the margin whose logistic is cr_predict's PD.
 *	- trees: path-dependent TreeSHAP (ForestShap);
 *	- logistic: coefficient x (value - training mean), on the model's own
 *	  feature scale; an imputed missing value contributes 0.
 *
 * Reason codes come from credit_risk.reason_codes, a row for the model or,
 * with a NULL model_name, for every model; without one, they are made from
 * the feature's name and the direction of the applicant's value against the
 * training mean ("utilization too high").
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/tuplestore.h"

#include "credit_risk.h"
#include "explain.h"
#include "metrics.h"
#include "predict.h"
#include "registry.h"
#include "serving.h"

PG_FUNCTION_INFO_V1(cr_explain_array);
PG_FUNCTION_INFO_V1(cr_explain_record);
PG_FUNCTION_INFO_V1(cr_explain_jsonb);
PG_FUNCTION_INFO_V1(cr_explain_bytes_array);
PG_FUNCTION_INFO_V1(cr_explain_bytes_record);

#define EXPLAIN_TOP_N_ARG	2

static SPIPlanPtr ReasonPlan = NULL;

/* The single calls' reason codes, read once per statement. */
static struct
{
	bool		valid;
	CrStamp		stamp;			/* the statement they were read in */
	char	   *model;			/* NULL: a model passed as bytes */
	MemoryContext cxt;
	CrReasons  *reasons;
}			Cache;

/*
 * The smallest margin term coef * WoE of a scorecard feature's bins with
 * training rows (the missing bin too): its best bin's.  0 when none has rows.
 */
double
ExplainWoeBest(const CrWoeFeature *w, double coef)
{
	double		best = 0.0;
	bool		any = false;

	for (int b = 0; b <= w->nbins; b++)
	{
		double		term = coef * w->woe[b];

		if (w->n[b] == 0)
			continue;
		if (!any || term < best)
			best = term;
		any = true;
	}
	return best;
}

/*
 * Each feature's contribution to the margin of one applicant (x in feature
 * order, NaN for missing) into phi, and the expected margin into *base.
 */
static void ExplainMarginContributions(const CrModel *m, const double *x, double *phi,
									   double *base);

/*
 * Platt calibration is affine in the margin: the contributions scale with
 * it, and still add up to the logit of the (calibrated) PD.  Isotonic
 * calibration is not: its model's contributions explain the margin before
 * calibration, which orders the applicants as the PD does.
 */
void
ExplainContributions(const CrModel *m, const double *x, double *phi, double *base)
{
	ExplainMarginContributions(m, x, phi, base);
	if (m->calibration != NULL && m->calibration->method == CR_CALIBRATION_PLATT)
	{
		for (int j = 0; j < m->nfeatures; j++)
			phi[j] *= m->calibration->a;
		*base = m->calibration->a * *base + m->calibration->b;
	}
}

static void
ExplainMarginContributions(const CrModel *m, const double *x, double *phi, double *base)
{
	if (m->algorithm == CR_ALGO_SCORECARD)
	{
		/*
		 * A scorecard's classic reason: what each feature's bin costs against
		 * the feature's best bin (the most points); base is the margin with
		 * every feature in its best bin.
		 */
		*base = m->coef[0];
		for (int j = 0; j < m->nfeatures; j++)
		{
			double		best = ExplainWoeBest(&m->woe[j], m->coef[j + 1]);

			*base += best;
			phi[j] = m->coef[j + 1] * ModelWoe(&m->woe[j], x[j]) - best;
		}
		return;
	}
	if (m->algorithm == CR_ALGO_LOGISTIC && m->cats != NULL)
	{
		/* a level's coefficient against the training mean of the feature's */
		*base = m->coef[0];
		for (int j = 0; j < m->nfeatures; j++)
		{
			const CrCategoryMap *map = m->cats[j];
			int			k = m->coef_start[j];

			*base += map != NULL ? m->impute[j] : m->coef[k] * m->impute[j];
			if (map != NULL)
				phi[j] = m->coef[k + ModelLogitGroup(map, x[j])] - m->impute[j];
			else
				phi[j] = isnan(x[j]) ? 0.0 : m->coef[k] * (x[j] - m->impute[j]);
		}
		return;
	}
	if (m->algorithm == CR_ALGO_LOGISTIC)
	{
		*base = m->coef[0];
		for (int j = 0; j < m->nfeatures; j++)
		{
			*base += m->coef[j + 1] * m->impute[j];
			phi[j] = isnan(x[j]) ? 0.0 : m->coef[j + 1] * (x[j] - m->impute[j]);
		}
		return;
	}
	memset(phi, 0, sizeof(double) * m->nfeatures);
	*base = m->forest.expected_margin;
	if (m->forest.shap == NULL)
	{
		/*
		 * The tables are built on the first explanation and kept with the
		 * cached model, in its memory context: scoring never pays for them,
		 * and credit_risk.explain_memory is read once per model and session.
		 */
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(unconstify(CrModel *, m)));

		ForestShapPrepare(&unconstify(CrModel *, m)->forest,
						  (int64) cr_explain_memory_kb * 1024 / sizeof(double));
		MemoryContextSwitchTo(old);
	}
	ForestShap(&m->forest, x, phi);
}

/*
 * Which way the applicant's value lies: against the training mean, or
 * missing; for a categorical feature, its level as "=level" ("=(other)").
 */
const char *
ExplainDirection(const CrModel *m, int j, double v)
{
	if (isnan(v))
		return "missing";
	if (m->cats != NULL && m->cats[j] != NULL)
		return psprintf("=%s", ExplainValueText(m, j, v));
	return v >= m->impute[j] ? "high" : "low";
}

/* A feature's value as cr_explain shows it: a number, or the level's text. */
char *
ExplainValueText(const CrModel *m, int j, double v)
{
	if (m->cats != NULL && m->cats[j] != NULL)
	{
		const CrCategoryMap *map = m->cats[j];

		if (v >= 0.0 && v < map->nlevels)
			return map->levels[(int) v];
		return "(other)";
	}
	return DatumGetCString(DirectFunctionCall1(float8out, Float8GetDatum(v)));
}

/*
 * The reason codes that apply to model (NULL: a model passed as bytes), its
 * own rows first, read in an SPI connection of their own into cxt.
 */
CrReasons *
ExplainLoadReasons(const char *model, MemoryContext cxt)
{
	CrReasons  *reasons = MemoryContextAllocZero(cxt, sizeof(CrReasons));
	Datum		arg;
	int			rc;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (ReasonPlan == NULL)
	{
		Oid			types[1] = {TEXTOID};
		SPIPlanPtr	plan = SPI_prepare("SELECT feature, direction, reason_code, reason"
									   " FROM credit_risk.reason_codes"
									   " WHERE model_name OPERATOR(pg_catalog.=) $1 OR model_name IS NULL"
									   " ORDER BY model_name IS NULL",
									   1, types);

		if (plan == NULL || SPI_keepplan(plan) != 0)
			elog(ERROR, "could not prepare the reason code query: %s",
				 SPI_result_code_string(SPI_result));
		ReasonPlan = plan;
	}
	arg = model ? CStringGetTextDatum(model) : (Datum) 0;
	rc = SPI_execute_plan(ReasonPlan, &arg, model ? " " : "n", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read credit_risk.reason_codes: %s", SPI_result_code_string(rc));
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		int			n = (int) SPI_processed;

		reasons->n = n;
		reasons->feature = palloc(sizeof(char *) * Max(n, 1));
		reasons->direction = palloc(sizeof(char *) * Max(n, 1));
		reasons->code = palloc(sizeof(char *) * Max(n, 1));
		reasons->reason = palloc(sizeof(char *) * Max(n, 1));
		for (int r = 0; r < n; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	desc = SPI_tuptable->tupdesc;

			/* SPI_getvalue allocates in the current context: cxt */
			reasons->feature[r] = SPI_getvalue(tup, desc, 1);
			reasons->direction[r] = SPI_getvalue(tup, desc, 2);
			reasons->code[r] = SPI_getvalue(tup, desc, 3);
			reasons->reason[r] = SPI_getvalue(tup, desc, 4);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return reasons;
}

/* The reason codes for a single call: read once a statement. */
static const CrReasons *
CachedReasons(const char *model)
{
	CrStamp		now;

	RegistryStamp(&now);
	if (Cache.valid && RegistryStampEqual(&now, &Cache.stamp) &&
		((model == NULL && Cache.model == NULL) ||
		 (model != NULL && Cache.model != NULL && strcmp(model, Cache.model) == 0)))
		return Cache.reasons;

	Cache.valid = false;
	if (Cache.cxt == NULL)
		Cache.cxt = AllocSetContextCreate(TopMemoryContext, "credit_risk reason codes",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(Cache.cxt);
	Cache.reasons = ExplainLoadReasons(model, Cache.cxt);
	Cache.model = model ? MemoryContextStrdup(Cache.cxt, model) : NULL;
	Cache.stamp = now;
	Cache.valid = true;
	return Cache.reasons;
}

/* The reason code and text of a feature and direction; generated without a row. */
void
ExplainReason(const CrReasons *reasons, const char *feature, const char *direction,
			  char **code, char **reason)
{
	/* the model's own rows come first */
	for (int r = 0; r < reasons->n; r++)
		if (reasons->feature[r] != NULL && reasons->direction[r] != NULL &&
			strcmp(reasons->feature[r], feature) == 0 &&
			strcmp(reasons->direction[r], direction) == 0)
		{
			*code = reasons->code[r];
			*reason = reasons->reason[r];
			return;
		}
	if (direction[0] == '=')
	{
		*code = psprintf("%s%s", feature, direction);
		*reason = psprintf("%s is %s", feature, direction + 1);
		return;
	}
	*code = psprintf("%s:%s", feature, direction);
	*reason = strcmp(direction, "missing") == 0 ? psprintf("%s missing", feature)
		: psprintf("%s too %s", feature, direction);
}

/* Largest contribution first; ties in feature order. */
static int
RankedCmp(const void *a, const void *b)
{
	const CrRanked *x = a;
	const CrRanked *y = b;

	if (x->contribution != y->contribution)
		return x->contribution > y->contribution ? -1 : 1;
	return (x->feature > y->feature) - (x->feature < y->feature);
}

/* The n contributions phi, ranked into ranked (n entries). */
void
ExplainRank(const double *phi, int n, CrRanked *ranked)
{
	for (int j = 0; j < n; j++)
	{
		ranked[j].feature = j;
		ranked[j].contribution = phi[j];
	}
	qsort(ranked, n, sizeof(CrRanked), RankedCmp);
}

/* The top_n argument at argno: -1 (every feature and the base) for NULL. */
int
ExplainTopArg(FunctionCallInfo fcinfo, int argno)
{
	int32		want;

	if (PG_ARGISNULL(argno))
		return -1;
	want = PG_GETARG_INT32(argno);
	if (want < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("top_n must not be negative, not %d", want),
				 errhint("Pass NULL for every feature and the base.")));
	return want;
}

static void
PushKeyed(JsonbParseState **state, const char *key, JsonbValue *v)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_VALUE, v);
}

static void
PushKeyedString(JsonbParseState **state, const char *key, const char *s)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) s;
	v.val.string.len = strlen(s);
	PushKeyed(state, key, &v);
}

/*
 * Add "reasons": the applicant's top adverse reasons (at most top, only
 * contributions that raised the risk, largest first), each {code, reason,
 * feature, contribution}, to the jsonb object being built in state.
 */
void
ExplainPushReasons(JsonbParseState **state, const CrCachedModel *entry, const double *x,
				   int top)
{
	const CrModel *m = entry->model;
	int			n = m->nfeatures;
	double	   *phi = palloc(sizeof(double) * n);
	CrRanked   *ranked = palloc(sizeof(CrRanked) * n);
	double		base;
	const CrReasons *reasons = CachedReasons(entry->name);
	JsonbValue	k;

	ExplainContributions(m, x, phi, &base);
	ExplainRank(phi, n, ranked);

	k.type = jbvString;
	k.val.string.val = "reasons";
	k.val.string.len = strlen("reasons");
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (int r = 0; r < Min(top, n) && ranked[r].contribution > 0.0; r++)
	{
		int			j = ranked[r].feature;
		char	   *code;
		char	   *reason;
		JsonbValue	v;

		ExplainReason(reasons, m->features[j], ExplainDirection(m, j, x[j]), &code, &reason);
		pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
		PushKeyedString(state, "code", code);
		PushKeyedString(state, "reason", reason);
		PushKeyedString(state, "feature", m->features[j]);
		v.type = jbvNumeric;
		v.val.numeric = CrFloat8ToNumeric(ranked[r].contribution);
		PushKeyed(state, "contribution", &v);
		pushJsonbValue(state, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
	pfree(phi);
	pfree(ranked);
}

/*
 * The rows of cr_explain for one applicant into the call's tuplestore:
 * features by contribution, at most top_n of them (all, then a "(base)"
 * row, when top_n is NULL).
 */
static void
ExplainRows(FunctionCallInfo fcinfo, const CrCachedModel *entry, const double *x)
{
	const CrModel *m = entry->model;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			n = m->nfeatures;
	int			want = ExplainTopArg(fcinfo, EXPLAIN_TOP_N_ARG);
	bool		all = want < 0;
	int			top = all ? n : Min(want, n);
	double	   *phi = palloc(sizeof(double) * n);
	CrRanked   *ranked = palloc(sizeof(CrRanked) * n);
	double		base;
	const CrReasons *reasons;

	ExplainContributions(m, x, phi, &base);
	ExplainRank(phi, n, ranked);

	reasons = CachedReasons(entry->name);

	for (int r = 0; r < top; r++)
	{
		int			j = ranked[r].feature;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = CStringGetTextDatum(m->features[j]);
		if (isnan(x[j]))
			nulls[1] = true;
		else
			values[1] = CStringGetTextDatum(ExplainValueText(m, j, x[j]));
		values[2] = Float8GetDatum(ranked[r].contribution);
		if (ranked[r].contribution > 0.0)
		{
			char	   *code;
			char	   *reason;

			ExplainReason(reasons, m->features[j], ExplainDirection(m, j, x[j]), &code, &reason);
			values[3] = CStringGetTextDatum(code);
			values[4] = CStringGetTextDatum(reason);
		}
		else
			nulls[3] = nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (all)
	{
		Datum		values[5];
		bool		nulls[5] = {false, true, false, true, true};

		values[0] = CStringGetTextDatum("(base)");
		values[2] = Float8GetDatum(base);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

/* What every form does first: the arguments checked, the result set up. */
static PredictState *
ExplainBegin(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model and applicant must not be null")));
	InitMaterializedSRF(fcinfo, 0);
	return PredictGetState(fcinfo);
}

/*
 * The array and row forms, as cr_predict's (PredictCounted): resolve the
 * model by name or bytes, read the applicant (a row, or the float8[]
 * argument), explain, and count the call in the serving statistics.
 */
static void
ExplainCounted(FunctionCallInfo fcinfo, bool by_bytes, bool row)
{
	PredictState *st = ExplainBegin(fcinfo);
	HeapTupleHeader td = row ? PredictApplicantRow(fcinfo) : NULL;
	CrServingCall call;
	CrCachedModel *entry;

	ServingStart(&call, false, PredictSiteCalls(st));
	entry = by_bytes ? PredictResolveByBytes(fcinfo, st, PG_GETARG_DATUM(0))
		: PredictResolveByName(fcinfo, st, PG_GETARG_TEXT_PP(0));
	ServingAttach(&call, entry);
	ExplainRows(fcinfo, entry,
				row ? PredictReadRecord(fcinfo, st, entry->model, td)
				: PredictReadArray(fcinfo, st, entry->model, PG_GETARG_ARRAYTYPE_P(1)));
	ServingFinishOne(&call, 1);
}

/* cr_explain(name text, applicant float8[], top_n int DEFAULT 4) */
Datum
cr_explain_array(PG_FUNCTION_ARGS)
{
	ExplainCounted(fcinfo, false, false);
	return (Datum) 0;
}

/* cr_explain(model bytea, applicant float8[], top_n int DEFAULT 4) */
Datum
cr_explain_bytes_array(PG_FUNCTION_ARGS)
{
	ExplainCounted(fcinfo, true, false);
	return (Datum) 0;
}

/* cr_explain(name text, applicant anyelement, top_n int DEFAULT 4): a row */
Datum
cr_explain_record(PG_FUNCTION_ARGS)
{
	ExplainCounted(fcinfo, false, true);
	return (Datum) 0;
}

/* cr_explain(model bytea, applicant anyelement, top_n int DEFAULT 4): a row */
Datum
cr_explain_bytes_record(PG_FUNCTION_ARGS)
{
	ExplainCounted(fcinfo, true, true);
	return (Datum) 0;
}

/*
 * cr_explain(name text, applicant jsonb, top_n int DEFAULT 4): the model
 * that scores the applicant in cr_predict's jsonb form (a routed challenger
 * for its share of customer_id values) is the one explained.
 */
Datum
cr_explain_jsonb(PG_FUNCTION_ARGS)
{
	PredictState *st = ExplainBegin(fcinfo);
	Jsonb	   *jb = PG_GETARG_JSONB_P(1);
	JsonbValue	custbuf;
	JsonbValue *cust;
	CrServingCall call;
	CrCachedModel *entry;

	ServingStart(&call, false, PredictSiteCalls(st));
	entry = PredictResolveJsonb(fcinfo, st, PG_GETARG_TEXT_PP(0), jb, &cust, &custbuf);
	ServingAttach(&call, entry);
	ExplainRows(fcinfo, entry, PredictReadJsonb(fcinfo, st, entry->model, jb));
	ServingFinishOne(&call, 1);
	return (Datum) 0;
}
