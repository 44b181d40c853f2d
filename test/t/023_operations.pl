# Operations: serving statistics and progress in shared memory (credit_risk
# preloaded), what a server without the preload says instead, and the roles
# of cr_setup_roles.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrApps;
use CrCrashCheck;

my $node = PostgreSQL::Test::Cluster->new('ops');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'credit_risk'\n");
$node->start;

$node->safe_psql('postgres', apps_sql(3000));
$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	SELECT credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id"}');
	SELECT credit_risk.cr_train('trees', 'apps', 'y', 'gbm', NULL, '{"key": "id", "n_trees": 5}');
});

sub stats
{
	my ($model) = @_;
	return $node->safe_psql('postgres', qq{SELECT calls || ' ' || rows || ' ' || errors
		FROM credit_risk.serving_stats WHERE model = '$model'});
}

# ---------------------------------------------------------------- counting
is(stats('pd'), '', 'no calls counted before any scoring');
$node->safe_psql('postgres', q{
	SELECT credit_risk.cr_predict('pd', ARRAY[a, b]) FROM apps WHERE id <= 40;
	SELECT credit_risk.cr_predict('pd', t) FROM apps t WHERE id <= 10;
	SELECT credit_risk.cr_predict('pd', jsonb_build_object('customer_id', id, 'a', a, 'b', b)) FROM apps WHERE id <= 5;
	SELECT count(*) FROM credit_risk.cr_predict_batch('pd', 'apps', 'id');
	SELECT count(*) FROM credit_risk.cr_explain('pd', ARRAY[1, 2]::float8[]);
});
is(stats('pd'), '57 3056 0',
	'40 array, 10 row, 5 jsonb and 1 explain calls of one row each, and one batch call of 3,000 rows');
is($node->safe_psql('postgres', q{SELECT version FROM credit_risk.serving_stats WHERE model = 'pd'}), '1',
	'counted under the version that scored');

# errors: after the model is resolved, each failing call counts once
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT credit_risk.cr_predict('pd', ARRAY[1]::float8[])});
like($err, qr/ERROR/, 'a call with too few features fails');
$node->psql('postgres', q{SELECT credit_risk.cr_predict('pd', ARRAY[1, 2, 3]::float8[])});
is(stats('pd'), '59 3056 2', 'two failed calls: counted as calls and as errors, no rows');
# an error caught by a PL/pgSQL exception block, inside a transaction that commits
$node->safe_psql('postgres', q{DO $$
BEGIN
    BEGIN
        PERFORM credit_risk.cr_predict('pd', ARRAY[1]::float8[]);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    PERFORM credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[]);
END $$});
is(stats('pd'), '61 3057 3', 'an error caught in a subtransaction is counted, and so is the call after it');

# a model passed as bytes
$node->safe_psql('postgres', q{SELECT credit_risk.cr_predict(m.model, ARRAY[a, b]) FROM apps, credit_risk.models m
	WHERE m.name = 'trees' AND apps.id <= 7});
like($node->safe_psql('postgres', q{SELECT model || ' ' || calls || ' ' || (version IS NULL) FROM credit_risk.serving_stats
	WHERE model LIKE '(bytes %'}), qr/^\(bytes [0-9a-f]{8}\) 7 true$/, 'a model passed as bytes is counted by its checksum');

# many calls in one statement: counted in the backend, flushed every 256
# calls and at the end of the transaction; one call in 16 timed
$node->safe_psql('postgres', q{SELECT credit_risk.cr_train('loop', 'apps', 'y', 'logistic', NULL, '{"key": "id"}');
	SELECT count(credit_risk.cr_predict('loop', ARRAY[a, b])) FROM apps, generate_series(1, 5)});
is($node->safe_psql('postgres', q{SELECT calls || ' ' || rows || ' ' || errors FROM credit_risk.serving_stats WHERE model = 'loop'}),
	'15000 15000 0', 'fifteen thousand calls in one statement are each counted');
is($node->safe_psql('postgres', q{SELECT count FROM credit_risk.cr_serving_histogram() WHERE model = 'loop' AND le = 'Infinity'}),
	'938', 'one in sixteen of them timed (the first of each run of sixteen)');
like($node->safe_psql('postgres', q{BEGIN; SELECT count(credit_risk.cr_predict('loop', ARRAY[a, b])) FROM apps WHERE id <= 100;
	SELECT calls FROM credit_risk.serving_stats WHERE model = 'loop'; COMMIT}), qr/^15100$/m,
	"a backend sees its own calls before its transaction ends");

