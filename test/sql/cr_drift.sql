-- Drift: PSI and KS against the baselines stored at training.
SELECT version FROM credit_risk.cr_train('drift_m', 'synth', 'y', 'logistic', NULL,
                                         '{"key": "id"}');
SELECT credit_risk.cr_model_info(model)->'drift_baseline' AS has_baseline
  FROM credit_risk.models WHERE name = 'drift_m';

-- The baseline: deciles of each feature over the training rows, shares
-- adding up to one with the missing bucket.
SELECT feature, count(*) AS buckets, round(sum(share)::numeric, 12) AS total
  FROM credit_risk.cr_drift_baseline('drift_m') GROUP BY feature ORDER BY feature;

-- The same population: every PSI well under 0.01.
SELECT feature, psi < 0.01 AS tiny_psi, ks < 0.02 AS tiny_ks, severity
  FROM credit_risk.cr_drift_score('drift_m', 'synth');

-- One feature moved by a standard deviation: major for it, stable for the others.
SELECT feature, severity
  FROM credit_risk.cr_drift_score('drift_m',
       'SELECT id, x1 + (SELECT stddev(x1) FROM synth) AS x1, x2, income, y FROM synth');

-- PSI equals a reference computed in plain SQL on the same bins (empty
-- buckets count as a share of 1e-4), for features and the score.
CREATE TABLE drift_source AS
SELECT id, CASE WHEN id % 7 = 0 THEN NULL ELSE x1 * 1.1 END AS x1, x2, income + 5 AS income
  FROM synth WHERE id % 3 <> 0;
WITH vals AS (
    SELECT 'x1' AS feature, x1 AS v FROM drift_source
    UNION ALL SELECT 'x2', x2 FROM drift_source
    UNION ALL SELECT 'income', income FROM drift_source
    UNION ALL SELECT '__score__', credit_risk.cr_predict('drift_m', s) FROM drift_source s
), actual AS (
    SELECT b.feature, b.bucket, b.share AS e,
           (SELECT count(*) FROM vals v
             WHERE v.feature = b.feature
               AND CASE WHEN b.is_missing THEN v.v IS NULL
                        ELSE v.v IS NOT NULL
                             AND (b.lower_bound IS NULL OR v.v >= b.lower_bound)
                             AND (b.upper_bound IS NULL OR v.v < b.upper_bound) END)::float8
           / (SELECT count(*) FROM drift_source) AS a
      FROM credit_risk.cr_drift_baseline('drift_m') b
), reference AS (
    SELECT feature, sum((greatest(a, 1e-4) - greatest(e, 1e-4)) * ln(greatest(a, 1e-4) / greatest(e, 1e-4))) AS psi
      FROM actual GROUP BY feature
)
SELECT r.feature, abs(r.psi - d.psi) < 1e-9 AS psi_matches, d.severity
  FROM reference r JOIN credit_risk.cr_drift_score('drift_m', 'drift_source') d USING (feature)
 ORDER BY r.feature;

-- The severity thresholds come from the model's params.
SELECT params->'drift_moderate' AS moderate, params->'drift_major' AS major
  FROM credit_risk.cr_train('drift_strict', 'synth', 'y', 'logistic', NULL,
                            '{"key": "id", "drift_moderate": 0.02, "drift_major": 0.05}');
SELECT feature, severity
  FROM credit_risk.cr_drift_score('drift_strict',
       'SELECT id, x1 + 0.3 * (SELECT stddev(x1) FROM synth) AS x1, x2, income FROM synth')
 WHERE feature = 'x1'
UNION ALL
SELECT feature, severity
  FROM credit_risk.cr_drift_score('drift_m',
       'SELECT id, x1 + 0.3 * (SELECT stddev(x1) FROM synth) AS x1, x2, income FROM synth')
 WHERE feature = 'x1';
SELECT expect_error($$SELECT credit_risk.cr_train('m', 'synth', 'y', 'logistic', NULL, '{"drift_moderate": 0.3, "drift_major": 0.2}')$$);

-- Trees carry baselines too.
SELECT count(*) AS rows, count(*) FILTER (WHERE severity = 'stable') AS stable
  FROM credit_risk.cr_drift_score('german_gbm', 'german_credit');

-- Errors.
SELECT expect_error($$SELECT * FROM credit_risk.cr_drift_score('no_such_model', 'synth')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_drift_score('drift_m', 'no_such_table')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_drift_score('drift_m', 'SELECT x1 FROM synth')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_drift_score('drift_m', 'SELECT * FROM synth WHERE false')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_drift_score('drift_m', 'SELECT * FROM synth WHERE')$$);
SELECT expect_error($$SELECT * FROM credit_risk.cr_drift_score(NULL, 'synth')$$);

-- cr_evaluate: the metric set on any labelled rows.  On the training rows
-- of a model trained with holdout = 0 it reproduces the stored metrics.
SELECT credit_risk.cr_evaluate('german_full', 'german_credit', 'bad') - 'model_version'
     = (SELECT jsonb_object_agg(key, value) FROM credit_risk.models m, jsonb_each(m.metrics)
         WHERE m.name = 'german_full'
           AND key IN ('auc', 'ks', 'gini', 'log_loss', 'brier', 'accuracy', 'precision',
                       'recall', 'f1', 'threshold', 'base_rate', 'rows', 'positives')) AS same_as_stored;

-- True outcomes against shuffled ones (an AUC floor of 0.75 tells them apart).
SELECT (e->>'auc')::float8 > 0.75 AS true_labels_pass, e->>'model_version' AS version
  FROM credit_risk.cr_evaluate('german_full', 'german_credit', 'bad') e;
SELECT (e->>'auc')::float8 < 0.6 AS shuffled_labels_fail, (e->>'rows')::int AS rows
  FROM credit_risk.cr_evaluate('german_full',
         'SELECT g.*, s.bad AS shuffled FROM german_credit g
            JOIN (SELECT applicant_id, bad FROM german_credit) s
              ON s.applicant_id = 1 + (g.applicant_id * 389) % 1000', 'shuffled') e;

-- A given version.
SELECT e->>'model_version' AS version, (e->>'rows')::int AS rows
  FROM credit_risk.cr_evaluate('german', 'german_credit', 'bad', 1) e;

SELECT expect_error($$SELECT credit_risk.cr_evaluate('german_full', 'german_credit', 'nope')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('german_full', 'SELECT g.*, NULLIF(bad, 1) AS y FROM german_credit g', 'y')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('german_full', 'SELECT g.*, bad + 1 AS y FROM german_credit g', 'y')$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('german_full', 'german_credit', 'bad', 7)$$);
SELECT expect_error($$SELECT credit_risk.cr_evaluate('german_full', 'SELECT * FROM german_credit WHERE false', 'bad')$$);
