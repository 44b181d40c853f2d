-- Training a logistic model: registry row, split, metrics, coefficients.

-- German credit, split by a hash of the applicant id.
SELECT name, version, algorithm, status, source, label, train_rows, holdout_rows,
       array_length(features, 1) AS n_features, created_by = current_user AS by_me,
       train_seconds >= 0 AS timed, length(model) > 100 AS has_bytes
  FROM credit_risk.cr_train('german', 'german_credit', 'bad', 'logistic', NULL,
                            '{"key": "applicant_id"}');

-- features NULL: every numeric column but the label and the key, in order.
SELECT features FROM credit_risk.models WHERE name = 'german' AND version = 1;

-- The effective parameters, defaults filled in.
SELECT params FROM credit_risk.models WHERE name = 'german' AND version = 1;

-- Holdout metrics: every key present, values in range.
SELECT metrics->>'evaluated_on' AS evaluated_on,
       (metrics->>'rows')::int = holdout_rows AS rows_match,
       (metrics->>'auc')::float8 BETWEEN 0.65 AND 0.90 AS auc_ok,
       abs((metrics->>'gini')::float8 - (2 * (metrics->>'auc')::float8 - 1)) < 1e-12 AS gini_ok,
       (metrics->>'ks')::float8 BETWEEN 0.2 AND 1 AS ks_ok,
       (metrics->>'log_loss')::float8 BETWEEN 0.3 AND 0.7 AS log_loss_ok,
       (metrics->>'brier')::float8 BETWEEN 0.1 AND 0.25 AS brier_ok,
       (metrics->>'accuracy')::float8 BETWEEN 0.6 AND 1 AS accuracy_ok,
       (metrics->>'threshold')::float8 AS threshold,
       (metrics->>'f1')::float8 BETWEEN 0 AND 1 AS f1_ok,
       (metrics->>'base_rate')::float8 BETWEEN 0.2 AND 0.4 AS base_rate_ok,
       (metrics->>'train_auc')::float8 > 0.75 AS train_auc_ok
  FROM credit_risk.models WHERE name = 'german' AND version = 1;

-- The coefficient table: intercept first, then the features in order.
SELECT feature, round(coefficient::numeric, 4) AS coefficient,
       round(std_error::numeric, 4) AS std_error, round(z::numeric, 3) AS z,
       round(p_value::numeric, 4) AS p_value
  FROM credit_risk.cr_coefficients('german');

-- z is coefficient / std_error and p is two-sided normal.
SELECT bool_and(abs(z - coefficient / std_error) < 1e-12) AS z_ok,
       bool_and(p_value BETWEEN 0 AND 1) AS p_ok
  FROM credit_risk.cr_coefficients('german', 1);

-- Determinism: the same source, seed and parameters give the same bytes.
SELECT version FROM credit_risk.cr_train('german', 'german_credit', 'bad', 'logistic', NULL,
                                         '{"key": "applicant_id"}');
SELECT a.model = b.model AS same_bytes,
       a.metrics - '{load_seconds,fit_seconds}'::text[] = b.metrics - '{load_seconds,fit_seconds}'::text[] AS same_metrics
  FROM credit_risk.models a, credit_risk.models b
 WHERE a.name = 'german' AND b.name = 'german' AND a.version = 1 AND b.version = 2;

-- With a key the split does not depend on the order rows arrive in.
SELECT version, holdout_rows
  FROM credit_risk.cr_train('german', 'SELECT * FROM german_credit ORDER BY md5(applicant_id::text)',
                            'bad', 'logistic', NULL, '{"key": "applicant_id"}');
SELECT bool_and(abs(a.coefficient - b.coefficient) < 1e-9 * (1 + abs(a.coefficient))) AS same_coefficients
  FROM credit_risk.cr_coefficients('german', 1) a
  JOIN credit_risk.cr_coefficients('german', 3) b USING (feature);

-- A different seed moves the split.
SELECT holdout_rows <> 207 AS other_split
  FROM credit_risk.cr_train('german_seed7', 'german_credit', 'bad', 'logistic', NULL,
                            '{"key": "applicant_id", "seed": 7}');

