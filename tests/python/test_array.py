"""Typed arrays: the array header (docs/SPEC.md section 7) through shmbridge._native.

ArrayView validates a header in place and exports it through the buffer protocol and DLPack;
write_array_header writes one (and copies data in). Headers for the bad-input cases are built
here with `struct` from the SPEC alone, so the tests also check that the SPEC says enough.
"""

from __future__ import annotations

import ctypes
import gc
import random
import struct
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

import shmbridge
from shmbridge import _native as native

from _helpers import run_py

# Every element type of SPEC 7.3: (numpy dtype, header kind, bits, DLPack code).
DTYPES = [
    ("bool", "b", 8, 6),
    ("int8", "i", 8, 0),
    ("int16", "i", 16, 0),
    ("int32", "i", 32, 0),
    ("int64", "i", 64, 0),
    ("uint8", "u", 8, 1),
    ("uint16", "u", 16, 1),
    ("uint32", "u", 32, 1),
    ("uint64", "u", 64, 1),
    ("float16", "f", 16, 2),
    ("float32", "f", 32, 2),
    ("float64", "f", 64, 2),
    ("complex64", "c", 64, 5),
    ("complex128", "c", 128, 5),
]

NUMPY_VERSIONED_DLPACK = tuple(int(x) for x in np.__version__.split(".")[:2]) >= (2, 1)


def spec_header(
    kind: str,
    bits: int,
    shape: Sequence[int],
    strides: Sequence[int],
    *,
    origin: int = 0,
    data_len: Optional[int] = None,
    data_offset: Optional[int] = None,
    header_len: Optional[int] = None,
    ndim: Optional[int] = None,
    magic: bytes = b"SHMBARRY",
    major: int = 1,
    minor: int = 0,
    flags: int = 0,
) -> bytes:
    """An array header encoded from SPEC 7.1 with the standard library alone."""
    n = len(shape) if ndim is None else ndim
    hlen = 64 + 16 * len(shape) if header_len is None else header_len
    doff = (64 + 16 * len(shape) + 63) // 64 * 64 if data_offset is None else data_offset
    if data_len is None:
        count = 1
        for d in shape:
            count *= d
        data_len = count * bits // 8
    fixed = magic + struct.pack(
        "<HHIBBBBIQQQ16x", major, minor, hlen, ord(kind), bits, n, 0, flags, doff, data_len, origin
    )
    assert len(fixed) == 64
    return fixed + b"".join(struct.pack("<Qq", d, s) for d, s in zip(shape, strides))


def c_strides(shape: Sequence[int], itemsize: int) -> List[int]:
    out, step = [], itemsize
    for d in reversed(shape):
        out.append(step)
        step *= max(d, 1)
    return out[::-1]


@pytest.fixture
def mapping() -> Any:
    m = native.anonymous(1 << 16)
    yield m
    m.close()


def sample(dtype: str, shape: Tuple[int, ...]) -> Any:
    n = int(np.prod(shape))
    if dtype == "bool":
        return (np.arange(n) % 3 == 0).reshape(shape)
    values = np.arange(n) - n // 2 if dtype.startswith("int") else np.arange(n)
    out = values.astype(dtype).reshape(shape)
    if dtype.startswith("complex"):
        out = out + 1j * out[::-1] if out.ndim == 1 else out + 1j
    return out


# --- Layout: what is written is the SPEC, and what the SPEC says is read -------------------


def test_written_header_is_the_spec_byte_by_byte(mapping: Any) -> None:
    used = native.write_array_header(mapping, 0, (2, 3), "float32")
    assert used == 128 + 24
    assert mapping.read(0, 96) == spec_header("f", 32, (2, 3), (12, 4))
    assert native.ARRAY_MAGIC == b"SHMBARRY" and native.ARRAY_MAX_NDIM == 32
    assert native.array_size((2, 3), "float32") == used
    assert native.array_size((), "complex128") == 64 + 16
    assert native.array_size((5,), "int8", strides=(-1,)) == 128 + 5


