# cr_explain's tree contributions against their definition: the exact
# path-dependent Shapley values, computed by enumerating every coalition of
# features (test/python/shap_oracle.py), from the trees cr_model_trees
# shows.  Also base + contributions = logit(cr_predict) for every applicant.
# Each model is explained three ways: from explanation tables (the
# default), with credit_risk.explain_memory too small for all its trees
# (some tabled, the rest by TreeSHAP's recursion), and with none (0).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = '/usr/bin/python3';
plan skip_all => "$python is not there" unless -x $python;

my $tmp = PostgreSQL::Test::Utils::tempdir('explain_oracle');
my $oracle = "$FindBin::RealBin/../python/shap_oracle.py";

my $node = PostgreSQL::Test::Cluster->new('explain');
$node->init;
$node->start;

# Five features, two with NULLs, a default mechanism with an interaction and
# a threshold; every random number a hash of (row, stream), so the table is
# the same on every run.
$node->safe_psql('postgres', q{
	CREATE EXTENSION credit_risk;
	CREATE FUNCTION u(i bigint, s bigint) RETURNS float8 LANGUAGE sql IMMUTABLE
	RETURN ((hashint8extended(i, s) & 4503599627370495) / 4503599627370496.0)::float8;
	CREATE TABLE apps AS
	SELECT i AS id,
	       CASE WHEN u(i, 1) < 0.1 THEN NULL ELSE round((u(i, 2) * 100)::numeric, 1)::float8 END AS util,
	       round((18 + u(i, 3) * 60)::numeric)::float8 AS age,
	       CASE WHEN u(i, 4) < 0.15 THEN NULL ELSE floor(u(i, 5) * 6)::float8 END AS inquiries,
	       round((u(i, 6) * 40)::numeric, 2)::float8 AS dti,
	       floor(u(i, 7) * 3)::float8 AS segment,
	       0 AS y
	  FROM generate_series(1, 4000) i;
	UPDATE apps SET y = (u(id, 9) < 1 / (1 + exp(-(-2 + 0.03 * coalesce(util, 70)
	        + CASE WHEN age < 25 AND coalesce(inquiries, 3) > 2 THEN 1.5 ELSE 0 END
	        + CASE WHEN dti > 30 THEN 0.8 ELSE 0 END - 0.2 * segment))))::int;
	SELECT 1 FROM credit_risk.cr_train('shallow', 'apps', 'y', 'gbm',
	    ARRAY['util', 'age', 'inquiries', 'dti', 'segment'],
	    '{"n_trees": 20, "max_depth": 4, "seed": 1}');
	SELECT 1 FROM credit_risk.cr_train('deep', 'apps', 'y', 'gbm', ARRAY['util', 'age', 'inquiries'],
	    '{"n_trees": 8, "max_depth": 8, "subsample": 0.5, "min_child_weight": 0.01, "seed": 2}');
});

my %modes = (tables => '', mixed => "SET credit_risk.explain_memory = '8kB';",
	recursion => 'SET credit_risk.explain_memory = 0;');
for my $mode ('tables', 'mixed', 'recursion')
{
for my $name ('shallow', 'deep')
{
	my $trees = $node->safe_psql('postgres', qq{
		COPY (SELECT t.tree, t.node, t.feature, t.threshold, t.left_child AS left,
		             t.right_child AS right, t.default_left, t.value, t.cover
		        FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) t
		       WHERE m.name = '$name') TO STDOUT WITH (FORMAT csv, HEADER)});
	PostgreSQL::Test::Utils::append_to_file("$tmp/$name.trees.csv", "$trees\n");
	my $model = $node->safe_psql('postgres', qq{
		SELECT json_build_object('features', m.features,
		                         'base_margin', (credit_risk.cr_model_info(m.model)->>'base_margin')::float8)
		  FROM credit_risk.models m WHERE m.name = '$name'});
	PostgreSQL::Test::Utils::append_to_file("$tmp/$name.model.json", $model);
	# 150 applicants, among them one with every nullable feature missing
	my $apps = $node->safe_psql('postgres', qq{$modes{$mode}
		SELECT json_agg(json_build_object(
		         'x', (SELECT json_object_agg(f, (to_jsonb(a) ->> f)::float8)
		                 FROM unnest(m.features) f),
		         'contributions', (SELECT json_object_agg(e.feature, e.contribution)
		                             FROM credit_risk.cr_explain('$name', a, NULL) e),
		         'margin', ln(p / (1 - p))))
		  FROM credit_risk.models m,
		       (SELECT * FROM apps WHERE id <= 149
		        UNION ALL SELECT 0, NULL, 40, NULL, 10, 1, 0) a,
		       LATERAL (SELECT credit_risk.cr_predict('$name', a) AS p) s
		 WHERE m.name = '$name'});
	PostgreSQL::Test::Utils::append_to_file("$tmp/$name.$mode.apps.json", $apps);

	my ($out, $err);
	IPC::Run::run([ $python, $oracle, "$tmp/$name.trees.csv", "$tmp/$name.model.json",
					"$tmp/$name.$mode.apps.json" ], '>', \$out, '2>', \$err)
	  or die "$oracle failed:\n$err";
	unlink "$tmp/$name.trees.csv", "$tmp/$name.model.json";
	my ($n, $phi, $base, $sum) = split ' ', $out;
	is($n, 150, "$name, $mode: 150 applicants explained");
	cmp_ok($phi, '<', 1e-9, "$name, $mode: every contribution equals its Shapley value ($phi)");
	cmp_ok($base, '<', 1e-9, "$name, $mode: the base is the expected margin ($base)");
	cmp_ok($sum, '<', 1e-9, "$name, $mode: base + contributions = logit(PD) ($sum)");
}
}

# The three ways agree on every applicant, NULLs included.
for my $mode ('tables', 'mixed', 'recursion')
{
	$node->safe_psql('postgres', qq{$modes{$mode}
		CREATE TABLE explained_$mode AS
		SELECT m.name, a.id, e.feature, e.contribution
		  FROM (VALUES ('shallow'), ('deep')) m(name), apps a,
		       LATERAL credit_risk.cr_explain(m.name, a, NULL) e});
}
my ($diff, $rows) = split /\s+/, $node->safe_psql('postgres', q{
	SELECT max(greatest(abs(t.contribution - m.contribution), abs(t.contribution - r.contribution)))
	       || ' ' || count(*)
	  FROM explained_tables t JOIN explained_mixed m USING (name, id, feature)
	  JOIN explained_recursion r USING (name, id, feature)});
note "tables, mixed, recursion: max |difference| $diff over $rows contributions";
is($rows, 4000 * (6 + 4), 'every contribution explained three ways');
cmp_ok($diff, '<', 1e-12, 'tables, some tables and the recursion agree');

# The deep model's trees do split on a feature again below itself (the case
# where TreeSHAP takes the feature's element out of the path first).
is($node->safe_psql('postgres', q{
	WITH t AS (SELECT tr.* FROM credit_risk.models m, credit_risk.cr_model_trees(m.model) tr
	            WHERE m.name = 'deep')
	SELECT count(*) > 0 FROM t p JOIN t c ON c.tree = p.tree
	   AND c.node IN (p.left_child, p.right_child) AND c.feature = p.feature}),
	't', 'the deep model has a feature split again right below itself');

no_crashes($node);
$node->stop;
done_testing();
