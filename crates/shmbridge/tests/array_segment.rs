//! Array segments and array messages across real processes: a child writes, the parent reads;
//! copies are never torn while a writer publishes back to back (and never livelock); headers
//! planted in real segments and messages are refused with errors that name the segment.

#![allow(
    clippy::many_single_char_names, // w (writer), r (reader), v (view), e (error), h (header)
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation
)]

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{child, child_arg, TestSegment};
use shmbridge::array::{
    ArrayHeader, ArraySegment, Bool, Complex, DType, Order, ARRAY_SEGMENT_HEADER_LEN, F16,
};
use shmbridge::channel::{msg_flags, ChannelOptions, ChannelReader, ChannelWriter};
use shmbridge::{
    Access, ErrorKind, FramedOptions, FramedSegment, Kind, OwnerPolicy, RecvOptions, Segment, Wait,
};

fn minute() -> Wait<'static> {
    Wait::timeout(Duration::from_secs(60))
}

/// A child process killed (and reaped) when the test ends, pass or fail.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where the array header of an array segment starts.
const AH: u64 = ARRAY_SEGMENT_HEADER_LEN as u64;

#[test]
fn create_open_round_trip_every_dtype_both_orders() {
    for (i, dtype) in DType::ALL.iter().copied().enumerate() {
        for order in [Order::C, Order::F] {
            let seg = TestSegment::new(&format!("arr_rt{i}"));
            let w = ArraySegment::create(
                seg.name(),
                dtype,
                &[2, 3, 4],
                order,
                &FramedOptions::default(),
            )
            .unwrap();
            assert_eq!(w.framed().kind(), Kind::Array);
            let pattern: Vec<u8> = (0..w.data_len()).map(|b| (b % 251) as u8).collect();
            w.write_data(&pattern).unwrap();
            let r = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap();
            assert_eq!(r.dtype(), dtype);
            assert_eq!(r.shape(), &[2, 3, 4]);
            assert_eq!(r.header(), w.header());
            let isz = dtype.itemsize() as i64;
            let want: Vec<i64> = match order {
                Order::C => vec![12 * isz, 4 * isz, isz],
                Order::F => vec![isz, 2 * isz, 6 * isz],
            };
            assert_eq!(r.strides(), &want[..]);
            let (got, snap) = r.read_data().unwrap();
            assert_eq!(got, pattern);
            assert_eq!(snap.version, 1);
            assert_eq!(r.version(), 1);
            assert_eq!(r.data_ptr() as usize % 64, 0);
        }
    }
}

