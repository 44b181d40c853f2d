# contrib/prometheus/queries.yaml under Debian's prometheus-postgres-exporter:
# the exporter runs on loopback against a test cluster, /metrics is scraped
# with curl, and what it says matches credit_risk.serving_stats, the
# histogram, the latest monitoring run, the pipeline log and the quarantine.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrApps;
use CrCrashCheck;

my $exporter = '/usr/bin/prometheus-postgres-exporter';
my $curl = '/usr/bin/curl';
if (!-x $exporter || !-x $curl)
{
	plan skip_all => "$exporter or $curl is not installed (Debian: prometheus-postgres-exporter, curl)";
}
my $root = $ENV{TESTDIR} || '.';
my $queries = "$root/contrib/prometheus/queries.yaml";

my $node = PostgreSQL::Test::Cluster->new('prom');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'credit_risk'\n");
$node->start;

$node->safe_psql('postgres', apps_sql(2000));
$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	SELECT credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id"}');
	SELECT credit_risk.cr_train('trees', 'apps', 'y', 'gbm', NULL, '{"key": "id", "n_trees": 10}');
	SELECT credit_risk.cr_predict('pd', ARRAY[a, b]) FROM apps WHERE id <= 250;
	SELECT count(*) FROM credit_risk.cr_predict_batch('trees', 'apps', 'id');
	SELECT credit_risk.cr_predict('trees', ARRAY[a, b]) FROM apps WHERE id <= 20;
	SELECT credit_risk.cr_monitor('pd', 'apps', 'y');
	CREATE TABLE loan_extract (id int, amount float8, updated_at timestamptz);
	INSERT INTO loan_extract SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE i END, now() FROM generate_series(1, 100) i;
	CREATE TABLE local_copy (id int PRIMARY KEY, amount float8, updated_at timestamptz);
	INSERT INTO credit_risk.quality_rules (target, rule, column_name, args)
	VALUES ('local_copy', 'not_null', 'amount', '{}');
	SELECT * FROM credit_risk.cr_mirror('loan_extract', 'local_copy', ARRAY['id'], 'updated_at');
});
$node->psql('postgres', q{SELECT credit_risk.cr_predict('pd', ARRAY[1, 2, 3]::float8[])});

# the exporter, on a free loopback port, connected over the node's socket
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = sprintf('host=%s port=%d user=%s dbname=postgres sslmode=disable',
	$node->host, $node->port, scalar(getpwuid($<)));
my ($exp_out, $exp_err) = ('', '');
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$queries",
	  '--disable-default-metrics', '--disable-settings-metrics' ],
	'>', \$exp_out, '2>', \$exp_err,
	init => sub { $ENV{DATA_SOURCE_NAME} = $dsn; });

sub scrape
{
	my ($out, $err) = ('', '');
	IPC::Run::run([ $curl, '-s', '-f', '--max-time', '10', "http://127.0.0.1:$port/metrics" ],
		'>', \$out, '2>', \$err);
	return $out;
}

my $metrics = '';
for (1 .. 100)
{
	$metrics = scrape();
	last if $metrics =~ /^credit_risk_predict_calls_total/m;
	usleep(100_000);
}
like($metrics, qr/^credit_risk_predict_calls_total/m, 'the exporter serves credit_risk metrics')
  or diag("exporter stderr: $exp_err");

# metric => { label string => value }
my %m;
for my $line (split /\n/, $metrics)
{
	next unless $line =~ /^(credit_risk_\w+)\{([^}]*)\} (\S+)$/;
	my ($name, $labels, $v) = ($1, $2, $3);
	my %l = $labels =~ /(\w+)="([^"]*)"/g;
	delete $l{server};
	$m{$name}{ join(',', map { "$_=$l{$_}" } sort keys %l) } = $v;
}

