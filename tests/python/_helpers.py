"""Helpers shared by the tests (imported as a plain module: tests/python is on sys.path)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "python" / "examples"
SHM = Path("/dev/shm")


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
