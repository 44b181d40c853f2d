/*
 * credit_risk.c
 *	  Module entry point.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

/* from OpenBLAS */
extern void openblas_set_num_threads(int num_threads);

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * BLAS work here is small next to the data load; one thread keeps
	 * results reproducible and keeps OpenBLAS threads out of the backend.
	 */
	openblas_set_num_threads(1);

	MarkGUCPrefixReserved("credit_risk");
}
