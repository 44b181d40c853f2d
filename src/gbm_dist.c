/*
 * gbm_dist.c
 *	  The coordinator's side of a distributed tree fit (gbm_dist.h).
 *
 * The parts bin their rows once (credit_risk.cr_gbm_shard_load over each
 * shard's table through a connection of our own, or over the source in
 * this backend), then every tree grows as gbm.c grows one over loaded
 * rows, with two differences: a node's histogram is the sum of the parts'
 * (GbmDistBuild, one round trip to all parts at once), and the rows are
 * partitioned by the parts, with the decisions of each level sent along
 * with the next request for histograms (GbmDistLevel).  The decisions of a
 * tree's last level travel with the next tree's root, and bring back the
 * holdout's log loss after the tree, for early stopping.
 *
 * A part's histograms are those of its rows in its order, and the parts'
 * are added in part order, so the sums are one node's up to the order of
 * the additions: given the same cut points, the trees are one node's to
 * rounding.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "gbm_dist.h"
#include "gbm_int.h"
#include "progress.h"
#include "random.h"
#include "remote.h"
#include "threads.h"

#define SHARD_SQL	"SELECT credit_risk.cr_gbm_shard($1)"

typedef struct GbmDist
{
	const GbmDistPart *parts;
	int			nparts;
	CrRemote   *remote;			/* per part; conn NULL for this backend's */
	bool	   *active;			/* the part holds rows */
	uint64		run;
	StringInfoData pending;		/* levels decided, not yet sent */
	int			npending;
	bool		new_tree;		/* the next build is a tree's root */
	bool		want_loss;		/* early stopping on a holdout */
	double		loss;			/* the last reply's, added over the parts */
	int64		nloss;
	GbmDistStats *stats;
} GbmDist;

/* a part's name in messages */
static const char *
PartName(const GbmDist *d, int part)
{
	return d->parts[part].server ? d->parts[part].server : "(this server)";
}

/*
 * The bytea a server replied with to sql (binary), copied, or NULL; res is
 * cleared either way.
 */
static bytea *
RemoteBytea(CrRemote *r, PGresult *res, const char *sql)
{
	bytea	   *out;
	int			len;

	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQftype(res, 0) != BYTEAOID ||
		PQfformat(res, 0) != 1)
	{
		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("server \"%s\" did not reply with one bytea value", r->server),
				 errcontext("remote SQL: %s", sql)));
	}
	if (PQgetisnull(res, 0, 0))
	{
		PQclear(res);
		return NULL;
	}
	len = PQgetlength(res, 0, 0);
	out = palloc(VARHDRSZ + len);
	SET_VARSIZE(out, VARHDRSZ + len);
	memcpy(VARDATA(out), PQgetvalue(res, 0, 0), len);
	PQclear(res);
	return out;
}

/* what to do with a part's reply (NULL for none): its bytes are the caller's */
typedef void (*ReplyFn) (GbmDist *d, int part, const char *reply, Size len, void *arg);

/*
 * Send msg to every part holding rows, all at once, and hand each part's
 * reply to fn in part order, as it is read (one reply held at a time).
 */
static void
DistExchange(GbmDist *d, const bytea *msg, ReplyFn fn, void *arg)
{
	for (int i = 0; i < d->nparts; i++)
		if (d->active[i] && d->remote[i].conn != NULL)
			RemoteSendBytea(&d->remote[i], SHARD_SQL, msg);
	for (int i = 0; i < d->nparts; i++)
	{
		bytea	   *reply;

		if (!d->active[i])
			continue;
		d->stats->bytes_sent += VARSIZE_ANY_EXHDR(msg);
		reply = d->remote[i].conn != NULL
			? RemoteBytea(&d->remote[i], RemoteReceive(&d->remote[i], SHARD_SQL), SHARD_SQL)
			: GbmShardMessage(VARDATA_ANY(msg), VARSIZE_ANY_EXHDR(msg));
		if (reply != NULL)
			d->stats->bytes_received += VARSIZE(reply) - VARHDRSZ;
		fn(d, i, reply ? VARDATA(reply) : NULL, reply ? VARSIZE(reply) - VARHDRSZ : 0, arg);
		if (reply != NULL)
			pfree(reply);
	}
	d->stats->round_trips++;
}

