#!/usr/bin/env bash
# Install a built credit_risk.so (to compare two builds, say) into the
# server's library directory, replacing the installed file rather than
# writing over it:
#
#   scripts/install-build.sh /tmp/before.so      # PG_CONFIG picks the server
#
# Writing over the installed library in place (cp onto it) changes the code
# under every backend that has it loaded: such a backend dies of signal 11
# the next time it runs credit_risk code.  A new file moved into place
# leaves them the old one, and new backends load the new one.
set -euo pipefail
src=${1:?usage: scripts/install-build.sh FILE.so}
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
dest="$("$pg_config" --pkglibdir)/credit_risk.so"
[ -f "$src" ] || { echo "install-build: no file $src" >&2; exit 1; }
tmp="$dest.new.$$"
install -m 755 "$src" "$tmp"
mv -f "$tmp" "$dest"
echo "install-build: $src -> $dest"
