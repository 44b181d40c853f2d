/*
 * report.c
 *	  cr_model_report: one self-contained HTML page about a model version
 *	  for its validators (inline CSS and SVG drawn here, no script, nothing
 *	  fetched): identity and lineage, holdout metrics, and on a labelled
 *	  source the ROC and KS curves, the distribution of goods' and bads'
 *	  PDs and the calibration; the scorecard, coefficients or importance;
 *	  drift and fairness from the latest monitoring runs; limitations.
 *
 * Every text that comes from users (names, features, levels, sources,
 * params, reasons) is escaped: the page holds no markup it did not write.
 */
#include "postgres.h"

#include <math.h>

#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "credit_risk.h"
#include "evaluate.h"
#include "explain.h"
#include "metrics.h"
#include "model.h"
#include "predict.h"
#include "registry.h"

PG_FUNCTION_INFO_V1(cr_model_report);

#define CHART_W			520
#define CHART_H			360
#define PLOT_X0			60			/* the plot area inside a chart */
#define PLOT_Y0			20
#define PLOT_W			440
#define PLOT_H			290
#define MAX_CURVE_POINTS 1000
#define MAX_TABLE_ROWS	60

/* ------------------------------------------------------------ text */

static void
Esc(StringInfo buf, const char *s)
{
	for (; s != NULL && *s; s++)
	{
		switch (*s)
		{
			case '&':
				appendStringInfoString(buf, "&amp;");
				break;
			case '<':
				appendStringInfoString(buf, "&lt;");
				break;
			case '>':
				appendStringInfoString(buf, "&gt;");
				break;
			case '"':
				appendStringInfoString(buf, "&quot;");
				break;
			case '\'':
				appendStringInfoString(buf, "&#39;");
				break;
			default:
				appendStringInfoChar(buf, *s);
		}
	}
}

static void
Num(StringInfo buf, double v, int digits)
{
	if (isnan(v))
		appendStringInfoString(buf, "&ndash;");
	else
		appendStringInfo(buf, "%.*f", digits, v);
}

static void
Row(StringInfo buf, const char *key, const char *value)
{
	appendStringInfoString(buf, "<tr><th>");
	Esc(buf, key);
	appendStringInfoString(buf, "</th><td>");
	Esc(buf, value != NULL ? value : "");
	appendStringInfoString(buf, "</td></tr>\n");
}

static void
Missing(StringInfo buf, const char *why)
{
	appendStringInfoString(buf, "<p class=\"missing\">");
	Esc(buf, why);
	appendStringInfoString(buf, "</p>\n");
}

/* ------------------------------------------------------------ charts */

static double
PlotX(double v)
{
	return PLOT_X0 + PLOT_W * Min(Max(v, 0.0), 1.0);
}

static double
PlotY(double v)
{
	return PLOT_Y0 + PLOT_H * (1.0 - Min(Max(v, 0.0), 1.0));
}

/* An SVG chart on [0, 1] x [0, 1] with its axes, ticks and labels. */
static void
ChartBegin(StringInfo buf, const char *id, const char *title, const char *xlabel,
		   const char *ylabel)
{
	appendStringInfo(buf, "<svg class=\"chart\" id=\"%s\" width=\"%d\" height=\"%d\" "
					 "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", id, CHART_W, CHART_H,
					 CHART_W, CHART_H);
	Esc(buf, title);
	appendStringInfoString(buf, "\"><title>");
	Esc(buf, title);
	appendStringInfoString(buf, "</title>\n");
	appendStringInfo(buf, "<rect class=\"frame\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/>\n",
					 PLOT_X0, PLOT_Y0, PLOT_W, PLOT_H);
	for (int t = 0; t <= 5; t++)
	{
		double		v = t / 5.0;

		appendStringInfo(buf, "<line class=\"grid\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>"
						 "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n",
						 PlotX(v), PLOT_Y0, PlotX(v), PLOT_Y0 + PLOT_H,
						 PlotX(v), PLOT_Y0 + PLOT_H + 14, v);
		appendStringInfo(buf, "<line class=\"grid\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>"
						 "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n",
						 PLOT_X0, PlotY(v), PLOT_X0 + PLOT_W, PlotY(v),
						 PLOT_X0 - 5, PlotY(v) + 4, v);
	}
	appendStringInfo(buf, "<text class=\"axis-label x\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
					 PLOT_X0 + PLOT_W / 2, CHART_H - 8);
	Esc(buf, xlabel);
	appendStringInfo(buf, "</text>\n<text class=\"axis-label y\" x=\"14\" y=\"%d\" "
					 "text-anchor=\"middle\" transform=\"rotate(-90 14 %d)\">",
					 PLOT_Y0 + PLOT_H / 2, PLOT_Y0 + PLOT_H / 2);
	Esc(buf, ylabel);
	appendStringInfoString(buf, "</text>\n");
}