def test_spec_written_header_is_read(mapping: Any) -> None:
    # A Fortran-order int16 array of shape (2, 3), data at a page boundary, a newer minor,
    # unknown flag bits and a longer header_len: all honoured or ignored as SPEC 7 says.
    head = spec_header("i", 16, (2, 3), (2, 4), data_offset=4096, header_len=128, minor=3, flags=0x80)
    mapping.write(0, head)
    mapping.write(4096, np.array([[1, 2, 3], [4, 5, 6]], dtype="<i2").tobytes(order="F"))
    v = native.ArrayView(mapping)
    assert (v.dtype, v.shape, v.strides, v.ndim, v.itemsize) == ("<i2", (2, 3), (2, 4), 2, 2)
    assert (v.size, v.nbytes, v.offset, v.data_offset) == (6, 12, 0, 4096)
    assert v.f_contiguous and not v.c_contiguous and not v.readonly
    a = np.asarray(v)
    assert a.dtype == np.int16 and a.flags.f_contiguous
    assert a.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype,kind,bits,code", DTYPES)
def test_every_dtype_in_c_and_f_order(mapping: Any, dtype: str, kind: str, bits: int, code: int, order: str) -> None:
    src = np.asarray(sample(dtype, (3, 4)), order=order)
    used = native.write_array_header(mapping, 64, src.shape, src.dtype, order=order, data=src)
    v = native.ArrayView(mapping, 64)
    assert v.dtype == np.dtype(dtype).str and v.itemsize == bits // 8
    assert v.shape == (3, 4) and v.strides == src.strides
    assert used == 128 + src.nbytes
    a = np.asarray(v)
    assert a.dtype == np.dtype(dtype) and a.strides == src.strides
    np.testing.assert_array_equal(a, src)
    # Zero copy: the ndarray is the mapping's memory.
    base = np.frombuffer(mapping.buf, dtype=np.uint8).__array_interface__["data"][0]
    assert a.__array_interface__["data"][0] == base + 64 + 128
    b = np.frombuffer(mapping.buf, dtype=np.uint8, count=src.nbytes, offset=64 + 128)
    assert b.tobytes() == src.tobytes(order="A")
    a[0, 0] = a[1, 1]
    assert np.asarray(native.ArrayView(mapping, 64))[0, 0] == src[1, 1]
    # The header bytes are the SPEC's.
    assert mapping.read(64, 96) == spec_header(kind, bits, (3, 4), src.strides)
    # DLPack: numpy takes every type of the table.
    d = np.from_dlpack(v)
    assert d.dtype == np.dtype(dtype) and d.shape == (3, 4)
    np.testing.assert_array_equal(d, a)
    # The buffer protocol's format round-trips through memoryview.
    mv = memoryview(v)
    assert (mv.shape, mv.strides, mv.itemsize, mv.nbytes) == ((3, 4), src.strides, bits // 8, src.nbytes)


def test_zero_d_arrays(mapping: Any) -> None:
    for dtype in ("float64", "bool", "complex64", "uint8"):
        value = np.array(sample(dtype, (1,))[0], dtype=dtype)
        native.write_array_header(mapping, 0, (), dtype, data=value)
        v = native.ArrayView(mapping)
        assert v.shape == () and v.strides == () and v.ndim == 0 and v.size == 1
        a = np.asarray(v)
        assert a.shape == () and a.dtype == np.dtype(dtype) and a[()] == value
        assert np.from_dlpack(v)[()] == value
        assert memoryview(v).ndim == 0
    assert mapping.read(0, 64) == spec_header("u", 8, (), ())


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 5), (2, 0, 1)])
def test_empty_shapes(mapping: Any, shape: Tuple[int, ...]) -> None:
    used = native.write_array_header(mapping, 0, shape, "float32", data=np.zeros(shape, np.float32))
    assert used == (64 + 16 * len(shape) + 63) // 64 * 64
    v = native.ArrayView(mapping)
    assert v.shape == shape and v.size == 0 and v.nbytes == 0
    assert v.strides == tuple(c_strides(shape, 4))  # a 0 counts as 1
    a = np.asarray(v)
    assert a.shape == shape and a.size == 0
    assert np.from_dlpack(v).shape == shape
    assert zlib.crc32(v) == 0  # an empty contiguous buffer
    # numpy's empty arrays have zero strides: valid too, since nothing is reached.
    zeros = np.zeros(shape, np.float32)
    native.write_array_header(mapping, 0, shape, "float32", strides=zeros.strides, data=zeros)
    v = native.ArrayView(mapping)
    assert v.strides == zeros.strides and np.asarray(v).shape == shape


