#!/usr/bin/env bash
# Prints a digest of every stored part of a fixed set of models (the model
# bytes, params, metrics, importance), trained with fixed seeds on the German
# credit data and on the two synthetic benchmark tables.  Run it before and
# after a change that must not alter what training stores, and diff the two
# outputs:
#
#   scripts/model-digests.sh > before.txt; (change, make install); \
#   scripts/model-digests.sh > after.txt; diff before.txt after.txt
#
# It connects with the usual PG* variables (scripts/cluster.sh env), works in
# its own schema cr_digest and removes it and its cr_digest_* models at the
# end.  Run it from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
psql=(psql -X -q -v ON_ERROR_STOP=1)
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"

"${psql[@]}" <<'SQL'
CREATE EXTENSION IF NOT EXISTS credit_risk;
SET credit_risk.allow_drop = on;
DELETE FROM credit_risk.routes WHERE name LIKE 'cr\_digest\_%';
DELETE FROM credit_risk.models WHERE name LIKE 'cr\_digest\_%';
DROP SCHEMA IF EXISTS cr_digest CASCADE;
CREATE SCHEMA cr_digest;
SQL
"${psql[@]}" -c "SET search_path = cr_digest" -f test/data/german.sql >/dev/null
"${psql[@]}" -v rows=20000 -v schema=cr_digest -f bench/synthetic_gbm.sql >/dev/null
"${psql[@]}" -v rows=20000 -v schema=cr_digest -f bench/synthetic_credit.sql >/dev/null
"${psql[@]}" -v rows=30000 -v schema=cr_digest -f bench/synthetic_continuous.sql >/dev/null

"${psql[@]}" -At <<'SQL'
SET search_path = cr_digest;
SELECT 1 FROM credit_risk.cr_train('cr_digest_logit', 'german_credit', 'bad', 'logistic');
SELECT 1 FROM credit_risk.cr_train('cr_digest_logit_l2', 'german_credit', 'bad', 'logistic', NULL,
    '{"l2": 0.5, "seed": 7, "holdout": 0.3, "risk_cutoffs": [0.05, 0.2], "risk_labels": ["A", "B", "C"],
      "score_points": 650, "score_odds": 30, "score_pdo": 25, "drift_moderate": 0.15}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm', 'german_credit', 'bad', 'gbm');
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_mono', 'german_credit', 'bad', 'gbm',
    ARRAY['duration_months', 'credit_amount', 'age', 'checking_negative'],
    '{"monotone": {"duration_months": 1, "age": -1}, "subsample": 0.7, "colsample_bytree": 0.8,
      "n_trees": 40, "max_depth": 4, "seed": 11, "gamma": 0.1, "lambda": 2, "max_bin": 32}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_syn', 'credit_gbm', 'y', 'gbm', NULL,
    '{"n_trees": 60, "max_depth": 6, "threads": 2, "early_stopping_rounds": 10, "key": "id",
      "scale_pos_weight": 2, "base_score": 0.3}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_deep', 'credit_gbm', 'y', 'gbm', NULL,
    '{"n_trees": 15, "max_depth": 12, "min_child_weight": 0.5, "threads": 1, "holdout": 0}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_logit_syn', 'credit', 'y', 'logistic', NULL,
    '{"max_iter": 50, "tol": 1e-10, "seed": 3}');
-- continuous features: every value distinct, 256 bins
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_cont', 'continuous', 'y', 'gbm', NULL,
    '{"n_trees": 40, "max_depth": 6, "threads": 2, "max_bin": 256, "subsample": 0.8}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_cont1', 'continuous', 'y', 'gbm', NULL,
    '{"n_trees": 20, "max_depth": 8, "threads": 1, "holdout": 0, "colsample_bytree": 0.5}');
-- categorical features (text columns), cross-validation, class weights
CREATE TABLE german_text AS
SELECT g.*, (ARRAY['A11', 'A12', 'A13', 'A14'])[1 + (applicant_id * 7) % 4] AS checking,
       (ARRAY['rent', 'own', 'free'])[1 + (applicant_id * 5) % 3] AS housing
FROM german_credit g;
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_cat', 'german_text', 'bad', 'gbm',
    ARRAY['duration_months', 'credit_amount', 'age', 'checking', 'housing'],
    '{"n_trees": 30, "max_depth": 3, "cv": 3, "min_category_count": 5, "max_cat_to_onehot": 2}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_logit_cat', 'german_text', 'bad', 'logistic',
    ARRAY['duration_months', 'credit_amount', 'age', 'checking', 'housing'],
    '{"cv": 4, "class_weight": "balanced", "reference": {"housing": "own"}}');
SELECT 1 FROM credit_risk.cr_train('cr_digest_gbm_cw', 'credit_gbm', 'y', 'gbm', NULL,
    '{"n_trees": 20, "max_depth": 4, "threads": 2, "cv": 3, "class_weight": {"0": 1, "1": 3}}');
SELECT name, algorithm, pg_catalog.length(model),
       pg_catalog.md5(model), pg_catalog.md5(params::text), pg_catalog.md5((metrics - '{bin_seconds,fit_seconds,load_seconds,train_seconds}'::text[] #- '{cv,seconds}')::text),
       pg_catalog.md5(importance::text), train_rows, holdout_rows, features
  FROM credit_risk.models WHERE name LIKE 'cr\_digest\_%' ORDER BY name, version;
SELECT name, params FROM credit_risk.models WHERE name LIKE 'cr\_digest\_%' ORDER BY name, version;
SQL

"${psql[@]}" <<'SQL'
DELETE FROM credit_risk.models WHERE name LIKE 'cr\_digest\_%';
DROP SCHEMA cr_digest CASCADE;
SQL
