/*
 * threads.c
 *	  The training thread pool.  See threads.h for the rules.
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include "utils/memutils.h"

#include "threads.h"

struct CrPool
{
	int			nthreads;		/* including the backend thread */
	int			nworkers;		/* started worker threads */
	pthread_t  *threads;
	pthread_mutex_t mutex;
	pthread_cond_t work_cv;		/* a new job, or shutdown */
	pthread_cond_t done_cv;		/* a worker finished its part */
	uint64		generation;		/* bumped for each job (atomic) */
	bool		shutdown;
	/* the current job */
	CrTaskFn	fn;
	void	   *arg;
	int			ntasks;
	int			next_task;		/* the next task to take (atomic) */
	int			busy;			/* workers still in the current job (atomic) */
	MemoryContextCallback callback;
};

/*
 * Waits spin briefly before sleeping: jobs come in quick succession (a few
 * per tree level), and waking a sleeping thread costs more than a short spin.
 */
#define POOL_SPIN		4000

static inline void
CpuRelax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

typedef struct WorkerStart
{
	CrPool	   *pool;
	int			index;
} WorkerStart;

/* Take tasks until none is left. */
static void
RunTasks(CrPool *pool, int worker)
{
	for (;;)
	{
		int			task = __atomic_fetch_add(&pool->next_task, 1, __ATOMIC_ACQ_REL);

		if (task >= pool->ntasks)
			return;
		pool->fn(pool->arg, task, worker);
	}
}

static void *
WorkerMain(void *p)
{
	CrPool	   *pool = ((WorkerStart *) p)->pool;
	int			index = ((WorkerStart *) p)->index;
	uint64		seen = 0;

	for (;;)
	{
		for (int spin = 0; spin < POOL_SPIN &&
			 __atomic_load_n(&pool->generation, __ATOMIC_ACQUIRE) == seen; spin++)
			CpuRelax();

		pthread_mutex_lock(&pool->mutex);
		while (!pool->shutdown && pool->generation == seen)
			pthread_cond_wait(&pool->work_cv, &pool->mutex);
		if (pool->shutdown)
		{
			pthread_mutex_unlock(&pool->mutex);
			return NULL;
		}
		seen = pool->generation;
		pthread_mutex_unlock(&pool->mutex);

		RunTasks(pool, index);

		pthread_mutex_lock(&pool->mutex);
		if (__atomic_sub_fetch(&pool->busy, 1, __ATOMIC_ACQ_REL) == 0)
			pthread_cond_signal(&pool->done_cv);
		pthread_mutex_unlock(&pool->mutex);
	}
}

static void
PoolShutdown(void *arg)
{
	CrPool	   *pool = (CrPool *) arg;

	pthread_mutex_lock(&pool->mutex);
	pool->shutdown = true;
	pthread_cond_broadcast(&pool->work_cv);
	pthread_mutex_unlock(&pool->mutex);
	for (int i = 0; i < pool->nworkers; i++)
		pthread_join(pool->threads[i], NULL);
	pool->nworkers = 0;
	pthread_mutex_destroy(&pool->mutex);
	pthread_cond_destroy(&pool->work_cv);
	pthread_cond_destroy(&pool->done_cv);
}

/*
 * Start nthreads - 1 workers (the backend is the last thread).  Workers
 * block every signal, so signals keep going to the backend thread.
 */
CrPool *
PoolCreate(int nthreads)
{
	CrPool	   *pool = palloc0(sizeof(CrPool));
	WorkerStart *starts;
	sigset_t	all;
	sigset_t	old;

	pool->nthreads = Max(nthreads, 1);
	pool->threads = palloc(sizeof(pthread_t) * pool->nthreads);
	starts = palloc(sizeof(WorkerStart) * pool->nthreads);
	pthread_mutex_init(&pool->mutex, NULL);
	pthread_cond_init(&pool->work_cv, NULL);
	pthread_cond_init(&pool->done_cv, NULL);

	pool->callback.func = PoolShutdown;
	pool->callback.arg = pool;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &pool->callback);

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (int i = 0; i < pool->nthreads - 1; i++)
	{
		starts[i].pool = pool;
		starts[i].index = i + 1;
		if (pthread_create(&pool->threads[i], NULL, WorkerMain, &starts[i]) != 0)
			break;
		pool->nworkers++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	/* fewer threads than asked for is slower, not wrong */
	pool->nthreads = pool->nworkers + 1;
	return pool;
}

int
PoolSize(const CrPool *pool)
{
	return pool->nthreads;
}

/* Run fn(arg, task, worker) for every task; worker 0 is the backend. */
void
PoolRun(CrPool *pool, int ntasks, CrTaskFn fn, void *arg)
{
	if (ntasks <= 0)
		return;
	if (pool->nworkers == 0 || ntasks == 1)
	{
		for (int t = 0; t < ntasks; t++)
			fn(arg, t, 0);
		return;
	}

	pthread_mutex_lock(&pool->mutex);
	pool->fn = fn;
	pool->arg = arg;
	pool->ntasks = ntasks;
	__atomic_store_n(&pool->next_task, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&pool->busy, pool->nworkers, __ATOMIC_RELEASE);
	__atomic_add_fetch(&pool->generation, 1, __ATOMIC_ACQ_REL);
	pthread_cond_broadcast(&pool->work_cv);
	pthread_mutex_unlock(&pool->mutex);

	RunTasks(pool, 0);

	for (int spin = 0; spin < POOL_SPIN &&
		 __atomic_load_n(&pool->busy, __ATOMIC_ACQUIRE) > 0; spin++)
		CpuRelax();

	pthread_mutex_lock(&pool->mutex);
	while (pool->busy > 0)
		pthread_cond_wait(&pool->done_cv, &pool->mutex);
	pthread_mutex_unlock(&pool->mutex);
}
