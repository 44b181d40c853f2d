-- applicants_local: :rows synthetic applicants (id, three features with
-- missing values in c, and a label y) made from hashes of the id, so the
-- same :rows give the same table everywhere.  Used by the sharding tests
-- and bench/shards.sh:  psql -v rows=200000 -f test/data/applicants_synth.sql
CREATE TABLE applicants_local AS
SELECT i AS id,
       ((hashint4(i) % 1000) / 1000.0)::float8 AS a,
       ((hashint4(i * 7 + 1) % 1000) / 1000.0)::float8 AS b,
       CASE WHEN i % 23 = 0 THEN NULL ELSE ((hashint4(i * 13 + 5) % 100) / 10.0)::float8 END AS c,
       ((hashint4(i) % 1000) / 1000.0 + (hashint4(i * 7 + 1) % 1000) / 2000.0
        + (hashint4(i * 31) % 100) / 150.0 > 0.9)::int AS y
  FROM generate_series(1, :rows) i;
