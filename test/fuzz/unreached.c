/*
 * unreached.c
 *	  Functions the linked sources name but the harnesses never reach:
 *	  loading a source (and reporting its progress), the registry, and the
 *	  backend's SPI, catalog, GUC and tuple machinery.  Each one aborts, so
 *	  if a change ever makes a harness reach one, the fuzzer reports it
 *	  instead of running on a stub that does nothing.
 *
 * They are declared here without their real prototypes (nothing in this
 * file includes the headers that declare them): they are never called,
 * only linked.
 */
#include <stdio.h>
#include <stdlib.h>

static void
Unreached(const char *name)
{
	fprintf(stderr, "credit_risk fuzz: %s was called, but no harness should reach it\n", name);
	abort();
}

#define UNREACHED(name) \
	void name(void); \
	void name(void) { Unreached(#name); }

/*
 * The project's other modules: what the SQL-callable functions of
 * src/inspect.c (cr_coefficients) and src/dataset.c's loaders call.
 */
UNREACHED(HugeAlloc)
UNREACHED(HugeFree)
UNREACHED(HugeRealloc)
UNREACHED(ProgressPhase)
UNREACHED(ProgressRows)
UNREACHED(RegistryLookup)
UNREACHED(RegistryNameArg)
UNREACHED(RegistryVersionArg)

/*
 * What the SQL-callable cr_import_xgboost (src/xgboost.c) and cr_export
 * (src/export.c) call around the parts fuzz_xgboost runs: settings, the
 * registry, a baseline's scoring and drift, the params' and the export
 * document's jsonb operators.
 */
UNREACHED(CrCheckSettings)
UNREACHED(DriftBaselineBuild)
UNREACHED(PredictProbability)
UNREACHED(RegistryCheckName)
UNREACHED(RegistryInsertVersion)
UNREACHED(TrainBaselines)
UNREACHED(jsonb_concat)
UNREACHED(jsonb_delete)

/* SPI */
UNREACHED(SPI_connect)
UNREACHED(SPI_datumTransfer)
UNREACHED(SPI_execute_plan_extended)
UNREACHED(SPI_execute_with_args)
UNREACHED(SPI_finish)
UNREACHED(SPI_freeplan)
UNREACHED(SPI_getbinval)
UNREACHED(SPI_is_cursor_plan)
UNREACHED(SPI_prepare)
UNREACHED(SPI_result_code_string)

/* catalogs, names, types */
UNREACHED(RangeVarGetRelidExtended)
UNREACHED(ReleaseSysCache)
UNREACHED(SearchSysCache1)
UNREACHED(format_type_be)
UNREACHED(getTypeInputInfo)
UNREACHED(getTypeOutputInfo)
UNREACHED(lookup_type_cache)
UNREACHED(get_element_type)
UNREACHED(get_namespace_name)
UNREACHED(get_rel_name)
UNREACHED(get_rel_namespace)
UNREACHED(makeRangeVarFromNameList)
UNREACHED(quote_qualified_identifier)
UNREACHED(stringToQualifiedNameList)
UNREACHED(type_is_rowtype)

/* settings */
UNREACHED(AtEOXact_GUC)
UNREACHED(NewGUCNestLevel)
UNREACHED(set_config_option)

/* functions, tuples, arrays */
UNREACHED(DirectFunctionCall2Coll)
UNREACHED(FunctionCall2Coll)
UNREACHED(HeapTupleHeaderGetDatum)
UNREACHED(OidInputFunctionCall)
UNREACHED(OidOutputFunctionCall)
UNREACHED(get_call_result_type)
UNREACHED(slot_getsomeattrs_int)

/* arrays: a features argument */
UNREACHED(deconstruct_array)

/*
 * src/category.c: a value's text (its type's output function) and the
 * builder of levels from training rows; decoding a model only indexes
 * the levels it holds.
 */
UNREACHED(OutputFunctionCall)
UNREACHED(fmgr_info)
UNREACHED(repalloc_huge)
UNREACHED(type_is_enum)
