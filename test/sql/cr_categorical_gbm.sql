-- Gradient-boosted trees on categorical features: category splits found,
-- scored, explained and exported the same way everywhere.

-- A default rate that depends only on a 12-level text column whose rates
-- interleave in the levels' order (and in their frequency order), so no
-- threshold on the codes separates high from low; NULL is a high-rate
-- group of its own; two rare levels are pooled as "other".  Uniforms from
-- md5, so the rows are the same everywhere.
CREATE FUNCTION catg_u(i int, salt text) RETURNS float8
LANGUAGE sql IMMUTABLE AS
$$ SELECT ('x' || substr(md5(salt || i::text), 1, 8))::bit(32)::bigint / 4294967296.0 $$;

CREATE TABLE catg_rate (region text, rate float8);
INSERT INTO catg_rate VALUES
    ('R01', 0.04), ('R02', 0.40), ('R03', 0.08), ('R04', 0.46), ('R05', 0.12), ('R06', 0.33),
    ('R07', 0.02), ('R08', 0.52), ('R09', 0.16), ('R10', 0.27), ('R11', 0.21), ('R12', 0.58),
    ('rare1', 0.30), ('rare2', 0.30), (NULL, 0.65);

CREATE FUNCTION catg_region(i int) RETURNS text
LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN i % 41 = 0 THEN NULL
               WHEN i % 4999 = 0 THEN 'rare1'
               WHEN i % 4993 = 0 THEN 'rare2'
               ELSE 'R' || lpad((1 + (i * 5) % 12)::text, 2, '0') END $$;

CREATE TABLE catg_apps AS
SELECT i AS id, catg_region(i) AS region,
       CASE WHEN catg_u(i, 'c') < 0.5 THEN 'web' ELSE 'branch' END AS channel,
       round((catg_u(i, 'n') * 100)::numeric, 1)::float8 AS noise,
       (catg_u(i, 'y') < r.rate)::int AS bad
  FROM generate_series(1, 30000) i
  JOIN catg_rate r ON r.region IS NOT DISTINCT FROM catg_region(i);

-- Fresh rows to score, from the same rates.
CREATE TABLE catg_new AS
SELECT i AS id, catg_region(i) AS region,
       CASE WHEN catg_u(i, 'c') < 0.5 THEN 'web' ELSE 'branch' END AS channel,
       round((catg_u(i, 'n') * 100)::numeric, 1)::float8 AS noise,
       (catg_u(i, 'y') < r.rate)::int AS bad, r.rate AS oracle
  FROM generate_series(100001, 120000) i
  JOIN catg_rate r ON r.region IS NOT DISTINCT FROM catg_region(i);

-- AUC with ties at half weight (Mann-Whitney).
CREATE FUNCTION catg_auc(scores float8[], labels int[]) RETURNS float8
LANGUAGE sql IMMUTABLE AS $$
    WITH t AS (SELECT s, y FROM unnest(scores, labels) u(s, y)),
         r AS (SELECT y, rank() OVER (ORDER BY s) + (count(*) OVER (PARTITION BY s) - 1) / 2.0 AS rk FROM t)
    SELECT ((sum(rk) FILTER (WHERE y = 1)) - count(*) FILTER (WHERE y = 1) * (count(*) FILTER (WHERE y = 1) + 1) / 2.0)
           / (count(*) FILTER (WHERE y = 1) * count(*) FILTER (WHERE y = 0))::float8
      FROM r
$$;

-- Depth 2: text columns are categorical; the model reaches the AUC of the
-- true rates on fresh rows.
SELECT version, (metrics->>'nodes')::int > 0 AS has_nodes
  FROM credit_risk.cr_train('catg_region', 'catg_apps', 'bad', 'gbm', ARRAY['region', 'noise'],
                            '{"key": "id", "max_depth": 2, "n_trees": 40, "learning_rate": 0.3}');
SELECT d->'features'->0 AS region, d->>'format_version' AS format_version
  FROM (SELECT credit_risk.cr_export('catg_region') AS d) s;
WITH s AS (SELECT array_agg(credit_risk.cr_predict('catg_region', n)) AS p,
                  array_agg(oracle) AS o, array_agg(bad) AS y FROM catg_new n)
SELECT round(catg_auc(o, y)::numeric, 3) AS oracle_auc,
       catg_auc(p, y) > catg_auc(o, y) - 0.005 AS model_near_oracle
  FROM s;