-- holdout = 0: every row trains, metrics are on the training rows.
SELECT train_rows, holdout_rows, metrics->>'evaluated_on' AS evaluated_on,
       (metrics->>'auc')::float8 = (metrics->>'train_auc')::float8 AS same_auc
  FROM credit_risk.cr_train('german_full', 'german_credit', 'bad', 'logistic', NULL,
                            '{"holdout": 0}');

-- ... so SQL can recompute the metrics from the model's own scores.
WITH s AS (
    SELECT bad, credit_risk.cr_predict('german_full', g) AS p FROM german_credit g
), c AS (
    SELECT count(*) FILTER (WHERE p >= 0.5 AND bad = 1) AS tp,
           count(*) FILTER (WHERE p >= 0.5 AND bad = 0) AS fp,
           count(*) FILTER (WHERE p < 0.5 AND bad = 1) AS fn,
           count(*) FILTER (WHERE p < 0.5 AND bad = 0) AS tn,
           avg((p - bad) ^ 2) AS brier,
           -avg(bad * ln(p) + (1 - bad) * ln(1 - p)) AS log_loss
      FROM s
), m AS (
    SELECT metrics FROM credit_risk.models WHERE name = 'german_full'
)
SELECT abs((metrics->>'brier')::float8 - brier) < 1e-12 AS brier_ok,
       abs((metrics->>'log_loss')::float8 - log_loss) < 1e-12 AS log_loss_ok,
       abs((metrics->>'accuracy')::float8 - (tp + tn)::float8 / 1000) < 1e-12 AS accuracy_ok,
       abs((metrics->>'precision')::float8 - tp::float8 / (tp + fp)) < 1e-12 AS precision_ok,
       abs((metrics->>'recall')::float8 - tp::float8 / (tp + fn)) < 1e-12 AS recall_ok,
       (metrics->>'positives')::int = tp + fn AS positives_ok
  FROM c, m;

-- Explicit features, a query source, and no key (split by row order).
SELECT features, train_rows + holdout_rows AS rows
  FROM credit_risk.cr_train('german_small',
                            'SELECT applicant_id, duration_months, age, checking_none, bad FROM german_credit',
                            'bad', 'logistic', ARRAY['age', 'duration_months', 'checking_none']);
SELECT feature FROM credit_risk.cr_coefficients('german_small');

-- The synthetic mechanism is recovered: logit = -1 + 0.8 x1 - 0.5 x2 + 0.03 (income - 50).
SELECT holdout_rows FROM credit_risk.cr_train('synth', 'synth', 'y', 'logistic', NULL,
                                              '{"key": "id", "holdout": 0.25}');
SELECT feature, round(coefficient::numeric, 2) AS coefficient,
       abs(coefficient - CASE feature WHEN '(intercept)' THEN -2.5 WHEN 'x1' THEN 0.8
                                      WHEN 'x2' THEN -0.5 WHEN 'income' THEN 0.03 END)
         < 4 * std_error AS within_4_se
  FROM credit_risk.cr_coefficients('synth');

-- L2 shrinks the slopes.
SELECT params->'l2' AS l2 FROM credit_risk.cr_train('synth_l2', 'synth', 'y', 'logistic', NULL,
                                                   '{"key": "id", "holdout": 0.25, "l2": 5000}');
SELECT bool_and(abs(r.coefficient) < abs(u.coefficient)) AS shrunk
  FROM credit_risk.cr_coefficients('synth') u
  JOIN credit_risk.cr_coefficients('synth_l2') r USING (feature)
 WHERE feature <> '(intercept)';

-- NULL features are imputed with the training mean, stored in the model.
CREATE TABLE synth_nulls AS
SELECT id, CASE WHEN id % 10 = 0 THEN NULL ELSE x1 END AS x1, x2, income, y FROM synth;
SELECT train_rows FROM credit_risk.cr_train('synth_nulls', 'synth_nulls', 'y', 'logistic', NULL,
                                            '{"key": "id"}');
