#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 60), seeded
# from fuzz/seeds/<target>/; new inputs go to fuzz/corpus/<target>/, crashes
# to fuzz/artifacts/<target>/. Exits non-zero if any target crashes, hangs
# (-timeout) or runs out of memory (-rss_limit_mb).
#
#   fuzz/run.sh [SECONDS]
#
# Environment:
#   KEEL_FUZZ_SANITIZER  address | none (default none: keel's unsafe code is
#                        all in the socket layer, which these targets never
#                        reach, and ASan halves the executions per second)
#   KEEL_FUZZ_TARGETS    space-separated subset of targets (default: all)
#
# Works on a stable toolchain: cargo-fuzz needs nightly-only compiler flags,
# which RUSTC_BOOTSTRAP=1 unlocks.
set -euo pipefail

seconds="${1:-60}"
sanitizer="${KEEL_FUZZ_SANITIZER:-none}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets="${KEEL_FUZZ_TARGETS:-$(cargo fuzz list)}"
cargo fuzz build --sanitizer "$sanitizer"

failed=()
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "=== $target: ${seconds}s"
    if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1; then
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a failure"
