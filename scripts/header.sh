#!/usr/bin/env bash
# Generate the C header with cbindgen: `scripts/header.sh OUT` (make header writes
# include/shmbridge.h, make check-header a copy under build/ to compare).
#
# The SHMB_VERSION_* defines are taken from Cargo's metadata (the version of shmbridge-ffi),
# never synced by hand: this script adds them to cbindgen's `after_includes` in a copy of
# crates/shmbridge-ffi/cbindgen.toml.
set -euo pipefail
out=${1:?usage: header.sh OUT}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
version=$(cargo metadata --no-deps --format-version 1 --offline 2>/dev/null |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "shmbridge-ffi"))')
IFS=. read -r major minor patch <<<"${version%%[-+]*}"
mkdir -p build
config=build/cbindgen.toml
python3 - "$major" "$minor" "$patch" crates/shmbridge-ffi/cbindgen.toml "$config" <<'PY'
import sys
major, minor, patch, src, dst = sys.argv[1:]
text = open(src).read()
anchor = '#define SHMB_STRINGIFY2_(x) #x"""'
assert anchor in text, "cbindgen.toml: after_includes must end with the SHMB_STRINGIFY2_ define"
defines = "".join(
    f"\n\n/**\n * {what} version of the library this header belongs to.\n */\n#define SHMB_VERSION_{name} {value}"
    for what, name, value in (("Major", "MAJOR", major), ("Minor", "MINOR", minor), ("Patch", "PATCH", patch))
)
open(dst, "w").write(text.replace(anchor, anchor[:-3] + defines + '"""'))
PY
cbindgen --config "$config" --crate shmbridge-ffi crates/shmbridge-ffi --output "$out"
