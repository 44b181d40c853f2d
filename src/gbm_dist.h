/*
 * gbm_dist.h
 *	  Gradient-boosted trees grown from histograms summed over shards.
 *
 * cr_train with params.distributed and algorithm 'gbm' never loads the
 * rows on the coordinator.  Each part of the source (a shard behind a
 * foreign partition, reached through a connection of our own, or the
 * source itself in this backend) bins its rows once, with cut points the
 * coordinator found from a key-hash sample, and keeps them for the run
 * (gbm_shard.c): 1 byte a feature, the margin, the gradient pair and the
 * row's node.  Growing a tree then takes one round trip a level
 * (gbm_dist.c): the coordinator sends the decisions of the level just
 * decided (each node's split, or its leaf value) and the nodes whose
 * histograms it needs; each part routes its rows through the decisions,
 * adds the leaf values to their margins, and sends back the histograms of
 * those nodes, which the coordinator adds up and finds the splits of, as
 * a fit of loaded rows does (gbm.c).
 *
 * The messages are bytes anyone may pass to credit_risk.cr_gbm_shard, so
 * the shard checks every field before use.  Doubles travel in the
 * machine's byte order, as cr_train_partial's states do.
 */
#ifndef CR_GBM_DIST_H
#define CR_GBM_DIST_H

#include "postgres.h"

#include "binning.h"
#include "gbm.h"
#include "lib/stringinfo.h"

#define GBM_WIRE_LOAD		0x4352474C	/* "CRGL": what a part bins its rows with */
#define GBM_WIRE_LOADED		0x43524753	/* "CRGS": a part's rows, once binned */
#define GBM_WIRE_MSG		0x4352474D	/* "CRGM": a level's message */
#define GBM_WIRE_REPLY		0x43524752	/* "CRGR": a part's histograms */
#define GBM_WIRE_VERSION	1

/* a message's flags */
#define GBM_MSG_NEW_TREE	0x1		/* then: gradients at the margins, every row at the root */
#define GBM_MSG_LOSS		0x2		/* reply with the holdout's log loss at the margins */
#define GBM_MSG_CLOSE		0x4		/* free the rows: the run is over */

/* a node's decision */
#define GBM_NODE_LEAF		0
#define GBM_NODE_SPLIT		1		/* bins up to bin go left */
#define GBM_NODE_CAT		2		/* the codes in a set go left */

/*
 * The most histogram bytes a message asks for (the coordinator splits a
 * level's nodes over messages by it) and a part builds at once:
 * credit_risk.histogram_message.
 */
#define GBM_REPLY_BYTES		((Size) cr_histogram_message_kb * 1024)

/* a histogram sent whole (gbm_shard.c's GbmHistWrite) */
#define GBM_HIST_DENSE		0xFFFF

/* the most nodes a level may have on a shard */
#define GBM_SHARD_MAX_NODES	65536

/*
 * What a part bins its rows with: the features' cut points, the holdout
 * share, the class weights and the first margin.
 */
typedef struct GbmLoadSpec
{
	int			p;
	double		holdout;
	double		weight[2];		/* of a row of class 0 and 1 (scale_pos_weight in [1]) */
	double		base_margin;
	CrBinEdges *edges;			/* p */
} GbmLoadSpec;

/* a part's rows, as it reports them once binned */
typedef struct GbmLoaded
{
	uint64		run;			/* the load spec's hash: the run the part holds */
	int64		ntrain;
	int64		nhold;
	int64		pos;			/* defaults among the training rows */
	int64		bytes;			/* the part keeps */
} GbmLoaded;

/* reading a message: every read checked against what is left */
typedef struct GbmReader
{
	const char *at;
	Size		left;
	const char *what;			/* for the error */
} GbmReader;

extern void GbmWireBad(const char *what, const char *why) pg_attribute_noreturn();

static inline void
GbmRead(GbmReader *r, void *dst, Size n)
{
	if (n > r->left)
		GbmWireBad(r->what, "it is cut short");
	memcpy(dst, r->at, n);
	r->at += n;
	r->left -= n;
}

static inline int32
GbmReadInt(GbmReader *r)
{
	int32		v;

	GbmRead(r, &v, sizeof(v));
	return v;
}

static inline double
GbmReadDouble(GbmReader *r)
{
	double		v;

	GbmRead(r, &v, sizeof(v));
	return v;
}

/* gbm_shard.c: the part's side, in any backend */
struct HistBin;

extern bytea *GbmLoadSpecEncode(const GbmLoadSpec *spec);
extern uint64 GbmWireHash(const char *data, Size len);
extern void GbmLoadedDecode(const bytea *bytes, GbmLoaded *out);
extern bytea *GbmShardMessage(const char *msg, Size len);
extern void GbmHistWrite(StringInfo out, const struct HistBin *hb, int nc);
extern void GbmHistRead(GbmReader *r, int nc, struct HistBin *out);
extern void GbmShardFree(void);

/* gbm_dist.c: the coordinator's side */
typedef struct GbmDistPart
{
	char	   *server;			/* a shard's foreign server, or NULL: this backend */
	char	   *table;			/* its table there, or the source's FROM item */
} GbmDistPart;

typedef struct GbmDistStats
{
	int			parts;			/* that hold rows */
	int			parts_on_shard; /* of them, shards binning their own rows */
	int64		round_trips;	/* messages to every part at once */
	int64		levels;
	int64		bytes_sent;		/* over all parts */
	int64		bytes_received;
	int64		shard_bytes;	/* the binned rows the parts keep, together */
	double		load_seconds;
	double		tree_seconds;
} GbmDistStats;

extern CrGbmResult *GbmBoostDistributed(const GbmDistPart *parts, int nparts,
										const char *load_sql, const GbmLoadSpec *spec,
										const CrGbmParams *params, int64 *ntrain,
										int64 *nhold, int64 *pos, GbmDistStats *stats);

#endif							/* CR_GBM_DIST_H */
