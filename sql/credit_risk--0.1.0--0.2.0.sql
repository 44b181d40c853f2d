-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION credit_risk UPDATE TO '0.2.0'" to load this file. \quit

-- credit_risk 0.1.0 to 0.2.0.  Every table keeps its rows and every model
-- version its bytes (the decoder reads format 1, which 0.1.0 wrote).
-- Functions whose arguments or result columns changed are dropped and
-- created again; the rest are replaced in place, keeping their grants.

-- Scorecards are a third algorithm.
ALTER TABLE credit_risk.models
    DROP CONSTRAINT models_algorithm_check,
    ADD CONSTRAINT models_algorithm_check CHECK (algorithm IN ('logistic', 'gbm', 'scorecard'));

-- The registry is changed only through the extension's functions, which
-- write as the tables' owner: any other role's INSERT, UPDATE, DELETE or
-- TRUNCATE is refused, even with the table privilege granted.
CREATE FUNCTION credit_risk.cr_registry_guard()
RETURNS trigger
AS 'MODULE_PATHNAME', 'cr_registry_guard'
LANGUAGE C;

CREATE TRIGGER models_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_risk.models
    FOR EACH STATEMENT EXECUTE FUNCTION credit_risk.cr_registry_guard();

CREATE TRIGGER routes_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_risk.routes
    FOR EACH STATEMENT EXECUTE FUNCTION credit_risk.cr_registry_guard();

-- DROP EXTENSION credit_risk would drop every model version with the
-- registry (CASCADE or not): refused while any exists, unless
-- credit_risk.allow_drop is on.
CREATE FUNCTION credit_risk.cr_drop_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'cr_drop_guard'
LANGUAGE C;

CREATE EVENT TRIGGER credit_risk_drop_guard ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA')
    EXECUTE FUNCTION credit_risk.cr_drop_guard();

-- No SET search_path here: the source names the caller's tables and is
-- resolved with the caller's search_path.  The function's own statements
-- are schema-qualified throughout.

-- A binary classifier saved by XGBoost's Booster.save_model (JSON), as a new
-- GBM version of name; features names the model's features in its order
-- (required when the JSON has no feature_names).
CREATE FUNCTION credit_risk.cr_import_xgboost(name text, model jsonb,
                                              features text[] DEFAULT NULL,
                                              params jsonb DEFAULT '{}')
RETURNS credit_risk.models
AS 'MODULE_PATHNAME', 'cr_import_xgboost'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Registry ------------------------------------------------------------------

