#!/usr/bin/env bash
# keel against hyper under wrk, on 127.0.0.1, one serving thread each.
#
#   benches/load/run.sh                     # DURATION=5 ROUNDS=3
#   DURATION=10 ROUNDS=5 benches/load/run.sh | tee benches/results/load-$(date +%F)-$(git rev-parse --short HEAD).txt
#
# Builds release binaries of examples/hello (keel) and benches' hyper-hello
# (hyper 1.x, the same contract), then for ROUNDS rounds runs, in each of three
# modes, one wrk run against each server, alternating which goes first:
#
#   keep-alive   wrk -t1 -c$CONNECTIONS -d${DURATION}s
#   pipelined    the same with load/pipeline.lua: 16 requests per write
#   close        the same with -H 'Connection: close' (a new connection per request)
#
# Each server starts fresh for each run with `--workers 1`, pinned with
# `taskset -c $SERVER_CPU`; wrk is pinned to `$CLIENT_CPU`. At the end of a
# run the server's peak RSS (VmHWM) is read from /proc. The table holds the
# medians over the rounds and the keel/hyper ratio (> 1: keel is faster for
# req/s; < 1: keel's latency or memory is lower).
#
# Environment: DURATION (s, default 5), ROUNDS (default 3), CONNECTIONS
# (default 64), DEPTH (pipelined requests per write, default 16), PATH_
# (request path, default /plaintext), SERVER_CPU (0), CLIENT_CPU (1),
# KEEL_PORT (18080), HYPER_PORT (18081), SKIP_BUILD=1 to use built binaries,
# SERVER_QUOTA (percent of one core each server may use, e.g. 40; unset: no
# cap), KEEL_ARGS (extra flags for hello, e.g. "--defer-accept 0"),
# INSN_N (requests counted by callgrind at the end, default 20000; 0 skips it).
#
# Last, it prints instructions per in-memory GET /plaintext for keel, hyper
# and httparse alone, counted by callgrind (benches/load/instructions.sh):
# unlike req/s on a shared machine, those counts do not drift between runs.
# Needs wrk (installed with apt-get when missing and run as root) and taskset.
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
DEPTH=${DEPTH:-16}
PATH_=${PATH_:-/plaintext}
KEEL_PORT=${KEEL_PORT:-18080}
HYPER_PORT=${HYPER_PORT:-18081}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
build_pair

# run_wrk NAME MODE ROUND: one measured run; appends a row to $logs/rows.
run_wrk() {
    local name=$1 mode=$2 round=$3 port
    if [ "$name" = keel ]; then port=$KEEL_PORT; else port=$HYPER_PORT; fi
    wrk_mode "$mode" "$DEPTH"
    start_pair_server "$name" "$port"
    local url="http://127.0.0.1:$port$PATH_"
    local cpu_before core_before split_before
    cpu_before=$(proc_cpu_ticks "$server_pid")
    split_before=$(proc_cpu_split "$server_pid")
    core_before=$(core_ticks "$CLIENT_CPU")
    steal_before=$(core_ticks "")
    WRK_CONNECTIONS=$CONNECTIONS "${pin_client[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "${wrk_script[@]}" "$url" "${wrk_tail[@]}" >"$logs/wrk.out" 2>&1 || true
    local hwm cpu core steal split_after
    hwm=$(peak_rss_kb "$server_pid")
    split_after=$(proc_cpu_split "$server_pid")
    # Server process CPU time and the wrk core's busy share, over the run.
    cpu=$(awk -v a="$cpu_before" -v b="$(proc_cpu_ticks "$server_pid")" -v hz="$clk_tck" -v d="$DURATION" \
        'BEGIN { printf "%.0f", 100 * (b - a) / hz / d }')
    core=$(core_ticks "$CLIENT_CPU" | awk -v before="$core_before" '{
        split(before, x, " "); printf "%.0f", 100 * ($1 - x[1]) / ($2 - x[2] + 1e-9) }')
    # Time the hypervisor took from this VM, all cores: a noisy neighbour.
    steal=$(core_ticks "" | awk -v before="$steal_before" '{
        split(before, x, " "); printf "%.1f", 100 * ($3 - x[3]) / ($2 - x[2] + 1e-9) }')
    stop_server
    echo "### round $round, $mode, $name (peak RSS ${hwm} kB, server CPU ${cpu}%, wrk core busy ${core}%, steal ${steal}%)"
    sed 's/^/    /' "$logs/wrk.out"
    local line
    line=$(grep '^RESULT ' "$logs/wrk.out" || true)
    if [ -z "$line" ]; then
        echo "run.sh: no RESULT from wrk for $name $mode" >&2
        return
    fi
    # mode name round rps p50 p99 hwm errors non2xx server-cpu% wrk-core% steal%
    # user-µs/request system-µs/request
    echo "$line" | awk -v m="$mode" -v n="$name" -v r="$round" -v h="$hwm" -v c="$cpu" -v k="$core" -v s="$steal" \
        -v before="$split_before" -v after="$split_after" -v hz="$clk_tck" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        split(before, b, " "); split(after, a, " ")
        per = v["requests"] > 0 ? 1e6 / hz / v["requests"] : 0
        printf "%s %s %s %s %s %s %s %s %s %s %s %s %.2f %.2f\n", m, n, r, v["rps"], v["p50_us"], v["p99_us"], h,
            v["errors"], v["non2xx"], c, k, s, (a[1] - b[1]) * per, (a[2] - b[2]) * per
    }' >>"$logs/rows"
}

