#!/usr/bin/env bash
# The installed package, used the way a user would: check the installed files, link a C program
# through pkg-config and through plain -lshmbridge, and run the cpp-demo programs (built by
# their own CMake project against the installed package) against real Boost.Interprocess
# programs and Python's stdlib SharedMemory.
#
# Usage: cpp-test-installed.sh <install-prefix> <cpp-demo-build-dir> <dir-with-boost_sender/recver>
set -euo pipefail
prefix=$1 demo=$2 boost=$3
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

for f in include/shmbridge.h include/shmbridge.hpp lib/libshmbridge.a lib/libshmbridge.so \
         lib/cmake/shmbridge/shmbridgeConfig.cmake lib/cmake/shmbridge/shmbridgeConfigVersion.cmake \
         lib/pkgconfig/shmbridge.pc; do
  [ -f "$prefix/$f" ] || fail "not installed: $prefix/$f"
done
echo "ok: installed headers, static and shared library, CMake package, pkg-config file"

work=$(mktemp -d /tmp/shmb_t_installed.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc=${CC:-cc}

# pkg-config (static: the Rust runtime's system libraries come from Libs.private).
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion shmbridge >/dev/null \
  || fail "pkg-config cannot find shmbridge"
# shellcheck disable=SC2046
$cc -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$work/hello_pc" "$root/cpp-demo/hello.c" \
  $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs shmbridge)
LD_LIBRARY_PATH="$prefix/lib" "$work/hello_pc" "shmb_t_pc_$$" >/dev/null
echo "ok: a C program built with pkg-config runs against libshmbridge.so"
# Plain -lshmbridge, statically.
$cc -std=c11 -I"$prefix/include" -o "$work/hello_static" "$root/cpp-demo/hello.c" \
  "$prefix/lib/libshmbridge.a" -lpthread -ldl -lm -lrt -lutil
"$work/hello_static" "shmb_t_static_$$" >/dev/null
echo "ok: a C program linked with libshmbridge.a runs"

# The cpp-demo programs.
"$demo/hello_c" "shmb_t_demo_hello_$$" >/dev/null
name="shmb_t_demo_fields_$$"
"$demo/program1" "$name" 2 300 >"$work/p1.out" &
p1=$!
for _ in $(seq 1 200); do [ -e "/dev/shm/$name" ] && break; sleep 0.01; done
"$demo/program2" "$name" >/dev/null
wait "$p1"
[ "$(tail -1 "$work/p1.out")" = "128,127,255,0,-128,6666,1.414" ] \
  || fail "program1 did not see program2's fields: $(cat "$work/p1.out")"
[ ! -e "/dev/shm/$name" ] || fail "program1 did not remove $name"
echo "ok: program1 / program2 (typed fields at offsets)"
if "$demo/program2" "$name" 2>"$work/p2.err"; then fail "program2 without program1 succeeded"; fi
grep -q "errno 2" "$work/p2.err" || fail "program2's error lacks the errno: $(cat "$work/p2.err")"

python3 - "$work/file.bin" <<'PY'
import struct, sys
data = bytes(range(256)) * 1000
with open(sys.argv[1], "wb") as f:  # the seed's Linux mmap writer layout
    f.write(struct.pack("Q", len(data)) + data)
with open(sys.argv[1] + ".expected", "wb") as f:
    f.write(data)
PY
"$demo/file_reader" "$work/file.bin" "$work/file.out" >/dev/null
cmp "$work/file.bin.expected" "$work/file.out" || fail "file_reader changed the data"
echo "ok: file_reader (size-prefixed file, mapped read-only)"

# File transfer: send_file / recv_file, built against the installed package.
head -c $((3 * 1024 * 1024 + 11)) /dev/urandom >"$work/xfer.bin"
name="shmb_t_demo_xfer_$$"
"$demo/send_file" "$work/xfer.bin" "$name" >/dev/null
"$demo/recv_file" "$name" "$work/xfer.out" 10 >/dev/null
cmp "$work/xfer.bin" "$work/xfer.out" || fail "recv_file's output differs from the file sent"
[ ! -e "/dev/shm/$name" ] || fail "recv_file did not remove $name"
if "$demo/recv_file" "$name" "$work/none.out" 0 2>"$work/recv.err"; then fail "recv_file without a sender succeeded"; fi
grep -q "code 14" "$work/recv.err" || fail "recv_file's timeout is not reported: $(cat "$work/recv.err")"
echo "ok: send_file / recv_file (one-shot, verified; a timeout without a sender)"

bash "$root/scripts/cpp-interop.sh" "$boost/boost_sender" "$boost/boost_recver" \
  "$demo/sender" "$demo/recver"
