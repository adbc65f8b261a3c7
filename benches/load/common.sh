# Shared by the load scripts (sourced, not run): wrk, core pinning, a
# server's start and stop, its CPU time, and medians over result rows.
# Expects $here (this directory) to be set; sets $root (the workspace, also
# the working directory), $target (the release binaries) and $logs (a
# scratch directory removed at exit with cleanup_load, the EXIT trap).

root=$(cd "$here/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}/release
logs=$(mktemp -d)

# need COMMAND [PACKAGE]: installs the Debian package (default: the
# command's name) when the command is missing and we are root; else exits.
need() {
    command -v "$1" >/dev/null && return 0
    local package=${2:-$1}
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get install -y "$package" >/dev/null ||
            { apt-get update >/dev/null && apt-get install -y "$package" >/dev/null; }
    else
        echo "$1 is missing (apt-get install $package)" >&2
        exit 1
    fi
}
# A script that drives its own client (streams.sh) sets NEED_WRK=0.
[ "${NEED_WRK:-1}" = 0 ] || need wrk

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if [ "$(nproc)" -ge 2 ]; then
    pin_server=(taskset -c "$SERVER_CPU")
    pin_client=(taskset -c "$CLIENT_CPU")
else
    echo "one core only: nothing pinned, server and wrk share it" >&2
    pin_server=()
    pin_client=()
fi

# SERVER_QUOTA=P caps the server at P% of one core with a cgroup CPU quota
# (10 ms period), so that the server, not wrk, is the bottleneck: wrk on one
# core drives either server faster than it can issue requests otherwise.
# Needs root and the cgroup cpu controller (v1 or v2).
SERVER_QUOTA=${SERVER_QUOTA:-}
quota_group=
if [ -n "$SERVER_QUOTA" ]; then
    if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
        quota_group=/sys/fs/cgroup/keel-load-$$
        echo +cpu >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        mkdir "$quota_group"
        echo "$((SERVER_QUOTA * 100)) 10000" >"$quota_group/cpu.max"
    else
        quota_group=/sys/fs/cgroup/cpu/keel-load-$$
        mkdir "$quota_group"
        echo 10000 >"$quota_group/cpu.cfs_period_us"
        echo "$((SERVER_QUOTA * 100))" >"$quota_group/cpu.cfs_quota_us"
    fi
fi
# remove_quota_group: for the caller's EXIT trap.
remove_quota_group() { [ -z "$quota_group" ] || rmdir "$quota_group" 2>/dev/null || true; }

server_pid=
# cleanup_load: stops the server and removes what the script made; a script
# with more to clean up calls it from its own trap.
cleanup_load() {
    stop_server
    remove_quota_group
    rm -rf "$logs"
}
trap cleanup_load EXIT

stop_server() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}

# server_wrap: a command the server runs under (server_instructions.sh
# sets callgrind); empty by default.
server_wrap=()

# start_server NAME COMMAND...: starts it pinned to $SERVER_CPU and waits
# for its "listening on http://" (or https://) line; sets $server_pid.
start_server() {
    local name=$1
    shift
    : >"$logs/$name.out"
    "${pin_server[@]}" "${server_wrap[@]}" "$@" >"$logs/$name.out" 2>"$logs/$name.err" &
    server_pid=$!
    [ -z "$quota_group" ] || echo "$server_pid" >"$quota_group/cgroup.procs"
    for _ in $(seq "${START_TENTHS:-100}"); do
        grep -q 'listening on https\?://' "$logs/$name.out" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$logs/$name.out" "$logs/$name.err" >&2
    exit 1
}

# PEERS: the servers of the hello contract run against keel (run.sh,
# syscalls.sh), comma-separated: hyper (the default), actix, may. $peers
# holds them as an array.
PEERS=${PEERS:-hyper}
IFS=, read -r -a peers <<<"$PEERS"

# peer_bin NAME: the benches binary serving the hello contract for a peer.
peer_bin() {
    case $1 in
        hyper) echo hyper-hello ;;
        actix) echo actix_hello ;;
        may) echo may_hello ;;
        *) return 1 ;;
    esac
}
for peer in "${peers[@]}"; do
    peer_bin "$peer" >/dev/null || { echo "PEERS: unknown server \"$peer\" (hyper, actix, may)" >&2; exit 2; }
done

# build_pair: release binaries of hello (keel) and of each of $PEERS,
# unless SKIP_BUILD=1.
build_pair() {
    [ "${SKIP_BUILD:-0}" = 1 ] && return
    cargo build --release -p hello >&2
    local bins=() peer
    for peer in "${peers[@]}"; do bins+=(--bin "$(peer_bin "$peer")"); done
    cargo build --release -p keel-benches "${bins[@]}" >&2
}

# start_pair_server NAME PORT: keel (hello, with $KEEL_ARGS) or a peer
# (hyper, actix, may: peer_bin), one worker, on 127.0.0.1:PORT.
start_pair_server() {
    if [ "$1" = keel ]; then
        # shellcheck disable=SC2086 # KEEL_ARGS is a list of flags
        start_server keel "$target/hello" --addr "127.0.0.1:$2" --workers 1 ${KEEL_ARGS:-}
    else
        start_server "$1" "$target/$(peer_bin "$1")" --addr "127.0.0.1:$2" --workers 1
    fi
}

