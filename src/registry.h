/*
 * registry.h
 *	  Access to credit_risk.models and the per-backend cache of decoded
 *	  models.
 */
#ifndef CR_REGISTRY_H
#define CR_REGISTRY_H

#include "postgres.h"

#include "model.h"

/*
 * A decoded model held by the backend cache.  Entries stay valid for at
 * least the statement that looked them up (see RegistryStamp).
 */
typedef struct CrCachedModel
{
	int64		id;				/* registry id, or 0 for a model passed as bytes */
	int32		version;
	TransactionId xmin;			/* registry row version the bytes came from */
	char	   *name;			/* model name, or NULL */
	char	   *version_label;	/* "name@N" */
	CrModel    *model;
	char	   *bytes;			/* copy of the bytes, for models passed as values */
	uint64		last_used;		/* statement stamp of the last lookup */
	MemoryContext cxt;
} CrCachedModel;

/* Identifies the current statement: changes when a new one starts. */
typedef struct CrStamp
{
	LocalTransactionId lxid;
	TimestampTz stmt_start;
	CommandId	cid;
} CrStamp;

extern void RegistryStamp(CrStamp *stamp);
extern bool RegistryStampEqual(const CrStamp *a, const CrStamp *b);

/* version 0 means the serving version */
extern CrCachedModel *RegistryLookup(const char *name, int32 version);
extern CrCachedModel *RegistryFromBytes(const char *data, Size len);
extern void RegistryCheckName(const char *name);
extern CrCachedModel *RegistryRoute(const char *name, double *share);
extern bool RegistryRouteToChallenger(const char *key, Size len, double share);

#endif							/* CR_REGISTRY_H */
