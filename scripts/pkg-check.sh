#!/usr/bin/env bash
# `make test-packaging` (part of `make test`): the artifacts carry the licences and the
# project's metadata, and the README's ways in for Python and the command work from a clean
# directory:
#   1. one version, licence and address across Cargo.toml, pyproject.toml (and so the sdist);
#   2. `cargo package --list` of every crate carries LICENSE-MIT and LICENSE-APACHE;
#   3. the sdist (maturin sdist) carries them, the build backend and the metadata;
#   4. on a machine without cargo the build backend fails at once, naming cargo and the Rust
#      version, and asks for no Rust download (maturin's backend alone would);
#   5. `pip install .` into a new venv, run from another directory, installs a working package
#      with its licences;
#   6. `cargo install --locked --path crates/shmbridge-cli` installs a `shmbridge` that runs.
# The wheel to publish is checked by `make wheel` / `make test-wheel` (mk/35-wheel.mk); CMake
# and pkg-config by test-c and test-cpp-demo.
set -euo pipefail
source "$(dirname "$0")/py-env.sh"
cd "$ROOT"
fail() { echo "FAIL: $*" >&2; exit 1; }

work="$ROOT/build/pkg-check"
rm -rf "$work"
mkdir -p "$work"

# A test venv (mk/30-python.mk) with maturin, for the sdist; and its interpreter for new venvs.
builder=""
for v in 3.11 $PY_VERSIONS; do
  if [ -x "$(py_venv "$v")/bin/maturin" ]; then builder="$(py_venv "$v")"; break; fi
done
[ -n "$builder" ] || fail "no venv with maturin; run make setup"
base_py="$("$builder/bin/python" -c 'import sys; print(sys._base_executable)')"

# 1. One version, licence and address.
field() { sed -n "s/^$1 = \"\\(.*\\)\"/\\1/p" "$2" | head -1; }
version="$(field version Cargo.toml)"
repo="$(field repository Cargo.toml)"
[ "$(field license Cargo.toml)" = "MIT OR Apache-2.0" ] || fail "Cargo.toml's license is not MIT OR Apache-2.0"
[ "$(field license pyproject.toml)" = "MIT OR Apache-2.0" ] || fail "pyproject.toml's license is not MIT OR Apache-2.0"
for key in Homepage Repository; do
  [ "$(field "$key" pyproject.toml)" = "$repo" ] || fail "pyproject.toml's $key is not Cargo.toml's repository ($repo)"
done
grep -q "^## \[$version\]" CHANGELOG.md || fail "CHANGELOG.md has no section for $version"
echo "ok: version $version, licence MIT OR Apache-2.0 and address $repo agree; CHANGELOG.md has $version"

# 2. cargo package.
for crate in shmbridge shmbridge-ffi shmbridge-py shmbridge-cli; do
  list="$(cargo package --quiet --locked --allow-dirty --list -p "$crate")"
  for f in LICENSE-MIT LICENSE-APACHE; do
    grep -qx "$f" <<<"$list" || fail "cargo package -p $crate does not carry $f"
  done
done
cargo package --quiet --locked --allow-dirty --list -p shmbridge | grep -qx README.md \
  || fail "cargo package -p shmbridge does not carry its README.md"
for key in description license repository keywords categories rust-version; do
  cargo metadata --format-version 1 --no-deps --locked | "$builder/bin/python" -c '
import json, sys
key = sys.argv[1].replace("-", "_")
core = next(p for p in json.load(sys.stdin)["packages"] if p["name"] == "shmbridge")
sys.exit(0 if core.get(key) else 1)' "$key" || fail "the shmbridge crate has no $key"
done
echo "ok: cargo package carries both licences (every crate); the core crate has its metadata and README"

# 3. The sdist.
"$builder/bin/maturin" sdist --out "$work/sdist" >"$work/sdist.log" 2>&1 \
  || { cat "$work/sdist.log" >&2; fail "maturin sdist failed"; }
sdist="$(ls "$work"/sdist/shmbridge-*.tar.gz)"
contents="$(tar tzf "$sdist")"
for f in LICENSE-MIT LICENSE-APACHE build_backend/shmbridge_build.py Cargo.lock PKG-INFO; do
  grep -qx "shmbridge-$version/$f" <<<"$contents" || fail "the sdist has no $f"
