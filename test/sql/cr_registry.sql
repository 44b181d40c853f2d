-- Versions, champion and challenger status, the serving version.
SELECT name, version, status FROM credit_risk.models WHERE name = 'german' ORDER BY version;

-- The first version of a name is its champion; the later ones are
-- candidates, and training them did not change which version serves.
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

-- Privileges and row security.  A role with SELECT on the registry scores
-- through its indexes and keeps its answer across statements; a role
-- without SELECT is refused, even right after a role that could read the
-- registry scored the same name in this session; under a row security
-- policy, scoring sees the rows the policy lets the role see.
CREATE ROLE regress_cr_scorer;
CREATE ROLE regress_cr_nothing;
GRANT USAGE ON SCHEMA credit_risk TO regress_cr_scorer, regress_cr_nothing;
GRANT SELECT ON credit_risk.models, credit_risk.routes, german_credit TO regress_cr_scorer;
GRANT SELECT ON credit_risk.routes, german_credit TO regress_cr_nothing;
SELECT credit_risk.cr_predict('german', g) AS owner_pd FROM german_credit g WHERE applicant_id = 1 \gset
SET ROLE regress_cr_scorer;
SELECT credit_risk.cr_predict('german', g) = :owner_pd AS table_privilege
  FROM german_credit g WHERE applicant_id = 1;
RESET ROLE;
SET ROLE regress_cr_nothing;
SELECT expect_error($$SELECT credit_risk.cr_predict('german', g) FROM german_credit g WHERE applicant_id = 1$$);
RESET ROLE;
ALTER TABLE credit_risk.models ENABLE ROW LEVEL SECURITY;
CREATE POLICY regress_only_german ON credit_risk.models TO regress_cr_scorer USING (name = 'german');
SET ROLE regress_cr_scorer;
SELECT credit_risk.cr_predict('german', g) = :owner_pd AS under_policy
  FROM german_credit g WHERE applicant_id = 1;
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', ARRAY[1, 2, 3]::float8[])$$);
RESET ROLE;
SELECT credit_risk.cr_predict('german_small', ARRAY[30, 12, 0]::float8[]) > 0 AS owner_sees_it;
DROP POLICY regress_only_german ON credit_risk.models;
ALTER TABLE credit_risk.models DISABLE ROW LEVEL SECURITY;
DROP OWNED BY regress_cr_scorer, regress_cr_nothing;
DROP ROLE regress_cr_scorer, regress_cr_nothing;
