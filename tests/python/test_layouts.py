"""Framed and size-prefixed segments from Python, and every bad header."""

from __future__ import annotations

import os
import struct
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import shmbridge
from shmbridge import FramedSegment, SharedMemory

from _helpers import SHM

# docs/SPEC.md, Layout 3 (written here from the spec, to corrupt headers on purpose).
OFF_VERSION_MAJOR = 8
OFF_HEADER_LEN = 12
OFF_CAPACITY = 24
OFF_PAYLOAD_LEN = 32


def test_framed_create_write_read_header(shm_name: str) -> None:
    with FramedSegment.create(shm_name, 1000) as fr:
        assert fr.capacity == 1000 and fr.header_len == shmbridge.FRAMED_HEADER_LEN == 128
        assert fr.kind == "message" and fr.payload_len == 0 and fr.read() == b""
        fr.write(b"hello framed")
        h = fr.header()
        assert h.payload_len == 12 and h.capacity == 1000 and h.publish_count == 1
        assert h.sequence % 2 == 0 and h.checksum is not None and h.creator_pid == os.getpid()
        assert h.creator_alive() and not h.writer_closed
        assert (h.version_major, h.version_minor) == shmbridge.FRAMED_VERSION
        assert "payload_len=12" in repr(h)
        other = FramedSegment.open(shm_name, readonly=True)
        assert other.read() == b"hello framed"
        buf = bytearray(100)
        assert other.readinto(buf) == 12 and bytes(buf[:12]) == b"hello framed"
        with pytest.raises(PermissionError):
            other.write(b"x")
        fr.set("u32", 996, 7)
        assert other.get("u32", 996) == 7
        with pytest.raises(shmbridge.OutOfBounds):
            fr.set("u32", 997, 1)
        with pytest.raises(shmbridge.OutOfBounds):
            fr.write(b"x" * 1001)
        assert other.read() == b"hello framed", "a refused write leaves the payload alone"
        with pytest.raises(shmbridge.OutOfBounds):
            other.readinto(bytearray(5))
        other.close()
        assert (SHM / shm_name).stat().st_size == 1128
        fr.unlink()


def test_framed_large_payload_numpy_round_trip(shm_name: str) -> None:
    arr = np.random.default_rng(1).integers(0, 255, size=4 << 20, dtype=np.uint8)
    with FramedSegment.create(shm_name, arr.nbytes) as fr:
        fr.write(arr)  # any buffer; the copy releases the GIL
        back = np.frombuffer(fr.read(), dtype=np.uint8)
        assert np.array_equal(arr, back)
        out = np.zeros_like(arr)
        assert fr.readinto(out) == arr.nbytes and np.array_equal(out, arr)
        fr.unlink()


def test_framed_wait_releases_the_gil_and_wakes(shm_name: str) -> None:
    with FramedSegment.create(shm_name, 64) as fr:
        reader = FramedSegment.open(shm_name)
        seen = reader.publish_count
        ticks = []
        got = []

        def wait() -> None:
            got.append(reader.wait(seen, timeout=10))

        t = threading.Thread(target=wait)
        t.start()
        for _ in range(5):  # this thread runs while the other waits: the GIL is free
            ticks.append(time.monotonic())
            time.sleep(0.01)
        fr.write(b"ping")
        t.join(10)
        assert got == [seen + 1] and len(ticks) == 5
        assert reader.read() == b"ping"
        with pytest.raises(shmbridge.Timeout):
            reader.wait(reader.publish_count, timeout=0.05)
        with pytest.raises(TimeoutError):  # Timeout is a TimeoutError too
            reader.wait(reader.publish_count, timeout=0)
        fr.close_writer()
        with pytest.raises(shmbridge.WriterClosed):
            reader.wait(reader.publish_count, timeout=5)
        with pytest.raises(ValueError):
            reader.wait(0, timeout=-1)
        reader.close()
        fr.unlink()


def test_framed_closed_raises(shm_name: str) -> None:
    fr = FramedSegment.create(shm_name, 8)
    fr.close()
    fr.close()
    assert fr.closed
    with pytest.raises(shmbridge.ClosedError):
        fr.read()
    with pytest.raises(shmbridge.ClosedError):
        fr.write(b"x")
    with pytest.raises(shmbridge.ClosedError):
        fr.header()
    fr.unlink()


def _framed_then_poke(name: str, offset: int, fmt: str, value: int) -> None:
    FramedSegment.create(name, 64).write(b"data")
    with SharedMemory(name) as raw:
        struct.pack_into(fmt, raw.buf, offset, value)


def test_bad_magic(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=256) as raw:
        raw.buf[:8] = b"NOTMAGIC"
        with pytest.raises(shmbridge.BadMagic) as info:
            FramedSegment.open(shm_name)
        assert isinstance(info.value, shmbridge.Error) and shm_name in str(info.value)
        raw.unlink()


def test_tiny_segment_is_bad_magic(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=4) as raw:
        with pytest.raises(shmbridge.BadMagic):
            FramedSegment.open(shm_name)
        raw.unlink()


def test_unknown_major_version(shm_name: str) -> None:
    _framed_then_poke(shm_name, OFF_VERSION_MAJOR, "<H", 2)
    with pytest.raises(shmbridge.UnsupportedVersion, match=r"version 2\.\d"):
        FramedSegment.open(shm_name)


