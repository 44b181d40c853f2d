-- Load the Statlog (German Credit Data) file as published into german_raw:
-- one row per applicant with id (its line in the file), the 20 attributes
-- under readable names (13 categorical ones as their codes A11 ... A202, 7
-- numeric), and bad = 1 for a bad credit risk (class 2).  Run with psql from
-- the repository root (the \copy path is relative to it); the TAP tests'
-- CrGerman module runs it with the file's absolute path.
CREATE TEMP TABLE german_file (checking text, duration float8, history text, purpose text,
    amount float8, savings text, employment text, installment_rate float8, personal text,
    debtors text, residence float8, property text, age float8, other_plans text,
    housing text, existing_credits float8, job text, dependents float8, telephone text,
    foreign_worker text, class int);
\copy german_file FROM 'test/data/german.data' WITH (DELIMITER E'\t')
CREATE TABLE german_raw AS
SELECT row_number() OVER () AS id, checking, duration, history, purpose, amount, savings,
       employment, installment_rate, personal, debtors, residence, property, age, other_plans,
       housing, existing_credits, job, dependents, telephone, foreign_worker,
       (class = 2)::int AS bad
  FROM german_file;
