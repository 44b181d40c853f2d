# Citus: a coordinator and two workers, 200,000 applicants in a distributed
# table.  Runs when the citus extension is installed (it is not in Debian's
# archive), and skips with a message otherwise.  Training on the
# distributed table gives one node's model byte for byte; with the model
# bytes in a reference table the scoring query runs on the workers (each
# shard's rows where they are) and every PD equals one node's; by name,
# with the registry mirrored to each worker, the same.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use CrShards;

my $sharedir = `pg_config --sharedir`;
chomp $sharedir;
if (!-f "$sharedir/extension/citus.control")
{
	plan skip_all => 'the citus extension is not installed (it is not in Debian\'s archive; docs/scaling.md says how to build it)';
}

my $root = $ENV{TESTDIR} || '.';
my $rows = 200000;
my $user = scalar getpwuid($<);
my @nodes = map { PostgreSQL::Test::Cluster->new($_) } qw(coordinator worker1 worker2);
for my $n (@nodes)
{
	$n->init;
	$n->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus'
citus.node_conninfo = 'sslmode=disable'
citus.shard_count = 8
max_worker_processes = 16
});
	$n->start;
	$n->safe_psql('postgres', 'CREATE EXTENSION citus; CREATE EXTENSION credit_risk;');
}
my ($coord, @workers) = @nodes;
$coord->safe_psql('postgres', sprintf(q{SELECT citus_set_coordinator_host('%s', %d)}, $coord->host, $coord->port));
$coord->safe_psql('postgres', sprintf(q{SELECT citus_add_node('%s', %d)}, $_->host, $_->port)) for @workers;
is($coord->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'), '2', 'two workers');

$coord->safe_psql('postgres', qq{
	\\set rows $rows
	\\i $root/test/data/applicants_synth.sql
	CREATE TABLE applicants (id int PRIMARY KEY, a float8, b float8, c float8, y int);
	SELECT create_distributed_table('applicants', 'id');
	INSERT INTO applicants SELECT * FROM applicants_local;
});
is($coord->safe_psql('postgres', q{SELECT count(*) || ' ' || count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'applicants'::regclass}),
	'8 2', 'eight shards, on both workers');

# training on the distributed table: the rows arrive in task-completion
# order, and the model is one node's byte for byte
trains_as_one_node($coord, 'distributed table',
	'{"key": "id", "n_trees": 20, "max_depth": 5, "subsample": 0.8}');

# params.distributed: each worker sums its shards' rows for every pass (the
# aggregate's combine function adds them up on the coordinator)
my $dist = trains_distributed_as_one_node($coord, 'distributed table');
like($dist, qr/"parts": 1\b/, 'distributed: the distributed table is one part, which Citus splits over its shards');
my $plan = $coord->safe_psql('postgres', q{EXPLAIN (VERBOSE, COSTS OFF)
	SELECT credit_risk.cr_train_partial('\x00'::bytea, ARRAY[a, b, c], y::float8, credit_risk.cr_split_unit(id, 42)) FROM applicants});
like($plan, qr/Task Count: 8/, 'distributed: a pass is a task per shard');
like($plan, qr/Query: SELECT pg_catalog\.worker_partial_agg\('credit_risk\.cr_train_partial\(bytea,double precision\[\],double precision,double precision\)'::regprocedure/,
	'distributed: each task sums its shard\'s rows on the worker (worker_partial_agg)');

# distributed trees: the rows of a distributed table are binned on the
# coordinator as they stream in (the load aggregate keeps its rows in its
# session, so Citus gathers them for it); the trees are one node's
my $gdist = trains_gbm_distributed_as_one_node($coord, 'distributed table');
like($gdist, qr/"parts_binned_on_shard": 0\b/, 'distributed trees: a Citus table is binned on the coordinator');

# by value: the serving model in a reference table, joined in the query
$coord->safe_psql('postgres', q{
	CREATE TABLE serving_models AS SELECT name, model FROM credit_risk.models WHERE name = 'pd_gbm';
	SELECT create_reference_table('serving_models');
});
$plan = $coord->safe_psql('postgres', q{SET jit = off; EXPLAIN (VERBOSE, COSTS OFF)
	SELECT t.id, credit_risk.cr_predict(m.model, t) FROM applicants t JOIN serving_models m ON m.name = 'pd_gbm'});
like($plan, qr/Task Count: 8/, 'the scoring query is split into a task per shard');
like($plan, qr/Query: SELECT t\.id, credit_risk\.cr_predict\(m\.model, t\.\*\).*FROM \(public\.applicants_\d+ t JOIN public\.serving_models_\d+ m/s,
	'and each task scores its shard\'s rows on the worker, with the reference table\'s copy of the model');
is($coord->safe_psql('postgres', q{SET jit = off;
	CREATE TEMP TABLE by_value AS
	SELECT t.id, credit_risk.cr_predict(m.model, t) AS pd FROM applicants t JOIN serving_models m ON m.name = 'pd_gbm';
	SELECT count(*) || ' ' || count(*) FILTER (WHERE d.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM by_value d JOIN applicants_local l USING (id)}),
	"$rows 0", "all $rows PDs scored on the workers equal one node's to the bit");

# by name: the registry copied into a reference table (on every node), and
# from there into each worker's own registry with cr_mirror
$coord->safe_psql('postgres', q{
	CREATE TABLE serving_registry AS SELECT * FROM credit_risk.models;
	SELECT create_reference_table('serving_registry');
});
for my $w (@workers)
{
	$w->safe_psql('postgres', q{SELECT * FROM credit_risk.cr_mirror('serving_registry', 'credit_risk.models', ARRAY['id'])});
	is($w->safe_psql('postgres', q{SELECT string_agg(name || '@' || version || ':' || status, ',' ORDER BY name) FROM credit_risk.models WHERE name LIKE 'pd_%'}),
		'pd_gbm@1:champion,pd_logistic@1:champion', $w->name . ': the registry is mirrored, with its statuses');
}
$plan = $coord->safe_psql('postgres', q{SET jit = off; EXPLAIN (VERBOSE, COSTS OFF)
	SELECT t.id, credit_risk.cr_predict('pd_gbm', t) FROM applicants t});
like($plan, qr/Task Count: 8.*Query: SELECT id, credit_risk\.cr_predict\('pd_gbm'::text, t\.\*\)/s,
	'by name, the call goes to the workers');
is($coord->safe_psql('postgres', q{SET jit = off;
	CREATE TEMP TABLE by_name AS SELECT t.id, credit_risk.cr_predict('pd_gbm', t) AS pd FROM applicants t;
	SELECT count(*) FILTER (WHERE d.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM by_name d JOIN applicants_local l USING (id)}),
	'0', 'and the workers\' PDs by name equal one node\'s');

# cr_publish to the workers, reached as postgres_fdw servers: a promotion
# on the coordinator reaches every worker's registry in one two-phase
# commit, and by-name scoring on the workers follows it
my $servers = join '', map {
	my $w = $workers[$_];
	sprintf(q{CREATE SERVER w%d FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '%s', port '%d', dbname 'postgres');
	          CREATE USER MAPPING FOR CURRENT_USER SERVER w%d OPTIONS (user '%s');}, $_, $w->host, $w->port, $_, $user)
} 0 .. 1;
$coord->safe_psql('postgres', qq{CREATE EXTENSION postgres_fdw; $servers});
$coord->safe_psql('postgres', q{SELECT credit_risk.cr_train('pd_gbm', 'applicants_local', 'y', 'gbm', NULL, '{"key": "id", "n_trees": 5}');
	SELECT credit_risk.cr_promote('pd_gbm', 2)});
is($coord->safe_psql('postgres', q{SELECT string_agg(server || ' ' || committed, ', ' ORDER BY server) FROM credit_risk.cr_publish(ARRAY['w0', 'w1'])}),
	'w0 true, w1 true', 'cr_publish commits on both workers');
is($coord->safe_psql('postgres', q{SET jit = off;
	CREATE TEMP TABLE published AS SELECT t.id, credit_risk.cr_predict('pd_gbm', t) AS pd FROM applicants t;
	SELECT count(*) || ' ' || count(*) FILTER (WHERE d.pd IS DISTINCT FROM credit_risk.cr_predict('pd_gbm', l))
	  FROM published d JOIN applicants_local l USING (id)}),
	"$rows 0", 'the workers score by name with the published champion (version 2), as the coordinator does');

no_crashes($_) for @nodes;
$_->stop for @nodes;
done_testing();
