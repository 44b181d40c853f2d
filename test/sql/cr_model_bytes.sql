-- Model bytes: self-describing, checksummed, and hostile bytes are ERRORs.
SELECT m.model AS good FROM credit_risk.models m WHERE name = 'german_small' \gset

SELECT info->>'format_version' AS format_version, info->>'algorithm' AS algorithm,
       info->'features' AS features, info->'risk_labels' AS labels,
       info->'risk_cutoffs' AS cutoffs, (info->>'bytes')::int = length(:'good'::bytea) AS length_ok
  FROM (SELECT credit_risk.cr_model_info(:'good'::bytea) AS info) s;

-- the magic number
SELECT substring(:'good'::bytea FROM 1 FOR 4) AS magic;

-- not a model, too short, wrong magic, newer format version
SELECT expect_error($$SELECT credit_risk.cr_model_info('\x'::bytea)$$);
SELECT expect_error($$SELECT credit_risk.cr_model_info('\x00010203'::bytea)$$);
SELECT expect_error(format('SELECT credit_risk.cr_model_info(%L::bytea)', set_byte(:'good'::bytea, 0, 0)));
SELECT expect_error(format('SELECT credit_risk.cr_model_info(%L::bytea)', set_byte(:'good'::bytea, 4, 9)));
SELECT expect_error(format('SELECT credit_risk.cr_predict(%L::bytea, ARRAY[1, 2, 3]::float8[])', set_byte(:'good'::bytea, 4, 9)));

-- truncated at every length: always an error, never a crash
SELECT count(*) AS truncations,
       count(*) FILTER (WHERE expect_error(format('SELECT credit_risk.cr_model_info(%L::bytea)',
                                                   substring(:'good'::bytea FROM 1 FOR n)))
                        LIKE 'XX001%' OR
                        expect_error(format('SELECT credit_risk.cr_model_info(%L::bytea)',
                                            substring(:'good'::bytea FROM 1 FOR n)))
                        LIKE '22P03%') AS rejected
  FROM generate_series(0, length(:'good'::bytea) - 1) AS n;

-- one byte altered anywhere: rejected (by the magic, version or checksum)
SELECT count(*) AS alterations,
       count(*) FILTER (WHERE expect_error(format('SELECT credit_risk.cr_predict(%L::bytea, ARRAY[1, 2, 3]::float8[])',
                                                   set_byte(:'good'::bytea, n, (get_byte(:'good'::bytea, n) + 1 + n % 254) % 256)))
                        <> 'no error') AS rejected
  FROM generate_series(0, length(:'good'::bytea) - 1) AS n;

-- bytes appended: rejected
SELECT expect_error(format('SELECT credit_risk.cr_model_info(%L::bytea)', :'good'::bytea || '\x00'::bytea));

-- the registry refuses to serve a corrupted row
BEGIN;
UPDATE credit_risk.models SET model = set_byte(model, 40, get_byte(model, 40) # 1)
 WHERE name = 'german_small';
SELECT expect_error($$SELECT credit_risk.cr_predict('german_small', ARRAY[30, 12, 1]::float8[])$$);
ROLLBACK;
SELECT credit_risk.cr_predict('german_small', ARRAY[30, 12, 1]::float8[]) > 0 AS serves_again;

-- and the good bytes still score, in both model-as-value forms
SELECT credit_risk.cr_predict(:'good'::bytea, ARRAY[30, 12, 1]::float8[])
     = credit_risk.cr_predict('german_small', ARRAY[30, 12, 1]::float8[]) AS same;
