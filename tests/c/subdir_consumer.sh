#!/usr/bin/env bash
# Configure, build and run the add_subdirectory() consumer. Usage: <src> <build> <profile> <target-dir>
set -euo pipefail
src=$1 build=$2 profile=$3 target=$4
cmake -S "$src/tests/c/subdir_consumer" -B "$build" -DSHMBRIDGE_SOURCE_DIR="$src" \
  -DSHMBRIDGE_CARGO_PROFILE="$profile" -DSHMBRIDGE_CARGO_TARGET_DIR="$target" \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j 2 >/dev/null
"$build/consumer_c"
"$build/consumer_cxx"
