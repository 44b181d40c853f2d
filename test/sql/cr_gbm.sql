-- Gradient-boosted trees: accuracy, determinism, missing values, monotone
-- constraints, early stopping, importance, limits and errors.

-- German credit, split by applicant id like the logistic model.
SELECT version, algorithm, train_rows, holdout_rows,
       (metrics->>'auc')::float8 > 0.70 AS auc_above_floor,
       (metrics->>'train_auc')::float8 > 0.90 AS fits_training_rows,
       (metrics->>'n_trees')::int AS n_trees, (metrics->>'best_iteration')::int AS best_iteration
  FROM credit_risk.cr_train('german_gbm', 'german_credit', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id"}');

-- The effective parameters.
SELECT params - 'threads' AS params FROM credit_risk.models WHERE name = 'german_gbm';

-- Same seed, same bytes; and the same bytes at any number of threads.
SELECT version FROM credit_risk.cr_train('german_gbm', 'german_credit', 'bad', 'gbm', NULL,
                                         '{"key": "applicant_id", "threads": 1}');
SELECT version FROM credit_risk.cr_train('german_gbm', 'german_credit', 'bad', 'gbm', NULL,
                                         '{"key": "applicant_id", "threads": 3}');
SELECT count(DISTINCT model) AS distinct_models, count(*) AS versions,
       count(DISTINCT params->'threads') AS thread_counts
  FROM credit_risk.models WHERE name = 'german_gbm';

-- A different seed with row subsampling gives a different model.
SELECT a.model <> b.model AS differs
  FROM credit_risk.models a,
       credit_risk.cr_train('german_gbm_sub', 'german_credit', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "subsample": 0.8, "colsample_bytree": 0.7, "seed": 7}') b
 WHERE a.name = 'german_gbm' AND a.version = 1;

-- Scoring raw values through the stored thresholds gives exactly what the
-- trainer computed from the bins: metrics recomputed in SQL agree.
SELECT version FROM credit_risk.cr_train('german_gbm_full', 'german_credit', 'bad', 'gbm', NULL,
                                         '{"holdout": 0, "n_trees": 30, "max_depth": 4}');
WITH s AS (
    SELECT bad, credit_risk.cr_predict('german_gbm_full', g) AS p FROM german_credit g
)
SELECT abs((m.metrics->>'brier')::float8 - avg((p - bad) ^ 2)) < 1e-12 AS brier_ok,
       abs((m.metrics->>'log_loss')::float8 + avg(bad * ln(p) + (1 - bad) * ln(1 - p))) < 1e-12 AS log_loss_ok
  FROM s, credit_risk.models m WHERE m.name = 'german_gbm_full'
 GROUP BY m.metrics;

-- The three forms and the model-as-value forms agree.
SELECT count(*) FILTER (WHERE credit_risk.cr_predict('german_gbm', g)
                              = (credit_risk.cr_predict('german_gbm', to_jsonb(g))->>'default_probability')::float8) AS jsonb_equal,
       count(*) FILTER (WHERE credit_risk.cr_predict('german_gbm', g) = credit_risk.cr_predict(m.model, g)) AS bytes_equal
  FROM german_credit g, credit_risk.models m
 WHERE m.name = 'german_gbm' AND m.version = 3;

-- Importance: every feature, with gain, cover and split count; the split
-- counts add up to the internal nodes of the trees.
SELECT count(*) AS features,
       bool_and(value ? 'gain' AND value ? 'cover' AND value ? 'splits') AS complete,
       sum((value->>'splits')::int) = ((m.metrics->>'nodes')::int - (m.metrics->>'n_trees')::int) / 2 AS splits_add_up,
       (array_agg(key ORDER BY (value->>'gain')::float8 DESC))[1] AS top_feature
  FROM credit_risk.models m, jsonb_each(m.importance)
 WHERE m.name = 'german_gbm' AND m.version = 1
 GROUP BY m.metrics;

SELECT info->>'algorithm' AS algorithm, (info->>'trees')::int AS trees
  FROM (SELECT credit_risk.cr_model_info(model) AS info FROM credit_risk.models
         WHERE name = 'german_gbm' AND version = 1) s;

-- Missing values take the direction learned in training, not an imputed
-- value: here a missing x means a high risk, higher than any observed x.
CREATE TABLE missing_data AS
SELECT i AS id,
       CASE WHEN i % 5 = 0 THEN NULL ELSE (i % 97) / 97.0 END AS x,
       ((i * 7919) % 101) / 101.0 AS noise,
       CASE WHEN i % 5 = 0 THEN (i % 25 <> 5)::int          -- missing: 80% default
            WHEN (i % 97) / 97.0 > 0.7 THEN (i % 3 <> 0)::int -- high x: 67%
            ELSE (i % 10 = 1)::int END AS y                  -- low x: 10%
  FROM generate_series(1, 5000) i;
SELECT version FROM credit_risk.cr_train('missing_gbm', 'missing_data', 'y', 'gbm', ARRAY['x', 'noise'],
                                         '{"holdout": 0, "n_trees": 50, "max_depth": 3}');
SELECT round(credit_risk.cr_predict('missing_gbm', ARRAY[NULL, 0.5]::float8[])::numeric, 1) AS pd_missing,
       round(credit_risk.cr_predict('missing_gbm', ARRAY[0.9, 0.5]::float8[])::numeric, 1) AS pd_high_x,
       round(credit_risk.cr_predict('missing_gbm', ARRAY[0.2, 0.5]::float8[])::numeric, 1) AS pd_low_x,
       credit_risk.cr_predict('missing_gbm', ARRAY[NULL, 0.5]::float8[])
         > (SELECT max(credit_risk.cr_predict('missing_gbm', ARRAY[v / 100.0, 0.5]::float8[]))
              FROM generate_series(0, 100) v) AS missing_above_every_value;

-- The scorer against a plain-SQL walk of the trees (cr_model_trees): for
-- values exactly at a split threshold (which go right), just below it, and
-- missing, for every feature a model splits on.  Trees deeper than 10 are
-- scored by walking the nodes themselves rather than the complete-tree
-- layout: deep_gbm's reach depth 12.
SELECT version FROM credit_risk.cr_train('deep_gbm', 'german_credit', 'bad', 'gbm', NULL,
                                         '{"holdout": 0, "n_trees": 5, "max_depth": 12,
                                           "min_child_weight": 0.01, "lambda": 0.01}');
WITH RECURSIVE t AS (
    SELECT t.* FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t WHERE m.name = 'deep_gbm'
), d(tree, node, depth) AS (
    SELECT tree, 0, 0 FROM t WHERE node = 0
    UNION ALL
    SELECT t.tree, c, d.depth + 1
      FROM d JOIN t USING (tree, node), LATERAL (VALUES (t.left_child), (t.right_child)) v(c)
     WHERE t.feature IS NOT NULL
)
SELECT max(depth) > 10 AS deeper_than_10 FROM d;
CREATE TEMP TABLE probe_nodes AS
SELECT m.name, t.*, array_position(m.features, t.feature) AS j
  FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t
 WHERE (m.name, m.version) IN (('german_gbm', 3), ('missing_gbm', 1), ('deep_gbm', 1));
CREATE TEMP TABLE probes AS
WITH base AS (
    SELECT m.name, m.features,
           (SELECT array_agg((to_jsonb(g) ->> f)::float8 ORDER BY o)
              FROM unnest(m.features) WITH ORDINALITY u(f, o)) AS x
      FROM credit_risk.models m, german_credit g
     WHERE ((m.name = 'german_gbm' AND m.version = 3) OR m.name = 'deep_gbm')
       AND g.applicant_id IN (1, 2)
    UNION ALL
    SELECT 'missing_gbm', ARRAY['x', 'noise'], ARRAY[v, 0.5]::float8[]
      FROM (VALUES (0.2::float8), (0.8)) v(v)
), splits AS (
    SELECT DISTINCT name, j, threshold FROM probe_nodes WHERE feature IS NOT NULL AND tree < 20
), v AS (
    SELECT b.name, b.x, s.j, val, kind
      FROM base b JOIN splits s USING (name),
           LATERAL (VALUES (s.threshold, 'at'),
                           (s.threshold - (abs(s.threshold) + 1) * 1e-9, 'below'),
                           (NULL, 'missing')) w(val, kind)
)
SELECT row_number() OVER () AS id, name, kind, x[:j - 1] || val || x[j + 1:] AS x FROM v;
WITH RECURSIVE walk(id, tree, node) AS (
    SELECT p.id, t.tree, 0 FROM probes p JOIN (SELECT DISTINCT name, tree FROM probe_nodes) t USING (name)
    UNION ALL
    SELECT w.id, w.tree,
           CASE WHEN p.x[n.j] IS NULL THEN CASE WHEN n.default_left THEN n.left_child ELSE n.right_child END
                WHEN p.x[n.j] < n.threshold THEN n.left_child ELSE n.right_child END
      FROM walk w JOIN probes p USING (id)
      JOIN probe_nodes n ON n.name = p.name AND n.tree = w.tree AND n.node = w.node
     WHERE n.feature IS NOT NULL
), ref AS (
    SELECT p.id, p.name, p.kind, p.x, sum(n.value) AS leaves
      FROM walk w JOIN probes p USING (id)
      JOIN probe_nodes n ON n.name = p.name AND n.tree = w.tree AND n.node = w.node
     WHERE n.feature IS NULL
     GROUP BY p.id, p.name, p.kind, p.x
)
SELECT r.name, r.kind, count(*) AS probes,
       count(*) FILTER (WHERE abs(credit_risk.cr_predict(r.name, r.x)
                                  - 1 / (1 + exp(-((credit_risk.cr_model_info(m.model) ->> 'base_margin')::float8 + r.leaves))))
                              > 1e-12) AS mismatches
  FROM ref r JOIN credit_risk.models m ON m.name = r.name AND m.version = CASE r.name WHEN 'german_gbm' THEN 3 ELSE 1 END
 GROUP BY r.name, r.kind ORDER BY 1, 2;
-- Both default directions occur among the splits the missing probes cross.
SELECT name, count(DISTINCT default_left) AS directions FROM probe_nodes WHERE feature IS NOT NULL GROUP BY name ORDER BY 1;

-- Batch and row forms agree on the deep trees too.
SELECT count(*) AS rows,
       count(*) FILTER (WHERE b.default_probability = credit_risk.cr_predict('deep_gbm', g)) AS equal
  FROM credit_risk.cr_predict_batch('deep_gbm', 'german_credit', 'applicant_id') b
  JOIN german_credit g ON g.applicant_id::text = b.key;

-- cr_model_trees lists every node the bytes hold; it refuses logistic models.
SELECT count(*) = (credit_risk.cr_model_info(m.model) ->> 'nodes')::int AS every_node,
       count(*) FILTER (WHERE t.feature IS NULL) > count(*) / 2 AS more_leaves_than_splits,
       count(DISTINCT t.tree) = (credit_risk.cr_model_info(m.model) ->> 'trees')::int AS every_tree
  FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t
 WHERE m.name = 'missing_gbm'
 GROUP BY m.model;
SELECT expect_error($$SELECT * FROM credit_risk.cr_model_trees((SELECT model FROM credit_risk.models WHERE algorithm = 'logistic' LIMIT 1))$$);

-- Monotone constraints: risk falls with u up to 0.5 and rises after (a U),
-- and rises with v.  Constrained to increase in u, the model's PD never
-- decreases along a sweep of u for any applicant; unconstrained it does.
CREATE TABLE mono_data AS
SELECT i AS id, u, v,
       (((i * 2654435761::bigint) % 1000) / 1000.0 <
        1 / (1 + exp(-(-1.5 + 8 * (u - 0.5) ^ 2 + 2 * v))))::int AS y
  FROM (SELECT i, ((i * 7919) % 1009) / 1009.0 AS u, ((i * 104729) % 1013) / 1013.0 AS v
          FROM generate_series(1, 20000) i) s;
SELECT version FROM credit_risk.cr_train('mono_free', 'mono_data', 'y', 'gbm', ARRAY['u', 'v'],
                                         '{"holdout": 0, "n_trees": 60, "max_depth": 4}');
SELECT params->'monotone' AS monotone
  FROM credit_risk.cr_train('mono_up', 'mono_data', 'y', 'gbm', ARRAY['u', 'v'],
                            '{"holdout": 0, "n_trees": 60, "max_depth": 4, "monotone": {"u": 1, "v": 1}}');
SELECT version FROM credit_risk.cr_train('mono_down', 'mono_data', 'y', 'gbm', ARRAY['u', 'v'],
                                         '{"holdout": 0, "n_trees": 60, "max_depth": 4, "monotone": {"u": -1}}');
WITH applicants AS (
    SELECT id, v FROM mono_data WHERE id % 100 = 0          -- 200 applicants
), sweep AS (
    SELECT a.id, s.k,
           credit_risk.cr_predict('mono_free', ARRAY[s.k / 50.0, a.v]::float8[]) AS p_free,
           credit_risk.cr_predict('mono_up', ARRAY[s.k / 50.0, a.v]::float8[]) AS p_up,
           credit_risk.cr_predict('mono_down', ARRAY[s.k / 50.0, a.v]::float8[]) AS p_down
      FROM applicants a, generate_series(-5, 55) s(k)       -- u from -0.1 to 1.1
), steps AS (
    SELECT p_free - lag(p_free) OVER w AS d_free,
           p_up - lag(p_up) OVER w AS d_up,
           p_down - lag(p_down) OVER w AS d_down
      FROM sweep WINDOW w AS (PARTITION BY id ORDER BY k)
)
SELECT count(*) AS steps,
       count(*) FILTER (WHERE d_up < 0) AS up_violations,
       count(*) FILTER (WHERE d_down > 0) AS down_violations,
       count(*) FILTER (WHERE d_free < 0) > 0 AS free_model_falls,
       count(*) FILTER (WHERE d_free > 0) > 0 AS free_model_rises
  FROM steps WHERE d_free IS NOT NULL;

-- ... and in v, for every applicant along a sweep of v.
WITH sweep AS (
    SELECT a.id, s.k, credit_risk.cr_predict('mono_up', ARRAY[a.u, s.k / 50.0]::float8[]) AS p
      FROM (SELECT id, u FROM mono_data WHERE id % 100 = 0) a, generate_series(-5, 55) s(k)
)
SELECT count(*) FILTER (WHERE d < 0) AS v_violations
  FROM (SELECT p - lag(p) OVER (PARTITION BY id ORDER BY k) AS d FROM sweep) s;

-- Early stopping on the holdout log loss keeps the best iteration.
SELECT (metrics->>'trees_built')::int < 400 AS stopped_early,
       (metrics->>'n_trees')::int = (metrics->>'best_iteration')::int + 1 AS kept_best,
       (metrics->>'trees_built')::int = (metrics->>'best_iteration')::int + 1 + 10 AS ten_more_tried,
       abs((metrics->>'best_holdout_log_loss')::float8 - (metrics->>'log_loss')::float8) < 1e-12 AS loss_is_the_best,
       credit_risk.cr_model_info(model)->'trees' = metrics->'n_trees' AS model_has_kept_trees
  FROM credit_risk.cr_train('german_gbm_es', 'german_credit', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "n_trees": 400, "learning_rate": 0.3,
                              "early_stopping_rounds": 10}');

-- Coefficients exist only for logistic models and scorecards.
SELECT expect_error($$SELECT * FROM credit_risk.cr_coefficients('german_gbm')$$);

-- Bad parameters.
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"max_depth": -1}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"max_depth": 2.5}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"learning_rate": 0}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"learning_rate": 1.5}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"n_trees": 0}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"max_bin": 300}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"threads": 0}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"subsample": 0}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"lambda": -1}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"l2": 1}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"n_tree": 10}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"monotone": {"nope": 1}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"monotone": {"age": 2}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"monotone": [1]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'gbm', NULL, '{"holdout": 0, "early_stopping_rounds": 5}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'logistic', NULL, '{"n_trees": 5}')$$);

