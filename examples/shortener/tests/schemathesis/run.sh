#!/usr/bin/env bash
# Fuzzes the shortener's HTTP API against its OpenAPI description,
# docs/shortener.openapi.yaml, with schemathesis:
#
#   examples/shortener/tests/schemathesis/run.sh target/debug/shortener
#
# Installs what is missing (python3-venv with apt-get; a virtual environment
# in target/schemathesis-venv with the pinned schemathesis from PyPI), starts
# the shortener on a free loopback port with a fresh data folder, an API key
# and rate limits too high to be reached, and runs every phase (examples,
# coverage, fuzzing, stateful through the spec's links) with every check
# schemathesis has (object_level_authorization, which needs two users, has
# nothing to check). About a minute on 2 cores with a debug build. Stops the
# shortener on exit; exits non-zero on any failure, a 5xx included.
#
# The command it runs, from $work, a fresh folder holding the config and the
# hooks written below (each says why it is there):
#
#   SCHEMATHESIS_HOOKS=$work/hooks.py SHORTENER_FUZZ_KEY=<the key> \
#   target/schemathesis-venv/bin/schemathesis --config-file $work/schemathesis.toml \
#     run docs/shortener.openapi.yaml --url http://127.0.0.1:PORT \
#     --max-examples 100 --max-redirects 0 --workers 1 --request-timeout 10 \
#     --report junit,har --report-dir $work/report
#
# Environment: MAX_EXAMPLES (default 100) per operation and phase; SEED to
# replay a run (each prints its seed); KEEP_ARTIFACTS=1 keeps the server log
# and the reports (JUnit, HAR).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
spec="$root/docs/shortener.openapi.yaml"
venv="$root/target/schemathesis-venv"

die() {
  echo "run.sh: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || die "usage: run.sh SHORTENER_BINARY"
[[ -x "$1" && -f "$1" ]] || die "$1 is not an executable file (build it: cargo build -p shortener --bin shortener)"
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[[ -f "$spec" ]] || die "no $spec"

# ---- what is missing, installed once ----

"$root/scripts/python-venv.sh" "$venv" schemathesis "$SCHEMATHESIS_VERSION"

# ---- the config and hooks, in a fresh folder ----

kept="log and report"
# shellcheck source=../scratch.sh
source "$here/../scratch.sh"

key="fuzz-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

cat >"$work/schemathesis.toml" <<'EOF'
# Every check is on by default; none is named on the command line, where
# it would override the per-operation settings below.

# The API and /metrics need the admin key the shortener is started with;
# the ignored_auth and missing_required_header checks then see them refused
# without it (401).
[auth.openapi.bearerAuth]
bearer = "${SHORTENER_FUZZ_KEY}"

# A body over its route's limit (16 KiB for one link) is refused from the
# head with 413, before it is read, so before anything could call it
# invalid: a rejection of invalid data like the check's defaults
# (schemathesis 4.32's list, with 413 added). Generated invalid bodies
# sometimes pass the limit.
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

# POST /{slug} reads its form only for a link that has a password: for a
# link without one it redirects as GET /{slug} would, whatever the body
# (a password removed while its page was open must not strand the
# visitor). Which links have a password is state no schema can express, so
# "invalid data is rejected" does not apply to this operation. Every other
# check still does.
[[operations]]
include-operation-id = "unlockLink"
checks.negative_data_rejection.enabled = false

# A link that expired, was disabled or ran out of clicks answers 410 Gone
# to any request on /{slug}, valid or not: like 404 (which the check
# expects by default), it says the resource is no longer there, not that
# the request was wrong. So 410 joins the statuses valid data may get
# there; the rest are the check's defaults.
# An import's body is a CSV, which the spec can only call a string: whether
# it has a URL column (named in any of several ways, in any case) is not
# something a schema can state, so a "schema-valid" string that is not such
# a CSV gets its 400 `bad_csv`, and 400 joins the statuses valid data may get.
[[operations]]
include-operation-id = "importLinks"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "408", "413", "429", "5xx"]

[[operations]]
include-path = "/{slug}"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]
EOF

