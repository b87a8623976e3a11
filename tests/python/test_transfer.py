"""File transfer and streams from Python: send_file / recv_file, StreamWriter / StreamReader
and ``python -m shmbridge`` (the one ``shmbridge`` command, run through the extension), against
the ``shmbridge`` binary and other processes. test_cli.py has the command's own tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

import shmbridge
from _helpers import EXAMPLES, Proc, run_py, shm_exists, wait_asleep, wait_ring_drained, wait_ring_full

KiB = 1024
MiB = 1024 * 1024


def make_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def run_cli(cli: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([cli, *args], capture_output=True, text=True, timeout=timeout)


def py_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shmbridge", *args], capture_output=True, text=True, timeout=timeout
    )


# --- one-shot and streaming, both directions, against the Rust command ---------------------


def test_python_send_rust_recv_one_shot(shmbridge_cli: str, shm_name: str, tmp_path: Path) -> None:
    data = make_file(tmp_path / "in.bin", 300 * KiB + 7)
    r = shmbridge.send_file(tmp_path / "in.bin", shm_name)
    assert (r.name, r.bytes, r.crc32, r.transfer) == (shm_name, len(data), zlib.crc32(data), "one-shot")
    assert r.path == str(tmp_path / "in.bin") and r.elapsed >= 0 and r.throughput > 0
    assert r.segment_size == len(data) + shmbridge.FRAMED_HEADER_LEN
    assert shm_exists(shm_name), "a one-shot segment waits for its receiver"
    proc = run_cli(shmbridge_cli, "recv", shm_name, str(tmp_path / "out.bin"), "--timeout", "10s")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.bin").read_bytes() == data
    assert not shm_exists(shm_name)


def test_rust_send_python_recv_one_shot(shmbridge_cli: str, shm_name: str, tmp_path: Path) -> None:
    data = make_file(tmp_path / "in.bin", 200 * KiB)
    proc = run_cli(shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "--name", shm_name)
    assert proc.returncode == 0, proc.stderr
    r = shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=10)
    assert (r.bytes, r.crc32, r.transfer) == (len(data), zlib.crc32(data), "one-shot")
    assert r.path == str(tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert not shm_exists(shm_name)


def test_python_send_stream_rust_recv(
    shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    data = make_file(tmp_path / "in.bin", 1 * MiB + 123)
    recv = Proc([shmbridge_cli, "-q", "recv", shm_name, str(tmp_path / "out.bin"), "--timeout", "20s"])
    procs.append(recv)
    seg = 64 * KiB
    r = shmbridge.send_file(tmp_path / "in.bin", shm_name, transfer="stream", segment_size=seg, timeout=20)
    assert (r.bytes, r.crc32, r.transfer, r.segment_size) == (len(data), zlib.crc32(data), "stream", seg)
    code, _, err = recv.wait()
    assert code == 0, err
    assert (tmp_path / "out.bin").read_bytes() == data
    assert not shm_exists(shm_name), "a streaming sender removes its segment"


def test_auto_mode_streams_a_file_larger_than_the_segment(
    shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    data = make_file(tmp_path / "in.bin", 256 * KiB)
    recv = Proc([shmbridge_cli, "-q", "recv", shm_name, str(tmp_path / "out.bin"), "--timeout", "20s"])
    procs.append(recv)
    r = shmbridge.send_file(tmp_path / "in.bin", shm_name, segment_size=32 * KiB, timeout=20)
    assert r.transfer == "stream"
    assert recv.wait()[0] == 0
    assert (tmp_path / "out.bin").read_bytes() == data


def test_rust_send_stream_python_recv(
    shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    data = make_file(tmp_path / "in.bin", 1 * MiB + 5)
    send = Proc(
        [shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "--name", shm_name, "--stream",
         "--segment-size", "64K", "--timeout", "20s"]
    )  # fmt: skip
    procs.append(send)
    r = shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=20)
    assert (r.bytes, r.crc32, r.transfer) == (len(data), zlib.crc32(data), "stream")
    code, _, err = send.wait()
    assert code == 0, err
    assert (tmp_path / "out.bin").read_bytes() == data
    assert not shm_exists(shm_name)


def test_python_cli_both_ways(shmbridge_cli: str, shm_names: Callable[[], str], tmp_path: Path) -> None:
    data = make_file(tmp_path / "in.bin", 100 * KiB)
    a, b = shm_names(), shm_names()
    p = py_cli("send", str(tmp_path / "in.bin"), "--name", a)
    assert p.returncode == 0, p.stderr
    assert f"via one-shot segment \"{a}\"" in p.stderr and f"shmbridge recv {a} OUT" in p.stderr
    assert run_cli(shmbridge_cli, "-q", "recv", a, str(tmp_path / "o1")).returncode == 0
    assert run_cli(shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "--name", b).returncode == 0
    p = py_cli("recv", b, str(tmp_path / "o2"), "--timeout", "10s")
    assert p.returncode == 0, p.stderr
    assert p.stderr.startswith("received ") and p.stderr.rstrip().endswith(str(tmp_path / "o2"))
    assert (tmp_path / "o1").read_bytes() == data == (tmp_path / "o2").read_bytes()


def test_python_cli_default_name_ls_info_rm(shm_names: Callable[[], str], tmp_path: Path) -> None:
    name = shm_names()
    src = tmp_path / name  # the default segment name is the file's name
    src.write_bytes(b"hello")
    assert py_cli("-q", "send", str(src)).returncode == 0
    assert shm_exists(name)
    ls = py_cli("ls")
    assert ls.returncode == 0 and any(
        line.split()[:2] == [name, "framed/message"] for line in ls.stdout.splitlines()
    )
    info = py_cli("info", name, "--json")
    assert info.returncode == 0 and json.loads(info.stdout)["framed"]["payload_len"] == 5
    assert py_cli("rm", name).returncode == 0
    assert not shm_exists(name)
    assert py_cli("rm", name).returncode == 3
    assert py_cli("info", name).returncode == 3


def test_example_transfer_file(shm_names: Callable[[], str], tmp_path: Path) -> None:
    data = make_file(tmp_path / "data.zip", 150 * KiB)
    for extra in ([], ["--stream"]):
        name = shm_names()
        out = tmp_path / f"result{len(extra)}.zip"
        with subprocess.Popen(
            [sys.executable, str(EXAMPLES / "transfer_file.py"), "send", str(tmp_path / "data.zip"), name, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as sender:
            recv = subprocess.run(
                [sys.executable, str(EXAMPLES / "transfer_file.py"), "recv", str(out), name],
                capture_output=True,
                text=True,
                timeout=60,
            )
            s_out, s_err = sender.communicate(timeout=60)
        assert recv.returncode == 0, recv.stderr
        assert sender.returncode == 0, s_err
        assert out.read_bytes() == data
        assert f"wrote {len(data)} bytes" in recv.stdout
        assert ("stream" if extra else "one-shot") in s_out
        assert not shm_exists(name)


# --- progress, cancellation, Ctrl-C --------------------------------------------------------


def test_progress_is_called_and_rate_limited(
    shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    data = make_file(tmp_path / "in.bin", 2 * MiB)
    send = Proc(
        [shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "--name", shm_name, "--stream",
         "--segment-size", "16K", "--timeout", "20s"]
    )  # fmt: skip
    procs.append(send)
    calls: List[Tuple[int, Optional[int]]] = []
    started = time.monotonic()
    r = shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=20, progress=lambda d, t: calls.append((d, t)))
    elapsed = time.monotonic() - started
    assert send.wait()[0] == 0
    assert calls and calls[-1] == (len(data), len(data)) and r.bytes == len(data)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) <= elapsed * 10 + 2, "at most ~10 calls a second plus the final one"


def test_progress_final_call_for_an_empty_file(shm_name: str, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    calls: List[Tuple[int, Optional[int]]] = []
    shmbridge.send_file(tmp_path / "empty", shm_name, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(0, 0)]
    r = shmbridge.recv_file(shm_name, tmp_path / "out", timeout=5)
    assert r.bytes == 0 and (tmp_path / "out").read_bytes() == b""


class Boom(Exception):
    pass


def boom(done: int, total: Optional[int]) -> None:
    raise Boom(f"stop at {done}")


def test_progress_exception_aborts_a_one_shot_send(shm_name: str, tmp_path: Path) -> None:
    make_file(tmp_path / "in.bin", 64 * KiB)
    with pytest.raises(Boom):
        shmbridge.send_file(tmp_path / "in.bin", shm_name, progress=boom)
    assert not shm_exists(shm_name), "nothing published, segment removed"


def test_progress_exception_aborts_a_stream_send(
    shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    make_file(tmp_path / "in.bin", 256 * KiB)
    recv = Proc([shmbridge_cli, "-q", "recv", shm_name, str(tmp_path / "out.bin"), "--timeout", "20s"])
    procs.append(recv)
    with pytest.raises(Boom):
        shmbridge.send_file(tmp_path / "in.bin", shm_name, transfer="stream", segment_size=32 * KiB, timeout=20, progress=boom)
    assert not shm_exists(shm_name)
    code, _, err = recv.wait()
    assert code in (5, 6), err  # the sender aborted (6), or was gone before the receiver came (5)
    assert not (tmp_path / "out.bin").exists()


def test_progress_exception_aborts_a_receive(
    shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    make_file(tmp_path / "in.bin", 256 * KiB)
    send = Proc(
        [shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "--name", shm_name, "--stream",
         "--segment-size", "32K", "--timeout", "20s"]
    )  # fmt: skip
    procs.append(send)

    def boom_once_attached(done: int, total: Optional[int]) -> None:
        # Only once bytes came, so the receiver is attached: a stop while it still waits for
        # the stream to appear leaves the sender nobody to report gone (it then times out).
        if done > 0:
            boom(done, total)

    with pytest.raises(Boom):
        shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=20, progress=boom_once_attached)
    assert not (tmp_path / "out.bin").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.bin"], "no temporary file left"
    code, _, err = send.wait()
    assert code == 6, err  # the receiver gave up: the sender reports the peer gone


def test_ctrl_c_interrupts_a_waiting_recv(shm_name: str, tmp_path: Path, procs: List[Proc]) -> None:
    p = Proc([sys.executable, "-m", "shmbridge", "recv", shm_name, str(tmp_path / "out"), "--timeout", "30s"])
    procs.append(p)
    wait_asleep(p.p.pid, needs="_native")  # waiting for the segment, not still starting up
    started = time.monotonic()
    p.p.send_signal(signal.SIGINT)
    code, _, err = p.wait(10)
    assert code == 130 and "interrupted" in err
    assert time.monotonic() - started < 2
    assert not (tmp_path / "out").exists()


# --- a sender that dies ---------------------------------------------------------------------


def test_killed_rust_sender_mid_stream(shmbridge_cli: str, shm_name: str, tmp_path: Path, procs: List[Proc]) -> None:
    make_file(tmp_path / "in.bin", 1 * MiB)
    (tmp_path / "out.bin").write_bytes(b"old contents")
    send = Proc(
        [shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "--name", shm_name, "--stream",
         "--segment-size", "64K", "--timeout", "20s"],
    )  # fmt: skip
    procs.append(send)
    # Mid-stream: the sender frozen with a full ring; killed once this process's receiver has
    # taken that and waits for more.
    wait_ring_full(shmbridge_cli, shm_name)
    send.p.send_signal(signal.SIGSTOP)

    def kill_at_stall() -> None:
        wait_ring_drained(shmbridge_cli, shm_name)
        send.p.kill()

    killer = threading.Thread(target=kill_at_stall)
    killer.start()
    try:
        with pytest.raises(shmbridge.PeerGone, match="died|gone|abort"):
            shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=20)
    finally:
        killer.join(30)
    assert (tmp_path / "out.bin").read_bytes() == b"old contents", "target untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin", "out.bin"]
    assert not shm_exists(shm_name), "the dead sender's segment is removed"


def test_killed_python_sender_mid_stream(shm_name: str, tmp_path: Path, procs: List[Proc]) -> None:
    code = """
