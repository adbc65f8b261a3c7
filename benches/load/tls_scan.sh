# shellcheck shell=bash
# A TLS scan of a running server and its verdict (sourced, not run), shared
# by benches/load/tls.sh (keel and hyper) and
# examples/shortener/tests/tls-scan.sh (the shortener, in CI):
#
#   tls_scan HOST:PORT DIR [CA]   sslscan (and testssl.sh when TESTSSL is
#                                 not 0) against the server; their output
#                                 in DIR (sslscan.out, testssl.out,
#                                 testssl.json). CA: a PEM file testssl.sh
#                                 trusts besides the system's (a test CA);
#                                 TESTSSL_CHECKS: testssl.sh's checks
#                                 (default: all of them; "-p -s -U":
#                                 protocols, cipher categories and
#                                 vulnerabilities alone)
#   tls_scan_summary DIR          what was offered and found, for a report
#   tls_scan_problems DIR         one line per failed criterion; none: the
#                                 scan passed
#
# The criteria: sslscan must have reached the server (TLS 1.3 enabled, at
# least one cipher accepted); no protocol below TLS 1.2 (SSLv2, SSLv3,
# TLS 1.0, 1.1); no cipher under 128 bits or of a weak kind: RC4, DES and
# 3DES, NULL, EXPORT, anonymous (ADH, AECDH), MD5, CCM8 (a 64-bit tag), or
# any suite that is not AEAD (GCM, CCM, ChaCha20-Poly1305), which is to say
# CBC (OpenSSL's names for CBC suites, ECDHE-ECDSA-AES128-SHA256, do not
# say CBC). With
# testssl.sh: it must have finished, flagged nothing VULNERABLE, offered no
# protocol below TLS 1.2 and none of its weak cipher categories (NULL,
# anonymous, export, LOW, 3DES/IDEA, obsolete CBC).
#
# Needs sslscan (Debian package sslscan) and, with TESTSSL, testssl
# (Debian package testssl.sh); the callers install them.

tls_scan() {
    local addr=$1 dir=$2 ca=() checks=()
    [ -z "${3:-}" ] || ca=(--add-ca "$3")
    read -ra checks <<<"${TESTSSL_CHECKS:-}"
    sslscan --no-colour "$addr" >"$dir/sslscan.out" 2>&1 || true
    if [ "${TESTSSL:-0}" != 0 ]; then
        rm -f "$dir/testssl.json"
        testssl --quiet --color 0 --warnings off --severity LOW --jsonfile "$dir/testssl.json" \
            "${ca[@]}" "${checks[@]}" "$addr" >"$dir/testssl.out" 2>&1 || true
    fi
}

# The cipher lines sslscan accepted: "Accepted|Preferred VERSION BITS bits NAME ...".
tls_scan_ciphers() { grep -E '^(Preferred|Accepted) ' "$1/sslscan.out" || true; }

tls_scan_summary() {
    local dir=$1
    echo "protocols: $(awk '/^(SSLv[23]|TLSv1\.[0-3]) +(enabled|disabled)$/ { printf "%s %s; ", $1, $2 }' "$dir/sslscan.out")"
    echo "ciphers (accepted or preferred):"
    tls_scan_ciphers "$dir" | sed 's/^/    /'
    echo "key exchange groups: $(awk '/Server Key Exchange Group/ { on = 1; next } on && NF == 0 { on = 0 } on { printf "%s %s; ", $1, $4 }' "$dir/sslscan.out")"
    echo "$(grep -A1 'TLS renegotiation:' "$dir/sslscan.out" | tail -1); $(grep -A2 'Heartbleed:' "$dir/sslscan.out" | tail -2 | tr '\n' ';')"
    if ! grep -q '^TLSv1' "$dir/sslscan.out"; then
        echo "sslscan said:"
        sed 's/^/    /' "$dir/sslscan.out"
    fi
    [ "${TESTSSL:-0}" != 0 ] || return 0
    echo "testssl.sh: $(grep -cE '^ (SSLv[23]|TLS 1(\.[123])?) +not offered' "$dir/testssl.out") protocols not offered, offered: $(grep -E '^ TLS 1\.[23] +offered' "$dir/testssl.out" | awk '{ printf "%s %s; ", $1, $2 }')$(grep -c 'VULNERABLE' "$dir/testssl.out") vulnerabilities flagged VULNERABLE"
    echo "testssl.sh cipher categories:"
    tls_scan_categories "$dir" | sed 's/^/    /'
    echo "testssl.sh findings of severity LOW or worse (id (severity): finding):"
    if [ -s "$dir/testssl.json" ]; then
        awk -F'"' '/"id"/ { id = $4 } /"severity"/ { sev = $4 } /"finding"/ { print "    " id " (" sev "): " $4 }' "$dir/testssl.json"
    else
        echo "    no result: $(tail -3 "$dir/testssl.out")"
    fi
}

# testssl.sh's "Testing cipher categories" lines.
tls_scan_categories() {
    awk '/Testing cipher categories/ { on = 1; next } on && /^ Testing / { on = 0 } on && NF' "$1/testssl.out"
}

tls_scan_problems() {
    local dir=$1 weak
    grep -q '^TLSv1.3 *enabled' "$dir/sslscan.out" || echo "sslscan did not find TLS 1.3 (no connection?)"
    [ -n "$(tls_scan_ciphers "$dir")" ] || echo "sslscan found no cipher accepted"
    if grep -Eq '^(SSLv[23]|TLSv1\.[01]) +enabled' "$dir/sslscan.out"; then
        echo "a protocol below TLS 1.2 is enabled: $(grep -E '^(SSLv[23]|TLSv1\.[01]) +enabled' "$dir/sslscan.out" | awk '{ printf "%s ", $1 }')"
    fi
    weak=$(tls_scan_ciphers "$dir" |
        awk '$3 < 128 || $5 ~ /RC4|DES|NULL|EXP|ADH|AECDH|anon|MD5|CBC|CCM8/ || $5 !~ /GCM|CCM|CHACHA20/ { printf "%s %s (%s bits); ", $2, $5, $3 }')
    [ -z "$weak" ] || echo "weak ciphers accepted: $weak"
    [ "${TESTSSL:-0}" != 0 ] || return 0
    grep -q '^ Done ' "$dir/testssl.out" || echo "testssl.sh did not finish: $(tail -3 "$dir/testssl.out" | tr '\n' ' ')"
    if grep -q 'VULNERABLE' "$dir/testssl.out"; then
        echo "testssl.sh flagged: $(grep 'VULNERABLE' "$dir/testssl.out" | tr -s ' ' | tr '\n' ';')"
    fi
    if grep -Eq '^ (SSLv[23]|TLS 1(\.1)?) +offered' "$dir/testssl.out"; then
        echo "testssl.sh found a protocol below TLS 1.2 offered"
    fi
    weak=$(tls_scan_categories "$dir" | grep -Ev 'not offered|Strong encryption' || true)
    [ -z "$weak" ] || echo "testssl.sh found weak cipher categories offered: $(echo "$weak" | tr -s ' ' | tr '\n' ';')"
}
