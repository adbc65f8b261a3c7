#!/usr/bin/env bash
# keel against hyper (and other peers) under wrk, on 127.0.0.1, one serving
# thread each.
#
#   benches/load/run.sh                     # DURATION=5 ROUNDS=3
#   PEERS=hyper,actix,may benches/load/run.sh
#   DURATION=10 ROUNDS=5 benches/load/run.sh | tee benches/results/load-$(date +%F)-$(git rev-parse --short HEAD).txt
#
# Builds release binaries of examples/hello (keel) and of the peers in PEERS
# (default hyper; comma-separated): benches' hyper-hello (hyper 1.x),
# actix_hello (actix-web 4) and may_hello (may_minihttp), the same contract,
# then for ROUNDS rounds runs, in each of three modes, one wrk run against
# each server, reversing the order every other round:
#
#   keep-alive   wrk -t1 -c$CONNECTIONS -d${DURATION}s
#   pipelined    the same with load/pipeline.lua: 16 requests per write
#   close        the same with -H 'Connection: close' (a new connection per request)
#
# Each server starts fresh for each run with `--workers 1`, pinned with
# `taskset -c $SERVER_CPU`; wrk is pinned to `$CLIENT_CPU`. At the end of a
# run the server's peak RSS (VmHWM) is read from /proc. The table holds the
# medians over the rounds and the keel/peer ratio for each peer (> 1: keel is
# faster for req/s; < 1: keel's latency or memory is lower), and each
# server's user and system CPU µs per request.
#
# Environment: DURATION (s, default 5), ROUNDS (default 3), CONNECTIONS
# (default 64), DEPTH (pipelined requests per write, default 16), PATH_
# (request path, default /plaintext), SERVER_CPU (0), CLIENT_CPU (1),
# KEEL_PORT (18080), HYPER_PORT (18081), ACTIX_PORT (18082), MAY_PORT
# (18083), PEERS (hyper), SKIP_BUILD=1 to use built binaries,
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
ACTIX_PORT=${ACTIX_PORT:-18082}
MAY_PORT=${MAY_PORT:-18083}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
build_pair
present=(keel "${peers[@]}")

# port_of NAME: the port a server listens on.
port_of() {
    case $1 in
        keel) echo "$KEEL_PORT" ;;
        hyper) echo "$HYPER_PORT" ;;
        actix) echo "$ACTIX_PORT" ;;
        may) echo "$MAY_PORT" ;;
    esac
}

# run_wrk NAME MODE ROUND: one measured run; appends a row to $logs/rows.
run_wrk() {
    local name=$1 mode=$2 round=$3 port
    port=$(port_of "$name")
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

echo "# keel vs ${PEERS//,/, } under wrk"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), -t1 -c$CONNECTIONS -d${DURATION}s, path $PATH_, pipeline depth $DEPTH, $ROUNDS rounds"
echo "server: taskset -c $SERVER_CPU, --workers 1${SERVER_QUOTA:+, CPU capped at $SERVER_QUOTA% of a core (cgroup quota, 10 ms period)}; wrk: taskset -c $CLIENT_CPU"
servers="keel: $target/hello ${KEEL_ARGS:-}"
for peer in "${peers[@]}"; do servers+="; $peer: $target/$(peer_bin "$peer")"; done
echo "$servers"
echo

: >"$logs/rows"
for round in $(seq "$ROUNDS"); do
    # Reverse the order every other round, so drift over the run hits all alike.
    set_round_order "$round"
    for mode in keep-alive pipelined close; do
        for name in "${order[@]}"; do
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

