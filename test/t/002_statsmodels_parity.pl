# Parity of the logistic trainer and the training metrics with the reference
# implementations: statsmodels' Logit (Newton) for coefficients, standard
# errors, z and p-values; scikit-learn for AUC (with and without tied
# scores), log loss and Brier score.  Every model is trained with
# holdout = 0 and no penalty, so both sides fit exactly the same rows.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP;
use List::Util qw(max);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

# Debian's interpreter: the packages live there, not in whatever python3
# comes first on PATH.
my $python = '/usr/bin/python3';

# tolerances: relative for the fit, absolute for the metrics
my $fit_rtol    = 1e-6;
my $pvalue_rtol = 1e-5;		# p = erfc(|z|/sqrt 2) magnifies a relative error in z by about z^2
my $metric_atol = 1e-9;

{
	my ($out, $err) = ('', '');
	my $ok = -x $python
	  && eval {
		IPC::Run::run([ $python, '-c', 'import numpy, statsmodels.api, sklearn.metrics' ],
			'>', \$out, '2>', \$err);
	  };
	plan skip_all => "$python cannot import numpy, statsmodels and sklearn"
	  unless $ok;
}

my $root = abs_path(dirname(__FILE__) . '/../..');
my $tmp  = PostgreSQL::Test::Utils::tempdir('parity');

my $reference = <<'PY';
import json
import sys

import numpy as np


def load(path):
    # ndmin=2 keeps a one-feature file two-dimensional
    return np.loadtxt(path, delimiter=',', ndmin=2)


mode, path = sys.argv[1], sys.argv[2]
d = load(path)
if mode == 'logit':
    import statsmodels.api as sm
    y, X = d[:, 0], d[:, 1:]
    r = sm.Logit(y, sm.add_constant(X, has_constant='add')).fit(
        method='newton', tol=1e-12, maxiter=100, disp=0)
    out = {'params': r.params.tolist(), 'bse': r.bse.tolist(),
           'z': r.tvalues.tolist(), 'pvalues': r.pvalues.tolist(),
           'llf': float(r.llf), 'iterations': int(r.mle_retvals['iterations']),
           'converged': bool(r.mle_retvals['converged'])}
elif mode == 'metrics':
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
    y, p = d[:, 0], d[:, 1]
    out = {'auc': roc_auc_score(y, p), 'log_loss': log_loss(y, p),
           'brier': brier_score_loss(y, p), 'distinct_scores': int(np.unique(p).size)}
else:
    sys.exit('unknown mode ' + mode)
print(json.dumps(out))
PY

my $script = "$tmp/reference.py";
open(my $fh, '>', $script) or die "could not write $script: $!";
print $fh $reference;
close($fh);

my $node = PostgreSQL::Test::Cluster->new('parity');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');

# Uniform [0, 1) streams from a hash of (row, stream): the same table on
# every run and every platform, whatever the plan or the random() state.
sub uniform
{
	my ($stream) = @_;
	return "((pg_catalog.hashint8extended(i, $stream) & 4503599627370495)"
	  . " / 4503599627370496.0)::float8";
}

# Six features of different scales drawn for 5,000 applicants; the label
# comes from a known logistic model of them.
my $u = join(",\n           ", map { uniform($_) . " AS u$_" } 1 .. 8);
$node->safe_psql(
	'postgres', qq{
CREATE TABLE parity_synth AS
WITH u AS (
    SELECT i,
           $u
      FROM generate_series(1, 5000) AS i
), x AS (
    SELECT i, u7, u8,
           -- Box-Muller: two independent normals from u1, u2
           round(exp(10.6 + 0.45 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2)))::float8 AS income,
           round(u3::numeric, 4)::float8 AS utilization,
           floor(12 * u4)::float8 AS open_accounts,
           (u5 < 0.35)::int::float8 AS has_mortgage,
           (18 + floor(62 * u6))::float8 AS age,
           round((0.3 + 0.12 * sqrt(-2 * ln(1 - u1)) * sin(2 * pi() * u2))::numeric, 4)::float8 AS debt_to_income
      FROM u
)
SELECT income, utilization, open_accounts, has_mortgage, age, debt_to_income,
       (u8 < 1 / (1 + exp(-(-1.2 - 0.00002 * (income - 40000) + 2.2 * utilization
                           + 0.09 * open_accounts - 0.45 * has_mortgage
                           - 0.025 * (age - 40) + 2.5 * (debt_to_income - 0.3)))))::int AS y
  FROM x
 ORDER BY i;

-- scores with many exact ties: one small-integer or one binary feature
CREATE TABLE parity_ties AS
SELECT floor(6 * @{[ uniform(11) ]})::int AS grade,
       (@{[ uniform(12) ]} < 0.4)::int AS flag,
       0 AS y, i
  FROM generate_series(1, 3000) AS i;
UPDATE parity_ties
   SET y = (@{[ uniform(13) ]} < 1 / (1 + exp(-(-1.5 + 0.45 * grade + 0.6 * flag))))::int;
ALTER TABLE parity_ties DROP COLUMN i;
});

