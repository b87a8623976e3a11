# The Python package: shmbridge (python/shmbridge) over the extension shmbridge._native
# (crates/shmbridge-py), built by maturin as one abi3 wheel and tested on CPython 3.9, 3.11
# and 3.13 (each found under pyenv or as python3.X on PATH; missing ones are skipped, and
# said so). Each version gets its own venv in .venv/py3.X.

.PHONY: setup-python build-python test-python demo-python
SETUP_TARGETS += setup-python
TEST_TARGETS += test-python

setup-python:
	@bash $(ROOT)/scripts/py-setup.sh

build-python: setup-python
	@bash $(ROOT)/scripts/py-build.sh

test-python: setup-python
	@bash $(ROOT)/scripts/py-test.sh