# types, named by Prometheus's conventions
like($metrics, qr/^# TYPE credit_risk_predict_latency_seconds histogram$/m, 'latency is a histogram in seconds');
like($metrics, qr/^# TYPE credit_risk_predict_calls_total counter$/m, 'calls is a counter');
like($metrics, qr/^# TYPE credit_risk_predict_errors_total counter$/m, 'errors is a counter');

# the counts are serving_stats'
my $stats = $node->safe_psql('postgres', q{SELECT model, version, calls, rows, errors, seconds, batch_calls, batch_seconds
	FROM credit_risk.serving_stats ORDER BY model});
my $nstats = 0;
for my $row (split /\n/, $stats)
{
	my ($model, $version, $calls, $rows, $errors, $seconds, $batch, $batch_seconds) = split /\|/, $row;
	my $k = "model=$model,version=$version";
	is($m{credit_risk_predict_calls_total}{$k}, $calls, "$model: calls_total = serving_stats.calls ($calls)");
	is($m{credit_risk_predict_rows_total}{$k}, $rows, "$model: rows_total = serving_stats.rows ($rows)");
	is($m{credit_risk_predict_errors_total}{$k}, $errors, "$model: errors_total = serving_stats.errors ($errors)");
	is($m{credit_risk_predict_batch_calls_total}{$k}, $batch, "$model: batch_calls_total = serving_stats.batch_calls ($batch)");
	cmp_ok(abs($m{credit_risk_predict_batch_seconds_total}{$k} - $batch_seconds), '<', 1e-6,
		"$model: batch_seconds_total is serving_stats.batch_seconds");
	my $timed = $node->safe_psql('postgres', qq{SELECT count FROM credit_risk.cr_serving_histogram()
		WHERE model = '$model' AND le = 'Infinity'});
	is($m{credit_risk_predict_latency_seconds_count}{$k}, $timed,
		"$model: the histogram counts the timed single calls ($timed of " . ($calls - $errors - $batch) . ')');
	cmp_ok(abs($m{credit_risk_predict_latency_seconds_sum}{$k} - $seconds), '<', 1e-6,
		"$model: its sum is serving_stats.seconds");
	$nstats++;
}
is($nstats, 2, 'both models were scored');
is($m{credit_risk_predict_calls_total}{'model=pd,version=1'}, 253, '250 calls, two batch calls of cr_monitor and one call that failed');
is($m{credit_risk_predict_errors_total}{'model=pd,version=1'}, 1, 'the failed one is an error');

# every bucket is cr_serving_histogram's
my $hist = $node->safe_psql('postgres', q{SELECT model, version, le, count FROM credit_risk.cr_serving_histogram()});
my ($nb, $same) = (0, 0);
for my $row (split /\n/, $hist)
{
	my ($model, $version, $le, $count) = split /\|/, $row;
	my $prom_le = $le eq 'Infinity' ? '+Inf' : $le;
	my $k = "le=$prom_le,model=$model,version=$version";
	$nb++;
	$same++ if defined $m{credit_risk_predict_latency_seconds_bucket}{$k}
	  && $m{credit_risk_predict_latency_seconds_bucket}{$k} == $count;
	diag("bucket $k: exporter " . ($m{credit_risk_predict_latency_seconds_bucket}{$k} // 'none') . ", credit_risk $count")
	  if !defined $m{credit_risk_predict_latency_seconds_bucket}{$k}
	  || $m{credit_risk_predict_latency_seconds_bucket}{$k} != $count;
}
cmp_ok($nb, '>=', 40, "the histogram has its buckets ($nb for two models)");
is($same, $nb, 'every bucket the exporter serves equals cr_serving_histogram');

# the latest monitoring run, the pipeline and the quarantine
my ($auc, $version) = split /\|/, $node->safe_psql('postgres',
	q{SELECT metrics ->> 'auc', model_version FROM credit_risk.monitoring_runs ORDER BY id DESC LIMIT 1});
cmp_ok(abs($m{credit_risk_monitoring_auc}{"model=pd,model_version=$version"} - $auc), '<', 1e-9,
	"the monitoring run's AUC ($auc)");
is($m{credit_risk_monitoring_scored_rows}{"model=pd,model_version=$version"}, 2000, 'and the rows it scored');
is($m{credit_risk_pipeline_succeeded}{'job=mirror:loan_extract,status=succeeded'}, 1, 'the mirror run succeeded');
is($m{credit_risk_pipeline_rows_rejected}{'job=mirror:loan_extract,status=succeeded'}, 10, 'and quarantined 10 rows');
is($m{credit_risk_quarantine_rows}{'rule=not_null,target=local_copy'}, 10, 'the quarantine holds them');

# a later scrape sees later calls
$node->safe_psql('postgres', q{SELECT credit_risk.cr_predict('pd', ARRAY[a, b]) FROM apps WHERE id <= 9});
like(scrape(), qr/^credit_risk_predict_calls_total\{model="pd",server="[^"]*",version="1"\} 262$/m,
	'the next scrape counts the nine calls since');

$h->kill_kill;
no_crashes($node);
$node->stop;
done_testing();
