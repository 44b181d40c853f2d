/*
 * pgstub.c
 *	  A stand-in for the few parts of the PostgreSQL backend that the model
 *	  decoder, the training-params parser and the XGBoost import and export
 *	  call, so that they can be fuzzed in a plain process.
 *
 * Each function here does what its backend namesake promises its callers,
 * as far as these callers can tell, and no more: palloc hands out tracked
 * malloc blocks (one per call, so AddressSanitizer sees the bounds of every
 * array the decoder builds) in the current memory context, which can be
 * reset or deleted; ereport(ERROR) jumps back to the harness;
 * strings are verified as UTF-8, the database encoding the harnesses
 * assume.  Anything these callers should never reach aborts, so the fuzzer
 * reports it.
 */
#include "postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "credit_risk.h"
#include "pgstub.h"

FuzzError	fuzz_error;
sigjmp_buf *fuzz_catch = NULL;
FuzzRowHook fuzz_row_hook = NULL;
bool		fuzz_verbose = false;

/* Backend globals the linked sources refer to. */
MemoryContext CurrentMemoryContext = NULL;
volatile sig_atomic_t InterruptPending = false;
uint64		SPI_processed = 0;
int			SPI_result = 0;
SPITupleTable *SPI_tuptable = NULL;
int			cr_threads = 1;
int			cr_train_memory_kb = 0;
int			cr_simd = CR_SIMD_OFF;