# the latency columns
is($node->safe_psql('postgres', q{SELECT p50 > 0 AND p50 <= p95 AND p95 <= p99 AND p99 <= max
	AND seconds > 0 AND since <= now() FROM credit_risk.serving_stats WHERE model = 'pd'}), 't',
	'p50 <= p95 <= p99 <= max, all positive');
is($node->safe_psql('postgres', q{SELECT batch_calls || ' ' || (batch_seconds > 0) FROM credit_risk.serving_stats WHERE model = 'pd'}),
	'1 true', 'the batch call is counted apart');
is($node->safe_psql('postgres', q{SELECT h.count > 0 AND h.count <= s.calls - s.errors - s.batch_calls
	FROM credit_risk.cr_serving_histogram() h
	JOIN credit_risk.serving_stats s USING (model) WHERE h.model = 'pd' AND h.le = 'Infinity'}), 't',
	'the histogram holds the timed single calls under +Inf');
is($node->safe_psql('postgres', q{SELECT bool_and(c >= p) FROM (SELECT count AS c, lag(count) OVER (ORDER BY le) AS p
	FROM credit_risk.cr_serving_histogram() WHERE model = 'pd') h WHERE p IS NOT NULL}), 't',
	'its buckets are cumulative');
# a known latency: a statement that sleeps 30 ms inside the source of a batch call
$node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_predict_batch('trees',
	'SELECT a, b, id FROM apps, pg_sleep(0.03) WHERE id <= 3')});
my $trees = $node->safe_psql('postgres', q{SELECT batch_seconds FROM credit_risk.serving_stats WHERE model = 'trees'});
cmp_ok($trees, '>=', 0.03, "a batch call that sleeps 30 ms takes at least 30 ms ($trees s)");
cmp_ok($trees, '<', 3, 'and not much more');
is($node->safe_psql('postgres', q{SELECT calls || ' ' || batch_calls || ' ' || (p50 IS NULL) || ' ' || (max IS NULL)
	FROM credit_risk.serving_stats WHERE model = 'trees'}), '1 1 true true',
	'a version with only batch calls has no single-call percentiles: batch calls do not skew them');

# metrics off
$node->safe_psql('postgres', q{SET credit_risk.metrics = off; SELECT credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[])});
is(stats('pd'), '61 3057 3', 'with credit_risk.metrics off nothing is counted');
($ret, $out, $err) = $node->psql('postgres', q{CREATE ROLE nobody; GRANT USAGE ON SCHEMA credit_risk TO nobody;
	SET ROLE nobody; SET credit_risk.metrics = off});
like($err, qr/permission denied to set parameter "credit_risk.metrics"/, 'only a superuser turns it off');

# other databases keep their own
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', q{CREATE EXTENSION credit_risk});
is($node->safe_psql('other', q{SELECT count(*) FROM credit_risk.serving_stats}), '0',
	"another database sees none of this one's statistics");

# cr_monitor's latency rule reads the version's p95
my $mon = $node->safe_psql('postgres', q{SELECT latency_source || ' ' || (p95_latency_ms = (SELECT p95 FROM credit_risk.serving_stats WHERE model = 'pd'))
	FROM credit_risk.cr_monitor('pd', 'apps', 'y')});
is($mon, 'serving_stats true', "cr_monitor takes the p95 latency from serving_stats and says so");

# reset
$node->safe_psql('postgres', q{SELECT credit_risk.cr_reset_serving_stats()});
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.serving_stats}), '0', 'a reset empties the view');
($ret, $out, $err) = $node->psql('postgres', q{SET ROLE nobody; SELECT credit_risk.cr_reset_serving_stats()});
like($err, qr/permission denied for function cr_reset_serving_stats/, 'not every role may reset');
$node->safe_psql('postgres', q{SELECT credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[])});
is(stats('pd'), '1 1 0', 'counting starts again after a reset');

# a reset while other sessions score: every count lands in its own version
# or nowhere ('fails' only ever fails, so it never has rows; 'pd' never
# fails, so it never has errors)
$node->safe_psql('postgres', q{SELECT credit_risk.cr_train('fails', 'apps', 'y', 'logistic', NULL, '{"key": "id"}')});
my @loops = map { $node->background_psql('postgres', on_error_stop => 0) } 1 .. 2;
$loops[0]->query_until(qr/started/, q{
	\echo started
	DO $$ BEGIN FOR i IN 1 .. 10000000 LOOP PERFORM credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[]); END LOOP; END $$;
});
$loops[1]->query_until(qr/started/, q{
	\echo started
	DO $$ BEGIN FOR i IN 1 .. 10000000 LOOP
	    BEGIN PERFORM credit_risk.cr_predict('fails', ARRAY[1]::float8[]); EXCEPTION WHEN OTHERS THEN NULL; END;
	END LOOP; END $$;
});
my $bad = 0;
for (1 .. 300)
{
	$bad += $node->safe_psql('postgres', q{SELECT credit_risk.cr_reset_serving_stats();
		SELECT count(*) FROM credit_risk.serving_stats
		 WHERE (model = 'fails' AND rows > 0) OR (model = 'pd' AND errors > 0)});
}
is($bad, 0, '300 resets while two sessions score: no count seen in the wrong version');
cmp_ok($node->safe_psql('postgres', q{SELECT calls FROM credit_risk.serving_stats WHERE model = 'pd'}), '>', 0,
	'and counting goes on between resets');
