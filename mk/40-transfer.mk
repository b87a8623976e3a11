# File transfer: the `shmbridge` command's hand-over demo (the benchmarks: mk/80-bench.mk).
# (The transfer tests are cargo tests, run by test-rust in mk/10-rust.mk.)

.PHONY: demo-transfer

# The main job of `make demo`: Rust, Python and C++ processes hand a file to each other. It
# builds what it needs: the wheel (into the Python test venvs) and the C++ programs.
demo-transfer: build-python build-cpp-demo
	@SHMB_PYTHON="$(VENV_PY)" SHMB_CPP_SEND="$(CPP_DEMO_BUILD)/send_file" \
	  SHMB_CPP_RECV="$(CPP_DEMO_BUILD)/recv_file" bash $(ROOT)/scripts/demo-transfer.sh

DEMO_TARGETS += demo-transfer
