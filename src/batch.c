/*
 * batch.c
 *	  cr_predict_batch and cr_explain_batch: every row of a relation or
 *	  query, scored (or explained) in blocks of FOREST_BLOCK rows by the
 *	  serving version (and, with a key and a route, a stable share of keys
 *	  by the challenger), into a tuplestore.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "batch_shards.h"
#include "credit_risk.h"
#include "dataset.h"
#include "explain.h"
#include "forest.h"
#include "predict.h"
#include "progress.h"
#include "registry.h"
#include "serving.h"

PG_FUNCTION_INFO_V1(cr_predict_batch);
PG_FUNCTION_INFO_V1(cr_explain_batch);

/* One model's view of the source: its features' columns, and a block. */
typedef struct BatchModel
{
	CrCachedModel *entry;
	Datum		version_text;	/* made once: no per-row allocation */
	Datum	   *category_text;	/* per risk band */
	int		   *attnum;			/* per feature: source column */
	Oid		   *atttype;
	FmgrInfo   *outfunc;		/* categorical features: the column's output function */
	double	   *cols;			/* nfeatures * FOREST_BLOCK, column-major */
	uint16	   *codes;			/* dense trees: 2 * nfeatures codes a row */
	int		   *idx;			/* block positions scored by this model */
	int			n;
	double	   *margin;			/* FOREST_BLOCK */
	CrReasons  *reasons;		/* explaining: the model's reason codes */
	int64		scored;			/* rows this model scored */
} BatchModel;

typedef struct BatchReceiver
{
	DestReceiver pub;
	ReturnSetInfo *rsinfo;
	const char *keycol;
	int			keyatt;
	Oid			keyout;
	double		share;
	int			nmodels;		/* 1, or 2 with a challenger */
	bool		explain;		/* cr_explain_batch: contributions, not categories */
	int			top;			/* explaining: rows per applicant; -1 all and the base */
	BatchModel	models[2];
	int			n;				/* rows in the block */
	char	   *keys[FOREST_BLOCK];
	uint8		which[FOREST_BLOCK];
	double		prob[FOREST_BLOCK];
	MemoryContext blockcxt;		/* the block's keys */
	MemoryContext cxt;			/* outlives the source query's executor */
	int64		rows;
} BatchReceiver;

/*
 * Score the block's rows of one model.  The arithmetic is the same, in the
 * same order, as PredictProbability's, so results are bit-identical.
 */
static void
ScoreBlock(BatchModel *bm, double *prob)
{
	const CrModel *m = bm->entry->model;
	int			p = m->nfeatures;

	if (m->algorithm == CR_ALGO_SCORECARD ||
		(m->algorithm == CR_ALGO_LOGISTIC && m->cats != NULL))
	{
		double		x[CR_MAX_FEATURES];

		for (int k = 0; k < bm->n; k++)
		{
			for (int j = 0; j < p; j++)
				x[j] = bm->cols[j * FOREST_BLOCK + k];
			prob[bm->idx[k]] = PredictProbability(m, x);
		}
		return;
	}
	if (m->algorithm == CR_ALGO_LOGISTIC)
	{
		for (int k = 0; k < bm->n; k++)
		{
			double		eta = m->coef[0];

			for (int j = 0; j < p; j++)
			{
				double		v = bm->cols[j * FOREST_BLOCK + k];

				eta += m->coef[j + 1] * (isnan(v) ? m->impute[j] : v);
			}
			prob[bm->idx[k]] = PredictFromMargin(m, eta);
		}
		return;
	}
	ForestScoreBlock(&m->forest, bm->cols, bm->n, bm->codes, bm->margin);
	for (int k = 0; k < bm->n; k++)
		prob[bm->idx[k]] = PredictFromMargin(m, bm->margin[k]);
}

/*
 * cr_explain_batch's rows for the block, in source order: each applicant's
 * contributions, largest first, the top ones or (top -1) all and the base.
 */
