/*
 * pgstub.h
 *	  What the fuzz harnesses need from their stand-in for the PostgreSQL
 *	  backend (pgstub.c): catching ERRORs and freeing an iteration's memory.
 *
 * The harnesses link the project's own sources with pgstub.c instead of a
 * server.  palloc is plain malloc, tracked by memory context so that one
 * call frees everything an input allocated; ereport(ERROR) jumps back to the
 * harness, which treats it as the expected answer to bad input.  The
 * harnesses work with CurrentMemoryContext NULL (the stand-in's top
 * context), and set it back after an ERROR, which may leave it anywhere.
 */
#ifndef CR_FUZZ_PGSTUB_H
#define CR_FUZZ_PGSTUB_H

#include "postgres.h"

#include <setjmp.h>

#include "access/tupdesc.h"

/* The last ERROR raised, for the harness to look at after the jump. */
typedef struct FuzzError
{
	int			elevel;
	int			sqlerrcode;
	const char *filename;
	int			lineno;
	const char *funcname;
	char		message[256];
	char		detail[256];
} FuzzError;

extern FuzzError fuzz_error;

/*
 * Where errfinish() jumps on ERROR; an ERROR with no catcher set aborts.
 * The jump target must be a frame that is still live, so a harness writes:
 *
 *	sigjmp_buf jb;
 *	fuzz_catch = &jb;
 *	if (sigsetjmp(jb, 0) == 0)
 *		... code that may raise an ERROR ...
 *	else
 *		... the ERROR, described in fuzz_error ...
 *	fuzz_catch = NULL;
 */
extern sigjmp_buf *fuzz_catch;

/*
 * Free everything palloc'd since the last reset, delete every memory
 * context made since, and set CurrentMemoryContext back to NULL.
 */
extern void FuzzMemReset(void);

/* Report a broken invariant as a crash (abort), with a message. */
extern void FuzzFail(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/*
 * Called by the stand-in for tuplestore_putvalues(), so a harness can look
 * at each row a set-returning function emits.
 */
typedef void (*FuzzRowHook) (TupleDesc desc, Datum *values, bool *isnull);
extern FuzzRowHook fuzz_row_hook;

/* Print every ERROR (CR_FUZZ_VERBOSE=1 in the environment). */
extern bool fuzz_verbose;
extern void FuzzInit(void);

#endif							/* CR_FUZZ_PGSTUB_H */
