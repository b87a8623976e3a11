"""shmbridge.SharedMemory against the stdlib's contract, and beside the stdlib and the Rust core."""

from __future__ import annotations

import gc
import os
import pickle
import stat
import struct
import sys
from multiprocessing import shared_memory as std_shm
from typing import Callable

import numpy as np
import pytest

import shmbridge
from shmbridge import SharedMemory

from _helpers import SHM, run_py, shm_exists


def test_create_attach_attributes_repr(shm_name: str) -> None:
    a = SharedMemory(shm_name, create=True, size=100)
    try:
        assert a.name == shm_name
        assert a.size == 100
        assert a.buf is not None and len(a.buf) == 100 and not a.buf.readonly
        assert bytes(a.buf) == bytes(100)
        assert repr(a) == f"SharedMemory({shm_name!r}, size=100)"
        assert a.created and not a.readonly
        b = SharedMemory(shm_name)
        assert b.size == 100 and not b.created
        a.buf[0:5] = b"hello"
        assert bytes(b.buf[0:5]) == b"hello"
        b.close()
    finally:
        a.close()
        a.unlink()
    assert not shm_exists(shm_name)


def test_random_name_like_stdlib() -> None:
    a = SharedMemory(create=True, size=10)
    try:
        # The stdlib's own names: "psm_" and 8 hex digits; `_name` has the leading slash.
        from multiprocessing import shared_memory as stdlib

        assert a.name.startswith("psm_") and len(a.name) == len(stdlib._make_filename()) - 1 == 12
        assert a._name == "/" + a.name
        assert shm_exists(a.name)
    finally:
        a.close()
        a.unlink()


def test_the_one_import_change_is_a_module_too() -> None:
    from shmbridge import shared_memory

    assert shared_memory.SharedMemory is SharedMemory


def test_size_is_the_real_size_and_attach_ignores_size(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=4097) as a:
        b = SharedMemory(shm_name, size=10)  # the stdlib ignores size when attaching
        assert b.size == 4097 and len(b.buf) == 4097
        b.close()
        a.unlink()


def test_pickles_by_name(shm_name: str) -> None:
    a = SharedMemory(shm_name, create=True, size=64)
    try:
        assert a.__reduce__() == (SharedMemory, (shm_name, False, 64))
        a.buf[0] = 42
        b = pickle.loads(pickle.dumps(a))
        assert isinstance(b, SharedMemory) and b.name == shm_name and b.buf[0] == 42
        assert not b.created
        b.close()
    finally:
        a.close()
        a.unlink()


def test_close_is_idempotent_and_unlink_after_close(shm_name: str) -> None:
    a = SharedMemory(shm_name, create=True, size=8)
    a.close()
    a.close()
    assert a.buf is None and a.closed
    assert a.size == 8 and a.name == shm_name
    a.unlink()
    with pytest.raises(FileNotFoundError):
        a.unlink()


def test_close_with_live_memoryviews_and_numpy(shm_name: str) -> None:
    a = SharedMemory(shm_name, create=True, size=4096)
    a.buf[:4] = b"abcd"
    view = a.buf[:]  # the seed's `data = shm.buf[:]`
    sub = a.buf[1:3]
    arr = np.frombuffer(a.buf, dtype=np.uint8)
    arr2 = np.ndarray((1024,), dtype=np.int32, buffer=a.buf)
    a.close()  # the stdlib raises BufferError here
    a.unlink()
    # Every export is still valid: the mapping lives until the last one goes.
    assert bytes(view[:4]) == b"abcd" and bytes(sub) == b"bc"
    assert arr[:4].tobytes() == b"abcd"
    arr2[1] = 7
    assert view[4] == 7
    del view, sub, arr
    gc.collect()
    assert arr2[1] == 7
    del arr2
    gc.collect()


def test_stdlib_raises_buffererror_where_we_do_not(shm_name: str) -> None:
    std = std_shm.SharedMemory(shm_name, create=True, size=16)
    try:
        data = std.buf[:]
        with pytest.raises(BufferError):
            std.close()
        del data
    finally:
        std.close()
        std.unlink()


