"""A drop-in for :mod:`multiprocessing.shared_memory`: ``SharedMemory`` and ``ShareableList``.

Change one import and an existing script runs::

    from multiprocessing import shared_memory    ->  from shmbridge import shared_memory
    from multiprocessing.shared_memory import SharedMemory  ->  from shmbridge import SharedMemory

Every public name of the stdlib module is here (``SharedMemory``, ``ShareableList``, and the
modules it imports, such as ``resource_tracker``), and so are the private ones that code and
CPython's own tests touch: ``_make_filename`` (the name-generation hook; patching it here
changes the names ``SharedMemory(create=True)`` picks), ``_SHM_NAME_PREFIX``,
``_SHM_SAFE_NAME_LENGTH``, ``_USE_POSIX``, ``_O_CREX``, ``_encoding``.

``SharedMemory`` is a subclass of the stdlib's, with the same constructor, attributes
(``name``, ``size``, ``buf``), ``close()``, ``unlink()``, repr, pickling by name and
exceptions, on the same POSIX segments (``/dev/shm/<name>``), so the stdlib class,
Boost.Interprocess and shmbridge's C, C++ and Rust fronts all meet here. Its private
attributes behave as the stdlib's: ``_name`` is ``"/" + name`` (what code passes to
``resource_tracker.unregister``; setting it changes what ``unlink()`` removes), ``_size``,
``_buf``, ``_flags`` (a subclass that sets ``_flags = os.O_CREAT | os.O_RDWR`` opens or
creates), ``_mode`` (the permissions of a created segment), ``_prepend_leading_slash`` and
``_track``. Two do not: ``_fd`` is ``-1`` and ``_mmap`` is ``None`` (the stdlib's values for a
closed block): the memory is mapped by shmbridge's core, not by an :class:`mmap.mmap`; use
``buf`` or :attr:`SharedMemory.mapping`.

Without the stdlib's traps:

- a process that only attached never removes the segment at exit (the stdlib's resource
  tracker does on 3.8 to 3.12, and on 3.13 unless ``track=False``, deleting segments that
  other programs own). A creator can ask for removal at exit with ``track=True``. Nothing is
  registered with the stdlib's resource tracker, so ``resource_tracker.unregister(shm._name,
  "shared_memory")``, the stdlib's workaround, is not needed (the tracker process then prints
  a ``KeyError`` for the name it never had; the segment is not touched);
- ``close()`` never raises ``BufferError`` while memoryviews or numpy arrays still use
  ``buf``: the memory stays mapped until the last of them is released, so nothing segfaults;
- ``mode=`` sets the permissions of a created segment exactly (umask does not apply),
  ``readonly=True`` attaches read-only, ``size`` is the segment's real size.

``ShareableList`` is the stdlib's own class (a subclass of it, running the interpreter's own
code, so the layout is byte for byte what the stdlib of this Python writes and reads) with its
block made by shmbridge's ``SharedMemory``.
"""

from __future__ import annotations

import atexit
import errno
import mmap
import os
import secrets
import struct
import types
from functools import partial
from multiprocessing import resource_tracker
from multiprocessing import shared_memory as _stdlib
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type, TypeVar, Union, overload

from . import _native

if TYPE_CHECKING:
    from ._native import _FieldKind, _FloatFieldKind, _IntFieldKind

__all__ = ["SharedMemory", "ShareableList"]

# The stdlib's names and values (multiprocessing/shared_memory.py), so code and tests that use
# or patch them work here. POSIX only: shmbridge runs on Linux.
_USE_POSIX = True
_O_CREX = os.O_CREAT | os.O_EXCL
_SHM_SAFE_NAME_LENGTH = 14
_SHM_NAME_PREFIX = "/psm_"
_encoding = "utf8"

# Segments whose creator asked for removal at exit: bare name -> pid of the creating process
# (a child made by fork() inherits this dict and must not remove its parent's segments).
_UNLINK_AT_EXIT: Dict[str, int] = {}

