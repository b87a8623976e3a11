"""Camera-style frames through a channel, received as numpy arrays; reports frames per second.

    python frames_view.py [NAME] [--frames N]            receive from channel NAME
    python frames_view.py --send NAME [--frames N]       send frames on channel NAME
    python frames_view.py --demo [--frames N]            both: a sender process and a receiver

Each frame is a 1080x1920x3 uint8 array (``--size HxWxC`` for another) that the sender fills
in place in a channel slot (``writer.loan_array(shape, "uint8")``) and the receiver views in
place (``message.array()``): the element type and shape travel in the message's array header
(docs/SPEC.md 7.6), so the receiver needs no out-of-band information. Nothing is copied on
the way. The receiver checks every frame (its first and last pixel hold the frame number)
and prints the rate once a second and at the end. A C++ or Rust sender works the same way:
it publishes array messages on the channel.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Optional, Tuple

import numpy  # noqa: F401  (imported up front: its import is not a frame's cost)

import shmbridge

DEFAULT_NAME = "shmb_frames"


def parse_size(text: str) -> Tuple[int, int, int]:
    h, w, c = (int(x) for x in text.lower().split("x"))
    return h, w, c


def send(name: str, frames: int, shape: Tuple[int, int, int], fps: float, fill: bool) -> None:
    """Create the channel, wait for a reader, publish `frames` frames, close."""
    nbytes = shape[0] * shape[1] * shape[2]
    with shmbridge.Channel.create(name, slots=4, max_message=nbytes + 4096, readers=1) as w:
        print("sender ready", flush=True)
        deadline = time.monotonic() + 60
        while not w.status().reader_places:
            if time.monotonic() > deadline:
                raise SystemExit("no reader came within 60 s")
            time.sleep(0.01)
        period = 1.0 / fps if fps > 0 else 0.0
        t0 = time.monotonic()
        for k in range(frames):
            loan = w.loan_array(shape, "uint8", timeout=30)
            a = loan.array  # a writable numpy array in the slot
            if fill:
                a[...] = k % 256  # every byte, as a camera writes a frame
            else:
                a[0, 0, 0] = a[-1, -1, -1] = k % 256
            loan.publish(tag=k)
            if period:
                time.sleep(max(0.0, t0 + (k + 1) * period - time.monotonic()))


def receive(name: str, frames: int, timeout: float) -> None:
    """Take frames until the sender closes the channel (or `frames` came), report fps."""
    r = shmbridge.Channel.open(name, timeout=timeout)
    count = 0
    lost = 0
    shape: Tuple[int, ...] = ()
    t0: Optional[float] = None  # the rate counts from the first frame
    last = 0.0
    last_count = 0
    with r:
        for msg in r:
            if t0 is None:
                t0 = last = time.perf_counter()
            with msg:
                a = msg.array()  # read-only, in place: no copy
                shape = a.shape
                k = msg.tag % 256
                if a[0, 0, 0] != k or a[-1, -1, -1] != k:
                    raise SystemExit(f"frame {msg.tag}: wrong contents")
                lost += msg.lost
            count += 1
            now = time.perf_counter()
            if now - last >= 1.0:
                print(f"{(count - last_count) / (now - last):.1f} fps", flush=True)
                last, last_count = now, count
            if frames and count >= frames:
                break
    elapsed = time.perf_counter() - t0 if t0 is not None else 0.0
    dims = "x".join(str(d) for d in shape)
    rate = (count - 1) / elapsed if elapsed > 0 and count > 1 else 0.0
    print(f"{count} frames of {dims} uint8 in {elapsed:.2f} s: {rate:.1f} fps, {lost} lost")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", nargs="?", default=DEFAULT_NAME)
    ap.add_argument("--send", metavar="NAME", help="be the sender on channel NAME")
    ap.add_argument("--demo", action="store_true", help="start a sender and receive from it")
    ap.add_argument("--frames", type=int, default=300, help="frames to send (0: receive all)")
    ap.add_argument("--size", default="1080x1920x3", help="frame shape, HxWxC")
    ap.add_argument("--fps", type=float, default=0.0, help="sender's pace (0: as fast as it can)")
    ap.add_argument("--timeout", type=float, default=30.0, help="wait this long for a sender")
    ap.add_argument("--fill", action="store_true", help="the sender writes every byte of a frame")
    a = ap.parse_args()
    shape = parse_size(a.size)
    if a.send:
        send(a.send, a.frames, shape, a.fps, a.fill)
        return
    if not a.demo:
        receive(a.name, a.frames, a.timeout)
        return
    name = shmbridge.unique_name("shmb_frames_")
    child = subprocess.Popen(
        [sys.executable, __file__, "--send", name, "--frames", str(a.frames), "--size", a.size]
        + ["--fps", str(a.fps)]
        + (["--fill"] if a.fill else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "sender ready":
            raise SystemExit("the sender did not start")
        child.stdout.close()
        receive(name, 0, a.timeout)
        if child.wait(60) != 0:
            raise SystemExit("the sender failed")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if shmbridge.exists(name):
            shmbridge.remove(name)


if __name__ == "__main__":
    main()