-- Few stumps: category splits group levels by their rate; the same codes
-- taken as numbers cannot.
SELECT version FROM credit_risk.cr_train('catg_stumps', 'catg_apps', 'bad', 'gbm', ARRAY['region'],
                                         '{"key": "id", "max_depth": 1, "n_trees": 3, "learning_rate": 1}');
CREATE TABLE catg_codes AS
SELECT a.id, a.bad, coalesce(array_position(ARRAY(SELECT jsonb_array_elements_text(
           credit_risk.cr_export(m.model)->'features'->0->'levels')), a.region) - 1, 12) AS region_code
  FROM catg_apps a, credit_risk.models m WHERE m.name = 'catg_stumps' AND a.region IS NOT NULL;
CREATE TABLE catg_codes_new AS
SELECT a.id, a.bad, a.oracle, coalesce(array_position(ARRAY(SELECT jsonb_array_elements_text(
           credit_risk.cr_export(m.model)->'features'->0->'levels')), a.region) - 1, 12) AS region_code
  FROM catg_new a, credit_risk.models m WHERE m.name = 'catg_stumps' AND a.region IS NOT NULL;
SELECT version FROM credit_risk.cr_train('catg_stumps_num', 'catg_codes', 'bad', 'gbm', ARRAY['region_code'],
                                         '{"key": "id", "max_depth": 1, "n_trees": 3, "learning_rate": 1}');
WITH s AS (SELECT array_agg(credit_risk.cr_predict('catg_stumps', n)) AS pc,
                  array_agg(credit_risk.cr_predict('catg_stumps_num', c)) AS pn,
                  array_agg(n.oracle) AS o, array_agg(n.bad) AS y
             FROM catg_new n JOIN catg_codes_new c USING (id))
SELECT catg_auc(pc, y) > catg_auc(o, y) - 0.01 AS category_stumps_near_oracle,
       catg_auc(pc, y) > catg_auc(pn, y) + 0.03 AS better_than_numeric_codes
  FROM s;

-- The first split of a model on all rows sends a set of levels left whose
-- training rates all lie above (or all below) the others': the levels
-- sorted by rate, cut once.
SELECT version FROM credit_risk.cr_train('catg_root', 'catg_apps', 'bad', 'gbm', ARRAY['region'],
                                         '{"holdout": 0, "max_depth": 1, "n_trees": 1}');
WITH doc AS (SELECT credit_risk.cr_export('catg_root') AS d),
     lv AS (SELECT l.level, l.code - 1 AS code
              FROM doc, jsonb_array_elements_text(d->'features'->0->'levels') WITH ORDINALITY l(level, code)),
     lft AS (SELECT c::int AS code FROM doc, jsonb_array_elements_text(d->'gbm'->'trees'->0->'categories'->0) c),
     rates AS (SELECT lv.code, avg(a.bad) AS rate, lv.code IN (SELECT code FROM lft) AS goes_left
                 FROM catg_apps a JOIN lv ON lv.level = a.region GROUP BY lv.code)
SELECT count(*) FILTER (WHERE goes_left) AS left_levels, count(*) FILTER (WHERE NOT goes_left) AS right_levels,
       max(rate) FILTER (WHERE goes_left) < min(rate) FILTER (WHERE NOT goes_left)
       OR min(rate) FILTER (WHERE goes_left) > max(rate) FILTER (WHERE NOT goes_left) AS cut_by_rate
  FROM rates;

-- Row, jsonb and batch forms, and the model as a value, agree on every row.
SELECT count(*) AS rows,
       count(*) FILTER (WHERE credit_risk.cr_predict('catg_region', n)
                              = (credit_risk.cr_predict('catg_region', to_jsonb(n))->>'default_probability')::float8) AS jsonb_equal,
       count(*) FILTER (WHERE credit_risk.cr_predict('catg_region', n) = credit_risk.cr_predict(m.model, n)) AS bytes_equal
  FROM catg_new n, credit_risk.models m WHERE m.name = 'catg_region';
SELECT count(*) FILTER (WHERE b.default_probability = credit_risk.cr_predict('catg_region', n)) AS batch_equal
  FROM catg_new n JOIN credit_risk.cr_predict_batch('catg_region', 'catg_new', 'id') b ON b.key = n.id::text;

-- NULL goes the learned default way: with the high-rate side, and not as
-- any level; a level never seen scores as the pooled rare levels ("other").
WITH p AS (
    SELECT r, (credit_risk.cr_predict('catg_region', jsonb_build_object('id', 0, 'region', r, 'noise', 50))
               ->>'default_probability')::float8 AS p
      FROM unnest(ARRAY['R01', 'R02', 'R07', 'R12', 'rare1', 'rare2', 'never seen', NULL]) r)