/* A SQLSTATE as its five characters, for messages. */
static const char *
SqlState(int code)
{
	static char buf[6];

	for (int i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(code);
		code >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

void
FuzzInit(void)
{
	const char *v = getenv("CR_FUZZ_VERBOSE");

	fuzz_verbose = v != NULL && v[0] != '\0' && v[0] != '0';
}

void
FuzzFail(const char *fmt,...)
{
	va_list		ap;

	fflush(stdout);
	fprintf(stderr, "credit_risk fuzz: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

/* ------------------------------------------------------------------ memory */

/*
 * Every live block, kept by the memory context it was allocated in, so that
 * FuzzMemReset() can free an input's allocations however the code under
 * test left them (after an ERROR, most are never pfree'd, as in a backend
 * where the memory context goes instead), and so that MemoryContextReset and
 * MemoryContextDelete free what the backend's would: a pointer kept past
 * them is a use after free that AddressSanitizer reports.  Blocks allocated
 * while CurrentMemoryContext is NULL (the harness's own) belong to
 * mem_top.  pfree searches from the newest block: code frees what it just
 * allocated.
 */
#define FUZZ_CONTEXT_MAGIC	0x46435458u	/* "FCTX" */

typedef struct FuzzContext
{
	uint32		magic;
	const char *name;
	struct FuzzContext *parent;
	void	  **block;
	size_t		nblocks;
	size_t		capacity;
} FuzzContext;

static FuzzContext mem_top = {FUZZ_CONTEXT_MAGIC, "fuzz top", NULL, NULL, 0, 0};

/* the contexts AllocSetContextCreate made, live ones only */
static FuzzContext **mem_context;
static int	mem_ncontexts;
static int	mem_context_capacity;

static FuzzContext *
ContextOf(MemoryContext mc)
{
	FuzzContext *c = mc == NULL ? &mem_top : (FuzzContext *) mc;

	if (c->magic != FUZZ_CONTEXT_MAGIC)
		FuzzFail("memory context %p was not made by the stand-in (or was deleted)", (void *) mc);
	return c;
}

static void
MemTrack(FuzzContext *c, void *p)
{
	if (c->nblocks == c->capacity)
	{
		size_t		newcap = c->capacity ? c->capacity * 2 : 1024;
		void	  **grown = realloc(c->block, newcap * sizeof(void *));

		if (grown == NULL)
			FuzzFail("out of memory tracking allocations");
		c->block = grown;
		c->capacity = newcap;
	}
	c->block[c->nblocks++] = p;
}

static bool
MemFindIn(FuzzContext *c, void *p, size_t *index)
{
	for (size_t i = c->nblocks; i > 0; i--)
		if (c->block[i - 1] == p)
		{
			*index = i - 1;
			return true;
		}
	return false;
}

/* The context holding p, current context first; p must be a live block. */
static FuzzContext *
MemFind(void *p, size_t *index)
{
	FuzzContext *cur = ContextOf(CurrentMemoryContext);

	if (MemFindIn(cur, p, index))
		return cur;
	if (cur != &mem_top && MemFindIn(&mem_top, p, index))
		return &mem_top;
	for (int i = mem_ncontexts; i > 0; i--)
		if (mem_context[i - 1] != cur && MemFindIn(mem_context[i - 1], p, index))
			return mem_context[i - 1];
	FuzzFail("pointer %p was not allocated by palloc (or was already freed)", p);
}

static void
MemFreeBlocks(FuzzContext *c)
{
	for (size_t i = 0; i < c->nblocks; i++)
		free(c->block[i]);
	c->nblocks = 0;
}

/* Free c's blocks and delete its children, as MemoryContextReset does. */
static void
ContextReset(FuzzContext *c)
{
	for (;;)
	{
		int			i = 0;

		while (i < mem_ncontexts && mem_context[i]->parent != c)
			i++;
		if (i == mem_ncontexts)
			break;
		MemoryContextDelete((MemoryContext) mem_context[i]);
	}
	MemFreeBlocks(c);
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name,
							  Size minContextSize, Size initBlockSize,
							  Size maxBlockSize)
{
	FuzzContext *c = calloc(1, sizeof(FuzzContext));

	if (c == NULL)
		FuzzFail("out of memory making a memory context");
	c->magic = FUZZ_CONTEXT_MAGIC;
	c->name = name;
	c->parent = ContextOf(parent);
	if (mem_ncontexts == mem_context_capacity)
	{
		int			newcap = mem_context_capacity ? mem_context_capacity * 2 : 16;
		FuzzContext **grown = realloc(mem_context, newcap * sizeof(FuzzContext *));

		if (grown == NULL)
			FuzzFail("out of memory tracking memory contexts");
		mem_context = grown;
		mem_context_capacity = newcap;
	}
	mem_context[mem_ncontexts++] = c;
	return (MemoryContext) c;
}

void
MemoryContextReset(MemoryContext context)
{
	ContextReset(ContextOf(context));
}

void
MemoryContextDelete(MemoryContext context)
{
	FuzzContext *c = ContextOf(context);

	/* the backend Asserts both */
	if (c == &mem_top)
		FuzzFail("MemoryContextDelete of the harness's own context");
	if (context == CurrentMemoryContext)
		FuzzFail("MemoryContextDelete of the current memory context \"%s\"", c->name);
	ContextReset(c);
	for (int i = 0; i < mem_ncontexts; i++)
		if (mem_context[i] == c)
		{
			mem_context[i] = mem_context[--mem_ncontexts];
			break;
		}
	free(c->block);
	c->magic = 0;
	free(c);
}

/*
 * Free everything an input allocated, in any context, and delete the
 * contexts it made; an ERROR may have left CurrentMemoryContext in one.
 */
void
FuzzMemReset(void)
{
	CurrentMemoryContext = NULL;
	while (mem_ncontexts > 0)
		MemoryContextDelete((MemoryContext) mem_context[mem_ncontexts - 1]);
	MemFreeBlocks(&mem_top);
}

static void *
MemAlloc(Size size, bool zero)
{
	void	   *p;

	/* the backend's limit, which bounds what bad counts can ask for */
	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	/* zero-size blocks stay distinct, and any access to them is caught */
	p = zero ? calloc(1, size) : malloc(size);
	if (p == NULL && size == 0)
		p = malloc(1);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu.", size)));
	MemTrack(ContextOf(CurrentMemoryContext), p);
	return p;
}

void *
palloc(Size size)
{
	return MemAlloc(size, false);
}

void *
palloc0(Size size)
{
	return MemAlloc(size, true);
}

/* every allocation lives until the input is done, whatever its context */
void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return MemAlloc(size, false);
}

void *
MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
	return MemAlloc(size, (flags & MCXT_ALLOC_ZERO) != 0);
}

/* an aggregate's support function called outside an aggregate */
int
AggCheckCallContext(FunctionCallInfo fcinfo, MemoryContext *aggcontext)
{
	if (aggcontext)
		*aggcontext = NULL;
	return 0;
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return MemAlloc(size, true);
}

/*
 * cr_model_trees' categories column: an empty one-dimensional text array
 * is all the harness needs (it reads the other columns).
 */
ArrayType *
construct_array(Datum *elems, int nelems, Oid elmtype, int elmlen, bool elmbyval,
				char elmalign)
{
	ArrayType  *a = palloc0(sizeof(ArrayType));

	SET_VARSIZE(a, sizeof(ArrayType));
	a->elemtype = elmtype;
	return a;
}

void *
repalloc(void *pointer, Size size)
{
	size_t		i;
	FuzzContext *c = MemFind(pointer, &i);
	void	   *p;

	if (!AllocSizeIsValid(size))
		elog(ERROR, "invalid memory alloc request size %zu", size);
	p = realloc(pointer, size ? size : 1);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on request of size %zu.", size)));
	c->block[i] = p;
	return p;
}

void
pfree(void *pointer)
{
	size_t		i;
	FuzzContext *c = MemFind(pointer, &i);

	free(pointer);
	c->block[i] = c->block[--c->nblocks];
}

char *
pnstrdup(const char *in, Size len)
{
	Size		n = strnlen(in, len);
	char	   *out = palloc(n + 1);

	memcpy(out, in, n);
	out[n] = '\0';
	return out;
}

char *
pstrdup(const char *in)
{
	return pnstrdup(in, strlen(in));
}

/* ------------------------------------------------------------------ errors */

bool
errstart(int elevel, const char *domain)
{
	/* messages below ERROR are formatted too, to check their arguments */
	memset(&fuzz_error, 0, sizeof(fuzz_error));
	fuzz_error.elevel = elevel;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fuzz_error.filename = filename;
	fuzz_error.lineno = lineno;
	fuzz_error.funcname = funcname;

	if (fuzz_verbose)
		fprintf(stderr, "elevel %d, %s at %s:%d: %s (%s)\n",
				fuzz_error.elevel, SqlState(fuzz_error.sqlerrcode),
				filename, lineno, fuzz_error.message, fuzz_error.detail);
	if (fuzz_error.elevel < ERROR)
		return;
	if (fuzz_error.elevel > ERROR)
		FuzzFail("elevel %d (above ERROR) at %s:%d: %s",
				 fuzz_error.elevel, filename, lineno, fuzz_error.message);

	/*
	 * Bad input must get an errcode that says what is wrong with it; an
	 * ERROR without one is an elog(ERROR) "cannot happen" that happened.
	 */
	if (fuzz_error.sqlerrcode == 0 || fuzz_error.sqlerrcode == ERRCODE_INTERNAL_ERROR)
		FuzzFail("internal error at %s:%d (%s): %s",
				 filename, lineno, funcname, fuzz_error.message);
	if (fuzz_catch == NULL)
		FuzzFail("ERROR outside the harness's catcher at %s:%d: %s",
				 filename, lineno, fuzz_error.message);
	siglongjmp(*fuzz_catch, 1);
}

int
errcode(int sqlerrcode)
{
	fuzz_error.sqlerrcode = sqlerrcode;
	return 0;
}

int
errmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(fuzz_error.message, sizeof(fuzz_error.message), fmt, ap);
	va_end(ap);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(fuzz_error.message, sizeof(fuzz_error.message), fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(fuzz_error.detail, sizeof(fuzz_error.detail), fmt, ap);
	va_end(ap);
	return 0;
}

int
errhint(const char *fmt,...)
{
	char		hint[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(hint, sizeof(hint), fmt, ap);
	va_end(ap);
	return 0;
}

/* The explanation's recursion is bounded by the trees' depth (at most 64). */
void
check_stack_depth(void)
{
}

/* No interrupt is ever pending, so CHECK_FOR_INTERRUPTS() never calls this. */
void
ProcessInterrupts(void)
{
	FuzzFail("ProcessInterrupts called with no interrupt pending");
}

/* ---------------------------------------------------------- text and fmgr */

bool
pg_verifymbstr(const char *mbstr, int len, bool noError)
{
	bool		ok = pg_encoding_verifymbstr(PG_UTF8, mbstr, len) == len;

	if (!ok && !noError)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\"")));
	return ok;
}

