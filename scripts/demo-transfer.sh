#!/usr/bin/env bash
# The main demo: hand a file between processes through shared memory.
#
#   Rust send -> Rust recv      one-shot, then streamed through a small ring
#   Rust send -> Python recv    if the Python package offers `python -m shmbridge recv`
#   Rust send -> C++ recv       if a C++ receiver program has been built
#   Python/C++ send -> Rust recv, the reverse, likewise
#
# Each hand-over is verified by CRC-32 (and cmp), with the throughput shown. Hooks for the
# other languages (the demo skips them, saying so, when they are not there):
#   SHMB_PYTHON      interpreter with the shmbridge package (default: python3); it must accept
#                    `-m shmbridge send FILE --name N` and `-m shmbridge recv NAME OUT`
#   SHMB_CPP_SEND    a C++ program `SEND FILE NAME`  (default: the first of cpp-demo/build/send_file,
#                    build/cpp-demo/send_file that exists)
#   SHMB_CPP_RECV    a C++ program `RECV NAME OUT`   (default: .../recv_file likewise)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SHMB_DEMO_MIB:-256}
work=$(mktemp -d "${TMPDIR:-/tmp}/shmb_demo_XXXXXX")
tag="shmb_demo_$$"
cleanup() {
  rm -rf "$work"
  for f in /dev/shm/"$tag"_*; do [ -e "$f" ] && rm -f "$f"; done
  return 0
}
trap cleanup EXIT

echo "== building the shmbridge command (release)"
cargo build -q --release -p shmbridge-cli --bin shmbridge
bin=target/release/shmbridge

echo "== making a sample file: ${SIZE_MIB} MiB of random bytes in $work (/tmp is a disk filesystem; segments live in /dev/shm, tmpfs)"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$work/sample.bin"
want=$(python3 -c 'import sys,zlib
c=0
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<24), b""): c=zlib.crc32(b,c)
print(f"{c:08x}")' "$work/sample.bin")
echo "   crc32 $want"

now() { date +%s.%N; }
rate() { python3 -c "import sys; b=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'{s:.3f} s, {b/s/2**20:.0f} MiB/s')" "$(stat -c %s "$work/sample.bin")" "$1" "$2"; }
verify() { # OUT LABEL T0 T1
  local got
  got=$(python3 -c 'import sys,zlib
c=0
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<24), b""): c=zlib.crc32(b,c)
print(f"{c:08x}")' "$1")
  if [ "$got" = "$want" ] && cmp -s "$work/sample.bin" "$1"; then
    echo "   ok: $2 — crc32 $got matches, $(rate "$3" "$4")"
  else
    echo "   FAILED: $2 — crc32 $got, expected $want" >&2
    exit 1
  fi
  rm -f "$1"
}

echo "== Rust -> Rust, one-shot (send fills and publishes a segment, then exits; recv takes it)"
t0=$(now)
$bin send "$work/sample.bin" --name "${tag}_one"
$bin recv "${tag}_one" "$work/out_rust_one.bin"
t1=$(now)
verify "$work/out_rust_one.bin" "Rust one-shot" "$t0" "$t1"

echo "== Rust -> Rust, streaming through a 4 MiB segment (sender and receiver run together)"
t0=$(now)
$bin -q send "$work/sample.bin" --name "${tag}_st" --stream --segment-size 4M --timeout 60s &
sender=$!
$bin recv "${tag}_st" "$work/out_rust_st.bin" --timeout 60s
wait "$sender"
t1=$(now)
verify "$work/out_rust_st.bin" "Rust streaming" "$t0" "$t1"

py=${SHMB_PYTHON:-python3}
if "$py" -m shmbridge recv --help >/dev/null 2>&1; then
  echo "== Rust -> Python ($py -m shmbridge recv)"
  t0=$(now)
  $bin -q send "$work/sample.bin" --name "${tag}_py"
  "$py" -m shmbridge recv "${tag}_py" "$work/out_py.bin"
  t1=$(now)
  verify "$work/out_py.bin" "Python receiver" "$t0" "$t1"
  echo "== Python -> Rust ($py -m shmbridge send)"
  t0=$(now)
  "$py" -m shmbridge send "$work/sample.bin" --name "${tag}_pyr"
  $bin -q recv "${tag}_pyr" "$work/out_pyr.bin"
  t1=$(now)
  verify "$work/out_pyr.bin" "Python sender" "$t0" "$t1"
else
  echo "== Python: skipped ($py -m shmbridge recv is not available yet)"
fi

first_of() { for c in "$@"; do [ -n "$c" ] && [ -x "$c" ] && { echo "$c"; return; }; done; echo ""; }
cpp_recv=$(first_of "${SHMB_CPP_RECV:-}" cpp-demo/build/recv_file build/cpp-demo/recv_file)
cpp_send=$(first_of "${SHMB_CPP_SEND:-}" cpp-demo/build/send_file build/cpp-demo/send_file)
if [ -n "$cpp_recv" ]; then
  echo "== Rust -> C++ ($cpp_recv)"
  t0=$(now)
  $bin -q send "$work/sample.bin" --name "${tag}_cpp"
  "$cpp_recv" "${tag}_cpp" "$work/out_cpp.bin"
  t1=$(now)
  verify "$work/out_cpp.bin" "C++ receiver" "$t0" "$t1"
else
  echo "== C++ receiver: skipped (no SHMB_CPP_RECV or cpp-demo/build/recv_file yet)"
fi
if [ -n "$cpp_send" ]; then
  echo "== C++ -> Rust ($cpp_send)"
  t0=$(now)
  "$cpp_send" "$work/sample.bin" "${tag}_cppr"
  $bin -q recv "${tag}_cppr" "$work/out_cppr.bin"
  t1=$(now)
  verify "$work/out_cppr.bin" "C++ sender" "$t0" "$t1"
else
  echo "== C++ sender: skipped (no SHMB_CPP_SEND or cpp-demo/build/send_file yet)"
fi
echo "== every hand-over verified; /dev/shm left clean"
