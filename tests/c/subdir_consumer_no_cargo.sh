#!/usr/bin/env bash
# The add_subdirectory() consumer on a machine without Rust: configuring must fail at once with
# a message that names cargo, the minimum Rust version (Cargo.toml's rust-version) and rustup,
# not with a bare CMake error. Every tool stays reachable except cargo: PATH is a directory of
# links to whatever the real PATH has, less Rust (scripts/no-cargo-env.sh), HOME is empty and
# CARGO_HOME unset.
# Usage: subdir_consumer_no_cargo.sh <shmbridge-source> <scratch-dir>
set -euo pipefail
src=$1 work=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
min=$(sed -n 's/^rust-version = "\([0-9.]*\)"/\1/p' "$src/Cargo.toml" | head -1)
[ -n "$min" ] || fail "no rust-version in $src/Cargo.toml"

source "$src/scripts/no-cargo-env.sh"
rm -rf "$work"
mkdir -p "$work/home"
no_cargo_bin "$work/bin"
cmake=$(command -v cmake)
if env -u CARGO_HOME -u RUSTUP_HOME HOME="$work/home" PATH="$work/bin" \
     "$cmake" -S "$src/tests/c/subdir_consumer" -B "$work/build" -DSHMBRIDGE_SOURCE_DIR="$src" \
     >"$work/out.txt" 2>&1; then
  fail "configuring without cargo succeeded"
fi
for want in "cargo (Rust's build tool) was not found" "needs Rust $min or newer" "rustup"; do
  tr -s ' \n' ' ' <"$work/out.txt" | grep -qF "$want" \
    || fail "the configure error lacks '$want':"$'\n'"$(cat "$work/out.txt")"
done
grep -q "CMake Error" "$work/out.txt" || fail "no CMake error: $(cat "$work/out.txt")"
echo "ok: without cargo, configuring fails naming cargo, Rust $min and rustup"
rm -rf "$work"
