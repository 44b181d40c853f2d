# Set-up shared by the benchmark scripts; sourced, not run:
#   . "$(dirname "$0")/common.sh" NAME
# NAME names the temporary directory ($tmp, removed on exit).  Defines
# $here (bench/), $tmp, $psql (an array: quiet psql that stops on the first
# error), now (seconds since the epoch, fractional), bench_positive,
# bench_python, bench_shapes, bench_cpu_model, bench_cpu_features and
# bench_header.

# bench_positive WHAT VALUE: exit 2 unless VALUE is a positive integer
bench_positive()
{
	case $2 in
		'' | *[!0-9]* | 0) echo "$1 must be a positive integer, not \"$2\"" >&2; exit 2 ;;
	esac
}

# bench_shapes "SHAPE ...": exit 2 unless the list names one or more of the
# synthetic tables credit (synthetic_gbm.sql) and continuous
# (synthetic_continuous.sql), as BENCH_SHAPES does
bench_shapes()
{
	[ -n "${1// /}" ] || { echo "BENCH_SHAPES is empty" >&2; exit 2; }
	for s in $1; do
		case $s in
			credit | continuous) ;;
			*) echo "BENCH_SHAPES: unknown shape \"$s\" (credit, continuous)" >&2; exit 2 ;;
		esac
	done
}

# the CPU's model name, and the vector and bit-manipulation features it has
bench_cpu_model() { sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1; }
bench_cpu_features() { grep -o -w -E 'avx2|avx512f|avx512bw|avx512vl|fma|bmi2' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# bench_header WHAT: the first lines of a report: what was measured and
# when, the server, the extension's version, the client's CPUs and the CPU
# features (the server is usually the same machine)
bench_header()
{
	echo "credit_risk $1 benchmark: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "server: $(psql -X -At -c "SELECT pg_catalog.version()")"
	echo "credit_risk $(psql -X -At -c "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'credit_risk'"); $(nproc) CPUs on the client ($(uname -m)); CPU: $(bench_cpu_model)"
	echo "CPU features: $(bench_cpu_features)"
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
