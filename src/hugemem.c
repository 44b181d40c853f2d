/*
 * hugemem.c
 *	  See hugemem.h.
 */
#include "postgres.h"

#include <sys/mman.h>

#include "utils/memutils.h"

#include "hugemem.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14 */
#endif

#define HUGE_HEADER		64		/* keeps the user pointer cache-line aligned */
#define HUGE_MIN_MAP	(1024 * 1024)	/* smaller arrays come from palloc */

typedef struct HugeMapping
{
	MemoryContextCallback callback;
	char	   *base;			/* NULL once unmapped */
	Size		size;
} HugeMapping;

typedef struct HugeHeader
{
	HugeMapping *mapping;
	Size		usable;
} HugeHeader;

static void
HugeUnmap(void *arg)
{
	HugeMapping *m = (HugeMapping *) arg;

	if (m->base != NULL)
		munmap(m->base, m->size);
	m->base = NULL;
}

void *
HugeAlloc(Size size)
{
	HugeMapping *m;
	HugeHeader *h;
	Size		total = size + HUGE_HEADER;
	char	   *base;

	if (total < HUGE_MIN_MAP)
	{
		base = MemoryContextAllocZero(CurrentMemoryContext, total);
		h = (HugeHeader *) base;
		h->mapping = NULL;
		h->usable = size;
		return base + HUGE_HEADER;
	}

	base = mmap(NULL, total, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on a request of size %zu for training data.", size)));
#ifdef MADV_HUGEPAGE
	(void) madvise(base, total, MADV_HUGEPAGE);
#endif
	/* best effort: an older kernel just faults the pages in as they come */
	(void) madvise(base, total, MADV_POPULATE_WRITE);

	m = palloc(sizeof(HugeMapping));
	m->base = base;
	m->size = total;
	m->callback.func = HugeUnmap;
	m->callback.arg = m;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &m->callback);

	h = (HugeHeader *) base;
	h->mapping = m;
	h->usable = size;
	return base + HUGE_HEADER;
}

void
HugeFree(void *ptr)
{
	HugeHeader *h = (HugeHeader *) ((char *) ptr - HUGE_HEADER);

	if (h->mapping == NULL)
		pfree(h);
	else
		HugeUnmap(h->mapping);
}

/*
 * Grow or shrink an array.  A mapped array that stays mapped is moved with
 * mremap: its pages keep their contents without a copy and only the new
 * tail is populated, so growing by doubling neither copies nor faults in
 * the old rows again, and the old and new arrays never coexist.  Anything
 * else is a new allocation in the current context and a copy.
 */
void *
HugeRealloc(void *ptr, Size size)
{
	HugeHeader *h = (HugeHeader *) ((char *) ptr - HUGE_HEADER);
	Size		total = size + HUGE_HEADER;
	void	   *p;

#ifdef MREMAP_MAYMOVE
	if (h->mapping != NULL && total >= HUGE_MIN_MAP)
	{
		HugeMapping *m = h->mapping;
		char	   *base = mremap(m->base, m->size, total, MREMAP_MAYMOVE);

		if (base == MAP_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Failed on a request of size %zu for training data.", size)));
		if (total > m->size)
		{
#ifdef MADV_HUGEPAGE
			(void) madvise(base, total, MADV_HUGEPAGE);
#endif
			/* the old size need not end on a page: populate from its page on */
			{
				Size		from = m->size & ~((Size) 4095);

				(void) madvise(base + from, total - from, MADV_POPULATE_WRITE);
			}
		}
		m->base = base;
		m->size = total;
		h = (HugeHeader *) base;
		h->usable = size;
		return base + HUGE_HEADER;
	}
#endif
	p = HugeAlloc(size);
	memcpy(p, ptr, Min(size, h->usable));
	HugeFree(ptr);
	return p;
}
