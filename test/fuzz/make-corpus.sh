#!/bin/bash
# make-corpus.sh: train small models of both algorithms in a throwaway
# PostgreSQL 15 cluster and write their bytes (credit_risk.models.model) as
# seed files for the decoder fuzzer, one file per model version, into
# corpus/decoder/ next to this script.
#
# Uses the credit_risk extension installed in the system's PostgreSQL 15;
# it installs nothing.  initdb refuses to run as root, so as root the
# cluster is run as the postgres user (runuser); as anyone else, as
# yourself.
#
#	test/fuzz/make-corpus.sh [port]       port in 56100-56199, default 56142
#
# PGBIN overrides the server's bin directory; CR_EXTENSION the name of the
# extension to create (default credit_risk; a build installed under another
# name, with its own control file, makes seeds without replacing the
# system's).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out="$here/corpus/decoder"
port=${1:-56142}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

if ! [[ "$port" =~ ^561[0-9][0-9]$ ]]; then
	echo "make-corpus.sh: port $port is not in 56100-56199" >&2
	exit 2
fi
if [ ! -x "$PGBIN/initdb" ]; then
	echo "make-corpus.sh: no initdb in $PGBIN (set PGBIN)" >&2
	exit 2
fi

if [ "$(id -u)" -eq 0 ]; then
	if ! id postgres >/dev/null 2>&1; then
		echo "make-corpus.sh: running as root and there is no postgres user to run the cluster as" >&2
		exit 2
	fi
	as_db() { runuser -u postgres -- "$@"; }
	dbuser=postgres
else
	as_db() { "$@"; }
	dbuser=$(id -un)
fi

tmp=$(mktemp -d /tmp/cr-fuzz-corpus.XXXXXX)
chmod 755 "$tmp"
[ "$(id -u)" -eq 0 ] && chown postgres: "$tmp"

