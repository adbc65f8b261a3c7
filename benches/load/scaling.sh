#!/usr/bin/env bash
# keel's hello with 1 and with 2 workers under the same total CPU quota:
# does the work per CPU-second stay the same when it is spread over two
# worker threads? With shared-nothing workers it should (2-worker /
# 1-worker ratio ~1.0); a ratio well below 1 is what two workers cost
# (shared cache lines, locks, the kernel's shared paths, and the smaller
# batch each event-loop turn finds).
#
#   benches/load/scaling.sh                 # DURATION=5 ROUNDS=3 SERVER_QUOTA=25
#   benches/load/scaling.sh | tee benches/results/scaling-$(date +%F)-$(git rev-parse --short HEAD).txt
#
# Builds examples/hello (release), then for ROUNDS rounds, in each mode
# (keep-alive; pipelined by DEPTH), runs wrk -t1 -c$CONNECTIONS against hello
# in each configuration of CONFIGS (their order reversed every other round):
#
#   1    --workers 1, nothing pinned
#   2    --workers 2, nothing pinned: the server's threads and wrk share
#        both cores, as they must for 2 workers to run at once
#   1p   --workers 1, server pinned to SERVER_CPU, wrk to CLIENT_CPU
#   2p   --workers 2, both workers pinned to SERVER_CPU, wrk to CLIENT_CPU:
#        two event loops that cannot share a cache line across cores
#
# 2 / 1 is the comparison issue 16 asks for; 2p / 1p is the cost of two
# event loops instead of one with no cross-core traffic between them
# (smaller batches per turn, more sleeps and wake-ups); 2 / 2p is what
# running them on two cores adds (lines moving between cores, sharing
# cores with wrk). The server process sits in a cgroup capped at
# SERVER_QUOTA% of one core, the same cap for all, so all get the same
# CPU time and the server, not wrk, is the limit: the throttled share of
# the cgroup's periods shows whether it was, and only rows throttled in
# most periods compare. The default, 25%, is low enough for that in every
# configuration on the 2-core VM; at 50% one worker could not use its
# quota (wrk-bound) while two could, and the CPU time per request of a
# server that idles between wake-ups is not that of a saturated one.
#
# Per run: req/s, the server's CPU time per request (user + system, at the
# clock tick's resolution), and each worker thread's share of the server's
# CPU (from /proc/PID/task: SO_REUSEPORT spreads wrk's connections over the
# workers' listeners by a hash of the 4-tuple; a 2-worker run whose least
# busy thread did under a quarter of the work FAILs). Then one more run of
# each under `perf stat`: context switches, system calls and epoll_waits
# per request, and cache misses where the CPU's counters are visible (a VM
# often shows only software events: "<not supported>").
#
# Environment: DURATION (s, default 5), ROUNDS (3), CONNECTIONS (64),
# DEPTH (16), PORT (18086), SERVER_QUOTA (percent of one core for the
# server process, default 25), CONFIGS ("1 2 1p 2p"), SERVER_CPU (0),
# CLIENT_CPU (1), SKIP_BUILD=1, PERF=0 to skip the perf pass. Needs root
# (the cgroup, perf's tracepoints), wrk and perf (both installed with
# apt-get when missing).
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
DEPTH=${DEPTH:-16}
PORT=${PORT:-18086}
# Read by common.sh, which makes the cgroup.
SERVER_QUOTA=${SERVER_QUOTA:-25}
PERF=${PERF:-1}
read -r -a configs <<<"${CONFIGS:-1 2 1p 2p}"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
[ "$PERF" = 0 ] || need perf linux-perf
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p hello >&2
[ "$(nproc)" -ge 2 ] || echo "one core only: 2 workers cannot run at once, and 1p/2p pin nothing" >&2

# start_config CONFIG: starts hello as CONFIG says (see the top) and sets
# pin_client for wrk.
start_config() {
    local workers=${1%p}
    if [ "$1" = "$workers" ] || [ "$(nproc)" -lt 2 ]; then
        pin_server=() pin_client=()
    else
        pin_server=(taskset -c "$SERVER_CPU") pin_client=(taskset -c "$CLIENT_CPU")
    fi
    start_server "keel-$1" "$target/hello" --addr "127.0.0.1:$PORT" --workers "$workers"
}

