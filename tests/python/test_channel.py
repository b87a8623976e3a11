"""Channels from Python: one writer, many readers, variable-size messages, zero copy both ways.

Round trips in one process and across processes, numpy on loans and messages, the end of a
channel (closed vs dead writer), every bad input of the issue (too large, too many readers,
loans never published, a reader that never releases, corrupt headers and cursors, SIGKILL of
either side), released messages, views outliving release and close, recv_async (cancellation,
a loop that stays free), and Ctrl-C in every wait.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import selectors
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest

import shmbridge
from _helpers import run_py, wait_asleep

SHM = Path("/dev/shm")

# Channel layout (docs/SPEC.md section 8.2), for the corruption tests.
SLOT_SIZE, READERS_OFF, QUEUE_OFF, SLOTS_OFF = 144, 168, 176, 184
S_LEN, R_CURSOR, Q_SLOT = 8, 0, 8


def message(i: int, size: int = 200) -> bytes:
    """Message `i` of the interop protocol: its length and bytes follow from `i`."""
    n = 1 + (i * 7919) % size
    return bytes((i * 31 + j) % 256 for j in range(n))


@pytest.fixture
def chan(shm_name: str) -> Iterator[Callable[..., shmbridge.ChannelWriter]]:
    """Create channels named `shm_name` (removed at teardown by the fixture)."""
    made: List[shmbridge.ChannelWriter] = []

    def make(**kw: Any) -> shmbridge.ChannelWriter:
        opts: Dict[str, Any] = dict(slots=4, max_message=256, readers=2)
        opts.update(kw)
        w = shmbridge.Channel.create(shm_name, **opts)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def u64(name: str, off: int) -> int:
    with open(SHM / name, "rb") as f:
        f.seek(off)
        return int(struct.unpack("<Q", f.read(8))[0])


def poke(name: str, off: int, fmt: str, value: int) -> None:
    """Another process's stray write into the segment."""
    with open(SHM / name, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, value))


def reap(p: "subprocess.Popen[str]") -> None:
    """Kill `p` if it still runs, wait for it, and close its pipes."""
    if p.poll() is None:
        p.kill()
    p.wait()
    for f in (p.stdin, p.stdout, p.stderr):
        if f is not None:
            f.close()


# --- round trips ---------------------------------------------------------------------------


