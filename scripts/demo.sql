-- credit_risk demo: train, inspect, promote and score a probability-of-default
-- model on the German credit data, entirely inside PostgreSQL.
-- Run from the repository root: psql -f scripts/demo.sql
\set ON_ERROR_STOP 1
\pset footer off
\set QUIET 1
SET client_min_messages = warning;

\echo
\echo '== 1. Install the extension and load 1,000 applicants (UCI Statlog German credit)'
-- a re-run starts afresh: dropping the registry needs this (it holds models)
SET credit_risk.allow_drop = on;
DROP EXTENSION IF EXISTS credit_risk CASCADE;
RESET credit_risk.allow_drop;
CREATE EXTENSION credit_risk;
\i test/data/german.sql
SELECT count(*) AS applicants, sum(bad) AS defaults, round(avg(bad), 3) AS default_rate
  FROM german_credit;

\echo
\echo '== 2. Train a logistic-regression PD model: 80% train / 20% holdout, split by a hash of applicant_id'
\echo '   SELECT * FROM credit_risk.cr_train(''german_pd'', ''german_credit'', ''bad'', ''logistic'', NULL, ''{"key": "applicant_id"}'');'
SELECT name, version, algorithm, status, train_rows, holdout_rows,
       round(train_seconds::numeric, 4) AS train_seconds
  FROM credit_risk.cr_train('german_pd', 'german_credit', 'bad', 'logistic', NULL,
                            '{"key": "applicant_id"}');

\echo
\echo '== 3. The coefficient table (original feature scale, as statsmodels Logit reports it)'
SELECT feature, round(coefficient::numeric, 5) AS coefficient,
       round(std_error::numeric, 5) AS std_error, round(z::numeric, 2) AS z,
       round(p_value::numeric, 4) AS p_value,
       CASE WHEN p_value < 0.01 THEN '**' WHEN p_value < 0.05 THEN '*' ELSE '' END AS sig
  FROM credit_risk.cr_coefficients('german_pd');

\echo
\echo '== 4. Holdout metrics, stored with the model version in credit_risk.models.metrics'
SELECT key AS metric, CASE WHEN jsonb_typeof(value) = 'number' AND value::text !~ '^[0-9]+$'
                           THEN round(value::text::numeric, 4)::text ELSE value #>> '{}' END AS value
  FROM credit_risk.models m, jsonb_each(m.metrics)
 WHERE m.name = 'german_pd' AND m.version = 1
   AND key IN ('evaluated_on', 'rows', 'base_rate', 'auc', 'gini', 'ks', 'log_loss', 'brier',
               'accuracy', 'precision', 'recall', 'f1', 'threshold', 'train_auc')
 ORDER BY array_position(ARRAY['evaluated_on', 'rows', 'base_rate', 'auc', 'gini', 'ks', 'log_loss',
                               'brier', 'threshold', 'accuracy', 'precision', 'recall', 'f1',
                               'train_auc'], key);

\echo
\echo '== 5. Promote version 1 to champion: cr_predict(''german_pd'', ...) now serves it'
SELECT name, version, status FROM credit_risk.cr_promote('german_pd', 1);

\echo
\echo '== 6a. Score table rows directly (columns matched by name): five applicants'
SELECT g.applicant_id, g.duration_months, g.credit_amount, g.age, g.bad AS actual_default,
       round(credit_risk.cr_predict('german_pd', g)::numeric, 4) AS default_probability
  FROM german_credit g
 ORDER BY g.applicant_id
 LIMIT 5;

\echo
\echo '== 6b. Score a features array (in the order of credit_risk.models.features)'
SELECT round(credit_risk.cr_predict('german_pd',
         ARRAY[24, 4000, 3, 2, 30, 1, 1,  1, 0, 0,  0, 0,  1, 0, 0,  1, 0,  1, 0, 0, 0, 0, 1]::float8[])::numeric, 4)
       AS default_probability_new_car_loan;

