/*
 * metrics.c
 *	  AUC (exact under ties), KS, Gini, log loss, Brier score and the
 *	  confusion-matrix rates at a cut-off.
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "hugemem.h"
#include "metrics.h"

typedef struct ScoredRow
{
	double		score;
	double		label;
} ScoredRow;

/* A double's bits, mapped so that unsigned order is numeric order. */
static inline uint64
SortKey(double d)
{
	uint64		u;

	memcpy(&u, &d, sizeof(u));
	return (u & UINT64CONST(0x8000000000000000)) ? ~u : u | UINT64CONST(0x8000000000000000);
}

/*
 * Sort rows by score: a least-significant-digit radix sort on the score's
 * bits, 16 bits a pass (much faster than qsort on millions of rows).
 */
static void
SortByScore(ScoredRow *rows, int64 n)
{
	ScoredRow  *tmp = HugeAlloc(sizeof(ScoredRow) * Max(n, 1));
	int64	   *count = palloc(sizeof(int64) * 65536);
	ScoredRow  *src = rows;
	ScoredRow  *dst = tmp;

	for (int pass = 0; pass < 4; pass++)
	{
		int			shift = pass * 16;
		int64		sum = 0;

		CHECK_FOR_INTERRUPTS();
		memset(count, 0, sizeof(int64) * 65536);
		for (int64 i = 0; i < n; i++)
			count[(SortKey(src[i].score) >> shift) & 0xFFFF]++;
		for (int b = 0; b < 65536; b++)
		{
			int64		c = count[b];

			count[b] = sum;
			sum += c;
		}
		for (int64 i = 0; i < n; i++)
			dst[count[(SortKey(src[i].score) >> shift) & 0xFFFF]++] = src[i];
		{
			ScoredRow  *t = src;

			src = dst;
			dst = t;
		}
	}
	/* four passes: the sorted rows are back in rows */
	Assert(src == rows);
	HugeFree(tmp);
	pfree(count);
}

/*
 * Sort (score, label) pairs by score and walk the groups of tied scores
 * once: the Mann-Whitney rank sum with mid-ranks gives the AUC exactly, and
 * the cumulative class counts after each group give the KS statistic.
 */
static void
RankStatistics(const double *score, const double *label, int64 n,
			   double *auc, double *ks)
{
	ScoredRow  *rows;
	int64		npos = 0;
	int64		nneg;
	double		ranksum = 0.0;
	int64		cumpos = 0;
	int64		cumneg = 0;
	double		best = 0.0;
	int64		i = 0;

	rows = HugeAlloc(sizeof(ScoredRow) * Max(n, 1));
	for (int64 r = 0; r < n; r++)
	{
		rows[r].score = score[r];
		rows[r].label = label[r];
		npos += label[r] > 0.5;
	}
	nneg = n - npos;
	if (npos == 0 || nneg == 0)
	{
		*auc = NAN;
		*ks = NAN;
		HugeFree(rows);
		return;
	}

	SortByScore(rows, n);

	while (i < n)
	{
		int64		j = i;
		int64		gpos = 0;
		double		midrank;
		double		gap;

		/* j == i: a NaN score is not equal to itself, and must still advance */
		while (j < n && (j == i || rows[j].score == rows[i].score))
		{
			gpos += rows[j].label > 0.5;
			j++;
		}
		/* ranks i+1 .. j share the mid-rank */
		midrank = ((double) (i + 1) + (double) j) / 2.0;
		ranksum += midrank * gpos;
		cumpos += gpos;
		cumneg += (j - i) - gpos;
		gap = fabs((double) cumpos / npos - (double) cumneg / nneg);
		if (gap > best)
			best = gap;
		i = j;
	}

	*auc = (ranksum - (double) npos * (npos + 1) / 2.0) / ((double) npos * nneg);
	*ks = best;
	HugeFree(rows);
}

double
MetricsAuc(const double *score, const double *label, int64 n)
{
	double		auc;
	double		ks;

	RankStatistics(score, label, n, &auc, &ks);
	return auc;
}

void
MetricsCompute(const double *prob, const double *label, int64 n,
			   double threshold, CrMetrics *m)
{
	double		ll = 0.0;
	double		brier = 0.0;
	int64		tp = 0,
				fp = 0,
				tn = 0,
				fn = 0;

	memset(m, 0, sizeof(CrMetrics));
	m->rows = n;
	m->threshold = threshold;

	for (int64 i = 0; i < n; i++)
	{
		double		p = prob[i];
		double		pc = CrClampProbability(p);
		bool		pos = label[i] > 0.5;
		bool		pred = p >= threshold;

		ll -= pos ? log(pc) : log(1.0 - pc);
		brier += (p - label[i]) * (p - label[i]);
		if (pos)
		{
			m->positives++;
			if (pred)
				tp++;
			else
				fn++;
		}
		else
		{
			if (pred)
				fp++;
			else
				tn++;
		}
	}

	RankStatistics(prob, label, n, &m->auc, &m->ks);
	m->gini = 2.0 * m->auc - 1.0;
	m->base_rate = n > 0 ? (double) m->positives / n : NAN;
	m->log_loss = n > 0 ? ll / n : NAN;
	m->brier = n > 0 ? brier / n : NAN;
	m->accuracy = n > 0 ? (double) (tp + tn) / n : NAN;
	/* an empty denominator gives 0, as scikit-learn's zero_division default */
	m->precision = (tp + fp) > 0 ? (double) tp / (tp + fp) : 0.0;
	m->recall = (tp + fn) > 0 ? (double) tp / (tp + fn) : 0.0;
	m->f1 = (m->precision + m->recall) > 0
		? 2.0 * m->precision * m->recall / (m->precision + m->recall) : 0.0;
}

/*
 * Append a double as a JSON number in its shortest exact form (0.2, not
 * 0.20000000000000001); null when not finite.
 */
void
CrAppendDouble(StringInfo buf, double v)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	if (!isfinite(v))
	{
		appendStringInfoString(buf, "null");
		return;
	}
	double_to_shortest_decimal_buf(v, tmp);
	appendStringInfoString(buf, tmp);
}

static void
AppendNumber(StringInfo buf, const char *key, double v, bool comma)
{
	appendStringInfo(buf, "%s\"%s\": ", comma ? ", " : "", key);
	CrAppendDouble(buf, v);
}

/* A numeric that converts back to exactly the same double (finite d). */
Numeric
CrFloat8ToNumeric(double d)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(d, buf);
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* Append the metrics as "key": value pairs (no braces). */
void
MetricsAppendJson(StringInfo buf, const CrMetrics *m)
{
	AppendNumber(buf, "auc", m->auc, false);
	AppendNumber(buf, "ks", m->ks, true);
	AppendNumber(buf, "gini", m->gini, true);
	AppendNumber(buf, "log_loss", m->log_loss, true);
	AppendNumber(buf, "brier", m->brier, true);
	AppendNumber(buf, "accuracy", m->accuracy, true);
	AppendNumber(buf, "precision", m->precision, true);
	AppendNumber(buf, "recall", m->recall, true);
	AppendNumber(buf, "f1", m->f1, true);
	AppendNumber(buf, "threshold", m->threshold, true);
	AppendNumber(buf, "base_rate", m->base_rate, true);
	appendStringInfo(buf, ", \"rows\": " INT64_FORMAT ", \"positives\": " INT64_FORMAT,
					 m->rows, m->positives);
}
