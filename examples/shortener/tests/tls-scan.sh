#!/usr/bin/env bash
# The shortener's HTTPS against TLS scanners, as CI runs it:
#
#   examples/shortener/tests/tls-scan.sh target/debug/shortener target/debug/test-certs
#
# Makes test certificates (the test-certs binary: a fresh CA, an ECDSA
# P-256 certificate for localhost and 127.0.0.1, another for
# other.localhost), starts the shortener with --tls-cert, --tls-key and
# --tls-sni on a free loopback port, and scans it with sslscan and
# testssl.sh (about 2 minutes; TESTSSL=0 skips it). The criteria are
# benches/load/tls_scan.sh's (shared with benches/load/tls.sh): no protocol
# below TLS 1.2, no cipher under 128 bits or of a weak kind (RC4, DES,
# 3DES, NULL, EXPORT, anonymous, MD5, CBC), nothing testssl.sh calls
# VULNERABLE. Prints a summary; exits non-zero on any failure.
#
# First a control: the same criteria against `openssl s_server` offering
# TLS 1.0 and 1.1, anonymous and CBC suites must FAIL on each kind of check
# (sslscan's protocols and ciphers; testssl.sh's protocols, cipher
# categories and VULNERABLE findings, its quicker -p -s -U run), or the
# checks are broken and this script fails.
#
# Installs sslscan, openssl and testssl.sh with apt-get when missing and
# root. KEEP_ARTIFACTS=1 keeps the scanners' output (its folder is printed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
# shellcheck source=../../../benches/load/tls_scan.sh
source "$root/benches/load/tls_scan.sh"
TESTSSL=${TESTSSL:-1}

die() {
    echo "tls-scan.sh: $*" >&2
    exit 1
}

[[ $# -eq 2 ]] || die "usage: tls-scan.sh SHORTENER_BINARY TEST_CERTS_BINARY"
for bin in "$@"; do
    [[ -x $bin && -f $bin ]] || die "$bin is not an executable file (cargo build -p shortener -p test-certs)"
done
shortener=$1
test_certs=$2

missing=()
command -v sslscan >/dev/null || missing+=(sslscan)
command -v openssl >/dev/null || missing+=(openssl)
[ "$TESTSSL" = 0 ] || command -v testssl >/dev/null || missing+=(testssl.sh)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        die "missing: ${missing[*]} (apt-get install ${missing[*]})"
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ "${KEEP_ARTIFACTS:-0}" = 1 ]; then echo "artifacts kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

certs=$work/certs
mkdir -p "$certs"
"$test_certs" "$certs" >/dev/null

# wait_for FILE PATTERN: the first line of FILE matching PATTERN, within 20 s.
wait_for() {
    local line
    for _ in $(seq 200); do
        line=$(grep -m1 -E "$2" "$1" 2>/dev/null || true)
        [ -z "$line" ] || { echo "$line"; return 0; }
        sleep 0.1
    done
    return 1
}

echo "== control: the checks against openssl s_server offering TLS 1.0 and weak suites"
mkdir -p "$work/control"
openssl s_server -accept 127.0.0.1:0 -cert "$certs/server.pem" -key "$certs/server.key" \
    -cipher 'ALL:@SECLEVEL=0' -min_protocol TLSv1 -www >"$work/control/s_server.out" 2>&1 &
pids+=($!)
line=$(wait_for "$work/control/s_server.out" '^ACCEPT ') || die "openssl s_server did not start: $(cat "$work/control/s_server.out")"
# shellcheck disable=SC2034 # tls_scan reads it
control=$(TESTSSL_CHECKS="-p -s -U" && tls_scan "${line#ACCEPT }" "$work/control" "$certs/ca.pem" &&
    tls_scan_problems "$work/control")
echo "$control" | sed 's/^/    caught: /' | cut -c1-160
expected=("a protocol below TLS 1.2" "weak ciphers accepted")
[ "$TESTSSL" = 0 ] || expected+=("testssl.sh flagged" "testssl.sh found a protocol below" "testssl.sh found weak cipher")
for check in "${expected[@]}"; do
    grep -q "^$check" <<<"$control" || die "the control was not caught by: $check... (the checks cannot fail: fix them)"
done

echo "== the shortener with --tls-cert, --tls-key, --tls-sni"
"$shortener" --data "$work/data" --addr 127.0.0.1:0 --workers 2 \
    --tls-cert "$certs/server.pem" --tls-key "$certs/server.key" \
    --tls-sni "other.localhost=$certs/other.pem,$certs/other.key" >"$work/shortener.out" 2>"$work/shortener.err" &
pids+=($!)
line=$(wait_for "$work/shortener.out" 'listening on https://') ||
    die "the shortener did not start: $(cat "$work/shortener.out" "$work/shortener.err")"
addr=$(echo "$line" | sed -E 's#.*listening on https://([^ ]+) .*#\1#')
echo "$line"
started=$(date +%s)
tls_scan "$addr" "$work" "$certs/ca.pem"
echo "scanned in $(($(date +%s) - started)) s: sslscan $(sslscan --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | awk 'NF { print $1; exit }')$([ "$TESTSSL" = 0 ] || echo ", $(testssl --version 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | awk '/testssl/ { print $1, $2; exit }')"), $(openssl version)"
echo
tls_scan_summary "$work"
echo
problems=$(tls_scan_problems "$work")
if [ -n "$problems" ]; then
    echo "$problems" | sed 's/^/FAILED: /'
    exit 1
fi
echo "PASSED: TLS 1.2 and 1.3 only, AEAD suites of 128 bits or more only$([ "$TESTSSL" = 0 ] || echo ", nothing VULNERABLE")"
