# The reference pipeline (examples/reference_pipeline.sql): raw tables for
# 100,000 customers, the feature view rebuilt from them, and a model that
# reaches a holdout AUC of at least 0.80 on the known mechanism.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $node = PostgreSQL::Test::Cluster->new('reference');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');

my $script = "$ENV{TESTDIR}/examples/reference_pipeline.sql";
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'customers=100000', '-d', $node->connstr('postgres'), '-f', $script ],
	'the reference data and features build');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ref.features}), '100000', 'one feature row per customer');

# the feature step: rebuilding from the raw tables picks up their changes
$node->safe_psql('postgres', q{
	UPDATE ref.accounts SET balance = credit_limit WHERE customer_id = 1;
	REFRESH MATERIALIZED VIEW ref.features;
});
is($node->safe_psql('postgres', q{SELECT credit_utilization FROM ref.features WHERE customer_id = 1}),
	'1', 'the refreshed features reflect the raw tables');

my $auc = $node->safe_psql('postgres', q{
	SELECT metrics->>'auc' FROM credit_risk.cr_train('ref_pd', 'ref.features', 'defaulted', 'gbm', NULL,
	                                                 '{"key": "customer_id"}')});
cmp_ok($auc, '>=', 0.80, "holdout AUC $auc on 100,000 customers");

no_crashes($node);
$node->stop;
done_testing();
