"""Fixtures for the shmbridge Python tests.

Every segment a test makes is named shmb_t_py_* and removed at teardown, pass or fail, so
scripts/check-shm-clean.sh finds /dev/shm clean.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from _helpers import ROOT, Proc


@pytest.fixture
def shm_names() -> Iterator[Callable[[], str]]:
    """A factory of fresh segment names, all removed at teardown."""
    made: List[str] = []

    def make() -> str:
        name = f"shmb_t_py_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        made.append(name)
        return name

    yield make
    for name in made:
        try:
            os.unlink(Path("/dev/shm") / name)
        except FileNotFoundError:
            pass


@pytest.fixture
def shm_name(shm_names: Callable[[], str]) -> str:
    return shm_names()


@pytest.fixture(scope="session")
def core_peer() -> str:
    """The Rust core_peer example (a non-Python process), built if needed."""
    exe = os.environ.get("SHMBRIDGE_CORE_PEER")
    if exe and os.access(exe, os.X_OK):
        return exe
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe_path = target / "debug" / "examples" / "core_peer"
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "shmbridge-py", "--example", "core_peer"],
        cwd=ROOT,
        check=True,
    )
    return str(exe_path)


@pytest.fixture(scope="session")
def shmbridge_cli() -> str:
    """The Rust `shmbridge` command (debug build), built if needed."""
    exe = os.environ.get("SHMBRIDGE_CLI")
    if exe and os.access(exe, os.X_OK):
        return exe
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "shmbridge-cli", "--bin", "shmbridge"],
        cwd=ROOT,
        check=True,
    )
    return str(target / "debug" / "shmbridge")


@pytest.fixture
def procs() -> Iterator[List[Proc]]:
    """Background processes of a test, killed and reaped at teardown, pass or fail."""
    started: List[Proc] = []
    yield started
    for p in started:
        p.close()
