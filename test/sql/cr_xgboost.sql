-- cr_import_xgboost: a model saved by XGBoost's save_model, registered as a
-- GBM version and scored by hand-checkable numbers.
--
-- Two trees over x and y, base_score 0.5 (margin 0):
--   tree 0: x < 0.5 (missing: left) ? 0.25 : -0.5
--   tree 1: y < 2 (missing: left) ? (x < -1 (missing: right) ? 0.125 : 0.375) : -0.25
-- Tree 1's nodes are numbered with children before their parent (node 3
-- has children 1 and 2): the import renumbers them.
CREATE TABLE xgb_json (j jsonb);
INSERT INTO xgb_json VALUES ('
{"learner": {"attributes": {}, "feature_names": ["x", "y"], "feature_types": ["float", "float"],
  "gradient_booster": {"model": {"gbtree_model_param": {"num_parallel_tree": "1", "num_trees": "2", "size_leaf_vector": "0"},
    "tree_info": [0, 0],
    "trees": [
      {"base_weights": [0.1, 0.25, -0.5], "default_left": [1, 0, 0], "id": 0,
       "left_children": [1, -1, -1], "right_children": [2, -1, -1],
       "loss_changes": [3.5, 0.0, 0.0], "parents": [2147483647, 0, 0],
       "split_conditions": [0.5, 0.25, -0.5], "split_indices": [0, 0, 0],
       "split_type": [0, 0, 0], "sum_hessian": [10.0, 4.0, 6.0],
       "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
       "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "3", "size_leaf_vector": "0"}},
      {"base_weights": [0.0, 0.125, 0.375, 0.25, -0.25], "default_left": [1, 0, 0, 0, 0], "id": 1,
       "left_children": [3, -1, -1, 1, -1], "right_children": [4, -1, -1, 2, -1],
       "loss_changes": [2.0, 0.0, 0.0, 1.0, 0.0], "parents": [2147483647, 3, 3, 0, 0],
       "split_conditions": [2.0, 0.125, 0.375, -1.0, -0.25], "split_indices": [1, 0, 0, 0, 0],
       "split_type": [0, 0, 0, 0, 0], "sum_hessian": [10.0, 2.0, 4.0, 6.0, 4.0],
       "categories": [], "categories_nodes": [], "categories_segments": [], "categories_sizes": [],
       "tree_param": {"num_deleted": "0", "num_feature": "2", "num_nodes": "5", "size_leaf_vector": "0"}}
    ]}, "name": "gbtree"},
  "learner_model_param": {"base_score": "5E-1", "boost_from_average": "1", "num_class": "0", "num_feature": "2", "num_target": "1"},
  "objective": {"name": "binary:logistic", "reg_loss_param": {"scale_pos_weight": "1"}}},
 "version": [1, 7, 4]}
');

SELECT name, version, algorithm, source, label, features, status, train_rows, holdout_rows,
       params - 'threshold' - 'risk_cutoffs' - 'risk_labels' - 'score_points' - 'score_odds'
              - 'score_pdo' AS params,
       metrics, importance
  FROM credit_risk.cr_import_xgboost('xgb_hand', (SELECT j FROM xgb_json));

-- margins: 0.25 + 0.375, -0.5 - 0.25, missing x and y: 0.25 + 0.375,
-- 0.25 + 0.125, x = 0.5 is not below 0.5: -0.5 - 0.25, and 0.49999999,
-- which XGBoost reads as the float 0.5, goes right like it
SELECT x, y, round(ln(pd / (1 - pd))::numeric, 9) AS margin, round(pd::numeric, 9) AS pd
  FROM (VALUES (0::float8, 0::float8), (1, 3), (NULL, NULL), (-2, 1), (0.5, 2),
               (0.49999999, 1.9999999), (NULL, 5)) v(x, y),
       LATERAL credit_risk.cr_predict('xgb_hand', ARRAY[x, y]) pd;

-- contributions (TreeSHAP with the trees' covers), as XGBoost's pred_contribs:
-- x 0.516667, y 0.233333, bias -0.125 for the first row
SELECT feature, value, round(contribution::numeric, 6) AS contribution
  FROM credit_risk.cr_explain('xgb_hand', ARRAY[0, 0]::float8[], NULL)
 ORDER BY feature;

-- feature names from the argument when the JSON has none, or in place of its own
SELECT version, status, features
  FROM credit_risk.cr_import_xgboost('xgb_hand',
         (SELECT jsonb_set(j, '{learner,feature_names}', '[]') FROM xgb_json),
         ARRAY['income', 'debt']);
SELECT version, status, features, label, params->'threshold' AS threshold
  FROM credit_risk.cr_import_xgboost('xgb_hand', (SELECT j FROM xgb_json), ARRAY['a', 'b'],
         '{"label": "bad", "threshold": 0.3}');
-- the champion (version 1) serves the name, by its feature names
SELECT round((credit_risk.cr_predict('xgb_hand', '{"x": 1, "y": 3}'::jsonb)->>'default_probability')::numeric, 6)
    AS pd_by_name;
SELECT name, version, status FROM credit_risk.models WHERE name = 'xgb_hand' ORDER BY version;

-- A baseline: labelled rows give imputation means, drift baselines and
-- metrics (margins as above: 0.625, -0.75, 0.625, 0.375, -0.75, 0.625)
CREATE TABLE xgb_baseline (x float8, y float8, bad int);
INSERT INTO xgb_baseline VALUES (0, 0, 1), (1, 3, 0), (NULL, NULL, 1), (-2, 1, 0), (0.5, 2, 0), (NULL, 1, 1);
SELECT version, status, holdout_rows, params->>'baseline_source' AS baseline_source,
       metrics->>'evaluated_on' AS evaluated_on, metrics->>'rows' AS rows,
       metrics->>'positives' AS positives, metrics->>'auc' AS auc
  FROM credit_risk.cr_import_xgboost('xgb_base', (SELECT j FROM xgb_json), NULL,
         '{"baseline_source": "xgb_baseline", "baseline_label": "bad"}');
-- the means of x (-0.125) and y (1.4) are the imputation values
SELECT jsonb_path_query(credit_risk.cr_model_info(model), '$.impute')
  FROM credit_risk.models WHERE name = 'xgb_base';
SELECT feature, count(*) AS bins FROM credit_risk.cr_drift_baseline('xgb_base')
 GROUP BY feature ORDER BY feature;
SELECT feature, psi FROM credit_risk.cr_drift_score('xgb_base', 'xgb_baseline') ORDER BY feature;

-- Every hostile input is an error with its SQLSTATE.
CREATE FUNCTION xgb_try(j jsonb, f text[] DEFAULT NULL, p jsonb DEFAULT '{}') RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM credit_risk.cr_import_xgboost('xgb_bad', j, f, p);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION xgb_tree(path text[], v jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_set(j, '{learner,gradient_booster,model,trees,1}' || path, v) FROM xgb_json
$$;

SELECT xgb_try('[]');
SELECT xgb_try('{"learner": {}}');
SELECT xgb_try(j - 'learner') FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,objective,name}', '"multi:softprob"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,objective,name}', '"reg:squarederror"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,objective}', '"binary:logistic"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,gradient_booster,name}', '"dart"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,gradient_booster,name}', '"gblinear"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,learner_model_param,num_class}', '"3"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,learner_model_param,base_score}', '"abc"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,learner_model_param,base_score}', '"NaN"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,learner_model_param,base_score}', '"Infinity"')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,learner_model_param,base_score}', '1.5')) FROM xgb_json;
SELECT xgb_try(j #- '{learner,learner_model_param,base_score}') FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,gradient_booster,model,trees}', '[]')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,gradient_booster,model,trees}', '{}')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,gradient_booster,model,tree_info}', '[0, 1]')) FROM xgb_json;
-- names
SELECT xgb_try(jsonb_set(j, '{learner,feature_names}', '[]')) FROM xgb_json;
SELECT xgb_try(j #- '{learner,feature_names}') FROM xgb_json;
SELECT xgb_try(j, ARRAY['a', 'b', 'c']) FROM xgb_json;
SELECT xgb_try(j, ARRAY['a', 'a']) FROM xgb_json;
SELECT xgb_try(j, ARRAY['a', NULL]) FROM xgb_json;
SELECT xgb_try(j, ARRAY['a', '']) FROM xgb_json;
SELECT xgb_try(j, ARRAY['a', repeat('b', 64)]) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,feature_names}', '["x", 1]')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,feature_names}', '["x", "x"]')) FROM xgb_json;
SELECT xgb_try(jsonb_set(j, '{learner,feature_names}', '[]'), ARRAY['x']) FROM xgb_json;
SELECT credit_risk.cr_import_xgboost('bad name!', j) FROM xgb_json;
-- params
SELECT xgb_try(j, NULL, '{"n_trees": 10}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"baseline_source": "t"}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"label": 1}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"threshold": 2}') FROM xgb_json;
SELECT xgb_try(j, NULL, '[]') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"baseline_source": "xgb_baseline"}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"baseline_source": "no_such_table", "baseline_label": "bad"}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"baseline_source": "SELECT x, y, 0 AS bad FROM xgb_baseline", "baseline_label": "bad"}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"baseline_source": "SELECT x, bad FROM xgb_baseline", "baseline_label": "bad"}') FROM xgb_json;
SELECT xgb_try(j, NULL, '{"baseline_source": "SELECT NULL::float8 AS x, y, bad FROM xgb_baseline", "baseline_label": "bad"}') FROM xgb_json;
-- trees
SELECT xgb_try(xgb_tree('{split_indices,0}', '7'));
SELECT xgb_try(xgb_tree('{split_indices,0}', '-1'));
SELECT xgb_try(xgb_tree('{split_indices,0}', '0.5'));
SELECT xgb_try(xgb_tree('{left_children,0}', '5'));
SELECT xgb_try(xgb_tree('{left_children,0}', '-2'));
SELECT xgb_try(xgb_tree('{left_children,3}', '0'));
SELECT xgb_try(xgb_tree('{left_children,3}', '4'));
SELECT xgb_try(xgb_tree('{right_children,0}', '3'));
SELECT xgb_try(xgb_tree('{right_children,1}', '2'));
SELECT xgb_try(xgb_tree('{left_children}', '"1,2"'));
SELECT xgb_try(xgb_tree('{left_children,0}', '"3"'));
SELECT xgb_try(xgb_tree('{left_children,0}', 'null'));
SELECT xgb_try(xgb_tree('{sum_hessian}', '[1, 2, 3]'));
SELECT xgb_try(xgb_tree('{split_conditions,0}', '1e39'));
SELECT xgb_try(xgb_tree('{split_conditions,0}', '1e400'));
SELECT xgb_try(xgb_tree('{split_conditions,1}', '"NaN"'));
SELECT xgb_try(xgb_tree('{sum_hessian,1}', '-1'));
SELECT xgb_try(xgb_tree('{default_left,0}', '2'));
SELECT xgb_try(xgb_tree('{split_type,0}', '1'));
SELECT xgb_try(xgb_tree('{tree_param,num_nodes}', '"10000000"'));
SELECT xgb_try(xgb_tree('{tree_param,num_nodes}', '"0"'));
SELECT xgb_try(xgb_tree('{tree_param,num_nodes}', '"4"'));
SELECT xgb_try(xgb_tree('{tree_param}', '[]'));
SELECT xgb_try(xgb_tree('{}', '7'));
-- a chain 70 levels deep: internal node 2k has a leaf (2k + 1) on its left
-- and the next internal node (2k + 2) on its right
SELECT xgb_try(jsonb_set(j, '{learner,gradient_booster,model,trees,1}', (
    SELECT jsonb_build_object(
        'left_children', jsonb_agg(CASE WHEN i % 2 = 0 AND i < 140 THEN i + 1 ELSE -1 END ORDER BY i),
        'right_children', jsonb_agg(CASE WHEN i % 2 = 0 AND i < 140 THEN i + 2 ELSE -1 END ORDER BY i),
        'split_indices', jsonb_agg(0), 'split_conditions', jsonb_agg(0.5),
        'default_left', jsonb_agg(0), 'sum_hessian', jsonb_agg(1),
        'tree_param', jsonb_build_object('num_nodes', '141'))
      FROM generate_series(0, 140) i)))
  FROM xgb_json;
