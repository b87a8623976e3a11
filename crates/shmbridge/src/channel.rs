//! The channel kind of framed segment: one writer, a fixed number of readers, variable-size
//! messages in fixed slots, zero copy both ways.
//!
//! `docs/SPEC.md`, "Layout 3c: the channel kind", describes every byte; [`offsets`] is its
//! table in code. In short:
//!
//! - **Slots.** The data area holds `slots` slots of `slot_size` bytes: a slot header (the
//!   message's sequence number, length, timestamp, tag, CRC-32, and one *holder bit* per
//!   reader place), then room for `max_message` bytes, 64-byte aligned. The writer
//!   [loans](ChannelWriter::loan) a free slot, the caller fills it in place, and
//!   [`Loan::publish`] makes it the next message.
//! - **The queue** maps sequence numbers to slots: entry `seq % slots` says which slot holds
//!   message `seq`. Messages `tail..head` are available; readers move their own cursor.
//! - **Readers** claim one of `readers` places by its liveness lock (`Role::Reader(n)`), so a
//!   reader that dies frees its place and the writer stops counting it, in any PID namespace.
//!   A reader takes a message by setting its holder bit in the message's slot, which it keeps
//!   until it releases the message: the view is valid exactly that long.
//! - **Reuse is a Dekker handshake.** To reuse a slot the writer marks it busy and then reads
//!   the holder bits; a reader sets its bit and then reads the slot's sequence. All four
//!   accesses are sequentially consistent, so either the writer sees the bit (and leaves the
//!   slot alone) or the reader sees the slot busy (and counts the message as lost). A reader
//!   therefore never sees a torn or reused message.
//! - **Policies.** [`Policy::Block`]: the writer reuses a message's slot only once every live
//!   reader has taken it, and waits (with a [`Wait`]) otherwise. [`Policy::Overwrite`]: the
//!   writer drops the oldest messages to make room; a reader that fell behind learns how many
//!   it lost ([`Received::lost`]). Either way a slot a reader holds is never reused, so in
//!   overwrite mode the writer waits only when readers hold every slot.
//! - **The end.** [`ChannelWriter::close`] (also what dropping the writer does) marks the
//!   channel closed: readers get every message, then [`ErrorKind::WriterClosed`]. A writer
//!   that dies instead (its liveness lock gone) makes readers fail with
//!   [`ErrorKind::PeerGone`] once they have taken what was published.
//!
//! The writer keeps which slots are free in its own memory: a channel has one writer for its
//! whole life, its creator, and readers never take slots, only hold them.
//!
//! Zero-copy views ([`Message`], [`Loan`]) point into the shared mapping. The protocol keeps
//! the writer off a slot a reader holds and readers off a loaned slot; a process that breaks
//! the protocol (or shrinks the segment) can still change or unmap the bytes under a view, as
//! with any shared mapping: see the safety model in the `region` module.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::framed::{flags, FramedOptions, FramedSegment, Kind};
use crate::mode::Access;
use crate::segment::OwnerPolicy;
use crate::sync::event::Event;
use crate::sync::liveness::{Lease, Role};
use crate::sync::Wait;
use crate::sys;

/// Header length of a channel segment: the common 128 bytes plus three cache lines of control
/// words (configuration, the writer's line, the readers' line).
pub const CHANNEL_HEADER_LEN: u32 = 320;

/// The most reader places a channel may have.
pub const MAX_READERS: u32 = 1024;

/// The most slots a channel may have.
pub const MAX_SLOTS: u32 = 1 << 20;

/// A slot's sequence number while the writer owns it (loaned, or never used).
const BUSY: u64 = u64::MAX;

/// A queue entry's sequence number before any message used it.
const EMPTY: u64 = u64::MAX;

/// Bytes per reader record.
const READER_RECORD: u64 = 64;

/// Bytes per queue entry.
const QUEUE_ENTRY: u64 = 16;

/// Byte offsets of the channel's control words (`docs/SPEC.md`, "Layout 3c").
pub mod offsets {
    /// u32: number of slots (configuration line, 128..192, written once by the creator).
    pub const SLOTS: u64 = 128;
    /// u32: number of reader places.
    pub const READERS: u64 = 132;
    /// u64: the largest message, in bytes.
    pub const MAX_MESSAGE: u64 = 136;
    /// u64: bytes per slot (a multiple of 64).
    pub const SLOT_SIZE: u64 = 144;
    /// u32: bytes of a slot's header (a multiple of 64); the message starts there.
    pub const SLOT_HEADER_LEN: u64 = 152;
    /// u32: [`Policy`](super::Policy) code.
    pub const POLICY: u64 = 156;
    /// u32: how many past messages a reader that joins late starts with.
    pub const HISTORY: u64 = 160;
    /// u32: channel flags ([`CHECKSUMS`](super::channel_flags::CHECKSUMS)).
    pub const CHANNEL_FLAGS: u64 = 164;
    /// u64: offset of the reader table.
    pub const READERS_OFF: u64 = 168;
    /// u64: offset of the queue.
    pub const QUEUE_OFF: u64 = 176;
    /// u64: offset of the first slot.
    pub const SLOTS_OFF: u64 = 184;
    /// u64: sequence number of the next message (= messages published; writer's line,
    /// 192..256).
    pub const HEAD: u64 = 192;
    /// u32: futex word "a message was published (or the channel closed)".
    pub const DATA_SIGNAL: u64 = 200;
    /// u32: readers sleeping on `DATA_SIGNAL`.
    pub const DATA_WAITERS: u64 = 204;
    /// u64: the oldest message still available.
    pub const TAIL: u64 = 208;
    /// u32: futex word "a reader advanced or released" (readers' line, 256..320).
    pub const SPACE_SIGNAL: u64 = 256;
    /// u32: writers sleeping on `SPACE_SIGNAL`.
    pub const SPACE_WAITERS: u64 = 260;

    /// In a reader record: u64, the next message this reader takes.
    pub const R_CURSOR: u64 = 0;
    /// In a reader record: u32, 0 free, 1 active.
    pub const R_STATE: u64 = 8;
    /// In a reader record: u32, the reader's pid (information).
    pub const R_PID: u64 = 12;
    /// In a reader record: u64, messages this reader lost (information).
    pub const R_LOST: u64 = 16;
    /// In a reader record: u64, messages this reader took (information).
    pub const R_TAKEN: u64 = 24;

    /// In a queue entry: u64, the message's sequence number.
    pub const Q_SEQ: u64 = 0;
    /// In a queue entry: u32, the slot that holds it.
    pub const Q_SLOT: u64 = 8;

    /// In a slot header: u64, the sequence number of the message the slot holds (all ones:
    /// owned by the writer).
    pub const S_SEQ: u64 = 0;
    /// In a slot header: u64, the message's length.
    pub const S_LEN: u64 = 8;
    /// In a slot header: u64, when it was published, nanoseconds since the Unix epoch.
    pub const S_TIMESTAMP: u64 = 16;
    /// In a slot header: u32, the writer's tag.
    pub const S_TAG: u64 = 24;
    /// In a slot header: u32, the message's CRC-32 (channels with checksums).
    pub const S_CRC: u64 = 28;
    /// In a slot header: u32, message flags ([`msg_flags`](super::msg_flags)).
    pub const S_FLAGS: u64 = 32;
    /// In a slot header: the holder bits, one u64 per 64 reader places.
    pub const S_HOLDERS: u64 = 40;
}

/// Bits of the channel flags word.
pub mod channel_flags {
    /// Every message carries the CRC-32 of its bytes, checked by readers.
    pub const CHECKSUMS: u32 = 1;
}

