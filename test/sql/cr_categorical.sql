-- Categorical features: text, varchar, char, enum, boolean and integer
-- columns as levels; logistic dummy coding; every scoring path.
SET extra_float_digits = 0;

CREATE TYPE cat_housing AS ENUM ('own', 'rent', 'free');
-- 3,000 applicants: grp has five levels with different default rates, a
-- rare level (9 rows) and NULLs; housing an enum; region char(4) with
-- blank padding; flag a boolean; score_band an integer named categorical.
CREATE TABLE cat_apps AS
SELECT i AS id,
       CASE WHEN i % 97 = 0 THEN NULL
            WHEN i % 331 = 1 AND i < 3000 THEN 'rare'
            ELSE (ARRAY['employed', 'self', 'student', 'retired', 'none'])[1 + (i * 7) % 5] END AS grp,
       (ARRAY['own', 'rent', 'free'])[1 + i % 3]::cat_housing AS housing,
       (ARRAY['n', 's', 'e'])[1 + (i / 3) % 3]::char(4) AS region,
       (i % 4 = 0) AS flag,
       ((i * 5) % 7)::int AS score_band,
       ((i * 37) % 100) / 10.0 AS x,
       0 AS y
FROM generate_series(1, 3000) i;
-- a label with known structure: rate by grp level, a little from x
UPDATE cat_apps SET y = CASE WHEN
    (hashint4(id * 13) & 1023) / 1024.0 <
    CASE grp WHEN 'employed' THEN 0.10 WHEN 'self' THEN 0.30 WHEN 'student' THEN 0.45
             WHEN 'retired' THEN 0.20 WHEN 'none' THEN 0.60 ELSE 0.35 END + x / 100.0
    THEN 1 ELSE 0 END;

-- Logistic on a text column and a number: one coefficient per level, the
-- most frequent level the reference (0, no standard error), the rare level
-- pooled into other, NULL its own group.
SELECT version, train_rows FROM credit_risk.cr_train('cat_lr', 'cat_apps', 'y', 'logistic',
    ARRAY['grp', 'x'], '{"seed": 3}');
SELECT feature, coefficient = 0 AS is_zero, std_error IS NULL AS no_se
FROM credit_risk.cr_coefficients('cat_lr') ORDER BY feature;
SELECT credit_risk.cr_model_info(model) -> 'categories' AS categories, credit_risk.cr_model_info(model) -> 'format_version' AS format
FROM credit_risk.models WHERE name = 'cat_lr';

-- The same fit as hand-made dummy columns with the same reference: the
-- coefficients and probabilities agree.
CREATE TABLE cat_dummies AS
SELECT id, x, y,
       (grp IS NOT DISTINCT FROM 'self')::int AS d_self,
       (grp IS NOT DISTINCT FROM 'student')::int AS d_student,
       (grp IS NOT DISTINCT FROM 'retired')::int AS d_retired,
       (grp IS NOT DISTINCT FROM 'none')::int AS d_none,
       (grp IS NOT DISTINCT FROM 'rare')::int AS d_other,
       (grp IS NULL)::int AS d_missing
FROM cat_apps;
SELECT (credit_risk.cr_model_info(model) -> 'categories' -> 'grp' ->> 'reference') AS reference
FROM credit_risk.models WHERE name = 'cat_lr';
SELECT version FROM credit_risk.cr_train('cat_lr_dummies', 'cat_dummies', 'y', 'logistic',
    ARRAY['d_self', 'd_student', 'd_retired', 'd_none', 'd_other', 'd_missing', 'x'], '{"seed": 3}');
SELECT max(abs(a.coefficient - b.coefficient)) < 1e-8 AS same_coefficients,
       max(abs(a.std_error - b.std_error)) < 1e-8 AS same_std_errors, count(*)
FROM credit_risk.cr_coefficients('cat_lr') a
JOIN credit_risk.cr_coefficients('cat_lr_dummies') b
  ON b.feature = CASE a.feature WHEN 'grp=self' THEN 'd_self' WHEN 'grp=student' THEN 'd_student'
                   WHEN 'grp=retired' THEN 'd_retired' WHEN 'grp=none' THEN 'd_none'
                   WHEN 'grp=(other)' THEN 'd_other' WHEN 'grp=(missing)' THEN 'd_missing'
                   ELSE a.feature END;
SELECT max(abs(credit_risk.cr_predict('cat_lr', a) - credit_risk.cr_predict('cat_lr_dummies', d))) < 1e-10 AS same_pd
FROM cat_apps a JOIN cat_dummies d USING (id);