def test_empty_with_huge_extents(mapping: Any) -> None:
    # A 0 beside big extents: no element. Rule 10 counts the non-zero extents as numpy does,
    # so what is accepted numpy can view, and what numpy would refuse is refused here.
    mapping.write(0, spec_header("i", 8, (1 << 31, 1 << 31, 0), (1, 1, 1), data_len=0))
    v = native.ArrayView(mapping)
    assert v.size == 0 and v.nbytes == 0
    assert np.asarray(v).shape == (1 << 31, 1 << 31, 0)
    mapping.write(0, spec_header("i", 8, (1 << 40, 1 << 40, 0), (1, 1, 1), data_len=0))
    with pytest.raises(shmbridge.CorruptHeader, match="overflows"):
        native.ArrayView(mapping)


def test_non_contiguous_strides(mapping: Any) -> None:
    base = np.arange(24, dtype=np.int32).reshape(4, 6)
    # Any numpy layout goes in through `data`, copied element by element into the header's.
    for src in (base[:, ::2], base[::-1], base.T, base[1:3, 1:5], base[::-2, ::-3]):
        native.write_array_header(mapping, 0, src.shape, src.dtype, data=src)
        np.testing.assert_array_equal(np.asarray(native.ArrayView(mapping)), src)
        native.write_array_header(mapping, 0, src.shape, src.dtype, strides=src.strides, data=src)
        v = native.ArrayView(mapping)
        assert v.strides == src.strides
        np.testing.assert_array_equal(np.asarray(v), src)
        np.testing.assert_array_equal(np.from_dlpack(v), src)
        np.testing.assert_array_equal(np.array(memoryview(v).tolist()), src)

    # Negative strides: element 0 is the last in memory; origin says where it is.
    native.write_array_header(mapping, 0, (4,), "int16", strides=(-2,), data=np.arange(4, dtype=np.int16))
    assert mapping.read(0, 80) == spec_header("i", 16, (4,), (-2,), origin=6)
    assert np.frombuffer(mapping.read(128, 8), "<i2").tolist() == [3, 2, 1, 0]
    v = native.ArrayView(mapping)
    assert np.asarray(v).tolist() == [0, 1, 2, 3] and not v.c_contiguous

    # Zero strides (broadcast): one row read five times; writes land in the one row.
    native.write_array_header(mapping, 0, (5, 3), "float64", strides=(0, 8))
    mapping.write(128, np.array([1.0, 2.0, 3.0]).tobytes())
    a = np.asarray(native.ArrayView(mapping))
    assert a.tolist() == [[1.0, 2.0, 3.0]] * 5
    a[4, 0] = 9.0
    assert a[0, 0] == 9.0

    # Padded rows: a row pitch of 8 bytes for 5 uint8 (the padding is not written).
    mapping.fill(0)
    native.write_array_header(mapping, 0, (3, 5), "uint8", strides=(8, 1), data=np.full((3, 5), 7, np.uint8))
    assert mapping.read(128, 21) == (b"\x07" * 5 + b"\x00" * 3) * 2 + b"\x07" * 5
    v = native.ArrayView(mapping)
    assert np.asarray(v).tolist() == [[7] * 5] * 3
    # A consumer that wants plain contiguous bytes is refused, clearly.
    with pytest.raises(BufferError, match="not C-contiguous"):
        zlib.crc32(v)
    assert memoryview(v).tobytes() == b"\x07" * 15  # strided consumers are fine


def test_copy_from_a_view_of_the_same_mapping(mapping: Any) -> None:
    native.write_array_header(mapping, 0, (8,), "int64", data=np.arange(8))
    inside = np.asarray(native.ArrayView(mapping))
    # Copying the array onto itself reversed overlaps: it is staged, not torn.
    native.write_array_header(mapping, 0, (8,), "int64", data=inside[::-1])
    assert np.asarray(native.ArrayView(mapping)).tolist() == list(range(7, -1, -1))


# --- Bad input: every reader rule of SPEC 7.2 -----------------------------------------------

GOOD = dict(kind="f", bits=32, shape=(2, 3), strides=(12, 4))

