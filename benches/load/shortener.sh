#!/usr/bin/env bash
# The shortener under wrk on 127.0.0.1, one worker, on each store, in one run:
#
#   benches/load/shortener.sh                  # DURATION=5 ROUNDS=3
#   DURATION=10 ROUNDS=3 benches/load/shortener.sh | tee benches/results/shortener-$(date +%F)-$(git rev-parse --short HEAD).txt
#
#   redirect     GET /SLUG of one link (a cache hit: 302 from memory),
#                against hello's GET /plaintext in the same round: the
#                ratio is what the shortener's redirect path costs over
#                keel's floor (target: >= 0.8)
#   create       POST /api/links, a new URL each time (SQLite, WAL)
#   mixed        both at once: redirects with $CONNECTIONS connections
#                while creates run on $CREATE_CONNECTIONS
#
# redirect, create and mixed run once per store in $STORES: the embedded
# SQLite (a fresh file per run) and PostgreSQL (a throwaway cluster from
# scripts/pg.sh on 127.0.0.1, a fresh schema per run, the pool's default
# settings, printed below). PostgreSQL runs on $SERVER_CPU too, beside the
# shortener: the server core carries the whole service.
#
# Servers run with --workers 1 pinned to $SERVER_CPU (the shortener's
# blocking pool and SQLite too); wrk is pinned to $CLIENT_CPU. Each run
# starts a fresh server and a fresh data directory.
#
# Environment: DURATION (s, default 5), ROUNDS (3), CONNECTIONS (64),
# CREATE_CONNECTIONS (16), SERVER_CPU (0), CLIENT_CPU (1), PORT (18090),
# STORES ("sqlite postgres"), PG_PORT (55499),
# SKIP_BUILD=1 to use built binaries. Needs wrk (installed with apt-get
# when missing and run as root), curl and taskset.
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
CREATE_CONNECTIONS=${CREATE_CONNECTIONS:-16}
PORT=${PORT:-18090}
STORES=${STORES:-sqlite postgres}
PG_PORT=${PG_PORT:-55499}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
data=
pg_dir=
cleanup() {
    cleanup_load
    rm -rf "$data"
    if [ -n "$pg_dir" ]; then "$root/scripts/pg.sh" stop "$pg_dir" >/dev/null || true; fi
}
trap cleanup EXIT
pg_url=
case " $STORES " in
*" postgres "*)
    pg_dir=$(mktemp -u /tmp/shortener-load-pg.XXXXXX)
    pg_url=$("${pin_server[@]}" "$root/scripts/pg.sh" start "$pg_dir" "$PG_PORT" | tail -1)
    ;;
esac

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p hello -p shortener >&2
fi
base=http://127.0.0.1:$PORT

start_hello() { start_server hello "$target/hello" --addr "127.0.0.1:$PORT" --workers 1; }
# start_shortener STORE: a fresh shortener on a fresh store, one link in
# its cache; sets $slug.
start_shortener() {
    rm -rf "$data"
    data=$(mktemp -d)
    local store=()
    if [ "$1" = postgres ]; then
        local schema
        schema=load_$(date +%s%N)
        psql_run "CREATE SCHEMA $schema"
        store=(--store "$pg_url?options=-csearch_path%3D$schema")
    fi
    start_server shortener "$target/shortener" --addr "127.0.0.1:$PORT" --workers 1 \
        --data "$data" --writes-per-minute 1000000000 "${store[@]}"
    slug=$(curl -sf -H 'Content-Type: application/json' -d '{"url":"https://example.com/landing"}' \
        "$base/api/links" | sed -E 's/.*"slug":"([^"]+)".*/\1/')
    # The first visit loads the link into the cache.
    curl -sf -o /dev/null -w '%{http_code}' "$base/$slug" | grep -q 302
}

# psql_run SQL: runs SQL on the throwaway cluster as its owner.
psql_run() {
    local bin
    bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)")
    "$bin/psql" -q -v ON_ERROR_STOP=1 "$pg_url" -c "$1" >/dev/null
}

# measure LABEL ROUND WRK_ARGS...: one wrk run on $CLIENT_CPU against the
# running server; appends "label round rps p50 p99 errors non2xx cpu% rss".
measure() {
    local label=$1 round=$2
    shift 2
    local cpu_before out=$logs/$label.wrk
    cpu_before=$(proc_cpu_ticks "$server_pid")
    WRK_CONNECTIONS=$CONNECTIONS "${pin_client[@]}" wrk -t1 -d"${DURATION}s" --latency "$@" >"$out" 2>&1 || true
    record "$label" "$round" "$out" "$cpu_before"
}

