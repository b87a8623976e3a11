"""``shmbridge.shared_memory`` as a swap for ``multiprocessing.shared_memory``: every public
name, the private attributes and hooks real code touches, and ``ShareableList`` on both sides
of the swap. (CPython's own tests for the module run in test_cpython_shared_memory.py.)"""

from __future__ import annotations

import os
import pickle
import stat
import sys
import unittest.mock
from multiprocessing import shared_memory as stdlib
from pathlib import Path
from typing import Callable

import pytest

from shmbridge import shared_memory as ours
from _helpers import run_py, shm_exists

SHM = Path("/dev/shm")


def test_every_public_name_of_the_stdlib_module_is_here() -> None:
    public = [n for n in dir(stdlib) if not n.startswith("_")]
    assert {"SharedMemory", "ShareableList"} <= set(public)
    missing = [n for n in public if not hasattr(ours, n)]
    assert missing == []
    assert sorted(ours.__all__) == sorted(stdlib.__all__)
    for n in ("_make_filename", "_SHM_NAME_PREFIX", "_SHM_SAFE_NAME_LENGTH", "_USE_POSIX", "_O_CREX", "_encoding"):
        assert getattr(ours, n) == getattr(stdlib, n) or callable(getattr(ours, n)), n
    from multiprocessing import resource_tracker

    assert ours.resource_tracker is resource_tracker  # 3.11+ has it there; ours on every version


def test_ours_is_a_stdlib_shared_memory_and_overrides_all_of_it() -> None:
    assert issubclass(ours.SharedMemory, stdlib.SharedMemory)
    assert issubclass(ours.ShareableList, stdlib.ShareableList)
    # A method the stdlib adds in a later version would be inherited and act on the stdlib's
    # own (empty) state: notice it here.
    inherited = [
        n
        for n, v in vars(stdlib.SharedMemory).items()
        if callable(v) or isinstance(v, property)
        if n not in vars(ours.SharedMemory) and n not in ("__dict__", "__weakref__", "__init_subclass__")
    ]
    assert inherited == []


def test_private_attributes_behave_as_the_stdlib_s(shm_name: str) -> None:
    a = ours.SharedMemory(shm_name, create=True, size=100)
    try:
        assert a._name == "/" + shm_name and a.name == shm_name
        assert a._size == a.size == 100
        assert a._buf is a.buf
        assert a._flags == os.O_CREAT | os.O_EXCL | os.O_RDWR
        assert a._mode == 0o600 and a._prepend_leading_slash is True
        assert a._fd == -1 and a._mmap is None, "documented: no fd or mmap object of its own"
        b = ours.SharedMemory(shm_name)
        assert b._flags == os.O_RDWR and b._name == "/" + shm_name
        b.close()
        assert b._buf is None and b.buf is None
    finally:
        a.close()
        a.unlink()


def test_unlink_removes_what__name_says(shm_names: Callable[[], str]) -> None:
    one, two = shm_names(), shm_names()
    a = ours.SharedMemory(one, create=True, size=10)
    b = ours.SharedMemory(two, create=True, size=10)
    a._name = "/" + two
    a.unlink()
    assert shm_exists(one) and not shm_exists(two)
    a._name = "/" + one + "\0x"
    with pytest.raises(ValueError):
        a.unlink()
    a._name = "/" + one
    a.unlink()
    assert not shm_exists(one)
    a.close()
    b.close()


def test_the_name_hook_is_the_module_s(shm_names: Callable[[], str]) -> None:
    names = ["/" + shm_names(), "/" + shm_names()]
    with unittest.mock.patch("shmbridge.shared_memory._make_filename", side_effect=names):
        a = ours.SharedMemory(create=True, size=1)
    try:
        assert a._name == names[0] and a.name == names[0][1:]
        # A name that exists is skipped: the next one is tried, as by the stdlib.
        with unittest.mock.patch("shmbridge.shared_memory._make_filename", side_effect=names):
            b = ours.SharedMemory(create=True, size=1)
        assert b._name == names[1]
        b.close()
        b.unlink()
    finally:
        a.close()
        a.unlink()
    real = ours._make_filename()
    assert real.startswith("/psm_") and len(real) == len(stdlib._make_filename())