def test_round_trip_in_one_process(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    r = shmbridge.Channel.open(shm_name, timeout=0)
    assert r.try_recv() is None
    before = time.time()
    for i in range(50):
        assert w.send(message(i), tag=i) == i
        m = r.recv(timeout=5)
        assert isinstance(m, shmbridge.Message)
        assert (m.seq, m.tag, m.lost, len(m)) == (i, i, 0, len(message(i)))
        assert bytes(m) == message(i)
        assert before - 60 < m.timestamp < time.time() + 60
        assert abs(m.timestamp_ns / 1e9 - m.timestamp) < 1e-3
        m.release()
    assert w.published == 50
    assert (w.name, w.slots, w.max_message, w.readers, w.policy) == (shm_name, 4, 256, 2, "block")
    st = w.status()
    assert (st.head, st.closed, st.writer_alive, st.policy) == (50, False, True, "block")
    assert [(p.index, p.cursor, p.lag, p.taken) for p in st.reader_places] == [(0, 50, 0, 50)]
    assert shmbridge.Channel.status(shm_name).head == 50
    r.close()
    assert r.closed
    with pytest.raises(shmbridge.ClosedError):
        r.recv()


def test_two_readers_get_every_message(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=3)
    a = shmbridge.Channel.open(shm_name)
    b = shmbridge.Channel.open(shm_name)
    assert (a.index, b.index) == (0, 1)
    got: List[List[bytes]] = [[], []]

    def drain(r: shmbridge.ChannelReader, out: List[bytes]) -> None:
        for m in r:
            with m:
                out.append(bytes(m))

    threads = [threading.Thread(target=drain, args=(r, out)) for r, out in zip((a, b), got)]
    for t in threads:
        t.start()
    for i in range(300):
        w.send(message(i), timeout=30)
    w.close()
    for t in threads:
        t.join(30)
    assert got[0] == got[1] == [message(i) for i in range(300)]


def test_iteration_ends_when_the_writer_closes(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=8)
    r = shmbridge.Channel.open(shm_name)
    for i in range(5):
        w.send(message(i), tag=100 + i)
    with w:
        pass  # closes
    assert w.closed
    assert [(m.seq, m.tag, bytes(m)) for m in r] == [(i, 100 + i, message(i)) for i in range(5)]
    with pytest.raises(shmbridge.WriterClosed, match="closed the channel"):
        r.recv()
    with pytest.raises(shmbridge.WriterClosed):
        r.try_recv()
    with pytest.raises(shmbridge.ClosedError):
        w.send(b"late")
    with pytest.raises(shmbridge.ClosedError):
        w.loan(1)


_WRITER = """
import os, sys, shmbridge
name, count, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def message(i, size=200):
    n = 1 + (i * 7919) % size
    return bytes((i * 31 + j) % 256 for j in range(n))
w = shmbridge.Channel.create(name, slots=4, max_message=256, readers=2)
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(2)
for i in range(count):
    if i % 2:
        w.send(message(i), tag=i)
    else:
        data = message(i)
        with w.loan(len(data)) as loan:
            memoryview(loan)[:] = data
if mode == "die":
    os._exit(0)  # as if killed: no close
w.close()
"""


def _writer_process(name: str, count: int, mode: str) -> "subprocess.Popen[str]":
    p = subprocess.Popen(
        [sys.executable, "-c", _WRITER, name, str(count), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


@pytest.mark.parametrize("mode", ["close", "die"])
def test_across_processes_closed_vs_dead_writer(shm_name: str, mode: str) -> None:
    p = _writer_process(shm_name, 100, mode)
    try:
        r = shmbridge.Channel.open(shm_name, timeout=30)
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
        got = []
        end: Optional[BaseException] = None
        while True:
            try:
                m = r.recv(timeout=30)
            except (shmbridge.WriterClosed, shmbridge.PeerGone) as e:
                end = e
                break
            got.append((m.seq, m.tag if m.seq % 2 else 0, bytes(m)))
            m.release()
        assert got == [(i, i if i % 2 else 0, message(i)) for i in range(100)]
        if mode == "close":
            assert isinstance(end, shmbridge.WriterClosed)
        else:
            assert isinstance(end, shmbridge.PeerGone), end
            assert "writer died" in str(end)
            assert not shmbridge.Channel.status(shm_name).writer_alive
        assert p.wait(30) == 0
    finally:
        reap(p)


def test_a_reader_in_another_process(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    code = """
        import sys, zlib, shmbridge
        r = shmbridge.Channel.open(sys.argv[1], timeout=30)
        crc, n = 0, 0
        for m in r:
            crc = zlib.crc32(m, crc)  # straight from the buffer
            n += 1
        print(n, crc)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), shm_name],
                         stdout=subprocess.PIPE, text=True)
    try:
        while not shmbridge.Channel.status(shm_name).reader_places:
            time.sleep(0.01)
        import zlib

        crc = 0
        for i in range(200):
            w.send(message(i), timeout=30)
            crc = zlib.crc32(message(i), crc)
        w.close()
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        assert out.split() == ["200", str(crc)]
    finally:
        reap(p)


# --- zero copy with numpy -----------------------------------------------------------------------


def test_numpy_on_loans_and_messages_is_zero_copy(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(max_message=4096)
    r = shmbridge.Channel.open(shm_name)
    loan = w.loan(4096)
    assert isinstance(loan, shmbridge.Loan) and len(loan) == 4096 and loan.active
    arr = np.frombuffer(loan, dtype=np.float32)
    assert arr.flags.writeable and arr.shape == (1024,)
    arr[:] = np.arange(1024, dtype=np.float32)
    assert loan.publish(tag=9) == 0 and not loan.active
    m = r.recv(timeout=5)
    got = np.frombuffer(m, dtype=np.float32)
    assert not got.flags.writeable  # a message is read-only
    assert m.tag == 9 and np.array_equal(got, np.arange(1024, dtype=np.float32))
    # Zero copy both ways: the reader's array is the very memory the writer's array wrote.
    # (Writing a loan after publish is a misuse; here it shows there is no copy anywhere.)
    arr[5] = -1.0
    assert got[5] == -1.0
    assert np.shares_memory(got, np.frombuffer(m, dtype=np.uint8))
    with pytest.raises(ValueError):
        got[0] = 1.0
    del got
    m.release()
    # A loan published with fewer bytes than it had.
    with w.loan(100) as small:
        np.asarray(small)[:10] = 7
        small.publish(10, tag=1)
    m = r.recv(timeout=5)
    assert bytes(m) == bytes([7] * 10)


def test_loan_context_manager_publishes_or_discards(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=2)
    r = shmbridge.Channel.open(shm_name)
    with pytest.raises(RuntimeError, match="boom"):
        with w.loan(3) as loan:
            memoryview(loan)[:] = b"bad"
            raise RuntimeError("boom")
    assert not loan.active
    assert r.try_recv() is None  # discarded: never seen
    with w.loan(3) as loan:
        memoryview(loan)[:] = b"yes"
    m = r.try_recv()
    assert m is not None and bytes(m) == b"yes" and m.seq == 0
    m.release()
    with pytest.raises(shmbridge.ClosedError, match="published or discarded"):
        loan.publish()
    with pytest.raises(shmbridge.ClosedError):
        memoryview(loan)
    loan.discard()  # nothing left to do: fine


# --- bad input ---------------------------------------------------------------------------------


def test_bad_options_are_value_errors(shm_name: str) -> None:
    cases: List[Tuple[Dict[str, Any], str]] = [
        (dict(slots=1), "2 to"),
        (dict(readers=0), "reader places"),
        (dict(readers=5000), "reader places"),
        (dict(max_message=0), "max_message 0"),
        (dict(history=4), "history"),
        (dict(slots=-1), "invalid slots -1"),
        (dict(max_message=-5), "invalid max_message -5"),
        (dict(policy="sometimes"), "block"),
    ]
    for kw, needle in cases:
        opts: Dict[str, Any] = dict(slots=4, max_message=64, readers=1)
        opts.update(kw)
        with pytest.raises(ValueError, match=needle):
            shmbridge.Channel.create(shm_name, **opts)
        assert not (SHM / shm_name).exists()
    with pytest.raises(TypeError):
        shmbridge.Channel.create(shm_name, slots=4, max_message=64)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="cannot be made directly"):
        shmbridge.Message()
    with pytest.raises(TypeError, match="cannot be made directly"):
        shmbridge.Loan()


def test_open_errors(shm_name: str, shm_names: Callable[[], str]) -> None:
    with pytest.raises(shmbridge.Timeout):
        shmbridge.Channel.open(shm_name, timeout=0)
    with pytest.raises(ValueError, match="non-negative"):
        shmbridge.Channel.open(shm_name, timeout=-1)
    other = shm_names()
    with shmbridge.FramedSegment.create(other, 64):
        with pytest.raises(shmbridge.Unsupported, match="not a channel"):
            shmbridge.Channel.open(other)
        with pytest.raises(shmbridge.Unsupported):
            shmbridge.Channel.status(other)


def test_message_larger_than_max_message(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(max_message=64)
    r = shmbridge.Channel.open(shm_name)
    with pytest.raises(shmbridge.OutOfBounds, match="larger than the channel's max_message of 64"):
        w.send(b"x" * 65)
    with pytest.raises(shmbridge.OutOfBounds):
        w.loan(65)
    with pytest.raises(ValueError):
        w.loan(-1)
    loan = w.loan(8)
    with pytest.raises(shmbridge.OutOfBounds, match="more than this loan's 8 bytes"):
        loan.publish(9)
    assert loan.active  # still usable after a refused publish
    loan.publish(8)
    assert len(r.recv(timeout=5)) == 8
    assert w.send(b"x" * 64) == 1  # exactly max_message is fine


def test_more_readers_than_places(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    chan(readers=2)
    a = shmbridge.Channel.open(shm_name)
    b = shmbridge.Channel.open(shm_name)
    with pytest.raises(FileExistsError, match="2 reader places"):
        shmbridge.Channel.open(shm_name)
    b.close()
    c = shmbridge.Channel.open(shm_name)  # the place came back
    assert c.index == 1
    del a  # garbage collection gives a place back too
    gc.collect()
    assert shmbridge.Channel.open(shm_name).index == 0


def test_loans_that_are_never_published_give_their_slot_back(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=2, readers=1)
    r = shmbridge.Channel.open(shm_name)
    for _ in range(20):  # more loans than slots: each one dropped unpublished
        loan = w.loan(10, timeout=0)
        memoryview(loan)[:] = b"0123456789"
        del loan
    a, b = w.loan(1, timeout=0), w.loan(1, timeout=0)  # several outstanding at once
    with pytest.raises(shmbridge.Timeout):
        w.loan(1, timeout=0)  # both slots are loaned
    a.discard()
    b.discard()
    assert r.try_recv() is None
    w.send(b"ok", timeout=0)
    m = r.recv(timeout=5)
    assert (m.seq, bytes(m)) == (0, b"ok")


def test_a_reader_that_never_releases_blocks_the_writer_with_a_clear_error(
    chan: Callable[..., shmbridge.ChannelWriter], shm_name: str
) -> None:
    w = chan(slots=2, readers=2)
    r = shmbridge.Channel.open(shm_name)
    held = [r.recv(timeout=5) for _ in (w.send(b"a"), w.send(b"b"))]
    with pytest.raises(shmbridge.Timeout) as ei:
        w.send(b"c", timeout=0.3)
    text = str(ei.value)
    assert f"reader 0 (pid {os.getpid()}) holds 2 message(s)" in text, text
    assert shm_name in text
    held[0].release()
    assert w.send(b"c", timeout=5) == 2  # a slot came free
    # A reader that does not keep up at all: named by the message it has not taken.
    with pytest.raises(shmbridge.Timeout, match=r"reader 0 .* has not taken message 2"):
        w.send(b"d", timeout=0.2)


def test_publish_after_close_is_refused(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    r = shmbridge.Channel.open(shm_name)
    loan = w.loan(4)
    w.close()
    with pytest.raises(shmbridge.ClosedError, match="after close"):
        loan.publish()
    loan.discard()
    with pytest.raises(shmbridge.WriterClosed):
        r.recv(timeout=5)


def test_corrupt_slot_headers_and_cursors_are_errors(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=4, readers=1)
    r = shmbridge.Channel.open(shm_name)
    w.send(b"fine")
    queue, slots, slot_size = u64(shm_name, QUEUE_OFF), u64(shm_name, SLOTS_OFF), u64(shm_name, SLOT_SIZE)
    with open(SHM / shm_name, "rb") as f:
        f.seek(queue + Q_SLOT)
        k = struct.unpack("<I", f.read(4))[0]
    poke(shm_name, queue + Q_SLOT, "<I", 99)
    with pytest.raises(shmbridge.CorruptHeader, match="slot 99"):
        r.try_recv()
    poke(shm_name, queue + Q_SLOT, "<I", k)
    poke(shm_name, slots + k * slot_size + S_LEN, "<Q", 1 << 40)
    with pytest.raises(shmbridge.CorruptHeader, match="more than max_message"):
        r.recv(timeout=5)
    poke(shm_name, slots + k * slot_size + S_LEN, "<Q", 4)
    cursor = u64(shm_name, READERS_OFF) + R_CURSOR
    poke(shm_name, cursor, "<Q", 1000)
    with pytest.raises(shmbridge.CorruptHeader, match="past head"):
        r.try_recv()
    poke(shm_name, cursor, "<Q", 0)
    m = r.recv(timeout=5)
    assert bytes(m) == b"fine"
    m.release()
    r.close()
    poke(shm_name, SLOT_SIZE, "<Q", 64)
    with pytest.raises(shmbridge.CorruptHeader):
        shmbridge.Channel.open(shm_name)
    poke(shm_name, SLOT_SIZE, "<Q", slot_size)
    size = (SHM / shm_name).stat().st_size
    os.truncate(SHM / shm_name, size - 100)
    with pytest.raises(shmbridge.Truncated):
        shmbridge.Channel.open(shm_name)


_FUZZ = """
import os, random, struct, sys, shmbridge
name, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
errors = (shmbridge.Error, ValueError, OSError)
seen = set()
for round_ in range(60):
    w = shmbridge.Channel.create(name, slots=4, max_message=128, readers=2, checksum=rng.random() < 0.3)
    r = shmbridge.Channel.open(name)
    for i in range(rng.randint(0, 6)):
        try:
            w.send(bytes([i]) * rng.randint(0, 128), timeout=0)
        except shmbridge.Timeout:
            pass
    size = os.path.getsize("/dev/shm/" + name)
    with open("/dev/shm/" + name, "r+b") as f:
        for _ in range(rng.randint(1, 8)):
            off = rng.choice([rng.randrange(128, 320), rng.randrange(320, size)])
            f.seek(off)
            f.write(struct.pack("<Q", rng.choice([0, 1, 2**63, 2**64 - 1, rng.getrandbits(64)]))[: rng.choice([1, 4, 8])])
    for _ in range(8):
        try:
            m = r.try_recv()
            if m is not None:
                bytes(m); len(m); m.release()
        except errors as e:
            seen.add(type(e).__name__)
    try:
        r2 = shmbridge.Channel.open(name, timeout=0)
        r2.try_recv()
    except errors as e:
        seen.add(type(e).__name__)
    try:
        shmbridge.Channel.status(name)
    except errors as e:
        seen.add(type(e).__name__)
    w.close()
    del r
    shmbridge.remove(name)
print("ok", sorted(seen))
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_random_corruption_never_crashes(shm_name: str, seed: int) -> None:
    proc = run_py(_FUZZ, shm_name, str(seed), timeout=120)
    assert proc.stdout.startswith("ok"), proc.stdout + proc.stderr


_FOREVER_WRITER = """
import sys, time, shmbridge
name = sys.argv[1]
w = shmbridge.Channel.create(name, slots=4, max_message=256, readers=1)
print("ready", flush=True)
while not w.status().reader_places:  # the reader first, so it gets every message
    time.sleep(0.001)
i = 0
while True:
    n = 1 + (i * 7919) % 200
    with w.loan(n) as loan:
        memoryview(loan)[:] = bytes((i * 31 + j) % 256 for j in range(n))
    i += 1
"""


def test_sigkill_of_the_writer_at_random_points_never_tears_a_message(shm_name: str) -> None:
    rng = random.Random(7)
    for _ in range(4):
        p = subprocess.Popen([sys.executable, "-c", _FOREVER_WRITER, shm_name],
                             stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            r = shmbridge.Channel.open(shm_name, timeout=30)
            kill_at = rng.randint(1, 400)
            n = 0
            with pytest.raises(shmbridge.PeerGone):
                while True:
                    m = r.recv(timeout=30)
                    assert m.seq == n, f"message {n} missing (got {m.seq})"
                    assert bytes(m) == message(n), f"torn message {n}"
                    m.release()
                    n += 1
                    if n == kill_at:
                        p.send_signal(signal.SIGKILL)
            assert n >= kill_at
            r.close()
        finally:
            reap(p)
            if (SHM / shm_name).exists():
                shmbridge.remove(shm_name)


def test_sigkill_of_a_reader_frees_its_place_and_its_holds(
    chan: Callable[..., shmbridge.ChannelWriter], shm_name: str
) -> None:
    w = chan(slots=4, readers=2)
    code = """
        import sys, shmbridge
        r = shmbridge.Channel.open(sys.argv[1], timeout=30)
        held = []
        for m in r:
            held.append(m)  # never released
            print(m.seq, flush=True)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), shm_name],
                         stdout=subprocess.PIPE, text=True)
    try:
        while not shmbridge.Channel.status(shm_name).reader_places:
            time.sleep(0.01)
        for i in range(4):
            w.send(message(i), timeout=30)
        assert p.stdout is not None
        for i in range(4):
            assert p.stdout.readline().strip() == str(i)
        with pytest.raises(shmbridge.Timeout, match="holds 4 message"):
            w.send(b"x", timeout=0.2)  # every slot is held by that reader
        p.send_signal(signal.SIGKILL)
        p.wait()
        for i in range(4, 20):  # its place and its holds go with it
            w.send(message(i), timeout=30)
        assert shmbridge.Channel.status(shm_name).reader_places == []
    finally:
        reap(p)


# --- policies ----------------------------------------------------------------------------------


def test_overwrite_never_waits_and_counts_what_was_lost(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=4, readers=1, policy="overwrite")
    r = shmbridge.Channel.open(shm_name)
    for i in range(20):
        w.send(message(i), timeout=0)  # never waits for the reader
    got = []
    lost = 0
    while (m := r.try_recv()) is not None:
        got.append(m.seq)
        lost += m.lost
        assert bytes(m) == message(m.seq)
        m.release()
    assert got and got[-1] == 19
    assert lost + len(got) == 20 and lost > 0
    assert r.status().reader_places[0].lost == lost


def test_history_gives_a_late_reader_the_last_messages(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=4, readers=1, policy="overwrite", history=2)
    for i in range(6):
        w.send(message(i))
    r = shmbridge.Channel.open(shm_name)
    assert [m.seq for m in (r.recv(timeout=1), r.recv(timeout=1))] == [4, 5]


def test_checksums_catch_a_changed_message(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(checksum=True, readers=1)
    assert w.checksum
    r = shmbridge.Channel.open(shm_name)
    w.send(b"checked")
    m = r.recv(timeout=1)
    assert bytes(m) == b"checked"
    m.release()
    w.send(b"changed")
    slots, slot_size = u64(shm_name, SLOTS_OFF), u64(shm_name, SLOT_SIZE)
    header = 64  # slot_header_len for 1 reader
    data = (SHM / shm_name).read_bytes()
    for k in range(4):
        if data[slots + k * slot_size + header: slots + k * slot_size + header + 7] == b"changed":
            poke(shm_name, slots + k * slot_size + header, "<B", ord("C"))
    with pytest.raises(shmbridge.ChecksumMismatch):
        r.recv(timeout=1)
    w.send(b"next")
    assert bytes(r.recv(timeout=1)) == b"next"  # the reader moved past it


# --- released messages and views that outlive things ------------------------------------------


def test_a_released_message_raises_clear_errors(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    r = shmbridge.Channel.open(shm_name)
    w.send(b"payload", tag=3)
    with r.recv(timeout=1) as m:
        assert bytes(m) == b"payload" and not m.released
    assert m.released
    for use in (bytes, memoryview, len, lambda x: np.frombuffer(x, dtype=np.uint8)):
        with pytest.raises(shmbridge.ClosedError, match="message 0 was released"):
            use(m)
    assert (m.seq, m.tag) == (0, 3)  # what the writer said stays readable
    m.release()  # again: nothing
    assert "released" in repr(m)


def test_views_outlive_release_close_and_the_reader(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=2, readers=1)
    r = shmbridge.Channel.open(shm_name)
    w.send(b"first message")
    m = r.recv(timeout=1)
    view = memoryview(m)
    arr = np.frombuffer(m, dtype=np.uint8)
    m.release()  # deferred: views are alive
    with pytest.raises(shmbridge.ClosedError):
        memoryview(m)
    for i in range(10):  # the writer keeps going on the other slot; ours is never reused
        w.send(b"x" * (i + 1), timeout=5)
        with r.recv(timeout=5) as other:
            assert bytes(other) == b"x" * (i + 1)
    assert bytes(view) == b"first message" and bytes(arr) == b"first message"
    w.send(b"y", timeout=5)  # the other slot
    with pytest.raises(shmbridge.Timeout, match="holds 1 message"):
        w.send(b"z", timeout=0.2)  # ours is held and "y" is unread: no room
    r.close()
    del r, m
    gc.collect()
    assert bytes(view) == b"first message"  # the message keeps its reader and mapping
    w.close()
    del w
    gc.collect()
    assert bytes(view) == b"first message" and arr[0] == ord("f")
    view.release()
    del arr
    gc.collect()
    # Everything is gone now: the place is free.
    assert shmbridge.Channel.status(shm_name).reader_places == []


def test_loan_views_stay_memory_safe_after_publish_and_close(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    loan = w.loan(16)
    arr = np.frombuffer(loan, dtype=np.uint8)
    arr[:] = 1
    loan.publish()
    with pytest.raises(shmbridge.ClosedError):
        memoryview(loan)
    w.close()
    del w, loan
    gc.collect()
    arr[:] = 2  # still mapped: no crash
    assert int(arr.sum()) == 32


# --- threads -----------------------------------------------------------------------------------


def test_threads_share_a_reader_and_each_message_goes_to_one(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=4, readers=1)
    r = shmbridge.Channel.open(shm_name)
    seen: List[int] = []

    def take() -> None:
        for m in r:
            seen.append(m.seq)
            m.release()

    ts = [threading.Thread(target=take) for _ in range(3)]
    for t in ts:
        t.start()
    for i in range(500):
        w.send(message(i), timeout=30)
    w.close()
    for t in ts:
        t.join(30)
    assert sorted(seen) == list(range(500))


def test_a_writer_busy_in_another_thread_is_a_clear_error(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan(slots=2, readers=1)
    r = shmbridge.Channel.open(shm_name)
    w.send(b"1")
    w.send(b"2")
    errors: List[BaseException] = []

    def blocked() -> None:
        try:
            w.send(b"3", timeout=30)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    deadline = time.monotonic() + 30
    while True:  # until the other thread is inside its wait
        try:
            w.status()
        except RuntimeError as e:
            assert "in use by another thread" in str(e)
            break
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="in use by another thread"):
        w.send(b"4")
    w.close()  # deferred until the other call returns
    r.recv(timeout=5).release()  # room: the blocked send goes through
    t.join(30)
    assert errors == []
    assert w.closed
    assert [bytes(m) for m in r] == [b"2", b"3"]


# --- recv_async --------------------------------------------------------------------------------


def test_recv_async_round_trip_timeout_and_end(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    r = shmbridge.Channel.open(shm_name)

    async def main() -> None:
        w.send(b"ready")  # already there: no wait
        m = await r.recv_async()
        assert bytes(m) == b"ready"
        m.release()
        threading.Timer(0.1, lambda: w.send(b"later", tag=5)).start()
        m = await r.recv_async(timeout=30)
        assert (bytes(m), m.tag) == (b"later", 5)
        m.release()
        with pytest.raises(shmbridge.Timeout):
            await r.recv_async(timeout=0.1)
        task = asyncio.create_task(r.recv_async())  # a coroutine to asyncio
        await asyncio.sleep(0.05)
        w.close()
        with pytest.raises(shmbridge.WriterClosed):
            await task

    asyncio.run(main())


def test_recv_async_cancelled_loses_no_message(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    r = shmbridge.Channel.open(shm_name)

    async def main() -> None:
        for _ in range(5):
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(r.recv_async(), 0.05)
        task = asyncio.create_task(r.recv_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        w.send(b"kept")
        m = await asyncio.wait_for(r.recv_async(), 30)
        assert (m.seq, bytes(m)) == (0, b"kept")

    asyncio.run(main())
    # The cancelled waits' helper threads exit (they look at least every 100 ms) and let go
    # of the reader: once closed, its place comes free.
    r.close()
    del r
    gc.collect()
    deadline = time.monotonic() + 30
    while shmbridge.Channel.status(shm_name).reader_places:
        assert time.monotonic() < deadline, "a recv_async helper kept the reader alive"
        time.sleep(0.05)


class CountingSelector(selectors.DefaultSelector):
    """Counts the event loop's trips through its selector."""

    def __init__(self) -> None:
        super().__init__()
        self.selects = 0

    def select(self, timeout: Optional[float] = None) -> Any:
        self.selects += 1
        return super().select(timeout)


def test_recv_async_keeps_the_loop_free_and_does_not_poll(chan: Callable[..., shmbridge.ChannelWriter], shm_name: str) -> None:
    w = chan()
    r = shmbridge.Channel.open(shm_name)
    sel = CountingSelector()
    loop = asyncio.SelectorEventLoop(sel)

    async def main() -> None:
        waiting = asyncio.ensure_future(r.recv_async(timeout=60))
        # The loop is free while recv_async waits: 200 hand-offs through a queue complete
        # before anything is sent (the message is sent only after them).
        q: asyncio.Queue[int] = asyncio.Queue(maxsize=1)

        async def ping() -> None:
            for i in range(200):
                await q.put(i)

        pinger = asyncio.ensure_future(ping())
        for i in range(200):
            assert await q.get() == i
        await pinger
        assert not waiting.done()
        # Nothing to do for a while: a polling implementation would spin the selector.
        before = sel.selects
        await asyncio.sleep(0.5)
        assert sel.selects - before <= 5, f"{sel.selects - before} selects while idle"
        w.send(b"at last")
        m = await waiting
        assert bytes(m) == b"at last"

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


# --- Ctrl-C -------------------------------------------------------------------------------------

_CTRL_C = """
import asyncio, sys, shmbridge
what, name = sys.argv[1], sys.argv[2]
try:
    if what == "open":  # a channel that never appears
        print("waiting", flush=True)
        shmbridge.Channel.open(name)
    w = shmbridge.Channel.create(name, slots=2, max_message=8, readers=1)
    r = shmbridge.Channel.open(name)
    if what == "recv":
        print("waiting", flush=True)
        r.recv()
    elif what == "recv_async":
        async def main():
            print("waiting", flush=True)
            await r.recv_async()
        asyncio.run(main())
    elif what == "send":
        w.send(b"1"); w.send(b"2")
        print("waiting", flush=True)
        w.send(b"3")  # block: the reader never takes anything
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(0)
print("returned", flush=True)
sys.exit(1)
"""


@pytest.mark.parametrize("what", ["open", "recv", "recv_async", "send"])
def test_ctrl_c_interrupts_channel_waits(shm_name: str, what: str) -> None:
    p = subprocess.Popen([sys.executable, "-c", _CTRL_C, what, shm_name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "waiting"
        wait_asleep(p.pid)  # into the futex sleep
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0 and out.strip() == "interrupted", (out, err)
    finally:
        reap(p)


# --- the example --------------------------------------------------------------------------------


def test_the_pingpong_example_runs() -> None:
    from _helpers import EXAMPLES

    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "channel_pingpong.py"), "--count", "300", "--size", "64"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("300 round trips of 64 bytes: median "), proc.stdout


def test_permissions_and_status_of_a_missing_channel(shm_name: str, shm_names: Callable[[], str]) -> None:
    old = os.umask(0o077)  # the explicit mode wins over the umask
    try:
        with shmbridge.Channel.create(shm_name, slots=2, max_message=8, readers=1, permissions=0o640):
            assert (SHM / shm_name).stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    with pytest.raises(FileNotFoundError):
        shmbridge.Channel.status(shm_names())
