/*
 * partial.c
 *	  credit_risk.cr_train_partial: the sums of one training pass over the
 *	  rows it is given (see partial.h), and what the coordinator needs to
 *	  ask for them and add them up.
 *
 * The aggregate's state is a bytea: a header and the sums as doubles.  It
 * has a combine function, so PostgreSQL's parallel workers and Citus's
 * workers each sum their rows and the sums are added; postgres_fdw sends
 * the whole aggregate of a foreign partition to its shard.  The rows never
 * leave the node that holds them.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "credit_risk.h"
#include "partial.h"

PG_FUNCTION_INFO_V1(cr_train_partial_step);
PG_FUNCTION_INFO_V1(cr_train_partial_combine);

#define SPEC_MAGIC		0x43525053	/* "CRPS" */
#define STATE_MAGIC		0x43525054	/* "CRPT" */
#define PARTIAL_VERSION	1

/*
 * The bytes of a spec or a state begin with this, after the 4-byte varlena
 * header: 20 bytes, so that a state's doubles are 8-byte aligned when the
 * state is.
 */
typedef struct PartialHeader
{
	uint32		magic;
	uint16		version;
	uint16		kind;
	int32		p;
	uint32		spec_hash[2];	/* a state: the hash of the spec it sums for */
} PartialHeader;

StaticAssertDecl((VARHDRSZ + sizeof(PartialHeader)) % sizeof(double) == 0,
				 "a state's doubles are aligned");

/* spec: the header, holdout and the class weights, then (newton) 3k + p doubles, then p names */
#define SPEC_FIXED_DOUBLES	3

/* a decoded spec, kept for the rows of one call site */
typedef struct SpecCache
{
	MemoryContext cxt;			/* where the rest lives, or NULL */
	uint64		hash;			/* of the spec's bytes */
	bytea	   *bytes;			/* a copy of the spec it was decoded from */
	CrPartialSpec spec;
	double	   *x;				/* p: a row's values */
	double	   *z;				/* k: the row, standardized */
} SpecCache;

static int
StateDoubles(CrPartialKind kind, int p)
{
	int			k = p + 1;

	return kind == CR_PARTIAL_MOMENTS ? PARTIAL_FEATURE(p) : 1 + k + k * (k + 1) / 2;
}

static Size
StateBytes(CrPartialKind kind, int p)
{
	return VARHDRSZ + sizeof(PartialHeader) + sizeof(double) * StateDoubles(kind, p);
}

static void
CheckKindAndWidth(int kind, int p, const char *what)
{
	if ((kind != CR_PARTIAL_MOMENTS && kind != CR_PARTIAL_NEWTON) ||
		p < 1 || p > CR_PARTIAL_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_train_partial %s is not valid", what),
				 errdetail("It names pass kind %d over %d features.", kind, p)));
}

/* ------------------------------------------------------------------ spec */

bytea *
PartialSpecEncode(const CrPartialSpec *spec)
{
	StringInfoData buf;
	PartialHeader h;
	double		fixed[SPEC_FIXED_DOUBLES];
	int			k = spec->p + 1;

	initStringInfo(&buf);
	appendStringInfoSpaces(&buf, VARHDRSZ);
	memset(&h, 0, sizeof(h));
	h.magic = SPEC_MAGIC;
	h.version = PARTIAL_VERSION;
	h.kind = spec->kind;
	h.p = spec->p;
	appendBinaryStringInfo(&buf, (char *) &h, sizeof(h));
	fixed[0] = spec->holdout;
	fixed[1] = spec->class_weight[0];
	fixed[2] = spec->class_weight[1];
	appendBinaryStringInfo(&buf, (char *) fixed, sizeof(fixed));
	if (spec->kind == CR_PARTIAL_NEWTON)
	{
		appendBinaryStringInfo(&buf, (char *) spec->beta, sizeof(double) * k);
		appendBinaryStringInfo(&buf, (char *) spec->mean, sizeof(double) * k);
		appendBinaryStringInfo(&buf, (char *) spec->inv_sd, sizeof(double) * k);
		appendBinaryStringInfo(&buf, (char *) spec->impute, sizeof(double) * spec->p);
	}
	for (int j = 0; j < spec->p; j++)
		appendBinaryStringInfo(&buf, spec->names[j], strlen(spec->names[j]) + 1);
	SET_VARSIZE(buf.data, buf.len);
	return (bytea *) buf.data;
}