/// Bits of a message's flags word.
pub mod msg_flags {
    /// The message starts with an array header (`docs/SPEC.md` section 7).
    pub const ARRAY: u32 = 1;
}

/// What the writer does when it needs a slot and every one holds a message a reader still
/// needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Wait for the slowest live reader: every live reader gets every message.
    #[default]
    Block,
    /// Drop the oldest messages: the writer never waits for a slow reader, which learns how
    /// many messages it lost.
    Overwrite,
}

impl Policy {
    /// The number stored in the header.
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            Self::Block => 0,
            Self::Overwrite => 1,
        }
    }

    /// `block` or `overwrite`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Overwrite => "overwrite",
        }
    }

    /// The policy named `block` or `overwrite`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for any other word.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "block" => Ok(Self::Block),
            "overwrite" => Ok(Self::Overwrite),
            other => Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("invalid policy {other:?}: use \"block\" or \"overwrite\""),
            )),
        }
    }
}

/// How a channel is made.
#[derive(Clone, Copy, Debug)]
pub struct ChannelOptions {
    /// Number of slots (at least 2): how many messages can be in flight at once.
    pub slots: u32,
    /// The largest message, in bytes (at least 1).
    pub max_message: u64,
    /// Number of reader places (1 to [`MAX_READERS`]).
    pub readers: u32,
    /// What the writer does when readers lag.
    pub policy: Policy,
    /// How many past messages a reader that joins late starts with (less than `slots`; 0:
    /// it starts with the next message).
    pub history: u32,
    /// Whether every message carries a CRC-32 that readers check (off by default: zero copy
    /// means nobody else touches the bytes, and a checksum pass costs a read of every byte
    /// on both sides).
    pub checksum: bool,
    /// The segment's options (permissions, populate).
    pub framed: FramedOptions,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            slots: 16,
            max_message: 4096,
            readers: 4,
            policy: Policy::Block,
            history: 0,
            checksum: false,
            framed: FramedOptions::default(),
        }
    }
}

fn align64(n: u64) -> Option<u64> {
    n.checked_add(63).map(|v| v & !63)
}

/// The geometry of a channel, computed from its options or read (and validated) from its
/// header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    slots: u32,
    readers: u32,
    max_message: u64,
    slot_size: u64,
    slot_header_len: u64,
    policy: Policy,
    history: u32,
    checksum: bool,
    readers_off: u64,
    queue_off: u64,
    slots_off: u64,
    /// Holder words per slot.
    words: u64,
}

impl Layout {
    fn holder_words(readers: u32) -> u64 {
        u64::from(readers).div_ceil(64)
    }

    /// The layout of a new channel, and the bytes it needs past the header.
    fn plan(opts: &ChannelOptions, name: &str) -> Result<(Self, u64)> {
        let bad =
            |detail: String| Err(Error::new(ErrorKind::InvalidArgument, detail).with_segment(name));
        if opts.slots < 2 || opts.slots > MAX_SLOTS {
            return bad(format!(
                "invalid slots {}: a channel needs 2 to {MAX_SLOTS} slots",
                opts.slots
            ));
        }
        if opts.readers == 0 || opts.readers > MAX_READERS {
            return bad(format!(
                "invalid readers {}: a channel has 1 to {MAX_READERS} reader places",
                opts.readers
            ));
        }
        if opts.max_message == 0 {
            return bad("invalid max_message 0: a message may be at least 1 byte".into());
        }
        if opts.history >= opts.slots {
            return bad(format!(
                "invalid history {}: it must be less than the number of slots ({})",
                opts.history, opts.slots
            ));
        }
        let too_big = || {
            Error::new(
                ErrorKind::InvalidSize,
                format!(
                    "a channel of {} slots of {} bytes is too large",
                    opts.slots, opts.max_message
                ),
            )
            .with_segment(name)
        };
        let words = Self::holder_words(opts.readers);
        let slot_header_len = align64(offsets::S_HOLDERS + 8 * words).ok_or_else(too_big)?;
        let slot_size = align64(opts.max_message)
            .and_then(|m| m.checked_add(slot_header_len))
            .ok_or_else(too_big)?;
        let header = u64::from(CHANNEL_HEADER_LEN);
        let readers_off = header;
        let queue_off = readers_off + u64::from(opts.readers) * READER_RECORD;
        let slots_off =
            align64(queue_off + u64::from(opts.slots) * QUEUE_ENTRY).ok_or_else(too_big)?;
        let end = slot_size
            .checked_mul(u64::from(opts.slots))
            .and_then(|s| s.checked_add(slots_off))
            .filter(|&e| e <= crate::segment::MAX_SIZE)
            .ok_or_else(too_big)?;
        Ok((
            Self {
                slots: opts.slots,
                readers: opts.readers,
                max_message: opts.max_message,
                slot_size,
                slot_header_len,
                policy: opts.policy,
                history: opts.history,
                checksum: opts.checksum,
                readers_off,
                queue_off,
                slots_off,
                words,
            },
            end - header,
        ))
    }

    fn store(&self, f: &FramedSegment) {
        f.u32_at(offsets::SLOTS)
            .store(self.slots, Ordering::Relaxed);
        f.u32_at(offsets::READERS)
            .store(self.readers, Ordering::Relaxed);
        f.u64_at(offsets::MAX_MESSAGE)
            .store(self.max_message, Ordering::Relaxed);
        f.u64_at(offsets::SLOT_SIZE)
            .store(self.slot_size, Ordering::Relaxed);
        f.u32_at(offsets::SLOT_HEADER_LEN)
            .store(self.slot_header_len as u32, Ordering::Relaxed);
        f.u32_at(offsets::POLICY)
            .store(self.policy.code(), Ordering::Relaxed);
        f.u32_at(offsets::HISTORY)
            .store(self.history, Ordering::Relaxed);
        f.u32_at(offsets::CHANNEL_FLAGS).store(
            if self.checksum {
                channel_flags::CHECKSUMS
            } else {
                0
            },
            Ordering::Relaxed,
        );
        f.u64_at(offsets::READERS_OFF)
            .store(self.readers_off, Ordering::Relaxed);
        f.u64_at(offsets::QUEUE_OFF)
            .store(self.queue_off, Ordering::Relaxed);
        f.u64_at(offsets::SLOTS_OFF)
            .store(self.slots_off, Ordering::Relaxed);
    }