def test_subclasses_setting__flags_and__mode(shm_names: Callable[[], str]) -> None:
    class OpenOrCreate(ours.SharedMemory):
        _flags = os.O_CREAT | os.O_RDWR

    class WorldReadable(ours.SharedMemory):
        _mode = 0o644

    name = shm_names()
    with pytest.raises(ValueError):
        OpenOrCreate(name)  # nothing there, and no size to create it with
    created = OpenOrCreate(name, size=64)
    assert created.created and created.size == 64
    again = OpenOrCreate(name)
    assert again.size == 64 and not again.created
    again.close()
    created.close()
    created.unlink()
    other = shm_names()
    w = WorldReadable(other, create=True, size=8)
    assert stat.S_IMODE((SHM / other).stat().st_mode) == 0o644
    w.close()
    w.unlink()
    with ours.SharedMemory(other, create=True, size=8, mode=0o640) as m:
        assert m._mode == 0o640 and stat.S_IMODE((SHM / other).stat().st_mode) == 0o640
        m.unlink()


SEED_READER = """
import sys
from shmbridge.shared_memory import SharedMemory     # the swap; the rest is the seed's
import multiprocessing.resource_tracker as rt

shm = SharedMemory(sys.argv[1], create=False)
sys.stdout.write(bytes(shm.buf[:5]).decode())
shm.close()
rt.unregister("/" + sys.argv[1], "shared_memory")
rt.unregister(shm._name, "shared_memory")
"""


def test_the_seed_reader_with_the_swap_leaves_the_segment(shm_name: str) -> None:
    with ours.SharedMemory(shm_name, create=True, size=16) as a:
        a.buf[:5] = b"hello"
        out = run_py(SEED_READER, shm_name)
        assert out.returncode == 0 and out.stdout == "hello"
        # The tracker says it never had the name (it was never told: nothing to undo).
        assert "KeyError" in out.stderr or out.stderr == ""
        assert shm_exists(shm_name), "the reader's exit removed nothing"
        a.unlink()


def test_shareable_list_both_ways(shm_names: Callable[[], str]) -> None:
    values = ["howdy", b"HoWdY", -273.154, 100, None, True, 42]
    mine = ours.ShareableList(values, name=shm_names())
    try:
        assert isinstance(mine, stdlib.ShareableList) and type(mine.shm) is ours.SharedMemory
        theirs = stdlib.ShareableList(name=mine.shm.name)
        assert list(theirs) == values and theirs.format == mine.format
        theirs[3] = 7
        assert mine[3] == 7
        theirs.shm.close()
        if sys.version_info < (3, 13):
            # Attaching registered it with the stdlib's tracker: undo, or it removes ours.
            from multiprocessing import resource_tracker

            resource_tracker.unregister(theirs.shm._name, "shared_memory")
        copy = pickle.loads(pickle.dumps(mine))
        assert type(copy) is ours.ShareableList and list(copy) == list(mine)
        copy.shm.close()
        assert repr(mine).startswith("ShareableList([") and mine.shm.name in repr(mine)
    finally:
        mine.shm.close()
        mine.shm.unlink()
    name = shm_names()
    std = stdlib.ShareableList([1, 2.5, "x"], name=name)
    try:
        attached = ours.ShareableList(name=name)
        assert list(attached) == [1, 2.5, "x"]
        attached[2] = "y"
        assert std[2] == "y"
        attached.shm.close()
    finally:
        std.shm.close()
        std.shm.unlink()


def test_shareable_list_attached_by_a_child_that_exits_survives(shm_name: str) -> None:
    sl = ours.ShareableList(range(5), name=shm_name)
    try:
        out = run_py(
            "import sys\nfrom shmbridge.shared_memory import ShareableList\n"
            "sl = ShareableList(name=sys.argv[1]); sl[0] = 99; print(list(sl)); sl.shm.close()\n",
            shm_name,
        )
        assert out.stdout.strip() == "[99, 1, 2, 3, 4]"
        assert shm_exists(shm_name) and sl[0] == 99
    finally:
        sl.shm.close()
        sl.shm.unlink()
