/*
 * canary.c
 *	  Deliberate bugs, built with the same sanitizer flags as credit_risk, so
 *	  that a run first proves its server reports what it is meant to find.
 *
 *	  SELECT cr_sanitize_canary('heap-overflow');   -- and the other kinds
 *
 * The buffers are larger than an allocation set's chunk limit (8 kB), so
 * each has a malloc block of its own, as most training arrays do: ASan sees
 * past its end and sees it freed.  A small palloc chunk shares a block with
 * its neighbours, and an overrun into them goes unseen (see README.md).
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(cr_sanitize_canary);

#define CANARY_BYTES	(64 * 1024)

Datum
cr_sanitize_canary(PG_FUNCTION_ARGS)
{
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	volatile int n = 40;
	volatile double big = 1e300;
	int			result = 0;

	if (strcmp(kind, "heap-overflow") == 0)
	{
		volatile char *p = palloc(CANARY_BYTES);

		p[CANARY_BYTES + 32] = 1;
		result = p[0];
	}
	else if (strcmp(kind, "use-after-free") == 0)
	{
		volatile char *p = palloc0(CANARY_BYTES);

		pfree((char *) p);
		result = p[100];
	}
	else if (strcmp(kind, "shift") == 0)
		result = 1 << n;
	else if (strcmp(kind, "float-cast") == 0)
		result = (int) big;
	else if (strcmp(kind, "segv") == 0)
		result = *(volatile int *) (uintptr_t) n;
	else if (strcmp(kind, "error") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown canary \"%s\"", kind)));
	else
	{
		/* an ERROR raised from instrumented code must leave no report */
		char		buf[256];

		memset(buf, 'x', sizeof(buf));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("canary error %c", buf[n])));
	}
	PG_RETURN_INT32(result);
}