$node->safe_psql('postgres', q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'DO $$%' AND pid <> pg_backend_pid()});
$_->quit for @loops;

# hostile histogram bounds
($ret, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM credit_risk.cr_serving_histogram(ARRAY(SELECT g::float8 FROM generate_series(1, 1001) g))});
like($err, qr/at most 1000 bucket bounds, not 1001/, 'at most 1000 bounds');
($ret, $out, $err) = $node->psql('postgres', q{SELECT count(*) FROM credit_risk.cr_serving_histogram('{1,Infinity}')});
like($err, qr/finite numbers in increasing order/, 'no infinite bound: +Infinity is always the last');

# a model recreated under the same name and version is a version of its own
$node->safe_psql('postgres', q{SELECT credit_risk.cr_reset_serving_stats();
	SELECT credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[]);
	SET credit_risk.allow_drop = on; DROP EXTENSION credit_risk CASCADE; CREATE EXTENSION credit_risk;
	SELECT credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id", "l2": 5}');
	SELECT credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[]);
	SELECT credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[])});
is($node->safe_psql('postgres', q{SELECT string_agg(calls::text, ',' ORDER BY calls) FROM credit_risk.serving_stats WHERE model = 'pd'}),
	'1,2', q{a re-created pd@1 does not add to the old pd@1's counts});
$node->safe_psql('postgres', q{SELECT credit_risk.cr_train('trees', 'apps', 'y', 'gbm', NULL, '{"key": "id", "n_trees": 5}')});

# ---------------------------------------------------------------- progress
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.progress}), '0', 'nothing in progress');
is((split /\n/, $node->safe_psql('postgres', q{BEGIN; SELECT credit_risk.cr_progress_report(repeat('é', 40), repeat('ü', 40), NULL);
	SELECT length(convert_to(command, 'UTF8')) || ' ' || length(model) FROM credit_risk.progress WHERE pid = pg_backend_pid(); COMMIT}))[-1],
	'30 31', 'names cut to fit are cut between characters');
$node->safe_psql('postgres', q{CREATE TABLE big AS
	SELECT i AS id, random() AS a, random() AS b, random() AS c, (random() < 0.3)::int AS y
	  FROM generate_series(1, 300000) i});
# a training of big started in a session of its own: (session, its pid)
sub background_training
{
	my ($name, $params) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/started/, qq{
		\\echo started
		SELECT version FROM credit_risk.cr_train('$name', 'big', 'y', 'gbm', NULL, '$params');
	});
	return ($bg, $pid);
}

# sql's answer once done(answer) holds, or the last answer after 10 s
sub poll
{
	my ($sql, $done) = @_;
	my $answer = '';
	for (1 .. 1000)
	{
		$answer = $node->safe_psql('postgres', $sql);
		last if $done->($answer);
		usleep(10_000);
	}
	return $answer;
}

