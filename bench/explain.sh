#!/bin/bash
# Explanations: cr_explain_batch (path-dependent TreeSHAP, every feature and
# the base) against XGBoost's predict(pred_contribs=True) on one core, on
# the same model: XGBoost trains it (100 trees of depth 6 by default) on
# the rows of bench/synthetic_gbm.sql, saves it, and cr_import_xgboost
# registers it.  A model trained here with the same parameters on the same
# rows is explained too (its leaves differ, so that ratio is also given per
# leaf).  Then single cr_explain calls against cr_predict on the imported
# model.
#
#   PGHOST=... PGPORT=... PGUSER=... PGDATABASE=... bench/explain.sh [ROWS]
#
# ROWS (or BENCH_ROWS): the table's size, 200,000 by default (80% train);
# BENCH_EXPLAIN (default 5,000): applicants explained; BENCH_REPS (default 3):
# timed runs of each side, best and median reported.  BENCH_TREES (100) and
# BENCH_DEPTH (6): the models' shape.  PYTHON (default
# /usr/bin/python3, with python3-xgboost and python3-pandas).
set -euo pipefail

rows=${1:-${BENCH_ROWS:-200000}}
explain=${BENCH_EXPLAIN:-5000}
trees=${BENCH_TREES:-100}
depth=${BENCH_DEPTH:-6}
reps=${BENCH_REPS:-3}
python=${PYTHON:-/usr/bin/python3}
schema=credit_risk_bench_explain
table=$schema.credit_gbm
gbm=bench_explain_gbm
imported=bench_explain_xgb

. "$(dirname "$0")/common.sh" explain

bench_positive rows "$rows"
bench_positive BENCH_EXPLAIN "$explain"
bench_positive BENCH_REPS "$reps"
bench_python "$python" "numpy pandas xgboost" "python3-xgboost python3-pandas"