static void
ChartEnd(StringInfo buf)
{
	appendStringInfoString(buf, "</svg>\n");
}

/* A polyline of n points; data-points says how many it has. */
static void
Polyline(StringInfo buf, const char *cls, const double *x, const double *y, int n)
{
	appendStringInfo(buf, "<polyline class=\"%s\" data-points=\"%d\" points=\"", cls, n);
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s%.2f,%.2f", i > 0 ? " " : "", PlotX(x[i]), PlotY(y[i]));
	appendStringInfoString(buf, "\"/>\n");
}

/* ------------------------------------------------------------ rows */

typedef struct Scored
{
	double		pd;
	double		y;
} Scored;

static int
ScoredDesc(const void *a, const void *b)
{
	const Scored *p = a;
	const Scored *q = b;

	if (p->pd != q->pd)
		return p->pd > q->pd ? -1 : 1;
	return 0;
}

/*
 * ROC: one point per distinct PD, highest first (every k-th past
 * MAX_CURVE_POINTS), from (0, 0) to (1, 1).  KS: the shares of goods and
 * bads with a PD at or below each threshold.
 */
static void
CurvesSection(StringInfo buf, Scored *rows, int64 n, int64 npos, double auc)
{
	int64		nneg = n - npos;
	int64		ndistinct = 0;
	int64		step;
	double	   *fx = palloc(sizeof(double) * (MAX_CURVE_POINTS + 3));
	double	   *fy = palloc(sizeof(double) * (MAX_CURVE_POINTS + 3));
	double	   *gx = palloc(sizeof(double) * (MAX_CURVE_POINTS + 3));
	double	   *gy = palloc(sizeof(double) * (MAX_CURVE_POINTS + 3));
	double	   *bx = palloc(sizeof(double) * (MAX_CURVE_POINTS + 3));
	double	   *by = palloc(sizeof(double) * (MAX_CURVE_POINTS + 3));
	int			m = 0;
	int			k = 0;
	int64		tp = 0,
				fp = 0,
				seen = 0;
	double		ks = 0.0,
				ks_at = 0.0,
				ks_good = 0.0,
				ks_bad = 0.0;

	qsort(rows, n, sizeof(Scored), ScoredDesc);
	for (int64 i = 0; i < n; i++)
		ndistinct += i == 0 || rows[i].pd != rows[i - 1].pd;
	step = Max(1, (ndistinct + MAX_CURVE_POINTS - 1) / MAX_CURVE_POINTS);

	fx[m] = 0.0;
	fy[m++] = 0.0;
	/* the KS curves run from the lowest PD up: the shares at or below it */
	for (int64 i = 0; i < n;)
	{
		int64		j = i;

		while (j < n && (j == i || rows[j].pd == rows[i].pd))
		{
			tp += rows[j].y > 0.5;
			fp += rows[j].y <= 0.5;
			j++;
		}
		seen++;
		{
			/* rows past this threshold are at or below the next lower PD */
			double		bad_below = (double) (npos - tp) / npos;
			double		good_below = (double) (nneg - fp) / nneg;
			double		gap = fabs(good_below - bad_below);

			if (gap > ks)
			{
				ks = gap;
				ks_at = j < n ? rows[j].pd : 0.0;
				ks_good = good_below;
				ks_bad = bad_below;
			}
			if (seen % step == 0 || j == n)
			{
				fx[m] = (double) fp / nneg;
				fy[m++] = (double) tp / npos;
				if (j < n)
				{
					gx[k] = rows[j].pd;
					gy[k] = good_below;
					bx[k] = rows[j].pd;
					by[k++] = bad_below;
				}
			}
		}
		i = j;
	}

	appendStringInfo(buf, "<section id=\"roc\"><h2>ROC curve</h2>\n<p>AUC %.4f over " INT64_FORMAT
					 " rows (" INT64_FORMAT " defaults). The curve has a point per PD threshold "
					 "(<span class=\"thresholds\">%d</span> drawn of " INT64_FORMAT " distinct PDs).</p>\n",
					 auc, n, npos, m - 1, ndistinct);
	ChartBegin(buf, "roc-chart", "ROC curve", "false positive rate (goods above the threshold)",
			   "true positive rate (defaults above the threshold)");
	{
		double		dx[2] = {0, 1},
					dy[2] = {0, 1};

		Polyline(buf, "diagonal", dx, dy, 2);
	}
	appendStringInfo(buf, "<polyline class=\"roc\" data-thresholds=\"%d\" points=\"", m - 1);
	for (int i = 0; i < m; i++)
		appendStringInfo(buf, "%s%.2f,%.2f", i > 0 ? " " : "", PlotX(fx[i]), PlotY(fy[i]));
	appendStringInfoString(buf, "\"/>\n");
	ChartEnd(buf);
	appendStringInfoString(buf, "</section>\n");

	appendStringInfo(buf, "<section id=\"ks\"><h2>KS</h2>\n<p>KS %.4f at PD %.4f: %.1f%% of goods "
					 "and %.1f%% of defaults have a PD at or below it.</p>\n",
					 ks, ks_at, 100.0 * ks_good, 100.0 * ks_bad);
	ChartBegin(buf, "ks-chart", "KS: share of goods and of defaults at or below a PD", "PD",
			   "share at or below the PD");
	Polyline(buf, "goods", gx, gy, k);
	Polyline(buf, "bads", bx, by, k);
	appendStringInfo(buf, "<line class=\"ks-gap\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
					 PlotX(ks_at), PlotY(ks_good), PlotX(ks_at), PlotY(ks_bad));
	ChartEnd(buf);
	appendStringInfoString(buf, "<p class=\"legend\"><span class=\"key goods\"></span> goods "
						   "<span class=\"key bads\"></span> defaults</p></section>\n");
}

