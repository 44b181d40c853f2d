#!/bin/bash
# Scoring and training past one server, on PostgreSQL's own sharding: a
# coordinator whose applicants table is hashed over two postgres_fdw
# shards, three throwaway clusters on loopback, against the same rows on
# the coordinator alone.
#
#   bench/shards.sh [ROWS]          # 2,000,000 by default (BENCH_ROWS)
#
# A second shape, for the distributed trees: BENCH_WIDE_ROWS (500,000) rows
# of 20 features (the wide table).
#
# Run as root (the clusters then run as postgres) or as a user that can
# initdb.  BENCH_REPS (3) timed runs of each, the best and the median
# reported; bytes on the loopback interface counted around each query
# (/proc/net/dev; the shards are reached over TCP on 127.0.0.1), per row.  The two shards share this machine's
# CPUs with the coordinator: the point is the plans and the cost of each
# round trip, not a speed-up.
set -euo pipefail

rows=${1:-${BENCH_ROWS:-2000000}}
wide_rows=${BENCH_WIDE_ROWS:-500000}
reps=${BENCH_REPS:-3}
here=$(cd "$(dirname "$0")" && pwd)
bin=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)
[ -x "$bin/initdb" ] || bin=/usr/lib/postgresql/15/bin
case $rows in '' | *[!0-9]* | 0) echo "ROWS must be a positive integer" >&2; exit 2 ;; esac

dir=$(mktemp -d "${TMPDIR:-/tmp}/cr_shards.XXXXXX")
as_owner() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$(printf '%q ' "$@")"; else "$@"; fi; }
[ "$(id -u)" -ne 0 ] || chown postgres "$dir"
owner=$([ "$(id -u)" -eq 0 ] && echo postgres || id -un)
ports=(55481 55482 55483)
names=(coordinator shard0 shard1)
cleanup()
{
	for n in "${names[@]}"; do
		[ -d "$dir/$n" ] && as_owner "$bin/pg_ctl" -D "$dir/$n" -m immediate stop >/dev/null 2>&1 || true
	done
	rm -rf "$dir"
}
trap cleanup EXIT

for i in 0 1 2; do
	as_owner "$bin/initdb" -D "$dir/${names[$i]}" -A trust -U "$owner" >/dev/null
	cat >> "$dir/${names[$i]}/postgresql.conf" <<EOF
port = ${ports[$i]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
shared_buffers = 256MB
max_parallel_workers_per_gather = 0
jit = off
EOF
	as_owner "$bin/pg_ctl" -D "$dir/${names[$i]}" -l "$dir/${names[$i]}.log" -w start >/dev/null
done
q() { psql -X -q -At -h "$dir" -p "${ports[$1]}" -U "$owner" -d postgres -v ON_ERROR_STOP=1 "${@:2}"; }

for s in 1 2; do
	q "$s" -c "CREATE EXTENSION credit_risk;
	           CREATE TABLE applicants (id int PRIMARY KEY, a float8, b float8, c float8, y int);
	           CREATE TABLE wide (LIKE applicants INCLUDING ALL)"
	for k in $(seq 1 17); do q "$s" -c "ALTER TABLE wide ADD COLUMN x$k float8"; done
done
servers=
for i in 0 1; do
	servers="$servers
	CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '127.0.0.1', port '${ports[$((i + 1))]}', dbname 'postgres', extensions 'credit_risk',
	             async_capable 'true', fetch_size '10000', batch_size '1000');
	CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i OPTIONS (user '$owner');
	CREATE FOREIGN TABLE applicants_$i PARTITION OF applicants
	    FOR VALUES WITH (MODULUS 2, REMAINDER $i) SERVER shard$i OPTIONS (table_name 'applicants');
	CREATE FOREIGN TABLE scored_$i PARTITION OF scored
	    FOR VALUES WITH (MODULUS 2, REMAINDER $i) SERVER shard$i OPTIONS (table_name 'scored');
	CREATE FOREIGN TABLE wide_$i PARTITION OF wide
	    FOR VALUES WITH (MODULUS 2, REMAINDER $i) SERVER shard$i OPTIONS (table_name 'wide');"
