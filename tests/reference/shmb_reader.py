#!/usr/bin/env python3
"""The reference reader: docs/SPEC.md implemented with the Python standard library alone.

It imports nothing from shmbridge. If it can read what the library writes, SPEC.md says
everything a reader needs; if it rejects what SPEC.md says to reject, the rules are complete.

    shmb_reader.py NAME [--layout framed|size-prefixed|raw] [--out FILE] [--timeout SEC]

NAME is a segment name (opened as /dev/shm/NAME) or, with a '/' in it, a file path.
It prints one JSON line describing what it read, and exits 0; on a rule violation it prints
{"error": KIND, "message": ...} and exits 1. KIND is one of the SPEC's error names.
"""

import argparse
import fcntl
import json
import mmap
import os
import struct
import sys
import time
import zlib

SHM_DIR = "/dev/shm"

# SPEC.md, Layout 3: the framed header, version 1.
MAGIC = b"SHMBRIDG"
KNOWN_MAJOR = 1
MIN_HEADER_LEN = 128
FLAG_CHECKSUM = 1 << 0
FLAG_WRITER_CLOSED = 1 << 1
FLAG_PUBLISHED = 1 << 2
KIND_MESSAGE = 1
KIND_STREAM = 2
# SPEC.md 5.5: liveness locks, one byte each, from 2**62.
LOCK_BASE = 1 << 62
LOCK_WRITER = LOCK_BASE + 0
# struct flock on Linux x86_64: short l_type, short l_whence, off_t l_start, off_t l_len,
# pid_t l_pid (then padding).
FLOCK = "hhqqi4x"


class SpecError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def open_map(name):
    """The segment's descriptor (kept open: it is what liveness locks are probed through),
    a read-only mapping of it, and its real size."""
    path = name if "/" in name else os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    size = os.fstat(fd).st_size
    if size == 0:
        return fd, None, 0
    return fd, mmap.mmap(fd, size, access=mmap.ACCESS_READ), size


def lock_held(fd, offset):
    """SPEC.md 5.5: ask F_OFD_GETLK for a write lock on the byte at `offset`; any holder
    (another open file description) conflicts with it."""
    query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query)
    return struct.unpack(FLOCK, answer)[0] != fcntl.F_UNLCK


def u16(m, off):
    return struct.unpack_from("<H", m, off)[0]


def u32(m, off):
    return struct.unpack_from("<I", m, off)[0]


def u64(m, off):
    return struct.unpack_from("<Q", m, off)[0]


def read_framed(fd, m, size, timeout):
    """Validate the header (SPEC.md "Rules for readers"), then take a consistent snapshot."""
    if size < 16:
        raise SpecError("bad_magic", f"{size} bytes is smaller than a framed header")
    if m[0:8] != MAGIC:
        raise SpecError("bad_magic", f"starts with {bytes(m[0:8])!r}, not {MAGIC!r}")
    major, minor = u16(m, 8), u16(m, 10)
    if major != KNOWN_MAJOR:
        raise SpecError("unsupported_version", f"version {major}.{minor}")
    header_len = u32(m, 12)
    if header_len < MIN_HEADER_LEN or header_len % 64 != 0:
        raise SpecError("corrupt_header", f"header_len {header_len}")
    if header_len > size:
        raise SpecError("truncated", f"header_len {header_len} > size {size}")
    kind = u32(m, 16)
    capacity = u64(m, 24)
    if capacity > size - header_len:
        raise SpecError("truncated", f"capacity {capacity} > {size - header_len} bytes after the header")
    if kind != KIND_MESSAGE:
        raise SpecError("unsupported", f"kind {kind} has no single payload")
    deadline = time.monotonic() + timeout
    while True:
        s1 = u64(m, 40)
        if s1 % 2 == 0:
            flags = u32(m, 20)
            length = u64(m, 32)
            checksum = u32(m, 56)
            if length <= capacity:
                payload = bytes(m[header_len:header_len + length])
            else:
                payload = None
            if u64(m, 40) == s1:
                if payload is None:
                    raise SpecError("corrupt_header", f"payload_len {length} > capacity {capacity}")
                crc = zlib.crc32(payload) & 0xFFFFFFFF
                if flags & FLAG_CHECKSUM and crc != checksum:
                    raise SpecError("checksum_mismatch", f"crc32 {crc:08x} != header {checksum:08x}")
                info = {
                    "layout": "framed",
                    "version": f"{major}.{minor}",
                    "header_len": header_len,
                    "kind": "message",
                    "flags": flags,
                    "capacity": capacity,
                    "sequence": s1,
                    "publish_count": u32(m, 48),
                    "checksum": checksum if flags & FLAG_CHECKSUM else None,
                    "creator_pid": u32(m, 60),
                    "writer_closed": bool(flags & FLAG_WRITER_CLOSED),
                    # 1.1 and later: the writer's lock; 1.0 has none (the pid says).
                    "writer_alive": lock_held(fd, LOCK_WRITER) if minor >= 1 else None,
                }
                return payload, info
        if time.monotonic() > deadline:
            raise SpecError("timeout", "a write stayed in progress")
        time.sleep(0.001)


def read_size_prefixed(m, size):
    if size < 8:
        raise SpecError("truncated", f"{size} bytes is smaller than the 8-byte prefix")
    length = u64(m, 0)
    if length > size - 8:
        raise SpecError("truncated", f"prefix declares {length} bytes, {size - 8} follow")
    return bytes(m[8:8 + length]), {"layout": "size-prefixed"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--layout", choices=["framed", "size-prefixed", "raw"], default="framed")
    ap.add_argument("--out", help="write the payload to this file")
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args(argv)
    m = None
    fd = None
    try:
        try:
            fd, m, size = open_map(args.name)
        except FileNotFoundError:
            raise SpecError("not_found", f"no segment {args.name!r}")
        if args.layout == "framed":
            payload, info = read_framed(fd, m if m is not None else b"", size, args.timeout)
        elif args.layout == "size-prefixed":
            payload, info = read_size_prefixed(m if m is not None else b"", size)
        else:
            payload, info = (bytes(m) if m is not None else b""), {"layout": "raw"}
    except SpecError as e:
        print(json.dumps({"ok": False, "error": e.kind, "message": str(e), "name": args.name}))
        return 1
    finally:
        if m is not None:
            m.close()
        if fd is not None:
            os.close(fd)
    if args.out:
        with open(args.out, "wb") as f:
            f.write(payload)
    info.update(
        ok=True,
        name=args.name,
        size=size,
        payload_len=len(payload),
        crc32=zlib.crc32(payload) & 0xFFFFFFFF,
        head=payload[:16].hex(),
    )
    print(json.dumps(info, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
