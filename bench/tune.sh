#!/bin/bash
# Hyper-parameter search: credit_risk.cr_tune (20 random trials, each scored
# by 5-fold cross-validation, the best refitted and registered) against
# scikit-learn's RandomizedSearchCV over xgboost.XGBClassifier (hist) with the
# same 20 parameter sets, the same folds count and the same threads: wall
# time, the best mean CV AUC, and peak memory, on two data shapes.
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/tune.sh [ROWS]
#
# ROWS (or BENCH_ROWS) is each table's size, 100,000 by default; every row
# takes part (holdout 0).  BENCH_SHAPES (default "credit continuous") picks
# the tables: credit is bench/synthetic_gbm.sql (credit-like: NULLs, many
# low-cardinality features), continuous is bench/synthetic_continuous.sql
# (20 independent normals, every value distinct).  BENCH_THREADS (default
# "1 2") lists the thread counts; BENCH_REPS (default 3) the timed runs of
# each side, every one in a fresh connection or process (the best and the
# median are reported).  BENCH_TRIALS (default 20) is the number of trials.
# PYTHON (default /usr/bin/python3, Debian's, with python3-xgboost,
# python3-sklearn and python3-pandas) runs the reference.  BENCH_KEEP=1 keeps
# the schema credit_risk_bench_tune and the bench_tune_* models.
#
# Ours is timed from the table (the rows are read by the search); theirs
# from numpy arrays already in memory.  The backend's peak memory is read
# from /proc/<pid>/status, so run it on the server's machine as root or as
# the server's OS user; elsewhere it reads n/a.  See bench/README.md.
set -euo pipefail

rows=${1:-${BENCH_ROWS:-100000}}
shapes=${BENCH_SHAPES:-credit continuous}
threads=${BENCH_THREADS:-1 2}
reps=${BENCH_REPS:-3}
trials=${BENCH_TRIALS:-20}
python=${PYTHON:-/usr/bin/python3}
schema=credit_risk_bench_tune

. "$(dirname "$0")/common.sh" tune

bench_positive rows "$rows"
bench_positive BENCH_REPS "$reps"
bench_positive BENCH_TRIALS "$trials"
for t in $threads; do
	bench_positive "each of BENCH_THREADS" "$t"
done
[ -n "${threads// /}" ] || { echo "BENCH_THREADS is empty" >&2; exit 2; }
bench_shapes "$shapes"
bench_python "$python" "numpy pandas sklearn xgboost" "python3-xgboost python3-sklearn python3-pandas"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# the space both sides draw from; n_trees is fixed at 100
search="{\"method\": \"random\", \"trials\": $trials, \"seed\": 1, \"space\": {
  \"max_depth\": [3, 8], \"learning_rate\": {\"log\": [0.01, 0.3]},
  \"subsample\": [0.6, 1.0], \"colsample_bytree\": [0.6, 1.0],
  \"min_child_weight\": {\"log\": [1, 20]}, \"lambda\": {\"log\": [0.1, 10]}}}"

"${psql[@]}" <<SQL
CREATE EXTENSION IF NOT EXISTS credit_risk;
CREATE SCHEMA IF NOT EXISTS $schema;
DELETE FROM credit_risk.models WHERE name LIKE 'bench\\_tune\\_%';
SQL

