"""Every core error kind reaches Python, with its `kind` attribute, through the one conversion."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import shmbridge
from shmbridge import _native

# The classes a caller would catch, per kind: the stdlib's where it has one, else ours.
EXPECTED: dict[str, type[BaseException]] = {
    "InvalidName": ValueError,
    "InvalidSize": ValueError,
    "InvalidArgument": ValueError,
    "AlreadyExists": FileExistsError,
    "NotFound": FileNotFoundError,
    "PermissionDenied": PermissionError,
    "NoSpace": OSError,
    "BadMagic": _native.BadMagic,
    "UnsupportedVersion": _native.UnsupportedVersion,
    "CorruptHeader": _native.CorruptHeader,
    "Truncated": _native.Truncated,
    "OutOfBounds": _native.OutOfBounds,
    "ChecksumMismatch": _native.ChecksumMismatch,
    "Timeout": _native.Timeout,
    "WriterClosed": _native.WriterClosed,
    "PeerGone": _native.PeerGone,
    "Closed": _native.ClosedError,
    "Unsupported": _native.Unsupported,
    "Os": OSError,
    "Aborted": _native.Error,
    "Changed": _native.Error,
}


def test_every_kind_is_listed_once() -> None:
    assert len(_native.ERROR_KINDS) == len(set(_native.ERROR_KINDS))
    assert set(_native.ERROR_KINDS) == set(EXPECTED), "a new kind needs its expected class here"
    assert _native.ERROR_KINDS[-1] == "Changed"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_kind_reaches_python_with_its_kind(kind: str) -> None:
    e = _native.error_for_kind(kind, f"a {kind} failure")
    assert isinstance(e, EXPECTED[kind]), (kind, type(e))
    assert getattr(e, "kind") == kind
    assert f"a {kind} failure" in str(e)


def test_a_kind_without_a_class_of_its_own_is_the_base_class() -> None:
    assert type(_native.error_for_kind("Changed")) is _native.Error
    with pytest.raises(ValueError, match="unknown error kind"):
        _native.error_for_kind("NoSuchKind")


def test_real_failures_carry_their_kind(shm_name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        shmbridge.remove(shm_name)
    assert getattr(missing.value, "kind") == "NotFound"
    assert missing.value.errno == errno.ENOENT
    with pytest.raises(ValueError) as bad:
        shmbridge.remove("a/b")
    assert getattr(bad.value, "kind") == "InvalidName"
    with pytest.raises(IsADirectoryError) as isdir:
        shmbridge.send_file(tmp_path, shm_name)
    assert getattr(isdir.value, "kind") == "InvalidArgument"
    assert isdir.value.errno == errno.EISDIR
    assert isdir.value.filename == os.fspath(tmp_path)
    assert not shmbridge.exists(shm_name)