-- The memory limit refuses before loading, with a hint.
SET credit_risk.train_memory = '1MB';
ANALYZE synth;
SELECT credit_risk.cr_train('m', 'synth', 'y', 'gbm');
-- a query source has no size estimate: the limit stops the load
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT * FROM synth, generate_series(1, 3)', 'y', 'gbm')$$);
RESET credit_risk.train_memory;

-- Threads: the setting's range is checked.
SELECT expect_error($$SET credit_risk.threads = 0$$);
SELECT expect_error($$SET credit_risk.threads = 65$$);
SET credit_risk.threads = 2;
SELECT (metrics->>'threads')::int AS threads, params->'threads' AS param
  FROM credit_risk.cr_train('german_gbm_t2', 'german_credit', 'bad', 'gbm', NULL, '{"n_trees": 5}');
RESET credit_risk.threads;

SELECT count(*) AS nothing_registered FROM credit_risk.models WHERE name = 'm';

-- A node whose hessian sum is below twice min_child_weight cannot split: its
-- tree is a single leaf, and training goes on (this once crashed the server).
-- Two rows, one event: no tree can split, so every score is the base rate.
SELECT train_rows, (metrics->>'trees_built')::int AS trees_built
  FROM credit_risk.cr_train('tiny', $$VALUES (0.1::float8, 0), (0.9, 1)$$, 'column2', 'gbm', NULL,
                            '{"holdout": 0}');
