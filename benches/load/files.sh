#!/usr/bin/env bash
# Files: keel (keel::files::ServeDir: sendfile, or one read into the output
# buffer for a small file) against hyper + tower-http's ServeDir (tokio::fs reads on
# the blocking pool, 64 KiB Bytes chunks), on 127.0.0.1, one serving thread
# each, pinned and optionally server-bound, as streams.sh.
#
#   benches/load/files.sh                          # keel and hyper, about 2 minutes
#   SERVER_QUOTA=40 benches/load/files.sh          # server-bound: 40% of a core each
#   ROUNDS=3 SMALL_SECONDS=5 benches/load/files.sh keel
#
# Servers are named by the arguments (default: keel hyper); server NAME is
# the release binary NAME_files of keel-benches, serving --root DIR:
#
#   keel_files   src/keel_files.rs: keel::files::ServeDir::new(DIR) on /*path
#   hyper_files  src/hyper_files.rs: ServeDir::new(DIR) through hyper-util's
#                TowerToHyperService, its defaults
#
# Both answer a file with Content-Type (mime_guess), Accept-Ranges: bytes,
# Last-Modified, Content-Length and Date; keel adds a strong ETag (tower-http
# has none) and `Server: keel`. Both honour the conditional headers and one
# Range (none of which the load below sends).
#
# The data is made once per run in a temporary directory: small.bin (4 KiB),
# large.bin (LARGE_BYTES, 100 MiB) and check.bin (CHECK_BYTES, 1 GiB), all
# random bytes from /dev/urandom, so in the page cache when the tests start.
#
#   small     wrk -t1 -c$SMALL_CONNECTIONS -d${SMALL_SECONDS}s, keep-alive,
#             GET /small.bin: requests/s, server CPU % and CPU us per request
#   large     curl: LARGE_DOWNLOADS downloads of /large.bin, LARGE_PARALLEL
#             at a time (curl --parallel, to /dev/null), each checked for
#             status 200 and its full size: MB/s, server CPU-seconds per GB
#             and server CPU %
#   syscalls  (once per server) the small test again for SYSCALL_SECONDS
#             under `perf stat` on the server's syscall tracepoints, as
#             syscalls.sh does, after a 1 s warm-up (tokio's blocking
#             threads exist before perf attaches; the openat column, about 1
#             per request for both, shows every thread was counted):
#             system calls per request answered
#   check     (once per server) /check.bin downloaded by curl and by wget
#             (-O-) and a 1,000,000-byte range from its middle by curl, each
#             piped into sha256sum and compared with the file's; wrk cannot
#             hash what it reads, hence wget as the second client
#
# The server starts fresh for each test with `--workers $WORKERS`, pinned to
# SERVER_CPU (capped at SERVER_QUOTA percent of a core when set); clients run
# on CLIENT_CPU. Server CPU is utime + stime from /proc/PID/stat (all
# threads, tokio's blocking pool included) before and after the client.
# Medians over ROUNDS rounds (alternating which server goes first) and
# keel/hyper ratios are printed and written to OUT (default
# benches/results/files[-quotaP]-DATE-COMMIT.txt; "-" for none).
#
# Environment: SMALL_CONNECTIONS (64), SMALL_SECONDS (10), LARGE_BYTES (100M;
# K, M, G are powers of 1024), LARGE_DOWNLOADS (30), LARGE_PARALLEL (4),
# CHECK_BYTES (1G; 0 skips the check), SYSCALL_SECONDS (3; 0 skips),
# ROUNDS (1), WORKERS (1), PORT (18095), SERVER_CPU (0), CLIENT_CPU (1),
# SERVER_QUOTA (unset: no cap), SKIP_BUILD=1, OUT. Needs wrk, curl, wget and
# perf (installed with apt-get when missing and root), and about
# LARGE_BYTES + CHECK_BYTES of room in TMPDIR.
set -euo pipefail

