#!/usr/bin/env bash
# Streamed bodies, streamed responses and SSE: keel against hyper on
# 127.0.0.1, one serving thread each, driven by benches' stream_client.
#
#   benches/load/streams.sh                        # keel and hyper, 1 GiB, 1,000 SSE clients for 10 s
#   SERVER_QUOTA=40 benches/load/streams.sh hyper  # hyper alone, server-bound
#   UPLOAD_BYTES=256M DOWNLOAD_BYTES=256M SSE_SECONDS=5 ROUNDS=3 benches/load/streams.sh
#
# Servers are named by the arguments (default: keel hyper); server NAME is
# the release binary NAME_streams of keel-benches (hyper_streams, and
# keel_streams once it exists); a missing one is skipped with a message.
# Every server serves the contract in benches/src/streams.rs:
#
#   upload     stream_client upload --bytes $UPLOAD_BYTES: one POST /upload,
#              the body hashed (SHA-256) as it arrives, the digest checked
#   download   stream_client download --bytes $DOWNLOAD_BYTES: one
#              GET /download?bytes=N, produced on another task, counted
#   sse        stream_client sse --clients $SSE_CLIENTS --seconds $SSE_SECONDS:
#              events received by all clients per second, numbering checked;
#              a client that has read all there was waits $SSE_PAUSE_MS ms
#              before reading again, so that 1,000 client threads on one core
#              are not woken once per event (the client stays the cheaper side)
#
# Each server starts fresh for each test with `--workers $WORKERS`, pinned
# with `taskset -c $SERVER_CPU` (and capped at SERVER_QUOTA percent of a
# core, as in run.sh); the client is pinned to $CLIENT_CPU. The server
# process's CPU time (utime + stime from /proc/PID/stat) is read before and
# after the client runs, and its peak RSS (VmHWM) at the end. Reported per
# server: MB/s (10^6 bytes) and server CPU-seconds per GB (10^9 bytes) for
# upload and download, events/s and server CPU % for SSE, medians over
# ROUNDS rounds (alternating which server goes first), and keel/hyper ratios
# when both ran.
#
# Environment: UPLOAD_BYTES, DOWNLOAD_BYTES (default 1G; K, M, G suffixes are
# powers of 1024), UPLOAD_FRAMING (length or chunked, default length),
# UPLOAD_DISCARD (1: upload to /discard, counted, not hashed),
# SSE_CLIENTS (1000), SSE_SECONDS (10), SSE_PAUSE_MS (50), ROUNDS (1), WORKERS (1), PORT
# (18090), SERVER_CPU (0), CLIENT_CPU (1), SERVER_QUOTA (unset: no cap),
# KEEL_DOWNLOAD_FROM (thread, the default, or worker: keel_streams's
# --download-from, where keel's download chunks are produced),
# SKIP_BUILD=1 to use built binaries. Raises the descriptor limit for the
# SSE clients (both processes hold one socket per client).
set -euo pipefail

UPLOAD_BYTES=${UPLOAD_BYTES:-1G}
DOWNLOAD_BYTES=${DOWNLOAD_BYTES:-1G}
UPLOAD_FRAMING=${UPLOAD_FRAMING:-length}
SSE_CLIENTS=${SSE_CLIENTS:-1000}
SSE_SECONDS=${SSE_SECONDS:-10}
SSE_PAUSE_MS=${SSE_PAUSE_MS:-50}
ROUNDS=${ROUNDS:-1}
WORKERS=${WORKERS:-1}
PORT=${PORT:-18090}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(keel hyper)

case $UPLOAD_FRAMING in
    length) upload_flags=() ;;
    chunked) upload_flags=(--chunked) ;;
    *) echo "UPLOAD_FRAMING: length or chunked, not $UPLOAD_FRAMING" >&2; exit 2 ;;
esac
# UPLOAD_DISCARD=1: uploads go to /discard, counted rather than hashed: the
# servers' own cost of receiving, without SHA-256's.
[ "${UPLOAD_DISCARD:-0}" = 1 ] && upload_flags+=(--discard)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NEED_WRK=0
# shellcheck source=common.sh
source "$here/common.sh"