# Re-exported as the stdlib module has them (code reaches them through the module).
_reexported = (errno, mmap, partial, resource_tracker, secrets, struct, types)


def _make_filename() -> str:
    """A random name for a new block, as the stdlib makes it: ``"/psm_"`` and 8 hex digits.
    ``SharedMemory(create=True)`` calls this module's ``_make_filename`` each time, so
    patching it here (as CPython's tests patch the stdlib's) changes the names it tries."""
    nbytes = (_SHM_SAFE_NAME_LENGTH - len(_SHM_NAME_PREFIX)) // 2
    assert nbytes >= 2, "_SHM_NAME_PREFIX too long"
    name = _SHM_NAME_PREFIX + secrets.token_hex(nbytes)
    assert len(name) <= _SHM_SAFE_NAME_LENGTH
    return name


def _bare(name: str) -> str:
    """The segment name the core takes: without the leading '/' of a POSIX shm name."""
    return name[1:] if name.startswith("/") else name


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


class SharedMemory(_stdlib.SharedMemory):
    """Create a new shared memory block or attach to an existing one, by name.

    ``SharedMemory(name=None, create=False, size=0)`` as in the stdlib; keyword-only extras:

    - ``track``: for a creator, remove the segment when this process exits (unless it was
      unlinked before). Ignored when attaching: an attaching process never removes it.
    - ``mode``: permission bits of a created segment (default: the class's ``_mode``, 0o600
      as the stdlib's).
    - ``readonly``: attach read-only (``buf`` is then a read-only memoryview).
    - ``populate``: pre-fault the mapping of a created segment (faster first touch).
    """

    # The stdlib's class attributes, with its defaults; `_fd` and `_mmap` stay at the values a
    # closed stdlib block has (see the module docstring).
    _name: str = ""
    _fd = -1
    _mmap = None
    _buf: Optional[memoryview] = None
    _flags = os.O_RDWR
    _mode = 0o600
    _prepend_leading_slash = True
    _track = False
    _size: int = 0
    _seg: Optional[_native.Segment] = None

    def __init__(
        self,
        name: Optional[str] = None,
        create: bool = False,
        size: int = 0,
        *,
        track: bool = False,
        mode: Optional[int] = None,
        readonly: bool = False,
        populate: bool = False,
    ) -> None:
        if not size >= 0:
            raise ValueError("'size' must be a positive integer")
        if create:
            self._flags = _O_CREX | os.O_RDWR
            if size == 0:
                raise ValueError("'size' must be a positive number different from zero")
            if readonly:
                raise ValueError("a segment cannot be created read-only")
        if name is None and not self._flags & os.O_EXCL:
            raise ValueError("'name' can only be None if create=True")
        if mode is not None:
            self._mode = mode
        self._track = track
        flags = self._flags
        if flags & os.O_CREAT and flags & os.O_EXCL:
            open_mode = "create_only"
        elif flags & os.O_CREAT:
            open_mode = "open_or_create"
        else:
            open_mode = "open_only"
        if (flags & os.O_ACCMODE) == os.O_RDONLY:
            readonly = True
        if name is None:
            while True:
                full = _make_filename()
                try:
                    seg = self._open(full, open_mode, size, readonly, populate)
                except FileExistsError:
                    continue
                break
        else:
            full = "/" + name if self._prepend_leading_slash else name
            seg = self._open(full, open_mode, size, readonly, populate)
        self._seg = seg
        self._name = full
        self._size = seg.size
        self._buf = seg.mapping.buf
        if seg.created and track:
            _UNLINK_AT_EXIT[seg.name] = os.getpid()

    def _open(self, full: str, open_mode: str, size: int, readonly: bool, populate: bool) -> _native.Segment:
        if open_mode == "open_or_create" and size == 0:
            # O_CREAT without a size: attach; creating an empty block fails, as the stdlib's
            # mmap of an empty file does.
            try:
                return _native.Segment(_bare(full), "open_only", 0, readonly=readonly)
            except FileNotFoundError:
                raise ValueError(
                    f"cannot create the shared memory block {_bare(full)!r} with size 0"
                ) from None
        if open_mode == "open_only":
            return _native.Segment(_bare(full), "open_only", 0, readonly=readonly)
        return _native.Segment(
            _bare(full),
            "create_only" if open_mode == "create_only" else "open_or_create",
            size,
            readonly=readonly,
            permissions=self._mode,
            populate=populate,
        )

    def __del__(self) -> None:
        self.close()

    def __reduce__(self) -> Tuple[Type["SharedMemory"], Tuple[str, bool, int]]:
        return (self.__class__, (self.name, False, self.size))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.name!r}, size={self.size})"

    def __enter__(self) -> "SharedMemory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def buf(self) -> memoryview:
        """A memoryview of the block's contents (None after ``close()``, as the stdlib's; typed
        ``memoryview`` as typeshed types the stdlib's)."""
        return self._buf  # type: ignore[return-value]

    @property
    def name(self) -> str:
        """Unique name that identifies the shared memory block (no leading '/')."""
        reported = self._name
        if self._prepend_leading_slash and reported.startswith("/"):
            reported = reported[1:]
        return reported

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

    @overload
    def get(self, kind: _IntFieldKind, offset: int) -> int: ...
    @overload
    def get(self, kind: _FloatFieldKind, offset: int) -> float: ...
    def get(self, kind: _FieldKind, offset: int) -> Union[int, float]:
        """Read a little-endian field at ``offset``: ``kind`` is u8/i8/u16/i16/u32/i32/u64/
        i64/f32/f64 or a struct code (``shm.get("i", 4)`` is ``struct.unpack("i", buf[4:8])``)."""
        return self._segment().mapping.get(kind, offset)

    @overload
    def set(self, kind: _IntFieldKind, offset: int, value: int) -> None: ...
    @overload
    def set(self, kind: _FloatFieldKind, offset: int, value: float) -> None: ...
    def set(self, kind: _FieldKind, offset: int, value: Union[int, float]) -> None:
        """Write a little-endian field at ``offset`` (see :meth:`get`)."""
        self._segment().mapping.set(kind, offset, value)  # type: ignore[arg-type]

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
        """Remove the block's name (``_name``). Call it once, in one process, when nobody
        needs it."""
        if self._name:
            bare = _bare(self._name)
            _UNLINK_AT_EXIT.pop(bare, None)
            _native.remove(bare)

    def _segment(self) -> _native.Segment:
        if self._seg is None:
            raise _native.ClosedError(f"shared memory {self.name!r} is closed")
        return self._seg


