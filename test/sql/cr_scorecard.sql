-- Scorecards: logistic regression on WoE bins found on the training rows,
-- stored as one version, scored by every form, explained as points lost
-- against each feature's best bin.  german_raw is cr_woe's.
SELECT version, algorithm, train_rows, holdout_rows,
       round((metrics->>'auc')::numeric, 4) AS holdout_auc,
       round((metrics->'information_value'->>'checking')::numeric, 4) AS iv_checking,
       params->'max_bins' AS max_bins, params->'trend' AS trend
  FROM credit_risk.cr_train('card', 'german_raw', 'bad', 'scorecard',
         ARRAY['checking', 'duration', 'history', 'purpose', 'amount', 'savings', 'employment',
               'installment_rate', 'personal', 'debtors', 'property', 'age', 'other_plans',
               'housing', 'foreign_worker'],
         '{"holdout": 0.3, "seed": 7, "key": "id", "min_category_count": 1}');
SELECT (credit_risk.cr_model_info(model)->>'format_version')::int AS format_version,
       credit_risk.cr_model_info(model)->>'algorithm' AS algorithm
  FROM credit_risk.models WHERE name = 'card';

-- the same split, a logistic model on the same raw features, for comparison
SELECT round((metrics->>'auc')::numeric, 4) AS logistic_holdout_auc
  FROM credit_risk.cr_train('card_lr', 'german_raw', 'bad', 'logistic',
         ARRAY['checking', 'duration', 'history', 'purpose', 'amount', 'savings', 'employment',
               'installment_rate', 'personal', 'debtors', 'property', 'age', 'other_plans',
               'housing', 'foreign_worker'],
         '{"holdout": 0.3, "seed": 7, "key": "id", "min_category_count": 1}');

-- the points table: duration's bins, checking's levels
SELECT feature, bin, lower, upper, category, round(woe::numeric, 6) AS woe,
       round(points::numeric, 3) AS points
  FROM credit_risk.cr_scorecard('card') WHERE feature IN ('duration', 'checking');
-- the bins were found on the training rows only: their counts are the
-- training rows, and the WoE matches cr_woe_bins on those rows
SELECT sum(n) AS rows_in_bins
  FROM jsonb_array_elements((SELECT credit_risk.cr_export('card')->'scorecard'->'features'->1->'bins')) b,
       LATERAL (SELECT (b->>'n')::bigint AS n) x;
SELECT bool_and(abs(c.woe - w.woe) < 1e-12) AS same_woe
  FROM credit_risk.cr_scorecard('card') c
  JOIN credit_risk.cr_woe_bins('SELECT * FROM german_raw WHERE NOT credit_risk.cr_in_holdout(id, 7, 0.3)',
                               'bad', 'duration') w USING (bin)
 WHERE c.feature = 'duration';

-- every applicant: the bins' points add up to cr_predict's score; the PD
-- is the sigmoid of the intercept and the coefficients times the WoE
CREATE TEMP TABLE card_rows AS
WITH card AS (SELECT * FROM credit_risk.cr_scorecard('card')),
     apps AS (SELECT id, to_jsonb(g) AS j FROM german_raw g)
SELECT a.id, a.j, sum(c.points) AS points, sum(c.coefficient * c.woe) AS woe_margin
  FROM apps a CROSS JOIN (SELECT DISTINCT feature FROM card) f
  JOIN LATERAL (
        SELECT c.points, c.coefficient, c.woe FROM card c
         WHERE c.feature = f.feature
           AND ((a.j->>f.feature IS NULL AND c.bin = 0)
             OR (a.j->>f.feature IS NOT NULL AND c.category IS NULL AND c.bin > 0
                 AND (a.j->>f.feature)::float8 >= c.lower AND (a.j->>f.feature)::float8 < c.upper)
             OR (a.j->>f.feature IS NOT NULL AND c.category = a.j->>f.feature))) c ON true
 GROUP BY a.id, a.j;
SELECT count(*) AS applicants,
       max(abs(points - (credit_risk.cr_predict('card', j)->>'score')::float8)) <= 0.5 AS points_add_up,
       max(abs(1 / (1 + exp(-(woe_margin + (SELECT coefficient FROM credit_risk.cr_coefficients('card')
                                            WHERE feature = '(intercept)'))))
               - credit_risk.cr_predict('card', g))) < 1e-12 AS pd_from_woe
  FROM card_rows r JOIN german_raw g USING (id);
