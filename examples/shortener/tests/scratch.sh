# Sourced by the shortener's script tests (browser/run.sh,
# schemathesis/run.sh): a scratch folder with a data folder and a log for
# the shortener they start, and, on exit, a graceful stop of that shortener
# (forced after 5 s) and the folder removed, or kept and its log shown when
# the test failed. The caller sets `shortener_pid` once started, and
# `status=0` when it passed; `kept` says what stays behind on failure.

work="$(mktemp -d)"
data="$work/data"
log="$work/shortener.log"
mkdir -p "$data"
shortener_pid=""
status=1

cleanup() {
  if [[ -n "$shortener_pid" ]] && kill -0 "$shortener_pid" 2>/dev/null; then
    kill "$shortener_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$shortener_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$shortener_pid" 2>/dev/null || true
    wait "$shortener_pid" 2>/dev/null || true
  fi
  if [[ $status -ne 0 || -n "${KEEP_ARTIFACTS:-}" ]]; then
    if [[ -s "$log" ]]; then
      echo "---- shortener log (last 40 lines of $log) ----" >&2
      tail -n 40 "$log" >&2
    fi
    echo "run.sh: ${kept:-log} kept in $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