SELECT abs((credit_risk.cr_model_info(model)->'impute'->>0)::float8
           - (SELECT avg(x1) FROM synth_nulls)) < 0.05 AS impute_near_mean,
       (credit_risk.cr_model_info(model)->'impute'->>0)::float8
         <> (SELECT avg(x1) FROM synth_nulls) AS from_training_rows_only
  FROM credit_risk.models WHERE name = 'synth_nulls';

-- Custom risk bands and scorecard scaling are kept in params and in the model.
SELECT params->'risk_cutoffs' AS cutoffs, params->'risk_labels' AS labels,
       params->'score_points' AS points, params->'score_pdo' AS pdo
  FROM credit_risk.cr_train('german_bands', 'german_credit', 'bad', 'logistic', NULL,
                            '{"risk_cutoffs": [0.1, 0.3, 0.6],
                              "risk_labels": ["A", "B", "C", "D"],
                              "score_points": 500, "score_odds": 20, "score_pdo": 40,
                              "threshold": 0.3}');

-- Class weights.  Weighting the defaults by 3 is the same fit as repeating
-- every default row three times: the logistic coefficients and standard
-- errors to rounding, the trees' probabilities to float rounding (the
-- features have few values, so both get the same bins).
SELECT setseed(0.5);
CREATE TABLE cw AS
SELECT i AS id, floor(random() * 8)::float8 AS a, floor(random() * 5)::float8 AS b,
       floor(random() * 4)::float8 AS c, random() AS u
  FROM generate_series(1, 3000) i;
ALTER TABLE cw ADD COLUMN y int;
UPDATE cw SET y = (u < 1 / (1 + exp(-(a / 3 - b / 2 + c / 4 - 1))))::int;
CREATE TABLE cw3 AS SELECT cw.* FROM cw, generate_series(1, 3) k WHERE y = 1 OR k = 1;
SELECT params->'class_weight' AS class_weight, metrics->'class_weights' AS resolved
  FROM credit_risk.cr_train('cw_logit', 'cw', 'y', 'logistic', ARRAY['a', 'b', 'c'],
                            '{"holdout": 0, "class_weight": {"0": 1, "1": 3}}');
SELECT 1 FROM credit_risk.cr_train('cw_logit_rep', 'cw3', 'y', 'logistic', ARRAY['a', 'b', 'c'],
                                   '{"holdout": 0}');
SELECT max(abs(w.coefficient - d.coefficient)) < 1e-12 AS same_coefficients,
       max(abs(w.std_error - d.std_error) / d.std_error) < 1e-12 AS same_std_errors
  FROM credit_risk.cr_coefficients('cw_logit') w JOIN credit_risk.cr_coefficients('cw_logit_rep') d USING (feature);
SELECT 1 FROM credit_risk.cr_train('cw_gbm', 'cw', 'y', 'gbm', ARRAY['a', 'b', 'c'],
                                   '{"holdout": 0, "n_trees": 20, "max_depth": 3, "class_weight": {"1": 3}}');
SELECT 1 FROM credit_risk.cr_train('cw_gbm_rep', 'cw3', 'y', 'gbm', ARRAY['a', 'b', 'c'],
                                   '{"holdout": 0, "n_trees": 20, "max_depth": 3}');
SELECT max(abs(credit_risk.cr_predict('cw_gbm', ARRAY[a, b, c])
               - credit_risk.cr_predict('cw_gbm_rep', ARRAY[a, b, c]))) < 1e-6 AS same_probabilities
  FROM cw;
-- "balanced": n / (2 n_c) over the training rows
SELECT (metrics->'class_weights'->>0)::float8 = n / (2.0 * n0) AS w0,
       (metrics->'class_weights'->>1)::float8 = n / (2.0 * n1) AS w1
  FROM credit_risk.cr_train('cw_bal', 'cw', 'y', 'gbm', ARRAY['a', 'b', 'c'],
                            '{"n_trees": 5, "class_weight": "balanced", "key": "id"}'),
       (SELECT count(*)::float8 AS n, count(*) FILTER (WHERE y = 0) AS n0, count(*) FILTER (WHERE y = 1) AS n1
          FROM cw WHERE NOT credit_risk.cr_in_holdout(id, 42, 0.2)) s;
