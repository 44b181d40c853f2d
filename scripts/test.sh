#!/usr/bin/env bash
# The whole test suite in one command, from a fresh Debian 12 machine:
#
#   bash scripts/test.sh        (as root; or as a user once the packages are in)
#
# It builds a copy of the checkout with warnings as errors, installs it, runs
# the pg_regress tests against a throwaway cluster and the TAP tests (which
# make their own clusters), then the sanitizer slice (test/sanitize) and a
# fuzz smoke run (test/fuzz), and ends with the line "N passed, N failed"
# (before it, the TAP files that skipped themselves, if any),
# counting pg_regress tests, TAP test files, the slice and the smoke run.  CR_TEST_PORT sets the throwaway cluster's port
# (default 55438).
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$BIN/pg_config
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_PORT=${CR_TEST_PORT:-55438}

WORK=
STEP="installing dependencies"
planned=-1     # tests the run should report; unknown until the copy is made
passed=0
failed=0
reported=0     # tests that have reported, passed or failed
skipped=0      # TAP files that skipped themselves (what they need is not installed)

# initdb refuses to run as root, and the TAP tests run initdb: as root,
# build and test as "postgres"; otherwise as the current user.
if [ "$(id -u)" -eq 0 ]; then
	as_tester() { (cd / && runuser -u postgres -- env PATH="$BIN:$PATH" "$@"); }
else
	as_tester() { env PATH="$BIN:$PATH" "$@"; }
fi

cluster() { CR_PORT=$TEST_PORT bash "$WORK/scripts/cluster.sh" "$@"; }

finish() {
	local rc=$1
	trap - EXIT
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		cluster stop --destroy >/dev/null 2>&1 || true
	fi
	if [ -n "$STEP" ]; then
		# stopped early: whatever did not run did not pass
		echo "test.sh: failed while $STEP" >&2
		rc=1
		if [ "$planned" -ge 0 ]; then
			failed=$((failed + planned - reported))
		else
			failed=$((failed + 1))
		fi
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]; then
			rm -rf "$WORK"
		else
			echo "test.sh: build and logs kept in $WORK" >&2
		fi
	fi
	[ "$skipped" -eq 0 ] || echo "$skipped skipped (listed above), not counted as passed"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] || rc=1
	exit "$rc"
}
trap 'finish $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== dependencies"
bash "$ROOT/scripts/install-deps.sh"

# Build and test in a copy: the checkout may not be readable by "postgres"
# (e.g. under /root), and the checkout stays free of build products.
STEP="copying the checkout"
WORK=$(mktemp -d /tmp/credit_risk-test.XXXXXX)
echo "== copy $ROOT to $WORK"
if git -c safe.directory="$ROOT" -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	# tracked and untracked-but-not-ignored files that exist on disk
	git -c safe.directory="$ROOT" -C "$ROOT" ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done |
		tar -C "$ROOT" --null -T - -cf - | tar -C "$WORK" -xf -
else
	tar -C "$ROOT" --exclude=./.git --exclude=./.cluster -cf - . | tar -C "$WORK" -xf -
	make -s -C "$WORK" clean PG_CONFIG="$PG_CONFIG" >/dev/null
fi
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$WORK"

regress_tests=$(make -s -C "$WORK" --no-print-directory PG_CONFIG="$PG_CONFIG" \
	--eval 'cr-print-regress: ; @echo $(REGRESS)' cr-print-regress)
