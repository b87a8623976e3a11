"""Show the frames a C++ program publishes as numpy arrays, and report frames per second.

    cpp-demo's frames_pub --name frames --count 300 &     # 1080x1920x3 uint8 array messages
    python frames_view.py --name frames [--count N]

Each message of the channel carries an array header (docs/SPEC.md 7.6): its dtype and shape
travel with it, so nothing is agreed on beforehand. The frame is a numpy view of the message
where it lies in shared memory (no copy), valid until the message is released. Uses
`message.array()` when this shmbridge has it, and otherwise reads the header itself (SPEC 7.1)
and builds the view with `np.ndarray(buffer=...)`.
"""

from __future__ import annotations

import argparse
import struct
import time

import numpy as np

import shmbridge


def frame_of(msg: object) -> np.ndarray:
    """The message's array, read only, in place."""
    array = getattr(msg, "array", None)
    if callable(array):
        return np.asarray(array())
    view = memoryview(msg)  # type: ignore[arg-type]
    head = bytes(view[:64])
    if head[:8] != b"SHMBARRY":
        raise ValueError("the message carries no array header")
    kind, bits, ndim = chr(head[16]), head[17], head[18]
    data_offset, _data_len, origin = struct.unpack_from("<QQQ", head, 24)
    dims = struct.unpack_from(f"<{2 * ndim}q", bytes(view[64 : 64 + 16 * ndim]))
    dtype = np.dtype("?" if kind == "b" else f"<{kind}{bits // 8}")
    return np.ndarray(
        dims[0::2], dtype=dtype, buffer=view, offset=data_offset + origin, strides=dims[1::2]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", default="frames")
    ap.add_argument("--count", type=int, default=0, help="stop after N frames (0: until closed)")
    ap.add_argument("--timeout", type=float, default=30, help="seconds to wait for the channel")
    a = ap.parse_args()
    frames, t0, last_report = 0, None, time.perf_counter()
    with shmbridge.Channel.open(a.name, timeout=a.timeout) as reader:
        print(f"frames_view: reading {a.name!r}", flush=True)
        for msg in reader:  # until the writer closes the channel
            with msg:
                frame = frame_of(msg)
                if frames == 0:
                    t0 = time.perf_counter()
                    print(f"first frame: {frame.dtype} {frame.shape}, strides {frame.strides}")
                # Look at the frame in place: pixel (0, 0) holds the frame number's low byte.
                assert int(frame[0, 0, 0]) == msg.tag % 256, "frame and tag disagree"
                frames += 1
                del frame  # the view goes before the message is released
            now = time.perf_counter()
            if now - last_report >= 1.0 and t0 is not None and now > t0:
                print(f"{frames} frames, {(frames - 1) / (now - t0):.1f} frames/s", flush=True)
                last_report = now
            if a.count and frames >= a.count:
                break
    if frames > 1 and t0 is not None:
        print(f"frames_view: {frames} frames, {(frames - 1) / (time.perf_counter() - t0):.1f} frames/s")
    else:
        print(f"frames_view: {frames} frames")


if __name__ == "__main__":
    main()
