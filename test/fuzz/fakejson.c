/*
 * fakejson.c
 *	  A small JSON parser of our own, and stand-ins for the jsonb API that
 *	  walk its trees instead of PostgreSQL's on-disk jsonb format.
 *
 * The params parser (ParamsParse in src/params.c) sees a Jsonb only through
 * JB_ROOT_IS_OBJECT, JsonContainerIsArray/IsObject/Size (a container's first
 * word), JsonbIteratorInit/JsonbIteratorNext, and numeric_out (through
 * DatasetNumericToDouble in src/dataset.c).  So a "container" here is that
 * first word (the real flag bits and count) followed by a pointer to a
 * parsed node, and the iterator hands out the same token sequence and
 * JsonbValues as the real one: BEGIN, then KEY/VALUE pairs or ELEMs, then
 * END, then DONE; nested containers as jbvBinary when skipNested is set.
 * Objects behave as jsonb_in leaves them: keys unique (the last duplicate
 * wins) and ordered shorter first, then bytewise.  The XGBoost import
 * (src/xgboost.c) looks values up instead, with
 * getKeyJsonValueFromContainer and getIthJsonbValueFromContainer, and reads
 * numbers with numeric_float8_no_overflow; their stand-ins give the same
 * JsonbValues and keep the real ones' contracts (an object's key, an
 * array's element, NULL when absent).
 *
 * The effective params (ParamsToJsonb) are built with pushJsonbValue and
 * JsonbValueToJsonb.  The stand-ins build the same tree of JsonbValues as
 * the real pushJsonbValue, with its checks, and turn it into one of our
 * containers.  Their numbers come from numeric_in, whose stand-in takes
 * only what jsonb_in would read as a JSON number: the stored params must
 * be bytes that jsonb_in could have made of JSON text.
 *
 * What the parser accepts is meant to be what jsonb_in accepts: RFC 8259
 * syntax, no \u0000, no unpaired surrogates, no unescaped control
 * characters.  A number keeps its text, which numeric_out returns (the
 * same value as numeric's canonical text; "-0" becomes "0", as numeric
 * has no negative zero).  Numbers beyond even numeric's range, which
 * jsonb_in would reject up front, get through here, and are out of range
 * for a double when converted.  float8_numeric keeps DBL_DIG significant
 * digits, as the real one does.
 *
 * None of PostgreSQL's jsonb code is used or copied: this tests the code
 * that walks a Jsonb, not the jsonb format.
 */
#include "postgres.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/numeric.h"

#include "fakejson.h"
#include "pgstub.h"

/*
 * Deeper nesting is refused (the input is skipped).  jsonb_in allows more,
 * but the params parser never descends into nested values, and this bounds
 * the recursion here.
 */
#define FJ_MAX_DEPTH		200
#define FJ_CONTAINER_MAGIC	0x464A434Eu	/* "FJCN" */
#define FJ_NUMERIC_MAGIC	0x464A4E4Du	/* "FJNM" */

typedef enum FjKind
{
	FJ_NULL,
	FJ_BOOL,
	FJ_NUMBER,
	FJ_STRING,
	FJ_ARRAY,
	FJ_OBJECT
} FjKind;

/* What a jbvNumeric's Numeric points to: a varlena, as a real one is. */
typedef struct FjNumeric
{
	int32		vl_len_;
	uint32		magic;
	char	   *text;			/* what numeric_out returns */
} FjNumeric;

static FjNumeric *
MakeNumeric(char *text)
{
	FjNumeric  *num = palloc0(sizeof(FjNumeric));

	SET_VARSIZE(num, sizeof(FjNumeric));
	num->magic = FJ_NUMERIC_MAGIC;
	num->text = text;
	return num;
}

/* A container: the real flag word, then our node. */
typedef struct FjContainer
{
	uint32		header;
	uint32		magic;
	const FjNode *node;
} FjContainer;

struct FjNode
{
	FjKind		kind;
	bool		boolean;
	char	   *str;			/* string value or number text, not terminated */
	int			len;
	FjNumeric  *numeric;
	int			n;				/* elements, or pairs */
	FjNode	  **keys;			/* objects: n string nodes */
	FjNode	  **items;			/* values or elements */
	int			textlen;		/* bytes of source text, for jbvBinary.len */
	FjContainer *container;
};

/* ------------------------------------------------------------------ parser */

typedef struct FjParser
{
	const char *s;
	int			len;
	int			pos;
	const char *error;
} FjParser;

static FjNode *ParseValue(FjParser *p, int depth);

