"""Every writer against every reader, generated from participants.py.

Case ids read `<writer>-writes/<reader>-reads/<scenario>` (channel cases, `chan-*`, also run a
second reader of another language); single-participant cases read
`<participant>-creates/<scenario>`. Each case uses its own segment name and removes it even
when it fails.
"""

import itertools
import json
import os
import select
import stat
import subprocess
import time
import zlib

import pytest

from participants import ENABLED

FILE_SIZES = [0, 1, 4095, 4096, 4097, 1024 * 1024 + 1, 64 * 1024 * 1024]
RAW_SIZE = 4097
_counter = itertools.count()


def pattern(n, p):
    period = bytes((i * 31 + p) % 251 for i in range(251))
    return (period * (n // 251 + 1))[:n]


class Actor:
    def __init__(self, participant):
        self.p = participant

    def __call__(self, *args, expect_ok=True, timeout=300):
        cmd = self.p.cmd + [str(a) for a in args]
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, text=True)
        assert proc.returncode in (0, 1), (
            f"{self.p.name} crashed (exit {proc.returncode}) on {args}:\n{proc.stderr[-2000:]}")
        lines = proc.stdout.strip().splitlines()
        assert lines, f"{self.p.name} printed nothing on {args}:\n{proc.stderr[-2000:]}"
        out = json.loads(lines[-1])
        assert out["actor"] == self.p.name
        assert out["ok"] == (proc.returncode == 0), out
        if expect_ok:
            assert out["ok"], f"{self.p.name} {args[0]} failed: {out}"
        return out


@pytest.fixture
def seg():
    """A fresh segment name, removed after the case whatever happened."""
    name = f"shmb_i_{os.getpid()}_{next(_counter)}"
    yield name
    try:
        os.unlink(os.path.join("/dev/shm", name))
    except FileNotFoundError:
        pass


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("interop-files")  # under /tmp: a disk filesystem here
    out = {}
    for n in FILE_SIZES:
        path = d / f"data-{n}.bin"
        path.write_bytes(os.urandom(n))
        out[n] = path
    return out


def pairs(pred):
    return [pytest.param(w, r, id=f"{w.name}-writes/{r.name}-reads")
            for w in ENABLED for r in ENABLED if pred(w, r)]


def cases(scenarios):
    """(writer, reader, scenario) params with ids writer-writes/reader-reads/scenario."""
    out = []
    for scen, pred in scenarios:
        for w in ENABLED:
            for r in ENABLED:
                if pred(w, r):
                    out.append(pytest.param(w, r, scen, id=f"{w.name}-writes/{r.name}-reads/{scen}"))
    return out


def layout_ok(layout):
    return lambda w, r: layout in w.writes and layout in r.reads


# ---- bytes in each layout --------------------------------------------------------------

@pytest.mark.parametrize("writer,reader,scenario", cases(
    [(f"{layout}-{RAW_SIZE}", layout_ok(layout)) for layout in ("raw", "size-prefixed", "framed")]))
def test_bytes(writer, reader, scenario, seg):
    layout = scenario.rsplit("-", 1)[0]
    w = Actor(writer)("write", "--layout", layout, "--name", seg, "--size", RAW_SIZE, "--pattern", 17)
    r = Actor(reader)("read", "--layout", layout, "--name", seg, "--pattern", 17)
    assert r["bytes"] == RAW_SIZE
    assert r["crc32"] == w["crc32"] == zlib.crc32(pattern(RAW_SIZE, 17))
    # A reader that only attached never removes the segment, not even when its process exits
    # (the stdlib's resource tracker would; its actor opts out as the seed's workaround does).
    assert os.path.exists(os.path.join("/dev/shm", seg)), f"{reader.name} removed {writer.name}'s segment"


@pytest.mark.parametrize("writer,reader,scenario", cases([("framed-bad-checksum", layout_ok("framed"))]))
def test_framed_checksum_is_verified(writer, reader, scenario, seg):
    Actor(writer)("write", "--layout", "framed", "--name", seg, "--size", 1000, "--pattern", 3)
    with open(os.path.join("/dev/shm", seg), "r+b") as f:  # another process flips a payload byte
        f.seek(128 + 500)
        byte = f.read(1)
        f.seek(128 + 500)
        f.write(bytes([byte[0] ^ 0xFF]))
    r = Actor(reader)("read", "--layout", "framed", "--name", seg, expect_ok=False)
    assert r["error"] == "checksum_mismatch", r


# ---- a file handed over whole ----------------------------------------------------------

def file_layout_ok(layout):
    return layout_ok(layout)


@pytest.mark.parametrize("writer,reader,scenario", cases(
    [(f"file-{layout}-{n}", file_layout_ok(layout)) for layout in ("framed", "raw") for n in FILE_SIZES]))
def test_file(writer, reader, scenario, seg, files, tmp_path):
    _, layout, n = scenario.split("-", 2)
    src = files[int(n)]
    out = tmp_path / "out.bin"
    Actor(writer)("write", "--layout", layout, "--name", seg, "--file", src)
    r = Actor(reader)("read", "--layout", layout, "--name", seg, "--out", out)
    assert r["bytes"] == int(n)
    assert out.read_bytes() == src.read_bytes(), "the file came out different"


# ---- typed fields: the seed's program1 / program2 --------------------------------------

PROGRAM1_THEN_2 = {"b0": 128, "b1": 127, "b2": 255, "b3": 0, "i32": -128, "u32": 6666}


@pytest.mark.parametrize("writer,reader,scenario", [
    pytest.param(w, r, "fields", id=f"{w.name}-writes/{r.name}-modifies/fields")
    for w in ENABLED for r in ENABLED])
def test_fields(writer, reader, scenario, seg):
    Actor(writer)("fields-write", "--name", seg)
    Actor(reader)("fields-modify", "--name", seg)
    for who in (writer, reader):
        got = Actor(who)("fields-read", "--name", seg)
        for k, v in PROGRAM1_THEN_2.items():
            assert got[k] == v, f"{who.name} reads {k}={got[k]}, expected {v}"
        assert abs(got["f32"] - 1.414) < 1e-6


# ---- open modes ------------------------------------------------------------------------

@pytest.mark.parametrize("writer,reader,scenario", [
    pytest.param(w, r, "open-modes", id=f"{w.name}-writes/{r.name}-reads/open-modes")
    for w in ENABLED for r in ENABLED])
def test_open_modes(writer, reader, scenario, seg):
    a, b = Actor(writer), Actor(reader)
    miss = b("open", "--name", seg, "--mode", "open_only", "--size", 4096, expect_ok=False)
    assert miss["error"] == "not_found", miss
    made = a("open", "--name", seg, "--mode", "create_only", "--size", 4096)
    assert made["created"] is True and made["size"] == 4096
    dup = b("open", "--name", seg, "--mode", "create_only", "--size", 4096, expect_ok=False)
    assert dup["error"] == "already_exists", dup
    got = b("open", "--name", seg, "--mode", "open_only", "--size", 4096)
    assert got["created"] is False and got["size"] == 4096
    got = b("open", "--name", seg, "--mode", "open_or_create", "--size", 4096)
    assert got["created"] is False and got["size"] == 4096


# ---- read-only attach ------------------------------------------------------------------

@pytest.mark.parametrize("writer,reader,scenario", [
    pytest.param(w, r, "read-only", id=f"{w.name}-writes/{r.name}-reads/read-only")
    for w in ENABLED for r in ENABLED if r.read_only_attach])
def test_read_only_attach_refuses_writes(writer, reader, scenario, seg):
    Actor(writer)("write", "--layout", "raw", "--name", seg, "--size", 100, "--pattern", 5)
    r = Actor(reader)("write-readonly", "--name", seg)
    assert r["refused"] is True and r["error"] == "permission_denied", r
    Actor(writer)("read", "--layout", "raw", "--name", seg, "--pattern", 5)  # unchanged


# ---- permissions -----------------------------------------------------------------------

def mode_of(name):
    return stat.S_IMODE(os.stat(os.path.join("/dev/shm", name)).st_mode)


@pytest.mark.parametrize("who", [pytest.param(p, id=f"{p.name}-creates/perm-default") for p in ENABLED])
def test_default_permissions(who, seg):
    Actor(who)("write", "--layout", "raw", "--name", seg, "--size", 10, "--pattern", 1)
    assert mode_of(seg) == who.default_perm, f"{who.name} created {mode_of(seg):04o}"


@pytest.mark.parametrize("who", [pytest.param(p, id=f"{p.name}-creates/perm-0640")
                                 for p in ENABLED if p.explicit_perm])
def test_explicit_permissions(who, seg):
    old = os.umask(0o077)  # the explicit mode must win over any umask
    try:
        Actor(who)("write", "--layout", "raw", "--name", seg, "--size", 10, "--pattern", 1, "--perm", "640")
    finally:
        os.umask(old)
    assert mode_of(seg) == 0o640, f"{who.name} created {mode_of(seg):04o}"


# ---- channels: one writer, two readers of different languages --------------------------
#
# PROTOCOL.md, "Channels". Each case starts the writer, then the reader under test and a
# companion reader of another language (the next participant with channels), all at once.

CHAN_COUNT = 400      # messages per case
CHAN_SIZE = 4096      # max_message; message i is 1 + (i * 7919) % size bytes
CHAN_DIE_AFTER = 120  # where a killed actor stops
CHANNELS = [p for p in ENABLED if p.channels]


class Running:
    """An actor in the background: its first line (ready/joined) read at start."""

    def __init__(self, participant, *args):
        self.p = participant
        self.args = [str(a) for a in args]
        self.proc = subprocess.Popen(participant.cmd + self.args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.first = self._line(60)

    def _line(self, timeout):
        # Byte by byte from the descriptor: a buffered readline could read ahead into the
        # actor's last line, which communicate() (reading the descriptor) would then miss.
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        raw = b""
        while not raw.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 1) if ready else b""
            if not chunk:
                break
            raw += chunk
        line = raw.decode()
        if not line:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(
                f"{self.p.name} {self.args[0]} printed no first line (exit {self.proc.returncode}):"
                f"\n{err[-2000:]}")
        return json.loads(line)

    def finish(self, timeout=120, killed=False):
        """The JSON line (None for an actor that 'died': status 0 and nothing more)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(f"{self.p.name} {self.args[0]} hung:\n{err[-2000:]}")
        rc = self.proc.returncode
        if killed:
            assert rc == 0 and out.strip() == "", (
                f"{self.p.name} {self.args[0]} --die-after should exit 0 silently: {rc} {out!r}\n{err[-2000:]}")
            return None
        assert rc in (0, 1), f"{self.p.name} crashed (exit {rc}) on {self.args}:\n{err[-2000:]}"
        lines = out.strip().splitlines()
        assert lines, f"{self.p.name} printed nothing on {self.args}:\n{err[-2000:]}"
        res = json.loads(lines[-1])
        assert res["actor"] == self.p.name and res["ok"] == (rc == 0), res
        assert res["ok"], f"{self.p.name} {self.args[0]} failed: {res}"
        return res

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def actors():
    """Actors started by a case, killed if still running when it ends."""
    running = []
    yield running
    for a in running:
        a.stop()


def companion(reader):
    """Another participant with channels to read alongside `reader` (itself when alone)."""
    i = CHANNELS.index(reader)
    return CHANNELS[(i + 1) % len(CHANNELS)]


def chan_cases(scenarios):
    return [pytest.param(w, r, scen, id=f"{w.name}-writes/{r.name}-reads/{scen}")
            for scen in scenarios for w in CHANNELS for r in CHANNELS]


def start(actors, participant, *args):
    a = Running(participant, *args)
    actors.append(a)
    return a


def chan_write(actors, writer, seg, policy, slots, count, size, wait_readers, *extra):
    w = start(actors, writer, "chan-write", "--name", seg, "--policy", policy, "--slots", slots,
              "--readers", 2, "--count", count, "--size", size, "--wait-readers", wait_readers,
              *extra)
    assert w.first == {"ready": True}, w.first
    return w


def chan_read(actors, reader, seg, *extra):
    r = start(actors, reader, "chan-read", "--name", seg, *extra)
    assert r.first == {"joined": True}, r.first
    return r


def got_everything(res, count):
    assert (res["received"], res["lost"], res["first"], res["last"], res["end"]) == (
        count, 0, 0, count - 1, "closed"), res


@pytest.mark.parametrize("writer,reader,scenario", chan_cases(["chan-block"]))
def test_channel_block(writer, reader, scenario, seg, actors):
    """Every live reader gets every message, whole and in order; one of them holds two."""
    w = chan_write(actors, writer, seg, "block", 4, CHAN_COUNT, CHAN_SIZE, 2)
    a = chan_read(actors, reader, seg, "--hold", 2)
    b = chan_read(actors, companion(reader), seg)
    assert w.finish()["sent"] == CHAN_COUNT
    got_everything(a.finish(), CHAN_COUNT)
    got_everything(b.finish(), CHAN_COUNT)


@pytest.mark.parametrize("writer,reader,scenario", chan_cases(["chan-overwrite"]))
def test_channel_overwrite(writer, reader, scenario, seg, actors):
    """The writer never waits; a reader takes whole messages and counts what it lost."""
    count = 4 * CHAN_COUNT
    w = chan_write(actors, writer, seg, "overwrite", 4, count, 256, 1)
    r = chan_read(actors, reader, seg, "--hold", 1)
    assert w.finish()["sent"] == count
    res = r.finish()
    # It joined before the first message: every message was taken or counted as lost.
    assert res["received"] + res["lost"] == count, res
    assert res["received"] >= 1 and res["last"] == count - 1 and res["end"] == "closed", res


@pytest.mark.parametrize("writer,reader,scenario", chan_cases(["chan-reader-killed"]))
def test_channel_reader_killed(writer, reader, scenario, seg, actors):
    """A reader that dies holding a message frees its place: the writer and the other
    reader finish (block policy)."""
    w = chan_write(actors, writer, seg, "block", 4, CHAN_COUNT, CHAN_SIZE, 2)
    dead = chan_read(actors, reader, seg, "--die-after", CHAN_DIE_AFTER)
    b = chan_read(actors, companion(reader), seg)
    assert dead.finish(killed=True) is None
    assert w.finish()["sent"] == CHAN_COUNT
    got_everything(b.finish(), CHAN_COUNT)


@pytest.mark.parametrize("writer,reader,scenario", chan_cases(["chan-writer-killed"]))
def test_channel_writer_killed(writer, reader, scenario, seg, actors):
    """A writer that dies mid-stream: readers take every message it published, whole, then
    end with writer_died."""
    w = chan_write(actors, writer, seg, "block", 4, CHAN_COUNT, CHAN_SIZE, 2,
                   "--die-after", CHAN_DIE_AFTER)
    a = chan_read(actors, reader, seg, "--hold", 3)
    b = chan_read(actors, companion(reader), seg)
    assert w.finish(killed=True) is None
    for res in (a.finish(), b.finish()):
        assert (res["received"], res["lost"], res["first"], res["last"], res["end"]) == (
            CHAN_DIE_AFTER, 0, 0, CHAN_DIE_AFTER - 1, "writer_died"), res


# ---- typed arrays: array segments and array messages -------------------------------------
#
# PROTOCOL.md, "Arrays". Every writer against every reader with arrays, every dtype, C and F
# order, the strided layout S (every other element along each dimension, the first one
# reversed: non-contiguous, a negative stride), 0-d and empty shapes (array_cases says how
# they are spread over the pairs).

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", "complex64", "complex128"]
ARRAY_LAYOUTS = {  # scenario suffix: (shape, order)
    "C": ("2,3,4", "C"),
    "F": ("2,3,4", "F"),
    "strided": ("2,3,4", "S"),
    "0d": ("()", "C"),
    "empty": ("3,0,2", "C"),
}
ARRAYS = [p for p in ENABLED if p.arrays]


def array_cases():
    """Every writer x reader pair gets every dtype in C order and every other layout with a
    quarter of the dtypes, the quarter turning with the pair, so that across the pairs every
    (dtype, layout) is run by several pairs and no pair misses a dtype or a layout. The full
    cross product (70 cases a pair, two processes each) cost minutes of make test."""
    pairs = [(w, r) for w in ARRAYS for r in ARRAYS]
    others = [lay for lay in ARRAY_LAYOUTS if lay != "C"]
    cases = []
    for n, (w, r) in enumerate(pairs):
        chosen = [(d, "C") for d in DTYPES]
        chosen += [(d, lay) for li, lay in enumerate(others) for di, d in enumerate(DTYPES)
                   if (di + n + li) % len(others) == 0]
        cases += [pytest.param(w, r, f"array-{d}-{lay}", id=f"{w.name}-writes/{r.name}-reads/array-{d}-{lay}")
                  for d, lay in chosen]
    return cases


def shape_list(text):
    return [] if text == "()" else [int(x) for x in text.split(",")]


@pytest.mark.parametrize("writer,reader,scenario", array_cases())
def test_array_segment(writer, reader, scenario, seg):
    """The reader gets the writer's dtype, shape and strides from the header alone, and every
    element's bytes."""
    _, dtype, lay = scenario.split("-")
    shape, order = ARRAY_LAYOUTS[lay]
    args = ("--name", seg, "--dtype", dtype, "--shape", shape, "--order", order, "--seed", 5)
    w = Actor(writer)("array-write", *args)
    r = Actor(reader)("array-read", *args)
    assert (w["dtype"], w["shape"]) == (dtype, shape_list(shape)), w
    assert (r["dtype"], r["shape"], r["strides"]) == (w["dtype"], w["shape"], w["strides"]), (w, r)
    assert r["checked"] == w["elements"] and r["version"] == 1, (w, r)
    assert os.path.exists(os.path.join("/dev/shm", seg)), f"{reader.name} removed {writer.name}'s array"


CHAN_ARRAY_COUNT = 2 * len(DTYPES)  # message i is of dtype i % 14, its elements seeded with i


@pytest.mark.parametrize("writer,reader,scenario", [
    pytest.param(w, r, f"chan-array-{lay}", id=f"{w.name}-writes/{r.name}-reads/chan-array-{lay}")
    for w in ARRAYS for r in ARRAYS for lay in ARRAY_LAYOUTS])
def test_channel_arrays(writer, reader, scenario, seg, actors):
    """Array messages of every dtype: each one's header and elements arrive as written."""
    shape, order = ARRAY_LAYOUTS[scenario.split("-")[-1]]
    args = ("--name", seg, "--dtypes", ",".join(DTYPES), "--shape", shape, "--order", order)
    w = start(actors, writer, "chan-array-write", *args, "--count", CHAN_ARRAY_COUNT,
              "--size", 4096, "--wait-readers", 1)
    assert w.first == {"ready": True}, w.first
    r = start(actors, reader, "chan-array-read", *args)
    assert r.first == {"joined": True}, r.first
    assert w.finish()["sent"] == CHAN_ARRAY_COUNT
    assert r.finish()["received"] == CHAN_ARRAY_COUNT
