# What the sharding tests share: training on the sharded table against the
# same rows on one node.
package CrShards;

use strict;
use warnings;

use Exporter 'import';
use Test::More;

our @EXPORT = qw(trains_as_one_node trains_distributed_as_one_node trains_gbm_distributed_as_one_node);

# On node, a GBM (gbm_params) and a logistic model trained on applicants
# (sharded) give the bytes the same training gives on applicants_local.
sub trains_as_one_node
{
	my ($node, $where, $gbm_params) = @_;
	for my $algo ('gbm', 'logistic')
	{
		my $params = $algo eq 'gbm' ? $gbm_params : '{"key": "id"}';
		my $one = $node->safe_psql('postgres', qq{SELECT md5(model) FROM credit_risk.cr_train('one_$algo', 'applicants_local', 'y', '$algo', NULL, '$params')});
		my $sharded = $node->safe_psql('postgres', qq{SELECT md5(model) FROM credit_risk.cr_train('pd_$algo', 'applicants', 'y', '$algo', NULL, '$params')});
		is($sharded, $one, "$algo: training on the $where gives one node's model byte for byte");
	}
}

# On node, a logistic regression with params.distributed trained on
# applicants (sharded: the passes run where the rows are) has one node's
# coefficients and standard errors to 1e-10 (relative), against the same
# training on applicants_local and against cr_train loading those rows;
# its metrics and drift baselines are one node's.  Returns the sharded
# run's metrics.distributed (parts, passes, bytes).
sub trains_distributed_as_one_node
{
	my ($node, $where) = @_;
	my $params = '{"key": "id", "distributed": true}';
	my $train = sub {
		my ($name, $source, $p) = @_;
		$node->safe_psql('postgres', qq{SELECT version FROM credit_risk.cr_train('$name', '$source', 'y', 'logistic', NULL, '$p')});
	};
	$train->('dist_sharded', 'applicants', $params);
	$train->('dist_local', 'applicants_local', $params);
	$train->('loaded_local', 'applicants_local', '{"key": "id"}');
	# the largest relative difference of any coefficient or standard error
	my $diff = sub {
		my ($x, $y) = @_;
		$node->safe_psql('postgres', qq{
			WITH c AS (
			    SELECT m.name, e->'logistic' AS l FROM credit_risk.models m,
			           LATERAL credit_risk.cr_export(m.name) e WHERE m.name IN ('$x', '$y')),
			v AS (
			    SELECT c.name, 'intercept' AS k, (l->>'intercept')::float8 AS v FROM c
			    UNION ALL SELECT c.name, 'intercept_se', (l->>'intercept_std_error')::float8 FROM c
			    UNION ALL SELECT c.name, f->>'feature', (f->>'coefficient')::float8 FROM c, jsonb_array_elements(l->'coefficients') f
			    UNION ALL SELECT c.name, (f->>'feature') || '_se', (f->>'std_error')::float8 FROM c, jsonb_array_elements(l->'coefficients') f)
			SELECT count(*) || ' ' || max(abs(a.v - b.v) / greatest(abs(a.v), 1e-300))
			  FROM v a JOIN v b USING (k) WHERE a.name = '$x' AND b.name = '$y'});
	};
	my ($n, $d) = split / /, $diff->('dist_sharded', 'dist_local');
	is($n, 8, "distributed: the sharded and one-node fits have the same 8 coefficients and errors");
	cmp_ok($d, '<', 1e-10, "distributed: on the $where, one node's coefficients to 1e-10 (largest relative difference $d)");
	($n, $d) = split / /, $diff->('dist_sharded', 'loaded_local');
	cmp_ok($d, '<', 1e-10, "distributed: and those of cr_train loading the rows, to 1e-10 ($d)");
	my $same = $node->safe_psql('postgres', q{
		SELECT (a.metrics - 'fit_seconds' - 'load_seconds' - 'distributed' - 'log_likelihood' - 'null_log_likelihood' - 'pseudo_r2' - 'log_loss' - 'brier')
		       = (b.metrics - 'fit_seconds' - 'load_seconds' - 'distributed' - 'log_likelihood' - 'null_log_likelihood' - 'pseudo_r2' - 'log_loss' - 'brier'),
		       abs((a.metrics->>'log_loss')::float8 - (b.metrics->>'log_loss')::float8) < 1e-12,
		       a.train_rows = b.train_rows AND a.holdout_rows = b.holdout_rows,
		       credit_risk.cr_export('dist_sharded')->'drift_baseline'->'features'
		         = credit_risk.cr_export('dist_local')->'drift_baseline'->'features'
		  FROM credit_risk.models a, credit_risk.models b
		 WHERE a.name = 'dist_sharded' AND b.name = 'loaded_local'});
	is($same, 't|t|t|t', "distributed: the metrics are one node's (AUC, KS, counts exactly; log loss to 1e-12), and so are the drift baselines");
	return $node->safe_psql('postgres', q{SELECT metrics->'distributed' FROM credit_risk.models WHERE name = 'dist_sharded'});
}

