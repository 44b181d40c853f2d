-- Register-if-better retraining and the pipeline run log.

-- cr_in_holdout picks exactly the rows a keyed training run held out.
SELECT holdout_rows,
       (SELECT count(*) FROM german_credit g
         WHERE credit_risk.cr_in_holdout(g.applicant_id, 42, 0.2)) AS by_sql,
       (SELECT count(*) FROM german_credit g
         WHERE credit_risk.cr_in_holdout(g.applicant_id::text, 42, 0.2)) AS text_key_differs
  FROM credit_risk.models WHERE name = 'german' AND version = 1;

-- No champion yet: the first candidate is promoted.
SELECT job, status, rows_in, rows_rejected, finished_at >= started_at AS timed,
       detail->>'promoted' AS promoted, detail->>'candidate_version' AS candidate,
       detail->'champion_version' AS champion
  FROM credit_risk.cr_retrain('pd', 'german_credit', 'bad', 'logistic',
                              '{"key": "applicant_id", "min_gain": 0.005}');

-- A weaker candidate (two stumps) is kept out; both are scored on the
-- candidate's holdout rows, and the candidate's AUC there is its own metric.
CREATE TEMP TABLE weaker AS
SELECT * FROM credit_risk.cr_retrain('pd', 'german_credit', 'bad', 'gbm',
                                     '{"key": "applicant_id", "n_trees": 2, "max_depth": 1}');
SELECT detail->>'promoted' AS promoted,
       (detail->>'candidate_auc')::float8 < (detail->>'champion_auc')::float8 AS weaker,
       (detail->>'candidate_auc')::float8 = (m.metrics->>'auc')::float8 AS same_rows
  FROM weaker r JOIN credit_risk.models m
    ON m.name = 'pd' AND m.version = (r.detail->>'candidate_version')::int;
SELECT version, status FROM credit_risk.models WHERE name = 'pd' ORDER BY version;

-- The champion can be beaten only by min_gain or more.
SELECT detail->>'promoted' AS promoted, detail->>'min_gain' AS min_gain
  FROM credit_risk.cr_retrain('pd', 'german_credit', 'bad', 'logistic',
                              '{"key": "applicant_id", "min_gain": 0.5}');
SELECT detail->>'promoted' AS promoted
  FROM credit_risk.cr_retrain('pd', 'german_credit', 'bad', 'logistic',
                              '{"key": "applicant_id", "min_gain": -1}');
SELECT version, status FROM credit_risk.models WHERE name = 'pd' ORDER BY version;

SELECT job, status, detail->>'candidate_version' AS candidate, detail->>'promoted' AS promoted
  FROM credit_risk.pipeline_runs ORDER BY id;

SELECT expect_error($$SELECT credit_risk.cr_retrain('pd', 'german_credit', 'bad')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('pd', 'german_credit', 'bad', 'gbm', '{"key": "applicant_id", "holdout": 0}')$$);
SELECT expect_error($$SELECT credit_risk.cr_retrain('pd', 'german_credit', 'bad', 'gbm', '{"key": "no_such_column"}')$$);

-- Mirroring an extract (any relation; a foreign table in production).
CREATE TABLE ext_loans (id int, amount numeric, updated_at timestamptz, note text);
INSERT INTO ext_loans
SELECT i, i * 10, '2026-01-01'::timestamptz + i * interval '1 hour', 'n' FROM generate_series(1, 5) i;
CREATE TABLE loans (id int PRIMARY KEY, amount numeric, updated_at timestamptz);
SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['id'], 'updated_at');
-- a changed row and a new one arrive; id 2 twice: its newest version wins
UPDATE ext_loans SET amount = 21, updated_at = '2026-02-01' WHERE id = 2;
INSERT INTO ext_loans VALUES (6, 60, '2026-02-02', 'x'), (2, 22, '2026-03-01', 'newer');
SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['id'], 'updated_at');
SELECT * FROM loans ORDER BY id;
SELECT source, target, watermark, last_watermark FROM credit_risk.mirror_state;
-- nothing new past the watermark: nothing read
SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['id'], 'updated_at');
SELECT job, status, rows_in, detail->'inserted' AS inserted, detail->'updated' AS updated
  FROM credit_risk.pipeline_runs WHERE job LIKE 'mirror:%' ORDER BY id;
SELECT expect_error($$SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['id'])$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['note'], 'updated_at')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['id'], 'nope')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_mirror('no_such_table', 'loans', ARRAY['id'])$$);