done
# the wide table: the applicants' features and 17 more made from them and the id
xcols=$(for k in $(seq 1 17); do printf ', x%d float8' "$k"; done)
xvals=$(for k in $(seq 1 17); do printf ', CASE WHEN (id + %d) %% 29 = 0 THEN NULL ELSE ((hashint4(id * %d + %d) %% 1000) / 1000.0 + a * %d) END AS x%d' "$k" "$((k + 2))" "$k" "$((k % 3))" "$k"; done)
start=$(date +%s.%N)
q 0 -c "CREATE EXTENSION credit_risk; CREATE EXTENSION postgres_fdw"
q 0 -v rows="$rows" -f "$here/../test/data/applicants_synth.sql"
q 0 -c "VACUUM ANALYZE applicants_local" -c "
	CREATE TABLE applicants (id int, a float8, b float8, c float8, y int) PARTITION BY HASH (id);
	CREATE TABLE scored (id int, pd float8) PARTITION BY HASH (id);
	CREATE TABLE wide (id int, a float8, b float8, c float8, y int $xcols) PARTITION BY HASH (id);
	$servers
	INSERT INTO applicants SELECT * FROM applicants_local;
	CREATE TABLE wide_local AS SELECT id, a, b, c, y $xvals FROM applicants_local WHERE id <= $wide_rows;
	INSERT INTO wide SELECT * FROM wide_local;" -c "VACUUM ANALYZE wide_local"
for s in 1 2; do q "$s" -c "VACUUM ANALYZE applicants" -c "VACUUM ANALYZE wide"; done
echo "credit_risk sharding benchmark: $(date -u '+%Y-%m-%d %H:%M UTC'); $rows rows, two shards, $reps runs each"
echo "server: $(q 0 -c 'SELECT version()')"
echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs for all three clusters"
echo "rows per shard: $(q 1 -c 'SELECT count(*) FROM applicants'), $(q 2 -c 'SELECT count(*) FROM applicants') (loaded through the coordinator in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s)"
echo

# bytes received on loopback (each byte sent is received once there)
lo_bytes() { awk '$1 == "lo:" { printf "%.0f\n", $2 }' /proc/net/dev; }
# time NAME NODE SQL: the best and the median of reps runs, and loopback bytes per row of the last
timeit()
{
	local name=$1 node=$2 sql=$3 t t0 b0 b1 times=()
	for r in $(seq 1 "$reps"); do
		b0=$(lo_bytes)
		t0=$(date +%s.%N)
		echo "$sql" | psql -X -q -At -h "$dir" -p "${ports[$node]}" -U "$owner" -d postgres \
			-v ON_ERROR_STOP=1 -f - > /dev/null
		t=$(python3 -c "print($(date +%s.%N) - $t0)")
		b1=$(lo_bytes)
		times+=("$t")
	done
	python3 - "$name" "$rows" "$((b1 - b0))" "${times[@]}" <<'PY'
import sys, statistics
name, rows, nbytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = [float(x) for x in sys.argv[4:]]
print("%-58s best %7.2f s  median %7.2f s  %8.1f bytes/row on loopback" % (name, min(t), statistics.median(t), nbytes / rows))
PY
}

q 0 -o /dev/null -c "SELECT credit_risk.cr_train('pd_gbm', 'applicants_local', 'y', 'gbm', NULL, '{\"key\": \"id\", \"n_trees\": 50, \"max_depth\": 6}');
	SELECT credit_risk.cr_train('pd_lr', 'applicants_local', 'y', 'logistic', NULL, '{\"key\": \"id\"}')"
for s in 1 2; do
	q "$s" -o /dev/null -c "CREATE EXTENSION postgres_fdw;
		CREATE SERVER coordinator FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$dir', port '${ports[0]}', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER coordinator OPTIONS (user '$owner');
		CREATE SCHEMA coordinator;
		IMPORT FOREIGN SCHEMA credit_risk LIMIT TO (models) FROM SERVER coordinator INTO coordinator;
		SELECT * FROM credit_risk.cr_mirror('coordinator.models', 'credit_risk.models', ARRAY['id']);
		CREATE VIEW scored AS SELECT t.id, credit_risk.cr_predict('pd_gbm', t) AS pd FROM applicants t;"
