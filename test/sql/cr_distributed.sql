-- params.distributed: a logistic regression fitted from sums each part of
-- the source computes (cr_train_partial), never loading the rows.

-- German credit hashed over three partitions, and the table itself.
CREATE TABLE german_parts (LIKE german_credit) PARTITION BY HASH (applicant_id);
CREATE TABLE german_parts_0 PARTITION OF german_parts FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE german_parts_1 PARTITION OF german_parts FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE german_parts_2 PARTITION OF german_parts FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO german_parts SELECT * FROM german_credit ORDER BY random();

SELECT name, train_rows, holdout_rows, params->>'distributed' AS distributed,
       metrics->'distributed'->>'parts' AS parts,
       (metrics->'distributed'->>'newton_passes')::int BETWEEN 3 AND 20 AS newton_passes_ok,
       (metrics->'distributed'->>'scored_rows')::int AS scored_rows,
       (metrics->'distributed'->>'sampled_rows')::int = train_rows AS whole_sample
  FROM credit_risk.cr_train('german_dist', 'german_parts', 'bad', 'logistic', NULL,
                            '{"key": "applicant_id", "distributed": true}');
SELECT name, train_rows, holdout_rows
  FROM credit_risk.cr_train('german_loaded', 'german_credit', 'bad', 'logistic', NULL,
                            '{"key": "applicant_id"}');
SELECT name, metrics->'distributed'->>'parts' AS parts
  FROM credit_risk.cr_train('german_dist_one', 'german_credit', 'bad', 'logistic', NULL,
                            '{"key": "applicant_id", "distributed": true}');

-- the coefficients and standard errors are those of the loaded fit, to 1e-10
CREATE FUNCTION logit_terms(n text) RETURNS TABLE (k text, v float8) LANGUAGE sql AS $$
    WITH l AS (SELECT credit_risk.cr_export(n)->'logistic' AS l)
    SELECT 'intercept', (l->>'intercept')::float8 FROM l
    UNION ALL SELECT 'intercept_se', (l->>'intercept_std_error')::float8 FROM l
    UNION ALL SELECT f->>'feature', (f->>'coefficient')::float8 FROM l, jsonb_array_elements(l->'coefficients') f
    UNION ALL SELECT (f->>'feature') || '_se', (f->>'std_error')::float8 FROM l, jsonb_array_elements(l->'coefficients') f
$$;
SELECT count(*) AS terms, max(abs(a.v - b.v) / greatest(abs(a.v), 1e-300)) < 1e-10 AS equal_to_1e10
  FROM logit_terms('german_dist') a JOIN logit_terms('german_loaded') b USING (k);
SELECT count(*) AS terms, max(abs(a.v - b.v) / greatest(abs(a.v), 1e-300)) < 1e-10 AS equal_to_1e10
  FROM logit_terms('german_dist_one') a JOIN logit_terms('german_loaded') b USING (k);

-- the metrics and drift baselines are the loaded fit's; the imputed values to 1e-12
SELECT (a.metrics - 'fit_seconds' - 'load_seconds' - 'distributed' - 'log_likelihood'
                  - 'null_log_likelihood' - 'pseudo_r2' - 'log_loss' - 'brier')
       = (b.metrics - 'fit_seconds' - 'load_seconds' - 'log_likelihood'
                    - 'null_log_likelihood' - 'pseudo_r2' - 'log_loss' - 'brier') AS same_metrics,
       abs((a.metrics->>'log_likelihood')::float8 - (b.metrics->>'log_likelihood')::float8) < 1e-9 AS same_ll,
       credit_risk.cr_export('german_dist')->'drift_baseline'->'features'
         = credit_risk.cr_export('german_loaded')->'drift_baseline'->'features' AS same_baselines,
       (SELECT bool_and(abs((x->>'impute')::float8 - (y->>'impute')::float8) <= 1e-12 * abs((y->>'impute')::float8))
          FROM jsonb_array_elements(credit_risk.cr_export('german_dist')->'features') WITH ORDINALITY i(x, o)
          JOIN jsonb_array_elements(credit_risk.cr_export('german_loaded')->'features') WITH ORDINALITY j(y, o) USING (o)) AS same_impute,
       a.features = b.features AS same_features
  FROM credit_risk.models a, credit_risk.models b
 WHERE a.name = 'german_dist' AND b.name = 'german_loaded';

