# The cross-language interop suite (tests/interop): every writer against every reader.
# `make interop` runs it alone; `make test` includes it. The matrix goes to tests/interop/MATRIX.md.

INTEROP_BUILD := $(ROOT)/build/interop
INTEROP_VENV := $(ROOT)/.venv/interop
INTEROP_PY := $(INTEROP_VENV)/bin/python

.PHONY: interop interop-actors interop-venv
interop-venv: $(INTEROP_PY)
$(INTEROP_PY):
	$(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_PY) -m pip install -q --upgrade pip
	$(INTEROP_PY) -m pip install -q pytest

$(INTEROP_BUILD)/actor-boost: $(ROOT)/tests/interop/actors/actor_boost.cpp
	@mkdir -p $(INTEROP_BUILD)
	g++ -std=c++17 -O2 -Wall -Wextra -Werror $< -o $@ -lz -lrt -pthread

interop-actors: $(INTEROP_BUILD)/actor-boost
	$(CARGO) build --release -q -p shmbridge-interop-actor

interop: interop-venv interop-actors
	cd $(ROOT)/tests/interop && $(INTEROP_PY) -m pytest -q -p no:cacheprovider -W error .

TEST_TARGETS += interop