BAD_HEADERS: Dict[str, Tuple[Callable[[], bytes], int, type, str]] = {
    # rule: (header bytes, mapping size, exception, message)
    "1 too short": (lambda: b"SHMBARRY" + bytes(24), 32, shmbridge.Truncated, "too few for an array header"),
    "2 bad magic": (lambda: spec_header(**GOOD, magic=b"SHMBRIDG"), 4096, shmbridge.BadMagic, "not an array header"),  # type: ignore[arg-type]
    "2 zeros": (lambda: bytes(256), 4096, shmbridge.BadMagic, "bad magic"),
    "3 version": (lambda: spec_header(**GOOD, major=2), 4096, shmbridge.UnsupportedVersion, "version 2.x"),  # type: ignore[arg-type]
    "4 ndim": (lambda: spec_header("u", 8, [1] * 33, [1] * 33), 4096, shmbridge.Unsupported, "33 dimensions"),
    "4 ndim 255": (lambda: spec_header(**GOOD, ndim=255), 4096, shmbridge.Unsupported, "255 dimensions"),  # type: ignore[arg-type]
    "5 header_len small": (lambda: spec_header(**GOOD, header_len=88), 4096, shmbridge.CorruptHeader, "header_len 88"),  # type: ignore[arg-type]
    "5 header_len odd": (lambda: spec_header(**GOOD, header_len=100), 4096, shmbridge.CorruptHeader, "header_len 100"),  # type: ignore[arg-type]
    "6 header past end": (lambda: spec_header("u", 8, [1] * 8, [1] * 8), 128, shmbridge.Truncated, "header of 192 bytes"),
    "7 kind": (lambda: spec_header("x", 32, (2, 3), (12, 4)), 4096, shmbridge.Unsupported, "unknown element type: kind 'x'"),
    "7 bits": (lambda: spec_header("f", 8, (2, 3), (3, 1)), 4096, shmbridge.Unsupported, "unknown element type: kind 'f', 8 bits"),
    "7 bool16": (lambda: spec_header("b", 16, (2, 3), (6, 2)), 4096, shmbridge.Unsupported, "unknown element type"),
    "8 data_offset unaligned": (lambda: spec_header(**GOOD, data_offset=160 - 8), 4096, shmbridge.CorruptHeader, "data_offset 152"),  # type: ignore[arg-type]
    "8 data_offset in header": (lambda: spec_header(**GOOD, data_offset=64), 4096, shmbridge.CorruptHeader, "data_offset 64"),  # type: ignore[arg-type]
    "9 data past end": (lambda: spec_header(**GOOD, data_len=5000), 4096, shmbridge.Truncated, "does not fit"),  # type: ignore[arg-type]
    "9 data_len overflow": (lambda: spec_header(**GOOD, data_len=(1 << 64) - 64), 4096, shmbridge.Truncated, "does not fit"),  # type: ignore[arg-type]
    "10 shape overflow": (lambda: spec_header("f", 32, (1 << 62, 4), (16, 4), data_len=64), 4096, shmbridge.CorruptHeader, "overflows"),
    "10 shape 2^63": (lambda: spec_header("u", 8, (1 << 63,), (0,), data_len=1), 4096, shmbridge.CorruptHeader, "overflows"),
    "10 beside a zero": (lambda: spec_header("u", 8, (1 << 40, 1 << 40, 0), (1, 1, 1), data_len=0), 4096, shmbridge.CorruptHeader, "overflows"),
    "10 product": (lambda: spec_header("u", 8, (1 << 32, 1 << 32), (0, 0), data_len=1), 4096, shmbridge.CorruptHeader, "overflows"),
    "11 stride": (lambda: spec_header("f", 32, (2, 3), (12, 2)), 4096, shmbridge.CorruptHeader, "stride 2 of dimension 1 is not a multiple"),
    "11 origin": (lambda: spec_header(**GOOD, origin=2), 4096, shmbridge.CorruptHeader, "origin 2 is not a multiple"),  # type: ignore[arg-type]
    "12 past the end": (lambda: spec_header("f", 32, (2, 3), (16, 4)), 4096, shmbridge.CorruptHeader, "reaches outside the data area"),
    "12 before the start": (lambda: spec_header("f", 32, (2, 3), (-12, 4)), 4096, shmbridge.CorruptHeader, "reaches outside the data area"),
    "12 origin shifts out": (lambda: spec_header(**GOOD, origin=4), 4096, shmbridge.CorruptHeader, "reaches outside"),  # type: ignore[arg-type]
    "12 huge stride": (lambda: spec_header("f", 32, (2, 3), (-(1 << 63), 4)), 4096, shmbridge.CorruptHeader, "reaches outside"),
    "13 empty origin": (lambda: spec_header("f", 32, (0, 3), (12, 4), origin=4), 4096, shmbridge.CorruptHeader, "past the data area"),
}