-- it scores like any logistic model
SELECT count(*) FILTER (WHERE abs(credit_risk.cr_predict('german_dist', g) - credit_risk.cr_predict('german_loaded', g)) > 1e-12) AS differ
  FROM german_credit g;

-- a class weight and a ridge penalty go into the passes too
SELECT max(abs(a.v - b.v) / greatest(abs(a.v), 1e-300)) < 1e-10 AS equal_to_1e10
  FROM (SELECT 1 FROM credit_risk.cr_train('w_dist', 'german_parts', 'bad', 'logistic', ARRAY['duration_months', 'credit_amount', 'age'],
                 '{"key": "applicant_id", "distributed": true, "class_weight": "balanced", "l2": 2}')) t1,
       (SELECT 1 FROM credit_risk.cr_train('w_loaded', 'german_credit', 'bad', 'logistic', ARRAY['duration_months', 'credit_amount', 'age'],
                 '{"key": "applicant_id", "class_weight": "balanced", "l2": 2}')) t2,
       logit_terms('w_dist') a JOIN logit_terms('w_loaded') b USING (k);

-- what it does not take, with a clear error
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'logistic', NULL, '{"distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true, "cv": 3}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true, "categorical": ["dependents"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT applicant_id, bad, ''a''::text AS t, age FROM german_credit', 'bad', 'logistic', ARRAY['t', 'age'], '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'logistic', ARRAY['nope'], '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'logistic', ARRAY['bad'], '{"key": "applicant_id", "distributed": true}')$$);
-- bad rows, found where they are
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT applicant_id, bad, CASE WHEN applicant_id = 7 THEN ''Infinity''::float8 ELSE age END AS age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT applicant_id, bad * 2 AS bad, age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT NULLIF(applicant_id, 9) AS applicant_id, bad, age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT applicant_id, bad, 5 AS age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT applicant_id, bad, NULL::float8 AS age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "applicant_id", "distributed": true}')$$);
SELECT count(*) AS registered FROM credit_risk.models WHERE name = 'x';

