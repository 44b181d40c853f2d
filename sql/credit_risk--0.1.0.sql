-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION credit_risk" to load this file. \quit

-- The model registry: one row per trained version.  Rows are immutable
-- apart from status, which cr_promote manages.
CREATE TABLE credit_risk.models (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL
                    CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_.-]{0,62}$'),
    version         integer NOT NULL CHECK (version > 0),
    algorithm       text NOT NULL CHECK (algorithm IN ('logistic', 'gbm')),
    status          text NOT NULL DEFAULT 'candidate'
                    CHECK (status IN ('candidate', 'champion', 'challenger', 'retired')),
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by      name NOT NULL DEFAULT CURRENT_USER,
    source          text NOT NULL,
    label           text NOT NULL,
    features        text[] NOT NULL,
    params          jsonb NOT NULL DEFAULT '{}',
    metrics         jsonb NOT NULL DEFAULT '{}',
    importance      jsonb NOT NULL DEFAULT '{}',
    train_rows      bigint NOT NULL,
    holdout_rows    bigint NOT NULL,
    train_seconds   float8 NOT NULL,
    model           bytea NOT NULL,
    UNIQUE (name, version)
);

-- Model bytes are read on every first use in a backend: keep them
-- uncompressed (out of line), so reading needs no decompression.
ALTER TABLE credit_risk.models ALTER COLUMN model SET STORAGE EXTERNAL;

-- At most one champion per name.
CREATE UNIQUE INDEX models_one_champion ON credit_risk.models (name)
    WHERE status = 'champion';

COMMENT ON TABLE credit_risk.models IS
    'credit_risk model registry: every trained version of every model';

