-- Synthetic credit table for bench/train_gbm.sh: :rows applicants with an id,
-- 20 float8 features and a default flag drawn from a known NON-LINEAR model
-- of them: a threshold in utilization that is much worse with a short credit
-- history, a U-shape in age, steps in the bureau score, a threshold in
-- debt-to-income, many inquiries hurting only on a low income, and missing
-- values that carry information of their own.  Four features are NULL for
-- about 5% of the rows; seven are pure noise or nearly so.
--
-- Every random number is a hash of (id, stream), not random(): the same
-- :rows give the same table on every run, whatever the plan.  Rows with
-- id % 5 = 0 (20%) are the holdout.
--
-- psql -v rows=1000000 -v schema=credit_risk_bench_gbm -f bench/synthetic_gbm.sql

\set ON_ERROR_STOP on
SET search_path = :"schema";
DROP TABLE IF EXISTS credit_gbm;

-- a uniform [0, 1) draw for stream s of row i: 52 bits of a seeded hash
CREATE FUNCTION pg_temp.u(i bigint, s bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ((pg_catalog.hashint8extended(i, s) & 4503599627370495) / 4503599627370496.0)::float8;

CREATE TABLE credit_gbm AS
WITH u AS (
    SELECT i,
           pg_temp.u(i, 1) AS u1,   pg_temp.u(i, 2) AS u2,   pg_temp.u(i, 3) AS u3,
           pg_temp.u(i, 4) AS u4,   pg_temp.u(i, 5) AS u5,   pg_temp.u(i, 6) AS u6,
           pg_temp.u(i, 7) AS u7,   pg_temp.u(i, 8) AS u8,   pg_temp.u(i, 9) AS u9,
           pg_temp.u(i, 10) AS u10, pg_temp.u(i, 11) AS u11, pg_temp.u(i, 12) AS u12,
           pg_temp.u(i, 13) AS u13, pg_temp.u(i, 14) AS u14, pg_temp.u(i, 15) AS u15,
           pg_temp.u(i, 16) AS u16, pg_temp.u(i, 17) AS u17, pg_temp.u(i, 18) AS u18,
           pg_temp.u(i, 19) AS u19, pg_temp.u(i, 20) AS u20, pg_temp.u(i, 21) AS u21,
           pg_temp.u(i, 22) AS u22, pg_temp.u(i, 23) AS u23, pg_temp.u(i, 24) AS u24,
           pg_temp.u(i, 25) AS u25, pg_temp.u(i, 26) AS u26
      FROM generate_series(1, :rows::bigint) AS i
), n AS (
    -- three pairs of independent standard normals (Box-Muller)
    SELECT u.*,
           sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2) AS z1,
           sqrt(-2 * ln(1 - u1)) * sin(2 * pi() * u2) AS z2,
           sqrt(-2 * ln(1 - u3)) * cos(2 * pi() * u4) AS z3,
           sqrt(-2 * ln(1 - u3)) * sin(2 * pi() * u4) AS z4,
           sqrt(-2 * ln(1 - u5)) * cos(2 * pi() * u6) AS z5,
           (18 + floor(62 * u7))::float8 AS age
      FROM u
), x AS (
    SELECT i, u26, age,
           round(exp(10.6 + 0.5 * z1))::float8                                           AS income,
           CASE WHEN u21 < 0.05 THEN NULL ELSE round((1.1 * u8)::numeric, 4)::float8 END AS utilization,
           least(floor(-ln(1 - u9) * 8), age - 18)::float8                                AS history_years,
           CASE WHEN u22 < 0.05 THEN NULL
                ELSE greatest(300, least(850, round(660 + 70 * z2)))::float8 END           AS bureau_score,
           CASE WHEN u23 < 0.05 THEN NULL
                ELSE round(greatest(0, 0.3 + 0.12 * z3)::numeric, 4)::float8 END            AS debt_to_income,
           floor(-ln(1 - u10) * 0.8)::float8                                              AS delinquencies,
           floor(240 * u11)::float8                                                       AS months_at_address,
           round((8000 * u12 * u12)::numeric, 2)::float8                                  AS revolving_balance,
           (u13 < 0.06)::int::float8                                                      AS bankruptcy,
           floor(-ln(1 - u14) * 1.2)::float8                                              AS inquiries_6m,
           round(z4::numeric, 6)::float8                                                  AS macro_index,
           (u15 < 0.5)::int::float8                                                       AS owns_car,
           CASE WHEN u24 < 0.05 THEN NULL ELSE least(floor(40 * u16), age - 18) END::float8 AS years_employed,
           round((0.03 + 0.2 * u17)::numeric, 5)::float8                                  AS interest_rate,
           (12 * (1 + floor(5 * u18)))::float8                                            AS term_months,
           round(1000 + 49000 * u19)::float8                                              AS loan_amount,
           floor(5 * u20)::float8                                                         AS dependents,
           round(u25::numeric, 3)::float8                                                 AS channel_score,
           round(z5::numeric, 6)::float8                                                  AS noise
      FROM n
)
SELECT i AS id,
       income, utilization, history_years, age, bureau_score, debt_to_income,
       delinquencies, months_at_address, revolving_balance, bankruptcy,
       inquiries_6m, macro_index, owns_car, years_employed, interest_rate,
       term_months, loan_amount, dependents, channel_score, noise,
       (u26 < 1 / (1 + exp(-(-4.0
            + CASE WHEN utilization IS NULL THEN 0.4
                   WHEN utilization > 0.8 AND history_years < 3 THEN 2.2
                   WHEN utilization > 0.8 THEN 0.7
                   ELSE 0 END
            + 0.6 * ((age - 45) / 18) ^ 2
            + CASE WHEN bureau_score IS NULL THEN 0.7
                   WHEN bureau_score < 580 THEN 1.3
                   WHEN bureau_score < 660 THEN 0.5
                   WHEN bureau_score >= 740 THEN -0.7
                   ELSE 0 END
            + CASE WHEN debt_to_income > 0.45 THEN 0.8 ELSE 0 END
            + 0.4 * least(delinquencies, 3)
            + 0.8 * bankruptcy
            + CASE WHEN inquiries_6m >= 3 AND income < 30000 THEN 1.0 ELSE 0 END
            - 0.35 * ln(income / 40000)
            + 0.3 * tanh(macro_index)
            + 4.0 * (interest_rate - 0.13)
            + CASE WHEN term_months >= 48 THEN 0.3 ELSE 0 END
            - 0.02 * least(coalesce(years_employed, 0), 10)))))::int AS y
  FROM x
 ORDER BY i;

VACUUM ANALYZE credit_gbm;
