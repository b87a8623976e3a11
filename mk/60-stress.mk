# `make stress`: the transfer, stream, wait and kill suites of every front, STRESS_RUNS times
# (default 20) under a CPU hog on every core; prints how many runs failed. Not part of
# `make test` (it takes a while): run it before calling a change to waiting or liveness done.

STRESS_RUNS ?= 20

.PHONY: stress
stress: setup build-c build-python
	@RUNS=$(STRESS_RUNS) VENV_PY="$(VENV_PY)" bash $(ROOT)/scripts/stress.sh
