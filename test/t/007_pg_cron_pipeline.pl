# pg_cron runs the pipeline: cr_schedule_pipeline creates the four jobs
# (again: updates them), a per-minute job runs a pipeline step for real, and
# cr_unschedule_pipeline removes them all.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use CrCrashCheck;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 20
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION credit_risk;
	CREATE TABLE ext_loans (id int, amount numeric, updated_at timestamptz);
	INSERT INTO ext_loans SELECT i, i * 10, now() FROM generate_series(1, 3) i;
	CREATE TABLE loans (id int PRIMARY KEY, amount numeric, updated_at timestamptz);

	-- An analyst's view over the extract calls the analyst's function, which
	-- makes the analyst a superuser if whoever reads the view is one.
	CREATE ROLE analyst;
	GRANT CREATE ON SCHEMA public TO analyst;
	GRANT SELECT ON ext_loans TO analyst;
	SET ROLE analyst;
	CREATE FUNCTION public.trap() RETURNS boolean LANGUAGE plpgsql AS $f$
	BEGIN
	    ALTER ROLE analyst SUPERUSER;
	    RETURN true;
	EXCEPTION WHEN insufficient_privilege THEN
	    RETURN true;
	END $f$;
	CREATE VIEW public.ext_loans_v AS SELECT * FROM ext_loans WHERE public.trap();
	RESET ROLE;

	-- The step runs as "pipeline", with the grants the README lists.
	CREATE ROLE pipeline;
	GRANT USAGE ON SCHEMA credit_risk TO pipeline;
	GRANT EXECUTE ON FUNCTION credit_risk.cr_mirror(regclass, regclass, text[], text) TO pipeline;
	GRANT SELECT ON credit_risk.quality_rules TO pipeline;
	GRANT SELECT, INSERT, UPDATE ON credit_risk.mirror_state TO pipeline;
	GRANT INSERT ON credit_risk.pipeline_runs, credit_risk.quarantine TO pipeline;
	GRANT USAGE ON SEQUENCE credit_risk.pipeline_runs_id_seq, credit_risk.quarantine_id_seq TO pipeline;
	GRANT SELECT ON public.ext_loans_v TO pipeline;
	GRANT SELECT, INSERT, UPDATE ON loans TO pipeline;
	INSERT INTO credit_risk.pipeline_steps (step, command, run_as) VALUES
	    ('ingestion', $$SELECT * FROM credit_risk.cr_mirror('ext_loans_v', 'loans', ARRAY['id'], 'updated_at')$$,
	     'pipeline');
});

is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job}), '0',
	'nothing is scheduled at install time');

my $jobs = q{SELECT string_agg(jobname || ' ' || schedule, ', ' ORDER BY jobname) FROM cron.job};
$node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_schedule_pipeline()});
my $expected = 'credit_risk:daily_ingestion 0 2 * * *, credit_risk:feature_engineering 0 4 * * *, '
  . 'credit_risk:model_monitoring 0 6 * * *, credit_risk:model_training 0 1 * * 0';
is($node->safe_psql('postgres', $jobs), $expected, 'the four jobs, on their UTC schedules');
$node->safe_psql('postgres', q{SELECT count(*) FROM credit_risk.cr_schedule_pipeline()});
is($node->safe_psql('postgres', $jobs), $expected, 'scheduling again updates, not duplicates');
like($node->safe_psql('postgres',
	q{SELECT command FROM cron.job WHERE jobname = 'credit_risk:daily_ingestion'}),
	qr/credit_risk\.cr_run_pipeline_step\('ingestion'\)/, 'the job runs the ingestion step');

# Let pg_cron run the ingestion step itself, on a per-minute schedule.
$node->safe_psql('postgres', q{
	SELECT cron.schedule('credit_risk:test_ingestion', '* * * * *',
	                     $$SELECT credit_risk.cr_run_pipeline_step('ingestion')$$);
});
my $done = 0;
for (1 .. 150)
{
	$done = $node->safe_psql('postgres', q{
		SELECT count(*) FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		 WHERE j.jobname = 'credit_risk:test_ingestion' AND d.status = 'succeeded'});
	last if $done > 0;
	sleep 1;
}
cmp_ok($done, '>', 0, 'pg_cron ran the pipeline job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM loans}), '3', 'the job mirrored the extract');
is($node->safe_psql('postgres',
	q{SELECT status FROM credit_risk.pipeline_runs WHERE job = 'step:ingestion' ORDER BY id LIMIT 1}),
	'succeeded', 'the step logged its run');
is($node->safe_psql('postgres', q{SELECT username FROM cron.job j WHERE j.jobname = 'credit_risk:test_ingestion'}),
	'postgres', 'pg_cron ran the job as a superuser');
is($node->safe_psql('postgres', q{SELECT detail->>'run_as' FROM credit_risk.pipeline_runs WHERE job = 'step:ingestion' LIMIT 1}),
	'pipeline', 'the step ran as its run_as role');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'analyst'}), 'f',
	"the analyst's function in the step's view ran without a superuser's rights");

is($node->safe_psql('postgres', q{SELECT credit_risk.cr_unschedule_pipeline()}), '5',
	'unscheduling removes every credit_risk job');
is($node->safe_psql('postgres', q{SELECT count(*) FROM cron.job}), '0', 'no job is left');

no_crashes($node);
$node->stop;
done_testing();
