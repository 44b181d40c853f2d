-- The three cr_predict forms, the model-as-value forms, categories and points.

-- The serving version of german is its champion: its first version, german@1
-- (later versions are candidates until promoted).
SELECT version FROM credit_risk.cr_serving_version('german');

-- Row form vs array form (features in model order) vs jsonb form: same PD.
WITH m AS (SELECT features FROM credit_risk.cr_serving_version('german')),
scored AS (
    SELECT g.applicant_id,
           credit_risk.cr_predict('german', g) AS p_row,
           credit_risk.cr_predict('german',
               ARRAY(SELECT (to_jsonb(g)->>f)::float8 FROM m, unnest(m.features) WITH ORDINALITY AS u(f, i) ORDER BY i)) AS p_array,
           credit_risk.cr_predict('german', to_jsonb(g) || jsonb_build_object('customer_id', 'C' || g.applicant_id)) AS j
      FROM german_credit g
)
SELECT count(*) AS applicants,
       count(*) FILTER (WHERE p_row = p_array) AS array_equal,
       count(*) FILTER (WHERE p_row = (j->>'default_probability')::float8) AS jsonb_equal,
       count(*) FILTER (WHERE j->>'customer_id' = 'C' || applicant_id) AS id_echoed,
       count(*) FILTER (WHERE j->>'model_version' = 'german@1') AS version_named,
       count(*) FILTER (WHERE p_row > 0 AND p_row < 1) AS in_unit_interval
  FROM scored;

