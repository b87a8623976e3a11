//! `send_file` / `recv_file` in one process (sender and receiver on threads), and every bad input
//! the transfer issue lists. The kill tests, with real processes, are in
//! `crates/shmbridge-cli/tests/kill.rs`.

mod common;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{pattern, TestSegment};
use shmbridge::stream::StreamWriter;
use shmbridge::{
    recv_file, send_file, ErrorKind, FramedOptions, FramedSegment, Progress, ProgressFn,
    RecvOptions, Segment, SendOptions, TransferMode, Wait,
};

/// A scratch directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let p = std::env::temp_dir().join(shmbridge::name::unique("shmb_t_dir_"));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// Names in the directory (to check no temporary file was left).
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recv_opts(secs: u64) -> RecvOptions {
    RecvOptions {
        timeout: Some(Duration::from_secs(secs)),
        ..RecvOptions::default()
    }
}

#[test]
fn one_shot_round_trip_of_several_sizes() {
    let dir = Scratch::new();
    for (i, len) in [0usize, 1, 4095, 3 * 1024 * 1024 + 17]
        .into_iter()
        .enumerate()
    {
        let seg = TestSegment::new("xfer1");
        let data = pattern(len, i as u8);
        let src = dir.file(&format!("in{i}"), &data);
        let out = dir.path(&format!("out{i}"));
        let sent = send_file(&src, seg.name(), &SendOptions::default()).unwrap();
        assert_eq!(sent.mode, TransferMode::OneShot);
        assert_eq!(sent.bytes, len as u64);
        assert_eq!(sent.crc32, crc32fast::hash(&data));
        let got = recv_file(seg.name(), &out, &recv_opts(10)).unwrap();
        assert_eq!(got.bytes, len as u64);
        assert_eq!(got.crc32, sent.crc32);
        assert_eq!(std::fs::read(&out).unwrap(), data);
        assert!(
            !shmbridge::ShmObject::exists(seg.name()),
            "recv removes the segment"
        );
    }
    assert_eq!(
        dir.entries().len(),
        8,
        "no temporary file left: {:?}",
        dir.entries()
    );
}

#[test]
fn receiver_can_start_first_and_keep_leaves_the_segment() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_first");
    let data = pattern(100_000, 3);
    let src = dir.file("in", &data);
    let out = dir.path("out");
    let name = seg.name().to_owned();
    let out2 = out.clone();
    let rx = std::thread::spawn(move || {
        recv_file(
            &name,
            &out2,
            &RecvOptions {
                keep: true,
                ..recv_opts(20)
            },
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    rx.join().unwrap().unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), data);
    assert!(shmbridge::ShmObject::exists(seg.name()), "--keep keeps it");
}

#[test]
fn streaming_through_a_small_ring_with_progress() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_st");
    let data = pattern(3 * 1024 * 1024 + 5, 9);
    let src = dir.file("in", &data);
    let out = dir.path("out");
    let name = seg.name().to_owned();
    let out2 = out.clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Progress>::new()));
    let seen2 = Arc::clone(&seen);
    let rx = std::thread::spawn(move || {
        recv_file(
            &name,
            &out2,
            &RecvOptions {
                progress: Some(Arc::new(move |p| {
                    seen2.lock().unwrap().push(p);
                    ControlFlow::Continue(())
                })),
                ..recv_opts(20)
            },
        )
    });
    let opts = SendOptions {
        mode: TransferMode::Auto,
        segment_size: Some(64 * 1024),
        timeout: Some(Duration::from_secs(20)),
        ..SendOptions::default()
    };
    let sent = send_file(&src, seg.name(), &opts).unwrap();
    assert_eq!(
        sent.mode,
        TransferMode::Stream,
        "auto streams a file larger than the segment"
    );
    let got = rx.join().unwrap().unwrap();
    assert_eq!(got.mode, TransferMode::Stream);
    assert_eq!(got.crc32, crc32fast::hash(&data));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 10);
    assert_eq!(seen.last().unwrap().done, data.len() as u64);
    assert_eq!(seen.last().unwrap().total, Some(data.len() as u64));
    assert!(!shmbridge::ShmObject::exists(seg.name()));
}

