-- cr_calibration and cr_fairness: shapes, answers that follow from the
-- definitions, and bad input.  (test/t/020_calibration_fairness.pl checks
-- the numbers against scipy and scikit-learn.)  german_raw is cr_woe's.
SELECT 1 FROM credit_risk.cr_train('val_lr', 'german_raw', 'bad', 'logistic',
    ARRAY['duration', 'amount', 'age', 'checking', 'history', 'savings'], '{"holdout": 0.3, "seed": 7}');

-- groups of equal size in PD order, each PD range above the one before
SELECT section, band, n, defaults, lower <= upper AS ordered
  FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad', NULL, 4)
 WHERE section = 'reliability';
SELECT bool_and(lower >= prev) AS groups_in_pd_order
  FROM (SELECT lower, lag(upper) OVER (ORDER BY band::int) AS prev
          FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad')
         WHERE section = 'reliability') s
 WHERE prev IS NOT NULL;
-- the Hosmer-Lemeshow statistic is the sum of the groups' terms
SELECT abs(sum(statistic) FILTER (WHERE section = 'reliability') -
           sum(statistic) FILTER (WHERE section = 'hosmer_lemeshow')) < 1e-9 AS sum_of_terms,
       sum(n) FILTER (WHERE section = 'reliability') AS rows
  FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad');
-- per risk category: the model's PD bands, every row in one
SELECT section, band, lower, upper, sum(n) OVER (PARTITION BY section) AS rows,
       p_value BETWEEN 0 AND 1 AS p_in_range
  FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad')
 WHERE section IN ('binomial', 'jeffreys')
 ORDER BY section, lower;

-- fairness: every row in one group, NULL a group of its own, the most
-- favoured group the reference with ratio 1 and SMD 0
SELECT group_value, n, approved, round(approval_rate::numeric, 4) AS rate,
       round(adverse_impact_ratio::numeric, 4) AS air, flagged, labelled, reference,
       smd = 0 AS smd_zero
  FROM credit_risk.cr_fairness('val_lr',
           'SELECT *, CASE WHEN age < 25 THEN NULL ELSE (age > 40)::text END AS older FROM german_raw',
           'older', '{"approve_below": 0.3}');
-- approvals at a PD cut-off are the rows below it
SELECT sum(approved) = (SELECT count(*) FROM credit_risk.cr_predict_batch('val_lr', 'german_raw')
                         WHERE default_probability < 0.3) AS approvals_below_cutoff
  FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"approve_below": 0.3}');
-- by default the first risk category is approved; min_ratio moves the flag
SELECT sum(approved) = (SELECT count(*) FROM credit_risk.cr_predict_batch('val_lr', 'german_raw')
                         WHERE risk_category = 'low') AS approvals_low
  FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing');
SELECT group_value, flagged FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"min_ratio": 0.5}')
 ORDER BY 1;
-- many groups: one a row
SELECT count(*) AS groups, sum(n) AS rows, count(*) FILTER (WHERE reference) AS references
  FROM credit_risk.cr_fairness('val_lr', 'SELECT *, id::text AS each_row FROM german_raw', 'each_row');

-- PDs of exactly 1 for outcomes that are not all defaults: an infinite
-- Hosmer-Lemeshow term, p-value 0, not a perfect fit
CREATE TABLE val_extreme AS
SELECT i AS id, (i % 3 = 0)::int AS y, 1.0::float8 AS x FROM generate_series(1, 200) i;
SELECT 1 FROM credit_risk.cr_train('val_sure', 'SELECT id, y, x FROM val_extreme UNION ALL SELECT 0, 0, 0',
                                   'y', 'logistic', ARRAY['x'], '{"holdout": 0, "l2": 0.000001}');
SELECT section, statistic, p_value
  FROM credit_risk.cr_calibration('val_sure', 'SELECT id, y, 1e6::float8 AS x FROM val_extreme', 'y')
 WHERE section = 'hosmer_lemeshow';