-- nodes that the root does not reach are skipped (XGBoost keeps pruned
-- nodes in its arrays): node 3 made a leaf leaves nodes 1 and 2 unreachable
SELECT xgb_try(jsonb_set(jsonb_set(xgb_tree('{left_children,3}', '-1'),
    '{learner,gradient_booster,model,trees,1,right_children,3}', '-1'),
    '{learner,gradient_booster,model,trees,1,split_conditions,3}', '-1.5'));
-- margin 0.25 - 1.5
SELECT version, round(ln(pd / (1 - pd))::numeric, 9) AS margin
  FROM credit_risk.models,
       LATERAL credit_risk.cr_predict(model, ARRAY[0, 0]::float8[]) pd
 WHERE name = 'xgb_bad';

-- cr_export: the document of a version.  Its top-level members:
SELECT k, jsonb_typeof(credit_risk.cr_export('xgb_base') -> k) AS type
  FROM jsonb_object_keys(credit_risk.cr_export('xgb_base')) k ORDER BY k;
-- a logistic version has coefficients and no XGBoost member
SELECT credit_risk.cr_export('german', 1) ?| ARRAY['gbm', 'xgboost'] AS has_trees,
       jsonb_array_length(credit_risk.cr_export('german', 1) -> 'logistic' -> 'coefficients')
         = array_length(features, 1) AS one_per_feature
  FROM credit_risk.models WHERE name = 'german' AND version = 1;