static void
MessageStart(StringInfo buf, const GbmDist *d, int32 flags)
{
	uint32		head[2] = {GBM_WIRE_MSG, GBM_WIRE_VERSION};

	initStringInfo(buf);
	appendStringInfoSpaces(buf, VARHDRSZ);
	appendBinaryStringInfo(buf, (char *) head, sizeof(head));
	appendBinaryStringInfo(buf, (char *) &d->run, sizeof(d->run));
	appendBinaryStringInfo(buf, (char *) &flags, sizeof(flags));
}

/* The levels decided since the last message, which the parts apply first. */
static void
MessagePending(StringInfo buf, GbmDist *d)
{
	int32		n = d->npending;

	appendBinaryStringInfo(buf, (char *) &n, sizeof(n));
	appendBinaryStringInfo(buf, d->pending.data, d->pending.len);
	resetStringInfo(&d->pending);
	d->npending = 0;
}

static bytea *
MessageEnd(StringInfo buf)
{
	SET_VARSIZE(buf->data, buf->len);
	return (bytea *) buf->data;
}

/*
 * Start reading a part's reply: its loss is added to d's when the message
 * asked for it (flags); the rest of the reply is left in r.
 */
static void
ReplyStart(GbmDist *d, int32 flags, GbmReader *r, const char *reply, Size len, const char *server)
{
	uint32		head[2];
	double		loss;
	int64		nloss;

	r->at = reply;
	r->left = len;
	r->what = "cr_gbm_shard reply";
	GbmRead(r, head, sizeof(head));
	if (head[0] != GBM_WIRE_REPLY || head[1] != GBM_WIRE_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("server \"%s\" replied to a tree level with something else", server),
				 errhint("Every server needs the same version of credit_risk.")));
	GbmRead(r, &loss, sizeof(loss));
	GbmRead(r, &nloss, sizeof(nloss));
	if (!isfinite(loss) || nloss < 0)
		GbmWireBad(r->what, "its loss is out of range");
	if (flags & GBM_MSG_LOSS)
	{
		d->loss += loss;
		d->nloss += nloss;
	}
}

/*
 * Record the decisions of a level (gbm.c decided them): each node's split,
 * or its leaf value.  The parts apply them with the next message.
 */
void
GbmDistLevel(Gbm *gbm, GrowNode **level, int nlevel)
{
	GbmDist    *d = gbm->dist;
	int32		n = nlevel;

	appendBinaryStringInfo(&d->pending, (char *) &n, sizeof(n));
	for (int i = 0; i < nlevel; i++)
	{
		GrowNode   *node = level[i];
		uint8		kind = !node->split ? GBM_NODE_LEAF : node->is_cat ? GBM_NODE_CAT : GBM_NODE_SPLIT;

		appendBinaryStringInfo(&d->pending, (char *) &kind, 1);
		if (kind == GBM_NODE_LEAF)
		{
			double		v = gbm->forest->value[gbm->tree_base + node->out];

			appendBinaryStringInfo(&d->pending, (char *) &v, sizeof(v));
		}
		else
		{
			int32		f = node->feature;
			uint8		dl = node->default_left;

			appendBinaryStringInfo(&d->pending, (char *) &f, sizeof(f));
			appendBinaryStringInfo(&d->pending, (char *) &dl, 1);
			if (kind == GBM_NODE_SPLIT)
			{
				int32		b = node->bin;

				appendBinaryStringInfo(&d->pending, (char *) &b, sizeof(b));
			}
			else
				appendBinaryStringInfo(&d->pending, (char *) node->cat, sizeof(node->cat));
		}
	}
	d->npending++;
	d->stats->levels++;
}

/* the nodes a message asked for, nodes[n0 .. n1) */
typedef struct BuildReply
{
	Gbm		   *gbm;
	GrowNode  **nodes;
	int			n0;
	int			n1;
	int32		flags;
} BuildReply;