_T = TypeVar("_T", int, float, bool, str, bytes, None)


def _with_our_shared_memory(func: Any) -> Any:
    """The stdlib's function `func`, run with this module's ``SharedMemory`` where it says
    ``SharedMemory``: the same code object, in a copy of the stdlib module's namespace."""
    assert not func.__code__.co_freevars, f"{func.__qualname__} closes over variables"
    namespace = dict(vars(_stdlib))
    namespace["SharedMemory"] = SharedMemory
    new = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, None)
    new.__kwdefaults__ = func.__kwdefaults__
    new.__qualname__ = func.__qualname__
    new.__doc__ = func.__doc__
    new.__module__ = __name__
    return new


class ShareableList(_stdlib.ShareableList[_T]):
    """The stdlib's ``ShareableList`` (same layout, methods and pickling, by name), whose
    block is a shmbridge :class:`SharedMemory`: ``shm`` is one, so the traps above are gone
    for it too, and a stdlib ``ShareableList(name=...)`` can attach to it (and the other way
    round)."""

    shm: SharedMemory

    # The only method that makes a SharedMemory; every other one is inherited unchanged.
    # (Type checkers see the stdlib's typed __init__, which this is.)
    if not TYPE_CHECKING:
        __init__ = _with_our_shared_memory(_stdlib.ShareableList.__init__)