SMALL_CONNECTIONS=${SMALL_CONNECTIONS:-64}
SMALL_SECONDS=${SMALL_SECONDS:-10}
LARGE_BYTES=${LARGE_BYTES:-100M}
LARGE_DOWNLOADS=${LARGE_DOWNLOADS:-30}
LARGE_PARALLEL=${LARGE_PARALLEL:-4}
CHECK_BYTES=${CHECK_BYTES:-1G}
SYSCALL_SECONDS=${SYSCALL_SECONDS:-3}
ROUNDS=${ROUNDS:-1}
WORKERS=${WORKERS:-1}
PORT=${PORT:-18095}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(keel hyper)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
need curl
need wget
[ "$SYSCALL_SECONDS" = 0 ] || need perf linux-perf

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${OUT:-$root/benches/results/files${SERVER_QUOTA:+-quota$SERVER_QUOTA}-$(date -u +%F)-$commit.txt}

data=$(mktemp -d)
cleanup_files() {
    cleanup_load
    rm -rf "$data"
}
trap cleanup_files EXIT

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p keel-benches --bin keel_files --bin hyper_files >&2
fi
present=()
for name in "${servers[@]}"; do
    if [ -x "$target/${name}_files" ]; then
        present+=("$name")
    else
        echo "files.sh: skipping $name: no $target/${name}_files" >&2
    fi