/* Add a part's histograms to the nodes' (ReplyFn). */
static void
AddHistograms(GbmDist *d, int part, const char *reply, Size len, void *arg)
{
	BuildReply *b = (BuildReply *) arg;
	Gbm		   *gbm = b->gbm;
	GbmReader	r;
	HistBin		in[GBM_NBINS] pg_attribute_aligned(16);	/* for HistMerge */

	if (reply == NULL)
		GbmWireBad("cr_gbm_shard reply", "it is NULL");
	ReplyStart(d, b->flags, &r, reply, len, PartName(d, part));
	for (int i = b->n0; i < b->n1; i++)
		for (int k = 0; k < gbm->nfeats; k++)
		{
			int			f = gbm->feats[k];

			/* the part's sums, added in part order */
			HistBin    *hist = b->nodes[i]->hist + (Size) f * GBM_NBINS;
			int			nc = gbm->edges[f].ncuts;

			memset(in, 0, sizeof(in));
			GbmHistRead(&r, nc, in);
			HistMerge(hist, in, nc + 1, false);
			HistMerge(&hist[CR_MISSING_BIN], &in[CR_MISSING_BIN], 1, false);
		}
	if (r.left != 0)
		GbmWireBad(r.what, "it has bytes past its end");
}

/*
 * The histograms of nodes[0 .. n) (each with its buffer), summed over the
 * parts: one round trip, which also carries the pending decisions and, at
 * a tree's root, its features.
 */
void
GbmDistBuild(Gbm *gbm, GrowNode **nodes, int n)
{
	GbmDist    *d = gbm->dist;
	Size		node_bytes = 0;
	int			per;

	/* as many nodes a message as keep its replies within GBM_REPLY_BYTES */
	for (int k = 0; k < gbm->nfeats; k++)
		node_bytes += sizeof(uint16) + sizeof(HistBin) * (gbm->edges[gbm->feats[k]].ncuts + 2);
	per = (int) Max(1, GBM_REPLY_BYTES / node_bytes);

	for (int i = 0; i < n; i++)
		for (int k = 0; k < gbm->nfeats; k++)
			memset(nodes[i]->hist + (Size) gbm->feats[k] * GBM_NBINS, 0,
				   sizeof(HistBin) * GBM_NBINS);
	for (int n0 = 0; n0 < n; n0 += per)
	{
		int			n1 = Min(n0 + per, n);
		int32		nb = n1 - n0;
		int32		flags = 0;
		StringInfoData buf;
		BuildReply	ctx;

		/* the first message of a level carries its decisions, and a tree's start */
		if (n0 == 0 && d->new_tree)
			flags |= GBM_MSG_NEW_TREE | (d->want_loss ? GBM_MSG_LOSS : 0);
		MessageStart(&buf, d, flags);
		MessagePending(&buf, d);
		if (n0 == 0 && d->new_tree)
		{
			int32		nf = gbm->nfeats;

			appendBinaryStringInfo(&buf, (char *) &nf, sizeof(nf));
			for (int k = 0; k < gbm->nfeats; k++)
			{
				int32		f = gbm->feats[k];

				appendBinaryStringInfo(&buf, (char *) &f, sizeof(f));
			}
			d->new_tree = false;
		}
		appendBinaryStringInfo(&buf, (char *) &nb, sizeof(nb));
		for (int i = n0; i < n1; i++)
		{
			int32		idx = nodes[i]->index;

			appendBinaryStringInfo(&buf, (char *) &idx, sizeof(idx));
		}

		if (flags & GBM_MSG_LOSS)
		{
			d->loss = 0.0;
			d->nloss = 0;
		}
		ctx.gbm = gbm;
		ctx.nodes = nodes;
		ctx.n0 = n0;
		ctx.n1 = n1;
		ctx.flags = flags;
		DistExchange(d, MessageEnd(&buf), AddHistograms, &ctx);
		pfree(buf.data);
	}
}

/* A reply without histograms: its loss (ReplyFn); a closed run's is NULL. */
static void
TakeLoss(GbmDist *d, int part, const char *reply, Size len, void *arg)
{
	int32		flags = *(int32 *) arg;
	GbmReader	r;

	if (reply == NULL)
	{
		if (!(flags & GBM_MSG_CLOSE))
			GbmWireBad("cr_gbm_shard reply", "it is NULL");
		return;
	}
	ReplyStart(d, flags, &r, reply, len, PartName(d, part));
	if (r.left != 0)
		GbmWireBad(r.what, "it has bytes past its end");
}

/* Send the pending decisions with flags (and no histograms asked for). */
static void
DistFlush(Gbm *gbm, int32 flags)
{
	GbmDist    *d = gbm->dist;
	StringInfoData buf;
	int32		zero = 0;

	MessageStart(&buf, d, flags);
	if (!(flags & GBM_MSG_CLOSE))
	{
		MessagePending(&buf, d);
		appendBinaryStringInfo(&buf, (char *) &zero, sizeof(zero));
	}
	if (flags & GBM_MSG_LOSS)
	{
		d->loss = 0.0;
		d->nloss = 0;
	}
	DistExchange(d, MessageEnd(&buf), TakeLoss, &flags);
	pfree(buf.data);
}

