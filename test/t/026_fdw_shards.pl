# PostgreSQL's own sharding: a coordinator whose applicants table is
# partitioned by hash into postgres_fdw foreign tables on two shards (three
# clusters on loopback, 200,000 applicants).  Training on the partitioned
# table gives the model one node gives; model bytes as a parameter score on
# the shards inside pushed-down aggregates; by name, through a scoring view
# on each shard with the registry mirrored there by cr_mirror, every row is
# scored where it lives and the scores equal one node's to the bit; a shard
# that is down gives a clear error.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use CrShards;

my $root = $ENV{TESTDIR} || '.';
my $rows = 200000;
my $user = scalar getpwuid($<);

my @shards = map { PostgreSQL::Test::Cluster->new("shard$_") } 1 .. 2;
for my $s (@shards)
{
	$s->init;
	$s->append_conf('postgresql.conf', 'max_prepared_transactions = 4');	# cr_publish
	$s->start;
	$s->safe_psql('postgres', q{
		CREATE EXTENSION credit_risk;
		CREATE TABLE applicants (id int PRIMARY KEY, a float8, b float8, c float8, y int);
	});
}
my $coord = PostgreSQL::Test::Cluster->new('coordinator');
$coord->init;
$coord->start;

# the same rows on the coordinator alone (one node), and hashed over the shards
my $servers = '';
for my $i (0 .. 1)
{
	my ($host, $port) = ($shards[$i]->host, $shards[$i]->port);
	$servers .= qq{
		CREATE SERVER shard$i FOREIGN DATA WRAPPER postgres_fdw
		    OPTIONS (host '$host', port '$port', dbname 'postgres', extensions 'credit_risk',
		             async_capable 'true', fetch_size '10000', batch_size '1000');
		CREATE USER MAPPING FOR CURRENT_USER SERVER shard$i OPTIONS (user '$user');
		CREATE FOREIGN TABLE applicants_$i PARTITION OF applicants
		    FOR VALUES WITH (MODULUS 2, REMAINDER $i) SERVER shard$i OPTIONS (table_name 'applicants');
	};
}
$coord->safe_psql('postgres', qq{
	CREATE EXTENSION credit_risk;
	CREATE EXTENSION postgres_fdw;
	\\set rows $rows
	\\i $root/test/data/applicants_synth.sql
	CREATE TABLE applicants (id int, a float8, b float8, c float8, y int) PARTITION BY HASH (id);
	$servers
	INSERT INTO applicants SELECT * FROM applicants_local;
});
my $placed = join ',', map { $_->safe_psql('postgres', 'SELECT count(*) FROM applicants') } @shards;
my ($n1, $n2) = split /,/, $placed;
is($n1 + $n2, $rows, "the rows are spread over the two shards ($placed)");
cmp_ok($n1, '>', $rows / 3, 'neither shard holds all of them');

# training on the sharded table gives one node's model, byte for byte
trains_as_one_node($coord, 'foreign partitions',
	'{"key": "id", "n_trees": 30, "max_depth": 5, "subsample": 0.8, "colsample_bytree": 0.7}');

# params.distributed: every pass over the rows is an aggregate each shard
# computes, and only sums, scores and a sample come back
my $log_offset = -s $coord->logfile;
my $dist = trains_distributed_as_one_node($coord, 'foreign partitions');
like($dist, qr/"parts": 2\b/, 'distributed: the passes ran on the two foreign partitions');
my ($npasses) = $dist =~ /"newton_passes": (\d+)/;
my ($sums_bytes) = $dist =~ /"sums_bytes": (\d+)/;
cmp_ok($sums_bytes, '<', ($npasses + 1) * 2 * 1024, "distributed: each shard sends back at most a kilobyte a pass ($sums_bytes bytes over $npasses Newton passes and the moments)");
like($dist, qr/"scored_rows": $rows\b/, 'distributed: every row is scored on its shard for the metrics');
my ($sampled) = $dist =~ /"sampled_rows": (\d+)/;
cmp_ok($sampled, '<', $rows * 0.8, "distributed: the drift baselines come from a sample ($sampled rows)");
# the plan of each pass, as auto_explain logs it: the aggregate is sent to the shards whole
$coord->safe_psql('postgres', q{
	LOAD 'auto_explain';
	SET auto_explain.log_min_duration = 0;
	SET auto_explain.log_nested_statements = on;
	SET auto_explain.log_verbose = on;
	SELECT version FROM credit_risk.cr_train('dist_explained', 'applicants', 'y', 'logistic', NULL, '{"key": "id", "distributed": true}')});
