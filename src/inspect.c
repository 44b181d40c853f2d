/*
 * inspect.c
 *	  What a model holds, for people: cr_coefficients (a logistic model's
 *	  coefficient table), cr_model_info (what model bytes hold) and
 *	  cr_model_trees (a tree model's nodes).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "metrics.h"
#include "model.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_coefficients);
PG_FUNCTION_INFO_V1(cr_model_info);
PG_FUNCTION_INFO_V1(cr_model_trees);

/*
 * cr_coefficients(name, version DEFAULT NULL): a logistic model's
 * coefficients with standard errors, z and two-sided p values (Wald).
 */
Datum
cr_coefficients(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name;
	int32		version;
	CrCachedModel *entry;
	const CrModel *m;

	name = RegistryNameArg(fcinfo, 0);
	version = RegistryVersionArg(fcinfo, 1);

	InitMaterializedSRF(fcinfo, 0);
	entry = RegistryLookup(name, version);
	m = entry->model;
	if (m->algorithm != CR_ALGO_LOGISTIC && m->algorithm != CR_ALGO_SCORECARD)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("model \"%s\" is a %s model; coefficients exist only for logistic models and scorecards",
						entry->version_label, ModelAlgorithmName(m->algorithm))));

	/* the intercept, then each number's coefficient or each level's */
	for (int j = -1; j < m->nfeatures; j++)
	{
		/* a scorecard's coefficient is per feature (on its WoE), whatever its kind */
		const CrCategoryMap *map = (j >= 0 && m->cats != NULL &&
									m->algorithm == CR_ALGO_LOGISTIC) ? m->cats[j] : NULL;
		int			k = j < 0 ? 0 : (m->coef_start ? m->coef_start[j] : j + 1);
		int			ngroups = map != NULL ? map->nlevels + 2 : 1;

		for (int g = 0; g < ngroups; g++)
		{
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};
			double		b = m->coef[k + g];
			double		se = m->std_error[k + g];

			/* a group without training rows has no coefficient of its own */
			if (map != NULL && g != map->reference && b == 0.0 && isnan(se))
				continue;
			values[0] = CStringGetTextDatum(j < 0 ? "(intercept)" :
											map != NULL ? CategoryLevelName(m->features[j], map, g) :
											m->features[j]);
			values[1] = Float8GetDatum(b);
			if (isnan(se) || se <= 0.0)
			{
				nulls[2] = nulls[3] = nulls[4] = true;
			}
			else
			{
				double		z = b / se;

				values[2] = Float8GetDatum(se);
				values[3] = Float8GetDatum(z);
				values[4] = Float8GetDatum(erfc(fabs(z) / M_SQRT2));
			}
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
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
						 m->forest.ntrees, m->forest.tree_start[m->forest.ntrees]);
		CrAppendDouble(&buf, m->forest.base_margin);
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
	appendStringInfoChar(&buf, ']');
	if (m->cats != NULL)
	{
		bool		first = true;

		appendStringInfoString(&buf, ", \"categories\": {");
		for (int j = 0; j < m->nfeatures; j++)
		{
			const CrCategoryMap *map = m->cats[j];

			if (map == NULL)
				continue;
			appendStringInfoString(&buf, first ? "" : ", ");
			first = false;
			escape_json(&buf, m->features[j]);
			appendStringInfoString(&buf, ": {\"levels\": [");
			for (int l = 0; l < map->nlevels; l++)
			{
				appendStringInfoString(&buf, l > 0 ? ", " : "");
				escape_json(&buf, map->levels[l]);
			}
			appendStringInfoString(&buf, "], \"reference\": ");
			escape_json(&buf, map->levels[map->reference]);
			appendStringInfoChar(&buf, '}');
		}
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfo(&buf, ", \"drift_baseline\": %s, \"threshold\": ",
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

/* The levels a category split sends left, as a text[] ("(other)" for other). */
static Datum
CategorySetArray(const CrModel *m, int32 node)
{
	const CrCategoryMap *map = m->cats[m->forest.feature[node]];
	const uint64 *bits = m->forest.cat_bits + (Size) m->forest.cat_set[node] * FOREST_CAT_WORDS;
	Datum	   *elems = palloc(sizeof(Datum) * (map->nlevels + 1));
	int			n = 0;

	for (int c = 0; c <= map->nlevels; c++)
		if (ForestCatLeft(bits, c))
			elems[n++] = CStringGetTextDatum(c < map->nlevels ? map->levels[c] : "(other)");
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
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
	for (int t = 0; t < m->forest.ntrees; t++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int32 i = m->forest.tree_start[t]; i < m->forest.tree_start[t + 1]; i++)
		{
			Datum		values[10];
			bool		nulls[10] = {false};
			int32		f = m->forest.feature[i];

			values[0] = Int32GetDatum(t);
			values[1] = Int32GetDatum(i - m->forest.tree_start[t]);
			if (f >= 0)
			{
				values[2] = CStringGetTextDatum(m->features[f]);
				values[3] = Float8GetDatum(m->forest.threshold[i]);
				if (m->forest.cat_set != NULL && m->forest.cat_set[i] >= 0)
				{
					nulls[3] = true;
					values[9] = CategorySetArray(m, i);
				}
				else
					nulls[9] = true;
				values[4] = Int32GetDatum(m->forest.left[i]);
				values[5] = Int32GetDatum(m->forest.right[i]);
				values[6] = BoolGetDatum(m->forest.default_left[i]);
			}
			else
				nulls[2] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = nulls[9] = true;
			values[7] = Float8GetDatum(m->forest.value[i]);
			values[8] = Float8GetDatum(m->forest.cover[i]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