"${psql[@]}" <<SQL
CREATE EXTENSION IF NOT EXISTS credit_risk;
CREATE SCHEMA IF NOT EXISTS $schema;
DELETE FROM credit_risk.models WHERE name IN ('$gbm', '$imported');
SQL
"${psql[@]}" -v rows="$rows" -v schema="$schema" -f "$here/synthetic_gbm.sql"
features=$(psql -X -At -c "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(attname), ', ' ORDER BY attnum)
                            FROM pg_catalog.pg_attribute
                           WHERE attrelid = '$table'::regclass AND attnum > 0 AND NOT attisdropped
                             AND attname NOT IN ('id', 'y')")
nfeat=$(awk -F', ' '{ print NF }' <<<"$features")

"${psql[@]}" -At <<SQL > /dev/null
SELECT 1 FROM credit_risk.cr_train('$gbm', 'SELECT $features, y FROM $table WHERE id % 5 <> 0', 'y', 'gbm', NULL,
    '{"holdout": 0, "n_trees": $trees, "max_depth": $depth, "learning_rate": 0.1, "max_bin": 256}');
SQL
ours_leaves=$(psql -X -At -c "SELECT count(*) FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t
                               WHERE m.name = '$gbm' AND t.feature IS NULL")

# the applicants explained: the first of the holdout
source="SELECT id, $features FROM $table WHERE id % 5 = 0 ORDER BY id LIMIT $explain"

# XGBoost: train, save, and time pred_contribs on one thread
psql -X -q -c "COPY (SELECT $features, y FROM $table WHERE id % 5 <> 0) TO STDOUT (FORMAT csv, HEADER)" > "$tmp/train.csv"
psql -X -q -c "COPY ($source) TO STDOUT (FORMAT csv, HEADER)" > "$tmp/explain.csv"
"$python" - "$tmp/train.csv" "$tmp/explain.csv" "$reps" "$trees" "$depth" "$tmp/model.json" > "$tmp/xgb.txt" <<'PY'
import sys, time
import numpy as np, pandas as pd, xgboost as xgb
train = pd.read_csv(sys.argv[1]); ex = pd.read_csv(sys.argv[2]).drop(columns=['id'])
X = train.drop(columns=['y']).to_numpy(dtype=float); y = train['y'].to_numpy()
b = xgb.train({'objective': 'binary:logistic', 'tree_method': 'hist', 'max_depth': int(sys.argv[5]),
               'eta': 0.1, 'max_bin': 256, 'nthread': 2}, xgb.DMatrix(X, label=y), int(sys.argv[4]))
b.save_model(sys.argv[6])
b.set_param({'nthread': 1})
d = xgb.DMatrix(ex.to_numpy(dtype=float))
times = []
for _ in range(int(sys.argv[3])):
    t = time.time(); c = b.predict(d, pred_contribs=True); times.append(time.time() - t)
leaves = sum(line.count('leaf=') for line in b.get_dump())
print(xgb.__version__, leaves, ' '.join('%.3f' % t for t in times), '%.6f' % c.sum())
PY
read -r xver xleaves _ < "$tmp/xgb.txt"
xtimes=$(cut -d' ' -f3-$((2 + reps)) "$tmp/xgb.txt")
xsum=$(awk '{ print $NF }' "$tmp/xgb.txt")

"${psql[@]}" -At <<SQL > /dev/null
\\set model \`cat '$tmp/model.json'\`
SELECT 1 FROM credit_risk.cr_import_xgboost('$imported', :'model'::jsonb,
    pg_catalog.string_to_array('$features', ', '));
SQL

# Times cr_explain_batch on model $1 $reps times; sets times and check.
explain_batch() {
	times=()
	for ((k = 0; k < reps; k++)); do
		t0=$(now)
		check=$(psql -X -At -c "SELECT count(*) || ' ' || round(sum(contribution)::numeric, 6)
		                          FROM credit_risk.cr_explain_batch('$1', \$\$$source\$\$, 'id', NULL)")
		times+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')")
	done
}
explain_batch "$imported"; ours=("${times[@]}"); icheck=$check
explain_batch "$gbm"; trained=("${times[@]}"); tcheck=$check

# single calls: one applicant a statement, in one session
single=$(psql -X -At <<SQL
\\timing on
SELECT sum(x) FROM (SELECT (SELECT sum(e.contribution) FROM credit_risk.cr_explain('$imported', t, NULL) e) x
                      FROM (SELECT * FROM $table WHERE id % 5 = 0 ORDER BY id LIMIT 2000) t) s;
SELECT sum(x) FROM (SELECT (SELECT sum(e.contribution) FROM credit_risk.cr_explain('$imported', t) e) x
                      FROM (SELECT * FROM $table WHERE id % 5 = 0 ORDER BY id LIMIT 2000) t) s;
SELECT sum(credit_risk.cr_predict('$imported', t)) FROM (SELECT * FROM $table WHERE id % 5 = 0 ORDER BY id LIMIT 2000) t;
SQL
)
explain_ms=$(grep -o 'Time: [0-9.]*' <<<"$single" | sed -n 1p | cut -d' ' -f2)
top4_ms=$(grep -o 'Time: [0-9.]*' <<<"$single" | sed -n 2p | cut -d' ' -f2)
predict_ms=$(grep -o 'Time: [0-9.]*' <<<"$single" | sed -n 3p | cut -d' ' -f2)

stats() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s", v[1], m }'; }
read -r ob om <<<"$(echo "${ours[*]}" | stats)"
read -r tb tm <<<"$(echo "${trained[*]}" | stats)"
read -r xb xm <<<"$(echo "$xtimes" | stats)"

bench_header explanation
echo "$rows rows ($nfeat features), $trees trees of depth $depth trained on 80%; $explain holdout applicants explained, every feature and the base; $reps runs"
echo
row() {
	printf '%-50s %8s %9s %9s %12.1f %14.1f\n' "$1" "$2" "$3" "$4" \
		"$(awk -v t="$3" -v n="$explain" 'BEGIN { print t / n * 1e6 }')" \
		"$(awk -v t="$3" -v n="$explain" -v l="$2" 'BEGIN { print t / n / l * 1e9 }')"
}
printf '%-50s %8s %9s %9s %12s %14s\n' side leaves "best s" "median s" "us/applicant" "ns/leaf/appl."
row "XGBoost $xver pred_contribs (nthread=1)" "$xleaves" "$xb" "$xm"
row "cr_explain_batch, the same model imported" "$xleaves" "$ob" "$om"
row "cr_explain_batch, a model trained here" "$ours_leaves" "$tb" "$tm"
echo
awk -v o="$ob" -v x="$xb" 'BEGIN {
	printf "same model: XGBoost time / ours (best) = %.2f (above 1: ours faster)\n", x / o }'
awk -v o="$tb" -v x="$xb" -v ol="$ours_leaves" -v xl="$xleaves" 'BEGIN {
	printf "model trained here: XGBoost time / ours per leaf = %.2f\n", (x / xl) / (o / ol) }'
awk -v e="$explain_ms" -v f="$top4_ms" -v p="$predict_ms" 'BEGIN {
	printf "single calls on the imported model, 2,000 in one session: cr_explain every feature %.0f us, top 4 %.0f us, cr_predict %.1f us each\n", e / 2000 * 1000, f / 2000 * 1000, p / 2000 * 1000 }'
echo "sum of contributions: XGBoost $xsum, imported ${icheck#* } (rows ${icheck% *}); runs: XGBoost $xtimes; imported ${ours[*]}; trained ${trained[*]}"

if [ "${BENCH_KEEP:-0}" != 1 ]; then
	"${psql[@]}" -c "DELETE FROM credit_risk.models WHERE name IN ('$gbm', '$imported')" -c "DROP SCHEMA $schema CASCADE"
fi