-- cr_promote and cr_route are C functions that take the name's lock and
-- call these as the registry's owner (see registry_write.c), passing the
-- caller's name as actor.  Only the owner may call them directly.
CREATE FUNCTION credit_risk.cr_promote_internal(name text, version integer, actor text)
RETURNS credit_risk.models
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target credit_risk.models;
BEGIN
    IF name IS NULL OR version IS NULL THEN
        RAISE EXCEPTION 'model name and version must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    SELECT * INTO target FROM credit_risk.models m
     WHERE m.name = cr_promote_internal.name AND m.version = cr_promote_internal.version
       FOR UPDATE;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM credit_risk.models m WHERE m.name = cr_promote_internal.name) THEN
            RAISE EXCEPTION 'model "%" does not exist', name
                USING ERRCODE = 'undefined_object',
                      HINT = 'Train it first with credit_risk.cr_train().';
        END IF;
        RAISE EXCEPTION 'model "%" has no version %', name, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'List versions with: SELECT version, status FROM credit_risk.models WHERE name = ''' || name || ''';';
    END IF;

    UPDATE credit_risk.models m SET status = 'retired'
     WHERE m.name = cr_promote_internal.name AND m.status = 'champion'
       AND m.version <> cr_promote_internal.version;

    UPDATE credit_risk.models m SET status = 'champion'
     WHERE m.id = target.id
    RETURNING * INTO target;

    RETURN target;
END;
$$;

-- cr_promote and cr_route are now C functions (same arguments and grants).
CREATE OR REPLACE FUNCTION credit_risk.cr_promote(name text, version integer)
RETURNS credit_risk.models
AS 'MODULE_PATHNAME', 'cr_promote'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Send a stable share of applicants (by a hash of their key) to a
-- challenger version; share = 0 stops it.
CREATE FUNCTION credit_risk.cr_route_internal(name text, challenger_version integer, share float8,
                                              actor text)
RETURNS credit_risk.routes
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    target credit_risk.models;
    result credit_risk.routes;
BEGIN
    IF name IS NULL OR challenger_version IS NULL OR share IS NULL THEN
        RAISE EXCEPTION 'name, challenger_version and share must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF share < 0 OR share > 1 OR share <> share THEN
        RAISE EXCEPTION 'share % is out of range', share
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The share of applicants sent to the challenger is between 0 and 1.';
    END IF;

    SELECT * INTO target FROM credit_risk.models m
     WHERE m.name = cr_route_internal.name AND m.version = cr_route_internal.challenger_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model "%" has no version %', name, challenger_version
            USING ERRCODE = 'undefined_object';
    END IF;
    IF target.status = 'champion' AND share > 0 THEN
        RAISE EXCEPTION 'version % of model "%" is its champion', challenger_version, name
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Route to a version that is not the champion.';
    END IF;

    -- the previous challenger, if another, is a candidate again
    UPDATE credit_risk.models m SET status = 'candidate'
     WHERE m.name = cr_route_internal.name AND m.status = 'challenger'
       AND (m.version <> cr_route_internal.challenger_version OR share = 0);
    IF share > 0 THEN
        UPDATE credit_risk.models m SET status = 'challenger' WHERE m.id = target.id;
    END IF;

    INSERT INTO credit_risk.routes AS r (name, challenger_version, share, updated_by)
    VALUES (cr_route_internal.name, cr_route_internal.challenger_version, cr_route_internal.share, actor)
    ON CONFLICT ON CONSTRAINT routes_pkey DO UPDATE
       SET challenger_version = EXCLUDED.challenger_version, share = EXCLUDED.share,
           updated_at = pg_catalog.now(), updated_by = EXCLUDED.updated_by
    RETURNING * INTO result;
    RETURN result;
END;
$$;

CREATE OR REPLACE FUNCTION credit_risk.cr_route(name text, challenger_version integer, share float8)
RETURNS credit_risk.routes
AS 'MODULE_PATHNAME', 'cr_route'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- cr_model_trees and cr_drift_baseline gained a result column.
DROP FUNCTION credit_risk.cr_model_trees(bytea);
DROP FUNCTION credit_risk.cr_drift_baseline(text);

-- A tree model's nodes, as the bytes hold them (node numbers within a tree;
-- a row goes left when its value is below the threshold, or for a split on
-- a categorical feature when its level is in categories; a missing value
-- goes the default way; leaves have no feature).
CREATE FUNCTION credit_risk.cr_model_trees(model bytea)
RETURNS TABLE (tree integer, node integer, feature text, threshold float8,
               left_child integer, right_child integer, default_left boolean,
               value float8, cover float8, categories text[])
AS 'MODULE_PATHNAME', 'cr_model_trees'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;

-- A version as one jsonb document for audit: its registry row (params,
-- metrics, importance, row counts) and everything its bytes hold (features
-- and their training means, scoring settings, coefficients or every tree
-- node, drift baselines); for tree models also an "xgboost" member in
-- XGBoost's JSON model format.  NULL version = the serving version.
CREATE FUNCTION credit_risk.cr_export(name text, version integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cr_export'
LANGUAGE C STABLE PARALLEL SAFE;

-- The same for a model passed as a value (without the registry row).
CREATE FUNCTION credit_risk.cr_export(model bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cr_export_bytes'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Batch scoring, drift and evaluation run the caller's SQL: VOLATILE.
ALTER FUNCTION credit_risk.cr_predict_batch(text, text, text) VOLATILE PARALLEL UNSAFE;
ALTER FUNCTION credit_risk.cr_drift_score(text, text) VOLATILE PARALLEL UNSAFE;
-- Explanations --------------------------------------------------------------

-- The reason codes of adverse-action notices, filled by a compliance team:
-- for a feature whose value (against the training mean: 'high', 'low', or
-- 'missing') raised an applicant's risk.  A NULL model_name applies to every
-- model; a model's own row comes first.  Without a row, cr_explain makes
-- one from the feature's name ("utilization too high").
CREATE TABLE credit_risk.reason_codes (
    model_name  text,
    feature     text NOT NULL,
    -- a number's value against the training mean, or a category's level ('=level')
    direction   text NOT NULL CHECK (direction IN ('high', 'low', 'missing')
                                     OR (direction LIKE '=%' AND direction <> '=')),
    reason_code text NOT NULL CHECK (reason_code <> ''),
    reason      text NOT NULL CHECK (reason <> ''),
    UNIQUE NULLS NOT DISTINCT (model_name, feature, direction)
);

COMMENT ON TABLE credit_risk.reason_codes IS
    'credit_risk adverse-action reason codes per feature and direction (NULL model_name: every model)';

SELECT pg_catalog.pg_extension_config_dump('credit_risk.reason_codes', '');

GRANT SELECT ON credit_risk.reason_codes TO PUBLIC;

-- Each feature's contribution to one applicant's margin (log-odds), largest
-- first: at most top_n rows, or (NULL) every feature and the '(base)' row;
-- base + the contributions = the logit of cr_predict.
CREATE FUNCTION credit_risk.cr_explain(name text, applicant float8[], top_n integer DEFAULT 4)
RETURNS TABLE (feature text, value text, contribution float8, reason_code text, reason text)
AS 'MODULE_PATHNAME', 'cr_explain_array'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_explain(name text, applicant anyelement, top_n integer DEFAULT 4)
RETURNS TABLE (feature text, value text, contribution float8, reason_code text, reason text)
AS 'MODULE_PATHNAME', 'cr_explain_record'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_explain(name text, applicant jsonb, top_n integer DEFAULT 4)
RETURNS TABLE (feature text, value text, contribution float8, reason_code text, reason text)
AS 'MODULE_PATHNAME', 'cr_explain_jsonb'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_explain(model bytea, applicant float8[], top_n integer DEFAULT 4)
RETURNS TABLE (feature text, value text, contribution float8, reason_code text, reason text)
AS 'MODULE_PATHNAME', 'cr_explain_bytes_array'
LANGUAGE C STABLE PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_explain(model bytea, applicant anyelement, top_n integer DEFAULT 4)
RETURNS TABLE (feature text, value text, contribution float8, reason_code text, reason text)
AS 'MODULE_PATHNAME', 'cr_explain_bytes_record'
LANGUAGE C STABLE PARALLEL SAFE;

-- Every row of a relation or query explained (as cr_predict_batch scores
-- it): the top_n contributions of each applicant, largest first, or (NULL)
-- every feature and the '(base)' row.
CREATE FUNCTION credit_risk.cr_explain_batch(name text, source text, key text DEFAULT NULL,
                                             top_n integer DEFAULT 4)
RETURNS TABLE (key text, default_probability float8, rank integer, feature text,
               contribution float8, reason_code text)
AS 'MODULE_PATHNAME', 'cr_explain_batch'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The global view of a population: each feature's mean |contribution| (the
-- SHAP importance), beside the gain/cover importance stored at training.
CREATE FUNCTION credit_risk.cr_feature_impact(name text, source text)
RETURNS TABLE (feature text, mean_abs_contribution float8, mean_contribution float8,
               rows bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller_path text := credit_risk.cr_caller_search_path();
BEGIN
    -- the source is the caller's: its names resolve in the caller's path
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    RETURN QUERY
    SELECT e.feature, pg_catalog.avg(pg_catalog.abs(e.contribution)),
           pg_catalog.avg(e.contribution), pg_catalog.count(*)
      FROM credit_risk.cr_explain_batch(cr_feature_impact.name, cr_feature_impact.source,
                                        NULL, NULL) e
     WHERE e.rank IS NOT NULL
     GROUP BY e.feature
     ORDER BY 2 DESC, 1;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
END;
$$;

-- Monitoring ----------------------------------------------------------------

-- cr_evaluate gained split (an out-of-time holdout).
DROP FUNCTION credit_risk.cr_evaluate(text, text, text, integer);

-- The holdout metric set of a version (default: the serving one) on any
-- labelled rows: how the model does on recent outcomes.  split, as
-- params.split, keeps the rows at or after its cut-off (an out-of-time
-- holdout).
CREATE FUNCTION credit_risk.cr_evaluate(name text, source text, label text,
                                        version integer DEFAULT NULL,
                                        split jsonb DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cr_evaluate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Calibration of a version's PDs on labelled rows: a reliability row per
-- group of rows in PD order, the Hosmer-Lemeshow test over those groups,
-- and per risk category the one-sided binomial and Jeffreys tests that PD
-- back-testing uses (a small p-value says the PD is too low).
CREATE FUNCTION credit_risk.cr_calibration(name text, source text, label text,
                                           version integer DEFAULT NULL,
                                           bins integer DEFAULT 10)
RETURNS TABLE (section text, band text, n bigint, defaults bigint, mean_pd float8,
               observed_rate float8, lower float8, upper float8, statistic float8,
               p_value float8)
AS 'MODULE_PATHNAME', 'cr_calibration'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Approval rates, adverse impact ratios (the four-fifths rule), PDs, default
-- rates, AUC and score differences per value of a column of the source that
-- the model does not use.  params: approve_below (a PD; default: the first
-- risk category is approved), label, min_ratio (0.8), version.
CREATE FUNCTION credit_risk.cr_fairness(name text, source text, group_column text,
                                        params jsonb DEFAULT '{}')
RETURNS TABLE (group_value text, n bigint, approved bigint, approval_rate float8,
               adverse_impact_ratio float8, flagged boolean, mean_pd float8,
               labelled bigint, default_rate float8, auc float8, smd float8,
               reference boolean)
AS 'MODULE_PATHNAME', 'cr_fairness'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The stored baseline bins of the serving version: value ranges of a
-- number, levels of a categorical feature (its last bucket, "(other)",
-- holds other and any levels past the 63rd).
CREATE FUNCTION credit_risk.cr_drift_baseline(name text)
RETURNS TABLE (feature text, bucket integer, is_missing boolean,
               lower_bound float8, upper_bound float8, share float8, level text)
AS 'MODULE_PATHNAME', 'cr_drift_baseline'
LANGUAGE C STABLE PARALLEL SAFE;

-- Alert rules, monitoring runs, alerts ---------------------------------------

-- Calibration and fairness rules; a fairness rule names its group column.
ALTER TABLE credit_risk.alert_rules
    DROP CONSTRAINT alert_rules_metric_check,
    ADD CONSTRAINT alert_rules_metric_check
        CHECK (metric IN ('max_feature_psi', 'score_psi', 'auc', 'ks',
                          'gini', 'log_loss', 'brier', 'base_rate',
                          'p95_latency_ms', 'hosmer_lemeshow_p',
                          'min_jeffreys_p', 'min_adverse_impact_ratio')),
    ADD COLUMN group_column text,
    ADD CONSTRAINT alert_rules_group_column
        CHECK ((metric = 'min_adverse_impact_ratio') = (group_column IS NOT NULL));

CREATE OR REPLACE FUNCTION credit_risk.alert_rules_keep_builtin()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity,
                                             model_name, enabled, builtin, group_column)
        VALUES (NEW.name, NEW.metric, NEW.comparison, NEW.threshold, NEW.severity,
                NEW.model_name, NEW.enabled, false, NEW.group_column);
    ELSE
        INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity,
                                             model_name, enabled, builtin, group_column)
        VALUES (OLD.name, OLD.metric, OLD.comparison, OLD.threshold, OLD.severity,
                OLD.model_name, false, false, OLD.group_column);
    END IF;
    RETURN NULL;        -- the built-in row itself stays as shipped
END;
$$;

-- The rules in force: for each name, the DBA's row if there is one.
CREATE OR REPLACE VIEW credit_risk.effective_alert_rules AS
SELECT DISTINCT ON (name) id, name, metric, comparison, threshold, severity,
       model_name, enabled, builtin, group_column
  FROM credit_risk.alert_rules
 ORDER BY name, builtin, id DESC;

ALTER TABLE credit_risk.monitoring_runs
    ADD COLUMN calibration jsonb,       -- with labels: Hosmer-Lemeshow and Jeffreys p-values
    ADD COLUMN fairness jsonb,          -- group column -> per group approval rate and ratio
    ADD COLUMN latency_source text;     -- where p95_latency_ms came from

-- The caller's search_path, for the few statements of a function with a
-- pinned search_path that run the caller's SQL (see pipeline.c).
CREATE FUNCTION credit_risk.cr_caller_search_path()
RETURNS text
AS 'MODULE_PATHNAME', 'cr_caller_search_path'
LANGUAGE C STABLE PARALLEL RESTRICTED;

-- One monitoring run: drift, and performance where labels exist; one alert
-- per rule that fires, each also sent as NOTIFY credit_risk_alerts.
CREATE OR REPLACE FUNCTION credit_risk.cr_monitor(name text, source text, label text DEFAULT NULL)
RETURNS credit_risk.monitoring_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller_path text := credit_risk.cr_caller_search_path();
    stats_schema name;
    serving_ok boolean;
    run credit_risk.monitoring_runs;
    r record;
    value float8;
    fired boolean;
    msg text;
    nalerts integer := 0;
    skipped jsonb := '{}';
    no_groups jsonb := '{}';
    no_calibration text;
    stats_ok boolean;
BEGIN
    IF name IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model name and source must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    run.model_name := name;
    run.source := source;
    PERFORM credit_risk.cr_progress_report('cr_monitor', name, NULL);
    PERFORM credit_risk.cr_progress_report(NULL, NULL, 'drift');
    -- the source is the caller's SQL: resolved in the caller's search_path
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    SELECT pg_catalog.jsonb_object_agg(d.feature, d.psi) FILTER (WHERE d.feature OPERATOR(pg_catalog.<>) '__score__'),
           pg_catalog.max(d.psi) FILTER (WHERE d.feature OPERATOR(pg_catalog.<>) '__score__'),
           pg_catalog.max(d.psi) FILTER (WHERE d.feature OPERATOR(pg_catalog.=) '__score__')
      INTO run.feature_psi, run.max_feature_psi, run.score_psi
      FROM credit_risk.cr_drift_score(name, source) d;

    SELECT pg_catalog.count(*), pg_catalog.avg(b.default_probability),
           pg_catalog.percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
               WITHIN GROUP (ORDER BY b.default_probability),
           pg_catalog.min(b.model_version)
      INTO run.rows, run.mean_pd, run.pd_deciles, run.model_version
      FROM credit_risk.cr_predict_batch(name, source) b;
    -- (the caller's search_path is in force here: operators named with their schema)
    SELECT pg_catalog.jsonb_object_agg(c.risk_category,
               c.n::pg_catalog.float8 OPERATOR(pg_catalog./) run.rows::pg_catalog.float8)
      INTO run.category_shares
      FROM (SELECT b.risk_category, pg_catalog.count(*) AS n
              FROM credit_risk.cr_predict_batch(name, source) b GROUP BY 1) c;

    IF label IS NOT NULL THEN
        PERFORM credit_risk.cr_progress_report(NULL, NULL, 'evaluating');
        run.metrics := credit_risk.cr_evaluate(name, source, label);
        BEGIN
        SELECT pg_catalog.jsonb_build_object(
                   'hosmer_lemeshow_p', pg_catalog.max(c.p_value) FILTER (WHERE c.section OPERATOR(pg_catalog.=) 'hosmer_lemeshow'),
                   'min_jeffreys_p', pg_catalog.min(c.p_value) FILTER (WHERE c.section OPERATOR(pg_catalog.=) 'jeffreys'),
                   'jeffreys_p', pg_catalog.jsonb_object_agg(c.band, c.p_value) FILTER (WHERE c.section OPERATOR(pg_catalog.=) 'jeffreys'),
                   'binomial_p', pg_catalog.jsonb_object_agg(c.band, c.p_value) FILTER (WHERE c.section OPERATOR(pg_catalog.=) 'binomial'))
          INTO run.calibration
          FROM credit_risk.cr_calibration(name, source, label) c;
        EXCEPTION WHEN invalid_parameter_value THEN
            -- too few rows for its groups: the calibration rules wait
            no_calibration := SQLERRM;
        END;
    END IF;
    -- fairness, for each group column that a rule for this model names
    FOR r IN SELECT DISTINCT e.group_column FROM credit_risk.effective_alert_rules e
              WHERE e.enabled AND e.group_column IS NOT NULL
                AND (e.model_name IS NULL OR e.model_name OPERATOR(pg_catalog.=) cr_monitor.name)
    LOOP
        BEGIN
        SELECT pg_catalog.jsonb_set(COALESCE(run.fairness, '{}'), ARRAY[r.group_column],
                   pg_catalog.jsonb_build_object(
                       'min_adverse_impact_ratio', pg_catalog.min(f.adverse_impact_ratio),
                       'groups', pg_catalog.jsonb_agg(
                           pg_catalog.jsonb_build_object('group', f.group_value, 'n', f.n,
                               'approval_rate', f.approval_rate,
                               'adverse_impact_ratio', f.adverse_impact_ratio, 'mean_pd', f.mean_pd,
                               'default_rate', f.default_rate, 'auc', f.auc, 'smd', f.smd))))
          INTO run.fairness
          FROM credit_risk.cr_fairness(name, source, r.group_column,
                   CASE WHEN label IS NULL THEN '{}'::jsonb
                        ELSE pg_catalog.jsonb_build_object('label', label) END) f;
        EXCEPTION WHEN undefined_column THEN
            -- a source without the rule's column: the rule is not evaluated
            no_groups := no_groups || pg_catalog.jsonb_build_object(r.group_column, SQLERRM);
        END;
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);

    -- scoring latency: the version's p95 in serving_stats (credit_risk
    -- preloaded); else from pg_stat_statements, when it is installed (mean +
    -- 1.645 sd, a normal approximation: it keeps no percentiles)
    PERFORM credit_risk.cr_progress_report(NULL, NULL, 'latency');
    BEGIN
        SELECT s.p95 INTO run.p95_latency_ms
          FROM credit_risk.cr_serving_stats() s
         WHERE s.model OPERATOR(pg_catalog.=) name
           AND s.version OPERATOR(pg_catalog.=) pg_catalog.split_part(run.model_version, '@', 2)::integer;
        serving_ok := true;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        serving_ok := false;
    END;
    IF run.p95_latency_ms IS NOT NULL THEN
        run.latency_source := 'serving_stats';
    END IF;
    SELECT n.nspname INTO stats_schema
      FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname = 'pg_stat_statements';
    stats_ok := stats_schema IS NOT NULL;
    IF stats_ok AND run.p95_latency_ms IS NULL THEN
        EXECUTE pg_catalog.format(
            $q$SELECT pg_catalog.sum(s.calls * (s.mean_exec_time + 1.645 * s.stddev_exec_time))
                      / pg_catalog.nullif(pg_catalog.sum(s.calls), 0)
                 FROM %I.pg_stat_statements s WHERE s.query LIKE '%%cr_predict%%'
                  AND s.query NOT LIKE '%%cr_monitor%%'$q$, stats_schema)
           INTO run.p95_latency_ms;
        IF run.p95_latency_ms IS NOT NULL THEN
            run.latency_source := 'pg_stat_statements';
        END IF;
    END IF;

    run.run_at := pg_catalog.now();
    run.run_by := CURRENT_USER;
    INSERT INTO credit_risk.monitoring_runs (model_name, model_version, run_at, run_by, source,
                                             rows, feature_psi, max_feature_psi, score_psi,
                                             metrics, mean_pd, pd_deciles, category_shares,
                                             p95_latency_ms, calibration, fairness, latency_source)
    VALUES (run.model_name, run.model_version, run.run_at, run.run_by, run.source,
            run.rows, run.feature_psi, run.max_feature_psi, run.score_psi,
            run.metrics, run.mean_pd, run.pd_deciles, run.category_shares,
            run.p95_latency_ms, run.calibration, run.fairness, run.latency_source)
    RETURNING id INTO run.id;

    FOR r IN SELECT * FROM credit_risk.effective_alert_rules e
              WHERE e.enabled AND (e.model_name IS NULL OR e.model_name = cr_monitor.name)
              ORDER BY e.name
    LOOP
        value := CASE r.metric
                     WHEN 'max_feature_psi' THEN run.max_feature_psi
                     WHEN 'score_psi' THEN run.score_psi
                     WHEN 'p95_latency_ms' THEN run.p95_latency_ms
                     WHEN 'hosmer_lemeshow_p' THEN (run.calibration ->> 'hosmer_lemeshow_p')::float8
                     WHEN 'min_jeffreys_p' THEN (run.calibration ->> 'min_jeffreys_p')::float8
                     WHEN 'min_adverse_impact_ratio'
                     THEN (run.fairness -> r.group_column ->> 'min_adverse_impact_ratio')::float8
                     ELSE (run.metrics ->> r.metric)::float8
                 END;
        IF value IS NULL THEN
            skipped := skipped || pg_catalog.jsonb_build_object(r.name,
                CASE WHEN r.metric = 'p95_latency_ms' AND NOT serving_ok AND NOT stats_ok
                     THEN 'credit_risk is not in shared_preload_libraries and pg_stat_statements is not installed'
                     WHEN r.metric = 'p95_latency_ms' AND serving_ok
                     THEN 'no calls of ' || run.model_version || ' in credit_risk.serving_stats'
                          || CASE WHEN stats_ok THEN ' or cr_predict calls in pg_stat_statements' ELSE '' END
                     WHEN r.metric = 'p95_latency_ms'
                     THEN 'no cr_predict calls in pg_stat_statements'
                     WHEN r.metric = 'min_adverse_impact_ratio'
                     THEN COALESCE(no_groups ->> r.group_column, 'no group approves any applicant')
                     WHEN r.metric IN ('hosmer_lemeshow_p', 'min_jeffreys_p') AND no_calibration IS NOT NULL
                     THEN no_calibration
                     ELSE 'no labels: pass the label column to measure ' || r.metric END);
            CONTINUE;
        END IF;
        fired := CASE r.comparison
                     WHEN '>' THEN value > r.threshold
                     WHEN '>=' THEN value >= r.threshold
                     WHEN '<' THEN value < r.threshold
                     ELSE value <= r.threshold
                 END;
        IF fired THEN
            msg := pg_catalog.format('%s: %s of %s is %s (%s %s)', r.name, r.metric,
                                     run.model_version, round(value::numeric, 4),
                                     r.comparison, r.threshold);
            INSERT INTO credit_risk.alerts (run_id, rule_name, model_name, metric, value,
                                            comparison, threshold, severity, message)
            VALUES (run.id, r.name, name, r.metric, value, r.comparison, r.threshold,
                    r.severity, msg);
            PERFORM pg_catalog.pg_notify('credit_risk_alerts',
                pg_catalog.jsonb_build_object('rule', r.name, 'severity', r.severity,
                    'model_version', run.model_version, 'metric', r.metric, 'value', value,
                    'threshold', r.threshold, 'run_id', run.id, 'message', msg)::text);
            nalerts := nalerts + 1;
        END IF;
    END LOOP;

    IF skipped <> '{}' THEN
        RAISE NOTICE 'rules not evaluated: %', skipped;
    END IF;
    UPDATE credit_risk.monitoring_runs m SET alerts = nalerts, unevaluated = skipped
     WHERE m.id = run.id
    RETURNING * INTO run;
    PERFORM credit_risk.cr_progress_report(NULL, NULL, NULL);
    RETURN run;
END;
$$;

-- Copy new and changed rows of a relation (a foreign table over a warehouse
-- extract, say) into a local table: rows past the last watermark, upserted
-- by key with MERGE, in the caller's transaction.
CREATE OR REPLACE FUNCTION credit_risk.cr_mirror(source regclass, target regclass, key text[],
                                      watermark text DEFAULT NULL)
RETURNS TABLE (rows_read bigint, inserted bigint, updated bigint, rejected bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
-- the watermark is kept as text: write and read it in one unambiguous style
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'iso_8601'
SET extra_float_digits = 1
AS $$
DECLARE
    -- names as the caller writes them (the keys of mirror_state and
    -- quality_rules), and as the statements below must write them
    caller_path text := credit_risk.cr_caller_search_path();
    src text;
    tgt text;
    src_q text := pg_catalog.format('%I.%I', (SELECT n.nspname FROM pg_catalog.pg_class c
                                               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                              WHERE c.oid = source),
                                    (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source));
    tgt_q text := pg_catalog.format('%I.%I', (SELECT n.nspname FROM pg_catalog.pg_class c
                                               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                              WHERE c.oid = target),
                                    (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = target));
    cols text[];
    k text;
    wm_type text;
    last text;
    started timestamptz := pg_catalog.clock_timestamp();
    on_keys text;
    set_list text;
    col_list text;
    src_cols text;
    changed text;
    n_read bigint;
    n_new bigint;
    n_merged bigint;
    n_rejected bigint;
    n_bad bigint;
    share float8;
    q record;
    breach text;
    bad text;
    new_last text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    src := source::text;
    tgt := target::text;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM credit_risk.cr_progress_report('cr_mirror', src, NULL);
    PERFORM credit_risk.cr_progress_report(NULL, NULL, 'reading');
    IF key IS NULL OR pg_catalog.cardinality(key) = 0 THEN
        RAISE EXCEPTION 'cr_mirror needs the key columns'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- columns of the target that the source has too, in target order
    SELECT pg_catalog.array_agg(t.attname::text ORDER BY t.attnum) INTO cols
      FROM pg_catalog.pg_attribute t
      JOIN pg_catalog.pg_attribute s ON s.attrelid = source AND s.attname = t.attname
                                    AND s.attnum > 0 AND NOT s.attisdropped
     WHERE t.attrelid = target AND t.attnum > 0 AND NOT t.attisdropped;
    FOREACH k IN ARRAY key LOOP
        IF k IS NULL OR NOT k = ANY (COALESCE(cols, '{}')) THEN
            RAISE EXCEPTION 'key column "%" is not in both % and %', k, src, tgt
                USING ERRCODE = 'undefined_column';
        END IF;
    END LOOP;
    IF watermark IS NOT NULL THEN
        SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO wm_type
          FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = source AND a.attname = watermark AND a.attnum > 0 AND NOT a.attisdropped;
        IF wm_type IS NULL THEN
            RAISE EXCEPTION 'watermark column "%" is not in %', watermark, src
                USING ERRCODE = 'undefined_column';
        END IF;
    END IF;

    SELECT m.last_watermark INTO last FROM credit_risk.mirror_state m WHERE m.source = src;

    -- the rows to apply: past the watermark, the newest per key
    IF pg_catalog.to_regclass('pg_temp.cr_mirror_stage') IS NOT NULL THEN
        DROP TABLE pg_temp.cr_mirror_stage;
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TEMP TABLE cr_mirror_stage ON COMMIT DROP AS
         SELECT DISTINCT ON (%s) %s%s FROM %s s %s ORDER BY %s%s',
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM unnest(key) c),
        (SELECT pg_catalog.string_agg('s.' || pg_catalog.quote_ident(c), ', ') FROM unnest(cols) c),
        CASE WHEN watermark IS NOT NULL AND NOT watermark = ANY (cols)
             THEN ', s.' || pg_catalog.quote_ident(watermark) ELSE '' END,
        src_q,
        CASE WHEN watermark IS NOT NULL AND last IS NOT NULL
             THEN pg_catalog.format('WHERE s.%I > %L::%s', watermark, last, wm_type) ELSE '' END,
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM unnest(key) c),
        CASE WHEN watermark IS NOT NULL
             THEN ', ' || pg_catalog.quote_ident(watermark) || ' DESC' ELSE '' END);
    EXECUTE 'SELECT count(*) FROM pg_temp.cr_mirror_stage' INTO n_read;
    IF watermark IS NULL THEN
        -- without a watermark, two rows for one key leave no way to choose
        EXECUTE pg_catalog.format('SELECT count(*) FROM %s s', src_q) INTO n_new;
        IF n_new > n_read THEN
            RAISE EXCEPTION '% has % rows with a key that another row also has', src, n_new - n_read
                USING ERRCODE = 'unique_violation',
                      HINT = 'Pass a watermark column, so the newest row of each key wins.';
        END IF;
    END IF;

    -- the watermark covers every row read, quarantined ones too (read once)
    IF watermark IS NOT NULL THEN
        EXECUTE pg_catalog.format('SELECT max(%I)::text FROM pg_temp.cr_mirror_stage', watermark)
           INTO new_last;
    END IF;

    PERFORM credit_risk.cr_progress_report(NULL, NULL, 'checking quality rules');
    -- table-level rules: any breach fails the run, before the target is touched
    FOR q IN SELECT * FROM credit_risk.quality_rules r
              WHERE r.target = tgt AND r.enabled AND r.rule IN ('min_rows', 'max_null_share', 'unique', 'schema')
              ORDER BY r.id
    LOOP
        breach := NULL;
        IF q.rule = 'min_rows' AND n_read < (q.args ->> 'rows')::bigint THEN
            breach := pg_catalog.format('%s rows, fewer than %s', n_read, q.args ->> 'rows');
        ELSIF q.rule = 'max_null_share' THEN
            EXECUTE pg_catalog.format('SELECT avg((%I IS NULL)::int) FROM pg_temp.cr_mirror_stage', q.column_name)
               INTO share;
            IF share > (q.args ->> 'share')::float8 THEN
                breach := pg_catalog.format('%s of %s is NULL, more than %s',
                                            round(share::numeric, 4), q.column_name, q.args ->> 'share');
            END IF;
        ELSIF q.rule = 'unique' THEN
            EXECUTE pg_catalog.format('SELECT count(*) - count(DISTINCT %I) FROM pg_temp.cr_mirror_stage WHERE %I IS NOT NULL',
                                      q.column_name, q.column_name)
               INTO n_bad;
            IF n_bad > 0 THEN
                breach := pg_catalog.format('%s duplicate values of %s', n_bad, q.column_name);
            END IF;
        ELSIF q.rule = 'schema' THEN
            SELECT pg_catalog.string_agg(pg_catalog.format('%s %s', e.key, e.value #>> '{}'), ', ')
              INTO breach
              FROM pg_catalog.jsonb_each(q.args -> 'columns') e
             WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                WHERE a.attrelid = source AND a.attname = e.key
                                  AND a.attnum > 0 AND NOT a.attisdropped
                                  AND pg_catalog.format_type(a.atttypid, a.atttypmod) = e.value #>> '{}');
            IF breach IS NOT NULL THEN
                breach := 'the source lacks ' || breach;
            END IF;
        END IF;
        IF breach IS NOT NULL THEN
            RAISE EXCEPTION 'quality rule % (%) failed on %: %', q.id, q.rule, src, breach
                USING ERRCODE = 'check_violation',
                      HINT = pg_catalog.format('Nothing was written to %s. Fix the extract, or the rule in credit_risk.quality_rules.', tgt);
        END IF;
    END LOOP;

    -- row-level rules: breaking rows go to quarantine, not to the target
    n_rejected := 0;
    FOR q IN SELECT * FROM credit_risk.quality_rules r
              WHERE r.target = tgt AND r.enabled AND r.rule IN ('not_null', 'range', 'allowed')
              ORDER BY r.id
    LOOP
        bad := CASE q.rule
            WHEN 'not_null' THEN pg_catalog.format('s.%I IS NULL', q.column_name)
            WHEN 'range' THEN pg_catalog.format('s.%1$I IS NOT NULL AND NOT (s.%1$I >= %2$L AND s.%1$I <= %3$L)',
                                                q.column_name, q.args ->> 'min', q.args ->> 'max')
            ELSE pg_catalog.format('s.%1$I IS NOT NULL AND NOT (s.%1$I::text = ANY (ARRAY(SELECT jsonb_array_elements_text(%2$L::jsonb))))',
                                   q.column_name, q.args -> 'values')
        END;
        EXECUTE pg_catalog.format(
            'WITH gone AS (DELETE FROM pg_temp.cr_mirror_stage s WHERE %s RETURNING s.*)
             INSERT INTO credit_risk.quarantine (target, row_data, rule_id, rule)
             SELECT %L, to_jsonb(gone), %s, %L FROM gone', bad, tgt, q.id, q.rule);
        GET DIAGNOSTICS n_bad = ROW_COUNT;
        n_rejected := n_rejected + n_bad;
    END LOOP;

    on_keys := (SELECT pg_catalog.string_agg(pg_catalog.format('t.%1$I = s.%1$I', c), ' AND ') FROM unnest(key) c);
    col_list := (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM unnest(cols) c);
    src_cols := (SELECT pg_catalog.string_agg('s.' || pg_catalog.quote_ident(c), ', ') FROM unnest(cols) c);
    set_list := (SELECT pg_catalog.string_agg(pg_catalog.format('%1$I = s.%1$I', c), ', ')
                   FROM unnest(cols) c WHERE NOT c = ANY (key));
    changed := (SELECT pg_catalog.format('ROW(%s) IS DISTINCT FROM ROW(%s)',
                        pg_catalog.string_agg('t.' || pg_catalog.quote_ident(c), ', '),
                        pg_catalog.string_agg('s.' || pg_catalog.quote_ident(c), ', '))
                  FROM unnest(cols) c WHERE NOT c = ANY (key));

    PERFORM credit_risk.cr_progress_report(NULL, NULL, 'merging');
    -- the registry has one champion a name: a champion the source has
    -- demoted (a promotion back to an older version, say) steps down
    -- before its successor is merged in
    IF target = 'credit_risk.models'::regclass AND 'status' = ANY (cols) AND key = ARRAY['id'] THEN
        UPDATE credit_risk.models t SET status = s.status
          FROM pg_temp.cr_mirror_stage s
         WHERE t.id = s.id AND t.status = 'champion' AND s.status IS DISTINCT FROM 'champion';
    END IF;
    EXECUTE pg_catalog.format('SELECT count(*) FROM pg_temp.cr_mirror_stage s
                                WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE %s)', tgt_q, on_keys)
       INTO n_new;
    EXECUTE pg_catalog.format(
        'MERGE INTO %s t USING pg_temp.cr_mirror_stage s ON %s
         %s
         WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)',
        tgt_q, on_keys,
        CASE WHEN set_list IS NULL THEN ''
             ELSE pg_catalog.format('WHEN MATCHED AND %s THEN UPDATE SET %s', changed, set_list) END,
        col_list, src_cols);
    GET DIAGNOSTICS n_merged = ROW_COUNT;

    INSERT INTO credit_risk.mirror_state AS m (source, target, watermark, last_watermark, last_run)
    VALUES (src, tgt, watermark, COALESCE(new_last, last), pg_catalog.now())
    ON CONFLICT ON CONSTRAINT mirror_state_pkey DO UPDATE
       SET target = EXCLUDED.target, watermark = EXCLUDED.watermark,
           last_watermark = COALESCE(new_last, m.last_watermark), last_run = EXCLUDED.last_run;
    DROP TABLE pg_temp.cr_mirror_stage;

    rows_read := n_read;
    inserted := n_new;
    updated := n_merged - n_new;
    rejected := n_rejected;
    INSERT INTO credit_risk.pipeline_runs (job, started_at, finished_at, status, rows_in,
                                           rows_rejected, detail)
    VALUES ('mirror:' || src, started, pg_catalog.clock_timestamp(), 'succeeded', n_read, n_rejected,
            pg_catalog.jsonb_build_object('target', tgt, 'inserted', inserted,
                                          'updated', updated, 'watermark', COALESCE(new_last, last)));
    PERFORM credit_risk.cr_progress_report(NULL, NULL, NULL);
    RETURN NEXT;
END;
$$;

-- Pipeline steps run as a role of their own (cr_run_as), never as a
-- superuser unless allow_superuser says so.  A step kept from 0.1.0 gets
-- the role running this update as its run_as: a superuser's step is then
-- refused until its run_as names a role without superuser (or
-- allow_superuser is set), so no step runs with more rights than before.
ALTER TABLE credit_risk.pipeline_steps
    ADD COLUMN run_as name NOT NULL DEFAULT CURRENT_USER,
    ADD COLUMN allow_superuser boolean NOT NULL DEFAULT false;

DO $$
DECLARE
    steps text;
BEGIN
    SELECT pg_catalog.string_agg(s.step, ', ' ORDER BY s.step) INTO steps
      FROM credit_risk.pipeline_steps s
      JOIN pg_catalog.pg_roles r ON r.rolname = s.run_as
     WHERE r.rolsuper;
    IF steps IS NOT NULL THEN
        RAISE WARNING 'pipeline steps % now run as superuser "%" and will be refused', steps, CURRENT_USER
            USING HINT = 'Set credit_risk.pipeline_steps.run_as to a role with only the rights each step needs.';
    END IF;
END;
$$;

-- Run SQL as a role the caller is a member of, with that role's rights only
-- (it cannot SET ROLE back); a superuser role only when allowed.
CREATE FUNCTION credit_risk.cr_run_as(role name, command text, allow_superuser boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'cr_run_as'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Who writes a step decides what runs as run_as: only a member of that
-- role may name it, and a superuser only with allow_superuser.
CREATE FUNCTION credit_risk.pipeline_steps_check_run_as()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = NEW.run_as) THEN
        RAISE EXCEPTION 'role "%" does not exist', NEW.run_as
            USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_catalog.pg_has_role(CURRENT_USER, NEW.run_as, 'MEMBER') THEN
        RAISE EXCEPTION 'role "%" may not set up a step that runs as role "%"', CURRENT_USER, NEW.run_as
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Name a role you are a member of.';
    END IF;
    -- a superuser, or a member of one (its rights are a superuser's)
    IF NOT NEW.allow_superuser AND
       EXISTS (SELECT 1 FROM pg_catalog.pg_roles s
                WHERE s.rolsuper AND pg_catalog.pg_has_role(NEW.run_as, s.oid, 'MEMBER')) THEN
        RAISE EXCEPTION 'pipeline step "%" would run as superuser "%"', NEW.step, NEW.run_as
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A step run as a superuser runs every function and view it touches with a superuser''s rights.',
                  HINT = 'Set run_as to a role without superuser, or allow_superuser to true.';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER pipeline_steps_run_as
    BEFORE INSERT OR UPDATE ON credit_risk.pipeline_steps
    FOR EACH ROW EXECUTE FUNCTION credit_risk.pipeline_steps_check_run_as();

CREATE OR REPLACE FUNCTION credit_risk.cr_run_pipeline_step(step text)
RETURNS credit_risk.pipeline_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    run credit_risk.pipeline_runs;
    cmd text;
    who name;
    allow_su boolean;
    pred text;
    started timestamptz := pg_catalog.clock_timestamp();
    why text;
    status text := 'succeeded';
    detail jsonb := '{}';
BEGIN
    IF step IS NULL OR step NOT IN ('ingestion', 'features', 'training', 'monitoring') THEN
        RAISE EXCEPTION 'unknown pipeline step "%"', step
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The steps are ingestion, features, training and monitoring.';
    END IF;
    pred := CASE step WHEN 'features' THEN 'ingestion' WHEN 'monitoring' THEN 'features' END;
    SELECT s.command, s.run_as, s.allow_superuser INTO cmd, who, allow_su
      FROM credit_risk.pipeline_steps s
     WHERE s.step = cr_run_pipeline_step.step AND s.enabled;

    IF cmd IS NULL THEN
        status := 'skipped';
        why := 'no enabled command for this step in credit_risk.pipeline_steps';
    ELSIF pred IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM credit_risk.pipeline_runs r
             WHERE r.job = 'step:' || pred AND r.status = 'succeeded'
               AND r.started_at >= pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') THEN
        status := 'skipped';
        why := pg_catalog.format('%s has not succeeded today (UTC)', pred);
    ELSE
        BEGIN
            PERFORM credit_risk.cr_run_as(who, cmd, allow_su);
        EXCEPTION WHEN OTHERS THEN
            status := 'failed';
            why := SQLSTATE || ': ' || SQLERRM;
        END;
    END IF;
    IF why IS NOT NULL THEN
        detail := pg_catalog.jsonb_build_object('reason', why);
    END IF;

    INSERT INTO credit_risk.pipeline_runs (job, started_at, finished_at, status, detail)
    VALUES ('step:' || step, started, pg_catalog.clock_timestamp(), status,
            detail || pg_catalog.jsonb_build_object('command', cmd, 'run_as', who))
    RETURNING * INTO run;
    RETURN run;
END;
$$;

-- The four pg_cron jobs (UTC): ingestion 02:00, features 04:00 and
-- monitoring 06:00 daily, training Sunday 01:00.  Calling it again updates
-- them.  Nothing is scheduled when the extension is installed.
CREATE OR REPLACE FUNCTION credit_risk.cr_schedule_pipeline()
RETURNS TABLE (jobname text, schedule text, command text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add pg_cron to shared_preload_libraries, run CREATE EXTENSION pg_cron in the database named by cron.database_name, and call credit_risk.cr_schedule_pipeline() there.';
    END IF;
    FOR j IN SELECT * FROM (VALUES
                ('credit_risk:daily_ingestion', '0 2 * * *', 'ingestion'),
                ('credit_risk:feature_engineering', '0 4 * * *', 'features'),
                ('credit_risk:model_training', '0 1 * * 0', 'training'),
                ('credit_risk:model_monitoring', '0 6 * * *', 'monitoring')) v(name, sched, step)
    LOOP
        jobname := j.name;
        schedule := j.sched;
        command := pg_catalog.format('SELECT credit_risk.cr_run_pipeline_step(%L)', j.step);
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' USING jobname, schedule, command;
        RETURN NEXT;
    END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION credit_risk.cr_unschedule_pipeline()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer := 0;
    name text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Nothing can have been scheduled without pg_cron.';
    END IF;
    FOR name IN EXECUTE 'SELECT jobname FROM cron.job WHERE jobname LIKE ''credit_risk:%'''
    LOOP
        EXECUTE 'SELECT cron.unschedule($1)' USING name;
        n := n + 1;
    END LOOP;
    RETURN n;