/* 20 bins of PD: the share of goods and of defaults in each, as bars. */
static void
DistributionSection(StringInfo buf, const Scored *rows, int64 n, int64 npos)
{
	int64		good[20] = {0},
				bad[20] = {0};
	double		top = 0.0;

	for (int64 i = 0; i < n; i++)
	{
		int			b = (int) Min(Max(floor(rows[i].pd * 20.0), 0.0), 19.0);

		if (rows[i].y > 0.5)
			bad[b]++;
		else
			good[b]++;
	}
	for (int b = 0; b < 20; b++)
		top = Max(top, Max((double) good[b] / (n - npos), (double) bad[b] / npos));
	appendStringInfoString(buf, "<section id=\"distribution\"><h2>PDs of goods and defaults</h2>\n");
	ChartBegin(buf, "distribution-chart", "Share of goods and of defaults per PD band of 0.05", "PD",
			   "share of the class (scaled to the tallest bar)");
	for (int b = 0; b < 20; b++)
	{
		double		g = (double) good[b] / (n - npos) / Max(top, 1e-300);
		double		d = (double) bad[b] / npos / Max(top, 1e-300);
		double		x0 = PlotX(b / 20.0);
		double		w = PLOT_W / 40.0;

		appendStringInfo(buf, "<rect class=\"bar goods\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>"
						 "<rect class=\"bar bads\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
						 x0, PlotY(g), w - 1, PLOT_H * Min(g, 1.0),
						 x0 + w, PlotY(d), w - 1, PLOT_H * Min(d, 1.0));
	}
	ChartEnd(buf);
	appendStringInfoString(buf, "<p class=\"legend\"><span class=\"key goods\"></span> goods "
						   "<span class=\"key bads\"></span> defaults</p></section>\n");
}

