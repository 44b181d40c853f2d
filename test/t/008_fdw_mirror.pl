# Warehouse extracts arrive through foreign tables: a second cluster (the
# warehouse) over postgres_fdw, and CSV extract files over file_fdw.
# cr_mirror copies them incrementally into local tables.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $warehouse = PostgreSQL::Test::Cluster->new('warehouse');
$warehouse->init;
$warehouse->start;
$warehouse->safe_psql('postgres', q{
	CREATE TABLE loans (loan_id int PRIMARY KEY, customer_id text, amount numeric,
	                    defaulted int, updated_at timestamptz);
	INSERT INTO loans
	SELECT i, 'C' || i, i * 100, (i % 4 = 0)::int, '2026-01-01'::timestamptz + i * interval '1 minute'
	  FROM generate_series(1, 1000) i;
});

my $node = PostgreSQL::Test::Cluster->new('bank');
$node->init;
$node->start;
my $whost = $warehouse->host;
my $wport = $warehouse->port;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION credit_risk;
	CREATE EXTENSION postgres_fdw;
	CREATE SERVER warehouse FOREIGN DATA WRAPPER postgres_fdw
	    OPTIONS (host '$whost', port '$wport', dbname 'postgres');
	CREATE USER MAPPING FOR CURRENT_USER SERVER warehouse OPTIONS (user '@{[ scalar getpwuid($<) ]}');
	CREATE SCHEMA wh;
	IMPORT FOREIGN SCHEMA public LIMIT TO (loans) FROM SERVER warehouse INTO wh;
	CREATE TABLE loans (loan_id int PRIMARY KEY, customer_id text, amount numeric,
	                    defaulted int, updated_at timestamptz);
});

is($node->safe_psql('postgres',
	q{SELECT rows_read || '/' || inserted || '/' || updated FROM credit_risk.cr_mirror('wh.loans', 'loans', ARRAY['loan_id'], 'updated_at')}),
	'1000/1000/0', 'postgres_fdw: the first mirror copies every row');

$warehouse->safe_psql('postgres', q{
	UPDATE loans SET amount = amount + 1, updated_at = updated_at + interval '1 year' WHERE loan_id <= 10;
	INSERT INTO loans VALUES (1001, 'C1001', 5, 0, '2027-06-01');
});
is($node->safe_psql('postgres',
	q{SELECT rows_read || '/' || inserted || '/' || updated FROM credit_risk.cr_mirror('wh.loans', 'loans', ARRAY['loan_id'], 'updated_at')}),
	'11/1/10', 'postgres_fdw: the next mirror reads only rows past the watermark');
is($node->safe_psql('postgres', q{SELECT count(*) || ',' || sum(amount) FROM loans}),
	$warehouse->safe_psql('postgres', q{SELECT count(*) || ',' || sum(amount) FROM loans}),
	'the local table matches the warehouse');

# file_fdw: a CSV extract, as EXPORT DATA or COPY INTO @stage would write it
my $csv = $node->basedir . '/payments.csv';
open(my $fh, '>', $csv) or die;
print $fh "payment_id,loan_id,paid,paid_at\n";
print $fh "$_,$_," . ($_ * 3) . ",2026-02-0" . (1 + $_ % 9) . "\n" for 1 .. 50;
close($fh);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION file_fdw;
	CREATE SERVER extracts FOREIGN DATA WRAPPER file_fdw;
	CREATE FOREIGN TABLE ext_payments (payment_id int, loan_id int, paid numeric, paid_at date)
	    SERVER extracts OPTIONS (filename '$csv', format 'csv', header 'true');
	CREATE TABLE payments (payment_id int PRIMARY KEY, loan_id int, paid numeric, paid_at date);
	INSERT INTO credit_risk.quality_rules (target, column_name, rule, args)
	VALUES ('payments', 'paid', 'range', '{"min": 0, "max": 120}');
});
is($node->safe_psql('postgres',
	q{SELECT rows_read || '/' || inserted || '/' || rejected FROM credit_risk.cr_mirror('ext_payments', 'payments', ARRAY['payment_id'], 'paid_at')}),
	'50/40/10', 'file_fdw: the CSV is mirrored, out-of-range rows quarantined');
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.quarantine WHERE target = 'payments'}),
	'10', 'the quarantined rows are kept');

no_crashes($node);
$node->stop;
no_crashes($warehouse);
$warehouse->stop;
done_testing();
