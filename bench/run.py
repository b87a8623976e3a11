#!/usr/bin/env python3
"""Transfer benchmark: the seed's approaches against shmbridge, side by side, in one run.

For each file size (default 1 GiB, then 4 GiB) it moves the same file with:

  stdlib    the seed's multiprocessing.shared_memory writer.py / reader.py (linux reader)
  boost     the seed's Boost.Interprocess sender.cpp / recver.cpp (Debian's libboost-dev)
  cp        cp SRC DST
  minimal-c bench/c/minimal_copy.c: read() into a shm mapping, write() out of it (1 process)
  shmb-1    shmbridge send (one-shot), then shmbridge recv
  shmb-st   shmbridge send --stream and shmbridge recv running together (16 MiB segment)

and prints wall time, throughput, each side's peak RSS (ru_maxrss, which counts the shared
pages a process touched) and each approach's time relative to shmbridge streaming. Every
output is verified against the source's CRC-32.

The seed programs are the unmodified files in tests/boost/, copied to a scratch directory
with only their segment name ("shm_test") replaced by a unique one, so a concurrent test
cannot collide with the benchmark. The seed's pairs are synchronised the way a person would
run them: the receiver starts once the sender has filled the segment (the stdlib writer
prints "data available"; the Boost sender blocks in getchar()), and the time runs from the
sender's start to the receiver's exit.

Files live in --dir (default /tmp, a disk filesystem here; the segments are in /dev/shm,
tmpfs). The source is read once before timing so every approach starts from a warm page
cache. Everything the bench creates is removed at the end, even on failure.

    python3 bench/run.py [--sizes 1G,4G] [--dir /tmp] [--repeat 3] [--skip stdlib,boost]
"""

from __future__ import annotations

import argparse
import json
import statistics
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, "target", "release", "shmbridge")


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def parse_size(s: str) -> int:
    s = s.strip().upper().rstrip("B").rstrip("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(float(s.rstrip("KMG")) * mult)


def crc_of(path: str) -> int:
    crc = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 << 20)
        view = memoryview(buf)
        while True:
            n = f.readinto(buf)
            if not n:
                return crc
            crc = zlib.crc32(view[:n], crc)


class Proc:
    """A child process run under GNU time, which reports its peak RSS.

    ru_maxrss of a process started straight from this (large) Python process would include
    the parent's RSS at fork time; time(1) is small, so its child's figure is the child's own.
    """

    _n = 0

    def __init__(self, args, cwd=None, stdin=None, stdout=None, env=None, stderr=None):
        Proc._n += 1
        self.rss_file = os.path.join(tempfile.gettempdir(), f"shmb_bench_rss_{os.getpid()}_{Proc._n}")
        self.p = subprocess.Popen(
            ["/usr/bin/time", "-f", "%M", "-o", self.rss_file] + list(args),
            cwd=cwd, stdin=stdin, stdout=stdout, env=env, stderr=stderr,
        )
        self.rss_kib = 0
        self.code = None

    def target_pid(self):
        """The pid of the program itself (the child of time)."""
        try:
            with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
                kids = f.read().split()
            return int(kids[0]) if kids else None
        except OSError:
            return None

    def wait(self, timeout=900.0):
        self.code = self.p.wait(timeout)
        try:
            with open(self.rss_file) as f:
                self.rss_kib = int(f.read().split()[-1])
            os.unlink(self.rss_file)
        except (OSError, ValueError, IndexError):
            pass
        return self.code


