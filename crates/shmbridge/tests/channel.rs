//! Channels across threads and real processes: every message to every live reader in order,
//! both policies, holds that protect views, dead readers and writers, bad input.
#![allow(clippy::many_single_char_names)] // w (writer), r (reader), o (options), a/b/c (held)

mod common;

use std::time::Duration;

use common::{child, child_arg, TestSegment};
use shmbridge::channel::{self, ChannelOptions, ChannelReader, ChannelWriter, Policy};
use shmbridge::{ErrorKind, FramedSegment, Wait};

fn opts(slots: u32, readers: u32, policy: Policy) -> ChannelOptions {
    ChannelOptions {
        slots,
        max_message: 4096,
        readers,
        policy,
        ..ChannelOptions::default()
    }
}

/// Message `i`: its length and bytes follow from `i`, so a reader can check any message alone.
fn message(i: u64) -> Vec<u8> {
    let len = 1 + (i * 7919 % 4000) as usize;
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

fn forever() -> Wait<'static> {
    Wait::timeout(Duration::from_secs(60))
}

#[test]
fn every_live_reader_gets_every_message_in_order() {
    let seg = TestSegment::new("ch_all");
    let mut w = ChannelWriter::create(seg.name(), &opts(8, 4, Policy::Block)).unwrap();
    let n = 5_000u64;
    let readers: Vec<_> = (0..3)
        .map(|_| ChannelReader::open(seg.name(), &mut forever()).unwrap())
        .collect();
    let handles: Vec<_> = readers
        .into_iter()
        .map(|r| {
            std::thread::spawn(move || {
                let mut got = 0u64;
                loop {
                    match r.recv(&mut forever()) {
                        Ok(m) => {
                            let info = *m.info();
                            assert_eq!(info.seq, got);
                            assert_eq!(info.tag, (got % 1000) as u32);
                            assert_eq!(info.lost, 0);
                            assert_eq!(&*m, &message(got)[..], "message {got}");
                            got += 1;
                        }
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::WriterClosed, "{e}");
                            return got;
                        }
                    }
                }
            })
        })
        .collect();
    for i in 0..n {
        w.send(&message(i), (i % 1000) as u32, &mut forever())
            .unwrap();
    }
    w.close();
    for h in handles {
        assert_eq!(h.join().unwrap(), n);
    }
}

#[test]
fn overwrite_never_waits_and_tells_the_reader_what_it_lost() {
    let seg = TestSegment::new("ch_ow");
    let mut w = ChannelWriter::create(seg.name(), &opts(4, 1, Policy::Overwrite)).unwrap();
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    for i in 0..100 {
        // A zero wait: the writer must never need to wait for the slow reader.
        w.send(&message(i), 0, &mut Wait::timeout(Duration::ZERO))
            .unwrap();
    }
    let first = r.try_recv().unwrap().unwrap();
    let seen = *first.info();
    assert!(
        seen.seq >= 96,
        "only the newest messages are left: {seen:?}"
    );
    assert_eq!(seen.lost, seen.seq, "it lost every message before");
    assert_eq!(&*first, &message(seen.seq)[..]);
    drop(first);
    let mut next = seen.seq + 1;
    while let Some(m) = r.try_recv().unwrap() {
        assert_eq!((m.info().seq, m.info().lost), (next, 0));
        next += 1;
    }
    assert_eq!(next, 100);
    let st = channel::status(w.framed()).unwrap();
    assert_eq!(st.reader_places[0].lost, seen.seq);
}

