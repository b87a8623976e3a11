# Fuzzing: the core's parsers of untrusted bytes under libFuzzer and AddressSanitizer
# (cargo-fuzz, nightly toolchain). The targets live in crates/shmbridge/fuzz (its own
# workspace, not a member of the main one); `make fuzz` runs every one of them.
#
#   make fuzz                          each target for FUZZ_RUNS executions (10 million)
#   make fuzz FUZZ_RUNS=100000         a quick pass
#   make fuzz FUZZ_TARGETS=array_header  only the named targets
#
# Adding a target: crates/shmbridge/fuzz/fuzz_targets/<name>.rs plus a [[bin]] entry in
# crates/shmbridge/fuzz/Cargo.toml; seed inputs, if any, in crates/shmbridge/fuzz/seeds/<name>/.
# The growing corpus stays in crates/shmbridge/fuzz/corpus/<name>/ (not committed); a crash is
# saved in crates/shmbridge/fuzz/artifacts/<name>/ and fails the target.
#
# Built with debug assertions and overflow checks (-a), so an arithmetic overflow in a parser
# is a finding too. Not part of `make test` (it needs nightly and takes minutes).

FUZZ_DIR := $(ROOT)/crates/shmbridge/fuzz
FUZZ_RUNS ?= 10000000
FUZZ_TARGETS ?=
FUZZ_TOOLCHAIN ?= nightly

.PHONY: setup-fuzz fuzz fuzz-list

setup-fuzz:
	@if ! cargo +$(FUZZ_TOOLCHAIN) --version >/dev/null 2>&1; then \
	  echo "fuzz: the $(FUZZ_TOOLCHAIN) toolchain is missing (rustup toolchain install $(FUZZ_TOOLCHAIN))" >&2; \
	  exit 1; \
	fi
	@if ! cargo fuzz --version >/dev/null 2>&1; then \
	  echo "fuzz: installing cargo-fuzz"; \
	  cargo install cargo-fuzz --locked; \
	fi

fuzz-list: setup-fuzz
	@cd $(FUZZ_DIR) && cargo +$(FUZZ_TOOLCHAIN) fuzz list

fuzz: setup-fuzz
	@cd $(FUZZ_DIR); \
	targets="$(FUZZ_TARGETS)"; \
	[ -n "$$targets" ] || targets="$$(cargo +$(FUZZ_TOOLCHAIN) fuzz list)"; \
	mkdir -p logs; \
	for t in $$targets; do \
	  mkdir -p corpus/$$t; \
	  seeds=""; [ -d seeds/$$t ] && seeds="seeds/$$t"; \
	  echo "fuzz: $$t: $(FUZZ_RUNS) runs (log: $(FUZZ_DIR)/logs/$$t.log)"; \
	  if ! cargo +$(FUZZ_TOOLCHAIN) fuzz run --debug-assertions $$t corpus/$$t $$seeds -- \
	      -runs=$(FUZZ_RUNS) -print_final_stats=1 >logs/$$t.log 2>&1; then \
	    tail -n 60 logs/$$t.log >&2; \
	    echo "fuzz: $$t FAILED" >&2; \
	    exit 1; \
	  fi; \
	  rm -f /dev/shm/shmb_fuzz_*; \
	  grep -E '^Done|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' logs/$$t.log; \
	  echo "fuzz: $$t: ok"; \
	done
