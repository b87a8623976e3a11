"""CPython's own ``SharedMemory`` and ``ShareableList`` tests, run against shmbridge.

The interpreter ships them in ``test._test_multiprocessing`` (class ``_TestSharedMemory``; the
set of tests differs between 3.9, 3.11 and 3.13, and each version runs its own). They use the
module through the name ``shared_memory`` and patch ``multiprocessing.shared_memory`` by
string, so for this class the stdlib module is replaced by ``shmbridge.shared_memory``
everywhere the tests and ``multiprocessing.managers`` (the ``SharedMemoryManager`` server) look
it up, with the ``fork`` start method so child processes keep the replacement.

Tests that start a fresh interpreter (``script_helper``, ``subprocess``) run the real stdlib in
that child; they still check that shmbridge's class in this process gets along with it.

Known gaps are strict expected failures (listed in ``KNOWN_GAPS`` with the reason): they fail
the suite the day they start passing. Nothing is skipped.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.managers
import sys
import unittest
from typing import Any, ClassVar, Dict, List, Optional

import pytest

import shmbridge.shared_memory

_tm: Any = pytest.importorskip(
    "test._test_multiprocessing", reason="this interpreter does not ship CPython's test package"
)
_stdlib_shared_memory = sys.modules["multiprocessing.shared_memory"]

# test name -> why it fails against shmbridge, by design. Empty today: every test of 3.9, 3.11
# and 3.13 passes.
KNOWN_GAPS: Dict[str, str] = {}

# Where the stdlib module is looked up: (object, attribute).
_PATCH_POINTS = [
    (multiprocessing, "shared_memory"),
    (_tm, "shared_memory"),
    (multiprocessing.managers, "shared_memory"),
]


class TestCPythonSharedMemory(_tm._TestSharedMemory, _tm.ProcessesMixin, unittest.TestCase):  # type: ignore[misc]
    """``_TestSharedMemory`` with ``shared_memory`` = ``shmbridge.shared_memory``."""

    _saved: ClassVar[List[Any]] = []
    _start_method: ClassVar[Optional[str]] = None

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls._saved = [(obj, attr, getattr(obj, attr)) for obj, attr in _PATCH_POINTS]
        cls._saved.append((sys.modules, "multiprocessing.shared_memory", _stdlib_shared_memory))
        for obj, attr in _PATCH_POINTS:
            setattr(obj, attr, shmbridge.shared_memory)
        sys.modules["multiprocessing.shared_memory"] = shmbridge.shared_memory  # type: ignore[assignment]
        cls._start_method = multiprocessing.get_start_method(allow_none=True)
        multiprocessing.set_start_method("fork", force=True)

    @classmethod
    def tearDownClass(cls) -> None:
        multiprocessing.set_start_method(cls._start_method, force=True)
        for obj, attr, value in cls._saved:
            if obj is sys.modules:
                sys.modules[attr] = value
            else:
                setattr(obj, attr, value)
        super().tearDownClass()

    def test_the_patch_is_in_place(self) -> None:
        """Guard: the tests above really ran against shmbridge."""
        self.assertIs(_tm.shared_memory, shmbridge.shared_memory)
        sms = _tm.shared_memory.SharedMemory(create=True, size=16)
        try:
            self.assertIsInstance(sms, shmbridge.shared_memory.SharedMemory)
            self.assertIs(type(sms), shmbridge.shared_memory.SharedMemory)
            sl = _tm.shared_memory.ShareableList([1, "two"])
            self.assertIs(type(sl.shm), shmbridge.shared_memory.SharedMemory)
            sl.shm.close()
            sl.shm.unlink()
        finally:
            sms.close()
            sms.unlink()


for _name, _reason in KNOWN_GAPS.items():
    setattr(
        TestCPythonSharedMemory,
        _name,
        pytest.mark.xfail(strict=True, reason=_reason)(getattr(_tm._TestSharedMemory, _name)),
    )


def test_this_interpreter_runs_its_own_tests() -> None:
    """The class has the tests this version ships (so a rename upstream is noticed)."""
    names = [n for n in dir(_tm._TestSharedMemory) if n.startswith("test_")]
    assert "test_shared_memory_basics" in names
    assert "test_shared_memory_ShareableList_basics" in names
    assert len(names) >= 8, names