cleanup() {
	if [ -f "$tmp/data/postmaster.pid" ]; then
		as_db "$PGBIN/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

as_db "$PGBIN/initdb" -D "$tmp/data" -U "$dbuser" --auth=trust -E UTF8 \
	--locale=C --no-sync >"$tmp/initdb.log" 2>&1 ||
	{ cat "$tmp/initdb.log" >&2; exit 1; }
as_db "$PGBIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
	-o "-p $port -k $tmp -c listen_addresses='' -c fsync=off" start >/dev/null ||
	{ cat "$tmp/server.log" >&2; exit 1; }

psql_db() {
	as_db "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" -U "$dbuser" -d postgres "$@"
}

# Small models: a few features, few and shallow trees, so each seed is a
# few kB and mutates quickly.  Between them they cover both algorithms,
# missing values (imputation, default directions), monotone constraints,
# depths 1 to 12 (deeper than 10 has no dense copy), one-leaf trees,
# custom risk bands and scorecard scaling, names that need escaping, and
# categorical features (format 2: levels, "other", category splits one
# level against the rest and by sorted prefix, with NULLs and early
# stopping), and scorecards (format 3: WoE bins of numbers and of levels).
psql_db -c "CREATE EXTENSION ${CR_EXTENSION:-credit_risk}" >/dev/null
psql_db >/dev/null <<'SQL'
SET client_min_messages = warning;

CREATE TABLE applicants AS
SELECT i AS id,
       CASE WHEN i % 7 = 0 THEN NULL ELSE ((i * 7919) % 1009) / 1009.0 END AS util,
       ((i * 104729) % 1013) / 1013.0 AS history,
       CASE WHEN i % 11 = 0 THEN NULL ELSE (i % 50)::float8 END AS age_band,
       ((i * 31) % 17)::float8 AS inquiries,
       ((i * 2654435761::bigint) % 997) / 997.0 AS noise,
       CASE WHEN i % 13 = 0 THEN NULL WHEN i % 211 = 0 THEN 'rare ' || i
            ELSE 'r' || ((i * 5) % 7) END AS region,
       'b' || ((i * 7) % 40) AS branch,
       (i % 3 = 0) AS online,
       (((i * 2654435761::bigint) % 1000) / 1000.0 <
        1 / (1 + exp(-(-1.0 + 3 * coalesce(((i * 7919) % 1009) / 1009.0, 0.9)
                         - 2 * ((i * 104729) % 1013) / 1013.0))))::int AS bad
  FROM generate_series(1, 3000) i;

CREATE TABLE mono_data AS
SELECT i AS id, u, v,
       (((i * 2654435761::bigint) % 1000) / 1000.0 <
        1 / (1 + exp(-(-1.5 + 8 * (u - 0.5) ^ 2 + 2 * v))))::int AS y
  FROM (SELECT i, ((i * 7919) % 1009) / 1009.0 AS u, ((i * 104729) % 1013) / 1013.0 AS v
          FROM generate_series(1, 4000) i) s;

CREATE TABLE odd_names AS
SELECT i AS id,
       ((i * 7919) % 1009) / 1009.0 AS "größe ü",
       ((i * 104729) % 1013) / 1013.0 AS "say ""hi""\n",
       (i % 3 = 0)::int AS y
  FROM generate_series(1, 1000) i;

-- logistic regression
SELECT 1 FROM credit_risk.cr_train('lr_two', 'applicants', 'bad', 'logistic',
    ARRAY['util', 'history'], '{"holdout": 0}');
SELECT 1 FROM credit_risk.cr_train('lr_one', 'applicants', 'bad', 'logistic',
    ARRAY['history'], '{"holdout": 0.3, "seed": 7}');
SELECT 1 FROM credit_risk.cr_train('lr_all', 'applicants', 'bad', 'logistic', NULL,
    '{"key": "id", "l2": 1.0, "threshold": 0.35,
      "risk_cutoffs": [0.05, 0.15, 0.4], "risk_labels": ["A", "B", "C", "D"],
      "score_points": 700, "score_odds": 30, "score_pdo": 40,
      "drift_moderate": 0.05, "drift_major": 0.5}');
SELECT 1 FROM credit_risk.cr_train('lr_names', 'odd_names', 'y', 'logistic', NULL,
    '{"holdout": 0, "key": "id",
      "risk_cutoffs": [0.5], "risk_labels": ["ok \"quoted\"", "nicht gut ✗"]}');

-- gradient-boosted trees
SELECT 1 FROM credit_risk.cr_train('gbm_stumps', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'history'], '{"holdout": 0, "n_trees": 3, "max_depth": 1}');
SELECT 1 FROM credit_risk.cr_train('gbm_missing', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'age_band'], '{"holdout": 0, "n_trees": 5, "max_depth": 2}');
SELECT 1 FROM credit_risk.cr_train('gbm_d3', 'applicants', 'bad', 'gbm', NULL,
    '{"key": "id", "n_trees": 6, "max_depth": 3, "max_bin": 16,
      "subsample": 0.8, "colsample_bytree": 0.6, "seed": 3}');
SELECT 1 FROM credit_risk.cr_train('gbm_mono', 'mono_data', 'y', 'gbm', ARRAY['u', 'v'],
    '{"holdout": 0, "n_trees": 6, "max_depth": 3, "monotone": {"u": 1, "v": -1}}');
SELECT 1 FROM credit_risk.cr_train('gbm_mono_up', 'mono_data', 'y', 'gbm', ARRAY['u', 'v'],
    '{"holdout": 0, "n_trees": 4, "max_depth": 4, "monotone": {"u": 1, "v": 1}}');
SELECT 1 FROM credit_risk.cr_train('gbm_d4', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'history', 'inquiries'],
    '{"holdout": 0, "n_trees": 3, "max_depth": 4, "learning_rate": 0.3,
      "lambda": 0.5, "gamma": 0.1, "base_score": 0.3}');
SELECT 1 FROM credit_risk.cr_train('gbm_d6', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'history', 'noise'],
    '{"holdout": 0, "n_trees": 2, "max_depth": 6, "min_child_weight": 0.5}');
SELECT 1 FROM credit_risk.cr_train('gbm_deep', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'history', 'noise'],
    '{"holdout": 0, "n_trees": 1, "max_depth": 12, "min_child_weight": 0.01,
      "lambda": 0.01, "max_bin": 32}');