static void pg_attribute_noreturn()
BadSpec(const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("cr_train_partial spec is not valid: %s", why),
			 errhint("cr_train with params.distributed writes the spec; it is not meant to be written by hand.")));
}

/* Decode spec bytes (hostile) into sc, in cxt. */
static void
SpecDecode(const bytea *bytes, SpecCache *sc, MemoryContext cxt)
{
	const char *data = VARDATA_ANY(bytes);
	Size		len = VARSIZE_ANY_EXHDR(bytes);
	Size		off = sizeof(PartialHeader);
	PartialHeader h;
	double		fixed[SPEC_FIXED_DOUBLES];
	CrPartialSpec *s = &sc->spec;
	MemoryContext old;
	int			k;

	if (len < sizeof(h) + sizeof(fixed))
		BadSpec("too short");
	memcpy(&h, data, sizeof(h));
	if (h.magic != SPEC_MAGIC || h.version != PARTIAL_VERSION)
		BadSpec("not a spec of this version");
	CheckKindAndWidth(h.kind, h.p, "spec");
	k = h.p + 1;
	memcpy(fixed, data + off, sizeof(fixed));
	off += sizeof(fixed);
	if (!(fixed[0] >= 0.0 && fixed[0] <= 1.0) ||
		!(fixed[1] > 0.0 && isfinite(fixed[1])) || !(fixed[2] > 0.0 && isfinite(fixed[2])))
		BadSpec("holdout or class weights out of range");

	old = MemoryContextSwitchTo(cxt);
	memset(s, 0, sizeof(*s));
	s->kind = h.kind;
	s->p = h.p;
	s->holdout = fixed[0];
	s->class_weight[0] = fixed[1];
	s->class_weight[1] = fixed[2];
	if (s->kind == CR_PARTIAL_NEWTON)
	{
		Size		nd = (Size) 3 * k + h.p;
		double	   *v = palloc(sizeof(double) * nd);

		if (len - off < sizeof(double) * nd)
			BadSpec("too short for its coefficients");
		memcpy(v, data + off, sizeof(double) * nd);
		off += sizeof(double) * nd;
		for (Size i = 0; i < nd; i++)
			if (!isfinite(v[i]))
				BadSpec("a coefficient, mean, scale or imputed value is not finite");
		s->beta = v;
		s->mean = v + k;
		s->inv_sd = v + 2 * k;
		s->impute = v + 3 * k;
	}
	s->names = palloc(sizeof(char *) * h.p);
	for (int j = 0; j < h.p; j++)
	{
		const char *end = memchr(data + off, '\0', len - off);

		if (off >= len || end == NULL)
			BadSpec("its feature names are cut short");
		if (end == data + off || end - (data + off) > NAMEDATALEN - 1 ||
			!pg_verifymbstr(data + off, end - (data + off), true))
			BadSpec("a feature name is empty, too long or not in the database's encoding");
		s->names[j] = pstrdup(data + off);
		off = end - data + 1;
	}
	if (off != len)
		BadSpec("bytes follow its feature names");
	sc->x = palloc(sizeof(double) * h.p);
	sc->z = palloc(sizeof(double) * k);
	sc->bytes = palloc(VARHDRSZ + len);
	SET_VARSIZE(sc->bytes, VARHDRSZ + len);
	memcpy(VARDATA(sc->bytes), data, len);
	MemoryContextSwitchTo(old);
}

