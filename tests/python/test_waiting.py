"""Waiting, readiness and liveness from Python: every wait is the core's (no slicing or polling
here), Ctrl-C gets through, timeouts are validated, segments can be waited for, read-only
readers sleep, and a consistent read reports exactly what it copied."""

from __future__ import annotations

import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest

import shmbridge
from _helpers import shm_exists, wait_asleep

WAKE_ALWAYS = 0x8


def _later(delay: float, fn: Callable[[], object]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn()

    t = threading.Thread(target=run)
    t.start()
    return t


# --- timeouts ------------------------------------------------------------------------------


def test_huge_timeouts_mean_forever_and_never_panic(shm_name: str, tmp_path: Path) -> None:
    fr = shmbridge.FramedSegment.create(shm_name, 64)
    try:
        seen = fr.publish_count
        t = _later(0.05, lambda: fr.write(b"late"))
        try:
            assert fr.wait(seen, 1e19) != seen
        except Exception as e:  # a PanicException would not even be caught here
            pytest.fail(f"wait(…, 1e19) raised {e!r}")
        t.join()
        assert fr.wait(seen, math.inf) != seen
    finally:
        fr.close()
        shmbridge.remove(shm_name)
    src = tmp_path / "in.bin"
    src.write_bytes(b"payload" * 100)
    shmbridge.send_file(src, shm_name, transfer="one-shot")
    report = shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=1e19)
    assert report.bytes == 700 and (tmp_path / "out.bin").read_bytes() == src.read_bytes()


@pytest.mark.parametrize("bad", [float("nan"), -1.0, -1e-9, -math.inf])
def test_nan_and_negative_timeouts_are_value_errors(shm_name: str, tmp_path: Path, bad: float) -> None:
    with shmbridge.FramedSegment.create(shm_name, 8) as fr:
        with pytest.raises(ValueError, match="non-negative"):
            fr.wait(fr.publish_count, bad)
    with pytest.raises(ValueError, match="non-negative"):
        shmbridge.FramedSegment.open(shm_name, timeout=bad)
    shmbridge.remove(shm_name)
    with pytest.raises(ValueError, match="non-negative"):
        shmbridge.recv_file(shm_name, tmp_path / "out", timeout=bad)
    with pytest.raises(ValueError, match="non-negative"):
        shmbridge.StreamReader(shm_name, timeout=bad)
    with pytest.raises(ValueError, match="non-negative"):
        shmbridge.StreamWriter(shm_name, 64, timeout=bad)
    assert not shm_exists(shm_name)


# --- readiness: waiting for a segment to appear ------------------------------------------------


def test_open_waits_for_the_segment_to_appear(shm_name: str) -> None:
    with pytest.raises(FileNotFoundError):
        shmbridge.FramedSegment.open(shm_name)
    with pytest.raises(shmbridge.Timeout, match="no segment with this name appeared"):
        shmbridge.FramedSegment.open(shm_name, timeout=0.05)
    made: List[shmbridge.FramedSegment] = []

    def create() -> None:
        fr = shmbridge.FramedSegment.create(shm_name, 32)
        fr.write(b"ready")
        made.append(fr)

    t = _later(0.2, create)
    with shmbridge.FramedSegment.open(shm_name, readonly=True, timeout=30) as fr:
        # Segments get their name only once complete: the header is valid at once.
        assert fr.capacity == 32 and fr.kind == "message"
        assert fr.header().creator_alive()
    t.join()
    made[0].close()


def test_a_segment_that_is_not_framed_fails_at_once_even_with_a_timeout(shm_name: str) -> None:
    raw = shmbridge.Segment(shm_name, "create_only", 4096)
    try:
        with pytest.raises(shmbridge.BadMagic):
            shmbridge.FramedSegment.open(shm_name, timeout=60)
        with pytest.raises(shmbridge.BadMagic):
            shmbridge.StreamReader(shm_name, timeout=60)
    finally:
        raw.close()
        shmbridge.remove(shm_name)
    # SPEC rule 1: shorter than 16 bytes is bad magic, even when it starts with the magic.
    tiny = shmbridge.Segment(shm_name, "create_only", 10)
    try:
        tiny.mapping.write(0, shmbridge.FRAMED_MAGIC)
        with pytest.raises(shmbridge.BadMagic, match="smaller than a framed header"):
            shmbridge.FramedSegment.open(shm_name, timeout=60)
    finally:
        tiny.close()


# --- read-only readers sleep ---------------------------------------------------------------


