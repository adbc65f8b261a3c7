#!/usr/bin/env bash
# Runs the shortener's fault test (examples/shortener/tests/faults/): the
# shortener on PostgreSQL through a veth pair into a network namespace, with
# delay, loss and a cut injected on that link.
#
#   examples/shortener/tests/faults.sh [EXTRA TEST ARGS]   # as root
#
# Installs what the test needs when it is missing (Debian packages:
# iproute2 for `ip` and `tc`, iptables for kernels without sch_netem, and
# postgresql), removes what a killed earlier run left behind (namespaces
# `keel-faults-PID` of dead processes and their clusters), runs the ignored
# test with --nocapture, and cleans up again on the way out, also when
# interrupted. KEEL_FAULTS_IMPAIR=netem|netfilter and KEEL_FAULTS_PHASE_SECS
# pass through to the test.

set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"

die() {
    echo "faults.sh: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, tc/iptables, a PostgreSQL cluster run as 'postgres')"

packages=()
command -v ip >/dev/null || packages+=(iproute2)
command -v tc >/dev/null || [[ " ${packages[*]} " == *" iproute2 "* ]] || packages+=(iproute2)
command -v iptables >/dev/null || packages+=(iptables)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || packages+=(postgresql)
if [[ ${#packages[@]} -gt 0 ]]; then
    echo "faults.sh: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq "${packages[@]}" >&2 || die "apt-get install ${packages[*]} failed"
fi

# What runs of dead test processes left: their namespaces (with whatever
# still runs inside) and clusters. A live run's are left alone.
cleanup_leftovers() {
    local ns pid dir
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^keel-faults-[0-9]*$' || true); do
        pid=${ns#keel-faults-}
        kill -0 "$pid" 2>/dev/null && continue
        dir="${TMPDIR:-/tmp}/keel-faults-pg-$pid"
        [[ -d "$dir" ]] && { scripts/pg.sh stop "$dir" || true; }
        for p in $(ip netns pids "$ns" 2>/dev/null || true); do
            echo "faults.sh: killing leftover process $p in $ns" >&2
            kill -9 "$p" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
        ip link del "kfh$pid" 2>/dev/null || true
        echo "faults.sh: removed leftovers of run $pid" >&2
    done
    for dir in "${TMPDIR:-/tmp}"/keel-faults-pg-*; do
        [[ -d "$dir" ]] || continue
        pid=${dir##*-}
        kill -0 "$pid" 2>/dev/null && continue
        scripts/pg.sh stop "$dir" || true
    done
}
trap cleanup_leftovers EXIT

cleanup_leftovers
# The test picks its own store; a suite-wide PostgreSQL does not apply.
unset SHORTENER_TEST_PG
cargo test -p shortener --test faults -- --ignored --nocapture "$@"
