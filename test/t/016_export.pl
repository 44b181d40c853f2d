# cr_export read back by something other than credit_risk: a GBM and a
# logistic model trained here on rows with NULLs are exported, and
# test/python/export_check.py scores 3,000 other rows from the documents
# alone (the GBM's own trees walked in doubles, the logistic coefficients
# and training means) and, for the GBM, from the "xgboost" member loaded
# into Debian's python3-xgboost.
#
# - the documents' own content scores as cr_predict to 1e-12;
# - XGBoost's predict equals cr_predict to 1e-6, and its pred_contribs equal
#   cr_explain's contributions to 1e-5 (XGBoost adds them up in 32-bit
#   floats); feature values here have at most 4 significant decimals, so
#   reading them as floats moves none across a threshold;
# - the member imported back with cr_import_xgboost scores and explains as
#   the model it came from to 1e-6 (leaf values went through floats once);
# - the bytea form is the name form without the registry row.

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

# Debian's interpreter: the packages live there, not in whatever python3
# comes first on PATH.
my $python = '/usr/bin/python3';

{
	my ($out, $err) = ('', '');
	my $ok = -x $python
	  && eval {
		IPC::Run::run([ $python, '-c', 'import numpy, xgboost' ], '>', \$out, '2>', \$err);
	  };
	plan skip_all => "$python cannot import numpy and xgboost" unless $ok;
}

my $tmp  = PostgreSQL::Test::Utils::tempdir('export');
my $node = PostgreSQL::Test::Cluster->new('export');
$node->init;
$node->start;

my @x     = map { "x$_" } 1 .. 6;
my $array = 'ARRAY[' . join(', ', map { "r.$_" } @x) . ']';

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION credit_risk;
SELECT setseed(0.25);
CREATE TABLE app AS
SELECT i AS id,
       CASE WHEN random() < 0.12 THEN NULL ELSE round((random() * 100)::numeric, 2)::float8 END AS x1,
       CASE WHEN random() < 0.08 THEN NULL ELSE round((random() * 4 - 2)::numeric, 3)::float8 END AS x2,
       floor(random() * 6)::float8 AS x3,
       round((random() * 50000)::numeric, 0)::float8 AS x4,
       CASE WHEN random() < 0.2 THEN NULL ELSE round(random()::numeric, 4)::float8 END AS x5,
       round((random() * 10 - 5)::numeric, 1)::float8 AS x6,
       random() AS u
  FROM generate_series(1, 8000) i;
ALTER TABLE app ADD COLUMN bad int;
UPDATE app SET bad = (u < 1 / (1 + exp(-(coalesce(x1, 70) / 25 - 2 + coalesce(x2, 1) * x3 / 4
                                         - x4 / 40000 + coalesce(x5, 0.5) * 0.8 - abs(x6) / 5))))::int;
CREATE TABLE train AS SELECT * FROM app WHERE id <= 5000;
CREATE TABLE score_rows AS SELECT * FROM app WHERE id > 5000;
SELECT FROM credit_risk.cr_train('g', 'train', 'bad', 'gbm', ARRAY['x1','x2','x3','x4','x5','x6'],
                                 '{"n_trees": 60, "max_depth": 5, "learning_rate": 0.2, "key": "id"}');
SELECT FROM credit_risk.cr_train('l', 'train', 'bad', 'logistic', ARRAY['x1','x2','x3','x4','x5','x6'],
                                 '{"key": "id"}');
});

is( $node->safe_psql('postgres',
		"SELECT count(*) FROM score_rows WHERE x1 IS NULL OR x2 IS NULL OR x5 IS NULL") > 500,
	1, 'many scored rows have NULLs');

# the rows, as the reference reads them
my $rows = $node->safe_psql('postgres',
	"SELECT concat_ws(',', id, " . join(', ', map { "coalesce(${_}::text, '')" } @x)
	  . ") FROM score_rows ORDER BY id");
PostgreSQL::Test::Utils::append_to_file("$tmp/rows.csv", "$rows\n");

# Runs the reference on model $name's document and loads what it wrote
# into table ref_$name.
sub reference
{
	my ($name) = @_;
	my $doc = $node->safe_psql('postgres', "SELECT credit_risk.cr_export('$name')");
	PostgreSQL::Test::Utils::append_to_file("$tmp/$name.json", $doc);
	my ($out, $err) = ('', '');
	IPC::Run::run([ $python, "$FindBin::RealBin/../python/export_check.py",
			"$tmp/$name.json", "$tmp/rows.csv", $tmp ], '>', \$out, '2>', \$err)
	  or die "export_check.py failed on $name: $err";
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE ref_$name (id int PRIMARY KEY, own float8, xgb float8, contribs float8[]);
COPY ref_$name FROM '$tmp/scored.csv' WITH (FORMAT csv);
});
	return decode_json($out);
}