END;
$$;

-- Hyper-parameter searches: one row per cr_tune run, its trials as jsonb,
-- the best trial and the version it registered.  Written by cr_tune only
-- (as the registry's owner); kept by pg_dump.
CREATE TABLE credit_risk.tuning_runs (
    id                bigserial PRIMARY KEY,
    model_name        text NOT NULL,
    algorithm         text NOT NULL,
    source            text NOT NULL,
    search            jsonb NOT NULL,
    params            jsonb NOT NULL,
    metric            text NOT NULL,
    trials            jsonb NOT NULL,
    best_trial        integer NOT NULL,
    version           integer NOT NULL,
    seconds           float8 NOT NULL,
    budget_exhausted  boolean NOT NULL,
    run_by            name NOT NULL,
    finished_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE credit_risk.tuning_runs IS
    'credit_risk hyper-parameter searches (cr_tune): trials, the best and the version it registered';

SELECT pg_catalog.pg_extension_config_dump('credit_risk.tuning_runs', '');

SELECT pg_catalog.pg_extension_config_dump('credit_risk.tuning_runs_id_seq', '');

CREATE TRIGGER tuning_runs_guard
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_risk.tuning_runs
    FOR EACH STATEMENT EXECUTE FUNCTION credit_risk.cr_registry_guard();

-- A search over params: trials of a grid or random draws from search.space,
-- each scored by params.cv folds (mean and sd) or on the holdout, on rows
-- loaded once; the best registered as a candidate version.
CREATE FUNCTION credit_risk.cr_tune(name text, source text, label text, algorithm text,
                                    features text[], search jsonb, params jsonb DEFAULT '{}')
RETURNS TABLE (trial integer, params jsonb, metric float8, metric_sd float8,
               seconds float8, chosen boolean, version integer)
AS 'MODULE_PATHNAME', 'cr_tune'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Weight-of-Evidence bins of one feature against the label (1 default, 0
-- not): WoE = ln(share of non-events / share of events) per bin; value bins
-- 1.. in order (a number's lower <= x < upper; a categorical feature's a row
-- per level), then the missing bin, 0.  params: max_bins (6), min_bin_share
-- (0.05), prebins (20), trend (auto | ascending | descending | peak |
-- valley), categorical (false: text columns are categorical anyway).
-- Reads the source with the caller's rights.
CREATE FUNCTION credit_risk.cr_woe_bins(source text, label text, feature text,
                                        params jsonb DEFAULT '{}')
RETURNS TABLE (bin integer, lower float8, upper float8, category text, n bigint,
               events bigint, event_rate float8, woe float8, iv float8)
AS 'MODULE_PATHNAME', 'cr_woe_bins'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- A scorecard's points table: per feature its bins (a categorical
-- feature's a row per level), the missing bin 0, and a row without a bin
-- for what scores WoE 0; an applicant's bins' points add up to cr_predict's
-- score before rounding.
CREATE FUNCTION credit_risk.cr_scorecard(name text, version integer DEFAULT NULL)
RETURNS TABLE (feature text, bin integer, lower float8, upper float8, category text,
               woe float8, coefficient float8, points float8)
AS 'MODULE_PATHNAME', 'cr_scorecard'
LANGUAGE C STABLE PARALLEL SAFE;

-- The information value of features (NULL: every numeric and text column
-- but the label), binned as cr_woe_bins bins them, the highest first:
-- useless below 0.02, weak below 0.1, medium below 0.3, strong to 0.5,
-- suspicious (too good to be true: look for leakage) above.
CREATE FUNCTION credit_risk.cr_information_value(source text, label text,
                                                 features text[] DEFAULT NULL,
                                                 params jsonb DEFAULT '{}')
RETURNS TABLE (rank integer, feature text, iv float8, strength text, bins integer)
AS 'MODULE_PATHNAME', 'cr_information_value'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- A version's report for its validators: one self-contained HTML page
-- (inline CSS and SVG, no script, nothing fetched).  With a labelled source
-- (the model's features and its label column) it draws the ROC and KS
-- curves, the PDs of goods and defaults and the calibration on its rows.
CREATE FUNCTION credit_risk.cr_model_report(name text, version integer DEFAULT NULL,
                                            source text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'cr_model_report'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The number in [0, 1) that cr_train with params {key, seed} draws for the
-- row with this key: below params.holdout, the row is held out; the training
-- rows of each label, in its order, are dealt to the folds of params.cv.
CREATE FUNCTION credit_risk.cr_split_unit(key anyelement, seed bigint)
RETURNS float8
AS 'MODULE_PATHNAME', 'cr_split_unit'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Register if better: train a candidate, score it and the current champion
-- on the candidate's holdout rows (the same rows), and promote the candidate
-- only if its AUC beats the champion's by at least params.min_gain.  The
-- candidate comes from cr_train, from a search (params.search: cr_tune's
-- search argument), or from cr_train with the best params of the model's
-- latest tuning run (params.tuned = true).
CREATE OR REPLACE FUNCTION credit_risk.cr_retrain(name text, source text, label text,
                                       algorithm text DEFAULT 'gbm',
                                       params jsonb DEFAULT '{}')
RETURNS credit_risk.pipeline_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    caller_path text := credit_risk.cr_caller_search_path();
    run credit_risk.pipeline_runs;
    cand credit_risk.models;
    champ credit_risk.models;
    train_params jsonb := COALESCE(params, '{}') - 'min_gain' - 'search' - 'tuned';
    min_gain float8 := COALESCE((params ->> 'min_gain')::float8, 0);
    search jsonb := NULLIF(params -> 'search', 'null');
    tuned boolean := COALESCE(params ->> 'tuned', 'false') = 'true';
    tuning_run bigint;
    cand_version integer;
    started timestamptz := pg_catalog.clock_timestamp();
    query text;
    holdout_source text;
    split jsonb := NULLIF(train_params -> 'split', 'null');
    cand_auc float8;
    champ_auc float8;
    promote boolean;
BEGIN
    IF train_params ->> 'key' IS NULL AND split IS NULL THEN
        RAISE EXCEPTION 'cr_retrain needs params.key or params.split'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the applicant key column, or split by date, so the candidate and the champion are compared on the same holdout rows.';
    END IF;
    IF split IS NULL AND COALESCE((train_params ->> 'holdout')::float8, 0.2) = 0 THEN
        RAISE EXCEPTION 'cr_retrain needs a holdout'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(params -> 'tuned') NOT IN ('boolean', 'null') THEN
        RAISE EXCEPTION 'params.tuned must be true or false'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF pg_catalog.jsonb_typeof(search) NOT IN ('object', 'null') THEN
        RAISE EXCEPTION 'params.search must be an object, as cr_tune''s search argument'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example {"method": "random", "trials": 20, "space": {"max_depth": [3, 8]}}.';
    END IF;
    IF search IS NOT NULL AND tuned THEN
        RAISE EXCEPTION 'cr_retrain takes params.search or params.tuned, not both'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'search runs a new search; tuned reuses the best params of the latest one.';
    END IF;
    IF tuned THEN
        -- the best trial's params of the model's latest search, over the given ones
        SELECT r.id, train_params || (r.trials -> (r.best_trial - 1) -> 'params')
          INTO tuning_run, train_params
          FROM credit_risk.tuning_runs r
         WHERE r.model_name = cr_retrain.name AND r.algorithm = cr_retrain.algorithm
         ORDER BY r.id DESC LIMIT 1;
        IF tuning_run IS NULL THEN
            RAISE EXCEPTION 'model "%" has no % tuning run to take params from', name, algorithm
                USING ERRCODE = 'no_data_found',
                      HINT = 'Run credit_risk.cr_tune first, or leave out params.tuned.';
        END IF;
    END IF;

    SELECT * INTO champ FROM credit_risk.models m
     WHERE m.name = cr_retrain.name AND m.status = 'champion';

    -- the source is the caller's SQL: resolved in the caller's search_path
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    IF search IS NOT NULL THEN
        SELECT t.version INTO cand_version
          FROM credit_risk.cr_tune(name, source, label, algorithm, NULL, search, train_params) t
         WHERE t.chosen;
        SELECT * INTO cand FROM credit_risk.models m
         WHERE m.name = cr_retrain.name AND m.version = cand_version;
        tuning_run := (cand.params -> 'tuning' ->> 'run')::bigint;
    ELSE
        cand := credit_risk.cr_train(name, source, label, algorithm, NULL, train_params);
    END IF;

    IF split IS NOT NULL THEN
        -- the out-of-time holdout, as cr_train made it
        holdout_source := source;
    ELSE
        query := CASE WHEN source ~* '^[[:space:](]*(select|with|values|table)[[:space:](]'
                      THEN source ELSE 'SELECT * FROM ' || source END;
        holdout_source := pg_catalog.format(
            'SELECT * FROM (%s) AS cr_retrain_source WHERE credit_risk.cr_in_holdout(%I, %s, %s)',
            query, train_params ->> 'key', cand.params ->> 'seed', cand.params ->> 'holdout');
    END IF;
    cand_auc := (credit_risk.cr_evaluate(name, holdout_source, label, cand.version, split) ->> 'auc')::float8;
    IF champ.id IS NOT NULL THEN
        champ_auc := (credit_risk.cr_evaluate(name, holdout_source, label, champ.version, split) ->> 'auc')::float8;
    END IF;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    promote := champ.id IS NULL OR cand_auc >= champ_auc + min_gain;
    IF promote THEN
        PERFORM credit_risk.cr_promote(name, cand.version);
    END IF;

    INSERT INTO credit_risk.pipeline_runs (job, started_at, finished_at, status, rows_in,
                                           rows_rejected, detail)
    VALUES ('retrain:' || name, started, pg_catalog.clock_timestamp(), 'succeeded',
            cand.train_rows + cand.holdout_rows, 0,
            pg_catalog.jsonb_build_object(
                'candidate_version', cand.version, 'candidate_auc', cand_auc,
                'champion_version', champ.version, 'champion_auc', champ_auc,
                'min_gain', min_gain, 'promoted', promote,
                'holdout_rows', cand.holdout_rows)
            || CASE WHEN tuning_run IS NULL THEN '{}'::jsonb
                    ELSE pg_catalog.jsonb_build_object('tuning_run', tuning_run,
                                                       'tuning', CASE WHEN tuned THEN 'reused' ELSE 'searched' END) END)
    RETURNING * INTO run;
    RETURN run;
END;
$$;

REVOKE ALL ON FUNCTION credit_risk.cr_tune(text, text, text, text, text[], jsonb, jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION credit_risk.cr_import_xgboost(text, jsonb, text[], jsonb) FROM PUBLIC;

REVOKE ALL ON FUNCTION credit_risk.cr_promote_internal(text, integer, text) FROM PUBLIC;

REVOKE ALL ON FUNCTION credit_risk.cr_route_internal(text, integer, float8, text) FROM PUBLIC;

-- Operations ----------------------------------------------------------------

-- Serving statistics, counted in shared memory by every scoring call
-- (cr_predict, cr_predict_batch, cr_explain, cr_explain_batch) when
-- credit_risk is in shared_preload_libraries: per model version of this
-- database, calls (failed and batch calls included), rows, errors, the
-- p50, p95, p99 and largest latency in milliseconds of the calls that score
-- one applicant (from a histogram of buckets 9% wide: within 4.4%), since
-- when, their total seconds, and the batch calls and their seconds.  A
-- model passed as bytes is counted as "(bytes <its checksum>)" with no
-- version; calls that could not be counted come as "(not counted)".
CREATE FUNCTION credit_risk.cr_serving_stats()
RETURNS TABLE (model text, version integer, calls bigint, rows bigint, errors bigint,
               p50 float8, p95 float8, p99 float8, max float8, since timestamptz,
               seconds float8, batch_calls bigint, batch_seconds float8)
AS 'MODULE_PATHNAME', 'cr_serving_stats'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW credit_risk.serving_stats AS
SELECT model, version, calls, rows, errors, p50, p95, p99, max, since, seconds,
       batch_calls, batch_seconds
  FROM credit_risk.cr_serving_stats();

-- The latency histogram as Prometheus histograms have it: per model
-- version, the finished single calls that took at most each bound in seconds
-- (cumulative; the last bound is +Infinity), and their total seconds.  The
-- default bounds run from 1 microsecond (a call is timed inside the
-- scoring function) to 10 seconds.
CREATE FUNCTION credit_risk.cr_serving_histogram(
    le float8[] DEFAULT '{0.000001,0.0000025,0.000005,0.00001,0.000025,0.00005,0.0001,0.00025,0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10}')
RETURNS TABLE (model text, version integer, le float8, count bigint, sum float8)
AS 'MODULE_PATHNAME', 'cr_serving_histogram'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- Forget every version's serving statistics, in every database.
CREATE FUNCTION credit_risk.cr_reset_serving_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'cr_reset_serving_stats'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The long commands running now (cr_train, cr_tune, cr_predict_batch,
-- cr_explain_batch, cr_mirror, cr_monitor), as PostgreSQL's
-- pg_stat_progress_* views show theirs: the phase (a tree or Newton step
-- within it), rows done and expected, the time since the command started,
-- and the time the current phase has left at its rate so far.  Other roles'
-- commands show only pid, database and command, unless the caller has
-- pg_read_all_stats.  Needs credit_risk in shared_preload_libraries.
CREATE FUNCTION credit_risk.cr_progress()
RETURNS TABLE (pid integer, datname text, command text, model text, phase text,
               step integer, steps integer, rows_done bigint, rows_total bigint,
               started timestamptz, elapsed interval, remaining interval)
AS 'MODULE_PATHNAME', 'cr_progress'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE VIEW credit_risk.progress AS
SELECT pid, datname, command, model, phase, step, steps, rows_done, rows_total,
       started, elapsed, remaining
  FROM credit_risk.cr_progress();

-- How the extension's PL/pgSQL commands report their phases (see
-- progress.c); it changes only the calling backend's own report.
CREATE FUNCTION credit_risk.cr_progress_report(command text, model text, phase text)
RETURNS void
AS 'MODULE_PATHNAME', 'cr_progress_report'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

GRANT SELECT ON credit_risk.serving_stats, credit_risk.progress TO PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_reset_serving_stats() FROM PUBLIC;

-- Alerts that reach people ---------------------------------------------------

-- Where credit_risk_alertd sends alerts: a Slack-compatible webhook
-- ({"text": ...}), PagerDuty's Events API v2, or a plain JSON POST of the
-- alert.  A channel receives the alerts raised after it was added, of its
-- model (NULL: every model) and at least its severity.  The url (and a
-- PagerDuty routing key) are secrets: readable by whom you grant.
CREATE TABLE credit_risk.alert_channels (
    id           serial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('slack', 'pagerduty', 'webhook')),
    url          text NOT NULL CHECK (url ~ '^https?://[^[:space:]]+$'),
    routing_key  text,
    min_severity text NOT NULL DEFAULT 'warning'
                 CHECK (min_severity IN ('info', 'warning', 'critical')),
    model_name   text,
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT alert_channels_routing_key CHECK ((kind = 'pagerduty') = (routing_key IS NOT NULL))
);

-- One row per alert and channel that credit_risk_alertd is done with:
-- delivered, or failed after its retries.
CREATE TABLE credit_risk.alert_deliveries (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES credit_risk.alerts ON DELETE CASCADE,
    channel_id  integer NOT NULL REFERENCES credit_risk.alert_channels ON DELETE CASCADE,
    status      text NOT NULL CHECK (status IN ('delivered', 'failed')),
    attempts    integer NOT NULL CHECK (attempts > 0),
    http_status integer,
    error       text,
    finished_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    UNIQUE (alert_id, channel_id)
);

-- The newest alert credit_risk_alertd has finished with (at most one row):
-- it starts after it, so a long history is not read again.
CREATE TABLE credit_risk.alert_watermark (
    only_row   boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    alert_id   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_channels', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_channels_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_deliveries_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_watermark', '');

-- What is still to send: each alert past the watermark, with each channel
-- that takes it and has no delivery row for it yet.
CREATE VIEW credit_risk.alert_outbox AS
SELECT a.id AS alert_id, c.id AS channel_id, c.kind, c.url
  FROM credit_risk.alerts a
  JOIN credit_risk.alert_channels c
    ON c.enabled
   AND (c.model_name IS NULL OR c.model_name OPERATOR(pg_catalog.=) a.model_name)
   AND a.raised_at OPERATOR(pg_catalog.>=) c.created_at
   AND pg_catalog.array_position(ARRAY['info', 'warning', 'critical'], a.severity)
       OPERATOR(pg_catalog.>=) pg_catalog.array_position(ARRAY['info', 'warning', 'critical'], c.min_severity)
 WHERE a.id OPERATOR(pg_catalog.>) COALESCE((SELECT w.alert_id FROM credit_risk.alert_watermark w), 0)
   AND NOT EXISTS (SELECT 1 FROM credit_risk.alert_deliveries d
                    WHERE d.alert_id OPERATOR(pg_catalog.=) a.id
                      AND d.channel_id OPERATOR(pg_catalog.=) c.id);

-- The body credit_risk_alertd posts for an alert to a channel.
CREATE FUNCTION credit_risk.cr_alert_payload(alert_id bigint, channel_id integer)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT CASE c.kind
       WHEN 'slack' THEN
           pg_catalog.jsonb_build_object('text',
               pg_catalog.format('[%s] %s (credit_risk, database %s, run %s)',
                                 pg_catalog.upper(a.severity), a.message,
                                 pg_catalog.current_database(), a.run_id))
       WHEN 'pagerduty' THEN
           pg_catalog.jsonb_build_object(
               'routing_key', c.routing_key,
               'event_action', 'trigger',
               'dedup_key', pg_catalog.format('credit_risk:%s:%s', pg_catalog.current_database(), a.id),
               'payload', pg_catalog.jsonb_build_object(
                   'summary', pg_catalog.left(a.message, 1024),
                   'source', pg_catalog.format('credit_risk on database %s', pg_catalog.current_database()),
                   'severity', a.severity,
                   'timestamp', pg_catalog.to_char(a.raised_at AT TIME ZONE 'UTC',
                                                   'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                   'component', a.model_name,
                   'group', r.model_version,
                   'class', a.metric,
                   'custom_details', pg_catalog.jsonb_build_object(
                       'rule', a.rule_name, 'value', a.value, 'comparison', a.comparison,
                       'threshold', a.threshold, 'run_id', a.run_id, 'alert_id', a.id)))
       ELSE
           pg_catalog.jsonb_build_object(
               'alert_id', a.id, 'raised_at', a.raised_at, 'database', pg_catalog.current_database(),
               'rule', a.rule_name, 'model', a.model_name, 'model_version', r.model_version,
               'metric', a.metric, 'value', a.value, 'comparison', a.comparison,
               'threshold', a.threshold, 'severity', a.severity, 'message', a.message,
               'run_id', a.run_id)
       END
  FROM credit_risk.alerts a
  JOIN credit_risk.monitoring_runs r ON r.id = a.run_id
 CROSS JOIN credit_risk.alert_channels c
 WHERE a.id = cr_alert_payload.alert_id AND c.id = cr_alert_payload.channel_id
$$;

-- Roles ---------------------------------------------------------------------

-- The three roles of a credit team, created where missing (NOLOGIN: grant
-- them to login roles) and given exactly their part:
--   credit_risk_scorer    scores and explains, reads the registry and the
--                         serving statistics;
--   credit_risk_modeller  the scorer's part, and trains, tunes and imports
--                         new versions (candidates); cannot promote;
--   credit_risk_admin     reads the registry, promotes and routes, runs and
--                         schedules the pipeline and monitoring, owns the
--                         rules (alert, quality, reason codes) and the alert
--                         channels, and resets the serving statistics;
--                         cannot train.
-- Run by a role that may create roles and grant on the extension's objects
-- (its owner, or a superuser); running it again grants again.
CREATE FUNCTION credit_risk.cr_setup_roles()
RETURNS TABLE (role name, created boolean)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r name;
BEGIN
    FOREACH r IN ARRAY ARRAY['credit_risk_scorer', 'credit_risk_modeller', 'credit_risk_admin']::name[]
    LOOP
        role := r;
        created := NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r);
        IF created THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_roles
                       WHERE rolname = r AND (rolsuper OR rolcreaterole OR rolcreatedb
                                              OR rolbypassrls OR rolreplication)) THEN
            RAISE WARNING 'role "%" already exists with attributes beyond its part', r
                USING DETAIL = 'It is a superuser, or may create roles or databases, bypass row security or replicate: the grants made here limit nothing.',
                      HINT = pg_catalog.format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOREPLICATION;', r);
        END IF;
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA credit_risk TO %I', r);
        EXECUTE pg_catalog.format('GRANT SELECT ON credit_risk.models, credit_risk.routes,
                                   credit_risk.serving_stats, credit_risk.progress TO %I', r);
        RETURN NEXT;
    END LOOP;

    GRANT SELECT ON credit_risk.tuning_runs, credit_risk.monitoring_runs, credit_risk.alerts
       TO credit_risk_modeller, credit_risk_admin;
    GRANT EXECUTE ON FUNCTION credit_risk.cr_train(text, text, text, text, text[], jsonb),
                              credit_risk.cr_tune(text, text, text, text, text[], jsonb, jsonb),
                              credit_risk.cr_import_xgboost(text, jsonb, text[], jsonb)
       TO credit_risk_modeller;

    GRANT EXECUTE ON FUNCTION credit_risk.cr_promote(text, integer),
                              credit_risk.cr_route(text, integer, float8),
                              credit_risk.cr_monitor(text, text, text),
                              credit_risk.cr_mirror(regclass, regclass, text[], text),
                              credit_risk.cr_run_pipeline_step(text),
                              credit_risk.cr_schedule_pipeline(),
                              credit_risk.cr_unschedule_pipeline(),
                              credit_risk.cr_reset_serving_stats()
       TO credit_risk_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON credit_risk.alert_rules, credit_risk.quality_rules,
                                            credit_risk.reason_codes, credit_risk.pipeline_steps
       TO credit_risk_admin;
    GRANT SELECT ON credit_risk.effective_alert_rules TO credit_risk_admin;
    GRANT SELECT, INSERT, UPDATE, DELETE ON credit_risk.alert_channels TO credit_risk_admin;
    GRANT SELECT ON credit_risk.alert_deliveries, credit_risk.alert_outbox TO credit_risk_admin;
    GRANT USAGE ON SEQUENCE credit_risk.alert_channels_id_seq TO credit_risk_admin;
    GRANT SELECT, INSERT, UPDATE ON credit_risk.monitoring_runs, credit_risk.mirror_state
       TO credit_risk_admin;
    GRANT SELECT, INSERT ON credit_risk.alerts, credit_risk.pipeline_runs, credit_risk.quarantine
       TO credit_risk_admin;
    GRANT USAGE ON SEQUENCE credit_risk.alert_rules_id_seq, credit_risk.quality_rules_id_seq,
                            credit_risk.monitoring_runs_id_seq, credit_risk.alerts_id_seq,
                            credit_risk.pipeline_runs_id_seq, credit_risk.quarantine_id_seq
       TO credit_risk_admin;
    -- scheduling goes through pg_cron, where it is installed
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'cron') THEN
        GRANT USAGE ON SCHEMA cron TO credit_risk_admin;
    END IF;
END;
$$;

REVOKE ALL ON FUNCTION credit_risk.cr_setup_roles() FROM PUBLIC;

-- The sums of one training pass over the rows it aggregates: what
-- cr_train with params.distributed asks each part of a source for (a
-- shard's foreign partition, a Citus worker's shards, a local table), and
-- adds up.  spec says what to sum and is written by cr_train; unit is
-- cr_split_unit of the row's key.  Not meant to be called by hand.
CREATE FUNCTION credit_risk.cr_train_partial_step(state bytea, spec bytea, features float8[],
                                                  label float8, unit float8)
RETURNS bytea
AS 'MODULE_PATHNAME', 'cr_train_partial_step'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_train_partial_combine(a bytea, b bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'cr_train_partial_combine'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE credit_risk.cr_train_partial(spec bytea, features float8[], label float8, unit float8) (
    SFUNC = credit_risk.cr_train_partial_step,
    STYPE = bytea,
    COMBINEFUNC = credit_risk.cr_train_partial_combine,
    PARALLEL = SAFE
);

-- A part's side of a distributed tree fit (cr_train with algorithm 'gbm'
-- and params.distributed): cr_gbm_shard_load bins the rows it aggregates
-- into this session's memory, with the cut points in spec; cr_gbm_shard
-- then moves them through each tree level's decisions and returns the
-- histograms the coordinator asks for.  The rows are freed by the run's
-- last message, the next load, or the end of the session.  Both are written
-- for cr_train's own connections; not meant to be called by hand.
CREATE FUNCTION credit_risk.cr_gbm_shard_load_step(state internal, spec bytea, features float8[],
                                                   label float8, unit float8)
RETURNS internal
AS 'MODULE_PATHNAME', 'cr_gbm_shard_load_step'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION credit_risk.cr_gbm_shard_load_final(state internal)
RETURNS bytea
AS 'MODULE_PATHNAME', 'cr_gbm_shard_load_final'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE AGGREGATE credit_risk.cr_gbm_shard_load(spec bytea, features float8[], label float8, unit float8) (
    SFUNC = credit_risk.cr_gbm_shard_load_step,
    STYPE = internal,
    FINALFUNC = credit_risk.cr_gbm_shard_load_final,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = UNSAFE
);

CREATE FUNCTION credit_risk.cr_gbm_shard(message bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'cr_gbm_shard'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

-- Publish the coordinator's registry and routes to every shard at once, or
-- to none: on each foreign server (postgres_fdw, the caller's user mapping,
-- which must reach the shard as its credit_risk owner), every version and
-- route in a transaction that is prepared, and committed only when every
-- shard has prepared and serves what the coordinator serves.  Not in a
-- transaction block: it publishes what the coordinator has committed.
CREATE FUNCTION credit_risk.cr_publish(servers text[])
RETURNS TABLE (server text, versions bigint, inserted bigint, updated bigint, committed boolean)
AS 'MODULE_PATHNAME', 'cr_publish'
LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION credit_risk.cr_publish(text[]) FROM PUBLIC;
