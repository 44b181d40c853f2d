-- Continuous table for the benchmarks: :rows rows with an id, 20 float8
-- features x1 .. x20 that are independent standard normals (every value
-- distinct, no NULLs: what incomes, balances and ratios look like to a
-- histogram), and a default flag y drawn from a logistic model of five of
-- them, with one interaction and one threshold:
--
--   logit = -1.2 + 0.8 x1 - 0.6 x2 + 0.5 x3 x4 + 0.9 [x5 > 1] + 0.3 x6
--
-- x7 .. x20 are noise.  Every random number is a hash of (id, stream), so
-- the same :rows give the same table on every run.  Rows with id % 5 = 0
-- (20%) are the holdout where a benchmark wants one.
--
-- psql -v rows=100000 -v schema=credit_risk_bench_tune -f bench/synthetic_continuous.sql

\set ON_ERROR_STOP on
SET search_path = :"schema";
DROP TABLE IF EXISTS continuous;

-- a uniform (0, 1) draw for stream s of row i: 52 bits of a seeded hash
CREATE FUNCTION pg_temp.u(i bigint, s bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (((pg_catalog.hashint8extended(i, s) & 4503599627370495) + 0.5) / 4503599627370496.0)::float8;

-- a standard normal for stream pair (s, s + 100) of row i (Box-Muller)
CREATE FUNCTION pg_temp.z(i bigint, s bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN sqrt(-2 * ln(pg_temp.u(i, s))) * cos(2 * pi() * pg_temp.u(i, s + 100));

CREATE TABLE continuous AS
WITH x AS (
    SELECT i,
           pg_temp.z(i, 1) AS x1,   pg_temp.z(i, 2) AS x2,   pg_temp.z(i, 3) AS x3,
           pg_temp.z(i, 4) AS x4,   pg_temp.z(i, 5) AS x5,   pg_temp.z(i, 6) AS x6,
           pg_temp.z(i, 7) AS x7,   pg_temp.z(i, 8) AS x8,   pg_temp.z(i, 9) AS x9,
           pg_temp.z(i, 10) AS x10, pg_temp.z(i, 11) AS x11, pg_temp.z(i, 12) AS x12,
           pg_temp.z(i, 13) AS x13, pg_temp.z(i, 14) AS x14, pg_temp.z(i, 15) AS x15,
           pg_temp.z(i, 16) AS x16, pg_temp.z(i, 17) AS x17, pg_temp.z(i, 18) AS x18,
           pg_temp.z(i, 19) AS x19, pg_temp.z(i, 20) AS x20,
           pg_temp.u(i, 50) AS draw
      FROM generate_series(1, :rows::bigint) AS i
)
SELECT i AS id, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15,
       x16, x17, x18, x19, x20,
       (draw < 1 / (1 + exp(-(-1.2 + 0.8 * x1 - 0.6 * x2 + 0.5 * x3 * x4
                              + 0.9 * (x5 > 1)::int + 0.3 * x6))))::int AS y
  FROM x
 ORDER BY i;

VACUUM ANALYZE continuous;