-- tree 1 of xgb_hand, renumbered from its root, in doubles: each threshold
-- is the double below which a double rounds to a float under XGBoost's
-- (2 became 1.9999999403953552, -1 became -1.0000000596046448)
SELECT jsonb_pretty(credit_risk.cr_export('xgb_hand', 1) -> 'gbm' -> 'trees' -> 1);
SELECT credit_risk.cr_export('xgb_hand', 1) -> 'gbm' -> 'trees' -> 0 -> 'threshold' AS tree0;
-- ... and in XGBoost's format: the float nearest each threshold (2, -1 and
-- 0.5 again),
-- every float written with a decimal point, as XGBoost's reader needs
SELECT jsonb_pretty(credit_risk.cr_export('xgb_hand', 1) -> 'xgboost' -> 'learner' -> 'gradient_booster' -> 'model' -> 'trees' -> 1);
SELECT credit_risk.cr_export('xgb_hand', 1) -> 'xgboost' -> 'learner' -> 'gradient_booster' -> 'model' -> 'trees' -> 0 -> 'split_conditions' AS tree0,
       credit_risk.cr_export('xgb_hand', 1) -> 'xgboost' -> 'learner' -> 'learner_model_param' AS learner_model_param,
       credit_risk.cr_export('xgb_hand', 1) -> 'xgboost' -> 'learner' -> 'objective' AS objective;
