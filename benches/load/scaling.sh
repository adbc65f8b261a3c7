#!/usr/bin/env bash
# keel's hello with 1 and with 2 workers under the same total CPU quota:
# does the work per CPU-second stay the same when it is spread over two
# worker threads? With shared-nothing workers it should (2-worker /
# 1-worker ratio ~1.0); a ratio well below 1 is what workers cost each
# other (shared cache lines, locks, the kernel's shared paths).
#
#   benches/load/scaling.sh                 # DURATION=5 ROUNDS=3 SERVER_QUOTA=50
#   SERVER_QUOTA=100 benches/load/scaling.sh | tee benches/results/scaling-$(date +%F)-$(git rev-parse --short HEAD).txt
#
# Builds examples/hello (release), then for ROUNDS rounds, in each mode
# (keep-alive; pipelined by DEPTH), runs wrk -t1 -c$CONNECTIONS against
# `hello --workers 1` and `hello --workers 2` (their order reversed every
# other round). Nothing is pinned: the server's threads and wrk share both
# cores, as they must for 2 workers to run at once. The server process sits
# in a cgroup capped at SERVER_QUOTA% of one core (the same cap for both, so
# both get the same CPU time and the server, not wrk, is the limit; the
# throttled share of the cgroup's periods shows whether it was).
#
# Per run: req/s, the server's CPU time per request (user + system, at the
# clock tick's resolution), and each worker thread's share of the server's
# CPU (from /proc/PID/task: SO_REUSEPORT spreads wrk's connections over
# the workers' listeners by a hash of the 4-tuple; a 2-worker run whose
# threads do not both work measures nothing). Then one more run of each
# under `perf stat` for the counters this machine exposes (cache misses
# and references where the CPU's counters are visible; a VM often shows
# only software events, which is said as "<not supported>").
#
# Environment: DURATION (s, default 5), ROUNDS (3), CONNECTIONS (64),
# DEPTH (16), PORT (18086), SERVER_QUOTA (percent of one core for the
# server process, default 50; 100 = one core's worth), SKIP_BUILD=1,
# PERF=0 to skip the perf pass. Needs root (the cgroup, perf), wrk and perf
# (both installed with apt-get when missing).
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
DEPTH=${DEPTH:-16}
PORT=${PORT:-18086}
# Read by common.sh, which makes the cgroup.
SERVER_QUOTA=${SERVER_QUOTA:-50}
PERF=${PERF:-1}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
[ "$PERF" = 0 ] || need perf linux-perf
# Server and client share both cores: no pinning.
pin_server=()
pin_client=()
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p hello >&2

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

# run_wrk MODE WORKERS ROUND: one measured run; appends "mode workers round
# rps requests cpu_ticks throttled% min_share%" to $logs/rows.
run_wrk() {
    local mode=$1 workers=$2 round=$3
    wrk_mode "$mode" "$DEPTH"
    start_server "keel-$workers" "$target/hello" --addr "127.0.0.1:$PORT" --workers "$workers"
    local cpu_before threads_before throttle_before
    cpu_before=$(proc_cpu_ticks "$server_pid")
    threads_before=$(worker_ticks "$server_pid")
    throttle_before=$(throttle_counts)
    WRK_CONNECTIONS=$CONNECTIONS wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${wrk_script[@]}" \
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
    echo "### round $round, $mode, $workers worker(s): server CPU $(seconds_of "$ticks") s," \
        "throttled in $throttled% of periods, worker CPU shares: $shares;" \
        "rps p50_us p99_us errors non2xx requests: ${result:-none}"
    read -r rps _ _ errors non2xx requests <<<"${result:-0 0 0 0 0 0}"
    if [ -z "$result" ] || [ "$requests" = 0 ] || [ "$non2xx" != 0 ] || [ "$errors" != 0 ]; then
        fail "$mode, $workers worker(s): wrk reported ${result:-nothing}"
        sed 's/^/    /' "$logs/wrk.out"
        return
    fi
    local min_share
    min_share=$(echo "$shares" | grep -o '[0-9]*%' | tr -d % | sort -n | head -1)
    if [ "$workers" -gt 1 ] && [ "${min_share:-0}" -lt 25 ]; then
        fail "$mode, $workers workers: one worker did ${min_share:-0}% of the work (connections not spread)"
    fi
    echo "$mode $workers $round $rps $requests $ticks $throttled ${min_share:-100}" >>"$logs/rows"
}

echo "# keel, 1 vs 2 workers under the same CPU quota"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), -t1 -c$CONNECTIONS -d${DURATION}s, GET /plaintext, pipeline depth $DEPTH, $ROUNDS rounds"
echo "server: $target/hello --workers 1 or 2, CPU capped at $SERVER_QUOTA% of one core for the whole process (cgroup quota, 10 ms period); nothing pinned"
echo