    /// Read the layout of an existing channel and check that it adds up and fits the segment.
    fn load(f: &FramedSegment) -> Result<Self> {
        let corrupt = |detail: String| {
            Err(Error::new(
                ErrorKind::CorruptHeader,
                format!("corrupt channel: {detail}"),
            )
            .with_segment(f.name()))
        };
        if f.kind() != Kind::Channel {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("this is a {} segment, not a channel", f.kind().name()),
            )
            .with_segment(f.name()));
        }
        if f.header_len() < u64::from(CHANNEL_HEADER_LEN) {
            return corrupt(format!(
                "header_len {} is shorter than a channel's {CHANNEL_HEADER_LEN}",
                f.header_len()
            ));
        }
        let policy = match f.u32_at(offsets::POLICY).load(Ordering::Relaxed) {
            0 => Policy::Block,
            1 => Policy::Overwrite,
            other => return corrupt(format!("unknown policy {other}")),
        };
        let opts = ChannelOptions {
            slots: f.u32_at(offsets::SLOTS).load(Ordering::Relaxed),
            max_message: f.u64_at(offsets::MAX_MESSAGE).load(Ordering::Relaxed),
            readers: f.u32_at(offsets::READERS).load(Ordering::Relaxed),
            policy,
            history: f.u32_at(offsets::HISTORY).load(Ordering::Relaxed),
            checksum: f.u32_at(offsets::CHANNEL_FLAGS).load(Ordering::Relaxed)
                & channel_flags::CHECKSUMS
                != 0,
            framed: FramedOptions::default(),
        };
        let (want, need) = match Self::plan(&opts, f.name()) {
            Ok(p) => p,
            Err(e) => return corrupt(e.detail().to_owned()),
        };
        let got = Self {
            slot_size: f.u64_at(offsets::SLOT_SIZE).load(Ordering::Relaxed),
            slot_header_len: u64::from(f.u32_at(offsets::SLOT_HEADER_LEN).load(Ordering::Relaxed)),
            readers_off: f.u64_at(offsets::READERS_OFF).load(Ordering::Relaxed),
            queue_off: f.u64_at(offsets::QUEUE_OFF).load(Ordering::Relaxed),
            slots_off: f.u64_at(offsets::SLOTS_OFF).load(Ordering::Relaxed),
            ..want
        };
        if got != want {
            return corrupt(format!(
                "its offsets and sizes ({got:?}) are not those its slots, readers and max_message give ({want:?})"
            ));
        }
        if f.capacity() < need {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "truncated: the channel needs {need} bytes past its header, the segment has {}",
                    f.capacity()
                ),
            )
            .with_segment(f.name()));
        }
        Ok(want)
    }

    fn reader(&self, r: u32) -> u64 {
        self.readers_off + u64::from(r) * READER_RECORD
    }

    fn entry(&self, seq: u64) -> u64 {
        self.queue_off + (seq % u64::from(self.slots)) * QUEUE_ENTRY
    }

    fn slot(&self, k: u32) -> u64 {
        self.slots_off + u64::from(k) * self.slot_size
    }
}

/// The parts both ends share: the segment and its validated layout.
#[derive(Debug)]
struct Shared {
    framed: FramedSegment,
    layout: Layout,
}

impl Shared {
    fn w64(&self, off: u64) -> &AtomicU64 {
        self.framed.word64(off)
    }

    fn w32(&self, off: u64) -> &AtomicU32 {
        self.framed.word32(off)
    }

    fn err(&self, kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error::new(kind, detail).with_segment(self.framed.name())
    }

    fn data(&self) -> Event<'_> {
        Event::new(
            self.framed.u32_at(offsets::DATA_SIGNAL),
            self.framed.u32_at(offsets::DATA_WAITERS),
        )
    }

    fn space(&self) -> Event<'_> {
        Event::new(
            self.framed.u32_at(offsets::SPACE_SIGNAL),
            self.framed.u32_at(offsets::SPACE_WAITERS),
        )
    }

    fn head(&self) -> u64 {
        self.framed.u64_at(offsets::HEAD).load(Ordering::SeqCst)
    }

    fn tail(&self) -> u64 {
        self.framed.u64_at(offsets::TAIL).load(Ordering::SeqCst)
    }

    fn closed(&self) -> bool {
        self.framed
            .u32_at(crate::framed::offsets::FLAGS)
            .load(Ordering::SeqCst)
            & flags::WRITER_CLOSED
            != 0
    }

    fn holder_word(&self, k: u32, r: u32) -> &AtomicU64 {
        self.w64(self.layout.slot(k) + offsets::S_HOLDERS + 8 * u64::from(r / 64))
    }

    fn holders_of(&self, k: u32) -> impl Iterator<Item = u64> + '_ {
        (0..self.layout.words).map(move |w| {
            self.w64(self.layout.slot(k) + offsets::S_HOLDERS + 8 * w)
                .load(Ordering::SeqCst)
        })
    }

    fn payload(&self, k: u32) -> *mut u8 {
        let off = self.layout.slot(k) + self.layout.slot_header_len;
        // SAFETY: the slot lies inside the mapping (the layout was validated against the
        // segment's real size), and `off` is its message area.
        unsafe { self.framed.region().as_mut_ptr().add(off as usize) }
    }

    fn reader_alive(&self, r: u32) -> bool {
        self.framed.holder_alive(Role::Reader(r)).unwrap_or(false)
    }

    fn reader_active(&self, r: u32) -> bool {
        self.w32(self.layout.reader(r) + offsets::R_STATE)
            .load(Ordering::SeqCst)
            == 1
    }
}

/// The writing end of a channel: it creates the segment, loans slots and publishes them.
/// Dropping it closes the channel (readers get every message, then the end).
#[derive(Debug)]
pub struct ChannelWriter {
    shared: Shared,
    slots: Slots,
    /// Slots loaned and not yet published or discarded.
    loaned: Vec<u32>,
    head: u64,
    closed: bool,
}

/// The writer's own account of the slots (only it takes slots, so only it needs one).
#[derive(Debug)]
struct Slots {
    /// Slots that hold no message and that no reader holds (as far as the writer knows).
    free: Vec<u32>,
    /// Slots whose message left the queue while a reader still held it.
    held: Vec<u32>,
    /// The messages available, oldest first: (sequence, slot).
    window: VecDeque<(u64, u32)>,
    /// Every live reader had taken the messages before this, when the writer last looked
    /// (block policy: it re-reads the readers' cursors only when it needs to go past it, so
    /// their cache lines stay with them).
    taken_before: u64,
}

/// A slot the writer fills in place; see [`ChannelWriter::loan`]. Dropping it without
/// [`publish`](Self::publish) gives the slot back.
#[derive(Debug)]
pub struct Loan<'w> {
    writer: &'w mut ChannelWriter,
    raw: RawLoan,
    published: bool,
}

/// A loaned slot that does not borrow its writer (for the fronts, which keep the writer and
/// its loans in their own objects): see [`ChannelWriter::loan_raw`].
#[derive(Debug, PartialEq, Eq)]
pub struct RawLoan {
    slot: u32,
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a description of a claimed slot; the pointer is only written by whoever holds the
// loan, and given back to the writer that made it.
unsafe impl Send for RawLoan {}
// SAFETY: as above.
unsafe impl Sync for RawLoan {}

impl RawLoan {
    /// The slot's message area (`max_message` bytes are writable; the loan asked for `len`).
    #[must_use]
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The bytes asked for.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the loan is for an empty message.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot.
    #[must_use]
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

impl ChannelWriter {
    /// Create the channel `name` (it appears only once complete).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for options out of range (fewer than 2 slots, no
    /// readers or more than [`MAX_READERS`], `max_message` 0, `history` not below `slots`);
    /// [`ErrorKind::InvalidSize`] when it would be too large; those of
    /// [`FramedSegment::create`].
    pub fn create(name: &str, opts: &ChannelOptions) -> Result<Self> {
        let (layout, capacity) = Layout::plan(opts, name)?;
        let framed = FramedSegment::create_kind(
            name,
            capacity,
            Kind::Channel,
            CHANNEL_HEADER_LEN,
            &opts.framed,
            |f| {
                layout.store(f);
                for seq in 0..u64::from(layout.slots) {
                    f.word64(layout.entry(seq) + offsets::Q_SEQ)
                        .store(EMPTY, Ordering::Relaxed);
                }
                for k in 0..layout.slots {
                    f.word64(layout.slot(k) + offsets::S_SEQ)
                        .store(BUSY, Ordering::Relaxed);
                }
                Ok(())
            },
        )?;
        Ok(Self {
            shared: Shared { framed, layout },
            slots: Slots {
                free: (0..layout.slots).rev().collect(),
                held: Vec::new(),
                window: VecDeque::new(),
                taken_before: 0,
            },
            loaned: Vec::new(),
            head: 0,
            closed: false,
        })
    }

