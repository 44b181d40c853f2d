/*
 * credit_risk.c
 *	  Module entry point and settings.
 */
#include "postgres.h"

#include <limits.h>
#include <unistd.h>

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "progress.h"
#include "serving.h"

PG_MODULE_MAGIC;

int			cr_threads = 1;
int			cr_train_memory_kb = 4 * 1024 * 1024;	/* 4 GB */
int			cr_histogram_message_kb = 64 * 1024;	/* 64 MB */
int			cr_simd = CR_SIMD_AUTO;
bool		cr_allow_drop = false;
int			cr_explain_memory_kb = 32 * 1024;	/* 32 MB */

/*
 * A value set before the module was loaded (in postgresql.conf, or by SET
 * in the session) waits as a placeholder; when the setting is defined, an
 * invalid value, or one the role may not set, is dropped with a WARNING and
 * the default takes its place.  Training refuses to run on such a default
 * (CrCheckSettings) until the setting is given a value again.
 */
static const char *const CrSettingNames[] = {"credit_risk.threads", "credit_risk.train_memory"};
static char *CrRejected[lengthof(CrSettingNames)];

static const struct config_enum_entry CrSimdOptions[] = {
	{"off", CR_SIMD_OFF, false},
	{"avx2", CR_SIMD_AVX2, false},
	{"avx512", CR_SIMD_AVX512, false},
	{"auto", CR_SIMD_AUTO, false},
	/* the boolean this setting once was */
	{"on", CR_SIMD_AUTO, true},
	{"true", CR_SIMD_AUTO, true},
	{"yes", CR_SIMD_AUTO, true},
	{"1", CR_SIMD_AUTO, true},
	{"false", CR_SIMD_OFF, true},
	{"no", CR_SIMD_OFF, true},
	{"0", CR_SIMD_OFF, true},
	{NULL, 0, false}
};

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Serving statistics and progress live in shared memory, when preloaded. */
static void
CrShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(ServingShmemSize(), ProgressShmemSize()));
	RequestNamedLWLockTranche("credit_risk", 1);
}

static void
CrShmemStartup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ServingShmemInit();
	ProgressShmemInit();
	LWLockRelease(AddinShmemInitLock);
}

/* An ERROR ends the scoring calls and commands begun in what it aborts. */
static void
CrXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		ServingFlush();
		ServingAtAbort(0);
		ProgressUnwind(0);
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_PREPARE)
	{
		ServingFlush();
		ServingAtCommit();
		ProgressUnwind(0);
	}
}

static void
CrSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
				  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		int			level = GetCurrentTransactionNestLevel();

		ServingAtAbort(level);
		ProgressUnwind(level);
	}
}

/* A setting's entry in the GUC table, or NULL. */
struct config_generic *
CrFindSetting(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
		if (strcmp(vars[i]->name, name) == 0)
			return vars[i];
	return NULL;
}

/* Any later assignment (SET, RESET, a reload) replaces a rejected value. */
static void
ThreadsAssign(int newval, void *extra)
{
	CrRejected[0] = NULL;
}

static void
TrainMemoryAssign(int newval, void *extra)
{
	CrRejected[1] = NULL;
}

/* A scorer this CPU lacks is refused, so that a test or a benchmark of it is real. */
static bool
SimdCheck(int *newval, void **extra, GucSource source)
{
	if (CrCpuHasSimd((CrSimd) *newval))
		return true;
	GUC_check_errcode(ERRCODE_FEATURE_NOT_SUPPORTED);
	GUC_check_errmsg("this CPU has no %s", *newval == CR_SIMD_AVX512 ? "AVX-512F" : "AVX2");
	GUC_check_errhint("Use \"auto\" for the widest instructions the CPU has, or \"off\".");
	return false;
}

void
CrCheckSettings(void)
{
	for (int i = 0; i < lengthof(CrSettingNames); i++)
		if (CrRejected[i] != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s was set to \"%s\" before credit_risk was loaded, and that value was not accepted",
							CrSettingNames[i], CrRejected[i]),
					 errdetail("The value is invalid, or the role that set it may not set it; training does not run on the default in its place."),
					 errhint("Set %s again, or remove the value from the configuration.", CrSettingNames[i])));
}

