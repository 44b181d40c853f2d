# ALTER EXTENSION credit_risk UPDATE from 0.1.0 keeps every model, every row
# and every score, and leaves the extension exactly as a fresh 0.2.0
# install makes it.
#
# 0.1.0 is installed from its own script (sql/credit_risk--0.1.0.sql, as
# released).  The registry gets two versions written by the 0.1.0 module
# itself (test/data/upgrade-0.1.0: their rows, and the PDs that module gave
# for every German credit applicant), and versions trained, promoted and
# routed through 0.1.0's functions before the update; rules, mirror state
# and a pipeline step are set up the same way.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $root = $ENV{TESTDIR} || '.';
my $fixtures = "$root/test/data/upgrade-0.1.0";
-f "$fixtures/models.copy" or BAIL_OUT("$fixtures/models.copy not found");

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

$node->safe_psql('postgres', qq{
	CREATE EXTENSION credit_risk VERSION '0.1.0';
	\\cd '$root'
	\\i test/data/german.sql
});
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'credit_risk'}),
	'0.1.0', '0.1.0 installs from its own script');

# the versions the 0.1.0 module wrote, and its PDs
$node->safe_psql('postgres', qq{
	\\copy credit_risk.models FROM '$fixtures/models.copy'
	SELECT pg_catalog.setval('credit_risk.models_id_seq', (SELECT max(id) FROM credit_risk.models));
	CREATE TABLE old_scores (name text, applicant_id int, pd float8);
	\\copy old_scores FROM '$fixtures/scores.copy'
});

# this module under 0.1.0's definitions, as between installing the new
# module and running the update
$node->safe_psql('postgres', q{
	SELECT credit_risk.cr_train('new_lr', 'german_credit', 'bad', 'logistic', NULL, '{"key": "applicant_id"}');
	SELECT credit_risk.cr_train('new_gbm', 'german_credit', 'bad', 'gbm', NULL,
	                            '{"key": "applicant_id", "n_trees": 30}');
	SELECT credit_risk.cr_train('new_gbm', 'german_credit', 'bad', 'gbm', NULL,
	                            '{"key": "applicant_id", "n_trees": 20, "seed": 3}');
	SELECT credit_risk.cr_promote('pd_gbm', 1);
	SELECT credit_risk.cr_promote('new_gbm', 1);
	SELECT credit_risk.cr_route('new_gbm', 2, 0.3);
	INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity, model_name)
	VALUES ('auc_floor_pd', 'auc', '<', 0.7, 'critical', 'pd_gbm');
	UPDATE credit_risk.alert_rules SET threshold = 0.3 WHERE name = 'feature_drift_major';
	CREATE TABLE extract (id int, amount float8, updated_at timestamptz);
	INSERT INTO extract SELECT i, i * 10, '2026-01-01'::timestamptz + i * interval '1 day'
	  FROM generate_series(1, 50) i;
	CREATE TABLE local_copy (id int PRIMARY KEY, amount float8, updated_at timestamptz);
	SELECT * FROM credit_risk.cr_mirror('extract', 'local_copy', ARRAY['id'], 'updated_at');
	INSERT INTO credit_risk.quality_rules (target, rule, column_name, args)
	VALUES ('local_copy', 'not_null', 'amount', '{}');
	INSERT INTO credit_risk.pipeline_steps (step, command)
	VALUES ('ingestion', 'SELECT count(*) FROM credit_risk.cr_mirror(''extract'', ''local_copy'', ARRAY[''id''], ''updated_at'')');
	SELECT credit_risk.cr_monitor('pd_gbm', 'german_credit', 'bad');
});

# the C functions whose SQL definitions changed still answer under the old ones
is($node->safe_psql('postgres', q{SELECT (credit_risk.cr_evaluate('pd_lr', 'german_credit', 'bad') ->> 'auc')::float8 > 0.7}),
	't', "cr_evaluate under 0.1.0's four-argument definition");
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM credit_risk.cr_model_trees((SELECT model FROM credit_risk.models WHERE name = 'pd_gbm'))}),
	't', "cr_model_trees under 0.1.0's nine columns");
