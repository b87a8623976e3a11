"""The ``shmbridge`` command as the wheel installs it: the ``shmbridge`` console script and
``python -m shmbridge``, both the Rust CLI run through the extension (``_native.cli_main``).

They must be the ``shmbridge`` binary: same help, version, output and exit codes; Ctrl-C and
SIGTERM stop a transfer cleanly with exit 130; peers killed mid-transfer are reported as by the
binary (crates/shmbridge-cli/tests/kill.rs has the binary's side of these).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest

import shmbridge
from shmbridge import _native
from _helpers import Proc, shm_exists, wait_ring_drained, wait_ring_full

KiB = 1024
MiB = 1024 * 1024

SCRIPT = Path(sys.executable).parent / "shmbridge"

# The two ways the wheel starts the command.
FRONTS = {"console-script": [str(SCRIPT)], "python-m": [sys.executable, "-m", "shmbridge"]}


def make_file(path: Path, size: int, seed: int = 1) -> bytes:
    data = bytes((i * 31 + seed) % 251 for i in range(size))
    path.write_bytes(data)
    return data


@pytest.fixture(params=sorted(FRONTS))
def front(request: pytest.FixtureRequest) -> List[str]:
    cmd: List[str] = FRONTS[request.param]
    return cmd


def run(cmd: List[str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def wait_until_catching(pid: int, sig: int) -> None:
    """Until the process has a handler for `sig` (its SigCgt mask), so a signal sent at start-up
    is not taken by the default action."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            break
        for line in status.splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) & (1 << (sig - 1)):
                return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} never installed a handler for signal {sig}")


def wait_until_exists(name: str) -> None:
    deadline = time.monotonic() + 60
    while not shm_exists(name):
        assert time.monotonic() < deadline, f"{name} never appeared"
        time.sleep(0.01)


# --- the same command -----------------------------------------------------------------------


def test_the_wheel_installs_a_console_script() -> None:
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), SCRIPT
    assert hasattr(_native, "cli_main")


def test_help_and_version_equal_the_binary(shmbridge_cli: str, front: List[str]) -> None:
    for args in (["--help"], ["send", "--help"], ["reap", "--help"], ["--version"], ["man"], ["completions", "bash"]):
        ours, theirs = run(front, *args), run([shmbridge_cli], *args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr), args
        assert ours.returncode == 0
    assert "130  interrupted" in run(front, "--help").stdout


def test_exit_codes_equal_the_binary(shmbridge_cli: str, front: List[str], shm_name: str, tmp_path: Path) -> None:
    (tmp_path / "in.bin").write_bytes(b"x" * 100)
    cases = [
        (["rm", shm_name], 3),
        (["info", shm_name], 3),
        (["reap", "-n"], 2),  # -n is a segment name elsewhere: not a silent dry run
        (["send", "--bogus"], 2),
        (["send", str(tmp_path / "in.bin"), "--name", "bad/name"], 2),
        (["send", str(tmp_path / "in.bin"), "--segment-size", "12Q"], 2),
        (["send", str(tmp_path), "--name", shm_name], 1),
        (["send", str(tmp_path / "missing"), "--name", shm_name], 3),
        (["recv", shm_name, str(tmp_path / "out"), "--timeout", "200ms"], 5),
        (["cat", shm_name, "-t", "100ms"], 5),
        (["recv"], 2),
    ]
    for args, want in cases:
        ours, theirs = run(front, "-q", *args), run([shmbridge_cli], "-q", *args)
        assert ours.returncode == theirs.returncode == want, (args, ours.stderr, theirs.stderr)
        assert ours.stderr == theirs.stderr, args
    assert not shm_exists(shm_name)


