//! The `shmbridge` command across real processes: the hand-over, exit codes, and peers killed
//! with SIGKILL at known points and at arbitrary moments.
//!
//! A known point is reached from outside, with no hook in the product: a stream's writer
//! blocks once its ring is full and no reader takes from it, so the test waits for that state
//! (read from the segment's control words), freezes a peer with SIGSTOP where it needs the
//! other to stay mid-stream, and kills. A one-shot sender is frozen with SIGSTOP as soon as its
//! segment's name appears; the attempt is repeated in the rare case the fill finished first.
//!
//! No timing assertions: every wait has a generous limit, and only outcomes are checked.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_shmbridge");

mod common;
use common::Seg;

/// A scratch directory, removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(shmbridge::name::unique("shmb_t_clidir_"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn file(&self, name: &str, len: usize, seed: u8) -> (PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..len)
            .map(|i| ((i * 31 + usize::from(seed)) % 251) as u8)
            .collect();
        let p = self.0.join(name);
        std::fs::write(&p, &data).unwrap();
        (p, data)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop (so a failing test leaves no process behind).
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null());
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().unwrap()
}

fn spawn(args: &[&str]) -> Proc {
    let mut c = cmd(args);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    Proc(c.spawn().unwrap())
}

fn send_signal(p: &Proc, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    let rc = unsafe { libc::kill(libc::pid_t::try_from(p.0.id()).unwrap(), sig) };
    assert_eq!(rc, 0);
}

fn sigkill(p: &Proc) {
    send_signal(p, libc::SIGKILL);
}

/// Wait (with a generous limit) until `done` holds.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < LIMIT, "never reached: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The control words of the stream segment `name`, if it exists and is one.
fn stream_status(name: &str) -> Option<shmbridge::stream::StreamStatus> {
    let f = shmbridge::FramedSegment::open(name, shmbridge::Access::ReadOnly).ok()?;
    shmbridge::stream::status(&f).ok()
}

/// Wait until the stream `name`'s writer has filled its ring and, with no reader taking from
/// it, blocks: a known point in the middle of the stream.
fn wait_ring_full(name: &str) {
    wait_until("the writer filled the ring", || {
        stream_status(name).is_some_and(|s| {
            s.write_pos - s.read_pos == s.capacity
                && s.writer_state == shmbridge::stream::WriterState::Streaming
        })
    });
}

/// Wait until the reader of the stream `name` has taken everything written so far, and waits
/// for more (the writer being frozen).
fn wait_ring_drained(name: &str) {
    wait_until("the reader drained the ring", || {
        stream_status(name).is_some_and(|s| {
            s.read_pos == s.write_pos
                && s.read_pos > 0
                && s.reader_state == shmbridge::stream::ReaderState::Attached
        })
    });
}

/// A streamed `send` of `src` as `name` (1 MiB ring) and a `recv` into `out`, both stopped in
/// the middle of the stream: the sender frozen (SIGSTOP) with a full ring, the receiver
/// attached and waiting for more once it has taken that.
fn mid_stream(src: &std::path::Path, name: &str, out: &std::path::Path) -> (Proc, Proc) {
    let sender = spawn(&[
        "send",
        src.to_str().unwrap(),
        "--name",
        name,
        "--stream",
        "--segment-size",
        "1M",
        "--timeout",
        "60s",
    ]);
    wait_ring_full(name);
    send_signal(&sender, libc::SIGSTOP);
    let receiver = spawn(&["recv", name, out.to_str().unwrap(), "--timeout", "60s"]);
    wait_ring_drained(name);
    (sender, receiver)
}

/// Start a one-shot `send` of `src` as `name` and freeze it (SIGSTOP) after its segment got its
/// name but before it published the payload. Returns `None` in the rare case the fill finished
/// before the freeze (the caller tries again with another name).
fn frozen_mid_fill(src: &std::path::Path, name: &str) -> Option<Proc> {
    let sender = spawn(&["send", src.to_str().unwrap(), "--name", name]);
    let start = Instant::now();
    while !exists(name) {
        assert!(
            start.elapsed() < LIMIT,
            "the sender never created its segment"
        );
        std::hint::spin_loop();
    }
    send_signal(&sender, libc::SIGSTOP);
    let published = shmbridge::FramedSegment::open(name, shmbridge::Access::ReadOnly)
        .and_then(|f| f.header())
        .map_or(true, |h| h.flags & shmbridge::framed::flags::PUBLISHED != 0);
    if published {
        sigkill(&sender);
        let _ = finish(sender, LIMIT);
        let _ = shmbridge::ShmObject::remove(name);
        return None;
    }
    Some(sender)
}