def test_numpy_round_trip(shm_name: str) -> None:
    src = np.arange(1000, dtype=np.float64)
    with SharedMemory(shm_name, create=True, size=src.nbytes) as a:
        dst = np.ndarray(src.shape, dtype=src.dtype, buffer=a.buf)
        dst[:] = src
        b = SharedMemory(shm_name, readonly=True)
        back = np.frombuffer(b.buf, dtype=np.float64)
        assert np.array_equal(back, src)
        assert not back.flags.writeable  # read-only attach: read-only buffer
        assert a.read(8, 8) == struct.pack("d", 1.0)
        b.close()
        a.unlink()


def test_mode_sets_exact_permissions(shm_name: str) -> None:
    old = os.umask(0o077)
    try:
        with SharedMemory(shm_name, create=True, size=10, mode=0o644) as a:
            assert stat.S_IMODE(os.stat(SHM / shm_name).st_mode) == 0o644
            assert a.permissions() == 0o644
            a.unlink()
        with SharedMemory(shm_name, create=True, size=10) as a:
            assert stat.S_IMODE(os.stat(SHM / shm_name).st_mode) == 0o600
            a.unlink()
    finally:
        os.umask(old)


def test_readonly_attach(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=10) as a:
        r = SharedMemory(shm_name, readonly=True)
        assert r.readonly and r.buf is not None and r.buf.readonly
        with pytest.raises(TypeError):
            r.buf[0] = 1  # memoryview's own error for read-only memory
        with pytest.raises(PermissionError):
            r.write(0, b"x")
        with pytest.raises(PermissionError):
            r.set("u8", 0, 1)
        r.close()
        a.unlink()


def test_typed_fields_match_struct(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=64) as a:
        a.buf[4:8] = struct.pack("i", -1)
        assert a.get("i32", 4) == -1 and a.get("i", 4) == -1
        a.set("u32", 8, 6666)
        assert struct.unpack("I", a.buf[8:12])[0] == 6666
        a.set("f32", 12, 1.5)
        assert struct.unpack("f", a.buf[12:16])[0] == 1.5
        a.set("f64", 16, -2.25)
        assert a.get("d", 16) == -2.25
        a.set("u64", 24, 2**64 - 1)
        assert a.get("Q", 24) == 2**64 - 1
        a.set("i8", 32, -128)
        assert a.get("b", 32) == -128
        a.set("u16", 33, 65535)  # any alignment
        assert a.get("H", 33) == 65535
        a.unlink()


def test_track_true_removes_a_created_segment_at_exit(shm_names) -> None:  # type: ignore[no-untyped-def]
    tracked, untracked = shm_names(), shm_names()
    run_py(
        """
        import sys
        from shmbridge import SharedMemory
        a = SharedMemory(sys.argv[1], create=True, size=10, track=True)
        b = SharedMemory(sys.argv[2], create=True, size=10)
        c = SharedMemory(sys.argv[2], track=True)  # attaching: track is ignored
        """,
        tracked,
        untracked,
    )
    assert not shm_exists(tracked)
    assert shm_exists(untracked)


def test_track_true_in_a_forked_child_leaves_the_parents_segment(shm_name: str) -> None:
    a = SharedMemory(shm_name, create=True, size=10, track=True)
    try:
        pid = os.fork()
        if pid == 0:
            import atexit

            atexit._run_exitfuncs()
            os._exit(0)
        os.waitpid(pid, 0)
        assert shm_exists(shm_name)
    finally:
        a.close()
        a.unlink()


# --- bad input ---------------------------------------------------------------------------


def test_negative_size_is_valueerror(shm_name: str) -> None:
    with pytest.raises(ValueError, match="'size' must be a positive integer"):
        SharedMemory(shm_name, create=True, size=-1)
    with pytest.raises(ValueError):
        std_shm.SharedMemory(shm_name, create=True, size=-1)


def test_zero_size_on_create_is_valueerror(shm_name: str) -> None:
    with pytest.raises(ValueError, match="different from zero"):
        SharedMemory(shm_name, create=True, size=0)
    assert not shm_exists(shm_name)