def blocked_reading_stdin(pid: int) -> bool:
    """True once the process sits in read(0, ...) (the Boost sender's getchar())."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == "0" and int(fields[1], 16) == 0


def run_stdlib(work, src, dst, name):
    py = sys.executable
    writer = open(os.path.join(ROOT, "tests/boost/seed_writer.py")).read()
    reader = open(os.path.join(ROOT, "tests/boost/seed_reader.py")).read()
    with open(os.path.join(work, "writer.py"), "w") as f:
        f.write(writer.replace("shm_test", name))
    with open(os.path.join(work, "reader.py"), "w") as f:
        f.write(reader.replace("shm_test", name))
    link(src, os.path.join(work, "data.zip"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    # Its stderr is dropped: the KeyboardInterrupt traceback of the SIGINT that stops it (as a
    # person's Ctrl-C would) is not news.
    w = Proc([py, "writer.py"], cwd=work, stdout=subprocess.PIPE, env=env, stderr=subprocess.DEVNULL)
    try:
        line = w.p.stdout.readline()
        if b"data available" not in line:
            raise RuntimeError("the stdlib writer failed")
        r = Proc([py, "reader.py"], cwd=work)
        r.wait()
        t1 = time.perf_counter()
    finally:
        pid = w.target_pid()
        if pid:
            os.kill(pid, signal.SIGINT)
        w.wait()
    shutil.move(os.path.join(work, "result.zip"), dst)
    return t1 - t0, [w, r]


def run_boost(work, src, dst, name, exes):
    link(src, os.path.join(work, "data.ipc"))
    t0 = time.perf_counter()
    s = Proc([exes["sender"]], cwd=work, stdin=subprocess.PIPE)
    try:
        while not blocked_reading_stdin(s.target_pid() or 0):
            if s.p.poll() is not None:
                raise RuntimeError("the Boost sender failed")
            time.sleep(0.0005)
        r = Proc([exes["recver"]], cwd=work)
        r.wait()
        t1 = time.perf_counter()
    finally:
        s.p.stdin.close()
        s.wait()
    shutil.move(os.path.join(work, "data_out.bin"), dst)
    return t1 - t0, [s, r]


def run_cp(work, src, dst, name):
    t0 = time.perf_counter()
    p = Proc(["cp", src, dst])
    p.wait()
    return time.perf_counter() - t0, [p]


def run_minimal_c(work, src, dst, name, exe):
    t0 = time.perf_counter()
    p = Proc([exe, src, dst, name])
    p.wait()
    return time.perf_counter() - t0, [p]


def run_one_shot(work, src, dst, name, cli=CLI):
    t0 = time.perf_counter()
    s = Proc([cli, "-q", "send", src, "--name", name])
    if s.wait() != 0:
        raise RuntimeError("shmbridge send failed")
    r = Proc([cli, "-q", "recv", name, dst])
    if r.wait() != 0:
        raise RuntimeError("shmbridge recv failed")
    return time.perf_counter() - t0, [s, r]


def run_stream(work, src, dst, name, segment="16M", cli=CLI):
    t0 = time.perf_counter()
    s = Proc([cli, "-q", "send", src, "--name", name, "--stream", "--segment-size", segment])
    r = Proc([cli, "-q", "recv", name, dst])
    rc = r.wait()
    if s.wait() != 0 or rc != 0:
        raise RuntimeError("shmbridge streaming failed")
    return time.perf_counter() - t0, [s, r]


def run_limits(exe, size, name, repeat):
    """The machine's limits for `size` bytes (bench/c/limits.c): best of `repeat`."""
    out = subprocess.run([exe, str(size), str(repeat), name + "_limits"], capture_output=True, text=True, check=True)
    return {k: float(v) for k, v in (line.split() for line in out.stdout.splitlines())}


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


# The targets of issue 14, per size: (label, description, value function, comparison, bound).
def verdicts(results, rss):
    """[(what, value, bound, met)] for the targets whose approaches ran."""
    out = []
    r = results
    if "shmb-1" in r and "boost" in r:
        v = r["shmb-1"] / r["boost"]
        out.append(("one-shot time / Boost pair time", v, "<= 0.70", v <= 0.70))
    if "shmb-1" in r and "minimal-c" in r:
        v = r["minimal-c"] / r["shmb-1"]
        out.append(("minimal C time / one-shot time", v, ">= 1.00", v >= 1.0))
    if "shmb-1" in rss and "boost" in rss:
        mine, theirs = max(rss["shmb-1"]), max(rss["boost"])
        v = mine / max(theirs, 1)
        out.append(("one-shot peak RSS / Boost peak RSS", v, "<= 1.00", v <= 1.0))
    if "shmb-st" in r and "cp" in r:
        v = r["cp"] / r["shmb-st"]
        out.append(("streaming speed / cp speed", v, ">= 0.95", v >= 0.95))
    if "shmb-st" in r and "stdlib" in r:
        v = r["stdlib"] / r["shmb-st"]
        out.append(("streaming speed / stdlib pair speed", v, ">= 5.00", v >= 5.0))
    if "shmb-st" in r and "boost" in r:
        v = r["boost"] / r["shmb-st"]
        out.append(("streaming speed / Boost pair speed", v, ">= 3.00", v >= 3.0))
    return out


