#!/usr/bin/env bash
# Install the Debian 12 packages that building, testing and benchmarking
# credit_risk need.  Idempotent: only missing packages are installed, and
# apt-get update runs only when something is missing.
set -euo pipefail

packages=(
	postgresql-15             # server and contrib modules (postgres_fdw, file_fdw)
	postgresql-server-dev-15  # PGXS, server headers, TAP test modules
	postgresql-15-cron        # schedules (optional at run time, preloaded by scripts/cluster.sh)
	libopenblas-dev           # BLAS and LAPACK for the trainers
	libopenblas-serial-dev    # ... the single-threaded build the extension links
	libipc-run-perl           # PostgreSQL::Test::Cluster needs IPC::Run
	make
	gcc                       # also the ASan/UBSan runtimes of the sanitizer slice
	clang                     # libFuzzer harnesses (test/fuzz) ...
	libclang-rt-14-dev        # ... and their fuzzer and sanitizer runtimes
	python3-numpy             # reference runs for the benchmarks
	python3-statsmodels
	python3-sklearn
	python3-xgboost
	chromium                  # renders cr_model_report's page in its TAP test (headless)
	libcurl4-openssl-dev      # credit_risk_alertd posts alerts to webhooks with libcurl
	curl                      # the Prometheus TAP test scrapes /metrics
	prometheus-postgres-exporter  # ... from Debian's exporter, run on loopback by the test
)
# No separate postgresql-contrib: on Debian 12 it is a metapackage for
# postgresql-contrib-15, which postgresql-15 provides.

missing=()
for pkg in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all ${#packages[@]} packages are installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: as root, run: apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

# The exporter's package starts a system service on :9187 where systemd
# runs; the tests start their own on loopback, so the service is left off.
for pkg in "${missing[@]}"; do
	if [ "$pkg" = prometheus-postgres-exporter ] && [ -d /run/systemd/system ]; then
		systemctl disable --now prometheus-postgres-exporter || true
	fi
done
