#!/usr/bin/env bash
# Shared by the py-*.sh scripts: which CPython versions the Python tests run on, and where.
# Sourced, not run. Sets PY_VERSIONS and defines py_find VERSION (prints the interpreter
# path, or nothing) and py_venv VERSION (prints the venv directory).
ROOT="${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PY_VERSIONS="${PY_VERSIONS:-3.9 3.11 3.13}"
PY_VENV_ROOT="${PY_VENV_ROOT:-$ROOT/.venv}"
# Bump when the list of packages below changes, so existing venvs get them.
PY_DEPS_STAMP=".shmbridge-deps-1"
PY_DEPS=(maturin pytest numpy mypy)

py_find() {
  local v="$1" root cand
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
  else
    root="${PYENV_ROOT:-$HOME/.pyenv}"
  fi
  # The newest pyenv build of that version, then python3.X on PATH.
  for cand in $(ls -d "$root"/versions/"$v".* 2>/dev/null | sort -V -r); do
    if [ -x "$cand/bin/python$v" ]; then
      echo "$cand/bin/python$v"
      return
    fi
  done
  cand="$(command -v "python$v" 2>/dev/null || true)"
  if [ -n "$cand" ] && "$cand" -c 'import sys' >/dev/null 2>&1; then
    echo "$cand"
  fi
}

py_venv() {
  echo "$PY_VENV_ROOT/py$1"
}

# py_peers: build the non-Python programs the Python tests run beside Python (the `shmbridge`
# command and the Rust interop actor) and export where they are. Release builds, like every
# peer of the interop suite (mk/50-interop.mk builds the same ones): one profile on purpose.
py_peers() {
  # Two builds: a --bin filter applies to every package named, so one command with
  # `--bin shmbridge` built no actor at all, and a stale actor-rust was used.
  cargo build --release --quiet -p shmbridge-cli --bin shmbridge
  cargo build --release --quiet -p shmbridge-interop-actor --bin actor-rust
  local target="${CARGO_TARGET_DIR:-$ROOT/target}/release"
  export SHMBRIDGE_CLI="$target/shmbridge" SHMBRIDGE_RUST_ACTOR="$target/actor-rust"
  # One BLAS thread: the tests fork, and forking a multi-threaded process warns on 3.12+.
  export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
}
