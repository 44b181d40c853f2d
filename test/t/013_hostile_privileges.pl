# Attempts to get past the extension's privilege boundaries, each of which
# once worked or was tried: code queued by a pipeline step to run at commit
# (deferred trigger, WITH HOLD cursor) when the user id is the caller's
# again; an operator of another role's standing in for the extension's own;
# a run_as role that is a member of a superuser role; a trigger added to the
# registry with the TRIGGER privilege; the schema renamed before a drop.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrApps;
use CrCrashCheck;
use CrRoles;

my $node = PostgreSQL::Test::Cluster->new('hostile_privileges');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION credit_risk');
create_readme_roles($node);
$node->safe_psql('postgres', apps_sql(1000));
$node->safe_psql('postgres', q{
	CREATE ROLE mallory;
	GRANT CREATE ON SCHEMA public TO mallory;
	GRANT SELECT ON apps TO cr_app, cr_trainer, cr_monitor;
	SELECT version FROM credit_risk.cr_train('m', 'apps', 'y', 'logistic', NULL, '{"key": "id"}');
	SELECT version FROM credit_risk.cr_train('m', 'apps', 'y', 'logistic', NULL, '{"key": "id", "l2": 10}');
});

sub state_of
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return ($state // ($ret == 0 ? '' : 'failed'), $err);
}
my $is_super = q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'};

# 1. A deferred trigger queued by a step fires while the step's role is in force.
$node->safe_psql('postgres', q{
	SET ROLE mallory;
	CREATE TABLE public.mt (x int);
	CREATE FUNCTION public.mt_trg() RETURNS trigger LANGUAGE plpgsql AS
	  $$BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN NULL; END$$;
	CREATE CONSTRAINT TRIGGER mt_c AFTER INSERT ON public.mt DEFERRABLE INITIALLY DEFERRED
	  FOR EACH ROW EXECUTE FUNCTION public.mt_trg();
	CREATE FUNCTION public.evil_hold() RETURNS int LANGUAGE plpgsql AS
	  $$BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN 1; END$$;
});
my ($state, $err) = state_of(q{SELECT credit_risk.cr_run_as('mallory', 'INSERT INTO public.mt VALUES (1)')});
is($state, '42501', 'a deferred trigger of the step fires as the step\'s role, and fails') or diag($err);
is($node->safe_psql('postgres', $is_super), 'f', 'mallory is not a superuser (deferred trigger)');

# ... and through a pipeline step, as pg_cron would call it.
$node->safe_psql('postgres', q{
	GRANT INSERT ON public.mt TO cr_pipeline;
	INSERT INTO credit_risk.pipeline_steps (step, command, run_as)
	VALUES ('ingestion', 'INSERT INTO public.mt VALUES (2)', 'cr_pipeline')});
is($node->safe_psql('postgres', q{SELECT status || ' ' || (detail->>'reason') FROM credit_risk.cr_run_pipeline_step('ingestion')}),
	'failed 42501: must be superuser to alter superuser roles or change superuser attribute',
	'the step fails with the trigger\'s error');
is($node->safe_psql('postgres', $is_super), 'f', 'mallory is not a superuser (pipeline step)');

# 2. A WITH HOLD cursor would run at commit: a step may not leave one open.
($state, $err) = state_of(q{SELECT credit_risk.cr_run_as('mallory', 'DECLARE c CURSOR WITH HOLD FOR SELECT public.evil_hold()')});
is($state, '24000', 'a step may not leave a WITH HOLD cursor open') or diag($err);
is($node->safe_psql('postgres', $is_super), 'f', 'mallory is not a superuser (WITH HOLD cursor)');
($state, $err) = state_of(q{BEGIN; DECLARE mine CURSOR FOR SELECT 1;
	SELECT credit_risk.cr_run_as('mallory', 'SELECT 1'); CLOSE mine; COMMIT;});
is($state, '', "the caller's own open cursor is not the step's") or diag($err);

# 3. Transaction control and COPY to the client are refused with their own errcode.
($state, $err) = state_of(q{SELECT credit_risk.cr_run_as('mallory', 'COMMIT')});
is($state, '0A000', 'transaction control in a step: 0A000, not an internal error') or diag($err);
($state, $err) = state_of(q{SELECT credit_risk.cr_run_as('mallory', 'COPY public.mt TO STDOUT')});
is($state, '0A000', 'COPY to the client in a step: 0A000') or diag($err);