-- bad input
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad', NULL, 2)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'german_raw', NULL)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT * FROM german_raw LIMIT 5', 'bad')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT * FROM german_raw WHERE false', 'bad')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT *, NULL::int AS y FROM german_raw', 'y')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT *, ''NaN''::float8 AS y FROM german_raw', 'y')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_evaluate('val_lr', 'SELECT *, ''NaN''::float8 AS y FROM german_raw', 'y')$q$);
-- feature values whose terms overflow to Infinity - Infinity: no PD, an
-- ERROR (such a NaN once reached the AUC's ranking and never returned)
CREATE TABLE val_sep AS
SELECT i, a, b, (i % 3)::text AS grp,
       (((i * 7919) % 1000) / 1000.0 < 1 / (1 + exp(-(3 * a - 3 * b))))::int AS y
  FROM (SELECT i, ((i * 104729) % 2001) / 1000.0 - 1 AS a, ((i * 7907) % 2003) / 1001.5 - 1 AS b
          FROM generate_series(1, 3000) i) s;
SELECT 1 FROM credit_risk.cr_train('val_sep', 'val_sep', 'y', 'logistic', ARRAY['a', 'b'], '{"holdout": 0}');
SELECT feature, round(coefficient::numeric) AS coefficient
  FROM credit_risk.cr_coefficients('val_sep') WHERE feature <> '(intercept)';
SELECT expect_error($q$SELECT credit_risk.cr_predict('val_sep', ARRAY[1e308, 1e308]::float8[])$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_sep', 'SELECT grp, y, 1e308::float8 AS a, 1e308::float8 AS b FROM val_sep', 'grp', '{"label": "y"}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_evaluate('val_sep', 'SELECT y, 1e308::float8 AS a, 1e308::float8 AS b FROM val_sep', 'y')$q$);
SELECT expect_error($q$SELECT count(*) FROM credit_risk.cr_predict_batch('val_sep', 'SELECT 1e308::float8 AS a, 1e308::float8 AS b')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad', 9)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('no_model', 'german_raw', 'bad')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'no_column')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', NULL)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"approve_below": 1}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"min_ratio": 0}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"label": 3}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"group": "x"}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"version": 2}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_fairness('val_lr', 'german_raw', 'housing', '{"label": "housing"}')$q$);

-- params.calibration: a map from the margin to the PD, fitted on the
-- holdout; every scoring form applies it
SELECT 1 FROM credit_risk.cr_train('cal_plain', 'german_raw', 'bad', 'gbm',
    ARRAY['duration', 'amount', 'age', 'checking', 'history'],
    '{"holdout": 0.3, "seed": 7, "key": "id", "n_trees": 40, "max_depth": 3, "threads": 1}');
SELECT 1 FROM credit_risk.cr_train('cal_platt', 'german_raw', 'bad', 'gbm',
    ARRAY['duration', 'amount', 'age', 'checking', 'history'],
    '{"holdout": 0.3, "seed": 7, "key": "id", "n_trees": 40, "max_depth": 3, "threads": 1,
      "calibration": "platt"}');
SELECT 1 FROM credit_risk.cr_train('cal_iso', 'german_raw', 'bad', 'gbm',
    ARRAY['duration', 'amount', 'age', 'checking', 'history'],
    '{"holdout": 0.3, "seed": 7, "key": "id", "n_trees": 40, "max_depth": 3, "threads": 1,
      "calibration": "isotonic"}');
SELECT name, params->>'calibration' AS calibration,
       (credit_risk.cr_model_info(model)->>'format_version')::int AS format_version,
       metrics->'calibration'->>'method' AS method, (metrics->'calibration'->>'rows')::int AS rows,
       (metrics->'calibration'->>'log_loss_after')::float8 <= (metrics->'calibration'->>'log_loss_before')::float8 AS log_loss_not_worse,
       (metrics->'calibration'->>'brier_after')::float8 <= (metrics->'calibration'->>'brier_before')::float8 AS brier_not_worse,
       abs((metrics->>'log_loss')::float8 - (metrics->'calibration'->>'log_loss_after')::float8) < 1e-15 AS metrics_are_calibrated
  FROM credit_risk.models WHERE name IN ('cal_plain', 'cal_platt', 'cal_iso') ORDER BY name;
-- Platt's a and b are the logistic regression of the holdout labels on the
-- uncalibrated model's holdout margins
SELECT 1 FROM credit_risk.cr_train('cal_check', $q$
    SELECT bad, ln(p / (1 - p)) AS margin
      FROM (SELECT bad, credit_risk.cr_predict('cal_plain', g) AS p FROM german_raw g
             WHERE credit_risk.cr_in_holdout(id, 7, 0.3)) s$q$,
    'bad', 'logistic', NULL, '{"holdout": 0, "tol": 1e-14}');