/* The hash a state records of its spec's bytes. */
static uint64
SpecHash(const char *data, Size len)
{
	return hash_bytes_extended((const unsigned char *) data, (int) len, 0);
}

/*
 * The decoded spec of this call site's bytes, decoded once per distinct
 * spec: a new spec replaces the old one, whose memory goes with it.
 */
static const SpecCache *
SpecOf(FunctionCallInfo fcinfo, const bytea *bytes)
{
	SpecCache  *sc = (SpecCache *) fcinfo->flinfo->fn_extra;
	Size		len = VARSIZE_ANY_EXHDR(bytes);
	SpecCache	fresh;

	if (sc != NULL && VARSIZE(sc->bytes) - VARHDRSZ == len &&
		memcmp(VARDATA(sc->bytes), VARDATA_ANY(bytes), len) == 0)
		return sc;
	if (sc == NULL)
		sc = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(SpecCache));
	/* decoded into a context of its own, which replaces the old one only if it decodes */
	memset(&fresh, 0, sizeof(fresh));
	fresh.cxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt, "cr_train_partial spec",
									  ALLOCSET_SMALL_SIZES);
	SpecDecode(bytes, &fresh, fresh.cxt);
	fresh.hash = SpecHash(VARDATA_ANY(bytes), len);
	if (sc->cxt != NULL)
		MemoryContextDelete(sc->cxt);
	*sc = fresh;
	return sc;
}

/* ----------------------------------------------------------------- state */

/* The doubles of a state of kind and p, checked; the state is 8-byte aligned. */
static double *
StateDoublesOf(bytea *state, int kind, int p, const char *what)
{
	PartialHeader *h = (PartialHeader *) VARDATA(state);

	if (VARATT_IS_EXTENDED(state) || VARSIZE(state) < VARHDRSZ + sizeof(PartialHeader) ||
		h->magic != STATE_MAGIC || h->version != PARTIAL_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_train_partial %s is not a state of this version", what)));
	CheckKindAndWidth(h->kind, h->p, what);
	if (VARSIZE(state) != StateBytes(h->kind, h->p))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_train_partial %s has %zu bytes, not the %zu of its kind",
						what, (Size) (VARSIZE(state) - VARHDRSZ),
						StateBytes(h->kind, h->p) - VARHDRSZ)));
	if (kind != 0 && (h->kind != kind || h->p != p))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_train_partial states of different passes cannot be added"),
				 errdetail("Kind %d over %d features and kind %d over %d.", h->kind, h->p, kind, p)));
	return (double *) ((char *) h + sizeof(PartialHeader));
}

static uint64
StateSpecHash(const bytea *state)
{
	const PartialHeader *h = (const PartialHeader *) VARDATA(state);

	return ((uint64) h->spec_hash[1] << 32) | h->spec_hash[0];
}

static bytea *
StateNew(int kind, int p, uint64 spec_hash, MemoryContext cxt)
{
	Size		size = StateBytes(kind, p);
	bytea	   *state = MemoryContextAllocZero(cxt, size);
	PartialHeader *h = (PartialHeader *) VARDATA(state);

	SET_VARSIZE(state, size);
	h->magic = STATE_MAGIC;
	h->version = PARTIAL_VERSION;
	h->kind = kind;
	h->p = p;
	h->spec_hash[0] = (uint32) spec_hash;
	h->spec_hash[1] = (uint32) (spec_hash >> 32);
	return state;
}

/*
 * The state argument as one this call may change in place: in an
 * aggregate, the aggregate's own (copied into its context if it is not
 * 8-byte aligned); called directly, always a copy.
 */
