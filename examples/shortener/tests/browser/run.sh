#!/usr/bin/env bash
# End-to-end test of the shortener's web pages in headless Chromium.
#
#   examples/shortener/tests/browser/run.sh target/debug/shortener
#
# Installs what is missing (Debian packages chromium, nodejs and npm with
# apt-get; playwright-core with npm ci), starts the shortener on a free
# loopback port with a fresh data folder, runs e2e.mjs against it, and stops
# everything on exit. Exits non-zero, saying why, on any failure.
#
# Environment: API_KEY (optional, 22 characters or more) starts the
# shortener with that key in SHORTENER_API_KEYS (a key without a scope: a
# write key) and has the pages send it; CHROMIUM (default
# /usr/bin/chromium); KEEP_ARTIFACTS=1 keeps the server log and screenshot.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() {
  echo "run.sh: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: run.sh SHORTENER_BINARY"
[[ -x "$1" && -f "$1" ]] || die "$1 is not an executable file (build it: cargo build -p shortener --bin shortener)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
chromium="${CHROMIUM:-/usr/bin/chromium}"

# ---- what is missing, installed once ----

missing=()
[[ -x "$chromium" ]] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
# nodesource's nodejs bundles npm and conflicts with Debian's npm package:
# ask for npm only when there is no npm at all.
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "missing ${missing[*]}: run as root or install them"
    sudo=(sudo)
  fi
  echo "run.sh: installing ${missing[*]} with apt-get"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -x "$chromium" ]] || die "no Chromium at $chromium"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 18)) || die "node $(node --version) is too old: playwright-core needs 18 or later"

locked="$(node -p 'require(process.argv[1]).packages["node_modules/playwright-core"].version' "$here/package-lock.json")"
installed="$(node -p 'try { require(process.argv[1]).version } catch { "" }' "$here/node_modules/playwright-core/package.json")"
if [[ "$installed" != "$locked" ]]; then
  echo "run.sh: npm ci (playwright-core $locked)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
fi

# ---- the shortener, on a free port with a fresh data folder ----

kept="log and screenshots"
# shellcheck source=../scratch.sh
source "$here/../scratch.sh"

port="$(node -e '
  const s = require("net").createServer();
  s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
base="http://127.0.0.1:$port"

(
  # Settings from the caller's environment (keys, a base URL...) would change
  # what the test sees: the shortener gets only what the test decides.
  while read -r var; do unset "$var"; done < <(compgen -e | grep '^SHORTENER_' || true)
  if [[ -n "${API_KEY:-}" ]]; then export SHORTENER_API_KEYS="$API_KEY"; fi
  exec "$bin" --addr "127.0.0.1:$port" --data "$data"
) >"$log" 2>&1 &
shortener_pid=$!

healthy() {
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$base/health"
}
deadline=$((SECONDS + 30))
until grep -q "shortener: listening on" "$log" 2>/dev/null && healthy; do
  kill -0 "$shortener_pid" 2>/dev/null || die "the shortener exited before it was ready"
  ((SECONDS < deadline)) || die "the shortener was not ready within 30 s ($base/health)"
  sleep 0.2
done
echo "run.sh: shortener ready at $base (pid $shortener_pid)"

# ---- the browser test ----

if BASE_URL="$base" CHROMIUM="$chromium" API_KEY="${API_KEY:-}" E2E_ARTIFACTS="$work" \
  timeout --kill-after=10 120 node "$here/e2e.mjs"; then
  status=0
else
  rc=$?
  [[ $rc -eq 124 ]] && die "e2e.mjs did not finish within 120 s"
  die "e2e.mjs failed (exit $rc)"
fi
