#!/usr/bin/env bash
# `make test-wheel`: the wheel from `make wheel` (build/dist), installed the way a user would,
# into a new, empty venv for each CPython found (3.9, 3.11, 3.13), with its test extra
# (pytest, numpy, mypy) from PyPI; then the Python tests and stubtest run against the installed
# copy (checked to be the venv's, not the source tree's). Last, the sdist is installed into
# another new venv, which compiles it with the project's build backend, and tested the same way;
# and `pip install .` on a machine without cargo must fail clearly, downloading no Rust.
set -euo pipefail
source "$(dirname "$0")/py-env.sh"
cd "$ROOT"

dist="$ROOT/build/dist"
wheel="$(ls "$dist"/shmbridge-*.whl 2>/dev/null || true)"
sdist="$(ls "$dist"/shmbridge-*.tar.gz 2>/dev/null || true)"
if [ -z "$wheel" ] || [ -z "$sdist" ]; then
  echo "test-wheel: no wheel or sdist in $dist; run make wheel" >&2
  exit 1
fi
work="$ROOT/build/wheel-test"
rm -rf "$work"
mkdir -p "$work"

py_peers

# test_in VENV WHAT: the installed package is the venv's; pytest and stubtest pass.
test_in() {
  local venv=$1 what=$2 file
  file="$(cd "$work" && "$venv/bin/python" -c 'import shmbridge; print(shmbridge.__file__)')"
  case $file in
    "$venv"/lib/python3.*/site-packages/shmbridge/__init__.py) ;;
    *) echo "FAIL: $what: shmbridge imported from $file, not from $venv" >&2; exit 1 ;;
  esac
  for licence in LICENSE-MIT LICENSE-APACHE; do
    ls "$venv"/lib/python3.*/site-packages/shmbridge-*.dist-info/licenses/"$licence" >/dev/null \
      || { echo "FAIL: $what: no $licence in the installed dist-info" >&2; exit 1; }
  done
  (cd "$work" && "$venv/bin/python" -m pytest -q -p no:cacheprovider -c "$ROOT/pyproject.toml" \
     --rootdir "$ROOT" "$ROOT/tests/python")
  (cd "$ROOT/tests" && "$venv/bin/python" -m mypy.stubtest shmbridge._native)
  echo "ok: $what: installed in a new venv, the Python tests and stubtest pass"
}

ran=()
for v in $PY_VERSIONS; do
  py="$(py_find "$v")"
  if [ -z "$py" ]; then
    echo "test-wheel: CPython $v not found: skipped"
    continue
  fi
  venv="$work/py$v"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[test]"
  test_in "$venv" "CPython $v, $(basename "$wheel")"
  ran+=("$v")
done
[ "${#ran[@]}" -gt 0 ] || { echo "test-wheel: no CPython found" >&2; exit 1; }

# The sdist, built from source by pip (its own target directory, kept between runs).
py="$(py_find "${ran[-1]}")"
venv="$work/sdist-py${ran[-1]}"
"$py" -m venv "$venv"
CARGO_TARGET_DIR="$ROOT/target/sdist" \
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$sdist[test]"
test_in "$venv" "CPython ${ran[-1]}, $(basename "$sdist") built by pip"

# `pip install .` on a machine without cargo: a clear error naming cargo and the Rust version,
# and no Rust download (maturin's backend alone would fetch puccinialin and a toolchain).
source "$ROOT/scripts/no-cargo-env.sh"
min_rust="$(sed -n 's/^rust-version = "\([0-9.]*\)"/\1/p' crates/shmbridge-py/Cargo.toml)"
no_cargo_bin "$work/no-cargo-bin"
mkdir -p "$work/no-cargo-home"
"$py" -m venv "$work/venv-nocargo"
if (cd "$work" && env -u CARGO_HOME -u RUSTUP_HOME HOME="$work/no-cargo-home" PATH="$work/no-cargo-bin" \
      "$work/venv-nocargo/bin/python" -m pip install --disable-pip-version-check "$ROOT" \
      >"$work/nocargo.log" 2>&1); then
  echo "FAIL: pip install . without cargo succeeded" >&2; exit 1
fi
for want in "cargo, Rust's build tool, was not found on PATH" "needs Rust $min_rust or newer" "rustup"; do
  grep -qF "$want" "$work/nocargo.log" \
    || { echo "FAIL: pip's error without cargo lacks '$want':"; cat "$work/nocargo.log"; exit 1; } >&2
done
if grep -qi puccinialin "$work/nocargo.log"; then
  echo "FAIL: pip install . without cargo went for a Rust download:" >&2; cat "$work/nocargo.log" >&2; exit 1
fi
echo "ok: pip install . without cargo fails at once naming cargo and Rust $min_rust; nothing downloaded"
echo "test-wheel: the wheel passed on CPython ${ran[*]}; the sdist builds and passes"
