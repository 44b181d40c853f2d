#!/bin/bash
# Gradient-boosted trees: credit_risk.cr_train(..., 'gbm', ...) against
# XGBoost (Debian's python3-xgboost) with the same parameters on the same
# rows: wall time, holdout AUC and peak memory, at 1 and 2 threads.
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/train_gbm.sh [ROWS]
#
# ROWS (or BENCH_ROWS) is each table's size, 1,000,000 by default; 80% of
# it trains, 20% (id % 5 = 0) is the holdout.  BENCH_SHAPES (default
# "credit continuous") picks the tables: credit is bench/synthetic_gbm.sql
# (credit-like: NULLs, many low-cardinality features), continuous is
# bench/synthetic_continuous.sql (20 independent normals, every value
# distinct).  BENCH_THREADS (default "1 2") lists the thread counts;
# BENCH_REPS (default 3) the timed runs of each side at each count, every
# one in a fresh connection or process (the best and the median time and
# the largest peak are reported).  PYTHON (default
# /usr/bin/python3, Debian's, with python3-xgboost, python3-sklearn and
# python3-pandas) runs the reference.  BENCH_KEEP=1 keeps the schema
# credit_risk_bench_gbm and the bench_gbm_* models afterwards.
#
# The backend's peak memory is read from /proc/<pid>/status, so run it on the
# server's machine as root or as the server's OS user; elsewhere it reads n/a.
# See bench/README.md.
set -euo pipefail

rows=${1:-${BENCH_ROWS:-1000000}}
shapes=${BENCH_SHAPES:-credit continuous}
threads=${BENCH_THREADS:-1 2}
reps=${BENCH_REPS:-3}
python=${PYTHON:-/usr/bin/python3}
schema=credit_risk_bench_gbm

. "$(dirname "$0")/common.sh" gbm

bench_positive rows "$rows"
bench_positive BENCH_REPS "$reps"
for t in $threads; do
	bench_positive "each of BENCH_THREADS" "$t"
done
[ -n "${threads// /}" ] || { echo "BENCH_THREADS is empty" >&2; exit 2; }
bench_shapes "$shapes"
bench_python "$python" "numpy pandas sklearn xgboost" "python3-xgboost python3-sklearn python3-pandas"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

"${psql[@]}" <<SQL
CREATE EXTENSION IF NOT EXISTS credit_risk;
CREATE SCHEMA IF NOT EXISTS $schema;
DELETE FROM credit_risk.models WHERE name LIKE 'bench\\_gbm\\_%';
SQL

t0=$(now)
for shape in $shapes; do
	case $shape in
		credit) "${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/synthetic_gbm.sql" ;;
		continuous) "${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/synthetic_continuous.sql" ;;
	esac
done
build_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')

# every shape in turn: export, prepare, our runs, theirs (in $tmp/$shape)
top=$tmp
for shape in $shapes; do
tmp=$top/$shape
mkdir -p "$tmp"
case $shape in
	credit) table=$schema.credit_gbm ;;
	continuous) table=$schema.continuous ;;
esac