# round_ratio_median COLUMN MODE PEER: the median over rounds of keel/PEER within a round.
round_ratio_median() {
    awk -v c="$1" -v m="$2" -v p="$3" '$1 == m { v[$3, $2] = $c; r[$3] = 1 }
        END { for (k in r) if (v[k, p] + 0 > 0 && (k, "keel") in v) print v[k, "keel"] / v[k, p] }' "$logs/rows" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "n/a"; exit }
            printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# The summary tables: a column per server, then a keel/peer ratio per peer.
# With one peer the ratio heads are those run.sh printed before PEERS
# ("req/s ratio"); with several each names its peer ("keel/actix req/s").
head_line='' rule_line=''
# server_heads HEAD: a column per server; "%s" in HEAD becomes its name.
server_heads() {
    local name
    for name in "${present[@]}"; do head_line+=" | ${1//%s/$name}" rule_line+=" | ---:"; done
}
# ratio_heads SINGLE WHAT: a column per peer, headed SINGLE with one peer,
# "keel/PEER WHAT" (PREFIX before it, if any) with several.
ratio_heads() {
    local peer
    for peer in "${peers[@]}"; do
        if [ ${#peers[@]} = 1 ]; then head_line+=" | $1"; else head_line+=" | ${3:+$3 }keel/$peer $2"; fi
        rule_line+=" | ---:"
    done
}
# print_heads: prints the table's head and rule, then starts a new one.
print_heads() {
    echo "| mode$head_line |"
    echo "| ---$rule_line |"
    head_line='' rule_line=''
}
# ratio_cells VALUES...: for the values of keel then of each peer (in
# $present's order), a cell per peer with keel's value / the peer's.
ratio_cells() {
    local keel=$1 value
    shift
    for value in "$@"; do printf ' | %s' "$(ratio "$keel" "$value")"; done
}
# cells FORMAT VALUES...: a cell per value.
cells() {
    local format=$1 value
    shift
    # shellcheck disable=SC2059 # FORMAT is the caller's: %s or %.0f
    for value in "$@"; do printf " | $format" "$value"; done
}

echo
echo "## medians of $ROUNDS rounds (ratio = keel / ${PEERS//,/, keel / })"
echo
echo "req/s ratio > 1: keel serves more; latency and memory ratios < 1: keel is lower."
echo "\"per-round\" is the median of the ratios taken within each round (robust to drift between rounds)."
echo
server_heads "%s req/s"
ratio_heads "req/s ratio" "req/s"
ratio_heads "per-round req/s ratio" "req/s" per-round
server_heads "%s p50 µs"
ratio_heads "p50 ratio" "p50"
server_heads "%s p99 µs"
ratio_heads "p99 ratio" "p99"
print_heads
for mode in keep-alive pipelined close; do
    rps=() p50=() p99=() per_round=()
    for name in "${present[@]}"; do
        rps+=("$(median 4 "$mode" "$name")") p50+=("$(median 5 "$mode" "$name")") p99+=("$(median 6 "$mode" "$name")")
    done
    for peer in "${peers[@]}"; do per_round+=("$(round_ratio_median 4 "$mode" "$peer")"); done
    echo "| $mode$(cells %.0f "${rps[@]}")$(ratio_cells "${rps[@]}")$(cells %s "${per_round[@]}")$(cells %s "${p50[@]}")$(ratio_cells "${p50[@]}")$(cells %s "${p99[@]}")$(ratio_cells "${p99[@]}") |"
done
echo
server_heads "%s peak RSS MiB"
ratio_heads "RSS ratio" "RSS"
server_heads "%s server CPU %"
server_heads "%s wrk core %"
server_heads "%s req per server CPU-s"
ratio_heads "ratio" "req per CPU-s"
server_heads "%s user / system µs per req"
print_heads
for mode in keep-alive pipelined close; do
    rss=() cpu=() wrk_core=() per_cpu=() split=()
    for name in "${present[@]}"; do
        requests=$(median 4 "$mode" "$name") busy=$(median 10 "$mode" "$name")
        rss+=("$(median 7 "$mode" "$name")") cpu+=("$busy") wrk_core+=("$(median 11 "$mode" "$name")")
        per_cpu+=("$(awk -v r="$requests" -v c="$busy" 'BEGIN { if (c > 0) printf "%.0f", r * 100 / c; else print 0 }')")
        split+=("$(median 13 "$mode" "$name") / $(median 14 "$mode" "$name")")
    done
    mibs=()
    for kb in "${rss[@]}"; do mibs+=("$(mib "$kb")"); done
    echo "| $mode$(cells %s "${mibs[@]}")$(ratio_cells "${rss[@]}")$(cells %s "${cpu[@]}")$(cells %s "${wrk_core[@]}")$(cells %s "${per_cpu[@]}")$(ratio_cells "${per_cpu[@]}")$(cells %s "${split[@]}") |"
done
echo
echo "Latencies are wrk's samples without its coordinated-omission correction (see report.lua);"
echo "in the pipelined mode one sample is one batch of $DEPTH requests, from its write to its last response."
echo "Server CPU % is the server process's user + system time over the run (100 = one core),"
echo "split per request into user and system (kernel) time, at the clock tick's resolution;"
echo "when it is well under 100 the client (wrk core busy %) or the kernel's loopback path was the limit."
case ",$PEERS," in
    *,may,*)
        echo "may_minihttp ignores \`Connection: close\` (it answers and keeps the connection open),"
        echo "so its close row measures keep-alive requests, not a connection per request."
        ;;
esac

INSN_N=${INSN_N:-20000}
if [ "$INSN_N" -gt 0 ]; then
    need valgrind
    echo
    SKIP_BUILD=${SKIP_BUILD:-0} N=$INSN_N TOP=0 GZIP_N=0 "$here/instructions.sh"
fi
