-- Weight-of-Evidence binning and information values, on the raw German
-- credit file (text codes, as published) and on small made-up tables.
\set ECHO none
SET client_min_messages = warning;
\i test/data/german_raw.sql
RESET client_min_messages;
\set ECHO all
SELECT count(*), sum(bad) FROM german_raw;

-- duration: rising risk, six bins at most, each with 5% of the rows
SELECT bin, lower, upper, category, n, events, round(event_rate::numeric, 4) AS rate,
       round(woe::numeric, 6) AS woe, round(iv::numeric, 6) AS iv
  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration');

-- the invariants, recomputed from the counts: every row in one bin; WoE is
-- ln(share of goods / share of bads), the same for every level of a bin;
-- rates strictly monotone; bins contiguous and at least 5% each; the IVs
-- add up to cr_information_value's
CREATE FUNCTION woe_check(feature text, params jsonb DEFAULT '{}') RETURNS TABLE (check_name text, ok boolean)
LANGUAGE sql AS $$
  WITH b AS (SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', feature, params)),
       v AS (SELECT bin, sum(n) AS n, sum(events) AS events, min(woe) AS woe, max(woe) AS woe_hi,
                    sum(iv) AS iv, min(lower) AS lower, max(upper) AS upper
               FROM b WHERE bin > 0 GROUP BY bin),
       t AS (SELECT sum(n) AS n, sum(events) AS e FROM b)
  SELECT 'all rows', (SELECT n = 1000 AND e = 300 FROM t)
  UNION ALL
  SELECT 'woe', bool_and(woe = woe_hi AND
                         abs(woe - ln(((n - events)::float8 / 700) / (events::float8 / 300))) < 1e-12)
    FROM v
  UNION ALL
  SELECT 'iv', bool_and(abs(iv - ((n - events)::float8 / 700 - events::float8 / 300) * woe) < 1e-12)
    FROM v
  UNION ALL
  SELECT 'monotone', count(DISTINCT sign(d)) <= 1 AND bool_and(d <> 0)
    FROM (SELECT events::float8 / n - lag(events::float8 / n) OVER (ORDER BY bin) AS d FROM v) s
   WHERE d IS NOT NULL
  UNION ALL
  SELECT 'contiguous', coalesce(bool_and(lower = prev), true)
    FROM (SELECT lower, lag(upper) OVER (ORDER BY bin) AS prev FROM v) s WHERE prev IS NOT NULL
  UNION ALL
  SELECT 'open ends', (SELECT min(lower) = '-Infinity' AND max(upper) = 'Infinity' FROM v)
  UNION ALL
  SELECT 'min share and max bins', bool_and(n >= 50) AND count(*) <= coalesce((params ->> 'max_bins')::int, 6)
    FROM v
  UNION ALL
  SELECT 'iv total', abs((SELECT sum(iv) FROM b) -
                         (SELECT i.iv FROM credit_risk.cr_information_value('german_raw', 'bad',
                                             ARRAY[feature], params) i)) < 1e-12
$$;
SELECT * FROM woe_check('duration');
SELECT * FROM woe_check('amount');
SELECT * FROM woe_check('amount', '{"max_bins": 3}');
SELECT * FROM woe_check('age', '{"min_bin_share": 0.1, "prebins": 50}');

-- a trend against the data pools everything: duration's risk only rises
SELECT bin, n, events, woe, iv
  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"trend": "descending"}');

-- age: risk falls with age, then rises again (a valley), or is made monotone
SELECT bin, lower, upper, n, round(event_rate::numeric, 4) AS rate
  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'age', '{"trend": "valley", "max_bins": 5}');
SELECT count(*) FILTER (WHERE d < 0) > 0 AS falls, count(*) FILTER (WHERE d > 0) > 0 AS rises,
       bool_and(NOT (d < 0 AND risen)) AS never_falls_after_rising
  FROM (SELECT d, bool_or(d > 0) OVER (ORDER BY bin ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS risen
          FROM (SELECT bin, event_rate - lag(event_rate) OVER (ORDER BY bin) AS d
                  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'age', '{"trend": "valley", "max_bins": 5}')
                 WHERE bin > 0) s) s2
 WHERE d IS NOT NULL;

-- peak: rates never rise again after falling
SELECT bool_and(NOT (d > 0 AND fallen)) AS never_rises_after_falling
  FROM (SELECT d, bool_or(d < 0) OVER (ORDER BY bin ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS fallen
          FROM (SELECT bin, event_rate - lag(event_rate) OVER (ORDER BY bin) AS d
                  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'amount', '{"trend": "peak", "max_bins": 8, "min_bin_share": 0.02}')
                 WHERE bin > 0) s) s2
 WHERE d IS NOT NULL;
