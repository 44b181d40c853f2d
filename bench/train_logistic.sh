#!/bin/bash
# Logistic regression training: credit_risk.cr_train against scikit-learn and
# statsmodels on the same rows, and against a bare scan of the table.
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/train_logistic.sh [ROWS]
#
# ROWS (or BENCH_ROWS) is the synthetic table's size, 1,000,000 by default.
# BENCH_REPS (default 3) runs of each timed step on the synthetic table, and
# BENCH_REPS_SMALL (default 20) on the German data; the best and the median
# are reported.  Ours runs with credit_risk.threads threads.
# PYTHON (default /usr/bin/python3, Debian's, with python3-sklearn and
# python3-statsmodels) runs the references.  BENCH_KEEP=1 keeps the schema
# credit_risk_bench and the credit_risk_bench_* models afterwards.
#
# Needs a role that may CREATE EXTENSION credit_risk (if it is not there yet),
# create a schema and call cr_train.  See bench/README.md.
set -euo pipefail

rows=${1:-${BENCH_ROWS:-1000000}}
reps=${BENCH_REPS:-3}
reps_small=${BENCH_REPS_SMALL:-20}
python=${PYTHON:-/usr/bin/python3}
schema=credit_risk_bench

. "$(dirname "$0")/common.sh" logistic
root=$(dirname "$here")

bench_positive rows "$rows"
bench_positive BENCH_REPS "$reps"
bench_positive BENCH_REPS_SMALL "$reps_small"
bench_python "$python" "numpy sklearn statsmodels" "python3-sklearn python3-statsmodels"

"${psql[@]}" <<SQL
CREATE EXTENSION IF NOT EXISTS credit_risk;
CREATE SCHEMA IF NOT EXISTS $schema;
DELETE FROM credit_risk.models WHERE name LIKE 'credit\\_risk\\_bench\\_%';
SQL

t0=$(now)
"${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/synthetic_credit.sql"
build_s=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')

# The project's German credit loader; its \copy path is relative to the root.
# search_path holds only the bench schema, so its DROP TABLE cannot reach
# a german_credit table anywhere else.
(cd "$root" && PGOPTIONS="$PGOPTIONS -c search_path=$schema" \
	"${psql[@]}" -f test/data/german.sql)
"${psql[@]}" -c "VACUUM ANALYZE $schema.german_credit"

# timed KEY SQL [FILE]: psql lines that run SQL, send its rows to FILE
# (/dev/null by default) and record the wall time seen by the client into
# bench_timing.
timed()
{
	cat <<SQL
SELECT pg_catalog.clock_timestamp() AS bench_t0 \\gset
$2 \\g ${3:-/dev/null}
INSERT INTO bench_timing (what, seconds) VALUES ('$1', extract(epoch FROM pg_catalog.clock_timestamp() - :'bench_t0'::timestamptz));
SQL
}

# bench NAME TABLE LABEL PARAMS REPS
bench()
{
	local name=$1 table=$2 label=$3 params=$4 reps=$5
	local model=credit_risk_bench_$name
	local sum i

	# the floor's sum reads every feature column
	sum=$(psql -X -At -c "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ' + ' ORDER BY attnum)
	                        FROM pg_catalog.pg_attribute
	                       WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
	                         AND attname NOT IN ('$label', 'applicant_id')")
	{
		# cr_train reads through an SPI cursor, which never runs in
		# parallel: the floor is a scan in one backend too
		echo "SET max_parallel_workers_per_gather = 0;"
		echo "CREATE TEMP TABLE bench_timing (n serial, what text, seconds float8);"
		for i in $(seq 0 "$reps"); do
			# run 0 warms the cache and is not counted
			timed "count$i" "SELECT count(*) FROM $table"
			timed "sum$i" "SELECT sum($sum) FROM $table"
		done
		for i in $(seq 1 "$reps"); do
			timed "train$i" "SELECT * FROM credit_risk.cr_train('$model', '$table', '$label', 'logistic', NULL, '$params')"
		done
		cat <<SQL
SELECT pg_catalog.string_agg(pg_catalog.quote_ident(f), ', ' ORDER BY o) AS cols
  FROM credit_risk.cr_serving_version('$model') m, unnest(m.features) WITH ORDINALITY AS u(f, o) \\gset
COPY (SELECT feature, coefficient FROM credit_risk.cr_coefficients('$model'))
  TO STDOUT (FORMAT csv) \\g '$tmp/$name.coef.csv'
SQL
		timed export "COPY (SELECT $label, :cols FROM $table) TO STDOUT (FORMAT csv)" "'$tmp/$name.csv'"
		cat <<SQL
SELECT pg_catalog.json_build_object(
         'count_s', (SELECT min(seconds) FROM bench_timing WHERE what ~ '^count[1-9]'),
         'sum_s', (SELECT min(seconds) FROM bench_timing WHERE what ~ '^sum[1-9]'),
         'train_s', (SELECT min(seconds) FROM bench_timing WHERE what ~ '^train'),
         'train_times', (SELECT json_agg(seconds ORDER BY n) FROM bench_timing WHERE what ~ '^train'),
         'export_s', (SELECT seconds FROM bench_timing WHERE what = 'export'),
         'train_seconds', m.train_seconds,
         'threads', pg_catalog.current_setting('credit_risk.threads', true),
         'iterations', (m.metrics->>'iterations')::int)
  FROM credit_risk.cr_serving_version('$model') m;
SQL
	} > "$tmp/$name.psql"
	"${psql[@]}" -At -f "$tmp/$name.psql" > "$tmp/$name.ours.json"
	"$python" "$here/reference.py" fit "$tmp/$name.csv" "$tmp/$name.coef.csv" "$reps" "$tmp/$name.ref.json"
}

bench synthetic "$schema.credit" y '{"holdout": 0}' "$reps"
bench german "$schema.german_credit" bad '{"holdout": 0, "key": "applicant_id"}' "$reps_small"

bench_header "logistic training"
echo "b = best, m = median of $reps runs ($reps_small on German credit); synthetic table built in ${build_s} s"
echo
"$python" "$here/reference.py" report "$tmp"

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	"${psql[@]}" <<SQL
DROP SCHEMA $schema CASCADE;
DELETE FROM credit_risk.models WHERE name LIKE 'credit\\_risk\\_bench\\_%';
SQL
fi
