-- Batch scoring, champion/challenger routing.

-- Batch results equal row-by-row cr_predict to the last bit, for both
-- algorithms, with NULL features (logistic: imputed; trees: the learned
-- direction) in the rows.
CREATE TABLE batch_rows AS
SELECT g.*, CASE WHEN applicant_id % 7 = 0 THEN NULL ELSE g.age END AS age_or_null
  FROM german_credit g;
UPDATE batch_rows SET age = NULL, duration_months = 'NaN' WHERE applicant_id % 11 = 0;
SELECT count(*) FILTER (WHERE age IS NULL) AS null_ages,
       count(*) FILTER (WHERE duration_months = 'NaN') AS nan_durations FROM batch_rows;

SELECT m.name, count(*) AS rows,
       count(*) FILTER (WHERE b.default_probability = credit_risk.cr_predict(m.name, r)) AS equal,
       count(DISTINCT b.model_version) AS versions
  FROM (VALUES ('german'), ('german_gbm'), ('german_small')) m(name),
       LATERAL credit_risk.cr_predict_batch(m.name, 'batch_rows', 'applicant_id') b
  JOIN batch_rows r ON r.applicant_id::text = b.key
 GROUP BY m.name ORDER BY m.name;

-- The same for trees with each batch scorer (credit_risk.simd): scalar code
-- always, AVX2 and AVX-512 where the CPU has them (a path the CPU lacks is
-- refused with feature_not_supported: test/t/019_simd.pl checks which).
-- rows_batch_differs counts the rows whose batch probability differs from
-- the row form's, NULL when the path is refused.
CREATE FUNCTION rows_batch_differs(simd text, model text, src text, keycol text)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
BEGIN
    BEGIN
        PERFORM set_config('credit_risk.simd', simd, true);
    EXCEPTION WHEN feature_not_supported THEN
        RETURN NULL;
    END;
    EXECUTE format($q$SELECT count(*) FILTER (WHERE b.default_probability IS DISTINCT FROM credit_risk.cr_predict(m.model, r))
                        + (SELECT count(*) FROM %1$s) - count(*)
                     FROM credit_risk.cr_predict_batch(%2$L, %3$L, %4$L) b
                     JOIN %1$s r ON r.%4$I::text = b.key
                     JOIN credit_risk.models m ON m.name || '@' || m.version = b.model_version$q$,
                   src, model, src, keycol) INTO n;
    PERFORM set_config('credit_risk.simd', 'auto', true);
    RETURN n;
END
$fn$;
SELECT simd, coalesce(rows_batch_differs(simd, 'german_gbm', 'batch_rows', 'applicant_id'), 0) AS differ
  FROM unnest(ARRAY['off', 'avx2', 'avx512', 'auto']) simd;
SHOW credit_risk.simd;

-- A query source; without a key the key column is NULL.
SELECT count(*) AS rows, count(key) AS keys, min(model_version) AS version
  FROM credit_risk.cr_predict_batch('german_small',
       'SELECT age, duration_months, checking_none FROM german_credit WHERE bad = 1');

-- Scores and categories follow the model's scaling.
SELECT count(*) FILTER (WHERE score = round(600 - 20 / ln(2) * ln(50)
                                 + 20 / ln(2) * ln((1 - default_probability) / default_probability))) AS score_ok,
       count(*) FILTER (WHERE risk_category = CASE WHEN default_probability < 0.2 THEN 'low'
                                                   WHEN default_probability < 0.5 THEN 'medium'
                                                   ELSE 'high' END) AS category_ok
  FROM credit_risk.cr_predict_batch('german_gbm', 'german_credit', 'applicant_id');

-- Champion/challenger: route 30% of keys of german_gbm to version 2.
SELECT version, status FROM credit_risk.cr_promote('german_gbm', 1);
SELECT name, challenger_version, share FROM credit_risk.cr_route('german_gbm', 2, 0.3);
SELECT version, status FROM credit_risk.models WHERE name = 'german_gbm' ORDER BY version;

CREATE TABLE many_keys AS
SELECT 'CUST_' || i AS customer_id, g.*
  FROM generate_series(1, 10000) i
  JOIN german_credit g ON g.applicant_id = 1 + i % 1000;

-- The share holds within statistical tolerance on 10,000 keys (3 sigma is
-- about 0.014), and the same key always gets the same version.
CREATE TABLE routed AS
SELECT key, model_version FROM credit_risk.cr_predict_batch('german_gbm', 'many_keys', 'customer_id');
SELECT abs(avg((model_version = 'german_gbm@2')::int) - 0.3) < 0.014 AS share_ok,
       count(DISTINCT model_version) AS versions
  FROM routed;
SELECT count(*) AS same_assignment
  FROM routed r
  JOIN credit_risk.cr_predict_batch('german_gbm', 'many_keys', 'customer_id') b USING (key)
 WHERE r.model_version = b.model_version;

-- The jsonb form routes by customer_id with the same assignment.
SELECT count(*) AS jsonb_agrees
  FROM routed r JOIN many_keys k ON k.customer_id = r.key
 WHERE credit_risk.cr_predict('german_gbm', to_jsonb(k))->>'model_version' = r.model_version;

-- Under the route, a block holds rows of both versions; each row's
-- probability is its version's to the last bit, with either batch scorer.
SELECT count(*) AS routed_equal
  FROM credit_risk.cr_predict_batch('german_gbm', 'many_keys', 'customer_id') b
  JOIN many_keys k ON k.customer_id = b.key
  JOIN credit_risk.models m ON m.name || '@' || m.version = b.model_version
 WHERE b.default_probability = credit_risk.cr_predict(m.model, k);
SELECT simd, coalesce(rows_batch_differs(simd, 'german_gbm', 'many_keys', 'customer_id'), 0) AS differ
  FROM unnest(ARRAY['off', 'avx2', 'avx512']) simd;

-- Without a key there is nothing to route by: the champion scores every row.
SELECT count(DISTINCT model_version) AS versions, min(model_version) AS version
  FROM credit_risk.cr_predict_batch('german_gbm', 'many_keys');

-- Share 0 stops the route; the challenger is a candidate again.
SELECT share FROM credit_risk.cr_route('german_gbm', 2, 0);
SELECT count(DISTINCT model_version) AS versions
  FROM credit_risk.cr_predict_batch('german_gbm', 'many_keys', 'customer_id');
SELECT version, status FROM credit_risk.models WHERE name = 'german_gbm' ORDER BY version;

-- Errors.
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('no_such_model', 'german_credit')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('german_gbm', 'no_such_table')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('german_gbm', 'SELECT * FROM german_credit WHERE')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('german_gbm', 'german_credit', 'no_such_column')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('german_gbm', 'SELECT age FROM german_credit')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('german_small', 'SELECT age, duration_months, ''x''::text AS checking_none FROM german_credit')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('german_small', 'SELECT age, ''Infinity''::float8 AS duration_months, checking_none FROM german_credit')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch(NULL, 'german_credit')$$);
SELECT expect_error($$SELECT credit_risk.cr_route('german_gbm', 99, 0.5)$$);
SELECT expect_error($$SELECT credit_risk.cr_route('german_gbm', 2, 1.5)$$);
SELECT expect_error($$SELECT credit_risk.cr_route('german_gbm', 1, 0.5)$$);