-- Every form agrees: row, jsonb, batch, the model as a value.
SELECT count(*) AS rows,
       count(*) FILTER (WHERE credit_risk.cr_predict('cat_lr', a) =
           (credit_risk.cr_predict('cat_lr', to_jsonb(a)) ->> 'default_probability')::float8) AS jsonb_same,
       count(*) FILTER (WHERE credit_risk.cr_predict('cat_lr', a) = b.default_probability) AS batch_same,
       count(*) FILTER (WHERE credit_risk.cr_predict('cat_lr', a) =
           credit_risk.cr_predict((SELECT model FROM credit_risk.models WHERE name = 'cat_lr'), a)) AS bytes_same
FROM cat_apps a JOIN credit_risk.cr_predict_batch('cat_lr', 'cat_apps', 'id') b ON b.key = a.id::text;

-- A level never seen in training scores as other (here: the pooled rare
-- level); NULL as the missing group; a jsonb number or boolean is its text.
SELECT credit_risk.cr_predict('cat_lr', '{"grp": "astronaut", "x": 5}'::jsonb) -> 'default_probability' =
       credit_risk.cr_predict('cat_lr', '{"grp": "rare", "x": 5}'::jsonb) -> 'default_probability' AS unseen_is_other,
       credit_risk.cr_predict('cat_lr', '{"grp": null, "x": 5}'::jsonb) -> 'default_probability' <>
       credit_risk.cr_predict('cat_lr', '{"grp": "employed", "x": 5}'::jsonb) -> 'default_probability' AS null_own_group;

-- Explanations: a level's coefficient against the training mean of the
-- feature's; the contributions and the base add up to the logit.
SELECT feature, value, reason_code, reason
FROM credit_risk.cr_explain('cat_lr', (SELECT a FROM cat_apps a WHERE id = 5), NULL) ORDER BY feature;
SELECT max(abs(s.total - ln(p / (1 - p)))) < 1e-9 AS adds_up
FROM (SELECT a.id, credit_risk.cr_predict('cat_lr', a) AS p,
             (SELECT sum(contribution) FROM credit_risk.cr_explain('cat_lr', a, NULL)) AS total
      FROM cat_apps a WHERE id <= 300) s;
-- a reason code row for a level
INSERT INTO credit_risk.reason_codes VALUES ('cat_lr', 'grp', '=none', 'E07', 'No employment');
SELECT feature, value, reason_code, reason
FROM credit_risk.cr_explain('cat_lr', (SELECT a FROM cat_apps a WHERE grp = 'none' LIMIT 1), 1);

-- Another reference level: the same probabilities, other coefficients.
SELECT version FROM credit_risk.cr_train('cat_lr_ref', 'cat_apps', 'y', 'logistic',
    ARRAY['grp', 'x'], '{"seed": 3, "reference": {"grp": "none"}}');
SELECT feature, coefficient = 0 AS is_zero FROM credit_risk.cr_coefficients('cat_lr_ref')
WHERE feature LIKE 'grp=%' ORDER BY feature;
SELECT max(abs(credit_risk.cr_predict('cat_lr', a) - credit_risk.cr_predict('cat_lr_ref', a))) < 1e-9 AS same_pd
FROM cat_apps a;

-- Enum, char(n), boolean and integer columns; min_category_count 1 keeps
-- every level.
SELECT version, params -> 'categorical' AS categorical
FROM credit_risk.cr_train('cat_lr_kinds', 'cat_apps', 'y', 'logistic',
    ARRAY['housing', 'region', 'flag', 'score_band', 'x'],
    '{"seed": 3, "categorical": ["flag", "score_band"], "min_category_count": 1}');
SELECT feature FROM credit_risk.cr_coefficients('cat_lr_kinds') ORDER BY feature;
-- char(n) levels are matched without their padding, an integer in jsonb by
-- its text; a varchar column scores a level trained from an enum
CREATE TABLE cat_kind_row (housing varchar, region char(6), flag bool, score_band bigint, x float8);
INSERT INTO cat_kind_row VALUES ('rent', 's', true, 2, 1);
SELECT (credit_risk.cr_predict('cat_lr_kinds', '{"housing": "rent", "region": "s", "flag": true, "score_band": 2, "x": 1}'::jsonb) ->> 'default_probability')::float8 =
       credit_risk.cr_predict('cat_lr_kinds', r) AS same,
       credit_risk.cr_predict('cat_lr_kinds', r) <>
       (credit_risk.cr_predict('cat_lr_kinds', '{"housing": "rent", "region": "s", "flag": false, "score_band": 2, "x": 1}'::jsonb) ->> 'default_probability')::float8 AS flag_matters