-- exported and imported again, it scores the same
SELECT version FROM credit_risk.cr_import_xgboost('xgb_again', credit_risk.cr_export('xgb_hand', 1) -> 'xgboost');
SELECT x, y, credit_risk.cr_predict('xgb_again', ARRAY[x, y]) = credit_risk.cr_predict('xgb_hand', ARRAY[x, y]) AS same
  FROM (VALUES (0::float8, 0::float8), (1, 3), (NULL, NULL), (-2, 1), (0.5, 2), (0.49999999, 1.9999999)) v(x, y);
-- a base margin of 17 (binary:logitraw) is too fine for a float probability
-- (the nearest float's log-odds is 16.64): the export moves it into tree 0
SELECT 1 FROM credit_risk.cr_import_xgboost('xgb_raw17',
    jsonb_set(jsonb_set((SELECT j FROM xgb_json), '{learner,objective,name}', '"binary:logitraw"'),
              '{learner,learner_model_param,base_score}', '"17"'));
SELECT credit_risk.cr_export('xgb_raw17') -> 'xgboost' -> 'learner' -> 'learner_model_param' ->> 'base_score' AS base_score,
       credit_risk.cr_export('xgb_raw17') -> 'xgboost' -> 'learner' -> 'gradient_booster' -> 'model' -> 'trees' -> 0 -> 'split_conditions' AS tree0;
SELECT 1 FROM credit_risk.cr_import_xgboost('xgb_raw17_again', credit_risk.cr_export('xgb_raw17') -> 'xgboost');
SELECT x, y, abs(ln(a / (1 - a)) - ln(b / (1 - b))) < 1e-5 AS same_margin
  FROM (VALUES (0::float8, 0::float8), (1, 3), (NULL, NULL), (-2, 1)) v(x, y),
       LATERAL credit_risk.cr_predict('xgb_raw17', ARRAY[x, y]) a,
       LATERAL credit_risk.cr_predict('xgb_raw17_again', ARRAY[x, y]) b;
-- the bytea form: the same without the registry row
SELECT credit_risk.cr_export(model) = credit_risk.cr_export('xgb_hand', 1)
         - ARRAY['export_format', 'name', 'version', 'model', 'status', 'created_at', 'created_by',
                 'source', 'label', 'params', 'metrics', 'importance', 'train_rows',
                 'holdout_rows', 'train_seconds'] AS same
  FROM credit_risk.models WHERE name = 'xgb_hand' AND version = 1;
-- errors
SELECT credit_risk.cr_export(NULL::text);
SELECT credit_risk.cr_export('no_such_model');
SELECT credit_risk.cr_export('xgb_hand', 99);
SELECT credit_risk.cr_export('xgb_hand', 0);
SELECT credit_risk.cr_export('\x00'::bytea);
-- the registry row is read with the caller's rights
CREATE ROLE regress_cr_export_reader;
GRANT USAGE ON SCHEMA credit_risk TO regress_cr_export_reader;
SET ROLE regress_cr_export_reader;
SELECT credit_risk.cr_export('xgb_hand');
RESET ROLE;
REVOKE USAGE ON SCHEMA credit_risk FROM regress_cr_export_reader;
DROP ROLE regress_cr_export_reader;

DROP FUNCTION xgb_try(jsonb, text[], jsonb);
DROP FUNCTION xgb_tree(text[], jsonb);
DROP TABLE xgb_json;
DROP TABLE xgb_baseline;
