# The raw German credit data for a TAP test: test/data/german_raw.sql (the
# table german_raw, as the regression tests load it) run on a node, with
# the data file's absolute path.
package CrGerman;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use PostgreSQL::Test::Utils;

our @EXPORT = qw(load_german_raw);

sub load_german_raw
{
	my ($node, $db) = @_;
	my $data_dir = dirname(__FILE__) . '/../data';
	my $sql = slurp_file("$data_dir/german_raw.sql");
	$sql =~ s{'test/data/german\.data'}{'$data_dir/german.data'}
	  or die "german_raw.sql no longer names test/data/german.data";
	$node->safe_psql($db // 'postgres', $sql);
	return;
}

1;