FROM cat_kind_row r;
-- (to_jsonb writes a char(n) value with its padding: send levels without it)
SELECT count(*) FILTER (WHERE credit_risk.cr_predict('cat_lr_kinds', a) =
           (credit_risk.cr_predict('cat_lr_kinds', to_jsonb(a) || jsonb_build_object('region', rtrim(a.region)))
            ->> 'default_probability')::float8) AS jsonb_same,
       count(*) FILTER (WHERE credit_risk.cr_predict('cat_lr_kinds', a) =
           (credit_risk.cr_predict('cat_lr_kinds', to_jsonb(a)) ->> 'default_probability')::float8) AS padded_same
FROM cat_apps a;

-- Drift: a categorical feature's baseline is its level shares (of the
-- training rows); PSI against them, no KS (levels have no order).
SELECT bucket, level, round(share::numeric, 4) AS share, is_missing
FROM credit_risk.cr_drift_baseline('cat_lr') WHERE feature = 'grp' ORDER BY bucket;
SELECT feature, severity, ks IS NULL AS no_ks
FROM credit_risk.cr_drift_score('cat_lr', 'SELECT * FROM cat_apps WHERE id % 7 <> 0') WHERE feature = 'grp';
-- the share of 'none' doubled: PSI equals the sum over buckets computed here
WITH src AS (SELECT * FROM cat_apps UNION ALL SELECT * FROM cat_apps WHERE grp = 'none'),
     base AS (SELECT bucket, level, is_missing, greatest(share, 1e-4) AS e
              FROM credit_risk.cr_drift_baseline('cat_lr') WHERE feature = 'grp'),
     act AS (SELECT b.bucket, greatest(count(s.id)::float8 / (SELECT count(*) FROM src), 1e-4) AS a
             FROM base b LEFT JOIN src s
               ON (b.is_missing AND s.grp IS NULL)
               OR (NOT b.is_missing AND b.level = s.grp)
               OR (b.level = '(other)' AND s.grp IS NOT NULL
                   AND s.grp NOT IN (SELECT level FROM base WHERE level IS NOT NULL))
             GROUP BY b.bucket)
SELECT abs((SELECT psi FROM credit_risk.cr_drift_score('cat_lr', 'SELECT * FROM cat_apps UNION ALL SELECT * FROM cat_apps WHERE grp = ''none''')
            WHERE feature = 'grp') - sum((a - e) * ln(a / e))) < 1e-9 AS psi_matches
FROM base JOIN act USING (bucket);

-- A column of 60,000 distinct values: the most frequent kept (at most
-- 254), the rest pooled into other; never one level per value.
CREATE TABLE cat_wide AS
SELECT i AS id, CASE WHEN i % 2 = 0 THEN 'v' || (i % 300) ELSE md5(i::text) END AS code,
       (i % 3 = 0)::int AS y
FROM generate_series(1, 60000) i;
SELECT jsonb_array_length(credit_risk.cr_model_info(model) -> 'categories' -> 'code' -> 'levels') AS levels
FROM credit_risk.cr_train('cat_wide', 'cat_wide', 'y', 'logistic', ARRAY['code'], '{"seed": 1, "holdout": 0}');

-- Bad input: clear errors before any fit.
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['x'], '{"categorical": ["nope"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['x'], '{"categorical": ["grp"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['x'], '{"categorical": ["x"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['x'], '{"categorical": "grp"}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['x'], '{"categorical": ["x", "x"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['grp', 'x'], '{"reference": {"x": "1"}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['grp', 'x'], '{"reference": {"grp": "astronaut"}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['grp', 'x'], '{"seed": 3, "reference": {"grp": "rare"}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['grp', 'x'], '{"reference": {"grp": null}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'logistic', ARRAY['grp', 'x'], '{"min_category_count": 100000}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'cat_apps', 'y', 'gbm', ARRAY['grp', 'x'], '{"monotone": {"grp": 1}}')$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'SELECT now()::date AS d, y FROM cat_apps', 'y', 'logistic', ARRAY['d'])$$);
SELECT expect_error($$SELECT credit_risk.cr_train('cat_bad', 'SELECT now()::date AS d, y FROM cat_apps', 'y', 'logistic', ARRAY['d'], '{"categorical": ["d"]}')$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('cat_lr', ARRAY[1, 2]::float8[])$$);
SELECT expect_error($$SELECT credit_risk.cr_predict('cat_lr', '{"grp": ["self"], "x": 1}'::jsonb)$$);
CREATE TABLE cat_bad_row (grp timestamptz, x float8);
SELECT expect_error($$SELECT credit_risk.cr_predict('cat_lr', r) FROM (VALUES (now(), 1.0::float8)) AS r(grp, x)$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_predict_batch('cat_lr', 'SELECT now() AS grp, 1.0 AS x')$$);
SELECT expect_error($$INSERT INTO credit_risk.reason_codes VALUES ('cat_lr', 'grp', '=', 'E', 'e')$$);
