#!/usr/bin/env bash
# The C++ part of `make demo`: the cpp-demo programs, built against the installed package.
# Usage: cpp-demo.sh <cpp-demo-build-dir>
set -euo pipefail
demo=$1
work=$(mktemp -d /tmp/shmb_demo_cpp.XXXXXX)
name="shmb_demo_fields_$$"
cleanup() { rm -rf "$work"; rm -f "/dev/shm/$name" "/dev/shm/shmb_demo_xfer_$$"; }
trap cleanup EXIT

echo "== C++ demo 1: the seed's Boost sender/recver, ported to shmbridge.hpp"
head -c $((2 * 1024 * 1024 + 5)) /dev/urandom >"$work/data.ipc"
exec 9>/tmp/shmbridge-shm_test.lock
flock -w 600 9
mkfifo "$work/stdin"
(cd "$work" && exec "$demo/sender" <"$work/stdin") &
sender=$!
exec 8>"$work/stdin"
for _ in $(seq 1 500); do
  [ "$(cat /proc/$sender/wchan 2>/dev/null)" = pipe_read ] && break
  sleep 0.01
done
echo "sender: data.ipc ($(stat -c %s "$work/data.ipc") bytes) is in the segment shm_test; waiting on Enter"
(cd "$work" && "$demo/recver")
cmp "$work/data.ipc" "$work/data_out.bin"
echo "recver: wrote data_out.bin, identical to data.ipc"
echo >&8
exec 8>&-
wait "$sender"
exec 9>&-
echo "sender: got Enter; its RAII remover removed shm_test: $([ -e /dev/shm/shm_test ] && echo NO || echo yes)"

echo "== C++ demo 2: the seed's program1/program2 (typed fields at offsets)"
"$demo/program1" "$name" 2 500 &
p1=$!
for _ in $(seq 1 200); do [ -e "/dev/shm/$name" ] && break; sleep 0.01; done
sleep 0.1
"$demo/program2" "$name"
wait "$p1"

echo "== C++ demo 3: the seed's size-prefixed mmap file, read through file_mapping"
python3 -c 'import struct,sys; d=b"mapped, not read " * 1000; open(sys.argv[1],"wb").write(struct.pack("Q",len(d))+d)' "$work/shm_file"
"$demo/file_reader" "$work/shm_file" "$work/result.bin"

echo "== C demo: shmbridge.h only"
"$demo/hello_c" "shmb_demo_hello_$$"

echo "== C++ demo 4: send a file through shared memory, receive it verified (send_file / recv_file)"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
"$demo/send_file" "$work/big.bin" "shmb_demo_xfer_$$"
"$demo/recv_file" "shmb_demo_xfer_$$" "$work/big.out"
cmp "$work/big.bin" "$work/big.out" && echo "identical"
