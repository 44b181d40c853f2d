#!/usr/bin/env bash
# Random training sets through cr_train on a server that loads credit_risk
# built with AddressSanitizer and UndefinedBehaviorSanitizer.
#
#   test/sanitize/run.sh [CASES] [SEED] [driver options]
#   test/sanitize/run.sh --seed S --only N[,N...]     replay cases by number
#   make -C test/sanitize check CASES=5000 SEED=1
#
# It copies the checkout to /tmp, builds it with -fsanitize=address,undefined,
# and installs that build into a private copy of the PostgreSQL tree
# (/usr/lib/postgresql/15 and /usr/share/postgresql/15 under a temporary
# root: the server finds its lib and share directories next to its own
# binary), so the system's PostgreSQL is never touched.  The server runs with
# the ASan runtime preloaded, first proves that deliberate bugs are reported
# (canary.c), then driver.py runs the cases.  A case fails on an SQLSTATE of
# class XX, a backend that dies, or a sanitizer report in the server log.
#
# Options of this script: --keep keeps the temporary directory (it is kept
# anyway when something fails).  Everything else goes to driver.py (--only,
# --start, --skip, --batch, --max-trees, ...; driver.py --help).
# Environment: CR_SANITIZE_PORT (default 56231; use 56200-56299).
#
# As root, the build and the server run as "postgres" (initdb refuses root).
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$BIN/pg_config
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PORT=${CR_SANITIZE_PORT:-56231}
SAN_FLAGS="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

CASES=300
SEED=1
KEEP=
npos=0
DRIVER_ARGS=()
while [ $# -gt 0 ]; do
	case $1 in
		--keep) KEEP=1 ;;
		--seed) SEED=$2; shift ;;
		--cases) CASES=$2; shift ;;
		-h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
		-*) DRIVER_ARGS+=("$1")
			# options with a value
			case $1 in
				--only | --start | --skip | --inject | --batch | --statement-timeout | --batch-timeout | \
					--max-rows | --max-features | --max-trees)
					DRIVER_ARGS+=("$2"); shift ;;
			esac ;;
		*)
			case $npos in
				0) CASES=$1 ;;
				1) SEED=$1 ;;
				*) echo "run.sh: unexpected argument \"$1\"" >&2; exit 2 ;;
			esac
			npos=$((npos + 1)) ;;
	esac
	shift
done
case "$CASES$SEED$PORT" in
	*[!0-9]*) echo "run.sh: CASES, SEED and CR_SANITIZE_PORT must be numbers" >&2; exit 2 ;;
esac

die() { echo "run.sh: $*" >&2; exit 1; }
for tool in gcc make python3 "$BIN/psql"; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
ASAN_LIB=$(gcc -print-file-name=libasan.so)
[ -e "$ASAN_LIB" ] || die "the ASan runtime (libasan, Debian package libgcc-12-dev) is missing"
[ -e "$(gcc -print-file-name=libubsan.so)" ] || die "the UBSan runtime (libubsan) is missing"

if [ "$(id -u)" -eq 0 ]; then
	OWNER=postgres
	as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
	OWNER=$(id -un)
	as_owner() { "$@"; }
fi

WORK=$(mktemp -d /tmp/credit_risk-sanitize.XXXXXX)
chmod 755 "$WORK"
T0=$(date +%s)
SRC=$WORK/src
DEST=$WORK/root
PGBIN=$DEST$($PG_CONFIG --bindir)
RUN=$WORK/run
LOG=$WORK/server.log
started=

finish() {
	local rc=$1
	trap - EXIT
	if [ -n "$started" ]; then
		as_owner env -u LD_PRELOAD "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	if [ "$rc" -eq 0 ] && [ -z "$KEEP" ]; then
		rm -rf "$WORK"
	else
		echo "run.sh: build, cluster and server log kept in $WORK" >&2
	fi
	exit "$rc"
}
trap 'finish $?' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "== copy $ROOT to $SRC"
mkdir -p "$SRC"
if git -c safe.directory="$ROOT" -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	git -c safe.directory="$ROOT" -C "$ROOT" ls-files -z -co --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$ROOT/$f" ] && printf '%s\0' "$f"; done |
		tar -C "$ROOT" --null -T - -cf - | tar -C "$SRC" -xf -
	echo "   at $(git -c safe.directory="$ROOT" -C "$ROOT" log -1 --format='%h %s' | cut -c1-100)"
else
	# a copy such as scripts/test.sh's: leave its clusters and test output behind
	tar -C "$ROOT" --exclude=./.git --exclude=./.cluster --exclude=./tmp_check --exclude=./results \
		--exclude=./log -cf - . | tar -C "$SRC" -xf -
	make -s -C "$SRC" clean PG_CONFIG="$PG_CONFIG" >/dev/null