/* Ten groups of equal size in PD order: mean PD against the default rate. */
static void
CalibrationSection(StringInfo buf, Scored *rows, int64 n)
{
	double		mx[10],
				my[10];
	int			g = Min(10, (int) n);
	double		dx[2] = {0, 1},
				dy[2] = {0, 1};

	/* rows are in descending PD order: groups from the low end */
	appendStringInfoString(buf, "<section id=\"calibration\"><h2>Calibration</h2>\n");
	ChartBegin(buf, "calibration-chart", "Calibration: mean PD and default rate per tenth of the rows",
			   "mean PD of the group", "default rate of the group");
	Polyline(buf, "diagonal", dx, dy, 2);
	for (int k = 0; k < g; k++)
	{
		int64		from = n - (int64) ((double) (k + 1) * n / g);
		int64		to = n - (int64) ((double) k * n / g);
		double		s = 0.0,
					d = 0.0;

		for (int64 i = from; i < to; i++)
		{
			s += rows[i].pd;
			d += rows[i].y > 0.5;
		}
		mx[k] = s / Max(to - from, 1);
		my[k] = d / Max(to - from, 1);
		appendStringInfo(buf, "<circle class=\"group\" cx=\"%.2f\" cy=\"%.2f\" r=\"4\"/>\n",
						 PlotX(mx[k]), PlotY(my[k]));
	}
	Polyline(buf, "reliability", mx, my, g);
	ChartEnd(buf);
	appendStringInfoString(buf, "<table class=\"data\"><tr><th>group</th><th>mean PD</th>"
						   "<th>default rate</th></tr>\n");
	for (int k = 0; k < g; k++)
	{
		appendStringInfo(buf, "<tr><td>%d</td><td>", k + 1);
		Num(buf, mx[k], 4);
		appendStringInfoString(buf, "</td><td>");
		Num(buf, my[k], 4);
		appendStringInfoString(buf, "</td></tr>\n");
	}
	appendStringInfoString(buf, "</table>\n<p>The Hosmer&ndash;Lemeshow, binomial and Jeffreys tests "
						   "of these rows: <code>credit_risk.cr_calibration</code>.</p></section>\n");
}

/* ------------------------------------------------------------ model */

static void
Bars(StringInfo buf, const char *id, const char *title, char **names, const double *v, int n)
{
	double		top = 0.0;
	int			h = 22 * n + 30;

	for (int i = 0; i < n; i++)
		top = Max(top, fabs(v[i]));
	appendStringInfo(buf, "<svg class=\"bars\" id=\"%s\" width=\"640\" height=\"%d\" role=\"img\" "
					 "aria-label=\"", id, h);
	Esc(buf, title);
	appendStringInfoString(buf, "\"><title>");
	Esc(buf, title);
	appendStringInfoString(buf, "</title>\n");
	for (int i = 0; i < n; i++)
	{
		double		w = top > 0 ? 380.0 * fabs(v[i]) / top : 0.0;

		appendStringInfo(buf, "<text class=\"bar-label\" x=\"195\" y=\"%d\" text-anchor=\"end\">",
						 22 * i + 20);
		Esc(buf, names[i]);
		appendStringInfo(buf, "</text><rect class=\"bar value\" x=\"200\" y=\"%d\" width=\"%.2f\" "
						 "height=\"16\"/><text class=\"bar-value\" x=\"%.2f\" y=\"%d\">%.4g</text>\n",
						 22 * i + 7, w, 205 + w, 22 * i + 20, v[i]);
	}
	ChartEnd(buf);
}

