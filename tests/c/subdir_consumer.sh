#!/usr/bin/env bash
# The add_subdirectory() consumer, configured as a user's project would be: no build type, no
# shmbridge options. Checks that the Rust library is built optimised (cargo's release profile)
# into the consumer's build directory (not the source tree's target/), that the shared library
# carries its versioned soname, and runs the C, C shared and C++ consumers.
# Usage: subdir_consumer.sh <shmbridge-source> <build-dir>
set -euo pipefail
src=$1 build=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\([0-9.]*\)"/\1/p' "$src/Cargo.toml" | head -1)
major=${version%%.*} rest=${version#*.} minor=${rest%%.*}
if [ "$major" = 0 ]; then soname="libshmbridge.so.0.$minor"; else soname="libshmbridge.so.$major"; fi

# Configure afresh (a cache left by an older run would keep its old defaults); cargo's output
# in the build directory stays, so a rerun is incremental.
rm -f "$build/CMakeCache.txt"
cmake -S "$src/tests/c/subdir_consumer" -B "$build" -DSHMBRIDGE_SOURCE_DIR="$src" >/dev/null
grep -qx 'SHMBRIDGE_CARGO_PROFILE:STRING=release' "$build/CMakeCache.txt" \
  || fail "with no build type, the Rust profile is not release: $(grep SHMBRIDGE_CARGO_PROFILE "$build/CMakeCache.txt")"
grep -qx "SHMBRIDGE_CARGO_TARGET_DIR:PATH=$build/shmbridge/cargo" "$build/CMakeCache.txt" \
  || fail "cargo's target directory is not inside the build directory: $(grep SHMBRIDGE_CARGO_TARGET_DIR "$build/CMakeCache.txt")"
cmake --build "$build" -j 2 >/dev/null
[ -f "$build/shmbridge/cargo/release/libshmbridge.a" ] || fail "no release build in $build/shmbridge/cargo"
echo "ok: no build type -> cargo release profile, in $build/shmbridge/cargo"

lib="$build/shmbridge/shmbridge-lib"
got=$(readelf -d "$lib/libshmbridge.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$got" = "$soname" ] || fail "soname is '$got', expected $soname"
[ "$(readlink "$lib/$soname")" = "libshmbridge.so.$version" ] || fail "$lib/$soname is not a link to libshmbridge.so.$version"
[ "$(readlink "$lib/libshmbridge.so")" = "$soname" ] || fail "$lib/libshmbridge.so is not a link to $soname"
readelf -d "$build/consumer_c_shared" | grep -q "NEEDED.*\[$soname\]" \
  || fail "consumer_c_shared does not record $soname: $(readelf -d "$build/consumer_c_shared" | grep NEEDED)"
if readelf -d "$build/consumer_c" | grep -q 'NEEDED.*libshmbridge'; then
  fail "consumer_c (shmbridge::c) links libshmbridge.so"
fi
echo "ok: soname $soname, links in place; shmbridge::c_shared records it, shmbridge::c is static"

"$build/consumer_c"
"$build/consumer_c_shared"
"$build/consumer_cxx"