# Each SSE client is a socket in the client and one in the server, plus a
# few for everything else.
want_fds=$((SSE_CLIENTS + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
        echo "streams.sh: $SSE_CLIENTS SSE clients need $want_fds descriptors, the limit is $(ulimit -n) (hard $(ulimit -Hn)); lower SSE_CLIENTS or raise it" >&2
        exit 1
    fi
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p keel-benches --bins >&2
fi
client=$target/stream_client

present=()
for name in "${servers[@]}"; do
    if [ -x "$target/${name}_streams" ]; then
        present+=("$name")
    else
        echo "streams.sh: skipping $name: no $target/${name}_streams (no benches/src/bin/${name}_streams.rs yet?)" >&2
    fi
done
[ ${#present[@]} -gt 0 ] || { echo "streams.sh: no server to run" >&2; exit 1; }

# Prints one result field (key=value) of the client's RESULT line.
field() { grep '^RESULT ' "$logs/client.out" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# run_test NAME TEST ROUND: one server started fresh, one client run; appends
# "test server round rate cpu_s_per_gb cpu_pct rss_kb" to $logs/rows.
run_test() {
    local name=$1 test=$2 round=$3 args
    case $test in
        upload) args=(upload --bytes "$UPLOAD_BYTES" "${upload_flags[@]}") ;;
        download) args=(download --bytes "$DOWNLOAD_BYTES") ;;
        sse) args=(sse --clients "$SSE_CLIENTS" --seconds "$SSE_SECONDS" --pause-ms "$SSE_PAUSE_MS") ;;
    esac
    local own=()
    [ "$name" = keel ] && own=(--download-from "${KEEL_DOWNLOAD_FROM:-thread}")
    start_server "$name" "$target/${name}_streams" --addr "127.0.0.1:$PORT" --workers "$WORKERS" "${own[@]}"
    local before started ended
    before=$(proc_cpu_ticks "$server_pid")
    started=$(date +%s.%N)
    if ! "${pin_client[@]}" "$client" "${args[@]}" --addr "127.0.0.1:$PORT" >"$logs/client.out" 2>&1; then
        echo "### round $round, $test, $name: FAILED"
        sed 's/^/    /' "$logs/client.out"
        failed=1
        stop_server
        return
    fi
    ended=$(date +%s.%N)
    local ticks rss
    ticks=$(($(proc_cpu_ticks "$server_pid") - before))
    rss=$(peak_rss_kb "$server_pid")
    stop_server
    echo "### round $round, $test, $name (server CPU $(seconds_of "$ticks") s, peak RSS $rss kB)"
    sed 's/^/    /' "$logs/client.out"
    local rate per_gb seconds pct
    if [ "$test" = sse ]; then
        rate=$(field events_per_s)
        per_gb=nan
        # The whole run: the connects and the warm-up too.
        seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { print b - a }')
    else
        rate=$(field mb_per_s)
        per_gb=$(awk -v t="$ticks" -v hz="$clk_tck" -v b="$(field bytes)" 'BEGIN { printf "%.3f", t / hz / (b / 1e9) }')
        # The transfer as the client timed it (not its digest, computed before).
        seconds=$(field seconds)
    fi
    pct=$(awk -v t="$ticks" -v hz="$clk_tck" -v s="$seconds" 'BEGIN { printf "%.0f", 100 * t / hz / s }')
    echo "$test $name $round $rate $per_gb $pct $rss" >>"$logs/rows"
}

echo "# streamed bodies, streamed responses and SSE"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "servers: ${present[*]} (--workers $WORKERS, taskset -c $SERVER_CPU${SERVER_QUOTA:+, CPU capped at $SERVER_QUOTA% of a core}); client: stream_client, taskset -c $CLIENT_CPU"
echo "upload $UPLOAD_BYTES ($UPLOAD_FRAMING), download $DOWNLOAD_BYTES (keel's produced on its ${KEEL_DOWNLOAD_FROM:-thread}), SSE $SSE_CLIENTS clients for ${SSE_SECONDS}s (read pause ${SSE_PAUSE_MS} ms), $ROUNDS rounds, descriptor limit $(ulimit -n)"
echo

: >"$logs/rows"
for round in $(seq "$ROUNDS"); do
    set_round_order "$round"
    for test in upload download sse; do
        for name in "${order[@]}"; do
            run_test "$name" "$test" "$round"
        done
    done
done

median() { median_of "$1" "\$1 == \"$2\" && \$2 == \"$3\"" "$logs/rows"; }
echo
echo "## medians of $ROUNDS rounds"
echo
echo "| server | upload MB/s | CPU s/GB | server CPU % | download MB/s | CPU s/GB | server CPU % | SSE events/s | server CPU % | peak RSS kB upload / download / SSE |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for name in "${present[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s |\n' "$name" \
        "$(median 4 upload "$name")" "$(median 5 upload "$name")" "$(median 6 upload "$name")" \
        "$(median 4 download "$name")" "$(median 5 download "$name")" "$(median 6 download "$name")" \
        "$(median 4 sse "$name")" "$(median 6 sse "$name")" \
        "$(median 7 upload "$name")" "$(median 7 download "$name")" "$(median 7 sse "$name")"
done
if [[ " ${present[*]} " == *" keel "* && " ${present[*]} " == *" hyper "* ]]; then
    echo
    echo "keel / hyper: throughput > 1 is keel faster; CPU per GB < 1 is keel cheaper (target: throughput >= 1 at CPU <= 0.7)."
    echo
    echo "| test | throughput ratio | CPU per GB ratio |"
    echo "| --- | ---: | ---: |"
    for test in upload download sse; do
        cpu="n/a"
        [ "$test" = sse ] || cpu=$(ratio "$(median 5 "$test" keel)" "$(median 5 "$test" hyper)")
        echo "| $test | $(ratio "$(median 4 "$test" keel)" "$(median 4 "$test" hyper)") | $cpu |"
    done
fi
echo
echo "MB = 10^6 bytes, GB = 10^9 bytes. CPU s/GB is the server process's user + system time over the client's"
echo "run (connect to last byte) per GB moved, at the clock tick's resolution ($clk_tck Hz); server CPU % is that"
echo "time over the transfer (100 = one core; for SSE over the client's whole run, connects and warm-up included). A server CPU % well under"
echo "100 (or under SERVER_QUOTA) means the client or the loopback was the limit: then compare CPU per GB."
exit "$failed"
