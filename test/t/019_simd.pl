# The batch tree scorers (credit_risk.simd = off | avx2 | avx512 | auto).
#
# - A path is accepted exactly when /proc/cpuinfo lists its instructions
#   (avx2, avx512f); a refused one is feature_not_supported, and auto
#   always works.
# - Every accepted path gives, for every row, the row form's probability
#   to the last bit, on forests that reach every level kind of the vector
#   walks (depth 1 to 10; the top levels' permutes, the gathers deeper
#   down), tree counts that are not a multiple of the four walked at once,
#   and row counts that end in a part group and span several blocks, with
#   NULL and NaN values.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my %cpu;
if (open my $fh, '<', '/proc/cpuinfo')
{
	while (<$fh>)
	{
		if (/^flags\s*:\s*(.*)$/)
		{
			$cpu{$_} = 1 for split ' ', $1;
			last;
		}
	}
	close $fh;
}
my $x86 = `uname -m` =~ /x86_64/;

my $node = PostgreSQL::Test::Cluster->new('simd');
$node->init;
$node->start;

my %has = (off => 1, auto => 1, avx2 => $x86 && $cpu{avx2}, avx512 => $x86 && $cpu{avx512f});
my @paths;
for my $path (qw(off avx2 avx512 auto))
{
	my ($rc, $out, $err) = $node->psql('postgres', "LOAD 'credit_risk'; SET credit_risk.simd = $path",
		extra_params => [ '-v', 'VERBOSITY=verbose', '-v', 'ON_ERROR_STOP=1' ]);
	if ($has{$path})
	{
		is($rc, 0, "simd = $path is accepted on this CPU") or diag $err;
		push @paths, $path;
	}
	else
	{
		like($err, qr/0A000.*this CPU has no/s, "simd = $path is refused on this CPU");
	}
}
note 'paths tested: ' . join(', ', @paths);

# the boolean values the setting once took
is($node->safe_psql('postgres', "LOAD 'credit_risk'; SET credit_risk.simd = on; SHOW credit_risk.simd"),
	'auto', 'on means auto');
is($node->safe_psql('postgres', "LOAD 'credit_risk'; SET credit_risk.simd = false; SHOW credit_risk.simd"),
	'off', 'false means off');

# 2,500 rows: two full blocks and a part one ending in a part group.
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION credit_risk;
SELECT setseed(0.25);
CREATE TABLE t AS
SELECT i AS id,
       CASE WHEN random() < 0.1 THEN NULL ELSE random() * 10 END AS a,
       random() * 4 - 2 AS b,
       floor(random() * 30)::float8 AS c,
       random() AS d, random() AS e, random() AS f,
       random() AS u
  FROM generate_series(1, 2500) i;
ALTER TABLE t ADD COLUMN y int;
UPDATE t SET y = (u < 1 / (1 + exp(-(coalesce(a, 5) - 5 + sin(3 * coalesce(b, 0)) + (c::int % 7) / 3.0 - 1
                                      + 2 * (d > 0.5)::int * (e - 0.5) + f))))::int;
});

# depth, trees: every depth the dense walk holds, trees not a multiple of 4
my @shapes = ([ 1, 5 ], [ 2, 7 ], [ 3, 6 ], [ 4, 9 ], [ 5, 10 ], [ 6, 23 ], [ 7, 13 ], [ 10, 6 ]);
for my $s (@shapes)
{
	my ($depth, $trees) = @$s;
	$node->safe_psql('postgres',
		"SELECT credit_risk.cr_train('d$depth', 't', 'y', 'gbm', ARRAY['a','b','c','d','e','f'],
		   '{\"max_depth\": $depth, \"n_trees\": $trees, \"min_child_weight\": 0.01, \"holdout\": 0.2}')");
}

# NaN scores as missing (training refuses it)
$node->safe_psql('postgres', q{UPDATE t SET b = 'NaN' WHERE id % 97 = 0});

for my $path (@paths)
{
	for my $s (@shapes)
	{
		my ($depth, $trees) = @$s;
		my $res = $node->safe_psql(
			'postgres', qq{
SET credit_risk.simd = $path;
SELECT count(*), count(*) FILTER (WHERE b.default_probability IS DISTINCT FROM credit_risk.cr_predict('d$depth', r))
  FROM credit_risk.cr_predict_batch('d$depth', 't', 'id') b
  JOIN t r ON r.id::text = b.key});
		is($res, '2500|0', "simd = $path, depth $depth, $trees trees: all rows equal the row form");
	}
}

# the trees reach their depth, so every level of the walk is exercised
for my $depth (6, 10)
{
	is( $node->safe_psql(
			'postgres', qq{
WITH RECURSIVE tr AS (
    SELECT * FROM credit_risk.cr_model_trees((SELECT model FROM credit_risk.models WHERE name = 'd$depth'))),
n AS (SELECT tree, node, left_child, right_child, 0 AS d FROM tr WHERE node = 0
      UNION ALL
      SELECT c.tree, c.node, c.left_child, c.right_child, n.d + 1
        FROM n JOIN tr c ON c.tree = n.tree AND c.node IN (n.left_child, n.right_child))
SELECT max(d) FROM n}),
		$depth, "model d$depth has leaves at depth $depth");
}

no_crashes($node);
$node->stop;

done_testing();