fi

# The private PostgreSQL tree: the same paths as the system's, under $DEST.
echo "== private PostgreSQL tree in $DEST"
for d in "$(dirname "$($PG_CONFIG --bindir)")" "$($PG_CONFIG --sharedir)"; do
	mkdir -p "$DEST$(dirname "$d")"
	cp -a "$d" "$DEST$d"
done
mkdir -p "$RUN" "$WORK/san"
[ "$(id -u)" -ne 0 ] || chown -R "$OWNER": "$WORK"

echo "== build with $SAN_FLAGS"
# with_llvm=no: no JIT bitcode (the server runs with jit = off anyway)
as_owner make -s -C "$SRC" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" with_llvm=no COPT="$SAN_FLAGS" >"$WORK/build.log" 2>&1 ||
	{ cat "$WORK/build.log"; die "the sanitized build failed"; }
as_owner make -s -C "$SRC" install PG_CONFIG="$PG_CONFIG" with_llvm=no COPT="$SAN_FLAGS" DESTDIR="$DEST" >>"$WORK/build.log" 2>&1 ||
	{ cat "$WORK/build.log"; die "installing into $DEST failed"; }
LIB=$DEST$($PG_CONFIG --pkglibdir)/credit_risk.so
grep -q " U __asan_init" <<<"$(nm -D "$LIB")" || die "$LIB is not instrumented"
as_owner gcc -shared -fPIC -O2 -Wall -o "$WORK/san/preload.so" "$HERE/preload.c"
as_owner gcc -shared -fPIC $SAN_FLAGS -Wall -I"$($PG_CONFIG --includedir-server)" \
	-o "$WORK/san/canary.so" "$HERE/canary.c"
[ "$(as_owner "$PGBIN/pg_config" --pkglibdir)" = "$DEST$($PG_CONFIG --pkglibdir)" ] ||
	die "the copied tree does not find its own lib directory"

echo "== cluster on port $PORT (socket in $RUN)"
as_owner "$PGBIN/initdb" -D "$WORK/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
	{ cat "$WORK/initdb.log"; die "initdb failed"; }
cat >>"$WORK/data/postgresql.conf" <<EOF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$RUN'
shared_preload_libraries = 'credit_risk'     # its serving statistics and progress run too
jit = off
fsync = off
full_page_writes = off
max_connections = 20
log_line_prefix = '%m [%p] '
restart_after_crash = on
EOF
# ASan and UBSan write their reports to stderr, which is the server log.
# preload.c explains the second preloaded library.
as_owner env LD_PRELOAD="$ASAN_LIB $WORK/san/preload.so" \
	ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:disable_coredump=1:detect_stack_use_after_return=1:max_malloc_fill_size=262144" \
	UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1:disable_coredump=1" \
	"$PGBIN/pg_ctl" -D "$WORK/data" -l "$LOG" -w -t 60 start >/dev/null </dev/null ||
	{ cat "$LOG"; die "the server did not start"; }
started=1

# Prove the server runs this build: the backend maps the credit_risk.so of
# the private tree and the ASan runtime.
maps=$(env -u PGOPTIONS "$BIN/psql" -X -q -At -h "$RUN" -p "$PORT" -U postgres -d postgres -c "LOAD 'credit_risk'" \
	-c "SELECT DISTINCT substring(line from '(/\S+)\$') FROM regexp_split_to_table(pg_read_file('/proc/self/maps'), E'\n') AS line
	     WHERE line ~ '/(credit_risk\.so|libasan[^/]*)\$'")
echo "$maps" | sed 's/^/   backend maps /'
grep -qx "$LIB" <<<"$maps" || die "the server did not load $LIB"
grep -q libasan <<<"$maps" || die "the server does not have the ASan runtime loaded"
[ -z "$(grep -v -e "^$LIB\$" -e libasan <<<"$maps")" ] || die "the server loaded another credit_risk.so"

echo "== $( [ -n "$(printf '%s\n' "${DRIVER_ARGS[@]}" | grep -x -e --only)" ] && echo "replay" || echo "$CASES cases"), seed $SEED ($(($(date +%s) - T0)) s of setup)"
set +e
python3 "$HERE/driver.py" --host "$RUN" --port "$PORT" --log "$LOG" --cases "$CASES" --seed "$SEED" \
	--canary "$WORK/san/canary.so" --failures-dir "$WORK/failures" \
	--replay "$HERE/run.sh" "${DRIVER_ARGS[@]}"
rc=$?
set -e
echo "== $(($(date +%s) - T0)) s in all"
exit $rc
