#!/usr/bin/env bash
# System calls per request of keel and its peers (PEERS, default hyper; e.g.
# PEERS=hyper,actix,may) under the same wrk load, counted
# by the kernel's syscall tracepoints (perf stat): what each server asks of
# the kernel per request, in each of run.sh's three modes.
#
#   benches/load/syscalls.sh                # DURATION=4
#   PEERS=hyper,actix,may benches/load/syscalls.sh
#
# Same servers, pinning and wrk settings as run.sh (one run per server and
# mode, no rounds: the counts per request hardly move between runs). Needs
# root (tracepoints), perf (linux-perf) and wrk; both are installed with
# apt-get when missing. Environment: DURATION (s, default 4), CONNECTIONS
# (64), DEPTH (16), SERVER_CPU (0), CLIENT_CPU (1), PORT (18085), SKIP_BUILD=1,
# KEEL_ARGS (extra flags for hello), PEERS (hyper; see run.sh).
set -euo pipefail

DURATION=${DURATION:-4}
CONNECTIONS=${CONNECTIONS:-64}
DEPTH=${DEPTH:-16}
PORT=${PORT:-18085}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
need perf linux-perf
build_pair

calls=(read recvfrom readv write sendto writev sendmsg epoll_wait epoll_pwait epoll_ctl accept4 close shutdown setsockopt futex)
events=raw_syscalls:sys_enter
for call in "${calls[@]}"; do events+=",syscalls:sys_enter_$call"; done

echo "# system calls per request under wrk"
echo
echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, pipeline depth $DEPTH; server: taskset -c $SERVER_CPU, --workers 1; wrk: taskset -c $CLIENT_CPU"
echo
header="| mode | server | requests | all"
rule="| --- | --- | ---: | ---:"
for call in "${calls[@]}"; do header+=" | $call"; rule+=" | ---:"; done
echo "$header |"
echo "$rule |"
for mode in keep-alive pipelined close; do
    for name in keel "${peers[@]}"; do
        start_pair_server "$name" "$PORT"
        wrk_mode "$mode" "$DEPTH"
        perf_wrk "$events"
        awk -F, -v m="$mode" -v n="$name" -v r="${requests:-0}" '
            $3 ~ /sys_enter/ { name = $3; sub(/.*sys_enter_?/, "", name); count[name] = $1 + 0; order[++k] = name }
            END {
                if (r == 0) { print "| " m " | " n " | no result |"; exit }
                line = sprintf("| %s | %s | %d | %.3f", m, n, r, count[""] / r)
                for (i = 2; i <= k; i++) line = line sprintf(" | %.3f", count[order[i]] / r)
                print line " |"
            }' "$logs/perf.csv"
    done
done
echo
echo "Counts are per request answered; \"all\" counts every system call. In the"
echo "pipelined mode one read and one write carry $DEPTH requests."