@pytest.mark.parametrize("case", sorted(BAD_HEADERS))
def test_bad_header_is_refused_clearly(case: str) -> None:
    make, size, exc, message = BAD_HEADERS[case]
    head = make()
    with native.anonymous(size) as m:
        m.write(0, head[:size])
        with pytest.raises(exc, match=message) as info:
            native.ArrayView(m)
        assert isinstance(info.value, shmbridge.Error)
        assert "array header" in str(info.value) and "<anonymous>" in str(info.value)


def test_errors_name_the_segment(shm_name: str) -> None:
    seg = native.Segment(shm_name, "create_only", 4096)
    try:
        seg.mapping.write(0, spec_header("f", 32, (2, 3), (16, 4)))
        with pytest.raises(shmbridge.CorruptHeader, match=f'segment "{shm_name}": array header: '):
            native.ArrayView(seg.mapping)
    finally:
        seg.unlink()
        seg.close()


def test_bad_arguments(mapping: Any) -> None:
    native.write_array_header(mapping, 0, (4,), "uint8")
    with pytest.raises(ValueError, match="not a multiple of 64"):
        native.ArrayView(mapping, 32)
    with pytest.raises(shmbridge.OutOfBounds, match="negative offset"):
        native.ArrayView(mapping, -64)
    with pytest.raises(shmbridge.OutOfBounds, match="past the end"):
        native.ArrayView(mapping, 1 << 20)
    with pytest.raises(shmbridge.Truncated, match="0 bytes are too few"):
        native.ArrayView(mapping, 1 << 16)  # exactly at the end
    with pytest.raises(TypeError, match="expected a shmbridge Mapping, not bytearray"):
        native.ArrayView(bytearray(256))  # type: ignore[arg-type]

    with pytest.raises(ValueError, match='unknown element type "datetime64"'):
        native.write_array_header(mapping, 0, (4,), "datetime64")
    with pytest.raises(ValueError, match="big-endian"):
        native.write_array_header(mapping, 0, (4,), np.dtype(">f4"))
    with pytest.raises(TypeError, match="dtype must be"):
        native.write_array_header(mapping, 0, (4,), 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative dimension -1"):
        native.write_array_header(mapping, 0, (2, -1), "uint8")
    with pytest.raises(ValueError, match='order must be "C" or "F"'):
        native.write_array_header(mapping, 0, (2,), "uint8", order="K")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="33 dimensions: at most 32"):
        native.write_array_header(mapping, 0, [1] * 33, "uint8")
    with pytest.raises(ValueError, match="not a multiple of the element size"):
        native.write_array_header(mapping, 0, (3,), "float64", strides=(4,))
    with pytest.raises(ValueError, match="2 strides for 1 dimensions"):
        native.write_array_header(mapping, 0, (3,), "float64", strides=(8, 8))
    with pytest.raises(ValueError, match="not a multiple of 64"):
        native.write_array_header(mapping, 8, (3,), "float64")
    with pytest.raises(shmbridge.OutOfBounds, match="does not fit"):
        native.write_array_header(mapping, 0, (1 << 16,), "uint8")
    with pytest.raises(ValueError, match="data holds int32 elements, the array float32"):
        native.write_array_header(mapping, 0, (3,), "float32", data=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"data has shape \[2, 2\], the array \[4\]"):
        native.write_array_header(mapping, 0, (4,), "float32", data=np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="unsupported"):
        native.write_array_header(mapping, 0, (2,), "int64", data=np.zeros(2, "i4,i4"))
    # bytes are uint8 ('B'); a memoryview cast gives other types.
    native.write_array_header(mapping, 0, (4,), "uint8", data=b"\x01\x02\x03\x04")
    assert np.asarray(native.ArrayView(mapping)).tolist() == [1, 2, 3, 4]
    native.write_array_header(mapping, 0, (2,), "int16", data=memoryview(b"\x01\x00\xff\xff").cast("h"))
    assert np.asarray(native.ArrayView(mapping)).tolist() == [1, -1]


