#!/usr/bin/env bash
# Fail if a test left a segment behind: every test segment name starts with shmb_t or test.
set -euo pipefail
left=$(ls /dev/shm 2>/dev/null | grep -E '^(shmb_t|shmb_i|test_shmb)' || true)
if [ -n "$left" ]; then
  echo "error: tests left segments in /dev/shm:" >&2
  echo "$left" | head -20 >&2
  exit 1
fi
echo "/dev/shm is clean: no test segment left behind"
