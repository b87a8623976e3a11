# File transfer: the `shmbridge` command's hand-over demo and the transfer benchmarks.
# (The transfer tests are cargo tests, run by test-rust in mk/10-rust.mk.)

.PHONY: demo-transfer bench bench-quick bench-rtt bench-mmap

# The main job of `make demo`: Rust, Python and C++ processes hand a file to each other. It
# builds what it needs: the wheel (into the Python test venvs) and the C++ programs.
demo-transfer: build-python build-cpp-demo
	@SHMB_PYTHON="$(VENV_PY)" SHMB_CPP_SEND="$(CPP_DEMO_BUILD)/send_file" \
	  SHMB_CPP_RECV="$(CPP_DEMO_BUILD)/recv_file" bash $(ROOT)/scripts/demo-transfer.sh

DEMO_TARGETS += demo-transfer

# The full benchmark: 1 GiB then 4 GiB, every approach side by side, then the round trip.
bench: bench-rtt bench-mmap
	$(PYTHON) $(ROOT)/bench/run.py --sizes 1G,4G

# A quick look (64 MiB) to check the bench works.
bench-quick:
	$(PYTHON) $(ROOT)/bench/run.py --sizes 64M

# Publish/wait round trip between two processes against a pipe ping-pong.
bench-rtt:
	$(CARGO) build --release -q -p shmbridge-cli --example rtt
	$(ROOT)/target/release/examples/rtt 200000

# The seed's "mmap is 15x faster than regular io", measured: the decode, not mmap; and where
# mapping really pays (data used in place).
bench-mmap: build-python
	$(VENV_PY) $(ROOT)/bench/mmap_read.py --size-mib 512
