-- Versions, champion and challenger status, the serving version.
SELECT name, version, status FROM credit_risk.models WHERE name = 'german' ORDER BY version;

-- Without a champion the newest version serves.
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS serving
  FROM german_credit g WHERE applicant_id = 1;

-- Promote version 1: it serves from the next statement on.
SELECT name, version, status FROM credit_risk.cr_promote('german', 1);
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS serving
  FROM german_credit g WHERE applicant_id = 1;
SELECT version FROM credit_risk.cr_serving_version('german');

-- A newer version does not displace the champion.
SELECT version, status FROM credit_risk.cr_train('german', 'german_credit', 'bad', 'logistic',
                                                 ARRAY['age', 'duration_months', 'credit_amount']);
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS serving
  FROM german_credit g WHERE applicant_id = 1;

-- Promoting another version retires the previous champion.
SELECT version, status FROM credit_risk.cr_promote('german', 4);
SELECT version, status FROM credit_risk.models WHERE name = 'german' ORDER BY version;
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS serving,
       credit_risk.cr_predict('german', ARRAY[g.age, g.duration_months, g.credit_amount]) > 0 AS array_uses_new_features
  FROM german_credit g WHERE applicant_id = 1;

-- Promoting the champion again changes nothing; a retired one can return.
SELECT version, status FROM credit_risk.cr_promote('german', 4);
SELECT version, status FROM credit_risk.cr_promote('german', 2);
SELECT version, status FROM credit_risk.models WHERE name = 'german' ORDER BY version;

-- At most one champion per name, even written by hand.
SELECT expect_error($$UPDATE credit_risk.models SET status = 'champion' WHERE name = 'german' AND version = 1$$);
SELECT expect_error($$UPDATE credit_risk.models SET status = 'winner' WHERE name = 'german' AND version = 1$$);

-- A challenger status can be set; the champion still serves.
UPDATE credit_risk.models SET status = 'challenger' WHERE name = 'german' AND version = 3;
SELECT version FROM credit_risk.cr_serving_version('german');

-- In one transaction, a promotion is seen by the statements after it.
BEGIN;
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS before
  FROM german_credit g WHERE applicant_id = 1;
SELECT version FROM credit_risk.cr_promote('german', 1);
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS after
  FROM german_credit g WHERE applicant_id = 1;
ROLLBACK;
SELECT credit_risk.cr_predict('german', to_jsonb(g))->>'model_version' AS after_rollback
  FROM german_credit g WHERE applicant_id = 1;

-- Versions count per name; every name starts at 1.
SELECT name, max(version) AS versions, count(*) FILTER (WHERE status = 'champion') AS champions
  FROM credit_risk.models GROUP BY name ORDER BY name;

-- Deleting a version: the cache does not keep serving it.
DELETE FROM credit_risk.models WHERE name = 'german_seed7';
SELECT expect_error($$SELECT credit_risk.cr_predict('german_seed7', ARRAY[1]::float8[])$$);
