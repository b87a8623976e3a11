#!/usr/bin/env bash
# Build the shmbridge wheel once (abi3: one wheel for every CPython from 3.9) and install it
# into each test venv (.venv/py3.X). Incremental: cargo rebuilds only what changed, and a venv
# is reinstalled only when the wheel differs from what it has.
set -euo pipefail
source "$(dirname "$0")/py-env.sh"
cd "$ROOT"

builder=""
for v in $PY_VERSIONS; do
  if [ -x "$(py_venv "$v")/bin/maturin" ]; then
    builder="$(py_venv "$v")"
    break
  fi
done
if [ -z "$builder" ]; then
  echo "python: no venv with maturin; run scripts/py-setup.sh (make setup) first" >&2
  exit 1
fi

out="$ROOT/build/wheels"
rm -rf "$out"
mkdir -p "$out"
# Its own target directory, so the release build of the extension does not fight over
# target/release with other builds.
# (maturin warns that pyproject.toml's build-backend is not `maturin`: it is maturin's, wrapped
# by build_backend/shmbridge_build.py, so the warning is dropped.)
"$builder/bin/maturin" build --release --quiet --interpreter "$builder/bin/python" \
  --target-dir "$ROOT/target/python" --out "$out" >/dev/null \
  2> >(grep -v 'is not set to `maturin`' >&2)
wheel="$(ls "$out"/shmbridge-*.whl)"
sum="$(sha256sum "$wheel" | cut -d' ' -f1)"
echo "python: built $(basename "$wheel")"

for v in $PY_VERSIONS; do
  venv="$(py_venv "$v")"
  [ -x "$venv/bin/python" ] || continue
  if [ "$(cat "$venv/.shmbridge-wheel" 2>/dev/null || true)" != "$sum" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --force-reinstall "$wheel"
    echo "$sum" >"$venv/.shmbridge-wheel"
  fi
done
