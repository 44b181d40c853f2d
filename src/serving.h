/*
 * serving.h
 *	  Serving statistics: every scoring call counted per model version in
 *	  shared memory (calls, rows, errors, a latency histogram).
 */
#ifndef CR_SERVING_H
#define CR_SERVING_H

#include "portability/instr_time.h"

#include "registry.h"

extern bool cr_metrics;
extern int	cr_metrics_max_models;

/* one scoring call: ServingStart, ServingAttach per model used, ServingFinish */
typedef struct CrServingCall
{
	bool		on;				/* shared memory is there and metrics are on */
	bool		batch;			/* a batch call: not in the latency percentiles */
	bool		timed;			/* its latency is measured */
	int			attached;		/* entries pushed by this call */
	instr_time	start;
} CrServingCall;

/* site_calls: the call site's count of calls (NULL: every call is timed) */
extern void ServingStart(CrServingCall *call, bool batch, uint32 *site_calls);
extern void ServingAttach(CrServingCall *call, CrCachedModel *entry);
/* rows per attached entry, in attach order */
extern void ServingFinish(CrServingCall *call, const int64 *rows);
extern void ServingFinishOne(CrServingCall *call, int64 rows);

extern Size ServingShmemSize(void);
extern void ServingShmemInit(void);
extern void ServingAtAbort(int nest_level);
extern void ServingAtCommit(void);
extern void ServingFlush(void);

#endif							/* CR_SERVING_H */
