-- Monitoring runs, alert rules, alerts.
SET client_min_messages = warning;

-- The built-in rules, as the seed's monitoring had them.
SELECT name, metric, comparison, threshold, severity, model_name, enabled, builtin
  FROM credit_risk.effective_alert_rules ORDER BY name;

-- A run on the same population and true outcomes: no drift, AUC above the
-- floor, no alert; the latency rule cannot be evaluated and says why.
SELECT model_name, model_version, rows, max_feature_psi < 0.01 AS no_drift,
       (metrics->>'auc')::float8 > 0.75 AS auc_ok, alerts, unevaluated,
       array_length(pd_deciles, 1) AS deciles,
       abs((SELECT sum(value::text::float8) FROM jsonb_each(category_shares)) - 1) < 1e-12 AS shares_add_up
  FROM credit_risk.cr_monitor('german_full', 'german_credit', 'bad');

-- Shuffled outcomes: the AUC floor fires (critical).
SELECT alerts FROM credit_risk.cr_monitor('german_full',
       'SELECT g.*, s.bad AS shuffled FROM german_credit g
          JOIN (SELECT applicant_id, bad FROM german_credit) s
            ON s.applicant_id = 1 + (g.applicant_id * 389) % 1000', 'shuffled');
SELECT rule_name, model_name, metric, value < 0.75 AS below, comparison, threshold, severity
  FROM credit_risk.alerts ORDER BY id;

-- A shifted population: the drift rule fires (warning); without labels the
-- AUC rule is skipped, with a reason.
SELECT alerts, max_feature_psi > 0.15 AS drifted, unevaluated ? 'model_performance_degradation' AS auc_skipped
  FROM credit_risk.cr_monitor('drift_m',
       'SELECT id, x1 + (SELECT stddev(x1) FROM synth) AS x1, x2, income FROM synth');
SELECT rule_name, metric, severity, message LIKE 'data_drift_detected: max_feature_psi of drift_m@1 is %' AS message_ok
  FROM credit_risk.alerts ORDER BY id DESC LIMIT 1;

-- A DBA's change to a built-in rule becomes a row of its own, which wins.
UPDATE credit_risk.alert_rules SET threshold = 0.5 WHERE name = 'data_drift_detected';
DELETE FROM credit_risk.alert_rules WHERE name = 'high_api_latency';
SELECT name, threshold, enabled, builtin FROM credit_risk.alert_rules ORDER BY id;
SELECT name, threshold, enabled, builtin FROM credit_risk.effective_alert_rules ORDER BY name;
SELECT alerts, unevaluated FROM credit_risk.cr_monitor('drift_m',
       'SELECT id, x1 + 0.3 * (SELECT stddev(x1) FROM synth) AS x1, x2, income FROM synth');

-- Rules for one model only.
INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity, model_name)
VALUES ('score_shift', 'score_psi', '>', 0.0, 'info', 'drift_m');
SELECT alerts FROM credit_risk.cr_monitor('drift_m', 'synth');
SELECT alerts FROM credit_risk.cr_monitor('german_full', 'german_credit');

-- The book by run.
SELECT model_name, model_version, risk_category, round(share::numeric, 3) AS share, runs
  FROM credit_risk.portfolio_summary WHERE model_name = 'german_full' ORDER BY risk_category;

-- Calibration and fairness rules: a risk category whose PDs are too low
-- for its outcomes (Jeffreys), and an adverse impact ratio under the
-- four-fifths rule by a column of the source that the model does not use.
INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity, model_name, group_column)
VALUES ('pd_too_low', 'min_jeffreys_p', '<', 0.01, 'warning', 'german_full', NULL),
       ('pd_misfit', 'hosmer_lemeshow_p', '<', 0.001, 'info', 'german_full', NULL),
       ('four_fifths', 'min_adverse_impact_ratio', '<', 0.8, 'warning', 'german_full', 'older');
SELECT alerts, unevaluated, (calibration->>'min_jeffreys_p')::float8 > 0.01 AS calibrated,
       calibration->'jeffreys_p' ?& ARRAY['low', 'medium', 'high'] AS per_category,
       (fairness->'older'->>'min_adverse_impact_ratio')::float8 < 0.8 AS unfair,
       jsonb_array_length(fairness->'older'->'groups') AS groups
  FROM credit_risk.cr_monitor('german_full', 'SELECT *, (age > 40)::text AS older FROM german_credit', 'bad');
SELECT rule_name, metric, round(value::numeric, 4) AS value, severity
  FROM credit_risk.alerts ORDER BY id DESC LIMIT 1;
-- every bad counted three times: the PDs are far too low
SELECT alerts, (calibration->>'min_jeffreys_p')::float8 < 1e-6 AS too_low
  FROM credit_risk.cr_monitor('german_full',
       'SELECT *, (age > 40)::text AS older FROM german_credit
        UNION ALL SELECT *, (age > 40)::text FROM german_credit WHERE bad = 1
        UNION ALL SELECT *, (age > 40)::text FROM german_credit WHERE bad = 1', 'bad');
SELECT rule_name, metric, severity FROM credit_risk.alerts ORDER BY id DESC LIMIT 3;
-- too few rows for ten groups: the calibration rules wait, the run goes on
SELECT alerts, unevaluated->>'pd_too_low' AS why, calibration IS NULL AS no_calibration
  FROM credit_risk.cr_monitor('german_full', 'SELECT *, (age > 40)::text AS older FROM german_credit LIMIT 5', 'bad');
-- without labels the calibration rules wait; without the column, the fairness rule
SELECT alerts, unevaluated FROM credit_risk.cr_monitor('german_full', 'german_credit');
SELECT expect_error($$INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold) VALUES ('x', 'min_adverse_impact_ratio', '<', 0.8)$$);
SELECT expect_error($$INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, group_column) VALUES ('x', 'auc', '<', 0.8, 'older')$$);
DELETE FROM credit_risk.alert_rules WHERE name IN ('pd_too_low', 'pd_misfit', 'four_fifths');

-- Everything is kept for pg_dump.
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'credit_risk' AND (c.relname LIKE '%alert%' OR c.relname LIKE 'monitoring%')
 ORDER BY 1;

SELECT expect_error($$SELECT credit_risk.cr_monitor('no_such_model', 'synth')$$);
SELECT expect_error($$SELECT credit_risk.cr_monitor('drift_m', 'no_such_table')$$);
SELECT expect_error($$SELECT credit_risk.cr_monitor('german_full', 'german_credit', 'nope')$$);
SELECT expect_error($$INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold) VALUES ('x', 'nope', '>', 1)$$);
RESET client_min_messages;
