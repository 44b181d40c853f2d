EXTENSION = credit_risk
EXTVERSION = 0.2.0

MODULE_big = credit_risk
OBJS = \
	src/credit_risk.o \
	src/batch.o \
	src/batch_shards.o \
	src/calibrate.o \
	src/binning.o \
	src/category.o \
	src/dataset.o \
	src/drift.o \
	src/evaluate.o \
	src/explain.o \
	src/export.o \
	src/forest.o \
	src/gbm.o \
	src/gbm_bins.o \
	src/gbm_margin.o \
	src/gbm_dist.o \
	src/gbm_shard.o \
	src/holdout.o \
	src/hugemem.o \
	src/inspect.o \
	src/logit.o \
	src/metrics.o \
	src/model.o \
	src/params.o \
	src/partial.o \
	src/pipeline.o \
	src/predict.o \
	src/progress.o \
	src/publish.o \
	src/registry.o \
	src/registry_write.o \
	src/remote.o \
	src/report.o \
	src/scorecard.o \
	src/serving.o \
	src/statdist.o \
	src/threads.o \
	src/train.o \
	src/train_distributed.o \
	src/tune.o \
	src/xgboost.o

# The install script for a version is generated from sql/credit_risk.sql;
# upgrade steps (credit_risk--A--B.sql) are kept as released files, and so
# is 0.1.0's install script, which upgrades are tested from.
DATA = $(wildcard sql/*--*--*.sql) sql/$(EXTENSION)--0.1.0.sql
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $(CR_WERROR)
# OpenBLAS (BLAS and LAPACK for logistic regression) is loaded on the first
# fit, not with the module.  Its single-threaded build is preferred: the
# pthreads build starts helper threads in the backend.  Debian:
# libopenblas-serial-dev (or libopenblas-dev).
OPENBLAS_LIB := $(firstword $(wildcard /usr/lib/*/openblas-serial/libopenblas.so.0) libopenblas.so.0)
PG_CPPFLAGS += -DCR_OPENBLAS_LIB='"$(OPENBLAS_LIB)"'
# libpq: cr_publish reaches the shards itself
PG_CPPFLAGS += -I$(shell $(PG_CONFIG) --includedir)
SHLIB_LINK = -lpthread -lm -L$(shell $(PG_CONFIG) --libdir) -lpq

REGRESS = cr_setup cr_train cr_errors cr_predict cr_registry cr_model_bytes cr_gbm cr_batch cr_drift cr_monitor cr_pipeline cr_explain cr_xgboost cr_categorical cr_categorical_gbm cr_tune cr_woe cr_calibration cr_scorecard cr_distributed
# inputs in test/sql, expected outputs in test/expected
REGRESS_OPTS = --inputdir=test

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = $(DATA_built) tools/alertd/credit_risk_alertd regression.diffs regression.out results tmp_check

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql
	cp $< $@

# credit_risk_alertd forwards alerts to webhooks (libpq, libcurl); it is
# installed beside the server's programs.
ALERTD = tools/alertd/credit_risk_alertd
all: $(ALERTD)
$(ALERTD): tools/alertd/credit_risk_alertd.c
	$(CC) $(CFLAGS) -Wall -Wextra -Wno-unused-parameter $(CR_WERROR) -I$(shell $(PG_CONFIG) --includedir) \
		-o $@ $< -L$(shell $(PG_CONFIG) --libdir) -lpq -lcurl
install: install-alertd
.PHONY: install-alertd
install-alertd: $(ALERTD)
	$(INSTALL_PROGRAM) $(ALERTD) '$(DESTDIR)$(bindir)'

# PGXS tracks no header dependencies: every object depends on every header.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# Searching for crashes by machine (each has a README in its directory):
# random training under ASan/UBSan, pg_regress under valgrind memcheck, and
# the libFuzzer harnesses (decoder, params, xgboost).  None touches the installed
# PostgreSQL.
.PHONY: sanitize-check valgrind-check fuzz fuzz-smoke
sanitize-check:
	$(MAKE) -C test/sanitize check
valgrind-check:
	$(MAKE) -C test/valgrind check PG_CONFIG=$(PG_CONFIG)
fuzz:
	$(MAKE) -C test/fuzz run
fuzz-smoke:
	$(MAKE) -C test/fuzz smoke