SELECT 1 FROM credit_risk.cr_train('gbm_leaves', 'applicants', 'bad', 'gbm',
    ARRAY['util'], '{"holdout": 0, "n_trees": 3, "max_depth": 3,
                     "min_child_weight": 1000000}');
SELECT 1 FROM credit_risk.cr_train('gbm_early', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'history', 'noise'],
    '{"holdout": 0.3, "n_trees": 40, "max_depth": 2, "learning_rate": 0.5,
      "early_stopping_rounds": 2, "scale_pos_weight": 2}');
SELECT 1 FROM credit_risk.cr_train('gbm_cat', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'region'], '{"holdout": 0, "n_trees": 4, "max_depth": 3}');
SELECT 1 FROM credit_risk.cr_train('gbm_cat_onehot', 'applicants', 'bad', 'gbm',
    ARRAY['region', 'online', 'history'],
    '{"holdout": 0, "n_trees": 3, "max_depth": 2, "max_cat_to_onehot": 255,
      "categorical": ["online"]}');
SELECT 1 FROM credit_risk.cr_train('gbm_cat_many', 'applicants', 'bad', 'gbm',
    ARRAY['branch', 'region'],
    '{"holdout": 0, "n_trees": 3, "max_depth": 3, "max_cat_to_onehot": 1,
      "min_child_weight": 0.1}');
SELECT 1 FROM credit_risk.cr_train('gbm_cat_early', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'region', 'branch'],
    '{"holdout": 0.3, "n_trees": 30, "max_depth": 2, "learning_rate": 0.8,
      "early_stopping_rounds": 2}');
SELECT 1 FROM credit_risk.cr_train('lr_cat', 'applicants', 'bad', 'logistic',
    ARRAY['util', 'region', 'online'], '{"holdout": 0, "categorical": ["online"]}');
-- scorecards (format 3): numbers with a missing bin, levels in bins
SELECT 1 FROM credit_risk.cr_train('card_num', 'applicants', 'bad', 'scorecard',
    ARRAY['util', 'history', 'age_band'], '{"holdout": 0, "max_bins": 4}');
SELECT 1 FROM credit_risk.cr_train('card_cat', 'applicants', 'bad', 'scorecard',
    ARRAY['util', 'region', 'online', 'branch'],
    '{"holdout": 0.2, "categorical": ["online"], "trend": "peak", "min_bin_share": 0.02}');
-- calibrated (format 4): Platt on a logistic model, isotonic on trees
SELECT 1 FROM credit_risk.cr_train('lr_platt', 'applicants', 'bad', 'logistic',
    ARRAY['util', 'history'], '{"holdout": 0.3, "calibration": "platt"}');
SELECT 1 FROM credit_risk.cr_train('gbm_iso', 'applicants', 'bad', 'gbm',
    ARRAY['util', 'history'], '{"holdout": 0.3, "n_trees": 4, "max_depth": 2, "calibration": "isotonic"}');
SELECT 1 FROM credit_risk.cr_train('gbm_names', 'odd_names', 'y', 'gbm', NULL,
    '{"holdout": 0, "key": "id", "n_trees": 2, "max_depth": 2,
      "risk_cutoffs": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
      "risk_labels": ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]}');
SQL

mkdir -p "$out"
rm -f "$out"/model-* "$out"/edge-*
psql_db -At -F ' ' -c \
	"SELECT name || '-v' || version, encode(model, 'hex') FROM credit_risk.models ORDER BY id" |
while read -r name hex; do
	printf '%s' "$hex" | xxd -r -p >"$out/model-$name"
done

# A few damaged seeds: a bare header, a model cut mid-section, and one with
# a changed byte (its checksum no longer matches).
head -c 20 "$out/model-lr_two-v1" >"$out/edge-header-only"
size=$(stat -c %s "$out/model-gbm_missing-v1")
head -c $((size / 2)) "$out/model-gbm_missing-v1" >"$out/edge-gbm-truncated"
cp "$out/model-lr_one-v1" "$out/edge-lr-altered"
printf '\x7f' | dd of="$out/edge-lr-altered" bs=1 seek=40 conv=notrunc status=none
ls -l "$out"
