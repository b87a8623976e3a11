//! Hostile and shrinking segments (issue 10), against the `shmbridge` command, as an attacker
//! on the same machine would try them: a segment shrunk while `recv` or `cat` copies it
//! (made deterministic: the receiver is stopped mid-copy with SIGSTOP, or blocked on a full
//! pipe, then the segment shrinks, then it goes on), a sparse segment on a full `/dev/shm`
//! (a private mount namespace with a tiny tmpfs), another user's segment under the awaited
//! name (`setpriv` as nobody), FIFOs and short segments, special files as targets, sources
//! whose metadata size is 0, names that are not printable or not UTF-8.

mod common;

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{run, wait_until, Dir, Proc, Seg, BIN};

fn is_root() -> bool {
    // SAFETY: plain libc query.
    unsafe { libc::geteuid() == 0 }
}

fn shm(name: &str) -> PathBuf {
    shmbridge::shm_dir().join(name)
}

/// Bytes written so far by process `pid` (`wchar` of `/proc/<pid>/io`).
fn written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar: ").map(|v| v.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

fn shrink(name: &str, to: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm(name))
        .unwrap()
        .set_len(to)
        .unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn code(out: &std::process::Output) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    out.status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn recv_stopped_mid_copy_then_shrunk_fails_as_truncated_never_sigbus() {
    let dir = Dir::new();
    let size = 64usize << 20;
    let (src, _) = dir.file("src", size, 1);
    let src = src.to_str().unwrap().to_owned();
    // The stop must land mid-copy: when the copy had already finished, try again.
    for attempt in 0..20 {
        let seg = Seg::new("stop");
        let out = dir.path(&format!("out{attempt}"));
        let sent = run(&["send", &src, "--name", &seg.0, "-q"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        let recv = Proc::spawn(BIN, &["recv", &seg.0, out.to_str().unwrap(), "-q"]);
        let pid = recv.0.id();
        wait_until("the receiver to start writing", || written(pid) > 0);
        recv.signal(libc::SIGSTOP);
        let at = written(pid);
        if at >= size as u64 {
            recv.signal(libc::SIGCONT);
            let _ = recv.finish();
            continue;
        }
        shrink(&seg.0, 0);
        recv.signal(libc::SIGCONT);
        let (rc, err) = recv.finish();
        assert_eq!(rc, 7, "exit 7 (truncated), not a signal: {err}");
        assert!(err.contains("truncated") && err.contains(&seg.0), "{err}");
        assert!(!out.exists(), "nothing delivered");
        return;
    }
    panic!("the receiver finished its copy before it could be stopped, 20 times");
}

/// Start `cat` (or a receiver writing to standard output) with its output on a pipe nobody
/// reads yet, so it blocks mid-copy once the pipe is full.
fn blocked_cat(name: &str) -> Proc {
    let child = Command::new(BIN)
        .args(["cat", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let p = Proc(child);
    let pid = p.0.id();
    // Blocked in write(2) to standard output (syscall 1 with fd 1 on x86-64; elsewhere the
    // wait channel names the pipe).
    wait_until("cat to block on its full pipe", || {
        let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        (cfg!(target_arch = "x86_64") && sc.starts_with("1 0x1 ")) || wchan.contains("pipe_w")
    });
    p
}

fn drain_and_finish(mut p: Proc) -> (i32, String) {
    let mut stdout = p.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
        sink.len()
    });
    let r = p.finish();
    let _ = reader.join();
    r
}

#[test]
fn cat_blocked_mid_copy_then_shrunk_fails_as_truncated_never_sigbus() {
    let dir = Dir::new();
    let (src, _) = dir.file("src", 8 << 20, 2);
    for to in [0u64, 4096 + 100] {
        let seg = Seg::new("cat");
        let sent = run(&["send", src.to_str().unwrap(), "--name", &seg.0, "-q"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        let cat = blocked_cat(&seg.0);
        shrink(&seg.0, to);
        let (rc, err) = drain_and_finish(cat);
        assert_eq!(rc, 7, "to {to}: exit 7 (truncated), not a signal: {err}");
        assert!(err.contains("truncated"), "{err}");
    }
}

#[test]
fn a_stream_shrunk_under_its_reader_fails_both_sides_cleanly() {
    let dir = Dir::new();
    let (src, _) = dir.file("src", 8 << 20, 3);
    let seg = Seg::new("stream");
    let sender = Proc::spawn(
        BIN,
        &[
            "send",
            src.to_str().unwrap(),
            "--name",
            &seg.0,
            "--stream",
            "--segment-size",
            "256K",
            "-q",
        ],
    );
    wait_until("the stream segment", || shm(&seg.0).exists());
    let cat = blocked_cat(&seg.0);
    // The header page stays (see the SIGBUS boundary in docs/ARCHITECTURE.md): the ring goes.
    shrink(&seg.0, 1000);
    let (rc, err) = drain_and_finish(cat);
    assert_eq!(rc, 7, "the reader: exit 7 (truncated): {err}");
    let (rc, err) = sender.finish();
    assert!(
        rc == 6 || rc == 7,
        "the sender fails too, without a signal: {rc} {err}"
    );
}

/// Run `script` with `sh` in a private mount namespace whose `/dev/shm` is a 4 MiB tmpfs;
/// `None` (skipped) without root or `unshare`.
fn in_private_dev_shm(script: &str, args: &[&str]) -> Option<std::process::Output> {
    if !is_root() {
        eprintln!("skipped: a private mount namespace needs root");
        return None;
    }
    let full = format!("mount -t tmpfs -o size=4m shmb_t_full /dev/shm || exit 99\n{script}");
    match Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &full, "sh"])
        .args(args)
        .output()
    {
        Ok(o) if o.status.code() == Some(99) => {
            eprintln!("skipped: cannot mount a tmpfs: {}", stderr(&o));
            None
        }
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("skipped: unshare: {e}");
            None
        }
    }
}

#[test]
fn sparse_segments_on_a_full_dev_shm_are_errors_never_sigbus() {
    let dir = Dir::new();
    // A framed header claiming a published, checksummed 3 MiB payload, to put over holes.
    let hdr_path = dir.path("hdr");
    {
        let seg = Seg::new("hdr");
        let f = shmbridge::FramedSegment::create(&seg.0, 16, &shmbridge::FramedOptions::default())
            .unwrap();
        f.write(b"x").unwrap();
        f.close_writer().unwrap();
        let mut hdr = vec![0u8; 128];
        f.region().read_at(0, &mut hdr).unwrap();
        hdr[24..32].copy_from_slice(&(3u64 << 20).to_le_bytes());
        hdr[32..40].copy_from_slice(&(3u64 << 20).to_le_bytes());
        std::fs::write(&hdr_path, &hdr).unwrap();
    }
    let script = r#"
        bin="$1"; hdr="$2"; out="$3"
        truncate -s 8M /dev/shm/sparse
        cp "$hdr" /dev/shm/framed && truncate -s $((128 + 3145728)) /dev/shm/framed
        dd if=/dev/zero of=/dev/shm/filler bs=64k 2>/dev/null
        "$bin" cat sparse >/dev/null 2>&1; echo "cat-sparse=$?"
        "$bin" recv sparse "$out" -q 2>/dev/null; echo "recv-sparse=$?"
        "$bin" cat framed >/dev/null 2>&1; echo "cat-framed=$?"
        "$bin" recv framed "$out" -q --keep 2>/dev/null; echo "recv-framed=$?"
        "$bin" info framed >/dev/null 2>&1; echo "info-framed=$?"
        "$bin" ls >/dev/null 2>&1; echo "ls=$?"
    "#;
    let out_path = dir.path("out");
    let Some(out) = in_private_dev_shm(
        script,
        &[BIN, hdr_path.to_str().unwrap(), out_path.to_str().unwrap()],
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "cat-sparse=7",
        "recv-sparse=7",
        "cat-framed=7",
        "recv-framed=7",
        "info-framed=0",
        "ls=0",
    ] {
        assert!(
            text.contains(want),
            "want {want}:\n{text}\n{}",
            stderr(&out)
        );
    }
    assert!(!out_path.exists());
}

/// Run the command as user nobody (`setpriv`); `None` (skipped) without root or setpriv.
fn as_nobody(args: &[&str]) -> Option<std::process::Output> {
    if !is_root() {
        eprintln!("skipped: playing another user needs root");
        return None;
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("skipped: setpriv: {e}");
            None
        }
    }
}

