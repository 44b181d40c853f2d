# pg_dump keeps the model registry.  credit_risk.models and its id sequence
# are registered with pg_extension_config_dump, so a plain dump of a database
# carries every model version byte for byte: the restored database serves
# the same champion, scores every applicant exactly as before, and goes on
# numbering rows and versions where the original stopped.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

# german.sql loads the data with a \copy relative to the repository root,
# which is where make runs the TAP tests from.
my $root = $ENV{TESTDIR} || '.';
-f "$root/test/data/german.data"
  or BAIL_OUT("test/data/german.data not found under $root");

my $node = PostgreSQL::Test::Cluster->new('node');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE a');
$node->safe_psql('postgres', 'CREATE DATABASE b');

$node->safe_psql('a', qq{CREATE EXTENSION credit_risk;
\\cd '$root'
\\i test/data/german.sql});

my $train = q{SELECT version FROM credit_risk.cr_train('german', 'german_credit',
	'bad', 'logistic', NULL, '{"key": "applicant_id"}')};
is($node->safe_psql('a', $train), '1', 'first model version trained in a');
is($node->safe_psql('a', q{SELECT status FROM credit_risk.cr_promote('german', 1)}),
	'champion', 'version 1 promoted in a');

# what a restore must reproduce
my $scores_sql = q{SELECT t.applicant_id, credit_risk.cr_predict('german', t)
	FROM german_credit t ORDER BY t.applicant_id};
my $registry_sql = q{SELECT id, name, version, status FROM credit_risk.models ORDER BY id};
my $md5_sql = q{SELECT md5(model) FROM credit_risk.models WHERE name = 'german' AND version = 1};
my $metrics_sql = q{SELECT metrics FROM credit_risk.models WHERE name = 'german' AND version = 1};

my $scores_a   = $node->safe_psql('a', $scores_sql);
my $registry_a = $node->safe_psql('a', $registry_sql);
my $md5_a      = $node->safe_psql('a', $md5_sql);
my $metrics_a  = $node->safe_psql('a', $metrics_sql);

# The comparisons below mean something only if a scored every applicant
# with a real probability, and not all with the same one.
my @a_rows = split /\n/, $scores_a;
is(scalar @a_rows, 1000, 'a scores all 1000 applicants');
is( scalar(grep { !(/^\d+\|([-+.e\d]+)$/ && $1 > 0 && $1 < 1) } @a_rows),
	0, 'every score in a is a probability strictly between 0 and 1');
my %distinct = map { (split /\|/)[1] => 1 } @a_rows;
cmp_ok(scalar keys %distinct, '>', 100, 'scores in a differ between applicants');
like($md5_a, qr/^[0-9a-f]{32}$/, 'model bytes in a');
like($metrics_a, qr/"auc"/, 'metrics in a');

my $dump = "$PostgreSQL::Test::Utils::tmp_check/a.sql";
$node->command_ok([ 'pg_dump', '-d', $node->connstr('a'), '-f', $dump ],
	'pg_dump of a');

# Extension members are left out of a dump unless registered with
# pg_extension_config_dump: the registry rows and the sequence position
# must be in the file.
my $dumped = slurp_file($dump);
like($dumped, qr/^COPY credit_risk\.models \(.*\) FROM stdin;$/m,
	'dump holds the rows of credit_risk.models');
like($dumped, qr/setval\('credit_risk\.models_id_seq', 1, true\)/,
	'dump holds the position of credit_risk.models_id_seq');

$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('b'), '-f', $dump ],
	'restore into b');

is($node->safe_psql('b', $registry_sql), $registry_a, 'registry rows restored in b');
is($node->safe_psql('b', $md5_sql), $md5_a, 'model bytes identical in b');
is($node->safe_psql('b', $metrics_sql), $metrics_a, 'metrics identical in b');
is( $node->safe_psql('b',
		q{SELECT status FROM credit_risk.models WHERE name = 'german' AND version = 1}),
	'champion', 'version 1 is still the champion in b');

# Compare row by row so a failure names the applicants, not 1000 lines.
sub differing_rows
{
	my ($expected, $got) = @_;
	my @e = split /\n/, $expected;
	my @g = split /\n/, $got;
	my @diff;
	for my $i (0 .. ($#e > $#g ? $#e : $#g))
	{
		my $e = $e[$i] // '(missing)';
		my $g = $g[$i] // '(missing)';
		push @diff, "expected $e, got $g" if $e ne $g;
	}
	return @diff;
}

my @diff = differing_rows($scores_a, $node->safe_psql('b', $scores_sql));
is(scalar @diff, 0, 'b scores every applicant exactly as a did')
  or diag(join("\n", @diff[ 0 .. ($#diff < 9 ? $#diff : 9) ]));

# Training again in b continues the numbering: version 2, and a row id past
# the restored one rather than a primary-key clash with it.
my ($ret, $out, $err) = $node->psql('b',
	$train =~ s/SELECT version/SELECT version || ' ' || id/r);
is($ret, 0, 'training again in b succeeds') or diag($err);
my ($id_a) = $registry_a =~ /^(\d+)\|/;
is($out, '2 ' . ($id_a + 1), 'new row in b is version 2 with the next id');

@diff = differing_rows($scores_a, $node->safe_psql('b', $scores_sql));
is(scalar @diff, 0, 'the restored champion still serves in b after a new version')
  or diag(join("\n", @diff[ 0 .. ($#diff < 9 ? $#diff : 9) ]));

no_crashes($node);
$node->stop;
done_testing();