def link(src, dst):
    if os.path.lexists(dst):
        os.unlink(dst)
    os.symlink(src, dst)


def build(work, skip):
    print("building: cargo build --release -p shmbridge-cli ...", flush=True)
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "shmbridge-cli", "--bin", "shmbridge"],
        cwd=ROOT,
        check=True,
    )
    exes = {}
    exes["limits"] = os.path.join(work, "limits")
    subprocess.run(["cc", "-O2", "-o", exes["limits"], os.path.join(ROOT, "bench/c/limits.c")], check=True)
    exes["minimal_c"] = os.path.join(work, "minimal_copy")
    subprocess.run(
        ["cc", "-O2", "-o", exes["minimal_c"], os.path.join(ROOT, "bench/c/minimal_copy.c")],
        check=True,
    )
    if "boost" not in skip:
        if not os.path.isdir("/usr/include/boost/interprocess"):
            print("boost: /usr/include/boost/interprocess missing (run `make setup`); skipped")
            skip.add("boost")
        else:
            for prog in ("sender", "recver"):
                text = open(os.path.join(ROOT, "tests/boost", prog + ".cpp")).read()
                exes[prog + "_src"] = text
            exes["boost_built"] = False
    return exes


def build_boost(work, exes, name):
    for prog in ("sender", "recver"):
        cpp = os.path.join(work, prog + ".cpp")
        with open(cpp, "w") as f:
            f.write(exes[prog + "_src"].replace("shm_test", name))
        exes[prog] = os.path.join(work, prog)
        subprocess.run(["g++", "-O2", "-std=c++20", "-o", exes[prog], cpp, "-lrt", "-pthread"], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1G,4G")
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each approach (the median is reported)")
    ap.add_argument("--skip", default="", help="comma-separated: stdlib,boost,cp,minimal-c,shmb-1,shmb-st")
    ap.add_argument("--before", help="a `shmbridge` binary of an earlier version: its one-shot and "
                    "streaming run too (shmb-1@before, shmb-st@before), in the same rounds")
    ap.add_argument("--json", help="write every run's figures here")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    work = tempfile.mkdtemp(prefix="shmb_bench_", dir=args.dir)
    name = f"shmb_bench_{os.getpid()}"
    try:
        exes = build(work, skip)
        if "boost" not in skip:
            build_boost(work, exes, name)
        fs = subprocess.run(["df", "-T", work], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
        print(f"files in {work} ({fs}); segments in /dev/shm (tmpfs); {os.cpu_count()} CPUs")
        report = {"dir": work, "fs": fs, "cpus": os.cpu_count(), "repeat": args.repeat, "sizes": {}}
        for size in [parse_size(s) for s in args.sizes.split(",")]:
            # Room: the source and one output in --dir; one segment (plus slack) in /dev/shm.
            need_dir, need_shm = 2 * size + (256 << 20), size + (256 << 20)
            have_dir, have_shm = free_bytes(work), free_bytes("/dev/shm")
            if have_dir < need_dir or have_shm < need_shm:
                print(
                    f"\n== {human(size)}: SKIPPED: not enough room (need {human(need_dir)} free in {work}, "
                    f"{human(have_dir)} there; {human(need_shm)} in /dev/shm, {human(have_shm)} there)"
                )
                report["sizes"][str(size)] = {"skipped": "not enough room"}
                continue
            report["sizes"][str(size)] = bench_size(work, size, name, exes, skip, args.repeat, args.before)
        if args.json:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(report, f, indent=1)
    finally:
        for n in os.listdir("/dev/shm"):
            if n.startswith(name):
                os.unlink(os.path.join("/dev/shm", n))
        shutil.rmtree(work, ignore_errors=True)


def bench_size(work, size, name, exes, skip, repeat, before=None):
    src = os.path.join(work, "source.bin")
    print(f"\n== {human(size)}: making the source file ...", flush=True)
    with open(src, "wb") as f:
        block = os.urandom(16 << 20)
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        del block
    want = crc_of(src)  # also warms the page cache
    limits = run_limits(exes["limits"], size, name, 2 if size <= (1 << 30) else 1)
    print(
        "   limits (best of runs): memcpy {memcpy-warm:.3f} s, memcpy into fresh anonymous pages "
        "{fresh-anon:.3f} s, fallocate + memcpy into a fresh /dev/shm segment {fresh-shm:.3f} s, "
        "page faults alone {fault-only:.3f} s".format(**limits),
        flush=True,
    )
    runs = [
        ("stdlib", lambda d: run_stdlib(work, src, d, name)),
        ("boost", lambda d: run_boost(work, src, d, name, exes)),
        ("cp", lambda d: run_cp(work, src, d, name)),
        ("minimal-c", lambda d: run_minimal_c(work, src, d, name, exes["minimal_c"])),
        ("shmb-1", lambda d: run_one_shot(work, src, d, name)),
        ("shmb-st", lambda d: run_stream(work, src, d, name)),
    ]
    if before:
        runs += [
            ("shmb-1@before", lambda d: run_one_shot(work, src, d, name, cli=before)),
            ("shmb-st@before", lambda d: run_stream(work, src, d, name, cli=before)),
        ]
    # Each approach runs `repeat` times, round-robin (so a burst of load or writeback hits
    # them alike); the figure is the median, with the spread shown.
    times, rss, ok = {}, {}, {}
    for rep in range(repeat):
        for label, fn in runs:
            if label in skip:
                continue
            dst = os.path.join(work, "out.bin")
            subprocess.run(["sync"])
            try:
                secs, procs = fn(dst)
            except Exception as e:  # noqa: BLE001 - report and go on with the others
                print(f"{label:<10} failed: {e}")
                continue
            good = crc_of(dst) == want
            os.unlink(dst)
            times.setdefault(label, []).append(secs)
            rss[label] = [max(a, b) for a, b in zip(rss.get(label, [0] * len(procs)), [p.rss_kib for p in procs])]
            ok[label] = ok.get(label, True) and good
            print(f"   run {rep + 1}/{repeat} {label:<15} {secs:7.3f} s", flush=True)
    os.unlink(src)
    results = {}
    print(f"-- {human(size)}: median of {repeat} run(s) (min - max)")
    for label, ts in times.items():
        med = statistics.median(ts)
        results[label] = med
        peak = " / ".join(human(k * 1024) for k in rss[label])
        print(
            f"{label:<15} {med:7.3f} s ({min(ts):.3f} - {max(ts):.3f})  {human(size / med) + '/s':>12}  "
            f"peak RSS {peak:<24} {'verified' if ok[label] else 'CRC MISMATCH'}",
            flush=True,
        )
    base = results.get("shmb-st")
    if base:
        print("-- ratios (median time / shmbridge streaming median; >1 means shmbridge streaming is faster):")
        for label, secs in results.items():
            print(f"   {label:<15} {secs / base:6.2f}x")
    for now_label in ("shmb-1", "shmb-st"):
        was = results.get(now_label + "@before")
        if was and now_label in results:
            print(f"-- {now_label} before / after (same rounds): {was:.3f} s / {results[now_label]:.3f} s = "
                  f"{was / results[now_label]:.2f}x")
    checks = verdicts(results, rss)
    print(f"-- targets at {human(size)}:")
    for what, value, bound, met in checks:
        print(f"   {what:<40} {value:6.2f} (target {bound}): {'met' if met else 'NOT MET'}")
    return {
        "limits_s": limits,
        "runs_s": times,
        "median_s": results,
        "peak_rss_kib": rss,
        "verified": ok,
        "targets": [{"what": w, "value": v, "target": b, "met": m} for w, v, b, m in checks],
    }

if __name__ == "__main__":
    main()