# every column but the id and the label, in table order
features=$(psql -X -At -c "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum)
                            FROM pg_catalog.pg_attribute
                           WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
                             AND attname NOT IN ('id', 'y')")

# the same rows for XGBoost, label first, NULL as an empty field
"${psql[@]}" <<SQL
COPY (SELECT y, $features FROM $table WHERE id % 5 <> 0 ORDER BY id) TO STDOUT (FORMAT csv) \\g '$tmp/train.csv'
COPY (SELECT y, $features FROM $table WHERE id % 5 = 0 ORDER BY id) TO STDOUT (FORMAT csv) \\g '$tmp/holdout.csv'
SQL
"$python" "$here/xgb_reference.py" prepare "$tmp"
rm -f "$tmp/train.csv" "$tmp/holdout.csv"

# warm the OS page cache with the table before the first timed run
"${psql[@]}" -c "SELECT count(*) FROM $table" > /dev/null

# ours THREADS REP: one cr_train in a fresh connection.  The backend's
# VmHWM (peak resident set) is read through a shell command from psql, just
# before and just after the call; a fresh backend's high-water mark is its
# own, so the second reading is this training's peak.
failed=0
ours()
{
	local t=$1 k=$2 model=bench_gbm_${shape}_t$1
	local params="{\"holdout\": 0, \"n_trees\": 100, \"max_depth\": 6, \"learning_rate\": 0.1, \"max_bin\": 256, \"threads\": $t}"
	local hwm="\`cat /proc/:pid/status 2>/dev/null | awk '/^VmHWM:/ { print \$2; f = 1 } END { if (!f) print \"null\" }'\`"

	if ! "${psql[@]}" -At > "$tmp/ours_t${t}_r$k.err" 2>&1 <<SQL
SELECT pg_catalog.pg_backend_pid() AS pid \\gset
\\set hwm0 $hwm
SELECT pg_catalog.clock_timestamp() AS t0 \\gset
SELECT id AS model_id
  FROM credit_risk.cr_train('$model', 'SELECT $features, y FROM $table WHERE id % 5 <> 0',
                            'y', 'gbm', NULL, '$params') \\gset
SELECT extract(epoch FROM pg_catalog.clock_timestamp() - :'t0'::timestamptz) AS wall \\gset
\\set hwm1 $hwm
SELECT pg_catalog.json_build_object(
         'wall_s', :wall, 'version', version, 'train_rows', train_rows,
         'holdout_rows', holdout_rows, 'train_seconds', train_seconds, 'metrics', metrics,
         'start_mb', :hwm0 / 1024.0, 'peak_mb', :hwm1 / 1024.0)
  FROM credit_risk.models WHERE id = :model_id \\g '$tmp/ours_t${t}_r$k.json'
SQL
	then
		echo "cr_train with $t thread(s) failed:" >&2
		sed 's/^/  /' "$tmp/ours_t${t}_r$k.err" >&2
		rm -f "$tmp/ours_t${t}_r$k.json"
		failed=1
		return
	fi

	[ "$k" = "$reps" ] || return 0
	# the holdout rows, scored by the model just trained, in the export's order
	"${psql[@]}" -At <<SQL
SELECT pg_catalog.clock_timestamp() AS t0 \\gset
COPY (SELECT y, credit_risk.cr_predict('$model', t) FROM $table t WHERE id % 5 = 0 ORDER BY id)
  TO STDOUT (FORMAT csv) \\g '$tmp/ours_t$t.scores.csv'
SELECT pg_catalog.json_build_object('score_s', extract(epoch FROM pg_catalog.clock_timestamp() - :'t0'::timestamptz))
  \\g '$tmp/ours_t$t.score.json'
SQL
}

# ours and XGBoost alternate run by run, so that a drift in the machine's
# speed (virtual machines have them) reaches both sides alike
for t in $threads; do
	for k in $(seq 1 "$reps"); do
		ours "$t" "$k"
		"$python" "$here/xgb_reference.py" train "$tmp" "$t" dmatrix "$tmp/xgb_dmatrix_t${t}_r$k.json"
	done
	"$python" "$here/xgb_reference.py" train "$tmp" "$t" quantile "$tmp/xgb_quantile_t${t}_r1.json"
done
done
tmp=$top

bench_header "gradient-boosted trees"
echo "$rows rows per table, tables built in ${build_s} s; $reps run(s) of each side"
echo "load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "parameters: 100 trees, max_depth 6, learning_rate 0.1, max_bin 256, lambda 1, gamma 0, min_child_weight 1, base_score = training base rate; holdout 0 (train on id % 5 <> 0, score id % 5 = 0)"
for shape in $shapes; do
	echo
	echo "== $shape"
	"$python" "$here/xgb_reference.py" report "$tmp/$shape" $threads
done

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	"${psql[@]}" <<SQL
DROP SCHEMA $schema CASCADE;
DELETE FROM credit_risk.models WHERE name LIKE 'bench\\_gbm\\_%';
SQL
fi
exit $failed
