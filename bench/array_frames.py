#!/usr/bin/env python3
"""Arrays in channel messages: the cost of viewing one, and frames per second against raw bytes.

    python bench/array_frames.py [--frames 300] [--size 1080x1920x3] [--calls 2000] [--rounds 31]
                                 [--fill]

Issue 12's targets, measured in one run:

1. Making a numpy view of a received array message costs a few microseconds at most:
   `message.array()` (validate the header against the message length, then a zero-copy
   ndarray over the slot) timed as the median over --rounds rounds of the mean of --calls
   calls, beside the hand-made baseline `np.frombuffer(message, uint8).reshape(shape)`
   (dtype and shape passed out of band, nothing checked).
2. Frames sent as array messages run at the frames per second of raw-byte messages: a sender
   process publishes --frames frames of --size uint8 through a channel, once as array
   messages (`loan_array` / `message.array()`), once as raw bytes (`loan(n)` /
   `np.frombuffer(...).reshape(...)`), alternating, best of three each; the receiver
   counts from the first frame. --fill makes the sender write every byte of every frame (as
   a camera does); without it, the numbers are those of the plumbing alone.

Prints each figure and the ratios. No assertion on times: this is a measurement.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, List, Tuple

import numpy as np

import shmbridge


def per_call(fn: Callable[[], object], calls: int, rounds: int) -> float:
    """Median over `rounds` of the mean time of one call, in microseconds."""
    samples: List[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter_ns() - t0) / calls / 1000)
    return statistics.median(samples)


def channel_for(name: str, shape: Tuple[int, ...]) -> Any:
    n = int(np.prod(shape))
    return shmbridge.Channel.create(name, slots=4, max_message=n + 4096, readers=1)


def view_cost(shape: Tuple[int, ...], calls: int, rounds: int) -> Tuple[float, float]:
    name = shmbridge.unique_name("shmb_bench_view_")
    w = channel_for(name, shape)
    try:
        r = shmbridge.Channel.open(name)
        loan = w.loan_array(shape, "uint8")
        loan.array[...] = 7
        loan.publish()
        m = r.recv(timeout=10)
        a = m.array()
        assert a.shape == shape and not a.flags.writeable and a.flat[0] == 7
        del a
        array_us = per_call(m.array, calls, rounds)
        baseline_us = per_call(
            lambda: np.frombuffer(m, np.uint8, count=int(np.prod(shape)), offset=128).reshape(shape),
            calls,
            rounds,
        )
        m.release()
        r.close()
        return array_us, baseline_us
    finally:
        w.close()
        shmbridge.remove(name)


def sender(mode: str, name: str, frames: int, shape: Tuple[int, ...], fill: bool) -> None:
    n = int(np.prod(shape))
    with channel_for(name, shape) as w:
        print("ready", flush=True)
        while not w.status().reader_places:
            time.sleep(0.005)
        for k in range(frames):
            if mode == "array":
                loan = w.loan_array(shape, "uint8", timeout=30)
                a = loan.array
            else:
                loan = w.loan(n, timeout=30)
                a = np.frombuffer(loan, np.uint8, count=n).reshape(shape)
            if fill:
                a[...] = k % 256
            else:
                a.flat[0] = k % 256
            del a
            loan.publish(tag=k)


def fps(mode: str, frames: int, shape: Tuple[int, ...], fill: bool) -> float:
    name = shmbridge.unique_name("shmb_bench_frames_")
    args = [sys.executable, __file__, "--sender", mode, name, str(frames), "x".join(map(str, shape))]
    child = subprocess.Popen(args + (["--fill"] if fill else []), stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the sender did not start")
        child.stdout.close()
        n = int(np.prod(shape))
        count = 0
        t0 = 0.0
        with shmbridge.Channel.open(name, timeout=30) as r:
            for msg in r:
                with msg:
                    if mode == "array":
                        a = msg.array()
                    else:
                        a = np.frombuffer(msg, np.uint8, count=n).reshape(shape)
                    if a.flat[0] != msg.tag % 256:
                        raise SystemExit(f"{mode} frame {msg.tag}: wrong contents")
                    del a
                if count == 0:
                    t0 = time.perf_counter()
                count += 1
        elapsed = time.perf_counter() - t0
        if child.wait(60) != 0:
            raise SystemExit("the sender failed")
        return (count - 1) / elapsed if elapsed > 0 else 0.0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if shmbridge.exists(name):
            shmbridge.remove(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="1080x1920x3")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--fill", action="store_true")
    ap.add_argument("--sender", nargs=4, metavar=("MODE", "NAME", "FRAMES", "SIZE"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sender:
        mode, name, frames, size = a.sender
        sender(mode, name, int(frames), tuple(int(d) for d in size.split("x")), a.fill)
        return
    shape = tuple(int(d) for d in a.size.split("x"))
    array_us, baseline_us = view_cost(shape, a.calls, a.rounds)
    print(f"view of a received array message ({a.size} uint8):")
    print(f"  message.array()                     {array_us:8.2f} us")
    print(f"  baseline frombuffer+reshape         {baseline_us:8.2f} us")
    print(f"  ratio                               {array_us / baseline_us:8.2f}x")
    runs: dict = {"array": [], "raw": []}
    for _ in range(3):
        for mode in ("array", "raw"):
            runs[mode].append(fps(mode, a.frames, shape, a.fill))
    best_array, best_raw = max(runs["array"]), max(runs["raw"])
    how = "filled" if a.fill else "plumbing only"
    print(f"{a.frames} frames of {a.size} uint8 ({how}), best of 3:")
    print(f"  array messages                      {best_array:8.1f} fps")
    print(f"  raw-byte messages                   {best_raw:8.1f} fps")
    print(f"  ratio array/raw                     {best_array / best_raw:8.2f}")


if __name__ == "__main__":
    main()
