-- Synthetic credit table for bench/train_logistic.sh: :rows applicants,
-- 20 numeric features of different kinds and scales, and a default flag
-- drawn from a known logistic model of them.  setseed() fixes random(), and
-- the build runs in one backend (random() is parallel restricted), so the
-- same :rows give the same table every time.
--
-- psql -v rows=1000000 -v schema=credit_risk_bench -f bench/synthetic_credit.sql

\set ON_ERROR_STOP on
SET search_path = :"schema";
DROP TABLE IF EXISTS credit;
SELECT pg_catalog.setseed(0.20240601) \gset

CREATE TABLE credit AS
WITH u AS (
    SELECT i,
           random() AS u1,  random() AS u2,  random() AS u3,  random() AS u4,
           random() AS u5,  random() AS u6,  random() AS u7,  random() AS u8,
           random() AS u9,  random() AS u10, random() AS u11, random() AS u12,
           random() AS u13, random() AS u14, random() AS u15, random() AS u16,
           random() AS u17, random() AS u18, random() AS u19, random() AS u20,
           random() AS u21, random() AS u22
      FROM generate_series(1, :rows) AS i
), x AS (
    SELECT i, u22,
           -- normals by Box-Muller from (u1, u2) and (u3, u4)
           pg_catalog.round(pg_catalog.exp(10.6 + 0.45 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2)))::float8 AS x1,   -- income
           pg_catalog.round(u5::numeric, 4)::float8                         AS x2,   -- utilization
           floor(12 * u6)::float8                                           AS x3,   -- open accounts
           (u7 < 0.35)::int::float8                                         AS x4,   -- mortgage flag
           (18 + floor(62 * u8))::float8                                    AS x5,   -- age
           pg_catalog.round((0.3 + 0.12 * sqrt(-2 * ln(1 - u1)) * sin(2 * pi() * u2))::numeric, 4)::float8 AS x6,  -- debt to income
           floor(-ln(1 - u9) * 1.5)::float8                                 AS x7,   -- delinquencies (geometric)
           floor(240 * u10)::float8                                         AS x8,   -- months at address
           pg_catalog.round((5000 * u11 * u11)::numeric, 2)::float8        AS x9,   -- revolving balance
           (u12 < 0.1)::int::float8                                         AS x10,  -- prior bankruptcy
           floor(6 * u13)::float8                                           AS x11,  -- inquiries, 6 months
           pg_catalog.round((650 + 60 * sqrt(-2 * ln(1 - u3)) * cos(2 * pi() * u4))::numeric)::float8 AS x12, -- bureau score
           pg_catalog.round((sqrt(-2 * ln(1 - u3)) * sin(2 * pi() * u4))::numeric, 6)::float8 AS x13, -- macro index
           (u14 < 0.5)::int::float8                                         AS x14,  -- owns car
           floor(40 * u15)::float8                                          AS x15,  -- years employed
           pg_catalog.round((u16 * 0.25)::numeric, 5)::float8               AS x16,  -- interest rate
           floor(1 + 59 * u17)::float8                                      AS x17,  -- term, months
           pg_catalog.round((1000 + 49000 * u18)::numeric, 0)::float8       AS x18,  -- loan amount
           floor(5 * u19)::float8                                           AS x19,  -- dependents
           pg_catalog.round(u20::numeric, 3)::float8                        AS x20   -- channel score
      FROM u
)
SELECT x1, x2, x3, x4, x5, x6, x7, x8, x9, x10,
       x11, x12, x13, x14, x15, x16, x17, x18, x19, x20,
       (u22 < 1 / (1 + exp(-(-2.7
            - 0.00002 * (x1 - 40000) + 1.8 * x2 + 0.06 * x3 - 0.4 * x4
            - 0.02 * (x5 - 40) + 2.0 * (x6 - 0.3) + 0.35 * x7 - 0.001 * x8
            + 0.0001 * x9 + 0.9 * x10 + 0.12 * x11 - 0.008 * (x12 - 650)
            + 0.25 * x13 - 0.15 * x14 - 0.015 * x15 + 3.0 * x16
            + 0.01 * x17 + 0.000005 * x18 + 0.05 * x19 - 0.3 * x20))))::int AS y
  FROM x
 ORDER BY i;

VACUUM ANALYZE credit;