SELECT bin, lower, upper, n, round(event_rate::numeric, 4) AS rate
  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'amount', '{"trend": "peak", "max_bins": 8, "min_bin_share": 0.02}');

-- categorical: a row per level, levels of a bin share its WoE; bins in rising risk
SELECT bin, category, n, events, round(woe::numeric, 6) AS woe, round(iv::numeric, 6) AS iv
  FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'purpose')
 ORDER BY bin, category;
SELECT * FROM woe_check('purpose') WHERE check_name NOT IN ('contiguous', 'open ends');
SELECT * FROM woe_check('savings', '{"max_bins": 3}') WHERE check_name NOT IN ('contiguous', 'open ends');
-- an integer column as levels
SELECT bin, category, n, events
  FROM credit_risk.cr_woe_bins('SELECT installment_rate::int AS rate, bad FROM german_raw', 'bad', 'rate',
                               '{"categorical": true, "min_bin_share": 0.01}')
 ORDER BY bin, category;

-- the ranking, with the usual bands
SELECT rank, feature, round(iv::numeric, 4) AS iv, strength, bins
  FROM credit_risk.cr_information_value('german_raw', 'bad');
SELECT rank, feature, round(iv::numeric, 4) AS iv, strength
  FROM credit_risk.cr_information_value('german_raw', 'bad', ARRAY['age', 'checking']);

-- missing values have a bin of their own (bin 0); a bin of one class stays,
-- its WoE counting half a row more of each class; one value is one bin with
-- no information
CREATE TABLE woe_small AS
SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE i END AS x, (i > 90 OR i % 10 = 0)::int AS y,
       7 AS one_value, (i % 3)::text AS grp
  FROM generate_series(1, 100) i;
SELECT bin, lower, upper, n, events, round(woe::numeric, 6) AS woe
  FROM credit_risk.cr_woe_bins('woe_small', 'y', 'x', '{"min_bin_share": 0.01}');
SELECT bin, lower, upper, n, events, woe, iv
  FROM credit_risk.cr_woe_bins('woe_small', 'y', 'one_value');
-- levels past the 254 kept are pooled as (other)
CREATE TABLE woe_many AS
SELECT i, 'g' || i AS grp, (i % 7 = 0)::int AS y FROM generate_series(1, 3000) i;
SELECT count(*) AS level_rows, sum(n) AS n, count(*) FILTER (WHERE category = '(other)') AS other
  FROM credit_risk.cr_woe_bins('woe_many', 'y', 'grp', '{"min_bin_share": 0.001, "max_bins": 20}');

-- a text column with no value that can be a level (all NULL, or every
-- value longer than a level may be) is all missing or all "other"
SELECT bin, category, n, events, iv
  FROM credit_risk.cr_woe_bins('SELECT y, NULL::text AS t FROM woe_small', 'y', 't');
SELECT bin, category, n, events, iv
  FROM credit_risk.cr_woe_bins('SELECT y, repeat(''x'', 300) || (i % 3) AS t FROM woe_small', 'y', 't');
SELECT feature, iv, bins
  FROM credit_risk.cr_information_value('SELECT y, x, NULL::text AS t FROM woe_small', 'y');
-- peak and valley leave no two neighbours with the same rate
SELECT bin, n, events
  FROM credit_risk.cr_woe_bins('SELECT CASE WHEN i <= 20 THEN 1 ELSE i % 2 END AS y, ceil(i / 10.0)::float8 AS x
                                  FROM generate_series(1, 30) i', 'y', 'x', '{"trend": "peak", "min_bin_share": 0.01}');

-- bad input
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"max_bins": 1}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"max_bins": 2.5}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"min_bin_share": 0.7}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"trend": "sideways"}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"bins": 4}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '[1]')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'no_such_column')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'bad')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', 'bad', 'duration', '{"categorical": true}')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('german_raw', NULL, 'duration')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('SELECT * FROM german_raw WHERE bad = 1', 'bad', 'duration')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('SELECT * FROM german_raw WHERE false', 'bad', 'duration')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_woe_bins('SELECT now() AS t, bad FROM german_raw', 'bad', 't')$q$);
SELECT expect_error($q$SELECT * FROM credit_risk.cr_information_value('german_raw', 'bad', ARRAY[]::text[])$q$);
