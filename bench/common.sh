# Set-up shared by the benchmark scripts; sourced, not run:
#   . "$(dirname "$0")/common.sh" NAME
# NAME names the temporary directory ($tmp, removed on exit).  Defines
# $here (bench/), $tmp, $psql (an array: quiet psql that stops on the first
# error), now (seconds since the epoch, fractional), bench_positive and
# bench_python.

# bench_positive WHAT VALUE: exit 2 unless VALUE is a positive integer
bench_positive()
{
	case $2 in
		'' | *[!0-9]* | 0) echo "$1 must be a positive integer, not \"$2\"" >&2; exit 2 ;;
	esac
}

# bench_python PYTHON "MODULE ..." "DEBIAN PACKAGE ...": exit 1 unless
# PYTHON imports every module
bench_python()
{
	if ! "$1" -c "import ${2// /, }" 2>/dev/null; then
		echo "$1 cannot import ${2// /, }" >&2
		echo "install them with: apt-get install $3" >&2
		exit 1
	fi
}

now() { date +%s.%N; }

here=$(cd "$(dirname "$0")" && pwd)
# psql, not the server, writes exported CSV files here: the server may be on
# another machine
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cr_bench_$1.XXXXXX")
trap "rm -rf '$tmp'" EXIT

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql=(psql -X -q -v ON_ERROR_STOP=1)
