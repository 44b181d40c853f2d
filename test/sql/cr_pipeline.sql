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