void
_PG_init(void)
{
	long		cores = sysconf(_SC_NPROCESSORS_ONLN);
	char	   *pending[lengthof(CrSettingNames)];

	for (int i = 0; i < lengthof(CrSettingNames); i++)
	{
		const char *v = GetConfigOption(CrSettingNames[i], true, false);

		pending[i] = v ? MemoryContextStrdup(TopMemoryContext, v) : NULL;
	}

	cr_threads = (int) Min(Max(cores, 1), CR_MAX_THREADS);
	DefineCustomIntVariable("credit_risk.threads",
							"Worker threads for training gradient-boosted trees.",
							"Defaults to the number of cores available. Worker threads touch only plain memory; the backend owns all errors.",
							&cr_threads,
							cr_threads,
							1, CR_MAX_THREADS,
							PGC_SUSET,
							0,
							NULL, ThreadsAssign, NULL);

	DefineCustomIntVariable("credit_risk.train_memory",
							"Memory one training run may use.",
							"Training estimates its peak memory from the source's size and refuses to start, or stops loading, when it would need more.",
							&cr_train_memory_kb,
							cr_train_memory_kb,
							1024, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, TrainMemoryAssign, NULL);

	DefineCustomIntVariable("credit_risk.histogram_message",
							"Most histogram bytes a distributed tree fit asks a part for in one message.",
							"cr_train with params.distributed splits a tree level's nodes over messages of at most this much; a part builds its histograms in batches of this size. The trees are the same either way.",
							&cr_histogram_message_kb,
							cr_histogram_message_kb,
							1, 512 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomEnumVariable("credit_risk.simd",
							 "Instructions that batch scoring walks tree models with: off, avx2, avx512 or auto.",
							 "auto takes AVX-512 where the CPU has it, then AVX2, then scalar code (off); a value the CPU lacks is refused. Every path gives the same results to the last bit.",
							 &cr_simd,
							 CR_SIMD_AUTO,
							 CrSimdOptions,
							 PGC_USERSET,
							 0,
							 SimdCheck, NULL, NULL);

	DefineCustomIntVariable("credit_risk.explain_memory",
							"Memory for the explanation tables of one tree model in a session.",
							"A tree model's first explanation in a session builds tables that make later ones fast, for as many trees as fit; 0 builds none. Explanations are the same either way.",
							&cr_explain_memory_kb,
							cr_explain_memory_kb,
							0, 512 * 1024,
							PGC_SUSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("credit_risk.allow_drop",
							 "Allow DROP EXTENSION credit_risk while the registry holds models.",
							 "Dropping the extension drops every model version with it; off, the drop is refused while any exists.",
							 &cr_allow_drop,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("credit_risk.metrics",
							 "Count scoring calls in credit_risk.serving_stats.",
							 "Needs credit_risk in shared_preload_libraries; off, scoring counts nothing.",
							 &cr_metrics,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	/* set once, at server start, and only where the module is preloaded */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("credit_risk.metrics_max_models",
								"Model versions that credit_risk.serving_stats can count (all databases).",
								"Each takes about 6.5 kB of shared memory; versions beyond it are not counted until cr_reset_serving_stats().",
								&cr_metrics_max_models,
								cr_metrics_max_models,
								16, 100000,
								PGC_POSTMASTER,
								0,
								NULL, NULL, NULL);
	}

	MarkGUCPrefixReserved("credit_risk");

	if (process_shared_preload_libraries_in_progress)
	{
		prev_shmem_request_hook = shmem_request_hook;
		shmem_request_hook = CrShmemRequest;
		prev_shmem_startup_hook = shmem_startup_hook;
		shmem_startup_hook = CrShmemStartup;
	}
	RegisterXactCallback(CrXactCallback, NULL);
	RegisterSubXactCallback(CrSubXactCallback, NULL);

	/* a pending value that left the setting at its default was rejected */
	for (int i = 0; i < lengthof(CrSettingNames); i++)
	{
		struct config_generic *gen = CrFindSetting(CrSettingNames[i]);

		if (pending[i] != NULL && gen != NULL && gen->source == PGC_S_DEFAULT)
			CrRejected[i] = pending[i];
	}
}
