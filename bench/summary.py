#!/usr/bin/env python3
"""Every target of issue 14 against the figures bench/bench.sh wrote to DIR (build/bench):
one line each, with "met" or "NOT MET". Writes DIR/summary.json.

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
    print("== targets (issue 14)")
    for what, value, target, met in rows:
        print(f"   {what:<52} {value:<28} target {target:<20} {'met' if met else 'NOT MET'}")
    met = sum(1 for r in rows if r[3])
    print(f"   {met} of {len(rows)} met")
    with open(os.path.join(d, "summary.json"), "w") as f:
        json.dump([{"what": w, "value": v, "target": t_, "met": m} for w, v, t_, m in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