#[test]
fn sending_a_directory_or_a_missing_or_unreadable_file_fails() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_bad");
    let err = send_file(&dir.0, seg.name(), &SendOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("is a directory"), "{err}");
    let err = send_file(&dir.path("missing"), seg.name(), &SendOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.file("secret", b"x");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = send_file(&p, seg.name(), &SendOptions::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    }
    let err = send_file(Path::new("/dev/null"), seg.name(), &SendOptions::default()).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(!shmbridge::ShmObject::exists(seg.name()), "nothing created");
}

#[test]
fn a_file_that_changes_size_while_being_sent_publishes_nothing() {
    let dir = Scratch::new();
    for stream in [false, true] {
        for grow in [false, true] {
            let seg = TestSegment::new("xfer_chg");
            let data = pattern(9 * 1024 * 1024, 1);
            let src = dir.file("changing", &data);
            let path = src.clone();
            let once = std::sync::Once::new();
            let opts = SendOptions {
                mode: if stream {
                    TransferMode::Stream
                } else {
                    TransferMode::OneShot
                },
                segment_size: Some(32 << 20),
                timeout: Some(Duration::from_secs(5)),
                progress: Some(Arc::new(move |_p| {
                    once.call_once(|| {
                        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                        f.set_len(if grow { 10 << 20 } else { 1 << 20 }).unwrap();
                    });
                    ControlFlow::Continue(())
                })),
                ..SendOptions::default()
            };
            let err = send_file(&src, seg.name(), &opts).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Changed, "{err}");
            assert_eq!(
                err.segment(),
                Some(src.display().to_string().as_str()),
                "{err}"
            );
            assert!(err.is_path(), "the file is named as a path: {err}");
            assert!(
                err.to_string().contains("changed while it was being sent"),
                "{err}"
            );
            assert!(
                !shmbridge::ShmObject::exists(seg.name()),
                "the segment is removed (stream {stream}, grow {grow})"
            );
        }
    }
}

#[test]
fn receiving_into_an_unwritable_directory_fails_before_consuming() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_ro");
    let src = dir.file("in", b"payload");
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    // SAFETY: geteuid has no preconditions.
    let target = if unsafe { libc::geteuid() } == 0 {
        // root writes anywhere on a normal filesystem; sysfs refuses even root.
        PathBuf::from("/sys/shmb_t_out")
    } else {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        ro.join("out")
    };
    let err = recv_file(seg.name(), &target, &recv_opts(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("temporary file"), "{err}");
    assert!(shmbridge::ShmObject::exists(seg.name()), "not consumed");
    let out = dir.path("out");
    recv_file(seg.name(), &out, &recv_opts(5)).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), b"payload");
}

