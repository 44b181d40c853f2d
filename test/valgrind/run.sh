#!/usr/bin/env bash
# The pg_regress suite against a server running under valgrind memcheck.
#
#   bash test/valgrind/run.sh [TEST...]      (or: make -C test/valgrind check)
#
# Builds a copy of the checkout with -O1 -g, installs it into a private copy
# of the PostgreSQL 15 tree (the system installation is never written to),
# starts that tree's postgres under valgrind with --trace-children=yes so
# that every forked backend and worker is covered, runs the pg_regress tests
# (REGRESS in the Makefile, or the tests named on the command line, which
# need the tests before them in REGRESS) one pg_regress call at a time in one
# database, stops the server and prints a summary: per-test results and
# times, the errors with a credit_risk.so frame in their stack (with the
# stacks), errors elsewhere, and suppressed noise.  Exit status 0 only when
# every test passed and valgrind reported no unsuppressed error.  See
# test/valgrind/README.md.
#
# Environment:
#   CR_VG_REV            a commit to test (git archive) instead of the
#                        working tree (tracked and untracked files, as
#                        scripts/test.sh copies them)
#   CR_VG_PORT           port of the server (default 56300; unix socket only)
#   CR_VG_TEST_TIMEOUT   seconds one test may take (default 7200)
#   CR_VG_TRACK_ORIGINS  yes|no, valgrind --track-origins (default yes)
#   CR_VG_PRELOAD        shared_preload_libraries (default empty; pg_cron
#                        gives the configuration of scripts/cluster.sh)
#   CR_VG_COPT           compiler flags added to PGXS's (default -O1 -g
#                        -fno-omit-frame-pointer)
#   CR_VG_ERROR_EXITCODE valgrind --error-exitcode (default 1: see README.md)
#   CR_VG_SUPPRESSIONS   suppressions file (default postgres.supp here;
#                        /dev/null shows everything)
#   CR_VG_VALGRIND_OPTS  extra valgrind options, appended
#   CR_VG_KEEP           1 keeps the work directory after a clean run
#   PG_CONFIG            a path or a command on PATH (default
#                        /usr/lib/postgresql/15/bin/pg_config)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PORT=${CR_VG_PORT:-56300}
TEST_TIMEOUT=${CR_VG_TEST_TIMEOUT:-7200}
TRACK_ORIGINS=${CR_VG_TRACK_ORIGINS:-yes}
PRELOAD=${CR_VG_PRELOAD:-}
ERROR_EXITCODE=${CR_VG_ERROR_EXITCODE:-1}
COPT_VG=${CR_VG_COPT:--O1 -g -fno-omit-frame-pointer}
SUPPRESSIONS=${CR_VG_SUPPRESSIONS:-$HERE/postgres.supp}
STARTUP_TIMEOUT=600

T=
VG_PID=
SERVER_UP=

die() { echo "valgrind run: $*" >&2; exit 1; }

# initdb refuses to run as root: as root, everything in the work directory
# is built, owned and run by "postgres"; otherwise by the current user.
if [ "$(id -u)" -eq 0 ]; then
	as_tester() { (cd / && runuser -u postgres -- "$@"); }
else
	as_tester() { "$@"; }
fi

git_root() { git -c safe.directory="$ROOT" -C "$ROOT" "$@"; }

psql_vg() {
	as_tester "$DEST$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"
}

# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
	local rc=$1
	trap - EXIT
	if [ -n "$SERVER_UP" ]; then
		echo "valgrind run: stopping the server after a failure" >&2
		as_tester "$DEST$BINDIR/pg_ctl" -D "$DATA" -m immediate -w -t 120 stop >/dev/null 2>&1 || true
	fi
	if [ -n "$VG_PID" ]; then
		wait "$VG_PID" 2>/dev/null || true
	fi
	if [ -n "$T" ]; then
		if [ "$rc" -eq 0 ] && [ "${CR_VG_KEEP:-0}" != 1 ]; then
			rm -rf "$T"
		else
			echo "valgrind run: work directory kept: $T" >&2
		fi
	fi
	exit "$rc"
}

