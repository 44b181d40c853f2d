# cr_monitor's alerts reach a LISTENing session, and a DBA's change to a
# built-in alert rule survives pg_dump and restore.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $node = PostgreSQL::Test::Cluster->new('monitor');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	CREATE TABLE t AS
	SELECT i AS id, (i % 17)::float8 AS a, ((i * 7) % 13)::float8 AS b,
	       ((i % 17) + (i % 5) > 12)::int AS y
	  FROM generate_series(1, 2000) i;
	SELECT version FROM credit_risk.cr_train('m', 't', 'y', 'logistic', NULL, '{"key": "id"}');
});

# 1. A listener receives the alert as JSON.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN credit_risk_alerts');
my $alerts = $node->safe_psql('postgres',
	q{SELECT alerts FROM credit_risk.cr_monitor('m', 'SELECT id, a + 10 AS a, b, y FROM t')});
is($alerts, '1', 'the drift rule fired once');
my ($out, $err) = $listener->query('SELECT 1');
like($out . $err,
	qr/Asynchronous notification "credit_risk_alerts" with payload "\{.*"rule": "data_drift_detected".*"severity": "warning".*\}"/,
	'the listening session received the alert with its rule and severity');
$listener->quit;

# 2. Change a built-in rule and add one; dump and restore into a new database.
$node->safe_psql('postgres', q{
	UPDATE credit_risk.alert_rules SET threshold = 0.42 WHERE name = 'data_drift_detected';
	INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold, severity)
	VALUES ('score_watch', 'score_psi', '>', 0.2, 'info');
});
my $dump = $node->basedir . '/monitor.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok(
	[ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('restored'), '-f', $dump ],
	'the dump restores without errors');

is($node->safe_psql('restored', q{
	SELECT string_agg(name || '=' || threshold, ',' ORDER BY name)
	  FROM credit_risk.effective_alert_rules}),
	'data_drift_detected=0.42,high_api_latency=200,model_performance_degradation=0.75,score_watch=0.2',
	'the rules in force after restore are the DBA\'s');
is($node->safe_psql('restored', q{SELECT count(*) FROM credit_risk.alert_rules WHERE builtin}),
	'3', 'the built-in rules are there once');
is($node->safe_psql('restored', q{SELECT count(*) || ',' || sum(alerts) FROM credit_risk.monitoring_runs}),
	'1,1', 'monitoring runs and their alert counts are restored');
is($node->safe_psql('restored', q{SELECT rule_name FROM credit_risk.alerts}),
	'data_drift_detected', 'alerts are restored');

no_crashes($node);
$node->stop;
done_testing();
