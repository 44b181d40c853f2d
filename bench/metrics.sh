#!/bin/bash
# What counting every scoring call in credit_risk.serving_stats costs, two
# ways, each with credit_risk.metrics on and off in alternating order,
# BENCH_ROUNDS times (default 5), the best and the median reported:
#  1. inside the server, without a network in between: 1,000,000 calls of
#     cr_predict's row form in one statement, by 1 and by 2 sessions at
#     once (nanoseconds per call, and the difference on - off);
#  2. bench/latency with BENCH_CLIENTS clients (default 8): TPS of single
#     calls over libpq, against SELECT 1 (which metrics cannot touch: its
#     ratio shows the noise); BENCH_CLIENTS="" skips these runs.
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/metrics.sh
#
# The server must preload credit_risk (shared_preload_libraries) and the
# user must be a superuser (credit_risk.metrics is SUSET).  Two shapes of
# model on one table (bench/synthetic_gbm.sql, 20,000 rows): a logistic
# regression (a call of a few microseconds of scoring, where the counting
# weighs most) and 100 trees of depth 6; array and jsonb forms.  BENCH_SECONDS
# (default 5) per workload and round.  Needs bench/latency (make -C bench).
set -euo pipefail

rounds=${BENCH_ROUNDS:-5}
clients=${BENCH_CLIENTS-8}
seconds=${BENCH_SECONDS:-5}
schema=credit_risk_bench_metrics
lr=bench_metrics_lr
gbm=bench_metrics_gbm
workloads=select1,lr_array,lr_jsonb,gbm_array,gbm_jsonb

. "$(dirname "$0")/common.sh" metrics

bench_positive BENCH_ROUNDS "$rounds"
[ -z "$clients" ] || bench_positive BENCH_CLIENTS "$clients"
bench_positive BENCH_SECONDS "$seconds"
[ -x "$here/latency" ] || { echo "$here/latency is missing: run make -C bench first" >&2; exit 1; }

"${psql[@]}" -c "CREATE EXTENSION IF NOT EXISTS credit_risk"
if ! psql -X -q -At -c "SELECT count(*) FROM credit_risk.serving_stats" > /dev/null 2>&1; then
	echo "the server does not preload credit_risk: add it to shared_preload_libraries and restart" >&2
	exit 1
fi

"${psql[@]}" <<SQL
CREATE SCHEMA IF NOT EXISTS $schema;
DELETE FROM credit_risk.models WHERE name IN ('$lr', '$gbm');
SQL
"${psql[@]}" -v rows=20000 -v schema="$schema" -f "$here/synthetic_gbm.sql"
"${psql[@]}" -o /dev/null <<SQL
SET search_path = $schema;
SELECT FROM credit_risk.cr_train('$lr', '$schema.credit_gbm', 'y', 'logistic', NULL, '{"key": "id"}');
SELECT FROM credit_risk.cr_train('$gbm', '$schema.credit_gbm', 'y', 'gbm', NULL,
                                         '{"key": "id", "n_trees": 100, "max_depth": 6}');
SQL

bench_header "serving statistics"
echo

# 1. a million calls in one statement; with 2 sessions, both at once
loop_sql()
{
	echo "SET credit_risk.metrics = $2;"
	echo "SELECT sum(credit_risk.cr_predict('$1', t)) FROM (SELECT * FROM $schema.credit_gbm LIMIT 10000) t, generate_series(1, 100);"
}
loop_ns()
{
	# model metrics sessions: prints ns per call (the slowest session's time)
	local start end
	start=$(now)
	for s in $(seq 1 "$3"); do
		loop_sql "$1" "$2" | psql -X -q -o /dev/null &
	done
	wait
	end=$(now)
	python3 -c "print(round(($end - $start) * 1e9 / 1e6))"
}
: > "$tmp/loop.txt"
for sessions in 1 2; do
	for r in $(seq 1 "$rounds"); do
		for m in "$lr" "$gbm"; do
			if [ $((r % 2)) -eq 1 ]; then order="on off"; else order="off on"; fi
			for setting in $order; do
				echo "$sessions $m $setting $(loop_ns "$m" "$setting" "$sessions")" >> "$tmp/loop.txt"
			done
		done
	done
done
echo "1,000,000 calls of cr_predict(name, row) in one statement per session (ns per call, wall time of the slowest session):"
python3 - "$tmp/loop.txt" <<'PY'
import sys, statistics
by = {}
for l in open(sys.argv[1]):
    s, m, setting, ns = l.split()
    by.setdefault((s, m, setting), []).append(float(ns))
print("%-9s %-20s %9s %9s %9s %9s %12s" % ("sessions", "model", "on best", "on med", "off best", "off med", "on-off med"))
for (s, m, setting) in sorted(by):
    if setting != "on":
        continue
    on, off = by[(s, m, "on")], by[(s, m, "off")]
    print("%-9s %-20s %9.0f %9.0f %9.0f %9.0f %+12.0f" % (s, m, min(on), statistics.median(on), min(off),
                                                    statistics.median(off), statistics.median(on) - statistics.median(off)))
PY
echo
if [ -z "$clients" ]; then
	echo "BENCH_CLIENTS is empty: no latency runs"
else
echo "$clients client(s), $seconds s per workload, $rounds rounds; metrics on and off alternate within a round"
echo

# one latency run with metrics on or off; appends "round metrics workload tps" lines
run()
{
	PGOPTIONS="$PGOPTIONS -c credit_risk.metrics=$2" "$here/latency" -c "$clients" -T "$seconds" -n 0 \
		-l "$lr" -g "$gbm" -t "$schema.credit_gbm" -W "$workloads" > "$tmp/run.txt"
	awk -v r="$1" -v m="$2" '$2 ~ /^[0-9]+$/ && $1 ~ /^(select1|lr_|gbm_)/ { print r, m, $1, $4 }' "$tmp/run.txt" >> "$tmp/tps.txt"
}

: > "$tmp/tps.txt"
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then run "$r" on; run "$r" off; else run "$r" off; run "$r" on; fi
done
"${psql[@]}" -At -c "SELECT 'counted while on: ' || string_agg(model || ' ' || calls || ' calls', ', ' ORDER BY model)
                       FROM credit_risk.serving_stats WHERE model IN ('$lr', '$gbm')"
echo

# best and median TPS per workload and setting, and off / on of each
python3 - "$tmp/tps.txt" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for r, m, w, tps in rows:
    by.setdefault((w, m), []).append(float(tps))
order = []
for r, m, w, tps in rows:
    if w not in order:
        order.append(w)
print("%-10s %12s %12s %12s %12s %10s %10s" % ("workload", "on best", "on median", "off best", "off median",
                                              "on/off best", "on/off med"))
for w in order:
    on, off = by[(w, "on")], by[(w, "off")]
    print("%-10s %12.0f %12.0f %12.0f %12.0f %10.3f %10.3f" % (
        w, max(on), statistics.median(on), max(off), statistics.median(off),
        max(on) / max(off), statistics.median(on) / statistics.median(off)))
PY
echo
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	"${psql[@]}" -c "DROP SCHEMA $schema CASCADE" -c "DELETE FROM credit_risk.models WHERE name IN ('$lr', '$gbm')" 2>/dev/null || true
fi
