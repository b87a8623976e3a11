#!/usr/bin/env bash
# `make stress`: the transfer, stream, wait and kill suites of every front, RUNS times each
# (default 20), while a CPU hog keeps every core busy, because races in waiting and liveness
# show under load and not on a quiet machine. Prints how many runs of each suite failed and
# keeps the logs of failed runs in build/stress/. Exits non-zero if any run failed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-20}"
PY="${VENV_PY:?VENV_PY: the Python of a test venv (make setup)}"
LOGS="$ROOT/build/stress"
rm -rf "$LOGS"
mkdir -p "$LOGS"

echo "stress: building the suites"
cargo test -q --no-run -p shmbridge -p shmbridge-cli >/dev/null 2>&1 || {
  echo "stress: the Rust tests do not build" >&2
  exit 2
}
cargo build -q -p shmbridge-cli --bin shmbridge
export SHMBRIDGE_CLI="${CARGO_TARGET_DIR:-$ROOT/target}/debug/shmbridge"
export OPENBLAS_NUM_THREADS=1

# name | command
SUITES=(
  "rust-core-sync|cargo test -q -p shmbridge --lib -- sync:: stream:: framed::"
  "rust-transfer|cargo test -q -p shmbridge --test transfer --test cross_process"
  "rust-cli-kill|cargo test -q -p shmbridge-cli --test kill --test liveness"
  "c-cxx-transfer|ctest --test-dir build/c -R transfer --output-on-failure"
  "python|$PY -m pytest -q -x -p no:cacheprovider -c pyproject.toml --rootdir . tests/python/test_transfer.py tests/python/test_waiting.py"
)

hogs=()
cleanup() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq "$(nproc)"); do
  (while :; do :; done) &
  hogs+=("$!")
done
echo "stress: ${#hogs[@]} CPU hogs running; $RUNS runs of each of ${#SUITES[@]} suites"

declare -A failed
total_failed=0
for run in $(seq "$RUNS"); do
  line="run $run/$RUNS:"
  for entry in "${SUITES[@]}"; do
    name="${entry%%|*}"
    command="${entry#*|}"
    log="$LOGS/$name-$run.log"
    if bash -c "$command" >"$log" 2>&1; then
      rm -f "$log"
      line+=" $name ok"
    else
      failed[$name]=$(( ${failed[$name]:-0} + 1 ))
      total_failed=$((total_failed + 1))
      line+=" $name FAILED"
    fi
  done
  echo "stress: $line"
done

echo
echo "stress: $RUNS runs of each suite under ${#hogs[@]} CPU hogs"
for entry in "${SUITES[@]}"; do
  name="${entry%%|*}"
  n="${failed[$name]:-0}"
  printf 'stress:   %-16s %2d of %d runs failed\n' "$name" "$n" "$RUNS"
done
bash "$ROOT/scripts/check-shm-clean.sh" || total_failed=$((total_failed + 1))
if [ "$total_failed" -gt 0 ]; then
  echo "stress: $total_failed failed runs; logs in $LOGS" >&2
  exit 1
fi
echo "stress: every run passed"
