/*
 * progress.h
 *	  Progress of long commands (training, tuning, batch scoring,
 *	  mirroring, monitoring) for credit_risk.progress, and as NOTICE lines
 *	  when params.verbose asks for them.
 */
#ifndef CR_PROGRESS_H
#define CR_PROGRESS_H

#include "postgres.h"

#include "portability/instr_time.h"

/*
 * Begin and End pair up; a command begun inside another (cr_monitor's
 * batch scoring, cr_tune's trials) reports its phases under the outer
 * command.  An ERROR ends every command begun in the (sub)transaction.
 */
extern void ProgressBegin(const char *command, const char *model, bool verbose);
extern void ProgressEnd(void);
/* a new phase, with rows expected (-1: unknown) */
extern void ProgressPhase(const char *phase, int64 rows_total);
extern void ProgressContext(const char *what);
/* step k of n within the phase (a tree, a Newton step, a trial) */
extern void ProgressStep(int step, int steps);
extern void ProgressRows(int64 rows_done);

/* seconds since start, for a command's timings */
static inline double
ProgressSecondsSince(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

extern Size ProgressShmemSize(void);
extern void ProgressShmemInit(void);
extern void ProgressUnwind(int nest_level);

#endif							/* CR_PROGRESS_H */