\echo
\echo '== 6c. Score one applicant sent as JSON by an application (nulls are imputed with the training mean)'
SELECT jsonb_pretty(credit_risk.cr_predict('german_pd', '{
    "customer_id": "CUST_12345",
    "duration_months": 12, "credit_amount": 2500, "installment_rate": 2,
    "residence_years": 3, "age": 41, "existing_credits": 1, "dependents": 1,
    "checking_negative": 0, "checking_low": 0, "checking_none": 1,
    "history_all_paid": 0, "history_critical": 1,
    "purpose_new_car": 0, "purpose_used_car": 1, "purpose_education": 0,
    "savings_low": 0, "savings_unknown": 1, "employed_under_1y": 0,
    "has_guarantor": 0, "no_property": 0, "other_installments": 0,
    "owns_home": 1, "foreign_worker": null}'::jsonb)) AS response;

\echo
\echo '== 7. The whole book: risk categories (PD < 0.20 low, < 0.50 medium, else high) and scorecard points'
\echo '      (600 points at 50:1 good:bad odds, 20 points to double the odds)'
SELECT r->>'risk_category' AS risk_category, count(*) AS applicants,
       round(avg((r->>'default_probability')::float8)::numeric, 3) AS mean_pd,
       round(avg(bad), 3) AS observed_default_rate,
       min((r->>'score')::int) AS min_score, max((r->>'score')::int) AS max_score
  FROM (SELECT g.bad, credit_risk.cr_predict('german_pd', to_jsonb(g)) AS r FROM german_credit g) s
 GROUP BY 1
 ORDER BY mean_pd;

\echo
\echo '== 7b. A declined applicant and the four principal reasons for the adverse-action notice:'
\echo '       each feature''s contribution to the log-odds, largest first; codes from credit_risk.reason_codes,'
\echo '       which a compliance team fills (a generated code where there is no row)'
INSERT INTO credit_risk.reason_codes (model_name, feature, direction, reason_code, reason) VALUES
    (NULL, 'checking_negative', 'high', 'R01', 'Checking account overdrawn'),
    (NULL, 'duration_months', 'high', 'R02', 'Requested loan term too long'),
    (NULL, 'history_critical', 'high', 'R03', 'Critical account or other credits elsewhere'),
    (NULL, 'savings_low', 'high', 'R04', 'Insufficient savings');
SELECT g.applicant_id, round(credit_risk.cr_predict('german_pd', g)::numeric, 3) AS default_probability,
       e.feature, e.value, round(e.contribution::numeric, 3) AS contribution, e.reason_code, e.reason
  FROM (SELECT * FROM german_credit g
         ORDER BY credit_risk.cr_predict('german_pd', g) DESC, applicant_id LIMIT 1) g,
       credit_risk.cr_explain('german_pd', g) e;

\echo
\echo '== 8. Gradient-boosted trees on the same split, with early stopping on the holdout'
SELECT name, version, algorithm,
       round((metrics->>'auc')::numeric, 4) AS holdout_auc,
       (metrics->>'n_trees')::int AS trees_kept, (metrics->>'trees_built')::int AS trees_built,
       round(train_seconds::numeric, 3) AS train_seconds
  FROM credit_risk.cr_train('german_pd', 'german_credit', 'bad', 'gbm', NULL,
                            '{"key": "applicant_id", "n_trees": 300, "max_depth": 3,
                              "learning_rate": 0.05, "early_stopping_rounds": 30,
                              "monotone": {"duration_months": 1}}');
SELECT key AS feature, round((value->>'gain')::numeric, 2) AS gain, value->'splits' AS splits
  FROM credit_risk.models m, jsonb_each(m.importance)
 WHERE m.name = 'german_pd' AND m.version = 2
 ORDER BY (value->>'gain')::float8 DESC
 LIMIT 5;

\echo
\echo '== 9. Champion (logistic, v1) and challenger (trees, v2): 30% of applicants, stable by key'
SELECT name, challenger_version, share FROM credit_risk.cr_route('german_pd', 2, 0.3);
SELECT model_version, count(*) AS applicants, round(avg(default_probability)::numeric, 3) AS mean_pd
  FROM credit_risk.cr_predict_batch('german_pd', 'german_credit', 'applicant_id')
 GROUP BY 1 ORDER BY 1;

\echo
\echo '== 10. The registry rows (model bytes are self-describing and checksummed)'
SELECT name, version, algorithm, status, created_by, array_length(features, 1) AS features,
       length(model) AS model_bytes,
       credit_risk.cr_model_info(model)->>'format_version' AS format_version
  FROM credit_risk.models WHERE name = 'german_pd' ORDER BY version;

\echo
\echo '== 11. The whole day. A second database stands in for the warehouse: raw tables for 20,000'
\echo '       customers and their feature extract (one row broken on purpose: age 150)'
DROP DATABASE IF EXISTS warehouse;
CREATE DATABASE warehouse;
\c warehouse
\set customers 20000
\i examples/reference_pipeline.sql
CREATE TABLE ref.feature_extract AS SELECT f.*, now() AS updated_at FROM ref.features f;
UPDATE ref.feature_extract SET age = 150 WHERE customer_id = 7;
\c postgres
\set QUIET 1
SET client_min_messages = warning;

\echo
\echo '== 12. Mirror the extract through postgres_fdw, past a watermark, through a quality gate'
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
DROP SERVER IF EXISTS warehouse CASCADE;
DO $$
BEGIN
    EXECUTE format('CREATE SERVER warehouse FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)',
                   split_part(current_setting('unix_socket_directories'), ',', 1),
                   current_setting('port'), 'warehouse');
    EXECUTE format('CREATE USER MAPPING FOR CURRENT_USER SERVER warehouse OPTIONS (user %L)', current_user);
    -- the pipeline's own role (see README, Roles and privileges): the steps
    -- run as it, not as the superuser pg_cron runs jobs as; on this local
    -- cluster it reads the warehouse as the same user, without a password
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cr_demo_pipeline') THEN
        CREATE ROLE cr_demo_pipeline;
    END IF;
    EXECUTE format('CREATE USER MAPPING FOR cr_demo_pipeline SERVER warehouse OPTIONS (user %L, password_required %L)',
                   current_user, 'false');
END;
$$;
-- the grants a pipeline role needs: mirroring, training and promoting,
-- monitoring (README, Roles and privileges)
DO $$
BEGIN
    GRANT USAGE ON SCHEMA credit_risk TO cr_demo_pipeline;
    GRANT EXECUTE ON FUNCTION credit_risk.cr_mirror(regclass, regclass, text[], text),
                              credit_risk.cr_train(text, text, text, text, text[], jsonb),
                              credit_risk.cr_promote(text, integer),
                              credit_risk.cr_retrain(text, text, text, text, jsonb),
                              credit_risk.cr_monitor(text, text, text) TO cr_demo_pipeline;
    GRANT SELECT ON credit_risk.models, credit_risk.routes, credit_risk.quality_rules,
                    credit_risk.alert_rules, credit_risk.effective_alert_rules TO cr_demo_pipeline;
    GRANT SELECT, INSERT, UPDATE ON credit_risk.mirror_state, credit_risk.monitoring_runs TO cr_demo_pipeline;
    GRANT SELECT, INSERT ON credit_risk.pipeline_runs TO cr_demo_pipeline;
    GRANT INSERT ON credit_risk.quarantine, credit_risk.alerts TO cr_demo_pipeline;
    GRANT USAGE ON SEQUENCE credit_risk.pipeline_runs_id_seq, credit_risk.quarantine_id_seq,
                            credit_risk.monitoring_runs_id_seq, credit_risk.alerts_id_seq TO cr_demo_pipeline;
END;
$$;
DROP SCHEMA IF EXISTS wh CASCADE;
CREATE SCHEMA wh;
IMPORT FOREIGN SCHEMA ref LIMIT TO (feature_extract) FROM SERVER warehouse INTO wh;
DROP TABLE IF EXISTS applicants;
CREATE TABLE applicants (LIKE wh.feature_extract);
ALTER TABLE applicants ADD PRIMARY KEY (customer_id);
ALTER TABLE applicants OWNER TO cr_demo_pipeline;
GRANT USAGE ON SCHEMA wh TO cr_demo_pipeline;
GRANT SELECT ON wh.feature_extract TO cr_demo_pipeline;
INSERT INTO credit_risk.quality_rules (target, column_name, rule, args)
VALUES ('applicants', 'age', 'range', '{"min": 18, "max": 100}'),
       ('applicants', NULL, 'min_rows', '{"rows": 1000}');
INSERT INTO credit_risk.pipeline_steps (step, command, run_as) VALUES
    ('ingestion', $$SELECT * FROM credit_risk.cr_mirror('wh.feature_extract', 'applicants', ARRAY['customer_id'], 'updated_at')$$, 'cr_demo_pipeline'),
    ('features', $$ANALYZE applicants$$, 'cr_demo_pipeline'),
    ('training', $$SELECT credit_risk.cr_retrain('day_pd', 'applicants', 'defaulted', 'gbm', '{"key": "customer_id", "min_gain": 0.002}')$$, 'cr_demo_pipeline'),
    ('monitoring', $$SELECT credit_risk.cr_monitor('day_pd', 'applicants', 'defaulted')$$, 'cr_demo_pipeline');
SELECT job, status FROM credit_risk.cr_run_pipeline_step('ingestion');
SELECT job, rows_in, rows_rejected, detail->'inserted' AS inserted
  FROM credit_risk.pipeline_runs WHERE job LIKE 'mirror:%' ORDER BY id DESC LIMIT 1;
SELECT target, row_data->>'customer_id' AS customer_id, row_data->>'age' AS age, rule FROM credit_risk.quarantine;
SELECT job, status FROM credit_risk.cr_run_pipeline_step('features');

\echo
\echo '== 13. Register-if-better: a logistic model first, then trees; each compared on the candidate''s holdout'
SELECT detail->>'candidate_version' AS candidate, round((detail->>'candidate_auc')::numeric, 4) AS candidate_auc,
       detail->>'champion_version' AS champion, round((detail->>'champion_auc')::numeric, 4) AS champion_auc,
       detail->>'promoted' AS promoted
  FROM credit_risk.cr_retrain('day_pd',
         'SELECT customer_id, age, income, employment_years, payment_history_score, credit_utilization,
                 delinquencies, recent_inquiries, total_debt, unemployment_rate, defaulted FROM applicants',
         'defaulted', 'logistic', '{"key": "customer_id"}');
SELECT job, status FROM credit_risk.cr_run_pipeline_step('training');
SELECT detail->>'candidate_version' AS candidate, round((detail->>'candidate_auc')::numeric, 4) AS candidate_auc,
       detail->>'champion_version' AS champion, round((detail->>'champion_auc')::numeric, 4) AS champion_auc,
       detail->>'promoted' AS promoted
  FROM credit_risk.pipeline_runs WHERE job = 'retrain:day_pd' ORDER BY id DESC LIMIT 1;

\echo
\echo '== 14. Batch scoring of every applicant with the champion'
SELECT model_version, risk_category, count(*) AS applicants, round(avg(default_probability)::numeric, 3) AS mean_pd
  FROM credit_risk.cr_predict_batch('day_pd', 'applicants', 'customer_id')
 GROUP BY 1, 2 ORDER BY 1, mean_pd;

\echo
\echo '== 15. Monitoring: today''s applicants, then a month in which utilization crept up'
SELECT job, status FROM credit_risk.cr_run_pipeline_step('monitoring');
SELECT run_at::date AS day, model_version, rows, round(max_feature_psi::numeric, 4) AS max_psi,
       round((metrics->>'auc')::numeric, 4) AS auc, alerts
  FROM credit_risk.monitoring_runs ORDER BY id DESC LIMIT 1;
SELECT feature, round(psi::numeric, 4) AS psi, severity
  FROM credit_risk.cr_drift_score('day_pd',
         'SELECT customer_id, age, income, employment_years, education, payment_history_score,
                 least(1, credit_utilization * 1.6) AS credit_utilization, account_age_months,
                 num_accounts, delinquencies, recent_inquiries, total_debt, interest_rate,
                 unemployment_rate, gdp_growth FROM applicants')
 WHERE severity <> 'stable';
SELECT alerts FROM credit_risk.cr_monitor('day_pd',
         'SELECT customer_id, age, income, employment_years, education, payment_history_score,
                 least(1, credit_utilization * 1.6) AS credit_utilization, account_age_months,
                 num_accounts, delinquencies, recent_inquiries, total_debt, interest_rate,
                 unemployment_rate, gdp_growth FROM applicants');
SELECT rule_name, severity, message FROM credit_risk.alerts ORDER BY id DESC LIMIT 3;

\echo
\echo '== 16. The schedule, as pg_cron lists it (UTC); every step above logged in credit_risk.pipeline_runs'
CREATE EXTENSION IF NOT EXISTS pg_cron;
SELECT count(*) AS jobs FROM credit_risk.cr_schedule_pipeline();
SELECT jobname, schedule, command FROM cron.job ORDER BY jobname;
SELECT job, status, count(*) FROM credit_risk.pipeline_runs GROUP BY 1, 2 ORDER BY 1;