def test_read_only_mappings(tmp_path: Any) -> None:
    path = tmp_path / "array.bin"
    with native.anonymous(4096) as m:
        native.write_array_header(m, 0, (2, 2), "float64", data=np.eye(2))
        path.write_bytes(m.read())
    with native.map_file(path, "r") as ro:
        v = native.ArrayView(ro)
        assert v.readonly
        a = np.asarray(v)
        assert not a.flags.writeable and a.tolist() == [[1.0, 0.0], [0.0, 1.0]]
        with pytest.raises(TypeError, match="read-only"):
            memoryview(v)[0, 0] = 2.0
        with pytest.raises(PermissionError):
            native.write_array_header(ro, 0, (2,), "uint8")
    # readonly=True over a writable mapping.
    with native.map_file(path, "w") as rw:
        v = native.ArrayView(rw, readonly=True)
        assert v.readonly and not np.asarray(v).flags.writeable
        assert np.asarray(native.ArrayView(rw)).flags.writeable


def test_mutated_headers_never_crash() -> None:
    # Random corruption of valid headers: every result is a view whose elements can all be
    # reached, or a clean shmbridge error; never a crash.
    rng = random.Random(12)
    valid = [
        spec_header("f", 32, (2, 3), (12, 4)),
        spec_header("i", 16, (4,), (-2,), origin=6),
        spec_header("c", 128, (), ()),
        spec_header("u", 8, (3, 5), (8, 1), data_len=21),
        spec_header("b", 8, (0, 7), (7, 1)),
    ]
    outcomes = {"view": 0, "error": 0}
    with native.anonymous(4096) as m:
        for _ in range(4000):
            head = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(len(head))
                head[at] = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF, rng.randrange(256)])
            m.fill(0, 0, 256)
            m.write(0, bytes(head))
            try:
                v = native.ArrayView(m)
            except shmbridge.Error as e:
                assert "array header" in str(e)
                outcomes["error"] += 1
                continue
            outcomes["view"] += 1
            a = np.asarray(v)
            if a.size:
                a[(0,) * a.ndim] = a[(-1,) * a.ndim]  # the two ends are inside the mapping
            if a.size <= 1 << 16:
                a.sum()
    assert outcomes["view"] > 100 and outcomes["error"] > 1000, outcomes


# --- DLPack ---------------------------------------------------------------------------------


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    pass


DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))),
]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DLManagedTensorVersioned._fields_ = [
    ("major", ctypes.c_uint32),
    ("minor", ctypes.c_uint32),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]

_GET_POINTER = ctypes.pythonapi.PyCapsule_GetPointer
_GET_POINTER.restype = ctypes.c_void_p
_GET_POINTER.argtypes = [ctypes.py_object, ctypes.c_char_p]
_SET_NAME = ctypes.pythonapi.PyCapsule_SetName
_SET_NAME.restype = ctypes.c_int
_SET_NAME.argtypes = [ctypes.py_object, ctypes.c_char_p]
_USED_NAMES = {b"dltensor": b"used_dltensor", b"dltensor_versioned": b"used_dltensor_versioned"}


def consume(capsule: object, versioned: bool) -> Dict[str, Any]:
    """Read a DLPack capsule the way a C consumer does (dlpack.h's layout), then release it."""
    name = b"dltensor_versioned" if versioned else b"dltensor"
    ptr = _GET_POINTER(capsule, name)
    kind = DLManagedTensorVersioned if versioned else DLManagedTensor
    m = ctypes.cast(ptr, ctypes.POINTER(kind)).contents
    t = m.dl_tensor
    out = {
        "data": t.data,
        "device": (t.device.device_type, t.device.device_id),
        "dtype": (t.dtype.code, t.dtype.bits, t.dtype.lanes),
        "shape": [t.shape[i] for i in range(t.ndim)],
        "strides": [t.strides[i] for i in range(t.ndim)],
        "byte_offset": t.byte_offset,
    }
    if versioned:
        out["version"] = (m.major, m.minor)
        out["flags"] = m.flags
    assert _SET_NAME(capsule, _USED_NAMES[name]) == 0
    m.deleter(ctypes.cast(ptr, ctypes.POINTER(kind)))
    return out


class Holder:
    """Hands a ready-made capsule to np.from_dlpack."""

    def __init__(self, capsule: object) -> None:
        self.capsule = capsule

    def __dlpack__(self, **_kw: object) -> object:
        return self.capsule

    def __dlpack_device__(self) -> Tuple[int, int]:
        return (1, 0)


