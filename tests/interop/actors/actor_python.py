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


# ---- typed arrays (PROTOCOL.md "Arrays") ---------------------------------------------------


def shape_of(text):
    return () if text in ("", "()") else tuple(int(x) for x in text.split(","))


def values(dtype, shape, seed):
    """The protocol's array in C order: element k is v = (k * 7 + 3 + seed) % 101."""
    import numpy as np

    n = int(np.prod(shape)) if shape else 1
    v = (np.arange(n) * 7 + 3 + seed) % 101
    if dtype == "bool":
        a = v % 3 == 0
    elif dtype.startswith("complex"):
        a = (v + 1j * (100 - v)).astype(dtype)
    else:
        a = v.astype(dtype)
    return a.reshape(shape)


def want_strides(dtype, shape, order):
    """The strides (bytes) of layout C, F or S (PROTOCOL.md)."""
    import numpy as np

    item = np.dtype(dtype).itemsize
    out, step = [0] * len(shape), item
    dims = range(len(shape)) if order == "F" else reversed(range(len(shape)))
    if order == "S":
        step = 2 * item
    for d in dims:
        out[d] = step
        step *= max(shape[d], 1) * (2 if order == "S" else 1)
    if order == "S" and out:
        out[0] = -out[0]
    return tuple(out)


def writable_order(order):
    if order not in ("C", "F"):
        raise shmbridge.Unsupported(f"order {order}: Python writes C or F layouts only")
    return order


def check_array(arr, dtype, shape, order, seed, what):
    """None when `arr` (a numpy array) is the protocol's, else the failure fields."""
    import numpy as np

    if str(arr.dtype) != dtype or tuple(arr.shape) != shape or tuple(arr.strides) != want_strides(dtype, shape, order):
        return dict(ok=False, error="mismatch",
                    message=f"{what}: got {arr.dtype} {arr.shape} strides {arr.strides}")
    want = values(dtype, shape, seed)
    same = (arr != 0) == want if dtype == "bool" else arr == want
    if not np.all(same):
        k = int(np.argmin(np.asarray(same).reshape(-1)))
        return dict(ok=False, error="mismatch", message=f"{what}: element {k} differs")
    return None


def array_write(a, out):
    shape = shape_of(a.shape)
    sa = shmbridge.SharedArray.create(a.name, shape, a.dtype, order=writable_order(a.order))
    with sa.writing() as arr:
        arr[...] = values(a.dtype, shape, a.seed)
    out.update(dtype=str(sa.dtype), shape=list(sa.shape), strides=list(sa.strides),
               elements=int(sa.array.size), bytes=sa.nbytes, version=sa.version)
    sa.close()


def array_read(a, out):
    shape = shape_of(a.shape)
    with shmbridge.SharedArray.open(a.name, readonly=True, timeout=30) as sa:
        bad = check_array(sa.array, a.dtype, shape, a.order, a.seed, "the segment (in place)")
        if bad:
            out.update(bad)
            return
        copy = sa.copy()  # a consistent snapshot, in the layout numpy chooses for a copy
        want = values(a.dtype, shape, a.seed)
        if not ((copy != 0) == want if a.dtype == "bool" else copy == want).all():
            out.update(ok=False, error="mismatch", message="the consistent copy differs")
            return
        out.update(dtype=str(sa.dtype), shape=list(sa.shape), strides=list(sa.strides),
                   checked=int(sa.array.size), bytes=sa.nbytes, version=sa.version)


def chan_array_write(a, out):
    shape, dtypes = shape_of(a.shape), a.dtypes.split(",")
    order = writable_order(a.order)
    w = shmbridge.Channel.create(a.name, slots=4, max_message=a.size, readers=2)
    say({"ready": True})
    while len(w.status().reader_places) < a.wait_readers:
        time.sleep(0.001)
    for i in range(a.count):
        dtype = dtypes[i % len(dtypes)]
        loan = w.loan_array(shape, dtype, order=order)
        loan.array[...] = values(dtype, shape, i)
        loan.publish(tag=i)
    w.close()
    out.update(sent=a.count)


def chan_array_read(a, out):
    shape, dtypes = shape_of(a.shape), a.dtypes.split(",")
    r = shmbridge.Channel.open(a.name, timeout=30)
    say({"joined": True})
    received = 0
    for msg in r:
        with msg:
            arr = msg.array()
            bad = check_array(arr, dtypes[msg.seq % len(dtypes)], shape, a.order, msg.seq,
                              f"message {msg.seq}")
            del arr
        if bad:
            out.update(bad)
            return
        received += 1
    r.close()
    out.update(received=received)


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
    elif a.cmd == "array-write":
        array_write(a, out)
    elif a.cmd == "array-read":
        array_read(a, out)
    elif a.cmd == "chan-array-write":
        chan_array_write(a, out)
    elif a.cmd == "chan-array-read":
        chan_array_read(a, out)
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
    ap.add_argument("--dtype")
    ap.add_argument("--dtypes")
    ap.add_argument("--shape")
    ap.add_argument("--order", default="C")
    ap.add_argument("--seed", type=int, default=0)
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