declare -A table features
t0=$(now)
for s in $shapes; do
	if [ "$s" = credit ]; then
		"${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/synthetic_gbm.sql"
		table[$s]=$schema.credit_gbm
	else
		"${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/synthetic_continuous.sql"
		table[$s]=$schema.continuous
	fi
	# every column but the id and the label, in table order
	features[$s]=$(psql -X -At -c "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum)
	                                FROM pg_catalog.pg_attribute
	                               WHERE attrelid = '${table[$s]}'::regclass AND attnum > 0 AND NOT attisdropped
	                                 AND attname NOT IN ('id', 'y')")
	# the same rows for the reference, label first, NULL as an empty field
	"${psql[@]}" -c "COPY (SELECT y, ${features[$s]} FROM ${table[$s]} ORDER BY id) TO STDOUT (FORMAT csv)" > "$tmp/$s.csv"
	"$python" "$here/tune_reference.py" prepare "$tmp" "$s"
	rm -f "$tmp/$s.csv"
	"${psql[@]}" -c "SELECT count(*) FROM ${table[$s]}" > /dev/null
done
build_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')

hwm="\`cat /proc/:pid/status 2>/dev/null | awk '/^VmHWM:/ { print \$2; f = 1 } END { if (!f) print \"null\" }'\`"
failed=0

# ours SHAPE THREADS REP: one cr_tune in a fresh connection; the backend's
# VmHWM (peak resident set) read just before and just after the call
ours()
{
	local s=$1 t=$2 k=$3 out=$tmp/ours_$1_t$2_r$3
	local params="{\"cv\": 5, \"holdout\": 0, \"n_trees\": 100, \"max_bin\": 256, \"threads\": $t}"

	if ! "${psql[@]}" -At > "$out.err" 2>&1 <<SQL
SELECT pg_catalog.pg_backend_pid() AS pid \\gset
\\set hwm0 $hwm
SELECT pg_catalog.clock_timestamp() AS t0 \\gset
CREATE TEMP TABLE r AS
SELECT * FROM credit_risk.cr_tune('bench_tune_$s', 'SELECT ${features[$s]}, y FROM ${table[$s]}', 'y',
                                  'gbm', NULL, '$search', '$params');
SELECT extract(epoch FROM pg_catalog.clock_timestamp() - :'t0'::timestamptz) AS wall \\gset
\\set hwm1 $hwm
SELECT pg_catalog.json_build_object(
         'wall_s', :wall, 'start_mb', :hwm0 / 1024.0, 'peak_mb', :hwm1 / 1024.0,
         'best_trial', (SELECT trial FROM r WHERE chosen),
         'best_auc', (SELECT metric FROM r WHERE chosen),
         'aucs', (SELECT pg_catalog.json_agg(metric ORDER BY trial) FROM r),
         'load_s', (SELECT (metrics ->> 'load_seconds')::float8 FROM credit_risk.models
                     WHERE name = 'bench_tune_$s' ORDER BY version DESC LIMIT 1))
  \\g '$out.json'
SELECT pg_catalog.json_agg(pg_catalog.json_build_object('trial', trial, 'params', params) ORDER BY trial)
  FROM r \\g '$tmp/trials_$s.json'
SQL
	then
		echo "cr_tune on $s with $t thread(s) failed:" >&2
		sed 's/^/  /' "$out.err" >&2
		rm -f "$out.json"
		failed=1
	fi
}

# one SHAPE: one cr_train of the first trial's params, no cv, 1 thread: the
# peak memory of a single fit, against which the search's is read
one()
{
	local s=$1 out=$tmp/one_$1_r1
	local params
	params=$("$python" -c "import json, sys; p = json.load(open(sys.argv[1]))[0]['params']; \
p.update({'holdout': 0, 'n_trees': 100, 'max_bin': 256, 'threads': 1}); print(json.dumps(p))" "$tmp/trials_$s.json")

	"${psql[@]}" -At > "$out.err" 2>&1 <<SQL || { echo "cr_train on $s failed:" >&2; sed 's/^/  /' "$out.err" >&2; failed=1; }
SELECT pg_catalog.pg_backend_pid() AS pid \\gset
SELECT pg_catalog.clock_timestamp() AS t0 \\gset
SELECT 1 FROM credit_risk.cr_train('bench_tune_one_$s', 'SELECT ${features[$s]}, y FROM ${table[$s]}', 'y',
                                   'gbm', NULL, '$params');
SELECT extract(epoch FROM pg_catalog.clock_timestamp() - :'t0'::timestamptz) AS wall \\gset
\\set hwm1 $hwm
SELECT pg_catalog.json_build_object('wall_s', :wall, 'peak_mb', :hwm1 / 1024.0) \\g '$out.json'
SQL
}

# ours and the reference alternate run by run, so that a drift in the
# machine's speed (virtual machines have them) reaches both sides alike;
# the reference takes the draws our run wrote
for s in $shapes; do
	for t in $threads; do
		for k in $(seq 1 "$reps"); do
			ours "$s" "$t" "$k"
			[ -f "$tmp/trials_$s.json" ] || continue
			"$python" "$here/tune_reference.py" search "$tmp" "$s" "$t" "$tmp/trials_$s.json" \
				"$tmp/theirs_${s}_t${t}_r$k.json" || failed=1
		done
	done
	if [ -f "$tmp/trials_$s.json" ]; then
		one "$s"
	fi
done

bench_header "hyper-parameter search"
echo "$rows rows per table, every row in the search (holdout 0); tables built and exported in ${build_s} s; $reps run(s) of each side"
echo "load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "search: $trials random trials (seed 1) over max_depth [3, 8], learning_rate log [0.01, 0.3], subsample [0.6, 1],"
echo "  colsample_bytree [0.6, 1], min_child_weight log [1, 20], lambda log [0.1, 10]; 100 trees, 256 bins, 5 stratified folds;"
echo "  the best trial refitted on every row (ours also registers it); theirs: RandomizedSearchCV(n_jobs=1) with cr_tune's draws"
echo
"$python" "$here/tune_reference.py" report "$tmp" "$shapes" "$threads"

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	"${psql[@]}" <<SQL
DROP SCHEMA $schema CASCADE;
DELETE FROM credit_risk.models WHERE name LIKE 'bench\\_tune\\_%';
DELETE FROM credit_risk.tuning_runs WHERE model_name LIKE 'bench\\_tune\\_%';
SQL
fi
exit $failed