done

echo "scoring (GBM, 50 trees of depth 6):"
timeit "one node: sum(cr_predict('pd_gbm', t)) FROM applicants_local t" 0 \
	"SELECT sum(credit_risk.cr_predict('pd_gbm', t)) FROM applicants_local t"
timeit "shards: sum(pd) FROM scored (a scoring view per shard)" 0 \
	"SELECT sum(pd) FROM scored"
timeit "shards: id, pd of every row to the coordinator" 0 \
	"COPY (SELECT id, pd FROM scored) TO STDOUT"
timeit "one node: id, PD of every row" 0 \
	"COPY (SELECT id, credit_risk.cr_predict('pd_gbm', t) FROM applicants_local t) TO STDOUT"
timeit "shards: one sum per shard, model bytes as a parameter" 0 \
	"SET plan_cache_mode = force_generic_plan;
	 PREPARE p(bytea) AS SELECT sum(s) FROM (
	     SELECT sum(credit_risk.cr_predict(\$1, ARRAY[a, b, c])) s FROM applicants_0
	     UNION ALL SELECT sum(credit_risk.cr_predict(\$1, ARRAY[a, b, c])) FROM applicants_1) x;
	 SELECT model AS m FROM credit_risk.models WHERE name = 'pd_gbm' \\gset
	 EXECUTE p(:'m');"
timeit "one node: the same sum, model bytes as a parameter" 0 \
	"SET plan_cache_mode = force_generic_plan;
	 PREPARE p(bytea) AS SELECT sum(credit_risk.cr_predict(\$1, ARRAY[a, b, c])) FROM applicants_local;
	 SELECT model AS m FROM credit_risk.models WHERE name = 'pd_gbm' \\gset
	 EXECUTE p(:'m');"
timeit "shards: cr_predict_batch on the partitioned table (run on each shard)" 0 \
	"SELECT count(*) FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants', 'id')"
timeit "one node: cr_predict_batch" 0 \
	"SELECT count(*) FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants_local', 'id')"
echo
echo "training (rows pulled to the coordinator; the same model as one node, byte for byte):"
for algo in logistic gbm; do
	params='{"key": "id"}'
	[ "$algo" = gbm ] && params='{"key": "id", "n_trees": 50, "max_depth": 6}'
	timeit "one node: cr_train $algo" 0 "SELECT credit_risk.cr_train('t1_$algo', 'applicants_local', 'y', '$algo', NULL, '$params')"
	timeit "shards: cr_train $algo on the partitioned table" 0 "SELECT credit_risk.cr_train('t2_$algo', 'applicants', 'y', '$algo', NULL, '$params')"
	echo "  same model bytes: $(q 0 -c "SELECT count(DISTINCT md5(model)) = 1 FROM credit_risk.models WHERE name IN ('t1_$algo', 't2_$algo')")"
done
echo
echo "training from sums where the rows are (params.distributed, logistic; one node's coefficients to 1e-10):"
dparams='{"key": "id", "distributed": true}'
timeit "one node: cr_train logistic, distributed (sums on one table)" 0 \
	"SELECT credit_risk.cr_train('d1', 'applicants_local', 'y', 'logistic', NULL, '$dparams')"
timeit "shards: cr_train logistic, distributed (sums on each shard)" 0 \
	"SELECT credit_risk.cr_train('d2', 'applicants', 'y', 'logistic', NULL, '$dparams')"
# where the time goes, from the last run of each
q 0 -c "SELECT rpad(CASE name WHEN 'd1' THEN '  one node' ELSE '  shards' END, 11)
	    || format('Newton pass %s ms (%s passes, %s bytes back a pass)  scores for the metrics %s s (%s bytes/row)  drift sample %s s (%s rows)',
	              round((d->>'newton_seconds')::numeric * 1000 / (d->>'newton_passes')::int, 1), d->>'newton_passes',
	              (d->>'sums_bytes')::bigint / ((d->>'newton_passes')::int + 1),
	              round((d->>'score_seconds')::numeric, 2), round((d->>'score_bytes')::numeric / (d->>'scored_rows')::bigint, 1),
	              round((d->>'sample_seconds')::numeric, 2), d->>'sampled_rows')
	  FROM (SELECT DISTINCT ON (name) name, metrics->'distributed' AS d FROM credit_risk.models
	         WHERE name IN ('d1', 'd2') ORDER BY name, version DESC) m ORDER BY name"