-- cr_tune loads the rows; a key whose text depends on settings is refused
SELECT expect_error($$SELECT * FROM credit_risk.cr_tune('x', 'german_parts', 'bad', 'logistic', NULL, '{"method": "grid", "space": {"l2": [0, 1]}}', '{"key": "applicant_id", "distributed": true}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'SELECT now() + applicant_id * interval ''1 day'' AS k, bad, age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "k", "distributed": true}')$$);
SELECT name, train_rows FROM credit_risk.cr_train('text_key', 'SELECT applicant_id::text AS k, bad, age, duration_months FROM german_credit', 'bad', 'logistic', NULL, '{"key": "k", "distributed": true}');

-- row-level security on a partitioned source applies as to a query of it
CREATE ROLE cr_dist_rls;
GRANT USAGE ON SCHEMA credit_risk TO cr_dist_rls;
GRANT EXECUTE ON FUNCTION credit_risk.cr_train(text, text, text, text, text[], jsonb) TO cr_dist_rls;
GRANT SELECT ON german_parts TO cr_dist_rls;
ALTER TABLE german_parts ENABLE ROW LEVEL SECURITY;
CREATE POLICY first_600 ON german_parts FOR SELECT TO cr_dist_rls USING (applicant_id <= 600);
SET ROLE cr_dist_rls;
SELECT count(*) AS visible FROM german_parts;
SELECT train_rows + holdout_rows AS trained_on
  FROM credit_risk.cr_train('rls_dist', 'german_parts', 'bad', 'logistic', ARRAY['age', 'duration_months'],
                            '{"key": "applicant_id", "distributed": true}');
RESET ROLE;
DROP POLICY first_600 ON german_parts;
ALTER TABLE german_parts DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON german_parts FROM cr_dist_rls;
REVOKE ALL ON FUNCTION credit_risk.cr_train(text, text, text, text, text[], jsonb) FROM cr_dist_rls;
REVOKE ALL ON SCHEMA credit_risk FROM cr_dist_rls;
DROP ROLE cr_dist_rls;

-- missing values are imputed with the training mean, as when loaded
SELECT max(abs(a.v - b.v) / greatest(abs(a.v), 1e-300)) < 1e-10 AS equal_to_1e10
  FROM (SELECT 1 FROM credit_risk.cr_train('m_dist', 'SELECT applicant_id, bad, NULLIF(age, 30) AS age, duration_months FROM german_credit', 'bad', 'logistic', NULL,
                 '{"key": "applicant_id", "distributed": true}')) t1,
       (SELECT 1 FROM credit_risk.cr_train('m_loaded', 'SELECT applicant_id, bad, NULLIF(age, 30) AS age, duration_months FROM german_credit', 'bad', 'logistic', NULL,
                 '{"key": "applicant_id"}')) t2,
       logit_terms('m_dist') a JOIN logit_terms('m_loaded') b USING (k);

-- cr_train_partial is handed bytes: a spec or state that is not one is an
-- error, whatever it holds.  A moments spec over two features (little-endian):
-- magic, version 1, kind 1, p 2, 8 bytes of padding, holdout 0.2, class weights 1 and 1, names.
SELECT decode('5350524301000100' || '020000000000000000000000' || '9a9999999999c93f'
              || '000000000000f03f' || '000000000000f03f' || '6100' || '6200', 'hex') AS spec \gset
SELECT length(credit_risk.cr_train_partial(:'spec'::bytea, ARRAY[age, duration_months]::float8[], bad::float8,
                                           credit_risk.cr_split_unit(applicant_id, 42))) AS state_bytes
  FROM german_credit;
-- every truncation of the spec, and every byte changed, is an error or a state; never a crash
SELECT count(*) AS truncations,
       count(*) FILTER (WHERE expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[1, 2]::float8[], 0, 0.5)',
                                                  substring(:'spec'::bytea FROM 1 FOR n))) LIKE '22023%') AS rejected
  FROM generate_series(0, length(:'spec'::bytea) - 1) n;
SELECT count(*) AS alterations,
       count(*) FILTER (WHERE r LIKE '22023%' OR r = 'no error') AS handled
  FROM (SELECT expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[1, 2]::float8[], 0, 0.5)',
                                   set_byte(:'spec'::bytea, n, (get_byte(:'spec'::bytea, n) + 1) % 256))) AS r
          FROM generate_series(0, length(:'spec'::bytea) - 1) n) s;
SELECT expect_error($$SELECT credit_risk.cr_train_partial(NULL, ARRAY[1, 2]::float8[], 0, 0.5)$$);
SELECT expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[1, 2]::float8[], 0, ''NaN'')', :'spec'));
SELECT expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[1, 2]::float8[], 0, 1)', :'spec'));
-- one state, one spec: a spec that changes between rows is an error
SELECT expect_error(format('SELECT credit_risk.cr_train_partial(CASE WHEN i = 1 THEN %L::bytea ELSE %L::bytea END, ARRAY[1, 2]::float8[], 0, 0.5) FROM generate_series(1, 2) i',
                           :'spec', set_byte(:'spec'::bytea, 27, 0)));
