# C and C++: the C ABI header (cbindgen), the CMake build and its ctest suites (C ABI tests,
# C++ wrapper tests, header checks, an ASan+UBSan build, Boost.Interprocess interop), the
# installed package, and cpp-demo built against it.
#
#   make header          regenerate include/shmbridge.h with the pinned cbindgen
#   make check-header    fail if include/shmbridge.h is not what cbindgen generates
#   make test-c          configure, build and run ctest in build/c
#   make test-cpp-demo   install the package into build/c-install, build cpp-demo against it,
#                        and hand files between it, Boost.Interprocess and Python
#   make demo-cpp        the C++ part of `make demo`

CBINDGEN_SERIES := 0.29
CMAKE ?= cmake
CTEST ?= ctest
C_BUILD := $(ROOT)/build/c
C_INSTALL := $(ROOT)/build/c-install
CPP_DEMO_BUILD := $(ROOT)/build/cpp-demo
C_JOBS ?= 2

.PHONY: setup-cbindgen header check-header build-c test-c install-c build-cpp-demo \
	test-cpp-demo demo-cpp

SETUP_TARGETS += setup-cbindgen
setup-cbindgen:
	@if ! cbindgen --version 2>/dev/null | grep -q '^cbindgen $(subst .,\.,$(CBINDGEN_SERIES))\.'; then \
	  echo "setup: installing cbindgen $(CBINDGEN_SERIES).x"; \
	  $(CARGO) install cbindgen --version '~$(CBINDGEN_SERIES)' --locked; \
	fi

# scripts/header.sh runs cbindgen with the SHMB_VERSION_* defines taken from Cargo's metadata.
header: setup-cbindgen
	bash $(ROOT)/scripts/header.sh $(ROOT)/include/shmbridge.h

check-header: setup-cbindgen
	@bash $(ROOT)/scripts/header.sh $(ROOT)/build/shmbridge.h.generated 2>/dev/null
	@if ! diff -u $(ROOT)/include/shmbridge.h $(ROOT)/build/shmbridge.h.generated; then \
	  echo "error: include/shmbridge.h is stale: run 'make header' and commit it" >&2; exit 1; \
	fi
	@echo "include/shmbridge.h matches what cbindgen $(CBINDGEN_SERIES) generates"

# cargo works in the workspace's target/ here (CMake's own default is inside the build
# directory), so the release builds are shared with the other suites.
$(C_BUILD)/CMakeCache.txt:
	$(CMAKE) -S $(ROOT) -B $(C_BUILD) -DCMAKE_BUILD_TYPE=Release -DSHMBRIDGE_BUILD_TESTS=ON \
	  -DCMAKE_INSTALL_PREFIX=$(C_INSTALL) -DSHMBRIDGE_CARGO_TARGET_DIR=$(ROOT)/target

build-c: $(C_BUILD)/CMakeCache.txt
	$(CMAKE) --build $(C_BUILD) -j $(C_JOBS)

test-c: build-c
	cd $(C_BUILD) && $(CTEST) --output-on-failure -j $(C_JOBS)

install-c: build-c
	$(CMAKE) --install $(C_BUILD) --prefix $(C_INSTALL)

build-cpp-demo: install-c
	$(CMAKE) -S $(ROOT)/cpp-demo -B $(CPP_DEMO_BUILD) -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH=$(C_INSTALL)
	$(CMAKE) --build $(CPP_DEMO_BUILD) -j $(C_JOBS)

test-cpp-demo: build-cpp-demo
	bash $(ROOT)/scripts/cpp-test-installed.sh $(C_INSTALL) $(CPP_DEMO_BUILD) $(C_BUILD)/boost

TEST_TARGETS += check-header test-c test-cpp-demo

demo-cpp: build-cpp-demo
	@bash $(ROOT)/scripts/cpp-demo.sh $(CPP_DEMO_BUILD)

DEMO_TARGETS += demo-cpp
