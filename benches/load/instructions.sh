#!/usr/bin/env bash
# Instructions per in-memory `GET /plaintext` (TechEmpower-sized request), by
# callgrind: keel (MemoryConn), hyper (serve_connection over a duplex pipe),
# httparse alone (the floor), and the client-side response check both the
# keel and the hyper runs include (`framing`).
#
#   benches/load/instructions.sh            # N=20000 requests, TOP=25 functions
#
# For each target, `insn-count TARGET N` and `insn-count TARGET 0` both do the
# same setup and warm-up; (I(N) - I(0)) / N is the steady-state cost of one
# request. Then prints the functions with the most instructions (self cost,
# inlined code counted in the function it was inlined into) for keel and
# hyper, from a run with --dump-instr=yes (kept in $OUT_DIR for
# callgrind_annotate or kcachegrind).
#
# Then the same for a compressed 16 KiB JSON response (benches/src/gzip.rs):
# keel's Compression against tower-http's CompressionLayer on hyper, at gzip
# level 4 (keel's default) and 6 (tower-http's), each next to the same
# JSON without the layer, so that the layer's own cost is the difference;
# and, with TOP, where the instructions of keel-gzip and hyper-gzip go.
#
# Environment: N (default 20000), TOP (default 25; 0 prints the counts
# only, as benches/load/run.sh does at its end), GZIP_N (default 1000
# compressed responses; 0 skips them), OUT_DIR (default a temporary
# directory, removed at exit), SKIP_BUILD=1.
set -euo pipefail

N=${N:-20000}
GZIP_N=${GZIP_N:-1000}
TOP=${TOP:-25}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p keel-benches --bin insn-count >&2
fi
bin=${CARGO_TARGET_DIR:-$root/target}/release/insn-count

if [ -n "${OUT_DIR:-}" ]; then
    out=$OUT_DIR
    mkdir -p "$out"
else
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi

# total_ir TARGET ITERATIONS [callgrind options]: instructions of one run.
total_ir() {
    local target=$1 n=$2 file="$out/$1.$2.callgrind"
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$file" "$@" "$bin" "$target" "$n" >/dev/null 2>"$file.log"
    awk '/^(summary|totals):/ { print $2; exit }' "$file"
}

# per_request TARGET ITERATIONS: (I(ITERATIONS) - I(0)) / ITERATIONS.
per_request() {
    local base full
    base=$(total_ir "$1" 0)
    full=$(total_ir "$1" "$2")
    awk -v a="$full" -v b="$base" -v n="$2" 'BEGIN { printf "%.0f", (a - b) / n }'
}

echo "# instructions per in-memory GET /plaintext"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "$(valgrind --version), N = $N requests after a warm-up, minus a run with N = 0"
echo
echo "| target | instructions / request | keel / target |"
echo "| --- | ---: | ---: |"
declare -A per
for target in keel hyper httparse framing; do
    per[$target]=$(per_request "$target" "$N")
done
for target in keel hyper httparse framing; do
    echo "| $target | ${per[$target]} | $(awk -v a="${per[$target]}" -v k="${per[keel]}" 'BEGIN { printf "%.2f", k / a }') |"
done