def test_dlpack_capsules_follow_dlpack_h(mapping: Any) -> None:
    native.write_array_header(mapping, 0, (3, 2), "float64", order="F")
    v = native.ArrayView(mapping)
    assert v.__dlpack_device__() == (1, 0)
    legacy = v.__dlpack__()
    assert 'capsule object "dltensor"' in repr(legacy)
    info = consume(legacy, versioned=False)
    data_address = np.asarray(v).__array_interface__["data"][0]
    assert info == {
        "data": data_address,
        "device": (1, 0),
        "dtype": (2, 64, 1),
        "shape": [3, 2],
        "strides": [1, 3],  # in elements
        "byte_offset": 0,
    }
    versioned = v.__dlpack__(max_version=(1, 2))
    assert 'capsule object "dltensor_versioned"' in repr(versioned)
    info = consume(versioned, versioned=True)
    assert info["version"] == (1, 0) and info["flags"] == 0 and info["data"] == data_address
    # Asking for an older major gets the legacy capsule.
    assert 'capsule object "dltensor"' in repr(v.__dlpack__(max_version=(0, 8)))
    # Capsules nobody consumed are freed by their destructor.
    for _ in range(100):
        v.__dlpack__()
        v.__dlpack__(max_version=(1, 0))
    gc.collect()


@pytest.mark.parametrize("dtype,kind,bits,code", DTYPES)
def test_dlpack_types(mapping: Any, dtype: str, kind: str, bits: int, code: int) -> None:
    native.write_array_header(mapping, 0, (2,), dtype)
    info = consume(native.ArrayView(mapping).__dlpack__(max_version=(1, 0)), versioned=True)
    assert info["dtype"] == (code, bits, 1)


def test_dlpack_is_zero_copy(mapping: Any) -> None:
    native.write_array_header(mapping, 0, (4, 4), "int32", data=np.zeros((4, 4), np.int32))
    v = native.ArrayView(mapping)
    d = np.from_dlpack(v)
    a = np.asarray(v)
    assert np.shares_memory(a, d) or d.__array_interface__["data"][0] == a.__array_interface__["data"][0]
    a[1, 2] = 7  # a write through the view is seen by the DLPack array
    assert d[1, 2] == 7
    mapping.set("i32", 128 + 4 * 5, 11)
    assert d[1, 1] == 11
    if d.flags.writeable:  # numpy 2.0 marks legacy DLPack imports read-only
        d[3, 3] = -5  # and a write through the DLPack array by the view
        assert np.asarray(native.ArrayView(mapping))[3, 3] == -5
        assert mapping.get("i32", 128 + 4 * 15) == -5


def test_dlpack_options(mapping: Any) -> None:
    native.write_array_header(mapping, 0, (3,), "float32", data=np.array([1, 2, 3], np.float32))
    v = native.ArrayView(mapping)
    assert consume(v.__dlpack__(dl_device=(1, 0)), versioned=False)["device"] == (1, 0)
    with pytest.raises(BufferError, match=r"cannot export to device \(2, 0\)"):
        v.__dlpack__(dl_device=(2, 0))
    with pytest.raises(BufferError, match="stream must be None"):
        v.__dlpack__(stream=1)
    # copy=True: a private C-order copy, flagged as copied, the view's memory untouched.
    info = consume(v.__dlpack__(max_version=(1, 0), copy=True), versioned=True)
    assert info["flags"] == 2 and info["data"] != np.asarray(v).__array_interface__["data"][0]
    cap = v.__dlpack__(copy=True, max_version=(1, 0))
    c = np.from_dlpack(Holder(cap)) if NUMPY_VERSIONED_DLPACK else None
    if c is not None:
        c[0] = 99.0
        assert np.asarray(v)[0] == 1.0
    # copy=False: never a copy.
    assert consume(v.__dlpack__(copy=False), versioned=False)["data"] == np.asarray(v).__array_interface__["data"][0]