my $gsum = reference('g');
note "xgboost $gsum->{xgboost} loaded $gsum->{xgboost_trees} of $gsum->{trees} trees";
is($gsum->{xgboost_trees}, $gsum->{trees}, 'XGBoost loads every tree of the export');
is($gsum->{trees}, 60, 'the GBM document holds its 60 trees');
my $lsum = reference('l');
is($lsum->{rows}, 3000, 'the reference scored 3,000 rows');

for my $m ('g', 'l')
{
	my $d = $node->safe_psql(
		'postgres', qq{
SELECT max(abs(credit_risk.cr_predict('$m', $array) - f.own))
  FROM score_rows r JOIN ref_$m f USING (id)});
	note "$m: max |cr_predict - the document's own content| = $d";
	cmp_ok($d, '<', 1e-12, "$m: the document's own content scores as cr_predict");
}

my $xdiff = $node->safe_psql(
	'postgres', qq{
SELECT max(abs(credit_risk.cr_predict('g', $array) - f.xgb))
  FROM score_rows r JOIN ref_g f USING (id)});
note "max |cr_predict - xgboost predict on the exported member| = $xdiff";
cmp_ok($xdiff, '<', 1e-6, 'XGBoost predicts from the export what cr_predict predicts');

my ($cdiff, $crows) = split / /, $node->safe_psql(
	'postgres', qq{
SELECT max(abs(e.contribution - f.contribs[
           CASE e.feature WHEN '(base)' THEN 7 ELSE substr(e.feature, 2)::int END])) || ' ' || count(*)
  FROM score_rows r JOIN ref_g f USING (id),
       LATERAL credit_risk.cr_explain('g', $array, NULL) e});
note "max |cr_explain - xgboost pred_contribs on the exported member| = $cdiff over $crows";
cmp_ok($cdiff, '<', 1e-5, 'XGBoost explains the export as cr_explain does');
is($crows, 3000 * 7, 'six features and the base for every row');

# back in: the member imported as another model
my ($bpred, $bexpl) = split /\s+/, $node->safe_psql(
	'postgres', qq{
SELECT FROM credit_risk.cr_import_xgboost('g_back', credit_risk.cr_export('g')->'xgboost');
SELECT max(abs(credit_risk.cr_predict('g_back', $array) - credit_risk.cr_predict('g', $array)))
  FROM score_rows r;
SELECT max(abs(a.contribution - b.contribution)) FROM score_rows r,
       LATERAL credit_risk.cr_explain('g', $array, NULL) a
  JOIN LATERAL credit_risk.cr_explain('g_back', $array, NULL) b USING (feature)});
note "imported back: max |difference| in probability $bpred, in contribution $bexpl";
like("$bpred $bexpl", qr/^\S+ \S+$/, 'both differences measured');
cmp_ok($bpred, '<', 1e-6, 'the export imported back scores as the model it came from');
cmp_ok($bexpl, '<', 1e-6, 'the export imported back explains as the model it came from');
is( $node->safe_psql(
		'postgres', q{
SELECT (credit_risk.cr_export('g_back')->'xgboost'->'learner'->'gradient_booster')
     = (credit_risk.cr_export('g')->'xgboost'->'learner'->'gradient_booster')}),
	't', 'exporting the imported model gives the same XGBoost trees');

# the bytea form is the document without the registry row
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM credit_risk.models m
 WHERE credit_risk.cr_export(m.model)
       = credit_risk.cr_export(m.name, m.version)
         - ARRAY['export_format', 'name', 'version', 'model', 'status', 'created_at', 'created_by',
                 'source', 'label', 'params', 'metrics', 'importance', 'train_rows',
                 'holdout_rows', 'train_seconds']}),
	'3', 'the bytea form is the name form without the registry row');

# the logistic document's coefficients are cr_coefficients' to the bit
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM credit_risk.cr_coefficients('l') c
  LEFT JOIN jsonb_array_elements(credit_risk.cr_export('l')->'logistic'->'coefficients') e
         ON e->>'feature' = c.feature
 WHERE coalesce((e->>'coefficient')::float8, (credit_risk.cr_export('l')->'logistic'->>'intercept')::float8)
       = c.coefficient}),
	'7', 'the logistic document holds cr_coefficients exactly');

no_crashes($node);
$node->stop;

done_testing();
