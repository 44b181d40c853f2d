# Counts server processes that died of a signal, from a node's server log.
#
# A crashed backend makes the postmaster restart every backend, but
# pg_postmaster_start_time() stays the same, so only the log tells.  Every
# TAP test calls no_crashes() for each node before it stops it, naming how
# many processes the test itself killed (normally none).
package CrCrashCheck;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(crash_count no_crashes);

# Server processes reported as "terminated by signal" in the node's log.
sub crash_count
{
	my ($node) = @_;
	my $log = slurp_file($node->logfile);
	my @deaths = $log =~ /terminated by signal/g;
	return scalar @deaths;
}

sub no_crashes
{
	my ($node, $killed) = @_;
	$killed //= 0;
	my $what = $killed ? "exactly the $killed killed by the test" : 'none';
	is(crash_count($node), $killed,
		$node->name . ": server processes terminated by a signal: $what");
}

1;