#[test]
fn a_held_message_is_never_overwritten() {
    let seg = TestSegment::new("ch_hold");
    let mut w = ChannelWriter::create(seg.name(), &opts(3, 1, Policy::Overwrite)).unwrap();
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    w.send(b"keep me", 1, &mut forever()).unwrap();
    let held = r.try_recv().unwrap().unwrap();
    for i in 0..50 {
        w.send(&message(i), 2, &mut Wait::timeout(Duration::ZERO))
            .unwrap();
    }
    assert_eq!(&*held, b"keep me", "the writer never reuses a held slot");
    drop(held);
    // Every slot held by the reader: the writer waits, and a wait that runs out says who
    // holds it up.
    let a = r.try_recv().unwrap().unwrap();
    let b = r.try_recv().unwrap().unwrap();
    while r.try_recv().unwrap().is_some() {}
    w.send(b"x", 0, &mut Wait::timeout(Duration::ZERO)).unwrap();
    let c = r.try_recv().unwrap().unwrap();
    assert_eq!(&*c, b"x");
    let err = w
        .send(b"y", 0, &mut Wait::timeout(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("reader 0") && err.to_string().contains("holds 3 message(s)"),
        "{err}"
    );
    drop((a, b, c));
    w.send(b"y", 0, &mut Wait::timeout(Duration::ZERO)).unwrap();
}

#[test]
fn block_waits_for_the_slowest_reader_and_names_it() {
    let seg = TestSegment::new("ch_block");
    let mut w = ChannelWriter::create(seg.name(), &opts(2, 2, Policy::Block)).unwrap();
    let fast = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    let slow = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    w.send(b"0", 0, &mut forever()).unwrap();
    w.send(b"1", 0, &mut forever()).unwrap();
    assert_eq!(&*fast.try_recv().unwrap().unwrap(), b"0");
    assert_eq!(&*fast.try_recv().unwrap().unwrap(), b"1");
    let err = w
        .send(b"2", 0, &mut Wait::timeout(Duration::from_millis(100)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        err.to_string().contains("reader 1") && err.to_string().contains("has not taken message 0"),
        "{err}"
    );
    drop(slow); // a reader that leaves no longer counts
    w.send(b"2", 0, &mut Wait::timeout(Duration::ZERO)).unwrap();
    assert_eq!(&*fast.try_recv().unwrap().unwrap(), b"2");
}

#[test]
fn a_late_reader_starts_with_the_next_message_or_its_history() {
    let seg = TestSegment::new("ch_hist");
    let mut o = opts(8, 2, Policy::Block);
    o.history = 3;
    let mut w = ChannelWriter::create(seg.name(), &o).unwrap();
    for i in 0..10 {
        w.send(&message(i), 0, &mut forever()).unwrap();
    }
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    let seqs: Vec<(u64, u64)> = std::iter::from_fn(|| r.try_recv().unwrap())
        .map(|m| (m.info().seq, m.info().lost))
        .collect();
    assert_eq!(seqs, [(7, 0), (8, 0), (9, 0)]);
    let seg2 = TestSegment::new("ch_next");
    let mut w2 = ChannelWriter::create(seg2.name(), &opts(8, 1, Policy::Block)).unwrap();
    w2.send(b"before", 0, &mut forever()).unwrap();
    let r2 = ChannelReader::open(seg2.name(), &mut forever()).unwrap();
    assert!(r2.try_recv().unwrap().is_none());
    w2.send(b"after", 0, &mut forever()).unwrap();
    assert_eq!(&*r2.try_recv().unwrap().unwrap(), b"after");
}

#[test]
fn bad_input_gets_clear_errors() {
    let seg = TestSegment::new("ch_bad");
    for (o, needle) in [
        (opts(1, 1, Policy::Block), "2 to"),
        (opts(4, 0, Policy::Block), "reader places"),
        (opts(4, 5000, Policy::Block), "reader places"),
        (
            ChannelOptions {
                max_message: 0,
                ..opts(4, 1, Policy::Block)
            },
            "max_message 0",
        ),
        (
            ChannelOptions {
                history: 4,
                ..opts(4, 1, Policy::Block)
            },
            "history",
        ),
    ] {
        let e = ChannelWriter::create(seg.name(), &o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
        assert!(!shmbridge::ShmObject::exists(seg.name()));
    }
    let mut w = ChannelWriter::create(seg.name(), &opts(2, 2, Policy::Block)).unwrap();
    let e = w.send(&[0u8; 4097], 0, &mut forever()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfBounds, "{e}");
    // Loans that are never published give their slot back.
    for _ in 0..10 {
        let mut loan = w.loan(10, &mut Wait::timeout(Duration::ZERO)).unwrap();
        loan.as_mut_slice().fill(1);
    }
    let _a = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    let _b = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    let e = ChannelReader::open(seg.name(), &mut forever()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert!(e.to_string().contains("2 reader places"), "{e}");
    // Not a channel.
    let other = TestSegment::new("ch_notch");
    let _f = FramedSegment::create(other.name(), 64, &shmbridge::FramedOptions::default()).unwrap();
    let e = ChannelReader::open(other.name(), &mut forever()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

#[test]
fn corrupt_queue_slots_and_layouts_are_errors_not_crashes() {
    let seg = TestSegment::new("ch_corrupt");
    let mut w = ChannelWriter::create(seg.name(), &opts(4, 1, Policy::Block)).unwrap();
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    w.send(b"fine", 0, &mut forever()).unwrap();
    let region = w.framed().region();
    let queue = region.get::<u64>(channel::offsets::QUEUE_OFF).unwrap();
    let slots = region.get::<u64>(channel::offsets::SLOTS_OFF).unwrap();
    let slot_size = region.get::<u64>(channel::offsets::SLOT_SIZE).unwrap();
    let k = u64::from(region.get::<u32>(queue + channel::offsets::Q_SLOT).unwrap());
    // A queue entry that points past the last slot.
    region.set(queue + channel::offsets::Q_SLOT, 99u32).unwrap();
    let e = r.try_recv().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{e}");
    assert!(e.to_string().contains("slot 99"), "{e}");
    region
        .set(queue + channel::offsets::Q_SLOT, k as u32)
        .unwrap();
    // A slot header that claims more than max_message.
    region
        .set(slots + k * slot_size + channel::offsets::S_LEN, 1u64 << 40)
        .unwrap();
    let e = r.try_recv().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{e}");
    assert!(e.to_string().contains("more than max_message"), "{e}");
    drop(r);
    // A layout that does not add up is refused at open.
    region.set(channel::offsets::SLOT_SIZE, 64u64).unwrap();
    let e = ChannelReader::open(seg.name(), &mut forever()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{e}");
    region.set(channel::offsets::SLOT_SIZE, slot_size).unwrap();
    region.set(channel::offsets::SLOTS, 1u32 << 20).unwrap();
    let e = ChannelReader::open(seg.name(), &mut forever()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{e}");
    region.set(channel::offsets::SLOTS, 4u32).unwrap();
    // A segment shrunk below what its layout needs.
    let obj = shmbridge::ShmObject::open(
        seg.name(),
        shmbridge::OpenMode::OpenOnly,
        shmbridge::Access::ReadWrite,
        None,
    )
    .unwrap();
    let size = obj.size().unwrap();
    drop(w);
    obj.truncate(size - 100).unwrap();
    let e = ChannelReader::open(seg.name(), &mut forever()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Truncated, "{e}");
}

#[test]
fn checksums_catch_a_changed_message() {
    let seg = TestSegment::new("ch_crc");
    let mut o = opts(4, 1, Policy::Block);
    o.checksum = true;
    let mut w = ChannelWriter::create(seg.name(), &o).unwrap();
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    w.send(b"checked", 0, &mut forever()).unwrap();
    assert_eq!(&*r.try_recv().unwrap().unwrap(), b"checked");
    w.send(b"tampered", 0, &mut forever()).unwrap();
    let region = w.framed().region();
    let slots = region.get::<u64>(channel::offsets::SLOTS_OFF).unwrap();
    let slot_size = region.get::<u64>(channel::offsets::SLOT_SIZE).unwrap();
    let header = u64::from(
        region
            .get::<u32>(channel::offsets::SLOT_HEADER_LEN)
            .unwrap(),
    );
    let queue = region.get::<u64>(channel::offsets::QUEUE_OFF).unwrap();
    let k = u64::from(
        region
            .get::<u32>(queue + 16 + channel::offsets::Q_SLOT)
            .unwrap(),
    );
    region
        .write_at(slots + k * slot_size + header, b"T")
        .unwrap();
    let e = r.try_recv().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChecksumMismatch, "{e}");
    w.send(b"next", 0, &mut forever()).unwrap();
    assert_eq!(
        &*r.try_recv().unwrap().unwrap(),
        b"next",
        "the bad one was skipped"
    );
}

// ---- across processes ------------------------------------------------------------------

/// Child: take a reader place, take one message and keep it, then die without letting go.
#[test]
fn child_reader_holds_and_dies() {
    let Some(name) = child_arg() else { return };
    let r = ChannelReader::open(&name, &mut forever()).unwrap();
    let m = r.recv(&mut forever()).unwrap();
    assert_eq!(&*m, b"first");
    println!("HOLDING");
    std::mem::forget(m);
    std::process::exit(0);
}

/// Child: write messages until killed, or until told how many.
#[test]
fn child_writer() {
    let Some(arg) = child_arg() else { return };
    let (name, count) = arg.split_once(':').unwrap();
    let count: u64 = count.parse().unwrap();
    let mut o = opts(8, 2, Policy::Block);
    o.checksum = true;
    let mut w = ChannelWriter::create(name, &o).unwrap();
    println!("CREATED");
    for i in 0..count {
        w.send(&message(i), i as u32, &mut forever()).unwrap();
    }
    if count < u64::MAX {
        std::process::exit(0); // no close: the writer "dies"
    }
}

#[test]
fn a_dead_reader_frees_its_place_and_never_blocks_the_writer() {
    let seg = TestSegment::new("ch_deadr");
    let mut w = ChannelWriter::create(seg.name(), &opts(2, 1, Policy::Block)).unwrap();
    let mut kid = child("child_reader_holds_and_dies", seg.name())
        .spawn()
        .unwrap();
    // Wait for the child's reader to be there, then give it a message.
    let wait = forever();
    while channel::status(w.framed())
        .unwrap()
        .reader_places
        .is_empty()
    {
        assert!(!wait.expired());
        std::thread::sleep(Duration::from_millis(5));
    }
    w.send(b"first", 0, &mut forever()).unwrap();
    assert!(kid.wait().unwrap().success());
    // Its place and its hold go with it: the writer goes on, and a new reader gets the place.
    for i in 0..10 {
        w.send(&message(i), 0, &mut forever()).unwrap();
    }
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    w.send(b"for the new reader", 0, &mut forever()).unwrap();
    assert_eq!(&*r.try_recv().unwrap().unwrap(), b"for the new reader");
}

#[test]
fn readers_tell_a_closed_channel_from_a_dead_writer() {
    let seg = TestSegment::new("ch_deadw");
    let mut kid = child("child_writer", &format!("{}:5", seg.name()))
        .spawn()
        .unwrap();
    let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
    assert!(kid.wait().unwrap().success());
    // The messages published before are still delivered (those the reader joined in time for).
    let mut last = None;
    let err = loop {
        match r.recv(&mut forever()) {
            Ok(m) => {
                assert_eq!(&*m, &message(m.info().seq)[..]);
                last = Some(m.info().seq);
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
    assert!(err.to_string().contains("died"), "{err}");
    assert!(last.is_none_or(|s| s == 4));
    // A closed one ends with WriterClosed.
    let seg2 = TestSegment::new("ch_closed");
    let mut w = ChannelWriter::create(seg2.name(), &opts(4, 1, Policy::Block)).unwrap();
    let r2 = ChannelReader::open(seg2.name(), &mut forever()).unwrap();
    w.send(b"last", 0, &mut forever()).unwrap();
    drop(w);
    assert_eq!(&*r2.recv(&mut forever()).unwrap(), b"last");
    assert_eq!(
        r2.recv(&mut forever()).unwrap_err().kind(),
        ErrorKind::WriterClosed
    );
}

#[test]
fn a_writer_killed_at_any_moment_never_hands_over_a_torn_message() {
    for round in 0..20u64 {
        let seg = TestSegment::new("ch_kill");
        let mut kid = child("child_writer", &format!("{}:{}", seg.name(), u64::MAX))
            .spawn()
            .unwrap();
        let r = ChannelReader::open(seg.name(), &mut forever()).unwrap();
        let killer = std::thread::spawn({
            let pid = kid.id();
            move || {
                std::thread::sleep(Duration::from_micros(500 + round * 1500));
                // SAFETY: kill(2) on our own child's pid, not yet reaped.
                unsafe { libc::kill(libc::pid_t::try_from(pid).unwrap(), libc::SIGKILL) };
            }
        });
        let err = loop {
            match r.recv(&mut forever()) {
                // Every message taken is whole: its bytes follow from its number (and its
                // checksum matched).
                Ok(m) => assert_eq!(&*m, &message(m.info().seq)[..], "round {round}"),
                Err(e) => break e,
            }
        };
        killer.join().unwrap();
        let _ = kid.wait();
        assert_eq!(err.kind(), ErrorKind::PeerGone, "round {round}: {err}");
    }
}
