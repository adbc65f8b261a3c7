#!/usr/bin/env bash
# TLS: keel against hyper + tokio-rustls (same rustls, same provider:
# aws-lc-rs, same certificate) on 127.0.0.1, one serving thread each, pinned
# and optionally server-bound, as files.sh and streams.sh.
#
#   benches/load/tls.sh                        # keel and hyper, about 2 minutes
#   SERVER_QUOTA=40 benches/load/tls.sh        # server-bound: 40% of a core each
#   ROUNDS=3 IDLE_CONNECTIONS=5000 benches/load/tls.sh hyper
#
# Servers are named by the arguments (default: keel hyper); server NAME is
# the release binary NAME_tls of keel-benches (hyper_tls, and keel_tls once
# benches/src/bin/keel_tls.rs exists); a missing one is skipped with a
# message. Each takes `--cert PEM --key PEM --addr HOST:PORT --workers N`,
# prints `listening on https://ADDR` once it accepts, and serves the hello
# contract's GET /plaintext with ALPN http/1.1 and session resumption on.
# The certificates are made once per run by the test-certs binary (a fresh
# test CA; an ECDSA P-256 server certificate for localhost and 127.0.0.1),
# so both servers present the same one.
#
#   full       tls_client handshakes: HANDSHAKE_CLIENTS threads, each
#              connecting again and again for HANDSHAKE_SECONDS: a full TLS
#              1.3 handshake (key exchange HANDSHAKE_KX, ECDSA P-256
#              signature, the chain verified), one GET /plaintext answered,
#              the client closes: connections/s, server CPU % and server
#              CPU us per connection. A Rust client (rustls, the same
#              provider) rather than `openssl s_time`: OpenSSL 3.0's client
#              spent about 4x the server's CPU per handshake, so s_time on
#              the other core, not the server, set the rate
#   resumed    the same with --resume: each thread resumes with the ticket
#              its previous connection got; rustls reports each
#              handshake's kind and the script counts them: a run with a
#              resumed connection (full) or with any but each thread's
#              first not resumed (resumed) is FAILED. `openssl s_client
#              -sess_out` / `-sess_in` checks resumption once per server
#              with another client (the `resumption` table). (`openssl
#              s_time -reuse` resumes TLS 1.3 sessions only with `-www`:
#              the tickets come after the handshake, and without a read
#              s_time never sees them)
#   keepalive  wrk -t1 -c$KEEPALIVE_CONNECTIONS -d${KEEPALIVE_SECONDS}s
#              https://127.0.0.1:PORT/plaintext: requests/s over TLS after
#              the handshakes, server CPU us per request, p99
#   idle       (once per server) tls_client idle opens IDLE_CONNECTIONS
#              connections, each a completed handshake and one answered GET
#              (rustls client, verifying the CA), and holds them idle; the
#              server's resident memory (VmRSS) after, less before (after
#              10 warm-up connections), over IDLE_CONNECTIONS: KiB per idle
#              TLS connection
#   scan       (once per server) sslscan: the protocols and cipher suites
#              offered, summarised; a protocol below TLS 1.2, a cipher under
#              128 bits or of a weak kind (RC4, DES, 3DES, NULL, EXPORT,
#              anonymous, MD5, CBC) is FAILED (tls_scan.sh, shared with the
#              shortener's CI scan). TESTSSL=1 adds a testssl.sh run
#              (protocols, ciphers, vulnerabilities; about a minute and a
#              half; the test CA added with --add-ca), anything VULNERABLE
#              FAILED, its findings of severity LOW or worse listed: with
#              the test certificate expect cert_validityPeriod (rcgen's default, to 4096) and
#              cert_revocation (no CRL or OCSP), HTTP's HSTS and security
#              headers and DNS CAA; and cipher_order where the server
#              follows the client's order (rustls's default; every suite
#              offered is AEAD with forward secrecy)
#
# The server starts fresh for each test with `--workers $WORKERS`, pinned to
# SERVER_CPU (capped at SERVER_QUOTA percent of a core when set); clients
# run on CLIENT_CPU. Server CPU is utime + stime from /proc/PID/stat over
# the client's run. Medians over ROUNDS rounds (alternating which server
# goes first) and keel/hyper ratios are printed and written to OUT (default
# benches/results/tls[-quotaP]-DATE-COMMIT.txt; "-" for none).
#
# Environment: HANDSHAKE_CLIENTS (4), HANDSHAKE_SECONDS (5), HANDSHAKE_KX
# (x25519, as OpenSSL 3.0 clients; default: rustls's, X25519MLKEM768 first),
# KEEPALIVE_CONNECTIONS (64), KEEPALIVE_SECONDS (10), IDLE_CONNECTIONS
# (2000), ROUNDS (1), WORKERS (1), PORT (18443), SERVER_CPU (0), CLIENT_CPU
# (1), SERVER_QUOTA (unset: no cap), RESUMPTION (unset: each server's
# default; cache or tickets: passed as --resumption), TESTSSL=1, SKIP_BUILD=1,
# OUT. Needs wrk, openssl and sslscan (installed with apt-get when missing
# and root; testssl.sh too with TESTSSL=1).
set -euo pipefail

