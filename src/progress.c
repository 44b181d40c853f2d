/*
 * progress.c
 *	  credit_risk.progress: what each backend's long credit_risk command is
 *	  doing, in shared memory, in the manner of PostgreSQL's
 *	  pg_stat_progress_* views; and the same phases as NOTICE lines for a
 *	  command run with params.verbose (which needs no preload).
 *
 * Each backend writes only its own slot (indexed by its PGPROC number),
 * inside a change counter that readers retry on, as pgstat does for
 * pg_stat_activity.  Updates are a few stores: callers report every tree,
 * Newton step, trial or block of rows.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "progress.h"

PG_FUNCTION_INFO_V1(cr_progress);
PG_FUNCTION_INFO_V1(cr_progress_report);

#define PROGRESS_MAX_DEPTH	64

typedef struct ProgressSlot
{
	pg_atomic_uint32 changecount;	/* odd while the owner writes */
	int			pid;			/* 0: no command */
	Oid			dbid;
	Oid			userid;
	char		command[32];
	char		model[64];
	char		phase[80];
	int32		step;
	int32		steps;			/* 0: unknown */
	int64		rows_done;
	int64		rows_total;		/* -1: unknown */
	TimestampTz started;
	TimestampTz phase_started;
} ProgressSlot;

typedef struct ProgressShared
{
	int			nslots;
	ProgressSlot slots[FLEXIBLE_ARRAY_MEMBER];
} ProgressShared;

static ProgressShared *progress = NULL;

/* this backend's commands: nest levels of those begun, and NOTICE lines */
static int	depth = 0;
static int	levels[PROGRESS_MAX_DEPTH];
static bool verbose = false;
static bool exit_registered = false;
static TimestampTz last_notice = 0;

/* a copy of the slot, kept to word the NOTICE lines */
static char cur_command[32];
static char cur_model[64];
static char cur_phase[80];
static char context[40];		/* "trial 3 of 20", "fold 2 of 5": before the phase */

Size
ProgressShmemSize(void)
{
	return add_size(offsetof(ProgressShared, slots),
					mul_size(MaxBackends, sizeof(ProgressSlot)));
}

void
ProgressShmemInit(void)
{
	bool		found;

	progress = ShmemInitStruct("credit_risk progress", ProgressShmemSize(), &found);
	if (!found)
	{
		memset(progress, 0, ProgressShmemSize());
		progress->nslots = MaxBackends;
	}
}

static ProgressSlot *
MySlot(void)
{
	if (progress == NULL || MyProc == NULL || MyProc->pgprocno >= progress->nslots)
		return NULL;
	return &progress->slots[MyProc->pgprocno];
}

#define SLOT_WRITE_BEGIN(s) \
	do { pg_atomic_fetch_add_u32(&(s)->changecount, 1); pg_write_barrier(); } while (0)
#define SLOT_WRITE_END(s) \
	do { pg_write_barrier(); pg_atomic_fetch_add_u32(&(s)->changecount, 1); } while (0)