# On node, gradient-boosted trees with params.distributed trained on
# applicants (sharded: each part bins its rows and sends histograms) are
# those of the same training on applicants_local and of cr_train loading
# those rows: the same trees (features, cut points, default directions),
# leaf values and scores to 1e-9, the same metrics.  The holdout of 0.4
# leaves fewer than 131,072 training rows, so the key-hash sample the cut
# points come from is every training row, as in the loaded fit.  Returns
# the sharded run's metrics.distributed.
sub trains_gbm_distributed_as_one_node
{
	my ($node, $where) = @_;
	my $common = '"key": "id", "holdout": 0.4, "n_trees": 25, "max_depth": 4, "colsample_bytree": 0.7, "early_stopping_rounds": 5, "monotone": {"a": 1}';
	my $train = sub {
		my ($name, $source, $dist) = @_;
		$node->safe_psql('postgres', qq{SELECT version FROM credit_risk.cr_train('$name', '$source', 'y', 'gbm', NULL, '{$common, "distributed": $dist}')});
	};
	$train->('gdist_sharded', 'applicants', 'true');
	$train->('gdist_local', 'applicants_local', 'true');
	$train->('gloaded_local', 'applicants_local', 'false');
	for my $other ('gdist_local', 'gloaded_local')
	{
		my $cmp = $node->safe_psql('postgres', qq{
			WITH t AS (
			    SELECT m.name, tr.i, tr.t
			      FROM credit_risk.models m,
			           LATERAL jsonb_array_elements(credit_risk.cr_export(m.name)->'gbm'->'trees') WITH ORDINALITY tr(t, i)
			     WHERE m.name IN ('gdist_sharded', '$other')),
			v AS (
			    SELECT name, i, j, e.v::float8 AS v FROM t, LATERAL jsonb_array_elements_text(t->'value') WITH ORDINALITY e(v, j))
			SELECT (SELECT count(*) FROM t WHERE name = 'gdist_sharded') > 3,
			       (SELECT jsonb_agg(t - 'value' - 'cover' ORDER BY i) FROM t WHERE name = 'gdist_sharded')
			         = (SELECT jsonb_agg(t - 'value' - 'cover' ORDER BY i) FROM t WHERE name = '$other'),
			       (SELECT max(abs(a.v - b.v)) FROM v a JOIN v b USING (i, j)
			         WHERE a.name = 'gdist_sharded' AND b.name = '$other') < 1e-9,
			       (SELECT max(abs(credit_risk.cr_predict(ma.model, l) - credit_risk.cr_predict(mb.model, l)))
			          FROM applicants_local l, credit_risk.models ma, credit_risk.models mb
			         WHERE ma.name = 'gdist_sharded' AND mb.name = '$other') < 1e-9,
			       (SELECT (ma.metrics - 'fit_seconds' - 'load_seconds' - 'bin_seconds' - 'distributed' - 'log_loss' - 'brier' - 'best_holdout_log_loss' - 'threads')
			             = (mb.metrics - 'fit_seconds' - 'load_seconds' - 'bin_seconds' - 'distributed' - 'log_loss' - 'brier' - 'best_holdout_log_loss' - 'threads')
			          FROM credit_risk.models ma, credit_risk.models mb WHERE ma.name = 'gdist_sharded' AND mb.name = '$other')});
		is($cmp, 't|t|t|t|t', "distributed trees: on the $where, the trees of $other (same splits; leaf values and scores to 1e-9; the same metrics)");
	}
	return $node->safe_psql('postgres', q{SELECT metrics->'distributed' FROM credit_risk.models WHERE name = 'gdist_sharded'});
}

1;
