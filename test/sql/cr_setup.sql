-- Install the extension and load the data the other tests use.
CREATE EXTENSION credit_risk;

-- The registry table and its sequence are dumped by pg_dump.
SELECT c.relname
  FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid
 WHERE e.extname = 'credit_risk'
 ORDER BY 1;

-- The SQL interface: names, arguments, volatility, parallel safety.
SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS args,
       p.provolatile, p.proparallel, p.proisstrict
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'credit_risk'
 ORDER BY 1, 2;

-- German credit data (UCI Statlog), encoded in test/data/german.sql.
\set ECHO none
SET client_min_messages = warning;
\i test/data/german.sql
RESET client_min_messages;
\set ECHO all
SELECT count(*) AS applicants, sum(bad) AS bad, count(DISTINCT applicant_id) AS ids
  FROM german_credit;

-- Synthetic applicants with a known logistic default mechanism:
-- logit = -1 + 0.8 x1 - 0.5 x2 + 0.03 (income - 50)
SELECT setseed(0.42);
CREATE TABLE synth AS
SELECT i AS id,
       x1, x2, income,
       (random() < 1 / (1 + exp(-(-1 + 0.8 * x1 - 0.5 * x2 + 0.03 * (income - 50)))))::int AS y
  FROM (SELECT i,
               sqrt(-2 * ln(random())) * cos(2 * pi() * random()) AS x1,
               (random() * 4)::int::float8 AS x2,
               50 + 20 * sqrt(-2 * ln(random())) * cos(2 * pi() * random()) AS income
          FROM generate_series(1, 20000) AS i) s;
SELECT count(*), round(avg(y), 2) AS default_rate FROM synth;

-- Runs a statement and reports its SQLSTATE and message, so tests can
-- assert the error code as well as the text.
CREATE FUNCTION expect_error(sql text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