done
pkg_info="$(tar xzf "$sdist" -O "shmbridge-$version/PKG-INFO")"
for want in "License-Expression: MIT OR Apache-2.0" "License-File: LICENSE-MIT" \
            "License-File: LICENSE-APACHE" "Author: " "Project-URL: Repository, $repo"; do
  grep -qF "$want" <<<"$pkg_info" || fail "the sdist's PKG-INFO lacks '$want'"
done
echo "ok: the sdist carries both licences, the build backend and the metadata"

# 4. The build backend without cargo: each hook pip may call first fails at once (offline; the
#    same through a real `pip install .` is in make test-wheel).
min_rust="$(field rust-version crates/shmbridge-py/Cargo.toml)"
source "$ROOT/scripts/no-cargo-env.sh"
mkdir -p "$work/home"
no_cargo_bin "$work/bin"
for hook in get_requires_for_build_wheel get_requires_for_build_sdist get_requires_for_build_editable \
            "prepare_metadata_for_build_wheel('$work/meta')" "build_wheel('$work/wheel')" \
            "build_sdist('$work/sdist-nocargo')"; do
  case $hook in *\(*) call=$hook ;; *) call="$hook()" ;; esac
  if env -u CARGO_HOME -u RUSTUP_HOME HOME="$work/home" PATH="$work/bin" "$builder/bin/python" \
       -c "import sys; sys.path.insert(0, 'build_backend'); import shmbridge_build as b; print(b.$call)" \
       >"$work/nocargo.log" 2>&1; then
    fail "without cargo, the build backend's $hook succeeded: $(cat "$work/nocargo.log")"
  fi
  for want in "cargo, Rust's build tool, was not found on PATH" "needs Rust $min_rust or newer" "rustup"; do
    grep -qF "$want" "$work/nocargo.log" || fail "without cargo, $hook's error lacks '$want':"$'\n'"$(cat "$work/nocargo.log")"
  done
done
with_cargo="$("$builder/bin/python" -c "import sys; sys.path.insert(0, 'build_backend'); import shmbridge_build as b; print(b.get_requires_for_build_wheel())")"
[ "$with_cargo" = "[]" ] || fail "with cargo, the build backend asks for $with_cargo"
echo "ok: without cargo every build hook fails at once naming cargo and Rust $min_rust (no Rust download); with it, no extra requirement"

# 5. pip install . into a new venv, from another directory.
"$base_py" -m venv "$work/venv-pip"
(cd "$work" && "$work/venv-pip/bin/python" -m pip install --quiet --disable-pip-version-check "$ROOT")
(cd "$work" && "$work/venv-pip/bin/python" - "$work/venv-pip" <<'PY'
import sys
from multiprocessing import shared_memory
import shmbridge

venv = sys.argv[1]
assert shmbridge.__file__.startswith(venv + "/lib/"), f"imported {shmbridge.__file__}, not the venv's"
name = f"shmb_t_pkg_{__import__('os').getpid()}"
# The stdlib makes the segment (and its unlink() also tells its resource tracker); shmbridge reads.
made = shared_memory.SharedMemory(name=name, size=64, create=True)
try:
    made.buf[:5] = b"hello"
    shm = shmbridge.SharedMemory(name=name)
    try:
        assert bytes(shm.buf[:5]) == b"hello", "shmbridge does not see what the stdlib wrote"
    finally:
        shm.close()
finally:
    made.close()
    made.unlink()
PY
) || fail "the package installed by pip install . does not work"
ls "$work"/venv-pip/lib/python3.*/site-packages/shmbridge-"$version".dist-info/licenses/LICENSE-MIT \
   "$work"/venv-pip/lib/python3.*/site-packages/shmbridge-"$version".dist-info/licenses/LICENSE-APACHE \
   >/dev/null || fail "pip install . did not install the licence files"
echo "ok: pip install . into a new venv works (shmbridge reads the stdlib's segment), licences installed"

# 6. cargo install --locked (shares target/ with the other builds, so this is quick after test-c).
(cd "$work" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" cargo install --quiet --locked \
   --path "$ROOT/crates/shmbridge-cli" --root "$work/cargo-root")
[ "$("$work/cargo-root/bin/shmbridge" --version)" = "shmbridge $version" ] \
  || fail "the installed shmbridge --version is not 'shmbridge $version'"
"$work/cargo-root/bin/shmbridge" ls >/dev/null || fail "the installed shmbridge ls failed"
echo "ok: cargo install --locked --path crates/shmbridge-cli installs a shmbridge $version that runs"
rm -rf "$work"