import sys, time, shmbridge
w = shmbridge.StreamWriter(sys.argv[1], 64 * 1024, total=1 << 20)
w.write(b"x" * 100_000, timeout=20)  # more than the ring: the reader is taking it
print("mid-stream", flush=True)
time.sleep(60)
"""
    writer = Proc([sys.executable, "-c", code, shm_name])
    procs.append(writer)

    def kill_mid_stream() -> None:
        assert writer.p.stdout is not None
        if writer.p.stdout.readline().strip() == "mid-stream":
            writer.p.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_mid_stream)
    killer.start()
    try:
        with pytest.raises(shmbridge.PeerGone):
            shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=20)
    finally:
        killer.join(30)
    assert not (tmp_path / "out.bin").exists()
    assert not shm_exists(shm_name)


# --- bad inputs -----------------------------------------------------------------------------


def test_send_a_directory(shm_name: str, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as e:
        shmbridge.send_file(tmp_path, shm_name)
    assert "directory" in str(e.value)
    assert not shm_exists(shm_name)
    p = py_cli("send", str(tmp_path), "--name", shm_name)
    assert p.returncode == 1 and p.stderr.startswith("shmbridge: ")


def test_send_a_missing_file(shm_name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        shmbridge.send_file(tmp_path / "nope", shm_name)
    assert py_cli("send", str(tmp_path / "nope"), "--name", shm_name).returncode == 3


def _as_nobody() -> str:
    """Code that drops root privileges (tests run as root, and root reads mode-000 files)."""
    # Import first: the interpreter's own files may be closed to nobody.
    return (
        "import os, sys, shmbridge\n"
        "if os.getuid() == 0:\n    os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
    )


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory anyone can enter (pytest's tmp_path is 0700, closed to an unprivileged child)."""
    d = Path(tempfile.mkdtemp(prefix="shmb_t_py_"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        for p in d.iterdir():
            p.chmod(0o700)
            p.unlink() if p.is_file() else p.rmdir()
        d.rmdir()


def test_send_an_unreadable_file(shm_name: str, open_dir: Path) -> None:
    f = open_dir / "secret.bin"
    f.write_bytes(b"secret")
    f.chmod(0)
    code = _as_nobody() + """
import sys, shmbridge
try:
    shmbridge.send_file(sys.argv[1], sys.argv[2])
except PermissionError as e:
    print("PermissionError", e)
"""
    out = run_py(code, str(f), shm_name).stdout
    assert out.startswith("PermissionError"), out
    assert not shm_exists(shm_name)


def test_recv_into_a_missing_or_unwritable_directory(shm_name: str, tmp_path: Path, open_dir: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"payload")
    shmbridge.send_file(tmp_path / "in.bin", shm_name, permissions=0o644)
    with pytest.raises(FileNotFoundError):
        shmbridge.recv_file(shm_name, tmp_path / "no" / "such" / "out.bin", timeout=1)
    locked = open_dir / "locked"
    locked.mkdir(mode=0o555)
    code = _as_nobody() + """
import sys, shmbridge
try:
    shmbridge.recv_file(sys.argv[1], sys.argv[2], timeout=1)
except PermissionError as e:
    print("PermissionError", e)
"""
    out = run_py(code, shm_name, str(locked / "out.bin")).stdout
    assert out.startswith("PermissionError"), out
    assert shm_exists(shm_name), "a failed receive before reading leaves the segment for a retry"
    assert shmbridge.recv_file(shm_name, tmp_path / "out.bin", timeout=1).bytes == 7


def test_recv_onto_a_directory(shm_name: str, tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        shmbridge.recv_file(shm_name, tmp_path, timeout=0.1)


def test_send_to_a_name_that_exists(shm_name: str, tmp_path: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"one")
    shmbridge.send_file(tmp_path / "in.bin", shm_name)
    with pytest.raises(FileExistsError):
        shmbridge.send_file(tmp_path / "in.bin", shm_name)
    assert py_cli("send", str(tmp_path / "in.bin"), "--name", shm_name).returncode == 4
    assert shmbridge.recv_file(shm_name, tmp_path / "out", timeout=1).bytes == 3


def test_checksum_mismatch(shm_name: str, tmp_path: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"A" * 1000)
    shmbridge.send_file(tmp_path / "in.bin", shm_name)
    with open(f"/dev/shm/{shm_name}", "r+b") as f:  # flip a payload byte behind its back
        f.seek(shmbridge.FRAMED_HEADER_LEN + 500)
        f.write(b"B")
    (tmp_path / "out").write_bytes(b"keep me")
    with pytest.raises(shmbridge.ChecksumMismatch):
        shmbridge.recv_file(shm_name, tmp_path / "out", timeout=1, keep=True)
    assert (tmp_path / "out").read_bytes() == b"keep me"
    p = py_cli("recv", shm_name, str(tmp_path / "out"), "--timeout", "1s")
    assert p.returncode == 7 and "checksum" in p.stderr


def test_timeouts(shm_name: str, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(shmbridge.Timeout) as e:
        shmbridge.recv_file(shm_name, tmp_path / "out", timeout=0.2)
    assert isinstance(e.value, TimeoutError)
    assert 0.15 < time.monotonic() - started < 2
    assert not (tmp_path / "out").exists()
    p = py_cli("recv", shm_name, str(tmp_path / "out"), "--timeout", "200ms")
    assert p.returncode == 5 and p.stderr.startswith("shmbridge: ")
    # A streaming sender nobody receives from.
    make_file(tmp_path / "in.bin", 128 * KiB)
    with pytest.raises(shmbridge.Timeout):
        shmbridge.send_file(tmp_path / "in.bin", shm_name, transfer="stream", segment_size=16 * KiB, timeout=0.3)
    assert not shm_exists(shm_name)


def test_bad_arguments(shm_name: str, tmp_path: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"x")
    with pytest.raises(ValueError):
        shmbridge.send_file(tmp_path / "in.bin", "bad/name")
    with pytest.raises(ValueError):
        shmbridge.send_file(tmp_path / "in.bin", shm_name, transfer="sometimes")
    with pytest.raises(ValueError):
        shmbridge.recv_file(shm_name, tmp_path / "out", timeout=-1)
    assert py_cli("send", str(tmp_path / "in.bin"), "--name", "bad/name").returncode == 2
    assert py_cli("send", str(tmp_path / "in.bin"), "--segment-size", "12Q").returncode == 2
    assert py_cli("recv").returncode == 2


# --- streams of arbitrary data ---------------------------------------------------------------


def test_stream_in_threads(shm_name: str) -> None:
    chunks = [os.urandom(n) for n in (1, 5000, 70_000, 0, 12345)]
    data = b"".join(chunks)
    errors: List[BaseException] = []

    def write() -> None:
        try:
            with shmbridge.StreamWriter(shm_name, 8 * KiB, total=len(data), timeout=10) as w:
                for c in chunks:
                    assert w.write(c) == len(c)
        except BaseException as e:  # noqa: BLE001 - re-raised in the test thread
            errors.append(e)

    t = threading.Thread(target=write)
    t.start()
    got = bytearray()
    with shmbridge.StreamReader(shm_name, timeout=10) as r:
        assert r.capacity == 8 * KiB
        buf = bytearray(3000)
        while True:
            n = r.readinto(buf)
            if n == 0:
                break
            got += buf[:n]
        assert r.crc32 == zlib.crc32(data)
    t.join(20)
    assert not errors, errors
    assert bytes(got) == data
    assert not shm_exists(shm_name), "the writer removes its segment"


WRITER = """
import sys, shmbridge
data = bytes(range(256)) * 1000
with shmbridge.StreamWriter(sys.argv[1], 4096, timeout=20) as w:
    for i in range(0, len(data), 1000):
        w.write(data[i:i + 1000])
    print("crc", w.finish(), flush=True)
"""

READER = """
import sys, zlib, shmbridge
with shmbridge.StreamReader(sys.argv[1], timeout=20) as r:
    data = b"".join(r)
    print(len(data), zlib.crc32(data), r.finish(), flush=True)
"""


def test_stream_python_writer_process_to_reader(shm_name: str, procs: List[Proc]) -> None:
    data = bytes(range(256)) * 1000
    w = Proc([sys.executable, "-c", WRITER, shm_name])
    procs.append(w)
    with shmbridge.StreamReader(shm_name, timeout=20) as r:
        got = r.read()
        assert r.total is None or r.total == len(data)
        assert r.finish() == zlib.crc32(data)
    code, out, err = w.wait()
    assert code == 0, err
    assert got == data and out.split() == ["crc", str(zlib.crc32(data))]


def test_stream_writer_to_python_reader_process(shm_name: str, procs: List[Proc]) -> None:
    data = os.urandom(300_000)
    r = Proc([sys.executable, "-c", READER, shm_name])
    procs.append(r)
    with shmbridge.StreamWriter(shm_name, 16 * KiB, timeout=20) as w:
        w.write(memoryview(data)[:100_000])
        w.write(data[100_000:])
        assert w.written == len(data)
        crc = w.finish()
    assert w.closed and crc == zlib.crc32(data)
    code, out, err = r.wait()
    assert code == 0, err
    assert out.split() == [str(len(data)), str(crc), str(crc)]


def test_stream_abort_and_misuse(shm_name: str) -> None:
    w = shmbridge.StreamWriter(shm_name, 1024, total=10)
    r = shmbridge.StreamReader(shm_name, timeout=5)
    w.write(b"12345")
    with pytest.raises(ValueError):
        w.write(b"123456")  # past the announced total
    with pytest.raises(ValueError):
        r.finish()  # not at the end
    assert r.read(3) == b"123"
    w.abort()
    assert w.closed and not shm_exists(shm_name)
    with pytest.raises(shmbridge.PeerGone):
        r.read(timeout=5)
    r.close()
    with pytest.raises(shmbridge.ClosedError):
        r.read()
    with pytest.raises(shmbridge.ClosedError):
        w.write(b"x")


def test_stream_timeouts_and_missing(shm_name: str) -> None:
    with pytest.raises(shmbridge.Timeout):
        shmbridge.StreamReader(shm_name, timeout=0.1)
    with shmbridge.StreamWriter(shm_name, 16) as w:
        with pytest.raises(FileExistsError):
            shmbridge.StreamWriter(shm_name, 16)
        r = shmbridge.StreamReader(shm_name)
        started = time.monotonic()
        with pytest.raises(shmbridge.Timeout):
            r.read(timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        w.write(b"x" * 16)
        with pytest.raises(shmbridge.Timeout):
            w.write(b"y", timeout=0.2)  # the ring is full and nobody reads
        with pytest.raises(shmbridge.Timeout):
            w.finish(timeout=0.2)  # ended, but the reader has not verified it
        assert r.read() == b"x" * 16
        assert r.finish() == zlib.crc32(b"x" * 16)
        assert w.finish(timeout=5) == zlib.crc32(b"x" * 16)
    assert not shm_exists(shm_name)


def test_old_names_still_work_with_a_deprecation_warning(shm_names: Callable[[], str], tmp_path: Path) -> None:
    data = b"old names" * 100
    (tmp_path / "in.bin").write_bytes(data)
    name = shm_names()
    with pytest.warns(DeprecationWarning, match="mode= is deprecated: use transfer="):
        r = shmbridge.send_file(tmp_path / "in.bin", name, mode="oneshot")
    assert r.transfer == "one-shot"
    with pytest.warns(DeprecationWarning, match="TransferReport.mode"):
        assert r.mode == "oneshot"
    infos = {i.name: i for i in shmbridge.list_segments()}
    assert infos[name].permissions == 0o600
    with pytest.warns(DeprecationWarning, match="SegmentInfo.mode"):
        assert infos[name].mode == 0o600
    with pytest.warns(DeprecationWarning, match="mode= is deprecated: use access="):
        m = shmbridge.map_file(tmp_path / "in.bin", mode="c")
    assert m.readonly is False and m.read(0, 3) == b"old"
    m.close()
    with pytest.raises(TypeError, match="give transfer= only"):
        shmbridge.send_file(tmp_path / "in.bin", shm_names(), transfer="stream", mode="stream")
    for spelling in ("oneshot", "one_shot"):
        n = shm_names()
        assert shmbridge.send_file(tmp_path / "in.bin", n, transfer=spelling).transfer == "one-shot"
        shmbridge.remove(n)
    out = tmp_path / "out.bin"
    assert shmbridge.recv_file(name, out, timeout=5).transfer == "one-shot"
    assert out.read_bytes() == data