-- Pipeline steps: each run is logged; a step whose predecessor has not
-- succeeded today is skipped, with the reason.
SELECT job, status, detail->>'reason' AS reason FROM credit_risk.cr_run_pipeline_step('ingestion');
-- Steps run as a named role, never as the superuser that pg_cron runs
-- the job as: the default run_as (the creating role, here a superuser) is
-- refused.
SELECT expect_error($$INSERT INTO credit_risk.pipeline_steps (step, command) VALUES ('features', 'SELECT 1')$$);
SELECT expect_error($$INSERT INTO credit_risk.pipeline_steps (step, command, run_as) VALUES ('features', 'SELECT 1', 'no_such_role')$$);
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'regress_cr_runner') THEN
        CREATE ROLE regress_cr_runner;
    END IF;
END
$$;
-- the grants the README lists for a role that runs mirroring steps
GRANT USAGE ON SCHEMA credit_risk TO regress_cr_runner;
GRANT EXECUTE ON FUNCTION credit_risk.cr_mirror(regclass, regclass, text[], text) TO regress_cr_runner;
GRANT SELECT ON credit_risk.quality_rules TO regress_cr_runner;
GRANT SELECT, INSERT, UPDATE ON credit_risk.mirror_state TO regress_cr_runner;
GRANT INSERT ON credit_risk.pipeline_runs, credit_risk.quarantine TO regress_cr_runner;
GRANT USAGE ON SEQUENCE credit_risk.pipeline_runs_id_seq, credit_risk.quarantine_id_seq TO regress_cr_runner;
-- and what its steps read and write
GRANT CREATE ON SCHEMA public TO regress_cr_runner;
GRANT SELECT ON ext_loans TO regress_cr_runner;
GRANT SELECT, INSERT, UPDATE ON loans TO regress_cr_runner;
INSERT INTO credit_risk.pipeline_steps (step, command, run_as) VALUES
    ('ingestion', $$SELECT * FROM credit_risk.cr_mirror('ext_loans', 'loans', ARRAY['id'], 'updated_at')$$, 'regress_cr_runner'),
    ('features', $$CREATE TABLE loan_features AS SELECT id, amount * 2 AS amount2 FROM loans$$, 'regress_cr_runner'),
    ('monitoring', $$SELECT 1 / 0$$, 'regress_cr_runner');
SELECT job, status, detail->>'reason' AS reason FROM credit_risk.cr_run_pipeline_step('features');
SELECT count(*) AS no_features_yet FROM pg_class WHERE relname = 'loan_features';
INSERT INTO ext_loans VALUES (7, 70, '2026-04-01', 'y');
SELECT job, status FROM credit_risk.cr_run_pipeline_step('ingestion');
SELECT count(*) AS mirrored FROM loans;
SELECT job, status FROM credit_risk.cr_run_pipeline_step('features');
SELECT count(*) AS features FROM loan_features;
-- a failing step is logged as failed, with the error
SELECT job, status, detail->>'reason' AS reason FROM credit_risk.cr_run_pipeline_step('monitoring');
SELECT expect_error($$SELECT credit_risk.cr_run_pipeline_step('lunch')$$);
-- the step ran as its role: it owns what it created
SELECT pg_get_userbyid(relowner) AS features_owner FROM pg_class WHERE relname = 'loan_features';
SELECT DISTINCT detail->>'run_as' AS run_as FROM credit_risk.pipeline_runs
 WHERE job LIKE 'step:%' AND detail->>'command' IS NOT NULL;
-- a step cannot take the superuser's rights back, nor use them
UPDATE credit_risk.pipeline_steps SET command = 'RESET ROLE; CREATE TABLE escaped (x int)' WHERE step = 'monitoring';
SELECT status, detail->>'reason' AS reason FROM credit_risk.cr_run_pipeline_step('monitoring');
UPDATE credit_risk.pipeline_steps SET command = 'SET ROLE ' || quote_ident(current_user) WHERE step = 'monitoring';
SELECT status, detail->>'reason' AS reason FROM credit_risk.cr_run_pipeline_step('monitoring');
UPDATE credit_risk.pipeline_steps SET command = 'ALTER ROLE regress_cr_runner SUPERUSER' WHERE step = 'monitoring';
SELECT status, detail->>'reason' AS reason FROM credit_risk.cr_run_pipeline_step('monitoring');
SELECT rolsuper AS runner_is_superuser FROM pg_roles WHERE rolname = 'regress_cr_runner';
SELECT count(*) AS escaped FROM pg_class WHERE relname = 'escaped';
-- a superuser step only when allowed, explicitly
SELECT expect_error($$UPDATE credit_risk.pipeline_steps SET run_as = current_user WHERE step = 'monitoring'$$);
UPDATE credit_risk.pipeline_steps SET run_as = current_user, allow_superuser = true, command = 'SELECT 1'
 WHERE step = 'monitoring';
