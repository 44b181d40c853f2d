/*
 * fakejson.h
 *	  JSON text to a tree, and stand-ins for the jsonb and numeric functions
 *	  the params code, the model reporters and the XGBoost import use
 *	  (JsonbIteratorInit/Next, getKeyJsonValueFromContainer,
 *	  getIthJsonbValueFromContainer, pushJsonbValue, JsonbValueToJsonb,
 *	  JsonbToCString, jsonb_in, numeric_in, numeric_out, float8_numeric,
 *	  numeric_float8_no_overflow, escape_json).  See fakejson.c for what is
 *	  and is not like the real thing.
 */
#ifndef CR_FUZZ_FAKEJSON_H
#define CR_FUZZ_FAKEJSON_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

typedef struct FjNode FjNode;

/*
 * Parse len bytes of JSON text (which must be valid UTF-8).  NULL, with
 * *error set, for text jsonb_in would reject.
 */
extern FjNode *FjParse(const char *text, int len, const char **error);

/* A Jsonb datum whose containers the stand-in iterator can walk. */
extern Jsonb *FjToJsonb(FjNode *root);

/* The tree as JSON text, numbers as numeric_out writes them. */
extern void FjAppend(StringInfo out, const FjNode *node);

#endif							/* CR_FUZZ_FAKEJSON_H */