my $log = slurp_file($coord->logfile, $log_offset);
my $pushed = () = $log =~ /Relations: Aggregate on \(public\.applicants_[01]\)\s+Remote SQL: SELECT credit_risk\.cr_train_partial\(/g;
cmp_ok($pushed, '>=', 2 * ($npasses + 1), "distributed: EXPLAIN shows each pass's aggregate pushed down to both shards ($pushed foreign aggregates)");
# what does cross the wire: no pass reads the rows (the scores for the
# metrics are computed on each shard, through a connection of our own, as
# postgres_fdw does not evaluate a plain scan's output expressions there),
# and the sample pass only the sampled rows
my $fetched = () = $log =~ /Remote SQL: SELECT id, a, b, c, y FROM public\.applicants\n/g;
is($fetched, 0, 'distributed: no pass reads the rows of a shard');
like($dist, qr/"parts_scored_on_shard": 2\b/, 'distributed: the scores for the metrics are computed on both shards');
# gradient-boosted trees with params.distributed: each shard bins its rows
# once and keeps them for the run; a tree level is one round trip that
# brings back only the histograms of the nodes to build
my $gdist = trains_gbm_distributed_as_one_node($coord, 'foreign partitions');
like($gdist, qr/"parts_binned_on_shard": 2\b/, 'distributed trees: both shards bin their own rows');
my ($levels) = $gdist =~ /"levels": (\d+)/;
my ($trips) = $gdist =~ /"round_trips": (\d+)/;
my ($received) = $gdist =~ /"bytes_received": (\d+)/;
cmp_ok($trips, '<=', $levels + 2, "distributed trees: at most one round trip a tree level ($trips for $levels levels)");
cmp_ok($received, '<', $trips * 2 * 64 * 1024, "distributed trees: only histograms come back ($received bytes in $trips round trips)");
like($gdist, qr/"parts_scored_on_shard": 2\b/, 'distributed trees: the scores for the metrics are computed on both shards');
# a foreign table of one shard is one part, binned there; a view of a
# foreign partition is binned here (the load is never sent through
# postgres_fdw to a session of its own on the shard)
$coord->safe_psql('postgres', q{
	CREATE FOREIGN TABLE applicants_ft (id int, a float8, b float8, c float8, y int)
	    SERVER shard0 OPTIONS (table_name 'applicants');
	CREATE VIEW applicants_0_view AS SELECT * FROM applicants_0;
});
my $ft = $coord->safe_psql('postgres', q{SELECT metrics->'distributed'->>'parts_binned_on_shard', train_rows + holdout_rows
	FROM credit_risk.cr_train('gdist_ft', 'applicants_ft', 'y', 'gbm', NULL, '{"key": "id", "distributed": true, "n_trees": 5}')});
is($ft, "1|$n1", 'distributed trees: a foreign table is one part, binned on its shard');
my $fv = $coord->safe_psql('postgres', q{SELECT metrics->'distributed'->>'parts_binned_on_shard', train_rows + holdout_rows
	FROM credit_risk.cr_train('gdist_fv', 'applicants_0_view', 'y', 'gbm', NULL, '{"key": "id", "distributed": true, "n_trees": 5}')});
is($fv, "0|$n1", 'distributed trees: a view of a foreign partition is binned on the coordinator');
is($coord->safe_psql('postgres', q{
	SELECT credit_risk.cr_export('gdist_ft')->'gbm'->'trees' = credit_risk.cr_export('gdist_fv')->'gbm'->'trees'}),
	't', 'distributed trees: the same rows give the same trees either way');
for my $i (0 .. 1)
{
	ok($shards[$i]->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE application_name = 'credit_risk cr_train'}),
		"distributed trees: shard $i keeps no session (and no binned rows) after the run");
}
my $sampled_scans = () = $log =~ /Remote SQL: SELECT id, a, b, c FROM public\.applicants WHERE \(\(credit_risk\.cr_split_unit\(id, 42::bigint\) >= 0\.2::double precision\)\) AND \(\(credit_risk\.cr_split_unit\(id, \d+::bigint\) < /g;
is($sampled_scans, 2, 'distributed: the sample pass sends its condition to each shard');

# a statement timeout on the coordinator (sql, in ms) cancels the shards'
# queries too: afterwards no shard runs a query that mentions what
sub cancels_on_shards
{
	my ($sql, $ms, $what, $name) = @_;
	my ($ret, $out, $err) = $coord->psql('postgres', "SET statement_timeout = '${ms}ms'; $sql");
	like($err, qr/canceling statement due to statement timeout/, "a statement timeout cancels $name");
	for my $i (0 .. 1)
	{
		ok($shards[$i]->poll_query_until('postgres', qq{
			SELECT count(*) = 0 FROM pg_stat_activity
			 WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%$what%'}),
			"shard $i runs no $what after the cancel of $name");
	}
}

my ($ret, $out, $err);

# a cancel on the coordinator cancels the shards' passes
cancels_on_shards(q{SELECT credit_risk.cr_train('dist_cancelled', 'applicants', 'y', 'logistic', NULL, '{"key": "id", "distributed": true}')},
	300, 'cr_train_partial', 'distributed training');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models WHERE name = 'dist_cancelled'}), '0', 'and nothing is registered');
cancels_on_shards(q{SELECT credit_risk.cr_train('gdist_cancelled', 'applicants', 'y', 'gbm', NULL, '{"key": "id", "distributed": true, "n_trees": 500}')},
	1500, 'cr_gbm_shard', 'distributed tree training');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models WHERE name = 'gdist_cancelled'}), '0', 'and nothing is registered');