/* Harness-built varlenas are never toasted: a plain 4-byte header. */
struct varlena *
pg_detoast_datum(struct varlena *datum)
{
	if (VARATT_IS_EXTENDED(datum))
		FuzzFail("a toasted or short-header datum reached the stub detoaster");
	return datum;
}

struct varlena *
pg_detoast_datum_packed(struct varlena *datum)
{
	if (VARATT_IS_EXTERNAL(datum) || VARATT_IS_COMPRESSED(datum))
		FuzzFail("a toasted datum reached the stub detoaster");
	return datum;
}

text *
cstring_to_text(const char *s)
{
	Size		len = strlen(s);
	text	   *t = palloc(len + VARHDRSZ);

	SET_VARSIZE(t, len + VARHDRSZ);
	memcpy(VARDATA(t), s, len);
	return t;
}

char *
text_to_cstring(const text *t)
{
	text	   *plain = (text *) pg_detoast_datum_packed((struct varlena *) t);

	return pnstrdup(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
}

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	result = (*func) (fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "function %p returned NULL", (void *) func);
	return result;
}

Datum
DirectFunctionCall3Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2,
						Datum arg3)
{
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 3, collation, NULL, NULL);
	fcinfo->args[0].value = arg1;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = arg2;
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = arg3;
	fcinfo->args[2].isnull = false;
	result = (*func) (fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "function %p returned NULL", (void *) func);
	return result;
}

/*
 * Set-returning functions: the "tuplestore" is a token, and each row goes
 * to the harness's hook to be checked.
 */
static int	fuzz_tuplestore_token;

void
InitMaterializedSRF(FunctionCallInfo fcinfo, bits32 flags)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		FuzzFail("a set-returning function was called without a ReturnSetInfo");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = (Tuplestorestate *) &fuzz_tuplestore_token;
	rsinfo->setDesc = rsinfo->expectedDesc;
}

void
tuplestore_putvalues(Tuplestorestate *state, TupleDesc tdesc,
					 Datum *values, bool *isnull)
{
	if (state != (Tuplestorestate *) &fuzz_tuplestore_token)
		FuzzFail("a row was put into a tuplestore InitMaterializedSRF did not make");
	if (fuzz_row_hook)
		fuzz_row_hook(tdesc, values, isnull);
}
