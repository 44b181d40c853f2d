-- cr_explain: each feature's contribution to an applicant's margin, with
-- reason codes.  The contributions and the base add up to the margin.

-- German credit with NULLs punched in, so missing values take the default
-- ways of the trees and the imputed means of the logistic model.
CREATE TABLE explain_rows AS
SELECT applicant_id, bad,
       CASE WHEN applicant_id % 7 = 0 THEN NULL ELSE duration_months END AS duration_months,
       CASE WHEN applicant_id % 5 = 0 THEN NULL ELSE credit_amount END AS credit_amount,
       age, installment_rate, checking_negative, checking_none, history_critical, savings_low
  FROM german_credit;

SELECT version FROM credit_risk.cr_train('explain_gbm', 'explain_rows', 'bad', 'gbm',
    ARRAY['duration_months', 'credit_amount', 'age', 'installment_rate', 'checking_negative',
          'checking_none', 'history_critical', 'savings_low'],
    '{"n_trees": 60, "max_depth": 5, "seed": 3}');
SELECT version FROM credit_risk.cr_train('explain_lr', 'explain_rows', 'bad', 'logistic',
    ARRAY['duration_months', 'credit_amount', 'age', 'installment_rate', 'checking_negative',
          'checking_none', 'history_critical', 'savings_low']);
-- a deep, subsampled forest: nodes split on one feature again below
SELECT version FROM credit_risk.cr_train('explain_deep', 'explain_rows', 'bad', 'gbm',
    ARRAY['duration_months', 'credit_amount', 'age'],
    '{"n_trees": 25, "max_depth": 9, "subsample": 0.6, "min_child_weight": 0.1, "seed": 5}');

-- For every applicant of every model: base + contributions = logit(PD),
-- and every feature appears once.
CREATE TABLE explain_check AS
SELECT m.name, r.applicant_id,
       ln(p.pd / (1 - p.pd)) AS margin,
       (SELECT sum(e.contribution) FROM credit_risk.cr_explain(m.name, r, NULL) e) AS total,
       (SELECT count(*) FROM credit_risk.cr_explain(m.name, r, NULL) e) AS nrows,
       (SELECT count(DISTINCT e.feature) FROM credit_risk.cr_explain(m.name, r, NULL) e) AS nfeatures
  FROM (VALUES ('explain_gbm'), ('explain_lr'), ('explain_deep')) m(name)
 CROSS JOIN explain_rows r
 CROSS JOIN LATERAL (SELECT credit_risk.cr_predict(m.name, r) AS pd) p;
SELECT name, count(*) AS applicants,
       max(abs(total - margin)) < 1e-9 AS adds_up,
       bool_and(nrows = nfeatures) AS one_row_each,
       min(nrows) AS rows_with_base
  FROM explain_check GROUP BY name ORDER BY name;

-- The largest contributions first, at most top_n, ties in feature order.
SELECT name, bool_and(ordered) AS ordered
  FROM (SELECT m.name, r.applicant_id,
               (SELECT bool_and(c >= coalesce(n, c))
                  FROM (SELECT e.contribution AS c,
                               lead(e.contribution) OVER () AS n
                          FROM credit_risk.cr_explain(m.name, r, NULL) e
                         WHERE e.feature <> '(base)') s) AS ordered
          FROM (VALUES ('explain_gbm'), ('explain_lr')) m(name)
         CROSS JOIN (SELECT * FROM explain_rows WHERE applicant_id <= 200) r) t
 GROUP BY name ORDER BY name;
SELECT count(*) FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, 5000, 30, 4, 1, 0, 0, 1]::float8[]);
SELECT count(*) FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, 5000, 30, 4, 1, 0, 0, 1]::float8[], 2);
SELECT count(*) FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, 5000, 30, 4, 1, 0, 0, 1]::float8[], 0);
SELECT count(*) FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, 5000, 30, 4, 1, 0, 0, 1]::float8[], 100);

-- Logistic: coefficient x (value - training mean); a missing value adds 0.
SELECT e.feature,
       abs(e.contribution - c.coefficient * (24 - (credit_risk.cr_model_info(m.model)->'impute'->>0)::float8))
         < 1e-12 AS exact
  FROM credit_risk.cr_explain('explain_lr', ARRAY[24, NULL, 30, 4, 1, 0, 0, 1]::float8[], NULL) e
  JOIN credit_risk.cr_coefficients('explain_lr') c USING (feature),
       credit_risk.models m
 WHERE e.feature = 'duration_months' AND m.name = 'explain_lr';
SELECT feature, value, contribution, reason_code
  FROM credit_risk.cr_explain('explain_lr', ARRAY[24, NULL, 30, 4, 1, 0, 0, 1]::float8[], NULL)
 WHERE feature = 'credit_amount';