def test_dlpack_read_only(tmp_path: Any) -> None:
    path = tmp_path / "ro.bin"
    with native.anonymous(4096) as m:
        native.write_array_header(m, 0, (2,), "int8", data=np.array([5, 6], np.int8))
        path.write_bytes(m.read())
    with native.map_file(path, "r") as ro:
        v = native.ArrayView(ro)
        # The legacy capsule cannot say read-only: refused (a consumer could write to a
        # read-only mapping and crash), as numpy does for its own read-only arrays.
        with pytest.raises(BufferError, match="read-only array view exports only as a DLPack 1.x"):
            v.__dlpack__()
        info = consume(v.__dlpack__(max_version=(1, 0)), versioned=True)
        assert info["flags"] == 1  # READ_ONLY
        if NUMPY_VERSIONED_DLPACK:
            d = np.from_dlpack(v)
            assert not d.flags.writeable and d.tolist() == [5, 6]
        else:
            with pytest.raises(BufferError):
                np.from_dlpack(v)
        # A copy is the consumer's own, and writable.
        assert consume(v.__dlpack__(copy=True), versioned=False)["byte_offset"] == 0


def test_dlpack_non_contiguous(mapping: Any) -> None:
    src = np.arange(12, dtype=np.int64).reshape(3, 4)[::-1, ::2]
    native.write_array_header(mapping, 0, src.shape, src.dtype, strides=src.strides, data=src)
    v = native.ArrayView(mapping)
    info = consume(v.__dlpack__(), versioned=False)
    assert info["strides"] == [-4, 2] and info["shape"] == [3, 2]
    np.testing.assert_array_equal(np.from_dlpack(v), src)


def test_torch_from_dlpack(mapping: Any) -> None:
    torch = pytest.importorskip("torch")
    native.write_array_header(mapping, 0, (2, 3), "float32", data=np.arange(6, dtype=np.float32).reshape(2, 3))
    v = native.ArrayView(mapping)
    t = torch.from_dlpack(v)
    assert tuple(t.shape) == (2, 3) and t.dtype == torch.float32
    assert t.tolist() == [[0, 1, 2], [3, 4, 5]]
    np.asarray(v)[0, 0] = 42.0
    assert t[0, 0].item() == 42.0  # zero copy


# --- Lifetimes: views, arrays and capsules outlive close() ----------------------------------


def test_view_outlives_close() -> None:
    m = native.anonymous(4096)
    native.write_array_header(m, 0, (4,), "uint16", data=np.arange(4, dtype=np.uint16))
    v = native.ArrayView(m)
    a = np.asarray(v)
    d = np.from_dlpack(v)
    cap = v.__dlpack__()
    m.close()
    assert m.closed
    with pytest.raises(shmbridge.ClosedError):
        native.ArrayView(m)
    with pytest.raises(shmbridge.ClosedError):
        native.write_array_header(m, 0, (4,), "uint8")
    # Everything made before close() still works: the view keeps the memory mapped.
    assert np.asarray(v).tolist() == [0, 1, 2, 3]
    del v
    gc.collect()
    a[0] = 10
    assert a.tolist() == [10, 1, 2, 3] and d.tolist() == [10, 1, 2, 3]
    del a, d
    gc.collect()
    # The capsule alone keeps it mapped too.
    assert np.from_dlpack(Holder(cap)).tolist() == [10, 1, 2, 3]
    del cap
    gc.collect()


def test_segment_shared_with_another_process(shm_name: str) -> None:
    # Real processes, a real /dev/shm segment: the child writes an array, the parent views
    # it, then the child writes through its view and the parent's array sees it in place.
    size = native.array_size((3, 4), "float64")
    seg = native.Segment(shm_name, "create_only", 4096)
    try:
        child = """
            import sys, numpy as np
            from shmbridge import _native as native
            seg = native.Segment(sys.argv[1])
            src = np.arange(12, dtype=np.float64).reshape(3, 4)
            native.write_array_header(seg.mapping, 0, src.shape, src.dtype, order="F", data=src)
            print(native.ArrayView(seg.mapping).strides)
        """
        assert run_py(child, shm_name).stdout.strip() == "(8, 24)"
        v = native.ArrayView(seg.mapping)
        a = np.asarray(v)
        assert v.nbytes + 128 == size and a.flags.f_contiguous
        np.testing.assert_array_equal(a, np.arange(12.0).reshape(3, 4))
        writer = """
            import sys, numpy as np
            from shmbridge import _native as native
            seg = native.Segment(sys.argv[1])
            np.asarray(native.ArrayView(seg.mapping))[2, 3] = -1.5
        """
        run_py(writer, shm_name)
        assert a[2, 3] == -1.5
    finally:
        seg.unlink()
        seg.close()
