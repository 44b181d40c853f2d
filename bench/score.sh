#!/bin/bash
# Scoring throughput and latency: credit_risk.cr_predict (row form) and
# cr_predict_batch over a 1,000,000-row table, against a bare scan of the
# same table and XGBoost's predict; then bench/latency (single calls over
# libpq, against SELECT 1) with 1 and 8 clients.
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/score.sh [ROWS]
#
# ROWS (or BENCH_ROWS): each table's size, 1,000,000 by default, built in
# schema credit_risk_bench_score (with BENCH_REUSE=1 an existing table of
# that size is kept).  BENCH_SHAPES (default "credit continuous") picks the
# tables: credit is bench/synthetic_gbm.sql (credit-like: NULLs, many
# low-cardinality features), continuous is bench/synthetic_continuous.sql
# (20 independent normals).  Batch scoring of trees is timed with every
# credit_risk.simd path the CPU has (off, avx2, avx512) and the default
# (auto).  BENCH_REPS (default 3): timed runs of each scorer, the best and
# the median reported.
# BENCH_CLIENTS (default "1 8") and BENCH_SECONDS (default 10): the latency
# runs, on the last shape's models; BENCH_CLIENTS="" skips them.  PYTHON (default /usr/bin/python3,
# Debian's, with python3-xgboost and python3-pandas).  BENCH_KEEP=1 keeps
# the schema and the bench_score_* models afterwards.
#
# Needs bench/latency built (make -C bench) unless BENCH_CLIENTS is empty.
# See bench/README.md.
set -euo pipefail

rows=${1:-${BENCH_ROWS:-1000000}}
reps=${BENCH_REPS:-3}
clients=${BENCH_CLIENTS-1 8}
seconds=${BENCH_SECONDS:-10}
python=${PYTHON:-/usr/bin/python3}
schema=credit_risk_bench_score
shapes=${BENCH_SHAPES:-credit continuous}
lr=bench_score_lr
gbm=bench_score_gbm

. "$(dirname "$0")/common.sh" score

bench_positive rows "$rows"
bench_positive BENCH_REPS "$reps"
if [ -n "${clients// /}" ] && [ ! -x "$here/latency" ]; then
	echo "$here/latency is missing: run make -C bench first" >&2
	exit 1
fi
bench_shapes "$shapes"
bench_python "$python" "numpy pandas xgboost" "python3-xgboost python3-pandas"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

"${psql[@]}" <<SQL
CREATE EXTENSION IF NOT EXISTS credit_risk;
CREATE SCHEMA IF NOT EXISTS $schema;
DELETE FROM credit_risk.models WHERE name IN ('$lr', '$gbm');
SQL

# the batch scorers this CPU runs (a path it lacks is refused)
paths=
for p in off avx2 avx512; do
	if psql -X -q -c "LOAD 'credit_risk'; SET credit_risk.simd = $p" > /dev/null 2>&1; then
		paths="$paths $p"
	fi
done

bench_header scoring
echo "credit_risk.simd paths:$paths (auto: the last, the widest)"
echo "load average (1, 5, 15 min) at the start: $load_start"

top=$tmp
for shape in $shapes; do
tmp=$top/$shape
mkdir -p "$tmp"
case $shape in
	credit) table=$schema.credit_gbm; script=synthetic_gbm.sql ;;
	continuous) table=$schema.continuous; script=synthetic_continuous.sql ;;
esac

# each shape trains the two models afresh: version 1, the champion
"${psql[@]}" -c "DELETE FROM credit_risk.models WHERE name IN ('$lr', '$gbm')"

have=0
if [ "$(psql -X -At -c "SELECT to_regclass('$table') IS NOT NULL")" = t ]; then
	have=$(psql -X -At -c "SELECT count(*) FROM $table")
fi
if [ "${BENCH_REUSE:-0}" = 1 ] && [ "$have" = "$rows" ]; then
	build="table reused"
else
	t0=$(now)
	"${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/$script"
	build="table built in $(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
fi