static void
ExplainBlock(BatchReceiver *br)
{
	int			pos[FOREST_BLOCK];	/* a block row's place in its model's columns */

	for (int mi = 0; mi < br->nmodels; mi++)
		for (int k = 0; k < br->models[mi].n; k++)
			pos[br->models[mi].idx[k]] = k;
	for (int i = 0; i < br->n; i++)
	{
		BatchModel *bm = &br->models[br->which[i]];
		const CrModel *m = bm->entry->model;
		int			nf = m->nfeatures;
		double	   *x = palloc(sizeof(double) * nf);
		double	   *phi = palloc(sizeof(double) * nf);
		CrRanked   *ranked = palloc(sizeof(CrRanked) * nf);
		int			top = br->top < 0 ? nf : Min(br->top, nf);
		double		base;
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		CHECK_FOR_INTERRUPTS();
		for (int j = 0; j < nf; j++)
			x[j] = bm->cols[j * FOREST_BLOCK + pos[i]];
		ExplainContributions(m, x, phi, &base);
		ExplainRank(phi, nf, ranked);
		if (br->keys[i] != NULL)
			values[0] = CStringGetTextDatum(br->keys[i]);
		else
			nulls[0] = true;
		values[1] = Float8GetDatum(br->prob[i]);
		for (int r = 0; r < top; r++)
		{
			int			j = ranked[r].feature;

			values[2] = Int32GetDatum(r + 1);
			nulls[2] = false;
			values[3] = CStringGetTextDatum(m->features[j]);
			values[4] = Float8GetDatum(ranked[r].contribution);
			if (ranked[r].contribution > 0.0)
			{
				char	   *code;
				char	   *reason;

				ExplainReason(bm->reasons, m->features[j], ExplainDirection(m, j, x[j]),
							  &code, &reason);
				values[5] = CStringGetTextDatum(code);
				nulls[5] = false;
			}
			else
				nulls[5] = true;
			tuplestore_putvalues(br->rsinfo->setResult, br->rsinfo->setDesc, values, nulls);
		}
		if (br->top < 0)
		{
			nulls[2] = nulls[5] = true;
			values[3] = CStringGetTextDatum("(base)");
			values[4] = Float8GetDatum(base);
			tuplestore_putvalues(br->rsinfo->setResult, br->rsinfo->setDesc, values, nulls);
		}
	}
}

static void
BatchFlush(BatchReceiver *br)
{
	MemoryContext old = MemoryContextSwitchTo(br->blockcxt);

	for (int mi = 0; mi < br->nmodels; mi++)
		ScoreBlock(&br->models[mi], br->prob);
	if (br->explain)
		ExplainBlock(br);
	for (int mi = 0; mi < br->nmodels; mi++)
	{
		br->models[mi].scored += br->models[mi].n;
		br->models[mi].n = 0;
	}
	ProgressRows(br->rows);
	for (int i = 0; i < br->n && !br->explain; i++)
	{
		const CrModel *m = br->models[br->which[i]].entry->model;
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		if (br->keys[i] != NULL)
			values[0] = CStringGetTextDatum(br->keys[i]);
		else
			nulls[0] = true;
		values[1] = Float8GetDatum(br->prob[i]);
		values[2] = br->models[br->which[i]].category_text[PredictBand(&m->scoring, br->prob[i])];
		values[3] = Int32GetDatum(PredictPoints(&m->scoring, br->prob[i]));
		values[4] = br->models[br->which[i]].version_text;
		tuplestore_putvalues(br->rsinfo->setResult, br->rsinfo->setDesc, values, nulls);
	}
	br->n = 0;
	MemoryContextSwitchTo(old);
	MemoryContextReset(br->blockcxt);
}