is($node->safe_psql('postgres', q{SELECT count(DISTINCT feature) > 1 FROM credit_risk.cr_drift_baseline('pd_gbm')}),
	't', "cr_drift_baseline under 0.1.0's six columns");

# the bytes 0.1.0 wrote score as 0.1.0 scored them
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM old_scores o JOIN german_credit g USING (applicant_id)
	 WHERE credit_risk.cr_predict(o.name, g) IS DISTINCT FROM o.pd}),
	'0', "every applicant's PD from the 0.1.0 module's bytes equals the 0.1.0 module's, to the bit");

# everything that must survive the update
my $state_sql = q{
	SELECT 'score ' || m.name || ' ' || pg_catalog.md5(pg_catalog.string_agg(
	           credit_risk.cr_predict(m.name, g)::text || '/' ||
	           credit_risk.cr_predict(m.model, g)::text || '/' ||
	           (credit_risk.cr_predict(m.name, pg_catalog.to_jsonb(g) || pg_catalog.jsonb_build_object('customer_id', g.applicant_id)))::text,
	           ',' ORDER BY g.applicant_id))
	  FROM credit_risk.models m CROSS JOIN german_credit g
	 WHERE m.status IN ('champion', 'challenger') OR m.version = 1
	 GROUP BY m.name
	UNION ALL
	SELECT 'batch ' || pg_catalog.md5(pg_catalog.string_agg(b::text, ',' ORDER BY b.key))
	  FROM credit_risk.cr_predict_batch('new_gbm', 'german_credit', 'applicant_id') b
	UNION ALL
	SELECT 'model ' || id || ' ' || name || '@' || version || ' ' || status || ' ' || pg_catalog.md5(model)
	  FROM credit_risk.models
	UNION ALL
	SELECT 'route ' || name || ' ' || challenger_version || ' ' || share FROM credit_risk.routes
	UNION ALL
	SELECT 'rule ' || name || ' ' || threshold || ' ' || builtin FROM credit_risk.alert_rules
	UNION ALL
	SELECT 'mirror ' || source || ' ' || target || ' ' || last_watermark FROM credit_risk.mirror_state
	UNION ALL
	SELECT 'quality ' || target || ' ' || rule FROM credit_risk.quality_rules
	UNION ALL
	SELECT 'step ' || step || ' ' || command FROM credit_risk.pipeline_steps
	UNION ALL
	SELECT 'run ' || id || ' ' || model_version || ' ' || rows FROM credit_risk.monitoring_runs
	UNION ALL
	SELECT 'pipeline runs ' || count(*) FROM credit_risk.pipeline_runs
	ORDER BY 1};
my $before = $node->safe_psql('postgres', $state_sql);
like($before, qr/route new_gbm 2 0.3/, 'the state before the update has the route');

my ($ret, $out, $err) = $node->psql('postgres', 'ALTER EXTENSION credit_risk UPDATE');
is($ret, 0, 'ALTER EXTENSION credit_risk UPDATE runs') or diag($err);
like($err, qr/WARNING:  pipeline steps ingestion now run as superuser/,
	"the update warns that a 0.1.0 step would now run as the superuser, and be refused");
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'credit_risk'}),
	'0.2.0', 'the extension is at 0.2.0');

is($node->safe_psql('postgres', $state_sql), $before,
	'every model scores the same to the bit (by name, by bytes, as jsonb, in batch), and every table kept its rows');

# the updated extension is the one a fresh install makes
my $catalog = slurp_file("$root/test/upgrade/catalog.sql");
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION credit_risk');
my $updated = $node->safe_psql('postgres', $catalog);
my $fresh = $node->safe_psql('fresh', $catalog);
cmp_ok(scalar(split /\n/, $fresh), '>', 1000, 'the catalog description has every object (' . scalar(split /\n/, $fresh) . ' lines)');
is($updated, $fresh,
	'functions, tables, columns, constraints, indexes, triggers, views, grants and dumped tables are those of a fresh 0.2.0 install');

