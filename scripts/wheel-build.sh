#!/usr/bin/env bash
# `make wheel`: the wheel to publish, and the sdist, in build/dist.
#
# One abi3 wheel (CPython 3.9 and later) for manylinux2014 = manylinux_2_17: linked by zig
# against glibc 2.17's symbols (maturin --zig, zig from PyPI's ziglang), checked by maturin's
# auditwheel check, release profile (no debug info) and stripped. A plain `maturin build` on
# this machine would be manylinux_2_34, and `pip install .` gives a linux_x86_64 wheel that
# only suits the machine it was built on (PyPI refuses it).
#
# The tools live in their own venv, .venv/wheel, pinned: a new zig can break maturin's use of
# it, so they are bumped together, on purpose. Then scripts/wheel_check.py checks the result
# (tags, auditwheel, glibc symbols, stripping, licences, metadata) and prints the sizes.
set -euo pipefail
source "$(dirname "$0")/py-env.sh"
cd "$ROOT"

WHEEL_TOOLS=(maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2)
stamp=".shmbridge-wheel-tools-$(echo "${WHEEL_TOOLS[*]}" | sha256sum | cut -c1-12)"
venv="$PY_VENV_ROOT/wheel"
py=""
for v in 3.11 $PY_VERSIONS; do
  py="$(py_find "$v")"
  [ -n "$py" ] && break
done
if [ -z "$py" ]; then
  echo "wheel: no CPython ($PY_VERSIONS) found to run maturin" >&2
  exit 1
fi
if [ ! -f "$venv/$stamp" ]; then
  echo "wheel: setting up $venv (${WHEEL_TOOLS[*]})"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${WHEEL_TOOLS[@]}"
  touch "$venv/$stamp"
fi
export PATH="$venv/bin:$PATH"   # maturin finds zig (python -m ziglang) through it

out="$ROOT/build/dist"
rm -rf "$out"
mkdir -p "$out"
echo "wheel: maturin build --release --zig --compatibility manylinux2014 --auditwheel check --strip"
# Its own target directory: linking through zig changes every build script's fingerprint.
maturin build --quiet --release --zig --compatibility manylinux2014 --auditwheel check --strip \
  --interpreter "$venv/bin/python" --target-dir "$ROOT/target/wheel" --out "$out" \
  2> >(grep -v 'is not set to `maturin`' >&2)   # it is maturin's, wrapped (pyproject.toml)
if ! maturin sdist --out "$out" >"$out/sdist.log" 2>&1; then
  cat "$out/sdist.log" >&2
  exit 1
fi
rm -f "$out/sdist.log"
"$venv/bin/python" "$ROOT/scripts/wheel_check.py" "$out" "$ROOT"