#[test]
fn a_name_that_already_exists_is_refused_and_left_alone() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_exists");
    let other = Segment::create(seg.name(), 10).unwrap();
    other.write_at(0, b"theirs").unwrap();
    let src = dir.file("in", b"mine");
    for mode in [TransferMode::OneShot, TransferMode::Stream] {
        let err = send_file(
            &src,
            seg.name(),
            &SendOptions {
                mode,
                ..SendOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
    let mut buf = [0u8; 6];
    Segment::open(seg.name(), shmbridge::Access::ReadOnly)
        .unwrap()
        .read_at(0, &mut buf)
        .unwrap();
    assert_eq!(&buf, b"theirs");
}

#[test]
fn a_payload_whose_checksum_does_not_match_is_rejected_and_the_target_untouched() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_crc");
    let src = dir.file("in", &pattern(50_000, 5));
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    let raw = Segment::open(seg.name(), shmbridge::Access::ReadWrite).unwrap();
    raw.write_at(128 + 1234, b"\xff\xfe").unwrap();
    let out = dir.file("out", b"old contents");
    let err = recv_file(seg.name(), &out, &recv_opts(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChecksumMismatch, "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"old contents");
    assert_eq!(dir.entries(), ["in", "out"], "no temporary file left");
}

/// Child: create a stream, put some bytes in it, and die without ending it.
#[test]
fn child_stream_then_die() {
    let Some(name) = common::child_arg() else {
        return;
    };
    let mut w =
        StreamWriter::create(&name, 4096, Some(100_000), &FramedOptions::default()).unwrap();
    w.write(&pattern(3000, 2), &mut Wait::forever()).unwrap();
    // Exit without running destructors: as if killed, the stream stays unfinished and the
    // kernel drops the writer's liveness lock.
    std::process::exit(0);
}

#[test]
fn a_stream_whose_writer_vanished_is_rejected() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_gone");
    common::check(
        &common::child("child_stream_then_die", seg.name())
            .output()
            .unwrap(),
        "child",
    );
    let out = dir.path("out");
    let err = recv_file(seg.name(), &out, &recv_opts(10)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
    assert!(err.to_string().contains("died"), "{err}");
    assert!(!out.exists());
    assert!(dir.entries().is_empty(), "{:?}", dir.entries());
    assert!(
        !shmbridge::ShmObject::exists(seg.name()),
        "a receiver that finds the sender dead removes the stream"
    );
}

#[test]
fn an_aborted_or_unpublished_send_is_rejected() {
    let dir = Scratch::new();
    // A one-shot segment closed without a publish (a sender that failed).
    let seg = TestSegment::new("xfer_closed");
    let f = FramedSegment::create(seg.name(), 10, &FramedOptions::default()).unwrap();
    f.close_writer().unwrap();
    let err = recv_file(seg.name(), &dir.path("out"), &recv_opts(5)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriterClosed, "{err}");
    // A stream aborted by its writer: a receiver that attached fails, and the name is gone so
    // no later receiver starts on it.
    let seg2 = TestSegment::new("xfer_abort");
    let mut w = StreamWriter::create(seg2.name(), 4096, None, &FramedOptions::default()).unwrap();
    w.write(b"some", &mut Wait::forever()).unwrap();
    let mut early = shmbridge::StreamReader::open(seg2.name()).unwrap();
    w.abort();
    assert!(
        !shmbridge::ShmObject::exists(seg2.name()),
        "abort removes the name"
    );
    let mut buf = [0u8; 16];
    assert_eq!(early.read(&mut buf, &mut Wait::forever()).unwrap(), 4);
    let err = early.read(&mut buf, &mut Wait::forever()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
    let quick = RecvOptions {
        timeout: Some(Duration::from_millis(100)),
        ..RecvOptions::default()
    };
    let err = recv_file(seg2.name(), &dir.path("out"), &quick).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(dir.entries().is_empty());
}

#[test]
fn no_sender_times_out_and_a_raw_segment_is_not_a_transfer() {
    let dir = Scratch::new();
    let seg = TestSegment::new("xfer_none");
    let opts = RecvOptions {
        timeout: Some(Duration::from_millis(200)),
        ..RecvOptions::default()
    };
    let err = recv_file(seg.name(), &dir.path("out"), &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let raw = Segment::create(seg.name(), 4096).unwrap();
    raw.write_at(0, b"not framed").unwrap();
    let err = recv_file(seg.name(), &dir.path("out"), &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadMagic, "{err}");
    assert!(dir.entries().is_empty());
}

#[test]
fn a_read_only_view_can_wait_for_a_publish_and_a_close() {
    let seg = TestSegment::new("xfer_rowait");
    let writer = FramedSegment::create(seg.name(), 64, &FramedOptions::default()).unwrap();
    let reader = FramedSegment::open(seg.name(), shmbridge::Access::ReadOnly).unwrap();
    let seen = reader.publish_count();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        writer.write(b"hello").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        writer.close_writer().unwrap();
    });
    let now = reader
        .wait(seen, &mut Wait::timeout(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(reader.read().unwrap(), b"hello");
    let err = reader
        .wait(now, &mut Wait::timeout(Duration::from_secs(20)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WriterClosed);
    t.join().unwrap();
}

/// A progress callback that returns `Break` stops a transfer with `Aborted`, cleanly: a
/// sender removes its segment, a receiver leaves the target absent — also while either side
/// is only waiting for its peer (the callback is consulted at least every 100 ms then).
#[test]
fn progress_break_aborts_cleanly_on_both_sides() {
    let dir = Scratch::new();
    let data = pattern(2 * 1024 * 1024, 4);
    let src = dir.file("in", &data);
    let stop_after = |limit: u64| -> Option<ProgressFn> {
        Some(Arc::new(move |p: Progress| {
            if p.done >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }))
    };
    // Stops on its fifth call: a stream sender with no receiver fills its ring within the
    // first two and then only waits, so the later calls come from the wait itself.
    let stop_on_fifth_call = || -> Option<ProgressFn> {
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        Some(Arc::new(move |_p: Progress| {
            if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }))
    };
    for mode in [TransferMode::OneShot, TransferMode::Stream] {
        // Sender stopped mid-fill (one-shot) or while waiting for a receiver (stream).
        let seg = TestSegment::new("xfer_abort_tx");
        let opts = SendOptions {
            mode,
            segment_size: Some(256 * 1024),
            timeout: Some(Duration::from_secs(20)),
            progress: if mode == TransferMode::Stream {
                stop_on_fifth_call()
            } else {
                stop_after(512 * 1024)
            },
            ..SendOptions::default()
        };
        let started = std::time::Instant::now();
        let err = send_file(&src, seg.name(), &opts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Aborted, "{mode:?}: {err}");
        assert!(err.to_string().contains("aborted"), "{err}");
        assert!(
            !shmbridge::ShmObject::exists(seg.name()),
            "{mode:?}: the sender removes its segment"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{mode:?}: the stop is prompt"
        );
    }
    // Receiver stopped while waiting for a sender that never comes, and mid-transfer.
    let seg = TestSegment::new("xfer_abort_rx");
    let out = dir.path("out");
    let opts = RecvOptions {
        progress: stop_after(0),
        ..recv_opts(20)
    };
    let err = recv_file(seg.name(), &out, &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted, "{err}");
    assert!(!out.exists());
    send_file(&src, seg.name(), &SendOptions::default()).unwrap();
    let opts = RecvOptions {
        progress: stop_after(1),
        ..recv_opts(20)
    };
    let err = recv_file(seg.name(), &out, &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted, "{err}");
    assert!(!out.exists(), "the target is untouched");
    // The one-shot segment stays, so the transfer can be retried.
    let report = recv_file(seg.name(), &out, &recv_opts(20)).unwrap();
    assert_eq!(report.bytes, data.len() as u64);
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

/// A raw segment is not a sender still setting up: the receiver says what it is (bad magic)
/// at once instead of waiting for a header that never comes — also when the raw segment is
/// all zeros, once it has not been touched for the grace period.
#[test]
fn receiving_from_a_raw_segment_fails_at_once() {
    let dir = Scratch::new();
    let out = dir.path("out");
    for zeros in [false, true] {
        let seg = TestSegment::new("xfer_raw");
        let raw = Segment::create(seg.name(), 4096).unwrap();
        if zeros {
            // Last touched a minute ago, like a raw segment another program left there.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(shmbridge::shm_dir().join(seg.name()))
                .unwrap();
            f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
                .unwrap();
        } else {
            raw.write_at(0, b"raw data, not a header").unwrap();
        }
        let started = std::time::Instant::now();
        let err = recv_file(seg.name(), &out, &recv_opts(30)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadMagic, "zeros={zeros}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "zeros={zeros}: it did not wait"
        );
        assert!(!out.exists());
        assert!(
            shmbridge::ShmObject::exists(seg.name()),
            "someone else's segment is left alone"
        );
    }
}

#[test]
fn a_file_that_is_not_a_framed_segment_is_named_as_a_file() {
    let dir = Scratch::new();
    let small = dir.file("small", b"not framed");
    let region = shmbridge::map_file(&small, shmbridge::MapAccess::ReadOnly).unwrap();
    let err = FramedSegment::from_region(region).unwrap_err();
    assert!(err.is_path(), "{err}");
    assert_eq!(err.segment(), Some(small.display().to_string().as_str()));
    assert!(!err.to_string().starts_with("segment "), "{err}");
}
