"""Hostile and shrinking segments (issue 10), through the Python package.

A segment shrunk by another process before or while it is read, a sparse segment read on a
full /dev/shm (a private mount namespace with a tiny tmpfs), a FIFO and a short segment under
the name, another user's segment (root gives it to nobody), special files as targets, sources
whose metadata size is 0. Each must raise a clear exception, never crash, hang or succeed
with wrong data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import pytest

import shmbridge
from _helpers import SHM

NOBODY = 65534
is_root = os.geteuid() == 0


def test_reads_of_a_shrunk_segment_raise_truncated(shm_name: str) -> None:
    shm = shmbridge.SharedMemory(shm_name, create=True, size=1 << 20)
    try:
        os.truncate(SHM / shm_name, 8192)
        with pytest.raises(shmbridge.Truncated, match=shm_name):
            shm.read()
        with pytest.raises(shmbridge.Truncated):
            shm.read(4096, 8192)
        assert shm.read(0, 8192) == bytes(8192)
        with pytest.raises(shmbridge.Truncated):
            shm.write(100_000, b"past the end")
        assert os.stat(SHM / shm_name).st_size == 8192, "a write never re-grows the segment"
    finally:
        shm.close()


def test_framed_reads_of_a_shrunk_segment_raise_truncated(shm_name: str) -> None:
    f = shmbridge.FramedSegment.create(shm_name, 1 << 20)
    try:
        f.write(os.urandom(1 << 20))
        os.truncate(SHM / shm_name, 5000)
        with pytest.raises(shmbridge.Truncated):
            f.read()
        with pytest.raises(shmbridge.Truncated):
            f.readinto(bytearray(1 << 20))
        os.truncate(SHM / shm_name, 0)
        with pytest.raises(shmbridge.Truncated):
            f.read()
    finally:
        f.close()


def test_a_read_racing_a_shrink_raises_instead_of_crashing(shm_name: str) -> None:
    size = 32 << 20
    shm = shmbridge.SharedMemory(shm_name, create=True, size=size)
    out = bytearray(size)
    timer = threading.Timer(0.02, os.truncate, (SHM / shm_name, 4096))
    timer.start()
    try:
        with pytest.raises(shmbridge.Truncated):
            for _ in range(100_000):
                shm.mapping.readinto(out)
    finally:
        timer.join()
        shm.close()


FULL_CHILD = """
import os, sys
import shmbridge
assert any(l.startswith("shmb_t_full /dev/shm") for l in open("/proc/self/mounts")), "private ns"
fd = os.open("/dev/shm/sparse", os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(fd, 8 << 20)   # what the stdlib does: no pages reserved
os.close(fd)
with open("/dev/shm/filler", "wb") as f:
    try:
        while True:
            f.write(b"x" * 65536)
            f.flush()
    except OSError:
        pass
shm = shmbridge.SharedMemory("sparse")
assert shm.read() == bytes(8 << 20), "holes read as zeros"
try:
    shm.write(6 << 20, b"y" * 100_000)
except OSError as e:
    assert "no memory" in str(e) or "space" in str(e), e
else:
    raise AssertionError("a write into a hole on a full /dev/shm must fail")
try:
    shmbridge.FramedSegment.open("sparse", readonly=True)
except shmbridge.BadMagic:
    pass
else:
    raise AssertionError("bad magic expected")
shm.close()
print("CHILD-OK")
"""


@pytest.mark.skipif(not is_root or shutil.which("unshare") is None, reason="needs root and unshare")
def test_a_sparse_segment_on_a_full_dev_shm_raises_instead_of_sigbus() -> None:
    script = 'mount -t tmpfs -o size=4m shmb_t_full /dev/shm && exec "$0" -c "$1"'
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script, sys.executable, FULL_CHILD],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "CHILD-OK" in proc.stdout, proc.stderr


def test_a_fifo_under_the_name_fails_at_once(shm_name: str, tmp_path: Path) -> None:
    os.mkfifo(SHM / shm_name)
    with pytest.raises(ValueError, match="FIFO"):
        shmbridge.SharedMemory(shm_name, readonly=True)
    with pytest.raises(ValueError, match="FIFO"):
        shmbridge.SharedMemory(shm_name)
    with pytest.raises(ValueError, match="FIFO"):
        shmbridge.FramedSegment.open(shm_name, readonly=True, timeout=3600)
    with pytest.raises(ValueError, match="FIFO"):
        shmbridge.recv_file(shm_name, tmp_path / "out", timeout=3600)
    assert not (tmp_path / "out").exists()


def test_short_segments_are_bad_magic_at_once(shm_names: Callable[[], str], tmp_path: Path) -> None:
    for content in (b"SHMBRIDG\x01\x00", b"SHMBRIDG", bytes(4096)):
        name = shm_names()
        (SHM / name).write_bytes(content)
        with pytest.raises(shmbridge.BadMagic):
            shmbridge.FramedSegment.open(name, readonly=True, timeout=3600)
        with pytest.raises(shmbridge.BadMagic):
            shmbridge.recv_file(name, tmp_path / "out", timeout=3600)


@pytest.mark.skipif(not is_root, reason="giving a segment to another user needs root")
def test_receivers_refuse_other_users_segments_unless_allowed(
    shm_names: Callable[[], str], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"nobody's bytes")
    name = shm_names()
    shmbridge.send_file(src, name)
    os.chown(SHM / name, NOBODY, NOBODY)
    out = tmp_path / "out"
    with pytest.raises(PermissionError, match="65534"):
        shmbridge.recv_file(name, out)
    assert not out.exists() and (SHM / name).exists()
    with pytest.raises(PermissionError):
        shmbridge.recv_file(name, out, owner=12345)
    with pytest.raises(ValueError):
        shmbridge.recv_file(name, out, owner="nobody")
    shmbridge.recv_file(name, out, owner=[12345, NOBODY], keep=True)
    assert out.read_bytes() == b"nobody's bytes"
    shmbridge.recv_file(name, out, owner="any")

    stream = shm_names()
    w = shmbridge.StreamWriter(stream, capacity=4096, total=3)
    try:
        w.write(b"abc")
        os.chown(SHM / stream, NOBODY, NOBODY)
        with pytest.raises(PermissionError):
            shmbridge.StreamReader(stream, timeout=10)
        r = shmbridge.StreamReader(stream, timeout=10, owner=NOBODY)
        assert r.read(3) == b"abc"
        r.close()
    finally:
        w.close()


def test_recv_writes_only_regular_files(shm_name: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"payload")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    shmbridge.send_file(src, shm_name)
    with pytest.raises(ValueError, match="FIFO"):
        shmbridge.recv_file(shm_name, fifo, timeout=10)
    assert fifo.is_fifo() and (SHM / shm_name).exists()
    with pytest.raises(ValueError, match="segment being received"):
        shmbridge.recv_file(shm_name, SHM / shm_name, timeout=10)
    assert (SHM / shm_name).stat().st_size == 128 + 7
    shmbridge.recv_file(shm_name, tmp_path / "out", timeout=10)
    assert (tmp_path / "out").read_bytes() == b"payload"


@pytest.mark.parametrize("mode", ["one-shot", "stream"])
def test_sources_whose_metadata_size_is_zero_arrive_whole(
    mode: str, shm_name: str, tmp_path: Path
) -> None:
    want = Path("/proc/version").read_bytes()
    assert os.stat("/proc/version").st_size == 0 and want
    out = tmp_path / "out"
    result: list = []
    sender = threading.Thread(
        target=lambda: result.append(
            shmbridge.send_file("/proc/version", shm_name, transfer=mode, segment_size=400, timeout=30)
        )
    )
    sender.start()
    report = shmbridge.recv_file(shm_name, out, timeout=30)
    sender.join()
    assert out.read_bytes() == want
    assert report.bytes == len(want) == result[0].bytes


def test_a_stream_shrunk_below_its_ring_raises_truncated(shm_name: str) -> None:
    data = os.urandom(256 << 10)
    w = shmbridge.StreamWriter(shm_name, capacity=64 << 10, total=len(data))
    r = shmbridge.StreamReader(shm_name, timeout=10)
    try:
        w.write(data[: 64 << 10])
        os.truncate(SHM / shm_name, 1000)
        with pytest.raises(shmbridge.Truncated):
            r.read(1 << 20)
    finally:
        r.close()
        w.close()


_GUARD_CHILD = r"""
import os, sys
import shmbridge
a, b = sys.argv[1], sys.argv[2]
shm = shmbridge.SharedMemory(a, create=True, size=1 << 20)
shm.write(600_000, b"data")
view = shm.buf                       # the mapping itself: a zero-copy view
os.truncate("/dev/shm/" + a, 8192)   # another process shrinks the segment
print("past the end reads", view[600_000])
view[700_000] = 1                    # lands in a private page, not in the segment
print("size", os.stat("/dev/shm/" + a).st_size)
try:
    shm.read(600_000, 4)
except shmbridge.Truncated as e:
    print("read:", type(e).__name__, a in str(e))
del view
shm.close()
f = shmbridge.FramedSegment.create(b, 4096)
f.write(b"first")
os.truncate("/dev/shm/" + b, 0)      # the header page itself goes
for what in ("write", "read"):
    try:
        f.write(b"second") if what == "write" else f.read()
    except shmbridge.Truncated as e:
        print(what + ":", type(e).__name__, b in str(e))
f.close()
print("alive")
"""


@pytest.mark.parametrize("faulthandler", [False, True], ids=["plain", "faulthandler"])
def test_a_view_past_a_shrunk_end_reads_zeros_instead_of_crashing(
    shm_names: Callable[[], str], faulthandler: bool
) -> None:
    """The SIGBUS guard (crates/shmbridge/src/sys/linux_guard.rs): touching a page that another
    process cut off, through a zero-copy view or the header words, no longer kills the process;
    the next checked call raises Truncated naming the segment. Also with faulthandler enabled
    before the import (pytest's and `python -X faulthandler`'s order), whose handler the guard
    passes other faults on to. In a child, so that a failure is a dead child, not a dead run."""
    a, b = shm_names(), shm_names()
    flags = ["-X", "faulthandler"] if faulthandler else []
    out = subprocess.run(
        [sys.executable, *flags, "-c", _GUARD_CHILD, a, b], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    assert out.stdout.split("\n")[:-1] == [
        "past the end reads 0",
        "size 8192",
        "read: Truncated True",
        "write: Truncated True",
        "read: Truncated True",
        "alive",
    ], out.stdout


def test_a_sigbus_elsewhere_still_kills_the_process(shm_name: str, tmp_path: Path) -> None:
    """The guard takes only faults in shmbridge's own mappings: a fault in a mapping the
    program made itself (the stdlib's mmap here) still ends the process with SIGBUS."""
    code = (
        "import mmap, os, sys, shmbridge\n"
        "s = shmbridge.SharedMemory(sys.argv[1], create=True, size=4096)\n"
        "s.close(); s.unlink()\n"
        "fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "os.ftruncate(fd, 8192)\n"
        "m = mmap.mmap(fd, 8192)\n"
        "os.ftruncate(fd, 0)\n"
        "print(m[5000])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, shm_name, str(tmp_path / "f")], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == -7, (out.returncode, out.stdout, out.stderr)
