# The Rust workspace: core, C ABI, Python extension, CLI.

.PHONY: build-rust test-rust lint-rust check-stub
build-rust:
	$(CARGO) build --workspace --all-targets

test-rust: lint-rust
	$(CARGO) test --workspace

lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The stub platform backend (crates/shmbridge/src/sys/unsupported.rs) still compiles: the list
# of what a macOS or Windows port must provide stays complete. Its own target directory, so the
# cfg change does not rebuild the normal one.
check-stub:
	CARGO_TARGET_DIR=$(ROOT)/target/stub-backend RUSTFLAGS="--cfg shmbridge_stub_backend -D warnings" \
	  $(CARGO) check -p shmbridge

TEST_TARGETS += test-rust check-stub
