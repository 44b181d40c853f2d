#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for trying and testing credit_risk.
#
#   scripts/cluster.sh start            initdb if needed, start, wait until ready
#   scripts/cluster.sh stop [--destroy] stop it (--destroy also deletes its files)
#   scripts/cluster.sh status
#   scripts/cluster.sh psql [args...]   psql against it
#   scripts/cluster.sh env              eval "$(scripts/cluster.sh env)"
#
# The port is CR_PORT (default 55439; 5432 is refused, it belongs to the
# system's own cluster).  Files live in .cluster/ in the checkout, or under
# /tmp when the server's OS user cannot reach the checkout.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTED_PORT=${CR_PORT:-55439}

die() { echo "cluster: $*" >&2; exit 1; }

case $REQUESTED_PORT in
	'' | *[!0-9]*) die "CR_PORT must be a port number, not \"$REQUESTED_PORT\"" ;;
esac
[ "$REQUESTED_PORT" -ne 5432 ] || die "CR_PORT=5432 is the system cluster's port; pick another"
[ "$REQUESTED_PORT" -ge 1024 ] && [ "$REQUESTED_PORT" -le 65535 ] ||
	die "CR_PORT must be between 1024 and 65535, not $REQUESTED_PORT"

# initdb refuses to run as root, so root runs the server as "postgres";
# anyone else runs it as themselves.
if [ "$(id -u)" -eq 0 ]; then
	OWNER=postgres
	# from / so that the server never starts in a directory it cannot read
	as_owner() { (cd / && runuser -u postgres -- "$@"); }
else
	OWNER=$(id -un)
	as_owner() { "$@"; }
fi

# Pick the cluster's base directory: .cluster/ in the checkout when the
# owner can write there and the socket path stays short (unix socket paths
# are limited to about 107 bytes), otherwise a directory under /tmp named
# after the checkout, so each checkout still gets its own cluster.
choose_base() {
	local base=$ROOT/.cluster
	local reason=

	# "/.s.PGSQL.NNNNN" adds 16 bytes; a quote would break the config line
	if [ $((${#base} + 16)) -ge 100 ]; then
		reason="the socket path under $base would be too long"
	elif [[ $base == *"'"* ]]; then
		reason="$base contains a quote"
	else
		local made=
		if [ ! -d "$base" ] && mkdir -m 700 "$base" 2>/dev/null; then
			made=1
			[ "$(id -u)" -ne 0 ] || chown "$OWNER": "$base"
		fi
		# test(1) resolves the whole path, so this also checks that every
		# parent directory can be traversed by the owner
		if ! as_owner test -d "$base" -a -w "$base" -a -x "$base" 2>/dev/null; then
			reason="$OWNER cannot write to $base"
			[ -z "$made" ] || rmdir "$base"
		fi
	fi

	if [ -n "$reason" ]; then
		base=/tmp/credit_risk-$OWNER-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)
		echo "cluster: $reason; using $base instead" >&2
		if [ ! -d "$base" ]; then
			mkdir -m 700 "$base"
			[ "$(id -u)" -ne 0 ] || chown "$OWNER": "$base"
		fi
		# a shared /tmp: never use a directory someone else made
		[ "$(stat -c %U "$base")" = "$OWNER" ] || die "$base is not owned by $OWNER"
	fi
	BASE=$base
}

choose_base
PGDATA_DIR=$BASE/data
SOCKET_DIR=$BASE
LOGFILE=$BASE/postgres.log

running() {
	as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

# The port of the running server (line 4 of postmaster.pid), else the
# requested one.
port() {
	if running; then
		sed -n 4p "$PGDATA_DIR/postmaster.pid"
	else
		echo "$REQUESTED_PORT"
	fi
}

init_cluster() {
	echo "cluster: initdb in $PGDATA_DIR (as $OWNER)"
	# trust: a throwaway cluster, reachable only through its own socket
	# directory and 127.0.0.1
	as_owner "$BIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust \
		--encoding=UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 ||
		{ cat "$BASE/initdb.log" >&2; die "initdb failed"; }
	echo "include_if_exists = 'credit_risk_cluster.conf'" |
		as_owner tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
}

# Rewritten at every start so that CR_PORT takes effect.
write_conf() {
	as_owner tee "$PGDATA_DIR/credit_risk_cluster.conf" >/dev/null <<-EOF
		# written by scripts/cluster.sh at each start
		port = $REQUESTED_PORT
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$SOCKET_DIR'
		shared_preload_libraries = 'pg_cron'
		cron.database_name = 'postgres'
		# durability does not matter for a throwaway cluster
		fsync = off
		synchronous_commit = off
		full_page_writes = off
	EOF
}

cmd_start() {
	if running; then
		echo "cluster: already running in $PGDATA_DIR on port $(port)"
		return 0
	fi
	[ -f "$PGDATA_DIR/PG_VERSION" ] || init_cluster
	write_conf
	if ! as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOGFILE" -w -t 60 start >/dev/null; then
		tail -n 20 "$LOGFILE" >&2 || true
		die "could not start the server (log: $LOGFILE)"
	fi
	"$BIN/pg_isready" -q -h "$SOCKET_DIR" -p "$REQUESTED_PORT" -t 30 ||
		die "server started but does not accept connections (log: $LOGFILE)"
	echo "cluster: running in $PGDATA_DIR on port $REQUESTED_PORT"
}

cmd_stop() {
	if running; then
		as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null
		echo "cluster: stopped"
	else
		echo "cluster: not running"
	fi
	if [ "${1:-}" = --destroy ]; then
		rm -rf "$BASE"
		echo "cluster: deleted $BASE"
	elif [ -n "${1:-}" ]; then
		die "unknown option for stop: $1"
	fi
}

cmd_status() {
	if running; then
		echo "cluster: running in $PGDATA_DIR on port $(port), socket directory $SOCKET_DIR"
	elif [ -f "$PGDATA_DIR/PG_VERSION" ]; then
		echo "cluster: stopped ($PGDATA_DIR)"
		return 3
	else
		echo "cluster: not created (would live in $PGDATA_DIR)"
		return 3
	fi
}

cmd_env() {
	printf 'export PGHOST=%q PGPORT=%q PGUSER=postgres PGDATABASE=postgres\n' \
		"$SOCKET_DIR" "$(port)"
}

cmd_psql() {
	running || die "not running; start it with: scripts/cluster.sh start"
	PGHOST=$SOCKET_DIR PGPORT=$(port) PGUSER=postgres PGDATABASE=postgres \
		exec "$BIN/psql" "$@"
}

case ${1:-} in
	start) cmd_start ;;
	stop) shift; cmd_stop "$@" ;;
	status) cmd_status ;;
	env) cmd_env ;;
	psql) shift; cmd_psql "$@" ;;
	*)
		echo "usage: $0 start | stop [--destroy] | status | psql [args...] | env" >&2
		exit 2
		;;
esac
