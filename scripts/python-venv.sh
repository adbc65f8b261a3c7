#!/usr/bin/env bash
# Makes sure the virtual environment VENV has PACKAGE at VERSION, from
# PyPI: installs python3 and python3-venv with apt-get when missing, makes
# the venv (anew when its python no longer runs, after a python3 upgrade),
# and pip-installs the pinned package when another version (or none) is
# there. Does nothing when all is in place. The test scripts that drive
# Python clients share it: the shortener's schemathesis run and the
# websocket example's client.
#
#   scripts/python-venv.sh VENV PACKAGE VERSION
set -euo pipefail

die() {
  echo "python-venv.sh: $*" >&2
  exit 1
}

[[ $# -eq 3 ]] || die "usage: python-venv.sh VENV PACKAGE VERSION"
venv=$1 package=$2 version=$3

apt_install() {
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install them"
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "missing $*: run as root or install them"
    sudo=(sudo)
  fi
  echo "python-venv.sh: installing $* with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v python3 >/dev/null || apt_install python3 python3-venv
# Debian's python3 lacks venv (and ensurepip) until python3-venv is installed.
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "python3 is too old: $package needs 3.9 or later"

installed="$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$package'))" 2>/dev/null || true)"
if [[ "$installed" != "$version" ]]; then
  echo "python-venv.sh: installing $package $version in $venv"
  if ! "$venv/bin/python" -c '' 2>/dev/null; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || die "cannot create $venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version" ||
    die "pip install $package==$version failed"
fi
