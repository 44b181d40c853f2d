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

-- Training writes the registry: not for every role.
REVOKE ALL ON FUNCTION credit_risk.cr_train(text, text, text, text, text[], jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_promote(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION credit_risk.cr_route(text, integer, float8) FROM PUBLIC;
