"""``python -m shmbridge``: the ``shmbridge`` command (docs/CLI.md) in Python.

Hand files between processes through shared memory, and look after the segments on this
machine. Same subcommands, options, messages and exit codes as the Rust binary for ``send``,
``recv``, ``ls``, ``info`` and ``rm``; both call the same core, so either side of a
hand-over can be either program.
"""

from __future__ import annotations

import argparse
import json
import pwd
import sys
import time
from typing import Any, Callable, List, Optional, Sequence

import shmbridge
from shmbridge import _native

EXIT_CODES = """\
Exit codes:
  0  success (recv: every byte arrived and its CRC-32 matched)
  1  any other error (I/O error, /dev/shm full, the file changed while being sent, ...)
  2  usage error (bad arguments)
  3  not found (no such file or segment)
  4  already exists (the segment name is taken, or a stream already has its receiver)
  5  timed out (no sender or receiver came, or it stalled, within --timeout)
  6  the peer died or gave up (sender or receiver killed, aborted, or closed early)
  7  the data did not verify (checksum or length mismatch, bad or corrupt header)
  8  permission denied"""

# The core's error kinds (the `kind` attribute of the exceptions) -> exit codes, as the Rust
# command maps them.
_KIND_CODES = {
    "invalid name": 2,
    "invalid size": 2,
    "not found": 3,
    "already exists": 4,
    "timed out": 5,
    "peer gone": 6,
    "writer closed": 6,
    "checksum mismatch": 7,
    "segment truncated": 7,
    "not a framed segment (bad magic)": 7,
    "corrupt header": 7,
    "unsupported layout version": 7,
    "permission denied": 8,
}


def exit_code(exc: BaseException) -> int:
    """The exit code for an exception raised by shmbridge (docs/CLI.md, "Exit codes")."""
    kind = getattr(exc, "kind", None)
    if isinstance(kind, str) and kind in _KIND_CODES:
        return _KIND_CODES[kind]
    if isinstance(exc, shmbridge.Timeout):
        return 5
    if isinstance(exc, (shmbridge.PeerGone, shmbridge.WriterClosed)):
        return 6
    if isinstance(
        exc,
        (
            shmbridge.ChecksumMismatch,
            shmbridge.Truncated,
            shmbridge.BadMagic,
            shmbridge.CorruptHeader,
            shmbridge.UnsupportedVersion,
        ),
    ):
        return 7
    if isinstance(exc, FileNotFoundError):
        return 3
    if isinstance(exc, FileExistsError):
        return 4
    if isinstance(exc, PermissionError):
        return 8
    return 1


def parse_duration(s: str) -> Optional[float]:
    """``30s``, ``500ms``, ``2m``, ``1h``, a plain number of seconds; ``0``/``none``: no limit."""
    t = s.strip()
    if t in ("0", "none", "inf", "forever"):
        return None
    mult = 1.0
    for suffix, m in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    try:
        v = float(t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{s!r} is not a duration (try 30s, 500ms, 2m, or none)"
        ) from None
    if v != v or v < 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{s!r} is not a duration")
    return v * mult


def parse_size(s: str) -> int:
    """``4096``, ``64K``, ``16M``, ``1G`` (binary units)."""
    t = s.strip()
    i = 0
    while i < len(t) and (t[i].isdigit() or t[i] == "."):
        i += 1
    num, unit = t[:i], t[i:].strip().lower()
    units = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
             "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
             "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}  # fmt: skip
    if unit not in units:
        raise argparse.ArgumentTypeError(f"{s!r}: unknown unit (use K, M, G)")
    try:
        v = float(num)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a size (try 64M)") from None
    n = int(v * units[unit])
    if n == 0:
        raise argparse.ArgumentTypeError("the size must be greater than 0")
    return n


def parse_mode(s: str) -> int:
    """An octal permission mode like ``600``."""
    try:
        m = int(s[2:] if s.startswith("0o") else s, 8)
    except ValueError:
        m = -1
    if not 0 <= m <= 0o777:
        raise argparse.ArgumentTypeError(f"{s!r} is not an octal mode like 600 or 644")
    return m