tap_files=$(cd "$WORK" && ls test/t/*.pl 2>/dev/null || true)
n_regress=$(wc -w <<<"$regress_tests")
n_tap=$(wc -w <<<"$tap_files")
planned=$((n_regress + n_tap + 2))
echo "   $n_regress pg_regress tests: $regress_tests"
echo "   $n_tap TAP test files:" $tap_files
echo "   1 sanitizer slice: 300 random training sets under ASan/UBSan (test/sanitize)"
echo "   1 fuzz smoke run: each libFuzzer harness from its corpus (test/fuzz)"
for t in $regress_tests; do
	# pg_regress reads test/sql/NAME.sql and test/expected/NAME.out (--inputdir=test)
	[ -f "$WORK/test/sql/$t.sql" ] || echo "   warning: test/sql/$t.sql does not exist" >&2
	[ -f "$WORK/test/expected/$t.out" ] || echo "   warning: test/expected/$t.out does not exist" >&2
done

STEP="building (make CR_WERROR=-Werror)"
echo "== build, warnings are errors"
as_tester make -C "$WORK" PG_CONFIG="$PG_CONFIG" CR_WERROR=-Werror

STEP="installing the extension"
echo "== install"
pkglibdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
if [ "$(id -u)" -eq 0 ] || { [ -w "$pkglibdir" ] && [ -w "$extdir" ]; }; then
	make -C "$WORK" install PG_CONFIG="$PG_CONFIG"
elif command -v sudo >/dev/null; then
	sudo make -C "$WORK" install PG_CONFIG="$PG_CONFIG"
elif [ -f "$extdir/credit_risk.control" ]; then
	# Nothing can install this build; the tests then exercise whatever copy
	# is installed, which may be older than the checkout.
	echo "WARNING: cannot install into $pkglibdir (not root, no sudo): testing the" >&2
	echo "WARNING: credit_risk already installed there, not necessarily this build" >&2
else
	echo "test.sh: cannot install into $pkglibdir and $extdir: run as root, or install sudo" >&2
	exit 1
fi

STEP="starting the throwaway cluster"
echo "== throwaway cluster on port $TEST_PORT"
cluster start
eval "$(cluster env)"

# make stops a recipe at its first failing command, so pg_regress and the
# TAP tests run as two installcheck calls: a pg_regress failure must not hide
# the TAP results.
STEP="running pg_regress"
echo "== pg_regress (make installcheck, TAP tests off)"
set +e
as_tester env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres \
	make -C "$WORK" installcheck PG_CONFIG="$PG_CONFIG" TAP_TESTS= 2>&1 |
	tee "$WORK/pg_regress.log"
regress_rc=${PIPESTATUS[0]}
set -e
# one line per test: "test NAME ... ok" (or "     NAME ... ok" in a group)
r_ok=$(grep -cE '^(test )? *[^ ]+ +\.\.\. ok' "$WORK/pg_regress.log" || true)
r_bad=$(grep -cE '^(test )? *[^ ]+ +\.\.\. FAILED' "$WORK/pg_regress.log" || true)
if [ "$regress_rc" -ne 0 ] && [ $((r_ok + r_bad)) -lt "$n_regress" ]; then
	# pg_regress stopped before reporting every test
	r_bad=$((n_regress - r_ok))
fi
passed=$((passed + r_ok))
failed=$((failed + r_bad))
reported=$((reported + n_regress))
if [ "$regress_rc" -ne 0 ]; then
	echo "== pg_regress failed (exit $regress_rc)"
	if [ -f "$WORK/regression.diffs" ]; then
		echo "== regression.diffs"
		cat "$WORK/regression.diffs"
	fi
fi
cluster stop

# The TAP tests find initdb and pg_ctl on PATH and make their own clusters;
# they get no PGHOST/PGPORT so they cannot reach the throwaway cluster.
STEP="running the TAP tests"
echo "== TAP tests (make installcheck, pg_regress off)"
unset PGHOST PGPORT PGUSER PGDATABASE
set +e
as_tester make -C "$WORK" installcheck PG_CONFIG="$PG_CONFIG" REGRESS= 2>&1 |
	tee "$WORK/tap.log"
tap_rc=${PIPESTATUS[0]}
set -e
# prove lists each failing file under "Test Summary Report"
tap_failed=$(grep -oE '^[^ ]+\.pl +\(Wstat:' "$WORK/tap.log" | cut -d' ' -f1 || true)
t_bad=$(wc -w <<<"$tap_failed")
if [ "$tap_rc" -ne 0 ] && [ "$t_bad" -eq 0 ]; then
	t_bad=$n_tap    # prove did not get as far as a summary
fi
# a file that skips itself ("... skipped: why") has not passed
grep -E '^test/t/[^ ]+\.pl \.+ skipped:' "$WORK/tap.log" | sed 's/^/== skipped: /' || true
skipped=$(grep -cE '^test/t/[^ ]+\.pl \.+ skipped:' "$WORK/tap.log" || true)
passed=$((passed + n_tap - t_bad - skipped))
failed=$((failed + t_bad))
reported=$((reported + n_tap))
if [ "$tap_rc" -ne 0 ]; then
	echo "== TAP tests failed (exit $tap_rc)"
	# the logs of the failing files (regress_log_NAME, NAME_NODE.log), or all
	logs=()
	for t in $tap_failed; do
		name=$(basename "$t" .pl)
		logs+=("$WORK/tmp_check/log/regress_log_$name" "$WORK/tmp_check/log/${name}_"*.log)
	done
	[ ${#logs[@]} -gt 0 ] || logs=("$WORK"/tmp_check/log/*)
	for f in "${logs[@]}"; do
		[ -f "$f" ] || continue
		echo "== $f"
		cat "$f"
	done
fi

# Random training sets through cr_train on a server that loads an
# ASan/UBSan build of its own, in a private copy of PostgreSQL under /tmp
# (the installed build is not touched).
STEP="running the sanitizer slice"
echo "== sanitizer slice (test/sanitize/run.sh 300 1)"
set +e
bash "$WORK/test/sanitize/run.sh" 300 1
san_rc=$?
set -e
if [ "$san_rc" -eq 0 ]; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi
reported=$((reported + 1))

# The libFuzzer harnesses (model decoder, params, XGBoost import and export)
# from their corpus of real models, a short run each; no server needed.
STEP="running the fuzz smoke run"
echo "== fuzz smoke run (make -C test/fuzz smoke)"
set +e
as_tester make -C "$WORK/test/fuzz" smoke PG_CONFIG="$PG_CONFIG"
fuzz_rc=$?
set -e
if [ "$fuzz_rc" -eq 0 ]; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi
reported=$((reported + 1))

STEP=
[ "$regress_rc" -eq 0 ] && [ "$tap_rc" -eq 0 ] && [ "$san_rc" -eq 0 ] && [ "$fuzz_rc" -eq 0 ]