# German credit: the project's loader, with the data file's absolute path
{
	my $file = "$root/test/data/german.sql";
	open(my $in, '<', $file) or die "could not read $file: $!";
	my $sql = do { local $/; <$in> };
	close($in);
	$sql =~ s{'test/data/german\.data'}{'$root/test/data/german.data'}
	  or die "no \\copy of test/data/german.data in $file";
	$node->safe_psql('postgres', $sql);
}

sub quote_literal
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub quote_ident
{
	my ($s) = @_;
	$s =~ s/"/""/g;
	return qq{"$s"};
}

sub reference
{
	my ($mode, $csv_text, $file) = @_;
	my ($out, $err) = ('', '');

	open(my $csv, '>', $file) or die "could not write $file: $!";
	print $csv $csv_text, "\n";
	close($csv);
	IPC::Run::run([ $python, $script, $mode, $file ], '>', \$out, '2>', \$err)
	  or die "$python $script $mode $file failed:\n$err";
	return decode_json($out);
}

sub rel_err
{
	my ($got, $want) = @_;
	return abs($got - $want) / abs($want) if $want != 0;
	return abs($got);
}

# Train $name on $table and compare it with the references.
sub check_model
{
	my (%a) = @_;
	my ($name, $table, $label) = @a{qw(name table label)};
	my $features_arg =
	  $a{features}
	  ? 'ARRAY[' . join(', ', map { quote_literal($_) } @{ $a{features} }) . ']'
	  : 'NULL';
	my $params = quote_literal(encode_json({ holdout => 0, %{ $a{params} || {} } }));

	my $row = $node->safe_psql(
		'postgres', qq{
SELECT train_rows, holdout_rows, metrics->>'evaluated_on'
  FROM credit_risk.cr_train(@{[ quote_literal($name) ]}, @{[ quote_literal($table) ]},
                            @{[ quote_literal($label) ]}, 'logistic', $features_arg, $params)});
	my ($train_rows, $holdout_rows, $evaluated_on) = split /\|/, $row;
	my $nrows = $node->safe_psql('postgres', "SELECT count(*) FROM $table");
	is($train_rows,   $nrows,  "$name: trained on every row");
	is($holdout_rows, 0,       "$name: no holdout");
	is($evaluated_on, 'train', "$name: metrics evaluated on the training rows");

	my @features = split /\n/, $node->safe_psql(
		'postgres', qq{
SELECT f FROM credit_risk.models m, unnest(m.features) WITH ORDINALITY AS u(f, o)
 WHERE m.name = @{[ quote_literal($name) ]} ORDER BY o});
	is_deeply(\@features, $a{expect_features}, "$name: features in the expected order")
	  if $a{expect_features};

	# statsmodels on the same rows, columns in the model's feature order
	my $cols = join(', ', map { quote_ident($_) } @features);
	my $data = $node->safe_psql('postgres',
		"COPY (SELECT " . quote_ident($label) . ", $cols FROM $table) TO STDOUT (FORMAT csv)");
	my $sm = reference('logit', $data, "$tmp/$name.csv");
	ok($sm->{converged}, "$name: statsmodels converged");

	my @coef = map { [ split /\|/ ] } split /\n/, $node->safe_psql(
		'postgres', qq{
SELECT feature, coefficient, std_error, z, p_value
  FROM credit_risk.cr_coefficients(@{[ quote_literal($name) ]})});
	is(scalar(@coef), scalar(@features) + 1, "$name: one coefficient per feature and the intercept");
	is_deeply([ map { $_->[0] } @coef ], [ '(intercept)', @features ],
		"$name: coefficient rows are the intercept, then the features in order");

	my %worst = map { $_ => 0 } qw(coefficient std_error z p_value);
	for my $j (0 .. $#coef)
	{
		my ($feature, $b, $se, $z, $p) = @{ $coef[$j] };
		my %e = (
			coefficient => rel_err($b,  $sm->{params}[$j]),
			std_error   => rel_err($se, $sm->{bse}[$j]),
			z           => rel_err($z,  $sm->{z}[$j]),
			p_value     => rel_err($p,  $sm->{pvalues}[$j]));
		$worst{$_} = max($worst{$_}, $e{$_}) for keys %e;
		note sprintf('%s %-20s coef %.17g (statsmodels %.17g) se %.17g (%.17g) p %.6g (%.6g)',
			$name, $feature, $b, $sm->{params}[$j], $se, $sm->{bse}[$j], $p,
			$sm->{pvalues}[$j]);
	}
	cmp_ok($worst{coefficient}, '<=', $fit_rtol,    "$name: coefficients match statsmodels");
	cmp_ok($worst{std_error},   '<=', $fit_rtol,    "$name: standard errors match statsmodels");
	cmp_ok($worst{z},           '<=', $fit_rtol,    "$name: z statistics match statsmodels");
	cmp_ok($worst{p_value},     '<=', $pvalue_rtol, "$name: p-values match statsmodels");

	# scikit-learn on the model's own scores of the same rows
	my $scored = $node->safe_psql('postgres',
		    "COPY (SELECT "
		  . quote_ident($label)
		  . ", credit_risk.cr_predict("
		  . quote_literal($name)
		  . ", t) FROM $table t) TO STDOUT (FORMAT csv)");
	my $sk = reference('metrics', $scored, "$tmp/$name.scored.csv");
	my ($auc, $train_auc, $log_loss, $brier) = split /\|/, $node->safe_psql(
		'postgres', qq{
SELECT metrics->>'auc', metrics->>'train_auc', metrics->>'log_loss', metrics->>'brier'
  FROM credit_risk.models WHERE name = @{[ quote_literal($name) ]}});
	my %d = (
		auc       => abs($auc - $sk->{auc}),
		train_auc => abs($train_auc - $sk->{auc}),
		log_loss  => abs($log_loss - $sk->{log_loss}),
		brier     => abs($brier - $sk->{brier}));
	cmp_ok($d{auc},       '<=', $metric_atol, "$name: AUC matches roc_auc_score");
	cmp_ok($d{train_auc}, '<=', $metric_atol, "$name: train AUC matches roc_auc_score");
	cmp_ok($d{log_loss},  '<=', $metric_atol, "$name: log loss matches sklearn log_loss");
	cmp_ok($d{brier},     '<=', $metric_atol, "$name: Brier score matches brier_score_loss");
	cmp_ok($sk->{distinct_scores}, '<=', $a{max_distinct_scores},
		"$name: scores are tied ($sk->{distinct_scores} distinct values)")
	  if $a{max_distinct_scores};

	diag sprintf(
		'%s: %d rows, %d features, iterations %s (statsmodels %d); max rel err coef %.3g, se %.3g, z %.3g, p %.3g; '
		  . '|auc diff| %.3g, |log_loss diff| %.3g, |brier diff| %.3g (auc %.6f, %d distinct scores)',
		$name, $train_rows, scalar(@features),
		$node->safe_psql('postgres',
			"SELECT metrics->>'iterations' FROM credit_risk.models WHERE name = " . quote_literal($name)),
		$sm->{iterations}, @worst{qw(coefficient std_error z p_value)},
		@d{qw(auc log_loss brier)}, $sk->{auc}, $sk->{distinct_scores});
	return;
}

check_model(
	name            => 'parity',
	table           => 'parity_synth',
	label           => 'y',
	expect_features => [
		qw(income utilization open_accounts has_mortgage age debt_to_income)
	]);

check_model(
	name   => 'german',
	table  => 'german_credit',
	label  => 'bad',
	params => { key => 'applicant_id' });

check_model(
	name                => 'ties_grade',
	table               => 'parity_ties',
	label               => 'y',
	features            => ['grade'],
	expect_features     => ['grade'],
	max_distinct_scores => 6);

check_model(
	name                => 'ties_flag',
	table               => 'parity_ties',
	label               => 'y',
	features            => ['flag'],
	expect_features     => ['flag'],
	max_distinct_scores => 2);

no_crashes($node);
$node->stop;

done_testing();
