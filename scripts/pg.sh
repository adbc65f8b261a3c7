#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the shortener's PostgreSQL
# store tests and for trying several instances on one database.
#
#   scripts/pg.sh start DIR PORT   # prints postgres://shortener@127.0.0.1:PORT/shortener
#   scripts/pg.sh start DIR PORT ADDR [NETNS]  # on ADDR, inside network namespace NETNS
#   scripts/pg.sh stop DIR         # stops the server and removes DIR
#   scripts/pg.sh url DIR          # prints the URL of a running one
#
# start: installs Debian's `postgresql` package with apt-get when no
# `initdb` is found (the binaries live in /usr/lib/postgresql/*/bin), runs
# `initdb` as the `postgres` user (initdb refuses root; DIR is handed to
# `postgres`), and starts the server listening on 127.0.0.1:PORT only, with
# its unix socket inside DIR and its log in DIR/server.log. It creates the
# role `shortener` (login, trust authentication from 127.0.0.1 only) and the
# database `shortener` it owns. Durability settings (fsync,
# synchronous_commit, full_page_writes) keep their defaults: the durability
# tests need them; only memory is trimmed (shared_buffers) and more
# connections allowed (tests run in parallel, each with its own pool).
#
# With ADDR (an IPv4 address) the server listens on ADDR:PORT instead and
# trusts the role `shortener` from the subnets it is directly connected to
# (pg_hba `samenet`: meant for a private link such as a veth pair, never a
# shared network). With NETNS too, it runs inside that network namespace
# (`ip netns exec`, root only), so that every packet between the clients
# and the server crosses the namespace's link: the fault test
# (examples/shortener/tests/faults/) injects delay and loss there. The
# unix socket in DIR still reaches it from outside. A DIR remembers its
# port and address: `start` again with others fails.
#
# Both commands are idempotent: `start` on a running server only prints its
# URL, `stop` on a missing DIR does nothing. Every failure is reported with
# the server log's tail and a non-zero exit.
#
# Run as root (as CI does) or as a user that may run initdb itself.

set -euo pipefail

die() {
    echo "pg.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The newest installed server's bin directory, installing one when none.
pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [[ -z "$bin" || ! -x "$bin/initdb" ]]; then
        [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root"
        echo "pg.sh: installing PostgreSQL with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || die "apt-get update failed"
        apt-get install -y -qq postgresql >&2 || die "apt-get install postgresql failed"
        bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
        [[ -n "$bin" && -x "$bin/initdb" ]] || die "no initdb under /usr/lib/postgresql/*/bin after installing"
    fi
    echo "$bin"
}

# The listen address in DIR's configuration.
listen_addr() {
    sed -n "s/^listen_addresses = '\\(.*\\)'\$/\\1/p" "$1/data/postgresql.conf" | tail -n 1
}

# Runs a command as the cluster's owner.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

show_log() {
    if [[ -f "$1/server.log" ]]; then
        echo "pg.sh: last lines of $1/server.log:" >&2
        tail -n 20 "$1/server.log" >&2 || true
    fi
}

# Whether DIR holds a cluster this script made.
ours() {
    [[ -f "$1/.keel-pg" && -f "$1/data/PG_VERSION" ]]
}

# Runs a command inside network namespace $netns when set.
in_netns() {
    if [[ -n "$netns" ]]; then
        ip netns exec "$netns" "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 port=$2 addr=${3:-127.0.0.1}
    netns=${4:-}
    [[ "$port" =~ ^[0-9]+$ ]] && ((port > 0 && port < 65536)) || die "bad port: $port"
    [[ "$addr" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || die "bad IPv4 address: $addr"
    if [[ -n "$netns" ]]; then
        [[ $(id -u) -eq 0 ]] || die "running the server in a network namespace needs root"
        command -v ip >/dev/null || die "no 'ip' command (Debian: apt-get install iproute2)"
        ip netns exec "$netns" true 2>/dev/null || die "no network namespace $netns"
    fi
    local bin
    bin=$(pg_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    local url="postgres://shortener@$addr:$port/shortener"

    if [[ -e "$dir/data" ]] && ! ours "$dir"; then
        die "$dir/data exists but was not made by this script; pick another DIR"
    fi
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the server as"
        chown postgres: "$dir"
    fi

    if ! ours "$dir"; then
        mkdir -p "$dir/socket"
        [[ $(id -u) -eq 0 ]] && chown postgres: "$dir/socket"
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --no-locale \
            --auth-local=trust --auth-host=reject >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        as_owner tee -a "$dir/data/postgresql.conf" >/dev/null <<EOF

# scripts/pg.sh: a test cluster (loopback unless started with ADDR).
listen_addresses = '$addr'
port = $port
unix_socket_directories = '$dir/socket'
max_connections = 400
shared_buffers = 32MB
log_line_prefix = '%m [%p] %a '
EOF
        # Only the shortener role, only from 127.0.0.1 (or the private
        # link of ADDR), without a password.
        local clients=127.0.0.1/32
        [[ "$addr" == 127.0.0.1 ]] || clients=samenet
        as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<EOF
local all all trust
host shortener shortener $clients trust
EOF
        touch "$dir/.keel-pg"
    fi

    local conf_port
    conf_port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)
    [[ "$conf_port" == "$port" ]] || die "$dir was made for port $conf_port, not $port"
    local conf_addr
    conf_addr=$(listen_addr "$dir")
    [[ "$conf_addr" == "$addr" ]] || die "$dir was made for address $conf_addr, not $addr"

    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        local owner=()
        [[ $(id -u) -eq 0 ]] && owner=(runuser -u postgres --)
        in_netns "${owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
            { show_log "$dir"; die "the server did not start on $addr:$port${netns:+ in $netns}"; }
    fi

    local psql=("$bin/psql" -h "$dir/socket" -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1)
    as_owner "${psql[@]}" -d postgres >/dev/null <<'EOF' || { show_log "$dir"; die "cannot create the role and database"; }
SELECT 'CREATE ROLE shortener LOGIN'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shortener') \gexec
SELECT 'CREATE DATABASE shortener OWNER shortener'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'shortener') \gexec
EOF
    in_netns "$bin/psql" "$url" -X -q -c 'SELECT 1' >/dev/null ||
        { show_log "$dir"; die "cannot connect to $url${netns:+ in $netns}"; }
    echo "$url"
}

stop() {
    local dir=$1
    if [[ ! -e "$dir" ]]; then
        echo "pg.sh: $dir does not exist: nothing to stop" >&2
        return 0
    fi
    dir=$(cd "$dir" && pwd)
    [[ "$dir" != "/" ]] || die "refusing to remove /"
    ours "$dir" || die "$dir was not made by this script; not touching it"
    local bin
    bin=$(pg_bin)
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ||
            { show_log "$dir"; die "the server in $dir did not stop"; }
    fi
    rm -rf "$dir"
    echo "pg.sh: stopped and removed $dir" >&2
}

url() {
    local dir=$1
    ours "$dir" || die "no cluster in $dir"
    local port
    port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/data/postgresql.conf" | tail -n 1)
    echo "postgres://shortener@$(listen_addr "$dir"):$port/shortener"
}

case "${1:-}" in
start) [[ $# -ge 3 && $# -le 5 ]] || usage; start "$2" "$3" "${4:-}" "${5:-}" ;;
stop) [[ $# -eq 2 ]] || usage; stop "$2" ;;
url) [[ $# -eq 2 ]] || usage; url "$2" ;;
*) usage ;;
esac
