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

-- A tree whose node 5 has two parents (nodes 2 and 3, at different depths):
-- the dense copy took its depth from the last parent and scored an internal
-- node's value as a leaf.  Each node but the root must have one parent.
DO $$
DECLARE
    detail text;
BEGIN
    PERFORM credit_risk.cr_predict('\x43524d440100020000000000d4010000891e69a6010000000a000000020000000100610100620200000010000000000000000000000000000000000000000300000029000000000000000000e03f0000000000c0824000000000000049400000000000003440010000000300616c6c050000005d0100000100000000000000000000000900000000000000000000000000e03f0100000003000000000000000000000000000000000000f03f00000000000000000000d03f0200000004000000000000000000000000000000000000f03f01000000000000000000e03f0500000005000000000000000000000000000000000000f03f01000000000000000000e03f0500000006000000000000000000000000000000000000f03fffffffff0000000000000000ffffffffffffffff00000000000000f03f000000000000f03f000000009a9999999999b93f0700000008000000000000000000000040000000000000f03fffffffff0000000000000000ffffffffffffffff000000000000000840000000000000f03fffffffff0000000000000000ffffffffffffffff000000000000001040000000000000f03fffffffff0000000000000000ffffffffffffffff000000000000001440000000000000f03f'::bytea, ARRAY[0.05, 0]::float8[]);
EXCEPTION WHEN data_corrupted THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'refused: %', detail;
END
$$;

-- Model bytes in memory are recognised by their address row after row; a
-- value made per row (decode) reuses one address for other bytes of the
-- same length.  Two logistic models of the same features (the same length,
-- other coefficients), alternating row by row, each score as by name.
SELECT credit_risk.cr_train('same_len_a', 'german_credit', 'bad', 'logistic',
                            ARRAY['duration_months', 'credit_amount', 'age'], '{"key": "applicant_id"}') IS NOT NULL AS a,
       credit_risk.cr_train('same_len_b', 'german_credit', 'bad', 'logistic',
                            ARRAY['duration_months', 'credit_amount', 'age'], '{"key": "applicant_id", "l2": 50}') IS NOT NULL AS b;
SELECT (SELECT length(model) FROM credit_risk.models WHERE name = 'same_len_a')
     = (SELECT length(model) FROM credit_risk.models WHERE name = 'same_len_b') AS same_length,
       (SELECT model FROM credit_risk.models WHERE name = 'same_len_a')
    <> (SELECT model FROM credit_risk.models WHERE name = 'same_len_b') AS other_bytes;
WITH hexes AS (
    SELECT name, encode(model, 'hex') AS hex FROM credit_risk.models WHERE name IN ('same_len_a', 'same_len_b')
)
SELECT count(*) AS rows,
       count(*) FILTER (WHERE credit_risk.cr_predict(decode(h.hex, 'hex'),
                                                     ARRAY[g.duration_months, g.credit_amount, g.age])
                             IS DISTINCT FROM credit_risk.cr_predict(h.name,
                                                     ARRAY[g.duration_months, g.credit_amount, g.age])) AS wrong
  FROM german_credit g
  JOIN hexes h ON h.name = CASE WHEN g.applicant_id % 2 = 0 THEN 'same_len_a' ELSE 'same_len_b' END;
-- bytes corrupted after good ones, at the address the good ones had: an
-- error, not the good model's score
CREATE TABLE archived (id int, hex text);
INSERT INTO archived SELECT 1, encode(model, 'hex') FROM credit_risk.models WHERE name = 'same_len_a';
INSERT INTO archived SELECT 2, encode(set_byte(model, length(model) - 9, get_byte(model, length(model) - 9) # 1), 'hex')
  FROM credit_risk.models WHERE name = 'same_len_a';
SELECT expect_error($$SELECT id, credit_risk.cr_predict(decode(hex, 'hex'), ARRAY[30, 1000, 40]::float8[])
                       FROM archived ORDER BY id$$);
DROP TABLE archived;
-- and a parameter, the same datum on every row, scores as by name
PREPARE by_value(bytea) AS
SELECT count(*) FILTER (WHERE credit_risk.cr_predict($1, ARRAY[duration_months, credit_amount, age])
                        IS DISTINCT FROM credit_risk.cr_predict('same_len_b', ARRAY[duration_months, credit_amount, age])) AS wrong
  FROM german_credit;
SELECT model AS same_len_b FROM credit_risk.models WHERE name = 'same_len_b' \gset
EXECUTE by_value(:'same_len_b');
DEALLOCATE by_value;