# model bytes as a parameter: each shard's aggregate runs on the shard with
# the model in it (PostgreSQL 15 pushes a whole aggregate of one foreign
# table, not the partial aggregates of a partitioned one: hence one
# aggregate per partition, added up here)
my $by_value = q{SET plan_cache_mode = force_generic_plan;
	PREPARE portfolio(bytea) AS
	SELECT sum(n), sum(pd) FROM (
	    SELECT count(*) AS n, sum(credit_risk.cr_predict($1, ARRAY[a, b, c])) AS pd FROM applicants_0
	    UNION ALL
	    SELECT count(*), sum(credit_risk.cr_predict($1, ARRAY[a, b, c])) FROM applicants_1) per_shard;
	SELECT model AS m FROM credit_risk.models WHERE name = 'pd_gbm' \gset
};
my $plan = $coord->safe_psql('postgres', $by_value . q{EXPLAIN (VERBOSE, COSTS OFF) EXECUTE portfolio(:'m');});
like($plan, qr/Remote SQL: SELECT count\(\*\), sum\(credit_risk\.cr_predict\(\$1::bytea, ARRAY\[a, b, c\]\)\) FROM public\.applicants/,
	'the portfolio sum is computed on the shards, the model sent as a parameter');
like($plan, qr/Async Foreign Scan.*Relations: Aggregate on \(public\.applicants_0\).*Async Foreign Scan.*Relations: Aggregate on \(public\.applicants_1\)/s,
	'both shards at once; only their sums cross the wire');
my $sharded_sum = $coord->safe_psql('postgres', $by_value . q{EXECUTE portfolio(:'m');});
my $local_sum = $coord->safe_psql('postgres', q{SELECT count(*) || '|' || sum(credit_risk.cr_predict('pd_gbm', ARRAY[a, b, c])) FROM applicants_local});
my ($cn, $cs) = split /\|/, $sharded_sum;
my ($ln, $ls) = split /\|/, $local_sum;
is($cn, $ln, 'every applicant is scored once');
cmp_ok(abs($cs - $ls), '<', 1e-6, "the sum of PDs from the shards is one node's ($cs against $ls; summed in another order)");

