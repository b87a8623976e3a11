#!/usr/bin/env bash
# The Python part of `make test`: build the wheel once, install it into each venv, then on
# every CPython found (3.9, 3.11, 3.13): pytest (warnings are errors) and
# `mypy.stubtest shmbridge._native`; mypy --strict over the package and examples once.
set -euo pipefail
source "$(dirname "$0")/py-env.sh"
cd "$ROOT"

bash "$ROOT/scripts/py-build.sh"

py_peers

ran=()
skipped=()
last=""
for v in $PY_VERSIONS; do
  venv="$(py_venv "$v")"
  if [ ! -x "$venv/bin/python" ]; then
    skipped+=("$v")
    continue
  fi
  echo "python: CPython $v: pytest"
  "$venv/bin/python" -m pytest -q -c "$ROOT/pyproject.toml" --rootdir "$ROOT" "$ROOT/tests/python"
  echo "python: CPython $v: stubtest"
  (cd "$ROOT/tests" && "$venv/bin/python" -m mypy.stubtest shmbridge._native)
  ran+=("$v")
  last="$venv"
done
if [ -n "$last" ]; then
  echo "python: mypy --strict (package and examples)"
  "$last/bin/python" -m mypy --config-file "$ROOT/pyproject.toml"
fi
echo "python: tests ran on CPython ${ran[*]:-none}; skipped (not installed): ${skipped[*]:-none}"
[ "${#ran[@]}" -gt 0 ]