SELECT expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[1, 2, 3]::float8[], 0, 0.5)', :'spec'));
SELECT expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[1, 2]::int[]::float8[], NULL, 0.5)', :'spec'));
SELECT expect_error(format('SELECT credit_risk.cr_train_partial(%L::bytea, ARRAY[[1, 2]]::float8[], 0, 0.5)', :'spec'));
-- states: added only to states of the same pass; anything else is an error
SELECT credit_risk.cr_train_partial(:'spec'::bytea, ARRAY[1, 2]::float8[], 1, 0.5) AS state \gset
SELECT length(credit_risk.cr_train_partial_combine(:'state'::bytea, :'state'::bytea)) AS combined_bytes,
       credit_risk.cr_train_partial_combine(:'state'::bytea, NULL) = :'state'::bytea AS null_is_nothing,
       credit_risk.cr_train_partial_step(:'state'::bytea, :'spec'::bytea, ARRAY[3, 4]::float8[], 0, 0.9)
         <> :'state'::bytea AS step_adds;
SELECT count(*) AS truncations,
       count(*) FILTER (WHERE expect_error(format('SELECT credit_risk.cr_train_partial_combine(%L::bytea, %L::bytea)',
                                                  :'state', substring(:'state'::bytea FROM 1 FOR n))) LIKE '22023%') AS rejected
  FROM generate_series(0, length(:'state'::bytea) - 1) n;
SELECT expect_error(format('SELECT credit_risk.cr_train_partial_step(%L::bytea, %L::bytea, ARRAY[1, 2]::float8[], 0, 0.5)',
                           set_byte(:'state'::bytea, 4, 2), :'spec'));
SELECT expect_error(format('SELECT credit_risk.cr_train_partial_combine(%L::bytea, %L::bytea)',
                           :'state', substring(:'state'::bytea FROM 1 FOR 20) || decode(repeat('00', length(:'state'::bytea) - 20), 'hex')
                                     || decode('00', 'hex')));

-- gradient-boosted trees with params.distributed: the source's rows binned
-- once by cr_gbm_shard_load (here the parent, in this backend), each tree
-- level a cr_gbm_shard message; the trees are those of the loaded fit
CREATE FUNCTION tree_shape(n text) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_agg(t - 'value' - 'cover' ORDER BY i)
      FROM jsonb_array_elements(credit_risk.cr_export(n)->'gbm'->'trees') WITH ORDINALITY x(t, i)
$$;
CREATE FUNCTION leaf_diff(a text, b text) RETURNS float8 LANGUAGE sql AS $$
    WITH v AS (
        SELECT n, i, j, e.v::float8 AS v
          FROM unnest(ARRAY[a, b]) n,
               LATERAL jsonb_array_elements(credit_risk.cr_export(n)->'gbm'->'trees') WITH ORDINALITY x(t, i),
               LATERAL jsonb_array_elements_text(t->'value') WITH ORDINALITY e(v, j))
    SELECT max(abs(x.v - y.v)) FROM v x JOIN v y USING (i, j) WHERE x.n = a AND y.n = b
$$;
SELECT name, train_rows, holdout_rows, (metrics->>'n_trees')::int AS n_trees,
       metrics->'distributed'->>'parts' AS parts,
       (metrics->'distributed'->>'round_trips')::int <= (metrics->'distributed'->>'levels')::int + 2 AS a_trip_a_level,
       (metrics->'distributed'->>'scored_rows')::int AS scored_rows
  FROM credit_risk.cr_train('gbm_dist', 'german_parts', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "distributed": true, "n_trees": 30}');
SELECT name FROM credit_risk.cr_train('gbm_loaded', 'german_credit', 'bad', 'gbm', NULL,
                                      '{"key": "applicant_id", "n_trees": 30}');
SELECT jsonb_array_length(tree_shape('gbm_dist')) AS trees,
       tree_shape('gbm_dist') = tree_shape('gbm_loaded') AS same_splits,
       leaf_diff('gbm_dist', 'gbm_loaded') < 1e-12 AS same_leaves,
       (SELECT max(abs(credit_risk.cr_predict('gbm_dist', g) - credit_risk.cr_predict('gbm_loaded', g))) < 1e-12
          FROM german_credit g) AS same_scores,
       (SELECT (a.metrics - 'fit_seconds' - 'load_seconds' - 'bin_seconds' - 'distributed' - 'threads')
               = (b.metrics - 'fit_seconds' - 'load_seconds' - 'bin_seconds' - 'threads')
          FROM credit_risk.models a, credit_risk.models b
         WHERE a.name = 'gbm_dist' AND b.name = 'gbm_loaded') AS same_metrics;
