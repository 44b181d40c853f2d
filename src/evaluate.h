/*
 * evaluate.h
 *	  A model version's scores on any labelled rows (evaluate.c).
 */
#ifndef CR_EVALUATE_H
#define CR_EVALUATE_H

#include "postgres.h"

#include "registry.h"

/*
 * Score every row of source (a relation or query, run with the caller's
 * rights) with a version: *prob and *y get the PDs and labels (0 or 1) in
 * source order, palloc'd in the current context.  Returns the rows.
 */
extern int64 EvaluateScore(const CrCachedModel *entry, const char *source, const char *label,
						   double **prob, double **y);

#endif							/* CR_EVALUATE_H */
