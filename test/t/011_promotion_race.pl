# Scoring by name never fails and never mixes versions while the registry
# changes under it: 8 clients score applicants while another session
# promotes, retrains and re-routes in a loop.  Each answer must equal the
# score of the version it names (jsonb form) or of one of the versions
# (array form).  This once failed about one call in 50,000 with "could not
# open relation with OID 0": an invalidation taken in while the registry
# was opened made the backend forget the registry's OIDs mid-lookup.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $seconds = 25;

my $node = PostgreSQL::Test::Cluster->new('promotion_race');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = 30\n");
$node->start;

# expected: every version's score of every applicant, written in the same
# statement that trains the version, so a version is known before it serves.
my $train = q{
	WITH v AS (SELECT * FROM credit_risk.cr_train('m', 't', 'y', 'logistic', NULL,
	                                              jsonb_build_object('key', 'id', 'l2', %s))),
	     e AS (INSERT INTO expected SELECT v.version, t.id, credit_risk.cr_predict(v.model, ARRAY[t.a, t.b])
	             FROM v, t RETURNING version)
	SELECT min(version) FROM e};
$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	CREATE TABLE t AS
	SELECT i AS id, (i % 17)::float8 AS a, ((i * 7) % 13)::float8 AS b,
	       ((i % 17) + (i % 5) > 12)::int AS y
	  FROM generate_series(1, 500) i;
	CREATE TABLE expected (version int, id int, p float8, PRIMARY KEY (version, id));
	CREATE TABLE wrong (id int, answer text, at timestamptz DEFAULT clock_timestamp());
});
$node->safe_psql('postgres', sprintf($train, $_)) for (0, 30, 300);
$node->safe_psql('postgres', q{SELECT credit_risk.cr_promote('m', 1)});

# Each transaction scores one applicant in both forms and records any answer
# that no version gives.
my $script = $node->basedir . '/score.sql';
open(my $fh, '>', $script) or die "cannot write $script: $!";
print $fh q{\set id random(1, 500)
INSERT INTO wrong (id, answer)
SELECT t.id, r::text
  FROM t, LATERAL credit_risk.cr_predict('m', jsonb_build_object('customer_id', t.id, 'a', t.a, 'b', t.b)) r
 WHERE t.id = :id
   AND NOT EXISTS (SELECT 1 FROM expected e
                    WHERE e.version = split_part(r->>'model_version', '@', 2)::int AND e.id = t.id
                      AND abs(e.p - (r->>'default_probability')::float8) <= 1e-9 * e.p);
INSERT INTO wrong (id, answer)
SELECT t.id, p::text
  FROM t, LATERAL credit_risk.cr_predict('m', ARRAY[t.a, t.b]) p
 WHERE t.id = :id
   AND NOT EXISTS (SELECT 1 FROM expected e WHERE e.id = t.id AND abs(e.p - p) <= 1e-9 * e.p);
};
close $fh;

my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-T', $seconds, '-f', $script,
	  $node->connstr('postgres') ],
	'>', \$out, '2>', \$err);

# Meanwhile: promote the versions in turn, retrain every fifth round, and
# route a share of applicants to a challenger every seventh.
my $admin = $node->background_psql('postgres');
my ($promotions, $trainings, $routes) = (0, 0, 0);
my $deadline = time() + $seconds - 2;
my $round = 0;
while (time() < $deadline)
{
	$round++;
	my $versions = $admin->query_safe(q{SELECT max(version) FROM credit_risk.models WHERE name = 'm'});
	my $v = 1 + $round % $versions;
	$admin->query_safe("SELECT version FROM credit_risk.cr_promote('m', $v)");
	$promotions++;
	if ($round % 5 == 0)
	{
		$admin->query_safe(sprintf($train, $round % 7));
		$trainings++;
	}
	if ($round % 7 == 0)
	{
		my $c = 1 + ($v % $versions);
		$c = 1 + ($c % $versions) if $c == $v;
		$admin->query_safe("SELECT share FROM credit_risk.cr_route('m', $c, 0.3)");
		$routes++;
	}
	elsif ($round % 7 == 3)
	{
		$admin->query_safe(q{SELECT (credit_risk.cr_route(r.name, r.challenger_version, 0)).share
		                       FROM credit_risk.routes r WHERE r.name = 'm'});
		$routes++;
	}
}
$admin->quit;
$bench->finish;
my $rc = $? >> 8;

my ($tx) = $out =~ /number of transactions actually processed: (\d+)/;
$tx //= 0;
note("pgbench: $tx transactions (2 scoring calls each), $promotions promotions, "
	  . "$trainings trainings, $routes route changes");
note($err) if $err ne '';
is($rc, 0, 'pgbench finished without an aborted client');
unlike($err, qr/aborted|ERROR/, 'no scoring call failed');
cmp_ok($tx, '>', 2000, "enough scoring calls ran ($tx transactions)");
cmp_ok($promotions, '>=', 100, "hundreds of promotions ($promotions)");
cmp_ok($trainings, '>=', 20, "retrains ($trainings)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM wrong'), '0',
	'every answer is the score of a version, and of the version it names');

no_crashes($node);
$node->stop;
done_testing();
