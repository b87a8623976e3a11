"""The package's types, as a user's ``mypy --strict`` sees them: field kinds, open modes and
transfer modes are Literal types, so typos are type errors; ``get`` is overloaded, so
``get("i32")`` is an ``int`` and ``get("f64")`` a ``float``. (stubtest checks the stubs
against the module; this checks what they promise.)"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, List

import pytest

pytest.importorskip("mypy", reason="mypy is one of the test dependencies (make setup)")

# Each line must be an error.
TYPOS = """\
import shmbridge
from shmbridge import shared_memory

m = shmbridge.anonymous(16)
m.get("i33", 0)
shmbridge.Segment("name", "create_onyl", 16)
shmbridge.send_file("f.bin", "name", transfer="streem")
shmbridge.map_file("f.bin", "rw")
m.set("f33", 0, 1.0)
m.set("i32", 0, 1.5)
shared_memory.SharedMemory(create=True, size=8).get("u65", 0)
shmbridge.FramedSegment.open("name").get("x", 0)
"""

# No errors; the revealed types on the right.
GOOD = """\
import shmbridge
from shmbridge import shared_memory

m = shmbridge.anonymous(16)
reveal_type(m.get("i32", 0))  # builtins.int
reveal_type(m.get("f64", 0))  # builtins.float
reveal_type(m.get("q", 0))  # builtins.int
reveal_type(m.get("d", 0))  # builtins.float
shm = shared_memory.SharedMemory(create=True, size=8)
reveal_type(shm.get("u8", 0))  # builtins.int
reveal_type(shm.get("f32", 0))  # builtins.float
reveal_type(shm.buf)  # builtins.memoryview
reveal_type(shmbridge.FramedSegment.open("n").get("i64", 0))  # builtins.int
n: int = m.get("u16", 0) + 1
m.set("f64", 0, 1.5)
m.set("f64", 0, 1)
m.set("u32", 0, n)
shmbridge.Segment("name", "open_or_create", 16)
shmbridge.send_file("f.bin", "name", transfer="stream")
shmbridge.map_file("f.bin", "c")
sl = shared_memory.ShareableList([1, 2, 3])
reveal_type(sl.shm)  # shmbridge.shared_memory.SharedMemory
"""


def _mypy(tmp_path: Path, files: Dict[str, str]) -> List[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(tmp_path / ".mypy_cache"), *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout.splitlines()


def test_typos_are_type_errors_and_get_is_overloaded(tmp_path: Path) -> None:
    out = _mypy(tmp_path, {"typos.py": TYPOS, "good.py": GOOD})
    errors: Dict[str, set] = {"typos.py": set(), "good.py": set()}
    revealed: Dict[int, str] = {}
    for line in out:
        m = re.match(r"(\w+\.py):(\d+): (error|note): (.*)", line)
        assert m, line
        path, lineno, level, text = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        if level == "error":
            errors[path].add(lineno)
        elif path == "good.py" and text.startswith("Revealed type is"):
            # mypy versions differ on how they spell builtins and generics.
            revealed[lineno] = re.sub(r"\[.*\]$", "", text.split('"')[1].replace("builtins.", ""))
    typo_lines = {i for i, line in enumerate(TYPOS.splitlines(), 1) if line.startswith(("m.", "shm", "shared_memory.S"))}
    assert typo_lines and errors["typos.py"] == typo_lines, out
    assert errors["good.py"] == set(), out
    want = {
        i: line.split("# ")[1].replace("builtins.", "") for i, line in enumerate(GOOD.splitlines(), 1) if line.startswith("reveal_type")
    }
    assert revealed == want, out
