"""Shared arrays (docs/SPEC.md 7.5) and arrays in channel messages (7.6) from Python.

Writers run in subprocesses and readers here, so every array crosses a process boundary;
bad headers are planted with plain file writes into real segments, at offsets taken from the
SPEC alone (the array header of an array segment starts at byte 192).
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, List

import numpy as np
import pytest

import shmbridge

from _helpers import Proc, run_py

DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
]

AH = 192  # where an array segment's array header starts (SPEC 7.5)

# The values both sides compute for (dtype, shape, order): no out-of-band data.
_PATTERN = """
import numpy as np
def pattern(dtype, shape, order):
    n = int(np.prod(shape)) if len(shape) else 1
    base = (np.arange(n) * 7 + 3) % 101
    a = base.astype(dtype) if dtype != "bool" else (base % 3 == 0)
    if dtype.startswith("complex"):
        a = a + 1j * base[::-1].astype(dtype)
    return np.asarray(a.reshape(shape), order=order)
"""

_ns: dict = {}
exec(_PATTERN, _ns)
pattern: Callable[[str, Any, str], Any] = _ns["pattern"]


def _py(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_py(_PATTERN + textwrap.dedent(code), *args, timeout=timeout)


def test_every_dtype_both_orders_from_a_subprocess_writer(shm_names: Callable[[], str]) -> None:
    cases = [(d, o, shm_names()) for d in DTYPES for o in "CF"]
    spec = ";".join(f"{d},{o},{n}" for d, o, n in cases)
    _py(
        """
        import sys, shmbridge
        keep = []
        for item in sys.argv[1].split(";"):
            d, o, name = item.split(",")
            a = pattern(d, (3, 4, 5), o)
            sa = shmbridge.SharedArray.create(name, (3, 4, 5), d, order=o)
            sa.write(a)
            keep.append(sa)
        for sa in keep:
            sa.close()
        """,
        spec,
    )
    for d, o, name in cases:
        with shmbridge.SharedArray.open(name, readonly=True) as sa:
            want = pattern(d, (3, 4, 5), o)
            assert sa.dtype == np.dtype(d)
            assert sa.shape == (3, 4, 5)
            assert sa.array.flags.f_contiguous == (o == "F")
            assert sa.array.strides == want.strides
            assert sa.version == 1
            np.testing.assert_array_equal(sa.array, want)
            c = sa.copy()
            np.testing.assert_array_equal(c, want)
            assert c.strides == want.strides
            assert not np.shares_memory(c, sa.array)
            assert not sa.array.flags.writeable


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1,)])
def test_zero_d_and_empty_shapes(shm_name: str, shape: Any) -> None:
    _py(
        """
        import sys, shmbridge, json
        shape = tuple(json.loads(sys.argv[2]))
        sa = shmbridge.share(pattern("float64", shape, "C"), sys.argv[1])
        sa.close()
        """,
        shm_name,
        str(list(shape)),
    )
    sa = shmbridge.SharedArray.open(shm_name)
    assert sa.shape == shape
    assert sa.array.shape == shape
    np.testing.assert_array_equal(sa.copy(), pattern("float64", shape, "C"))
    sa.close()


def test_versions_waits_and_copies_across_processes(shm_name: str, procs: List[Proc]) -> None:
    writer = Proc(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time, shmbridge
                sa = shmbridge.SharedArray.create(sys.argv[1], (64, 64), "int32")
                print("created", flush=True)
                time.sleep(0.2)
                for v in range(1, 6):
                    with sa.writing() as a:
                        a[...] = v
                    time.sleep(0.05)
                sa.close_writer()
                """
            ),
            shm_name,
        ]
    )
    procs.append(writer)
    # The reader may start first: it waits for the segment to appear.
    sa = shmbridge.SharedArray.open(shm_name, readonly=True, timeout=30)
    seen = []
    while True:
        try:
            sa.wait(timeout=30)
        except shmbridge.WriterClosed:
            break
        c = sa.copy()
        assert (c == c.flat[0]).all(), "a torn copy"
        seen.append(int(c.flat[0]))
    assert seen == sorted(seen) and seen, seen
    assert int(sa.copy().flat[0]) == 5
    assert sa.version == 5
    assert writer.wait()[0] == 0
    sa.close()


