-- Every bad input is an ERROR with an errcode and a message naming it.
-- Nothing is registered by a failed training run.
SELECT count(*) AS models_before FROM credit_risk.models \gset

CREATE TABLE bad_data (id int, x1 float8, x2 float8, note text, y int);
INSERT INTO bad_data
SELECT i, i % 7, (i * 13) % 11, 'n' || i, (i % 3 = 0)::int FROM generate_series(1, 200) i;

-- source problems
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'no_such_table', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT * FROM bad_data WHERE false', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', '', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT * FROM bad_data; DROP TABLE bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT * FROM bad_data) AS a; DROP TABLE bad_data; SELECT * FROM (SELECT 1', 'y', 'logistic')$$);
SELECT count(*) AS bad_data_still_there FROM bad_data;

-- label problems
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'nope', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT id, x1, CASE WHEN id = 17 THEN NULL ELSE y END AS y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT id, x1, CASE WHEN id = 5 THEN 2 ELSE y END AS y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT id, x1, 0 AS y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT x1, note AS y FROM bad_data', 'y', 'logistic')$$);

-- feature problems
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['x1', 'missing_col'])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['x1', 'note'])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['x1', 'x1'])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['x1', 'y'])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['x1', NULL])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY[]::text[])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT note, y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT id, CASE WHEN id = 9 THEN ''NaN''::float8 ELSE x1 END AS x1, y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT id, CASE WHEN id = 11 THEN ''-Infinity''::float8 ELSE x1 END AS x1, y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT NULL::float8 AS x1, x2, y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT 3.0::float8 AS c, x1, y FROM bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT x1, x2, x1 + 2 * x2 AS x3, y FROM bad_data', 'y', 'logistic', NULL, '{"holdout": 0}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT x1, x2, (x1 > 3)::int AS y FROM bad_data', 'y', 'logistic', NULL, '{"holdout": 0}')$$);

-- key problems
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"key": "nope"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT NULLIF(id, 4) AS id, x1, y FROM bad_data', 'y', 'logistic', NULL, '{"key": "id"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['id', 'x1'], '{"key": "id"}')$$);

-- name, algorithm and parameter problems
SELECT expect_error($$SELECT credit_risk.cr_train('bad name!', 'bad_data', 'y', 'logistic')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'forest')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'gbm', NULL, '{"max_depth": -1}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"holdot": 0.3}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"holdout": 1.5}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"holdout": "a lot"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"seed": 1.5}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '[1, 2]')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"risk_cutoffs": [0.5, 0.2], "risk_labels": ["a", "b", "c"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"risk_cutoffs": [0.2], "risk_labels": ["a"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', NULL, '{"score_pdo": 0}')$$);
-- risk_cutoffs alone keeps the default labels and risk_labels alone the
-- default cutoffs when the counts fit; otherwise the message says what fits
SELECT params->'risk_cutoffs' AS cutoffs, params->'risk_labels' AS labels
  FROM credit_risk.cr_train('m_cuts', 'german_credit', 'bad', 'logistic', ARRAY['age'], '{"risk_cutoffs": [0.1, 0.3]}');
SELECT params->'risk_cutoffs' AS cutoffs, params->'risk_labels' AS labels
  FROM credit_risk.cr_train('m_labels', 'german_credit', 'bad', 'logistic', ARRAY['age'], '{"risk_labels": ["A", "B", "C"]}');
-- (the registry's owner may delete rows directly)
DELETE FROM credit_risk.models WHERE name IN ('m_cuts', 'm_labels');
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'logistic', ARRAY['age'], '{"risk_cutoffs": [0.5]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'logistic', ARRAY['age'], '{"risk_labels": ["good", "bad"]}')$$);
-- a holdout that leaves no training rows says so
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'logistic', ARRAY['age'], '{"holdout": 0.9999999}')$$);
-- a number too large or too small for double precision is named in short
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'german_credit', 'bad', 'logistic', ARRAY['age'], '{"l2": 1e-400}')$$);
-- cr_in_holdout takes what cr_train takes
SELECT expect_error($$SELECT credit_risk.cr_in_holdout(1, 42, 'NaN')$$);
SELECT expect_error($$SELECT credit_risk.cr_in_holdout(1, 42, 2)$$);
SELECT expect_error($$SELECT credit_risk.cr_in_holdout(ROW(1, 2), 42, 0.2)$$);
SELECT expect_error($$SELECT credit_risk.cr_in_holdout(ARRAY[1, 2], 42, 0.2)$$);
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'SELECT * FROM bad_data LIMIT 3', 'y', 'logistic', ARRAY['x1'], '{"holdout": 0.01}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train(NULL, 'bad_data', 'y', 'logistic')$$);

-- a cancelled run (here by statement_timeout) stops and leaves nothing
SET statement_timeout = '20ms';
SELECT credit_risk.cr_train('cancelled', 'SELECT i, random() AS x, (random() < 0.3)::int AS y FROM generate_series(1, 5000000) i', 'y', 'logistic');
RESET statement_timeout;
SELECT count(*) AS cancelled_rows FROM credit_risk.models WHERE name = 'cancelled';

-- no failed run left a row behind
SELECT count(*) = :models_before AS nothing_registered FROM credit_risk.models;

-- scoring problems
SELECT expect_error($$SELECT credit_risk.cr_predict('no_such_model', ARRAY[1, 2]::float8[])$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', ARRAY[1, 2]::float8[])$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', ARRAY[[1, 2, 3]]::float8[])$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', ARRAY[30, 'Infinity', 1]::float8[])$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '{"customer_id": "C1", "age": 30}'::jsonb)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '{"age": "thirty", "duration_months": 12, "checking_none": 1}'::jsonb)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '{"age": true, "duration_months": 12, "checking_none": 1}'::jsonb)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '{"age": [30], "duration_months": 12, "checking_none": 1}'::jsonb)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '[30, 12, 1]'::jsonb)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', b) FROM bad_data b LIMIT 1$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', r) FROM (SELECT 'x'::text AS age, 1 AS duration_months, 0 AS checking_none) r$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', 42)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '{"age": 1e-400, "duration_months": 12, "checking_none": 1}'::jsonb)$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', '{"age": 1e400, "duration_months": 12, "checking_none": 1}'::jsonb)$$);
-- two columns of one name: which one is meant is not guessed
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', r) FROM (SELECT 30 AS age, 12 AS duration_months, 0 AS checking_none, 31 AS age) r$$);

-- registry problems
SELECT expect_error($$SELECT credit_risk.cr_promote('no_such_model', 1)$$);
SELECT expect_error($$SELECT credit_risk.cr_promote('german', 99)$$);
SELECT expect_error($$SELECT credit_risk.cr_promote('german', NULL)$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_coefficients('german', 99)$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_coefficients('german', 0)$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_coefficients(NULL)$$);

-- A hint goes with the message: shown in full once.
SELECT credit_risk.cr_train('m', 'bad_data', 'y', 'logistic', ARRAY['x1', 'note']);
SELECT credit_risk.cr_predict('german_small', '{"customer_id": "C1", "age": 30}'::jsonb);