# wrk_mode MODE DEPTH: sets wrk_script (the script and header options) and
# wrk_tail (the script's arguments) for keep-alive, pipelined or close.
wrk_mode() {
    wrk_tail=()
    case $1 in
        keep-alive) wrk_script=(-s "$here/report.lua") ;;
        pipelined) wrk_script=(-s "$here/pipeline.lua") wrk_tail=(-- "$2") ;;
        close) wrk_script=(-s "$here/report.lua" -H 'Connection: close') ;;
    esac
}

clk_tck=$(getconf CLK_TCK)
# proc_cpu_ticks PID: user + system CPU time of a process, in clock ticks.
proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# seconds_of TICKS: clock ticks as seconds, two decimals.
seconds_of() { awk -v t="$1" -v hz="$clk_tck" 'BEGIN { printf "%.2f", t / hz }'; }
# proc_cpu_split PID: "user system" CPU time of a process, in clock ticks.
proc_cpu_split() { awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo 0 0; }
# core_ticks N: "busy total steal" jiffies of core N, or of all cores with
# N empty (idle and iowait are not busy).
core_ticks() {
    awk -v cpu="cpu$1" '$1 == cpu {
        total = 0; for (i = 2; i <= 9; i++) total += $i
        print total - $5 - $6, total, $9 }' /proc/stat
}
# peak_rss_kb PID: the process's peak resident set (VmHWM), in kB.
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# wrk_result FILE: wrk's output's RESULT line (from report.lua) as
# "rps p50_us p99_us errors non2xx requests", or nothing.
wrk_result() {
    grep '^RESULT ' "$1" | awk '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        print v["rps"], v["p50_us"], v["p99_us"], v["errors"], v["non2xx"], v["requests"]
    }'
}

# wrk_row TEST LABEL NAME ROUND CONNECTIONS SECONDS URL: wrk -t1 against
# the server just started for it ($server_pid, stopped here), with
# report.lua; prints its line, and appends "TEST name round rps cpu_pct
# cpu_us_per_request p99_us" to $logs/rows, or FAILs on a wrk error, a
# non-2xx answer or no request at all.
wrk_row() {
    local test=$1 label=$2 name=$3 round=$4 connections=$5 seconds=$6 url=$7
    local before ticks result rps p99 errors non2xx requests
    before=$(proc_cpu_ticks "$server_pid")
    WRK_CONNECTIONS=$connections "${pin_client[@]}" wrk -t1 -c"$connections" -d"${seconds}s" \
        -s "$here/report.lua" "$url" >"$logs/wrk.out" 2>&1 || true
    ticks=$(($(proc_cpu_ticks "$server_pid") - before))
    stop_server
    result=$(wrk_result "$logs/wrk.out")
    echo "### round $round, $label, $name: server CPU $(seconds_of "$ticks") s; rps p50_us p99_us errors non2xx requests: ${result:-none}"
    read -r rps _ p99 errors non2xx requests <<<"${result:-0 0 0 0 0 0}"
    if [ -z "$result" ] || [ "$requests" = 0 ] || [ "$non2xx" != 0 ] || [ "$errors" != 0 ]; then
        fail "$label, $name: wrk reported ${result:-nothing}"
        sed 's/^/    /' "$logs/wrk.out"
        return
    fi
    awk -v t0="$test" -v n="$name" -v r="$round" -v rps="$rps" -v req="$requests" -v t="$ticks" \
        -v hz="$clk_tck" -v s="$seconds" -v p99="$p99" \
        'BEGIN { printf "%s %s %s %s %.0f %.2f %s\n", t0, n, r, rps, 100 * t / hz / s, 1e6 * t / hz / req, p99 }' >>"$logs/rows"
}

# median_of COLUMN FILTER_AWK ROWS_FILE: the median of a column over the
# rows the awk condition selects.
median_of() {
    awk "$2 { print \$$1 }" "$3" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "nan"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

# fail MESSAGE: prints a FAILED line and marks the run as failed ($failed).
failed=0
fail() {
    echo "FAILED: $*"
    failed=1
}

# set_round_order ROUND: $order becomes the servers in $present, reversed
# on even rounds: alternating who goes first, drift over the run hits
# both alike.
set_round_order() {
    order=("${present[@]}")
    if [ $(($1 % 2)) = 0 ]; then
        order=()
        local i
        for ((i = ${#present[@]} - 1; i >= 0; i--)); do order+=("${present[i]}"); done
    fi
}

# perf_wrk EVENTS: counts EVENTS on the running server with perf stat while
# wrk drives it in the mode wrk_mode set ($CONNECTIONS, $DURATION, $PORT),
# then stops the server. The counts are left in $logs/perf.csv (perf's -x,
# format), wrk's output in $logs/wrk.out; sets $requests to wrk's count.
perf_wrk() {
    perf stat -x, -e "$1" -p "$server_pid" -o "$logs/perf.csv" &
    local perf_pid=$!
    sleep 0.2
    WRK_CONNECTIONS=$CONNECTIONS "${pin_client[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "${wrk_script[@]}" \
        "http://127.0.0.1:$PORT/plaintext" "${wrk_tail[@]}" >"$logs/wrk.out" 2>&1 || true
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    stop_server
    requests=$(wrk_result "$logs/wrk.out" | awk '{ print $6 }')
}
