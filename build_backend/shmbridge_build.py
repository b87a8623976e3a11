"""shmbridge's PEP 517 build backend: maturin's, with a clear error when Rust is missing.

``pip install .`` (and pip installing the sdist) compiles the extension from its Rust source,
which needs cargo and a new enough Rust. maturin's own backend, when it finds no cargo on PATH,
asks pip for ``puccinialin`` and quietly downloads a whole Rust toolchain (about 700 MB once
unpacked) into a cache directory. This backend stops instead, before anything is downloaded,
with a message that names cargo, the minimum Rust version and how to get it; and it checks
that the cargo found is new enough, which cargo would otherwise report only after the
dependencies are fetched. ``SHMBRIDGE_BUILD_DOWNLOAD_RUST=1`` lets maturin download Rust as it
would by itself.

Every PEP 517 / PEP 660 hook is maturin's, called after that check. pyproject.toml names this module as the
backend (``backend-path``); the sdist carries it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

import maturin

_OPT_IN = "SHMBRIDGE_BUILD_DOWNLOAD_RUST"
_RUST_VERSION = re.compile(r'^rust-version\s*=\s*"([0-9]+(?:\.[0-9]+){1,2})"', re.MULTILINE)


def _version_tuple(text: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _min_rust() -> str:
    """The extension crate's rust-version (or the workspace's, which it may inherit)."""
    manifest = Path(maturin.get_config().get("manifest-path", "Cargo.toml"))
    for path in (manifest, Path("Cargo.toml")):
        try:
            found = _RUST_VERSION.search(path.read_text(encoding="utf-8"))
        except OSError:
            continue
        if found:
            return found.group(1)
    return "(see rust-version in Cargo.toml)"


def _fail(message: str) -> None:
    sys.stderr.write("\n" + message.strip() + "\n\n")
    sys.stderr.flush()
    sys.exit(1)


def _how_to_get_rust(min_rust: str) -> str:
    return f"""
shmbridge is compiled from its Rust source when installed this way (`pip install .`, or
from the sdist), and that needs Rust {min_rust} or newer with cargo. Install Rust with rustup:

    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh     # https://rustup.rs

then open a new shell (or run `. "$HOME/.cargo/env"`) so that cargo is on PATH, and run pip
again. (Rather than stop here, maturin could download a temporary Rust toolchain of about
700 MB; set {_OPT_IN}=1 to let it.)
"""


def _check_rust() -> None:
    if os.environ.get(_OPT_IN) == "1":
        return
    # maturin's backend would fetch Rust when cargo is missing; it never gets to here.
    os.environ["MATURIN_NO_INSTALL_RUST"] = "1"
    min_rust = _min_rust()
    cargo: Optional[str] = shutil.which("cargo")
    if cargo is None:
        _fail(
            "shmbridge: cargo, Rust's build tool, was not found on PATH.\n"
            + _how_to_get_rust(min_rust)
        )
        return
    try:
        out = subprocess.run(
            [cargo, "--version"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        _fail(f"shmbridge: `{cargo} --version` failed: {exc}" + _how_to_get_rust(min_rust))
        return
    found = re.search(r"([0-9]+\.[0-9]+\.[0-9]+)", out)
    if found is None or not min_rust[0].isdigit():
        return  # an unusual cargo: let cargo itself judge the rust-version
    if _version_tuple(found.group(1)) < _version_tuple(min_rust):
        _fail(
            f"shmbridge: {cargo} is Rust {found.group(1)}, older than the Rust {min_rust} "
            "shmbridge needs; `rustup update` brings a newer one." + _how_to_get_rust(min_rust)
        )


def get_requires_for_build_wheel(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    _check_rust()
    return maturin.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(
    config_settings: Optional[Mapping[str, Any]] = None,
) -> List[str]:
    _check_rust()
    return maturin.get_requires_for_build_editable(config_settings)


def get_requires_for_build_sdist(config_settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    _check_rust()
    return maturin.get_requires_for_build_sdist(config_settings)


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None
) -> str:
    _check_rust()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Optional[Mapping[str, Any]] = None
) -> str:
    _check_rust()
    return maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    _check_rust()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(
    wheel_directory: str,
    config_settings: Optional[Mapping[str, Any]] = None,
    metadata_directory: Optional[str] = None,
) -> str:
    _check_rust()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Optional[Mapping[str, Any]] = None) -> str:
    _check_rust()
    return maturin.build_sdist(sdist_directory, config_settings)