record() {
    local label=$1 round=$2 out=$3 cpu_before=$4 cpu
    cpu=$(awk -v a="$cpu_before" -v b="$(proc_cpu_ticks "$server_pid")" -v hz="$clk_tck" -v d="$DURATION" \
        'BEGIN { printf "%.0f", 100 * (b - a) / hz / d }')
    echo "### round $round, $label (server CPU ${cpu}%, peak RSS $(peak_rss_kb "$server_pid") kB)"
    sed 's/^/    /' "$out"
    local result
    result=$(wrk_result "$out")
    if [ -z "$result" ]; then
        echo "no RESULT from wrk for $label" >&2
        return
    fi
    read -r rps p50 p99 errors non2xx _ <<<"$result"
    echo "$label $round $rps $p50 $p99 $errors $non2xx $cpu $(peak_rss_kb "$server_pid")" >>"$logs/rows"
}

echo "# the shortener under wrk"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "wrk -t1 -d${DURATION}s, $CONNECTIONS connections for reads, $CREATE_CONNECTIONS for creates, $ROUNDS rounds"
echo "servers: --workers 1, taskset -c $SERVER_CPU; wrk: taskset -c $CLIENT_CPU; stores: $STORES"
if [ -n "$pg_url" ]; then
    echo "postgres: $("$(dirname "$(ls -d /usr/lib/postgresql/*/bin/postgres | sort -V | tail -1)")/postgres" --version), scripts/pg.sh defaults (durable: fsync and synchronous_commit on)"
    echo "pool: $("$target/shortener" --help | awk '/^ +--pg-/ { flag = $1 } /\[default: / && flag { sub(/.*\[default: /, ""); sub(/\].*/, ""); printf "%s=%s ", flag, $0; flag = "" }')"
fi
echo

: >"$logs/rows"
report=$here/report.lua
for round in $(seq "$ROUNDS"); do
    start_hello
    measure plaintext "$round" -c"$CONNECTIONS" -s "$report" "$base/plaintext"
    stop_server

    for store in $STORES; do
        start_shortener "$store"
        measure "redirect-$store" "$round" -c"$CONNECTIONS" -s "$report" "$base/$slug"
        stop_server

        start_shortener "$store"
        WRK_CONNECTIONS=$CREATE_CONNECTIONS measure "create-$store" "$round" -c"$CREATE_CONNECTIONS" -s "$here/create.lua" "$base"
        created=$(curl -sf "$base/metrics" | awk '$1 == "shortener_store_call_duration_seconds_count{op=\"create\"}" {print $2}')
        echo "    (store creates counted by /metrics: $created)"
        stop_server

        # Both at once: creates in the background, redirects measured alongside.
        start_shortener "$store"
        cpu_before=$(proc_cpu_ticks "$server_pid")
        WRK_CONNECTIONS=$CREATE_CONNECTIONS "${pin_client[@]}" wrk -t1 -c"$CREATE_CONNECTIONS" -d"${DURATION}s" \
            --latency -s "$here/create.lua" "$base" >"$logs/mixed-create.wrk" 2>&1 &
        creates_pid=$!
        WRK_CONNECTIONS=$CONNECTIONS "${pin_client[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" \
            --latency -s "$report" "$base/$slug" >"$logs/mixed-redirect.wrk" 2>&1 || true
        wait "$creates_pid" || true
        record "mixed-redirect-$store" "$round" "$logs/mixed-redirect.wrk" "$cpu_before"
        record "mixed-create-$store" "$round" "$logs/mixed-create.wrk" "$cpu_before"
        stop_server
    done
done

median() { median_of "$1" "\$1 == \"$2\"" "$logs/rows"; }

echo
echo "## medians of $ROUNDS rounds"
echo
echo "| run | req/s | p50 µs | p99 µs | socket errors | non-2xx/3xx | server CPU % | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
labels=plaintext
for store in $STORES; do
    labels="$labels redirect-$store create-$store mixed-redirect-$store mixed-create-$store"
done
for label in $labels; do
    printf '| %s | %.0f | %s | %s | %s | %s | %s | %.1f |\n' "$label" \
        "$(median 3 "$label")" "$(median 4 "$label")" "$(median 5 "$label")" \
        "$(median 6 "$label")" "$(median 7 "$label")" "$(median 8 "$label")" \
        "$(awk -v k="$(median 9 "$label")" 'BEGIN { print k / 1024 }')"
done
echo
for store in $STORES; do
    echo "$store: cache-hit redirect / hello plaintext, req/s: $(ratio "$(median 3 "redirect-$store")" "$(median 3 plaintext)") (target >= 0.8)"
    echo "$store: redirects with creates running / redirects alone: $(ratio "$(median 3 "mixed-redirect-$store")" "$(median 3 "redirect-$store")")"
done
if [ -n "$pg_url" ] && case " $STORES " in *" sqlite "*) true ;; *) false ;; esac; then
    echo "creates/s, postgres / sqlite: $(ratio "$(median 3 create-postgres)" "$(median 3 create-sqlite)")"
fi
echo
echo "In the mixed run both wrk processes share core $CLIENT_CPU, and its server CPU % covers both."