SELECT pg_catalog.pg_extension_config_dump('credit_risk.models', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.models_id_seq', '');

-- Champion/challenger routing: a stable share of applicant keys goes to a
-- challenger version.  One route per name.
CREATE TABLE credit_risk.routes (
    name                text PRIMARY KEY,
    challenger_version  integer NOT NULL CHECK (challenger_version > 0),
    share               float8 NOT NULL CHECK (share >= 0 AND share <= 1),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_by          name NOT NULL DEFAULT CURRENT_USER
);

COMMENT ON TABLE credit_risk.routes IS
    'credit_risk champion/challenger routing: the share of applicant keys scored by a challenger';

SELECT pg_catalog.pg_extension_config_dump('credit_risk.routes', '');

-- Scoring keeps which version serves a name across statements; any change
-- to the registry or the routes tells every backend to look again (a
-- relcache invalidation of the table, seen by the next statement).  ALWAYS:
-- also when rows arrive by logical replication.
CREATE FUNCTION credit_risk.cr_registry_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'cr_registry_changed'
LANGUAGE C;

CREATE TRIGGER models_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_risk.models
    FOR EACH STATEMENT EXECUTE FUNCTION credit_risk.cr_registry_changed();
CREATE TRIGGER routes_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credit_risk.routes
    FOR EACH STATEMENT EXECUTE FUNCTION credit_risk.cr_registry_changed();
ALTER TABLE credit_risk.models ENABLE ALWAYS TRIGGER models_changed;
ALTER TABLE credit_risk.routes ENABLE ALWAYS TRIGGER routes_changed;

-- Training ------------------------------------------------------------------

CREATE FUNCTION credit_risk.cr_train(name text, source text, label text,
                                     algorithm text DEFAULT 'gbm',
                                     features text[] DEFAULT NULL,
                                     params jsonb DEFAULT '{}')
RETURNS credit_risk.models
AS 'MODULE_PATHNAME', 'cr_train'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
-- No SET search_path here: the source names the caller's tables and is
-- resolved with the caller's search_path.  The function's own statements
-- are schema-qualified throughout.

-- Registry ------------------------------------------------------------------

CREATE FUNCTION credit_risk.cr_promote(name text, version integer)
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

    -- serialise promotions of one name
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('credit_risk:' || name));

    SELECT * INTO target FROM credit_risk.models m
     WHERE m.name = cr_promote.name AND m.version = cr_promote.version
       FOR UPDATE;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM credit_risk.models m WHERE m.name = cr_promote.name) THEN
            RAISE EXCEPTION 'model "%" does not exist', name
                USING ERRCODE = 'undefined_object',
                      HINT = 'Train it first with credit_risk.cr_train().';
        END IF;
        RAISE EXCEPTION 'model "%" has no version %', name, version
            USING ERRCODE = 'undefined_object',
                  HINT = 'List versions with: SELECT version, status FROM credit_risk.models WHERE name = ''' || name || ''';';
    END IF;

    UPDATE credit_risk.models m SET status = 'retired'
     WHERE m.name = cr_promote.name AND m.status = 'champion'
       AND m.version <> cr_promote.version;

    UPDATE credit_risk.models m SET status = 'champion'
     WHERE m.id = target.id
    RETURNING * INTO target;

    RETURN target;
END;
$$;

-- The version that serves a name: its champion, else its newest version.
CREATE FUNCTION credit_risk.cr_serving_version(name text)
RETURNS credit_risk.models
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.* FROM credit_risk.models m
     WHERE m.name = cr_serving_version.name
     ORDER BY (m.status = 'champion') DESC, m.version DESC
     LIMIT 1
$$;

-- Send a stable share of applicants (by a hash of their key) to a
-- challenger version; share = 0 stops it.
CREATE FUNCTION credit_risk.cr_route(name text, challenger_version integer, share float8)
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

    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('credit_risk:' || name));

    SELECT * INTO target FROM credit_risk.models m
     WHERE m.name = cr_route.name AND m.version = cr_route.challenger_version;
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
     WHERE m.name = cr_route.name AND m.status = 'challenger'
       AND (m.version <> cr_route.challenger_version OR share = 0);
    IF share > 0 THEN
        UPDATE credit_risk.models m SET status = 'challenger' WHERE m.id = target.id;
    END IF;

    INSERT INTO credit_risk.routes AS r (name, challenger_version, share)
    VALUES (cr_route.name, cr_route.challenger_version, cr_route.share)
    ON CONFLICT ON CONSTRAINT routes_pkey DO UPDATE
       SET challenger_version = EXCLUDED.challenger_version, share = EXCLUDED.share,
           updated_at = pg_catalog.now(), updated_by = CURRENT_USER
    RETURNING * INTO result;
    RETURN result;
END;
$$;

CREATE FUNCTION credit_risk.cr_coefficients(name text, version integer DEFAULT NULL)
RETURNS TABLE (feature text, coefficient float8, std_error float8,
               z float8, p_value float8)
AS 'MODULE_PATHNAME', 'cr_coefficients'
LANGUAGE C STABLE PARALLEL SAFE;

-- Inspect model bytes without the registry (format version, algorithm,
-- features, checksum); validates the bytes like every other reader.
CREATE FUNCTION credit_risk.cr_model_info(model bytea)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cr_model_info'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- A tree model's nodes, as the bytes hold them (node numbers within a tree;
-- a row goes left when its value is below the threshold, a missing value
-- the default way; leaves have no feature).
CREATE FUNCTION credit_risk.cr_model_trees(model bytea)
RETURNS TABLE (tree integer, node integer, feature text, threshold float8,
               left_child integer, right_child integer, default_left boolean,
               value float8, cover float8)
AS 'MODULE_PATHNAME', 'cr_model_trees'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1000;

-- Scoring -------------------------------------------------------------------

CREATE FUNCTION credit_risk.cr_predict(name text, features float8[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cr_predict_array'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_predict(name text, applicant anyelement)
RETURNS float8
AS 'MODULE_PATHNAME', 'cr_predict_record'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_predict(name text, applicant jsonb)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cr_predict_jsonb'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_predict(model bytea, features float8[])
RETURNS float8
AS 'MODULE_PATHNAME', 'cr_predict_bytes_array'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_predict(model bytea, applicant anyelement)
RETURNS float8
AS 'MODULE_PATHNAME', 'cr_predict_bytes_record'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION credit_risk.cr_predict_batch(name text, source text, key text DEFAULT NULL)
RETURNS TABLE (key text, default_probability float8, risk_category text,
               score integer, model_version text)
AS 'MODULE_PATHNAME', 'cr_predict_batch'
LANGUAGE C STABLE PARALLEL SAFE;

-- Monitoring ----------------------------------------------------------------

-- Population stability of a source against the serving version's training
-- baselines: one row per feature, then '__score__'.
CREATE FUNCTION credit_risk.cr_drift_score(name text, source text)
RETURNS TABLE (feature text, psi float8, ks float8, severity text)
AS 'MODULE_PATHNAME', 'cr_drift_score'
LANGUAGE C STABLE PARALLEL SAFE;

-- The holdout metric set of a version (default: the serving one) on any
-- labelled rows: how the model does on recent outcomes.
CREATE FUNCTION credit_risk.cr_evaluate(name text, source text, label text,
                                        version integer DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'cr_evaluate'
LANGUAGE C STABLE PARALLEL SAFE;

-- The stored baseline bins of the serving version.
CREATE FUNCTION credit_risk.cr_drift_baseline(name text)
RETURNS TABLE (feature text, bucket integer, is_missing boolean,
               lower_bound float8, upper_bound float8, share float8)
AS 'MODULE_PATHNAME', 'cr_drift_baseline'
LANGUAGE C STABLE PARALLEL SAFE;

-- Alert rules, monitoring runs, alerts ---------------------------------------

-- Rules that cr_monitor checks.  The three built-in rules come with the
-- extension; a DBA's changes to them are kept as rows of their own (an
-- UPDATE or DELETE of a built-in rule writes an overriding row with the
-- same name instead), so that pg_dump keeps exactly the DBA's rows and a
-- restore, which recreates the built-ins, loses nothing.
CREATE TABLE credit_risk.alert_rules (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    metric      text NOT NULL CHECK (metric IN ('max_feature_psi', 'score_psi', 'auc', 'ks',
                                                'gini', 'log_loss', 'brier', 'base_rate',
                                                'p95_latency_ms')),
    comparison  text NOT NULL CHECK (comparison IN ('>', '>=', '<', '<=')),
    threshold   float8 NOT NULL,
    severity    text NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    model_name  text,                       -- NULL: every model
    enabled     boolean NOT NULL DEFAULT true,
    builtin     boolean NOT NULL DEFAULT false
);

INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity, builtin) VALUES
    ('data_drift_detected', 'max_feature_psi', '>', 0.15, 'warning', true),
    ('model_performance_degradation', 'auc', '<', 0.75, 'critical', true),
    ('high_api_latency', 'p95_latency_ms', '>', 200, 'warning', true);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_rules', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alert_rules_id_seq', '');

CREATE FUNCTION credit_risk.alert_rules_keep_builtin()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity,
                                             model_name, enabled, builtin)
        VALUES (NEW.name, NEW.metric, NEW.comparison, NEW.threshold, NEW.severity,
                NEW.model_name, NEW.enabled, false);
    ELSE
        INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity,
                                             model_name, enabled, builtin)
        VALUES (OLD.name, OLD.metric, OLD.comparison, OLD.threshold, OLD.severity,
                OLD.model_name, false, false);
    END IF;
    RETURN NULL;        -- the built-in row itself stays as shipped
END;
$$;

CREATE TRIGGER alert_rules_keep_builtin
    BEFORE UPDATE OR DELETE ON credit_risk.alert_rules
    FOR EACH ROW WHEN (OLD.builtin)
    EXECUTE FUNCTION credit_risk.alert_rules_keep_builtin();

-- The rules in force: for each name, the DBA's row if there is one.
CREATE VIEW credit_risk.effective_alert_rules AS
SELECT DISTINCT ON (name) id, name, metric, comparison, threshold, severity,
       model_name, enabled, builtin
  FROM credit_risk.alert_rules
 ORDER BY name, builtin, id DESC;

CREATE TABLE credit_risk.monitoring_runs (
    id                bigserial PRIMARY KEY,
    model_name        text NOT NULL,
    model_version     text NOT NULL,
    run_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
    run_by            name NOT NULL DEFAULT CURRENT_USER,
    source            text NOT NULL,
    rows              bigint NOT NULL,
    feature_psi       jsonb NOT NULL,       -- feature -> PSI
    max_feature_psi   float8 NOT NULL,
    score_psi         float8 NOT NULL,
    metrics           jsonb,                -- cr_evaluate's, when labels were given
    mean_pd           float8 NOT NULL,
    pd_deciles        float8[] NOT NULL,    -- 10th .. 90th percentile of the PD
    category_shares   jsonb NOT NULL,       -- risk category -> share of applicants
    p95_latency_ms    float8,               -- NULL when it cannot be measured
    unevaluated       jsonb NOT NULL DEFAULT '{}',  -- rule -> why it could not be checked
    alerts            integer NOT NULL DEFAULT 0
);

CREATE TABLE credit_risk.alerts (
    id          bigserial PRIMARY KEY,
    run_id      bigint NOT NULL REFERENCES credit_risk.monitoring_runs ON DELETE CASCADE,
    raised_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    rule_name   text NOT NULL,
    model_name  text NOT NULL,
    metric      text NOT NULL,
    value       float8 NOT NULL,
    comparison  text NOT NULL,
    threshold   float8 NOT NULL,
    severity    text NOT NULL,
    message     text NOT NULL
);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.monitoring_runs', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.monitoring_runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.alerts_id_seq', '');

-- One monitoring run: drift, and performance where labels exist; one alert
-- per rule that fires, each also sent as NOTIFY credit_risk_alerts.
CREATE FUNCTION credit_risk.cr_monitor(name text, source text, label text DEFAULT NULL)
RETURNS credit_risk.monitoring_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    run credit_risk.monitoring_runs;
    r record;
    value float8;
    fired boolean;
    msg text;
    nalerts integer := 0;
    skipped jsonb := '{}';
    stats_ok boolean;
BEGIN
    IF name IS NULL OR source IS NULL THEN
        RAISE EXCEPTION 'model name and source must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;

    run.model_name := name;
    run.source := source;
    SELECT pg_catalog.jsonb_object_agg(d.feature, d.psi) FILTER (WHERE d.feature <> '__score__'),
           pg_catalog.max(d.psi) FILTER (WHERE d.feature <> '__score__'),
           pg_catalog.max(d.psi) FILTER (WHERE d.feature = '__score__')
      INTO run.feature_psi, run.max_feature_psi, run.score_psi
      FROM credit_risk.cr_drift_score(name, source) d;

    SELECT pg_catalog.count(*), pg_catalog.avg(b.default_probability),
           pg_catalog.percentile_cont(ARRAY[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
               WITHIN GROUP (ORDER BY b.default_probability),
           pg_catalog.min(b.model_version)
      INTO run.rows, run.mean_pd, run.pd_deciles, run.model_version
      FROM credit_risk.cr_predict_batch(name, source) b;
    SELECT pg_catalog.jsonb_object_agg(c.risk_category, c.n::float8 / run.rows)
      INTO run.category_shares
      FROM (SELECT b.risk_category, pg_catalog.count(*) AS n
              FROM credit_risk.cr_predict_batch(name, source) b GROUP BY 1) c;

    IF label IS NOT NULL THEN
        run.metrics := credit_risk.cr_evaluate(name, source, label);
    END IF;

    -- scoring latency from pg_stat_statements (mean + 1.645 sd, a normal
    -- approximation: it keeps no percentiles), when it is installed
    SELECT pg_catalog.count(*) > 0 INTO stats_ok
      FROM pg_catalog.pg_extension WHERE extname = 'pg_stat_statements';
    IF stats_ok THEN
        EXECUTE $q$SELECT pg_catalog.sum(calls * (mean_exec_time + 1.645 * stddev_exec_time))
                          / pg_catalog.nullif(pg_catalog.sum(calls), 0)
                     FROM pg_stat_statements WHERE query LIKE '%cr_predict%'
                      AND query NOT LIKE '%cr_monitor%'$q$
           INTO run.p95_latency_ms;
    END IF;

    run.run_at := pg_catalog.now();
    run.run_by := CURRENT_USER;
    INSERT INTO credit_risk.monitoring_runs (model_name, model_version, run_at, run_by, source,
                                             rows, feature_psi, max_feature_psi, score_psi,
                                             metrics, mean_pd, pd_deciles, category_shares,
                                             p95_latency_ms)
    VALUES (run.model_name, run.model_version, run.run_at, run.run_by, run.source,
            run.rows, run.feature_psi, run.max_feature_psi, run.score_psi,
            run.metrics, run.mean_pd, run.pd_deciles, run.category_shares,
            run.p95_latency_ms)
    RETURNING id INTO run.id;

    FOR r IN SELECT * FROM credit_risk.effective_alert_rules e
              WHERE e.enabled AND (e.model_name IS NULL OR e.model_name = cr_monitor.name)
              ORDER BY e.name
    LOOP
        value := CASE r.metric
                     WHEN 'max_feature_psi' THEN run.max_feature_psi
                     WHEN 'score_psi' THEN run.score_psi
                     WHEN 'p95_latency_ms' THEN run.p95_latency_ms
                     ELSE (run.metrics ->> r.metric)::float8
                 END;
        IF value IS NULL THEN
            skipped := skipped || pg_catalog.jsonb_build_object(r.name,
                CASE WHEN r.metric = 'p95_latency_ms' AND NOT stats_ok
                     THEN 'pg_stat_statements is not installed'
                     WHEN r.metric = 'p95_latency_ms'
                     THEN 'no cr_predict calls in pg_stat_statements'
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
    RETURN run;
END;
$$;

-- The book by monitoring run: per model version and day, the share of
-- applicants in each risk category and the mean PD.
CREATE VIEW credit_risk.portfolio_summary AS
SELECT r.model_name, r.model_version, (r.run_at AT TIME ZONE 'UTC')::date AS day,
       c.key AS risk_category, pg_catalog.avg(c.value::text::float8) AS share,
       pg_catalog.avg(r.mean_pd) AS mean_pd, pg_catalog.count(DISTINCT r.id) AS runs
  FROM credit_risk.monitoring_runs r, pg_catalog.jsonb_each(r.category_shares) c
 GROUP BY 1, 2, 3, 4;

-- Pipeline -----------------------------------------------------------------

CREATE TABLE credit_risk.pipeline_runs (
    id             bigserial PRIMARY KEY,
    job            text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    status         text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped')),
    rows_in        bigint,
    rows_rejected  bigint,
    detail         jsonb NOT NULL DEFAULT '{}'
);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.pipeline_runs', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.pipeline_runs_id_seq', '');

-- Where each mirrored source got to.  Sources are kept by name (OIDs do not
-- survive a dump and restore).
CREATE TABLE credit_risk.mirror_state (
    source          text PRIMARY KEY,
    target          text NOT NULL,
    watermark       text,                  -- column, or NULL for full comparison
    last_watermark  text,                  -- its largest value mirrored so far
    last_run        timestamptz NOT NULL
);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.mirror_state', '');

-- Data-quality gates for mirrored tables.  Row rules (not_null, range,
-- allowed) send breaking rows to quarantine instead of the target; table
-- rules (min_rows, max_null_share, unique, schema) fail the run and leave
-- the target untouched.
CREATE TABLE credit_risk.quality_rules (
    id           serial PRIMARY KEY,
    target       text NOT NULL,              -- the mirrored table, as cr_mirror's target names it
    column_name  text,
    rule         text NOT NULL CHECK (rule IN ('not_null', 'range', 'allowed',
                                               'min_rows', 'max_null_share', 'unique', 'schema')),
    args         jsonb NOT NULL DEFAULT '{}',
    enabled      boolean NOT NULL DEFAULT true,
    CHECK (rule IN ('min_rows', 'schema') OR column_name IS NOT NULL)
);

CREATE TABLE credit_risk.quarantine (
    id           bigserial PRIMARY KEY,
    target       text NOT NULL,
    row_data     jsonb NOT NULL,
    rule_id      integer NOT NULL,
    rule         text NOT NULL,
    quarantined_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.quality_rules', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.quality_rules_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('credit_risk.quarantine_id_seq', '');

-- Copy new and changed rows of a relation (a foreign table over a warehouse
-- extract, say) into a local table: rows past the last watermark, upserted
-- by key with MERGE, in the caller's transaction.
CREATE FUNCTION credit_risk.cr_mirror(source regclass, target regclass, key text[],
                                      watermark text DEFAULT NULL)
RETURNS TABLE (rows_read bigint, inserted bigint, updated bigint, rejected bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
-- the watermark is kept as text: write and read it in one unambiguous style
SET datestyle = 'ISO, YMD'
SET intervalstyle = 'iso_8601'
SET extra_float_digits = 1
AS $$
DECLARE
    src text := source::text;
    tgt text := target::text;
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
        src,
        CASE WHEN watermark IS NOT NULL AND last IS NOT NULL
             THEN pg_catalog.format('WHERE s.%I > %L::%s', watermark, last, wm_type) ELSE '' END,
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM unnest(key) c),
        CASE WHEN watermark IS NOT NULL
             THEN ', ' || pg_catalog.quote_ident(watermark) || ' DESC' ELSE '' END);
    EXECUTE 'SELECT count(*) FROM pg_temp.cr_mirror_stage' INTO n_read;
    IF watermark IS NULL THEN
        -- without a watermark, two rows for one key leave no way to choose
        EXECUTE pg_catalog.format('SELECT count(*) FROM %s s', src) INTO n_new;
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

    EXECUTE pg_catalog.format('SELECT count(*) FROM pg_temp.cr_mirror_stage s
                                WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE %s)', tgt, on_keys)
       INTO n_new;
    EXECUTE pg_catalog.format(
        'MERGE INTO %s t USING pg_temp.cr_mirror_stage s ON %s
         %s
         WHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)',
        tgt, on_keys,
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
    RETURN NEXT;
END;
$$;

-- The daily and weekly pipeline: what each step runs (configured by the
-- DBA), a runner that logs every step and skips one whose predecessor has
-- not succeeded today, and the pg_cron schedule.
CREATE TABLE credit_risk.pipeline_steps (
    step     text PRIMARY KEY CHECK (step IN ('ingestion', 'features', 'training', 'monitoring')),
    command  text NOT NULL,
    enabled  boolean NOT NULL DEFAULT true
);

SELECT pg_catalog.pg_extension_config_dump('credit_risk.pipeline_steps', '');

CREATE FUNCTION credit_risk.cr_run_pipeline_step(step text)
RETURNS credit_risk.pipeline_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    run credit_risk.pipeline_runs;
    cmd text;
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
    SELECT s.command INTO cmd FROM credit_risk.pipeline_steps s
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
            EXECUTE cmd;
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
            detail || pg_catalog.jsonb_build_object('command', cmd))
    RETURNING * INTO run;
    RETURN run;
END;
$$;

-- The four pg_cron jobs (UTC): ingestion 02:00, features 04:00 and
-- monitoring 06:00 daily, training Sunday 01:00.  Calling it again updates
-- them.  Nothing is scheduled when the extension is installed.
CREATE FUNCTION credit_risk.cr_schedule_pipeline()
RETURNS TABLE (jobname text, schedule text, command text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
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

CREATE FUNCTION credit_risk.cr_unschedule_pipeline()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
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

-- Whether cr_train(..., params {key, seed, holdout}) puts the row with this
-- key in the holdout: the same hash as training.
CREATE FUNCTION credit_risk.cr_in_holdout(key anyelement, seed bigint, holdout float8)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cr_in_holdout'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Register if better: train a candidate, score it and the current champion
-- on the candidate's holdout rows (the same rows), and promote the candidate
-- only if its AUC beats the champion's by at least params.min_gain.
CREATE FUNCTION credit_risk.cr_retrain(name text, source text, label text,
                                       algorithm text DEFAULT 'gbm',
                                       params jsonb DEFAULT '{}')
RETURNS credit_risk.pipeline_runs
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    run credit_risk.pipeline_runs;
    cand credit_risk.models;
    champ credit_risk.models;
    train_params jsonb := COALESCE(params, '{}') - 'min_gain';
    min_gain float8 := COALESCE((params ->> 'min_gain')::float8, 0);
    started timestamptz := pg_catalog.clock_timestamp();
    query text;
    holdout_source text;
    cand_auc float8;
    champ_auc float8;
    promote boolean;
BEGIN
    IF train_params ->> 'key' IS NULL THEN
        RAISE EXCEPTION 'cr_retrain needs params.key'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the applicant key column, so the candidate and the champion are compared on the same holdout rows.';
    END IF;
    IF COALESCE((train_params ->> 'holdout')::float8, 0.2) = 0 THEN
        RAISE EXCEPTION 'cr_retrain needs a holdout'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT * INTO champ FROM credit_risk.models m
     WHERE m.name = cr_retrain.name AND m.status = 'champion';

    cand := credit_risk.cr_train(name, source, label, algorithm, NULL, train_params);

    query := CASE WHEN source ~* '^[[:space:](]*(select|with|values|table)[[:space:](]'
                  THEN source ELSE 'SELECT * FROM ' || source END;
    holdout_source := pg_catalog.format(
        'SELECT * FROM (%s) AS cr_retrain_source WHERE credit_risk.cr_in_holdout(%I, %s, %s)',
        query, train_params ->> 'key', cand.params ->> 'seed', cand.params ->> 'holdout');
    cand_auc := (credit_risk.cr_evaluate(name, holdout_source, label, cand.version) ->> 'auc')::float8;
    IF champ.id IS NOT NULL THEN
        champ_auc := (credit_risk.cr_evaluate(name, holdout_source, label, champ.version) ->> 'auc')::float8;
    END IF;
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
                'holdout_rows', cand.holdout_rows))
    RETURNING * INTO run;
    RETURN run;
END;
$$;

-- Training writes the registry: not for every role.
REVOKE ALL ON FUNCTION credit_risk.cr_train(text, text, text, text, text[], jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_promote(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_route(text, integer, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_monitor(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_retrain(text, text, text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_mirror(regclass, regclass, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_run_pipeline_step(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_schedule_pipeline() FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_unschedule_pipeline() FROM PUBLIC;