# by name: the registry mirrored to each shard, and a scoring view there
for my $i (0 .. 1)
{
	my ($chost, $cport) = ($coord->host, $coord->port);
	$shards[$i]->safe_psql('postgres', qq{
		CREATE EXTENSION postgres_fdw;
		CREATE SERVER coordinator FOREIGN DATA WRAPPER postgres_fdw
		    OPTIONS (host '$chost', port '$cport', dbname 'postgres');
		CREATE USER MAPPING FOR CURRENT_USER SERVER coordinator OPTIONS (user '$user');
		CREATE SCHEMA coordinator;
		IMPORT FOREIGN SCHEMA credit_risk LIMIT TO (models, routes) FROM SERVER coordinator INTO coordinator;
		SELECT * FROM credit_risk.cr_mirror('coordinator.models', 'credit_risk.models', ARRAY['id']);
		CREATE VIEW applicants_scored AS
		SELECT t.id, credit_risk.cr_predict('pd_gbm', t) AS pd FROM applicants t;
	});
	is($shards[$i]->safe_psql('postgres', q{SELECT string_agg(name || '@' || version || ':' || status, ',' ORDER BY name) FROM credit_risk.models WHERE name LIKE 'pd_%'}),
		'pd_gbm@1:champion,pd_logistic@1:champion', "shard $i: the registry's versions are mirrored, with their status");
	is($shards[$i]->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models m JOIN coordinator.models c USING (id) WHERE m.model = c.model}),
		$coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models}), "shard $i: the same bytes");
}
$coord->safe_psql('postgres', q{
	CREATE TABLE applicants_scored (id int, pd float8) PARTITION BY HASH (id);
	CREATE FOREIGN TABLE applicants_scored_0 PARTITION OF applicants_scored
	    FOR VALUES WITH (MODULUS 2, REMAINDER 0) SERVER shard0 OPTIONS (table_name 'applicants_scored');
	CREATE FOREIGN TABLE applicants_scored_1 PARTITION OF applicants_scored
	    FOR VALUES WITH (MODULUS 2, REMAINDER 1) SERVER shard1 OPTIONS (table_name 'applicants_scored');
});
$plan = $coord->safe_psql('postgres', q{EXPLAIN (VERBOSE, COSTS OFF) SELECT id, pd FROM applicants_scored});
like($plan, qr/Async Foreign Scan on public\.applicants_scored_0.*Remote SQL: SELECT id, pd FROM public\.applicants_scored/s,
	'by name, each shard scores its own rows (the shards are read concurrently) and sends back only id and PD');
is($coord->safe_psql('postgres', q{
	SELECT count(*) || ' ' || count(*) FILTER (WHERE s.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM applicants_scored s JOIN applicants_local l USING (id)}),
	"$rows 0", "all $rows scores from the shards equal one node's to the bit");

# a promotion reaches the shards with the next mirror run
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_train('pd_gbm', 'applicants', 'y', 'gbm', NULL, '{"key": "id", "n_trees": 10}');
	SELECT credit_risk.cr_promote('pd_gbm', 2)});
$_->safe_psql('postgres', q{SELECT * FROM credit_risk.cr_mirror('coordinator.models', 'credit_risk.models', ARRAY['id'])}) for @shards;
is($coord->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE s.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM applicants_scored s JOIN applicants_local l USING (id)}),
	'0', 'after a promotion and a mirror run the shards score with the new champion');

# and a promotion back to the older version (the mirror demotes the old
# champion before it crowns the new one: the registry has one a name)
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_promote('pd_gbm', 1)});
$_->safe_psql('postgres', q{SELECT * FROM credit_risk.cr_mirror('coordinator.models', 'credit_risk.models', ARRAY['id'])}) for @shards;
is($coord->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE s.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM applicants_scored s JOIN applicants_local l USING (id)}),
	'0', 'after a promotion back to version 1 and a mirror run the shards score with version 1');
is(join(',', map { $_->safe_psql('postgres', q{SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM credit_risk.models WHERE name = 'pd_gbm'}) } @shards),
	join(',', ($coord->safe_psql('postgres', q{SELECT string_agg(version || ':' || status, ' ' ORDER BY version) FROM credit_risk.models WHERE name = 'pd_gbm'})) x 2),
	'and every shard has the coordinator\'s statuses');

# cr_publish: the coordinator's registry and routes on both shards in one
# two-phase commit, or on neither
my $serving = sub {
	my ($node) = @_;
	$node->safe_psql('postgres', q{SELECT string_agg(name || '@' || version || ':' || status, ' ' ORDER BY name, version)
	  FROM credit_risk.models WHERE status IN ('champion', 'challenger')}) . ' routes '
	. $node->safe_psql('postgres', q{SELECT string_agg(name || '@' || challenger_version || ':' || share, ' ' ORDER BY name) FROM credit_risk.routes});
};
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_promote('pd_gbm', 2)});
is($coord->safe_psql('postgres', q{SELECT string_agg(server || ' ' || committed, ', ' ORDER BY server) FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])}),
	'shard0 true, shard1 true', 'cr_publish commits on both shards');
is(join(',', map { $serving->($_) } @shards), join(',', ($serving->($coord)) x 2), 'and both serve what the coordinator serves');
is($coord->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE s.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM applicants_scored s JOIN applicants_local l USING (id)}),
	'0', 'every shard scores with the published champion');