def human_bytes(n: float) -> str:
    """As the Rust command prints sizes (indicatif's HumanBytes: binary units)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def summary(verb: str, r: shmbridge.TransferReport) -> str:
    how = "streamed through" if r.mode == "stream" else "via one-shot"
    secs = r.elapsed
    rate = human_bytes(r.bytes / max(secs, 1e-9))
    return (
        f"{verb} {human_bytes(r.bytes)} ({r.bytes} bytes, crc32 {r.crc32:08x}) {how} "
        f'segment "{r.name}" in {secs:.3f} s, {rate}/s'
    )


def progress_printer(quiet: bool, label: str) -> Optional[Callable[[int, Optional[int]], None]]:
    """A one-line progress display on a terminal, shown once a transfer takes over a second."""
    if quiet or not sys.stderr.isatty():
        return None
    started = time.monotonic()
    shown = [False]

    def show(done: int, total: Optional[int]) -> None:
        elapsed = time.monotonic() - started
        if elapsed < 1.0:
            return
        shown[0] = True
        rate = human_bytes(done / max(elapsed, 1e-9))
        if total:
            line = f"{label} {human_bytes(done)}/{human_bytes(total)} ({100 * done // total}%) {rate}/s"
        else:
            line = f"{label} {human_bytes(done)} {rate}/s"
        sys.stderr.write("\r\x1b[K" + line)
        if total is not None and done >= total:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()

    return show


def fail(exc: BaseException) -> int:
    print(f"shmbridge: {exc}", file=sys.stderr)
    return exit_code(exc)


def cmd_send(a: argparse.Namespace) -> int:
    name = a.name if a.name is not None else _native.name_for_file(a.file)
    if not a.quiet and (a.stream or a.segment_size is not None):
        print(
            f"shmbridge: sending {a.file} as {name!r}; waiting for a receiver "
            f"(shmbridge recv {name} OUT)",
            file=sys.stderr,
        )
    r = shmbridge.send_file(
        a.file,
        name,
        mode="stream" if a.stream else "auto",
        segment_size=a.segment_size,
        timeout=a.timeout,
        permissions=a.mode,
        progress=progress_printer(a.quiet, "send"),
    )
    if not a.quiet:
        print(summary("sent", r), file=sys.stderr)
        if r.mode == "oneshot":
            print(f"receive it with: shmbridge recv {r.name} OUT", file=sys.stderr)
    return 0


def cmd_recv(a: argparse.Namespace) -> int:
    r = shmbridge.recv_file(
        a.name,
        a.out,
        timeout=a.timeout,
        keep=a.keep,
        fsync=a.fsync,
        progress=progress_printer(a.quiet, "recv"),
    )
    if not a.quiet:
        print(f"{summary('received', r)} -> {a.out}", file=sys.stderr)
    return 0


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _state(h: shmbridge.HeaderInfo) -> str:
    """A one-shot's state as the Rust command words it (a stream's positions: its `info`)."""
    published, closed = h.flags & 0x4, h.flags & 0x2
    if h.kind != "message":
        return "finished" if published else ("aborted" if closed else "streaming")
    if published:
        return "complete" if closed else "published"
    if closed:
        return "closed empty"
    return "writing" if h.sequence % 2 else "empty"


def _describe(info: shmbridge.SegmentInfo) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": info.name,
        "layout": info.layout,
        "size": info.size,
        "uid": info.uid,
        "owner": _owner(info.uid),
        "mode": f"{info.mode:04o}",
        "mtime_ns": str(info.mtime_ns),
    }
    h = info.header
    if h is not None:
        d["framed"] = {
            "version": f"{h.version_major}.{h.version_minor}",
            "header_len": h.header_len,
            "kind": h.kind,
            "flags": h.flags,
            "capacity": h.capacity,
            "payload_len": h.payload_len,
            "sequence": h.sequence,
            "publish_count": h.publish_count,
            "checksum": None if h.checksum is None else f"{h.checksum:08x}",
            "creator_pid": h.creator_pid,
            "creator_alive": h.creator_alive(),
            "created_ns": str(h.created_ns),
            "writer_closed": h.writer_closed,
        }
        d["creator_alive"] = h.creator_alive()
        d["layout"] = f"framed/{h.kind}"
        d["state"] = _state(h)
    else:
        d["creator_alive"] = None
    if info.detail:
        d["detail"] = info.detail
    return d


def cmd_ls(a: argparse.Namespace) -> int:
    rows = [_describe(i) for i in shmbridge.list_segments()]
    if a.json:
        print(json.dumps(rows))
        return 0
    head = ["NAME", "LAYOUT", "SIZE", "OWNER", "MODE", "ALIVE", "STATE"]
    alive = {True: "yes", False: "no", None: "-"}
    table = [
        [r["name"], r["layout"], human_bytes(r["size"]), r["owner"], r["mode"], alive[r["creator_alive"]], r.get("state", "")]
        for r in rows
    ]
    widths = [max([len(h)] + [len(row[i]) for row in table]) for i, h in enumerate(head)]
    for row in [head, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_info(a: argparse.Namespace) -> int:
    d = _describe(shmbridge.segment_info(a.name))
    if a.json:
        print(json.dumps(d))
        return 0
    for k, v in d.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                print(f"{k2 + ':':<16}{v2}")
        else:
            print(f"{k + ':':<16}{v}")
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    code = 0
    for n in a.names:
        try:
            shmbridge.remove(n)
        except Exception as exc:  # noqa: BLE001 - reported, and the next name is tried
            code = fail(exc)
    return code


def build_parser() -> argparse.ArgumentParser:
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="no progress display or summaries on stderr",
    )  # fmt: skip
    p = argparse.ArgumentParser(
        prog="python -m shmbridge",
        description="Hand files between processes through shared memory, and look after the "
        "segments on this machine.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[quiet],
    )
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    kw: dict[str, Any] = {
        "epilog": EXIT_CODES,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
        "parents": [quiet],
    }

    s = sub.add_parser(
        "send",
        help="send FILE through a segment",
        description="Send FILE through a segment. One-shot (default): fill and publish a segment "
        "sized to the file, then exit leaving it for the receiver. --stream: stream it through "
        "a fixed ring, waiting for a receiver, and exit once it has taken and verified every byte.",
        **kw,
    )
    s.add_argument("file", help="the file to send")
    s.add_argument("-n", "--name", help="segment name (default: the file's name, made safe)")
    s.add_argument("--stream", action="store_true", help="stream through a ring of --segment-size bytes")
    s.add_argument(
        "--segment-size", type=parse_size, default=None,
        help="segment size for streaming (e.g. 64M); without --stream, a file larger than "
        "this streams. Default 16M",
    )  # fmt: skip
    s.add_argument(
        "--timeout", type=parse_duration, default=60.0,
        help="streaming: how long to wait for a receiver to come or make progress "
        "(30s, 500ms, 2m; 0 or none: forever). Default 60s",
    )  # fmt: skip
    s.add_argument("--mode", type=parse_mode, default=None, help="permission bits, octal (default 600)")
    s.set_defaults(func=cmd_send)

    r = sub.add_parser(
        "recv",
        help="receive the file sent through segment NAME into OUT",
        description="Receive the file sent through segment NAME into OUT, atomically: OUT "
        "appears only once every byte has arrived and its CRC-32 matched.",
        **kw,
    )
    r.add_argument("name", help="segment name")
    r.add_argument("out", help="where to write the file")
    r.add_argument(
        "--timeout", type=parse_duration, default=60.0,
        help="how long to wait for the sender (for the segment to appear, and for each next "
        "piece of a stream); 0 or none: forever. Default 60s",
    )  # fmt: skip
    r.add_argument("--keep", action="store_true", help="leave the segment in place afterwards")
    r.add_argument("--fsync", action="store_true", help="fsync OUT before reporting success")
    r.set_defaults(func=cmd_recv)

    ls = sub.add_parser("ls", help="list the segments on this machine", **kw)
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=cmd_ls)

    i = sub.add_parser("info", help="describe one segment", **kw)
    i.add_argument("name", help="segment name")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=cmd_info)

    rm = sub.add_parser("rm", help="remove segments", **kw)
    rm.add_argument("names", nargs="+", metavar="NAME", help="segment names")
    rm.set_defaults(func=cmd_rm)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not hasattr(args, "quiet"):
        args.quiet = False
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("shmbridge: interrupted", file=sys.stderr)
        return 130
    except (shmbridge.Error, OSError, ValueError) as exc:
        return fail(exc)


if __name__ == "__main__":
    sys.exit(main())


__all__: List[str] = ["main", "exit_code", "parse_duration", "parse_size"]
