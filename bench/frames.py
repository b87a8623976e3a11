"""Camera frames between two Python processes, lock-step with a one-byte ack, side by side.

    python bench/frames.py [--frames 200] [--rounds 5] [--json PATH]

Each approach moves FRAMES frames of 1080x1920x3 uint8 (6,220,800 bytes) from a sender
process to a receiver process, one at a time: the sender puts frame i in (the frame index in
its first 8 bytes, the rest from a prepared numpy frame), the receiver makes a numpy
(1080, 1920, 3) view of what it got, checks the index and reads a pixel in the middle, then
acks with one byte; the sender waits for the ack before the next frame. frames/s is
FRAMES / (time from the first frame to the last ack), after 10 warm-up frames.

Approaches (each in its own pair of fresh processes, round-robin over ROUNDS rounds; the
median and the spread, min to max, of the rounds are printed):

- shmb-channel: shmbridge.Channel, the frame copied into a loan in place, the receiver's view
  made on the message where it lies (zero copy), the ack a 1-byte message on a second channel;
- shmb-array: the same with writer.loan_array / message.array() (when the package has them),
  so the receiver learns shape and dtype from the message itself;
- iceoryx2: iceoryx2 publish-subscribe with a [u8] slice loan filled by memmove and an event
  to wake the receiver, the view made on the sample in place; the ack an event;
- pyzmq: a PAIR socket over ipc://, send(copy=False), recv(copy=False);
- pipe: multiprocessing.Pipe, send_bytes / recv_bytes_into a preallocated buffer.

The peers come from PyPI (bench/venv.sh installs them with pinned versions); an approach whose
package is missing is reported as skipped. Nothing here is asserted as a test: the numbers are
printed (and written as JSON with --json) for bench/README.md and bench/report.py.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from typing import Any, Callable

import numpy as np

SHAPE = (1080, 1920, 3)
FRAME = SHAPE[0] * SHAPE[1] * SHAPE[2]
WARMUP = 10
TIMEOUT = 30.0


def _check(view: np.ndarray, i: int) -> int:
    """What every receiver does with a frame: check its index, read a pixel in the middle."""
    got = int(view.reshape(-1)[:8].view("<u8")[0])
    if got != i:
        raise RuntimeError(f"frame {i}: got frame {got}")
    return int(view[SHAPE[0] // 2, SHAPE[1] // 2].sum())


def _source() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=SHAPE, dtype=np.uint8)


def _stamp(buf: np.ndarray, i: int) -> None:
    buf.reshape(-1)[:8].view("<u8")[0] = i


# --- shmbridge channels ---------------------------------------------------------------------


def _shmb_recv(name: str, frames: int, ready: Any, use_array: bool) -> None:
    import shmbridge

    with shmbridge.Channel.open(name + "_f", timeout=TIMEOUT) as r:
        with shmbridge.Channel.create(name + "_a", slots=2, max_message=8, readers=1) as ack:
            ready.send("ready")
            for i in range(frames):
                with r.recv(timeout=TIMEOUT) as msg:
                    if use_array:
                        view = msg.array()
                        if view.shape != SHAPE or view.dtype != np.uint8:
                            raise RuntimeError(f"array message is {view.shape} {view.dtype}")
                    else:
                        view = np.frombuffer(msg, np.uint8).reshape(SHAPE)
                    _check(view, i)
                    del view
                ack.send(b"a")


def _shmb_send(name: str, frames: int, ready: Any, use_array: bool) -> float:
    import shmbridge

    src = _source()
    with shmbridge.Channel.create(name + "_f", slots=2, max_message=FRAME + 4096, readers=1) as w:
        if ready.recv() != "ready":
            raise RuntimeError("receiver did not start")
        with shmbridge.Channel.open(name + "_a", timeout=TIMEOUT) as acks:
            t0 = 0.0
            for i in range(frames):
                if i == WARMUP:
                    t0 = time.perf_counter()
                if use_array:
                    with w.loan_array(SHAPE, "uint8") as loan:
                        dst = loan.array
                        dst[...] = src
                        _stamp(dst, i)
                        del dst
                else:
                    with w.loan(FRAME) as loan:
                        dst = np.frombuffer(loan, np.uint8).reshape(SHAPE)
                        dst[...] = src
                        _stamp(dst, i)
                        del dst
                acks.recv(timeout=TIMEOUT).release()
            return time.perf_counter() - t0


# --- iceoryx2 -------------------------------------------------------------------------------


def _iox_services(name: str) -> tuple[Any, Any, Any, Any]:
    import iceoryx2 as iox2

    iox2.set_log_level(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    frames = (
        node.service_builder(iox2.ServiceName.new(name + "/frames"))
        .publish_subscribe(iox2.Slice[ctypes.c_uint8])
        .open_or_create()
    )
    sent = node.service_builder(iox2.ServiceName.new(name + "/sent")).event().open_or_create()
    acked = node.service_builder(iox2.ServiceName.new(name + "/acked")).event().open_or_create()
    return node, frames, sent, acked


def _iox_recv(name: str, frames: int, ready: Any) -> None:
    import iceoryx2 as iox2

    node, svc, sent, acked = _iox_services(name)
    sub = svc.subscriber_builder().create()
    listener = sent.listener_builder().create()
    notifier = acked.notifier_builder().create()
    ready.send("ready")
    deadline = iox2.Duration.from_secs_f64(TIMEOUT)
    for i in range(frames):
        sample = sub.receive()
        while sample is None:
            listener.timed_wait(deadline)
            sample = sub.receive()
        raw = (ctypes.c_uint8 * FRAME).from_address(sample.payload_ptr)
        _check(np.frombuffer(raw, np.uint8).reshape(SHAPE), i)
        del raw
        sample.delete()
        notifier.notify()
    del node


def _iox_send(name: str, frames: int, ready: Any) -> float:
    import iceoryx2 as iox2

    node, svc, sent, acked = _iox_services(name)
    pub = svc.publisher_builder().initial_max_slice_len(FRAME).create()
    notifier = sent.notifier_builder().create()
    listener = acked.listener_builder().create()
    src = _source()
    if ready.recv() != "ready":
        raise RuntimeError("receiver did not start")
    pub.update_connections()
    deadline = iox2.Duration.from_secs_f64(TIMEOUT)
    t0 = 0.0
    for i in range(frames):
        if i == WARMUP:
            t0 = time.perf_counter()
        sample = pub.loan_slice_uninit(FRAME)
        ctypes.memmove(sample.payload_ptr, src.ctypes.data, FRAME)
        ctypes.memmove(sample.payload_ptr, ctypes.c_uint64(i).value.to_bytes(8, "little"), 8)
        sample.assume_init().send()
        notifier.notify()
        while not listener.timed_wait(deadline):
            pass
    elapsed = time.perf_counter() - t0
    del node
    return elapsed


# --- pyzmq ----------------------------------------------------------------------------------


def _zmq_addr(name: str) -> str:
    return f"ipc:///tmp/{name}.zmq"


def _zmq_recv(name: str, frames: int, ready: Any) -> None:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.connect(_zmq_addr(name))
    ready.send("ready")
    for i in range(frames):
        msg = sock.recv(copy=False)
        _check(np.frombuffer(msg.buffer, np.uint8).reshape(SHAPE), i)
        sock.send(b"a")
    sock.close(linger=0)
    ctx.term()


def _zmq_send(name: str, frames: int, ready: Any) -> float:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PAIR)
    sock.bind(_zmq_addr(name))
    try:
        src = _source()
        if ready.recv() != "ready":
            raise RuntimeError("receiver did not start")
        t0 = 0.0
        for i in range(frames):
            if i == WARMUP:
                t0 = time.perf_counter()
            frame = src.copy()  # a new frame each time, as a camera would hand over
            _stamp(frame, i)
            sock.send(frame, copy=False)
            sock.recv()
        return time.perf_counter() - t0
    finally:
        sock.close(linger=0)
        ctx.term()
        try:
            os.unlink(_zmq_addr(name)[len("ipc://") :])
        except FileNotFoundError:
            pass


# --- multiprocessing.Pipe -------------------------------------------------------------------


def _pipe_recv(name: str, frames: int, ready: Any) -> None:
    buf = bytearray(FRAME)
    ready.send("ready")
    for i in range(frames):
        n = ready.recv_bytes_into(buf)
        if n != FRAME:
            raise RuntimeError(f"frame {i}: {n} bytes")
        _check(np.frombuffer(buf, np.uint8).reshape(SHAPE), i)
        ready.send_bytes(b"a")


def _pipe_send(name: str, frames: int, ready: Any) -> float:
    src = _source()
    if ready.recv() != "ready":
        raise RuntimeError("receiver did not start")
    t0 = 0.0
    for i in range(frames):
        if i == WARMUP:
            t0 = time.perf_counter()
        _stamp(src, i)
        ready.send_bytes(memoryview(src).cast("B"))
        ready.recv_bytes()
    return time.perf_counter() - t0


# --- the harness ----------------------------------------------------------------------------


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _has_array_loans() -> bool:
    try:
        import shmbridge
    except ImportError:
        return False
    return hasattr(getattr(shmbridge, "ChannelWriter", object), "loan_array")


APPROACHES: dict[str, tuple[Callable[..., float], Callable[..., None], Callable[[], bool], tuple]] = {
    "shmb-channel": (_shmb_send, _shmb_recv, lambda: _has("shmbridge"), (False,)),
    "shmb-array": (_shmb_send, _shmb_recv, _has_array_loans, (True,)),
    "iceoryx2": (_iox_send, _iox_recv, lambda: _has("iceoryx2"), ()),
    "pyzmq": (_zmq_send, _zmq_recv, lambda: _has("zmq"), ()),
    "pipe": (_pipe_send, _pipe_recv, lambda: True, ()),
}


def _cleanup_shmb(name: str) -> None:
    try:
        import shmbridge
    except ImportError:
        return
    for suffix in ("_f", "_a"):
        if shmbridge.exists(name + suffix):
            shmbridge.remove(name + suffix)


def run_once(approach: str, frames: int) -> float:
    """One sender (this process) and one receiver (a fresh spawned process); frames/s."""
    send, recv, _, extra = APPROACHES[approach]
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    name = f"shmb_bf_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    proc = ctx.Process(target=recv, args=(name, frames, child, *extra), daemon=True)
    proc.start()
    try:
        elapsed = send(name, frames, parent, *extra)
        proc.join(TIMEOUT)
        if proc.exitcode != 0:
            raise RuntimeError(f"{approach}: the receiver exited with {proc.exitcode}")
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
        _cleanup_shmb(name)
    return (frames - WARMUP) / elapsed


def _iceoryx2_leftovers() -> set[str]:
    """What iceoryx2 keeps between runs: its global management segment and /tmp/iceoryx2."""
    found = {os.path.join("/dev/shm", n) for n in os.listdir("/dev/shm") if n.startswith("iox2_")}
    if os.path.isdir("/tmp/iceoryx2"):
        found.add("/tmp/iceoryx2")
    return found


def _remove_new(before: set[str]) -> None:
    """Remove what iceoryx2 left that was not there before this bench (nothing of others')."""
    import shutil

    for path in sorted(_iceoryx2_leftovers() - before, reverse=True):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated approaches")
    ap.add_argument("--json", default="", help="write the results here")
    a = ap.parse_args()
    if a.frames <= WARMUP:
        ap.error(f"--frames must be more than the {WARMUP} warm-up frames")
    chosen = [x for x in APPROACHES if not a.only or x in a.only.split(",")]
    runnable = [x for x in chosen if APPROACHES[x][2]()]
    for x in chosen:
        if x not in runnable:
            print(f"{x}: skipped (its package is not installed)")
    rates: dict[str, list[float]] = {x: [] for x in runnable}
    before = _iceoryx2_leftovers()
    try:
        for rnd in range(a.rounds):
            for x in runnable:
                rates[x].append(run_once(x, a.frames))
            line = ", ".join(f"{x} {rates[x][-1]:.0f}" for x in runnable)
            print(f"round {rnd + 1}/{a.rounds}: {line}", flush=True)
    finally:
        _remove_new(before)
    results: dict[str, Any] = {}
    print(f"\n{a.frames - WARMUP} frames of {SHAPE} uint8, lock-step with an ack, {a.rounds} rounds:")
    print(f"{'approach':<14} {'median fps':>11} {'min':>8} {'max':>8}")
    for x in runnable:
        med = statistics.median(rates[x])
        results[x] = {"median_fps": med, "min_fps": min(rates[x]), "max_fps": max(rates[x]), "rounds": rates[x]}
        print(f"{x:<14} {med:>11.0f} {min(rates[x]):>8.0f} {max(rates[x]):>8.0f}")
    if "shmb-channel" in results and "iceoryx2" in results:
        ratio = results["shmb-channel"]["median_fps"] / results["iceoryx2"]["median_fps"]
        verdict = "met" if ratio >= 1.0 else "NOT MET"
        print(f"\nshmb-channel / iceoryx2 frames/s: {ratio:.2f}x (target at least 1x): {verdict}")
        results["ratio_vs_iceoryx2"] = ratio
    if "shmb-array" in results and "shmb-channel" in results:
        ratio = results["shmb-array"]["median_fps"] / results["shmb-channel"]["median_fps"]
        verdict = "met" if ratio >= 0.95 else "NOT MET"
        print(f"shmb-array / shmb-channel frames/s: {ratio:.2f}x (target the same, at least 0.95x): {verdict}")
        results["array_vs_raw"] = ratio
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump({"frames": a.frames - WARMUP, "shape": SHAPE, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