# shard1 refuses (a version only it has is a champion there): shard0,
# which has already prepared, is rolled back, and neither changes
$shards[1]->safe_psql('postgres', q{
	INSERT INTO credit_risk.models (id, name, version, status, algorithm, source, label, features, train_rows, holdout_rows, train_seconds, model)
	SELECT 100000, 'shard_only', 1, 'champion', algorithm, source, label, features, train_rows, holdout_rows, train_seconds, model
	  FROM credit_risk.models WHERE name = 'pd_gbm' AND version = 1});
my @before = map { $serving->($_) } @shards;
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_promote('pd_gbm', 1)});
($ret, $out, $err) = $coord->psql('postgres', q{SELECT * FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])});
like($err, qr/server "shard1" would not serve what the coordinator serves/, 'a shard that would serve something else fails the publish, named');
is($serving->($shards[0]), $before[0], 'and the shard that had prepared is rolled back: it serves what it did');
is($serving->($shards[1]), $before[1], 'as does the shard that failed');
is(join(',', map { $_->safe_psql('postgres', q{SELECT count(*) FROM pg_prepared_xacts}) } @shards), '0,0', 'no prepared transaction is left behind');
$shards[1]->safe_psql('postgres', q{DELETE FROM credit_risk.models WHERE name = 'shard_only'});
is($coord->safe_psql('postgres', q{SELECT bool_and(committed) FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])}), 't', 'fixed, the publish goes through');
is(join(',', map { $serving->($_) } @shards), join(',', ($serving->($coord)) x 2), 'and both shards serve version 1 again');
# a challenger route reaches the shards with the versions
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_route('pd_gbm', 2, 0.25)});
$coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])});
like($serving->($shards[0]), qr/routes pd_gbm\@2:0\.25$/, 'a challenger route is published with the versions');
is(join(',', map { $serving->($_) } @shards), join(',', ($serving->($coord)) x 2), 'both shards serve the champion and the challenger');
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_route('pd_gbm', 2, 0)});
$coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])});
is(join(',', map { $serving->($_) } @shards), join(',', ($serving->($coord)) x 2), 'and a route stopped on the coordinator is stopped on the shards');
($ret, $out, $err) = $coord->psql('postgres', q{BEGIN; SELECT * FROM credit_risk.cr_publish(ARRAY['shard0']); COMMIT;});
like($err, qr/cr_publish\(\) cannot run inside a transaction block/, 'cr_publish refuses to run in a transaction block (the shards read what is committed)');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT * FROM credit_risk.cr_publish(ARRAY['shard0', 'nowhere'])});
like($err, qr/server "nowhere" does not exist/, 'an unknown server is an error');
is($shards[0]->safe_psql('postgres', q{SELECT count(*) FROM pg_prepared_xacts}), '0', 'before anything is prepared for good');