: >"$logs/rows"
present=(1 2)
for round in $(seq "$ROUNDS"); do
    set_round_order "$round"
    for mode in keep-alive pipelined; do
        for workers in "${order[@]}"; do
            run_wrk "$mode" "$workers" "$round"
        done
    done
done

# median COLUMN MODE WORKERS
median() { median_of "$1" "\$1 == \"$2\" && \$2 == \"$3\"" "$logs/rows"; }
# per_round_median MODE: the median over rounds of (2-worker req/s / 1-worker req/s).
per_round_median() {
    awk -v m="$1" '$1 == m { v[$3, $2] = $4; r[$3] = 1 }
        END { for (k in r) if (v[k, 1] > 0 && v[k, 2] > 0) print v[k, 2] / v[k, 1] }' "$logs/rows" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "n/a"; exit }
            printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A med_rps med_per
ratios=()
echo
echo "## medians of $ROUNDS rounds"
echo
echo "| mode | workers | req/s | server CPU % (of one core) | server CPU µs per request | throttled periods % | smallest worker share % |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for mode in keep-alive pipelined; do
    for workers in 1 2; do
        awk -v m="$mode" -v w="$workers" -v hz="$clk_tck" -v d="$DURATION" '$1 == m && $2 == w {
            printf "%s %.1f %.3f\n", $4, 100 * $6 / hz / d, 1e6 * $6 / hz / $5 }' "$logs/rows" >"$logs/derived"
        rps=$(median 4 "$mode" "$workers")
        cpu=$(median_of 2 1 "$logs/derived")
        per=$(median_of 3 1 "$logs/derived")
        echo "| $mode | $workers | $(printf %.0f "$rps") | $cpu | $per | $(median 7 "$mode" "$workers") | $(median 8 "$mode" "$workers") |"
        med_rps[$workers]=$rps med_per[$workers]=$per
    done
    ratios+=("| $mode | $(ratio "${med_rps[2]}" "${med_rps[1]}") | $(per_round_median "$mode") | $(ratio "${med_per[2]}" "${med_per[1]}") |")
done
echo
echo "| mode | req/s 2 workers / 1 worker | the same, median of per-round ratios | CPU µs per request 2 / 1 |"
echo "| --- | ---: | ---: | ---: |"
printf '%s\n' "${ratios[@]}"
echo
echo "Ideal shared-nothing scaling under an equal quota: req/s ratio 1.00 and CPU per request"
echo "ratio 1.00. Throttled periods near 100% mean the server used its whole quota (server-bound);"
echo "the smallest worker share is the least busy worker's part of the workers' CPU time (50 = even)."

if [ "$PERF" != 0 ]; then
    events=task-clock,context-switches,cpu-migrations,page-faults,cache-references,cache-misses
    echo
    echo "## perf stat -e $events -p <server>, one more run each"
    echo
    echo "| mode | workers | requests | task-clock ms | context switches per 1k req | migrations per 1k req | cache references per req | cache misses per req |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for mode in keep-alive pipelined; do
        for workers in 1 2; do
            wrk_mode "$mode" "$DEPTH"
            start_server "keel-$workers" "$target/hello" --addr "127.0.0.1:$PORT" --workers "$workers"
            perf stat -x, -e "$events" -p "$server_pid" -o "$logs/perf.csv" &
            perf_pid=$!
            sleep 0.2
            WRK_CONNECTIONS=$CONNECTIONS wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${wrk_script[@]}" \
                "http://127.0.0.1:$PORT/plaintext" "${wrk_tail[@]}" >"$logs/wrk.out" 2>&1 || true
            kill -INT "$perf_pid"
            wait "$perf_pid" || true
            stop_server
            requests=$(wrk_result "$logs/wrk.out" | awk '{ print $6 }')
            awk -F, -v m="$mode" -v w="$workers" -v r="${requests:-0}" '
                { v[$3] = $1 }
                function per(e, scale) {
                    if (!(e in v) || v[e] ~ /not/) return "<not supported>"
                    return r ? sprintf("%.3f", v[e] * scale / r) : "n/a"
                }
                END {
                    printf "| %s | %s | %d | %.0f | %s | %s | %s | %s |\n", m, w, r, v["task-clock"],
                        per("context-switches", 1000), per("cpu-migrations", 1000),
                        per("cache-references", 1), per("cache-misses", 1)
                }' "$logs/perf.csv"
        done
    done
fi
[ "$failed" = 0 ]
