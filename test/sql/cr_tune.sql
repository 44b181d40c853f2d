-- Cross-validation (params.cv) and the search (cr_tune).
SET extra_float_digits = 0;

-- 2,400 applicants; the default rate depends on an interaction of a and b
-- (a depth-2 effect), c is noise; every feature has few values, so a
-- fold's model trained here and by a cr_train of the fold's rows bin alike.
CREATE TABLE tune_apps AS
SELECT i AS id, (i * 7) % 5 AS a, (i * 11) % 4 AS b, (i * 13) % 6 AS c, 0 AS y
FROM generate_series(1, 2400) i;
UPDATE tune_apps SET y = CASE WHEN (hashint4(id * 31) & 1023) / 1024.0 <
    CASE WHEN (a >= 3) = (b >= 2) THEN 0.15 ELSE 0.65 END THEN 1 ELSE 0 END;

-- metrics.cv: k folds, each with both labels, mean and sd
SELECT (metrics -> 'cv' ->> 'k')::int AS k,
       jsonb_array_length(metrics -> 'cv' -> 'folds') AS folds,
       (SELECT sum((f ->> 'rows')::int) FROM jsonb_array_elements(metrics -> 'cv' -> 'folds') f) AS rows,
       train_rows,
       (SELECT bool_and((f ->> 'positives')::int > 0) FROM jsonb_array_elements(metrics -> 'cv' -> 'folds') f) AS both_labels
FROM credit_risk.cr_train('tune_lr', 'tune_apps', 'y', 'logistic', ARRAY['a', 'b', 'c'],
                          '{"key": "id", "seed": 5, "cv": 4}');

-- Each fold recomputed in SQL: the folds from cr_split_unit, the fold's
-- model trained by cr_train on the other folds (the fold is its holdout).
CREATE TABLE tune_folds AS
SELECT t.*, (row_number() OVER (PARTITION BY y ORDER BY credit_risk.cr_split_unit(id, 5)) - 1) % 4 AS fold
FROM tune_apps t WHERE NOT credit_risk.cr_in_holdout(id, 5, 0.2);
CREATE FUNCTION tune_fold_auc(algorithm text, f int, params jsonb) RETURNS float8
LANGUAGE sql AS $$
  SELECT (metrics ->> 'auc')::float8 FROM credit_risk.cr_train('tune_fold', format(
      'SELECT a, b, c, y, (fold = %s)::int AS is_fold FROM tune_folds', f), 'y', algorithm,
      ARRAY['a', 'b', 'c'], params || '{"split": {"column": "is_fold", "holdout_from": 1}}')
$$;
SELECT f.fold, abs((f.m ->> 'auc')::float8 - tune_fold_auc('logistic', f.fold, '{}')) < 1e-12 AS same_auc
FROM (SELECT (x ->> 'fold')::int AS fold, x AS m
      FROM credit_risk.models, jsonb_array_elements(metrics -> 'cv' -> 'folds') x
      WHERE name = 'tune_lr') f ORDER BY f.fold;
SELECT version FROM credit_risk.cr_train('tune_gbm', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
    '{"key": "id", "seed": 5, "cv": 4, "n_trees": 20, "max_depth": 2, "threads": 1}');
SELECT f.fold, abs((f.m ->> 'auc')::float8 -
           tune_fold_auc('gbm', f.fold, '{"n_trees": 20, "max_depth": 2, "threads": 1, "seed": 5}')) < 1e-12 AS same_auc
FROM (SELECT (x ->> 'fold')::int AS fold, x AS m
      FROM credit_risk.models, jsonb_array_elements(metrics -> 'cv' -> 'folds') x
      WHERE name = 'tune_gbm' AND version = 1) f ORDER BY f.fold;

-- A grid over max_depth: depth 1 cannot fit the interaction, 2 can; the
-- search picks a depth of at least 2 and registers it as a candidate.
SELECT trial, params, metric > 0.5 AS informative, metric_sd IS NOT NULL AS has_sd, chosen
FROM credit_risk.cr_tune('tune_gbm', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
    '{"method": "grid", "space": {"max_depth": [1, 3]}}',
    '{"key": "id", "seed": 5, "cv": 3, "n_trees": 20, "threads": 1}') ORDER BY trial;
SELECT (SELECT metric FROM credit_risk.cr_tune('tune_d1', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
            '{"method": "grid", "space": {"max_depth": {"values": [1]}}}', '{"key": "id", "seed": 5, "cv": 3, "n_trees": 20}'))
     + 0.05 <
       (SELECT metric FROM credit_risk.cr_tune('tune_d2', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
            '{"method": "grid", "space": {"max_depth": {"values": [2]}}}', '{"key": "id", "seed": 5, "cv": 3, "n_trees": 20}'))
       AS depth_matters;
SELECT version, status, params -> 'tuning' ->> 'method' AS method, (params ->> 'max_depth')::int >= 2 AS deep_enough,
       metrics -> 'cv' ->> 'k' AS k