HANDSHAKE_CLIENTS=${HANDSHAKE_CLIENTS:-4}
HANDSHAKE_SECONDS=${HANDSHAKE_SECONDS:-5}
HANDSHAKE_KX=${HANDSHAKE_KX:-x25519}
KEEPALIVE_CONNECTIONS=${KEEPALIVE_CONNECTIONS:-64}
KEEPALIVE_SECONDS=${KEEPALIVE_SECONDS:-10}
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000}
ROUNDS=${ROUNDS:-1}
WORKERS=${WORKERS:-1}
PORT=${PORT:-18443}
TESTSSL=${TESTSSL:-0}
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(keel hyper)

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=tls_scan.sh
source "$here/tls_scan.sh"
need openssl
need sslscan
[ "$TESTSSL" = 0 ] || need testssl testssl.sh

# Each idle connection is a socket in the client and one in the server.
want_fds=$((IDLE_CONNECTIONS + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
        echo "tls.sh: $IDLE_CONNECTIONS idle connections need $want_fds descriptors, the limit is $(ulimit -n); lower IDLE_CONNECTIONS" >&2
        exit 1
    fi
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
OUT=${OUT:-$root/benches/results/tls${SERVER_QUOTA:+-quota$SERVER_QUOTA}-$(date -u +%F)-$commit.txt}

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # keel_tls is built when its source exists; until then hyper runs alone.
    bins=(--bin hyper_tls --bin tls_client)
    [ ! -f "$root/benches/src/bin/keel_tls.rs" ] || bins+=(--bin keel_tls)
    cargo build --release -p keel-benches -p test-certs "${bins[@]}" --bin test-certs >&2
fi
present=()
for name in "${servers[@]}"; do
    if [ -x "$target/${name}_tls" ]; then
        present+=("$name")
    else
        echo "tls.sh: skipping $name: no $target/${name}_tls (no benches/src/bin/${name}_tls.rs yet?)" >&2
    fi
done
[ ${#present[@]} -gt 0 ] || { echo "tls.sh: no server to run" >&2; exit 1; }

certs=$logs/certs
"$target/test-certs" "$certs" >/dev/null
resumption_args=()
[ -z "${RESUMPTION:-}" ] || resumption_args=(--resumption "$RESUMPTION")
start_tls_server() {
    start_server "$1" "$target/${1}_tls" --cert "$certs/server.pem" --key "$certs/server.key" \
        --addr "127.0.0.1:$PORT" --workers "$WORKERS" "${resumption_args[@]}"
}


# handshakes NAME ROUND TEST: TEST is full or resumed; appends
# "TEST name round conns_per_s cpu_pct cpu_us_per_conn resumed_pct".
handshakes() {
    local name=$1 round=$2 test=$3 resume=() before ticks result
    [ "$test" = full ] || resume=(--resume)
    start_tls_server "$name"
    before=$(proc_cpu_ticks "$server_pid")
    "${pin_client[@]}" "$target/tls_client" handshakes --addr "127.0.0.1:$PORT" --ca "$certs/ca.pem" \
        --kx "$HANDSHAKE_KX" --threads "$HANDSHAKE_CLIENTS" --seconds "$HANDSHAKE_SECONDS" "${resume[@]}" \
        >"$logs/handshakes.out" 2>&1 || true
    ticks=$(($(proc_cpu_ticks "$server_pid") - before))
    stop_server
    result=$(grep '^RESULT ' "$logs/handshakes.out" || true)
    echo "### round $round, $test handshakes, $name: ${result:-no result}, server CPU $(seconds_of "$ticks") s"
    local conns resumed seconds
    read -r conns resumed seconds <<<"$(echo "$result" |
        sed -E 's/^RESULT connections=([0-9]+) resumed=([0-9]+) seconds=([0-9.]+)$/\1 \2 \3/')"
    if [ -z "$result" ] || [ "${conns:-0}" = 0 ]; then
        fail "$test, $name: tls_client said"
        sed 's/^/    /' "$logs/handshakes.out"
        return
    fi
    # Each client thread's first connection has no session to resume.
    if [ "$test" = full ] && [ "$resumed" != 0 ]; then fail "full, $name: $resumed connections were resumed"; fi
    if [ "$test" = resumed ] && [ "$resumed" -lt $((conns - HANDSHAKE_CLIENTS)) ]; then
        fail "resumed, $name: only $resumed of $conns connections were resumed"
    fi
    awk -v t="$test" -v n="$name" -v r="$round" -v c="$conns" -v s="$seconds" -v k="$ticks" -v hz="$clk_tck" \
        -v res="$resumed" \
        'BEGIN { printf "%s %s %s %.0f %.0f %.1f %.1f\n", t, n, r, c / s, 100 * k / hz / s, 1e6 * k / hz / c, 100 * res / c }' >>"$logs/rows"
}

# keepalive NAME ROUND: appends "keepalive name round rps cpu_pct cpu_us_per_request p99_us".
keepalive() {
    start_tls_server "$1"
    wrk_row keepalive keep-alive "$1" "$2" "$KEEPALIVE_CONNECTIONS" "$KEEPALIVE_SECONDS" \
        "https://127.0.0.1:$PORT/plaintext"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
idle_client() { "${pin_client[@]}" "$target/tls_client" idle --addr "127.0.0.1:$PORT" --ca "$certs/ca.pem" --kx "$HANDSHAKE_KX" "$@"; }

# idle NAME: one table row of resident memory per idle TLS connection.
idle() {
    local name=$1 before after client_pid
    start_tls_server "$name"
    if ! idle_client --connections 10 --hold-seconds 0 >"$logs/idle.out" 2>&1; then
        fail "idle, $name: the warm-up failed: $(cat "$logs/idle.out")"
        stop_server
        return
    fi
    sleep 0.5
    before=$(rss_kb "$server_pid")
    idle_client --connections "$IDLE_CONNECTIONS" --hold-seconds 60 >"$logs/idle.out" 2>&1 &
    client_pid=$!
    for _ in $(seq 600); do
        grep -q '^READY' "$logs/idle.out" && break
        kill -0 "$client_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q '^READY' "$logs/idle.out"; then
        fail "idle, $name: tls_client said $(cat "$logs/idle.out")"
        kill "$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
        stop_server
        return
    fi
    # Let the server finish with the last connections' tickets and requests.
    sleep 1
    after=$(rss_kb "$server_pid")
    kill "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
    stop_server
    echo "### idle, $name: VmRSS $before kB before, $after kB with $IDLE_CONNECTIONS idle TLS connections ($(grep '^READY' "$logs/idle.out"))"
    awk -v n="$name" -v b="$before" -v a="$after" -v c="$IDLE_CONNECTIONS" \
        'BEGIN { printf "| %s | %d | %d | %d | %.1f |\n", n, c, b, a, (a - b) / c }' >>"$logs/idle"
}

# resumption NAME: s_client saves a session after a GET, then resumes it.
resumption() {
    local name=$1 first second
    start_tls_server "$name"
    printf 'GET /plaintext HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -servername localhost -CAfile "$certs/ca.pem" -alpn http/1.1 -sess_out "$logs/session.pem" \
        -ign_eof >"$logs/s_client.1" 2>&1 || true
    printf 'GET /plaintext HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -servername localhost -CAfile "$certs/ca.pem" -alpn http/1.1 -sess_in "$logs/session.pem" \
        -ign_eof >"$logs/s_client.2" 2>&1 || true
    stop_server
    first=$(grep -E '^(New|Reused),' "$logs/s_client.1" | head -1)
    second=$(grep -E '^(New|Reused),' "$logs/s_client.2" | head -1)
    {
        echo "| $name | first: ${first:-no handshake} | $(grep -m1 '^Verify return code' "$logs/s_client.1" || echo no verification) | $(grep -m1 '^ALPN protocol' "$logs/s_client.1" || echo no ALPN) |"
        echo "| $name | -sess_in: ${second:-no handshake} | $(grep -m1 '^Verify return code' "$logs/s_client.2" || echo no verification) | $(grep -c '^HTTP/1.[01] 200' "$logs/s_client.2") answer(s) 200 |"
    } >>"$logs/resumption"
    [[ $first == New,* ]] || fail "resumption, $name: the first handshake said ${first:-nothing}"
    [[ $second == Reused,* ]] || fail "resumption, $name: -sess_in was not resumed: ${second:-nothing}"
}

# scan NAME: sslscan's protocols and ciphers (and testssl.sh's findings),
# judged by tls_scan.sh's criteria.
scan() {
    local name=$1 problem
    start_tls_server "$name"
    tls_scan "127.0.0.1:$PORT" "$logs" "$certs/ca.pem"
    stop_server
    {
        echo "### $name"
        echo
        tls_scan_summary "$logs"
        echo
    } >>"$logs/scan"
    while IFS= read -r problem; do
        fail "scan, $name: $problem"
    done < <(tls_scan_problems "$logs")
}

report() {
    echo "# TLS: keel against hyper + tokio-rustls (rustls $(awk '/^name = "rustls"$/ { getline; gsub(/"/, "", $3); print $3 }' "$root/Cargo.lock"), aws-lc-rs)"
    echo
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $commit"
    echo "host: $(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r), $(openssl version), load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "servers: ${present[*]} (--workers $WORKERS${RESUMPTION:+ --resumption $RESUMPTION}, taskset -c $SERVER_CPU${SERVER_QUOTA:+, CPU capped at $SERVER_QUOTA% of a core}); clients: taskset -c $CLIENT_CPU"
    echo "certificate: ECDSA P-256 (test-certs) for localhost, 127.0.0.1; handshakes: tls_client, $HANDSHAKE_CLIENTS threads for ${HANDSHAKE_SECONDS}s, key exchange $HANDSHAKE_KX; keep-alive: wrk -t1 -c$KEEPALIVE_CONNECTIONS -d${KEEPALIVE_SECONDS}s; idle: $IDLE_CONNECTIONS connections; $ROUNDS rounds"
    echo
    cat "$logs/details"
    median() { median_of "$1" "\$1 == \"$2\" && \$2 == \"$3\"" "$logs/rows"; }
    echo
    echo "## medians of $ROUNDS rounds"
    echo
    echo "| server | full handshakes/s | server CPU % | CPU us/handshake | resumed/s | server CPU % | CPU us/resumption | % resumed | keep-alive req/s | server CPU % | CPU us/request | wrk p99 us |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    for name in "${present[@]}"; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" \
            "$(median 4 full "$name")" "$(median 5 full "$name")" "$(median 6 full "$name")" \
            "$(median 4 resumed "$name")" "$(median 5 resumed "$name")" "$(median 6 resumed "$name")" "$(median 7 resumed "$name")" \
            "$(median 4 keepalive "$name")" "$(median 5 keepalive "$name")" "$(median 6 keepalive "$name")" \
            "$(median 7 keepalive "$name")"
    done
    if [ -s "$logs/idle" ]; then
        echo
        echo "## memory per idle TLS connection (a completed handshake and one answered GET each, held idle)"
        echo
        echo "| server | connections | VmRSS before kB | VmRSS with them kB | KiB per connection |"
        echo "| --- | ---: | ---: | ---: | ---: |"
        cat "$logs/idle"
    fi
    if [[ " ${present[*]} " == *" keel "* && " ${present[*]} " == *" hyper "* ]]; then
        local idle_keel idle_hyper
        idle_keel=$(awk -F'|' '$2 ~ /keel/ { print $6 + 0 }' "$logs/idle")
        idle_hyper=$(awk -F'|' '$2 ~ /hyper/ { print $6 + 0 }' "$logs/idle")
        echo
        echo "keel / hyper (targets: keep-alive req/s >= 1.2, idle memory <= 1, handshakes/s within 0.95..1.05):"
        echo
        echo "| full handshakes/s | CPU per handshake | resumed/s | CPU per resumption | keep-alive req/s | CPU per request | KiB per idle connection |"
        echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        echo "| $(ratio "$(median 4 full keel)" "$(median 4 full hyper)") | $(ratio "$(median 6 full keel)" "$(median 6 full hyper)") | $(ratio "$(median 4 resumed keel)" "$(median 4 resumed hyper)") | $(ratio "$(median 6 resumed keel)" "$(median 6 resumed hyper)") | $(ratio "$(median 4 keepalive keel)" "$(median 4 keepalive hyper)") | $(ratio "$(median 6 keepalive keel)" "$(median 6 keepalive hyper)") | $(ratio "$idle_keel" "$idle_hyper") |"
    fi
    if [ -s "$logs/resumption" ]; then
        echo
        echo "## resumption check: s_client -sess_out after a GET, then -sess_in"
        echo
        echo "| server | handshake | verification | answer |"
        echo "| --- | --- | --- | --- |"
        cat "$logs/resumption"
    fi
    if [ -s "$logs/scan" ]; then
        echo
        echo "## scanner: sslscan $(sslscan --version 2>/dev/null | tr -d '\033' | sed 's/\[[0-9;]*m//g' | awk 'NF { print $1; exit }')${TESTSSL:+$([ "$TESTSSL" = 0 ] || echo ", testssl.sh")}"
        echo
        cat "$logs/scan"
    fi
    echo "Server CPU is the server process's user + system time (every thread) over the client's run, at the"
    echo "clock tick's resolution ($clk_tck Hz); CPU % is that over the run (100 = one core). A server CPU %"
    echo "well under 100 (or under SERVER_QUOTA) means the clients or the loopback were the limit: then"
    echo "compare CPU per handshake or per request rather than the rates. A handshake here is a whole"
    echo "connection: TCP connect, TLS 1.3 handshake (verified against the test CA), one GET answered, close."
    [ "$failed" = 0 ] || echo "SOME CHECKS FAILED: see the FAILED lines above."
}

# Other work on the host shows here: quote ratios from one run.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$logs/rows"
: >"$logs/idle"
: >"$logs/resumption"
: >"$logs/scan"
{
    for round in $(seq "$ROUNDS"); do
        set_round_order "$round"
        for test in full resumed keepalive; do
            for name in "${order[@]}"; do
                echo "== round $round, $test, $name" >&2
                if [ "$test" = keepalive ]; then keepalive "$name" "$round"; else handshakes "$name" "$round" "$test"; fi
            done
        done
    done
    for name in "${present[@]}"; do
        echo "== idle, resumption, scan: $name" >&2
        idle "$name"
        resumption "$name"
        scan "$name"
    done
} >"$logs/details"

if [ "$OUT" = - ]; then
    report
else
    report | tee "$OUT"
    echo "written to ${OUT#"$root/"}" >&2
fi
exit "$failed"