def test_corrupt_header_len(shm_name: str) -> None:
    _framed_then_poke(shm_name, OFF_HEADER_LEN, "<I", 100)
    with pytest.raises(shmbridge.CorruptHeader):
        FramedSegment.open(shm_name)


def test_payload_len_past_capacity(shm_name: str) -> None:
    _framed_then_poke(shm_name, OFF_PAYLOAD_LEN, "<Q", 65)
    with pytest.raises(shmbridge.CorruptHeader):
        FramedSegment.open(shm_name)


def test_capacity_past_the_real_size_is_truncated(shm_name: str) -> None:
    _framed_then_poke(shm_name, OFF_CAPACITY, "<Q", 1 << 40)
    with pytest.raises(shmbridge.Truncated):
        FramedSegment.open(shm_name)


def test_segment_truncated_by_another_process(shm_name: str) -> None:
    fr = FramedSegment.create(shm_name, 8192)
    fr.write(b"x" * 8000)
    os.truncate(SHM / shm_name, 100)  # what a misbehaving peer could do
    with pytest.raises(shmbridge.Truncated):
        fr.read()  # an error, not a SIGBUS
    with pytest.raises(shmbridge.Truncated):
        FramedSegment.open(shm_name)
    fr.close()


def test_checksum_mismatch(shm_name: str) -> None:
    with FramedSegment.create(shm_name, 64) as fr:
        fr.write(b"payload")
        with SharedMemory(shm_name) as raw:
            raw.buf[128] ^= 0xFF
        with pytest.raises(shmbridge.ChecksumMismatch):
            fr.read()
        fr.unlink()


def test_framed_errors_on_create(shm_name: str) -> None:
    with pytest.raises(ValueError):
        FramedSegment.create(shm_name, -1)
    with FramedSegment.create(shm_name, 1):
        with pytest.raises(FileExistsError):
            FramedSegment.create(shm_name, 1)
    shmbridge.remove(shm_name)
    with pytest.raises(FileNotFoundError):
        FramedSegment.open(shm_name)


def test_size_prefixed_segment(shm_name: str) -> None:
    seg = shmbridge.create_size_prefixed(shm_name, b"hello")
    assert seg.size == 8 + 5
    with SharedMemory(shm_name) as shm:  # the seed's reader: struct.unpack("Q", ...)
        assert struct.unpack("Q", shm.buf[:8])[0] == 5
        assert shmbridge.read_size_prefixed(shm) == b"hello"
        assert shmbridge.size_prefixed_len(shm) == 5
        shmbridge.write_size_prefixed(shm, b"bye")
        assert shmbridge.read_size_prefixed(seg) == b"bye"
        with pytest.raises(shmbridge.OutOfBounds):
            shmbridge.write_size_prefixed(shm, b"too long!")
        shm.set("u64", 0, 6)  # declares more than follows
        with pytest.raises(shmbridge.Truncated):
            shmbridge.read_size_prefixed(shm)
    with pytest.raises(TypeError):
        shmbridge.read_size_prefixed(b"not a mapping")  # type: ignore[arg-type]
    seg.unlink()


def test_size_prefixed_too_small(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=7) as shm:
        with pytest.raises(shmbridge.Truncated):
            shmbridge.size_prefixed_len(shm)
        shm.unlink()


def test_size_prefixed_over_a_file(tmp_path: Path) -> None:
    p = tmp_path / "shm_test"
    p.write_bytes(bytes(8 + 3))
    with shmbridge.map_file(p, "w") as m:
        shmbridge.write_size_prefixed(m, b"abc")
        m.flush()
    assert p.read_bytes() == struct.pack("<Q", 3) + b"abc"
    p.write_bytes(struct.pack("<Q", 100) + b"abc")
    with shmbridge.map_file(p) as m:
        with pytest.raises(shmbridge.Truncated):
            shmbridge.read_size_prefixed(m)


@pytest.mark.parametrize("layout", ["raw", "prefixed", "framed"])
def test_every_accessor_reads_what_the_rust_core_wrote(
    rust_make: Callable[[str, str, bytes], None], shm_name: str, layout: str
) -> None:
    """The interop matrix checks the bytes; this checks each Python accessor on them."""
    data = bytes(range(256)) * 40 + b"tail"
    rust_make({"prefixed": "size-prefixed"}.get(layout, layout), shm_name, data)
    if layout == "raw":
        with SharedMemory(shm_name) as shm:
            assert shm.size == len(data) and bytes(shm.buf) == data
    elif layout == "prefixed":
        with shmbridge.Segment(shm_name, readonly=True) as seg:
            assert shmbridge.size_prefixed_len(seg) == len(data)
            assert shmbridge.read_size_prefixed(seg) == data
            assert bytes(shmbridge.read_size_prefixed(seg, copy=False)) == data
    else:
        with shmbridge.FramedSegment.open(shm_name, readonly=True) as fr:
            assert fr.read() == data
            h = fr.header()
            assert h.payload_len == len(data) and h.checksum is not None
            assert h.kind == "message" and (h.version_major, h.version_minor) == shmbridge.FRAMED_VERSION == (1, 1)
    shmbridge.remove(shm_name)