-- early stopping on the holdout, a column sample, a monotone constraint and class weights
SELECT metrics->>'trees_built' AS trees_built, metrics->>'best_iteration' AS best_iteration
  FROM credit_risk.cr_train('gbm_dist_es', 'german_parts', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "distributed": true, "n_trees": 200, "early_stopping_rounds": 10, "max_depth": 3,
                              "colsample_bytree": 0.7, "monotone": {"duration_months": 1}, "class_weight": "balanced", "lambda": 3}');
SELECT metrics->>'trees_built' AS trees_built, metrics->>'best_iteration' AS best_iteration
  FROM credit_risk.cr_train('gbm_loaded_es', 'german_credit', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "n_trees": 200, "early_stopping_rounds": 10, "max_depth": 3,
                              "colsample_bytree": 0.7, "monotone": {"duration_months": 1}, "class_weight": "balanced", "lambda": 3}');
SELECT tree_shape('gbm_dist_es') = tree_shape('gbm_loaded_es') AS same_splits,
       leaf_diff('gbm_dist_es', 'gbm_loaded_es') < 1e-12 AS same_leaves,
       abs((a.metrics->>'best_holdout_log_loss')::float8 - (b.metrics->>'best_holdout_log_loss')::float8) < 1e-12 AS same_loss
  FROM credit_risk.models a, credit_risk.models b
 WHERE a.name = 'gbm_dist_es' AND b.name = 'gbm_loaded_es';
-- a level's nodes over several messages (one node a message here), each
-- built in batches of one node: the same trees
SET credit_risk.histogram_message = '1kB';
SELECT (metrics->'distributed'->>'round_trips')::int > (metrics->'distributed'->>'levels')::int + 2 AS more_trips_than_levels
  FROM credit_risk.cr_train('gbm_dist_small', 'german_parts', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "distributed": true, "n_trees": 30}');
RESET credit_risk.histogram_message;
SELECT tree_shape('gbm_dist_small') = tree_shape('gbm_loaded') AS same_splits,
       leaf_diff('gbm_dist_small', 'gbm_loaded') < 1e-12 AS same_leaves;
-- a part cuts a node of more than 131,072 rows into chunks built in
-- threads and added in chunk order: the same trees with one thread or two,
-- and the loaded fit's (120,000 training rows: the same cut points)
CREATE TABLE gbm_chunks AS
SELECT i AS id, (hashint4(i) % 1000) / 1000.0 AS a, (hashint4(i * 7 + 1) % 1000) / 1000.0 AS b,
       ((hashint4(i) % 1000) / 1000.0 + (hashint4(i * 31) % 100) / 150.0 > 0.9)::int AS y
  FROM generate_series(1, 150000) i;
SET credit_risk.threads = 1;
SELECT train_rows FROM credit_risk.cr_train('chunks_t1', 'gbm_chunks', 'y', 'gbm', NULL,
                                            '{"key": "id", "distributed": true, "n_trees": 5, "max_depth": 3}');
SET credit_risk.threads = 2;
SELECT train_rows FROM credit_risk.cr_train('chunks_t2', 'gbm_chunks', 'y', 'gbm', NULL,
                                            '{"key": "id", "distributed": true, "n_trees": 5, "max_depth": 3}');
RESET credit_risk.threads;
SELECT train_rows FROM credit_risk.cr_train('chunks_loaded', 'gbm_chunks', 'y', 'gbm', NULL,
                                            '{"key": "id", "n_trees": 5, "max_depth": 3}');
SELECT credit_risk.cr_export('chunks_t1')->'gbm' = credit_risk.cr_export('chunks_t2')->'gbm' AS same_trees_any_threads,
       tree_shape('chunks_t1') = tree_shape('chunks_loaded') AS same_splits_as_loaded,
       leaf_diff('chunks_t1', 'chunks_loaded') < 1e-12 AS same_leaves_as_loaded;
