"""Try the C and C++ actors' chan-write / chan-read against each other (PROTOCOL.md, "Channels").

A quick local check for the actors' authors, not the suite (tests/interop runs the matrix):

    python3 tests/interop/actors/chan_pairs.py build/interop

Every writer against every reader, both policies: two readers (one holding its last 3
messages) get every message under block; a reader killed mid-stream never blocks the writer;
a writer killed mid-stream ends the readers with "writer_died". Exits 1 on the first failure.
"""

import json
import os
import subprocess
import sys

COUNT, SIZE = 3000, 1500


def start(exe, *args):
    return subprocess.Popen([exe, *args], stdout=subprocess.PIPE, text=True)


def first_line(p):
    line = p.stdout.readline()
    return json.loads(line) if line else None


def result(p):
    # Not communicate(timeout=...): it reads the pipe itself, past what readline() buffered.
    out = p.stdout.read()
    p.wait(timeout=120)
    lines = [l for l in out.splitlines() if l.strip()]
    return p.returncode, (json.loads(lines[-1]) if lines else None)


def check(cond, what):
    if not cond:
        print("FAIL:", what)
        sys.exit(1)


def run(build, writer, reader, policy, case, n):
    name = f"shmb_t_chpairs_{os.getpid()}_{n}"
    wexe, rexe = (os.path.join(build, f"actor-{x}") for x in (writer, reader))
    wargs = ["chan-write", "--name", name, "--policy", policy, "--slots", "8", "--readers", "4",
             "--count", str(COUNT), "--size", str(SIZE), "--wait-readers", "2"]
    if case == "writer-killed":
        wargs += ["--die-after", "500"]
    try:
        w = start(wexe, *wargs)
        check(first_line(w) == {"ready": True}, f"{writer} ready line")
        readers = []
        for k in range(2):
            extra = []
            if k == 0:
                extra = ["--hold", "3"]
            if k == 1 and case == "reader-killed":
                extra = ["--die-after", "100"]
            r = start(rexe, "chan-read", "--name", name, *extra)
            check(first_line(r) == {"joined": True}, f"{reader} joined line")
            readers.append(r)
        wrc, wres = result(w)
        label = f"{writer} -> {reader}, {policy}, {case}"
        if case == "writer-killed":
            check(wrc == 0 and wres is None, f"{label}: the writer dies silently: {wres}")
        else:
            check(wrc == 0 and wres["ok"] and wres["sent"] == COUNT, f"{label}: writer {wres}")
        for k, r in enumerate(readers):
            rrc, res = result(r)
            if case == "reader-killed" and k == 1:
                # Silent once it took 100; under overwrite it may have been lapped to the end
                # before that.
                check(rrc == 0 and (res is None or (policy == "overwrite" and res["ok"]
                                                    and res["received"] < 100)),
                      f"{label}: the killed reader is silent: {res}")
                continue
            check(rrc == 0 and res and res["ok"], f"{label}: reader {k}: rc {rrc}: {res}")
            sent = 500 if case == "writer-killed" else COUNT
            check(res["end"] == ("writer_died" if case == "writer-killed" else "closed"),
                  f"{label}: reader {k} end {res}")
            check(res["last"] == sent - 1, f"{label}: reader {k} last {res}")
            if policy == "block":
                check(res["received"] == sent and res["lost"] == 0 and res["first"] == 0,
                      f"{label}: reader {k} {res}")
            else:
                check(res["received"] + res["lost"] == sent, f"{label}: reader {k} {res}")
        print("ok  ", label)
    finally:
        try:
            os.unlink("/dev/shm/" + name)
        except FileNotFoundError:
            pass


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/interop"
    n = 0
    for writer in ("c", "cpp"):
        for reader in ("c", "cpp"):
            for policy in ("block", "overwrite"):
                for case in ("normal", "reader-killed", "writer-killed"):
                    n += 1
                    run(build, writer, reader, policy, case, n)


if __name__ == "__main__":
    main()