def test_a_read_only_reader_sleeps_and_the_writer_learns_to_wake_it(shm_name: str) -> None:
    with shmbridge.FramedSegment.create(shm_name, 64) as writer:
        assert writer.header().flags & WAKE_ALWAYS == 0
        with shmbridge.FramedSegment.open(shm_name, readonly=True) as reader:
            got: List[int] = []
            tids: List[int] = []
            seen = reader.publish_count

            def waiter() -> None:
                tids.append(threading.get_native_id())
                got.append(reader.wait(seen, 30))

            t = threading.Thread(target=waiter)
            t.start()
            while not tids:
                time.sleep(0.001)
            wait_asleep(os.getpid(), tids[0])  # asleep, so it has announced itself
            writer.write(b"wake up")
            t.join(30)
            assert got and got[0] != seen
            assert reader.read() == b"wake up"
        # The writer saw the read-only waiter and now wakes on every publish (SPEC 5.4).
        assert writer.header().flags & WAKE_ALWAYS


# --- a consistent read reports what it copied -----------------------------------------------

_PUBLISHER = textwrap.dedent(
    """
    import struct, sys, time
    import shmbridge
    fr = shmbridge.FramedSegment.open(sys.argv[1])
    end = time.monotonic() + float(sys.argv[2])
    n = 0
    while time.monotonic() < end:
        size = 4 + (n * 7919) % 3000
        fr.write(struct.pack("<I", size) + bytes([size % 251]) * (size - 4))
        n += 1
    print(n)
    """
)


def test_readinto_and_read_report_exactly_what_they_copied(shm_name: str) -> None:
    fr = shmbridge.FramedSegment.create(shm_name, 4096)
    try:
        fr.write(struct.pack("<I", 4))
        pub = subprocess.Popen(
            [sys.executable, "-c", _PUBLISHER, shm_name, "1.5"], stdout=subprocess.PIPE, text=True
        )
        buf = bytearray(4096)
        checked = 0
        while pub.poll() is None:
            n = fr.readinto(buf)
            assert n == struct.unpack_from("<I", buf)[0], "the length belongs to the bytes copied"
            assert buf[4:n] == bytes([n % 251]) * (n - 4)
            data = fr.read()
            assert len(data) == struct.unpack_from("<I", data)[0]
            checked += 1
        out, _ = pub.communicate(timeout=30)
        assert pub.returncode == 0 and int(out) > 100
        assert checked > 100
    finally:
        fr.close()


# --- streams: one lifecycle, the core's ---------------------------------------------------------


def test_stream_lifecycle_is_the_same_as_in_every_front(shm_name: str) -> None:
    # Finished: the name is gone once the reader confirmed.
    w = shmbridge.StreamWriter(shm_name, 4096)
    w.write(b"abc")
    r = shmbridge.StreamReader(shm_name, timeout=0)
    assert r.read(3) == b"abc"
    with pytest.raises(shmbridge.Timeout):
        w.finish(timeout=0.05)  # the reader has not confirmed: finish may be retried
    assert shm_exists(shm_name)
    assert r.read() == b""
    r.finish()
    assert w.finish(timeout=10) == r.crc32
    assert not shm_exists(shm_name)
    # Closed before the end: the stream is aborted and its name removed; the reader fails.
    w = shmbridge.StreamWriter(shm_name, 4096)
    r = shmbridge.StreamReader(shm_name, timeout=0)
    w.write(b"xyz")
    w.close()
    assert not shm_exists(shm_name)
    assert r.read(3) == b"xyz"
    with pytest.raises(shmbridge.PeerGone):
        r.read(timeout=10)
    r.close()


# --- Ctrl-C ------------------------------------------------------------------------------------

_WAITER = textwrap.dedent(
    """
    import math, sys
    import shmbridge
    what, name = sys.argv[1], sys.argv[2]
    if what == "framed":
        fr = shmbridge.FramedSegment.open(name, readonly=True)
        print("waiting", flush=True)
        fr.wait(fr.publish_count)
    elif what == "open":
        print("waiting", flush=True)
        shmbridge.FramedSegment.open(name + "_never", timeout=math.inf)
    else:
        r = shmbridge.StreamReader(name)
        print("waiting", flush=True)
        r.read()
    """
)


@pytest.mark.parametrize("what", ["framed", "open", "stream"])
def test_ctrl_c_interrupts_every_wait(shm_name: str, what: str) -> None:
    keep: List[object] = []
    if what == "framed":
        keep.append(shmbridge.FramedSegment.create(shm_name, 8))
    elif what == "stream":
        keep.append(shmbridge.StreamWriter(shm_name, 64))
    p = subprocess.Popen(
        [sys.executable, "-c", _WAITER, what, shm_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "waiting"
        wait_asleep(p.pid)  # into the futex sleep
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode != 0 and "KeyboardInterrupt" in err, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for k in keep:
            k.close()  # type: ignore[attr-defined]
