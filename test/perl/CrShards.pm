# What the sharding tests share: training on the sharded table against the
# same rows on one node.
package CrShards;

use strict;
use warnings;

use Exporter 'import';
use Test::More;

our @EXPORT = qw(trains_as_one_node trains_distributed_as_one_node);

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

1;