# batch scoring on the shards: the partitions are postgres_fdw foreign
# tables of servers that list credit_risk in their extensions, so each
# shard runs cr_predict_batch over its own table
is($coord->safe_psql('postgres', q{
	WITH s AS (SELECT * FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants', 'id')),
	     l AS (SELECT * FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants_local', 'id'))
	SELECT (SELECT count(*) FROM s) || ' ' || (SELECT count(*) FROM (SELECT * FROM s EXCEPT SELECT * FROM l) d)
	       || ' ' || (SELECT count(*) FROM (SELECT * FROM l EXCEPT SELECT * FROM s) d)}),
	"$rows 0 0", "cr_predict_batch on the shards: all $rows rows, each one node's (key, PD, category, score, version)");
is($coord->safe_psql('postgres', q{
	WITH s AS (SELECT * FROM credit_risk.cr_explain_batch('pd_gbm', 'applicants', 'id', 2)),
	     l AS (SELECT * FROM credit_risk.cr_explain_batch('pd_gbm', 'applicants_local', 'id', 2))
	SELECT (SELECT count(*) FROM s) || ' ' || (SELECT count(*) FROM (SELECT * FROM s EXCEPT SELECT * FROM l) d)}),
	($rows * 2) . ' 0', 'cr_explain_batch on the shards: every reason one node gives');
# with a challenger route, the shards split the keys as the coordinator would
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_route('pd_gbm', 2, 0.3)});
($ret, $out, $err) = $coord->psql('postgres', q{SELECT count(*) FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants', 'id')});
like($err, qr/server "shard0" does not serve model "pd_gbm" as the coordinator does.*\n.*DETAIL:  The coordinator serves "1:champion 2:challenger route 2:0\.3"; the server serves "1:champion route 2:0"/,
	'a shard that does not serve what the coordinator serves stops the batch, before any row is scored');
$coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])});
is($coord->safe_psql('postgres', q{
	WITH s AS (SELECT * FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants', 'id')),
	     l AS (SELECT * FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants_local', 'id'))
	SELECT (SELECT count(*) FILTER (WHERE model_version = 'pd_gbm@2') > 0 FROM s)
	       || ' ' || (SELECT count(*) FROM (SELECT * FROM s EXCEPT SELECT * FROM l) d)}),
	'true 0', 'published, the shards route a share of keys to the challenger, each key as one node does');
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_route('pd_gbm', 2, 0); SELECT count(*) FROM credit_risk.cr_publish(ARRAY['shard0', 'shard1'])});
# results come in binary; text arrives in the database's encoding, whatever
# the session's client_encoding (a key with a non-ASCII letter, under LATIN1)
for my $i (0 .. 1)
{
	$shards[$i]->safe_psql('postgres', q{
		CREATE TABLE applicants_t AS SELECT 'M' || chr(252) || 'ller-' || id AS id, a, b, c, y FROM applicants;
	});
}
$coord->safe_psql('postgres', q{
	CREATE TABLE applicants_t (id text, a float8, b float8, c float8, y int) PARTITION BY HASH (id);
	CREATE FOREIGN TABLE applicants_t_0 PARTITION OF applicants_t FOR VALUES WITH (MODULUS 2, REMAINDER 0)
	    SERVER shard0 OPTIONS (table_name 'applicants_t');
	CREATE FOREIGN TABLE applicants_t_1 PARTITION OF applicants_t FOR VALUES WITH (MODULUS 2, REMAINDER 1)
	    SERVER shard1 OPTIONS (table_name 'applicants_t');
});
is($coord->safe_psql('postgres', q{
	SET client_encoding = 'LATIN1';
	SELECT count(*) FILTER (WHERE key = 'M' || chr(252) || 'ller-' || l.id AND b.default_probability = l.pd)
	  FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants_t', 'id') b
	  JOIN (SELECT id, credit_risk.cr_predict('pd_gbm', x) AS pd FROM applicants_local x) l
	    ON b.key = 'M' || chr(252) || 'ller-' || l.id}),
	$rows, 'batch results with non-ASCII text keys, under client_encoding LATIN1: every key and PD one node\'s');
# a cancel on the coordinator cancels the shards' batches
cancels_on_shards(q{SELECT count(*) FROM credit_risk.cr_explain_batch('pd_gbm', 'applicants', 'id', NULL)},
	200, 'cr_explain_batch', 'a batch on the shards');
# the caller's rights: a role that may not read the source may not run it on the shards
$coord->safe_psql('postgres', q{CREATE ROLE batch_nobody; GRANT USAGE ON SCHEMA credit_risk TO batch_nobody; GRANT SELECT ON credit_risk.models, credit_risk.routes TO batch_nobody});
($ret, $out, $err) = $coord->psql('postgres', q{SET ROLE batch_nobody; SELECT count(*) FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants', 'id')});
like($err, qr/permission denied for table applicants/, 'a role that may not read the source may not score it on the shards');

# a shard that is down: a clear error, and nothing crashes
$shards[1]->stop;
($ret, $out, $err) = $coord->psql('postgres', q{SELECT count(*) FROM applicants_scored});
like($err, qr/could not connect to server "shard1"/, 'a shard that is down gives a clear error naming it');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT credit_risk.cr_train('down', 'applicants', 'y', 'logistic', NULL, '{"key": "id"}')});
like($err, qr/could not connect to server "shard1"/, 'so does training on the sharded table');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT credit_risk.cr_train('down', 'applicants', 'y', 'logistic', NULL, '{"key": "id", "distributed": true}')});
like($err, qr/could not connect to server "shard1"/, 'and distributed training');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT credit_risk.cr_train('down', 'applicants', 'y', 'gbm', NULL, '{"key": "id", "distributed": true}')});
like($err, qr/could not connect to server "shard1"/, 'and distributed tree training');
($ret, $out, $err) = $coord->psql('postgres', q{SELECT count(*) FROM credit_risk.cr_predict_batch('pd_gbm', 'applicants', 'id')});
like($err, qr/could not connect to server "shard1"/, 'and batch scoring on the shards');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models WHERE name = 'down'}), '0', 'and nothing is registered');
$shards[1]->start;
is($coord->safe_psql('postgres', q{SELECT count(*) FROM applicants_scored}), $rows, 'back up, every row scores again');

no_crashes($_) for ($coord, @shards);
$_->stop for ($coord, @shards);
done_testing();