-- The jsonb answer for one applicant (the seed's payload shape).
-- (the probability is shown to 6 places here; it is compared exactly elsewhere)
SELECT jsonb_pretty(j - 'default_probability') AS answer,
       round((j->>'default_probability')::numeric, 6) AS default_probability
  FROM (SELECT credit_risk.cr_predict('german_small',
        '{"customer_id": "CUST_12345", "age": 35, "duration_months": 24, "checking_none": 1}'::jsonb) AS j) s;

-- Without a customer_id the key is null; extra fields are ignored.
SELECT credit_risk.cr_predict('german_small',
        '{"age": 35, "duration_months": 24, "checking_none": 1, "annual_income": 75000}'::jsonb)->'customer_id' AS customer_id;

-- Risk category from the default cut-offs (PD < 0.20 low, < 0.50 medium,
-- else high) and points: 600 at 50:1 good:bad odds, 20 points to double.
WITH s AS (
    SELECT credit_risk.cr_predict('german', to_jsonb(g)) AS j FROM german_credit g
), v AS (
    SELECT (j->>'default_probability')::float8 AS p, j->>'risk_category' AS cat,
           (j->>'score')::int AS score FROM s
)
SELECT count(*) FILTER (WHERE cat = CASE WHEN p < 0.2 THEN 'low' WHEN p < 0.5 THEN 'medium' ELSE 'high' END) AS category_ok,
       count(*) FILTER (WHERE score = round(600 - 20 / ln(2) * ln(50) + 20 / ln(2) * ln((1 - p) / p))) AS score_ok,
       count(*) FILTER (WHERE p BETWEEN 0.15 AND 0.2 AND cat = 'low') > 0 AS pd_015_reads_low,
       count(DISTINCT cat) AS categories,
       min(score) < max(score) AS scores_vary
  FROM v;

-- A one-feature model gives two PDs; the points follow the scaling for both.
CREATE TABLE odds_data AS
SELECT i, (i % 2)::float8 AS x, (i % 7 = 0 OR (i % 2 = 1 AND i % 3 = 0))::int AS y
  FROM generate_series(1, 1000) i;
SELECT version FROM credit_risk.cr_train('odds', 'odds_data', 'y', 'logistic', ARRAY['x'], '{"holdout": 0}');
SELECT round(p::numeric, 6) AS p, score,
       score = round(600 - 20 / ln(2) * ln(50) + 20 / ln(2) * ln((1 - p) / p)) AS formula
  FROM (SELECT (j->>'default_probability')::float8 AS p, (j->>'score')::int AS score
          FROM (SELECT credit_risk.cr_predict('odds', jsonb_build_object('x', x)) AS j
                  FROM (VALUES (0), (1)) v(x)) s) t
 ORDER BY p;

-- Custom bands from params.
SELECT j->>'risk_category' AS category, count(*)
  FROM (SELECT credit_risk.cr_predict('german_bands', to_jsonb(g)) AS j FROM german_credit g) s
 GROUP BY 1 ORDER BY 1;
SELECT count(*) FILTER (WHERE j->>'risk_category' =
         CASE WHEN (j->>'default_probability')::float8 < 0.1 THEN 'A'
              WHEN (j->>'default_probability')::float8 < 0.3 THEN 'B'
              WHEN (j->>'default_probability')::float8 < 0.6 THEN 'C' ELSE 'D' END) AS bands_ok,
       count(*) FILTER (WHERE (j->>'score')::int =
         round(500 - 40 / ln(2) * ln(20) + 40 / ln(2) *
               ln((1 - (j->>'default_probability')::float8) / (j->>'default_probability')::float8))) AS points_ok
  FROM (SELECT credit_risk.cr_predict('german_bands', to_jsonb(g)) AS j FROM german_credit g) s;

-- Missing values: NULL in an array or a row, null in jsonb, are imputed
-- with the training mean the model carries.
SELECT credit_risk.cr_predict('german_small', ARRAY[NULL, 24, 1]::float8[])
     = credit_risk.cr_predict('german_small',
         ARRAY[(SELECT (credit_risk.cr_model_info(model)->'impute'->>0)::float8
                  FROM credit_risk.models WHERE name = 'german_small'), 24, 1]) AS array_null_imputed,
       credit_risk.cr_predict('german_small', ARRAY[NULL, 24, 1]::float8[])
     = (credit_risk.cr_predict('german_small', '{"age": null, "duration_months": 24, "checking_none": 1}'::jsonb)->>'default_probability')::float8 AS jsonb_null_imputed,
       credit_risk.cr_predict('german_small', ARRAY['NaN', 24, 1]::float8[])
     = credit_risk.cr_predict('german_small', ARRAY[NULL, 24, 1]::float8[]) AS nan_is_missing,
       credit_risk.cr_predict('german_small', r)
     = credit_risk.cr_predict('german_small', ARRAY[NULL, 24, 1]::float8[]) AS row_null_imputed
  FROM (SELECT NULL::int AS age, 24 AS duration_months, true AS checking_none) r;

-- The row form matches columns by name, whatever their order and type.
SELECT credit_risk.cr_predict('german_small', r) = credit_risk.cr_predict('german_small', ARRAY[35, 12, 0]::float8[]) AS by_name
  FROM (SELECT 0::numeric AS checking_none, 'ignored'::text AS note, 12::smallint AS duration_months, 35::bigint AS age) r;

-- NULL in, NULL out.
SELECT credit_risk.cr_predict('german_small', NULL::float8[]) IS NULL AS null_array,
       credit_risk.cr_predict(NULL::text, ARRAY[1, 2, 3]::float8[]) IS NULL AS null_name;

-- The model as a value (joined from the registry) scores to the last bit
-- like the model by name.
SELECT count(*) FILTER (WHERE credit_risk.cr_predict(m.model, g) = credit_risk.cr_predict('german', g)) AS row_equal
  FROM german_credit g, credit_risk.models m
 WHERE m.name = 'german' AND m.version = 1;
SELECT count(*) FILTER (WHERE credit_risk.cr_predict(m.model, ARRAY[g.age, g.duration_months, g.checking_none])
                              = credit_risk.cr_predict('german_small', ARRAY[g.age, g.duration_months, g.checking_none])) AS array_equal
  FROM german_credit g, credit_risk.models m
 WHERE m.name = 'german_small';

-- Several models in one statement, each with its own version.
SELECT count(DISTINCT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version') AS german_versions,
       count(DISTINCT credit_risk.cr_predict('german_small', to_jsonb(g))->>'model_version') AS small_versions,
       min(credit_risk.cr_predict('german_small', to_jsonb(g))->>'model_version') AS small_version
  FROM german_credit g;

-- Scoring runs in parallel workers too, with the same result.
CREATE TABLE many_applicants AS SELECT g.* FROM german_credit g, generate_series(1, 50);
ANALYZE many_applicants;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT sum(credit_risk.cr_predict('german', t)) FROM many_applicants t;
SELECT round(sum(credit_risk.cr_predict('german', t))::numeric, 6) AS parallel_sum FROM many_applicants t \gset
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT round(sum(credit_risk.cr_predict('german', t))::numeric, 6) = :parallel_sum AS serial_equals_parallel
  FROM many_applicants t;
RESET max_parallel_workers_per_gather;