-- errors
SELECT credit_risk.cr_train('cw_bad', 'cw', 'y', 'logistic', NULL, '{"class_weight": "even"}');
SELECT credit_risk.cr_train('cw_bad', 'cw', 'y', 'logistic', NULL, '{"class_weight": [1, 2]}');
SELECT credit_risk.cr_train('cw_bad', 'cw', 'y', 'logistic', NULL, '{"class_weight": {"2": 1}}');
SELECT credit_risk.cr_train('cw_bad', 'cw', 'y', 'gbm', NULL, '{"class_weight": {"1": 0}}');
SELECT credit_risk.cr_train('cw_bad', 'cw', 'y', 'gbm', NULL, '{"class_weight": {"0": "1"}}');
DROP TABLE cw, cw3;

-- An out-of-time holdout: rows on or after holdout_from are held out, the
-- split column is not a feature, and params.holdout records the share.
SELECT setseed(0.3);
CREATE TABLE oot AS
SELECT i AS id, date '2023-01-01' + (i % 730) AS application_date,
       floor(random() * 8)::float8 AS a, random() AS b, random() AS u
  FROM generate_series(1, 4000) i;
ALTER TABLE oot ADD COLUMN y int;
UPDATE oot SET y = (u < 1 / (1 + exp(-(a / 3 - b * 2 - 0.5))))::int;
SELECT holdout_rows, train_rows, features, params->'split' AS split, params->'holdout' AS holdout,
       metrics->>'evaluated_on' AS evaluated_on, metrics->>'rows' AS metric_rows
  FROM credit_risk.cr_train('oot', 'oot', 'y', 'logistic', ARRAY['a', 'b'],
                            '{"split": {"column": "application_date", "holdout_from": "2024-07-01"}}');
SELECT count(*) FILTER (WHERE application_date >= '2024-07-01') AS held_out, count(*) AS all_rows FROM oot;
-- the stored holdout metrics are those of the rows past the cut-off
SELECT (credit_risk.cr_evaluate('oot', 'SELECT * FROM oot WHERE application_date >= ''2024-07-01''', 'y')->>'auc')
         = (metrics->>'auc') AS same_auc
  FROM credit_risk.models WHERE name = 'oot' AND version = 1;
-- a number column splits too, and timestamps
SELECT holdout_rows FROM credit_risk.cr_train('oot_n', 'oot', 'y', 'logistic', ARRAY['a', 'b'],
                                              '{"split": {"column": "id", "holdout_from": 3001}}');
SELECT holdout_rows FROM credit_risk.cr_train('oot_ts', 'SELECT *, application_date::timestamp AS at FROM oot',
                                              'y', 'logistic', ARRAY['a', 'b'],
                                              '{"split": {"column": "at", "holdout_from": "2024-06-30 12:00"}}');
-- register-if-better compares the two on the same out-of-time rows
SELECT detail->'candidate_version' AS candidate, detail->'holdout_rows' AS holdout_rows,
       (detail->>'candidate_auc')::float8 > 0.5 AS auc_above_half
  FROM credit_risk.cr_retrain('oot', 'SELECT application_date, a, b, y FROM oot', 'y', 'logistic',
                              '{"split": {"column": "application_date", "holdout_from": "2024-07-01"}}');
-- cr_evaluate's split keeps the same rows: the stored metrics again, from the whole table
SELECT e->>'auc' = m.metrics->>'auc' AND e->>'ks' = m.metrics->>'ks'
         AND e->>'log_loss' = m.metrics->>'log_loss' AND e->>'brier' = m.metrics->>'brier' AS same_metrics,
       (e->>'rows')::int = m.holdout_rows AS same_rows
  FROM credit_risk.models m,
       credit_risk.cr_evaluate('oot', 'oot', 'y', 1,
                               '{"column": "application_date", "holdout_from": "2024-07-01"}') e
 WHERE m.name = 'oot' AND m.version = 1;
