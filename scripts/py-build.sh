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
# What the wheel is made from: when none of it changed since the wheel in $out was built, that
# wheel is used as it is (so `make test`, whose Python tests and interop suite both ask for
# the wheel, builds it once).
inputs="$( { git ls-files -z --cached --others --exclude-standard -- crates python \
  pyproject.toml Cargo.toml Cargo.lock build_backend README.md 'LICENSE-*' 2>/dev/null || true; } \
  | sort -z | xargs -0 -r sha256sum 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [ -s "$out/.inputs" ] && [ "$(cat "$out/.inputs")" = "$inputs" ] \
   && ls "$out"/shmbridge-*.whl >/dev/null 2>&1; then
  echo "python: $(basename "$(ls "$out"/shmbridge-*.whl)") is up to date"
else
  rm -rf "$out"
  mkdir -p "$out"
  # Its own target directory, so the release build of the extension does not fight over
  # target/release with other builds.
  # (maturin warns that pyproject.toml's build-backend is not `maturin`: it is maturin's,
  # wrapped by build_backend/shmbridge_build.py, so the warning is dropped.)
  "$builder/bin/maturin" build --release --quiet --interpreter "$builder/bin/python" \
    --target-dir "$ROOT/target/python" --out "$out" >/dev/null \
    2> >(grep -v 'is not set to `maturin`' >&2)
  echo "$inputs" >"$out/.inputs"
  echo "python: built $(basename "$(ls "$out"/shmbridge-*.whl)")"
fi
wheel="$(ls "$out"/shmbridge-*.whl)"
sum="$(sha256sum "$wheel" | cut -d' ' -f1)"

for v in $PY_VERSIONS; do
  venv="$(py_venv "$v")"
  [ -x "$venv/bin/python" ] || continue
  if [ "$(cat "$venv/.shmbridge-wheel" 2>/dev/null || true)" != "$sum" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
      --force-reinstall "$wheel"
    echo "$sum" >"$venv/.shmbridge-wheel"
  fi
done
