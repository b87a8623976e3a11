#!/usr/bin/env bash
# The core on its own: Rust publishes a file into a framed segment, and a Python reader that
# uses only the standard library and docs/SPEC.md takes it out again.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
name="shmb_demo_core_$$"
cleanup() { cargo run -q --example framed_demo -- remove "$name" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
head -c $((3 * 1024 * 1024 + 17)) /dev/urandom > "$work/data.bin"
cargo build -q --example framed_demo
echo "== core demo: Rust writes a framed segment, a stdlib-only Python reader reads it"
cargo run -q --example framed_demo -- write "$name" "$work/data.bin"
python3 tests/reference/shmb_reader.py "$name" --layout framed --out "$work/out.bin"
cmp "$work/data.bin" "$work/out.bin"
echo "python: the file came through byte for byte ($(stat -c %s "$work/out.bin") bytes)"
