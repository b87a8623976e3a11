#!/usr/bin/env python3
"""Python round trips between two processes, 64-byte messages, side by side in one run.

Each round trip: the parent sends 64 bytes, the child receives them (a copy into a Python
object) and sends them back, the parent receives them. Approaches:

  framed     shmbridge.FramedSegment: write / wait / read (one segment each way, each
             written by the process that created it)
  channel    shmbridge.Channel: send / recv (one channel each way, 8 slots)
  mp-pipe    multiprocessing.Pipe(): send_bytes / recv_bytes
  zmq        pyzmq PAIR sockets over ipc:// (a Unix socket; zmq's I/O thread in between)
  iceoryx2   iceoryx2 publish-subscribe, one service each way, the receiver polling
             receive() in a busy loop (iceoryx2's fastest mode: no event, 100% of a CPU)

Every approach runs --repeat times round-robin (so a burst of load hits them alike), each
run --rounds round trips after a warm-up of rounds/10; the figure is the per-run mean,
reported as the median over runs with the spread (min - max). Approaches whose library is
missing are skipped and said so: bench/venv.sh builds the venv that has them all.

    build/bench/venv/bin/python bench/rtt.py [--rounds 20000] [--repeat 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MSG = bytes(range(64))
TARGET_US = 3.0  # issue 14: a FramedSegment (and channel) round trip of at most 3 us
TIMEOUT = 60.0


def unique(tag: str) -> str:
    return f"shmb_bench_py_{tag}_{os.getpid()}_{time.monotonic_ns() % 10**9}"


# --- shmbridge.FramedSegment -------------------------------------------------------------


def framed_child(req_name: str, rep_name: str, total: int) -> None:
    import shmbridge

    req = shmbridge.FramedSegment.open(req_name, timeout=TIMEOUT)
    rep = shmbridge.FramedSegment.create(rep_name, 64)
    seen = req.publish_count
    rep.write(b"r")
    for _ in range(total):
        seen = req.wait(seen, TIMEOUT)
        rep.write(req.read())
    rep.close()
    req.close()


def framed_parent(rounds: int) -> float:
    import shmbridge

    req_name, rep_name = unique("req"), unique("rep")
    warm = rounds // 10
    req = shmbridge.FramedSegment.create(req_name, 64)
    child = spawn("framed", req_name, rep_name, str(rounds + warm))
    try:
        rep = shmbridge.FramedSegment.open(rep_name, timeout=TIMEOUT)
        seen = rep.wait(0, TIMEOUT)
        t0 = time.perf_counter()
        for i in range(rounds + warm):
            if i == warm:
                t0 = time.perf_counter()
            req.write(MSG)
            seen = rep.wait(seen, TIMEOUT)
            got = rep.read()
        t = time.perf_counter() - t0
        assert got == MSG
        rep.close()
    finally:
        finish(child)
        for n in (req_name, rep_name):
            try:
                shmbridge.remove(n)
            except shmbridge.Error:  # already gone
                pass
        req.close()
    return t / rounds


# --- shmbridge.Channel -------------------------------------------------------------------


def channel_child(req_name: str, rep_name: str, total: int) -> None:
    import shmbridge

    r = shmbridge.Channel.open(req_name, timeout=TIMEOUT)
    w = shmbridge.Channel.create(rep_name, slots=8, max_message=64, readers=1)
    for _ in range(total):
        with r.recv(TIMEOUT) as m:
            data = bytes(m)
        w.send(data, timeout=TIMEOUT)
    w.close()
    r.close()


def channel_parent(rounds: int) -> float:
    import shmbridge

    req_name, rep_name = unique("creq"), unique("crep")
    warm = rounds // 10
    w = shmbridge.Channel.create(req_name, slots=8, max_message=64, readers=1)
    child = spawn("channel", req_name, rep_name, str(rounds + warm))
    try:
        # The child opened our channel before it created its own: once its channel is
        # there, our messages reach it.
        r = shmbridge.Channel.open(rep_name, timeout=TIMEOUT)
        t0 = time.perf_counter()
        for i in range(rounds + warm):
            if i == warm:
                t0 = time.perf_counter()
            w.send(MSG, timeout=TIMEOUT)
            with r.recv(TIMEOUT) as m:
                got = bytes(m)
        t = time.perf_counter() - t0
        assert got == MSG
        r.close()
    finally:
        w.close()
        finish(child)
        for n in (req_name, rep_name):
            try:
                shmbridge.remove(n)
            except shmbridge.Error:  # already gone
                pass
    return t / rounds


# --- multiprocessing.Pipe ----------------------------------------------------------------


def mp_pipe_parent(rounds: int) -> float:
    import multiprocessing as mp

    a, b = mp.Pipe()
    warm = rounds // 10
    p = mp.get_context("fork").Process(target=_mp_child, args=(b, rounds + warm))
    p.start()
    t0 = time.perf_counter()
    for i in range(rounds + warm):
        if i == warm:
            t0 = time.perf_counter()
        a.send_bytes(MSG)
        got = a.recv_bytes()
    t = time.perf_counter() - t0
    p.join(TIMEOUT)
    assert got == MSG
    return t / rounds


def _mp_child(conn, total: int) -> None:
    for _ in range(total):
        conn.send_bytes(conn.recv_bytes())


# --- pyzmq -------------------------------------------------------------------------------


def zmq_child(addr: str, total: int) -> None:
    import zmq

    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.connect(addr)
    s.send(b"r")
    for _ in range(total):
        s.send(s.recv(copy=True))
    s.close(linger=1000)
    ctx.term()


def zmq_parent(rounds: int) -> float:
    import zmq

    path = f"/tmp/{unique('zmq')}.sock"
    addr = f"ipc://{path}"
    ctx = zmq.Context()
    s = ctx.socket(zmq.PAIR)
    s.bind(addr)
    warm = rounds // 10
    child = spawn("zmq", addr, str(rounds + warm))
    try:
        assert s.recv() == b"r"
        t0 = time.perf_counter()
        for i in range(rounds + warm):
            if i == warm:
                t0 = time.perf_counter()
            s.send(MSG)
            got = s.recv(copy=True)
        t = time.perf_counter() - t0
        assert got == MSG
    finally:
        finish(child)
        s.close(linger=0)
        ctx.term()
        if os.path.exists(path):
            os.unlink(path)
    return t / rounds


# --- iceoryx2 ----------------------------------------------------------------------------


def _iox_setup(mine: str, theirs: str):
    import ctypes

    import iceoryx2 as iox2

    class Msg(ctypes.Structure):
        _fields_ = [("data", ctypes.c_uint8 * 64)]  # noqa: RUF012 - ctypes wants a list

    iox2.set_log_level_from_env_or(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)

    def service(name: str):
        return (
            node.service_builder(iox2.ServiceName.new(name))
            .publish_subscribe(Msg)
            .subscriber_max_buffer_size(4)
            .history_size(0)
            .open_or_create()
        )

    pub = service(mine).publisher_builder().create()
    sub = service(theirs).subscriber_builder().create()
    return node, pub, sub, Msg


def _iox_recv(sub) -> bytes:
    while True:
        sample = sub.receive()
        if sample is not None:
            data = bytes(sample.payload().contents.data)
            sample.delete()
            return data


def iceoryx2_child(req: str, rep: str, total: int) -> None:
    node, pub, sub, msg_t = _iox_setup(rep, req)
    m = msg_t()
    # Announce ourselves until the parent answers (it may subscribe after our first send).
    while True:
        pub.send_copy(m)
        time.sleep(0.001)
        if sub.has_samples():
            break
    _iox_recv(sub)  # the parent's "go"
    for _ in range(total):
        data = _iox_recv(sub)
        m.data[:] = data
        pub.send_copy(m)
    time.sleep(0.05)  # let the parent take the last reply before our service goes
    for x in (sub, pub):
        x.delete()
    del node


def iceoryx2_parent(rounds: int) -> float:
    req, rep = unique("ireq"), unique("irep")
    node, pub, sub, msg_t = _iox_setup(req, rep)
    warm = rounds // 10
    child = spawn("iceoryx2", req, rep, str(rounds + warm))
    try:
        _iox_recv(sub)  # the child is there and subscribed
        m = msg_t()
        pub.send_copy(m)  # "go"
        while sub.has_samples():  # drop the child's other announcements
            _iox_recv(sub)
        m.data[:] = MSG
        t0 = time.perf_counter()
        for i in range(rounds + warm):
            if i == warm:
                t0 = time.perf_counter()
            pub.send_copy(m)
            got = _iox_recv(sub)
            # An announcement sent just before "go" arrived may still come first.
            while got != MSG:
                got = _iox_recv(sub)
        t = time.perf_counter() - t0
    finally:
        finish(child)
        for x in (sub, pub):
            x.delete()
        del node
    return t / rounds


# --- the harness -------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", *args])


def finish(child: subprocess.Popen) -> None:
    try:
        child.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


APPROACHES = {
    "framed": ("shmbridge", framed_parent),
    "channel": ("shmbridge", channel_parent),
    "mp-pipe": (None, mp_pipe_parent),
    "zmq": ("zmq", zmq_parent),
    "iceoryx2": ("iceoryx2", iceoryx2_parent),
}

CHILDREN = {
    "framed": lambda a: framed_child(a[0], a[1], int(a[2])),
    "channel": lambda a: channel_child(a[0], a[1], int(a[2])),
    "zmq": lambda a: zmq_child(a[0], int(a[1])),
    "iceoryx2": lambda a: iceoryx2_child(a[0], a[1], int(a[2])),
}


def available(module: str | None) -> bool:
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        CHILDREN[sys.argv[2]](sys.argv[3:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", default="", help="comma-separated approaches (default: all)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    names = [n for n in APPROACHES if not args.only or n in args.only.split(",")]
    runnable = []
    for n in names:
        mod, _ = APPROACHES[n]
        if available(mod):
            runnable.append(n)
        else:
            print(f"{n}: module {mod!r} missing (bench/venv.sh installs it); skipped")
    cpus = len(os.sched_getaffinity(0))
    print(
        f"Python {sys.version.split()[0]} round trips, 64 bytes: {args.repeat} runs of {args.rounds} "
        f"each, round-robin; {cpus} CPU(s) allowed",
        flush=True,
    )
    shm_before = set(os.listdir("/dev/shm"))
    runs: dict[str, list[float]] = {n: [] for n in runnable}
    for _ in range(args.repeat):
        for n in runnable:
            try:
                runs[n].append(APPROACHES[n][1](args.rounds) * 1e6)
            except Exception as e:  # noqa: BLE001 - report and go on with the others
                print(f"{n}: failed: {e!r}", flush=True)
    # iceoryx2 leaves its management objects in /dev/shm (iox2_*): remove those it made here.
    for n in set(os.listdir("/dev/shm")) - shm_before:
        if n.startswith(("iox2_", "shmb_bench_py_")):
            try:
                os.unlink(os.path.join("/dev/shm", n))
            except OSError:
                pass
    results = {}
    for n, ts in runs.items():
        if not ts:
            continue
        med = statistics.median(ts)
        results[n] = {"median": med, "min": min(ts), "max": max(ts), "runs": ts}
        print(f"{n:<10} {med:8.2f} us  ({min(ts):.2f} - {max(ts):.2f})", flush=True)
    verdicts = {}
    for n in ("framed", "channel"):
        if n in results:
            med = results[n]["median"]
            ok = med <= TARGET_US
            verdicts[n] = ok
            print(f"target: {n} round trip <= {TARGET_US:.0f} us: {med:.2f} us: {'met' if ok else 'NOT MET'}")
    for n in ("mp-pipe", "zmq", "iceoryx2"):
        if n in results and "framed" in results:
            print(f"ratio {n} / framed: {results[n]['median'] / results['framed']['median']:.1f}x")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(
                {"python": sys.version.split()[0], "cpus": cpus, "rounds": args.rounds,
                 "repeat": args.repeat, "us": results, "met": verdicts},
                f, indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
