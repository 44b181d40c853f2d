# The roles of README.md's "Roles and privileges", created with exactly the
# grants listed there (the README's block is run as written): each role can
# do its part and nothing more, and the registry changes only through the
# extension's functions.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrApps;
use CrCrashCheck;
use CrRoles;

my $grants = readme_grants();
ok(defined $grants && $grants =~ /GRANT/, 'the README lists the grants');

my $node = PostgreSQL::Test::Cluster->new('roles');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');
create_readme_roles($node);
$node->safe_psql('postgres', apps_sql(2000));
$node->safe_psql('postgres', q{
	CREATE TABLE secret AS SELECT * FROM apps;
	GRANT SELECT ON apps TO cr_app, cr_trainer, cr_monitor;
	CREATE TABLE ext (id int, a float8, updated_at timestamptz);
	INSERT INTO ext SELECT i, i, now() FROM generate_series(1, 5) i;
	CREATE TABLE mirrored (id int PRIMARY KEY, a float8, updated_at timestamptz);
	GRANT SELECT ON ext TO cr_pipeline;
	GRANT SELECT, INSERT, UPDATE ON mirrored TO cr_pipeline;
});

# Run sql as role; returns the SQLSTATE of its error ('' when none) and output.
sub as_role
{
	my ($role, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSET ROLE $role;\n$sql", on_error_stop => 1);
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return ($state // ($ret == 0 ? '' : 'failed'), $out, $err);
}

sub can
{
	my ($role, $sql, $what) = @_;
	my ($state, $out, $err) = as_role($role, $sql);
	is($state, '', "$role can $what") or diag($err);
	return $out;
}

sub cannot
{
	my ($role, $sql, $what, $want) = @_;
	my ($state, $out, $err) = as_role($role, $sql);
	is($state, $want // '42501', "$role cannot $what") or diag($err);
}

my $train = q{SELECT version || ' ' || status FROM credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id", "l2": %s}')};
my $serving = q{SELECT credit_risk.cr_predict('pd', '{"customer_id": 1, "a": 3, "b": 4}'::jsonb)->>'model_version'};

# trainer
is(can('cr_trainer', sprintf($train, 0), 'train a new name'), '1 champion',
	'the first version of a name is its champion');
is(can('cr_trainer', sprintf($train, 10), 'train another version'), '2 candidate',
	'a later version is a candidate');
is(can('cr_app', $serving, 'score by name'), 'pd@1', 'training did not change which version serves');
cannot('cr_trainer', q{SELECT credit_risk.cr_promote('pd', 2)}, 'promote');
cannot('cr_trainer', q{SELECT credit_risk.cr_route('pd', 2, 0.5)}, 'route');
cannot('cr_trainer', q{UPDATE credit_risk.models SET status = 'champion' WHERE version = 2},
	'update the registry');
cannot('cr_trainer', q{SELECT credit_risk.cr_train('pd', 'secret', 'y', 'logistic')},
	'train on a table it may not read (the source runs with its rights)');
my $load = q{SELECT credit_risk.cr_predict('pd', ARRAY[3, 4]::float8[]);};
cannot('cr_trainer', $load . q{SET credit_risk.train_memory = '2TB'}, 'raise the training memory limit');
cannot('cr_trainer', $load . q{SET credit_risk.threads = 3}, 'set the thread count');
# ... nor go past it in params.threads (the cluster's default is the number of cores)
{
	my $cores = $node->safe_psql('postgres', q{SELECT credit_risk.cr_predict('pd', ARRAY[3, 4]::float8[]) IS NOT NULL;
		SHOW credit_risk.threads});
	$cores = (split /\n/, $cores)[-1];
	my $gbm = q{SELECT version FROM credit_risk.cr_train('pd_trees', 'apps', 'y', 'gbm', NULL,
		'{"key": "id", "n_trees": 2, "threads": %d}')};
	SKIP:
	{
		skip "credit_risk.threads is already 64", 2 if $cores >= 64;
		cannot('cr_trainer', sprintf($gbm, $cores + 1), 'ask for more threads than credit_risk.threads');
		is(can('cr_trainer', sprintf($gbm, $cores), 'ask for credit_risk.threads'), '1',
			'a role may use as many threads as credit_risk.threads');
	}
}
# set before the module is loaded, the value waits as a placeholder; the load
# drops it, and training refuses to run on the default in its place
my ($state, $out, $err) = as_role('cr_trainer', q{SET credit_risk.train_memory = '2TB';} . sprintf($train, 5));
is($state, '22023', 'a value the role may not set, given before the module loaded, stops training');
like($err, qr/credit_risk.train_memory was set to "2TB" before credit_risk was loaded/, 'and says why');
($state, $out, $err) = as_role('cr_trainer', q{SET credit_risk.threads = 'lots';} . sprintf($train, 5));
is($state, '22023', 'so does an invalid value');
is($node->safe_psql('postgres', q{SELECT string_agg(created_by, ',' ORDER BY version) FROM credit_risk.models WHERE name = 'pd'}),
	'cr_trainer,cr_trainer', 'versions record the role that trained them');

# Even a direct grant does not open the registry: only the functions write it.
$node->safe_psql('postgres', q{GRANT INSERT, UPDATE, DELETE ON credit_risk.models, credit_risk.routes TO cr_trainer;
	GRANT USAGE ON SEQUENCE credit_risk.models_id_seq TO cr_trainer});
cannot('cr_trainer', q{UPDATE credit_risk.models SET status = 'champion' WHERE version = 2},
	'update the registry even with UPDATE granted');
cannot('cr_trainer', q{INSERT INTO credit_risk.models (name, version, algorithm, status, source, label, features,
	                          train_rows, holdout_rows, train_seconds, model)
	SELECT 'pd', 3, algorithm, 'champion', source, label, features, 1, 1, 1, model
	  FROM credit_risk.models WHERE version = 2}, 'insert a champion even with INSERT granted');
cannot('cr_trainer', q{DELETE FROM credit_risk.models WHERE version = 1}, 'delete a version');
cannot('cr_trainer', q{INSERT INTO credit_risk.routes VALUES ('pd', 2, 1.0)}, 'insert a route');
$node->safe_psql('postgres', q{REVOKE INSERT, UPDATE, DELETE ON credit_risk.models, credit_risk.routes FROM cr_trainer;
	REVOKE USAGE ON SEQUENCE credit_risk.models_id_seq FROM cr_trainer});
is(can('cr_app', $serving, 'score by name'), 'pd@1', 'still version 1 serves');

# approver
cannot('cr_approver', sprintf($train, 1), 'train');
is(can('cr_approver', q{SELECT version || ' ' || status FROM credit_risk.cr_promote('pd', 2)}, 'promote'),
	'2 champion', 'the approver promotes version 2');
is(can('cr_app', $serving, 'score by name'), 'pd@2', 'version 2 serves after the promotion');
is(can('cr_approver', q{SELECT updated_by FROM credit_risk.cr_route('pd', 1, 0.25)}, 'route'),
	'cr_approver', 'routes record the role that set them');

# application
is(can('cr_app', q{SELECT count(*) FROM credit_risk.cr_predict_batch('pd', 'apps', 'id')}, 'score in batch'),
	'2000', 'batch scores every row');
can('cr_app', q{SELECT credit_risk.cr_predict('pd', ARRAY[3, 4]::float8[])}, 'score an array');
cannot('cr_app', sprintf($train, 1), 'train');
cannot('cr_app', q{SELECT credit_risk.cr_promote('pd', 1)}, 'promote');
cannot('cr_app', q{SELECT credit_risk.cr_predict_batch('pd', 'secret', 'id')}, 'score a table it may not read');
cannot('cr_app', q{SELECT credit_risk.cr_promote_internal('pd', 1, 'someone')}, "call the promotion's internals");

# monitor
can('cr_monitor', q{SELECT rows FROM credit_risk.cr_monitor('pd', 'apps', 'y')}, 'run a monitoring run');
is($node->safe_psql('postgres', q{SELECT run_by || ' ' || rows FROM credit_risk.monitoring_runs}),
	'cr_monitor 2000', 'the run is recorded');
cannot('cr_monitor', q{SELECT credit_risk.cr_promote('pd', 1)}, 'promote');

# pipeline role
is(can('cr_pipeline', q{SELECT inserted FROM credit_risk.cr_mirror('ext', 'mirrored', ARRAY['id'], 'updated_at')},
	'mirror an extract'), '5', 'the pipeline role mirrors');
cannot('cr_pipeline', sprintf($train, 1), 'train');

# The registry as the roles left it: two versions, one champion, trained by
# the trainer, promoted and routed by the approver.
is($node->safe_psql('postgres', q{SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM credit_risk.models WHERE name = 'pd'}),
	'1:challenger,2:champion', 'the registry holds what the functions wrote');

# Importing an XGBoost model is the trainer's too, with the same rights.
my $import = q{SELECT version || ' ' || status || ' ' || created_by FROM credit_risk.cr_import_xgboost('pd_xgb', '
{"learner": {"feature_names": ["a", "b"],
  "gradient_booster": {"name": "gbtree", "model": {"trees": [
    {"left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [0, 0, 0],
     "split_conditions": [3.5, 0.25, -0.25], "default_left": [1, 0, 0], "sum_hessian": [2, 1, 1],
     "tree_param": {"num_nodes": "3"}}]}},
  "learner_model_param": {"base_score": "5E-1"}, "objective": {"name": "binary:logistic"}}}')};
is(can('cr_trainer', $import, 'import an XGBoost model'), '1 champion cr_trainer',
	'an imported model is registered as trained');
cannot('cr_app', $import, 'import an XGBoost model');
cannot('cr_pipeline', $import, 'import an XGBoost model');

no_crashes($node);
$node->stop;
done_testing();