done
[ ${#present[@]} -gt 0 ] || { echo "files.sh: no server to run" >&2; exit 1; }

bytes_of() { numfmt --from=iec "$1"; }
large_bytes=$(bytes_of "$LARGE_BYTES")
check_bytes=$(bytes_of "$CHECK_BYTES")
echo "files.sh: making the data in $data" >&2
head -c 4096 /dev/urandom >"$data/small.bin"
head -c "$large_bytes" /dev/urandom >"$data/large.bin"
if [ "$check_bytes" -gt 0 ]; then
    head -c "$check_bytes" /dev/urandom >"$data/check.bin"
    check_sha=$(sha256sum <"$data/check.bin" | cut -d' ' -f1)
fi

url() { echo "http://127.0.0.1:$PORT/$1"; }
start_files_server() {
    start_server "$1" "$target/${1}_files" --root "$data" --addr "127.0.0.1:$PORT" --workers "$WORKERS"
}


# small NAME ROUND: appends "small name round rps cpu_pct cpu_us_per_request p99_us".
small() {
    start_files_server "$1"
    wrk_row small small "$1" "$2" "$SMALL_CONNECTIONS" "$SMALL_SECONDS" "$(url small.bin)"
}

# large NAME ROUND: appends "large name round mb_per_s cpu_s_per_gb cpu_pct".
large() {
    local name=$1 round=$2 before ticks started ended args=() i
    for ((i = 0; i < LARGE_DOWNLOADS; i++)); do args+=(-o /dev/null "$(url large.bin)"); done
    start_files_server "$name"
    before=$(proc_cpu_ticks "$server_pid")
    started=$(date +%s.%N)
    "${pin_client[@]}" curl -s --parallel --parallel-max "$LARGE_PARALLEL" -w '%{http_code} %{size_download}\n' \
        "${args[@]}" >"$logs/curl.out" 2>&1 || true
    ended=$(date +%s.%N)
    ticks=$(($(proc_cpu_ticks "$server_pid") - before))
    stop_server
    local whole bytes seconds
    whole=$(awk -v want="$large_bytes" '$1 == 200 && $2 == want' "$logs/curl.out" | wc -l)
    bytes=$((whole * large_bytes))
    seconds=$(awk -v a="$started" -v b="$ended" 'BEGIN { print b - a }')
    echo "### round $round, large, $name: $whole of $LARGE_DOWNLOADS whole downloads in $seconds s, server CPU $(seconds_of "$ticks") s"
    if [ "$whole" != "$LARGE_DOWNLOADS" ]; then
        fail "large, $name: curl said"
        sed 's/^/    /' "$logs/curl.out"
        return
    fi
    awk -v n="$name" -v r="$round" -v b="$bytes" -v s="$seconds" -v t="$ticks" -v hz="$clk_tck" \
        'BEGIN { printf "large %s %s %.0f %.3f %.0f\n", n, r, b / 1e6 / s, t / hz / (b / 1e9), 100 * t / hz / s }' >>"$logs/rows"
}

calls=(read pread64 readv recvfrom write writev sendto sendfile64 openat statx newfstat lseek close epoll_wait epoll_ctl futex)
# syscalls NAME: one table row of system calls per small-file request.
syscalls() {
    local name=$1 events=raw_syscalls:sys_enter call perf_pid requests
    for call in "${calls[@]}"; do events+=",syscalls:sys_enter_$call"; done
    start_files_server "$name"
    "${pin_client[@]}" wrk -t1 -c"$SMALL_CONNECTIONS" -d1s "$(url small.bin)" >/dev/null 2>&1 || true
    perf stat -x, -e "$events" -p "$server_pid" -o "$logs/perf.csv" &
    perf_pid=$!
    sleep 0.2
    WRK_CONNECTIONS=$SMALL_CONNECTIONS "${pin_client[@]}" wrk -t1 -c"$SMALL_CONNECTIONS" -d"${SYSCALL_SECONDS}s" \
        -s "$here/report.lua" "$(url small.bin)" >"$logs/wrk.out" 2>&1 || true
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    stop_server
    requests=$(wrk_result "$logs/wrk.out" | awk '{ print $6 }')
    awk -F, -v n="$name" -v r="${requests:-0}" '
        $3 ~ /sys_enter/ { name = $3; sub(/.*sys_enter_?/, "", name); count[name] = $1 + 0; order[++k] = name }
        END {
            if (r == 0 || k == 0) { print "| " n " | no result |"; exit }
            line = sprintf("| %s | %d | %.2f", n, r, count[""] / r)
            for (i = 2; i <= k; i++) line = line sprintf(" | %.3f", count[order[i]] / r)
            print line " |"
        }' "$logs/perf.csv" >>"$logs/syscalls"
}

# check NAME: the 1 GiB file by curl and wget, and a range by curl, hashed.
check() {
    local name=$1 got mid=$((check_bytes / 2)) range_sha
    start_files_server "$name"
    # A client that fails leaves the hash of what it got: a mismatch below.
    got=$("${pin_client[@]}" curl -s --fail "$(url check.bin)" | sha256sum | cut -d' ' -f1) || true
    echo "| $name | curl, whole file | $got | $([ "$got" = "$check_sha" ] && echo same || echo DIFFERENT) |" >>"$logs/check"
    [ "$got" = "$check_sha" ] || fail "check, $name: curl's SHA-256 differs"
    got=$("${pin_client[@]}" wget -q -O- "$(url check.bin)" | sha256sum | cut -d' ' -f1) || true
    echo "| $name | wget -O-, whole file | $got | $([ "$got" = "$check_sha" ] && echo same || echo DIFFERENT) |" >>"$logs/check"
    [ "$got" = "$check_sha" ] || fail "check, $name: wget's SHA-256 differs"
    range_sha=$(dd if="$data/check.bin" iflag=skip_bytes,count_bytes skip="$mid" count=1000000 status=none |
        sha256sum | cut -d' ' -f1)
    got=$("${pin_client[@]}" curl -s --fail -r "$mid-$((mid + 999999))" "$(url check.bin)" |
        sha256sum | cut -d' ' -f1) || true
    echo "| $name | curl -r $mid-$((mid + 999999)) | $got | $([ "$got" = "$range_sha" ] && echo same || echo DIFFERENT) |" >>"$logs/check"
    [ "$got" = "$range_sha" ] || fail "check, $name: the range's SHA-256 differs"
    stop_server
}

report() {
    echo "# files: keel (keel::files::ServeDir) against hyper + tower-http ServeDir"
    echo
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $commit"
    echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "servers: ${present[*]} (--workers $WORKERS, taskset -c $SERVER_CPU${SERVER_QUOTA:+, CPU capped at $SERVER_QUOTA% of a core}); clients: taskset -c $CLIENT_CPU"
    echo "small: 4 KiB, wrk -t1 -c$SMALL_CONNECTIONS -d${SMALL_SECONDS}s keep-alive; large: $LARGE_BYTES x $LARGE_DOWNLOADS by curl, $LARGE_PARALLEL at a time; $ROUNDS rounds"
    echo
    cat "$logs/details"
    median() { median_of "$1" "\$1 == \"$2\" && \$2 == \"$3\"" "$logs/rows"; }
    echo
    echo "## medians of $ROUNDS rounds"
    echo
    echo "| server | small req/s | server CPU % | CPU us/request | wrk p99 us | large MB/s | CPU s/GB | server CPU % |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for name in "${present[@]}"; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" \
            "$(median 4 small "$name")" "$(median 5 small "$name")" "$(median 6 small "$name")" "$(median 7 small "$name")" \
            "$(median 4 large "$name")" "$(median 5 large "$name")" "$(median 6 large "$name")"
    done
    if [[ " ${present[*]} " == *" keel "* && " ${present[*]} " == *" hyper "* ]]; then
        echo
        echo "keel / hyper (targets: small req/s >= 1.5, large CPU per GB <= 0.3):"
        echo
        echo "| small req/s | small CPU per request | large MB/s | large CPU per GB |"
        echo "| ---: | ---: | ---: | ---: |"
        echo "| $(ratio "$(median 4 small keel)" "$(median 4 small hyper)") | $(ratio "$(median 6 small keel)" "$(median 6 small hyper)") | $(ratio "$(median 4 large keel)" "$(median 4 large hyper)") | $(ratio "$(median 5 large keel)" "$(median 5 large hyper)") |"
    fi
    if [ -s "$logs/syscalls" ]; then
        echo
        echo "## system calls per small-file request (perf stat, wrk -c$SMALL_CONNECTIONS -d${SYSCALL_SECONDS}s)"
        echo
        local header="| server | requests | all" rule="| --- | ---: | ---:" call
        for call in "${calls[@]}"; do header+=" | $call"; rule+=" | ---:"; done
        echo "$header |"
        echo "$rule |"
        cat "$logs/syscalls"
    fi
    if [ -s "$logs/check" ]; then
        echo
        echo "## $CHECK_BYTES download check (SHA-256 of the file: $check_sha)"
        echo
        echo "| server | client | SHA-256 received | |"
        echo "| --- | --- | --- | --- |"
        cat "$logs/check"
    fi
    echo
    echo "MB = 10^6 bytes, GB = 10^9 bytes. Server CPU is the server process's user + system time (every"
    echo "thread) over the client's run, at the clock tick's resolution ($clk_tck Hz); CPU % is that over the"
    echo "run (100 = one core), CPU us/request and CPU s/GB that per request answered or per GB sent. A"
    echo "server CPU % well under 100 (or under SERVER_QUOTA) means the client or the loopback was the"
    echo "limit: then compare CPU per request or per GB rather than the rates."
    [ "$failed" = 0 ] || echo "SOME CHECKS FAILED: see the FAILED lines above."
}

# Other work on the host shows here: quote ratios from one run.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$logs/rows"
: >"$logs/syscalls"
: >"$logs/check"
{
    for round in $(seq "$ROUNDS"); do
        set_round_order "$round"
        for test in small large; do
            for name in "${order[@]}"; do
                echo "== round $round, $test, $name" >&2
                "$test" "$name" "$round"
            done
        done
    done
    for name in "${present[@]}"; do
        if [ "$SYSCALL_SECONDS" != 0 ]; then
            echo "== syscalls, $name" >&2
            syscalls "$name"
        fi
        if [ "$check_bytes" -gt 0 ]; then
            echo "== $CHECK_BYTES check, $name" >&2
            check "$name"
        fi
    done
} >"$logs/details"

if [ "$OUT" = - ]; then
    report
else
    report | tee "$OUT"
    echo "written to ${OUT#"$root/"}" >&2
fi
exit "$failed"
