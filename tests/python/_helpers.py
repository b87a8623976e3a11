"""Helpers shared by the tests (imported as a plain module: tests/python is on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "python" / "examples"
SHM = Path("/dev/shm")


def wait_asleep(pid: int, tid: Optional[int] = None, timeout: float = 30, needs: str = "") -> None:
    """Return once thread `tid` of process `pid` (its main thread by default) sleeps in the
    kernel, after the process has mapped a file whose path contains `needs` (e.g. "_native":
    the extension is loaded, so interpreter start-up is over). Used instead of a fixed sleep
    before a signal or a publish, which a loaded machine can outlast (Linux /proc)."""
    task = f"/proc/{pid}/task/{tid if tid is not None else pid}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"{task}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"{task}/wchan") as f:
                wchan = f.read().strip()
            loaded = True
            if needs:
                with open(f"/proc/{pid}/maps") as f:
                    loaded = needs in f.read()
        except FileNotFoundError as e:
            raise AssertionError(f"process {pid} (thread {tid}) is gone") from e
        if loaded and state == "S" and wchan not in ("", "0"):
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} (thread {tid}) did not go to sleep within {timeout}s")


def shm_exists(name: str) -> bool:
    return (SHM / name).exists()


def run_py(code: str, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `code` in a fresh process of this interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({proc.returncode}):\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


class Proc:
    """A background process whose pipes are always closed (pytest runs with -W error); the
    `procs` fixture (conftest.py) kills and reaps the ones a test leaves running."""

    def __init__(self, args: List[str], env: Optional[dict] = None) -> None:
        self.p = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def wait(self, timeout: float = 60) -> Tuple[int, str, str]:
        out, err = self.p.communicate(timeout=timeout)
        return self.p.returncode, out, err

    def close(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate()


# --- known points of a stream, reached from outside (no hook in the product) ---------------
#
# A stream's writer blocks once its ring is full and no reader takes from it; a test waits for
# that state, freezes a peer with SIGSTOP where the other must stay mid-stream, and kills.


def stream_status(cli: str, name: str) -> Optional[Dict[str, Any]]:
    """The control words of the stream segment `name` (`shmbridge info --json`), if any."""
    r = subprocess.run([cli, "info", name, "--json"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    if r.returncode != 0:
        return None
    try:
        status = json.loads(r.stdout).get("stream")
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def wait_until(what: str, done: Callable[[], bool], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.01)


def wait_ring_full(cli: str, name: str) -> None:
    """Wait until the writer of stream `name` filled its ring and blocks (no reader takes)."""

    def full() -> bool:
        s = stream_status(cli, name)
        return s is not None and s["write_pos"] - s["read_pos"] == s["capacity"] and s["writer_state"] == "streaming"

    wait_until("the writer filled the ring", full)


def wait_ring_drained(cli: str, name: str) -> None:
    """Wait until the reader of stream `name` took everything written, and waits for more."""

    def drained() -> bool:
        s = stream_status(cli, name)
        return s is not None and s["read_pos"] == s["write_pos"] > 0 and s["reader_state"] == "attached"

    wait_until("the reader drained the ring", drained)