static void
ModelSection(StringInfo buf, const CrModel *m, const char *importance_json)
{
	appendStringInfoString(buf, "<section id=\"model\"><h2>The model</h2>\n");
	if (m->algorithm == CR_ALGO_SCORECARD || m->algorithm == CR_ALGO_LOGISTIC)
	{
		appendStringInfoString(buf, "<table class=\"data\"><tr><th>feature</th>");
		if (m->algorithm == CR_ALGO_SCORECARD)
			appendStringInfoString(buf, "<th>bin</th><th>WoE</th><th>training rows</th><th>defaults</th>");
		appendStringInfoString(buf, "<th>coefficient</th><th>standard error</th></tr>\n");
		appendStringInfoString(buf, "<tr><td>(intercept)</td>");
		if (m->algorithm == CR_ALGO_SCORECARD)
			appendStringInfoString(buf, "<td></td><td></td><td></td><td></td>");
		appendStringInfoString(buf, "<td>");
		Num(buf, m->coef[0], 6);
		appendStringInfoString(buf, "</td><td>");
		Num(buf, m->std_error[0], 6);
		appendStringInfoString(buf, "</td></tr>\n");
		for (int j = 0; j < m->nfeatures; j++)
		{
			int			k = m->coef_start != NULL ? m->coef_start[j] : j + 1;

			if (m->algorithm == CR_ALGO_SCORECARD)
			{
				const CrWoeFeature *w = &m->woe[j];

				for (int b = 0; b <= w->nbins; b++)
				{
					appendStringInfoString(buf, "<tr><td>");
					Esc(buf, m->features[j]);
					appendStringInfo(buf, "</td><td>%s</td><td>", b == w->nbins ? "missing" :
									 psprintf("%d", b + 1));
					Num(buf, w->woe[b], 4);
					appendStringInfo(buf, "</td><td>" INT64_FORMAT "</td><td>" INT64_FORMAT "</td><td>",
									 w->n[b], w->events[b]);
					Num(buf, m->coef[j + 1], 6);
					appendStringInfoString(buf, "</td><td>");
					Num(buf, m->std_error[j + 1], 6);
					appendStringInfoString(buf, "</td></tr>\n");
				}
				continue;
			}
			appendStringInfoString(buf, "<tr><td>");
			Esc(buf, m->features[j]);
			if (m->cats != NULL && m->cats[j] != NULL)
				appendStringInfoString(buf, " (per level: <code>cr_coefficients</code>)");
			appendStringInfoString(buf, "</td><td>");
			Num(buf, m->coef[k], 6);
			appendStringInfoString(buf, "</td><td>");
			Num(buf, m->std_error[k], 6);
			appendStringInfoString(buf, "</td></tr>\n");
		}
		appendStringInfoString(buf, "</table>\n");
		if (m->algorithm == CR_ALGO_SCORECARD)
			appendStringInfoString(buf, "<p>Points per bin: <code>credit_risk.cr_scorecard</code>.</p>\n");
	}
	else
	{
		/* the trees' total gain per feature, from the registry's importance */
		double	   *gain = palloc0(sizeof(double) * m->nfeatures);
		Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(importance_json)));

		for (int j = 0; j < m->nfeatures; j++)
		{
			JsonbValue	v;
			JsonbValue *f = getKeyJsonValueFromContainer(&jb->root, m->features[j],
														 strlen(m->features[j]), &v);

			if (f != NULL && f->type == jbvBinary)
			{
				JsonbValue	g;
				JsonbValue *gv = getKeyJsonValueFromContainer(f->val.binary.data, "gain", 4, &g);

				if (gv != NULL && gv->type == jbvNumeric)
					gain[j] = DatumGetFloat8(DirectFunctionCall1(numeric_float8,
																 NumericGetDatum(gv->val.numeric)));
			}
		}
		appendStringInfo(buf, "<p>%d trees; each feature's total split gain:</p>\n", m->forest.ntrees);
		Bars(buf, "importance-chart", "Total split gain per feature", m->features, gain,
			 Min(m->nfeatures, MAX_TABLE_ROWS));
	}
	appendStringInfoString(buf, "</section>\n");
}

/* ------------------------------------------------------------ SQL */

/* Every row of a query, each its columns as text; *nrows set. */
static char ***
QueryRows(const char *sql, int nargs, Oid *types, Datum *args, int *nrows)
{
	char	 ***out;
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, nargs, types, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "report query failed");
	*nrows = (int) SPI_processed;
	out = MemoryContextAllocZero(cxt, sizeof(char **) * Max(*nrows, 1));
	for (int r = 0; r < *nrows; r++)
	{
		int			nc = SPI_tuptable->tupdesc->natts;

		out[r] = MemoryContextAllocZero(cxt, sizeof(char *) * nc);
		for (int c = 0; c < nc; c++)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);

			out[r][c] = v != NULL ? MemoryContextStrdup(cxt, v) : NULL;
		}
	}
	SPI_finish();
	return out;
}