/// Wait for a child with a generous limit; return its exit code and stderr.
fn finish(mut p: Proc, limit: Duration) -> (i32, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = p.0.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = p.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status.code().unwrap_or(-1), err);
        }
        assert!(
            start.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn exists(name: &str) -> bool {
    shmbridge::ShmObject::exists(name)
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn one_shot_send_then_recv_and_the_management_commands() {
    let dir = Dir::new();
    let seg = Seg::new("basic");
    let (src, data) = dir.file("in.bin", 200_000, 1);
    let out = dir.path("out.bin");
    let o = run(&["send", src.to_str().unwrap(), "--name", &seg.0]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(&["ls", "--json"]);
    let listing = String::from_utf8(o.stdout).unwrap();
    assert!(listing.contains(&seg.0), "{listing}");
    let o = run(&["ls"]);
    let table = String::from_utf8(o.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.contains(&seg.0))
        .unwrap()
        .to_owned();
    assert!(
        row.contains("framed/message") && row.contains("complete") && row.contains("0600"),
        "{row}"
    );
    let o = run(&["info", &seg.0, "--json"]);
    let info = String::from_utf8(o.stdout).unwrap();
    assert!(info.contains("\"payload_len\":200000"), "{info}");
    let o = run(&["cat", &seg.0]);
    assert_eq!(code(&o), 0);
    assert_eq!(o.stdout, data, "cat writes the payload");
    let o = run(&["recv", &seg.0, out.to_str().unwrap(), "--timeout", "10s"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(!exists(&seg.0), "recv removes the segment");
    // rm, and its exit code for a missing name.
    shmbridge::Segment::create(&seg.0, 10).unwrap();
    assert_eq!(code(&run(&["rm", &seg.0])), 0);
    assert_eq!(code(&run(&["rm", &seg.0])), 3);
}

#[test]
fn exit_codes_for_bad_input() {
    let dir = Dir::new();
    let seg = Seg::new("codes");
    let o = run(&[
        "recv",
        &seg.0,
        dir.path("x").to_str().unwrap(),
        "--timeout",
        "200ms",
    ]);
    assert_eq!(code(&o), 5, "no sender: timeout");
    let o = run(&["send", dir.0.to_str().unwrap(), "--name", &seg.0]);
    assert_eq!(code(&o), 1, "a directory");
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a directory"));
    let o = run(&[
        "send",
        dir.path("missing").to_str().unwrap(),
        "--name",
        &seg.0,
    ]);
    assert_eq!(code(&o), 3, "a missing file");
    let (src, _) = dir.file("in", 1000, 2);
    shmbridge::Segment::create(&seg.0, 10).unwrap();
    let o = run(&["send", src.to_str().unwrap(), "--name", &seg.0]);
    assert_eq!(code(&o), 4, "a name that exists");
    shmbridge::ShmObject::remove(&seg.0).unwrap();
    assert_eq!(
        code(&run(&["send", src.to_str().unwrap(), "--name", &seg.0])),
        0
    );
    let raw = shmbridge::Segment::open(&seg.0, shmbridge::Access::ReadWrite).unwrap();
    raw.write_at(128 + 10, b"\x00\x01\x02").unwrap();
    let out = dir.path("out");
    let o = run(&["recv", &seg.0, out.to_str().unwrap(), "--timeout", "5s"]);
    assert_eq!(code(&o), 7, "checksum mismatch");
    assert!(!out.exists());
    let o = run(&["send", "--bogus"]);
    assert_eq!(code(&o), 2, "usage");
    assert!(String::from_utf8_lossy(&run(&["--help"]).stdout).contains("Exit codes:"));
}

#[test]
fn streaming_send_waits_for_the_receiver_and_both_verify() {
    let dir = Dir::new();
    let seg = Seg::new("stream");
    let (src, data) = dir.file("in.bin", 5 * 1024 * 1024 + 3, 3);
    let out = dir.path("out.bin");
    let sender = spawn(&[
        "send",
        src.to_str().unwrap(),
        "--name",
        &seg.0,
        "--stream",
        "--segment-size",
        "256K",
        "--timeout",
        "60s",
    ]);
    let o = run(&["recv", &seg.0, out.to_str().unwrap(), "--timeout", "60s"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let (c, err) = finish(sender, LIMIT);
    assert_eq!(c, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(!exists(&seg.0));
}

#[test]
fn one_shot_sender_killed_mid_fill_makes_the_receiver_fail() {
    let dir = Dir::new();
    let (src, _) = dir.file("in.bin", 64 << 20, 4);
    let out = dir.path("out.bin");
    std::fs::write(&out, b"old").unwrap();
    let (seg, sender) = (0..50)
        .find_map(|_| {
            let seg = Seg::new("k1");
            frozen_mid_fill(&src, &seg.0).map(|p| (seg, p))
        })
        .expect("a send frozen mid-fill");
    let receiver = spawn(&["recv", &seg.0, out.to_str().unwrap(), "--timeout", "60s"]);
    sigkill(&sender);
    let (c, err) = finish(receiver, LIMIT);
    assert_eq!(c, 6, "{err}");
    assert!(err.contains("died before publishing"), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"old", "target untouched");
    assert_eq!(
        dir.entries(),
        ["in.bin", "out.bin"],
        "no temporary file left"
    );
    assert!(!exists(&seg.0), "the dead sender's segment is removed");
}

#[test]
fn streaming_sender_killed_mid_stream_makes_the_receiver_fail() {
    let dir = Dir::new();
    let seg = Seg::new("k2");
    let (src, _) = dir.file("in.bin", 8 << 20, 5);
    let out = dir.path("out.bin");
    let (sender, receiver) = mid_stream(&src, &seg.0, &out);
    sigkill(&sender);
    let (c, err) = finish(receiver, LIMIT);
    assert_eq!(c, 6, "{err}");
    assert!(err.contains("died before the stream was complete"), "{err}");
    assert!(!out.exists(), "no partial file");
    assert_eq!(dir.entries(), ["in.bin"], "no temporary file left");
}

#[test]
fn receiver_killed_mid_stream_makes_the_sender_fail() {
    let dir = Dir::new();
    let seg = Seg::new("k3");
    let (src, _) = dir.file("in.bin", 8 << 20, 6);
    let out = dir.path("out.bin");
    let (sender, receiver) = mid_stream(&src, &seg.0, &out);
    sigkill(&receiver);
    let _ = finish(receiver, LIMIT);
    send_signal(&sender, libc::SIGCONT);
    let (c, err) = finish(sender, LIMIT);
    assert_eq!(c, 6, "{err}");
    assert!(err.contains("receiver") && err.contains("died"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        dir.entries(),
        ["in.bin"],
        "the killed receiver's unnamed temp file vanished"
    );
    assert!(!exists(&seg.0), "the sender removes its segment");
}

#[test]
fn reap_removes_a_dead_senders_unfinished_segment_and_keeps_complete_ones() {
    let dir = Dir::new();
    let done = Seg::new("reap_done");
    let (src, _) = dir.file("in.bin", 64 << 20, 7);
    let (dead, sender) = (0..50)
        .find_map(|_| {
            let seg = Seg::new("reap_dead");
            frozen_mid_fill(&src, &seg.0).map(|p| (seg, p))
        })
        .expect("a send frozen mid-fill");
    sigkill(&sender);
    let _ = finish(sender, LIMIT);
    assert_eq!(
        code(&run(&["send", src.to_str().unwrap(), "--name", &done.0])),
        0
    );
    let o = run(&["reap", "--dry-run", &dead.0, &done.0]);
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(said.contains(&format!("would remove {}", dead.0)), "{said}");
    assert!(!said.contains(&done.0), "{said}");
    assert!(exists(&dead.0));
    assert_eq!(code(&run(&["reap", &dead.0, &done.0])), 0);
    assert!(!exists(&dead.0), "reaped");
    assert!(exists(&done.0), "a complete payload waits for its receiver");
}

/// Kill the sender at arbitrary moments: the receiver either gets every byte, verified, or
/// fails (peer gone, or timed out when the sender died before its header existed) and leaves
/// the target absent.
#[test]
fn sender_killed_at_arbitrary_moments_never_yields_partial_data() {
    let dir = Dir::new();
    let (src, data) = dir.file("in.bin", 12 << 20, 8);
    for i in 0..6u64 {
        let seg = Seg::new("krand");
        let out = dir.path("out.bin");
        let _ = std::fs::remove_file(&out);
        let receiver = spawn(&["recv", &seg.0, out.to_str().unwrap(), "--timeout", "3s"]);
        let mut args = vec!["send", src.to_str().unwrap(), "--name", &seg.0];
        if i % 2 == 1 {
            args.extend(["--stream", "--segment-size", "1M"]);
        }
        let sender = spawn(&args);
        std::thread::sleep(Duration::from_millis(i * 6));
        sigkill(&sender);
        drop(sender);
        let (c, err) = finish(receiver, LIMIT);
        match c {
            0 => assert_eq!(
                std::fs::read(&out).unwrap(),
                data,
                "accepted data is complete"
            ),
            // Timed out, peer gone, or (killed before its header was written) no header.
            5..=7 => assert!(!out.exists(), "failed, so no target: {err}"),
            other => panic!("unexpected exit {other}: {err}"),
        }
        let left: Vec<String> = dir
            .entries()
            .into_iter()
            .filter(|e| e.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}

/// Wait until the child has installed its handler for `sig` (its `SigCgt` mask in
/// /proc/PID/status), so the signal is not delivered to the default action at start-up.
fn wait_until_catching(p: &Proc, sig: libc::c_int) {
    let start = Instant::now();
    loop {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", p.0.id())).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .unwrap_or(0);
        if caught & (1 << (sig - 1)) != 0 {
            return;
        }
        assert!(
            start.elapsed() < LIMIT,
            "the child never installed its signal handler"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(p: &Proc, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
    let rc = unsafe { libc::kill(libc::pid_t::try_from(p.0.id()).unwrap(), sig) };
    assert_eq!(rc, 0);
}

/// Ctrl-C (SIGINT) or SIGTERM stops a transfer cleanly, even while it only waits for its peer:
/// exit code 130, the sender's segment removed, the receiver's target absent.
#[test]
fn interrupted_transfers_stop_cleanly_with_exit_130() {
    let dir = Dir::new();
    let (src, _) = dir.file("in.bin", 1 << 20, 3);
    // A streaming sender waiting for a receiver that never comes.
    let seg = Seg::new("int_tx");
    let src_s = src.to_str().unwrap();
    let p = spawn(&[
        "-q",
        "send",
        src_s,
        "--name",
        &seg.0,
        "--stream",
        "--segment-size",
        "64K",
        "--timeout",
        "60s",
    ]);
    let start = Instant::now();
    while !exists(&seg.0) {
        assert!(
            start.elapsed() < LIMIT,
            "the sender never created its segment"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&p, libc::SIGINT);
    let (rc, err) = finish(p, LIMIT);
    assert_eq!(rc, 130, "{err}");
    assert!(err.contains("aborted"), "{err}");
    assert!(
        !exists(&seg.0),
        "the interrupted sender removes its segment"
    );
    // A receiver waiting for a sender that never comes.
    let seg = Seg::new("int_rx");
    let out = dir.path("out.bin");
    let p = spawn(&[
        "-q",
        "recv",
        &seg.0,
        out.to_str().unwrap(),
        "--timeout",
        "60s",
    ]);
    wait_until_catching(&p, libc::SIGTERM);
    signal(&p, libc::SIGTERM);
    let (rc, err) = finish(p, LIMIT);
    assert_eq!(rc, 130, "{err}");
    assert!(!out.exists());
    assert_eq!(
        dir.entries(),
        vec!["in.bin".to_owned()],
        "no temporary file is left"
    );
}

/// `cat` waiting for a payload that never comes stops on Ctrl-C too (exit 130), rather than
/// ignoring it until its timeout.
#[test]
fn an_interrupted_cat_exits_130() {
    let seg = Seg::new("int_cat");
    let p = spawn(&["cat", &seg.0, "--timeout", "60s"]);
    wait_until_catching(&p, libc::SIGINT);
    signal(&p, libc::SIGINT);
    let (rc, err) = finish(p, LIMIT);
    assert_eq!(rc, 130, "{err}");
    assert!(err.contains("interrupted"), "{err}");
}
