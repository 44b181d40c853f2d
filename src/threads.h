/*
 * threads.h
 *	  A small pool of worker threads for training.
 *
 * Workers run plain C over plain memory: they never call palloc, elog or
 * any other PostgreSQL function.  The backend thread dispatches a job
 * (a function called for task indices 0..ntasks-1), takes part in it, and
 * returns when every task is done; so an ERROR can only be raised while
 * the workers are idle.  The pool is shut down by a reset callback on the
 * memory context it was created in, so an aborted training run joins its
 * threads too.
 */
#ifndef CR_THREADS_H
#define CR_THREADS_H

#include "postgres.h"

typedef void (*CrTaskFn) (void *arg, int task, int worker);

typedef struct CrPool CrPool;

extern CrPool *PoolCreate(int nthreads);
extern int	PoolSize(const CrPool *pool);
extern void PoolRun(CrPool *pool, int ntasks, CrTaskFn fn, void *arg);

#endif							/* CR_THREADS_H */
