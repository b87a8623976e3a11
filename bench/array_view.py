#!/usr/bin/env python3
"""What it costs to turn an array header plus its data in shared memory into a numpy array.

    python bench/array_view.py [--calls 2000] [--rounds 51] [--shape 480,640,3] [--dtype float32]

Issue 12's target: making a numpy view of a received array costs a few microseconds at most.
One named segment in /dev/shm (tmpfs) holds an array header (docs/SPEC.md section 7) and the
data; each line times one way from there to an ndarray, as the median over --rounds rounds of
the mean over --calls calls:

  ArrayView(m)                     validate the header in place (one checked copy of <= 576
                                   header bytes, one fstat)
  np.asarray(view)                 buffer protocol: dtype, shape, strides from the view
  np.from_dlpack(view)             DLPack: a capsule, then numpy's import
  np.asarray(ArrayView(m))         both: a received array to an ndarray, end to end
  np.from_dlpack(ArrayView(m))     the same through DLPack
  baseline: frombuffer+reshape     today's hand-made way (dtype and shape passed out of band,
                                   nothing checked)

Every way is zero-copy, so the size of the array does not matter; the script checks that the
arrays it makes point into the segment. The segment is removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, List

import numpy as np

from shmbridge import _native as native


def per_call(fn: Callable[[], object], calls: int, rounds: int) -> float:
    """Median over `rounds` of the mean time of one call, in microseconds."""
    samples: List[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - t0) / calls / 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=51)
    ap.add_argument("--shape", default="480,640,3")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    shape = tuple(int(d) for d in args.shape.split(",") if d)
    dtype = np.dtype(args.dtype)

    name = native.unique_name("shmb_bench_array_")
    size = native.array_size(shape, dtype)
    seg = native.Segment(name, "create_only", size)
    try:
        m = seg.mapping
        src = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
        native.write_array_header(m, 0, shape, dtype, data=src)
        view = native.ArrayView(m)
        data_offset = view.data_offset
        base = np.frombuffer(m.buf, np.uint8).__array_interface__["data"][0]
        for arr in (np.asarray(view), np.from_dlpack(view)):
            assert arr.__array_interface__["data"][0] == base + data_offset, "not zero-copy"
            assert np.array_equal(arr, src)
        buf = m.buf

        ways = [
            ("ArrayView(m)", lambda: native.ArrayView(m)),
            ("np.asarray(view)", lambda: np.asarray(view)),
            ("np.from_dlpack(view)", lambda: np.from_dlpack(view)),
            ("np.asarray(ArrayView(m))", lambda: np.asarray(native.ArrayView(m))),
            ("np.from_dlpack(ArrayView(m))", lambda: np.from_dlpack(native.ArrayView(m))),
            (
                "baseline: frombuffer+reshape",
                lambda: np.frombuffer(buf, dtype, count=src.size, offset=data_offset).reshape(shape),
            ),
        ]
        print(
            f"array {shape} {dtype} ({src.nbytes / 2**20:.1f} MiB) in /dev/shm/{name}; "
            f"numpy {np.__version__}; median of {args.rounds} rounds x {args.calls} calls"
        )
        for label, fn in ways:
            print(f"  {label:<32} {per_call(fn, args.calls, args.rounds):7.2f} us")
    finally:
        seg.unlink()
        seg.close()


if __name__ == "__main__":
    main()
