"""The seed's file hand-over (writer.py / reader.py) done right, with send_file / recv_file.

    python transfer_file.py send FILE [NAME] [--stream]   (defaults: NAME=shm_test)
    python transfer_file.py recv OUT [NAME]

What the seed's pair could not do, and this does:

- the sender never holds the whole file in private memory: it ``read(2)``s the file straight
  into the shared mapping, and (one-shot) exits once the data is published, without keeping a
  process alive to "hold" it;
- a file of any size passes through a small, fixed segment (``--stream``);
- the receiver waits for the sender (no race on start-up), checks the byte count and the
  CRC-32, and writes ``OUT`` atomically: it appears complete, or not at all;
- the receiver removes the segment once it has the data; a sender or receiver that dies is
  noticed by the other side, which fails with a clear error instead of hanging.
"""

from __future__ import annotations

import sys

import shmbridge


def main(argv: list[str]) -> int:
    stream = "--stream" in argv
    args = [a for a in argv if a != "--stream"]
    if len(args) < 2 or args[0] not in ("send", "recv"):
        print(__doc__, file=sys.stderr)
        return 2
    name = args[2] if len(args) > 2 else "shm_test"
    if args[0] == "send":
        # One-shot by default: returns as soon as the file is published. Streaming: returns
        # once the receiver has taken and verified every byte.
        report = shmbridge.send_file(
            args[1],
            name,
            transfer="stream" if stream else "auto",
            segment_size=1 << 20 if stream else None,
            timeout=60,
        )
        print(f"sent {report.bytes} bytes (crc32 {report.crc32:08x}) as {report.name!r}, {report.transfer}")
    else:
        report = shmbridge.recv_file(name, args[1], timeout=60)
        print(f"wrote {report.bytes} bytes (crc32 {report.crc32:08x}) to {report.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
