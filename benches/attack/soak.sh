#!/usr/bin/env bash
# The soak: minutes of mixed traffic against one running keel hello server,
# and nothing grows.
#
#   benches/attack/soak.sh           # 180 s (CI runs 150)
#   benches/attack/soak.sh 3600      # an hour, by hand
#
# One hello (one worker, pinned to $SERVER_CPU) and the `attack soak` client
# (pinned to $CLIENT_CPU): the well-behaved client of benches/attack/run.sh
# (100 keep-alive requests/s and 20 new-connection requests/s) throughout,
# and beside it $MIX_PER_SECOND (50) actions a second on fresh connections,
# in turn: a keep-alive burst of 10 requests, 16 pipelined requests,
# `Connection: close`, an upload to POST /echo (1 byte to 256 KiB), and bad
# traffic: a malformed head, a 32 KiB head, a body cut short, a reset in
# the middle of a head, a reset with answers unread. The server's resident
# memory and descriptors are read every second.
#
# Fails (exit 1, a "SOAK FAILED: ..." line per problem) when the
# well-behaved client or a well-behaved action of the mix sees any error;
# when the resident memory at the end exceeds the one at minute 1 (half the
# run, for runs under two minutes) by more than $SOAK_RSS_GROWTH_MIB (4) MiB
# (ten times the swing of a 180 s run: results/soak-2026-12-07-a06ba44.txt);
# when the descriptors are not back to their count before the traffic
# $SOAK_SETTLE_SECONDS (10) s after it stops; or when the server dies.
#
# Environment: PORT (18480), SERVER_CPU (0), CLIENT_CPU (1), SKIP_BUILD=1,
# MIX_PER_SECOND, SOAK_RSS_GROWTH_MIB, SOAK_SETTLE_SECONDS.
set -euo pipefail

SECONDS_=${1:-180}
PORT=${PORT:-18480}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NEED_WRK=0
# shellcheck source=../load/common.sh
source "$here/../load/common.sh"
# shellcheck source=servers.sh
source "$here/servers.sh"
raise_nofile 1024
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p hello >&2
    cargo build --release -p keel-benches --bin attack >&2
fi

echo "# soak: ${SECONDS_}s of mixed traffic against keel's hello"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "server: hello --workers 1, taskset -c $SERVER_CPU; client: taskset -c $CLIENT_CPU"
echo
start_target keel "$PORT"
status=0
"${pin_client[@]}" "$target/attack" soak --addr "127.0.0.1:$PORT" --pid "$server_pid" --seconds "$SECONDS_" ||
    status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "SOAK FAILED: hello exited:"
    tail -5 "$logs/keel.err"
    server_pid=
    status=1
fi
exit "$status"
