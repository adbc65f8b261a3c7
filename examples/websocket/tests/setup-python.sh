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

"$root/scripts/python-venv.sh" "$venv" websockets "$WEBSOCKETS_VERSION"
echo "setup-python.sh: $venv/bin/python has websockets $WEBSOCKETS_VERSION"
