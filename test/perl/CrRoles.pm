# The roles of README.md's "Roles and privileges", with exactly the grants
# listed there: the README's SQL block is run as written, so the tests and
# the manual cannot drift apart.
package CrRoles;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(readme_grants create_readme_roles);

# The README's block of grants, or undef when it has none.
sub readme_grants
{
	my $readme = slurp_file("$FindBin::RealBin/../../README.md");
	my ($grants) = $readme =~ /<!-- roles:begin -->\s*```sql\n(.*?)```\s*<!-- roles:end -->/s;
	return $grants;
}

# Create the five roles on node (credit_risk installed) and run the grants.
sub create_readme_roles
{
	my ($node) = @_;
	$node->safe_psql('postgres', q{
		CREATE ROLE cr_app; CREATE ROLE cr_trainer; CREATE ROLE cr_approver;
		CREATE ROLE cr_monitor; CREATE ROLE cr_pipeline;
	});
	$node->safe_psql('postgres', readme_grants());
}

1;