    /// The segment underneath.
    #[must_use]
    pub fn framed(&self) -> &FramedSegment {
        &self.shared.framed
    }

    /// The largest message.
    #[must_use]
    pub fn max_message(&self) -> u64 {
        self.shared.layout.max_message
    }

    /// Messages published so far (the next message's sequence number).
    #[must_use]
    pub fn published(&self) -> u64 {
        self.head
    }

    /// Loan a slot for a message of up to `len` bytes (at most `max_message`), waiting as
    /// `wait` allows when none is free (block policy: until the slowest live reader has taken
    /// the oldest message; either policy: while readers hold every slot).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `len` exceeds `max_message`; [`ErrorKind::Closed`]
    /// after `close`; [`ErrorKind::Timeout`] (naming the readers that hold it up) and
    /// [`ErrorKind::Aborted`] from `wait`.
    pub fn loan(&mut self, len: usize, wait: &mut Wait<'_>) -> Result<Loan<'_>> {
        let raw = self.loan_raw(len, wait)?;
        Ok(Loan {
            writer: self,
            raw,
            published: false,
        })
    }

    /// As [`loan`](Self::loan), for the fronts: a loan that does not borrow the writer. Give
    /// it back with [`publish_raw`](Self::publish_raw) or [`discard_raw`](Self::discard_raw)
    /// on this same writer; several may be outstanding at once.
    ///
    /// # Errors
    ///
    /// As [`loan`](Self::loan).
    pub fn loan_raw(&mut self, len: usize, wait: &mut Wait<'_>) -> Result<RawLoan> {
        if let Some(loan) = self.try_loan_raw(len)? {
            return Ok(loan);
        }
        let slot = self.wait_for_slot(wait)?;
        Ok(self.lend(slot, len))
    }

    /// As [`loan_raw`](Self::loan_raw), without waiting: `Ok(None)` when no slot can be
    /// claimed right now (for the fronts' fast path: no wait to set up when a slot is free).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `len` exceeds `max_message`; [`ErrorKind::Closed`]
    /// after `close`.
    pub fn try_loan_raw(&mut self, len: usize) -> Result<Option<RawLoan>> {
        if self.closed {
            return Err(self.shared.err(ErrorKind::Closed, "the channel is closed"));
        }
        self.check_len(len)?;
        Ok(self
            .slots
            .try_claim(&self.shared)
            .map(|slot| self.lend(slot, len)))
    }

    fn lend(&mut self, slot: u32, len: usize) -> RawLoan {
        self.loaned.push(slot);
        RawLoan {
            slot,
            ptr: self.shared.payload(slot),
            len,
        }
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len as u64 > self.shared.layout.max_message {
            return Err(self.shared.err(
                ErrorKind::OutOfBounds,
                format!(
                    "a message of {len} bytes is larger than the channel's max_message of {}",
                    self.shared.layout.max_message
                ),
            ));
        }
        Ok(())
    }

    fn take_loan(&mut self, loan: &RawLoan) -> Result<()> {
        match self.loaned.iter().position(|&k| k == loan.slot) {
            Some(i) => {
                self.loaned.swap_remove(i);
                Ok(())
            }
            None => Err(self.shared.err(
                ErrorKind::InvalidArgument,
                format!("slot {} is not loaned from this writer", loan.slot),
            )),
        }
    }

    /// Publish the first `len` bytes (at most `max_message`) of a raw loan as the next
    /// message, with `tag` and message flags `msg_flags` ([`msg_flags`]). Returns its
    /// sequence number. On an error the loan stays outstanding.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `len` exceeds `max_message`;
    /// [`ErrorKind::InvalidArgument`] for a loan that is not this writer's;
    /// [`ErrorKind::Closed`] after [`close`](Self::close) (readers may already have seen the
    /// end; the loan can still be discarded).
    pub fn publish_raw(
        &mut self,
        loan: &RawLoan,
        len: usize,
        tag: u32,
        msg_flags: u32,
    ) -> Result<u64> {
        if self.closed {
            return Err(self.shared.err(
                ErrorKind::Closed,
                "the channel is closed: a loan cannot be published after close",
            ));
        }
        self.check_len(len)?;
        self.take_loan(loan)?;
        let seq = self.publish_slot(loan.slot, len, tag, msg_flags);
        // Under the SIGBUS guard, a shrink the slot or queue stores ran into shows here.
        self.shared.framed.region().check_mapped()?;
        Ok(seq)
    }

    /// Give a raw loan's slot back unpublished (nobody ever saw it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a loan that is not this writer's.
    pub fn discard_raw(&mut self, loan: &RawLoan) -> Result<()> {
        self.take_loan(loan)?;
        self.slots.free.push(loan.slot);
        Ok(())
    }

    /// Make claimed slot `k` message `head` (SPEC 8.3 step 5).
    fn publish_slot(&mut self, k: u32, len: usize, tag: u32, msg_flags: u32) -> u64 {
        let l = self.shared.layout;
        let base = l.slot(k);
        let seq = self.head;
        let crc = if l.checksum {
            // SAFETY: the claimed slot's first `len <= max_message` bytes, which only this
            // writer touches.
            crc32fast::hash(unsafe { std::slice::from_raw_parts(self.shared.payload(k), len) })
        } else {
            0
        };
        let sh = &self.shared;
        sh.w64(base + offsets::S_LEN)
            .store(len as u64, Ordering::Relaxed);
        sh.w64(base + offsets::S_TIMESTAMP)
            .store(sys::realtime_ns(), Ordering::Relaxed);
        sh.w32(base + offsets::S_TAG).store(tag, Ordering::Relaxed);
        sh.w32(base + offsets::S_CRC).store(crc, Ordering::Relaxed);
        sh.w32(base + offsets::S_FLAGS)
            .store(msg_flags, Ordering::Relaxed);
        // The slot now holds message `seq` (readers validate this after setting their bit).
        // A release store publishes the header above; the handshake that keeps readers off a
        // reused slot is the writer's claim (a sequentially consistent swap to BUSY).
        sh.w64(base + offsets::S_SEQ).store(seq, Ordering::Release);
        let entry = l.entry(seq);
        sh.w32(entry + offsets::Q_SLOT).store(k, Ordering::Relaxed);
        sh.w64(entry + offsets::Q_SEQ).store(seq, Ordering::Release);
        self.slots.window.push_back((seq, k));
        self.head = seq + 1;
        sh.framed
            .u64_at(offsets::HEAD)
            .store(self.head, Ordering::SeqCst);
        sh.data().signal();
        seq
    }

    /// Copy `data` into a slot and publish it with `tag`.
    ///
    /// # Errors
    ///
    /// As [`loan`](Self::loan).
    pub fn send(&mut self, data: &[u8], tag: u32, wait: &mut Wait<'_>) -> Result<u64> {
        let mut loan = self.loan(data.len(), wait)?;
        loan.as_mut_slice()[..data.len()].copy_from_slice(data);
        loan.publish(data.len(), tag)
    }

    /// The number of live readers holding a place now.
    #[must_use]
    pub fn readers(&self) -> u32 {
        live_readers(&self.shared)
    }

    /// Wait (as `wait` allows) until at least `n` live readers hold a place: a writer that
    /// must not publish to nobody starts with this. Returns how many there are.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] and [`ErrorKind::Aborted`] from `wait`.
    pub fn wait_for_readers(&self, n: u32, wait: &mut Wait<'_>) -> Result<u32> {
        let shared = &self.shared;
        shared.space().wait_until(
            wait,
            shared.framed.name(),
            "readers to join",
            || {
                let have = live_readers(shared);
                Ok((have >= n).then_some(have))
            },
            || reap_dead_readers(shared),
        )
    }

    /// As [`send`](Self::send), without waiting: `Ok(None)` when no slot is free right now
    /// (for the fronts' fast path).
    ///
    /// # Errors
    ///
    /// As [`try_loan_raw`](Self::try_loan_raw).
    pub fn try_send(&mut self, data: &[u8], tag: u32) -> Result<Option<u64>> {
        let Some(raw) = self.try_loan_raw(data.len())? else {
            return Ok(None);
        };
        // SAFETY: the loan is a claimed slot with room for `data.len() <= max_message` bytes
        // that only this writer touches until it is published; `data` cannot be that slot
        // (nobody else has a view of a claimed slot).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), raw.as_mut_ptr(), data.len()) };
        self.publish_raw(&raw, data.len(), tag, 0).map(Some)
    }

    /// Mark the channel closed: readers take what was published, then see the end. Also what
    /// dropping the writer does. Calling it again does nothing.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.shared.framed.region().check_backing().is_err() {
            return;
        }
        self.shared
            .framed
            .u32_at(crate::framed::offsets::FLAGS)
            .fetch_or(flags::WRITER_CLOSED, Ordering::SeqCst);
        self.shared.data().notify(true);
    }

