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
