# What the sharding tests share: training on the sharded table against the
# same rows on one node.
package CrShards;

use strict;
use warnings;

use Exporter 'import';
use Test::More;

our @EXPORT = qw(trains_as_one_node);

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

1;
