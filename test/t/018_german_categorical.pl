# The German credit data in its raw form (test/data/german.data: 13
# categorical attributes coded A11 ... A202, 7 numeric) trained directly from
# its text columns, no hand encoding, and held against references on the
# same split (every fifth applicant held out), computed by
# test/python/german_categorical.py from Debian's python3 packages:
#
# - logistic with every level kept (min_category_count 1): its dummy coding
#   is statsmodels' Logit on one-hot columns without our reference levels,
#   so every coefficient and standard error agrees (to 1e-6), and the
#   holdout AUC is scikit-learn's unpenalized LogisticRegression's on all
#   one-hot columns;
# - trees with native category splits: holdout AUC against XGBoost 1.7 on
#   the one-hot columns with the same tree parameters (reported; a floor
#   and a margin are asserted, the two models split differently).

use strict;
use warnings;

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use CrGerman;

my $python = '/usr/bin/python3';
{
	my ($out, $err) = ('', '');
	my $ok = -x $python
	  && eval {
		IPC::Run::run([ $python, '-c', 'import numpy, statsmodels, sklearn, xgboost' ],
			'>', \$out, '2>', \$err);
	  };
	plan skip_all => "$python cannot import numpy, statsmodels, sklearn and xgboost"
	  unless $ok;
}

my $tmp  = PostgreSQL::Test::Utils::tempdir('german_cat');
my $node = PostgreSQL::Test::Cluster->new('german_cat');
$node->init;
$node->start;

my @categorical = qw(checking history purpose savings employment personal debtors
  property other_plans housing job telephone foreign_worker);
my @numeric = qw(duration amount installment_rate residence age existing_credits dependents);

$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');
load_german_raw($node);
$node->safe_psql('postgres', q{
ALTER TABLE german_raw ADD COLUMN holdout int;
UPDATE german_raw SET holdout = (id % 5 = 0)::int;
});
is($node->safe_psql('postgres', 'SELECT count(*) || \' \' || sum(bad) FROM german_raw'),
	'1000 300', 'the raw file: 1,000 applicants, 300 bad');

my $features = 'ARRAY[' . join(', ', map { "'$_'" } @numeric, @categorical) . ']';
my $split    = '"split": {"column": "holdout", "holdout_from": 1}';

$node->safe_psql('postgres', qq{
SELECT 1 FROM credit_risk.cr_train('german_lr', 'german_raw', 'bad', 'logistic', $features,
    '{$split, "min_category_count": 1}');
SELECT 1 FROM credit_risk.cr_train('german_gbm', 'german_raw', 'bad', 'gbm', $features,
    '{$split, "n_trees": 100, "max_depth": 3, "learning_rate": 0.1, "threads": 1}');
});

is( $node->safe_psql('postgres',
		"SELECT train_rows || ' ' || holdout_rows FROM credit_risk.models WHERE name = 'german_lr'"),
	'800 200', 'every fifth applicant is the holdout');

# our reference levels, for the python design
my $reference = $node->safe_psql('postgres', q{
SELECT jsonb_object_agg(key, value ->> 'reference')
FROM credit_risk.models m,
     jsonb_each(credit_risk.cr_model_info(m.model) -> 'categories')
WHERE m.name = 'german_lr'});

# the coefficient table has a row per level: feature=level
my $coef_rows = $node->safe_psql('postgres',
	"SELECT count(*) FILTER (WHERE feature LIKE '%=%') || ' ' || count(*) FROM credit_risk.cr_coefficients('german_lr')");
my $levels = $node->safe_psql('postgres', q{
SELECT sum(jsonb_array_length(value -> 'levels'))
FROM credit_risk.models m, jsonb_each(credit_risk.cr_model_info(m.model) -> 'categories')
WHERE m.name = 'german_lr'});
is($coef_rows, "$levels " . ($levels + 1 + scalar @numeric),
	"cr_coefficients: a row per level ($levels), each number and the intercept");

my $csv = "$tmp/german.csv";
my $cols = join(', ', @numeric, @categorical);
$node->safe_psql('postgres', qq{
COPY (SELECT $cols, bad, holdout,
             credit_risk.cr_predict('german_lr', g) AS p_logistic,
             credit_risk.cr_predict('german_gbm', g) AS p_gbm
      FROM german_raw g ORDER BY id) TO '$csv' WITH (FORMAT csv, HEADER)});

my ($out, $err) = ('', '');
IPC::Run::run([ $python, "$FindBin::RealBin/../python/german_categorical.py", $csv,
		join(',', @categorical), join(',', @numeric), $reference ],
	'>', \$out, '2>', \$err)
  or die "german_categorical.py failed: $err";
my $ref = decode_json($out);

my %ours = map { my ($f, $b, $s) = split /\|/; ($f => [ $b, $s ]) }
  split /\n/, $node->safe_psql('postgres',
	"SELECT feature, coefficient, coalesce(std_error::text, '') FROM credit_risk.cr_coefficients('german_lr')");
my ($worst_b, $worst_se, $matched) = (0, 0, 0);
for my $name (keys %{ $ref->{coef} })
{
	next unless exists $ours{$name};
	$matched++;
	my $db = abs($ours{$name}[0] - $ref->{coef}{$name});
	my $ds = abs($ours{$name}[1] - $ref->{se}{$name});
	$worst_b  = $db if $db > $worst_b;
	$worst_se = $ds if $ds > $worst_se;
}
is($matched, scalar keys %{ $ref->{coef} }, "every statsmodels coefficient has a row of ours ($matched)");
cmp_ok($worst_b,  '<', 1e-6, "coefficients equal statsmodels' (max difference $worst_b)");
cmp_ok($worst_se, '<', 1e-6, "standard errors equal statsmodels' (max difference $worst_se)");

my $lr_auc  = $ref->{our_logistic_auc};
my $gbm_auc = $ref->{our_gbm_auc};
diag(sprintf('holdout AUC, %d rows: logistic %.4f (scikit-learn one-hot %.4f); '
		. 'gbm %.4f (XGBoost one-hot %.4f)',
		$ref->{holdout_rows}, $lr_auc, $ref->{sklearn_auc}, $gbm_auc, $ref->{xgboost_auc}));
cmp_ok(abs($lr_auc - $ref->{sklearn_auc}), '<', 1e-4,
	"logistic holdout AUC $lr_auc is scikit-learn's on one-hot columns ($ref->{sklearn_auc})");
cmp_ok($lr_auc, '>', 0.70, 'logistic holdout AUC well above chance');
cmp_ok($gbm_auc, '>', 0.70, "tree holdout AUC $gbm_auc well above chance");
cmp_ok($gbm_auc, '>', $ref->{xgboost_auc} - 0.03,
	"tree holdout AUC $gbm_auc within 0.03 of XGBoost's on one-hot columns ($ref->{xgboost_auc})");

# the holdout metrics cr_train stored are the ones computed here
my $stored = $node->safe_psql('postgres',
	"SELECT metrics ->> 'auc' FROM credit_risk.models WHERE name = 'german_lr'");
cmp_ok(abs($stored - $lr_auc), '<', 1e-12, 'cr_train stored the same holdout AUC');

no_crashes($node);
$node->stop;
done_testing();