SELECT (SELECT p FROM p WHERE r IS NULL) BETWEEN 0.55 AND 0.75 AS null_high,
       (SELECT count(*) FROM p WHERE r IS NOT NULL AND p = (SELECT p FROM p WHERE r IS NULL)) AS levels_like_null,
       (SELECT p FROM p WHERE r = 'never seen') = (SELECT p FROM p WHERE r = 'rare1') AS unseen_is_other,
       (SELECT p FROM p WHERE r = 'rare2') = (SELECT p FROM p WHERE r = 'rare1') AS rare_pooled,
       (SELECT p FROM p WHERE r = 'R12') > (SELECT p FROM p WHERE r = 'R02')
       AND (SELECT p FROM p WHERE r = 'R02') > (SELECT p FROM p WHERE r = 'R01') AS ordered;

-- Explanations add up to the margin (row and jsonb forms).
SELECT count(*) AS explained,
       count(*) FILTER (WHERE abs(e.total - ln(p.p / (1 - p.p))) < 1e-9) AS sums_to_margin
  FROM catg_new n,
       LATERAL (SELECT sum(contribution) AS total FROM credit_risk.cr_explain('catg_region', n, NULL)) e,
       LATERAL (SELECT credit_risk.cr_predict('catg_region', n) AS p) p
 WHERE n.id % 50 = 0;
SELECT abs(sum(e.contribution) - ln(q.p / (1 - q.p))) < 1e-9 AS null_sums_to_margin
  FROM credit_risk.cr_explain('catg_region', '{"id": 1, "region": null, "noise": 3}'::jsonb, NULL) e,
       (SELECT (credit_risk.cr_predict('catg_region', '{"id": 1, "region": null, "noise": 3}'::jsonb)
                ->>'default_probability')::float8 AS p) q
 GROUP BY q.p;

-- Same bytes at any number of threads.
SELECT version FROM credit_risk.cr_train('catg_threads', 'catg_apps', 'bad', 'gbm', ARRAY['region', 'channel', 'noise'],
    '{"key": "id", "max_depth": 3, "n_trees": 15, "subsample": 0.8, "threads": 1}');
SELECT version FROM credit_risk.cr_train('catg_threads', 'catg_apps', 'bad', 'gbm', ARRAY['region', 'channel', 'noise'],
    '{"key": "id", "max_depth": 3, "n_trees": 15, "subsample": 0.8, "threads": 4}');
SELECT count(DISTINCT model) AS distinct_models, count(*) AS versions
  FROM credit_risk.models WHERE name = 'catg_threads';

-- Two levels: one against the other, whatever max_cat_to_onehot says;
-- the model finds each level's rate.
CREATE TABLE catg_channel AS
SELECT id, channel, (catg_u(id, 'z') < CASE channel WHEN 'web' THEN 0.30 ELSE 0.10 END)::int AS bad
  FROM catg_apps;
SELECT version FROM credit_risk.cr_train('catg_two', 'catg_channel', 'bad', 'gbm', ARRAY['channel'],
                                         '{"holdout": 0, "max_depth": 1, "n_trees": 30, "learning_rate": 0.5, "max_cat_to_onehot": 1}');
WITH doc AS (SELECT credit_risk.cr_export('catg_two') AS d)
SELECT d->'features'->0->'levels' AS levels,
       (SELECT count(*) FROM jsonb_array_elements(d->'gbm'->'trees') t,
               jsonb_array_elements(t->'categories') c WHERE jsonb_typeof(c) = 'array') AS category_splits,
       (SELECT bool_and(jsonb_array_length(c) = 1) FROM jsonb_array_elements(d->'gbm'->'trees') t,
               jsonb_array_elements(t->'categories') c WHERE jsonb_typeof(c) = 'array') AS one_level_each
  FROM doc;
SELECT c.channel, round(avg(c.bad), 3) AS rate,
       abs(avg(c.bad) - (credit_risk.cr_predict('catg_two', jsonb_build_object('id', 0, 'channel', c.channel))
                         ->>'default_probability')::float8) < 0.001 AS fits
  FROM catg_channel c GROUP BY c.channel ORDER BY c.channel;

-- max_cat_to_onehot: above the levels at a node, every split is one level
-- against the rest; at 1, the root cuts the sorted levels into two groups.
SELECT version FROM credit_risk.cr_train('catg_onehot', 'catg_apps', 'bad', 'gbm', ARRAY['region'],
                                         '{"key": "id", "max_depth": 2, "n_trees": 10, "max_cat_to_onehot": 255}');