DROP TABLE gbm_chunks;
-- nothing is left in this backend once the fit is done
SELECT count(*) AS shard_contexts FROM pg_backend_memory_contexts WHERE name LIKE 'credit_risk gbm%';
-- what it does not take: a row sample drawn by position
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'gbm', NULL, '{"key": "applicant_id", "distributed": true, "subsample": 0.8}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('x', 'german_parts', 'bad', 'gbm', NULL, '{"key": "applicant_id", "distributed": true, "categorical": ["dependents"]}')$$);

-- cr_gbm_shard_load and cr_gbm_shard are handed bytes.  A load spec over one
-- feature (little-endian): magic, version 1, p 1, holdout 0.2, class weights
-- 1 and 1, first margin 0, one cut point at 30.
SELECT decode('4c47524301000000' || '01000000' || '9a9999999999c93f' || '000000000000f03f'
              || '000000000000f03f' || '0000000000000000' || '01000000' || '0000000000003e40', 'hex') AS lspec \gset
SELECT credit_risk.cr_gbm_shard_load(:'lspec'::bytea, ARRAY[age]::float8[], bad::float8,
                                     credit_risk.cr_split_unit(applicant_id, 42)) AS loaded
  FROM german_credit \gset
SELECT length(:'loaded'::bytea) AS loaded_bytes,
       (SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'credit_risk gbm shard') AS shard_contexts;
-- a tree's root: flags 1 (a new tree), no levels, feature 0, the histogram of node 0
SELECT decode('4d47524301000000', 'hex') || substring(:'loaded'::bytea FROM 9 FOR 8)
       || decode('01000000' || '00000000' || '01000000' || '00000000' || '01000000' || '00000000', 'hex') AS msg \gset
SELECT length(credit_risk.cr_gbm_shard(:'msg'::bytea)) AS reply_bytes;
-- the rows are at the root now: the same root again is out of step
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard(%L::bytea)', :'msg'));
-- every truncation of a message is an error; every byte changed an error or a reply
SELECT count(*) AS truncations,
       count(*) FILTER (WHERE expect_error(format('SELECT credit_risk.cr_gbm_shard(%L::bytea)',
                                                  substring(:'msg'::bytea FROM 1 FOR n))) LIKE '22P03%') AS rejected
  FROM generate_series(0, length(:'msg'::bytea) - 1) n;
SELECT count(*) AS alterations,
       count(*) FILTER (WHERE r ~ '^(22P03|55000)' OR r = 'no error') AS handled
  FROM (SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard(%L::bytea)',
                                   set_byte(:'msg'::bytea, n, (get_byte(:'msg'::bytea, n) + 1) % 256))) AS r
          FROM generate_series(0, length(:'msg'::bytea) - 1) n) s;
SELECT count(*) AS spec_truncations,
       count(*) FILTER (WHERE expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[1]::float8[], 0, 0.5)',
                                                  substring(:'lspec'::bytea FROM 1 FOR n))) LIKE '22P03%') AS rejected
  FROM generate_series(0, length(:'lspec'::bytea) - 1) n;
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[1, 2]::float8[], 0, 0.5)', :'lspec'));
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[''NaN'']::float8[], 0, 0.5)', :'lspec'));
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[1]::float8[], 2, 0.5)', :'lspec'));
-- a message that fails part-way (its first level applied, its second out of
-- step) leaves the rows unusable until they are binned again
SELECT credit_risk.cr_gbm_shard_load(:'lspec'::bytea, ARRAY[age]::float8[], bad::float8,
                                     credit_risk.cr_split_unit(applicant_id, 42)) = :'loaded'::bytea AS loaded_again
  FROM german_credit;
