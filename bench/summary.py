#!/usr/bin/env python3
"""Every target of issues 14 (speed) and 11 (channels) against the figures bench/bench.sh
wrote to DIR (build/bench): one line each, with "met" or "NOT MET". Writes DIR/summary.json.

    python3 bench/summary.py build/bench
"""

from __future__ import annotations

import json
import os
import sys


def load(d: str, name: str):
    try:
        with open(os.path.join(d, name)) as f:
            return json.load(f)
    except OSError:
        return None


def channel_rows(d: str) -> list:
    """Issue 11's targets: (a) round trips (Python at most 1/10 of iceoryx2's, Rust at most
    0.5 us), (b) frames/s at least iceoryx2's, (c) at least 5 million messages/s to one reader."""
    rows = []
    for name, label in (("rtt-rust.json", "normal priority"), ("rtt-rust-fifo.json", "chrt -f")):
        r = load(d, name)
        if r and "chan" in r["us"]:
            v = r["us"]["chan"]["median"]
            rows.append((f"Rust channel round trip, {label}", f"{v:.2f} us", "<= 0.5 us", v <= 0.5))
    for name, label in (("rtt-python.json", "normal priority"), ("rtt-python-fifo.json", "chrt -f")):
        r = load(d, name)
        if r and "channel" in r["us"] and "iceoryx2" in r["us"]:
            ch, iox = r["us"]["channel"]["median"], r["us"]["iceoryx2"]["median"]
            rows.append((f"Python channel / iceoryx2 round trip, {label}", f"{ch / iox:.2f} ({ch:.2f} vs {iox:.2f} us)",
                         "<= 0.1", ch / iox <= 0.1))
    f = load(d, "frames.json")
    if f:
        res = f["results"]
        if "ratio_vs_iceoryx2" in f.get("results", {}):
            v = res["ratio_vs_iceoryx2"]
            rows.append(("1080p frames/s, channel / iceoryx2", f"{v:.2f}x ({res['shmb-channel']['median_fps']:.0f} fps)",
                         ">= 1x", v >= 1.0))
        if "array_vs_raw" in res:
            v = res["array_vs_raw"]
            rows.append(("1080p frames/s, array messages / raw", f"{v:.2f}x", ">= 0.95x", v >= 0.95))
    t = load(d, "channel-throughput.json")
    if t and "1" in t["readers"]:
        v = t["readers"]["1"]["median"]
        rows.append(("Rust channel 64 B msg/s, 1 reader", f"{v / 1e6:.2f} M/s", ">= 5 M/s", v >= 5e6))
    return rows


def main() -> int:
    d = sys.argv[1] if len(sys.argv) > 1 else "build/bench"
    rows = []  # (what, value text, target text, met)
    for name, label in (("rtt-rust.json", "normal priority"), ("rtt-rust-fifo.json", "chrt -f"),
                        ("rtt-rust-1cpu.json", "one CPU")):
        r = load(d, name)
        if not r:
            continue
        pipe, shm = r["us"]["pipe"]["median"], r["us"]["shm"]["median"]
        if name == "rtt-rust-1cpu.json":
            # On one CPU the target is not to collapse: no slower than the pipe.
            rows.append((f"Rust round trip, {label}: pipe / shm", f"{pipe / shm:.1f}x ({shm:.2f} us)",
                         ">= 1x (no collapse)", pipe / shm >= 1.0))
        else:
            rows.append((f"Rust round trip, {label}: pipe / shm", f"{pipe / shm:.1f}x ({shm:.2f} us vs {pipe:.1f} us)",
                         ">= 20x", pipe / shm >= 20.0))
    for name, label in (("rtt-python.json", "normal priority"), ("rtt-python-fifo.json", "chrt -f")):
        r = load(d, name)
        if not r:
            continue
        for n in ("framed", "channel"):
            if n in r["us"]:
                v = r["us"][n]["median"]
                rows.append((f"Python {n} round trip, {label}", f"{v:.2f} us", "<= 3 us", v <= 3.0))
    rows += channel_rows(d)
    t = load(d, "transfer.json")
    if t:
        for size, res in t["sizes"].items():
            gib = int(size) / (1 << 30)
            tag = f"{gib:g} GiB" if gib >= 1 else f"{int(size) >> 20} MiB"
            if "skipped" in res:
                rows.append((f"transfers at {tag}", "skipped", res["skipped"], False))
                continue
            for c in res["targets"]:
                rows.append((f"{c['what']} at {tag}", f"{c['value']:.2f}", c["target"], c["met"]))
    print("== targets (issues 14 and 11)")
    for what, value, target, met in rows:
        print(f"   {what:<52} {value:<28} target {target:<20} {'met' if met else 'NOT MET'}")
    met = sum(1 for r in rows if r[3])
    print(f"   {met} of {len(rows)} met")
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump([{"what": w, "value": v, "target": t_, "met": m} for w, v, t_, m in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
