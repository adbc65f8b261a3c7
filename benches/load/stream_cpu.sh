#!/usr/bin/env bash
# Server CPU per GB of one streamed transfer, for servers (or one server
# with different flags) started in turn, round after round: interleaved, so
# that the machine's drift between minutes falls on all of them alike.
#
#   benches/load/stream_cpu.sh download keel_streams keel_streams,--download-from,worker hyper_streams
#   BYTES=16G ROUNDS=4 benches/load/stream_cpu.sh upload keel_streams hyper_streams
#   SERVER_BIN_DIR=/tmp/variants benches/load/stream_cpu.sh upload keel_128k keel_512k
#
# MODE is upload (stream_client upload --discard: the server reads the body
# to its end and answers its length) or download. Each SPEC is a binary of
# SERVER_BIN_DIR (default: the release target directory) serving the
# contract of benches/src/streams.rs, then its flags, comma-separated. Each
# server starts fresh for each transfer with one worker, pinned to
# SERVER_CPU (0); the client is pinned to CLIENT_CPU (1). Its CPU time is
# utime + stime from /proc/PID/stat, in clock ticks, around the client's
# run, and the whole machine's busy time (/proc/stat) beside it: the client's
# share of the work shows there. Prints one line per transfer, then each
# SPEC's medians.
#
# Environment: BYTES (8G; K, M, G are powers of 1024), PIECE (download in
# pieces of this many bytes, where the server can: keel_streams), ROUNDS (3), PORT
# (18091), SERVER_CPU, CLIENT_CPU, SERVER_QUOTA (as in run.sh, common.sh),
# SERVER_BIN_DIR, SKIP_BUILD=1.
set -euo pipefail

mode=${1:?usage: stream_cpu.sh upload|download SPEC...}
shift
[ $# -gt 0 ] || { echo "stream_cpu.sh: name at least one server" >&2; exit 2; }
case $mode in
    upload) client_args=(upload --discard) ;;
    download) client_args=(download ${PIECE:+--piece "$PIECE"}) ;;
    *) echo "stream_cpu.sh: upload or download, not $mode" >&2; exit 2 ;;
esac
BYTES=${BYTES:-8G}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18091}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NEED_WRK=0
# shellcheck source=common.sh
source "$here/common.sh"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release --quiet -p keel-benches \
        --bin keel_streams --bin hyper_streams --bin stream_client
fi
bins=${SERVER_BIN_DIR:-$target}
gb=$(numfmt --from=iec "$BYTES" | awk '{ print $1 / 1e9 }')

# Busy ticks of the whole machine (core_ticks of all cores): on loopback,
# work on one socket can be done by either side's process (an ACK handled
# by whoever holds the socket), so the server's share alone can move
# without the work changing.
busy_ticks() { core_ticks "" | awk '{ print $1 }'; }
per_gb() { awk -v t="$1" -v hz="$clk_tck" -v g="$gb" 'BEGIN { printf "%.3f", t / hz / g }'; }

echo "# $mode of $BYTES, server CPU per GB, $ROUNDS interleaved rounds ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
for round in $(seq "$ROUNDS"); do
    for spec in "$@"; do
        IFS=, read -r -a server <<<"$spec"
        server[0]=$bins/${server[0]}
        start_server "$spec" "${server[@]}" --workers 1 --addr "127.0.0.1:$PORT"
        before=$(proc_cpu_ticks "$server_pid")
        busy_before=$(busy_ticks)
        result=$("${pin_client[@]}" "$target/stream_client" "${client_args[@]}" \
            --bytes "$BYTES" --addr "127.0.0.1:$PORT" | grep '^RESULT')
        ticks=$(($(proc_cpu_ticks "$server_pid") - before))
        busy=$(($(busy_ticks) - busy_before))
        stop_server
        mb=$(tr ' ' '\n' <<<"$result" | awk -F= '$1 == "mb_per_s" { print $2 }')
        echo "round $round  $spec  ticks $ticks  CPU s/GB $(per_gb "$ticks")  machine CPU s/GB $(per_gb "$busy")  MB/s $mb"
        echo "$spec $(per_gb "$ticks") $(per_gb "$busy")" >>"$logs/rows"
    done
done
echo
echo "| server and flags | median server CPU s/GB | median machine CPU s/GB |"
echo "| --- | ---: | ---: |"
for spec in "$@"; do
    echo "| $spec | $(median_of 2 "\$1 == \"$spec\"" "$logs/rows") | $(median_of 3 "\$1 == \"$spec\"" "$logs/rows") |"
done
