#!/usr/bin/env python3
"""The Python standard library participant of the interop suite.

It uses only `multiprocessing.shared_memory.SharedMemory`, `struct` and `zlib` — what the
seed's samples use — plus, for the framed layout, the stdlib-only reference reader written from
docs/SPEC.md (tests/reference/shmb_reader.py). Command line: tests/interop/PROTOCOL.md.
"""

import argparse
import json
import os
import struct
import sys
import zlib
from multiprocessing import resource_tracker, shared_memory

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "reference"))
import shmb_reader  # noqa: E402  (stdlib-only, from SPEC.md)

ACTOR = "python-stdlib"


class Fail(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def pattern(n, p):
    period = bytes((i * 31 + p) % 251 for i in range(251))
    return (period * (n // 251 + 1))[:n]


def untrack(shm):
    # The stdlib's resource tracker unlinks every segment this process created or attached to
    # when it exits (3.8-3.12); the suite's segments belong to the runner, so opt out.
    try:
        resource_tracker.unregister(shm._name, "shared_memory")
    except Exception:
        pass


def attach(name):
    shm = shared_memory.SharedMemory(name)
    untrack(shm)
    return shm


def create(name, size):
    shm = shared_memory.SharedMemory(name=name, create=True, size=size)
    untrack(shm)
    return shm


def payload(a):
    if a.file:
        with open(a.file, "rb") as f:
            return f.read()
    return pattern(a.size, a.pattern)


def run(a):
    out = {}
    if a.cmd == "write":
        data = payload(a)
        if a.layout == "raw":
            shm = create(a.name, len(data))
            shm.buf[: len(data)] = data
        elif a.layout == "size-prefixed":
            shm = create(a.name, 8 + len(data))
            shm.buf[0:8] = struct.pack("<Q", len(data))
            shm.buf[8 : 8 + len(data)] = data
        else:
            raise Fail("unsupported", "the stdlib participant does not write the framed layout")
        shm.close()
        out.update(bytes=len(data), crc32=zlib.crc32(data))
    elif a.cmd == "read":
        if a.layout == "framed":
            fd, m, size = shmb_reader.open_map(a.name)
            try:
                data, _ = shmb_reader.read_framed(fd, m if m is not None else b"", size, 2.0)
            except shmb_reader.SpecError as e:
                raise Fail(e.kind, str(e))
            finally:
                if m is not None:
                    m.close()
                os.close(fd)
        else:
            shm = attach(a.name)
            try:
                if a.layout == "raw":
                    data = bytes(shm.buf)
                else:
                    if shm.size < 8:
                        raise Fail("truncated", "smaller than the 8-byte prefix")
                    n = struct.unpack("<Q", shm.buf[0:8])[0]
                    if n > shm.size - 8:
                        raise Fail("truncated", f"prefix declares {n} bytes, {shm.size - 8} follow")
                    data = bytes(shm.buf[8 : 8 + n])
            finally:
                shm.close()
        if a.out:
            with open(a.out, "wb") as f:
                f.write(data)
        out.update(bytes=len(data), crc32=zlib.crc32(data))
        if a.pattern is not None and data != pattern(len(data), a.pattern):
            out.update(ok=False, error="mismatch", message="the bytes differ from the pattern")
    elif a.cmd == "fields-write":  # the seed's program1.py
        shm = create(a.name, 1024)
        shm.buf[0] = 128
        shm.buf[4:8] = struct.pack("i", -1)
        shm.buf[8:12] = struct.pack("I", 1)
        shm.buf[12:16] = struct.pack("f", 2.0)
        shm.close()
    elif a.cmd == "fields-modify":  # the seed's program2.py
        shm = attach(a.name)
        shm.buf[1] = 127
        shm.buf[2] = 255
        shm.buf[4:8] = struct.pack("i", -128)
        shm.buf[8:12] = struct.pack("I", 6666)
        shm.buf[12:16] = struct.pack("f", 1.414)
        shm.close()
    elif a.cmd == "fields-read":
        shm = attach(a.name)
        b = shm.buf
        out.update(
            b0=b[0], b1=b[1], b2=b[2], b3=b[3],
            i32=struct.unpack("i", b[4:8])[0],
            u32=struct.unpack("I", b[8:12])[0],
            f32=round(struct.unpack("f", b[12:16])[0], 6),
        )
        del b
        shm.close()
    elif a.cmd == "open":
        created = False
        if a.mode == "create_only":
            shm, created = create(a.name, a.size), True
        elif a.mode == "open_only":
            shm = attach(a.name)
        else:
            try:
                shm, created = create(a.name, a.size), True
            except FileExistsError:
                shm = attach(a.name)
        out.update(created=created, size=shm.size)
        shm.close()
    else:
        raise Fail("unsupported", f"the stdlib participant has no command {a.cmd}")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("--layout", default="raw")
    ap.add_argument("--name", required=True)
    ap.add_argument("--file")
    ap.add_argument("--out")
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--pattern", type=int)
    ap.add_argument("--mode")
    ap.add_argument("--perm")
    a = ap.parse_args()
    res = {"ok": True, "actor": ACTOR}
    try:
        if a.perm is not None:
            raise Fail("unsupported", "the stdlib cannot choose permissions (always 0600)")
        res.update(run(a))
    except Fail as e:
        res.update(ok=False, error=e.kind, message=str(e))
    except FileExistsError as e:
        res.update(ok=False, error="already_exists", message=str(e))
    except FileNotFoundError as e:
        res.update(ok=False, error="not_found", message=str(e))
    except PermissionError as e:
        res.update(ok=False, error="permission_denied", message=str(e))
    except ValueError as e:
        res.update(ok=False, error="invalid_size", message=str(e))
    except OSError as e:
        res.update(ok=False, error="os", message=str(e))
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