def test_copies_are_never_torn_while_a_writer_publishes_back_to_back(
    shm_name: str, procs: List[Proc]
) -> None:
    writer = Proc(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import os, sys, time, shmbridge
                sa = shmbridge.SharedArray.create(sys.argv[1], (128, 1024), "uint64")
                print("created", flush=True)
                v = 0
                end = time.monotonic() + 60
                while os.path.exists("/dev/shm/" + sys.argv[1]) and time.monotonic() < end:
                    v += 1
                    a = sa.begin_write()
                    a.fill(v)
                    sa.publish()
                """
            ),
            shm_name,
        ]
    )
    procs.append(writer)
    sa = shmbridge.SharedArray.open(shm_name, timeout=30)
    sa.wait(timeout=30)
    last, copies = 0, 0
    # At least 30 copies, and on until one of them saw the writer move on: a loaded machine
    # may not run the writer during the first 30 (no timing is asserted).
    deadline = time.monotonic() + 30
    while (copies < 30 or last <= 1) and time.monotonic() < deadline:
        c = sa.copy()
        first = int(c.flat[0])
        assert (c == first).all(), f"a torn copy of version {first}"
        assert first >= last
        last, copies = first, copies + 1
    assert last > 1, f"the writer published nothing new in 30 s ({copies} copies)"
    sa.unlink()  # tells the writer to stop
    assert writer.wait()[0] == 0
    sa.close()


def test_writable_views_dlpack_and_close_with_live_views(shm_name: str) -> None:
    sa = shmbridge.SharedArray.create(shm_name, (4, 6), np.float32, order="F")
    a = sa.begin_write()
    assert a.flags.writeable and a.flags.f_contiguous
    a[...] = np.arange(24, dtype=np.float32).reshape(4, 6)
    sa.publish()
    other = shmbridge.SharedArray.open(shm_name)
    np.testing.assert_array_equal(other.array, a)
    # DLPack: the same memory.
    d = np.from_dlpack(other)
    assert np.shares_memory(d, other.array)
    assert sa.__dlpack_device__() == (1, 0)
    # close() with live views: they stay valid (their own mapping), the handle does not.
    view = other.array
    other.close()
    assert view.sum() == sum(range(24))
    a[0, 0] = 100.0
    assert view[0, 0] == 100.0
    with pytest.raises(shmbridge.ClosedError):
        other.copy()
    with pytest.raises(shmbridge.ClosedError):
        other.array
    sa.close()
    del view, a, d


def test_readonly_handles_refuse_writes(shm_name: str) -> None:
    w = shmbridge.SharedArray.create(shm_name, 8, "uint8")
    r = shmbridge.SharedArray.open(shm_name, readonly=True)
    assert r.readonly and not r.array.flags.writeable
    with pytest.raises(PermissionError):
        r.publish()
    w.close()
    r.close()


def test_share_is_one_line_and_open_needs_nothing_else(shm_name: str) -> None:
    src = np.arange(12, dtype=np.int16).reshape(3, 4)
    sa = shmbridge.share(src, shm_name)
    out = _py(
        """
        import sys, shmbridge
        sa = shmbridge.SharedArray.open(sys.argv[1])
        print(sa.dtype, sa.shape, sa.copy().tolist())
        """,
        shm_name,
    )
    assert out.stdout.strip() == f"int16 (3, 4) {src.tolist()}"
    with pytest.raises(FileExistsError):
        shmbridge.share(src, shm_name)
    sa.close()


def test_ctrl_c_interrupts_wait(shm_name: str) -> None:
    w = shmbridge.SharedArray.create(shm_name, 4, "uint8")
    p = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, shmbridge\n"
            "sa = shmbridge.SharedArray.open(sys.argv[1])\n"
            "print('waiting', flush=True)\n"
            "sa.wait()\n",
            shm_name,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "waiting"
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert p.returncode != 0 and "KeyboardInterrupt" in err, err
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        w.close()


# ---- bad headers planted in real segments ------------------------------------------------


def _plant(name: str, offset: int, data: bytes) -> None:
    fd = os.open(Path("/dev/shm") / name, os.O_RDWR)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "case, offset, data, exc",
    [
        ("too many dims", AH + 18, bytes([33]), shmbridge.Unsupported),
        ("unknown dtype code", AH + 16, b"x", shmbridge.Unsupported),
        ("unknown bits", AH + 17, bytes([24]), shmbridge.Unsupported),
        (
            "shape x itemsize overflow",
            AH + 64,
            struct.pack("<Qq", 1 << 40, 4 << 40) + struct.pack("<Qq", 1 << 40, 4),
            shmbridge.CorruptHeader,
        ),
        ("strides outside the buffer", AH + 72, struct.pack("<q", 4096), shmbridge.CorruptHeader),
        ("negative stride reaching before", AH + 72, struct.pack("<q", -16), shmbridge.CorruptHeader),
        ("data past the end", AH + 32, struct.pack("<Q", 1 << 20), shmbridge.Truncated),
        ("not an array header", AH, b"NOTARRAY", shmbridge.BadMagic),
    ],
)
def test_bad_headers_give_clear_errors_naming_the_segment(
    shm_name: str, case: str, offset: int, data: bytes, exc: type
) -> None:
    w = shmbridge.SharedArray.create(shm_name, (4, 4), "float32")
    _plant(shm_name, offset, data)
    with pytest.raises(exc) as e:
        shmbridge.SharedArray.open(shm_name)
    assert shm_name in str(e.value), (case, str(e.value))
    # Another process sees the same.
    out = run_py(
        "import sys, shmbridge\n"
        "try:\n"
        "    shmbridge.SharedArray.open(sys.argv[1])\n"
        "except shmbridge.Error as e:\n"
        "    print(type(e).__name__)\n",
        shm_name,
    )
    assert out.stdout.strip() == exc.__name__
    w.close()


def test_a_segment_shrunk_after_creation(shm_name: str) -> None:
    w = shmbridge.SharedArray.create(shm_name, (256, 256), "uint8")
    r = shmbridge.SharedArray.open(shm_name)
    os.truncate(Path("/dev/shm") / shm_name, 4096)
    with pytest.raises(shmbridge.Truncated) as e:
        r.copy()
    assert shm_name in str(e.value)
    with pytest.raises(shmbridge.Truncated) as e:
        shmbridge.SharedArray.open(shm_name)
    assert shm_name in str(e.value)
    with pytest.raises(shmbridge.Truncated):
        w.publish()
    w.close()
    r.close()


def test_not_an_array_segment(shm_name: str) -> None:
    f = shmbridge.FramedSegment.create(shm_name, 64)
    with pytest.raises(shmbridge.Unsupported, match="not an array segment"):
        shmbridge.SharedArray.open(shm_name)
    f.close()


def test_an_array_segment_is_not_a_file_transfer(shm_name: str, tmp_path: Path) -> None:
    sa = shmbridge.SharedArray.create(shm_name, 16, "uint8")
    with pytest.raises(shmbridge.Unsupported, match="array segment"):
        shmbridge.recv_file(shm_name, tmp_path / "out", timeout=5)
    assert not (tmp_path / "out").exists()
    sa.close()


# ---- arrays in channel messages ----------------------------------------------------------


def test_array_messages_from_a_subprocess_writer(shm_name: str, procs: List[Proc]) -> None:
    sender = Proc(
        [
            sys.executable,
            "-c",
            _PATTERN
            + textwrap.dedent(
                """
                import sys, time, shmbridge
                w = shmbridge.Channel.create(sys.argv[1], slots=4, max_message=1 << 16, readers=1)
                end = time.monotonic() + 30
                while not w.status().reader_places and time.monotonic() < end:
                    time.sleep(0.01)
                for k, d in enumerate(DTYPES):
                    order = "F" if k % 2 else "C"
                    loan = w.loan_array((3, 5), d, order=order, timeout=30)
                    loan.array[...] = pattern(d, (3, 5), order)
                    loan.publish(tag=k)
                w.send(b"raw bytes", tag=99, timeout=30)
                for shape in [(), (0, 4)]:
                    with w.loan_array(shape, "int64", timeout=30) as loan:
                        loan.array[...] = 7
                w.close()
                """
            ).replace("DTYPES", repr(DTYPES)),
            shm_name,
        ]
    )
    procs.append(sender)
    r = shmbridge.Channel.open(shm_name, timeout=30)
    held = []
    for k, d in enumerate(DTYPES):
        m = r.recv(timeout=30)
        assert m.tag == k and m.flags & 1
        a = m.array()
        order = "F" if k % 2 else "C"
        assert a.dtype == np.dtype(d) and a.shape == (3, 5)
        assert a.flags.f_contiguous == (order == "F")
        assert not a.flags.writeable
        np.testing.assert_array_equal(a, pattern(d, (3, 5), order))
        # The array outlives release(): the slot stays held until the array goes (two are
        # kept to the end, which leaves the writer two of its four slots).
        m.release()
        with pytest.raises(shmbridge.ClosedError):
            m.array()
        if k < 2:
            held.append((a, pattern(d, (3, 5), order)))
        del a
    for a, want in held:
        np.testing.assert_array_equal(a, want)
    del held
    m = r.recv(timeout=30)
    with pytest.raises(ValueError, match="no array header"):
        m.array()
    m.release()
    m = r.recv(timeout=30)
    assert m.array().shape == () and m.array() == 7
    m.release()
    m = r.recv(timeout=30)
    assert m.array().shape == (0, 4)
    m.release()
    with pytest.raises(shmbridge.WriterClosed):
        r.recv(timeout=30)
    assert sender.wait()[0] == 0
    r.close()


def test_array_loans_limits_and_bad_message_headers(shm_name: str) -> None:
    w = shmbridge.Channel.create(shm_name, slots=4, max_message=1024, readers=1)
    r = shmbridge.Channel.open(shm_name)
    with pytest.raises(shmbridge.OutOfBounds, match="max_message"):
        w.loan_array((1024,), "uint8")
    plain = w.loan(8)
    with pytest.raises(ValueError):
        plain.array
    plain.discard()
    loan = w.loan_array((2, 2), "float32")
    with pytest.raises(ValueError, match="whole"):
        loan.publish(nbytes=4)
    loan.discard()
    # Array messages whose header was damaged after the loan wrote it (as a foreign or broken
    # writer could): each broken rule gives its error, naming the channel and the message.
    cases = [
        (18, bytes([40]), shmbridge.Unsupported),  # too many dims
        (16, b"q", shmbridge.Unsupported),  # unknown dtype code
        (72, struct.pack("<q", 64), shmbridge.CorruptHeader),  # a stride past the data
        (64, struct.pack("<Qq", 1 << 62, 4) + struct.pack("<Qq", 1 << 62, 4), shmbridge.CorruptHeader),
        (32, struct.pack("<Q", 4096), shmbridge.Truncated),  # data past the message
        (0, b"XXXXXXXX", shmbridge.BadMagic),
    ]
    for seq, (offset, data, exc) in enumerate(cases):
        loan = w.loan_array((4, 4), "float32")
        mv = memoryview(loan)
        mv[offset : offset + len(data)] = data
        mv.release()
        loan.publish()
        m = r.recv(timeout=5)
        with pytest.raises(exc) as e:
            m.array()
        assert shm_name in str(e.value) and f"message {seq}" in str(e.value), str(e.value)
        m.release()
    w.close()
    r.close()


def test_a_message_array_holds_its_slot_after_release(shm_name: str) -> None:
    w = shmbridge.Channel.create(shm_name, slots=2, max_message=1024, readers=1)
    r = shmbridge.Channel.open(shm_name)
    loan = w.loan_array((4,), "int32")
    loan.array[...] = 5
    loan.publish()
    m = r.recv(timeout=5)
    a = m.array()
    m.release()
    w.send(b"x" * 200, timeout=5)
    # The writer's only other slot is the held one: it waits, and says why.
    with pytest.raises(shmbridge.Timeout, match="holds 1 message"):
        w.send(b"y" * 200, timeout=0.2)
    assert a.tolist() == [5, 5, 5, 5]
    del a
    r.recv(timeout=5).release()
    w.send(b"z" * 200, timeout=5)  # the slot came back with the array
    w.close()
    r.close()


def test_dtype_arguments_in_every_form(shm_names: Callable[[], str]) -> None:
    forms = [
        (np.uint8, "uint8"),
        (np.dtype("<f4"), "float32"),
        ("int16", "int16"),
        ("<c16", "complex128"),
        (float, "float64"),
        (np.bool_, "bool"),
    ]
    for form, want in forms:
        name = shm_names()
        sa = shmbridge.SharedArray.create(name, 2, form)
        assert sa.dtype == np.dtype(want), form
        sa.close()
        w = shmbridge.Channel.create(name + "c", slots=2, max_message=256, readers=1)
        try:
            loan = w.loan_array((2,), form)
            assert loan.array.dtype == np.dtype(want), form
            loan.discard()
        finally:
            w.close()
            shmbridge.remove(name + "c")
    with pytest.raises(TypeError):
        shmbridge.SharedArray.create(shm_names(), 2, object())
    with pytest.raises(ValueError):
        shmbridge.SharedArray.create(shm_names(), 2, "float128")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a segment to another user needs root")
def test_other_users_array_segments_are_refused_unless_allowed(shm_name: str) -> None:
    nobody = 65534
    w = shmbridge.SharedArray.create(shm_name, 4, "uint8")
    os.chown(Path("/dev/shm") / shm_name, nobody, nobody)
    with pytest.raises(PermissionError, match="65534"):
        shmbridge.SharedArray.open(shm_name)
    with pytest.raises(PermissionError):
        shmbridge.SharedArray.open(shm_name, timeout=5)
    with pytest.raises(PermissionError):
        shmbridge.SharedArray.open(shm_name, owner=12345)
    for owner in ("any", nobody, [nobody]):
        r = shmbridge.SharedArray.open(shm_name, owner=owner)
        assert r.shape == (4,)
        r.close()
    w.close()


# ---- Rust both ways (the interop actor's array-write / array-read, tests/interop/PROTOCOL.md) --


def interop_values(dtype: str, shape: Any, order: str) -> Any:
    """The protocol's array: element i (C order) is v = (i * 7 + 3) % 101."""
    n = int(np.prod(shape)) if len(shape) else 1
    v = (np.arange(n) * 7 + 3) % 101
    if dtype == "bool":
        a = v % 3 == 0
    elif dtype.startswith("complex"):
        a = (v + 1j * (100 - v)).astype(dtype)
    else:
        a = v.astype(dtype)
    return np.asarray(a.reshape(shape), order=order)


def _actor(rust_actor: str, *args: str) -> dict:
    import json

    out = subprocess.run([rust_actor, *args], capture_output=True, text=True, timeout=60)
    line = json.loads(out.stdout.strip().splitlines()[-1])
    assert out.returncode == 0 and line["ok"], (args, out.stdout, out.stderr)
    return line


@pytest.mark.parametrize("dtype", DTYPES)
def test_arrays_rust_to_numpy_and_numpy_to_rust(
    rust_actor: str, shm_names: Callable[[], str], dtype: str
) -> None:
    for shape, order in [((3, 4, 5), "C"), ((3, 4, 5), "F"), ((), "C"), ((2, 0, 3), "C")]:
        dims = ",".join(map(str, shape))
        want = interop_values(dtype, shape, order)
        # Rust writes, numpy reads: nothing but the name travels.
        name = shm_names()
        _actor(rust_actor, "array-write", "--name", name, "--dtype", dtype, "--shape", dims, "--order", order)
        with shmbridge.SharedArray.open(name, readonly=True) as sa:
            assert sa.dtype == np.dtype(dtype) and sa.shape == shape
            assert sa.array.strides == want.strides
            np.testing.assert_array_equal(sa.array, want)
            np.testing.assert_array_equal(sa.copy(), want)
        # numpy writes, Rust reads.
        name = shm_names()
        shmbridge.share(want, name).close()
        got = _actor(rust_actor, "array-read", "--name", name, "--dtype", dtype, "--shape", dims, "--order", order)
        assert got["dtype"] == dtype and got["version"] == 1


def test_the_rust_reader_notices_a_different_array(rust_actor: str, shm_name: str) -> None:
    import json

    src = interop_values("int16", (3, 4), "C")
    src[1, 2] += 1
    shmbridge.share(src, shm_name).close()
    for args in (["--dtype", "int16"], ["--dtype", "int32"], ["--dtype", "int16", "--order", "F"]):
        out = subprocess.run(
            [rust_actor, "array-read", "--name", shm_name, "--shape", "3,4", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        line = json.loads(out.stdout.strip().splitlines()[-1])
        assert out.returncode == 1 and line["error"] == "mismatch", (args, out.stdout)


def test_a_handle_collected_mid_write_ends_the_write(shm_name: str) -> None:
    import gc

    w = shmbridge.SharedArray.create(shm_name, (8,), "int32")
    w.begin_write()[...] = 3
    del w
    gc.collect()
    r = shmbridge.SharedArray.open(shm_name)
    assert r.copy().tolist() == [3] * 8  # not a timeout: the write was ended
    assert r.version == 1
    r.close()