SELECT length(credit_risk.cr_gbm_shard(:'msg'::bytea)) AS reply_bytes;
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard(%L::bytea)',
                           decode('4d47524301000000', 'hex') || substring(:'loaded'::bytea FROM 9 FOR 8)
                           || decode('00000000' || '02000000' || '01000000' || '01' || '00000000' || '00' || '00000000'
                                     || '05000000', 'hex')));
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard(%L::bytea)',
                           decode('4d47524301000000', 'hex') || substring(:'loaded'::bytea FROM 9 FOR 8)
                           || decode('00000000' || '00000000' || '00000000', 'hex')));
-- a session bins one set of rows at a time: not per group, nor twice in a query
SET enable_sort = off;
SELECT expect_error(format('SELECT applicant_id %% 3, credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[age]::float8[], bad::float8, 0.5)
                              FROM german_credit GROUP BY 1', :'lspec'));
RESET enable_sort;
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[age]::float8[], bad::float8, 0.5),
                                   credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[duration_months]::float8[], bad::float8, 0.5)
                              FROM german_credit', :'lspec', :'lspec'));
-- a load that fails part-way, or a spec that is not one, leaves nothing in the session
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[age]::float8[],
                                   CASE WHEN applicant_id = 999 THEN 2 ELSE bad END::float8, 0.5)
                              FROM (SELECT * FROM german_credit ORDER BY applicant_id) g', :'lspec'));
SELECT count(*) AS shard_contexts FROM pg_backend_memory_contexts WHERE name LIKE 'credit_risk gbm%';
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard_load(%L::bytea, ARRAY[1]::float8[], 0, 0.5)',
                           substring(:'lspec'::bytea FROM 1 FOR 50)));
SELECT count(*) AS shard_contexts FROM pg_backend_memory_contexts WHERE name LIKE 'credit_risk gbm%';
-- binned again, for the close below
SELECT credit_risk.cr_gbm_shard_load(:'lspec'::bytea, ARRAY[age]::float8[], bad::float8,
                                     credit_risk.cr_split_unit(applicant_id, 42)) = :'loaded'::bytea AS same_load
  FROM german_credit;
-- the run's last message frees the rows; then there is nothing to grow a tree on
SELECT credit_risk.cr_gbm_shard(decode('4d47524301000000', 'hex') || substring(:'loaded'::bytea FROM 9 FOR 8)
                                || decode('04000000', 'hex')) IS NULL AS closed;
SELECT count(*) AS shard_contexts FROM pg_backend_memory_contexts WHERE name LIKE 'credit_risk gbm%';
SELECT expect_error(format('SELECT credit_risk.cr_gbm_shard(%L::bytea)', :'msg'));
DROP FUNCTION tree_shape(text);
DROP FUNCTION leaf_diff(text, text);

DROP FUNCTION logit_terms(text);
DROP TABLE german_parts;

-- cr_publish: errors before any shard is touched
SELECT * FROM credit_risk.cr_publish(ARRAY[]::text[]);
SELECT * FROM credit_risk.cr_publish(ARRAY['nowhere']);
SELECT * FROM credit_risk.cr_publish(ARRAY[NULL]::text[]);
CREATE FOREIGN DATA WRAPPER cr_not_pg;
CREATE SERVER cr_not_pg_server FOREIGN DATA WRAPPER cr_not_pg;
SELECT * FROM credit_risk.cr_publish(ARRAY['cr_not_pg_server']);
SELECT * FROM credit_risk.cr_publish(ARRAY['cr_not_pg_server', 'cr_not_pg_server']);
BEGIN;
SELECT * FROM credit_risk.cr_publish(ARRAY['cr_not_pg_server']);
ROLLBACK;
-- only its owner, and those it grants it to, may publish
CREATE ROLE cr_publish_nobody;
GRANT USAGE ON SCHEMA credit_risk TO cr_publish_nobody;
SET ROLE cr_publish_nobody;
SELECT * FROM credit_risk.cr_publish(ARRAY['cr_not_pg_server']);
RESET ROLE;
REVOKE USAGE ON SCHEMA credit_risk FROM cr_publish_nobody;
DROP ROLE cr_publish_nobody;
DROP SERVER cr_not_pg_server;
DROP FOREIGN DATA WRAPPER cr_not_pg;
