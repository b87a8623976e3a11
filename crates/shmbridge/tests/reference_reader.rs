//! The stdlib-only reference reader (`tests/reference/shmb_reader.py`, written from
//! docs/SPEC.md alone) against segments the core wrote: it must read every valid one exactly
//! and reject every invalid one with the same error the core gives.

mod common;

use std::process::Command;

use common::{pattern, python, repo_root, TestSegment};
use shmbridge::{Access, FramedOptions, FramedSegment, Segment, SegmentOptions};

struct Reading {
    ok: bool,
    stdout: String,
    payload: Vec<u8>,
}

fn reference_read(name: &str, layout: &str) -> Reading {
    let out_file = std::env::temp_dir().join(format!("{name}.out"));
    let out = Command::new(python())
        .arg(repo_root().join("tests/reference/shmb_reader.py"))
        .args([name, "--layout", layout, "--timeout", "0.5", "--out"])
        .arg(&out_file)
        .output()
        .expect("python3 runs");
    let payload = std::fs::read(&out_file).unwrap_or_default();
    let _ = std::fs::remove_file(&out_file);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "the reference reader crashed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Reading {
        ok: out.status.success(),
        stdout,
        payload,
    }
}

#[test]
fn reads_framed_payloads_of_every_size() {
    for len in [0usize, 1, 63, 4095, 4096, 4097, 100_000] {
        let seg_name = TestSegment::new("ref");
        let data = pattern(len, len as u8);
        let f = FramedSegment::create(seg_name.name(), len as u64 + 10, &FramedOptions::default())
            .unwrap();
        f.write(&data).unwrap();
        let r = reference_read(seg_name.name(), "framed");
        assert!(r.ok, "len {len}: {}", r.stdout);
        assert_eq!(r.payload, data, "len {len}");
        let h = f.header().unwrap();
        assert!(
            r.stdout
                .contains(&format!("\"checksum\": {}", h.checksum.unwrap())),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("\"sequence\": {}", h.sequence)),
            "{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains(&format!("\"creator_pid\": {}", std::process::id())),
            "{}",
            r.stdout
        );
        // SPEC 5.5, read with the standard library alone: the writer's liveness lock.
        assert!(r.stdout.contains("\"writer_alive\": true"), "{}", r.stdout);
        drop(f);
        let r = reference_read(seg_name.name(), "framed");
        assert!(
            r.stdout.contains("\"writer_alive\": false"),
            "the lock went with its handle: {}",
            r.stdout
        );
    }
}

#[test]
fn reads_size_prefixed_and_raw() {
    let seg_name = TestSegment::new("refsp");
    let data = pattern(12_345, 5);
    let _s = shmbridge::size_prefixed::create(seg_name.name(), &data, &SegmentOptions::default())
        .unwrap();
    let r = reference_read(seg_name.name(), "size-prefixed");
    assert!(r.ok, "{}", r.stdout);
    assert_eq!(r.payload, data);
    let r = reference_read(seg_name.name(), "raw");
    assert_eq!(r.payload.len(), 12_345 + 8);
}

/// Each corruption is rejected by the core and by the reference reader with the same error.
#[test]
fn rejects_what_the_core_rejects_with_the_same_error() {
    let cases: &[(&str, u64, &[u8], &str)] = &[
        ("bad magic", 0, b"NOTMAGIC", "bad_magic"),
        (
            "unknown major version",
            8,
            &2u16.to_le_bytes(),
            "unsupported_version",
        ),
        (
            "header_len below 128",
            12,
            &64u32.to_le_bytes(),
            "corrupt_header",
        ),
        (
            "header_len not a multiple of 64",
            12,
            &200u32.to_le_bytes(),
            "corrupt_header",
        ),
        (
            "header_len past the real size",
            12,
            &(1u32 << 20).to_le_bytes(),
            "truncated",
        ),
        (
            "capacity past the real size",
            24,
            &(1u64 << 40).to_le_bytes(),
            "truncated",
        ),
        (
            "payload_len past capacity",
            32,
            &1000u64.to_le_bytes(),
            "corrupt_header",
        ),
        (
            "payload does not match checksum",
            128,
            b"X",
            "checksum_mismatch",
        ),
        (
            "writer died mid-write (odd sequence)",
            40,
            &3u64.to_le_bytes(),
            "timeout",
        ),
    ];
    for (what, offset, bytes, expected) in cases {
        let seg_name = TestSegment::new("refbad");
        let f = FramedSegment::create(seg_name.name(), 100, &FramedOptions::default()).unwrap();
        f.write(b"some payload").unwrap();
        f.region().write_at(*offset, bytes).unwrap();
        let r = reference_read(seg_name.name(), "framed");
        assert!(
            !r.ok,
            "{what}: the reference reader accepted it: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(&format!("\"error\": \"{expected}\"")),
            "{what}: {}",
            r.stdout
        );
        let core_err = FramedSegment::open(seg_name.name(), Access::ReadOnly)
            .and_then(|f| f.read())
            .unwrap_err();
        let core_kind = format!("{:?}", core_err.kind()).to_lowercase();
        assert_eq!(
            core_kind,
            expected.replace('_', ""),
            "{what}: core says {core_err}"
        );
    }
}

#[test]
fn raw_segment_opened_as_framed_is_bad_magic_in_both() {
    let seg_name = TestSegment::new("refraw");
    let seg = Segment::create(seg_name.name(), 4096).unwrap();
    seg.write_at(0, b"just raw bytes").unwrap();
    let r = reference_read(seg_name.name(), "framed");
    assert!(r.stdout.contains("bad_magic"), "{}", r.stdout);
    let err = FramedSegment::open(seg_name.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(err.kind(), shmbridge::ErrorKind::BadMagic);
    assert!(err.to_string().contains("not a framed segment"), "{err}");
}