SELECT credit_risk.cr_predict('tiny', ARRAY[0.1]::float8[]) AS low,
       credit_risk.cr_predict('tiny', ARRAY[0.9]::float8[]) AS high;
SELECT count(*) AS nodes, count(*) FILTER (WHERE left_child IS NULL) AS leaves
  FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t WHERE m.name = 'tiny';
-- A feature that separates the classes: later trees see hessians near zero.
SELECT (metrics->>'trees_built')::int AS trees_built, (metrics->>'auc')::float8 AS auc
  FROM credit_risk.cr_train('separable', 'SELECT g AS id, (g % 2)::float8 AS x, g % 2 AS y FROM generate_series(1, 1000) g', 'y');
SELECT round(credit_risk.cr_predict('separable', ARRAY[500, 0]::float8[])::numeric, 3) AS even,
       round(credit_risk.cr_predict('separable', ARRAY[501, 1]::float8[])::numeric, 3) AS odd;
-- A few events in a thousand, a strong min_child_weight, a small subsample,
-- no L2: every root too light to split, some samples empty.
SELECT (metrics->>'trees_built')::int AS trees_built
  FROM credit_risk.cr_train('rare', 'SELECT (g % 7)::float8 AS x, (g % 333 = 0)::int AS y FROM generate_series(1, 1000) g', 'y',
                            'gbm', NULL, '{"holdout": 0, "min_child_weight": 50, "lambda": 0}');