echo "# keel vs hyper under wrk"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), -t1 -c$CONNECTIONS -d${DURATION}s, path $PATH_, pipeline depth $DEPTH, $ROUNDS rounds"
echo "server: taskset -c $SERVER_CPU, --workers 1${SERVER_QUOTA:+, CPU capped at $SERVER_QUOTA% of a core (cgroup quota, 10 ms period)}; wrk: taskset -c $CLIENT_CPU"
echo "keel: $target/hello ${KEEL_ARGS:-}; hyper: $target/hyper-hello"
echo

: >"$logs/rows"
for round in $(seq "$ROUNDS"); do
    # Alternate who goes first, so drift over the run hits both alike.
    if [ $((round % 2)) = 1 ]; then order="keel hyper"; else order="hyper keel"; fi
    for mode in keep-alive pipelined close; do
        for name in $order; do
            run_wrk "$name" "$mode" "$round"
        done
    done
done

echo
echo "## per run"
echo
echo "| mode | server | round | req/s | p50 µs | p99 µs | peak RSS kB | server CPU % | user µs/req | system µs/req | wrk core busy % | steal % | socket errors | non-2xx |"
echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk '{printf "| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $10, $13, $14, $11, $12, $8, $9}' "$logs/rows"

# median COLUMN MODE NAME
median() { median_of "$1" "\$1 == \"$2\" && \$2 == \"$3\"" "$logs/rows"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# round_ratio_median COLUMN MODE: the median over rounds of keel/hyper within a round.
round_ratio_median() {
    awk -v c="$1" -v m="$2" '$1 == m { v[$3, $2] = $c; r[$3] = 1 }
        END { for (k in r) if (v[k, "hyper"] + 0 > 0 && (k, "keel") in v) print v[k, "keel"] / v[k, "hyper"] }' "$logs/rows" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "n/a"; exit }
            printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "## medians of $ROUNDS rounds (ratio = keel / hyper)"
echo
echo "req/s ratio > 1: keel serves more; latency and memory ratios < 1: keel is lower."
echo "\"per-round\" is the median of the ratios taken within each round (robust to drift between rounds)."
echo
echo "| mode | keel req/s | hyper req/s | req/s ratio | per-round req/s ratio | keel p50 µs | hyper p50 µs | p50 ratio | keel p99 µs | hyper p99 µs | p99 ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for mode in keep-alive pipelined close; do
    kr=$(median 4 "$mode" keel) hr=$(median 4 "$mode" hyper)
    k50=$(median 5 "$mode" keel) h50=$(median 5 "$mode" hyper)
    k99=$(median 6 "$mode" keel) h99=$(median 6 "$mode" hyper)
    printf '| %s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$mode" "$kr" "$hr" "$(ratio "$kr" "$hr")" "$(round_ratio_median 4 "$mode")" \
        "$k50" "$h50" "$(ratio "$k50" "$h50")" \
        "$k99" "$h99" "$(ratio "$k99" "$h99")"
done
echo
echo "| mode | keel peak RSS MiB | hyper peak RSS MiB | RSS ratio | keel server CPU % | hyper server CPU % | keel wrk core % | hyper wrk core % | keel req per server CPU-s | hyper req per server CPU-s | ratio | keel user / system µs per req | hyper user / system µs per req |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for mode in keep-alive pipelined close; do
    kr=$(median 4 "$mode" keel) hr=$(median 4 "$mode" hyper)
    km=$(median 7 "$mode" keel) hm=$(median 7 "$mode" hyper)
    kc=$(median 10 "$mode" keel) hc=$(median 10 "$mode" hyper)
    kw=$(median 11 "$mode" keel) hw=$(median 11 "$mode" hyper)
    ke=$(awk -v r="$kr" -v c="$kc" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print 0 }')
    he=$(awk -v r="$hr" -v c="$hc" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print 0 }')
    ku=$(median 13 "$mode" keel) hu=$(median 13 "$mode" hyper)
    ks=$(median 14 "$mode" keel) hs=$(median 14 "$mode" hyper)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n' \
        "$mode" "$(mib "$km")" "$(mib "$hm")" "$(ratio "$km" "$hm")" \
        "$kc" "$hc" "$kw" "$hw" "$ke" "$he" "$(ratio "$ke" "$he")" "$ku" "$ks" "$hu" "$hs"
done
echo
echo "Latencies are wrk's samples without its coordinated-omission correction (see report.lua);"
echo "in the pipelined mode one sample is one batch of $DEPTH requests, from its write to its last response."
echo "Server CPU % is the server process's user + system time over the run (100 = one core),"
echo "split per request into user and system (kernel) time, at the clock tick's resolution;"
echo "when it is well under 100 the client (wrk core busy %) or the kernel's loopback path was the limit."

INSN_N=${INSN_N:-20000}
if [ "$INSN_N" -gt 0 ]; then
    need valgrind
    echo
    SKIP_BUILD=${SKIP_BUILD:-0} N=$INSN_N TOP=0 GZIP_N=0 "$here/instructions.sh"
fi