# Bash reads a script while it runs it; the body is a function so that the
# whole run is parsed first, and editing this file cannot upset a run.
main() {
	case $PORT in '' | *[!0-9]*) die "CR_VG_PORT must be a port number, not \"$PORT\"" ;; esac
	case $TEST_TIMEOUT in '' | *[!0-9]*) die "CR_VG_TEST_TIMEOUT must be a number of seconds" ;; esac
	case $ERROR_EXITCODE in '' | *[!0-9]*) die "CR_VG_ERROR_EXITCODE must be a number" ;; esac
	case $TRACK_ORIGINS in yes | no) ;; *) die "CR_VG_TRACK_ORIGINS must be yes or no" ;; esac
	[ -r "$SUPPRESSIONS" ] || die "cannot read the suppressions file $SUPPRESSIONS"
	command -v valgrind >/dev/null || die "valgrind is not installed (Debian: apt-get install valgrind)"
	# the top-level Makefile passes its PG_CONFIG, "pg_config" by default
	PG_CONFIG=$(command -v "$PG_CONFIG") || die "no pg_config: $PG_CONFIG"

	BINDIR=$("$PG_CONFIG" --bindir)
	PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
	SHAREDIR=$("$PG_CONFIG" --sharedir)
	PGHOME=$(dirname "$BINDIR")
	# PostgreSQL finds its lib and share directories relative to its binary,
	# so a copy of the two trees under another root is a whole installation.
	case $PKGLIBDIR in "$PGHOME"/*) ;; *) die "$PKGLIBDIR is not under $PGHOME: cannot relocate this layout" ;; esac

	RUN_START=$(date +%s)
	T=$(mktemp -d /tmp/credit_risk-valgrind.XXXXXX)
	trap 'cleanup $?' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	BUILD=$T/build
	DEST=$T/root
	SOCK=$T/sock
	VGDIR=$T/vg
	OUT=$T/out
	DATA=$T/data
	SERVER_LOG=$T/postgres.log
	TESTS_TSV=$T/tests.tsv
	echo "== work directory $T"
	mkdir -p "$BUILD" "$DEST" "$SOCK" "$VGDIR" "$OUT"
	# a copy: readable by the server's user, and fixed for the whole run
	cp "$SUPPRESSIONS" "$T/suppressions.supp"

	if [ -n "${CR_VG_REV:-}" ]; then
		local rev
		rev=$(git_root rev-parse --verify "${CR_VG_REV}^{commit}") ||
			die "CR_VG_REV=$CR_VG_REV is not a commit"
		echo "== copy $ROOT at $rev"
		git_root archive "$rev" | tar -C "$BUILD" -xf -
	else
		echo "== copy $ROOT (working tree)"
		# tracked and untracked-but-not-ignored files, as scripts/test.sh does
		git_root ls-files -z -co --exclude-standard |
			while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done |
			tar -C "$ROOT" --null -T - -cf - | tar -C "$BUILD" -xf -
	fi

	echo "== private PostgreSQL tree under $DEST"
	mkdir -p "$DEST$(dirname "$PGHOME")" "$DEST$(dirname "$SHAREDIR")"
	cp -a "$PGHOME" "$DEST$(dirname "$PGHOME")/"
	cp -a "$SHAREDIR" "$DEST$(dirname "$SHAREDIR")/"
	# whatever credit_risk the system has goes, so that only this build loads
	rm -rf "$DEST$PKGLIBDIR/credit_risk.so" "$DEST$PKGLIBDIR/bitcode/credit_risk" \
		"$DEST$PKGLIBDIR/bitcode/credit_risk.index.bc" "$DEST$SHAREDIR"/extension/credit_risk[.-]*
	local lib
	for lib in ${PRELOAD//,/ }; do
		[ -f "$DEST$PKGLIBDIR/$lib.so" ] || die "preload library $lib.so is not in $PKGLIBDIR"
	done
	[ "$(id -u)" -ne 0 ] || chown -R postgres: "$T"

	echo "== build (COPT=$COPT_VG) and install into $DEST"
	as_tester make -s -C "$BUILD" PG_CONFIG="$PG_CONFIG" COPT="$COPT_VG" >"$T/build.log" 2>&1 ||
		{ tail -n 30 "$T/build.log" >&2; die "build failed (log: $T/build.log)"; }
	as_tester make -C "$BUILD" install DESTDIR="$DEST" PG_CONFIG="$PG_CONFIG" >>"$T/build.log" 2>&1 ||
		{ tail -n 30 "$T/build.log" >&2; die "install failed (log: $T/build.log)"; }
	cmp -s "$BUILD/credit_risk.so" "$DEST$PKGLIBDIR/credit_risk.so" ||
		die "$DEST$PKGLIBDIR/credit_risk.so is not this build"

	local tests t
	if [ $# -gt 0 ]; then
		tests=("$@")
	else
		# shellcheck disable=SC2016  # $(REGRESS) is make's
		read -r -a tests <<<"$(make -s -C "$BUILD" --no-print-directory PG_CONFIG="$PG_CONFIG" \
			--eval 'cr-print-regress: ; @echo $(REGRESS)' cr-print-regress)"
	fi
	for t in "${tests[@]}"; do
		[ -f "$BUILD/test/sql/$t.sql" ] || die "no test named $t (test/sql/$t.sql)"
	done
	echo "   tests: ${tests[*]}"

	echo "== initdb"
	as_tester "$DEST$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$T/initdb.log" 2>&1 ||
		{ cat "$T/initdb.log" >&2; die "initdb failed"; }
	# As scripts/cluster.sh configures its cluster, except: unix socket only;
	# no preload unless asked (no regression test needs pg_cron loaded); no
	# JIT (LLVM under valgrind is slow and is not our code); and logging that
	# lets the summary tell which test a process served.
	as_tester tee -a "$DATA/postgresql.conf" >/dev/null <<-EOF

		# written by test/valgrind/run.sh
		port = $PORT
		listen_addresses = ''
		unix_socket_directories = '$SOCK'
		shared_preload_libraries = '$PRELOAD'
		cron.database_name = 'postgres'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		jit = off
		huge_pages = off
		authentication_timeout = 10min
		log_line_prefix = '%m [%p] %b %a '
		log_connections = on
	EOF

	# shellcheck disable=SC2054  # the commas belong to --error-markers
	local vg_opts=(
		--tool=memcheck
		--trace-children=yes
		--leak-check=no
		--error-exitcode="$ERROR_EXITCODE"
		--gen-suppressions=all
		--suppressions="$T/suppressions.supp"
		--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
		--show-error-list=yes
		--time-stamp=yes
		--num-callers=40
		--track-origins="$TRACK_ORIGINS"
		--read-inline-info=yes
		--read-var-info=yes
		--fullpath-after="$BUILD/"
		--log-file="$VGDIR/vg.%p.log"
	)
	# shellcheck disable=SC2206  # split into words on purpose
	vg_opts+=(${CR_VG_VALGRIND_OPTS:-})

	echo "== postgres under valgrind on port $PORT (socket in $SOCK)"
	echo "   valgrind ${vg_opts[*]}"
	VG_START=$(date +%s.%N)
	as_tester valgrind "${vg_opts[@]}" "$DEST$BINDIR/postgres" -D "$DATA" >"$SERVER_LOG" 2>&1 &
	VG_PID=$!
	SERVER_UP=1
	local waited=0
	until as_tester "$DEST$BINDIR/pg_isready" -q -h "$SOCK" -p "$PORT" -U postgres -d postgres; do
		kill -0 "$VG_PID" 2>/dev/null || { tail -n 20 "$SERVER_LOG" >&2; die "the server exited during startup"; }
		[ "$waited" -lt "$STARTUP_TIMEOUT" ] || die "the server did not accept connections in ${STARTUP_TIMEOUT}s"
		sleep 1
		waited=$((waited + 1))
	done
	echo "   ready after ${waited}s"

	# A backend maps this build, and nothing from the system's tree.
	psql_vg -At -d postgres -c "LOAD 'credit_risk'" \
		-c "SELECT pg_backend_pid() || ' ' || line
		      FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\\n') AS line
		     WHERE line ~ 'credit_risk|/bin/postgres'" >"$T/maps.txt"
	grep -q " $DEST$PKGLIBDIR/credit_risk.so\$" "$T/maps.txt" ||
		die "the backend did not map $DEST$PKGLIBDIR/credit_risk.so (see $T/maps.txt)"
	! grep -q " $PKGLIBDIR/credit_risk.so\$" "$T/maps.txt" ||
		die "the backend mapped the system's $PKGLIBDIR/credit_risk.so"
	grep -q " $DEST$BINDIR/postgres\$" "$T/maps.txt" || die "the backend is not $DEST$BINDIR/postgres"
	echo "   backend $(head -n1 "$T/maps.txt" | cut -d' ' -f1) maps $DEST$PKGLIBDIR/credit_risk.so"

	# One pg_regress call per test, through PGXS's installcheck as in
	# scripts/test.sh: the first creates the database, the others reuse it.
	# The windows in tests.tsv place errors of processes that are no test's
	# own backend (parallel and autovacuum workers).
	echo "== pg_regress under valgrind (timeout ${TEST_TIMEOUT}s a test)"
	printf 'test\tresult\tms\tstart\tend\n' >"$TESTS_TSV"
	local extra='' start end rc line ms result
	for t in "${tests[@]}"; do
		start=$(date +%s.%N)
		set +e
		as_tester env PGHOST="$SOCK" PGPORT="$PORT" PGUSER=postgres \
			timeout -k 60 "$TEST_TIMEOUT" \
			make -C "$BUILD" --no-print-directory installcheck PG_CONFIG="$PG_CONFIG" TAP_TESTS= \
			REGRESS="$t" EXTRA_REGRESS_OPTS="$extra" >"$OUT/$t.log" 2>&1
		rc=$?
		set -e
		end=$(date +%s.%N)
		line=$(grep -E "^(test )? *$t +\.\.\. " "$OUT/$t.log" || true)
		ms=$(sed -nE 's/.* ([0-9]+) ms$/\1/p' <<<"$line")
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			result=timeout
			# a backend notices that its client is gone only when it writes
			psql_vg -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE application_name = 'pg_regress/$t'" >/dev/null 2>&1 || true
		elif grep -q '\.\.\. ok' <<<"$line"; then
			result=ok
		elif grep -q '\.\.\. FAILED' <<<"$line"; then
			result=FAILED
		else
			result=error
		fi
		if [ -f "$BUILD/regression.diffs" ]; then
			cp "$BUILD/regression.diffs" "$OUT/$t.diffs"
			rm -f "$BUILD/regression.diffs"
		fi
		printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$result" "${ms:--}" "$start" "$end" >>"$TESTS_TSV"
		printf '   %-16s %-8s %8.1f s\n' "$t" "$result" "$(awk "BEGIN { print $end - $start }")"
		extra=--use-existing
	done

	echo "== stop the server"
	as_tester "$DEST$BINDIR/pg_ctl" -D "$DATA" -m fast -w -t 900 stop >/dev/null ||
		die "the server did not stop"
	SERVER_UP=
	# the postmaster's valgrind writes its summary after the pid file is gone
	set +e
	wait "$VG_PID"
	rc=$?
	set -e
	VG_PID=
	echo "   postmaster (under valgrind) exit status $rc"

	set +e
	perl "$HERE/summarize.pl" --vgdir "$VGDIR" --server-log "$SERVER_LOG" --tests "$TESTS_TSV" \
		--src "$BUILD/src" --vg-start "$VG_START" --run-start "$RUN_START" --workdir "$T" |
		tee "$T/summary.txt"
	rc=${PIPESTATUS[0]}
	set -e
	exit "$rc"
}

main "$@"