SELECT abs(credit_risk.cr_predict('rare', ARRAY[1]::float8[]) - 3.0 / 1000) < 1e-6 AS scores_base_rate,
       (SELECT count(*) FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t
         WHERE m.name = 'rare' AND t.left_child IS NOT NULL) AS splits;
SELECT (metrics->>'trees_built')::int AS trees_built
  FROM credit_risk.cr_train('rare_sub', 'SELECT (g % 7)::float8 AS x, (g % 333 = 0)::int AS y FROM generate_series(1, 1000) g', 'y',
                            'gbm', NULL, '{"holdout": 0, "subsample": 0.001, "lambda": 0, "n_trees": 20}');
SELECT credit_risk.cr_predict('rare_sub', ARRAY[1]::float8[]) BETWEEN 0 AND 1 AS finite;

-- Values near the limits of double precision: their sum overflows, their
-- mean (the imputation value) does not; the model is stored readable.
CREATE TABLE huge AS
SELECT i AS id, CASE WHEN i % 3 = 0 THEN -1.7e308 ELSE 1.7e308 END::float8 AS x, (i % 2)::int AS y
  FROM generate_series(1, 10) i;
SELECT version FROM credit_risk.cr_train('huge', 'huge', 'y', 'gbm', ARRAY['x'], '{"n_trees": 2, "holdout": 0}');
SELECT credit_risk.cr_predict('huge', ARRAY[NULL]::float8[]) BETWEEN 0 AND 1 AS scores_missing,
       (SELECT credit_risk.cr_model_info(model)->>'algorithm' FROM credit_risk.models WHERE name = 'huge') AS readable;
-- logistic regression standardises its features: these values cannot be
SELECT expect_error($$SELECT credit_risk.cr_train('huge_lr', 'huge', 'y', 'logistic', ARRAY['x'], '{"holdout": 0}')$$);
