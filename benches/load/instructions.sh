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
# Environment: N (default 20000), TOP (default 25; 0 prints the counts
# only, as benches/load/run.sh does at its end), OUT_DIR (default a
# temporary directory, removed at exit), SKIP_BUILD=1.
set -euo pipefail

N=${N:-20000}
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

echo "# instructions per in-memory GET /plaintext"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "$(valgrind --version), N = $N requests after a warm-up, minus a run with N = 0"
echo
echo "| target | instructions / request | keel / target |"
echo "| --- | ---: | ---: |"
declare -A per
for target in keel hyper httparse framing; do
    base=$(total_ir "$target" 0)
    full=$(total_ir "$target" "$N")
    per[$target]=$(awk -v a="$full" -v b="$base" -v n="$N" 'BEGIN { printf "%.0f", (a - b) / n }')
done
for target in keel hyper httparse framing; do
    echo "| $target | ${per[$target]} | $(awk -v a="${per[$target]}" -v k="${per[keel]}" 'BEGIN { printf "%.2f", k / a }') |"
done

# summarize FILE BY: callgrind_annotate's "Ir file:function" rows (self
# cost; code inlined from another file gets a row of its own) summed by
# function (BY=2) or by source file (BY=1), as percentages of the program
# and instructions per request; paths shortened.
summarize() {
    callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" 2>/dev/null |
        awk -v by="$2" -v n="$N" -v top="$TOP" '
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
for target in keel hyper; do
    file="$out/$target.profile.callgrind"
    valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$file" "$bin" "$target" "$N" >/dev/null 2>"$file.log"
    echo
    echo "## $target: where the instructions go ($N requests + warm-up + setup)"
    echo
    echo "Top $TOP functions (self cost, inlined code included in the function it was inlined into):"
    echo
    echo '```'
    echo "          Ir  share  Ir/req  function"
    summarize "$file" 2
    echo '```'
    echo
    echo "Top $TOP source files (the code's origin, inlined or not):"
    echo
    echo '```'
    echo "          Ir  share  Ir/req  file"
    summarize "$file" 1
    echo '```'
done
if [ -n "${OUT_DIR:-}" ]; then
    echo
    echo "callgrind profiles kept in $out (callgrind_annotate --inclusive=yes FILE)"
fi
