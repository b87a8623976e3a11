"""``SharedMemory``: a drop-in for :class:`multiprocessing.shared_memory.SharedMemory`.

Change one import and an existing script runs::

    from multiprocessing import shared_memory    ->  from shmbridge import shared_memory
    from multiprocessing.shared_memory import SharedMemory  ->  from shmbridge import SharedMemory

Same constructor, attributes (``name``, ``size``, ``buf``), ``close()``, ``unlink()``, repr,
pickling by name and exceptions, on the same POSIX segments (``/dev/shm/<name>``), so the
stdlib class, Boost.Interprocess and shmbridge's C, C++ and Rust fronts all meet here.
Without the stdlib's traps:

- a process that only attached never removes the segment at exit (the stdlib's resource
  tracker does on 3.8 to 3.12, and on 3.13 unless ``track=False``, deleting segments that
  other programs own). A creator can ask for removal at exit with ``track=True``;
- ``close()`` never raises ``BufferError`` while memoryviews or numpy arrays still use
  ``buf``: the memory stays mapped until the last of them is released, so nothing segfaults;
- ``mode=`` sets the permissions of a created segment exactly (umask does not apply),
  ``readonly=True`` attaches read-only, ``size`` is the segment's real size.
"""

from __future__ import annotations

import atexit
import os
import secrets
from typing import Any, Dict, Optional, Tuple, Type, Union

from . import _native

__all__ = ["SharedMemory"]

# The stdlib's random names: "psm_" and 10 hex digits (14 characters, safe on macOS too).
_NAME_PREFIX = "psm_"
_SAFE_NAME_LENGTH = 14

# Segments whose creator asked for removal at exit: name -> pid of the creating process (a
# child made by fork() inherits this dict and must not remove its parent's segments).
_UNLINK_AT_EXIT: Dict[str, int] = {}


def _make_filename() -> str:
    nbytes = (_SAFE_NAME_LENGTH - len(_NAME_PREFIX)) // 2
    return _NAME_PREFIX + secrets.token_hex(nbytes)


@atexit.register
def _unlink_at_exit() -> None:
    pid = os.getpid()
    for name, owner in list(_UNLINK_AT_EXIT.items()):
        if owner == pid:
            _UNLINK_AT_EXIT.pop(name, None)
            try:
                _native.remove(name)
            except OSError:
                pass


class SharedMemory:
    """Create a new shared memory block or attach to an existing one, by name.

    ``SharedMemory(name=None, create=False, size=0)`` as in the stdlib; keyword-only extras:

    - ``track``: for a creator, remove the segment when this process exits (unless it was
      unlinked before). Ignored when attaching: an attaching process never removes it.
    - ``mode``: permission bits of a created segment (default 0o600, the stdlib's).
    - ``readonly``: attach read-only (``buf`` is then a read-only memoryview).
    - ``populate``: pre-fault the mapping of a created segment (faster first touch).
    """

    _seg: Optional[_native.Segment] = None
    _buf: Optional[memoryview] = None
    _name: str = ""
    _size: int = 0

    def __init__(
        self,
        name: Optional[str] = None,
        create: bool = False,
        size: int = 0,
        *,
        track: bool = False,
        mode: int = 0o600,
        readonly: bool = False,
        populate: bool = False,
    ) -> None:
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if create:
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
            if readonly:
                raise ValueError("a segment cannot be created read-only")
        if name is None and not create:
            raise ValueError("'name' can only be None if create=True")
        if create:
            if name is None:
                while True:
                    try:
                        seg = _native.Segment(
                            _make_filename(),
                            "create_only",
                            size,
                            permissions=mode,
                            populate=populate,
                        )
                    except FileExistsError:
                        continue
                    break
            else:
                seg = _native.Segment(
                    name, "create_only", size, permissions=mode, populate=populate
                )
        else:
            assert name is not None
            seg = _native.Segment(name, "open_only", 0, readonly=readonly)
        self._seg = seg
        self._name = seg.name
        self._size = seg.size
        self._buf = seg.mapping.buf
        if create and track:
            _UNLINK_AT_EXIT[self._name] = os.getpid()

    def __reduce__(self) -> Tuple[Type["SharedMemory"], Tuple[str, bool, int]]:
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.name!r}, size={self.size})"

    def __enter__(self) -> "SharedMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def buf(self) -> Optional[memoryview]:
        """A memoryview of the block's contents (None after ``close()``)."""
        return self._buf

    @property
    def name(self) -> str:
        """Unique name that identifies the shared memory block (no leading '/')."""
        return self._name

    @property
    def size(self) -> int:
        """Size in bytes: the segment's real size."""
        return self._size

    @property
    def readonly(self) -> bool:
        """Whether the block was attached read-only."""
        return self._segment().readonly

    @property
    def created(self) -> bool:
        """Whether this instance created the block."""
        return self._segment().created

    @property
    def mapping(self) -> _native.Mapping:
        """The underlying :class:`shmbridge.Mapping` (read/write/get/set with bounds checks)."""
        return self._segment().mapping

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._seg is None

    def permissions(self) -> int:
        """The block's permission bits now, e.g. ``0o600``."""
        return self._segment().permissions()

    def get(self, kind: str, offset: int) -> Union[int, float]:
        """Read a little-endian field at ``offset``: ``kind`` is u8/i8/u16/i16/u32/i32/u64/
        i64/f32/f64 or a struct code (``shm.get("i", 4)`` is ``struct.unpack("i", buf[4:8])``)."""
        return self._segment().mapping.get(kind, offset)

    def set(self, kind: str, offset: int, value: Union[int, float]) -> None:
        """Write a little-endian field at ``offset`` (see :meth:`get`)."""
        self._segment().mapping.set(kind, offset, value)

    def read(self, offset: int = 0, size: Optional[int] = None) -> bytes:
        """Copy ``size`` bytes at ``offset`` (default: to the end), releasing the GIL."""
        return self._segment().mapping.read(offset, size)

    def write(self, offset: int, data: Any) -> int:
        """Copy a bytes-like ``data`` in at ``offset`` (bounds-checked, releases the GIL)."""
        return self._segment().mapping.write(offset, data)

    def close(self) -> None:
        """Close access to the block from this instance; never destroys it.

        Unlike the stdlib, this works while memoryviews or numpy arrays still use ``buf``:
        they stay valid, and the memory is unmapped when the last of them is released."""
        self._buf = None
        seg, self._seg = self._seg, None
        if seg is not None:
            seg.close()

    def unlink(self) -> None:
        """Remove the block's name. Call it once, in one process, when nobody needs it."""
        _UNLINK_AT_EXIT.pop(self._name, None)
        _native.remove(self._name)

    def _segment(self) -> _native.Segment:
        if self._seg is None:
            raise _native.ClosedError(f"shared memory {self._name!r} is closed")
        return self._seg
