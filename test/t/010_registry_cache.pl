# A backend keeps which version serves a name across statements; every
# change to the registry or the routes, committed by another session or
# made in its own transaction, is seen by its next statement, and a
# REPEATABLE READ transaction keeps the version its snapshot sees.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $node = PostgreSQL::Test::Cluster->new('registry_cache');
$node->init;
$node->start;

my $setup = q{
	CREATE TABLE IF NOT EXISTS t AS
	SELECT i AS id, (i % 17)::float8 AS a, ((i * 7) % 13)::float8 AS b,
	       ((i % 17) + (i % 5) > 12)::int AS y
	  FROM generate_series(1, 2000) i;
	SELECT version FROM credit_risk.cr_train('m', 't', 'y', 'logistic', NULL, '{"key": "id"}');
	SELECT version FROM credit_risk.cr_train('m', 't', 'y', 'logistic', NULL, '{"key": "id", "l2": 50}');
	SELECT version FROM credit_risk.cr_promote('m', 1);
};
$node->safe_psql('postgres', "CREATE EXTENSION credit_risk; $setup");

# What scores applicant 7 in a session, and with which probability.
my $score = q{SELECT (r->>'model_version') || ' ' || (r->>'default_probability')
  FROM credit_risk.cr_predict('m', '{"customer_id": 7, "a": 3, "b": 4}'::jsonb) r};
my $v1 = $node->safe_psql('postgres', $score);
my $v2 = $node->safe_psql('postgres', qq{BEGIN; SELECT credit_risk.cr_promote('m', 2) \\g /dev/null
$score; ROLLBACK;});
like($v1, qr/^m\@1 /, 'version 1 serves first');
like($v2, qr/^m\@2 /, 'version 2 serves once promoted');
isnt((split / /, $v1)[1], (split / /, $v2)[1], 'the two versions score differently');

my $a = $node->background_psql('postgres', on_error_stop => 0);
is($a->query_safe($score), $v1, 'session A: version 1');
is($a->query_safe($score), $v1, 'session A: version 1 again, from what it kept');

$node->safe_psql('postgres', q{SELECT credit_risk.cr_promote('m', 2)});
is($a->query_safe($score), $v2, 'a promotion committed elsewhere: the next statement sees it');

$a->query_safe('BEGIN');
is($a->query_safe($score), $v2, 'in a transaction block: version 2');
$node->safe_psql('postgres', q{SELECT credit_risk.cr_promote('m', 1)});
is($a->query_safe($score), $v1,
	'READ COMMITTED: a promotion committed during the transaction is seen by the next statement');
$a->query_safe('COMMIT');

$a->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is($a->query_safe($score), $v1, 'REPEATABLE READ: version 1');
$node->safe_psql('postgres', q{SELECT credit_risk.cr_promote('m', 2)});
is($a->query_safe($score), $v1, 'REPEATABLE READ: the snapshot\'s version stays');
$a->query_safe('COMMIT');
is($a->query_safe($score), $v2, 'after the transaction: version 2');

$a->query_safe('BEGIN');
$a->query_safe(q{SELECT credit_risk.cr_promote('m', 1)});
is($a->query_safe($score), $v1, 'its own uncommitted promotion: version 1');
$a->query_safe('ROLLBACK');
is($a->query_safe($score), $v2, 'rolled back: version 2 again');

# Routes: every key to version 1, then none.
$node->safe_psql('postgres', q{SELECT credit_risk.cr_route('m', 1, 1.0)});
is($a->query_safe($score), $v1, 'a route sending every key to version 1 is seen');
$node->safe_psql('postgres', q{SELECT credit_risk.cr_route('m', 1, 0)});
is($a->query_safe($score), $v2, 'the route stopped: version 2');

# The champion's bytes replaced in place by an administrator.
$node->safe_psql('postgres', q{
	UPDATE credit_risk.models SET model = (SELECT model FROM credit_risk.models WHERE name = 'm' AND version = 1)
	 WHERE name = 'm' AND version = 2});
my $replaced = $a->query_safe($score);
is((split / /, $replaced)[1], (split / /, $v1)[1], 'replaced bytes are scored at the next statement');

# The extension dropped and created again: nothing stale is used.  Dropping
# it while the registry holds models needs credit_risk.allow_drop.
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP EXTENSION credit_risk CASCADE');
like($stderr, qr/cannot drop extension credit_risk: its registry holds 2 model versions/,
	'DROP EXTENSION is refused while models exist');
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models}), '2', 'and no model was lost');
$node->safe_psql('postgres', 'SET credit_risk.allow_drop = on; DROP EXTENSION credit_risk');
my (undef, $failed) = $a->query($score);
ok($failed && $a->{stderr} =~ /does not exist/, 'scoring after DROP EXTENSION is an error, not a crash');
$a->{stderr} = '';
$node->safe_psql('postgres', "CREATE EXTENSION credit_risk; $setup");
$node->safe_psql('postgres', q{SELECT credit_risk.cr_promote('m', 2)});
is($a->query_safe($score), $node->safe_psql('postgres', $score),
	'after CREATE EXTENSION the session scores with the new registry');

$a->quit;
no_crashes($node);
$node->stop;
done_testing();
