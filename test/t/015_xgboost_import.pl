# cr_import_xgboost against XGBoost itself (Debian's python3-xgboost): a
# binary:logistic model trained on rows with missing values
# (test/python/xgb_import_reference.py), saved with save_model, imported,
# and scored on 2,000 other rows with NULLs.  The probabilities must equal
# XGBoost's predict to 1e-6, and cr_explain's contributions its
# pred_contribs (the last column, the bias, is the "(base)" row).  XGBoost
# computes in 32-bit floats and adds the trees' contributions up in them,
# which moves a contribution of 5 by a few 1e-6: the contributions must
# equal XGBoost's own taken tree by tree and added up in doubles to 1e-6,
# and its pred_contribs to 1e-5.
#
# Then 250 mutated copies of the model JSON (keys deleted, values of the
# wrong type or out of range, child indices scrambled, arrays cut short):
# each is imported or refused with an error outside class XX, and no server
# process dies.

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
my $tol    = 1e-6;

{
	my ($out, $err) = ('', '');
	my $ok = -x $python
	  && eval {
		IPC::Run::run([ $python, '-c', 'import numpy, xgboost' ], '>', \$out, '2>', \$err);
	  };
	plan skip_all => "$python cannot import numpy and xgboost" unless $ok;
}

my $tmp = PostgreSQL::Test::Utils::tempdir('xgb_import');
my ($out, $err) = ('', '');
IPC::Run::run([ $python, "$FindBin::RealBin/../python/xgb_import_reference.py", $tmp ],
	'>', \$out, '2>', \$err)
  or die "xgb_import_reference.py failed: $err";
my $info = decode_json($out);
note "xgboost $info->{version}, $info->{trees} trees, "
  . "$info->{missing_train} missing training values, $info->{missing_score} missing scored values";

my $node = PostgreSQL::Test::Cluster->new('xgb_import');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');

my $features = join(', ', map { "'f$_'" } 0 .. 7);
my $columns  = join(', ', map { "f$_ float8" } 0 .. 7);
my $array    = 'ARRAY[' . join(', ', map { "r.f$_" } 0 .. 7) . ']';

# the JSON has no feature names: they come from the argument
is( $node->safe_psql(
		'postgres', qq{
CREATE TABLE score_rows (id int PRIMARY KEY, $columns);
COPY score_rows FROM '$tmp/rows.csv' WITH (FORMAT csv, NULL '');
CREATE TABLE reference (id int PRIMARY KEY, p float8, contribs float8[], per_tree float8[]);
COPY reference FROM '$tmp/ref.csv' WITH (FORMAT csv);
SELECT version || ' ' || status || ' ' || algorithm || ' ' || (params->>'n_trees')
  FROM credit_risk.cr_import_xgboost('xgb', pg_read_file('$tmp/model.json')::jsonb,
                                     ARRAY[$features]);
}),
	'1 champion gbm 50',
	'the model imports as the first version of its name');

is($node->safe_psql('postgres',
		"SELECT count(*) FROM score_rows r WHERE " . join(' OR ', map { "r.f$_ IS NULL" } 0 .. 7)) > 500,
	1, 'many scored rows have NULLs');

my $pred_diff = $node->safe_psql(
	'postgres', qq{
SELECT max(abs(credit_risk.cr_predict('xgb', $array) - f.p))
  FROM score_rows r JOIN reference f USING (id)});
note "max |cr_predict - xgboost predict| = $pred_diff";
cmp_ok($pred_diff, '<', $tol, 'probabilities equal XGBoost predict');

# the same rows scored in batches (the block scorer)
my $batch_diff = $node->safe_psql(
	'postgres', qq{
SELECT max(abs(b.default_probability - f.p))
  FROM credit_risk.cr_predict_batch('xgb', 'score_rows', 'id') b
  JOIN reference f ON f.id = b.key::int});
note "max |cr_predict_batch - xgboost predict| = $batch_diff";
cmp_ok($batch_diff, '<', $tol, 'batch probabilities equal XGBoost predict');

my $contrib_diff = $node->safe_psql(
	'postgres', qq{
CREATE TABLE explained AS
SELECT r.id, e.contribution,
       CASE e.feature WHEN '(base)' THEN 9 ELSE substr(e.feature, 2)::int + 1 END AS k
  FROM score_rows r, LATERAL credit_risk.cr_explain('xgb', $array, NULL) e;
SELECT max(abs(e.contribution - f.per_tree[e.k])) || ' '
       || max(abs(e.contribution - f.contribs[e.k])) || ' ' || count(*)
  FROM explained e JOIN reference f USING (id)});
my ($cdiff, $c32diff, $crows) = split / /, $contrib_diff;
note "max |cr_explain - xgboost per-tree contributions added in doubles| = $cdiff";
note "max |cr_explain - xgboost pred_contribs| = $c32diff over $crows contributions";
cmp_ok($cdiff, '<', $tol, 'contributions equal XGBoost per-tree contributions');
cmp_ok($c32diff, '<', 10 * $tol, 'contributions equal XGBoost pred_contribs to its float rounding');
is($crows, 2000 * 9, 'eight features and the base for every row');