SELECT (credit_risk.cr_evaluate('oot_n', 'oot', 'y', NULL, '{"column": "id", "holdout_from": 3001}')->>'rows')::int AS id_rows,
       (credit_risk.cr_evaluate('oot_ts', 'SELECT *, application_date::timestamp AS at FROM oot', 'y', NULL,
                                '{"column": "at", "holdout_from": "2024-06-30 12:00"}')->>'rows')::int AS ts_rows,
       (credit_risk.cr_evaluate('oot', 'oot', 'y', 1, NULL)->>'rows')::int AS all_rows;
SELECT expect_error($$SELECT credit_risk.cr_evaluate('oot', 'oot', 'y', 1, '"2024-07-01"')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('oot', 'oot', 'y', 1, '{"column": "application_date"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('oot', 'oot', 'y', 1, 'null')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('oot', 'oot', 'y', 1, '{"column": "applied", "holdout_from": "2024-07-01"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('oot', 'oot', 'y', 1, '{"column": "application_date", "holdout_from": "2030-01-01"}')$$);
-- errors
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "application_date", "holdout_from": "2030-01-01"}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "application_date", "holdout_from": "2000-01-01"}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "application_date", "holdout_from": "2024-13-01"}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "applied", "holdout_from": "2024-01-01"}}');
SELECT credit_risk.cr_train('oot_bad', 'SELECT *, id::text AS t FROM oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "t", "holdout_from": "2024-01-01"}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a', 'id'],
                            '{"split": {"column": "id", "holdout_from": 3000}}');
SELECT credit_risk.cr_train('oot_bad', 'SELECT * FROM oot UNION ALL SELECT 0, NULL, 1, 1, 1, 1', 'y',
                            'logistic', ARRAY['a'],
                            '{"split": {"column": "application_date", "holdout_from": "2024-01-01"}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "application_date"}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'],
                            '{"split": {"column": "application_date", "holdout_from": "2024-01-01", "to": 1}}');
SELECT credit_risk.cr_train('oot_bad', 'oot', 'y', 'logistic', ARRAY['a'], '{"split": "application_date"}');
DROP TABLE oot;

-- A logistic fit is the same at any number of threads: each pass over the
-- 40,000 training rows is three tasks, each adding into its own sums, and
-- the sums are added in task order.
CREATE TABLE logit_threads AS
SELECT i AS id, sin(i) AS x1, cos(i * 0.7) AS x2, (i % 17)::float8 AS x3,
       CASE WHEN i % 5 = 0 THEN NULL ELSE ((i * 7919) % 1000) / 100.0 END AS x4,
       ((hashint4(i) & 1023) < 400 + 300 * sin(i) - 20 * (i % 17))::int AS y
  FROM generate_series(1, 50000) i;
SET credit_risk.threads = 1;
SELECT version FROM credit_risk.cr_train('logit_threads', 'logit_threads', 'y', 'logistic',
                                         ARRAY['x1', 'x2', 'x3', 'x4'], '{"key": "id"}');
SET credit_risk.threads = 3;
SELECT version FROM credit_risk.cr_train('logit_threads', 'logit_threads', 'y', 'logistic',
                                         ARRAY['x1', 'x2', 'x3', 'x4'], '{"key": "id"}');
RESET credit_risk.threads;
SELECT count(DISTINCT model) AS distinct_models, count(*) AS versions,
       min((metrics->>'auc')::float8) > 0.6 AS learns
  FROM credit_risk.models WHERE name = 'logit_threads';
SELECT feature, round(coefficient::numeric, 4) AS coefficient
  FROM credit_risk.cr_coefficients('logit_threads') ORDER BY feature;
DROP TABLE logit_threads;

-- Numeric columns and jsonb numbers become doubles without their text where
-- that is exact (up to 16 digits, exponents within 22); the doubles must be
-- the ones PostgreSQL's own cast gives, for every kind of value: the model
-- from numeric columns is the same bytes as from the same values cast to
-- float8, and it scores a jsonb applicant as it scores the row.
CREATE TABLE num_values AS
SELECT i AS id,
       CASE i % 4
         WHEN 0 THEN round(((hashint4(i) % 1000000) / 1000.0)::numeric, i % 5)
         WHEN 1 THEN (hashint4(i) % 100000)::numeric * ('1e' || (i % 61) - 30)::numeric
         WHEN 2 THEN hashint4(i)::numeric * 1000003 + 0.123456789
         ELSE round((hashint4(i) % 100)::numeric / 7, i % 19)
       END AS x,
       (hashint4(i * 7) & 1) AS y
  FROM generate_series(1, 4000) i;