static const char *const ReportStyle =
"body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
"h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;margin-top:2em}"
"table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:3px 8px;"
"text-align:left;font-size:.9em}th{background:#f4f4f4}"
".chart .frame{fill:none;stroke:#444}.chart .grid{stroke:#eee}.tick{font-size:10px;fill:#555}"
".axis-label{font-size:12px;fill:#222}.roc{fill:none;stroke:#1f5fa8;stroke-width:2}"
".diagonal{fill:none;stroke:#aaa;stroke-dasharray:4 3}.goods{fill:none;stroke:#2a8a3e;stroke-width:2}"
".bads{fill:none;stroke:#c0392b;stroke-width:2}.bar.goods{fill:#2a8a3e;stroke:none}"
".bar.bads{fill:#c0392b;stroke:none}.ks-gap{stroke:#555;stroke-dasharray:3 2}"
".reliability{fill:none;stroke:#1f5fa8;stroke-width:2}.group{fill:#1f5fa8}"
".bar.value{fill:#1f5fa8}.bar-label,.bar-value{font-size:11px}"
".key{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}"
".key.goods{background:#2a8a3e}.key.bads{background:#c0392b}"
".missing{color:#8a6d00;background:#fff8e1;padding:.5em}.flag{color:#c0392b;font-weight:bold}";

/*
 * cr_model_report(name, version DEFAULT NULL, source DEFAULT NULL): the
 * page.  With source (rows with the model's features and its label
 * column, read with the caller's rights) the curves are drawn on its rows;
 * without, the page says how to get them.
 */