    fn wait_for_slot(&mut self, wait: &mut Wait<'_>) -> Result<u32> {
        let shared = &self.shared;
        let slots = std::cell::RefCell::new(&mut self.slots);
        let got = shared.space().wait_until(
            wait,
            shared.framed.name(),
            "a free slot",
            || Ok(slots.borrow_mut().try_claim(shared)),
            || {
                shared.framed.region().check_backing()?;
                reap_dead_readers(shared)
            },
        );
        got.map_err(|e| {
            if e.kind() == ErrorKind::Timeout {
                let why = who_holds_up(shared, slots.borrow().window.front().map(|&(s, _)| s));
                shared.err(ErrorKind::Timeout, format!("{}: {why}", e.detail()))
            } else {
                e
            }
        })
    }
}

/// Claim slot `k` with the Dekker handshake: mark it busy, then check that no reader holds
/// it. `false` (and the slot left as it was) when one does.
fn claim(shared: &Shared, k: u32) -> bool {
    let seq = shared.w64(shared.layout.slot(k) + offsets::S_SEQ);
    let old = seq.swap(BUSY, Ordering::SeqCst);
    if shared.holders_of(k).all(|w| w == 0) {
        return true;
    }
    seq.store(old, Ordering::SeqCst);
    false
}

impl Slots {
    /// A free slot, claimed, without waiting: a free one, one whose readers let go, or the
    /// oldest message's when every live reader has taken it (or the policy drops it).
    fn try_claim(&mut self, shared: &Shared) -> Option<u32> {
        while let Some(k) = self.free.pop() {
            if claim(shared, k) {
                return Some(k);
            }
            self.held.push(k);
        }
        if let Some(i) = (0..self.held.len()).find(|&i| claim(shared, self.held[i])) {
            return Some(self.held.swap_remove(i));
        }
        while let Some(&(seq, k)) = self.window.front() {
            if shared.layout.policy == Policy::Block && seq >= self.taken_before {
                self.taken_before = min_cursor(shared);
                if seq >= self.taken_before {
                    return None;
                }
            }
            self.window.pop_front();
            // Advisory (late joiners start no earlier, laggards jump here); the slot's own
            // handshake below is what keeps a reader off it.
            shared
                .framed
                .u64_at(offsets::TAIL)
                .store(seq + 1, Ordering::Release);
            if claim(shared, k) {
                return Some(k);
            }
            self.held.push(k);
        }
        None
    }
}

/// Active reader places whose reader is alive.
fn live_readers(shared: &Shared) -> u32 {
    (0..shared.layout.readers)
        .filter(|&r| shared.reader_active(r) && shared.reader_alive(r))
        .count() as u32
}

/// The lowest cursor of the active readers (`u64::MAX` when there are none).
fn min_cursor(shared: &Shared) -> u64 {
    let l = &shared.layout;
    (0..l.readers)
        .filter(|&r| shared.reader_active(r))
        .map(|r| {
            shared
                .w64(l.reader(r) + offsets::R_CURSOR)
                .load(Ordering::SeqCst)
        })
        .min()
        .unwrap_or(u64::MAX)
}

/// Free the places of readers that died: their holder bits and their cursor no longer count.
/// The writer takes the dead reader's lock while it cleans, so no new reader can claim the
/// place meanwhile.
fn reap_dead_readers(shared: &Shared) -> Result<()> {
    let l = &shared.layout;
    let Some(fd) = shared.framed.region().fd() else {
        return Ok(());
    };
    for r in 0..l.readers {
        if !shared.reader_active(r) || shared.reader_alive(r) {
            continue;
        }
        let Some(lease) = Lease::try_take(fd, Role::Reader(r), true, shared.framed.name())? else {
            continue; // a new reader is taking the place right now
        };
        clear_reader(shared, r);
        drop(lease);
    }
    Ok(())
}

/// Which readers keep the writer from a slot, in words (for the timeout error). `oldest` is
/// the oldest message still in the queue.
fn who_holds_up(shared: &Shared, oldest: Option<u64>) -> String {
    let l = &shared.layout;
    let mut why = Vec::new();
    for r in 0..l.readers {
        if !shared.reader_active(r) {
            continue;
        }
        let rec = l.reader(r);
        let pid = shared.w32(rec + offsets::R_PID).load(Ordering::Relaxed);
        let cursor = shared.w64(rec + offsets::R_CURSOR).load(Ordering::SeqCst);
        if l.policy == Policy::Block && oldest.is_some_and(|o| cursor <= o) {
            why.push(format!(
                "reader {r} (pid {pid}) has not taken message {cursor}"
            ));
        }
        let bit = 1u64 << (r % 64);
        let n = (0..l.slots)
            .filter(|&k| shared.holder_word(k, r).load(Ordering::SeqCst) & bit != 0)
            .count();
        if n > 0 {
            why.push(format!(
                "reader {r} (pid {pid}) holds {n} message(s) it has not released"
            ));
        }
    }
    if why.is_empty() {
        "no slot came free".into()
    } else {
        why.join("; ")
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl Loan<'_> {
    fn raw(&self) -> &RawLoan {
        &self.raw
    }

    /// The slot's message area, `max_message` bytes (the loan's length is what `publish`
    /// defaults to).
    #[must_use]
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.raw().ptr
    }

    /// Bytes this loan was asked for.
    #[must_use]
    pub fn len(&self) -> usize {
        self.raw().len
    }

    /// Whether the loan is for an empty message.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.raw().len == 0
    }

    /// The slot's message area, the loan's length long, for filling in place.
    #[must_use]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: the slot is claimed (its sequence is BUSY), so no reader takes it and the
        // writer's `&mut self` loan is the only user of these `len <= max_message` bytes.
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), self.len()) }
    }

    /// Publish the first `len` bytes (at most `max_message`) as the next message, with
    /// `tag`. Returns its sequence number.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `len` exceeds `max_message` (the slot goes back).
    pub fn publish(mut self, len: usize, tag: u32) -> Result<u64> {
        let seq = self.writer.publish_raw(&self.raw, len, tag, 0)?;
        self.published = true;
        Ok(seq)
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if !self.published {
            let _ = self.writer.discard_raw(&self.raw);
        }
    }
}