def test_missing_name_is_valueerror() -> None:
    with pytest.raises(ValueError, match="'name' can only be None if create=True"):
        SharedMemory()
    with pytest.raises(ValueError):
        std_shm.SharedMemory()


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 300, "nul\0byte"])
def test_invalid_names_are_valueerror(bad: str) -> None:
    with pytest.raises(ValueError):
        SharedMemory(bad, create=True, size=10)


def test_exists_and_missing(shm_name: str) -> None:
    with pytest.raises(FileNotFoundError):
        SharedMemory(shm_name)
    with SharedMemory(shm_name, create=True, size=10) as a:
        with pytest.raises(FileExistsError) as info:
            SharedMemory(shm_name, create=True, size=10)
        assert info.value.errno == 17
        a.unlink()


def test_permission_denied(shm_name: str) -> None:
    if os.geteuid() == 0:
        # root ignores permission bits; a read-only mapping still refuses writes.
        with SharedMemory(shm_name, create=True, size=10, mode=0o400) as a:
            r = SharedMemory(shm_name, readonly=True)
            with pytest.raises(PermissionError):
                r.write(0, b"x")
            r.close()
            a.unlink()
        return
    with SharedMemory(shm_name, create=True, size=10, mode=0o400) as a:
        with pytest.raises(PermissionError):
            SharedMemory(shm_name)
        a.unlink()


def test_writes_past_the_end_raise(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=16) as a:
        with pytest.raises(shmbridge.OutOfBounds):
            a.write(10, b"x" * 7)
        with pytest.raises(IndexError):  # OutOfBounds is an IndexError too
            a.set("u64", 9, 1)
        with pytest.raises(shmbridge.OutOfBounds):
            a.get("u32", 13)
        with pytest.raises(shmbridge.OutOfBounds):
            a.read(-1, 1)
        with pytest.raises(ValueError):
            a.buf[10:20] = b"x" * 10  # memoryview's own check
        with pytest.raises(IndexError):
            a.buf[16] = 1
        a.write(9, b"x" * 7)  # exactly to the end is fine
        a.unlink()


def test_out_of_range_values_and_unknown_types(shm_name: str) -> None:
    with SharedMemory(shm_name, create=True, size=16) as a:
        with pytest.raises(ValueError):
            a.set("u8", 0, 256)
        with pytest.raises(ValueError):
            a.set("i8", 0, -129)
        with pytest.raises(ValueError):
            a.get("u128", 0)
        with pytest.raises(ValueError):
            a.buf[3] = 256  # as in the seed's program2 comment
        a.unlink()


def test_using_a_closed_object_raises(shm_name: str) -> None:
    a = SharedMemory(shm_name, create=True, size=16)
    mapping = a.mapping
    a.close()
    with pytest.raises(shmbridge.ClosedError):
        a.get("u8", 0)
    with pytest.raises(ValueError):  # ClosedError is a ValueError, as for closed files
        a.write(0, b"x")
    with pytest.raises(shmbridge.Error):
        a.read()
    with pytest.raises(shmbridge.ClosedError):
        mapping.buf
    with pytest.raises(shmbridge.ClosedError):
        mapping.read()
    assert a.buf is None
    a.unlink()


def test_native_segment_closed_raises(shm_name: str) -> None:
    seg = shmbridge.Segment(shm_name, "create_only", 10)
    seg.close()
    assert seg.closed
    with pytest.raises(shmbridge.ClosedError):
        seg.permissions()
    with pytest.raises(shmbridge.ClosedError):
        seg.mapping.get("u8", 0)
    seg.unlink()


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


def test_attaching_never_removes_a_segment_another_program_owns(
    rust_make: Callable[[str, str, bytes], None], shm_name: str
) -> None:
    """The resource-tracker trap: a Rust process owns the segment; a Python process attaches
    and exits. With shmbridge the segment stays; with the stdlib (3.8-3.12, and 3.13 with its
    default track=True) the resource tracker removes it."""
    rust_make("raw", shm_name, b"owned by rust" + bytes(51))
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
    rust_make: Callable[[str, str, bytes], None], shm_name: str
) -> None:
    rust_make("raw", shm_name, bytes(64))
    run_py(
        """
        import sys
        from multiprocessing.shared_memory import SharedMemory
        SharedMemory(sys.argv[1], track=False).close()
        """,
        shm_name,
    )
    assert shm_exists(shm_name)