my ($bg, $pid) = background_training('watched', '{"key": "id", "n_trees": 60, "max_depth": 6, "threads": 1}');
my @seen;
my $last = '';
for (1 .. 3000)
{
	my $row = $node->safe_psql('postgres', qq{SELECT command || '|' || model || '|' || phase || '|' || rows_done
		|| '|' || COALESCE(remaining::text, '') FROM credit_risk.progress WHERE pid = $pid});
	last if $row eq '' && @seen;
	if ($row ne '' && $row ne $last)
	{
		push @seen, $row;
		$last = $row;
	}
	usleep(10_000);
}
$bg->quit;
ok(scalar(@seen) > 3, 'a second session saw the training advance (' . scalar(@seen) . ' states)');
ok(!(grep { !/^cr_train\|watched\|/ } @seen), 'every state names cr_train and the model');
my @phases = map { (split /\|/)[2] } @seen;
my @order = ('loading', 'ordering', 'preparing', 'binning', 'building tree', 'evaluating', 'registering');
my $pos = 0;
my $in_order = 1;
my $last_tree = 0;
my $trees_seen = 0;
for my $p (@phases)
{
	my ($base) = $p =~ /^(building tree|[a-z]+)/;
	my ($k) = $p =~ /^building tree (\d+) of 60$/;
	if (defined $k)
	{
		$in_order = 0 if $k < $last_tree;
		$last_tree = $k;
		$trees_seen++;
	}
	my ($idx) = grep { $order[$_] eq $base } 0 .. $#order;
	if (!defined $idx || $idx < $pos) { $in_order = 0; diag("out of order: $p"); }
	else { $pos = $idx; }
}
ok($in_order, 'phases come in order and trees count up: ' . join(', ', @phases[0 .. ($#phases < 8 ? $#phases : 8)]));
cmp_ok($trees_seen, '>', 1, "the tree count advanced while it was watched ($trees_seen tree states)");
ok((grep { /^cr_train\|watched\|building tree \d+ of 60\|\d*\|\d\d:\d\d:\d\d/ } @seen), 'a tree phase has an estimate of what is left');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM credit_risk.progress WHERE pid = $pid}), '0',
	'the row goes when the command ends');

# a cancelled command leaves no row
($bg, $pid) = background_training('cancelled', '{"key": "id", "n_trees": 5000, "threads": 1}');
my $phase = poll(qq{SELECT phase FROM credit_risk.progress WHERE pid = $pid}, sub { $_[0] =~ /building tree/ });
like($phase, qr/building tree/, 'the second training is building trees');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$bg->query('SELECT 1');
like($bg->{stderr}, qr/canceling statement due to user request/, 'it was cancelled');
$bg->{stderr} = '';
is($node->safe_psql('postgres', qq{SELECT count(*) FROM credit_risk.progress WHERE pid = $pid}), '0',
	'the cancelled command left no row');
is($bg->query_safe(q{SELECT version FROM credit_risk.cr_train('after', 'apps', 'y', 'logistic', NULL, '{"key": "id"}')}),
	'1', 'the backend trains again');
is($node->safe_psql('postgres', qq{SELECT count(*) FROM credit_risk.progress WHERE pid = $pid}), '0',
	'and its row went with that command too');
$bg->quit;

# another role sees that a command runs, not what
($bg, $pid) = background_training('hidden', '{"key": "id", "n_trees": 5000, "threads": 1}');
my $hidden = poll(qq{SET ROLE nobody; SELECT command || ' ' || (model IS NULL) || ' ' || (phase IS NULL)
	FROM credit_risk.progress WHERE pid = $pid}, sub { $_[0] ne '' });
is($hidden, 'cr_train true true', "another role sees the command but not the model or phase");
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$bg->query('SELECT 1');
$bg->quit;

# ------------------------------------------------------------------- roles
my $roles = $node->safe_psql('postgres', q{SELECT string_agg(role || ':' || created, ',') FROM credit_risk.cr_setup_roles()});
is($roles, 'credit_risk_scorer:true,credit_risk_modeller:true,credit_risk_admin:true', 'cr_setup_roles creates the three roles');
is($node->safe_psql('postgres', q{SELECT string_agg(role || ':' || created, ',') FROM credit_risk.cr_setup_roles()}),
	'credit_risk_scorer:false,credit_risk_modeller:false,credit_risk_admin:false', 'and runs again without creating them twice');
$node->safe_psql('postgres', q{GRANT SELECT ON apps TO credit_risk_scorer, credit_risk_modeller, credit_risk_admin;
	SELECT credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id", "l2": 1}')});

sub as_role
{
	my ($role, $sql) = @_;
	my ($r, $o, $e) = $node->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE $role;\n$sql", on_error_stop => 1);
	my ($state) = $e =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return $state // ($r == 0 ? '' : 'failed');
}

my %can = (
	score => q{SELECT credit_risk.cr_predict('pd', ARRAY[1, 2]::float8[])},
	batch => q{SELECT count(*) FROM credit_risk.cr_predict_batch('pd', 'apps', 'id')},
	explain => q{SELECT count(*) FROM credit_risk.cr_explain('pd', ARRAY[1, 2]::float8[])},
	metadata => q{SELECT count(*) FROM credit_risk.cr_coefficients('pd')},
	stats => q{SELECT count(*) FROM credit_risk.serving_stats},
	train => q{SELECT credit_risk.cr_train('pd', 'apps', 'y', 'logistic', NULL, '{"key": "id"}')},
	tune => q{SELECT count(*) FROM credit_risk.cr_tune('pd', 'apps', 'y', 'logistic', NULL, '{"method": "random", "trials": 2, "space": {"l2": [0, 1]}}', '{"key": "id"}')},
	promote => q{SELECT credit_risk.cr_promote('pd', 1)},
	route => q{SELECT credit_risk.cr_route('pd', 2, 0.1)},
	rules => q{INSERT INTO credit_risk.alert_rules (name, metric, comparison, threshold) VALUES ('auc_low', 'auc', '<', 0.6)},
	monitor => q{SELECT credit_risk.cr_monitor('pd', 'apps', 'y')},
	reset => q{SELECT credit_risk.cr_reset_serving_stats()},
	registry => q{UPDATE credit_risk.models SET status = 'retired'},
);
my %part = (
	credit_risk_scorer => [qw(score batch explain metadata stats)],
	credit_risk_modeller => [qw(score batch explain metadata stats train tune)],
	credit_risk_admin => [qw(score batch explain metadata stats promote route rules monitor reset)],
);
for my $role (sort keys %part)
{
	my %mine = map { $_ => 1 } @{ $part{$role} };
	for my $what (qw(score batch explain metadata stats train tune promote route rules monitor reset registry))
	{
		my $state = as_role($role, $can{$what});
		if ($mine{$what}) { is($state, '', "$role can $what"); }
		else { is($state, '42501', "$role cannot $what"); }
	}
}

# a full table: credit_risk.metrics_max_models (set at server start) caps it
$node->append_conf('postgresql.conf', "credit_risk.metrics_max_models = 16\n");
$node->restart;
is($node->safe_psql('postgres', 'SHOW credit_risk.metrics_max_models'), '16', 'credit_risk.metrics_max_models is set at start');
$node->safe_psql('postgres', q{SELECT credit_risk.cr_train('many', 'apps', 'y', 'logistic', NULL,
	format('{"key": "id", "l2": %s}', g)::jsonb) FROM generate_series(1, 20) g});
$node->safe_psql('postgres', q{SELECT credit_risk.cr_predict(m.model, ARRAY[1, 2]::float8[]) FROM credit_risk.models m WHERE name = 'many'});
is($node->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE model LIKE '(bytes %') || ' ' ||
	max(calls) FILTER (WHERE model = '(not counted)') FROM credit_risk.serving_stats}),
	'16 4', 'sixteen versions counted, the calls of the other four shown as not counted');
