#!/usr/bin/env bash
# The shortener's whole test suite on PostgreSQL: starts a throwaway
# cluster (scripts/pg.sh, which installs PostgreSQL with apt-get when it is
# missing) on a free loopback port in a temporary directory, points
# SHORTENER_TEST_PG at it and runs `cargo test -p shortener`: the store's
# unit tests on PostgreSQL, and every socket test with the binary on
# `--store postgres://...` (a schema per server; see tests/util/mod.rs),
# the multi-instance tests (tests/instances.rs) included. The cluster is
# stopped and removed on any exit. Exits with the tests' status.
#
#   examples/shortener/tests/pg-suite.sh [CARGO TEST ARGS...]
#   examples/shortener/tests/pg-suite.sh --test instances -- --nocapture
#
# Run as root (as CI does) or as a user that may run initdb.

set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
pg="$root/scripts/pg.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/shortener-pg-suite.XXXXXX")
# pg.sh runs the server as `postgres` when we are root: let it in.
chmod 755 "$work"
cluster=""

cleanup() {
    if [[ -n "$cluster" ]]; then
        "$pg" stop "$cluster" >/dev/null 2>&1 ||
            echo "pg-suite: could not stop the cluster in $cluster" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Whether something accepts connections on 127.0.0.1:PORT.
port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free port can be taken between the check and the server's bind: a few
# tries, each on a fresh directory (pg.sh ties a directory to its port).
url=""
for attempt in 1 2 3; do
    port=$((20000 + RANDOM % 30000))
    port_taken "$port" && continue
    cluster="$work/pg$attempt"
    if url=$("$pg" start "$cluster" "$port"); then
        break
    fi
    echo "pg-suite: no cluster on port $port (attempt $attempt)" >&2
    "$pg" stop "$cluster" >/dev/null 2>&1 || true
    cluster=""
    url=""
done
[[ -n "$url" ]] || { echo "pg-suite: could not start PostgreSQL" >&2; exit 1; }

echo "pg-suite: PostgreSQL at $url" >&2
export SHORTENER_TEST_PG="$url"
cd "$root"
status=0
started=$SECONDS
cargo test -p shortener "$@" || status=$?
echo "pg-suite: cargo test -p shortener on PostgreSQL: exit $status after $((SECONDS - started)) s" >&2
exit "$status"
