//! The core across a real process boundary: children made by re-executing this test binary
//! (or by fork) open segments by name, write, truncate, and the parent observes.

mod common;

use std::time::Duration;

use common::{check, child, child_arg, pattern, TestSegment};
use shmbridge::{
    Access, ErrorKind, FramedOptions, FramedSegment, OpenMode, Region, Segment, SegmentOptions,
    ShmObject, Wait,
};

// ---- child entry points (no-ops in the normal run) -------------------------------------

#[test]
fn child_write_pattern() {
    let Some(name) = child_arg() else { return };
    let seg = Segment::open(&name, Access::ReadWrite).unwrap();
    let data = pattern(seg.len(), 7);
    seg.write_at(0, &data).unwrap();
}

#[test]
fn child_publish_framed() {
    let Some(name) = child_arg() else { return };
    let f = FramedSegment::open(&name, Access::ReadWrite).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    f.write(b"published by the child").unwrap();
}

#[test]
fn child_truncate() {
    let Some(arg) = child_arg() else { return };
    let (name, len) = arg.split_once(':').unwrap();
    let obj = ShmObject::open(name, OpenMode::OpenOnly, Access::ReadWrite, None).unwrap();
    obj.truncate(len.parse().unwrap()).unwrap();
}

#[test]
fn child_open_read_write() {
    let Some(name) = child_arg() else { return };
    let err = Segment::open(&name, Access::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    assert!(err.to_string().contains("permission denied"), "{err}");
    // Read-only is still allowed by mode 0644.
    Segment::open(&name, Access::ReadOnly).unwrap();
    println!("CHILD-OK");
}

// ---- the tests -------------------------------------------------------------------------

#[test]
fn child_process_writes_parent_reads() {
    let seg_name = TestSegment::new("xp");
    let seg = Segment::create(seg_name.name(), 3 * 4096 + 1).unwrap();
    check(
        &child("child_write_pattern", seg_name.name())
            .output()
            .unwrap(),
        "child",
    );
    assert_eq!(seg.to_vec().unwrap(), pattern(3 * 4096 + 1, 7));
}

#[test]
fn child_publish_wakes_parent_waiting_on_the_futex() {
    let seg_name = TestSegment::new("xpw");
    let f = FramedSegment::create(seg_name.name(), 1024, &FramedOptions::default()).unwrap();
    let seen = f.publish_count();
    let proc = child("child_publish_framed", seg_name.name())
        .spawn()
        .unwrap();
    let now = f
        .wait(seen, &mut Wait::timeout(Duration::from_secs(30)))
        .unwrap();
    assert_ne!(now, seen);
    assert_eq!(f.read().unwrap(), b"published by the child");
    check(&proc.wait_with_output().unwrap(), "child");
}

#[test]
fn segment_truncated_by_another_process_below_its_header_is_an_error() {
    let seg_name = TestSegment::new("xpt");
    let f = FramedSegment::create(seg_name.name(), 2 * 4096, &FramedOptions::default()).unwrap();
    f.write(b"before").unwrap();
    check(
        &child("child_truncate", &format!("{}:64", seg_name.name()))
            .output()
            .unwrap(),
        "child",
    );
    for err in [
        f.read().unwrap_err(),
        f.header().unwrap_err(),
        FramedSegment::open(seg_name.name(), Access::ReadOnly).unwrap_err(),
    ] {
        assert!(
            matches!(err.kind(), ErrorKind::Truncated | ErrorKind::BadMagic),
            "{err}"
        );
        assert!(err.to_string().contains(seg_name.name()), "{err}");
    }
    // Truncated below the magic: an opener sees "too small", not a crash.
    let err = FramedSegment::open(seg_name.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
}

#[test]
fn payload_truncated_by_another_process_is_an_error() {
    let seg_name = TestSegment::new("xpt2");
    let f = FramedSegment::create(seg_name.name(), 4 * 4096, &FramedOptions::default()).unwrap();
    f.write(&pattern(4 * 4096, 1)).unwrap();
    check(
        &child("child_truncate", &format!("{}:4096", seg_name.name()))
            .output()
            .unwrap(),
        "child",
    );
    let err = f.read().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    let err = FramedSegment::open(seg_name.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
    assert!(err.to_string().contains("capacity"), "{err}");
}

#[test]
fn read_write_open_without_write_permission_is_permission_denied() {
    let seg_name = TestSegment::new("xpp");
    let opts = SegmentOptions {
        permissions: Some(0o644),
        ..SegmentOptions::default()
    };
    let _seg = Segment::open_with(seg_name.name(), OpenMode::CreateOnly, 100, &opts).unwrap();
    let mut cmd = child("child_open_read_write", seg_name.name());
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } == 0 {
        // Root bypasses permission bits: run the child as nobody. The test binary must be
        // reachable by that user; the target directory is world-readable.
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
    } else {
        ShmObject::open(seg_name.name(), OpenMode::OpenOnly, Access::ReadWrite, None)
            .unwrap()
            .set_permissions(0o444)
            .unwrap();
    }
    let out = cmd.output().unwrap();
    check(&out, "child as another user");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("CHILD-OK"),
        "the child test did not run"
    );
}

#[test]
fn anonymous_shared_mapping_is_shared_across_fork() {
    let region = Region::anonymous(100).unwrap();
    // SAFETY: the child only copies bytes into the mapping and calls _exit; it allocates
    // nothing and takes no locks, which is what is allowed after fork in a threaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = region.write_at(0, &[b'a'; 100]).is_ok();
        // SAFETY: _exit is async-signal-safe and ends the child without running destructors.
        unsafe { libc::_exit(i32::from(!ok)) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &raw mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(
        region.to_vec().unwrap(),
        vec![b'a'; 100],
        "the parent sees the child's write"
    );
}

#[test]
fn open_or_create_race_between_processes_creates_once() {
    let seg_name = TestSegment::new("xpr");
    let n = 6;
    let children: Vec<_> = (0..n)
        .map(|_| {
            child("child_open_or_create", seg_name.name())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut created = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        check(&out, "child");
        created += usize::from(String::from_utf8_lossy(&out.stdout).contains("CREATED"));
    }
    assert_eq!(created, 1, "exactly one process creates the segment");
    assert_eq!(
        Segment::open(seg_name.name(), Access::ReadOnly)
            .unwrap()
            .len(),
        4096
    );
}

#[test]
fn child_open_or_create() {
    let Some(name) = child_arg() else { return };
    let seg = Segment::open_or_create(&name, 4096).unwrap();
    if seg.object().created() {
        println!("CREATED");
    }
}