cat >"$work/hooks.py" <<'EOF'
"""Hooks for fuzzing the shortener's API.

`expires_at` must be in the future (and, in UTC, before the year 10000): a
rule relative to the clock, which no schema can state. Schemathesis draws
RFC 3339 times from the years 1 to 9999 and also replays times it saw in
responses (`created_at`, a second old), so before each request a valid
`expires_at` outside that window is moved into it: its year becomes 2400
(a leap year, so 29 February stays valid). Anything else (an invalid time,
another type, null) is sent as generated, so invalid data stays invalid.
"""
import datetime as dt

import schemathesis

_MARGIN = dt.timedelta(days=2)


def _outside_window(text):
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return False  # not a time: left as it is, to be refused
    if when.tzinfo is None:
        return False  # no offset: not RFC 3339, refused as it stands
    try:
        utc = when.astimezone(dt.timezone.utc)
    except OverflowError:
        return True  # before year 1 or after 9999 in UTC
    return utc <= dt.datetime.now(dt.timezone.utc) + _MARGIN


def _move_expiry(link):
    expires_at = link.get("expires_at") if isinstance(link, dict) else None
    if isinstance(expires_at, str) and len(expires_at) > 4 and _outside_window(expires_at):
        link["expires_at"] = "2400" + expires_at[4:]


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    _move_expiry(body)  # POST /api/links, PATCH /api/links/{slug}
    if isinstance(body.get("links"), list):  # POST /api/links/bulk
        for link in body["links"]:
            _move_expiry(link)
EOF

# ---- the shortener, on a free port with a fresh data folder ----

(
  # Settings from the caller's environment would change what the test sees:
  # the shortener gets only what the test decides.
  while read -r var; do unset "$var"; done < <(compgen -e | grep '^SHORTENER_' || true)
  export SHORTENER_API_KEYS="admin:$key"
  # Port 0: the kernel picks a free one, which the first line names. The
  # base URL is a name the fuzzer will not draw, so that no URL it sends is
  # refused as a link to the shortener itself (a rule no schema states);
  # with the default (http://127.0.0.1:0) it would draw http://[::1]:0.
  exec "$bin" --addr 127.0.0.1:0 --data "$data" --base-url http://shortener.invalid \
    --writes-per-minute 1000000 --guesses-per-minute 1000000 --auth-failures-per-minute 1000000
) >"$log" 2>&1 &
shortener_pid=$!

base=""
healthy() {
  "$venv/bin/python" - "$base/health" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
deadline=$((SECONDS + 30))
while :; do
  kill -0 "$shortener_pid" 2>/dev/null || die "the shortener exited before it was ready"
  ((SECONDS < deadline)) || die "the shortener was not ready within 30 s"
  if [[ -z "$base" ]]; then
    base="$(sed -n 's|^shortener: listening on \(http://[^ ]*\) .*|\1|p' "$log" | head -n 1)"
  fi
  [[ -n "$base" ]] && healthy && break
  sleep 0.2
done
echo "run.sh: shortener ready at $base (pid $shortener_pid)"

# ---- the fuzzing ----

args=(
  run "$spec"
  --url "$base"
  --max-examples "${MAX_EXAMPLES:-100}"
  # Redirects point at the links' targets, which are not ours to visit.
  --max-redirects 0
  # One worker: with two, Python 3.11's ast module (which hypothesis uses to
  # describe its filters) can fail with "AST constructor recursion depth
  # mismatch".
  --workers 1
  --request-timeout 10
  # The live click stream never ends on its own: every valid request would
  # run into the timeout. Its socket tests cover it instead.
  --exclude-operation-id watchLinkClicks
  --report junit,har --report-dir "$work/report"
)
[[ -n "${SEED:-}" ]] && args+=(--seed "$SEED")

cd "$work" # schemathesis keeps a cache folder in the current one
if SCHEMATHESIS_HOOKS="$work/hooks.py" SHORTENER_FUZZ_KEY="$key" \
  timeout --kill-after=10 300 "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" "${args[@]}"; then
  :
else
  rc=$?
  [[ $rc -eq 124 ]] && die "schemathesis did not finish within 300 s"
  die "schemathesis found failures (exit $rc)"
fi
kill -0 "$shortener_pid" 2>/dev/null || die "the shortener died during the run"
# A handler panic is answered 500 (which fails a check), but say so plainly.
if grep -q "panicked" "$log"; then die "the shortener panicked during the run"; fi
status=0
echo "run.sh: passed"
