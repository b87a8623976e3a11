"""Fixtures for the shmbridge Python tests.

Every segment a test makes is named shmb_t_py_* and removed at teardown, pass or fail, so
scripts/check-shm-clean.sh finds /dev/shm clean.
"""

from __future__ import annotations

import json
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


def _peer(env: str, package: str, exe: str) -> str:
    """A Rust program the tests run beside Python: `env` names a prebuilt one (py-test.sh sets
    it); otherwise the release build under the target directory, built if needed. Every peer
    is a release build, as users run them and as the interop suite runs them."""
    given = os.environ.get(env)
    if given and os.access(given, os.X_OK):
        return given
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", package], cwd=ROOT, check=True)
    return str(target / "release" / exe)


@pytest.fixture(scope="session")
def rust_actor() -> str:
    """The Rust interop actor (tests/interop/PROTOCOL.md): a non-Python process that makes and
    reads segments with the core alone."""
    return _peer("SHMBRIDGE_RUST_ACTOR", "shmbridge-interop-actor", "actor-rust")


@pytest.fixture
def rust_make(rust_actor: str, tmp_path: Path) -> Callable[[str, str, bytes], None]:
    """`rust_make(layout, name, data)`: the Rust actor creates segment `name` in `layout`
    (raw, size-prefixed or framed) holding `data`, and exits leaving it (the caller's name
    fixture removes it)."""

    def make(layout: str, name: str, data: bytes) -> None:
        src = tmp_path / f"{name}.in"
        src.write_bytes(data)
        out = subprocess.run(
            [rust_actor, "write", "--layout", layout, "--name", name, "--file", str(src)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1])["bytes"] == len(data)

    return make


@pytest.fixture(scope="session")
def shmbridge_cli() -> str:
    """The Rust `shmbridge` command (release build)."""
    return _peer("SHMBRIDGE_CLI", "shmbridge-cli", "shmbridge")


@pytest.fixture
def procs() -> Iterator[List[Proc]]:
    """Background processes of a test, killed and reaped at teardown, pass or fail."""
    started: List[Proc] = []
    yield started
    for p in started:
        p.close()
