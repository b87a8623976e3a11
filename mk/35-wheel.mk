# Packaging: the wheel and sdist to publish, and the checks that every way in (pip, cargo,
# CMake, pkg-config) works as the README's install section says.
#
#   make wheel          build/dist: an abi3 manylinux2014 (glibc 2.17) wheel, built with zig,
#                       stripped and checked (auditwheel, glibc symbols, licences, metadata), and
#                       the sdist. Its tools (maturin, ziglang, auditwheel, pinned) go to .venv/wheel.
#   make test-wheel     make wheel, then install the wheel into a new venv per CPython (3.9, 3.11,
#                       3.13) and the sdist into another, and run the Python tests against each
#   make test-packaging (part of make test) licences and metadata in `cargo package` and the
#                       sdist; `pip install .` into a new venv, and without cargo a clear error
#                       instead of a Rust download; `cargo install --locked` of the command.
#                       (CMake find_package, add_subdirectory and pkg-config are tested by
#                       test-c and test-cpp-demo in mk/20-c.mk.)

.PHONY: wheel test-wheel test-packaging

wheel:
	@bash $(ROOT)/scripts/wheel-build.sh

test-wheel: wheel
	@bash $(ROOT)/scripts/wheel-test.sh

# After test-c: `cargo install` then finds the release build of the command CMake made.
test-packaging: setup-python
	@bash $(ROOT)/scripts/pkg-check.sh

TEST_TARGETS += test-packaging
