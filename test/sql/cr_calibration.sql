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

-- bad input
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'german_raw', 'bad', NULL, 2)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'german_raw', NULL)$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT * FROM german_raw LIMIT 5', 'bad')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT * FROM german_raw WHERE false', 'bad')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_calibration('val_lr', 'SELECT *, NULL::int AS y FROM german_raw', 'y')$q$);
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