static void
BatchStartup(DestReceiver *self, int operation, TupleDesc tupdesc)
{
	BatchReceiver *br = (BatchReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(br->cxt);

	br->keyatt = -1;
	if (br->keycol != NULL)
	{
		bool		isvarlena;

		br->keyatt = DatasetRequireColumn(tupdesc, br->keycol, "key");
		getTypeOutputInfo(TupleDescAttr(tupdesc, br->keyatt)->atttypid, &br->keyout, &isvarlena);
	}

	for (int mi = 0; mi < br->nmodels; mi++)
	{
		BatchModel *bm = &br->models[mi];
		const CrModel *m = bm->entry->model;
		bm->attnum = palloc(sizeof(int) * m->nfeatures);
		bm->atttype = palloc(sizeof(Oid) * m->nfeatures);
		bm->outfunc = palloc0(sizeof(FmgrInfo) * m->nfeatures);
		DatasetMapColumns(tupdesc, m->features, m->nfeatures, m->cats,
						  bm->entry->version_label, bm->attnum, bm->atttype, bm->outfunc);
		bm->version_text = CStringGetTextDatum(bm->entry->version_label);
		bm->category_text = palloc(sizeof(Datum) * m->scoring.nbands);
		for (int b = 0; b < m->scoring.nbands; b++)
			bm->category_text[b] = CStringGetTextDatum(m->scoring.labels[b]);
		if (m->algorithm == CR_ALGO_GBM && ForestBlockCodesSize(&m->forest) > 0)
			bm->codes = palloc0(ForestBlockCodesSize(&m->forest));
		bm->cols = palloc0(sizeof(double) * m->nfeatures * FOREST_BLOCK);
		bm->idx = palloc(sizeof(int) * FOREST_BLOCK);
		bm->margin = palloc0(sizeof(double) * FOREST_BLOCK);
		bm->n = 0;
	}
	MemoryContextSwitchTo(old);
}

static bool
BatchReceive(TupleTableSlot *slot, DestReceiver *self)
{
	BatchReceiver *br = (BatchReceiver *) self;
	int			i = br->n;
	int			mi = 0;
	BatchModel *bm;
	const CrModel *m;

	if ((br->rows++ & 0x3FF) == 0)
		CHECK_FOR_INTERRUPTS();
	slot_getallattrs(slot);

	br->keys[i] = NULL;
	if (br->keyatt >= 0 && !slot->tts_isnull[br->keyatt])
	{
		MemoryContext old = MemoryContextSwitchTo(br->blockcxt);

		br->keys[i] = OidOutputFunctionCall(br->keyout, slot->tts_values[br->keyatt]);
		MemoryContextSwitchTo(old);
		if (br->nmodels > 1 &&
			RegistryRouteToChallenger(br->keys[i], strlen(br->keys[i]), br->share))
			mi = 1;
	}
	br->which[i] = (uint8) mi;
	bm = &br->models[mi];
	m = bm->entry->model;
	for (int j = 0; j < m->nfeatures; j++)
	{
		int			a = bm->attnum[j];
		double		v;

		if (slot->tts_isnull[a])
			v = NAN;
		else
		{
			v = DatasetFeatureValue(m->cats ? m->cats[j] : NULL, slot->tts_values[a],
									bm->atttype[j], &bm->outfunc[j]);
			PredictCheckFinite(m, j, v);
		}
		bm->cols[j * FOREST_BLOCK + bm->n] = v;
	}
	bm->idx[bm->n++] = i;
	if (++br->n == FOREST_BLOCK)
		BatchFlush(br);
	return true;
}

/*
 * Every row of a relation or query, in blocks, by the serving version (and,
 * with a key and a route, a stable share of keys by the challenger): scored
 * (cr_predict_batch) or explained (cr_explain_batch, top >= -1).
 */
static void
BatchRun(FunctionCallInfo fcinfo, bool explain, int top)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BatchReceiver br;
	char	   *name;
	char	   *source;
	CrCachedModel *challenger;
	CrServingCall call;
	int64		scored[2];

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model name and source must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	source = text_to_cstring(PG_GETARG_TEXT_PP(1));

	InitMaterializedSRF(fcinfo, 0);

	memset(&br, 0, sizeof(br));
	DatasetInitReceiver(&br.pub, BatchStartup, BatchReceive);
	br.rsinfo = rsinfo;
	br.explain = explain;
	br.top = top;
	br.keycol = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	ServingStart(&call, true, NULL);
	br.models[0].entry = RegistryLookup(name, 0);
	br.nmodels = 1;
	challenger = br.keycol ? RegistryRoute(name, &br.share) : NULL;
	if (challenger != NULL && challenger != br.models[0].entry)
	{
		br.models[1].entry = challenger;
		br.nmodels = 2;
	}
	for (int mi = 0; mi < br.nmodels; mi++)
		ServingAttach(&call, br.models[mi].entry);
	ProgressBegin(explain ? "cr_explain_batch" : "cr_predict_batch", name, false);
	ProgressPhase(explain ? "explaining" : "scoring", -1);
	br.cxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk batch",
								   ALLOCSET_DEFAULT_SIZES);
	br.blockcxt = AllocSetContextCreate(br.cxt, "credit_risk batch keys",
										ALLOCSET_DEFAULT_SIZES);
	/* the reason codes, read before the source runs */
	for (int mi = 0; explain && mi < br.nmodels; mi++)
		br.models[mi].reasons = ExplainLoadReasons(br.models[mi].entry->name, br.cxt);

	/* a sharded source: each shard runs the batch over its rows */
	if (BatchOnShards(fcinfo, explain ? "cr_explain_batch" : "cr_predict_batch", name, source,
					  br.keycol, explain, top < 0 ? NULL : psprintf("%d", top),
					  br.nmodels > 1 ? br.models[1].entry->version_label : NULL, scored))
	{
		ServingFinish(&call, scored);
		ProgressEnd();
		MemoryContextDelete(br.cxt);
		return;
	}
	DatasetScanSource(source, &br.pub, explain ? "explanation" : "scoring");
	if (br.n > 0)
		BatchFlush(&br);
	for (int mi = 0; mi < br.nmodels; mi++)
		scored[mi] = br.models[mi].scored;
	ServingFinish(&call, scored);
	ProgressEnd();
	MemoryContextDelete(br.cxt);
}

/* cr_predict_batch(name, source, key DEFAULT NULL) */
Datum
cr_predict_batch(PG_FUNCTION_ARGS)
{
	BatchRun(fcinfo, false, 0);
	return (Datum) 0;
}

/* cr_explain_batch(name, source, key DEFAULT NULL, top_n DEFAULT 4) */
Datum
cr_explain_batch(PG_FUNCTION_ARGS)
{
	BatchRun(fcinfo, true, ExplainTopArg(fcinfo, 3));
	return (Datum) 0;
}
