-- Load the Statlog (German Credit Data) file into german_credit: one row per
-- applicant, categorical codes encoded as numeric (0/1) features, label
-- "bad" = 1 for a bad credit risk (class 2).  Run from the repository root
-- with psql (the \copy path is relative to it).
DROP TABLE IF EXISTS german_lines;
CREATE TEMP TABLE german_lines (line text);
\copy german_lines FROM 'test/data/german.data' WITH (DELIMITER '|')

DROP TABLE IF EXISTS german_credit;
CREATE TABLE german_credit AS
WITH raw AS (
    SELECT row_number() OVER () AS applicant_id,
           pg_catalog.string_to_array(line, E'\t') AS f
      FROM german_lines
     WHERE line <> ''
)
SELECT applicant_id::int                                   AS applicant_id,
       f[2]::float8                                        AS duration_months,
       f[5]::float8                                        AS credit_amount,
       f[8]::float8                                        AS installment_rate,
       f[11]::float8                                       AS residence_years,
       f[13]::float8                                       AS age,
       f[16]::float8                                       AS existing_credits,
       f[18]::float8                                       AS dependents,
       (f[1] = 'A11')::int::float8                         AS checking_negative,
       (f[1] = 'A12')::int::float8                         AS checking_low,
       (f[1] = 'A14')::int::float8                         AS checking_none,
       (f[3] IN ('A30', 'A31'))::int::float8               AS history_all_paid,
       (f[3] = 'A34')::int::float8                         AS history_critical,
       (f[4] = 'A40')::int::float8                         AS purpose_new_car,
       (f[4] = 'A41')::int::float8                         AS purpose_used_car,
       (f[4] = 'A46')::int::float8                         AS purpose_education,
       (f[6] = 'A61')::int::float8                         AS savings_low,
       (f[6] = 'A65')::int::float8                         AS savings_unknown,
       (f[7] IN ('A71', 'A72'))::int::float8               AS employed_under_1y,
       (f[10] = 'A103')::int::float8                       AS has_guarantor,
       (f[12] = 'A124')::int::float8                       AS no_property,
       (f[14] IN ('A141', 'A142'))::int::float8            AS other_installments,
       (f[15] = 'A152')::int::float8                       AS owns_home,
       (f[20] = 'A201')::int::float8                       AS foreign_worker,
       (f[21] = '2')::int                                  AS bad
  FROM raw;