SELECT status FROM credit_risk.cr_run_pipeline_step('monitoring');
-- only a member of a role may make a step run as it
CREATE ROLE regress_cr_other;
GRANT USAGE ON SCHEMA credit_risk TO regress_cr_other;
GRANT SELECT, UPDATE ON credit_risk.pipeline_steps TO regress_cr_other;
SET ROLE regress_cr_other;
SELECT expect_error($$UPDATE credit_risk.pipeline_steps SET run_as = 'regress_cr_runner' WHERE step = 'monitoring'$$);
SELECT expect_error($$SELECT credit_risk.cr_run_as('regress_cr_runner', 'SELECT 1')$$);
RESET ROLE;
REVOKE ALL ON credit_risk.pipeline_steps FROM regress_cr_other;
REVOKE USAGE ON SCHEMA credit_risk FROM regress_cr_other;
DROP ROLE regress_cr_other;
DELETE FROM credit_risk.pipeline_steps WHERE step = 'monitoring';

-- Without pg_cron in this database, scheduling says how to get it.
SELECT expect_error($$SELECT * FROM credit_risk.cr_schedule_pipeline()$$);
SELECT expect_error($$SELECT credit_risk.cr_unschedule_pipeline()$$);

-- Data-quality gates.
CREATE TABLE ext_apps (id int, age int, income numeric, channel text, updated_at timestamptz);
INSERT INTO ext_apps VALUES
    (1, 35, 50000, 'web', '2026-01-01'), (2, NULL, 40000, 'branch', '2026-01-02'),
    (3, 17, 30000, 'web', '2026-01-03'), (4, 45, 80000, 'fax', '2026-01-04'),
    (5, 52, NULL, 'web', '2026-01-05');
CREATE TABLE apps (id int PRIMARY KEY, age int, income numeric, channel text, updated_at timestamptz);
INSERT INTO credit_risk.quality_rules (target, column_name, rule, args) VALUES
    ('apps', 'age', 'not_null', '{}'),
    ('apps', 'age', 'range', '{"min": 18, "max": 100}'),
    ('apps', 'channel', 'allowed', '{"values": ["web", "branch", "phone"]}'),
    ('apps', NULL, 'min_rows', '{"rows": 1}'),
    ('apps', 'income', 'max_null_share', '{"share": 0.5}'),
    ('apps', NULL, 'schema', '{"columns": {"age": "integer", "income": "numeric"}}');
-- rows 2 (no age), 3 (under 18) and 4 (unknown channel) go to quarantine
SELECT * FROM credit_risk.cr_mirror('ext_apps', 'apps', ARRAY['id'], 'updated_at');
SELECT id FROM apps ORDER BY id;
SELECT target, (row_data->>'id')::int AS id, rule FROM credit_risk.quarantine ORDER BY id;
-- a table-level breach fails the run and leaves the target untouched
INSERT INTO ext_apps VALUES (6, 30, NULL, 'web', '2026-02-01'), (7, 31, NULL, 'web', '2026-02-02'),
                            (8, 32, NULL, 'web', '2026-02-03');
SELECT expect_error($$SELECT * FROM credit_risk.cr_mirror('ext_apps', 'apps', ARRAY['id'], 'updated_at')$$);
SELECT count(*) AS unchanged FROM apps;
SELECT last_watermark FROM credit_risk.mirror_state WHERE source = 'ext_apps';
UPDATE credit_risk.quality_rules SET args = '{"columns": {"age": "bigint"}}' WHERE rule = 'schema';
UPDATE credit_risk.quality_rules SET enabled = false WHERE rule = 'max_null_share';
SELECT expect_error($$SELECT * FROM credit_risk.cr_mirror('ext_apps', 'apps', ARRAY['id'], 'updated_at')$$);
UPDATE credit_risk.quality_rules SET enabled = false WHERE rule = 'schema';
SELECT * FROM credit_risk.cr_mirror('ext_apps', 'apps', ARRAY['id'], 'updated_at');
SELECT job, status, rows_in, rows_rejected FROM credit_risk.pipeline_runs
 WHERE job = 'mirror:ext_apps' ORDER BY id;
