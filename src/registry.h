/*
 * registry.h
 *	  Access to credit_risk.models and the per-backend cache of decoded
 *	  models.
 */
#ifndef CR_REGISTRY_H
#define CR_REGISTRY_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "fmgr.h"

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
	bool		reasons;		/* params.reasons: the jsonb form adds reasons */
	CrModel    *model;
	char	   *bytes;			/* copy of the bytes, for models passed as values */
	uint64		last_used;		/* statement stamp of the last lookup */
	int			serving_slot;	/* its serving statistics (serving.c), when */
	uint32		serving_gen;	/* ... this is the statistics' generation */
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

extern char *RegistryNameArg(FunctionCallInfo fcinfo, int argno);
/* version 0 means the serving version */
extern int32 RegistryVersionArg(FunctionCallInfo fcinfo, int argno);
extern CrCachedModel *RegistryLookup(const char *name, int32 version);
extern CrCachedModel *RegistryFromBytes(const char *data, Size len);
extern void RegistryCheckName(const char *name);
extern CrCachedModel *RegistryRoute(const char *name, double *share);
extern bool RegistryRouteToChallenger(const char *key, Size len, double share);

/*
 * Writing the registry as its owner (registry_write.c): between Begin and
 * End the user id is the owner of credit_risk.models and search_path is
 * pg_catalog; run only the extension's own statements in between.
 */
typedef struct CrAsOwner
{
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	int			save_nest;
	char	   *caller;			/* the calling role's name */
} CrAsOwner;

/* a trained version to register */
typedef struct CrNewVersion
{
	const char *name;
	const char *algorithm;
	const char *source;
	const char *label;
	char	  **features;
	int			nfeatures;
	Datum		params;			/* jsonb */
	Datum		metrics;		/* jsonb */
	Datum		importance;		/* jsonb */
	int64		train_rows;
	int64		holdout_rows;
	double		train_seconds;
	bytea	   *model;
} CrNewVersion;

extern void RegistryLockName(const char *name);
extern HeapTuple RegistryInsertVersion(const CrNewVersion *v, TupleDesc want,
									   MemoryContext resultcxt);
extern void RegistryBeginAsOwner(CrAsOwner *state);
extern void RegistryEndAsOwner(CrAsOwner *state);
extern HeapTuple RegistryResultTuple(TupleDesc want, HeapTuple spitup, TupleDesc spidesc);

#endif							/* CR_REGISTRY_H */
