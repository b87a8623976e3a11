"""Publish the interop matrix of the last `make interop` run (build/interop) into the tracked
files: tests/interop/MATRIX.md, and README.md between its interop-matrix markers.

    python tests/interop/publish_matrix.py        # what `make matrix` runs

Refuses a run with failures, so the published matrix is always one that passed."""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
REPORTS = os.environ.get("SHMBRIDGE_INTEROP_REPORTS") or os.path.join(ROOT, "build", "interop")
START, END = "<!-- interop-matrix:start -->", "<!-- interop-matrix:end -->"


def main():
    matrix = os.path.join(REPORTS, "MATRIX.md")
    summary = os.path.join(REPORTS, "readme-matrix.md")
    if not (os.path.exists(matrix) and os.path.exists(summary)):
        sys.exit(f"publish_matrix: no report in {REPORTS}: run make interop first")
    with open(summary) as f:
        body = f.read().rstrip("\n")
    if "❌" in body:
        sys.exit("publish_matrix: the last interop run had failures; not publishing it")
    shutil.copyfile(matrix, os.path.join(HERE, "MATRIX.md"))
    readme = os.path.join(ROOT, "README.md")
    with open(readme) as f:
        text = f.read()
    if START not in text or END not in text:
        sys.exit("publish_matrix: README.md has no interop-matrix markers")
    new = text[: text.index(START)] + START + "\n" + body + "\n" + text[text.index(END):]
    if new != text:
        with open(readme, "w") as f:
            f.write(new)
    print("publish_matrix: tests/interop/MATRIX.md and README.md updated from", REPORTS)


if __name__ == "__main__":
    main()