def test_a_hand_over_between_the_binary_and_the_wheel(
    shmbridge_cli: str, front: List[str], shm_names: Callable[[], str], tmp_path: Path, procs: List[Proc]
) -> None:
    data = make_file(tmp_path / "in.bin", 300 * KiB + 7)
    a, b = shm_names(), shm_names()
    # one-shot: wheel sends, binary receives
    p = run(front, "send", str(tmp_path / "in.bin"), "-n", a)
    assert p.returncode == 0, p.stderr
    assert f'via one-shot segment "{a}"' in p.stderr and f"shmbridge recv {a} OUT" in p.stderr
    ls = run(front, "ls")
    row = next(line for line in ls.stdout.splitlines() if line.startswith(a))
    assert row.split()[1] == "framed/message" and "complete" in row
    info = json.loads(run(front, "info", a, "-j").stdout)
    assert info["framed"]["payload_len"] == len(data) and info["state"] == "complete"
    cat = subprocess.run([*front, "cat", a], capture_output=True, timeout=60)
    assert cat.returncode == 0 and cat.stdout == data, "cat writes the payload"
    assert run([shmbridge_cli], "-q", "recv", a, str(tmp_path / "o1")).returncode == 0
    # streamed: binary sends, wheel receives
    send = Proc([shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "-n", b, "-s", "--segment-size", "64K"])
    procs.append(send)
    p = run(front, "recv", b, str(tmp_path / "o2"), "-t", "60s")
    assert p.returncode == 0, p.stderr
    assert p.stderr.startswith("received ") and "streamed through" in p.stderr
    assert send.wait()[0] == 0
    assert (tmp_path / "o1").read_bytes() == data == (tmp_path / "o2").read_bytes()
    assert not shm_exists(a) and not shm_exists(b)


def test_ls_names_a_headerless_segment_unframed(front: List[str], shm_name: str) -> None:
    seg = shmbridge.Segment(shm_name, "create_only", 4096)
    seg.close()
    row = next(line for line in run(front, "ls").stdout.splitlines() if line.startswith(shm_name))
    assert row.split()[1] == "unframed"
    assert json.loads(run(front, "info", shm_name, "--json").stdout)["layout"] == "unframed"
    assert shmbridge.segment_info(shm_name).layout == "unframed", "the same word as the Python API"


def test_doctor(front: List[str]) -> None:
    p = run(front, "doctor")
    assert p.returncode == 0, p.stderr
    assert "directory:  /dev/shm" in p.stdout and "type tmpfs" in p.stdout
    v = json.loads(run(front, "doctor", "--json").stdout)
    st = os.statvfs("/dev/shm")
    assert v["total"] == st.f_blocks * st.f_frsize
    assert v["mount"]["mount_point"] == "/dev/shm" and isinstance(v["advice"], list)