-- Reasons only for what raised the risk; generated from the feature and the
-- direction of the value against the training mean, or taken from
-- credit_risk.reason_codes (the model's own row before the general one).
SELECT feature, value, contribution > 0 AS adverse, reason_code, reason
  FROM credit_risk.cr_explain('explain_lr', ARRAY[60, NULL, 19, 4, 1, 0, 1, 1]::float8[], NULL)
 ORDER BY feature;
INSERT INTO credit_risk.reason_codes VALUES
    (NULL, 'duration_months', 'high', 'D01', 'Loan term too long'),
    ('explain_lr', 'duration_months', 'high', 'LR-D01', 'Requested term is long for this product'),
    (NULL, 'credit_amount', 'missing', 'M07', 'Credit amount not provided');
SELECT feature, reason_code, reason
  FROM credit_risk.cr_explain('explain_lr', ARRAY[60, NULL, 19, 4, 1, 0, 1, 1]::float8[], NULL)
 WHERE feature = 'duration_months';
SELECT feature, reason_code, reason
  FROM credit_risk.cr_explain('explain_gbm', ARRAY[60, NULL, 19, 4, 1, 0, 1, 1]::float8[], NULL)
 WHERE feature IN ('duration_months', 'credit_amount') AND contribution > 0
 ORDER BY feature;
-- one row per model, feature and direction (a NULL model_name included)
INSERT INTO credit_risk.reason_codes VALUES (NULL, 'duration_months', 'high', 'D02', 'again');
INSERT INTO credit_risk.reason_codes VALUES (NULL, 'age', 'sideways', 'X', 'no such direction');

-- The forms agree: array, row, jsonb, and the model as a value.
SELECT (SELECT array_agg(contribution ORDER BY feature)
          FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, NULL, 30, 4, 1, 0, 0, 1]::float8[], NULL))
     = (SELECT array_agg(contribution ORDER BY feature)
          FROM credit_risk.cr_explain('explain_gbm', '{"duration_months": 24, "credit_amount": null,
               "age": 30, "installment_rate": 4, "checking_negative": 1, "checking_none": 0,
               "history_critical": 0, "savings_low": 1}'::jsonb, NULL)) AS jsonb_same,
       (SELECT array_agg(contribution ORDER BY feature)
          FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, NULL, 30, 4, 1, 0, 0, 1]::float8[], NULL))
     = (SELECT array_agg(e.contribution ORDER BY e.feature)
          FROM credit_risk.models m,
               credit_risk.cr_explain(m.model, ARRAY[24, NULL, 30, 4, 1, 0, 0, 1]::float8[], NULL) e
         WHERE m.name = 'explain_gbm') AS bytes_same;
SELECT e.feature, e.contribution = f.contribution AS same
  FROM explain_rows r,
       credit_risk.models m,
       credit_risk.cr_explain(m.model, r, 3) e
  JOIN credit_risk.cr_explain('explain_gbm', (SELECT r2 FROM explain_rows r2 WHERE applicant_id = 11), 3) f
    USING (feature)
 WHERE r.applicant_id = 11 AND m.name = 'explain_gbm'
 ORDER BY e.contribution DESC;

-- Batch: the same contributions, ranks and reasons as one call at a time,
-- in source order, with the key; NULL top_n adds the base.
SELECT count(*) AS rows, count(DISTINCT key) AS applicants, max(rank) AS top
  FROM credit_risk.cr_explain_batch('explain_gbm', 'explain_rows', 'applicant_id');
SELECT count(*) AS rows,
       bool_and(b.contribution = e.contribution AND b.reason_code IS NOT DISTINCT FROM e.reason_code
                AND (b.rank = e.rank OR (b.rank IS NULL AND b.feature = '(base)'))
                AND b.default_probability = credit_risk.cr_predict('explain_gbm', r)) AS same
  FROM credit_risk.cr_explain_batch('explain_gbm', 'SELECT * FROM explain_rows WHERE applicant_id <= 300',
                                    'applicant_id', NULL) b
  JOIN explain_rows r ON r.applicant_id = b.key::int
  CROSS JOIN LATERAL (SELECT e.*, row_number() OVER () AS rank
                        FROM credit_risk.cr_explain('explain_gbm', r, NULL) e) e
 WHERE e.feature = b.feature;
SELECT count(*) FILTER (WHERE feature = '(base)') AS base_rows,
       count(*) FILTER (WHERE rank IS NULL) AS unranked
  FROM credit_risk.cr_explain_batch('explain_lr', 'SELECT * FROM explain_rows WHERE applicant_id <= 50',
                                    NULL, NULL);
SELECT key, rank, feature, reason_code
  FROM credit_risk.cr_explain_batch('explain_lr', 'SELECT * FROM explain_rows WHERE applicant_id IN (3, 4)',
                                    'applicant_id', 2);