/// A file user nobody can read.
fn world_readable(dir: &Dir, data: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.path("evil");
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn recv_refuses_a_segment_another_user_planted_under_the_name() {
    let dir = Dir::new();
    let evil = world_readable(&dir, b"nobody's bytes");
    let seg = Seg::new("job");
    let Some(sent) = as_nobody(&[
        "send",
        evil.to_str().unwrap(),
        "--name",
        &seg.0,
        "--mode",
        "644",
        "-q",
    ]) else {
        return;
    };
    assert!(sent.status.success(), "nobody's send: {}", stderr(&sent));
    let out = dir.path("out");
    let r = run(&["recv", &seg.0, out.to_str().unwrap(), "--timeout", "10s"]);
    assert_eq!(code(&r), 8, "refused (permission): {}", stderr(&r));
    assert!(stderr(&r).contains("uid 65534"), "{}", stderr(&r));
    assert!(!out.exists(), "root did not take nobody's bytes");
    assert!(shm(&seg.0).exists(), "the planted segment is left alone");
    let c = run(&["cat", &seg.0]);
    assert_eq!(code(&c), 8, "{}", stderr(&c));
    assert!(c.stdout.is_empty());
}

#[test]
fn recv_takes_another_users_segment_when_allowed() {
    let dir = Dir::new();
    let evil = world_readable(&dir, b"nobody's bytes");
    for allow in ["65534", "any"] {
        let seg = Seg::new("allowed");
        let Some(sent) = as_nobody(&[
            "send",
            evil.to_str().unwrap(),
            "--name",
            &seg.0,
            "--permissions",
            "644",
            "-q",
        ]) else {
            return;
        };
        assert!(sent.status.success(), "{}", stderr(&sent));
        let out = dir.path("out");
        let r = run(&[
            "recv",
            &seg.0,
            out.to_str().unwrap(),
            "--allow-owner",
            allow,
            "-q",
        ]);
        assert!(r.status.success(), "{}", stderr(&r));
        assert_eq!(std::fs::read(&out).unwrap(), b"nobody's bytes");
    }
}

#[test]
fn a_fifo_under_the_name_fails_at_once() {
    let seg = Seg::new("fifo");
    mkfifo(&shm(&seg.0));
    let dir = Dir::new();
    for args in [
        vec!["recv", &seg.0, "OUT", "--timeout", "1h"],
        vec!["cat", &seg.0, "--timeout", "1h"],
    ] {
        let out_path = dir.path("out");
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == "OUT" {
                    out_path.to_str().unwrap()
                } else {
                    a
                }
            })
            .collect();
        let r = Proc::spawn(BIN, &args);
        let (rc, err) = r.finish();
        assert_ne!(rc, 0, "{args:?}");
        assert!(rc < 128, "no signal: {rc}");
        assert!(err.contains("FIFO"), "{args:?}: {err}");
    }
    let info = run(&["info", &seg.0]);
    assert!(
        String::from_utf8_lossy(&info.stdout).contains("FIFO") || stderr(&info).contains("FIFO")
    );
}

