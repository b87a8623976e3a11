"""Every Python sample of the seed, rewritten on shmbridge (python/examples/), run for real,
against segments made by shmbridge, by the stdlib and by the Rust core."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from multiprocessing import shared_memory as std_shm
from pathlib import Path
from typing import IO, Callable, Iterator, List

import pytest

from _helpers import EXAMPLES, shm_exists


def run_example(name: str, *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


class Background:
    """An example running in the background, stopped with Ctrl-C (SIGINT)."""

    def __init__(self, name: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def stdout(self) -> IO[str]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def lines(self) -> Iterator[str]:
        for line in self.stdout:
            yield line.strip()

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stdout.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.fixture
def background() -> Iterator[List[Background]]:
    started: List[Background] = []
    yield started
    for b in started:
        b.close()


def test_mmap_read(tmp_path: Path) -> None:
    out = run_example("mmap_read.py", str(tmp_path / "2m_data.txt"))
    assert "regular_io/mmap_io=" in out and "crc32 in place" in out


def test_sharing_with_mmap() -> None:
    out = run_example("sharing_with_mmap.py")
    assert "child process write" in out
    assert f"parent process read {b'a' * 100!r}" in out


def test_shared_memory_basics() -> None:
    out = run_example("shared_memory_basics.py", "0.05")
    name = out.split("random memory name=")[1].split()[0]
    assert str(b"b" * 50 + b"a" * 50) in out
    assert not shm_exists(name)


def test_program1_program2(shm_name: str, background: List[Background]) -> None:
    p1 = Background("program1.py", shm_name, "0.05")
    background.append(p1)
    lines = p1.lines()
    assert next(lines) == "128,0,0,0,-1,1,2.0"
    run_example("program2.py", shm_name)
    for line in lines:
        if line == "128,127,255,0,-128,6666,1.414":
            break
    assert p1.interrupt() == 0
    assert not shm_exists(shm_name), "program1 unlinks on Ctrl-C"


def test_program2_against_a_stdlib_segment(shm_name: str) -> None:
    std = std_shm.SharedMemory(shm_name, create=True, size=1024)
    try:
        run_example("program2.py", shm_name)
        assert list(std.buf[:4]) == [0, 127, 255, 0]
        assert int.from_bytes(std.buf[8:12], "little") == 6666
    finally:
        std.close()
        std.unlink()


def test_file_writer_and_reader(shm_name: str, tmp_path: Path, background: List[Background]) -> None:
    data = tmp_path / "data.zip"
    data.write_bytes(os.urandom(300_000))
    w = Background("writer.py", str(data), shm_name)
    background.append(w)
    assert next(w.lines()) == "data available"
    out = tmp_path / "result.zip"
    run_example("reader.py", str(out), shm_name)
    assert out.read_bytes() == data.read_bytes()
    assert w.interrupt() == 0
    assert not shm_exists(shm_name)


STD_WRITER = """
import sys
from multiprocessing.shared_memory import SharedMemory
with open(sys.argv[1], "rb") as file:
    data = file.read()
    shm = SharedMemory(name=sys.argv[2], create=True, size=len(data))
    shm.buf[:] = data
print("data available", flush=True)
sys.stdin.readline()
shm.close()
shm.unlink()
"""


def test_reader_against_the_stdlib_writer(shm_name: str, tmp_path: Path) -> None:
    data = tmp_path / "data.zip"
    data.write_bytes(os.urandom(100_000))
    with subprocess.Popen(
        [sys.executable, "-c", STD_WRITER, str(data), shm_name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        try:
            assert proc.stdout.readline().strip() == "data available"
            out = tmp_path / "result.zip"
            run_example("reader.py", str(out), shm_name)
            assert out.read_bytes() == data.read_bytes()
            assert shm_exists(shm_name), "the reader must not remove the writer's segment"
            proc.stdin.write("done\n")
            proc.stdin.flush()
            assert proc.wait(30) == 0
        finally:
            proc.kill()


def test_reader_against_a_core_segment(
    rust_make: Callable[[str, str, bytes], None], shm_name: str, tmp_path: Path
) -> None:
    data = os.urandom(50_000)
    rust_make("raw", shm_name, data)
    out = tmp_path / "data_out.bin"
    run_example("reader.py", str(out), shm_name)
    assert out.read_bytes() == data
    assert shm_exists(shm_name), "the reader must not remove the Rust process's segment"


@pytest.mark.parametrize("where", ["file", "segment"])
def test_mmap_writer_and_reader(
    where: str, shm_name: str, tmp_path: Path, background: List[Background]
) -> None:
    data = tmp_path / "data.zip"
    data.write_bytes(os.urandom(70_000))
    target = ["--file", str(tmp_path / "shm_test")] if where == "file" else ["--segment", shm_name]
    w = Background("mmap_writer.py", str(data), *target)
    background.append(w)
    assert next(w.lines()) == "data available"
    out = tmp_path / "result.zip"
    run_example("mmap_reader.py", str(out), *target)
    assert out.read_bytes() == data.read_bytes()
    assert w.interrupt() == 0
    assert not (tmp_path / "shm_test").exists() and not shm_exists(shm_name)


def test_mmap_reader_against_a_core_segment(
    rust_make: Callable[[str, str, bytes], None], shm_name: str, tmp_path: Path
) -> None:
    data = os.urandom(20_000)
    rust_make("size-prefixed", shm_name, data)
    out = tmp_path / "result.zip"
    run_example("mmap_reader.py", str(out), "--segment", shm_name)
    assert out.read_bytes() == data


def test_frames_view_demo() -> None:
    out = run_example("frames_view.py", "--demo", "--frames", "40", "--size", "108x192x3", "--fill")
    assert "40 frames of 108x192x3 uint8" in out and "fps, 0 lost" in out, out


def test_frames_view_receiver_against_a_separate_sender(shm_name: str, background: List[Background]) -> None:
    sender = Background("frames_view.py", "--send", shm_name, "--frames", "25", "--size", "64x64x3")
    background.append(sender)
    assert next(sender.lines()) == "sender ready"
    out = run_example("frames_view.py", shm_name, "--frames", "25")
    assert "25 frames of 64x64x3 uint8" in out, out
    assert sender.proc.wait(60) == 0
