/*
 * random.h
 *	  Seeded, reproducible pseudo-random numbers from hashing: the same
 *	  seed and index give the same number on every run and in every thread.
 *	  Plain C, safe in worker threads.
 */
#ifndef CR_RANDOM_H
#define CR_RANDOM_H

#include "postgres.h"

/* The splitmix64 finalizer: a well-mixed 64-bit hash of x. */
static inline uint64
CrMix64(uint64 x)
{
	x += UINT64CONST(0x9E3779B97F4A7C15);
	x = (x ^ (x >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	x = (x ^ (x >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return x ^ (x >> 31);
}

/* A uniform double in [0, 1) from the top 53 bits of a hash. */
static inline double
CrUnit(uint64 h)
{
	return (double) (h >> 11) * (1.0 / 9007199254740992.0);
}

#endif							/* CR_RANDOM_H */