# what 0.2.0 added works on the kept versions
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_explain('pd_gbm',
	(SELECT g FROM german_credit g WHERE applicant_id = 7), NULL) WHERE feature <> '(base)'}),
	$node->safe_psql('postgres', q{SELECT array_length(features, 1) FROM credit_risk.models WHERE name = 'pd_gbm'}),
	'cr_explain explains a version the 0.1.0 module wrote');
is($node->safe_psql('postgres', q{
	SELECT abs(sum(e.contribution) - ln(p / (1 - p))) < 1e-9
	  FROM german_credit g,
	       LATERAL credit_risk.cr_explain('pd_lr', g, NULL) e,
	       LATERAL (SELECT credit_risk.cr_predict('pd_lr', g) AS p) s
	 WHERE g.applicant_id = 11 GROUP BY p}),
	't', "its contributions add up to the 0.1.0 version's logit");
is($node->safe_psql('postgres', q{SELECT credit_risk.cr_export('pd_gbm', 1) ->> 'version'}),
	'1', 'cr_export reads it');
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_evaluate('pd_lr', 'german_credit', 'bad', 1,
	'{"column": "applicant_id", "holdout_from": 900}')}), '1', 'cr_evaluate takes its new split argument');
is($node->safe_psql('postgres', q{SELECT algorithm FROM credit_risk.cr_train('card', 'german_credit', 'bad', 'scorecard', NULL, '{"key": "applicant_id"}')}),
	'scorecard', 'a scorecard trains after the update');
like($node->safe_psql('postgres', q{SELECT status || ': ' || (detail ->> 'reason') FROM credit_risk.cr_run_pipeline_step('ingestion')}),
	qr/^failed: 42501: pipeline steps do not run as superuser/,
	"the kept step, now run as the superuser who updated, is refused");
$node->safe_psql('postgres', q{CREATE ROLE step_runner; GRANT step_runner TO CURRENT_USER;
	GRANT USAGE ON SCHEMA credit_risk TO step_runner;
	GRANT EXECUTE ON FUNCTION credit_risk.cr_mirror(regclass, regclass, text[], text) TO step_runner;
	GRANT SELECT, INSERT, UPDATE ON credit_risk.mirror_state TO step_runner;
	GRANT SELECT ON credit_risk.quality_rules, extract TO step_runner;
	GRANT SELECT, INSERT, UPDATE ON local_copy TO step_runner;
	GRANT INSERT ON credit_risk.pipeline_runs, credit_risk.quarantine TO step_runner;
	GRANT USAGE ON SEQUENCE credit_risk.pipeline_runs_id_seq, credit_risk.quarantine_id_seq TO step_runner;
	UPDATE credit_risk.pipeline_steps SET run_as = 'step_runner' WHERE step = 'ingestion'});
is($node->safe_psql('postgres', q{SELECT status || ' ' || (detail ->> 'run_as') FROM credit_risk.cr_run_pipeline_step('ingestion')}),
	'succeeded step_runner', 'and runs as the role it is then given');
$node->safe_psql('postgres', q{CREATE ROLE writer; GRANT USAGE ON SCHEMA credit_risk TO writer;
	GRANT SELECT, UPDATE ON credit_risk.models TO writer});
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE writer; UPDATE credit_risk.models SET status = 'retired'});
like($err, qr/credit_risk.models is changed only through/, "the registry's guard is in force after the update");

# pg_dump keeps what the update kept
my $dump = $node->safe_psql('postgres', q{SELECT count(*) FROM pg_catalog.pg_extension e,
	unnest(e.extconfig) c WHERE e.extname = 'credit_risk'});
is($dump, $node->safe_psql('fresh', q{SELECT count(*) FROM pg_catalog.pg_extension e,
	unnest(e.extconfig) c WHERE e.extname = 'credit_risk'}), 'as many tables kept by pg_dump as in a fresh install');

no_crashes($node);
$node->stop;
done_testing();
