# shmbridge — the two commands a new user needs are `make demo` and `make test`.
# Both install what is missing first (idempotent), then build and run.
#
# Each part of the project keeps its targets in mk/<part>.mk and adds them to the lists
# below, so the parts stay independent:
#   SETUP_TARGETS  what `make setup` runs (installs; must be idempotent)
#   TEST_TARGETS   what `make test` runs, in order
#   DEMO_TARGETS   what `make demo` runs, in order

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CARGO ?= cargo
PYTHON ?= python3

# The CPython versions the Python tests run on, in order: scripts/py-env.sh says, once.
PY_VERSIONS := $(shell bash -c '. "$(ROOT)/scripts/py-env.sh" && echo $$PY_VERSIONS')
# The Python that has the shmbridge wheel installed: the venv (mk/30-python.mk) of the first of
# those versions that has one. Recursive (=) on purpose: the venvs appear during `make setup`.
VENV_PY = $(firstword $(wildcard $(foreach v,$(PY_VERSIONS),$(ROOT)/.venv/py$(v)/bin/python)))

SETUP_TARGETS :=
TEST_TARGETS :=
DEMO_TARGETS :=

include $(sort $(wildcard $(ROOT)/mk/*.mk))

.PHONY: help setup test demo
help:
	@echo "make demo    install what is missing, build, and hand a file between processes"
	@echo "make test    install what is missing, build, and run every test suite"
	@echo "make setup   only install what is missing"
	@echo "make wheel   build the manylinux2014 wheel and the sdist to publish (build/dist); make test-wheel tests them"

setup: $(SETUP_TARGETS)

test: setup
	@$(MAKE) --no-print-directory $(TEST_TARGETS)
	@bash $(ROOT)/scripts/check-shm-clean.sh

demo: setup
	@$(MAKE) --no-print-directory $(DEMO_TARGETS)
