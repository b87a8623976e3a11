#!/usr/bin/env bash
# Hand files through the named segment "shm_test" between the seed's programs:
#   Boost.Interprocess sender.cpp / recver.cpp (compiled unmodified against the system's Boost),
#   the same programs ported to shmbridge.hpp, and Python's stdlib SharedMemory (the seed's
#   writer.py / reader.py for Linux), in every sender x receiver pairing that makes sense.
#
# Usage: cpp-interop.sh <boost_sender> <boost_recver> <shmb_sender> <shmb_recver>
#
# The seed's programs hard-code the name "shm_test", the files data.ipc / data_out.bin /
# data.zip / result.zip in the working directory, and the sender waits on getchar(). So each
# run gets its own temporary directory, the sender's stdin is a pipe we hold open until the
# receiver is done, and every user of "shm_test" on this machine is serialised on
# /tmp/shmbridge-shm_test.lock (flock).
set -euo pipefail
boost_sender=$1 boost_recver=$2 shmb_sender=$3 shmb_recver=$4
root=$(cd "$(dirname "$0")/.." && pwd)
seed=$root/tests/boost
python=${PYTHON:-python3}
shm=/dev/shm/shm_test

exec 9>/tmp/shmbridge-shm_test.lock
flock -w 600 9 || { echo "error: could not lock /tmp/shmbridge-shm_test.lock" >&2; exit 1; }

work=$(mktemp -d /tmp/shmb_t_interop.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -f "$shm"
  rm -rf "$work"
}
trap cleanup EXIT
rm -f "$shm"  # a leftover from a killed run; we hold the lock, so it is nobody's now

fail() { echo "FAIL: $*" >&2; exit 1; }

# Wait until process $1 sleeps reading its stdin pipe: the seed's sender has filled the
# segment and sits in getchar().
wait_in_getchar() {
  local pid=$1 i
  for i in $(seq 1 1000); do
    kill -0 "$pid" 2>/dev/null || fail "the sender (pid $pid) exited early"
    if [ "$(cat /proc/"$pid"/wchan 2>/dev/null)" = pipe_read ]; then return 0; fi
    # Fallback where wchan is hidden: blocked in read(0, ...), per /proc/PID/syscall.
    if read -r nr fd _ < /proc/"$pid"/syscall 2>/dev/null && [ "$nr" = 0 ] && [ "$fd" = 0x0 ]; then
      return 0
    fi
    sleep 0.01
  done
  fail "the sender (pid $pid) never reached getchar()"
}

# Start a seed-style sender (reads data.ipc in $dir, waits on stdin); sets sender_pid.
start_sender() {
  local bin=$1 dir=$2
  mkfifo "$dir/stdin"
  (cd "$dir" && exec "$bin" <"$dir/stdin" >"$dir/sender.log" 2>&1) &
  sender_pid=$!
  pids+=("$sender_pid")
  exec 8>"$dir/stdin"
  wait_in_getchar "$sender_pid"
}

# Let the sender return from getchar(); its RAII remover must then remove the segment.
finish_sender() {
  echo >&8
  exec 8>&-
  wait "$sender_pid" || fail "the sender exited with status $?: $(cat "$1/sender.log")"
  [ ! -e "$shm" ] || fail "the sender's remover did not remove $shm"
}

pair() {  # pair <label> <sender> <receiver> <size>
  local label=$1 sender=$2 recver=$3 size=$4
  local dir=$work/$label
  mkdir -p "$dir"
  head -c "$size" /dev/urandom >"$dir/data.ipc"
  start_sender "$sender" "$dir"
  [ "$(stat -c %s "$shm")" = "$size" ] || fail "$label: $shm is not $size bytes"
  (cd "$dir" && "$recver") || fail "$label: the receiver failed"
  cmp "$dir/data.ipc" "$dir/data_out.bin" || fail "$label: the file changed on the way"
  finish_sender "$dir"
  echo "ok: $label ($size bytes)"
}

big=$((1024 * 1024 + 13))
pair "boost-sender_to_shmbridge-recver" "$boost_sender" "$shmb_recver" "$big"
pair "shmbridge-sender_to_boost-recver" "$shmb_sender" "$boost_recver" "$big"
pair "shmbridge-sender_to_shmbridge-recver" "$shmb_sender" "$shmb_recver" 4097
pair "boost-sender_to_boost-recver" "$boost_sender" "$boost_recver" 4097
pair "boost-sender_to_shmbridge-recver_1byte" "$boost_sender" "$shmb_recver" 1

# Python's stdlib SharedMemory (the seed's writer.py) -> the shmbridge receiver.
dir=$work/python-writer_to_shmbridge-recver
mkdir -p "$dir"
head -c "$big" /dev/urandom >"$dir/data.zip"
# Background jobs of a script ignore SIGINT; restore Python's handler so the seed's
# KeyboardInterrupt -> finally: close(); unlink() path runs when we press "Ctrl-C".
(cd "$dir" && exec "$python" -u -c 'import runpy, signal
signal.signal(signal.SIGINT, signal.default_int_handler)
runpy.run_path("'"$seed"'/seed_writer.py", run_name="__main__")' >"$dir/writer.log" 2>&1) &
writer_pid=$!
pids+=("$writer_pid")
for i in $(seq 1 1000); do
  grep -q "data available" "$dir/writer.log" 2>/dev/null && break
  kill -0 "$writer_pid" 2>/dev/null || fail "the Python writer exited: $(cat "$dir/writer.log")"
  sleep 0.01
done
grep -q "data available" "$dir/writer.log" || fail "the Python writer never published"
(cd "$dir" && "$shmb_recver") || fail "python->shmbridge: the receiver failed"
cmp "$dir/data.zip" "$dir/data_out.bin" || fail "python->shmbridge: the file changed on the way"
kill -INT "$writer_pid"
wait "$writer_pid" || true
[ ! -e "$shm" ] || fail "the Python writer did not unlink $shm"
echo "ok: python-writer_to_shmbridge-recver ($big bytes)"

# The shmbridge sender -> Python's stdlib SharedMemory (the seed's reader.py for Linux).
dir=$work/shmbridge-sender_to_python-reader
mkdir -p "$dir"
head -c "$big" /dev/urandom >"$dir/data.ipc"
start_sender "$shmb_sender" "$dir"
(cd "$dir" && "$python" "$seed/seed_reader.py") || fail "shmbridge->python: the reader failed"
cmp "$dir/data.ipc" "$dir/result.zip" || fail "shmbridge->python: the file changed on the way"
finish_sender "$dir"
echo "ok: shmbridge-sender_to_python-reader ($big bytes)"

echo "interop: Boost.Interprocess, shmbridge.hpp and Python's SharedMemory agree on shm_test"