/* src into dst[size], cut at a character boundary */
static void
CopyClipped(char *dst, const char *src, int size)
{
	int			len = pg_mbcliplen(src, strlen(src), size - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

static void
ProgressClear(void)
{
	ProgressSlot *s = MySlot();

	if (s == NULL || s->pid == 0)
		return;
	SLOT_WRITE_BEGIN(s);
	s->pid = 0;
	SLOT_WRITE_END(s);
}

static void
ProgressAtExit(int code, Datum arg)
{
	ProgressClear();
}

/* a phase with its step: "building tree 3 of 60", "Newton step 4" */
static char *
PhaseText(const char *phase, int step, int steps)
{
	if (step > 0 && steps > 0)
		return psprintf("%s %d of %d", phase, step, steps);
	if (step > 0)
		return psprintf("%s %d", phase, step);
	return pstrdup(phase);
}

static void
Notice(const char *what)
{
	if (verbose)
		ereport(NOTICE,
				(errmsg("%s \"%s\": %s", cur_command, cur_model, what)));
}

void
ProgressBegin(const char *command, const char *model, bool want_notices)
{
	ProgressSlot *s;

	if (depth == PROGRESS_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("credit_risk commands are nested more than %d deep", PROGRESS_MAX_DEPTH),
				 errdetail("A source query calls credit_risk's commands, whose source queries call them again.")));
	levels[depth] = GetCurrentTransactionNestLevel();
	if (depth++ > 0)
	{
		verbose |= want_notices;
		return;
	}
	verbose = want_notices;
	CopyClipped(cur_command, command, sizeof(cur_command));
	CopyClipped(cur_model, model ? model : "", sizeof(cur_model));
	strlcpy(cur_phase, "starting", sizeof(cur_phase));
	context[0] = '\0';
	if ((s = MySlot()) != NULL)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (!exit_registered)
		{
			before_shmem_exit(ProgressAtExit, (Datum) 0);
			exit_registered = true;
		}
		SLOT_WRITE_BEGIN(s);
		s->pid = MyProcPid;
		s->dbid = MyDatabaseId;
		s->userid = GetUserId();
		memcpy(s->command, cur_command, sizeof(s->command));
		memcpy(s->model, cur_model, sizeof(s->model));
		memcpy(s->phase, cur_phase, sizeof(s->phase));
		s->step = s->steps = 0;
		s->rows_done = 0;
		s->rows_total = -1;
		s->started = s->phase_started = now;
		SLOT_WRITE_END(s);
	}
	last_notice = 0;
}

void
ProgressEnd(void)
{
	if (depth == 0)
		return;
	if (--depth > 0)
		return;
	if (verbose)
		Notice("done");
	ProgressClear();
	verbose = false;
}

void
ProgressPhase(const char *phase, int64 rows_total)
{
	ProgressSlot *s = MySlot();

	if (depth == 0)
		return;
	if (context[0] != '\0')
		CopyClipped(cur_phase, psprintf("%s: %s", context, phase), sizeof(cur_phase));
	else
		CopyClipped(cur_phase, phase, sizeof(cur_phase));
	if (s != NULL && s->pid != 0)
	{
		SLOT_WRITE_BEGIN(s);
		memcpy(s->phase, cur_phase, sizeof(s->phase));
		s->step = s->steps = 0;
		s->rows_done = 0;
		s->rows_total = rows_total;
		s->phase_started = GetCurrentTimestamp();
		SLOT_WRITE_END(s);
	}
	if (verbose)
	{
		Notice(cur_phase);
		last_notice = GetCurrentTimestamp();
	}
}

/* What the phases that follow are part of (NULL: nothing). */
void
ProgressContext(const char *what)
{
	CopyClipped(context, what ? what : "", sizeof(context));
}

void
ProgressStep(int step, int steps)
{
	ProgressSlot *s = MySlot();

	if (depth == 0)
		return;
	if (s != NULL && s->pid != 0)
	{
		SLOT_WRITE_BEGIN(s);
		s->step = step;
		s->steps = steps;
		SLOT_WRITE_END(s);
	}
	/* a NOTICE at most every second, and for the last step */
	if (verbose)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (step == steps || TimestampDifferenceExceeds(last_notice, now, 1000))
		{
			Notice(PhaseText(cur_phase, step, steps));
			last_notice = now;
		}
	}
}

void
ProgressRows(int64 rows_done)
{
	ProgressSlot *s = MySlot();

	if (depth == 0 || s == NULL || s->pid == 0)
		return;
	SLOT_WRITE_BEGIN(s);
	s->rows_done = rows_done;
	SLOT_WRITE_END(s);
}

/* The commands begun at nest_level or deeper are over: an ERROR unwound them, or the transaction ended. */
void
ProgressUnwind(int nest_level)
{
	int			keep = depth;

	while (keep > 0 && levels[keep - 1] >= nest_level)
		keep--;
	if (keep == depth)
		return;
	depth = keep;
	if (depth == 0)
	{
		ProgressClear();
		verbose = false;
	}
}