static bytea *
StateArg(FunctionCallInfo fcinfo, int argno, MemoryContext aggcxt)
{
	bytea	   *in = PG_GETARG_BYTEA_P(argno);
	bytea	   *state;

	if (aggcxt != NULL && (uintptr_t) in % sizeof(double) == 0 &&
		in == (bytea *) DatumGetPointer(PG_GETARG_DATUM(argno)))
		return in;
	state = MemoryContextAlloc(aggcxt ? aggcxt : CurrentMemoryContext, VARSIZE(in));
	memcpy(state, in, VARSIZE(in));
	return state;
}

/* ------------------------------------------------------------------ rows */

static void
MomentsRow(const CrPartialSpec *s, double *d, const double *x, double y, bool holdout)
{
	int			side = holdout ? 1 : 0;

	d[PARTIAL_ROWS + side] += 1.0;
	d[PARTIAL_DEFAULTS + side] += y;
	if (holdout)
		return;
	for (int j = 0; j < s->p; j++)
	{
		double	   *m = d + PARTIAL_FEATURE(j);	/* count, mean, m2 */
		double		delta;

		if (isnan(x[j]))
			continue;
		m[0] += 1.0;
		delta = x[j] - m[1];
		m[1] += delta / m[0];
		m[2] += delta * (x[j] - m[1]);
	}
}

static void
NewtonRow(const CrPartialSpec *s, double *z, double *d, const double *x, double y)
{
	int			k = s->p + 1;
	double	   *g = d + 1;
	double	   *H = g + k;		/* packed: (r, c), r <= c, at c(c+1)/2 + r */
	double		eta = s->beta[0];
	double		c = s->class_weight[y > 0.5];
	double		e,
				inv,
				prob,
				r,
				w;

	z[0] = 1.0;
	for (int j = 0; j < s->p; j++)
	{
		double		v = isnan(x[j]) ? s->impute[j] : x[j];

		z[j + 1] = (v - s->mean[j + 1]) * s->inv_sd[j + 1];
		eta += s->beta[j + 1] * z[j + 1];
	}
	e = exp(-fabs(eta));
	inv = 1.0 / (1.0 + e);
	prob = eta >= 0 ? inv : e * inv;
	/* log(1 + exp(eta)) = max(eta, 0) + log1p(exp(-|eta|)) */
	d[0] += c * (y * eta - (Max(eta, 0.0) + log1p(e)));
	r = c * (y - prob);
	w = c * prob * (1.0 - prob);
	for (int a = 0; a < k; a++)
	{
		double		wz = w * z[a];
		double	   *col = H + (Size) a * (a + 1) / 2;

		g[a] += r * z[a];
		for (int b = 0; b <= a; b++)
			col[b] += wz * z[b];
	}
}

/*
 * The arguments of a training row as the passes' aggregates take them (2
 * its features, 3 its label, 4 its split unit): its p values into x, NULL
 * as NaN (a value that is not finite is an error naming the feature from
 * names, or its number when names is NULL); the label, 0 or 1, returned;
 * the unit, in [0, 1), in *unit.
 */
double
PartialRowArgs(FunctionCallInfo fcinfo, int p, char **names, double *x, double *unit)
{
	ArrayType  *arr;
	bits8	   *nulls;
	const char *vals;
	double		y;

	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the label of a training row is NULL")));
	y = PG_GETARG_FLOAT8(3);
	if (y != 0.0 && y != 1.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the label of a training row is %g, not 0 or 1", y),
				 errhint("The label must hold 1 for default and 0 for no default.")));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the key of a training row is NULL"),
				 errhint("Every row needs a key (params.key) for its place in the split.")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the features of a training row are NULL")));
	arr = PG_GETARG_ARRAYTYPE_P(2);
	if (ARR_ELEMTYPE(arr) != FLOAT8OID || ARR_NDIM(arr) != 1 || ARR_DIMS(arr)[0] != p)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("the features of a training row must be a float8 array of %d values", p)));

	nulls = ARR_NULLBITMAP(arr);
	vals = ARR_DATA_PTR(arr);
	for (int j = 0; j < p; j++)
	{
		if (nulls != NULL && !(nulls[j / 8] & (1 << (j % 8))))
			x[j] = NAN;
		else
		{
			memcpy(&x[j], vals, sizeof(double));
			vals += sizeof(double);
			if (!isfinite(x[j]))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 names ? errmsg("feature \"%s\" holds %s in a training row", names[j],
										isnan(x[j]) ? "NaN" : (x[j] > 0 ? "Infinity" : "-Infinity"))
						 : errmsg("feature %d holds %s in a training row", j + 1,
								  isnan(x[j]) ? "NaN" : (x[j] > 0 ? "Infinity" : "-Infinity")),
						 errhint("Use NULL for a missing value.")));
		}
	}

	*unit = PG_GETARG_FLOAT8(4);
	if (!(*unit >= 0.0 && *unit < 1.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the split unit of a training row is %g, not in [0, 1)", *unit),
				 errhint("The unit is cr_split_unit of the row's key.")));
	return y;
}

