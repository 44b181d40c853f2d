# The small applicant table several TAP tests train and score on: id, two
# features a and b, and a label y that depends on them (about a third of
# the rows are 1).
package CrApps;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT = qw(apps_sql);

# CREATE TABLE apps with rows rows (SQL text to run on a node).
sub apps_sql
{
	my ($rows) = @_;
	return qq{CREATE TABLE apps AS
	SELECT i AS id, (i % 17)::float8 AS a, ((i * 7) % 13)::float8 AS b,
	       ((i % 17) + (i % 5) > 12)::int AS y
	  FROM generate_series(1, $rows) i;};
}

1;
