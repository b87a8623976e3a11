"""Two processes bounce a message through two channels and time the round trip.

    python channel_pingpong.py [--count N] [--size BYTES] [--loan]

The parent creates the channel "ping" and starts a child (this script with --echo) that
creates "pong"; each sends what it receives back on its own channel. The parent prints the
median and the mean round trip. Shows `Channel.create`, `Channel.open(timeout=...)`, loans
filled in place (--loan) or send(), messages read in place, and the end of a channel.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import shmbridge


def echo(ping: str, pong: str) -> None:
    """The child: every message on `ping` goes back on `pong`, until `ping` closes."""
    with shmbridge.Channel.create(pong, slots=4, max_message=1 << 16, readers=1) as w:
        with shmbridge.Channel.open(ping, timeout=30) as r:
            print("ready", flush=True)
            for msg in r:
                with msg:
                    w.send(msg, tag=msg.tag)  # read in place, one copy into the slot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--loan", action="store_true", help="fill a loan in place instead of send()")
    ap.add_argument("--echo", nargs=2, metavar=("PING", "PONG"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.echo:
        echo(*a.echo)
        return
    ping, pong = shmbridge.unique_name("shmb_ping_"), shmbridge.unique_name("shmb_pong_")
    payload = (bytes(range(256)) * (a.size // 256 + 1))[: a.size]
    try:
        with shmbridge.Channel.create(ping, slots=4, max_message=1 << 16, readers=1) as w:
            child = subprocess.Popen(
                [sys.executable, __file__, "--echo", ping, pong], stdout=subprocess.PIPE, text=True
            )
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise SystemExit("the echo process did not start")
            child.stdout.close()
            with shmbridge.Channel.open(pong, timeout=30) as r:
                times = []
                for i in range(a.count):
                    t0 = time.perf_counter()
                    if a.loan:
                        with w.loan(a.size) as loan:  # filled in place
                            memoryview(loan)[:] = payload
                    else:
                        w.send(payload, tag=i)
                    with r.recv(timeout=30) as back:
                        if len(back) != a.size:
                            raise SystemExit(f"round trip {i}: {len(back)} bytes came back")
                    times.append(time.perf_counter() - t0)
        if child.wait(30) != 0:
            raise SystemExit("the echo process failed")
    finally:
        for name in (ping, pong):
            if shmbridge.exists(name):
                shmbridge.remove(name)
    steady = times[len(times) // 10 :] or times  # past the warm-up
    print(
        f"{a.count} round trips of {a.size} bytes: median {statistics.median(steady) * 1e6:.2f} us, "
        f"mean {statistics.mean(steady) * 1e6:.2f} us"
    )


if __name__ == "__main__":
    main()