-- the batch scorer gives every row the row form's PD, to the last bit
SELECT count(*) AS rows, bool_and(b.default_probability = credit_risk.cr_predict('card', g)) AS identical
  FROM credit_risk.cr_predict_batch('card', 'german_raw', 'id') b
  JOIN german_raw g ON g.id = b.key::bigint;

-- explanations: each feature's points lost against its best bin, in
-- log-odds; the base is every feature in its best bin
SELECT count(*) AS applicants,
       bool_and(abs(e.base + e.total - ln(p / (1 - p))) < 1e-9) AS base_plus_contributions,
       bool_and(e.lowest >= -1e-12) AS never_below_best
  FROM german_raw g,
       LATERAL (SELECT sum(contribution) FILTER (WHERE feature <> '(base)') AS total,
                       sum(contribution) FILTER (WHERE feature = '(base)') AS base,
                       min(contribution) FILTER (WHERE feature <> '(base)') AS lowest
                  FROM credit_risk.cr_explain('card', g, NULL)) e,
       LATERAL (SELECT credit_risk.cr_predict('card', g) AS p) s;
SELECT feature, value, round(contribution::numeric, 6) AS contribution, reason_code
  FROM credit_risk.cr_explain('card', (SELECT g FROM german_raw g WHERE id = 2), 3);

-- the export: intercept, coefficients, bins
SELECT jsonb_array_length(e->'scorecard'->'features') AS features,
       e->'scorecard'->'features'->1->'bins'->0 ? 'upper' AS numbers_have_bounds,
       e->'scorecard'->'features'->0->'bins'->0 ? 'levels' AS categories_have_levels
  FROM credit_risk.cr_export('card') e;

-- a feature of one bin on the training rows gets coefficient 0
SELECT feature, coefficient FROM credit_risk.cr_coefficients('card') WHERE feature = 'foreign_worker';

-- an empty text is a level like any other: stored, read back, scored (a
-- model with one was once written and could not be read)
CREATE TABLE empty_level AS
SELECT i, ((i * 7) % 5 < 2)::int AS y, (i % 10)::float8 AS x1,
       CASE WHEN i % 3 = 0 THEN '' ELSE 'a' END AS xt
  FROM generate_series(1, 300) i;
SELECT m.algorithm, jsonb_array_length(credit_risk.cr_model_info(m.model)->'features') AS features
  FROM (VALUES ('logistic'), ('scorecard'), ('gbm')) a(alg),
       LATERAL credit_risk.cr_train('empty_' || a.alg, 'empty_level', 'y', a.alg, ARRAY['x1', 'xt'],
                                    '{"holdout": 0, "min_category_count": 1}') m;
SELECT name, count(*) AS rows, bool_and(b.default_probability BETWEEN 0 AND 1) AS scored
  FROM (VALUES ('empty_logistic'), ('empty_scorecard'), ('empty_gbm')) n(name),
       LATERAL credit_risk.cr_predict_batch(n.name, 'SELECT 3.0::float8 AS x1, ''''::text AS xt') b
 GROUP BY name ORDER BY name;
SELECT category, bin IS NOT NULL AS binned FROM credit_risk.cr_scorecard('empty_scorecard')
 WHERE feature = 'xt' ORDER BY category;

-- bad input
SELECT expect_error($q$SELECT credit_risk.cr_train('card_x', 'german_raw', 'bad', 'scorecard', ARRAY['duration'], '{"cv": 5}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('card_x', 'german_raw', 'bad', 'scorecard', ARRAY['duration'], '{"max_bins": 1}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('card_x', 'german_raw', 'bad', 'scorecard', ARRAY['duration'], '{"trend": "up"}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('card_x', 'german_raw', 'bad', 'scorecard', ARRAY['duration'], '{"n_trees": 10}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('card_x', 'german_raw', 'bad', 'scorecard', ARRAY['duration'], '{"reference": {"duration": "x"}}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('card_x', 'german_raw', 'bad', 'scorecard', ARRAY['foreign_worker'], '{"min_category_count": 1}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_scorecard('card_lr')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_scorecard('card', 5)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_tune('card_t', 'german_raw', 'bad', 'scorecard', ARRAY['duration'], '{"method": "grid", "space": {"l2": [0, 1]}}')$q$);
-- the model bytes are checked like any other's
SELECT expect_error($q$SELECT credit_risk.cr_model_info(substring(model from 1 for length(model) - 9)) FROM credit_risk.models WHERE name = 'card'$q$);
SELECT expect_error($q$SELECT credit_risk.cr_model_info(overlay(model placing '\xff' from 200 for 1)) FROM credit_risk.models WHERE name = 'card'$q$);