#[test]
fn short_and_headerless_segments_are_bad_magic_exit_7_at_once() {
    let dir = Dir::new();
    for bytes in [
        &b"SHMBRIDG\x01\x00"[..],
        &[0u8; 4096][..],
        b"raw bytes, no header",
    ] {
        let seg = Seg::new("short");
        std::fs::write(shm(&seg.0), bytes).unwrap();
        let r = Proc::spawn(
            BIN,
            &[
                "recv",
                &seg.0,
                dir.path("out").to_str().unwrap(),
                "--timeout",
                "1h",
            ],
        );
        let (rc, err) = r.finish();
        assert_eq!(rc, 7, "{} bytes: {err}", bytes.len());
        assert!(err.contains("not a framed segment"), "{err}");
    }
}

#[test]
fn recv_refuses_targets_that_are_not_regular_files() {
    let dir = Dir::new();
    let (src, _) = dir.file("src", 1000, 4);
    let fifo = dir.path("fifo");
    mkfifo(&fifo);
    let sock = dir.path("sock");
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let sub = dir.path("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut targets = vec![fifo.clone(), sock.clone(), sub.clone()];
    if is_root() {
        let dev = dir.path("null");
        let c = std::ffi::CString::new(dev.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid path; a node like /dev/null inside our scratch directory.
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) } == 0 {
            targets.push(dev);
        }
    }
    let seg = Seg::new("target");
    assert!(
        run(&["send", src.to_str().unwrap(), "--name", &seg.0, "-q"])
            .status
            .success()
    );
    for t in &targets {
        let r = run(&["recv", &seg.0, t.to_str().unwrap(), "--timeout", "10s"]);
        assert_eq!(code(&r), 1, "{}: {}", t.display(), stderr(&r));
        assert!(shm(&seg.0).exists(), "nothing consumed");
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
    for t in &targets[3..] {
        assert!(std::fs::symlink_metadata(t)
            .unwrap()
            .file_type()
            .is_char_device());
    }
    // The segment itself.
    let itself = shm(&seg.0);
    let r = run(&["recv", &seg.0, itself.to_str().unwrap(), "--timeout", "10s"]);
    assert_eq!(code(&r), 1, "{}", stderr(&r));
    assert!(
        stderr(&r).contains("segment being received"),
        "{}",
        stderr(&r)
    );
    assert_eq!(
        std::fs::metadata(&itself).unwrap().len(),
        128 + 1000,
        "the segment is intact"
    );
}

#[test]
fn sources_whose_metadata_size_is_zero_arrive_whole() {
    let want = std::fs::read("/proc/version").unwrap();
    let dir = Dir::new();
    // One-shot, then streamed.
    let seg = Seg::new("procfs");
    let s = run(&["send", "/proc/version", "--name", &seg.0, "-q"]);
    assert!(s.status.success(), "{}", stderr(&s));
    let out = dir.path("out1");
    let r = run(&["recv", &seg.0, out.to_str().unwrap(), "-q"]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read(&out).unwrap(), want);

    let seg = Seg::new("procfs_st");
    let sender = Proc::spawn(
        BIN,
        &[
            "send",
            "/proc/version",
            "--name",
            &seg.0,
            "--stream",
            "--segment-size",
            "400",
            "-q",
        ],
    );
    let out = dir.path("out2");
    let r = run(&[
        "recv",
        &seg.0,
        out.to_str().unwrap(),
        "-q",
        "--timeout",
        "30s",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let (rc, err) = sender.finish();
    assert_eq!(rc, 0, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), want);

    // A file whose content differs per reader: non-empty is what can be checked.
    let seg = Seg::new("mountinfo");
    assert!(
        run(&["send", "/proc/self/mountinfo", "--name", &seg.0, "-q"])
            .status
            .success()
    );
    let out = dir.path("out3");
    assert!(run(&["recv", &seg.0, out.to_str().unwrap(), "-q"])
        .status
        .success());
    assert!(!std::fs::read(&out).unwrap().is_empty());
}

/// A name of raw bytes in `/dev/shm`, removed on drop.
struct RawName(PathBuf);
impl RawName {
    fn new(tail: &[u8]) -> Self {
        let mut raw = shmbridge::name::unique("shmb_t_cli_odd_").into_bytes();
        raw.extend_from_slice(tail);
        Self(shmbridge::shm_dir().join(std::ffi::OsStr::from_bytes(&raw)))
    }
}
impl Drop for RawName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn ls_json_shows_names_that_are_not_utf8() {
    let odd = RawName::new(b"\xff\xfe");
    std::fs::write(&odd.0, b"raw").unwrap();
    let r = run(&["ls", "--json"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8(r.stdout).expect("ls --json is UTF-8");
    assert!(
        text.contains("\\\\xff\\\\xfe"),
        "the name is listed, escaped:\n{text}"
    );
}

#[test]
fn ls_escapes_control_characters_in_names() {
    let odd = RawName::new(b"\x1b[2J\nfake row");
    std::fs::write(&odd.0, b"raw").unwrap();
    let r = run(&["ls"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        !text.contains('\u{1b}'),
        "no raw escape reaches the terminal"
    );
    assert!(text.contains("\\e[2J\\nfake row"), "{text}");
    assert!(
        !text.lines().any(|l| l.starts_with("fake row")),
        "no fake table row"
    );
}

#[test]
fn reap_removes_a_dead_segment_whose_name_is_not_utf8() {
    // A framed segment whose creator is gone, under a name that is not UTF-8.
    let odd = RawName::new(b"\xff");
    let seg = Seg::new("reap_src");
    {
        let f = shmbridge::FramedSegment::create(&seg.0, 16, &shmbridge::FramedOptions::default())
            .unwrap();
        let mut all = vec![0u8; 144];
        f.region().read_at(0, &mut all).unwrap();
        std::fs::write(&odd.0, &all).unwrap();
    }
    // Named by its raw bytes (as a shell passes them), so only this test's segments are touched.
    let r = Command::new(BIN)
        .args([
            "reap".as_ref(),
            "--all".as_ref(),
            odd.0.file_name().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(
        !odd.0.exists(),
        "reaped: {}",
        String::from_utf8_lossy(&r.stdout)
    );
    // A name that is not there is said, by name, with the not-found exit code.
    let r = run(&["reap", "shmb_t_cli_never_there"]);
    assert_eq!(r.status.code(), Some(3), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("\"shmb_t_cli_never_there\": no such segment"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn info_describes_a_symlink_itself() {
    let seg = Seg::new("link");
    std::os::unix::fs::symlink("/etc/passwd", shm(&seg.0)).unwrap();
    let r = run(&["info", &seg.0, "--json"]);
    let text = String::from_utf8_lossy(&r.stdout);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["size"], 11, "the link's own size: {text}");
    assert!(text.contains("symbolic link"), "{text}");
}
