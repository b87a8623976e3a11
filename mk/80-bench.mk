# Benchmarks (bench/README.md says what each number means). Not part of `make test`: nothing
# here asserts a time. Everything prints its figures with the median and the spread over
# round-robin runs, and each target of issue 14 with "met" / "NOT MET"; JSON in build/bench/.

.PHONY: bench bench-quick bench-rtt bench-py-rtt bench-mmap bench-venv

# The full run (meant to stay under 10 minutes on a quiet 2-vCPU machine; 22.5 on a loaded one): round trips (Rust and Python, at normal and, where
# allowed, real-time priority, and both peers on one CPU), then 1 GiB and 4 GiB transfers.
# SHMB_BENCH_BEFORE=path/to/an/older/shmbridge adds its one-shot and streaming in the same rounds.
bench: build-python
	@bash $(ROOT)/bench/bench.sh full

# The same steps with small sizes and few rounds (about a minute): to check the bench works.
bench-quick: build-python
	@bash $(ROOT)/bench/bench.sh quick

# Only the Rust round trip: publish/wait against a pipe ping-pong.
bench-rtt:
	$(CARGO) build --release -q -p shmbridge-bench --bin rtt
	$(ROOT)/target/release/rtt 100000 5

# Only the Python round trips (FramedSegment, Channel, multiprocessing.Pipe, pyzmq, iceoryx2).
bench-py-rtt: bench-venv
	@$$(bash $(ROOT)/bench/venv.sh | tail -1) $(ROOT)/bench/rtt.py

# The bench's own venv (pinned PyPI versions of the libraries compared against).
bench-venv: build-python
	@bash $(ROOT)/bench/venv.sh >/dev/null

# The seed's "mmap is 15x faster than regular io", measured: the decode, not mmap; and where
# mapping really pays (data used in place).
bench-mmap: build-python
	$(VENV_PY) $(ROOT)/bench/mmap_read.py --size-mib 512
