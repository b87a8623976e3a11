"""File mappings, anonymous memory across fork, listing and removing, the buffer protocol."""

from __future__ import annotations

import gc
import os
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import shmbridge
from shmbridge import SharedMemory

from _helpers import shm_exists


def test_map_file_read_only_zero_copy(tmp_path: Path) -> None:
    p = tmp_path / "data.txt"
    text = "héllo wörld\n" * 1000
    p.write_text(text, encoding="utf8")
    with shmbridge.map_file(p) as m:
        assert m.readonly and m.kind == "file" and m.size == p.stat().st_size
        assert str(m.buf, "utf8") == text
        assert zlib.crc32(m.buf) == zlib.crc32(p.read_bytes())
        arr = np.frombuffer(m.buf, dtype=np.uint8)
        assert not arr.flags.writeable
        with pytest.raises(TypeError):
            m.buf[0] = 1
        with pytest.raises(PermissionError):
            m.write(0, b"x")
        with pytest.raises(ValueError):  # numpy refuses a writable view of read-only memory
            np.frombuffer(m.buf, dtype=np.uint8).setflags(write=True)
    assert arr[:5].tobytes() == text.encode()[:5]  # still mapped: the array holds it


def test_map_file_read_write_and_copy_on_write(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello world")
    with shmbridge.map_file(str(p), "c") as cow:
        cow.buf[0:5] = b"HELLO"
        assert cow.read() == b"HELLO world"
    assert p.read_bytes() == b"hello world"
    with shmbridge.map_file(p, "w") as rw:
        rw.buf[6:11] = b"WORLD"
        rw.flush()
    assert p.read_bytes() == b"hello WORLD"
    with shmbridge.map_file(p, offset=6, size=5) as part:
        assert bytes(part.buf) == b"WORLD"


def test_map_file_bad_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        shmbridge.map_file(tmp_path / "missing")
    with pytest.raises(ValueError):
        shmbridge.map_file(tmp_path)  # a directory
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    with pytest.raises(ValueError):
        shmbridge.map_file(p, "rw+x")
    with pytest.raises(shmbridge.OutOfBounds):
        shmbridge.map_file(p, offset=2, size=5)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with shmbridge.map_file(empty) as m:
        assert len(m) == 0 and bytes(m.buf) == b""


def test_anonymous_memory_survives_fork() -> None:
    m = shmbridge.anonymous(100)
    assert m.kind == "anonymous" and not m.readonly
    pid = os.fork()
    if pid == 0:  # child
        try:
            m.buf[0:100] = b"a" * 100
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert status == 0
    assert m.read(0, 100) == b"a" * 100
    with pytest.raises(ValueError):
        shmbridge.anonymous(0)
    with pytest.raises(ValueError):
        shmbridge.anonymous(-5)


def test_list_info_remove_exists(shm_names) -> None:  # type: ignore[no-untyped-def]
    raw, framed = shm_names(), shm_names()
    a = SharedMemory(raw, create=True, size=300, mode=0o640)
    f = shmbridge.FramedSegment.create(framed, 1000)
    f.write(b"xyz")
    infos = {i.name: i for i in shmbridge.list_segments()}
    assert infos[raw].size == 300 and infos[raw].permissions == 0o640 and infos[raw].layout == "unframed"
    assert infos[raw].uid == os.getuid() and infos[raw].mtime_ns > 0
    assert infos[framed].layout == "framed"
    h = infos[framed].header
    assert h is not None and h.payload_len == 3 and h.capacity == 1000
    one = shmbridge.segment_info(framed)
    assert one.size == 1128 and "framed" in repr(one)
    assert shmbridge.exists(raw)
    shmbridge.remove(raw)
    assert not shmbridge.exists(raw) and not shm_exists(raw)
    with pytest.raises(FileNotFoundError):
        shmbridge.remove(raw)
    with pytest.raises(FileNotFoundError):
        shmbridge.segment_info(raw)
    with pytest.raises(ValueError):
        shmbridge.remove("a/b")
    a.close()
    f.close()
    shmbridge.remove(framed)


def test_segment_open_modes(shm_name: str) -> None:
    first = shmbridge.Segment(shm_name, "open_or_create", 100)
    second = shmbridge.Segment(shm_name, "open_or_create", 50)
    assert first.created and not second.created and second.size == 100
    assert second.real_size() == 100
    with pytest.raises(ValueError):
        shmbridge.Segment(shm_name, "sometimes", 10)
    with pytest.raises(ValueError):
        shmbridge.Segment(shm_name, "create_only", -1)
    assert "Segment(" in repr(first)
    first.close()
    second.unlink()
    second.close()


def test_buffer_sources_and_overlap(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=64) as a:
        m = a.mapping
        m.write(0, bytearray(b"abcdef"))
        m.write(6, memoryview(b"ghij"))
        m.write(10, np.array([1, 2], dtype=np.uint8))
        assert m.read(0, 12) == b"abcdefghij\x01\x02"
        m.write(2, a.buf[0:8])  # overlapping source in the same mapping
        assert m.read(0, 10) == b"ababcdefgh"
        out = bytearray(4)
        assert m.readinto(out, 2) == 4 and out == b"abcd"
        with pytest.raises(BufferError):  # CPython's error for a read-only buffer
            m.readinto(memoryview(b"immutable"))
        with pytest.raises(TypeError):
            m.write(0, "a str is not bytes")  # type: ignore[arg-type]
        m.fill(0xAB, 60)
        assert m.read(60) == b"\xab" * 4
        m.check()
        a.unlink()


def test_long_copies_release_the_gil(shm_name: str) -> None:
    size = 256 << 20
    with SharedMemory(shm_name, create=True, size=size) as a:
        src = bytes(size)
        ticks = []
        stop = threading.Event()

        def tick() -> None:
            while not stop.is_set():
                ticks.append(time.monotonic())
                time.sleep(0.0005)

        t = threading.Thread(target=tick)
        t.start()
        time.sleep(0.01)
        before = len(ticks)
        for _ in range(4):
            a.write(0, src)
            a.read()
        stop.set()
        t.join()
        assert len(ticks) > before + 2, "the other thread never ran during the copies"
        a.unlink()
    del src
    gc.collect()


def test_buffer_exporter_without_mapping_raises() -> None:
    with pytest.raises(BufferError):
        memoryview(shmbridge._native.BufferExporter())