# worker_ticks PID: "name ticks" for each keel-worker thread (user + system).
worker_ticks() {
    local stat
    for stat in /proc/"$1"/task/*/stat; do
        awk '$2 ~ /^\(keel-worker-/ { gsub(/[()]/, "", $2); print $2, $14 + $15 }' "$stat" 2>/dev/null || true
    done | sort
}

# throttle_counts: "periods throttled" of the quota's cgroup so far.
throttle_counts() {
    awk '$1 == "nr_periods" { p = $2 } $1 == "nr_throttled" { t = $2 } END { print p + 0, t + 0 }' \
        "$quota_group/cpu.stat" 2>/dev/null || echo 0 0
}

# worker_shares BEFORE AFTER: each worker's share of the workers' CPU time
# between two worker_ticks readings, as "w0 55% w1 45%".
worker_shares() {
    awk 'NR == FNR { before[$1] = $2; next }
        { d[$1] = $2 - before[$1]; total += d[$1]; names[++n] = $1 }
        END { for (i = 1; i <= n; i++) printf "%s%s %.0f%%", (i > 1 ? " " : ""), names[i], total ? 100 * d[names[i]] / total : 0 }' \
        <(echo "$1") <(echo "$2") | sed 's/keel-worker-/w/g'
}

# run_wrk MODE CONFIG ROUND: one measured run; appends "mode config round
# rps requests cpu_ticks throttled% min_share%" to $logs/rows.
run_wrk() {
    local mode=$1 config=$2 round=$3
    wrk_mode "$mode" "$DEPTH"
    start_config "$config"
    local cpu_before threads_before throttle_before
    cpu_before=$(proc_cpu_ticks "$server_pid")
    threads_before=$(worker_ticks "$server_pid")
    throttle_before=$(throttle_counts)
    WRK_CONNECTIONS=$CONNECTIONS "${pin_client[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${wrk_script[@]}" \
        "http://127.0.0.1:$PORT/plaintext" "${wrk_tail[@]}" >"$logs/wrk.out" 2>&1 || true
    local ticks threads_after throttled shares
    ticks=$(($(proc_cpu_ticks "$server_pid") - cpu_before))
    threads_after=$(worker_ticks "$server_pid")
    throttled=$(throttle_counts | awk -v b="$throttle_before" '{
        split(b, x, " "); p = $1 - x[1]; printf "%.0f", p ? 100 * ($2 - x[2]) / p : 0 }')
    shares=$(worker_shares "$threads_before" "$threads_after")
    stop_server
    local result rps errors non2xx requests
    result=$(wrk_result "$logs/wrk.out")
    echo "### round $round, $mode, config $config: server CPU $(seconds_of "$ticks") s," \
        "throttled in $throttled% of periods, worker CPU shares: $shares;" \
        "rps p50_us p99_us errors non2xx requests: ${result:-none}"
    read -r rps _ _ errors non2xx requests <<<"${result:-0 0 0 0 0 0}"
    if [ -z "$result" ] || [ "$requests" = 0 ] || [ "$non2xx" != 0 ] || [ "$errors" != 0 ]; then
        fail "$mode, config $config: wrk reported ${result:-nothing}"
        sed 's/^/    /' "$logs/wrk.out"
        return
    fi
    local min_share
    min_share=$(echo "$shares" | grep -o '[0-9]*%' | tr -d % | sort -n | head -1)
    if [ "${config%p}" -gt 1 ] && [ "${min_share:-0}" -lt 25 ]; then
        fail "$mode, config $config: one worker did ${min_share:-0}% of the work (connections not spread)"
    fi
    echo "$mode $config $round $rps $requests $ticks $throttled ${min_share:-100}" >>"$logs/rows"
}

echo "# keel, 1 vs 2 workers under the same CPU quota"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), -t1 -c$CONNECTIONS -d${DURATION}s, GET /plaintext, pipeline depth $DEPTH, $ROUNDS rounds"
echo "server: $target/hello, CPU capped at $SERVER_QUOTA% of one core for the whole process (cgroup quota, 10 ms period)"
echo "configs: ${configs[*]} (N: --workers N, nothing pinned; Np: --workers N, server on core $SERVER_CPU, wrk on core $CLIENT_CPU)"
# Other work on the machine takes cores from all: say how much there was.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

: >"$logs/rows"
present=("${configs[@]}")
for round in $(seq "$ROUNDS"); do
    set_round_order "$round"
    for mode in keep-alive pipelined; do
        for config in "${order[@]}"; do
            run_wrk "$mode" "$config" "$round"
        done
    done
done

# median COLUMN MODE CONFIG
median() { median_of "$1" "\$1 == \"$2\" && \$2 == \"$3\"" "$logs/rows"; }
# per_round_median MODE A B: the median over rounds of (A's req/s / B's req/s).
per_round_median() {
    awk -v m="$1" -v a="$2" -v b="$3" '$1 == m { v[$3, $2] = $4; r[$3] = 1 }
        END { for (k in r) if (v[k, a] > 0 && v[k, b] > 0) print v[k, a] / v[k, b] }' "$logs/rows" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "n/a"; exit }
            printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A med_rps med_per
echo
echo "## medians of $ROUNDS rounds"
echo
echo "| mode | config | req/s | server CPU % (of one core) | server CPU µs per request | throttled periods % | smallest worker share % |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for mode in keep-alive pipelined; do
    for config in "${configs[@]}"; do
        awk -v m="$mode" -v c="$config" -v hz="$clk_tck" -v d="$DURATION" '$1 == m && $2 == c {
            printf "%.1f %.3f\n", 100 * $6 / hz / d, 1e6 * $6 / hz / $5 }' "$logs/rows" >"$logs/derived"
        rps=$(median 4 "$mode" "$config")
        per=$(median_of 2 1 "$logs/derived")
        echo "| $mode | $config | $(printf %.0f "$rps") | $(median_of 1 1 "$logs/derived") | $per | $(median 7 "$mode" "$config") | $(median 8 "$mode" "$config") |"
        med_rps[$mode/$config]=$rps med_per[$mode/$config]=$per
    done
done
echo
echo "| mode | configs A / B | req/s A / B | the same, median of per-round ratios | CPU µs per request A / B |"
echo "| --- | --- | ---: | ---: | ---: |"
for mode in keep-alive pipelined; do
    for pair in "2 1" "2p 1p" "2 2p"; do
        read -r a b <<<"$pair"
        if [ -z "${med_rps[$mode/$a]:-}" ] || [ -z "${med_rps[$mode/$b]:-}" ]; then continue; fi
        echo "| $mode | $a / $b | $(ratio "${med_rps[$mode/$a]}" "${med_rps[$mode/$b]}") | $(per_round_median "$mode" "$a" "$b") | $(ratio "${med_per[$mode/$a]}" "${med_per[$mode/$b]}") |"
    done
done
echo
echo "Ideal shared-nothing scaling under an equal quota: req/s ratio 1.00 and CPU per request"
echo "ratio 1.00. Throttled periods near 100% mean the server used its whole quota (server-bound);"
echo "the smallest worker share is the least busy worker's part of the workers' CPU time (50 = even)."
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "$PERF" != 0 ]; then
    events=task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter,syscalls:sys_enter_epoll_wait,cache-references,cache-misses
    echo
    echo "## perf stat -e $events -p <server>, one more run each"
    echo
    echo "| mode | config | requests | task-clock ms | context switches per 1k req | migrations per 1k req | system calls per req | epoll_wait per req | cache references per req | cache misses per req |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for mode in keep-alive pipelined; do
        for config in "${configs[@]}"; do
            wrk_mode "$mode" "$DEPTH"
            start_config "$config"
            perf_wrk "$events"
            awk -F, -v m="$mode" -v c="$config" -v r="${requests:-0}" '
                { v[$3] = $1 }
                function per(e, scale) {
                    if (!(e in v) || v[e] ~ /not/) return "<not supported>"
                    return r ? sprintf("%.3f", v[e] * scale / r) : "n/a"
                }
                END {
                    printf "| %s | %s | %d | %.0f | %s | %s | %s | %s | %s | %s |\n", m, c, r, v["task-clock"],
                        per("context-switches", 1000), per("cpu-migrations", 1000),
                        per("raw_syscalls:sys_enter", 1), per("syscalls:sys_enter_epoll_wait", 1),
                        per("cache-references", 1), per("cache-misses", 1)
                }' "$logs/perf.csv"
        done
    done
fi
[ "$failed" = 0 ]