/*
 * cr_progress(): the commands in progress: pid, database, command, model,
 * phase (with its step), rows done and expected, when it started, how long
 * the current phase has run and, from its rate so far, how long it has
 * left.  Other roles' commands show only pid, database and command, unless
 * the caller has pg_read_all_stats.
 */
Datum
cr_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTimestamp();
	bool		all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);

	if (progress == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("credit_risk.progress needs credit_risk in shared_preload_libraries"),
				 errhint("Add credit_risk to shared_preload_libraries and restart the server, or run the command with params {\"verbose\": true} for its phases as NOTICE lines.")));

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < progress->nslots; i++)
	{
		ProgressSlot *shared = &progress->slots[i];
		ProgressSlot s;
		Datum		values[12];
		bool		nulls[12] = {0};
		char	   *dbname;

		for (;;)
		{
			uint32		before = pg_atomic_read_u32(&shared->changecount);

			pg_read_barrier();
			memcpy(&s, shared, sizeof(s));
			pg_read_barrier();
			if (before == pg_atomic_read_u32(&shared->changecount) && (before & 1) == 0)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		if (s.pid == 0)
			continue;
		s.command[sizeof(s.command) - 1] = '\0';
		s.model[sizeof(s.model) - 1] = '\0';
		s.phase[sizeof(s.phase) - 1] = '\0';

		values[0] = Int32GetDatum(s.pid);
		dbname = get_database_name(s.dbid);
		values[1] = dbname ? CStringGetTextDatum(dbname) : (Datum) 0;
		nulls[1] = dbname == NULL;
		values[2] = CStringGetTextDatum(s.command);
		if (!all && !has_privs_of_role(GetUserId(), s.userid))
		{
			for (int k = 3; k < 12; k++)
				nulls[k] = true;
		}
		else
		{
			long		secs;
			int			usecs;
			double		phase_s;
			double		left = -1;

			values[3] = CStringGetTextDatum(s.model);
			nulls[3] = s.model[0] == '\0';
			values[4] = CStringGetTextDatum(PhaseText(s.phase, s.step, s.steps));
			values[5] = Int32GetDatum(s.step);
			values[6] = Int32GetDatum(s.steps);
			nulls[6] = s.steps <= 0;
			values[7] = Int64GetDatum(s.rows_done);
			values[8] = Int64GetDatum(s.rows_total);
			nulls[8] = s.rows_total < 0;
			values[9] = TimestampTzGetDatum(s.started);
			values[10] = IntervalPGetDatum(DatumGetIntervalP(DirectFunctionCall2(timestamp_mi,
																			 TimestampTzGetDatum(now),
																			 TimestampTzGetDatum(s.started))));
			/* what is left of the phase, at its rate so far */
			TimestampDifference(s.phase_started, now, &secs, &usecs);
			phase_s = secs + usecs / 1e6;
			if (s.steps > 0 && s.step > 1)
				left = phase_s * (s.steps - (s.step - 1)) / (s.step - 1);
			else if (s.rows_total > 0 && s.rows_done > 0)
				left = phase_s * (double) (s.rows_total - s.rows_done) / s.rows_done;
			if (left >= 0)
			{
				Interval   *iv = palloc0(sizeof(Interval));

				iv->time = (TimeOffset) (left * USECS_PER_SEC);
				values[11] = IntervalPGetDatum(iv);
			}
			else
				nulls[11] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * cr_progress_report(command, model, phase): for the extension's PL/pgSQL
 * commands (cr_mirror, cr_monitor): a phase names the next phase of the
 * command in progress; without one, a command begins, or (NULL) ends.
 */
Datum
cr_progress_report(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(2))
		ProgressPhase(text_to_cstring(PG_GETARG_TEXT_PP(2)), -1);
	else if (PG_ARGISNULL(0))
		ProgressEnd();
	else
		ProgressBegin(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					  PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)), false);
	PG_RETURN_VOID();
}
