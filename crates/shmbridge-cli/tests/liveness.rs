//! Liveness and readiness across real processes: a frozen peer is alive, a killed one is dead,
//! whatever PID namespace each runs in; a segment is never visible half made.
//!
//! Races are made deterministic with SIGSTOP: the sender is frozen at the first moment its
//! segment is visible, which is the window where an older version published a header before
//! its liveness fields. No timing assertions: only outcomes are checked.

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::{run, wait_until, Dir, Proc, Seg, BIN};

/// `reap` acts on every segment of the machine: the tests that run it take turns.
static REAPING: Mutex<()> = Mutex::new(());

fn exists(name: &str) -> bool {
    shmbridge::ShmObject::exists(name)
}

/// Freeze the sender as soon as its segment has a name, start the receiver, keep the sender
/// frozen across several liveness checks, then let it go: the transfer must complete.
fn frozen_sender_is_alive(stream: bool) {
    let dir = Dir::new();
    let seg = Seg::new(if stream { "frz_st" } else { "frz_os" });
    let (src, data) = dir.file("in", 3 << 20, 5);
    let out = dir.path("out");
    let src_s = src.to_str().unwrap();
    let mut args = vec!["-q", "send", src_s, "--name", &seg.0, "--timeout", "60s"];
    if stream {
        args.extend(["--stream", "--segment-size", "64K"]);
    }
    let sender = Proc::spawn(BIN, &args);
    wait_until("the segment to appear", || exists(&seg.0));
    sender.signal(libc::SIGSTOP);
    let mut receiver = Proc::spawn(
        BIN,
        &[
            "-q",
            "recv",
            &seg.0,
            out.to_str().unwrap(),
            "--timeout",
            "60s",
        ],
    );
    // Several liveness checks (one every 100 ms) see a stopped, not a dead, sender.
    std::thread::sleep(Duration::from_millis(800));
    if stream {
        assert!(
            receiver.running(),
            "the receiver gave up on a frozen sender"
        );
    }
    sender.signal(libc::SIGCONT);
    let (rc, err) = receiver.finish();
    assert_eq!(rc, 0, "receiver: {err}");
    let (sc, err) = sender.finish();
    assert_eq!(sc, 0, "sender: {err}");
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(!exists(&seg.0));
}

#[test]
fn a_stream_sender_frozen_in_the_window_is_not_dead() {
    frozen_sender_is_alive(true);
}

#[test]
fn a_one_shot_sender_frozen_before_publishing_is_not_dead() {
    frozen_sender_is_alive(false);
}

/// A sender killed at any moment leaves either nothing or a complete framed header whose
/// writer is visibly dead, and `reap` removes it; a receiver of it fails as "peer gone" (6)
/// or "writer closed" (6), never with partial data and never hanging.
#[test]
fn a_sender_killed_at_any_moment_never_leaves_a_headerless_segment() {
    let _turn = REAPING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Dir::new();
    let (src, _) = dir.file("in", 24 << 20, 9);
    let src_s = src.to_str().unwrap();
    let (mut nothing, mut framed) = (0, 0);
    for i in 0..100u64 {
        let seg = Seg::new("rk");
        let sender = Proc::spawn(BIN, &["-q", "send", src_s, "--name", &seg.0]);
        // A spread of moments: before the segment exists, while it is filled, after.
        std::thread::sleep(Duration::from_micros((i * 7919) % 40_000));
        sender.signal(libc::SIGKILL);
        let _ = sender.finish();
        if !exists(&seg.0) {
            nothing += 1;
            continue;
        }
        let info = run(&["info", "--json", &seg.0]);
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(
            info.status.success(),
            "{}",
            String::from_utf8_lossy(&info.stderr)
        );
        assert!(
            text.contains("\"layout\":\"framed/message\""),
            "a killed sender left something that is not a complete framed segment: {text}"
        );
        framed += 1;
        if !text.contains("\"state\":\"complete\"") {
            let out = dir.path("out");
            let r = run(&[
                "-q",
                "recv",
                &seg.0,
                out.to_str().unwrap(),
                "--timeout",
                "30s",
            ]);
            assert_eq!(
                r.status.code(),
                Some(6),
                "{}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert!(!out.exists());
        }
        // A failed receive removes what can never complete; reap removes a complete one.
        if exists(&seg.0) {
            let reaped = run(&["-q", "reap", "--all", &seg.0]);
            assert!(
                reaped.status.success(),
                "{}",
                String::from_utf8_lossy(&reaped.stderr)
            );
        }
        assert!(!exists(&seg.0), "reap removed the dead sender's segment");
    }
    eprintln!("100 kills: {nothing} left nothing, {framed} left a complete framed header");
    assert_eq!(nothing + framed, 100);
}

/// Whether this machine lets us make PID namespaces (root, or user namespaces allowed).
fn namespaces_available() -> bool {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn in_pid_namespace(args: &[&str]) -> Proc {
    let mut full = vec!["--pid", "--fork", "--mount-proc", BIN];
    full.extend_from_slice(args);
    Proc::spawn("unshare", &full)
}

/// Sender and receiver in two different PID namespaces that share `/dev/shm` (as containers
/// in one pod do): both see themselves as pid 1, yet each sees the other alive, `ls` (from a
/// third namespace) shows the waiting sender alive, `reap` leaves its segment alone, and the
/// file arrives, one-shot and streamed.
#[test]
fn transfers_ls_and_reap_work_across_pid_namespaces() {
    if !namespaces_available() {
        eprintln!("SKIPPED: cannot create PID namespaces here (unshare --pid needs privilege)");
        return;
    }
    let _turn = REAPING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = Dir::new();
    for stream in [false, true] {
        let seg = Seg::new(if stream { "ns_st" } else { "ns_os" });
        let (src, data) = dir.file("in", 5 << 20, 3);
        let out = dir.path(if stream { "out_st" } else { "out_os" });
        let src_s = src.to_str().unwrap();
        let mut args = vec!["-q", "send", src_s, "--name", &seg.0, "--timeout", "60s"];
        if stream {
            args.extend(["--stream", "--segment-size", "64K"]);
        }
        let sender = in_pid_namespace(&args);
        wait_until("the segment to appear", || exists(&seg.0));
        if stream {
            // The sender waits for its receiver: alive, seen from another namespace.
            let ls = in_pid_namespace(&["ls", "--json"]).finish();
            assert_eq!(ls.0, 0, "{}", ls.1);
            let listed = run(&["info", "--json", &seg.0]);
            let text = String::from_utf8_lossy(&listed.stdout);
            assert!(text.contains("\"creator_alive\":true"), "{text}");
            assert!(
                text.contains("\"creator_pid\":1"),
                "the sender is pid 1 in its namespace: {text}"
            );
            let reap = in_pid_namespace(&["-q", "reap", &seg.0]).finish();
            assert_eq!(reap.0, 0, "{}", reap.1);
            assert!(
                exists(&seg.0),
                "reap in another namespace removed a live transfer"
            );
        }
        let receiver = in_pid_namespace(&[
            "-q",
            "recv",
            &seg.0,
            out.to_str().unwrap(),
            "--timeout",
            "60s",
        ]);
        let (rc, err) = receiver.finish();
        assert_eq!(rc, 0, "receiver in its own PID namespace: {err}");
        let (sc, err) = sender.finish();
        assert_eq!(sc, 0, "sender in its own PID namespace: {err}");
        assert_eq!(std::fs::read(&out).unwrap(), data);
        assert!(!exists(&seg.0));
    }
}