/*
 * Bin the rows of every part: select_list (with $1, the load spec) over
 * each part's table.  Returns the parts' counts added up.
 */
static void
DistLoad(GbmDist *d, const char *select_list, const bytea *spec, int64 *ntrain,
		 int64 *nhold, int64 *pos)
{
	char	  **sql = palloc0(sizeof(char *) * d->nparts);

	*ntrain = *nhold = *pos = 0;
	for (int i = 0; i < d->nparts; i++)
	{
		/*
		 * This backend's part is read through a subquery: over a foreign
		 * table (in a view, say), postgres_fdw would send the aggregate to
		 * the shard, and the rows would be binned in its session there.
		 */
		if (d->parts[i].server != NULL)
			sql[i] = psprintf("SELECT %s FROM %s", select_list, d->parts[i].table);
		else
			sql[i] = psprintf("SELECT %s FROM (SELECT * FROM %s OFFSET 0) cr_rows",
							  select_list, d->parts[i].table);
		if (d->parts[i].server != NULL)
		{
			d->remote[i].server = d->parts[i].server;
			RemoteConnect(&d->remote[i], "credit_risk cr_train");
			RemoteSendBytea(&d->remote[i], sql[i], spec);
		}
	}
	for (int i = 0; i < d->nparts; i++)
	{
		bytea	   *bytes;
		GbmLoaded	loaded;

		if (d->remote[i].conn != NULL)
			bytes = RemoteBytea(&d->remote[i], RemoteReceive(&d->remote[i], sql[i]), sql[i]);
		else
		{
			Datum		arg = PointerGetDatum(spec);
			Oid			argtype = BYTEAOID;
			bool		isnull;
			Datum		v;

			if (SPI_execute_with_args(sql[i], 1, &argtype, &arg, NULL, false, 0) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "could not bin the rows of the training source");
			v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			bytes = isnull ? NULL : DatumGetByteaPCopy(v);
			SPI_freetuptable(SPI_tuptable);
		}
		if (bytes == NULL)
			continue;			/* no rows there */
		GbmLoadedDecode(bytes, &loaded);
		if (loaded.run != d->run)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("server \"%s\" binned its rows for another run", PartName(d, i))));
		d->active[i] = true;
		d->stats->parts++;
		if (d->parts[i].server != NULL)
			d->stats->parts_on_shard++;
		d->stats->shard_bytes += loaded.bytes;
		*ntrain += loaded.ntrain;
		*nhold += loaded.nhold;
		*pos += loaded.pos;
	}
}

/* Note tree t's holdout loss; true when early stopping ends the fit there. */
static bool
TreeLoss(CrGbmResult *res, const CrGbmParams *params, int t, double ll, int *since_best)
{
	if (res->best_iteration < 0 || ll < res->best_score)
	{
		res->best_iteration = t;
		res->best_score = ll;
		*since_best = 0;
	}
	else
		(*since_best)++;
	return params->early_stopping_rounds > 0 && *since_best >= params->early_stopping_rounds;
}

