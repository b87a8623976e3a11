"""shmbridge: shared memory and memory-mapped files that Rust, C, C++ and Python share.

- :class:`SharedMemory`: a drop-in for ``multiprocessing.shared_memory.SharedMemory``
  without its traps (see :mod:`shmbridge.shared_memory`).
- :class:`Segment`: a named segment with Boost's open modes; :class:`Mapping`: any mapping
  (segment, file, anonymous) with a zero-copy ``buf`` and bounds-checked ``read``/``write``/
  ``get``/``set``.
- :func:`map_file`: a file mapped in place; :func:`anonymous`: memory shared across
  ``os.fork()``.
- Layouts: raw (the stdlib's and Boost's), size-prefixed (an 8-byte length, then the data:
  :func:`create_size_prefixed`, :func:`read_size_prefixed`, ...) and framed
  (:class:`FramedSegment`: a validated header, seqlock, checksum, publish/wait).
- :func:`list_segments`, :func:`segment_info`, :func:`remove`, :func:`exists`.
- Handing data over: :func:`send_file` / :func:`recv_file` (a file of any size, verified by
  CRC-32, written atomically), :class:`StreamWriter` / :class:`StreamReader` (any amount of
  data through a fixed ring).
- Messages: :class:`Channel` (one writer, many readers, variable-size messages, zero copy
  both ways: ``Channel.create(...)`` / ``Channel.open(name)``).
- The ``shmbridge`` command (docs/CLI.md): the ``shmbridge`` console script and
  ``python -m shmbridge`` run the one command line, the Rust CLI, through the extension.
- :class:`ShareableList`: the stdlib's, over shmbridge's :class:`SharedMemory`.
- Arrays: :class:`SharedArray` (one numpy array in a named segment, its dtype and shape in
  its header; versions, consistent copies, waits) and :func:`share`; channels carry arrays
  too (``writer.loan_array(shape, dtype)``, ``message.array()``).

Errors: the stdlib's classes where it has a case (``FileExistsError``,
``FileNotFoundError``, ``PermissionError``, ``ValueError``, ``OSError``); the library's
own derive from :class:`shmbridge.Error`.
"""

from __future__ import annotations

from typing import Any, Union

from . import _native, shared_memory
from ._native import (
    DEFAULT_PERMISSIONS,
    DEFAULT_STREAM_SEGMENT,
    FRAMED_HEADER_LEN,
    FRAMED_MAGIC,
    FRAMED_VERSION,
    MAX_NAME_LEN,
    SHM_DIR,
    SIZE_PREFIX_LEN,
    STREAM_HEADER_LEN,
    BadMagic,
    Channel,
    ChannelReader,
    ChannelStatus,
    ChannelWriter,
    ChecksumMismatch,
    ClosedError,
    CorruptHeader,
    Error,
    FramedSegment,
    HeaderInfo,
    Loan,
    Mapping,
    Message,
    OutOfBounds,
    PeerGone,
    ReaderStatus,
    Segment,
    SegmentInfo,
    StreamReader,
    StreamWriter,
    Timeout,
    TransferReport,
    Truncated,
    Unsupported,
    UnsupportedVersion,
    WriterClosed,
    __version__,
    anonymous,
    exists,
    list_segments,
    map_file,
    recv_file,
    remove,
    segment_info,
    send_file,
    unique_name,
)
from .arrays import SharedArray, share
from .shared_memory import ShareableList, SharedMemory

__all__ = [
    "DEFAULT_PERMISSIONS",
    "DEFAULT_STREAM_SEGMENT",
    "FRAMED_HEADER_LEN",
    "FRAMED_MAGIC",
    "FRAMED_VERSION",
    "MAX_NAME_LEN",
    "SHM_DIR",
    "SIZE_PREFIX_LEN",
    "STREAM_HEADER_LEN",
    "BadMagic",
    "Channel",
    "ChannelReader",
    "ChannelStatus",
    "ChannelWriter",
    "ChecksumMismatch",
    "ClosedError",
    "CorruptHeader",
    "Error",
    "FramedSegment",
    "HeaderInfo",
    "Loan",
    "Mapping",
    "Message",
    "OutOfBounds",
    "PeerGone",
    "ReaderStatus",
    "Segment",
    "SegmentInfo",
    "ShareableList",
    "SharedArray",
    "SharedMemory",
    "StreamReader",
    "StreamWriter",
    "Timeout",
    "TransferReport",
    "Truncated",
    "Unsupported",
    "UnsupportedVersion",
    "WriterClosed",
    "__version__",
    "anonymous",
    "create_size_prefixed",
    "exists",
    "list_segments",
    "map_file",
    "read_size_prefixed",
    "recv_file",
    "remove",
    "segment_info",
    "send_file",
    "share",
    "shared_memory",
    "size_prefixed_len",
    "unique_name",
    "write_size_prefixed",
]

_HasMapping = Union[Mapping, Segment, SharedMemory]


def _mapping_of(obj: _HasMapping) -> Mapping:
    if isinstance(obj, Mapping):
        return obj
    if isinstance(obj, (Segment, SharedMemory)):
        return obj.mapping
    raise TypeError(f"expected a Mapping, Segment or SharedMemory, not {type(obj).__name__}")


def create_size_prefixed(name: str, data: Any, *, mode: int = 0o600) -> Segment:
    """Create the segment ``name`` of exactly 8 + len(data) bytes: the length (u64,
    little-endian), then ``data`` (the seed's mmap writer layout)."""
    return _native.size_prefixed_create(name, data, permissions=mode)


def size_prefixed_len(obj: _HasMapping) -> int:
    """The validated length prefix; raises :class:`shmbridge.Truncated` when the mapping is
    shorter than the prefix or than what it declares."""
    return _native.size_prefixed_len(_mapping_of(obj))


def read_size_prefixed(obj: _HasMapping, *, copy: bool = True) -> Any:
    """The payload of a size-prefixed segment, file or mapping: a ``bytes`` copy, or with
    ``copy=False`` a zero-copy memoryview of it."""
    mapping = _mapping_of(obj)
    if copy:
        return _native.size_prefixed_read(mapping)
    n = _native.size_prefixed_len(mapping)
    return mapping.buf[SIZE_PREFIX_LEN : SIZE_PREFIX_LEN + n]


def write_size_prefixed(obj: _HasMapping, data: Any) -> None:
    """Write ``data`` after its length into a mapping; raises
    :class:`shmbridge.OutOfBounds` when it does not fit."""
    _native.size_prefixed_write(_mapping_of(obj), data)