SELECT count(*) FROM credit_risk.cr_explain_batch('explain_lr', 'explain_rows', NULL, 0);

-- The population view: mean |contribution| per feature, as averaged by hand.
SELECT i.feature, i.rows,
       abs(i.mean_abs_contribution - h.m) < 1e-12 AS same
  FROM credit_risk.cr_feature_impact('explain_gbm', 'SELECT * FROM explain_rows WHERE applicant_id <= 200') i
  JOIN (SELECT e.feature, avg(abs(e.contribution)) AS m
          FROM explain_rows r, credit_risk.cr_explain('explain_gbm', r, NULL) e
         WHERE r.applicant_id <= 200 AND e.feature <> '(base)'
         GROUP BY e.feature) h USING (feature)
 ORDER BY i.mean_abs_contribution DESC;

-- cr_predict's jsonb answer carries the top adverse reasons when the
-- version was trained with params.reasons, or when the request asks.
SELECT version FROM credit_risk.cr_train('explain_json', 'explain_rows', 'bad', 'gbm',
    ARRAY['duration_months', 'credit_amount', 'age', 'installment_rate', 'checking_negative',
          'checking_none', 'history_critical', 'savings_low'],
    '{"n_trees": 60, "max_depth": 5, "seed": 3, "reasons": true}');
SELECT params->'reasons' AS reasons FROM credit_risk.models WHERE name IN ('explain_json', 'explain_gbm') ORDER BY name;
CREATE TABLE explain_request AS
SELECT '{"customer_id": "c-17", "duration_months": 48, "credit_amount": 9000, "age": 22,
         "installment_rate": 4, "checking_negative": 1, "checking_none": 0,
         "history_critical": 0, "savings_low": 1}'::jsonb AS j;
SELECT jsonb_array_length(credit_risk.cr_predict('explain_json', j)->'reasons') AS n,
       credit_risk.cr_predict('explain_json', j) - 'reasons'
         = credit_risk.cr_predict('explain_gbm', j) - 'model_version'
           || jsonb_build_object('model_version', 'explain_json@1') AS rest_unchanged
  FROM explain_request;
-- the reasons are cr_explain's top four with a positive contribution
SELECT r->>'feature' AS feature, r->>'code' AS code, r->>'reason' AS reason,
       (r->>'contribution')::float8 = e.contribution AS same_contribution
  FROM explain_request,
       jsonb_array_elements(credit_risk.cr_predict('explain_json', j)->'reasons') WITH ORDINALITY a(r, i)
  JOIN LATERAL (SELECT e.*, row_number() OVER () AS i
                  FROM credit_risk.cr_explain('explain_json', j) e) e USING (i)
 ORDER BY i;
-- asked per call; refused per call; absent by default
SELECT credit_risk.cr_predict('explain_gbm', j) ? 'reasons' AS by_default,
       credit_risk.cr_predict('explain_gbm', j || '{"reasons": true}') ? 'reasons' AS asked,
       credit_risk.cr_predict('explain_json', j || '{"reasons": false}') ? 'reasons' AS refused
  FROM explain_request;
SELECT credit_risk.cr_predict('explain_gbm', j || '{"reasons": 1}') FROM explain_request;
SELECT version FROM credit_risk.cr_train('explain_bad', 'explain_rows', 'bad', 'gbm', NULL, '{"reasons": "yes"}');

-- Errors.
SELECT * FROM credit_risk.cr_explain('explain_gbm', ARRAY[1, 2]::float8[]);
SELECT * FROM credit_risk.cr_explain('explain_gbm', ARRAY[24, 5000, 30, 4, 1, 0, 0, 1]::float8[], -1);
SELECT * FROM credit_risk.cr_explain('no_such_model', ARRAY[1]::float8[]);
SELECT * FROM credit_risk.cr_explain(NULL::text, ARRAY[1]::float8[]);
SELECT * FROM credit_risk.cr_explain('explain_gbm', NULL::float8[]);
SELECT * FROM credit_risk.cr_explain('explain_gbm', ARRAY['Infinity', 5000, 30, 4, 1, 0, 0, 1]::float8[]);
SELECT * FROM credit_risk.cr_explain('explain_gbm', '{"age": 30}'::jsonb);
SELECT * FROM credit_risk.cr_explain('explain_gbm', 42);
SELECT * FROM credit_risk.cr_explain('\x00'::bytea, ARRAY[1]::float8[]);
SELECT * FROM credit_risk.cr_explain_batch('explain_gbm', 'explain_rows', NULL, -2);
SELECT * FROM credit_risk.cr_explain_batch('explain_gbm', 'no_such_table');
SELECT * FROM credit_risk.cr_explain_batch(NULL, 'explain_rows');
SELECT * FROM credit_risk.cr_feature_impact('no_such_model', 'explain_rows');
