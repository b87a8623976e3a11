#!/usr/bin/env bash
# cpp-demo/sender.cpp and recver.cpp must be the seed's Boost programs (tests/boost/) with only
# the Boost #include lines replaced by `#include <shmbridge.hpp>` and the using-directive
# replaced by `using namespace shmbridge;`.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
for prog in sender recver; do
  expected=$(awk '
    /^#include <boost\/interprocess\// { if (!done) { print "#include <shmbridge.hpp>"; done = 1 }; next }
    /^using namespace boost::interprocess;$/ { print "using namespace shmbridge;"; next }
    { print }' "$root/tests/boost/$prog.cpp")
  if ! diff -u <(printf '%s\n' "$expected") "$root/cpp-demo/$prog.cpp"; then
    echo "error: cpp-demo/$prog.cpp differs from the seed's $prog.cpp beyond the includes" >&2
    exit 1
  fi
  echo "cpp-demo/$prog.cpp = seed $prog.cpp with only the includes and namespace replaced"
done