/*
 * cr_train_partial_step(state, spec, features, label, unit): state with
 * one more row.
 */
Datum
cr_train_partial_step(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	const CrPartialSpec *s;
	const SpecCache *sc;
	bytea	   *state;
	double	   *d;
	double	   *x;
	double		y;
	double		unit;
	int			p;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		aggcxt = NULL;
	if (PG_ARGISNULL(1))
		BadSpec("it is NULL");
	sc = SpecOf(fcinfo, PG_GETARG_BYTEA_PP(1));
	s = &sc->spec;
	p = s->p;
	if (PG_ARGISNULL(0))
		state = StateNew(s->kind, p, sc->hash, aggcxt ? aggcxt : CurrentMemoryContext);
	else
		state = StateArg(fcinfo, 0, aggcxt);
	d = StateDoublesOf(state, s->kind, p, "state");
	if (StateSpecHash(state) != sc->hash)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_train_partial was given another spec in the middle of its rows"),
				 errdetail("A state sums the rows of one pass, under one spec.")));

	x = sc->x;
	y = PartialRowArgs(fcinfo, p, s->names, x, &unit);
	{
		bool		holdout = unit < s->holdout;

		if (s->kind == CR_PARTIAL_MOMENTS)
			MomentsRow(s, d, x, y, holdout);
		else if (!holdout)
			NewtonRow(s, sc->z, d, x, y);
	}
	PG_RETURN_BYTEA_P(state);
}

/* Add the doubles b into a, states of kind over p features. */
static void
StateAddInto(double *a, const double *b, int kind, int p)
{
	if (kind == CR_PARTIAL_MOMENTS)
	{
		for (int i = 0; i < PARTIAL_FEATURE(0); i++)
			a[i] += b[i];
		for (int j = 0; j < p; j++)
		{
			double	   *ma = a + PARTIAL_FEATURE(j);
			const double *mb = b + PARTIAL_FEATURE(j);
			double		n = ma[0] + mb[0];
			double		delta = mb[1] - ma[1];

			if (mb[0] == 0.0)
				continue;
			/* Chan, Golub and LeVeque's pairwise update */
			ma[2] += mb[2] + delta * delta * ma[0] * mb[0] / n;
			ma[1] += delta * mb[0] / n;
			ma[0] = n;
		}
	}
	else
	{
		int			nd = StateDoubles(kind, p);

		for (int i = 0; i < nd; i++)
			a[i] += b[i];
	}
}