SELECT count(DISTINCT x) > 3000 AS varied, min(x) < -1e30 AS has_large, bool_or(x <> 0 AND abs(x) < 1e-20) AS has_tiny
  FROM num_values;
SELECT version FROM credit_risk.cr_train('num_numeric', 'SELECT id, x, y FROM num_values', 'y', 'gbm',
                                         ARRAY['x'], '{"key": "id", "n_trees": 5}');
SELECT version FROM credit_risk.cr_train('num_float8', 'SELECT id, x::float8 AS x, y FROM num_values', 'y', 'gbm',
                                         ARRAY['x'], '{"key": "id", "n_trees": 5}');
SELECT a.model = b.model AS same_bytes
  FROM credit_risk.models a, credit_risk.models b
 WHERE a.name = 'num_numeric' AND b.name = 'num_float8';
SELECT count(*) AS rows,
       count(*) FILTER (WHERE (credit_risk.cr_predict('num_float8', jsonb_build_object('x', x))->>'default_probability')::float8
                              <> credit_risk.cr_predict('num_float8', ARRAY[x::float8])) AS differ
  FROM num_values;
DROP TABLE num_values;

-- With a key, the rows go into the key's order before anything is fitted:
-- the same rows in another order (a partitioned table, foreign shards,
-- parallel workers) give the same model, byte for byte.
CREATE TABLE german_shuffled AS SELECT * FROM german_credit ORDER BY md5(applicant_id::text);
SELECT (SELECT md5(model) FROM credit_risk.cr_train('order_a', 'german_credit', 'bad', 'gbm', NULL,
            '{"key": "applicant_id", "n_trees": 10, "subsample": 0.7, "colsample_bytree": 0.6}'))
     = (SELECT md5(model) FROM credit_risk.cr_train('order_b', 'german_shuffled', 'bad', 'gbm', NULL,
            '{"key": "applicant_id", "n_trees": 10, "subsample": 0.7, "colsample_bytree": 0.6}')) AS same_trees,
       (SELECT md5(model) FROM credit_risk.cr_train('order_c', 'german_credit', 'bad', 'logistic', NULL,
            '{"key": "applicant_id"}'))
     = (SELECT md5(model) FROM credit_risk.cr_train('order_d', 'german_shuffled', 'bad', 'logistic', NULL,
            '{"key": "applicant_id"}')) AS same_coefficients;
DROP TABLE german_shuffled;
-- a key with two rows each, told apart only by a categorical feature
CREATE TABLE dup_keys AS
SELECT k AS id, (k % 7)::float8 AS x, (k % 3 = 0)::int AS y, lvl AS cat
  FROM generate_series(1, 400) k, (VALUES ('a'), ('b'), ('c')) v(lvl);
CREATE TABLE dup_keys_asc AS SELECT * FROM dup_keys ORDER BY id, cat;
CREATE TABLE dup_keys_desc AS SELECT * FROM dup_keys ORDER BY id DESC, cat DESC;
SELECT (SELECT md5(model) FROM credit_risk.cr_train('order_e', 'dup_keys_asc', 'y', 'gbm', ARRAY['x', 'cat'],
            '{"key": "id", "n_trees": 5, "subsample": 0.7}'))
     = (SELECT md5(model) FROM credit_risk.cr_train('order_f', 'dup_keys_desc', 'y', 'gbm', ARRAY['x', 'cat'],
            '{"key": "id", "n_trees": 5, "subsample": 0.7}')) AS same_with_duplicate_keys;
DROP TABLE dup_keys, dup_keys_asc, dup_keys_desc;
DELETE FROM credit_risk.models WHERE name IN ('order_a', 'order_b', 'order_c', 'order_d', 'order_e', 'order_f');
