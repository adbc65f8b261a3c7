#!/usr/bin/env bash
# User-space instructions per pipelined request in the real servers: keel
# (hello) and each of $PEERS, one worker each, run under callgrind over a
# real socket, driven by pipeline_client with wrk's request (`GET /plaintext`
# and a Host field), DEPTH requests per write.
#
#   PEERS=hyper,actix,may benches/load/server_instructions.sh
#
# Each server runs twice, once for WARM batches and once for WARM + BATCHES,
# on one connection; (I(long) - I(short)) / (BATCHES * DEPTH) is the steady
# cost of one request: start-up, the connection and the warm-up cancel out.
# Counts are of user space only (the kernel's work is not in them) and do
# not drift between runs, unlike times. With TOP > 0 the functions with the
# most instructions (self cost, inlined code counted where it was inlined)
# of the long runs of keel and the peers are listed.
#
# Environment: PEERS (default hyper), BATCHES (default 1000), WARM (default
# 100), DEPTH (default 16), TOP (default 0), OUT_DIR (default a temporary
# directory, removed at exit), SKIP_BUILD=1.
set -euo pipefail

NEED_WRK=0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"

BATCHES=${BATCHES:-1000}
WARM=${WARM:-100}
DEPTH=${DEPTH:-16}
TOP=${TOP:-0}
PORT=${PORT:-18180}
START_TENTHS=600 # callgrind starts a server in seconds, not milliseconds

need valgrind
need callgrind_annotate valgrind
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    build_pair
    cargo build --release -p keel-benches --bin pipeline_client >&2
fi
out=${OUT_DIR:-$logs}
mkdir -p "$out"

# count NAME BATCHES: total instructions of one callgrind run of NAME's
# server answering BATCHES batches.
count() {
    local name=$1 batches=$2 file="$out/$1.$2.callgrind"
    server_wrap=(valgrind --tool=callgrind --callgrind-out-file="$file")
    start_pair_server "$name" "$PORT"
    "${pin_client[@]}" "$target/pipeline_client" "127.0.0.1:$PORT" "$batches" "$DEPTH" >/dev/null
    stop_server
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

echo "# server instructions per pipelined request"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(valgrind --version)"
echo "depth $DEPTH, $BATCHES batches after $WARM; callgrind, user space; one connection, wrk's request"
echo
printf '%-8s %12s\n' server Ir/request
for name in keel "${peers[@]}"; do
    short=$(count "$name" "$WARM")
    long=$(count "$name" $((WARM + BATCHES)))
    printf '%-8s %12d\n' "$name" $(((long - short) / (BATCHES * DEPTH)))
done
# top FILE REQUESTS: the TOP functions by self instructions per request,
# inlined code folded into the function it was inlined into (callgrind
# names such code "file:function"; the file part is dropped).
top() {
    callgrind_annotate --inclusive=no --auto=no "$1" 2>/dev/null |
        awk '/^Ir +file:function/ { on = 1; next } on && /^$/ { exit } on' |
        awk -v n="$2" '{
            ir = $1; gsub(",", "", ir); $1 = $2 = $3 = ""; sub(/^ +/, "")
            f = $0; sub(/^[^:]*:/, "", f); sub(/ \[.*$/, "", f); self[f] += ir
        } END { for (f in self) printf "%8.1f  %s\n", self[f] / n, f }' |
        sort -rn | head -n "$TOP"
}

if [ "$TOP" -gt 0 ]; then
    for name in keel "${peers[@]}"; do
        echo
        echo "== $name: top $TOP functions, self instructions per request (start-up included, $((WARM + BATCHES)) batches)"
        top "$out/$name.$((WARM + BATCHES)).callgrind" $(((WARM + BATCHES) * DEPTH))
    done
fi