SELECT version FROM credit_risk.cr_train('catg_sorted', 'catg_apps', 'bad', 'gbm', ARRAY['region'],
                                         '{"key": "id", "max_depth": 2, "n_trees": 10, "max_cat_to_onehot": 1}');
SELECT m.name,
       bool_and(jsonb_array_length(c) = 1) AS all_one_level,
       max(jsonb_array_length(t->'categories'->0)) > 1 AS root_groups
  FROM credit_risk.models m,
       jsonb_array_elements(credit_risk.cr_export(m.model)->'gbm'->'trees') t,
       jsonb_array_elements(t->'categories') c
 WHERE m.name IN ('catg_onehot', 'catg_sorted') AND jsonb_typeof(c) = 'array'
 GROUP BY m.name ORDER BY m.name;

-- Export: the document of the bytes is the registry's; the XGBoost member
-- holds category splits (XGBoost's own), which cr_import_xgboost refuses.
SELECT credit_risk.cr_export(m.model) = credit_risk.cr_export('catg_region')
           - ARRAY['export_format', 'name', 'version', 'model', 'status', 'created_at', 'created_by',
                   'source', 'label', 'params', 'metrics', 'importance', 'train_rows',
                   'holdout_rows', 'train_seconds'] AS bytes_form_equal,
       credit_risk.cr_export(m.model)->'xgboost'->'learner'->'feature_types' AS feature_types,
       (SELECT count(*) FROM jsonb_array_elements(credit_risk.cr_export(m.model)->'xgboost'->'learner'
            ->'gradient_booster'->'model'->'trees') t, jsonb_array_elements(t->'split_type') s
         WHERE s = '1') > 0 AS xgboost_category_splits
  FROM credit_risk.models m WHERE m.name = 'catg_region';
SELECT credit_risk.cr_import_xgboost('catg_back', credit_risk.cr_export('catg_region')->'xgboost');

-- A logistic model on the same column: one coefficient per level in the
-- export, named feature=level, the reference level's 0.
SELECT version FROM credit_risk.cr_train('catg_logit', 'catg_apps', 'bad', 'logistic', ARRAY['region', 'noise'],
                                         '{"key": "id"}');
WITH c AS (SELECT e FROM jsonb_array_elements(credit_risk.cr_export('catg_logit')->'logistic'->'coefficients') e)
SELECT count(*) AS entries,
       count(*) FILTER (WHERE e->>'feature' LIKE 'region=%') AS region_entries,
       (SELECT e->>'feature' FROM c WHERE e ? 'reference') AS reference,
       (SELECT (e->>'coefficient')::float8 FROM c WHERE e ? 'reference') AS reference_coefficient,
       (SELECT (e->>'coefficient')::float8 FROM c WHERE e->>'feature' = 'region=R12')
       > (SELECT (e->>'coefficient')::float8 FROM c WHERE e->>'feature' = 'region=R07') AS r12_above_r07
  FROM c;

-- Many levels, most first seen after the loader's first batch of rows:
-- each is kept once, with its own rows, and the sorted-prefix splits keep
-- the high-rate half apart.
CREATE TABLE catg_many AS
SELECT i AS id, 'm' || (i / 150) AS shop, (catg_u(i, 'm') < CASE WHEN (i / 150) % 2 = 0 THEN 0.1 ELSE 0.4 END)::int AS bad
  FROM generate_series(0, 29999) i;
SELECT version FROM credit_risk.cr_train('catg_many', 'catg_many', 'bad', 'gbm', ARRAY['shop'],
                                         '{"holdout": 0, "max_depth": 1, "n_trees": 1, "learning_rate": 1}');
WITH doc AS (SELECT credit_risk.cr_export('catg_many') AS d),
     lv AS (SELECT l.level, l.code - 1 AS code
              FROM doc, jsonb_array_elements_text(d->'features'->0->'levels') WITH ORDINALITY l(level, code)),
     lft AS (SELECT c::int AS code FROM doc, jsonb_array_elements_text(d->'gbm'->'trees'->0->'categories'->0) c)
SELECT count(*) AS levels, count(DISTINCT level) AS distinct_levels,
       count(*) FILTER (WHERE code IN (SELECT code FROM lft)) AS left_levels,
       count(*) FILTER (WHERE (code IN (SELECT code FROM lft)) = (substr(level, 2)::int % 2 = 1)) AS on_the_side_of_their_rate
  FROM lv;
