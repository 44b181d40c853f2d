# Cancelling a training run (statement_timeout, pg_cancel_backend) stops it
# promptly, registers nothing, and leaves no worker thread behind.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('cancel');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	CREATE TABLE applicants AS
	SELECT i AS id, random() AS a, random() AS b, random() AS c, random() AS d,
	       (random() < 0.3)::int AS y
	  FROM generate_series(1, 300000) i;
	ANALYZE applicants;
});

# 0. On a table large enough that big nodes are partitioned and histograms
# built in chunks by several tasks, the model is the same bytes at 1 and 2
# threads (and at 2 threads twice).
my $same = $node->safe_psql('postgres', q{
	SELECT count(DISTINCT model), count(*)
	  FROM (SELECT (credit_risk.cr_train('det', 'applicants', 'y', 'gbm', NULL,
	                 jsonb_build_object('key', 'id', 'n_trees', 8, 'threads', t))).model
	          FROM unnest(ARRAY[1, 2, 2]) AS t) s;
	DELETE FROM credit_risk.models;
});
is($same, '1|3', 'the same model at 1 and 2 threads on 300,000 rows');

# 1. statement_timeout during tree growth (a run far longer than the timeout)
my $start = time();
my ($rc, $out, $err) = $node->psql('postgres', q{
	SET statement_timeout = '2s';
	SELECT credit_risk.cr_train('slow', 'applicants', 'y', 'gbm', NULL,
	                            '{"key": "id", "n_trees": 100000, "max_depth": 8, "threads": 2}');
});
my $elapsed = time() - $start;
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels training');
cmp_ok($elapsed, '<', 4.0, sprintf('training stopped within 2 s of the timeout (%.2f s in all)', $elapsed));
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models}), '0',
	'a cancelled run registers nothing');

# 2. pg_cancel_backend from another session; then the backend has no extra threads
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_until(qr/started/, q{
	\echo started
	SELECT credit_risk.cr_train('slow2', 'applicants', 'y', 'gbm', NULL,
	                            '{"key": "id", "n_trees": 100000, "threads": 2}');
});
# wait until the workers exist, so the cancel lands during training
my $threads = 1;
for (1 .. 200)
{
	opendir(my $dh, "/proc/$pid/task") or last;
	$threads = scalar(grep { /^\d+$/ } readdir($dh));
	closedir($dh);
	last if $threads > 1;
	select(undef, undef, undef, 0.05);
}
cmp_ok($threads, '>', 1, "training runs worker threads ($threads threads in the backend)");
$start = time();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
my ($result, $failed) = $bg->query('SELECT 1');
$elapsed = time() - $start;
like($bg->{stderr}, qr/canceling statement due to user request/, 'the training statement was cancelled');
$bg->{stderr} = '';
cmp_ok($elapsed, '<', 2.0, sprintf('pg_cancel_backend stopped training in %.2f s', $elapsed));
opendir(my $dh, "/proc/$pid/task");
my $after = scalar(grep { /^\d+$/ } readdir($dh));
closedir($dh);
is($after, 1, 'the cancelled backend has joined its worker threads');
is($bg->query_safe(q{SELECT count(*) FROM credit_risk.models}), '0', 'nothing registered');

# the same backend trains normally afterwards
is($bg->query_safe(q{SELECT version FROM credit_risk.cr_train('ok', 'applicants', 'y', 'gbm', NULL, '{"key": "id", "n_trees": 5, "threads": 2}')}),
	'1', 'the backend trains again after a cancel');
$bg->quit;

no_crashes($node);
$node->stop;
done_testing();
