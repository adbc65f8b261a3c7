#!/usr/bin/env bash
# Under attack, does it keep serving? keel's hello, hyper-hello and keel's
# shortener (its redirect path), in one run, on 127.0.0.1:
#
#   benches/attack/run.sh                       # every attack, every server
#   ATTACKS="slowloris churn" SERVERS="keel hyper" ATTACK_SECONDS=5 benches/attack/run.sh
#
# For each attack and each server, a fresh server (one worker, pinned to
# $SERVER_CPU as benches/load does) and one run of the `attack` binary
# (pinned to $CLIENT_CPU): a baseline phase (the well-behaved client alone,
# $BASELINE_SECONDS), then the attack alone for $RAMP_SECONDS (its connections
# open), then the attack and the client together for $ATTACK_SECONDS. The
# well-behaved client: one keep-alive connection at 100 requests/s and 20
# new-connection requests/s; a request succeeds when its full, correct answer
# arrives within 2 s. The attacks (sizes by environment, see
# `target/release/attack --help`):
#
#   slowloris       10,000 connections, one more header byte each every 3 s
#   slow-body       1,000 valid POST heads (Content-Length 10,000), then 1 byte/s
#   slow-reader     1,000 requests for GET /large (1 MiB) read at 1 KiB/s,
#                   SO_RCVBUF 4 KiB; the shortener has no large answer: each
#                   connection pipelines 2,000 redirects instead
#   churn           connects and resets as fast as one core can; every other
#                   one sends a request first, none reads
#   pipeline-flood  one connection writing pipelined requests, never reading
#                   (at most PIPELINE_MAX_MIB, 512 MiB, then holding it)
#   header-flood    4 connections sending heads just under every default
#                   limit (8,000-byte target, 99 fields, 16,000 bytes), reading
#   fd-exhaustion   the server started with `ulimit -n $FD_LIMIT` (256) and
#                   $FD_CONNS (1,000) idle connections
#
# Prints a table per attack and writes everything to
# benches/results/attack-DATE-COMMIT.txt. Bounded: each run lasts
# BASELINE + RAMP + ATTACK seconds (23 by default; 21 runs, about 9 minutes).
#
# Environment: ATTACKS (all), SERVERS ("keel hyper shortener"),
# BASELINE_SECONDS (5), RAMP_SECONDS (3), ATTACK_SECONDS (15), FD_LIMIT
# (256), PORT (18380), SERVER_CPU (0), CLIENT_CPU (1), SKIP_BUILD=1, OUT (the
# result file; "-" for none), and the attack sizes the binary reads
# (SLOWLORIS_CONNS, SLOW_BODY_CONNS, ...). Needs taskset and curl.
set -euo pipefail

ATTACKS=${ATTACKS:-slowloris slow-body slow-reader churn pipeline-flood header-flood fd-exhaustion}
SERVERS=${SERVERS:-keel hyper shortener}
FD_LIMIT=${FD_LIMIT:-256}
PORT=${PORT:-18380}
export BASELINE_SECONDS=${BASELINE_SECONDS:-5} RAMP_SECONDS=${RAMP_SECONDS:-3} ATTACK_SECONDS=${ATTACK_SECONDS:-15}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NEED_WRK=0
# shellcheck source=../load/common.sh
source "$here/../load/common.sh"
# shellcheck source=servers.sh
source "$here/servers.sh"
# Each side of the largest crowd, plus room for the rest.
raise_nofile $((${SLOWLORIS_CONNS:-10000} + 2000))

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${OUT:-$root/benches/results/attack-$(date -u +%F)-$commit.txt}
build_attack

# run_attack ATTACK SERVER: one fresh server, one run of the harness; its
# ROW lines go to $logs/rows, the rest to the output.
run_attack() {
    local attack=$1 name=$2 limit=
    [ "$attack" = fd-exhaustion ] && limit=$FD_LIMIT
    start_target "$name" "$PORT" "$limit"
    "${pin_client[@]}" "$target/attack" run "$attack" --addr "127.0.0.1:$PORT" --pid "$server_pid" \
        --server "$name" "${target_flags[@]}" >"$logs/attack.out" 2>&1 || true
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "$name died during $attack:" >&2
        tail -5 "$logs/$name.err" >&2
        server_pid=
    fi
    stop_target
    grep '^ROW ' "$logs/attack.out" >>"$logs/rows" ||
        { echo "no result for $attack against $name:" >&2; cat "$logs/attack.out" >&2; }
}

# field ROW KEY: the value of KEY in a ROW line.
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k { print $2 }'; }

# table ATTACK: the markdown table of one attack, a line per server and phase.
table() {
    echo
    echo "### $1"
    echo
    echo "| server | phase | requests | success % | p50 ms | p99 ms | max ms | failures | RSS max MiB | fds max | server CPU % | TCP queued MiB | attack: held | connects/s | closed by server | sent KiB | read KiB | requests sent | answered |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    grep "^ROW attack=$1 " "$logs/rows" | while read -r row; do
        local line="|" key
        for key in server phase requests success p50_ms p99_ms max_ms failures rss_mib fds cpu tcp_queued_mib \
            held connects_per_s closed sent_kib read_kib requests_sent answered; do
            line="$line $(field "$row" "$key" | sed 's/^$/-/') |"
        done
        echo "$line"
    done
}

report() {
    echo "# keel, hyper and the shortener under attack"
    echo
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $commit"
    echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
    echo "servers: --workers 1, taskset -c $SERVER_CPU; harness: taskset -c $CLIENT_CPU; descriptor limit $(ulimit -n) (fd-exhaustion: $FD_LIMIT)"
    echo "phases: baseline ${BASELINE_SECONDS}s, attack ramp ${RAMP_SECONDS}s, attack ${ATTACK_SECONDS}s"
    echo "load average (1, 5, 15 min): $load_before at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
    echo "command: ATTACKS=\"$ATTACKS\" SERVERS=\"$SERVERS\" benches/attack/run.sh"
    for attack in $ATTACKS; do
        table "$attack"
    done
    echo
    echo "Well-behaved client: 100 keep-alive requests/s on one connection plus 20 new-connection"
    echo "requests/s; success = the full answer with the right status and body length within 2 s;"
    echo "latency from the connect (when one is made) to the last byte, failures counted at the time"
    echo "they took (a timeout as 2 s). RSS and fds: the most seen (sampled every 250 ms) over the"
    echo "measured phase; CPU: the server's user + system time over that phase (100 = one core);"
    echo "TCP queued: the most bytes seen in the send and receive queues of all TCP connections of"
    echo "the host (both ends; /proc/net/tcp and tcp6), where written but unread bytes wait, outside"
    echo "every process's RSS."
    echo "Attack columns: connections open at its end, connects per second, connections the server"
    echo "closed or reset, bytes written and read, whole requests written (pipeline: the bytes the"
    echo "server took in, divided by the request's length), answers with the expected status (header"
    echo "flood). The attack's threads run at nice 19 on the harness's core, the client at 0."
    echo "Targets for keel: 100% success and p99 < 50 ms during every attack, RSS < 64 MiB with"
    echo "10,000 attacking connections, no core spinning on EMFILE."
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$logs/rows"
for attack in $ATTACKS; do
    for name in $SERVERS; do
        echo "== $attack against $name" >&2
        run_attack "$attack" "$name"
    done
done
if [ "$OUT" = - ]; then
    report
else
    report | tee "$OUT"
    echo "written to ${OUT#"$root/"}" >&2
fi
