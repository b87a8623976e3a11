"""Named shared arrays: :class:`SharedArray` and :func:`share`.

A :class:`SharedArray` is one n-dimensional array in a named segment (docs/SPEC.md 7.5): its
element type and shape live in the segment's array header, so ``SharedArray.open(name)``
needs nothing else. ``.array`` is a numpy array of the shared memory itself; a writer makes
a new version with ``begin_write()`` ... ``publish()`` (or ``with sa.writing() as a:``), and
readers ``wait()`` for it and take a consistent ``copy()`` (never torn by a concurrent
write), or read ``.array`` in place (zero-copy, racing the writer).

Layout, versions, copies and waits are the Rust core's (``shmbridge::array::ArraySegment``);
this module only adds numpy. numpy is imported when first needed.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import TracebackType
from typing import Any, Iterator, Literal, Optional, Sequence, Tuple, Type, Union

from . import _native

_Order = Literal["C", "F", "c", "f"]


def _numpy() -> Any:
    import numpy

    return numpy


def _dtype_str(dtype: Any) -> str:
    """A numpy-style type string for ``dtype`` (a name, a type string, a numpy dtype or a
    numpy scalar type such as ``numpy.float32``)."""
    if isinstance(dtype, str):
        return dtype
    np = _numpy()
    return str(np.dtype(dtype).str)


class SharedArray:
    """One n-dimensional array in a named shared-memory segment.

    Make one with :meth:`create` (the writer), :meth:`open` (a reader, or another writer) or
    :func:`share`. ``close()`` closes the handle: numpy arrays taken from ``.array`` before
    stay valid (they keep their own mapping), as with :class:`shmbridge.SharedMemory`.
    """

    __slots__ = ("_core", "_view", "_array")

    def __init__(self, core: _native.ArraySegment) -> None:
        self._core = core
        self._view: Optional[_native.ArrayView] = None
        self._array: Any = None

    @classmethod
    def create(
        cls,
        name: str,
        shape: Union[int, Sequence[int]],
        dtype: Any,
        *,
        order: _Order = "C",
        permissions: Optional[int] = None,
    ) -> "SharedArray":
        """Create the segment ``name`` holding a zeroed array of ``shape`` and ``dtype`` (a
        numpy dtype or its name), contiguous in ``order`` ("C" or "F"); ``permissions`` are
        the segment's mode bits (default 0o600). Raises ``FileExistsError`` when the name is
        taken."""
        dims = [shape] if isinstance(shape, int) else list(shape)
        core = _native.ArraySegment.create(
            name, dims, _dtype_str(dtype), order=order, permissions=permissions
        )
        return cls(core)

    @classmethod
    def open(
        cls,
        name: str,
        *,
        readonly: bool = False,
        timeout: Optional[float] = None,
        owner: Union[int, str, Sequence[int], None] = None,
    ) -> "SharedArray":
        """Open the array segment ``name``: its dtype and shape come from its header,
        checked against the segment's real size. Only this user's segments are opened
        (``PermissionError``) unless ``owner`` allows another (``"any"``, a user id or a
        sequence of them). With a ``timeout`` (seconds; ``math.inf``: no limit) wait that long
        for it to appear."""
        return cls(
            _native.ArraySegment.open(name, readonly=readonly, timeout=timeout, owner=owner)
        )

    # -- what it is ------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The segment name."""
        return self._core.name

    @property
    def shape(self) -> Tuple[int, ...]:
        """The shape."""
        return self._core.shape

    @property
    def strides(self) -> Tuple[int, ...]:
        """The strides, in bytes."""
        return self._core.strides

    @property
    def dtype(self) -> Any:
        """The element type, as a ``numpy.dtype``."""
        return _numpy().dtype(self._core.dtype)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self._core.shape)

    @property
    def nbytes(self) -> int:
        """Size of the data area in bytes."""
        return self._core.data_len

    @property
    def readonly(self) -> bool:
        """Whether this handle cannot write (``.array`` is then read-only)."""
        return self._core.readonly

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._core.closed

    @property
    def version(self) -> int:
        """The current version: the number of writes ended so far."""
        return self._core.version

    # -- the data ----------------------------------------------------------------------------

    def _array_view(self) -> _native.ArrayView:
        if self._view is None:
            self._view = _native.ArrayView(
                self._core.mapping, self._core.header_offset, readonly=self._core.readonly
            )
        return self._view

    @property
    def array(self) -> Any:
        """A numpy array of the shared memory itself (zero-copy; writable unless the handle
        is read-only). It stays valid after ``close()``. Writes through it become a new
        version at ``publish()``; make them between ``begin_write()`` and ``publish()`` so
        readers' copies never see them half done."""
        if self._array is None:
            self._array = _numpy().asarray(self._array_view())
        return self._array

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> Any:
        if copy:
            out = self.copy()
            return out if dtype is None else out.astype(dtype)
        a = self.array
        return a if dtype is None else a.astype(dtype)

    def __dlpack__(self, **kwargs: Any) -> object:
        """DLPack export of the shared memory (zero-copy unless ``copy=True``)."""
        return self._array_view().__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Tuple[int, int]:
        """``(1, 0)``: the CPU."""
        return self._array_view().__dlpack_device__()

    def copy(self) -> Any:
        """A consistent snapshot as a new numpy array (same dtype, shape and layout), taken
        under the seqlock: never torn by a concurrent write. Also counts as seen for
        :meth:`wait`."""
        np = _numpy()
        buf = np.empty(self._core.data_len, dtype=np.uint8)
        self._core.copy_into(buf)
        return np.ndarray(
            self._core.shape,
            dtype=self._core.dtype,
            buffer=buf,
            offset=self._core.origin,
            strides=self._core.strides,
        )

    # -- versions ----------------------------------------------------------------------------

    def begin_write(self) -> Any:
        """Start a new version (readers' copies wait until ``publish()``); returns
        ``.array`` to fill."""
        self._core.begin_write()
        return self.array

    def publish(self) -> None:
        """Publish a new version: end the write ``begin_write()`` opened (or, with none open,
        mark what was written in place as a new version) and wake waiting readers."""
        self._core.publish()

    @contextmanager
    def writing(self) -> Iterator[Any]:
        """``with sa.writing() as a: a[...] = ...``: begin a write, publish it on exit (also
        on an exception: what was written is then the current data)."""
        a = self.begin_write()
        try:
            yield a
        finally:
            self.publish()

    def write(self, data: Any) -> None:
        """Copy ``data`` (anything numpy can broadcast to the shape) in under one write, and
        publish it."""
        with self.writing() as a:
            a[...] = data

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for a version this handle has not seen (published after it opened, after its
        last ``copy()``, or after the last ``wait()``), without the GIL; Ctrl-C interrupts.
        Returns the new version. Raises :class:`shmbridge.Timeout`,
        :class:`shmbridge.WriterClosed` or :class:`shmbridge.PeerGone` (the writer died)."""
        self._core.wait(timeout)
        return self._core.version

    def close_writer(self) -> None:
        """Tell readers no version will come: their ``wait()`` raises ``WriterClosed``."""
        self._core.close_writer()

    # -- life --------------------------------------------------------------------------------

    def unlink(self) -> None:
        """Remove the segment's name (open handles and views stay valid)."""
        self._core.unlink()

    def close(self) -> None:
        """Close the handle (an open write is published); views stay valid. Never removes
        the name."""
        self._core.close()
        self._view = None
        self._array = None

    def __enter__(self) -> "SharedArray":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = ", closed" if self.closed else ""
        return (
            f"SharedArray({self._core.name!r}, shape={self._core.shape}, "
            f"dtype={self._core.dtype!r}{state})"
        )


def share(array: Any, name: str, *, permissions: Optional[int] = None) -> SharedArray:
    """Put a copy of ``array`` (anything numpy accepts) into a new array segment ``name``
    and publish it: the one-line form of :meth:`SharedArray.create` and
    :meth:`SharedArray.write`. An F-contiguous array keeps its order."""
    np = _numpy()
    a = np.asarray(array)
    order: _Order = "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"
    sa = SharedArray.create(name, a.shape, a.dtype, order=order, permissions=permissions)
    try:
        sa.write(a)
    except BaseException:
        sa.unlink()
        sa.close()
        raise
    return sa