SELECT abs(c.coefficient - (m.metrics->'calibration'->>'a')::float8) < 1e-6 AS slope,
       abs(i.coefficient - (m.metrics->'calibration'->>'b')::float8) < 1e-6 AS intercept
  FROM credit_risk.models m,
       credit_risk.cr_coefficients('cal_check') c, credit_risk.cr_coefficients('cal_check') i
 WHERE m.name = 'cal_platt' AND c.feature = 'margin' AND i.feature = '(intercept)';
-- every row: the calibrated PD from the plain model's margin; every form the same
SELECT count(*) AS rows,
       max(abs(credit_risk.cr_predict('cal_platt', g)
               - 1 / (1 + exp(-(a * ln(p / (1 - p)) + b))))) < 1e-12 AS platt_applied,
       bool_and(credit_risk.cr_predict('cal_platt', g) =
                (credit_risk.cr_predict('cal_platt', to_jsonb(g))->>'default_probability')::float8) AS jsonb_same
  FROM german_raw g,
       LATERAL (SELECT credit_risk.cr_predict('cal_plain', g) AS p) s,
       (SELECT (metrics->'calibration'->>'a')::float8 AS a, (metrics->'calibration'->>'b')::float8 AS b
          FROM credit_risk.models WHERE name = 'cal_platt') ab;
SELECT name, bool_and(b.default_probability = credit_risk.cr_predict(name, g)) AS batch_is_row_form,
       bool_and(b.default_probability BETWEEN 0 AND 1) AS in_range
  FROM (VALUES ('cal_platt'), ('cal_iso')) n(name),
       LATERAL credit_risk.cr_predict_batch(n.name, 'german_raw', 'id') b
  JOIN german_raw g ON g.id = b.key::bigint
 GROUP BY name ORDER BY name;
-- isotonic: a non-decreasing map of the plain PD
SELECT count(*) AS pairs_out_of_order
  FROM (SELECT credit_risk.cr_predict('cal_plain', g) AS p, credit_risk.cr_predict('cal_iso', g) AS q
          FROM german_raw g) a,
       LATERAL (SELECT credit_risk.cr_predict('cal_plain', g) AS p, credit_risk.cr_predict('cal_iso', g) AS q
                  FROM german_raw g WHERE g.id % 50 = 0) b
 WHERE a.p < b.p AND a.q > b.q;
-- Platt explanations still add up to the logit of the calibrated PD
SELECT bool_and(abs(e.total - ln(p / (1 - p))) < 1e-9) AS adds_up
  FROM (SELECT g, credit_risk.cr_predict('cal_platt', g) AS p FROM german_raw g WHERE id % 10 = 0) s,
       LATERAL (SELECT sum(contribution) AS total FROM credit_risk.cr_explain('cal_platt', s.g, NULL)) e;
SELECT e->'calibration'->>'method' AS method, jsonb_array_length(e->'calibration'->'pd') > 1 AS points
  FROM credit_risk.cr_export('cal_iso') e;
SELECT expect_error($q$SELECT credit_risk.cr_train('cal_x', 'german_raw', 'bad', 'logistic', ARRAY['duration'], '{"holdout": 0, "calibration": "platt"}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('cal_x', 'german_raw', 'bad', 'logistic', ARRAY['duration'], '{"calibration": "beta"}')$q$);
SELECT expect_error($q$SELECT credit_risk.cr_train('cal_x', 'german_raw', 'bad', 'logistic', ARRAY['duration'], '{"calibration": true}')$q$);
-- without a holdout, on the cross-validation's out-of-fold PDs
SELECT metrics->>'evaluated_on' AS evaluated_on, metrics->'calibration'->>'fitted_on' AS fitted_on,
       (metrics->'calibration'->>'rows')::int AS rows,
       (metrics->'calibration'->>'log_loss_after')::float8 <= (metrics->'calibration'->>'log_loss_before')::float8 AS log_loss_not_worse
  FROM credit_risk.cr_train('cal_cv', 'german_raw', 'bad', 'logistic', ARRAY['duration', 'amount', 'age'],
                            '{"holdout": 0, "cv": 5, "calibration": "platt"}');
SELECT expect_error($q$SELECT * FROM credit_risk.cr_tune('cal_t', 'german_raw', 'bad', 'logistic', ARRAY['duration'], '{"method": "random", "trials": 2, "space": {"l2": [0, 1]}}', '{"holdout": 0, "cv": 3, "calibration": "platt"}')$q$);