FROM credit_risk.models WHERE name = 'tune_gbm' ORDER BY version;
SELECT model_name, best_trial, version, jsonb_array_length(trials) AS trials, metric, budget_exhausted
FROM credit_risk.tuning_runs WHERE model_name = 'tune_gbm';

-- random draws are reproducible (search.seed) and stay in their ranges
SELECT count(*) AS trials,
       bool_and((params ->> 'learning_rate')::float8 BETWEEN 0.01 AND 0.3) AS lr_in_range,
       bool_and((params ->> 'max_depth')::int BETWEEN 2 AND 4) AS depth_in_range
FROM credit_risk.cr_tune('tune_rand', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
    '{"trials": 5, "seed": 9, "space": {"max_depth": [2, 4], "learning_rate": {"log": [0.01, 0.3]}}}',
    '{"key": "id", "n_trees": 10}');
SELECT a.params = b.params AS same_draws
FROM (SELECT jsonb_agg(params ORDER BY trial) AS params FROM credit_risk.cr_tune('tune_rand', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
        '{"trials": 3, "seed": 9, "space": {"max_depth": [2, 4]}}', '{"key": "id", "n_trees": 5}')) a,
     (SELECT jsonb_agg(params ORDER BY trial) AS params FROM credit_risk.cr_tune('tune_rand', 'tune_apps', 'y', 'gbm', ARRAY['a', 'b', 'c'],
        '{"trials": 3, "seed": 9, "space": {"max_depth": [2, 4]}}', '{"key": "id", "n_trees": 5}')) b;
-- successive halving: half the trials stop after the first fold
SELECT count(*) FILTER (WHERE metric_sd IS NULL) AS stopped_after_one_fold, count(*) FILTER (WHERE chosen) AS chosen
FROM credit_risk.cr_tune('tune_half', 'tune_apps', 'y', 'logistic', ARRAY['a', 'b', 'c'],
    '{"method": "grid", "halving": true, "space": {"l2": {"values": [0, 1, 10, 100]}}}', '{"key": "id", "cv": 4}');

-- Bad input: clear errors before any work.
SELECT expect_error($$SELECT * FROM credit_risk.cr_train('tune_bad', 'tune_apps', 'y', 'logistic', ARRAY['a'], '{"cv": 1}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_train('tune_bad', 'SELECT * FROM tune_apps WHERE y = 0 OR id < 20', 'y', 'logistic', ARRAY['a'], '{"cv": 50, "holdout": 0}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {"colour": [1, 2]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {"max_depth": [8, 3]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {"max_depth": [1, 30]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"trials": 10000, "space": {"max_depth": [1, 3]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {"learning_rate": {"log": [0, 0.3]}}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"method": "grid", "space": {"learning_rate": [0.1, 0.3]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {"max_bin": [16, 64]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"halving": true, "space": {"max_depth": [1, 3]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], '{"space": {"max_depth": [1, 3]}}', '{"holdout": 0}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'logistic', ARRAY['a'], '{"space": {"max_depth": [1, 3]}}')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('tune_bad', 'tune_apps', 'y', 'gbm', ARRAY['a'], NULL)$$);

-- Register-if-better from a search (params.search), then from the best
-- params of that search (params.tuned): the weekly training step's two ways.
CREATE TABLE tune_rt AS
SELECT 1 AS step, * FROM credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'gbm',
       '{"key": "id", "seed": 5, "cv": 3, "n_trees": 10, "threads": 1,
         "search": {"method": "grid", "space": {"max_depth": {"values": [1, 2]}}}}');
INSERT INTO tune_rt
SELECT 2, * FROM credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'gbm',
       '{"key": "id", "seed": 5, "n_trees": 10, "threads": 1, "tuned": true}');
SELECT r.step, r.detail->>'tuning' AS tuning, m.version, m.status,
       (r.detail->>'tuning_run')::bigint = t.id AS the_run,
       m.params->>'max_depth' AS max_depth,
       m.params->>'max_depth' = t.trials->(t.best_trial - 1)->'params'->>'max_depth' AS best_trials_depth,
       (m.params->'tuning'->>'run')::bigint = t.id AS params_record_run
  FROM tune_rt r
  JOIN credit_risk.models m ON m.name = 'tune_rt' AND m.version = (r.detail->>'candidate_version')::int
  JOIN credit_risk.tuning_runs t ON t.model_name = 'tune_rt'
 ORDER BY r.step;
SELECT expect_error($$SELECT credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'gbm', '{"key": "id", "tuned": true, "search": {"space": {"max_depth": [1, 2]}}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('tune_none', 'tune_apps', 'y', 'gbm', '{"key": "id", "tuned": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'logistic', '{"key": "id", "tuned": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'gbm', '{"key": "id", "tuned": "yes"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'gbm', '{"key": "id", "search": [1, 2]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('tune_rt', 'tune_apps', 'y', 'gbm', '{"key": "id", "search": {"space": {"colour": [1, 2]}}}')$$);
SELECT count(*) AS versions FROM credit_risk.models WHERE name = 'tune_rt';
