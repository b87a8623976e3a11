#!/usr/bin/env bash
# Sourced by the tests of "what a machine without Rust sees". Defines
#   no_cargo_bin DIR   fill DIR with links to every program on PATH except cargo, rustc and
#                      rustup (first one found wins, as PATH would), so that PATH=DIR behaves
#                      like this machine without Rust whatever directory Rust lives in.
#   no_cargo_env       prints the env(1) arguments that hide Rust: unset CARGO_HOME and
#                      RUSTUP_HOME (use with HOME and PATH of your own).
no_cargo_bin() {
  local bin=$1 d f name
  local -a dirs
  mkdir -p "$bin"
  IFS=: read -r -a dirs <<<"$PATH"
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do
      name=${f##*/}
      case $name in cargo | cargo-* | rustc | rustup) continue ;; esac
      if [ -x "$f" ] && [ ! -e "$bin/$name" ]; then ln -s "$f" "$bin/$name"; fi
    done
  done
}