static void
DistBoost(Gbm *gbm, CrGbmResult *res)
{
	const CrGbmParams *params = gbm->params;
	GbmDist    *d = gbm->dist;
	CrForest   *forest = &res->forest;
	MemoryContext treecxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk gbm tree",
												  ALLOCSET_DEFAULT_SIZES);
	int			total_nodes = 0;
	int			since_best = 0;
	bool		stopped = false;

	res->best_iteration = -1;
	res->best_score = NAN;
	ProgressPhase("building tree", -1);
	for (int t = 0; t < params->n_trees; t++)
	{
		uint64		tseed = CrMix64(params->seed ^ ((uint64) (t + 1) << 32));
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		ProgressStep(t + 1, params->n_trees);
		GbmTreeFeatures(gbm, tseed);
		d->new_tree = true;
		gbm->tree_base = total_nodes;
		GbmTreeReserve(gbm);
		old = MemoryContextSwitchTo(treecxt);
		GbmGrowTree(gbm, 0);
		MemoryContextSwitchTo(old);
		MemoryContextReset(treecxt);

		/* the root's reply brought the holdout's loss after tree t - 1 */
		if (t > 0 && d->want_loss &&
			TreeLoss(res, params, t - 1, d->loss / Max(d->nloss, 1), &since_best))
		{
			/* tree t goes: as a fit of loaded rows, the fit ends at t - 1 */
			stopped = true;
			break;
		}
		if (!d->want_loss)
			res->best_iteration = t;
		forest->tree_start[t] = total_nodes;
		total_nodes += gbm->tree_nodes;
		res->trees_built = t + 1;
	}
	/* the last tree's leaves, and the loss after it */
	if (!stopped)
	{
		DistFlush(gbm, d->want_loss ? GBM_MSG_LOSS : 0);
		if (d->want_loss && res->trees_built > 0)
			(void) TreeLoss(res, params, res->trees_built - 1, d->loss / Max(d->nloss, 1),
							&since_best);
	}
	forest->tree_start[res->trees_built] = total_nodes;
	if (params->early_stopping_rounds <= 0)
	{
		res->best_iteration = res->trees_built - 1;
		res->best_score = NAN;
	}
	GbmForestKeep(gbm, res);
	MemoryContextDelete(treecxt);
}

CrGbmResult *
GbmBoostDistributed(const GbmDistPart *parts, int nparts, const char *select_list,
					const GbmLoadSpec *spec, const CrGbmParams *params, int64 *ntrain,
					int64 *nhold, int64 *pos, GbmDistStats *stats)
{
	GbmDist		dist;
	Gbm			gbmdata;
	Gbm		   *gbm = &gbmdata;
	CrGbmResult *res;
	bytea	   *specbytes = GbmLoadSpecEncode(spec);
	instr_time	start;

	memset(&dist, 0, sizeof(dist));
	memset(stats, 0, sizeof(*stats));
	dist.parts = parts;
	dist.nparts = nparts;
	dist.remote = palloc0(sizeof(CrRemote) * nparts);
	dist.active = palloc0(sizeof(bool) * nparts);
	dist.run = GbmWireHash(VARDATA(specbytes), VARSIZE(specbytes) - VARHDRSZ);
	dist.stats = stats;
	initStringInfo(&dist.pending);

	memset(gbm, 0, sizeof(Gbm));
	gbm->params = params;
	gbm->dist = &dist;
	gbm->p = spec->p;
	gbm->cxt = CurrentMemoryContext;
	gbm->edges = spec->edges;
	gbm->ncodes = palloc0(sizeof(int) * spec->p);
	gbm->feats = palloc(sizeof(int) * spec->p);
	gbm->tree_cap = (1 << (params->max_depth + 1)) - 1;
	gbm->histcxt = AllocSetContextCreate(CurrentMemoryContext, "credit_risk gbm histograms",
										 ALLOCSET_DEFAULT_SIZES);
	res = palloc0(sizeof(CrGbmResult));
	ForestInit(&res->forest, spec->p, params->n_trees);
	res->forest.base_margin = spec->base_margin;
	gbm->forest = &res->forest;

	PG_TRY();
	{
		ProgressPhase("binning the rows where they are", -1);
		INSTR_TIME_SET_CURRENT(start);
		DistLoad(&dist, select_list, specbytes, ntrain, nhold, pos);
		stats->load_seconds = ProgressSecondsSince(start);
		if (*ntrain == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("training source returned no training rows")));
		dist.want_loss = *nhold > 0 && params->early_stopping_rounds > 0;
		gbm->pool = PoolCreate(params->threads);
		res->threads_used = PoolSize(gbm->pool);
		INSTR_TIME_SET_CURRENT(start);
		DistBoost(gbm, res);
		stats->tree_seconds = ProgressSecondsSince(start);
		DistFlush(gbm, GBM_MSG_CLOSE);
	}
	PG_CATCH();
	{
		for (int i = 0; i < nparts; i++)
		{
			RemoteCancel(&dist.remote[i]);
			RemoteClose(&dist.remote[i]);
		}
		GbmShardFree();
		PG_RE_THROW();
	}
	PG_END_TRY();
	for (int i = 0; i < nparts; i++)
		RemoteClose(&dist.remote[i]);
	GbmShardFree();
	MemoryContextDelete(gbm->histcxt);
	return res;
}
