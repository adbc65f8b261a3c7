#!/usr/bin/env bash
# Installs what tests/client.py needs: a virtual environment in
# target/websocket-venv with the pinned `websockets` from PyPI (python3 and
# python3-venv from apt-get if missing). Does nothing when it is there
# already. CI runs it before `cargo test --workspace`; the Rust test
# (tests/python_client.rs) runs it too when the venv is missing.
#
#   examples/websocket/tests/setup-python.sh
set -euo pipefail

WEBSOCKETS_VERSION=15.0.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/websocket-venv"

die() {
  echo "setup-python.sh: $*" >&2
  exit 1
}

apt_install() {
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install them"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "missing $*: run as root or install them"
    sudo=(sudo)
  fi
  echo "setup-python.sh: installing $* with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v python3 >/dev/null || apt_install python3 python3-venv
# Debian's python3 lacks venv (and ensurepip) until python3-venv is installed.
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "python3 is too old: websockets needs 3.9 or later"

installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("websockets"))' 2>/dev/null || true)"
if [[ "$installed" != "$WEBSOCKETS_VERSION" ]]; then
  echo "setup-python.sh: installing websockets $WEBSOCKETS_VERSION in $venv"
  # A venv whose python no longer runs (python3 upgraded) is made anew.
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || die "cannot create $venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION" ||
    die "pip install websockets==$WEBSOCKETS_VERSION failed"
fi
echo "setup-python.sh: $venv/bin/python has websockets $WEBSOCKETS_VERSION"
