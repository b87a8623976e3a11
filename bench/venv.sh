#!/usr/bin/env bash
# The bench's own Python venv (build/bench/venv): the shmbridge wheel (built by
# scripts/py-build.sh) plus numpy and the libraries bench/rtt.py and bench/frames.py compare
# against, from PyPI at pinned versions. Bench-only: the test venvs (.venv/py3.X) never get these.
#
#   bash bench/venv.sh          # prints the venv's python on its last line
#
# Idempotent: a venv whose stamp matches the pins is reused (the wheel is reinstalled only
# when it changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$ROOT/scripts/py-env.sh"

# The pins. Bump them here only (the stamp follows).
PINS=(pyzmq==27.3.0 iceoryx2==0.10.0 numpy==2.4.6)
VENV="$ROOT/build/bench/venv"
STAMP="$VENV/.bench-pins-$(printf '%s\n' "${PINS[@]}" | md5sum | cut -c1-12)"

PY=""
for v in 3.11 $PY_VERSIONS; do
  PY="$(py_find "$v")"
  [ -n "$PY" ] && break
done
if [ -z "$PY" ]; then
  echo "bench/venv.sh: no CPython of $PY_VERSIONS found (run make setup)" >&2
  exit 1
fi

if [ ! -f "$STAMP" ]; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "${PINS[@]}" >&2
  touch "$STAMP"
fi

WHEEL="$(ls -t "$ROOT"/build/wheels/shmbridge-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$WHEEL" ]; then
  echo "bench/venv.sh: no shmbridge wheel in build/wheels (run make build-python)" >&2
  exit 1
fi
if [ "$(cat "$VENV/.wheel" 2>/dev/null)" != "$(md5sum <"$WHEEL")" ]; then
  "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL" >&2
  md5sum <"$WHEEL" >"$VENV/.wheel"
fi
echo "$VENV/bin/python"
