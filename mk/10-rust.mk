# The Rust workspace: core, C ABI, Python extension, CLI.

.PHONY: build-rust test-rust lint-rust
build-rust:
	$(CARGO) build --workspace --all-targets

test-rust: lint-rust
	$(CARGO) test --workspace

lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

TEST_TARGETS += test-rust
