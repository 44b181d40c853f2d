#!/usr/bin/env bash
# Try credit_risk in one command:
#
#   bash scripts/demo.sh
#
# Installs the Debian packages, builds and installs the extension from this
# checkout, starts the throwaway cluster (scripts/cluster.sh; port CR_PORT,
# default 55439) and runs scripts/demo.sql in it.  The cluster keeps running
# afterwards so the models and tables can be explored.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$BIN/pg_config
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

echo "== dependencies"
bash scripts/install-deps.sh

echo "== build and install"
make -s PG_CONFIG="$PG_CONFIG"
if [ "$(id -u)" -eq 0 ] || [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
	make -s install PG_CONFIG="$PG_CONFIG"
elif command -v sudo >/dev/null; then
	sudo make -s install PG_CONFIG="$PG_CONFIG"
else
	echo "demo: cannot install into $("$PG_CONFIG" --pkglibdir): run as root, or install sudo" >&2
	exit 1
fi

echo "== throwaway cluster"
bash scripts/cluster.sh start

# from the repository root, where demo.sql's \i and \copy paths start
echo "== scripts/demo.sql"
bash scripts/cluster.sh psql -X -v ON_ERROR_STOP=1 -f scripts/demo.sql

cat <<EOF

The cluster is still running.
  connect:  bash scripts/cluster.sh psql
            or: eval "\$(bash scripts/cluster.sh env)" && psql
  stop:     bash scripts/cluster.sh stop
  remove:   bash scripts/cluster.sh stop --destroy
EOF