# a second version with a baseline: labels taken from XGBoost's own
# probabilities, so the AUC on those rows is 1 and the rows do not drift
# from themselves; the probabilities do not change
is( $node->safe_psql(
		'postgres', qq{
SELECT version || ' ' || status || ' ' || holdout_rows || ' ' || (metrics->>'auc')
  FROM credit_risk.cr_import_xgboost('xgb', pg_read_file('$tmp/model.json')::jsonb,
         ARRAY[$features],
         '{"baseline_source": "SELECT r.*, (f.p > 0.5)::int AS bad FROM score_rows r JOIN reference f USING (id)",
           "baseline_label": "bad"}');
}),
	'2 candidate 2000 1',
	'a baseline gives metrics; the second version is a candidate');
cmp_ok(
	$node->safe_psql(
		'postgres', qq{
SELECT max(abs(credit_risk.cr_predict(m.model, $array) - f.p))
  FROM score_rows r JOIN reference f USING (id), credit_risk.models m
 WHERE m.name = 'xgb' AND m.version = 2}),
	'<', $tol, 'the version with a baseline scores as XGBoost');
is( $node->safe_psql(
		'postgres', qq{
SELECT version FROM credit_risk.cr_promote('xgb', 2);
SELECT count(*) || ' ' || max(psi) FROM credit_risk.cr_drift_score('xgb', 'score_rows')}),
	"2\n9 0", 'the baseline rows do not drift from themselves');

# a model whose trees hold pruned, unreachable nodes
cmp_ok($info->{deleted}, '>', 0, 'the pruned model holds deleted nodes');
my $pruned_diff = $node->safe_psql(
	'postgres', qq{
CREATE TABLE pruned_reference (id int PRIMARY KEY, p float8);
COPY pruned_reference FROM '$tmp/pruned_ref.csv' WITH (FORMAT csv);
SELECT FROM credit_risk.cr_import_xgboost('xgb_pruned', pg_read_file('$tmp/pruned.json')::jsonb,
                                          ARRAY[$features]);
SELECT max(abs(credit_risk.cr_predict('xgb_pruned', $array) - f.p))
  FROM score_rows r JOIN pruned_reference f USING (id)});
note "pruned model: $info->{deleted} deleted nodes, max |cr_predict - xgboost predict| = $pruned_diff";
cmp_ok($pruned_diff, '<', $tol, 'a pruned model scores as XGBoost');

# out again: the imported version's export, read by XGBoost and by the
# document's own trees, scores as the model XGBoost saved
{
	my $doc = $node->safe_psql('postgres', "SELECT credit_risk.cr_export('xgb', 1)");
	PostgreSQL::Test::Utils::append_to_file("$tmp/export.json", $doc);
	my ($eout, $eerr) = ('', '');
	IPC::Run::run([ $python, "$FindBin::RealBin/../python/export_check.py",
			"$tmp/export.json", "$tmp/rows.csv", $tmp ], '>', \$eout, '2>', \$eerr)
	  or die "export_check.py failed: $eerr";
	my ($own, $xgb) = split /\s+/, $node->safe_psql(
		'postgres', qq{
CREATE TABLE exported (id int PRIMARY KEY, own float8, xgb float8, contribs float8[]);
COPY exported FROM '$tmp/scored.csv' WITH (FORMAT csv);
SELECT max(abs(e.own - credit_risk.cr_predict('xgb', $array))) || ' ' || max(abs(e.xgb - f.p))
  FROM score_rows r JOIN exported e USING (id) JOIN reference f USING (id)});
	note "export of the import: max |own trees - cr_predict| = $own, "
	  . "max |xgboost on the export - xgboost on the original| = $xgb";
	like("$own $xgb", qr/^\S+ \S+$/, 'both differences measured');
	cmp_ok($own, '<', 1e-12, "the export's own trees score as the imported model");
	cmp_ok($xgb, '<', $tol, 'XGBoost scores the export of its model as the model it saved');
}

# hostile copies
$node->safe_psql(
	'postgres', qq{
CREATE TABLE mutants AS
SELECT n, line::jsonb AS j
  FROM regexp_split_to_table(pg_read_file('$tmp/mutants.jsonl'), E'\\n') WITH ORDINALITY AS l(line, n)
 WHERE line <> '';
CREATE FUNCTION try_import(j jsonb) RETURNS text LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM credit_risk.cr_import_xgboost('mutant', j, ARRAY[$features]);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END \$\$;
CREATE TABLE outcomes AS SELECT n, try_import(j) AS state FROM mutants;
});
my $summary = $node->safe_psql('postgres',
	"SELECT string_agg(state || ':' || c, ' ' ORDER BY state) FROM "
	  . "(SELECT state, count(*) AS c FROM outcomes GROUP BY state) s");
note "mutant outcomes (SQLSTATE:count): $summary";
is($node->safe_psql('postgres', 'SELECT count(*) FROM outcomes'), '250', '250 mutants tried');
is($node->safe_psql('postgres', "SELECT count(*) FROM outcomes WHERE state LIKE 'XX%'"),
	'0', 'no mutant gives an internal error');
cmp_ok($node->safe_psql('postgres', "SELECT count(*) FROM outcomes WHERE state <> 'ok'"),
	'>=', 150, 'most mutants are refused');

# every imported mutant scores (or is refused by the scorer with an error)
is( $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM credit_risk.models m, LATERAL (
    SELECT credit_risk.cr_predict(m.model, ARRAY[0.5, NULL, 0, 1, -1, 2, 0, 0]::float8[])) p
 WHERE m.name = 'mutant'})
	  eq $node->safe_psql('postgres', "SELECT count(*) FROM outcomes WHERE state = 'ok'"),
	1, 'every imported mutant scores');

is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server still answers');
no_crashes($node);
$node->stop;

done_testing();
