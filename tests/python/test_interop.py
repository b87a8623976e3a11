"""The stdlib class, shmbridge and the Rust core on the same segments, across real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import shmbridge
from shmbridge import SharedMemory

from _helpers import run_py, shm_exists

STD_CREATOR = """
import sys
from multiprocessing.shared_memory import SharedMemory
shm = SharedMemory(sys.argv[1], create=True, size=256)
shm.buf[:6] = b"stdlib"
print("ready", flush=True)
sys.stdin.readline()                      # the other side writes meanwhile
print(bytes(shm.buf[100:108]).decode(), flush=True)
shm.close()
shm.unlink()
"""


def test_stdlib_creates_shmbridge_attaches(shm_name: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", STD_CREATOR, shm_name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        try:
            assert proc.stdout.readline().strip() == "ready"
            ours = SharedMemory(shm_name)
            assert ours.size == 256
            assert bytes(ours.buf[:6]) == b"stdlib"
            ours.buf[100:108] = b"shmbrdge"
            ours.close()
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "shmbrdge"
            assert proc.wait(30) == 0
        finally:
            proc.kill()
    assert not shm_exists(shm_name)


def test_shmbridge_creates_stdlib_attaches(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=300) as ours:
        ours.buf[:9] = b"shmbridge"
        out = run_py(
            """
            import sys
            from multiprocessing import resource_tracker
            from multiprocessing.shared_memory import SharedMemory
            shm = SharedMemory(sys.argv[1])
            print(shm.size, bytes(shm.buf[:9]).decode())
            shm.buf[200:206] = b"stdlib"
            shm.close()
            # The seed's workaround, needed with the stdlib: otherwise its resource tracker
            # removes our segment when this process exits.
            resource_tracker.unregister(shm._name, "shared_memory")
            """,
            shm_name,
        ).stdout.split()
        assert out == ["300", "shmbridge"]
        assert bytes(ours.buf[200:206]) == b"stdlib"
        assert shm_exists(shm_name)
        ours.unlink()


def test_multiprocessing_child_attaches_by_name(shm_name: str) -> None:
    import multiprocessing as mp

    with SharedMemory(shm_name, create=True, size=100) as shm:
        shm.buf[0:100] = b"a" * 100
        ctx = mp.get_context("spawn")
        proc = ctx.Process(target=_modify, args=(shm_name,))
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
        assert bytes(shm.buf[:100]) == b"b" * 50 + b"a" * 50
        shm.unlink()


def _modify(name: str) -> None:
    shm = SharedMemory(name)
    assert shm.buf is not None
    shm.buf[0:50] = b"b" * 50
    shm.close()


def _make_with_core(core_peer: str, layout: str, name: str, data: bytes, tmp_path: Path) -> None:
    src = tmp_path / f"{name}.in"
    src.write_bytes(data)
    out = subprocess.run(
        [core_peer, "make", layout, name, str(src), "--keep"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "ready"


def test_attaching_never_removes_a_segment_another_program_owns(
    core_peer: str, shm_name: str, tmp_path: Path
) -> None:
    """The resource-tracker trap: a Rust process owns the segment; a Python process attaches
    and exits. With shmbridge the segment stays; with the stdlib (3.8-3.12, and 3.13 with its
    default track=True) the resource tracker removes it."""
    _make_with_core(core_peer, "raw", shm_name, b"owned by rust" + bytes(51), tmp_path)
    assert shm_exists(shm_name)

    run_py(
        """
        import sys
        from shmbridge import SharedMemory
        shm = SharedMemory(sys.argv[1])
        assert bytes(shm.buf[:13]) == b"owned by rust", bytes(shm.buf[:13])
        shm.close()
        """,
        shm_name,
    )
    assert shm_exists(shm_name), "shmbridge must never remove a segment it only attached to"

    # Also when the attaching process dies without closing anything.
    run_py(
        """
        import os, sys
        from shmbridge import SharedMemory
        shm = SharedMemory(sys.argv[1])
        os._exit(0) if len(sys.argv) > 2 else None
        """,
        shm_name,
    )
    assert shm_exists(shm_name)

    # The same with the stdlib: its resource tracker unlinks the Rust process's segment.
    proc = run_py(
        """
        import sys
        from multiprocessing.shared_memory import SharedMemory
        shm = SharedMemory(sys.argv[1])
        shm.close()
        """,
        shm_name,
    )
    lost = not shm_exists(shm_name)
    assert lost, f"expected the stdlib on {sys.version_info[:2]} to remove the segment"
    assert "leaked shared_memory" in proc.stderr or sys.version_info >= (3, 13) or lost


@pytest.mark.skipif(sys.version_info < (3, 13), reason="track= is new in 3.13")
def test_stdlib_313_keeps_it_only_with_track_false(
    core_peer: str, shm_name: str, tmp_path: Path
) -> None:
    _make_with_core(core_peer, "raw", shm_name, bytes(64), tmp_path)
    run_py(
        """
        import sys
        from multiprocessing.shared_memory import SharedMemory
        SharedMemory(sys.argv[1], track=False).close()
        """,
        shm_name,
    )
    assert shm_exists(shm_name)


@pytest.mark.parametrize("layout", ["raw", "prefixed", "framed"])
def test_core_writes_python_reads(core_peer: str, shm_name: str, tmp_path: Path, layout: str) -> None:
    data = bytes(range(256)) * 40 + b"tail"
    _make_with_core(core_peer, layout, shm_name, data, tmp_path)
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


@pytest.mark.parametrize("layout", ["raw", "prefixed", "framed"])
def test_python_writes_core_reads(core_peer: str, shm_name: str, tmp_path: Path, layout: str) -> None:
    data = b"from python " * 1000
    if layout == "raw":
        keep: object = SharedMemory(shm_name, create=True, size=len(data))
        keep.buf[:] = data  # type: ignore[attr-defined]
    elif layout == "prefixed":
        keep = shmbridge.create_size_prefixed(shm_name, data)
    else:
        keep = shmbridge.FramedSegment.create(shm_name, 64 * 1024)
        keep.write(data)  # type: ignore[attr-defined]
    out = tmp_path / "out"
    subprocess.run([core_peer, "read", layout, shm_name, str(out)], check=True, timeout=60)
    assert out.read_bytes() == data
    shmbridge.remove(shm_name)
