#!/usr/bin/env bash
# The installed package, used the way a user would: check the installed files (licences, the
# versioned soname and its links), link a C program through pkg-config (shared, run with no
# LD_LIBRARY_PATH; and static) and through plain libshmbridge.a, and run the cpp-demo programs (built by
# their own CMake project against the installed package) against real Boost.Interprocess
# programs and Python's stdlib SharedMemory.
#
# Usage: cpp-test-installed.sh <install-prefix> <cpp-demo-build-dir> <dir-with-boost_sender/recver>
set -euo pipefail
prefix=$1 demo=$2 boost=$3
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

version=$(sed -n 's/^version = "\([0-9.]*\)"/\1/p' "$root/Cargo.toml" | head -1)
major=${version%%.*} rest=${version#*.} minor=${rest%%.*}
if [ "$major" = 0 ]; then soname="libshmbridge.so.0.$minor"; else soname="libshmbridge.so.$major"; fi
for f in include/shmbridge.h include/shmbridge.hpp lib/libshmbridge.a "lib/libshmbridge.so.$version" \
         lib/cmake/shmbridge/shmbridgeConfig.cmake lib/cmake/shmbridge/shmbridgeConfigVersion.cmake \
         lib/pkgconfig/shmbridge.pc lib/pkgconfig/shmbridge-static.pc \
         share/doc/shmbridge/LICENSE-MIT share/doc/shmbridge/LICENSE-APACHE; do
  [ -f "$prefix/$f" ] || fail "not installed: $prefix/$f"
done
[ "$(readlink "$prefix/lib/$soname")" = "libshmbridge.so.$version" ] \
  || fail "$prefix/lib/$soname is not a link to libshmbridge.so.$version"
[ "$(readlink "$prefix/lib/libshmbridge.so")" = "$soname" ] \
  || fail "$prefix/lib/libshmbridge.so is not a link to $soname"
got=$(readelf -d "$prefix/lib/libshmbridge.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$got" = "$soname" ] || fail "the installed library's soname is '$got', expected $soname"
if readelf -S "$prefix/lib/libshmbridge.a" | grep -q '\.debug_info'; then
  fail "the installed libshmbridge.a carries debug info"
fi
echo "ok: installed headers, licences, libshmbridge.a (no debug info), $soname (links), CMake package, pkg-config files"

work=$(mktemp -d /tmp/shmb_t_installed.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc=${CC:-cc}

# pkg-config, as the README says, from a directory of its own and with no LD_LIBRARY_PATH: the
# program finds libshmbridge.so through the rpath the .pc file gives it.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion shmbridge)" = "$version" ] || fail "pkg-config does not find shmbridge $version"
mkdir "$work/pc" && cp "$root/cpp-demo/hello.c" "$work/pc/app.c"
# shellcheck disable=SC2046
(cd "$work/pc" && $cc -std=c11 -Wall -Wextra -Wpedantic -Werror app.c -o app \
   $(pkg-config --cflags --libs shmbridge))
readelf -d "$work/pc/app" | grep -q "NEEDED.*\[$soname\]" || fail "the pkg-config program does not need $soname"
(cd / && env -u LD_LIBRARY_PATH "$work/pc/app" "shmb_t_pc_$$" >/dev/null) \
  || fail "the program built with pkg-config --libs shmbridge does not run"
echo "ok: cc app.c \$(pkg-config --cflags --libs shmbridge) runs as it is (needs $soname, found by rpath)"
# pkg-config, static: nothing of shmbridge is needed at run time.
# shellcheck disable=SC2046
(cd "$work/pc" && $cc -std=c11 -Wall -Wextra -Wpedantic -Werror app.c -o app_static \
   $(pkg-config --cflags --libs shmbridge-static))
if readelf -d "$work/pc/app_static" | grep -q 'NEEDED.*libshmbridge'; then
  fail "the shmbridge-static program links libshmbridge.so"
fi
"$work/pc/app_static" "shmb_t_pcs_$$" >/dev/null
echo "ok: cc app.c \$(pkg-config --cflags --libs shmbridge-static) is static and runs"
# Plain -lshmbridge, statically.
$cc -std=c11 -I"$prefix/include" -o "$work/hello_static" "$root/cpp-demo/hello.c" \
  "$prefix/lib/libshmbridge.a" -lpthread -ldl -lm -lrt -lutil
"$work/hello_static" "shmb_t_static_$$" >/dev/null
echo "ok: a C program linked with libshmbridge.a runs"

# The cpp-demo programs.
"$demo/hello_c" "shmb_t_demo_hello_$$" >/dev/null
readelf -d "$demo/hello_c_shared" | grep -q "NEEDED.*\[$soname\]" \
  || fail "hello_c_shared (find_package, shmbridge::c_shared) does not need $soname"
env -u LD_LIBRARY_PATH "$demo/hello_c_shared" "shmb_t_demo_hello_so_$$" >/dev/null
echo "ok: find_package: shmbridge::c (static) and shmbridge::c_shared ($soname) programs run"
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

# Typed arrays: frames_pub publishes 1080x1920x3 uint8 array messages (to no reader here: the
# Python viewer, python/examples/frames_view.py, is run by the Python examples) and removes
# its channel.
name="shmb_t_demo_frames_$$"
"$demo/frames_pub" --name "$name" --count 3 --wait-readers 0 >"$work/frames.out" ||
  fail "frames_pub failed: $(cat "$work/frames.out")"
grep -q "published 3 frames" "$work/frames.out" || fail "frames_pub: $(cat "$work/frames.out")"
[ ! -e "/dev/shm/$name" ] || fail "frames_pub did not remove $name"
echo "ok: frames_pub (3 array messages of 1080x1920x3 uint8)"

bash "$root/scripts/cpp-interop.sh" "$boost/boost_sender" "$boost/boost_recver" \
  "$demo/sender" "$demo/recver"