# 4. Another role's operators do not stand in for the extension's.
$node->safe_psql('postgres', q{
	SET ROLE mallory;
	CREATE FUNCTION public.hijack_div(a float8, b bigint) RETURNS float8 LANGUAGE plpgsql AS
	  $$BEGIN RAISE EXCEPTION 'hijacked / ran as %', current_user; END$$;
	CREATE OPERATOR public./ (LEFTARG = float8, RIGHTARG = bigint, FUNCTION = public.hijack_div);
	CREATE FUNCTION public.hijack_gt(a float8, b int) RETURNS boolean LANGUAGE plpgsql AS
	  $$BEGIN RAISE EXCEPTION 'hijacked > ran as %', current_user; END$$;
	CREATE OPERATOR public.> (LEFTARG = float8, RIGHTARG = int, FUNCTION = public.hijack_gt);
});
($state, $err) = state_of(q{SET ROLE cr_monitor; SELECT rows FROM credit_risk.cr_monitor('m', 'apps', 'y')});
is($state, '', "cr_monitor uses pg_catalog's operators, not one in the caller's search_path") or diag($err);
# the route lookup by query (row security on the registry turns the index path off)
$node->safe_psql('postgres', q{
	SELECT share FROM credit_risk.cr_route('m', 2, 0.5);
	ALTER TABLE credit_risk.routes ENABLE ROW LEVEL SECURITY;
	CREATE POLICY everyone ON credit_risk.routes FOR SELECT USING (true);
});
($state, $err) = state_of(q{SET ROLE cr_app; SELECT count(*) FROM credit_risk.cr_predict_batch('m', 'apps', 'id')});
is($state, '', "the registry's queries use pg_catalog's operators") or diag($err);
$node->safe_psql('postgres', q{
	DROP POLICY everyone ON credit_risk.routes;
	ALTER TABLE credit_risk.routes DISABLE ROW LEVEL SECURITY;
});

# 5. A role with membership in a superuser role counts as a superuser.
$node->safe_psql('postgres', q{CREATE ROLE admins NOSUPERUSER; GRANT postgres TO admins});
($state, $err) = state_of(q{UPDATE credit_risk.pipeline_steps SET run_as = 'admins' WHERE step = 'ingestion'});
is($state, '42501', 'a step may not run as a member of a superuser role') or diag($err);
($state, $err) = state_of(q{SELECT credit_risk.cr_run_as('admins', 'SELECT 1')});
is($state, '42501', 'nor may cr_run_as') or diag($err);

# 6. A trigger on the registry would run with the owner's rights: refused.
$node->safe_psql('postgres', q{GRANT TRIGGER ON credit_risk.models TO cr_trainer;
	GRANT CREATE ON SCHEMA public TO cr_trainer});
$node->safe_psql('postgres', q{
	SET ROLE cr_trainer;
	CREATE FUNCTION public.reg_trg() RETURNS trigger LANGUAGE plpgsql AS
	  $$BEGIN UPDATE credit_risk.models SET status = 'champion' WHERE version = 2; RETURN NULL; END$$;
	CREATE TRIGGER sneak AFTER INSERT ON credit_risk.models FOR EACH ROW EXECUTE FUNCTION public.reg_trg();
});
($state, $err) = state_of(q{SET ROLE cr_trainer; SELECT version FROM credit_risk.cr_train('m', 'apps', 'y', 'logistic')});
is($state, '42501', 'training refuses to write a registry with a foreign trigger') or diag($err);
like($err, qr/credit_risk.models has a trigger "sneak" that is not the extension's/, 'and names it');
$node->safe_psql('postgres', q{DROP TRIGGER sneak ON credit_risk.models;
	REVOKE TRIGGER ON credit_risk.models FROM cr_trainer});
is($node->safe_psql('postgres', q{SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM credit_risk.models}),
	'1:champion,2:challenger', 'the registry is as the functions left it');

# 7. The drop guard follows the extension's schema under another name.
$node->safe_psql('postgres', q{ALTER SCHEMA credit_risk RENAME TO renamed});
($state, $err) = state_of(q{DROP EXTENSION credit_risk});
is($state, '2BP01', 'DROP EXTENSION is refused with the schema renamed') or diag($err);
($state, $err) = state_of(q{DROP SCHEMA renamed CASCADE});
is($state, '2BP01', 'DROP SCHEMA of the renamed schema is refused') or diag($err);
$node->safe_psql('postgres', q{ALTER SCHEMA renamed RENAME TO credit_risk});
is($node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.models}), '2', 'no model was lost');

no_crashes($node);
$node->stop;
done_testing();
