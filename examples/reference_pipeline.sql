-- A reference credit pipeline: raw tables as a bank's warehouse extracts
-- would have them, a generator with a known default mechanism, and the
-- feature SQL that turns them into one row per customer.
--
--   psql -v customers=100000 -f examples/reference_pipeline.sql
--
-- Tables, in schema ref:
--   customers(customer_id, age, income, employment_years, education, applied_on)
--   accounts(account_id, customer_id, opened_on, credit_limit, balance)
--   payments(account_id, month, due, paid, days_late)
--   inquiries(customer_id, inquired_on)
--   macro(month, interest_rate, unemployment_rate, gdp_growth)
--   outcomes(customer_id, defaulted)
-- and the materialized view ref.features, one row per customer, which
-- `REFRESH MATERIALIZED VIEW ref.features` rebuilds from the raw tables
-- (the pipeline's feature step).
--
-- The default mechanism: each customer has a latent risk r ~ N(0, 1); the
-- raw data are drawn from it (higher utilization, more late payments, more
-- inquiries, lower income and shorter employment with r), and
-- P(default) = 1 / (1 + exp(-(-2.3 + 1.9 r + 0.15 (unemployment - 5)))).
\set ON_ERROR_STOP 1
\if :{?customers}
\else
\set customers 100000
\endif
SET client_min_messages = warning;
SELECT setseed(0.2026) AS seeded \gset
DROP SCHEMA IF EXISTS ref CASCADE;
CREATE SCHEMA ref;

CREATE TABLE ref.macro AS
SELECT (date '2025-01-01' + (m || ' months')::interval)::date AS month,
       3.5 + 0.1 * m AS interest_rate,
       4.5 + 0.08 * m + 0.3 * sin(m) AS unemployment_rate,
       2.0 - 0.05 * m AS gdp_growth
  FROM generate_series(0, 23) m;

CREATE TEMP TABLE latent AS
SELECT i AS customer_id,
       sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS r,
       (date '2025-07-01' + (floor(random() * 365) || ' days')::interval)::date AS applied_on,
       (1 + floor(random() * 3))::int AS n_accounts
  FROM generate_series(1, :customers) i;

CREATE TABLE ref.customers AS
SELECT customer_id,
       greatest(18, least(85, round(42 - 4 * r + 11 * (random() - 0.5) * 2)))::int AS age,
       round(greatest(8000, 52000 * exp(-0.25 * r + 0.35 * (random() - 0.5))))::numeric AS income,
       greatest(0, round(8 - 2.5 * r + 6 * random()))::int AS employment_years,
       (1 + floor(random() * 4))::int AS education,
       applied_on
  FROM latent;

CREATE TABLE ref.accounts AS
SELECT row_number() OVER () AS account_id, l.customer_id,
       (l.applied_on - (floor(30 + random() * 2000) || ' days')::interval)::date AS opened_on,
       limit_amt AS credit_limit,
       round((limit_amt * least(1.0, greatest(0.0, 0.35 + 0.18 * l.r + 0.2 * (random() - 0.5))))::numeric) AS balance
  FROM latent l,
       LATERAL generate_series(1, l.n_accounts) a,
       LATERAL (SELECT round((2000 + random() * 18000)::numeric, -2) AS limit_amt) x;

CREATE TABLE ref.payments AS
SELECT a.account_id, (date_trunc('month', c.applied_on) - (k || ' months')::interval)::date AS month,
       round(a.balance * 0.05, 2) AS due,
       CASE WHEN late THEN round(a.balance * 0.02, 2) ELSE round(a.balance * 0.05, 2) END AS paid,
       CASE WHEN late THEN (15 + floor(random() * 60))::int ELSE 0 END AS days_late
  FROM ref.accounts a
  JOIN ref.customers c USING (customer_id)
  JOIN latent l USING (customer_id),
       LATERAL generate_series(1, 6) k,
       LATERAL (SELECT random() < 1 / (1 + exp(-(-3.0 + 1.2 * l.r))) AS late) p;

CREATE TABLE ref.inquiries AS
SELECT l.customer_id, (l.applied_on - (floor(random() * 180) || ' days')::interval)::date AS inquired_on
  FROM latent l, LATERAL generate_series(1, greatest(0, round(1 + 0.8 * l.r + random() * 1.5))::int) q;

CREATE TABLE ref.outcomes AS
SELECT l.customer_id,
       (random() < 1 / (1 + exp(-(-2.3 + 1.9 * l.r + 0.15 * (m.unemployment_rate - 5)))))::int AS defaulted
  FROM latent l JOIN ref.macro m ON m.month = date_trunc('month', l.applied_on)::date;

-- The features: one row per customer, from the raw tables.
CREATE MATERIALIZED VIEW ref.features AS
SELECT c.customer_id, c.age, c.income, c.employment_years, c.education,
       COALESCE(p.on_time_share, 1) AS payment_history_score,
       COALESCE(a.balance / nullif(a.credit_limit, 0), 0)::float8 AS credit_utilization,
       COALESCE(a.oldest_months, 0) AS account_age_months,
       COALESCE(a.n, 0) AS num_accounts,
       COALESCE(p.delinquencies, 0) AS delinquencies,
       COALESCE(q.recent, 0) AS recent_inquiries,
       COALESCE(a.balance, 0) AS total_debt,
       m.interest_rate, m.unemployment_rate, m.gdp_growth,
       o.defaulted
  FROM ref.customers c
  JOIN ref.outcomes o USING (customer_id)
  JOIN ref.macro m ON m.month = date_trunc('month', c.applied_on)::date
  LEFT JOIN (SELECT customer_id, count(*) AS n, sum(balance) AS balance, sum(credit_limit) AS credit_limit,
                    max((date_part('year', age(now(), opened_on)) * 12
                         + date_part('month', age(now(), opened_on))))::int AS oldest_months
               FROM ref.accounts GROUP BY customer_id) a USING (customer_id)
  LEFT JOIN (SELECT ac.customer_id, avg((pm.days_late = 0)::int)::float8 AS on_time_share,
                    count(*) FILTER (WHERE pm.days_late > 30) AS delinquencies
               FROM ref.payments pm JOIN ref.accounts ac USING (account_id)
              GROUP BY ac.customer_id) p USING (customer_id)
  LEFT JOIN (SELECT i.customer_id, count(*) AS recent
               FROM ref.inquiries i JOIN ref.customers c2 USING (customer_id)
              WHERE i.inquired_on > c2.applied_on - 90
              GROUP BY i.customer_id) q USING (customer_id);
CREATE UNIQUE INDEX ON ref.features (customer_id);
ANALYZE ref.features;
RESET client_min_messages;
SELECT count(*) AS customers, round(avg(defaulted), 3) AS default_rate FROM ref.features;
