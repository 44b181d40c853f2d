# Model bytes are hostile input: mutated and crafted models that carry a
# VALID checksum (so the checksum cannot save the decoder) must each give
# an ERROR or a well-formed answer, and never take the server down.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

# CRC-32C (Castagnoli), reflected, as PostgreSQL's pg_crc32c computes it.
my @crc_table;
for my $i (0 .. 255)
{
	my $c = $i;
	for (1 .. 8)
	{
		$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1);
	}
	$crc_table[$i] = $c;
}

sub crc32c
{
	my ($data) = @_;
	my $crc = 0xFFFFFFFF;
	for my $byte (unpack('C*', $data))
	{
		$crc = $crc_table[($crc ^ $byte) & 0xFF] ^ ($crc >> 8);
	}
	return $crc ^ 0xFFFFFFFF;
}

# Fix up the length and checksum fields of a model byte string.
sub seal
{
	my ($bytes) = @_;
	substr($bytes, 12, 4) = pack('V', length($bytes));
	my $crc = crc32c(substr($bytes, 0, 16) . substr($bytes, 20));
	substr($bytes, 16, 4) = pack('V', $crc);
	return $bytes;
}

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	CREATE TABLE t AS
	SELECT i AS id, (i % 17)::float8 AS a, ((i * 7) % 13)::float8 AS b,
	       ((i * 3) % 5)::float8 AS c, ((i % 17) + (i % 5) > 12)::int AS y
	  FROM generate_series(1, 500) i;
	SELECT version FROM credit_risk.cr_train('m', 't', 'y', 'logistic',
	                                         ARRAY['a', 'b', 'c'], '{"holdout": 0, "l2": 1}');
});

my $hex = $node->safe_psql('postgres',
	q{SELECT encode(model, 'hex') FROM credit_risk.models WHERE name = 'm'});
my $good = pack('H*', $hex);
my $good_p = $node->safe_psql('postgres',
	q{SELECT credit_risk.cr_predict('m', ARRAY[3, 4, 2]::float8[])});

# Our own sealing reproduces the stored checksum: the harness is right.
is(unpack('H*', seal($good)), $hex, 'resealing a good model leaves it unchanged');

# A fresh server process would mean a crash: remember the postmaster's
# view of the backends by checking for "terminated by signal" in the log.
my $log_offset = -s $node->logfile;

# Each case goes to the decoder, the scorer and the explainer; a plpgsql wrapper turns
# an ERROR into text so that many cases run in one session.
$node->safe_psql('postgres', q{
	CREATE FUNCTION try_model(b bytea) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		PERFORM credit_risk.cr_model_info(b);
		PERFORM credit_risk.cr_predict(b, ARRAY[3, 4, 2]::float8[]);
		PERFORM credit_risk.cr_explain(b, ARRAY[3, NULL, 2]::float8[], NULL);
		RETURN 'answer';
	EXCEPTION WHEN OTHERS THEN
		RETURN 'ERROR: ' || SQLSTATE || ' ' || SQLERRM;
	END;
	$$;
});