Datum
cr_model_report(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	const CrCachedModel *entry;
	const CrModel *m;
	char	   *name;
	char	  **reg;
	int			nreg;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	char	   *source = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	static const char *const regcols[] = {
		"version", "algorithm", "status", "created at", "created by", "source", "label",
		"features", "params", "training rows", "holdout rows", "training seconds"
	};

	name = RegistryNameArg(fcinfo, 0);
	entry = RegistryLookup(name, RegistryVersionArg(fcinfo, 1));
	m = entry->model;
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(entry->version);
	reg = QueryRows("SELECT version, algorithm, status, created_at, created_by, source, label, "
					"features, params, train_rows, holdout_rows, train_seconds, metrics, importance "
					"FROM credit_risk.models WHERE name = $1 AND version = $2",
					2, types, args, &nreg)[0];
	if (nreg == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no registry row for its version %d", name, entry->version)));

	initStringInfo(&buf);
	appendStringInfoString(&buf, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
						   "<title>Model report: ");
	Esc(&buf, entry->version_label);
	appendStringInfo(&buf, "</title><style>%s</style></head>\n<body>\n<h1>Model report: ", ReportStyle);
	Esc(&buf, entry->version_label);
	appendStringInfoString(&buf, "</h1>\n");

	/* identity and lineage */
	appendStringInfoString(&buf, "<section id=\"identity\"><h2>Identity and lineage</h2>\n<table>\n");
	Row(&buf, "model", entry->version_label);
	for (int c = 0; c < lengthof(regcols); c++)
		Row(&buf, regcols[c], reg[c]);
	Row(&buf, "model bytes", psprintf("format %d, %zu bytes, checksum %08x",
									  m->format_version, m->nbytes, m->checksum));
	if (m->calibration != NULL)
		Row(&buf, "calibration", CalibrationMethodName(m->calibration->method));
	appendStringInfoString(&buf, "</table></section>\n");

	/* the registered metrics */
	appendStringInfoString(&buf, "<section id=\"metrics\"><h2>Holdout metrics</h2>\n");
	{
		Jsonb	   *jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(reg[12])));
		static const char *const keys[] = {"evaluated_on", "rows", "positives", "base_rate", "auc",
		"gini", "ks", "log_loss", "brier", "threshold", "accuracy", "precision", "recall", "f1",
		"train_auc"};
		bool		on_train = false;

		appendStringInfoString(&buf, "<table>\n");
		for (int k = 0; k < lengthof(keys); k++)
		{
			JsonbValue	v;
			JsonbValue *f = getKeyJsonValueFromContainer(&jb->root, keys[k], strlen(keys[k]), &v);
			char	   *text;

			if (f == NULL)
				continue;
			if (f->type == jbvString)
				text = pnstrdup(f->val.string.val, f->val.string.len);
			else if (f->type == jbvNumeric)
				text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(f->val.numeric)));
			else
				text = "null";
			if (strcmp(keys[k], "evaluated_on") == 0 && strcmp(text, "train") == 0)
				on_train = true;
			Row(&buf, keys[k], text);
		}
		appendStringInfoString(&buf, "</table>\n");
		if (on_train)
			Missing(&buf, "These metrics were measured on the training rows (the version was trained "
					"without a holdout): they flatter the model. Pass a labelled source of other rows.");
		appendStringInfoString(&buf, "</section>\n");
	}

	/* the curves, on the source's rows */
	if (source == NULL)
	{
		appendStringInfoString(&buf, "<section id=\"roc\"><h2>ROC curve</h2>\n");
		Missing(&buf, "No source was given: pass a labelled source (a table or query with the "
				"model's features and its label column) to draw the ROC and KS curves, the "
				"distribution of PDs and the calibration.");
		appendStringInfoString(&buf, "</section>\n");
	}
	else
	{
		double	   *prob;
		double	   *y;
		int64		n = EvaluateScore(entry, source, reg[6], &prob, &y);
		Scored	   *rows = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(Scored) * n);
		int64		npos = 0;
		CrMetrics	mt;

		for (int64 i = 0; i < n; i++)
		{
			rows[i].pd = prob[i];
			rows[i].y = y[i];
			npos += y[i] > 0.5;
		}
		appendStringInfoString(&buf, "<section id=\"evaluation\"><h2>Evaluation on the source</h2>\n<p>Source: <code>");
		Esc(&buf, source);
		MetricsCompute(prob, y, n, m->scoring.threshold, &mt);
		appendStringInfo(&buf, "</code>: " INT64_FORMAT " rows, " INT64_FORMAT " defaults; AUC ",
						 n, npos);
		Num(&buf, mt.auc, 4);
		appendStringInfoString(&buf, ", KS ");
		Num(&buf, mt.ks, 4);
		appendStringInfoString(&buf, ", Brier ");
		Num(&buf, mt.brier, 4);
		appendStringInfoString(&buf, ", log loss ");
		Num(&buf, mt.log_loss, 4);
		appendStringInfoString(&buf, ".</p></section>\n");
		if (npos == 0 || npos == n)
			Missing(&buf, "The source's rows are of one class: no ROC or KS curve can be drawn.");
		else
		{
			CurvesSection(&buf, rows, n, npos, mt.auc);
			DistributionSection(&buf, rows, n, npos);
			CalibrationSection(&buf, rows, n);
		}
	}

	ModelSection(&buf, m, reg[13]);

	/* drift and fairness, from the latest monitoring runs */
	{
		int			nruns;
		char	 ***runs;
		Datum		rargs[1];
		Oid			rtypes[1] = {TEXTOID};

		rargs[0] = CStringGetTextDatum(entry->version_label);
		runs = QueryRows("SELECT run_at, rows, round(max_feature_psi::numeric, 4), "
						 "round(score_psi::numeric, 4), metrics->>'auc', alerts, id "
						 "FROM credit_risk.monitoring_runs WHERE model_version = $1 "
						 "ORDER BY id DESC LIMIT 10", 1, rtypes, rargs, &nruns);
		appendStringInfoString(&buf, "<section id=\"drift\"><h2>Drift (monitoring runs)</h2>\n");
		if (nruns == 0)
			Missing(&buf, "No monitoring run of this version yet: credit_risk.cr_monitor records one.");
		else
		{
			char	 ***psi;
			int			npsi;
			double	   *v;
			char	  **names;
			Datum		pargs[1];
			Oid			ptypes[1] = {INT8OID};

			appendStringInfoString(&buf, "<table class=\"data\"><tr><th>run at</th><th>rows</th>"
								   "<th>largest feature PSI</th><th>score PSI</th><th>AUC</th>"
								   "<th>alerts</th></tr>\n");
			for (int r = 0; r < nruns; r++)
			{
				appendStringInfoString(&buf, "<tr>");
				for (int c = 0; c < 6; c++)
				{
					appendStringInfoString(&buf, "<td>");
					Esc(&buf, runs[r][c] != NULL ? runs[r][c] : "");
					appendStringInfoString(&buf, "</td>");
				}
				appendStringInfoString(&buf, "</tr>\n");
			}
			appendStringInfoString(&buf, "</table>\n<p>PSI per feature in the latest run:</p>\n");
			pargs[0] = Int64GetDatum(strtoll(runs[0][6], NULL, 10));
			psi = QueryRows("SELECT key, value::text FROM credit_risk.monitoring_runs r, "
							"jsonb_each(r.feature_psi) WHERE r.id = $1 "
							"ORDER BY CASE WHEN jsonb_typeof(value) = 'number' THEN value::text::float8 END "
							"DESC NULLS LAST, key",
							1, ptypes, pargs, &npsi);
			npsi = Min(npsi, MAX_TABLE_ROWS);
			v = palloc(sizeof(double) * Max(npsi, 1));
			names = palloc(sizeof(char *) * Max(npsi, 1));
			for (int i = 0; i < npsi; i++)
			{
				names[i] = psi[i][0];
				v[i] = psi[i][1] != NULL ? strtod(psi[i][1], NULL) : 0.0;
				if (!isfinite(v[i]))
					v[i] = 0.0;
			}
			Bars(&buf, "psi-chart", "PSI per feature, latest monitoring run", names, v, npsi);
		}
		appendStringInfoString(&buf, "</section>\n");

		appendStringInfoString(&buf, "<section id=\"fairness\"><h2>Fairness</h2>\n");
		{
			char	 ***fair;
			int			nfair;

			fair = QueryRows("SELECT f.key, g->>'group', g->>'n', g->>'approval_rate', "
							 "g->>'adverse_impact_ratio', g->>'mean_pd', g->>'default_rate', g->>'smd' "
							 "FROM (SELECT fairness FROM credit_risk.monitoring_runs "
							 "      WHERE model_version = $1 AND fairness IS NOT NULL ORDER BY id DESC LIMIT 1) r, "
							 "jsonb_each(r.fairness) f, jsonb_array_elements(CASE WHEN "
							 "jsonb_typeof(f.value->'groups') = 'array' THEN f.value->'groups' "
							 "ELSE '[]' END) g ORDER BY 1, 2", 1, rtypes, rargs, &nfair);
			if (nfair == 0)
				Missing(&buf, "No fairness measured: an alert rule with a group_column (metric "
						"min_adverse_impact_ratio) makes cr_monitor measure it; cr_fairness gives it "
						"on demand.");
			else
			{
				appendStringInfoString(&buf, "<table class=\"data\"><tr><th>column</th><th>group</th>"
									   "<th>rows</th><th>approval rate</th><th>adverse impact ratio</th>"
									   "<th>mean PD</th><th>default rate</th><th>score SMD</th></tr>\n");
				for (int r = 0; r < Min(nfair, MAX_TABLE_ROWS); r++)
				{
					bool		low = fair[r][4] != NULL && strtod(fair[r][4], NULL) < 0.8;

					appendStringInfoString(&buf, "<tr>");
					for (int c = 0; c < 8; c++)
					{
						appendStringInfo(&buf, "<td%s>", c == 4 && low ? " class=\"flag\"" : "");
						Esc(&buf, fair[r][c] != NULL ? fair[r][c] : (c == 1 ? "(null)" : ""));
						appendStringInfoString(&buf, "</td>");
					}
					appendStringInfoString(&buf, "</tr>\n");
				}
				appendStringInfoString(&buf, "</table>\n");
				if (nfair > MAX_TABLE_ROWS)
					Missing(&buf, psprintf("%d more groups are not shown.", nfair - MAX_TABLE_ROWS));
			}
		}
		appendStringInfoString(&buf, "</section>\n");
	}

	/* what this page does not show */
	appendStringInfoString(&buf, "<section id=\"limitations\"><h2>Limitations</h2>\n<ul>\n");
	if (source == NULL)
		appendStringInfoString(&buf, "<li>No rows were scored for this page: the curves are missing.</li>\n");
	else
		appendStringInfoString(&buf, "<li>The curves describe the source's rows only; rows of other "
							   "periods or channels may behave otherwise.</li>\n");
	if (strstr(reg[8], "\"split\": null") != NULL)
		appendStringInfoString(&buf, "<li>The holdout is a random split of the training source, not a "
							   "later period: the version has no out-of-time test in its metrics.</li>\n");
	if (m->calibration != NULL)
		appendStringInfoString(&buf, "<li>The calibration was fitted on the holdout, so the holdout "
							   "metrics flatter it.</li>\n");
	if (m->baseline == NULL)
		appendStringInfoString(&buf, "<li>The model holds no drift baselines.</li>\n");
	appendStringInfoString(&buf, "<li>Features the model does not use were not examined; fairness "
						   "covers only the group columns named in alert rules.</li>\n</ul></section>\n");
	appendStringInfoString(&buf, "<footer><p>credit_risk model report of ");
	Esc(&buf, entry->version_label);
	appendStringInfoString(&buf, ".</p></footer>\n</body></html>\n");

	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
