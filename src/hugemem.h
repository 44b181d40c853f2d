/*
 * hugemem.h
 *	  Large training arrays in their own mappings.
 *
 * Training arrays of hundreds of megabytes are mapped directly, asked for
 * transparent huge pages and populated up front: touching fresh memory one
 * 4 kB page at a time can cost more than the training itself.  Each mapping
 * is tied to the memory context that was current when it was made, and is
 * unmapped when that context is reset or deleted (also on ERROR), or
 * earlier by HugeFree.
 */
#ifndef CR_HUGEMEM_H
#define CR_HUGEMEM_H

#include "postgres.h"

extern void *HugeAlloc(Size size);
extern void *HugeRealloc(void *ptr, Size size);
extern void HugeFree(void *ptr);

#endif							/* CR_HUGEMEM_H */