/// Forget reader place `r`: its holder bits and its record. The caller holds the place's lock.
fn clear_reader(shared: &Shared, r: u32) {
    let l = &shared.layout;
    let bit = 1u64 << (r % 64);
    for k in 0..l.slots {
        shared.holder_word(k, r).fetch_and(!bit, Ordering::SeqCst);
    }
    shared
        .w32(l.reader(r) + offsets::R_STATE)
        .store(0, Ordering::SeqCst);
    shared.space().signal();
}

/// A message a reader took: where it lies and what the writer said about it. Valid until the
/// reader releases it ([`ChannelReader::release`]); [`Message`] does that on drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The slot it lies in.
    pub slot: u32,
    /// Its sequence number (0 for the first message of the channel).
    pub seq: u64,
    /// Its length in bytes.
    pub len: usize,
    /// The writer's tag.
    pub tag: u32,
    /// When it was published, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Messages this reader missed just before this one (overwrite policy, or a late join).
    pub lost: u64,
    /// The message's flags ([`msg_flags`]).
    pub flags: u32,
    ptr: *const u8,
}

// SAFETY: a plain description of a held message; the pointer is only dereferenced through
// the reader that holds it.
unsafe impl Send for Received {}
// SAFETY: as above.
unsafe impl Sync for Received {}

impl Received {
    /// The first byte of the message, in the shared mapping.
    #[must_use]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }
}

/// The reading end of a channel: one of its reader places, held by a liveness lock.
#[derive(Debug)]
pub struct ChannelReader {
    shared: Shared,
    index: u32,
    /// Messages found gone since the last one returned (counted into the next `lost`).
    pending_lost: AtomicU64,
    /// The writer's head when this reader last looked: messages below it need no look at the
    /// writer's line (it only grows).
    known_head: AtomicU64,
    _lease: Lease,
}

impl ChannelReader {
    /// Open the channel `name` and take a reader place, waiting as `wait` allows for the
    /// channel to appear. The reader starts with the next message, or with the last `history`
    /// ones the channel was created with (those still available).
    ///
    /// # Errors
    ///
    /// Those of [`FramedSegment::open_wait`]; [`ErrorKind::Unsupported`] when it is not a
    /// channel; [`ErrorKind::CorruptHeader`] / [`ErrorKind::Truncated`] when its layout does
    /// not add up; [`ErrorKind::AlreadyExists`] when every reader place is taken.
    pub fn open(name: &str, wait: &mut Wait<'_>) -> Result<Self> {
        Self::attach(FramedSegment::open_wait(name, Access::ReadWrite, wait)?)
    }

    /// As [`open`](Self::open), accepting a channel of the owners `owner` allows.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open) and [`attach_with_owner`](Self::attach_with_owner).
    pub fn open_with_owner(name: &str, wait: &mut Wait<'_>, owner: &OwnerPolicy) -> Result<Self> {
        Self::attach_with_owner(
            FramedSegment::open_wait(name, Access::ReadWrite, wait)?,
            owner,
        )
    }

