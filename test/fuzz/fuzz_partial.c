/*
 * fuzz_partial.c
 *	  libFuzzer harness for the bytes cr_train_partial is handed: its spec
 *	  and its states (src/partial.c, included whole so that its decoders can
 *	  be called directly).
 *
 * The first byte picks what the rest is:
 *
 *	0: a spec.  SpecDecode must reject it with an ERROR or accept it; an
 *	   accepted spec must be in range (kind, features, holdout, weights,
 *	   finite coefficients), must encode back to the same bytes, and a row
 *	   of values (some missing) must go through its pass into a new state;
 *	1: a state.  StateDoublesOf must reject it or accept it; an accepted
 *	   one is added to itself (the combine function's arithmetic) and into
 *	   the coordinator's sums (PartialSumsAdd);
 *	2: two states (the rest split in half): checked as 1, and added only
 *	   when both are of one pass.
 *
 * An ERROR is the expected answer to bad bytes; anything else failing is a
 * finding.
 */
#include "partial.c"

#include "pgstub.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT	(1 << 20)

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	FuzzInit();
	return 0;
}

static bytea *
Bytes(const uint8_t *data, size_t size)
{
	bytea	   *b = palloc(VARHDRSZ + size);

	SET_VARSIZE(b, VARHDRSZ + size);
	memcpy(VARDATA(b), data, size);
	return b;
}

static void
CheckSpec(const bytea *b)
{
	SpecCache	sc;
	const CrPartialSpec *s = &sc.spec;
	bytea	   *again;
	double	   *state;
	int			k;

	memset(&sc, 0, sizeof(sc));
	SpecDecode(b, &sc, CurrentMemoryContext);
	if ((s->kind != CR_PARTIAL_MOMENTS && s->kind != CR_PARTIAL_NEWTON) ||
		s->p < 1 || s->p > CR_PARTIAL_MAX_FEATURES)
		FuzzFail("accepted a spec of kind %d over %d features", s->kind, s->p);
	if (!(s->holdout >= 0.0 && s->holdout <= 1.0) ||
		!(s->class_weight[0] > 0.0) || !(s->class_weight[1] > 0.0))
		FuzzFail("accepted a holdout of %g or class weights %g and %g", s->holdout,
				 s->class_weight[0], s->class_weight[1]);
	k = s->p + 1;
	for (int i = 0; s->kind == CR_PARTIAL_NEWTON && i < k; i++)
		if (!isfinite(s->beta[i]) || !isfinite(s->mean[i]) || !isfinite(s->inv_sd[i]) ||
			(i < s->p && !isfinite(s->impute[i])))
			FuzzFail("accepted a spec with a value that is not finite at %d", i);
	for (int j = 0; j < s->p; j++)
		if (s->names[j] == NULL)
			FuzzFail("feature %d has no name", j);

	/* the coordinator writes what the shard reads */
	again = PartialSpecEncode(s);
	if (VARSIZE(again) != VARSIZE(b) || memcmp(VARDATA(again), VARDATA(b), VARSIZE(b) - VARHDRSZ) != 0)
	{
		/* the padding is not read: only bytes 12 to 19 may differ */
		for (Size i = 0; i < VARSIZE(b) - VARHDRSZ; i++)
			if ((i < 12 || i >= 20) && (VARSIZE(again) != VARSIZE(b) ||
										((char *) VARDATA(again))[i] != ((char *) VARDATA(b))[i]))
				FuzzFail("the spec does not encode back to its bytes (at byte %zu)", (size_t) i);
	}

	/* a row through its pass */
	state = palloc0(sizeof(double) * StateDoubles(s->kind, s->p));
	for (int j = 0; j < s->p; j++)
		sc.x[j] = j % 3 == 0 ? NAN : j * 0.5 - 3.0;
	if (s->kind == CR_PARTIAL_MOMENTS)
	{
		MomentsRow(s, state, sc.x, 1.0, false);
		MomentsRow(s, state, sc.x, 0.0, true);
	}
	else
		NewtonRow(s, sc.z, state, sc.x, 1.0);
}

static double *
CheckState(bytea *b, PartialHeader *h)
{
	double	   *d = StateDoublesOf(b, 0, 0, "state");

	memcpy(h, VARDATA(b), sizeof(*h));
	return d;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sigjmp_buf	jb;
	int			mode;

	if (size < 1 || size > FUZZ_MAX_INPUT)
		return 0;
	mode = data[0] % 3;
	data++;
	size--;

	fuzz_catch = &jb;
	if (sigsetjmp(jb, 0) == 0)
	{
		if (mode == 0)
			CheckSpec(Bytes(data, size));
		else if (mode == 1)
		{
			bytea	   *b = Bytes(data, size);
			PartialHeader h;
			double	   *d = CheckState(b, &h);
			bytea	   *copy = Bytes(data, size);
			CrPartialSums sums;

			StateAddInto((double *) ((char *) VARDATA(copy) + sizeof(PartialHeader)), d,
						 h.kind, h.p);
			PartialSumsInit(&sums, h.kind, h.p);
			PartialSumsAdd(&sums, b, StateSpecHash(b));
			PartialSumsAdd(&sums, copy, StateSpecHash(copy));
		}
		else
		{
			size_t		half = size / 2;
			bytea	   *a = Bytes(data, half);
			bytea	   *b = Bytes(data + half, size - half);
			PartialHeader ha,
						hb;
			double	   *da = CheckState(a, &ha);
			double	   *db = CheckState(b, &hb);

			/* added only when of one pass, as the combine function checks */
			(void) StateDoublesOf(a, hb.kind, hb.p, "state");
			StateAddInto(da, db, ha.kind, ha.p);
		}
	}
	fuzz_catch = NULL;
	FuzzMemReset();
	return 0;
}