#[test]
fn typed_views_and_copies() {
    let seg = TestSegment::new("arr_typed");
    let w = ArraySegment::create(
        seg.name(),
        DType::Float32,
        &[3, 2],
        Order::F,
        &FramedOptions::default(),
    )
    .unwrap();
    {
        let mut wr = w.begin_write().unwrap();
        let s = wr.as_mut_slice::<f32>().unwrap();
        for (i, x) in s.iter_mut().enumerate() {
            *x = i as f32; // memory order: F, so element (i, j) is i + 3 j
        }
        assert_eq!(
            wr.as_mut_slice::<i32>().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        wr.publish().unwrap();
    }
    let r = ArraySegment::open(seg.name(), Access::ReadWrite).unwrap();
    // SAFETY: no write overlaps the view here.
    let v = unsafe { r.view::<f32>() }.unwrap();
    assert_eq!(v.shape(), &[3, 2]);
    assert_eq!(v.get(&[2, 1]), Some(&5.0));
    assert_eq!(v.get(&[1, 0]), Some(&1.0));
    // SAFETY: as above.
    let e = unsafe { r.view::<f64>() }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert_eq!(e.segment(), Some(seg.name()));
    // Logical (C) order copy.
    let (vals, _) = r.to_vec::<f32>().unwrap();
    assert_eq!(vals, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    // A wrong-length buffer is refused.
    let mut small = [0u8; 3];
    assert_eq!(
        r.read_data_into(&mut small).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // Element types that need wrappers.
    for (dtype, tag) in [
        (DType::Bool, "b"),
        (DType::Float16, "h"),
        (DType::Complex64, "c"),
    ] {
        let seg = TestSegment::new(&format!("arr_w{tag}"));
        let a = ArraySegment::create(seg.name(), dtype, &[4], Order::C, &FramedOptions::default())
            .unwrap();
        let mut wr = a.begin_write().unwrap();
        match dtype {
            DType::Bool => wr.as_mut_slice::<Bool>().unwrap()[1] = Bool::from(true),
            DType::Float16 => wr.as_mut_slice::<F16>().unwrap()[1] = F16::from_f32(1.5),
            _ => {
                wr.as_mut_slice::<Complex<f32>>().unwrap()[1] = Complex { re: 1.0, im: -2.0 };
            }
        }
        wr.publish().unwrap();
        let (bytes, _) = a.read_data().unwrap();
        assert!(bytes.iter().any(|&b| b != 0));
    }
}

#[test]
fn zero_d_and_empty_arrays() {
    let seg = TestSegment::new("arr_0d");
    let w = ArraySegment::create(
        seg.name(),
        DType::Int64,
        &[],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    w.write_data(&(-7i64).to_le_bytes()).unwrap();
    let r = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap();
    assert_eq!(r.shape(), &[] as &[u64]);
    assert_eq!(r.to_vec::<i64>().unwrap().0, vec![-7]);
    let seg = TestSegment::new("arr_empty");
    let w = ArraySegment::create(
        seg.name(),
        DType::UInt16,
        &[3, 0, 5],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    assert_eq!(w.data_len(), 0);
    w.publish().unwrap();
    let r = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap();
    assert_eq!(r.shape(), &[3, 0, 5]);
    assert!(r.to_vec::<u16>().unwrap().0.is_empty());
    assert_eq!(r.version(), 1);
}

#[test]
fn general_strides_from_a_header() {
    let seg = TestSegment::new("arr_strided");
    // A reversed 1-d view: element 0 is the last in memory.
    let h = ArrayHeader::with_strides(DType::Int32, &[4], &[-4]).unwrap();
    let w = ArraySegment::create_with_header(seg.name(), &h, &FramedOptions::default()).unwrap();
    let data: Vec<u8> = [1i32, 2, 3, 4]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    w.write_data(&data).unwrap();
    let r = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap();
    assert_eq!(r.strides(), &[-4]);
    assert_eq!(r.to_vec::<i32>().unwrap().0, vec![4, 3, 2, 1]);
}

#[test]
fn not_an_array_segment_and_not_a_file() {
    let seg = TestSegment::new("arr_msg");
    let _f = FramedSegment::create(seg.name(), 64, &FramedOptions::default()).unwrap();
    let e = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("not an array segment"), "{e}");
    assert_eq!(e.segment(), Some(seg.name()));

    let seg = TestSegment::new("arr_nofile");
    let _a = ArraySegment::create(
        seg.name(),
        DType::UInt8,
        &[8],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("shmb_arr_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("out.bin");
    let opts = RecvOptions {
        timeout: Some(Duration::from_secs(5)),
        ..RecvOptions::default()
    };
    let e = shmbridge::recv_file(seg.name(), &target, &opts).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("array segment"), "{e}");
    assert!(!target.exists());
    // The segment was left alone.
    assert!(ArraySegment::open(seg.name(), Access::ReadOnly).is_ok());
}

/// Plant a bad value in a real array segment's header, then expect `kind` from a reader.
fn planted(tag: &str, shape: &[u64], plant: impl FnOnce(&Segment), kind: ErrorKind, says: &str) {
    let seg = TestSegment::new(tag);
    let _w = ArraySegment::create(
        seg.name(),
        DType::Float32,
        shape,
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let raw = Segment::open(seg.name(), Access::ReadWrite).unwrap();
    plant(&raw);
    let e = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), kind, "{tag}: {e}");
    assert_eq!(e.segment(), Some(seg.name()), "{tag}: {e}");
    assert!(e.to_string().contains(says), "{tag}: {e}");
}

#[test]
fn bad_headers_planted_in_real_segments() {
    // too many dimensions
    planted(
        "arr_bad_ndim",
        &[2, 2],
        |s| s.set(AH + 18, 33u8).unwrap(),
        ErrorKind::Unsupported,
        "33",
    );
    // an unknown element type: float of 8 bits
    planted(
        "arr_bad_type",
        &[2, 2],
        |s| s.set(AH + 17, 8u8).unwrap(),
        ErrorKind::Unsupported,
        "",
    );
    planted(
        "arr_bad_kind",
        &[2, 2],
        |s| s.set(AH + 16, b'x').unwrap(),
        ErrorKind::Unsupported,
        "",
    );
    // shape × itemsize overflows
    planted(
        "arr_bad_ovf",
        &[2, 2],
        |s| {
            s.set(AH + 64, 1u64 << 40).unwrap();
            s.set(AH + 80, 1u64 << 40).unwrap();
        },
        ErrorKind::CorruptHeader,
        "",
    );
    // strides reaching outside the data area
    planted(
        "arr_bad_stride",
        &[2, 2],
        |s| s.set(AH + 72, 4096i64).unwrap(),
        ErrorKind::CorruptHeader,
        "",
    );
    planted(
        "arr_bad_neg",
        &[2, 2],
        |s| s.set(AH + 72, -8i64).unwrap(),
        ErrorKind::CorruptHeader,
        "",
    );
    // a data area that ends past the segment
    planted(
        "arr_bad_len",
        &[2, 2],
        |s| s.set(AH + 32, 1u64 << 20).unwrap(),
        ErrorKind::Truncated,
        "",
    );
    // not an array header at all
    planted(
        "arr_bad_magic",
        &[2, 2],
        |s| s.set(AH, 0u64).unwrap(),
        ErrorKind::BadMagic,
        "",
    );
}

#[test]
fn a_segment_shrunk_after_creation_is_an_error_not_a_signal() {
    let seg = TestSegment::new("arr_shrunk");
    let w = ArraySegment::create(
        seg.name(),
        DType::UInt8,
        &[64, 1024],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let r = ArraySegment::open(seg.name(), Access::ReadWrite).unwrap();
    let path = shmbridge::shm_dir().join(seg.name());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let e = r.read_data().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
    assert_eq!(e.segment(), Some(seg.name()));
    // SAFETY: the view is refused before it is made.
    let e = unsafe { r.view::<u8>() }.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
    assert_eq!(w.begin_write().unwrap_err().kind(), ErrorKind::Truncated);
    let e = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
    assert_eq!(e.segment(), Some(seg.name()));
}

// ---- across processes ------------------------------------------------------------------

/// Child: create an array segment of `n` u64s and publish `versions` versions, element i of
/// version v being `v * 1_000_000 + i`, each after the parent has seen the previous one
/// (the parent's copies reset the copy request, so the child waits for a reader to be ready
/// by watching a second, "ack", segment's version).
#[test]
fn child_versions() {
    let Some(arg) = child_arg() else { return };
    let mut it = arg.split(':');
    let name = it.next().unwrap().to_owned();
    let ack = it.next().unwrap().to_owned();
    let versions: u64 = it.next().unwrap().parse().unwrap();
    let w = ArraySegment::create(
        &name,
        DType::UInt64,
        &[16, 64],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let ack = ArraySegment::open_wait(
        &ack,
        Access::ReadOnly,
        &OwnerPolicy::default(),
        &mut minute(),
    )
    .unwrap();
    for v in 1..=versions {
        let mut wr = w.begin_write().unwrap();
        for (i, x) in wr.as_mut_slice::<u64>().unwrap().iter_mut().enumerate() {
            *x = v * 1_000_000 + i as u64;
        }
        wr.publish().unwrap();
        // Wait for the parent to say it saw version v.
        while ack.version() < v {
            ack.wait_next(&mut minute()).unwrap();
        }
    }
    w.close_writer().unwrap();
}

#[test]
fn a_child_writes_versions_the_parent_waits_and_copies() {
    let seg = TestSegment::new("arr_kid");
    let ack_seg = TestSegment::new("arr_ack");
    let ack = ArraySegment::create(
        ack_seg.name(),
        DType::UInt8,
        &[1],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let _kid = Kid(child(
        "child_versions",
        &format!("{}:{}:5", seg.name(), ack_seg.name()),
    )
    .spawn()
    .unwrap());
    // The parent starts first: it waits for the segment to appear.
    let r = ArraySegment::open_wait(
        seg.name(),
        Access::ReadOnly,
        &OwnerPolicy::default(),
        &mut minute(),
    )
    .unwrap();
    assert_eq!((r.dtype(), r.shape()), (DType::UInt64, &[16u64, 64][..]));
    let mut seen = 0;
    loop {
        // Version 1 may be there before the parent opened: copy first, then wait for the next.
        let (vals, snap) = r.to_vec::<u64>().unwrap();
        let v = vals[0] / 1_000_000;
        assert_eq!(snap.version, v);
        if v > seen {
            assert_eq!(v, seen + 1, "every version in turn");
            for (i, x) in vals.iter().enumerate() {
                assert_eq!(*x, v * 1_000_000 + i as u64, "a torn copy at {i}");
            }
            seen = v;
            ack.publish().unwrap();
        }
        match r.wait_next(&mut minute()) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WriterClosed => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(seen, 5);
}

/// Child: publish versions of a 1 MiB array back to back, every element of version v equal
/// to v, until the segment's name is removed (or a minute passes).
#[test]
fn child_hammer() {
    let Some(name) = child_arg() else { return };
    let w = ArraySegment::create(
        &name,
        DType::UInt64,
        &[128, 1024],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    println!("CREATED");
    let path = shmbridge::shm_dir().join(&name);
    let began = Instant::now();
    for v in 1u64.. {
        let mut wr = w.begin_write().unwrap();
        wr.as_mut_slice::<u64>().unwrap().fill(v);
        wr.publish().unwrap();
        if v % 64 == 0 && (!path.exists() || began.elapsed() > Duration::from_secs(60)) {
            break;
        }
    }
}

#[test]
fn copies_are_never_torn_while_a_writer_publishes_back_to_back() {
    let seg = TestSegment::new("arr_hammer");
    let _kid = Kid(child("child_hammer", seg.name()).spawn().unwrap());
    let r = ArraySegment::open_wait(
        seg.name(),
        Access::ReadWrite,
        &OwnerPolicy::default(),
        &mut minute(),
    )
    .unwrap();
    // Let the writer get going.
    r.wait_next(&mut minute()).unwrap();
    let mut buf = vec![0u8; r.data_len()];
    let mut last = 0u64;
    let mut distinct = 0;
    let mut copies = 0;
    // At least 100 copies, and on until the writer was seen to move on (a loaded machine may
    // not run it during the first 100; no timing is asserted).
    let began = Instant::now();
    while (copies < 100 || distinct < 2) && began.elapsed() < Duration::from_secs(30) {
        copies += 1;
        // Every copy succeeds (no livelock: the reader's copy request gets it a window) and
        // holds one version only.
        let snap = r.read_data_into(&mut buf).unwrap();
        let first = u64::from_le_bytes(buf[..8].try_into().unwrap());
        assert!(
            buf.chunks_exact(8)
                .all(|c| u64::from_le_bytes(c.try_into().unwrap()) == first),
            "a torn copy: it starts with version {first}"
        );
        assert!(first >= last, "version {first} after {last}");
        assert!(snap.version >= first);
        if first != last {
            distinct += 1;
        }
        last = first;
    }
    assert!(
        distinct > 1,
        "the writer published nothing new in 30 s ({copies} copies)"
    );
}

/// Child: begin a write and die in the middle of it.
#[test]
fn child_dies_mid_write() {
    let Some(name) = child_arg() else { return };
    let w = ArraySegment::create(
        &name,
        DType::UInt8,
        &[16],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let wr = w.begin_write().unwrap();
    std::mem::forget(wr);
    println!("DYING");
    std::process::exit(0);
}

#[test]
fn a_writer_dead_mid_write_makes_copies_time_out_not_hang() {
    let seg = TestSegment::new("arr_dead");
    let mut kid = child("child_dies_mid_write", seg.name()).spawn().unwrap();
    assert!(kid.wait().unwrap().success());
    let r = ArraySegment::open(seg.name(), Access::ReadWrite).unwrap();
    let e = r.read_data().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert_eq!(e.segment(), Some(seg.name()));
    // Waiting for a version: the writer is gone.
    let e = r.wait_next(&mut minute()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PeerGone, "{e}");
}

// ---- channel messages ------------------------------------------------------------------

fn chan_opts(max_message: u64) -> ChannelOptions {
    ChannelOptions {
        slots: 4,
        max_message,
        readers: 1,
        ..ChannelOptions::default()
    }
}

/// Child: send `n` array messages of shape (4, 8) float32, message k holding k + i / 100.
#[test]
fn child_array_sender() {
    let Some(arg) = child_arg() else { return };
    let (name, n) = arg.split_once(':').unwrap();
    let n: u32 = n.parse().unwrap();
    let mut w = ChannelWriter::create(name, &chan_opts(4096)).unwrap();
    w.wait_for_readers(1, &mut minute()).unwrap();
    for k in 0..n {
        let mut loan = w
            .loan_array(&[4, 8], DType::Float32, &mut minute())
            .unwrap();
        for (i, x) in loan.as_mut_slice::<f32>().unwrap().iter_mut().enumerate() {
            *x = k as f32 + i as f32 / 100.0;
        }
        loan.publish(k).unwrap();
    }
    w.send(b"not an array", 99, &mut minute()).unwrap();
}

#[test]
fn array_messages_from_a_child_process() {
    let seg = TestSegment::new("arr_chan");
    let _kid = Kid(child("child_array_sender", &format!("{}:6", seg.name()))
        .spawn()
        .unwrap());
    let r = ChannelReader::open(seg.name(), &mut minute()).unwrap();
    for k in 0..6u32 {
        let m = r.recv(&mut minute()).unwrap();
        assert_eq!(m.info().tag, k);
        assert_ne!(m.info().flags & msg_flags::ARRAY, 0);
        let v = m.array::<f32>().unwrap();
        assert_eq!(v.shape(), &[4, 8]);
        assert_eq!(v.get(&[1, 2]), Some(&(k as f32 + 10.0 / 100.0)));
        let h = m.array_header().unwrap();
        assert_eq!(h.dtype(), DType::Float32);
        let (_, data) = m.array_bytes().unwrap();
        assert_eq!(data.len(), 128);
        assert_eq!(
            m.array::<f64>().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    let m = r.recv(&mut minute()).unwrap();
    let e = m.array_header().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.to_string().contains("no array header"), "{e}");
    assert_eq!(e.segment(), Some(seg.name()));
}

#[test]
fn array_loans_in_process_raw_forms_and_limits() {
    let seg = TestSegment::new("arr_loans");
    let mut w = ChannelWriter::create(seg.name(), &chan_opts(1024)).unwrap();
    let r = ChannelReader::open(seg.name(), &mut minute()).unwrap();
    // Too large for a slot.
    let e = w
        .loan_array(&[1024], DType::UInt8, &mut minute())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfBounds, "{e}");
    assert!(e.to_string().contains("max_message"), "{e}");
    assert_eq!(e.segment(), Some(seg.name()));
    // Raw form: F-order header, published by the writer.
    let h = ArrayHeader::new(DType::Int16, &[2, 3], Order::F).unwrap();
    let loan = w.try_loan_array_raw(&h).unwrap().unwrap();
    assert_eq!(loan.data_ptr() as usize % 64, 0);
    let bytes: Vec<u8> = (0i16..6).flat_map(i16::to_le_bytes).collect();
    // SAFETY: the claimed slot's data area holds 12 bytes.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), loan.data_ptr(), 12) };
    w.publish_array_raw(&loan, 7).unwrap();
    let m = r.try_recv().unwrap().unwrap();
    let v = m.array::<i16>().unwrap();
    assert_eq!(v.strides(), &[2, 4]);
    assert_eq!(v.get(&[1, 2]), Some(&5));
    drop(m);
    // 0-d and empty arrays travel too.
    w.loan_array(&[], DType::Float64, &mut minute())
        .unwrap()
        .publish(0)
        .unwrap();
    w.loan_array(&[0, 3], DType::Float64, &mut minute())
        .unwrap()
        .publish(0)
        .unwrap();
    let m = r.try_recv().unwrap().unwrap();
    assert_eq!(m.array::<f64>().unwrap().shape(), &[] as &[u64]);
    drop(m);
    let m = r.try_recv().unwrap().unwrap();
    assert!(m.array::<f64>().unwrap().is_empty());
    drop(m);
    // A dropped loan gives its slot back unpublished.
    drop(w.loan_array(&[4], DType::UInt8, &mut minute()).unwrap());
    assert!(r.try_recv().unwrap().is_none());
}

#[test]
fn bad_array_headers_in_messages() {
    let seg = TestSegment::new("arr_badmsg");
    let mut w = ChannelWriter::create(seg.name(), &chan_opts(1024)).unwrap();
    let r = ChannelReader::open(seg.name(), &mut minute()).unwrap();
    let good = ArrayHeader::new(DType::Float32, &[4, 4], Order::C)
        .unwrap()
        .encode();
    let cases: Vec<(Vec<u8>, usize, ErrorKind)> = {
        let mut out = Vec::new();
        let mut b = good.clone();
        b[18] = 33; // ndim
        out.push((b, 256, ErrorKind::Unsupported));
        let mut b = good.clone();
        b[16] = b'q'; // kind
        out.push((b, 256, ErrorKind::Unsupported));
        let mut b = good.clone();
        b[72..80].copy_from_slice(&1000i64.to_le_bytes()); // stride[0]
        out.push((b, 256, ErrorKind::CorruptHeader));
        let mut b = good.clone();
        b[64..72].copy_from_slice(&(1u64 << 62).to_le_bytes());
        b[80..88].copy_from_slice(&(1u64 << 62).to_le_bytes());
        out.push((b, 256, ErrorKind::CorruptHeader));
        // A message shorter than the header's data area says.
        out.push((good.clone(), 100, ErrorKind::Truncated));
        out
    };
    for (i, (bytes, len, kind)) in cases.into_iter().enumerate() {
        let loan = w.try_loan_raw(len).unwrap().unwrap();
        // SAFETY: the claimed slot holds max_message (1024) bytes.
        unsafe {
            std::ptr::write_bytes(loan.as_mut_ptr(), 0, len);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), loan.as_mut_ptr(), bytes.len().min(len));
        }
        w.publish_raw(&loan, len, 0, msg_flags::ARRAY).unwrap();
        let m = r.try_recv().unwrap().unwrap();
        let e = m.array::<f32>().unwrap_err();
        assert_eq!(e.kind(), kind, "case {i}: {e}");
        assert_eq!(e.segment(), Some(seg.name()), "case {i}");
        assert!(
            e.to_string().contains(&format!("message {i}")),
            "case {i}: {e}"
        );
    }
}

#[test]
fn other_users_array_segments_are_refused_unless_allowed() {
    const NOBODY: u32 = 65534;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: giving a segment to another user needs root");
        return;
    }
    let seg = TestSegment::new("arr_owner");
    let _w = ArraySegment::create(
        seg.name(),
        DType::UInt8,
        &[4],
        Order::C,
        &FramedOptions::default(),
    )
    .unwrap();
    let path = std::ffi::CString::new(format!("/dev/shm/{}", seg.name())).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::chown(path.as_ptr(), NOBODY, NOBODY) }, 0);
    let e = ArraySegment::open(seg.name(), Access::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("65534"), "{e}");
    let e = ArraySegment::open_wait(
        seg.name(),
        Access::ReadOnly,
        &OwnerPolicy::default(),
        &mut minute(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    let r = ArraySegment::open_with_owner(seg.name(), Access::ReadOnly, &OwnerPolicy::Any).unwrap();
    assert_eq!(r.shape(), &[4]);
    let r = ArraySegment::open_with_owner(
        seg.name(),
        Access::ReadOnly,
        &OwnerPolicy::Allow(vec![NOBODY]),
    )
    .unwrap();
    assert_eq!(r.dtype(), DType::UInt8);
}
