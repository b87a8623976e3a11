//! Hostile and shrinking segments (issue 10), against the core: another process (here, a
//! second handle or a callback at a chosen moment) shrinks a segment mid-copy, a sparse
//! segment is read on a full `/dev/shm` (a private mount namespace with a tiny tmpfs), other
//! users' segments, FIFOs and short segments under a name a receiver waits for, special files
//! as targets, sources whose metadata size is 0. Every case must end in an error naming the
//! segment (or the right data), never a signal, a hang or a silent success.

mod common;

use std::ops::ControlFlow;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{child, child_arg, pattern, TestSegment};
use shmbridge::{
    recv_file, recv_file_with_owner, send_file, Access, ErrorKind, FramedOptions, FramedSegment,
    OpenMode, OwnerPolicy, ProgressFn, RecvOptions, Segment, SendOptions, ShmObject, StreamReader,
    StreamWriter, TransferMode, Wait,
};

/// A scratch directory removed on drop.
struct Dir(PathBuf);
impl Dir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(shmbridge::name::unique("shmb_t_hostile_"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_root() -> bool {
    // SAFETY: plain libc query.
    unsafe { libc::geteuid() == 0 }
}

fn shm_path(name: &str) -> PathBuf {
    shmbridge::shm_dir().join(name)
}

/// A progress callback that, the first time some bytes have moved, shrinks the segment `name`
/// to `to` bytes through a second handle — another process's `ftruncate` at a known moment.
fn shrink_once(name: &str, to: u64) -> (ProgressFn, Arc<AtomicBool>) {
    let name = name.to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let f: ProgressFn = Arc::new(move |p| {
        if p.done > 0 && !flag.swap(true, Ordering::SeqCst) {
            let other =
                ShmObject::open(&name, OpenMode::OpenOnly, Access::ReadWrite, None).unwrap();
            other.truncate(to).unwrap();
        }
        ControlFlow::Continue(())
    });
    (f, done)
}

fn quick() -> RecvOptions {
    RecvOptions {
        timeout: Some(Duration::from_secs(30)),
        ..RecvOptions::default()
    }
}

#[test]
fn a_one_shot_receive_whose_segment_shrinks_mid_copy_fails_as_truncated() {
    let dir = Dir::new();
    let data = pattern(8 << 20, 3);
    let src = dir.file("src", &data);
    // Shrunk to nothing (the header page too) and shrunk inside the payload.
    for to in [0u64, 4096 + 1000] {
        let seg = TestSegment::new("shrink_recv");
        send_file(&src, seg.name(), &SendOptions::default()).unwrap();
        let (progress, fired) = shrink_once(seg.name(), to);
        let out = dir.path("out");
        let err = recv_file(
            seg.name(),
            &out,
            &RecvOptions {
                progress: Some(progress),
                ..quick()
            },
        )
        .unwrap_err();
        assert!(fired.load(Ordering::SeqCst), "the shrink happened mid-copy");
        assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
        assert!(err.to_string().contains(seg.name()), "{err}");
        assert!(!out.exists(), "nothing is delivered");
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}

#[test]
fn receiving_to_a_descriptor_whose_segment_shrinks_mid_copy_fails_as_truncated() {
    let dir = Dir::new();
    let src = dir.file("src", &pattern(4 << 20, 5));
    let seg = TestSegment::new("shrink_cat");
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    let (progress, _) = shrink_once(seg.name(), 0);
    let out = std::fs::File::create(dir.path("out")).unwrap();
    let err = shmbridge::recv_to_fd(
        seg.name(),
        std::os::fd::AsFd::as_fd(&out),
        &RecvOptions {
            progress: Some(progress),
            ..quick()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
}

#[test]
fn a_stream_receiver_whose_segment_shrinks_mid_stream_fails_as_truncated() {
    let dir = Dir::new();
    let data = pattern(4 << 20, 7);
    let src = dir.file("src", &data);
    // Not to 0: the sender (a thread of this process) sleeps on a futex word in the header
    // page, and a segment shrunk below its header page while a peer waits on it is the one
    // place a SIGBUS remains (docs/ARCHITECTURE.md, "The SIGBUS boundary").
    for to in [1000u64, 4096 + 100] {
        let seg = TestSegment::new("shrink_stream");
        let name = seg.name().to_owned();
        let src2 = src.clone();
        let sender = std::thread::spawn(move || {
            send_file(
                &src2,
                &name,
                &SendOptions {
                    mode: TransferMode::Stream,
                    segment_size: Some(384 + (256 << 10)),
                    timeout: Some(Duration::from_secs(30)),
                    ..SendOptions::default()
                },
            )
        });
        let (progress, fired) = shrink_once(seg.name(), to);
        let out = dir.path("out");
        let err = recv_file(
            seg.name(),
            &out,
            &RecvOptions {
                progress: Some(progress),
                ..quick()
            },
        )
        .unwrap_err();
        assert!(fired.load(Ordering::SeqCst));
        assert_eq!(err.kind(), ErrorKind::Truncated, "shrunk to {to}: {err}");
        assert!(!out.exists());
        let sent = sender.join().unwrap();
        assert!(sent.is_err(), "the sender fails too: {sent:?}");
    }
}

#[test]
fn a_sender_whose_segment_shrinks_mid_copy_fails_and_publishes_nothing() {
    let dir = Dir::new();
    let src = dir.file("src", &pattern(8 << 20, 9));
    for (mode, to) in [
        (TransferMode::OneShot, 0u64),
        (TransferMode::OneShot, 4096 + 10),
        (TransferMode::Stream, 0),
        (TransferMode::Stream, 1000),
    ] {
        let seg = TestSegment::new("shrink_send");
        let (progress, fired) = shrink_once(seg.name(), to);
        let err = send_file(
            &src,
            seg.name(),
            &SendOptions {
                mode,
                segment_size: (mode == TransferMode::Stream).then_some(384 + (256 << 10)),
                timeout: Some(Duration::from_secs(30)),
                progress: Some(progress),
                ..SendOptions::default()
            },
        )
        .unwrap_err();
        assert!(fired.load(Ordering::SeqCst));
        assert_eq!(err.kind(), ErrorKind::Truncated, "{mode:?} to {to}: {err}");
        assert!(
            !ShmObject::exists(seg.name()),
            "the failed segment is removed"
        );
    }
}

#[test]
fn checked_reads_and_writes_of_a_shrunk_segment_are_errors_not_signals() {
    let seg = TestSegment::new("shrink_rw");
    let s = Segment::create(seg.name(), 1 << 20).unwrap();
    let other = ShmObject::open(seg.name(), OpenMode::OpenOnly, Access::ReadWrite, None).unwrap();
    other.truncate(8192).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    assert_eq!(
        s.read_at(0, &mut buf).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    assert_eq!(
        s.read_at(4096, &mut buf[..8192]).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    s.read_at(0, &mut buf[..8192]).unwrap();
    let err = s.write_at(100_000, b"past the end").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    assert_eq!(
        other.size().unwrap(),
        8192,
        "a write never re-grows a shrunk segment"
    );
    assert_eq!(
        s.fill(0, 1 << 20, 1).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    let p = shmbridge::size_prefixed::read(s.region());
    assert!(p.is_err() || p.unwrap().len() <= 8192 - 8);

    // A framed segment shrunk below its payload, and below its header.
    let fseg = TestSegment::new("shrink_framed");
    let f = FramedSegment::create(fseg.name(), 1 << 20, &FramedOptions::default()).unwrap();
    f.write(&pattern(1 << 20, 1)).unwrap();
    let o = ShmObject::open(fseg.name(), OpenMode::OpenOnly, Access::ReadWrite, None).unwrap();
    o.truncate(5000).unwrap();
    assert_eq!(f.read().unwrap_err().kind(), ErrorKind::Truncated);
    let mut out = vec![0u8; 1 << 20];
    assert_eq!(
        f.read_into_slice(&mut out).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    // A write reaching past the new end fails; a small one whose bytes are all still there
    // lands (the SIGBUS guard makes the fast path check nothing until a page is gone; without
    // the guard the size check before each write refuses it).
    assert_eq!(
        f.write(&pattern(1 << 20, 2)).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    let small = f.write(b"x");
    if f.region().is_guarded() {
        small.unwrap();
    } else {
        assert_eq!(small.unwrap_err().kind(), ErrorKind::Truncated);
    }
    o.truncate(0).unwrap();
    // Now the header page itself is gone: every access is an error, never a signal.
    assert_eq!(f.write(b"y").unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(f.read().unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(f.header().unwrap_err().kind(), ErrorKind::Truncated);
    assert_eq!(f.payload_len(), 0);
}

/// Run the body `what` of [`full_dev_shm_child`] in a private mount namespace whose
/// `/dev/shm` is a 4 MiB tmpfs that the child fills; `None` when this machine cannot (not
/// root, or no `unshare`).
fn in_full_dev_shm(what: &str) -> Option<std::process::Output> {
    if !is_root() {
        eprintln!("skipped: a private mount namespace needs root");
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=4m shmb_t_full /dev/shm && exec \"$0\" full_dev_shm_child --exact --nocapture --test-threads=1 --ignored {what}"
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .arg(exe)
        .env("SHMB_CHILD", what)
        .output();
    match out {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("skipped: unshare: {e}");
            None
        }
    }
}

#[test]
#[ignore = "helper: run by full_dev_shm_is_an_error_never_a_sigbus inside a private mount namespace"]
fn full_dev_shm_child() {
    let Some(what) = child_arg() else { return };
    assert!(
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("shmb_t_full /dev/shm")),
        "only ever run inside the private namespace"
    );
    // A segment sized with ftruncate alone (what the stdlib and Boost do): all holes. And a
    // framed header over holes, claiming a published, checksummed payload.
    let sparse = shm_path("sparse");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let framed = shm_path("framed");
    {
        let f = FramedSegment::create("framed_src", 64, &FramedOptions::default()).unwrap();
        f.write(b"x").unwrap();
        f.close_writer().unwrap();
        let mut hdr = vec![0u8; 128];
        f.region().read_at(0, &mut hdr).unwrap();
        hdr[24..32].copy_from_slice(&(6u64 << 20).to_le_bytes()); // capacity
        hdr[32..40].copy_from_slice(&(6u64 << 20).to_le_bytes()); // payload_len
        let file = std::fs::File::create(&framed).unwrap();
        file.set_len(128 + (6 << 20)).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &hdr, 0).unwrap();
        ShmObject::remove("framed_src").unwrap();
    }
    // Fill what is left.
    let mut filler = std::fs::File::create(shm_path("filler")).unwrap();
    let block = vec![1u8; 64 << 10];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    match what.as_str() {
        "read" => {
            let s = Segment::open("sparse", Access::ReadWrite).unwrap();
            let mut buf = vec![1u8; 8 << 20];
            s.read_at(0, &mut buf).unwrap();
            assert!(buf.iter().all(|&b| b == 0), "holes read as zeros");
            assert_eq!(s.get::<u64>(5 << 20).unwrap(), 0);
            assert_eq!(shmbridge::size_prefixed::read(s.region()).unwrap(), b"");
            let err = s.write_at(6 << 20, &vec![7u8; 100_000]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
            assert_eq!(s.set(7 << 20, 1u64).unwrap_err().kind(), ErrorKind::NoSpace);
            let err = FramedSegment::open("sparse", Access::ReadOnly).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadMagic, "{err}");
            let listed = shmbridge::list().unwrap();
            assert!(listed.iter().any(|i| i.name == "sparse"));
            println!("CHILD-OK");
        }
        "recv" => {
            let dir = Dir::new();
            let err = recv_file("framed", &dir.path("out"), &quick()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ChecksumMismatch, "{err}");
            let f = FramedSegment::open("framed", Access::ReadOnly).unwrap();
            assert_eq!(f.read().unwrap_err().kind(), ErrorKind::ChecksumMismatch);
            println!("CHILD-OK");
        }
        "send" => {
            // 4 MiB of tmpfs, nearly all filled: a 1 MiB one-shot send is refused before it
            // starts, saying what is missing, and leaves no segment behind.
            let dir = Dir::new();
            let src = dir.file("src", &pattern(1 << 20, 3));
            let before = shmbridge::list().unwrap().len();
            let err = send_file(&src, "big", &SendOptions::default()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NoSpace, "{err}");
            let text = err.to_string();
            assert!(
                text.contains("MiB missing") && text.contains("big"),
                "{text}"
            );
            assert!(!ShmObject::exists("big"));
            assert_eq!(shmbridge::list().unwrap().len(), before);
            println!("CHILD-OK");
        }
        other => panic!("unknown child {other}"),
    }
}

#[test]
fn full_dev_shm_is_an_error_never_a_sigbus() {
    for what in ["read", "recv", "send"] {
        let Some(out) = in_full_dev_shm(what) else {
            return;
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("CHILD-OK"),
            "{what}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = child; // the child runs through unshare, not through common::child
}

/// Give the segment `name` to user `uid` (root only).
fn chown_segment(name: &str, uid: u32) {
    let path =
        std::ffi::CString::new(shm_path(name).into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), uid, uid) }, 0);
}

#[test]
fn receivers_refuse_other_users_segments_unless_allowed() {
    const NOBODY: u32 = 65534;
    if !is_root() {
        eprintln!("skipped: giving a segment to another user needs root");
        return;
    }
    let dir = Dir::new();
    let src = dir.file("src", b"nobody's bytes");
    let seg = TestSegment::new("owner");
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    chown_segment(seg.name(), NOBODY);
    let out = dir.path("out");
    let err = recv_file(seg.name(), &out, &quick()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("uid 65534"), "{err}");
    assert!(!out.exists());
    assert!(
        ShmObject::exists(seg.name()),
        "a refused segment is left alone"
    );
    let other = OwnerPolicy::Allow(vec![12345]);
    let err = recv_file_with_owner(seg.name(), &out, &quick(), &other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    let r = recv_file_with_owner(
        seg.name(),
        &out,
        &quick(),
        &OwnerPolicy::parse("65534").unwrap(),
    )
    .unwrap();
    assert_eq!(r.bytes, 14);
    assert_eq!(std::fs::read(&out).unwrap(), b"nobody's bytes");

    // A stream reader, the same.
    let st = TestSegment::new("owner_stream");
    let mut w = StreamWriter::create(st.name(), 4096, Some(3), &FramedOptions::default()).unwrap();
    w.write(b"abc", &mut Wait::timeout(Duration::from_secs(10)))
        .unwrap();
    chown_segment(st.name(), NOBODY);
    let err = StreamReader::open(st.name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let mut wait = Wait::timeout(Duration::from_secs(10));
    let mut r =
        StreamReader::open_wait_with_owner(st.name(), &mut wait, &OwnerPolicy::Any).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(r.read(&mut buf, &mut wait).unwrap(), 3);
    drop(r);
    drop(w);
}

#[test]
fn owner_policies_parse_and_decide() {
    assert_eq!(OwnerPolicy::parse("any").unwrap(), OwnerPolicy::Any);
    assert_eq!(OwnerPolicy::parse("self").unwrap(), OwnerPolicy::SameUser);
    assert_eq!(
        OwnerPolicy::parse("1,2").unwrap(),
        OwnerPolicy::Allow(vec![1, 2])
    );
    assert_eq!(
        OwnerPolicy::parse("x").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // SAFETY: plain libc query.
    let me = unsafe { libc::geteuid() };
    assert!(OwnerPolicy::SameUser.allows(me));
    assert!(!OwnerPolicy::SameUser.allows(me.wrapping_add(1)));
    assert!(OwnerPolicy::Allow(vec![me.wrapping_add(1)]).allows(me.wrapping_add(1)));
    assert!(OwnerPolicy::Any.allows(me.wrapping_add(7)));
}

#[test]
fn a_fifo_under_a_segment_name_fails_at_once_in_every_open() {
    let seg = TestSegment::new("fifo");
    let path =
        std::ffi::CString::new(shm_path(seg.name()).into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    for access in [Access::ReadOnly, Access::ReadWrite] {
        let err = FramedSegment::open(seg.name(), access).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = Segment::open(seg.name(), access).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let mut wait = Wait::timeout(Duration::from_secs(3600));
        let err = FramedSegment::open_wait(seg.name(), access, &mut wait).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    }
    let dir = Dir::new();
    let long = RecvOptions {
        timeout: Some(Duration::from_secs(3600)),
        ..RecvOptions::default()
    };
    let err = recv_file(seg.name(), &dir.path("out"), &long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    match shmbridge::info(seg.name()).unwrap().detected {
        shmbridge::Detected::Unreadable(why) => assert!(why.contains("FIFO"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn segments_too_short_or_not_framed_are_bad_magic_at_once() {
    let long = RecvOptions {
        timeout: Some(Duration::from_secs(3600)),
        ..RecvOptions::default()
    };
    let dir = Dir::new();
    for bytes in [
        &b"SHMBRIDG\x01\x00"[..],
        b"SHMBRIDG",
        b"",
        &[0u8; 4096],
        b"plain raw bytes!",
    ] {
        let seg = TestSegment::new("short");
        std::fs::write(shm_path(seg.name()), bytes).unwrap();
        let mut wait = Wait::timeout(Duration::from_secs(3600));
        if !bytes.is_empty() {
            let err =
                FramedSegment::open_wait(seg.name(), Access::ReadOnly, &mut wait).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::BadMagic,
                "{} bytes: {err}",
                bytes.len()
            );
        }
        let err = recv_file(seg.name(), &dir.path("out"), &long).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::BadMagic | ErrorKind::InvalidSize),
            "{} bytes: {err}",
            bytes.len()
        );
    }
}

#[test]
fn recv_writes_only_regular_files() {
    let dir = Dir::new();
    let src = dir.file("src", b"payload");
    let fifo = dir.path("fifo");
    let c = std::ffi::CString::new(fifo.clone().into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sock = dir.path("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let sub = dir.path("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut targets = vec![fifo.clone(), sock.clone(), sub.clone()];
    let dev = dir.path("dev");
    if is_root() {
        let c = std::ffi::CString::new(dev.clone().into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; makes a node like /dev/null in our scratch dir.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(1, 3)) };
        if rc == 0 {
            targets.push(dev.clone());
        }
    }
    let seg = TestSegment::new("target");
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    for t in &targets {
        let err = recv_file(seg.name(), t, &quick()).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidArgument,
            "{}: {err}",
            t.display()
        );
        assert!(ShmObject::exists(seg.name()), "nothing was consumed");
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&sock)
        .unwrap()
        .file_type()
        .is_socket());
    assert!(sub.is_dir());
    if targets.contains(&dev) {
        assert!(std::fs::symlink_metadata(&dev)
            .unwrap()
            .file_type()
            .is_char_device());
    }
    // The segment itself as the target.
    let itself = shm_path(seg.name());
    let before = std::fs::metadata(&itself).unwrap().ino();
    let err = recv_file(seg.name(), &itself, &quick()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("segment being received"), "{err}");
    assert_eq!(
        std::fs::metadata(&itself).unwrap().ino(),
        before,
        "the segment is intact"
    );
    // And a regular target still works.
    let out = dir.path("out");
    recv_file(seg.name(), &out, &quick()).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"payload");
}

#[test]
fn sources_whose_metadata_size_is_zero_are_read_to_their_end() {
    let proc_file = Path::new("/proc/version");
    let want = std::fs::read(proc_file).unwrap();
    assert_eq!(
        std::fs::metadata(proc_file).unwrap().len(),
        0,
        "procfs reports 0 bytes"
    );
    assert!(!want.is_empty());
    let dir = Dir::new();
    for mode in [
        TransferMode::OneShot,
        TransferMode::Stream,
        TransferMode::Auto,
    ] {
        let seg = TestSegment::new("procfs");
        let name = seg.name().to_owned();
        let sender = std::thread::spawn(move || {
            send_file(
                proc_file,
                &name,
                &SendOptions {
                    mode,
                    segment_size: (mode == TransferMode::Stream).then_some(384 + 16),
                    timeout: Some(Duration::from_secs(30)),
                    ..SendOptions::default()
                },
            )
        });
        let out = dir.path("out");
        let r = recv_file(seg.name(), &out, &quick()).unwrap();
        let sent = sender.join().unwrap().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), want, "{mode:?}");
        assert_eq!(r.bytes, want.len() as u64);
        assert_eq!(sent.bytes, want.len() as u64);
        assert_eq!(r.crc32, sent.crc32);
    }
    // A genuinely empty file still goes as an empty payload.
    let seg = TestSegment::new("empty");
    let empty = dir.file("empty", b"");
    send_file(&empty, seg.name(), &SendOptions::default()).unwrap();
    let out = dir.path("out_empty");
    assert_eq!(recv_file(seg.name(), &out, &quick()).unwrap().bytes, 0);
    assert_eq!(std::fs::read(&out).unwrap(), b"");
}

/// The SIGBUS guard (`sys/linux_guard.rs`): a zero-copy access past the end of a segment that
/// another process shrank reads zeros instead of killing the process, and the next checked
/// operation on the mapping reports the shrink.
#[test]
fn a_zero_copy_access_past_a_shrunk_end_is_an_error_not_a_signal() {
    let seg = TestSegment::new("guard_view");
    let s = Segment::create(seg.name(), 1 << 20).unwrap();
    s.write_at(600_000, b"data").unwrap();
    assert!(
        s.region().is_guarded(),
        "the guard protects segments on Linux"
    );
    s.region().check_mapped().unwrap();
    let other = ShmObject::open(seg.name(), OpenMode::OpenOnly, Access::ReadWrite, None).unwrap();
    other.truncate(8192).unwrap();
    let p = s.region().as_mut_ptr();
    // SAFETY: inside the live mapping; this is the access a zero-copy view (numpy, C++) makes,
    // the one that raised SIGBUS before the guard.
    let (got, kept) = unsafe {
        let got = std::ptr::read_volatile(p.add(600_000));
        std::ptr::write_volatile(p.add(700_000), 7);
        (got, std::ptr::read_volatile(p.add(100)))
    };
    assert_eq!(got, 0, "a page past the end reads as zeros");
    assert_eq!(
        kept, 0,
        "a page still there reads what it holds (zeros here)"
    );
    let err = s.region().check_mapped().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    assert!(err.to_string().contains(seg.name()), "{err}");
    assert_eq!(
        other.size().unwrap(),
        8192,
        "the write went to a private page, not into the object"
    );
    // Checked copies report it too, whichever way they go.
    let mut buf = [0u8; 16];
    assert_eq!(
        s.read_at(600_000, &mut buf).unwrap_err().kind(),
        ErrorKind::Truncated
    );
    // A new mapping of the shrunk object is refused at open, as before.
    drop(s);
}

/// The guard takes only faults in the library's own mappings: any other SIGBUS still goes to
/// the handler before it (here Rust's), and then to the default action, which kills the
/// process with SIGBUS, as without the library.
#[test]
fn a_sigbus_outside_the_library_s_mappings_still_kills_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let dir = Dir::new();
    let out = child(
        "a_sigbus_outside_the_library_s_mappings_child",
        dir.0.to_str().unwrap(),
    )
    .output()
    .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGBUS),
        "the child must die of SIGBUS: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("guard installed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_sigbus_outside_the_library_s_mappings_child() {
    let Some(dir) = child_arg() else { return };
    // A segment first, so the guard is installed.
    let seg = TestSegment::new("guard_elsewhere");
    let s = Segment::create(seg.name(), 4096).unwrap();
    assert!(s.region().is_guarded());
    // The guard stays installed for the process; the segment goes now, since the fault below
    // kills this process before any destructor runs.
    drop(s);
    drop(seg);
    println!("guard installed");
    let path = std::ffi::CString::new(format!("{dir}/f")).unwrap();
    // SAFETY: a file of our own, mapped by hand (not through the library), then truncated and
    // read past its end: the fault the guard must not take.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 8192), 0);
        let p = libc::mmap(
            std::ptr::null_mut(),
            8192,
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::ftruncate(fd, 0), 0);
        let v = std::ptr::read_volatile(p.cast::<u8>().add(4096));
        println!("survived a fault outside the library: {v}");
    }
}
