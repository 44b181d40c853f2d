# cr_export of a GBM with category splits, read back by something other
# than credit_risk: test/python/export_cat_check.py scores 3,000 rows from
# the document alone (its trees and "categories" walked in doubles, levels
# coded by their index in "levels") and from the "xgboost" member loaded
# into Debian's python3-xgboost as XGBoost 1.7 category splits.
#
# - the document's own content scores as cr_predict to 1e-12;
# - XGBoost's predict equals cr_predict to 1e-6, and its pred_contribs
#   equal cr_explain's contributions to 1e-5 (XGBoost adds in floats);
# - the member, which holds category splits, is refused by
#   cr_import_xgboost with feature_not_supported.

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

my $python = '/usr/bin/python3';

{
	my ($out, $err) = ('', '');
	my $ok = -x $python
	  && eval {
		IPC::Run::run([ $python, '-c', 'import numpy, xgboost' ], '>', \$out, '2>', \$err);
	  };
	plan skip_all => "$python cannot import numpy and xgboost" unless $ok;
}

my $tmp  = PostgreSQL::Test::Utils::tempdir('catexport');
my $node = PostgreSQL::Test::Cluster->new('catexport');
$node->init;
$node->start;

# Three categorical features (a text column with NULLs and rare levels, a
# boolean, an integer named categorical) and a number with NULLs.  The rows
# go to the reference as text: a boolean level is "true" or "false".
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION credit_risk;
SELECT setseed(0.5);
CREATE TABLE app AS
SELECT i AS id,
       CASE WHEN random() < 0.1 THEN NULL WHEN random() < 0.01 THEN 'rare' || i
            ELSE 'g' || floor(random() * 15)::int END AS grp,
       random() < 0.4 AS online,
       floor(random() * 6)::int AS tier,
       CASE WHEN random() < 0.15 THEN NULL ELSE round((random() * 100)::numeric, 2)::float8 END AS x,
       random() AS u
  FROM generate_series(1, 8000) i;
ALTER TABLE app ADD COLUMN bad int;
UPDATE app SET bad = (u < 1 / (1 + exp(-(
    CASE WHEN grp IS NULL THEN 0.8 WHEN grp LIKE 'rare%' THEN 0.3
         ELSE ((substr(grp, 2)::int * 7) % 15) / 5.0 - 1.5 END
    + CASE WHEN online THEN 0.5 ELSE -0.2 END
    + CASE tier WHEN 2 THEN 0.7 WHEN 4 THEN -0.6 ELSE 0 END
    + coalesce(x, 50) / 60 - 0.8))))::int;
CREATE TABLE train AS SELECT * FROM app WHERE id <= 5000;
CREATE TABLE score_rows AS SELECT * FROM app WHERE id > 5000;
SELECT FROM credit_risk.cr_train('c', 'train', 'bad', 'gbm', ARRAY['grp', 'online', 'tier', 'x'],
                                 '{"n_trees": 50, "max_depth": 4, "learning_rate": 0.2, "key": "id",
                                   "categorical": ["online", "tier"]}');
});

$node->safe_psql('postgres',
	"COPY (SELECT id, grp, online::text, tier, x FROM score_rows ORDER BY id) TO '$tmp/rows.csv' WITH (FORMAT csv)");
my $doc = $node->safe_psql('postgres', "SELECT credit_risk.cr_export('c')");
PostgreSQL::Test::Utils::append_to_file("$tmp/c.json", $doc);
my ($out, $err) = ('', '');
IPC::Run::run([ $python, "$FindBin::RealBin/../python/export_cat_check.py",
		"$tmp/c.json", "$tmp/rows.csv", $tmp ], '>', \$out, '2>', \$err)
  or die "export_cat_check.py failed: $err";
my $sum = decode_json($out);
note "xgboost $sum->{xgboost}: $sum->{trees} trees, $sum->{xgboost_category_splits} category splits";
is($sum->{rows}, 3000, 'the reference scored 3,000 rows');
cmp_ok($sum->{xgboost_category_splits}, '>', 20, 'the XGBoost member holds category splits');

$node->safe_psql(
	'postgres', qq{
CREATE TABLE ref (id int PRIMARY KEY, own float8, xgb float8, contribs float8[]);
COPY ref FROM '$tmp/scored.csv' WITH (FORMAT csv);
});

my ($own, $xgb) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT max(abs(credit_risk.cr_predict('c', r) - f.own)), max(abs(credit_risk.cr_predict('c', r) - f.xgb))
  FROM score_rows r JOIN ref f USING (id)});
note "max |cr_predict - the document's own trees| = $own, |cr_predict - xgboost| = $xgb";
cmp_ok($own, '<', 1e-12, "the document's own content scores as cr_predict");
cmp_ok($xgb, '<', 1e-6, 'XGBoost predicts from the export what cr_predict predicts');

my ($cdiff, $crows) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT max(abs(e.contribution - f.contribs[
           CASE e.feature WHEN 'grp' THEN 1 WHEN 'online' THEN 2 WHEN 'tier' THEN 3
                          WHEN 'x' THEN 4 ELSE 5 END])), count(*)
  FROM score_rows r JOIN ref f USING (id),
       LATERAL credit_risk.cr_explain('c', r, NULL) e});
note "max |cr_explain - xgboost pred_contribs| = $cdiff over $crows";
cmp_ok($cdiff, '<', 1e-5, 'XGBoost explains the export as cr_explain does');
is($crows, 3000 * 5, 'four features and the base for every row');

my ($rc, $stdout, $stderr) = $node->psql('postgres',
	"SELECT credit_risk.cr_import_xgboost('c_back', credit_risk.cr_export('c')->'xgboost')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($stderr, qr/0A000.*splits on a categorical feature/s,
	'the import refuses category splits as not supported');

no_crashes($node);
$node->stop;

done_testing();
