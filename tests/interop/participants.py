"""The participants of the interop suite: one line each.

A participant is an actor program speaking PROTOCOL.md plus what it can do. Adding a language
means writing one actor and adding one line here; the matrix is generated from this table.
"""

import os
import sys
from dataclasses import dataclass, field
from typing import FrozenSet, List

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SHMB_INTEROP_BUILD", os.path.join(ROOT, "build", "interop"))
ACTORS = os.path.join(ROOT, "tests", "interop", "actors")
# The Python that runs the suite has shmbridge installed; the stdlib actor runs on it too.
PY = sys.executable

ALL = frozenset({"raw", "size-prefixed", "framed"})


@dataclass(frozen=True)
class Participant:
    name: str
    cmd: List[str]
    writes: FrozenSet[str]          # layouts it can write
    reads: FrozenSet[str]           # layouts it can read
    default_perm: int               # permission bits of a segment it creates by default
    explicit_perm: bool = True      # can create with a chosen mode
    read_only_attach: bool = True   # can attach read-only and refuse writes cleanly
    channels: bool = False          # speaks chan-write / chan-read (PROTOCOL.md, "Channels")
    arrays: bool = False            # speaks array-* / chan-array-* (PROTOCOL.md, "Arrays")
    notes: str = field(default="")


PARTICIPANTS = [
    Participant("rust", [os.path.join(ROOT, "target", "release", "actor-rust")], ALL, ALL, 0o600,
                channels=True, arrays=True),
    Participant("c", [os.path.join(BUILD, "actor-c")], ALL, ALL, 0o600, channels=True,
                arrays=True),
    Participant("cpp", [os.path.join(BUILD, "actor-cpp")], ALL, ALL, 0o600, channels=True,
                arrays=True),
    Participant("python", [PY, os.path.join(ACTORS, "actor_python.py")], ALL, ALL, 0o600,
                channels=True, arrays=True),
    Participant("python-stdlib", [PY, os.path.join(ACTORS, "actor_stdlib.py")],
                frozenset({"raw", "size-prefixed"}), ALL, 0o600, explicit_perm=False,
                read_only_attach=False,
                notes="multiprocessing.shared_memory; framed read by the SPEC-only reference reader"),
    Participant("boost", [os.path.join(BUILD, "actor-boost")], frozenset({"raw"}), frozenset({"raw"}),
                0o644, read_only_attach=False,
                notes="Boost.Interprocess from Debian's headers; a write through a read_only region is a SIGSEGV, not an error"),
]

ENABLED = [p for p in PARTICIPANTS
           if os.environ.get("SHMB_INTEROP_ONLY") is None
           or p.name in os.environ["SHMB_INTEROP_ONLY"].split(",")]