/* cr_train_partial_combine(a, b): the two states added */
Datum
cr_train_partial_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	bytea	   *a;
	bytea	   *b;
	PartialHeader hb;
	double	   *da;
	double	   *db;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		aggcxt = NULL;
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_BYTEA_P(StateArg(fcinfo, 0, aggcxt));
	}
	b = StateArg(fcinfo, 1, NULL);	/* an aligned copy */
	memcpy(&hb, VARDATA(b), sizeof(hb));
	db = StateDoublesOf(b, 0, 0, "state");
	if (PG_ARGISNULL(0))
	{
		if (aggcxt == NULL)
			PG_RETURN_BYTEA_P(b);
		a = MemoryContextAlloc(aggcxt, VARSIZE(b));
		memcpy(a, b, VARSIZE(b));
		PG_RETURN_BYTEA_P(a);
	}
	a = StateArg(fcinfo, 0, aggcxt);
	da = StateDoublesOf(a, hb.kind, hb.p, "state");
	if (StateSpecHash(a) != StateSpecHash(b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cr_train_partial states of different passes cannot be added"),
				 errdetail("They sum the rows under different specs.")));
	StateAddInto(da, db, hb.kind, hb.p);
	PG_RETURN_BYTEA_P(a);
}

/* ----------------------------------------------------------- coordinator */

void
PartialSumsInit(CrPartialSums *sums, CrPartialKind kind, int p)
{
	int			k = p + 1;

	memset(sums, 0, sizeof(*sums));
	sums->kind = kind;
	sums->p = p;
	if (kind == CR_PARTIAL_MOMENTS)
		sums->moments = palloc0(sizeof(double) * StateDoubles(kind, p));
	else
	{
		sums->g = palloc0(sizeof(double) * k);
		sums->H = palloc0(sizeof(double) * k * k);
	}
}

/* Are a state's doubles finite, its counts whole and not negative, its spreads not negative? */
static bool
SumsValid(const double *d, int kind, int p)
{
	int			nd = StateDoubles(kind, p);

	for (int i = 0; i < nd; i++)
	{
		bool		count;
		bool		spread;

		if (!isfinite(d[i]))
			return false;
		if (kind != CR_PARTIAL_MOMENTS)
			continue;
		count = i < PARTIAL_FEATURE(0) || (i - PARTIAL_FEATURE(0)) % 3 == 0;
		spread = i >= PARTIAL_FEATURE(0) && (i - PARTIAL_FEATURE(0)) % 3 == 2;
		if ((count && !(d[i] >= 0.0 && d[i] == floor(d[i]))) || (spread && d[i] < 0.0))
			return false;
	}
	return true;
}

/* The hash a state of spec records (the coordinator's check of what comes back). */
uint64
PartialSpecHash(const bytea *spec)
{
	return SpecHash(VARDATA_ANY(spec), VARSIZE_ANY_EXHDR(spec));
}

/*
 * Add a part's state into sums.  It comes from a shard: it must be a state
 * of the pass spec_hash names, with counts that are counts and sums that
 * are finite.
 */
void
PartialSumsAdd(CrPartialSums *sums, const bytea *part, uint64 spec_hash)
{
	Size		len = VARSIZE_ANY_EXHDR(part);
	bytea	   *state = palloc(VARHDRSZ + len);
	double	   *d;
	int			p = sums->p,
				k = p + 1;

	/* an aligned copy with a 4-byte header */
	SET_VARSIZE(state, VARHDRSZ + len);
	memcpy(VARDATA(state), VARDATA_ANY(part), len);
	d = StateDoublesOf(state, sums->kind, p, "result of a part");
	if (StateSpecHash(state) != spec_hash)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a part of the source returned the sums of another pass")));
	if (!SumsValid(d, sums->kind, p))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("a part of the source returned sums that are not finite, or counts that are not counts"),
				 errhint("A feature's values may be too large to sum in double precision: scale the column down.")));
	if (sums->kind == CR_PARTIAL_MOMENTS)
		StateAddInto(sums->moments, d, sums->kind, p);
	else
	{
		const double *g = d + 1;
		const double *H = g + k;

		sums->ll += d[0];
		for (int c = 0; c < k; c++)
		{
			sums->g[c] += g[c];
			for (int r = 0; r <= c; r++)
				sums->H[c * k + r] += H[(Size) c * (c + 1) / 2 + r];
		}
	}
	pfree(state);
}