$node->safe_psql('postgres', q{SELECT credit_risk.cr_reset_serving_stats();
	SELECT credit_risk.cr_predict(m.model, ARRAY[1, 2]::float8[]) FROM credit_risk.models m WHERE name = 'many' AND version > 10});
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || sum(calls) FROM credit_risk.serving_stats}),
	'10 10', 'a reset frees the table for the versions scored since');

no_crashes($node);
$node->stop;

# --------------------------------------------------------- without preload
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', q{CREATE EXTENSION credit_risk;
	CREATE TABLE apps AS SELECT i AS id, (i % 17)::float8 AS a, ((i % 17) > 8)::int AS y FROM generate_series(1, 500) i});
($ret, $out, $err) = $plain->psql('postgres', q{SELECT * FROM credit_risk.serving_stats});
like($err, qr/ERROR:  serving statistics need credit_risk in shared_preload_libraries/, 'without the preload the view says what it needs');
like($err, qr/HINT:  Add credit_risk to shared_preload_libraries/, 'with a hint');
($ret, $out, $err) = $plain->psql('postgres', q{SELECT * FROM credit_risk.progress});
like($err, qr/credit_risk.progress needs credit_risk in shared_preload_libraries/, 'so does credit_risk.progress');
($ret, $out, $err) = $plain->psql('postgres', q{SELECT version FROM credit_risk.cr_train('v', 'apps', 'y', 'gbm', NULL,
	'{"key": "id", "n_trees": 3, "verbose": true}')});
is($out, '1', 'training works without the preload');
my @notices = $err =~ /NOTICE:  cr_train "v": ([^\n]+)/g;
is(join(', ', @notices),
	'loading, ordering rows by key, preparing, binning, building tree, building tree 3 of 3, evaluating, registering, done',
	'params.verbose reports the phases as NOTICE lines');
is($plain->safe_psql('postgres', q{SELECT params ? 'verbose' FROM credit_risk.models}), 'f', 'verbose is not kept with the model');
is($plain->safe_psql('postgres', q{SELECT credit_risk.cr_predict('v', ARRAY[3]::float8[]) > 0}), 't', 'scoring works as before');
no_crashes($plain);
$plain->stop;
done_testing();
