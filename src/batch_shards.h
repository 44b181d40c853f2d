/*
 * batch_shards.h
 *	  cr_predict_batch and cr_explain_batch run on each shard (batch_shards.c).
 */
#ifndef CR_BATCH_SHARDS_H
#define CR_BATCH_SHARDS_H

#include "fmgr.h"

extern bool BatchOnShards(FunctionCallInfo fcinfo, const char *func, const char *name,
						  const char *source, const char *key, bool explain, const char *top,
						  const char *challenger, int64 *rows);

#endif							/* CR_BATCH_SHARDS_H */