    /// Take a reader place in an open channel segment owned by this user.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn attach(framed: FramedSegment) -> Result<Self> {
        Self::attach_with_owner(framed, &OwnerPolicy::default())
    }

    /// As [`attach`](Self::attach), accepting a channel of the owners `owner` allows
    /// ([`attach`](Self::attach) and [`open`](Self::open) accept only this user's own
    /// channels: a reader trusts what it reads in place).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`ErrorKind::PermissionDenied`] for a channel of another
    /// owner.
    pub fn attach_with_owner(framed: FramedSegment, owner: &OwnerPolicy) -> Result<Self> {
        if let Some(obj) = framed.object() {
            owner.check(obj)?;
        }
        framed.region().check_writable()?;
        let layout = Layout::load(&framed)?;
        let shared = Shared { framed, layout };
        let Some(fd) = shared.framed.region().fd().cloned() else {
            return Err(shared.err(
                ErrorKind::Unsupported,
                "a channel reader needs a named segment",
            ));
        };
        let mut place = None;
        for r in 0..layout.readers {
            if let Some(lease) = Lease::try_take(&fd, Role::Reader(r), true, shared.framed.name())?
            {
                place = Some((r, lease));
                break;
            }
        }
        let Some((r, lease)) = place else {
            return Err(shared.err(
                ErrorKind::AlreadyExists,
                format!(
                    "every one of the channel's {} reader places is taken",
                    layout.readers
                ),
            ));
        };
        // What a dead predecessor in this place left behind goes first.
        clear_reader(&shared, r);
        let rec = layout.reader(r);
        let pid = std::process::id();
        shared
            .w32(rec + offsets::R_PID)
            .store(pid, Ordering::Relaxed);
        shared
            .w64(rec + offsets::R_LOST)
            .store(0, Ordering::Relaxed);
        shared
            .w64(rec + offsets::R_TAKEN)
            .store(0, Ordering::Relaxed);
        let head = shared.head();
        let start = head
            .saturating_sub(u64::from(layout.history))
            .max(shared.tail());
        shared
            .w64(rec + offsets::R_CURSOR)
            .store(start, Ordering::SeqCst);
        shared
            .w32(rec + offsets::R_STATE)
            .store(1, Ordering::SeqCst);
        // A writer waiting for readers (`wait_for_readers`) counts this one now.
        shared.space().signal();
        // The writer may have dropped messages while we joined: start no earlier than them.
        let tail = shared.tail();
        if start < tail {
            shared
                .w64(rec + offsets::R_CURSOR)
                .store(tail, Ordering::SeqCst);
        }
        Ok(Self {
            shared,
            index: r,
            pending_lost: AtomicU64::new(0),
            known_head: AtomicU64::new(0),
            _lease: lease,
        })
    }

    /// The segment underneath.
    #[must_use]
    pub fn framed(&self) -> &FramedSegment {
        &self.shared.framed
    }

    /// The channel's status, as [`status`] gives it, with this reader's own place alive (a
    /// lock is invisible to the open file description that holds it).
    ///
    /// # Errors
    ///
    /// As [`status`].
    pub fn status(&self) -> Result<ChannelStatus> {
        let mut st = status(&self.shared.framed)?;
        for place in &mut st.reader_places {
            if place.index == self.index {
                place.alive = true;
            }
        }
        Ok(st)
    }

    /// This reader's place (0 to readers - 1).
    #[must_use]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The largest message the channel carries.
    #[must_use]
    pub fn max_message(&self) -> u64 {
        self.shared.layout.max_message
    }

    /// The channel's policy.
    #[must_use]
    pub fn policy(&self) -> Policy {
        self.shared.layout.policy
    }

    fn cursor(&self) -> &AtomicU64 {
        self.shared
            .w64(self.shared.layout.reader(self.index) + offsets::R_CURSOR)
    }

    /// Take the next message if there is one, without waiting: `Ok(None)` when none is
    /// available yet.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WriterClosed`] after the last message of a closed channel;
    /// [`ErrorKind::ChecksumMismatch`] (the message is released); [`ErrorKind::CorruptHeader`]
    /// when the queue or a slot header does not add up.
    pub fn try_recv_raw(&self) -> Result<Option<Received>> {
        loop {
            let cursor = self.cursor().load(Ordering::Relaxed);
            let mut head = self.known_head.load(Ordering::Relaxed);
            if cursor >= head {
                head = self.shared.head();
                self.known_head.store(head, Ordering::Relaxed);
            }
            if cursor >= head {
                // Words read from the SIGBUS guard's zero page (a shrink) are no queue state.
                self.shared.framed.region().check_mapped()?;
                if cursor > head {
                    return Err(self.shared.err(
                        ErrorKind::CorruptHeader,
                        format!("corrupt channel: reader cursor {cursor} is past head {head}"),
                    ));
                }
                if self.shared.closed() && self.shared.head() == cursor {
                    return Err(self.shared.err(
                        ErrorKind::WriterClosed,
                        "the writer closed the channel: no more messages",
                    ));
                }
                return Ok(None);
            }
            if let Some(got) = self.take(cursor)? {
                self.shared.framed.region().check_mapped()?;
                return Ok(Some(got));
            }
            // Message `cursor` is gone (dropped by the writer): count it, move on. The writer
            // moves `tail` past a message before its slot or queue entry can change, so a
            // message below `head` that is gone while `tail` says it is still there is a
            // corrupt queue (and without this check a corrupt `head` would loop for ages).
            let tail = self.shared.tail();
            if tail <= cursor {
                return Err(self.shared.err(
                    ErrorKind::CorruptHeader,
                    format!(
                        "corrupt channel: message {cursor} is below head {head} but neither in \
                         the queue nor dropped (tail {tail})"
                    ),
                ));
            }
            self.pending_lost
                .fetch_add(tail - cursor, Ordering::Relaxed);
            self.cursor().store(tail, Ordering::SeqCst);
        }
    }

    /// Try to take message `seq`: `None` when it is no longer there.
    fn take(&self, seq: u64) -> Result<Option<Received>> {
        let l = &self.shared.layout;
        let entry = l.entry(seq);
        if self
            .shared
            .w64(entry + offsets::Q_SEQ)
            .load(Ordering::Acquire)
            != seq
        {
            return Ok(None);
        }
        let k = self
            .shared
            .w32(entry + offsets::Q_SLOT)
            .load(Ordering::Relaxed);
        if k >= l.slots {
            return Err(self.shared.err(
                ErrorKind::CorruptHeader,
                format!(
                    "corrupt channel: message {seq} is in slot {k} of {}",
                    l.slots
                ),
            ));
        }
        let bit = 1u64 << (self.index % 64);
        let holders = self.shared.holder_word(k, self.index);
        holders.fetch_or(bit, Ordering::SeqCst);
        let base = l.slot(k);
        if self
            .shared
            .w64(base + offsets::S_SEQ)
            .load(Ordering::SeqCst)
            != seq
        {
            holders.fetch_and(!bit, Ordering::SeqCst);
            return Ok(None);
        }
        let len = self
            .shared
            .w64(base + offsets::S_LEN)
            .load(Ordering::Relaxed);
        if len > l.max_message {
            holders.fetch_and(!bit, Ordering::SeqCst);
            return Err(self.shared.err(
                ErrorKind::CorruptHeader,
                format!(
                    "corrupt channel: message {seq} says it is {len} bytes, more than max_message {}",
                    l.max_message
                ),
            ));
        }
        let got = Received {
            slot: k,
            seq,
            len: len as usize,
            tag: self
                .shared
                .w32(base + offsets::S_TAG)
                .load(Ordering::Relaxed),
            timestamp_ns: self
                .shared
                .w64(base + offsets::S_TIMESTAMP)
                .load(Ordering::Relaxed),
            flags: self
                .shared
                .w32(base + offsets::S_FLAGS)
                .load(Ordering::Relaxed),
            lost: match self.pending_lost.load(Ordering::Relaxed) {
                0 => 0,
                n => {
                    self.pending_lost.store(0, Ordering::Relaxed);
                    n
                }
            },
            ptr: self.shared.payload(k),
        };
        if l.checksum {
            let want = self
                .shared
                .w32(base + offsets::S_CRC)
                .load(Ordering::Relaxed);
            // SAFETY: the slot is held (our bit is set and its sequence is `seq`), so the
            // writer does not touch its `len <= max_message` bytes.
            let crc = crc32fast::hash(unsafe { std::slice::from_raw_parts(got.ptr, got.len) });
            if crc != want {
                holders.fetch_and(!bit, Ordering::SeqCst);
                self.advance(seq);
                return Err(self.shared.err(
                    ErrorKind::ChecksumMismatch,
                    format!("checksum mismatch in message {seq}: its CRC-32 is {crc:08x}, the writer's {want:08x}"),
                ));
            }
        }
        self.advance(seq);
        // Only this reader writes its counters: plain stores, no read-modify-write.
        let rec = l.reader(self.index);
        let taken = self.shared.w64(rec + offsets::R_TAKEN);
        taken.store(taken.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if got.lost > 0 {
            let lost = self.shared.w64(rec + offsets::R_LOST);
            lost.store(lost.load(Ordering::Relaxed) + got.lost, Ordering::Relaxed);
        }
        Ok(Some(got))
    }

    fn advance(&self, seq: u64) {
        if self.shared.layout.policy == Policy::Block {
            // Sequentially consistent: the writer, about to sleep for space, counts itself and
            // then reads the cursors (the handshake of `Event::signal`).
            self.cursor().store(seq + 1, Ordering::SeqCst);
            self.shared.space().signal();
        } else {
            // Overwrite: the writer never waits on cursors.
            self.cursor().store(seq + 1, Ordering::Release);
        }
    }

    /// Wait (as `wait` allows) for the next message and take it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WriterClosed`] after the last message of a closed channel;
    /// [`ErrorKind::PeerGone`] when the writer died (after the messages it published);
    /// [`ErrorKind::Timeout`] and [`ErrorKind::Aborted`] from `wait`; those of
    /// [`try_recv_raw`](Self::try_recv_raw).
    pub fn recv_raw(&self, wait: &mut Wait<'_>) -> Result<Received> {
        self.shared.data().wait_until(
            wait,
            self.shared.framed.name(),
            "a message",
            || self.try_recv_raw(),
            || self.check_writer(),
        )
    }

    /// Wait (as `wait` allows) until a message is available or the channel ended, without
    /// taking it (for event loops: then call [`try_recv_raw`](Self::try_recv_raw)).
    ///
    /// # Errors
    ///
    /// As [`recv_raw`](Self::recv_raw), except that the end is reported as `Ok` (the next
    /// `try_recv_raw` reports it).
    pub fn wait_ready(&self, wait: &mut Wait<'_>) -> Result<()> {
        self.shared.data().wait_until(
            wait,
            self.shared.framed.name(),
            "a message",
            || Ok(self.ready().then_some(())),
            || self.check_writer(),
        )
    }

    /// As [`wait_ready`](Self::wait_ready), but without sleeping or yielding: look, then
    /// busy-spin for at most `spin` (nothing when this process may use one CPU only, or while
    /// the CPUs are contended), with no system call. Whether a message (or the end) is there;
    /// when not, call [`wait_ready`](Self::wait_ready). For fronts that want to catch a quick
    /// message before they pay for a blocking call (Python, before it releases the GIL).
    #[must_use]
    pub fn ready_briefly(&self, spin: std::time::Duration) -> bool {
        crate::sync::event::spin_briefly(spin, || Ok(self.ready().then_some(())))
            .is_ok_and(|r| r.is_some())
    }

    /// A message past this reader's cursor, or the end (no system call).
    fn ready(&self) -> bool {
        let cursor = self.cursor().load(Ordering::Relaxed);
        self.shared.head() > cursor || self.shared.closed()
    }

    fn check_writer(&self) -> Result<()> {
        self.shared.framed.region().check_backing()?;
        if self.shared.closed() || self.shared.framed.writer_alive() {
            return Ok(());
        }
        Err(self.shared.err(
            ErrorKind::PeerGone,
            "the writer died (its liveness lock is gone) without closing the channel",
        ))
    }

    /// Release a message taken with [`try_recv_raw`](Self::try_recv_raw) /
    /// [`recv_raw`](Self::recv_raw): its view is invalid afterwards. Releasing one twice, or
    /// one this reader does not hold, does nothing.
    pub fn release(&self, msg: &Received) {
        if msg.slot >= self.shared.layout.slots {
            return;
        }
        let bit = 1u64 << (self.index % 64);
        let w = self.shared.holder_word(msg.slot, self.index);
        if w.fetch_and(!bit, Ordering::SeqCst) & bit != 0 {
            self.shared.space().signal();
        }
    }

    /// As [`try_recv_raw`](Self::try_recv_raw), as a [`Message`] that releases itself.
    ///
    /// # Errors
    ///
    /// As [`try_recv_raw`](Self::try_recv_raw).
    pub fn try_recv(&self) -> Result<Option<Message<'_>>> {
        Ok(self
            .try_recv_raw()?
            .map(|raw| Message { reader: self, raw }))
    }

    /// As [`recv_raw`](Self::recv_raw), as a [`Message`] that releases itself.
    ///
    /// # Errors
    ///
    /// As [`recv_raw`](Self::recv_raw).
    pub fn recv(&self, wait: &mut Wait<'_>) -> Result<Message<'_>> {
        Ok(Message {
            reader: self,
            raw: self.recv_raw(wait)?,
        })
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        if self.shared.framed.region().check_backing().is_ok() {
            clear_reader(&self.shared, self.index);
        }
    }
}

