"""Check what `make wheel` built, as PyPI and an old Linux would see it.

Usage: wheel_check.py DIST_DIR ROOT

DIST_DIR holds exactly one wheel and one sdist. Checks, failing with a message naming the
problem:
- the wheel is abi3 for CPython 3.9+ and tagged manylinux2014 / manylinux_2_17;
- auditwheel (pypa's, independently of maturin's own check) agrees on manylinux_2_17;
- the extension is stripped, has no debug sections, asks for no glibc symbol newer than 2.17,
  and leaves no strong undefined symbol without a glibc version other than the Python API
  (such a symbol links now and fails to load on an old glibc);
- the wheel and the sdist carry both licence files and the project's metadata (licence
  expression, author, URLs, readme), and the sdist carries the build backend.
Prints the sizes.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import List

GLIBC_FLOOR = (2, 17)
LICENCES = ("LICENSE-MIT", "LICENSE-APACHE")
METADATA_NEEDS = (
    "License-Expression: MIT OR Apache-2.0",
    "License-File: LICENSE-MIT",
    "License-File: LICENSE-APACHE",
    "Author: The shmbridge developers",
    "Project-URL: Repository, ",
    "Project-URL: Changelog, ",
    "Requires-Python: >=3.9",
    "Description-Content-Type: text/markdown",
)

problems: List[str] = []


def fail(message: str) -> None:
    problems.append(message)


def check_metadata(what: str, text: str) -> None:
    for needed in METADATA_NEEDS:
        if needed not in text:
            fail(f"{what}: the metadata lacks {needed!r}")
    body = Parser().parsestr(text).get_payload()
    if not isinstance(body, str) or "# shmbridge" not in body:
        fail(f"{what}: the metadata has no README as its description")


def check_elf(so: Path) -> None:
    before = len(problems)
    sections = subprocess.run(
        ["readelf", "-S", "-W", str(so)], check=True, capture_output=True, text=True
    ).stdout
    if ".debug_" in sections:
        fail(f"{so.name}: carries debug sections")
    if re.search(r"\]\s+\.symtab\s", sections):
        fail(f"{so.name}: is not stripped (it has a .symtab)")
    dynsym = subprocess.run(
        ["objdump", "-T", str(so)], check=True, capture_output=True, text=True
    ).stdout
    newest = (0, 0)
    for line in dynsym.splitlines():
        if "*UND*" not in line:
            continue
        version = re.search(r"GLIBC_([0-9]+)\.([0-9]+)", line)
        if version:
            newest = max(newest, (int(version.group(1)), int(version.group(2))))
            continue
        if re.search(r"\s\([A-Z_]+[0-9][0-9.]*\)\s", line):
            continue  # versioned by another system library (libgcc_s's GCC_3.0, ...)
        fields = line.split()
        name = fields[-1]
        weak = len(fields) > 1 and fields[1] == "w"
        if not weak and not re.match(r"_?Py", name):
            fail(f"{so.name}: undefined symbol {name} has no glibc version (newer than glibc 2.17?)")
    if newest > GLIBC_FLOOR:
        fail(f"{so.name}: needs glibc {newest[0]}.{newest[1]}, above the 2.17 floor")
    if len(problems) == before:
        print(f"wheel: {so.name}: stripped, no debug info, newest glibc symbol {newest[0]}.{newest[1]}")


def main() -> int:
    dist, root = Path(sys.argv[1]), Path(sys.argv[2])
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"wheel: expected one wheel and one sdist in {dist}, found {wheels + sdists}")
        return 1
    wheel, sdist = wheels[0], sdists[0]
    tags = wheel.name[: -len(".whl")].split("-")[2:]
    if tags[0] != "cp39" or tags[1] != "abi3" or "manylinux_2_17_x86_64" not in tags[2]:
        fail(f"{wheel.name}: not a cp39-abi3 manylinux_2_17 (manylinux2014) wheel")

    show = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True
    )
    if show.returncode != 0 or '"manylinux_2_17_x86_64"' not in show.stdout:
        fail(f"auditwheel show does not say manylinux_2_17: {show.stdout}{show.stderr}")

    with zipfile.ZipFile(wheel) as zf, tempfile.TemporaryDirectory() as tmp:
        names = zf.namelist()
        info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
        for licence in LICENCES:
            if f"{info}/licenses/{licence}" not in names:
                fail(f"{wheel.name}: no {info}/licenses/{licence}")
            elif zf.read(f"{info}/licenses/{licence}") != (root / licence).read_bytes():
                fail(f"{wheel.name}: {licence} differs from the repository's")
        check_metadata(wheel.name, zf.read(f"{info}/METADATA").decode())
        so_names = [n for n in names if n.endswith(".so")]
        if so_names != ["shmbridge/_native.abi3.so"]:
            fail(f"{wheel.name}: expected one extension shmbridge/_native.abi3.so, found {so_names}")
        else:
            so = Path(zf.extract(so_names[0], tmp))
            check_elf(so)
            so_size = so.stat().st_size

    with tarfile.open(sdist) as tf:
        names = tf.getnames()
        top = names[0].split("/")[0]
        for needed in (*LICENCES, "build_backend/shmbridge_build.py", "Cargo.lock", "README.md"):
            if f"{top}/{needed}" not in names:
                fail(f"{sdist.name}: no {needed}")
        pkg_info = tf.extractfile(f"{top}/PKG-INFO")
        if pkg_info is None:
            fail(f"{sdist.name}: no PKG-INFO")
        else:
            check_metadata(sdist.name, pkg_info.read().decode())

    if problems:
        for problem in problems:
            print(f"FAIL: {problem}")
        return 1
    print(f"wheel: {wheel.name}: {wheel.stat().st_size} bytes (extension {so_size} bytes)")
    print(f"wheel: {sdist.name}: {sdist.stat().st_size} bytes")
    print("wheel: auditwheel: manylinux_2_17 (glibc 2.17: RHEL/CentOS 7, Ubuntu 14.04 and later)")
    print("wheel: licences and metadata are in the wheel and the sdist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
