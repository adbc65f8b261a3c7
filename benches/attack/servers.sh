# Shared by the attack scripts (sourced after ../load/common.sh): the
# descriptor limit, the build, and the servers under attack with the flags
# that tell the harness what their routes answer.

# raise_nofile NEEDED: this shell's descriptor limit (inherited by the
# servers and the harness) up to $NOFILE (65536), raising the hard limit too
# when we may (10,000 slowloris connections are 10,000 descriptors on each
# side); warns when it stays under NEEDED.
raise_nofile() {
    local want=${NOFILE:-65536}
    ulimit -Hn "$want" 2>/dev/null || true
    ulimit -n "$want" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$1" ]; then
        echo "descriptor limit $(ulimit -n) (hard $(ulimit -Hn)), under the $1 this run needs" >&2
    fi
}

# build_attack: release binaries of the harness and the servers, unless SKIP_BUILD=1.
build_attack() {
    [ "${SKIP_BUILD:-0}" = 1 ] && return
    cargo build --release -p hello -p shortener >&2
    cargo build --release -p keel-benches --bin attack --bin hyper-hello >&2
}

target_flags=()
target_data=
# start_target NAME PORT [NOFILE]: a fresh keel (hello), hyper (hyper-hello)
# or shortener, one worker, on 127.0.0.1:PORT, with `ulimit -n NOFILE` when
# given; sets $server_pid and $target_flags (the harness's target flags).
# The shortener gets a fresh embedded store, a write key, and one link,
# visited once (so its redirect is a cache hit); the well-behaved client
# follows that link and expects the 302.
start_target() {
    local name=$1 port=$2 limit=${3:-} limited=()
    [ -z "$limit" ] || limited=(bash -c 'ulimit -n "$0" && exec "$@"' "$limit")
    target_flags=()
    case $name in
    keel) start_server keel "${limited[@]}" "$target/hello" --addr "127.0.0.1:$port" --workers 1 ;;
    hyper) start_server hyper "${limited[@]}" "$target/hyper-hello" --addr "127.0.0.1:$port" --workers 1 ;;
    shortener)
        target_data=$(mktemp -d)
        local key base=http://127.0.0.1:$port slug answer
        key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
        start_server shortener "${limited[@]}" env SHORTENER_API_KEYS="write:$key" \
            "$target/shortener" --addr "127.0.0.1:$port" --workers 1 --data "$target_data" \
            --writes-per-minute 1000000000
        slug=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
            -d '{"url":"https://example.com/landing"}' "$base/api/links" | sed -E 's/.*"slug":"([^"]+)".*/\1/')
        # "STATUS BYTES": the redirect the well-behaved client must get each time.
        answer=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$base/$slug")
        if [ "${answer% *}" != 302 ]; then
            echo "shortener: /$slug answered $answer, not a 302" >&2
            exit 1
        fi
        target_flags=(--path "/$slug" --status 302 --body-len "${answer#* }"
            --upload-path /api/links --upload-header "Authorization: Bearer $key" --large-path none)
        ;;
    *)
        echo "unknown server $name (keel, hyper, shortener)" >&2
        exit 1
        ;;
    esac
}

# stop_target: stops the server and removes the shortener's store.
stop_target() {
    stop_server
    if [ -n "$target_data" ]; then
        rm -rf "$target_data"
        target_data=
    fi
}

cleanup_attack() {
    stop_target
    cleanup_load
}
trap cleanup_attack EXIT