if [ "$GZIP_N" -gt 0 ]; then
    # "checked: json J bytes, body B bytes, response R bytes" (insn-count,
    # after it checked that the answer is, or decodes to, the JSON).
    declare -A body_bytes response_bytes
    json_bytes=
    for target in keel-json16k hyper-json16k keel-gzip hyper-gzip keel-gzip6 hyper-gzip6; do
        per[$target]=$(per_request "$target" "$GZIP_N")
        read -r json_bytes body_bytes[$target] response_bytes[$target] < <(
            "$bin" "$target" 0 | awk '/^checked:/ { print $3, $6, $9 }')
    done
    echo
    echo "# instructions per compressed 16 KiB JSON response"
    echo
    echo "GET /links with Accept-Encoding: gzip, answered by both with the same $json_bytes-byte JSON array"
    echo "(benches/src/gzip.rs). keel: Compression::new().level(L); hyper: tower-http's Compression"
    echo "(CompressionLayer), gzip only, quality Precise(4) or Default (flate2's level 6), served through"
    echo "hyper-util's TowerToHyperService. One flate2 build, on zlib-rs, deflates for both."
    echo "N = $GZIP_N responses after a warm-up (whose last answer is checked: gzip, decodes to the JSON),"
    echo "minus a run with N = 0. Body bytes: the content as sent (hyper's chunked framing excluded)."
    echo
    echo "| target | gzip level | instructions / response | keel / hyper | body bytes | response bytes |"
    echo "| --- | --- | ---: | ---: | ---: | ---: |"
    for row in "json16k identity" "gzip 4" "gzip6 6"; do
        read -r kind level <<<"$row"
        for server in keel hyper; do
            target=$server-$kind
            ratio=$(awk -v k="${per[keel-$kind]}" -v h="${per[hyper-$kind]}" 'BEGIN { printf "%.2f", k / h }')
            shown_level=$level
            [ "$target" = hyper-gzip6 ] && shown_level="6 (Default)"
            echo "| $target | $shown_level | ${per[$target]} | $ratio | ${body_bytes[$target]} | ${response_bytes[$target]} |"
        done
    done
    echo
    echo "The layer alone (gzip row minus identity row), instructions per response:"
    echo
    echo "| gzip level | keel | hyper | keel / hyper |"
    echo "| --- | ---: | ---: | ---: |"
    for row in "gzip 4" "gzip6 6"; do
        read -r kind level <<<"$row"
        awk -v level="$level" -v kg="${per[keel-$kind]}" -v ki="${per[keel-json16k]}" \
            -v hg="${per[hyper-$kind]}" -v hi="${per[hyper-json16k]}" \
            'BEGIN { printf "| %s | %d | %d | %.2f |\n", level, kg - ki, hg - hi, (kg - ki) / (hg - hi) }'
    done
fi

# summarize FILE BY N: callgrind_annotate's "Ir file:function" rows (self
# cost; code inlined from another file gets a row of its own) summed by
# function (BY=2) or by source file (BY=1), as percentages of the program
# and instructions per request (N requests); paths shortened.
summarize() {
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" 2>/dev/null |
        awk -v by="$2" -v n="$3" -v top="$TOP" '
            /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1; next }
            /file:function/ { rows = 1; next }
            rows && /^-+$/ { next }
            rows && NF == 0 { rows = 0 }
            rows && $1 ~ /^[0-9,]+$/ {
                ir = $1; gsub(",", "", ir)
                line = $0
                sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", line)
                sub(/ \[[^]]*\]$/, "", line)
                at = index(line, ":")
                key = by == 1 ? substr(line, 1, at - 1) : substr(line, at + 1)
                sub(/.*\/registry\/src\/[^/]*\//, "", key)
                sub(/^\/rustc\/[0-9a-f]*\/library\//, "std:", key)
                sum[key] += ir
            }
            END {
                for (k in sum) printf "%12d %6.2f%% %8.0f  %s\n", sum[k], 100 * sum[k] / total, sum[k] / n, k
            }' | sort -k1,1nr | awk -v top="$TOP" 'NR <= top'
}

[ "$TOP" -gt 0 ] || exit 0
# profile TARGET ITERATIONS DIVISOR: where the instructions of one run go,
# per DIVISOR requests.
profile() {
    local target=$1 n=$2 per_n=$3 file="$out/$1.profile.callgrind"
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$file" "$bin" "$target" "$n" >/dev/null 2>"$file.log"
    echo
    echo "## $target: where the instructions go ($n requests + warm-up + setup)"
    echo
    echo "Top $TOP functions (self cost, inlined code included in the function it was inlined into):"
    echo
    echo '```'
    echo "          Ir  share  Ir/req  function"
    summarize "$file" 2 "$per_n"
    echo '```'
    echo
    echo "Top $TOP source files (the code's origin, inlined or not):"
    echo
    echo '```'
    echo "          Ir  share  Ir/req  file"
    summarize "$file" 1 "$per_n"
    echo '```'
}
for target in keel hyper; do
    profile "$target" "$N" "$N"
done
if [ "$GZIP_N" -gt 0 ]; then
    # GZIP_N is small next to insn-count's warm-up of 100 requests: Ir/req
    # counts them too (setup aside, every request costs the same).
    for target in keel-gzip hyper-gzip; do
        profile "$target" "$GZIP_N" $((GZIP_N + 100))
    done
fi
if [ -n "${OUT_DIR:-}" ]; then
    echo
    echo "callgrind profiles kept in $out (callgrind_annotate --inclusive=yes FILE)"
fi