def test_a_closed_stdout_is_not_a_traceback(front: List[str], shm_names: Callable[[], str]) -> None:
    for _ in range(30):
        shmbridge.Segment(shm_names(), "create_only", 4096).close()
    p = subprocess.Popen([*front, "ls"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(60) != 101, err
    assert "panicked" not in err and "Traceback" not in err, err


# --- signals: a clean stop with exit 130 ----------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_waiting_sender(
    front: List[str], sig: int, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    make_file(tmp_path / "in.bin", 1 * MiB)
    p = Proc([*front, "-q", "send", str(tmp_path / "in.bin"), "-n", shm_name, "-s", "--segment-size", "64K", "-t", "60s"])
    procs.append(p)
    wait_until_exists(shm_name)
    p.p.send_signal(sig)
    code, _, err = p.wait()
    assert code == 130, err
    assert "interrupted" in err and "aborted" in err, err
    assert not shm_exists(shm_name), "the interrupted sender removes its segment"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_waiting_receiver(
    front: List[str], sig: int, shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    p = Proc([*front, "-q", "recv", shm_name, str(tmp_path / "out.bin"), "-t", "60s"])
    procs.append(p)
    # SIGTERM is caught once the command is about to run (Python catches SIGINT from its own
    # start-up on, when a Ctrl-C is just a KeyboardInterrupt in some import).
    wait_until_catching(p.p.pid, signal.SIGTERM)
    p.p.send_signal(sig)
    code, _, err = p.wait()
    assert code == 130, err
    assert "interrupted" in err
    assert list(tmp_path.iterdir()) == [], "no target and no temporary file"


def test_interrupting_a_receiver_mid_stream(
    shmbridge_cli: str, front: List[str], shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    make_file(tmp_path / "in.bin", 4 * MiB)
    send = Proc([shmbridge_cli, "-q", "send", str(tmp_path / "in.bin"), "-n", shm_name, "-s", "--segment-size", "256K", "-t", "60s"])
    procs.append(send)
    # Mid-stream for the receiver: the sender frozen with a full ring, the receiver attached
    # and waiting for more once it has taken that.
    wait_ring_full(shmbridge_cli, shm_name)
    send.p.send_signal(signal.SIGSTOP)
    recv = Proc([*front, "recv", shm_name, str(tmp_path / "out.bin"), "-t", "60s"])
    procs.append(recv)
    wait_ring_drained(shmbridge_cli, shm_name)
    recv.p.kill()
    recv.wait()
    send.p.send_signal(signal.SIGCONT)
    code, _, err = send.wait()
    assert code == 6 and "receiver" in err and "died" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]
    assert not shm_exists(shm_name)


def test_a_killed_sender_makes_the_wheel_receiver_fail(
    shmbridge_cli: str, front: List[str], shm_name: str, tmp_path: Path, procs: List[Proc]
) -> None:
    make_file(tmp_path / "in.bin", 8 * MiB)
    send = Proc([*front, "send", str(tmp_path / "in.bin"), "-n", shm_name, "-s", "--segment-size", "1M"])
    procs.append(send)
    # Mid-stream: the sender frozen with a full ring, the receiver attached and waiting.
    wait_ring_full(shmbridge_cli, shm_name)
    send.p.send_signal(signal.SIGSTOP)
    recv = Proc([*front, "recv", shm_name, str(tmp_path / "out.bin"), "-t", "60s"])
    procs.append(recv)
    wait_ring_drained(shmbridge_cli, shm_name)
    send.p.kill()
    code, _, err = recv.wait()
    assert code == 6, err
    assert "died before the stream was complete" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"], "no partial file"


# --- in this process: cli_main and Python's signal handlers ---------------------------------


def test_cli_main_in_process_returns_the_exit_code(shm_name: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert _native.cli_main(["shmbridge", "rm", shm_name]) == 3
    assert f'segment "{shm_name}"' in capfd.readouterr().err
    assert _native.cli_main(["anything", "--version"]) == 0
    assert capfd.readouterr().out.startswith("shmbridge ")


def test_ctrl_c_in_process_stops_the_command_with_130(shm_name: str, tmp_path: Path) -> None:
    # SIGINT's Python handler raises KeyboardInterrupt; the command turns it into its clean
    # stop and returns 130 instead of raising.
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    old_alrm = signal.signal(signal.SIGALRM, lambda s, f: os.kill(os.getpid(), signal.SIGINT))
    try:
        code = _native.cli_main(["shmbridge", "-q", "recv", shm_name, str(tmp_path / "out"), "--timeout", "30s"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_alrm)
        signal.signal(signal.SIGINT, old)
    assert code == 130
    assert not (tmp_path / "out").exists()


class Stop(Exception):
    pass


def test_another_exception_from_a_signal_handler_propagates(shm_name: str, tmp_path: Path) -> None:
    def handler(signum: int, frame: object) -> None:
        raise Stop("from the handler")

    make_file(tmp_path / "in.bin", 256 * KiB)
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        with pytest.raises(Stop):
            _native.cli_main(
                ["shmbridge", "-q", "send", str(tmp_path / "in.bin"), "-n", shm_name, "-s", "--segment-size", "16K", "-t", "30s"]
            )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert not shm_exists(shm_name), "the command cleaned up before the exception propagated"


def test_bad_argv_types() -> None:
    with pytest.raises(TypeError):
        _native.cli_main("shmbridge ls")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.cli_main([b"shmbridge", 3])  # type: ignore[list-item]