static void
SkipSpace(FjParser *p)
{
	while (p->pos < p->len &&
		   (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
			p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
		p->pos++;
}

static FjNode *
NewNode(FjKind kind)
{
	FjNode	   *n = palloc0(sizeof(FjNode));

	n->kind = kind;
	return n;
}

static int
HexDigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits after "\u"; -1 when malformed. */
static int
ReadHex4(FjParser *p)
{
	int			v = 0;

	if (p->len - p->pos < 4)
		return -1;
	for (int i = 0; i < 4; i++)
	{
		int			d = HexDigit(p->s[p->pos + i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	p->pos += 4;
	return v;
}

static void
AppendUtf8(StringInfo buf, uint32 cp)
{
	if (cp < 0x80)
		appendStringInfoChar(buf, (char) cp);
	else if (cp < 0x800)
	{
		appendStringInfoChar(buf, (char) (0xC0 | (cp >> 6)));
		appendStringInfoChar(buf, (char) (0x80 | (cp & 0x3F)));
	}
	else if (cp < 0x10000)
	{
		appendStringInfoChar(buf, (char) (0xE0 | (cp >> 12)));
		appendStringInfoChar(buf, (char) (0x80 | ((cp >> 6) & 0x3F)));
		appendStringInfoChar(buf, (char) (0x80 | (cp & 0x3F)));
	}
	else
	{
		appendStringInfoChar(buf, (char) (0xF0 | (cp >> 18)));
		appendStringInfoChar(buf, (char) (0x80 | ((cp >> 12) & 0x3F)));
		appendStringInfoChar(buf, (char) (0x80 | ((cp >> 6) & 0x3F)));
		appendStringInfoChar(buf, (char) (0x80 | (cp & 0x3F)));
	}
}

static FjNode *
ParseString(FjParser *p)
{
	StringInfoData buf;
	FjNode	   *n;

	p->pos++;					/* the opening quote */
	initStringInfo(&buf);
	for (;;)
	{
		unsigned char c;

		if (p->pos >= p->len)
		{
			p->error = "unterminated string";
			return NULL;
		}
		c = (unsigned char) p->s[p->pos++];
		if (c == '"')
			break;
		if (c < 0x20)
		{
			p->error = "control character in a string";
			return NULL;
		}
		if (c != '\\')
		{
			appendStringInfoChar(&buf, (char) c);
			continue;
		}
		if (p->pos >= p->len)
		{
			p->error = "unterminated escape";
			return NULL;
		}
		c = (unsigned char) p->s[p->pos++];
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				appendStringInfoChar(&buf, (char) c);
				break;
			case 'b':
				appendStringInfoChar(&buf, '\b');
				break;
			case 'f':
				appendStringInfoChar(&buf, '\f');
				break;
			case 'n':
				appendStringInfoChar(&buf, '\n');
				break;
			case 'r':
				appendStringInfoChar(&buf, '\r');
				break;
			case 't':
				appendStringInfoChar(&buf, '\t');
				break;
			case 'u':
				{
					int			cp = ReadHex4(p);

					if (cp < 0)
					{
						p->error = "bad \\u escape";
						return NULL;
					}
					if (cp == 0)
					{
						p->error = "\\u0000 cannot be converted to text";
						return NULL;
					}
					if (cp >= 0xDC00 && cp <= 0xDFFF)
					{
						p->error = "low surrogate without a high one";
						return NULL;
					}
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						int			lo;

						if (p->len - p->pos < 2 || p->s[p->pos] != '\\' ||
							p->s[p->pos + 1] != 'u')
						{
							p->error = "high surrogate without a low one";
							return NULL;
						}
						p->pos += 2;
						lo = ReadHex4(p);
						if (lo < 0xDC00 || lo > 0xDFFF)
						{
							p->error = "high surrogate without a low one";
							return NULL;
						}
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					AppendUtf8(&buf, (uint32) cp);
					break;
				}
			default:
				p->error = "bad escape";
				return NULL;
		}
	}

	/* an exact-size copy, so reading past a string's length is caught */
	n = NewNode(FJ_STRING);
	n->len = buf.len;
	n->str = palloc(Max(buf.len, 1));
	memcpy(n->str, buf.data, buf.len);
	pfree(buf.data);
	return n;
}

static bool
IsDigit(char c)
{
	return c >= '0' && c <= '9';
}

static FjNode *
ParseNumber(FjParser *p)
{
	int			start = p->pos;
	FjNode	   *n;
	char	   *text;
	bool		zero;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (p->pos < p->len && p->s[p->pos] == '0')
		p->pos++;
	else if (p->pos < p->len && IsDigit(p->s[p->pos]))
		while (p->pos < p->len && IsDigit(p->s[p->pos]))
			p->pos++;
	else
	{
		p->error = "bad number";
		return NULL;
	}
	if (p->pos < p->len && p->s[p->pos] == '.')
	{
		p->pos++;
		if (p->pos >= p->len || !IsDigit(p->s[p->pos]))
		{
			p->error = "bad fraction";
			return NULL;
		}
		while (p->pos < p->len && IsDigit(p->s[p->pos]))
			p->pos++;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
	{
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (p->pos >= p->len || !IsDigit(p->s[p->pos]))
		{
			p->error = "bad exponent";
			return NULL;
		}
		while (p->pos < p->len && IsDigit(p->s[p->pos]))
			p->pos++;
	}

	n = NewNode(FJ_NUMBER);
	n->len = p->pos - start;
	n->str = palloc(n->len);
	memcpy(n->str, p->s + start, n->len);

	/* a zero ("-0", "-0.0e7") prints unsigned: numeric has no negative zero */
	zero = true;
	for (int i = 0; i < n->len && n->str[i] != 'e' && n->str[i] != 'E'; i++)
		if (n->str[i] >= '1' && n->str[i] <= '9')
			zero = false;
	text = pnstrdup(n->str + (zero && n->str[0] == '-'), n->len - (zero && n->str[0] == '-'));
	n->numeric = MakeNumeric(text);
	return n;
}

static bool
MatchWord(FjParser *p, const char *word)
{
	int			wlen = strlen(word);

	if (p->len - p->pos < wlen || memcmp(p->s + p->pos, word, wlen) != 0)
		return false;
	p->pos += wlen;
	return true;
}

/* jsonb's key order: shorter first, then bytewise. */
static int
KeyOrder(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

static int
KeyCmp(const FjNode *a, const FjNode *b)
{
	return KeyOrder(a->str, a->len, b->str, b->len);
}

typedef struct FjPair
{
	FjNode	   *key;
	FjNode	   *value;
	int			order;
} FjPair;

static int
PairCmp(const void *a, const void *b)
{
	const FjPair *pa = a;
	const FjPair *pb = b;
	int			c = KeyCmp(pa->key, pb->key);

	if (c != 0)
		return c;
	/* equal keys: the later one first, so that it is the one kept */
	return pa->order > pb->order ? -1 : 1;
}

static FjNode *
ParseContainer(FjParser *p, int depth, bool object)
{
	FjNode	   *n = NewNode(object ? FJ_OBJECT : FJ_ARRAY);
	int			start = p->pos;
	int			cap = 4;
	FjPair	   *pairs = palloc(sizeof(FjPair) * cap);
	char		close = object ? '}' : ']';

	p->pos++;					/* the opening bracket */
	SkipSpace(p);
	if (p->pos < p->len && p->s[p->pos] == close)
		p->pos++;
	else
	{
		for (;;)
		{
			FjNode	   *key = NULL;
			FjNode	   *value;

			SkipSpace(p);
			if (object)
			{
				if (p->pos >= p->len || p->s[p->pos] != '"')
				{
					p->error = "expected a key";
					return NULL;
				}
				key = ParseString(p);
				if (key == NULL)
					return NULL;
				SkipSpace(p);
				if (p->pos >= p->len || p->s[p->pos] != ':')
				{
					p->error = "expected a colon";
					return NULL;
				}
				p->pos++;
			}
			value = ParseValue(p, depth + 1);
			if (value == NULL)
				return NULL;
			if (n->n == cap)
			{
				cap *= 2;
				pairs = repalloc(pairs, sizeof(FjPair) * cap);
			}
			pairs[n->n].key = key;
			pairs[n->n].value = value;
			pairs[n->n].order = n->n;
			n->n++;
			SkipSpace(p);
			if (p->pos < p->len && p->s[p->pos] == ',')
			{
				p->pos++;
				continue;
			}
			if (p->pos < p->len && p->s[p->pos] == close)
			{
				p->pos++;
				break;
			}
			p->error = "expected a comma or a closing bracket";
			return NULL;
		}
	}

	if (object && n->n > 1)
	{
		int			out = 1;

		qsort(pairs, n->n, sizeof(FjPair), PairCmp);
		for (int i = 1; i < n->n; i++)
			if (KeyCmp(pairs[i].key, pairs[out - 1].key) != 0)
				pairs[out++] = pairs[i];
		n->n = out;
	}
	n->items = palloc(sizeof(FjNode *) * Max(n->n, 1));
	if (object)
		n->keys = palloc(sizeof(FjNode *) * Max(n->n, 1));
	for (int i = 0; i < n->n; i++)
	{
		n->items[i] = pairs[i].value;
		if (object)
			n->keys[i] = pairs[i].key;
	}
	pfree(pairs);
	n->textlen = p->pos - start;
	return n;
}

static FjNode *
ParseValue(FjParser *p, int depth)
{
	FjNode	   *n;

	if (depth > FJ_MAX_DEPTH)
	{
		p->error = "nested too deeply";
		return NULL;
	}
	SkipSpace(p);
	if (p->pos >= p->len)
	{
		p->error = "unexpected end of input";
		return NULL;
	}
	switch (p->s[p->pos])
	{
		case '{':
			return ParseContainer(p, depth, true);
		case '[':
			return ParseContainer(p, depth, false);
		case '"':
			return ParseString(p);
		case '-':
		case '0':
		case '1':
		case '2':
		case '3':
		case '4':
		case '5':
		case '6':
		case '7':
		case '8':
		case '9':
			n = ParseNumber(p);
			break;
		default:
			if (MatchWord(p, "true"))
			{
				n = NewNode(FJ_BOOL);
				n->boolean = true;
			}
			else if (MatchWord(p, "false"))
				n = NewNode(FJ_BOOL);
			else if (MatchWord(p, "null"))
				n = NewNode(FJ_NULL);
			else
			{
				p->error = "unexpected character";
				return NULL;
			}
			break;
	}
	/* a number or word runs into letters or digits: "truex", "1x" */
	if (n != NULL && p->pos < p->len &&
		(isalnum((unsigned char) p->s[p->pos]) || p->s[p->pos] == '_'))
	{
		p->error = "junk after a token";
		return NULL;
	}
	return n;
}

FjNode *
FjParse(const char *text, int len, const char **error)
{
	FjParser	p = {text, len, 0, NULL};
	FjNode	   *root = ParseValue(&p, 0);

	if (root != NULL)
	{
		SkipSpace(&p);
		if (p.pos != p.len)
		{
			p.error = "text after the value";
			root = NULL;
		}
	}
	if (root == NULL)
		*error = p.error;
	return root;
}

/* ------------------------------------------------------------------ jsonb */

static FjContainer *
MakeContainer(void *where, const FjNode *node, bool raw_scalar)
{
	FjContainer *c = where;

	c->magic = FJ_CONTAINER_MAGIC;
	c->node = node;
	if (raw_scalar)
		c->header = JB_FSCALAR | JB_FARRAY | 1;
	else
		c->header = (node->kind == FJ_OBJECT ? JB_FOBJECT : JB_FARRAY) |
			((uint32) node->n & JB_CMASK);
	return c;
}

static void
AttachContainers(FjNode *n)
{
	if (n->kind != FJ_ARRAY && n->kind != FJ_OBJECT)
		return;
	n->container = MakeContainer(palloc(sizeof(FjContainer)), n, false);
	for (int i = 0; i < n->n; i++)
		AttachContainers(n->items[i]);
}

Jsonb *
FjToJsonb(FjNode *root)
{
	bool		scalar = root->kind != FJ_ARRAY && root->kind != FJ_OBJECT;

	/*
	 * The root container follows the varlena header, as in a real Jsonb;
	 * the header goes 4 bytes before an 8-aligned container.
	 */
	char	   *mem = palloc(8 + sizeof(FjContainer));
	Jsonb	   *jb = (Jsonb *) (mem + 4);

	AttachContainers(root);
	SET_VARSIZE(jb, 4 + sizeof(FjContainer));
	if (scalar)
		MakeContainer(mem + 8, root, true);
	else
		*(FjContainer *) (mem + 8) = *root->container;
	return jb;
}

static const FjContainer *
ContainerOf(JsonbContainer *jc)
{
	const FjContainer *c = (const FjContainer *) jc;

	if (c == NULL || c->magic != FJ_CONTAINER_MAGIC)
		FuzzFail("a jsonb container the stand-in did not make");
	return c;
}

typedef enum FjIterState
{
	FJI_START,
	FJI_ELEM,
	FJI_KEY,
	FJI_VALUE
} FjIterState;

typedef struct FjIter
{
	const FjNode *node;
	bool		raw_scalar;
	FjIterState state;
	int			index;
	struct FjIter *parent;
} FjIter;

JsonbIterator *
JsonbIteratorInit(JsonbContainer *container)
{
	const FjContainer *c = ContainerOf(container);
	FjIter	   *it = palloc0(sizeof(FjIter));

	it->node = c->node;
	it->raw_scalar = (c->header & JB_FSCALAR) != 0;
	it->state = FJI_START;
	return (JsonbIterator *) it;
}

static void
FillValue(JsonbValue *val, const FjNode *n)
{
	switch (n->kind)
	{
		case FJ_NULL:
			val->type = jbvNull;
			break;
		case FJ_BOOL:
			val->type = jbvBool;
			val->val.boolean = n->boolean;
			break;
		case FJ_NUMBER:
			val->type = jbvNumeric;
			val->val.numeric = (Numeric) n->numeric;
			break;
		case FJ_STRING:
			val->type = jbvString;
			val->val.string.val = n->str;
			val->val.string.len = n->len;
			break;
		case FJ_ARRAY:
		case FJ_OBJECT:
			val->type = jbvBinary;
			val->val.binary.data = (JsonbContainer *) n->container;
			val->val.binary.len = n->textlen;
			break;
	}
}

static JsonbIteratorToken
Descend(JsonbIterator **it, JsonbValue *val, const FjNode *child, bool skipNested)
{
	FjIter	   *sub;

	if (skipNested || (child->kind != FJ_ARRAY && child->kind != FJ_OBJECT))
		return WJB_DONE;		/* not descending */
	sub = (FjIter *) JsonbIteratorInit((JsonbContainer *) child->container);
	sub->parent = (FjIter *) *it;
	*it = (JsonbIterator *) sub;
	return JsonbIteratorNext(it, val, skipNested);
}

JsonbIteratorToken
JsonbIteratorNext(JsonbIterator **it, JsonbValue *val, bool skipNested)
{
	FjIter	   *i = (FjIter *) *it;
	int			nitems;
	JsonbIteratorToken tok;

	if (i == NULL)
		return WJB_DONE;
	nitems = i->raw_scalar ? 1 : i->node->n;
	switch (i->state)
	{
		case FJI_START:
			if (!i->raw_scalar && i->node->kind == FJ_OBJECT)
			{
				val->type = jbvObject;
				val->val.object.nPairs = nitems;
				val->val.object.pairs = NULL;
				i->state = FJI_KEY;
				return WJB_BEGIN_OBJECT;
			}
			val->type = jbvArray;
			val->val.array.nElems = nitems;
			val->val.array.elems = NULL;
			val->val.array.rawScalar = i->raw_scalar;
			i->state = FJI_ELEM;
			return WJB_BEGIN_ARRAY;
		case FJI_ELEM:
			if (i->index >= nitems)
			{
				*it = (JsonbIterator *) i->parent;
				pfree(i);
				return WJB_END_ARRAY;
			}
			{
				const FjNode *e = i->raw_scalar ? i->node : i->node->items[i->index];

				i->index++;
				FillValue(val, e);
				tok = Descend(it, val, e, skipNested);
				return tok != WJB_DONE ? tok : WJB_ELEM;
			}
		case FJI_KEY:
			if (i->index >= nitems)
			{
				*it = (JsonbIterator *) i->parent;
				pfree(i);
				return WJB_END_OBJECT;
			}
			FillValue(val, i->node->keys[i->index]);
			i->state = FJI_VALUE;
			return WJB_KEY;
		case FJI_VALUE:
			{
				const FjNode *v = i->node->items[i->index];

				i->index++;
				i->state = FJI_KEY;
				FillValue(val, v);
				tok = Descend(it, val, v, skipNested);
				return tok != WJB_DONE ? tok : WJB_VALUE;
			}
	}
	FuzzFail("jsonb stand-in iterator in a bad state");
}

/*
 * getKeyJsonValueFromContainer: the value of a key of an object, NULL when
 * it has none.  The real one Asserts that the container is an object (and
 * would read an array's elements as keys), so calling it on anything else
 * is a finding here.  The value is written to res, or to a palloc'd
 * JsonbValue when res is NULL; nested containers come back as jbvBinary.
 */
JsonbValue *
getKeyJsonValueFromContainer(JsonbContainer *container, const char *keyVal,
							 int keyLen, JsonbValue *res)
{
	const FjContainer *c = ContainerOf(container);
	const FjNode *n = c->node;
	int			lo = 0;
	int			hi;

	if ((c->header & JB_FOBJECT) == 0)
		FuzzFail("getKeyJsonValueFromContainer on a container that is not an object");
	hi = n->n;
	/* the keys are in jsonb's order, as the real lookup's binary search needs */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			cmp = KeyOrder(n->keys[mid]->str, n->keys[mid]->len, keyVal, keyLen);

		if (cmp == 0)
		{
			if (res == NULL)
				res = palloc(sizeof(JsonbValue));
			FillValue(res, n->items[mid]);
			return res;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * getIthJsonbValueFromContainer: element i of an array (a raw scalar is a
 * one-element array), palloc'd; NULL past the end.  Not an array is the
 * real one's elog(ERROR), which the stand-in errfinish reports as a finding.
 */
JsonbValue *
getIthJsonbValueFromContainer(JsonbContainer *container, uint32 i)
{
	const FjContainer *c = ContainerOf(container);
	bool		raw_scalar = (c->header & JB_FSCALAR) != 0;
	JsonbValue *res;

	if ((c->header & JB_FARRAY) == 0)
		elog(ERROR, "not a jsonb array");
	if (i >= (raw_scalar ? 1u : (uint32) c->node->n))
		return NULL;
	res = palloc(sizeof(JsonbValue));
	FillValue(res, raw_scalar ? c->node : c->node->items[i]);
	return res;
}

void
FjAppend(StringInfo out, const FjNode *n)
{
	switch (n->kind)
	{
		case FJ_NULL:
			appendStringInfoString(out, "null");
			break;
		case FJ_BOOL:
			appendStringInfoString(out, n->boolean ? "true" : "false");
			break;
		case FJ_NUMBER:
			/* as the real JsonbToCString: numeric_out's text ("-0" is "0") */
			appendStringInfoString(out, n->numeric->text);
			break;
		case FJ_STRING:
			{
				char	   *s = pnstrdup(n->str, n->len);

				escape_json(out, s);
				pfree(s);
				break;
			}
		case FJ_ARRAY:
		case FJ_OBJECT:
			appendStringInfoChar(out, n->kind == FJ_OBJECT ? '{' : '[');
			for (int i = 0; i < n->n; i++)
			{
				if (i > 0)
					appendStringInfoString(out, ", ");
				if (n->kind == FJ_OBJECT)
				{
					FjAppend(out, n->keys[i]);
					appendStringInfoString(out, ": ");
				}
				FjAppend(out, n->items[i]);
			}
			appendStringInfoChar(out, n->kind == FJ_OBJECT ? '}' : ']');
			break;
	}
}

char *
JsonbToCString(StringInfo out, JsonbContainer *in, int estimated_len)
{
	const FjContainer *c = ContainerOf(in);

	if (out == NULL)
		out = makeStringInfo();
	FjAppend(out, c->node);
	return out->data;
}

/*
 * jsonb_in: text the parser rejects gets jsonb_in's ERROR, so a caller
 * that builds JSON text learns whether it is valid.
 */
Datum
jsonb_in(PG_FUNCTION_ARGS)
{
	char	   *text = PG_GETARG_CSTRING(0);
	int			len = strlen(text);
	const char *error = NULL;
	FjNode	   *root;

	if (!pg_verifymbstr(text, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid byte sequence for encoding \"UTF8\"")));
	root = FjParse(text, len, &error);
	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type json"),
				 errdetail("%s: %s", error, text)));
	PG_RETURN_POINTER(FjToJsonb(root));
}

static const FjNumeric *
NumericOf(Datum d)
{
	const FjNumeric *num = (const FjNumeric *) DatumGetPointer(d);

	if (num == NULL || num->magic != FJ_NUMERIC_MAGIC)
		FuzzFail("a numeric the stand-in did not make");
	return num;
}

Datum
numeric_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(pstrdup(NumericOf(PG_GETARG_DATUM(0))->text));
}

/*
 * numeric_float8_no_overflow: the double nearest the number, as strtod
 * reads numeric's text; a value past the double range is infinite and a
 * tiny one 0 or subnormal, with no ERROR (which is what "no overflow"
 * means: ERANGE is ignored).
 */
Datum
numeric_float8_no_overflow(PG_FUNCTION_ARGS)
{
	const FjNumeric *num = NumericOf(PG_GETARG_DATUM(0));
	char	   *end;
	double		d = strtod(num->text, &end);

	if (end == num->text || *end != '\0')
		FuzzFail("numeric text \"%s\" that strtod does not read", num->text);
	PG_RETURN_FLOAT8(d);
}

Datum
float8_numeric(PG_FUNCTION_ARGS)
{
	double		d = PG_GETARG_FLOAT8(0);
	char		buf[64];

	if (isnan(d))
		strcpy(buf, "NaN");
	else if (isinf(d))
		strcpy(buf, d > 0 ? "Infinity" : "-Infinity");
	else
		snprintf(buf, sizeof(buf), "%.*g", DBL_DIG, d);
	PG_RETURN_POINTER(MakeNumeric(pstrdup(buf)));
}

/*
 * numeric_in: only the text of a JSON number, as jsonb_in hands it a
 * number token; anything else (the real one also takes "NaN", " 1", ".5")
 * would store bytes that no JSON text could have.
 */
Datum
numeric_in(PG_FUNCTION_ARGS)
{
	char	   *text = PG_GETARG_CSTRING(0);
	int			len = strlen(text);
	const char *error = NULL;
	FjNode	   *n = FjParse(text, len, &error);

	if (n == NULL || n->kind != FJ_NUMBER || n->len != len)
		FuzzFail("numeric_in of \"%s\", which is not a JSON number", text);
	PG_RETURN_POINTER(n->numeric);
}

/* JSON string syntax for str, quotes included. */
void
escape_json(StringInfo buf, const char *str)
{
	appendStringInfoChar(buf, '"');
	for (const char *p = str; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		switch (c)
		{
			case '"':
				appendStringInfoString(buf, "\\\"");
				break;
			case '\\':
				appendStringInfoString(buf, "\\\\");
				break;
			case '\b':
				appendStringInfoString(buf, "\\b");
				break;
			case '\f':
				appendStringInfoString(buf, "\\f");
				break;
			case '\n':
				appendStringInfoString(buf, "\\n");
				break;
			case '\r':
				appendStringInfoString(buf, "\\r");
				break;
			case '\t':
				appendStringInfoString(buf, "\\t");
				break;
			default:
				if (c < 0x20)
					appendStringInfo(buf, "\\u%04x", c);
				else
					appendStringInfoChar(buf, (char) c);
		}
	}
	appendStringInfoChar(buf, '"');
}

/* ---------------------------------------------------- building a jsonb */

/*
 * pushJsonbValue as the real one builds its tree: a stack of open
 * containers, a finished one added to its parent, an object's keys sorted
 * when it ends.  Misuse that the real one would Assert or elog about is a
 * finding here, and so is a key pushed twice: jsonb would silently keep
 * one, and the params writer never means to write one twice.  The caller
 * sees only a JsonbParseState pointer, so the stack is our own struct.
 */
typedef struct FjPushState
{
	JsonbValue	cont;			/* jbvObject or jbvArray */
	int			cap;
	bool		key_pending;	/* an object's last key awaits its value */
	struct FjPushState *next;
} FjPushState;

static void
AppendToContainer(FjPushState *ps, JsonbIteratorToken seq, const JsonbValue *v)
{
	JsonbValue *c = &ps->cont;

	if (c->type == jbvObject)
	{
		JsonbPair  *pairs;

		if (seq == WJB_KEY && !ps->key_pending)
		{
			if (v->type != jbvString)
				FuzzFail("pushJsonbValue: a key of type %d", (int) v->type);
			if (c->val.object.nPairs == ps->cap)
			{
				ps->cap *= 2;
				c->val.object.pairs = repalloc(c->val.object.pairs, sizeof(JsonbPair) * ps->cap);
			}
			pairs = c->val.object.pairs;
			pairs[c->val.object.nPairs].key = *v;
			pairs[c->val.object.nPairs].order = c->val.object.nPairs;
			c->val.object.nPairs++;
			ps->key_pending = true;
			return;
		}
		if (seq != WJB_VALUE || !ps->key_pending)
			FuzzFail("pushJsonbValue: token %d in an object, not after a key", (int) seq);
		c->val.object.pairs[c->val.object.nPairs - 1].value = *v;
		ps->key_pending = false;
		return;
	}
	if (seq != WJB_ELEM)
		FuzzFail("pushJsonbValue: token %d in an array", (int) seq);
	if (c->val.array.nElems == ps->cap)
	{
		ps->cap *= 2;
		c->val.array.elems = repalloc(c->val.array.elems, sizeof(JsonbValue) * ps->cap);
	}
	c->val.array.elems[c->val.array.nElems++] = *v;
}

static int
PushedPairCmp(const void *a, const void *b)
{
	const JsonbPair *pa = a;
	const JsonbPair *pb = b;

	return KeyOrder(pa->key.val.string.val, pa->key.val.string.len,
					pb->key.val.string.val, pb->key.val.string.len);
}

JsonbValue *
pushJsonbValue(JsonbParseState **pstate, JsonbIteratorToken seq, JsonbValue *jbval)
{
	FjPushState *top = (FjPushState *) *pstate;
	FjPushState *ps;
	JsonbValue *done;

	switch (seq)
	{
		case WJB_BEGIN_OBJECT:
		case WJB_BEGIN_ARRAY:
			if (top != NULL && top->cont.type == jbvObject && !top->key_pending)
				FuzzFail("pushJsonbValue: a container in an object, not after a key");
			ps = palloc0(sizeof(FjPushState));
			ps->cap = 4;
			ps->next = top;
			if (seq == WJB_BEGIN_OBJECT)
			{
				ps->cont.type = jbvObject;
				ps->cont.val.object.pairs = palloc(sizeof(JsonbPair) * ps->cap);
			}
			else
			{
				ps->cont.type = jbvArray;
				ps->cont.val.array.elems = palloc(sizeof(JsonbValue) * ps->cap);
			}
			*pstate = (JsonbParseState *) ps;
			return &ps->cont;
		case WJB_KEY:
		case WJB_VALUE:
		case WJB_ELEM:
			if (top == NULL || jbval == NULL)
				FuzzFail("pushJsonbValue: token %d outside a container", (int) seq);
			if (!IsAJsonbScalar(jbval))
				FuzzFail("pushJsonbValue: a value of type %d (the stand-in takes scalars)",
						 (int) jbval->type);
			AppendToContainer(top, seq, jbval);
			return &top->cont;
		case WJB_END_OBJECT:
		case WJB_END_ARRAY:
			if (top == NULL || top->key_pending ||
				top->cont.type != (seq == WJB_END_OBJECT ? jbvObject : jbvArray))
				FuzzFail("pushJsonbValue: token %d closes no such container", (int) seq);
			if (seq == WJB_END_OBJECT)
			{
				JsonbPair  *pairs = top->cont.val.object.pairs;
				int			n = top->cont.val.object.nPairs;

				qsort(pairs, n, sizeof(JsonbPair), PushedPairCmp);
				for (int i = 1; i < n; i++)
					if (PushedPairCmp(&pairs[i - 1], &pairs[i]) == 0)
						FuzzFail("pushJsonbValue: key \"%.*s\" pushed twice",
								 pairs[i].key.val.string.len, pairs[i].key.val.string.val);
			}
			done = palloc(sizeof(JsonbValue));
			*done = top->cont;
			*pstate = (JsonbParseState *) top->next;
			if (top->next != NULL)
				AppendToContainer(top->next,
								  top->next->cont.type == jbvObject ? WJB_VALUE : WJB_ELEM,
								  done);
			return done;
		case WJB_DONE:
			break;
	}
	FuzzFail("pushJsonbValue: token %d", (int) seq);
}

/* A tree of JsonbValues as one of our nodes. */
static FjNode *
NodeFromValue(const JsonbValue *v)
{
	FjNode	   *n;

	switch (v->type)
	{
		case jbvNull:
			return NewNode(FJ_NULL);
		case jbvBool:
			n = NewNode(FJ_BOOL);
			n->boolean = v->val.boolean;
			return n;
		case jbvNumeric:
			{
				FjNumeric  *num = (FjNumeric *) v->val.numeric;

				if (num == NULL || num->magic != FJ_NUMERIC_MAGIC)
					FuzzFail("a numeric the stand-in did not make");
				n = NewNode(FJ_NUMBER);
				n->str = num->text;
				n->len = strlen(num->text);
				n->numeric = num;
				return n;
			}
		case jbvString:
			n = NewNode(FJ_STRING);
			n->len = v->val.string.len;
			n->str = palloc(Max(n->len, 1));
			memcpy(n->str, v->val.string.val, n->len);
			return n;
		case jbvArray:
			n = NewNode(FJ_ARRAY);
			n->n = v->val.array.nElems;
			n->items = palloc(sizeof(FjNode *) * Max(n->n, 1));
			for (int i = 0; i < n->n; i++)
				n->items[i] = NodeFromValue(&v->val.array.elems[i]);
			return n;
		case jbvObject:
			n = NewNode(FJ_OBJECT);
			n->n = v->val.object.nPairs;
			n->keys = palloc(sizeof(FjNode *) * Max(n->n, 1));
			n->items = palloc(sizeof(FjNode *) * Max(n->n, 1));
			for (int i = 0; i < n->n; i++)
			{
				n->keys[i] = NodeFromValue(&v->val.object.pairs[i].key);
				n->items[i] = NodeFromValue(&v->val.object.pairs[i].value);
			}
			return n;
		default:
			break;
	}
	FuzzFail("JsonbValueToJsonb: a value of type %d", (int) v->type);
}

Jsonb *
JsonbValueToJsonb(JsonbValue *val)
{
	return FjToJsonb(NodeFromValue(val));
}
