# The cross-language interop suite (tests/interop): every writer against every reader.
# `make interop` runs it alone; `make test` includes it. The matrix of a run goes to build/interop
# (never into tracked files); `make matrix` runs the suite and publishes that matrix into
# tests/interop/MATRIX.md and the README.
# It runs on VENV_PY (the Makefile), which has pytest and the shmbridge wheel installed.

INTEROP_BUILD := $(ROOT)/build/interop

.PHONY: interop interop-actors interop-actors-c matrix
$(INTEROP_BUILD)/actor-boost: $(ROOT)/tests/interop/actors/actor_boost.cpp
	@mkdir -p $(INTEROP_BUILD)
	g++ -std=c++17 -O2 -Wall -Wextra -Werror $< -o $@ -lz -lrt -pthread

# C and C++ actors: a CMake project over the installed package (mk/20-c.mk's install-c).
interop-actors-c: install-c
	$(CMAKE) -S $(ROOT)/tests/interop/actors -B $(INTEROP_BUILD)/cmake -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_PREFIX_PATH=$(C_INSTALL) -DCMAKE_RUNTIME_OUTPUT_DIRECTORY=$(INTEROP_BUILD) >/dev/null
	$(CMAKE) --build $(INTEROP_BUILD)/cmake -j $(C_JOBS)

interop-actors: $(INTEROP_BUILD)/actor-boost interop-actors-c
	$(CARGO) build --release -q -p shmbridge-interop-actor

interop: build-python interop-actors
	@test -n "$(VENV_PY)" || { echo "interop: no Python venv; run make setup" >&2; exit 1; }
	cd $(ROOT)/tests/interop && $(VENV_PY) -m pytest -q -rfE -p no:cacheprovider -W error .

TEST_TARGETS += interop

matrix: interop
	$(VENV_PY) $(ROOT)/tests/interop/publish_matrix.py
