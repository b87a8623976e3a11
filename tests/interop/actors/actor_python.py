#!/usr/bin/env python3
"""The Python shmbridge participant of the interop suite: the `shmbridge` package only.

Command line: tests/interop/PROTOCOL.md. Errors are reported by the exception class the
package raises, so the suite also checks that Python maps each case onto the right class.
"""

import argparse
import collections
import json
import os
import sys
import time
import zlib

import shmbridge

ACTOR = "python"

# Exception class -> protocol error kind. Order matters: subclasses first.
KINDS = [
    (shmbridge.BadMagic, "bad_magic"),
    (shmbridge.UnsupportedVersion, "unsupported_version"),
    (shmbridge.CorruptHeader, "corrupt_header"),
    (shmbridge.Truncated, "truncated"),
    (shmbridge.ChecksumMismatch, "checksum_mismatch"),
    (shmbridge.Timeout, "timeout"),
    (shmbridge.Unsupported, "unsupported"),
    (shmbridge.OutOfBounds, "out_of_bounds"),
    (FileExistsError, "already_exists"),
    (FileNotFoundError, "not_found"),
    (PermissionError, "permission_denied"),
    (ValueError, "invalid_size"),
    (shmbridge.Error, "error"),
    (OSError, "os"),
]


def pattern(n, p):
    period = bytes((i * 31 + p) % 251 for i in range(251))
    return (period * (n // 251 + 1))[:n]


# Message i of a channel (PROTOCOL.md "Channels"): 1 + (i * 7919) % size bytes, byte j is
# (i * 31 + j) % 256.
_BYTES = bytes(range(256))


def chan_message(i, size):
    n = 1 + (i * 7919) % size
    start = (i * 31) % 256
    return (_BYTES * (n // 256 + 2))[start:start + n]


def say(line):
    print(json.dumps(line), flush=True)


def chan_write(a, out):
    w = shmbridge.Channel.create(a.name, slots=a.slots, max_message=a.size, readers=a.readers,
                                 policy=a.policy)
    say({"ready": True})
    while len(w.status().reader_places) < a.wait_readers:
        time.sleep(0.001)
    for i in range(a.count):
        data = chan_message(i, a.size)
        loan = w.loan(len(data))  # no time limit: under block, as the slowest reader allows
        memoryview(loan)[:] = data
        loan.publish(tag=i % 2**32)
        if a.die_after is not None and i + 1 == a.die_after:
            os._exit(0)  # as if killed: no close, no clean-up, no JSON line
    w.close()
    out.update(sent=a.count)


def chan_read(a, out):
    r = shmbridge.Channel.open(a.name, timeout=30)
    say({"joined": True})
    held = collections.deque()
    received, lost, first, last, end = 0, 0, None, None, None
    while True:
        try:
            m = r.recv()
        except shmbridge.WriterClosed:
            end = "closed"
            break
        except shmbridge.PeerGone:
            end = "writer_died"
            break
        want = chan_message(m.seq, r.max_message)
        if len(m) != len(want) or bytes(m) != want or m.tag != m.seq % 2**32:
            out.update(ok=False, error="torn_message", message=f"message {m.seq} differs from the pattern")
            return
        received += 1
        lost += m.lost
        first = m.seq if first is None else first
        last = m.seq
        held.append(m)
        if a.die_after is not None and received == a.die_after:
            os._exit(0)  # as if killed, holding its last message
        while len(held) > a.hold:
            held.popleft().release()
    out.update(received=received, lost=lost, first=first, last=last, end=end)


def payload(a):
    if a.file:
        with open(a.file, "rb") as f:
            return f.read()
    return pattern(a.size, a.pattern)


def run(a):
    out = {}
    perm = int(a.perm, 8) if a.perm is not None else None
    if a.cmd == "write":
        data = payload(a)
        if a.layout == "raw":
            with shmbridge.Segment(a.name, "create_only", len(data), permissions=perm) as seg:
                seg.mapping.write(0, data)
        elif a.layout == "size-prefixed":
            shmbridge.create_size_prefixed(a.name, data, mode=0o600 if perm is None else perm).close()
        else:
            with shmbridge.FramedSegment.create(a.name, len(data), permissions=perm) as f:
                f.write(data)
        out.update(bytes=len(data), crc32=zlib.crc32(data))
    elif a.cmd == "read":
        if a.layout == "framed":
            with shmbridge.FramedSegment.open(a.name, readonly=True) as f:
                data = f.read()
        else:
            with shmbridge.Segment(a.name, "open_only", readonly=True) as seg:
                if a.layout == "raw":
                    data = seg.mapping.read()
                else:
                    data = shmbridge.read_size_prefixed(seg)
        if a.out:
            with open(a.out, "wb") as f:
                f.write(data)
        out.update(bytes=len(data), crc32=zlib.crc32(data))
        if a.pattern is not None and data != pattern(len(data), a.pattern):
            out.update(ok=False, error="mismatch", message="the bytes differ from the pattern")
    elif a.cmd == "fields-write":  # the seed's program1, on shmbridge.SharedMemory
        shm = shmbridge.SharedMemory(name=a.name, create=True, size=1024)
        shm.buf[0] = 128
        shm.set("i32", 4, -1)
        shm.set("u32", 8, 1)
        shm.set("f32", 12, 2.0)
        shm.close()
    elif a.cmd == "fields-modify":  # the seed's program2
        shm = shmbridge.SharedMemory(name=a.name)
        shm.buf[1] = 127
        shm.buf[2] = 255
        shm.set("i32", 4, -128)
        shm.set("u32", 8, 6666)
        shm.set("f32", 12, 1.414)
        shm.close()
    elif a.cmd == "fields-read":
        with shmbridge.Segment(a.name, "open_only", readonly=True) as seg:
            m = seg.mapping
            out.update({f"b{i}": m.get("u8", i) for i in range(4)})
            out.update(i32=m.get("i32", 4), u32=m.get("u32", 8), f32=round(m.get("f32", 12), 6))
    elif a.cmd == "open":
        with shmbridge.Segment(a.name, a.mode, a.size) as seg:
            out.update(created=seg.created, size=seg.size)
    elif a.cmd == "write-readonly":
        shm = shmbridge.SharedMemory(name=a.name, readonly=True)
        try:
            shm.buf[0] = 1
        except TypeError as e:  # a read-only memoryview refuses item assignment
            out.update(refused=True, error="permission_denied", message=str(e))
        else:
            out.update(ok=False, error="not_refused", message="a read-only attach accepted a write")
        finally:
            shm.close()
    elif a.cmd == "chan-write":
        chan_write(a, out)
    elif a.cmd == "chan-read":
        chan_read(a, out)
    else:
        raise ValueError(f"unknown command {a.cmd}")
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
    ap.add_argument("--policy", default="block")
    ap.add_argument("--slots", type=int, default=16)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--wait-readers", type=int, default=0)
    ap.add_argument("--die-after", type=int)
    ap.add_argument("--hold", type=int, default=0)
    a = ap.parse_args()
    res = {"ok": True, "actor": ACTOR}
    try:
        res.update(run(a))
    except Exception as e:  # every failure becomes one JSON line, classified by its type
        kind = next((k for cls, k in KINDS if isinstance(e, cls)), "unexpected")
        res.update(ok=False, error=kind, message=f"{type(e).__name__}: {e}")
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