# Run a list of [name, bytes] cases in batches; returns name => outcome.
sub try_models
{
	my @cases = @_;
	my %outcome;
	while (my @batch = splice(@cases, 0, 100))
	{
		my $values = join(",\n", map {
			my $i = $_;
			"($i, decode('" . unpack('H*', $batch[$i][1]) . "', 'hex'))"
		} 0 .. $#batch);
		my ($rc, $out, $err) = $node->psql('postgres',
			"SELECT try_model(b) FROM (VALUES $values) v(i, b) ORDER BY i");
		is($rc, 0, "batch of " . scalar(@batch) . " models ran without losing the connection")
		  or diag($err);
		my @lines = split /\n/, $out;
		for my $i (0 .. $#batch)
		{
			$outcome{ $batch[$i][0] } = $lines[$i] // 'missing';
		}
	}
	return %outcome;
}

# Cases "label 1" .. "label rounds": bytes with 1 to most random bytes of the
# payload changed, resealed.
sub mutated
{
	my ($label, $bytes, $rounds, $most) = @_;
	my @out;
	for my $round (1 .. $rounds)
	{
		my $b = $bytes;
		for (1 .. 1 + int(rand($most)))
		{
			my $p = 20 + int(rand(length($b) - 20));
			substr($b, $p, 1) = chr(int(rand(256)));
		}
		push @out, ["$label $round", seal($b)];
	}
	return @out;
}

# The offset of each section of model bytes, by tag.
sub section_offsets
{
	my ($bytes) = @_;
	my %off;
	my $pos = 20;
	while ($pos + 8 <= length($bytes))
	{
		my ($tag, undef, $len) = unpack('vvV', substr($bytes, $pos, 8));
		$off{$tag} = $pos;
		$pos += 8 + $len;
	}
	return %off;
}

my @cases;
# 1. Random single- and multi-byte mutations of the payload, resealed.
srand(20261126);
push @cases, mutated('mutation', $good, 400, 4);

# 2. Truncations and extensions, resealed.
for my $len (20 .. length($good) - 1)
{
	push @cases, ["truncated to $len", seal(substr($good, 0, $len))];
}
push @cases, ['zero bytes appended', seal($good . ("\0" x 9))];
push @cases, ['huge section appended', seal($good . pack('vvV', 1, 0, 0xFFFFFFF0))];

# 3. Crafted structures: the first section is FEATURES at offset 20.
my $sect = 20;
my $feat_len = unpack('V', substr($good, $sect + 4, 4));
my $after_features = $sect + 8 + $feat_len;

my %crafted = (
	'feature count huge' => sub { my $b = shift; substr($b, $sect + 8, 4) = pack('V', 0xFFFFFFFF); $b },
	'feature count zero' => sub { my $b = shift; substr($b, $sect + 8, 4) = pack('V', 0); $b },
	'feature count too large for section' => sub { my $b = shift; substr($b, $sect + 8, 4) = pack('V', 4000); $b },
	'section length past end' => sub { my $b = shift; substr($b, $sect + 4, 4) = pack('V', 0x7FFFFFFF); $b },
	'section length wraps' => sub { my $b = shift; substr($b, $sect + 4, 4) = pack('V', 0xFFFFFFFF); $b },
	'name length huge' => sub { my $b = shift; substr($b, $sect + 12, 2) = pack('v', 0xFFFF); $b },
	'name length zero' => sub { my $b = shift; substr($b, $sect + 12, 2) = pack('v', 0); $b },
	'name with NUL' => sub { my $b = shift; substr($b, $sect + 14, 1) = "\0"; $b },
	'name not UTF-8' => sub { my $b = shift; substr($b, $sect + 14, 1) = "\xff"; $b },
	'unknown section tag' => sub { my $b = shift; substr($b, $sect, 2) = pack('v', 99); $b },
	'tag zero' => sub { my $b = shift; substr($b, $sect, 2) = pack('v', 0); $b },
	'features section twice' => sub { my $b = shift; $b . substr($b, $sect, 8 + $feat_len) },
	'features section missing' => sub { my $b = shift; substr($b, $sect, 8 + $feat_len) = ''; $b },
	'impute before features' => sub {
		my $b = shift;
		my $f = substr($b, $sect, 8 + $feat_len);
		my $rest = substr($b, $after_features);
		substr($b, 0, 20) . $rest . $f;
	},
	'algorithm unknown' => sub { my $b = shift; substr($b, 6, 2) = pack('v', 7); $b },
	'algorithm gbm without trees' => sub { my $b = shift; substr($b, 6, 2) = pack('v', 2); $b },
);

# Find the scoring and logit sections to poke at their values.
my %offset = section_offsets($good);
my $nan = pack('H*', '000000000000f87f');
my $inf = pack('H*', '000000000000f07f');
$crafted{'coefficient NaN'} = sub { my $b = shift; substr($b, $offset{4} + 12, 8) = $nan; $b };
$crafted{'coefficient Infinity'} = sub { my $b = shift; substr($b, $offset{4} + 12, 8) = $inf; $b };
$crafted{'coefficient count wrong'} = sub { my $b = shift; substr($b, $offset{4} + 8, 4) = pack('V', 2); $b };
$crafted{'coefficient count huge'} = sub { my $b = shift; substr($b, $offset{4} + 8, 4) = pack('V', 0x40000000); $b };
$crafted{'impute NaN'} = sub { my $b = shift; substr($b, $offset{2} + 8, 8) = $nan; $b };
$crafted{'threshold above 1'} = sub { my $b = shift; substr($b, $offset{3} + 8, 8) = pack('d<', 7); $b };
$crafted{'pdo negative'} = sub { my $b = shift; substr($b, $offset{3} + 32, 8) = pack('d<', -20); $b };
$crafted{'band count huge'} = sub { my $b = shift; substr($b, $offset{3} + 40, 4) = pack('V', 0xFFFFFFFF); $b };
$crafted{'band count zero'} = sub { my $b = shift; substr($b, $offset{3} + 40, 4) = pack('V', 0); $b };
$crafted{'cut-offs decreasing'} = sub { my $b = shift; substr($b, $offset{3} + 44, 8) = pack('d<', 0.9); $b };
# the drift baseline (section 6): two thresholds, a column count, then per
# column ncuts, cuts, shares, missing
$crafted{'drift thresholds reversed'} = sub { my $b = shift; substr($b, $offset{6} + 8, 8) = pack('d<', 9); $b };
$crafted{'baseline column count wrong'} = sub { my $b = shift; substr($b, $offset{6} + 24, 4) = pack('V', 2); $b };
$crafted{'baseline bins huge'} = sub { my $b = shift; substr($b, $offset{6} + 28, 4) = pack('V', 0xFFFFFFFF); $b };
$crafted{'baseline share above 1'} = sub {
	my $b = shift;
	my $ncuts = unpack('V', substr($b, $offset{6} + 28, 4));
	substr($b, $offset{6} + 32 + 8 * $ncuts, 8) = pack('d<', 2.5);
	$b;
};
$crafted{'baseline cuts decreasing'} = sub {
	my $b = shift;
	my $ncuts = unpack('V', substr($b, $offset{6} + 28, 4));
	return substr($b, 0, 6) . pack('v', 99) . substr($b, 8) if $ncuts < 2;
	substr($b, $offset{6} + 32, 8) = pack('d<', 1e300);
	$b;
};

for my $name (sort keys %crafted)
{
	push @cases, ["crafted: $name", seal($crafted{$name}->($good))];
}

# 4. Tree models: mutated, truncated and crafted, resealed.
$node->safe_psql('postgres', q{
	SELECT version FROM credit_risk.cr_train('g', 't', 'y', 'gbm', ARRAY['a', 'b', 'c'],
	                                         '{"holdout": 0, "n_trees": 3, "max_depth": 3}');
});
my $ghex = $node->safe_psql('postgres',
	q{SELECT encode(model, 'hex') FROM credit_risk.models WHERE name = 'g'});
my $ggood = pack('H*', $ghex);
is(unpack('H*', seal($ggood)), $ghex, 'resealing a good tree model leaves it unchanged');

push @cases, mutated('tree mutation', $ggood, 300, 3);
for my $len (20 .. length($ggood) - 1)
{
	push @cases, ["tree truncated to $len", seal(substr($ggood, 0, $len))] if $len % 3 == 0;
}

my %goff = section_offsets($ggood);
my $ntrees = unpack('V', substr($ggood, $goff{5} + 8, 4));
my $node0 = $goff{5} + 8 + 4 + 8 + 4 * $ntrees;	# tree 0, node 0 (the root)
my %gcrafted = (
	'tree count huge' => sub { my $b = shift; substr($b, $goff{5} + 8, 4) = pack('V', 0xFFFFFFFF); $b },
	'tree count zero' => sub { my $b = shift; substr($b, $goff{5} + 8, 4) = pack('V', 0); $b },
	'node count huge' => sub { my $b = shift; substr($b, $goff{5} + 20, 4) = pack('V', 0x7FFFFFFF); $b },
	'node count zero' => sub { my $b = shift; substr($b, $goff{5} + 20, 4) = pack('V', 0); $b },
	'root splits on a missing feature' => sub { my $b = shift; substr($b, $node0, 4) = pack('V', 3); $b },
	'root feature negative' => sub { my $b = shift; substr($b, $node0, 4) = pack('V', 0xFFFFFFFE); $b },
	'root threshold NaN' => sub { my $b = shift; substr($b, $node0 + 4, 8) = $nan; $b },
	'root left child is itself' => sub { my $b = shift; substr($b, $node0 + 12, 4) = pack('V', 0); $b },
	'root right child past the tree' => sub { my $b = shift; substr($b, $node0 + 16, 4) = pack('V', 1000); $b },
	'root child negative' => sub { my $b = shift; substr($b, $node0 + 16, 4) = pack('V', 0xFFFFFFFF); $b },
	'default flag 2' => sub { my $b = shift; substr($b, $node0 + 20, 1) = "\x02"; $b },
	'value Infinity' => sub { my $b = shift; substr($b, $node0 + 21, 8) = $inf; $b },
	'cover negative' => sub { my $b = shift; substr($b, $node0 + 29, 8) = pack('d<', -1); $b },
	'base margin NaN' => sub { my $b = shift; substr($b, $goff{5} + 12, 8) = $nan; $b },
	'logistic model with trees' => sub { my $b = shift; substr($b, 6, 2) = pack('v', 1); $b },
);
# Valid bytes whose covers TreeSHAP must take without dividing by zero or
# overflowing into a crash: every cover of tree 0 zero, or near the largest
# double, or the children's covers not adding up to the parent's.
my $nnodes0 = unpack('V', substr($ggood, $goff{5} + 20, 4));
sub set_covers
{
	my ($b, $f) = @_;
	substr($b, $node0 + 37 * $_ + 29, 8) = pack('d<', $f->($_)) for 0 .. $nnodes0 - 1;
	return $b;
}
my %odd_covers = (
	'every cover zero' => sub { 0 },
	'covers near the largest double' => sub { 1.7e308 },
	'covers that do not add up' => sub { my $k = shift; $k % 3 == 0 ? 0 : 10 ** ($k % 7) },
);
for my $name (sort keys %odd_covers)
{
	push @cases, ["odd covers: $name", seal(set_covers($ggood, $odd_covers{$name}))];
}
for my $name (sort keys %gcrafted)
{
	push @cases, ["tree crafted: $name", seal($gcrafted{$name}->($ggood))];
}

# 5. Scorecards (format 3, a WOE section): mutated, truncated and crafted.
$node->safe_psql('postgres', q{
	SELECT version FROM credit_risk.cr_train('s', 't', 'y', 'scorecard', ARRAY['a', 'b', 'c'],
	                                         '{"holdout": 0, "max_bins": 4}');
});
my $shex = $node->safe_psql('postgres',
	q{SELECT encode(model, 'hex') FROM credit_risk.models WHERE name = 's'});
my $sgood = pack('H*', $shex);
is(unpack('H*', seal($sgood)), $shex, 'resealing a good scorecard leaves it unchanged');
push @cases, mutated('scorecard mutation', $sgood, 300, 3);
my %soff = section_offsets($sgood);
# (cut just before the drift baseline, the optional last section, it is a
# whole model without one)
for my $len (20 .. length($sgood) - 1)
{
	push @cases, ["scorecard truncated to $len", seal(substr($sgood, 0, $len))]
	  if $len % 3 == 0 && $len != $soff{6};
}
push @cases, ['scorecard without its baseline', seal(substr($sgood, 0, $soff{6}))];
# the WOE section (tag 9): feature count, then feature 0's bin count and cuts
my $w0 = $soff{9} + 8 + 4;
my $nb0 = unpack('V', substr($sgood, $w0, 4));
my %scrafted = (
	'bin count huge' => sub { my $b = shift; substr($b, $w0, 4) = pack('V', 0xFFFFFFFF); $b },
	'bin count past the limit' => sub { my $b = shift; substr($b, $w0, 4) = pack('V', 256); $b },
	'bin count one more' => sub { my $b = shift; substr($b, $w0, 4) = pack('V', $nb0 + 1); $b },
	'first cut NaN' => sub { my $b = shift; substr($b, $w0 + 4, 8) = $nan; $b },
	'cuts decreasing' => sub {
		my $b = shift;
		substr($b, $w0 + 12, 8) = pack('d<', -1e300) if $nb0 > 2;
		substr($b, $w0 + 4, 8) = pack('d<', 1e300) if $nb0 <= 2;
		$b;
	},
	'first WoE Infinity' => sub { my $b = shift; substr($b, $w0 + 4 + 8 * ($nb0 - 1), 8) = $inf; $b },
	'events above rows' => sub {
		my $b = shift;
		my $at = $w0 + 4 + 8 * ($nb0 - 1) + 8;
		substr($b, $at + 8, 8) = pack('VV', 0xFFFFFFFF, 0x7FFFFFFF);
		$b;
	},
	'feature count off' => sub { my $b = shift; substr($b, $soff{9} + 8, 4) = pack('V', 2); $b },
	'scorecard as format 2' => sub { my $b = shift; substr($b, 4, 2) = pack('v', 2); $b },
	'logistic model with bins' => sub { my $b = shift; substr($b, 6, 2) = pack('v', 1); $b },
	'tree model with bins' => sub { my $b = shift; substr($b, 6, 2) = pack('v', 2); $b },
	'scorecard without bins' => sub { my $b = shift; substr($b, $soff{9}, 2) = pack('v', 99); $b },
);
for my $name (sort keys %scrafted)
{
	push @cases, ["scorecard crafted: $name", seal($scrafted{$name}->($sgood))];
}

# 6. Calibrated models (format 4, a CALIBRATION section): Platt on the
# logistic model, isotonic on trees; crafted sections.
$node->safe_psql('postgres', q{
	SELECT version FROM credit_risk.cr_train('cp', 't', 'y', 'logistic', ARRAY['a', 'b', 'c'],
	                                         '{"holdout": 0.3, "l2": 1, "calibration": "platt"}');
	SELECT version FROM credit_risk.cr_train('ci', 't', 'y', 'gbm', ARRAY['a', 'b', 'c'],
	                                         '{"holdout": 0.3, "n_trees": 3, "max_depth": 2, "calibration": "isotonic"}');
});
my %calgood;
for my $nm ('cp', 'ci')
{
	my $h = $node->safe_psql('postgres', "SELECT encode(model, 'hex') FROM credit_risk.models WHERE name = '$nm'");
	$calgood{$nm} = pack('H*', $h);
	is(unpack('H*', seal($calgood{$nm})), $h, "resealing a good calibrated model leaves it unchanged ($nm)");
	my %coff = section_offsets($calgood{$nm});
	my $c0 = $coff{10} + 8;		# the method
	for my $round (1 .. 100)
	{
		my $b = $calgood{$nm};
		substr($b, $c0 + int(rand(length($b) - $c0 > 40 ? 40 : length($b) - $c0)), 1) = chr(int(rand(256)));
		push @cases, ["calibration mutation $nm $round", seal($b)];
	}
	my %ccrafted = (
		'unknown method' => sub { my $b = shift; substr($b, $c0, 4) = pack('V', 3); $b },
		'method none' => sub { my $b = shift; substr($b, $c0, 4) = pack('V', 0); $b },
		'first number NaN' => sub { my $b = shift; substr($b, $c0 + 4 + ($nm eq 'ci' ? 4 : 0), 8) = $nan; $b },
		'as format 3' => sub { my $b = shift; substr($b, 4, 2) = pack('v', 3); $b },
		'as format 2' => sub { my $b = shift; substr($b, 4, 2) = pack('v', 2); $b },
		'without the section' => sub { my $b = shift; substr($b, $coff{10}, 2) = pack('v', 99); $b },
	);
	if ($nm eq 'ci')
	{
		my $np = unpack('V', substr($calgood{$nm}, $c0 + 4, 4));
		$ccrafted{'point count huge'} = sub { my $b = shift; substr($b, $c0 + 4, 4) = pack('V', 0xFFFFFFFF); $b };
		$ccrafted{'point count zero'} = sub { my $b = shift; substr($b, $c0 + 4, 4) = pack('V', 0); $b };
		$ccrafted{'PD above 1'} = sub { my $b = shift; substr($b, $c0 + 8, 8) = pack('d<', 1.5); $b };
		$ccrafted{'calibrated PDs decreasing'} = sub {
			my $b = shift;
			substr($b, $c0 + 8 + 8 * $np, 8) = pack('d<', 1.0) if $np > 1;
			substr($b, $c0 + 8 + 8 * $np, 8) = pack('d<', -0.5) if $np <= 1;
			$b;
		};
	}
	for my $name (sort keys %ccrafted)
	{
		push @cases, ["calibration crafted $nm: $name", seal($ccrafted{$name}->($calgood{$nm}))];
	}
}

my %outcome = try_models(@cases);
for my $name (grep { /^calibration crafted/ } sort keys %outcome)
{
	like($outcome{$name}, qr/^ERROR: (XX001|22P03|0A000) /, "crafted model rejected: $name");
}
for my $name (sort keys %scrafted)
{
	like($outcome{"scorecard crafted: $name"}, qr/^ERROR: (XX001|22P03|0A000) /,
		"crafted scorecard rejected: $name");
}
is(scalar(grep { /^scorecard truncated/ && $outcome{$_} !~ /^ERROR: / } keys %outcome), 0,
	'every truncated scorecard is rejected');
is($outcome{'scorecard without its baseline'}, 'answer', 'a scorecard without a drift baseline is scored');
for my $name (sort keys %crafted)
{
	like($outcome{"crafted: $name"}, qr/^ERROR: (XX001|22P03|0A000) /,
		"crafted model rejected: $name");
}
for my $len (20 .. length($good) - 1)
{
	like($outcome{"truncated to $len"}, qr/^ERROR: /, "truncated model rejected: $len bytes")
	  if $len % 37 == 0;
}
for my $name (sort keys %odd_covers)
{
	is($outcome{"odd covers: $name"}, 'answer', "odd covers are scored and explained: $name");
}
for my $name (sort keys %gcrafted)
{
	like($outcome{"tree crafted: $name"}, qr/^ERROR: (XX001|22P03|0A000) /,
		"crafted tree model rejected: $name");
}
is(scalar(grep { /^tree truncated/ && $outcome{$_} !~ /^ERROR: / } keys %outcome), 0,
	'every truncated tree model is rejected');
my @all = values %outcome;
my $errors = grep { /^ERROR: / } @all;
my $answers = grep { /^answer$/ } @all;
is($errors + $answers, scalar(@all), 'every case gave an ERROR or an answer');
is(scalar(grep { /^ERROR: / && !/^ERROR: (XX001|22P03|0A000) / } @all), 0,
	'every rejection carries a data errcode');
cmp_ok($errors, '>', 500, "mutated models are rejected ($errors errors, $answers answers)");

# The server never restarted and still scores the good model identically.
my $log = slurp_file($node->logfile, $log_offset);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
is($node->safe_psql('postgres', q{SELECT credit_risk.cr_predict('m', ARRAY[3, 4, 2]::float8[])}),
	$good_p, 'the good model still scores the same');
is($node->safe_psql('postgres',
	"SELECT credit_risk.cr_predict('\\x$hex'::bytea, ARRAY[3, 4, 2]::float8[])"),
	$good_p, 'the good bytes score like the registry model');

# A model written before baselines existed (the same bytes without the
# baseline section) still loads and scores; drift says it has no baseline.
my $old = seal(substr($good, 0, $offset{6}));
my $oldhex = unpack('H*', $old);
is($node->safe_psql('postgres', "SELECT credit_risk.cr_predict('\\x$oldhex'::bytea, ARRAY[3, 4, 2]::float8[])"),
	$good_p, 'a model without a baseline scores like the one with it');
$node->safe_psql('postgres', "UPDATE credit_risk.models SET model = '\\x$oldhex'::bytea WHERE name = 'm'");
my ($rc, $out, $err) = $node->psql('postgres', q{SELECT * FROM credit_risk.cr_drift_score('m', 't')});
like($err, qr/ERROR:  model m\@1 has no drift baseline/, 'drift says the model has no baseline');
# Evaluation needs no baseline: it scores the labelled rows (it once used
# the drift scan's set-up, which reads the baselines, and lost the backend).
is($node->safe_psql('postgres', q{SELECT (credit_risk.cr_evaluate('m', 't', 'y'))->>'rows'}),
	'500', 'a model without a baseline is evaluated on every row');

no_crashes($node);
$node->stop;
done_testing();
