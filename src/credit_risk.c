/*
 * credit_risk.c
 *	  Module entry point and settings.
 */
#include "postgres.h"

#include <limits.h>
#include <unistd.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "credit_risk.h"

PG_MODULE_MAGIC;

int			cr_threads = 1;
int			cr_train_memory_kb = 4 * 1024 * 1024;	/* 4 GB */
bool		cr_simd = true;

void		_PG_init(void);

void
_PG_init(void)
{
	long		cores = sysconf(_SC_NPROCESSORS_ONLN);

	cr_threads = (int) Min(Max(cores, 1), CR_MAX_THREADS);
	DefineCustomIntVariable("credit_risk.threads",
							"Worker threads for training gradient-boosted trees.",
							"Defaults to the number of cores available. Worker threads touch only plain memory; the backend owns all errors.",
							&cr_threads,
							cr_threads,
							1, CR_MAX_THREADS,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("credit_risk.train_memory",
							"Memory one training run may use.",
							"Training estimates its peak memory from the source's size and refuses to start, or stops loading, when it would need more.",
							&cr_train_memory_kb,
							cr_train_memory_kb,
							1024, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("credit_risk.simd",
							 "Score tree models in batch with AVX-512 when the CPU has it.",
							 "Off, or on a CPU without AVX-512, batch scoring walks the trees with scalar code. Both give the same results to the last bit.",
							 &cr_simd,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("credit_risk");
}