q 0 -c "SELECT format('  one node, rows loaded: %s Newton iterations, fit %s s (%s ms an iteration), load %s s',
	              metrics->>'iterations', round((metrics->>'fit_seconds')::numeric, 2),
	              round((metrics->>'fit_seconds')::numeric * 1000 / (metrics->>'iterations')::int, 1),
	              round((metrics->>'load_seconds')::numeric, 2))
	  FROM credit_risk.models WHERE name = 't1_logistic' ORDER BY version DESC LIMIT 1"
echo
echo "gradient-boosted trees from histograms where the rows are (params.distributed; the trees of one node given the same cut points):"
for shape in applicants wide; do
	n=$rows
	[ "$shape" = wide ] && n=$wide_rows
	gparams='{"key": "id", "distributed": true, "n_trees": 50, "max_depth": 6}'
	lparams='{"key": "id", "n_trees": 50, "max_depth": 6}'
	echo " $shape: $n rows, $(q 0 -c "SELECT count(*) - 2 FROM information_schema.columns WHERE table_name = '${shape}_local'") features"
	timeit "one node: cr_train gbm, rows loaded" 0 \
		"SELECT credit_risk.cr_train('g0_$shape', '${shape}_local', 'y', 'gbm', NULL, '$lparams')"
	timeit "one node: cr_train gbm, distributed (binned in one backend)" 0 \
		"SELECT credit_risk.cr_train('g1_$shape', '${shape}_local', 'y', 'gbm', NULL, '$gparams')"
	timeit "shards: cr_train gbm, distributed (binned on each shard)" 0 \
		"SELECT credit_risk.cr_train('g2_$shape', '$shape', 'y', 'gbm', NULL, '$gparams')"
	# where the time goes, from the last run of each
	q 0 -c "SELECT rpad(CASE WHEN name LIKE 'g1%' THEN '  one node' ELSE '  shards' END, 11)
		    || format('%s levels in %s round trips: %s ms a level, %s bytes back a level from each part; binning %s s (%s MB kept); scores %s s; sample %s s',
		              d->>'levels', d->>'round_trips',
		              round((d->>'tree_seconds')::numeric * 1000 / (d->>'levels')::int, 1),
		              (d->>'bytes_received')::bigint / (d->>'round_trips')::int / greatest((d->>'parts_binned_on_shard')::int, 1),
		              round((d->>'load_seconds')::numeric, 2), round((d->>'shard_bytes')::numeric / 1048576, 1),
		              round((d->>'score_seconds')::numeric, 2), round((d->>'sample_seconds')::numeric, 2))
		  FROM (SELECT DISTINCT ON (name) name, metrics->'distributed' AS d FROM credit_risk.models
		         WHERE name IN ('g1_$shape', 'g2_$shape') ORDER BY name, version DESC) m ORDER BY name"
	q 0 -c "SELECT format('  one node, rows loaded: fit %s s (%s ms a level over %s levels), binning %s s, load %s s',
		              round((metrics->>'fit_seconds')::numeric, 2),
		              round((metrics->>'fit_seconds')::numeric * 1000 / ((metrics->>'n_trees')::int * 7), 1),
		              (metrics->>'n_trees')::int * 7,
		              round((metrics->>'bin_seconds')::numeric, 2), round((metrics->>'load_seconds')::numeric, 2))
		  FROM credit_risk.models WHERE name = 'g0_$shape' ORDER BY version DESC LIMIT 1"
	echo "  the same splits, shards and one node: $(q 0 -c "WITH t AS (
		    SELECT DISTINCT ON (name) name, credit_risk.cr_export(model)->'gbm'->'trees' AS x
		      FROM credit_risk.models WHERE name IN ('g1_$shape', 'g2_$shape') ORDER BY name, version DESC)
		SELECT count(DISTINCT (SELECT jsonb_agg(e - 'value' - 'cover') FROM jsonb_array_elements(x) e)) = 1 FROM t")"
done