/// A message held by a reader, read in place; released when dropped.
#[derive(Debug)]
pub struct Message<'r> {
    reader: &'r ChannelReader,
    raw: Received,
}

impl Message<'_> {
    /// What the writer said about it.
    #[must_use]
    pub fn info(&self) -> &Received {
        &self.raw
    }

    /// The reader that holds it.
    #[must_use]
    pub fn reader(&self) -> &ChannelReader {
        self.reader
    }

    /// Its bytes, where they lie in the shared mapping.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the message is held (this reader's bit is set in its slot), so the writer
        // does not reuse the slot while `self` lives; the bytes are inside the mapping.
        unsafe { std::slice::from_raw_parts(self.raw.ptr, self.raw.len) }
    }
}

impl std::ops::Deref for Message<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.bytes()
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        self.reader.release(&self.raw);
    }
}

/// One reader place, as [`status`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderStatus {
    /// The place.
    pub index: u32,
    /// Whether a reader occupies it.
    pub active: bool,
    /// Whether that reader's process is alive (its liveness lock is held).
    pub alive: bool,
    /// The next message it takes.
    pub cursor: u64,
    /// Messages published that it has not taken yet.
    pub lag: u64,
    /// Messages it lost.
    pub lost: u64,
    /// Messages it took.
    pub taken: u64,
    /// Its pid (information).
    pub pid: u32,
}

/// A snapshot of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStatus {
    /// Slots.
    pub slots: u32,
    /// Reader places.
    pub readers: u32,
    /// The largest message.
    pub max_message: u64,
    /// The policy.
    pub policy: Policy,
    /// Past messages a late reader starts with.
    pub history: u32,
    /// Whether messages carry checksums.
    pub checksum: bool,
    /// Messages published.
    pub head: u64,
    /// The oldest message still available.
    pub tail: u64,
    /// Whether the writer closed the channel.
    pub closed: bool,
    /// Whether the writer is alive.
    pub writer_alive: bool,
    /// The occupied reader places.
    pub reader_places: Vec<ReaderStatus>,
}

/// Describe a channel: its configuration, how far the writer got, and each reader's lag.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] when `framed` is not a channel; the layout errors of
/// [`ChannelReader::open`].
pub fn status(framed: &FramedSegment) -> Result<ChannelStatus> {
    let layout = Layout::load(framed)?;
    let head = framed.u64_at(offsets::HEAD).load(Ordering::SeqCst);
    let word64 = |off| framed.word64(off).load(Ordering::SeqCst);
    let mut places = Vec::new();
    for r in 0..layout.readers {
        let rec = layout.reader(r);
        if framed.word32(rec + offsets::R_STATE).load(Ordering::SeqCst) != 1 {
            continue;
        }
        let cursor = word64(rec + offsets::R_CURSOR);
        places.push(ReaderStatus {
            index: r,
            active: true,
            alive: framed.holder_alive(Role::Reader(r)).unwrap_or(false),
            cursor,
            lag: head.saturating_sub(cursor),
            lost: word64(rec + offsets::R_LOST),
            taken: word64(rec + offsets::R_TAKEN),
            pid: framed.word32(rec + offsets::R_PID).load(Ordering::Relaxed),
        });
    }
    Ok(ChannelStatus {
        slots: layout.slots,
        readers: layout.readers,
        max_message: layout.max_message,
        policy: layout.policy,
        history: layout.history,
        checksum: layout.checksum,
        head,
        tail: framed.u64_at(offsets::TAIL).load(Ordering::SeqCst),
        closed: framed
            .u32_at(crate::framed::offsets::FLAGS)
            .load(Ordering::SeqCst)
            & flags::WRITER_CLOSED
            != 0,
        writer_alive: framed.writer_alive(),
        reader_places: places,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A channel that removes its name when the test ends, pass or fail.
    struct Named(String);

    impl Drop for Named {
        fn drop(&mut self) {
            let _ = crate::ShmObject::remove(&self.0);
        }
    }

    fn channel(slots: u32) -> (Named, ChannelWriter, ChannelReader) {
        let name = Named(crate::name::unique("shmb_t_chu_"));
        let opts = ChannelOptions {
            slots,
            max_message: 64,
            readers: 1,
            ..ChannelOptions::default()
        };
        let w = ChannelWriter::create(&name.0, &opts).unwrap();
        let r = ChannelReader::open(&name.0, &mut Wait::forever()).unwrap();
        (name, w, r)
    }

    #[test]
    fn try_send_and_try_loan_never_wait() {
        let (_n, mut w, r) = channel(2);
        assert_eq!(w.try_send(b"a", 1).unwrap(), Some(0));
        assert_eq!(w.try_send(b"b", 2).unwrap(), Some(1));
        assert_eq!(w.try_send(b"c", 3).unwrap(), None); // block: the reader has taken nothing
        assert!(w.try_loan_raw(1).unwrap().is_none());
        assert_eq!(
            w.try_loan_raw(65).unwrap_err().kind(),
            ErrorKind::OutOfBounds
        );
        let m = r.try_recv().unwrap().unwrap();
        assert_eq!((m.info().seq, m.info().tag, &*m), (0, 1, &b"a"[..]));
        drop(m);
        let loan = w.try_loan_raw(1).unwrap().unwrap();
        w.discard_raw(&loan).unwrap();
    }

    #[test]
    fn a_loan_cannot_be_published_after_close() {
        let (_n, mut w, r) = channel(2);
        let loan = w.try_loan_raw(4).unwrap().unwrap();
        w.close();
        let e = w.publish_raw(&loan, 4, 0, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
        w.discard_raw(&loan).unwrap();
        assert_eq!(r.try_recv().unwrap_err().kind(), ErrorKind::WriterClosed);
    }

    #[test]
    fn a_corrupt_head_is_an_error_not_a_long_loop() {
        let (_n, mut w, r) = channel(2);
        w.try_send(b"a", 0).unwrap();
        w.framed()
            .u64_at(offsets::HEAD)
            .store(u64::MAX - 1, Ordering::SeqCst);
        assert!(r.try_recv().unwrap().is_some()); // message 0 is fine
        let e = r.try_recv().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CorruptHeader, "{e}");
        assert!(
            e.to_string().contains("neither in the queue nor dropped"),
            "{e}"
        );
    }
}