features=$(psql -X -At -c "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum)
                            FROM pg_catalog.pg_attribute
                           WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
                             AND attname NOT IN ('id', 'y')")
plus=${features//, / + }

# both models on the same 80% of the rows
gbm_params='{"holdout": 0, "n_trees": 100, "max_depth": 6, "learning_rate": 0.1, "max_bin": 256, "threads": 2}'
"${psql[@]}" -At > "$tmp/train.txt" <<SQL
SELECT 'logistic: ' || train_rows || ' rows, trained in ' || round(train_seconds::numeric, 2) || ' s'
  FROM credit_risk.cr_train('$lr', 'SELECT $features, y FROM $table WHERE id % 5 <> 0',
                            'y', 'logistic', NULL, '{"holdout": 0}');
SELECT 'GBM: ' || train_rows || ' rows, ' || (metrics->>'n_trees') || ' trees, '
       || (metrics->>'nodes') || ' nodes, trained in ' || round(train_seconds::numeric, 2)
       || ' s'
  FROM credit_risk.cr_train('$gbm', 'SELECT $features, y FROM $table WHERE id % 5 <> 0',
                            'y', 'gbm', NULL, '$gbm_params');
SELECT 'model bytes: ' || string_agg(name || ' ' || length(model) || ' (' || pg_column_size(model)
                                     || ' as stored)', ', ' ORDER BY name)
  FROM credit_risk.models WHERE name IN ('$lr', '$gbm');
SQL

# XGBoost: the same training rows, and every row to score, in the GBM's
# feature order (the table's), NULL as an empty field
"${psql[@]}" <<SQL
COPY (SELECT y, $features FROM $table WHERE id % 5 <> 0 ORDER BY id) TO STDOUT (FORMAT csv) \\g '$tmp/train.csv'
COPY (SELECT $features FROM $table ORDER BY id) TO STDOUT (FORMAT csv) \\g '$tmp/all.csv'
SQL
"$python" "$here/score_xgb.py" xgb "$tmp" "$reps"
rm -f "$tmp/train.csv" "$tmp/all.csv"

# ONE session, no parallel workers.  cr_predict_batch materializes its
# result in a tuplestore, which spills to a temporary file above work_mem;
# BENCH_WORK_MEM sets work_mem (default: the server's setting)
work_mem=${BENCH_WORK_MEM:-$(psql -X -At -c "SHOW work_mem")}
{
	echo "SET max_parallel_workers_per_gather = 0;"
	echo "SET work_mem = '$work_mem';"
	echo "SELECT sum($plus) FROM $table \\g /dev/null"
	# every scorer once a round, each round starting one scorer later, so
	# that no scorer always runs first (or right after the same one)
	names=() queries=() simds=()
	add()
	{
		names+=("$1") queries+=("$2") simds+=("${3:-auto}")
	}
	add floor "SELECT count(*) AS n, sum($plus) AS s FROM $table"
	add lr_row "SELECT count(*) AS n, sum(credit_risk.cr_predict('$lr', t)) AS s FROM $table t"
	add lr_batch "SELECT count(*) AS n, sum(default_probability) AS s FROM credit_risk.cr_predict_batch('$lr', '$table')"
	add gbm_row "SELECT count(*) AS n, sum(credit_risk.cr_predict('$gbm', t)) AS s FROM $table t"
	add gbm_batch "SELECT count(*) AS n, sum(default_probability) AS s FROM credit_risk.cr_predict_batch('$gbm', '$table')"
	for p in $paths; do
		add "gbm_batch_$p" "SELECT count(*) AS n, sum(default_probability) AS s FROM credit_risk.cr_predict_batch('$gbm', '$table')" "$p"
	done
	for k in $(seq 1 "$reps"); do
		for j in "${!names[@]}"; do
			i=$(( (j + k - 1) % ${#names[@]} ))
			echo "SET credit_risk.simd = ${simds[$i]};"
			echo "SELECT pg_catalog.clock_timestamp() AS t0 \\gset"
			echo "${queries[$i]} \\gset"
			echo "SELECT '${names[$i]}', :n, :'s', extract(epoch FROM pg_catalog.clock_timestamp() - :'t0'::timestamptz);"
		done
	done
	echo "RESET credit_risk.simd;"
} > "$tmp/timed.sql"
"${psql[@]}" -At -F $'\t' -f "$tmp/timed.sql" > "$tmp/runs.tsv"
awk -F '\t' '{ if (!($1 in rows)) { order[++n] = $1; rows[$1] = $2; sum[$1] = $3 }
               t[$1] = t[$1] "\t" $4 }
             END { for (i = 1; i <= n; i++) print order[i] "\t" rows[order[i]] "\t" sum[order[i]] t[order[i]] }' \
	"$tmp/runs.tsv" > "$tmp/sql.tsv"

echo
echo "== $shape: $rows rows x 20 features ($table), $build; $reps run(s) of each scorer"
cat "$tmp/train.txt"
echo "one session: max_parallel_workers_per_gather = 0, work_mem = $work_mem (cr_predict_batch materializes its result); every row of $table scored"
echo
"$python" "$here/score_xgb.py" report "$tmp"

# Parallel scoring: the same row-form query with the server's parallel
# settings; its plan, and its sum against the serial one
echo
echo "parallel plan of the GBM row form (server's max_parallel_workers_per_gather):"
"${psql[@]}" -At -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON)
  SELECT sum(credit_risk.cr_predict('$gbm', t)) FROM $table t" |
	grep -E 'Gather|Workers|Parallel|Execution Time' | sed 's/^/  /'
# a float sum depends on the order of its terms; a sum of hashes of each
# probability's exact text does not
check="SELECT count(*), sum(hashtextextended(p::text, 0)) FROM (SELECT credit_risk.cr_predict('$gbm', t) AS p FROM $table t) s"
par=$(psql -X -At -c "$check")
ser=$(PGOPTIONS="${PGOPTIONS:-} -c max_parallel_workers_per_gather=0" psql -X -At -c "$check")
echo "  rows and checksum of every probability: parallel $par, serial $ser ($( [ "$par" = "$ser" ] && echo identical || echo DIFFERENT))"
done
tmp=$top

fresh=${BENCH_FRESH:-20}
for c in $clients; do
	echo
	echo "\$ bench/latency -c $c -T $seconds -n $fresh -l $lr -g $gbm -t $table"
	"$here/latency" -c "$c" -T "$seconds" -n "$fresh" -l "$lr" -g "$gbm" -t "$table"
	fresh=0
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	"${psql[@]}" <<SQL
DROP SCHEMA $schema CASCADE;
DELETE FROM credit_risk.models WHERE name IN ('$lr', '$gbm');
SQL
fi
