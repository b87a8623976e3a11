#!/usr/bin/env bash
# Make one venv per CPython version (.venv/py3.9, .venv/py3.11, .venv/py3.13) with the
# tools the Python tests need: maturin, pytest, numpy, mypy. Idempotent: a venv that has
# them already is left alone. Versions that are not installed are skipped, and said so.
set -euo pipefail
source "$(dirname "$0")/py-env.sh"

found=0
for v in $PY_VERSIONS; do
  py="$(py_find "$v")"
  if [ -z "$py" ]; then
    echo "python: CPython $v not found (pyenv or python$v on PATH): skipped"
    continue
  fi
  found=$((found + 1))
  venv="$(py_venv "$v")"
  if [ -f "$venv/$PY_DEPS_STAMP" ] && [ -x "$venv/bin/python" ]; then
    continue
  fi
  echo "python: setting up $venv ($py)"
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_DEPS[@]}"
  touch "$venv/$PY_DEPS_STAMP"
done
if [ "$found" -eq 0 ]; then
  echo "python: none of CPython $PY_VERSIONS found" >&2
  exit 1
fi
