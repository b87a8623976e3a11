//! The stream kind of framed segment: a single-producer single-consumer byte ring.
//!
//! A stream segment is a framed segment (the common 128-byte header, `kind` = 2) whose header
//! is [`STREAM_HEADER_LEN`] bytes long: the bytes past the common header hold the ring's
//! control words, each group on its own 64-byte cache line, and the payload area (`capacity`
//! bytes) is the ring itself. `docs/SPEC.md`, "Layout 3b: the stream kind", describes every
//! byte; [`offsets`] is that table in code.
//!
//! - `write_pos` and `read_pos` count bytes since the start of the stream and only grow; the
//!   byte at stream position `p` lives at ring offset `p % capacity`. The writer owns the ring
//!   bytes `[write_pos, read_pos + capacity)`, the reader owns `[read_pos, write_pos)`.
//! - Two events of the [`crate::sync`] module: `data_signal` (bumped by the writer when it adds
//!   data or ends the stream) and `space_signal` (bumped by the reader when it frees space,
//!   attaches or ends), each with a count of sleepers so a wake costs a system call only when
//!   someone sleeps.
//! - Liveness: the writer holds the writer's liveness lock from before the segment has a name,
//!   the reader holds the stream reader's from its attach (SPEC 5.5). A side that waits checks
//!   its peer between sleeps (at least every [`TICK`](crate::TICK)), so a peer killed with
//!   `SIGKILL` is noticed at once: the writer fails instead of blocking forever, and the reader
//!   fails instead of accepting partial data. This works across PID namespaces.
//! - The end: the writer stores the CRC-32 of every byte it wrote and the total, then sets
//!   `writer_state` to finished. The reader accepts the stream only when its own count and
//!   CRC-32 match those, then (after the caller has put the data in place) sets
//!   `reader_state` to done, which is what the writer waits for.
//! - The name: a stream is used once, and whichever end sees it complete or failed removes its
//!   name (only while the name still refers to this segment): the writer on
//!   [`StreamWriter::finish`], on [`StreamWriter::abort`] and when it is dropped unfinished; the
//!   reader on [`StreamReader::finish`], and when it is dropped unfinished after its writer is
//!   gone. A writer that only [`publish_end`](StreamWriter::publish_end)s leaves the name for
//!   its reader, which may come after the writer exited.
//!
//! Bounded memory on both sides: data moves between a file descriptor and the ring with
//! `read(2)`/`write(2)` straight into and out of the mapping, at most [`CHUNK`] bytes at a
//! time, with no intermediate buffer.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};
use crate::framed::{flags, FramedOptions, FramedSegment, Kind};
use crate::mode::Access;
use crate::segment::OwnerPolicy;
use crate::sync::event::Event;
use crate::sync::liveness::{Lease, Role};
use crate::sync::Wait;
use crate::sys;

/// Header length of a stream segment: the common 128 bytes plus four cache lines of control
/// words. The ring starts here.
pub const STREAM_HEADER_LEN: u32 = 384;

/// The most bytes moved by one `read(2)`/`write(2)` between a descriptor and the ring.
pub const CHUNK: usize = 1 << 20;

/// The bounce buffer of a copy between the ring and a descriptor: small enough to stay in
/// cache between the copy, the CRC-32 and the write.
const BOUNCE: usize = crate::region::BOUNCE_LEN;

/// `total_len` when the writer does not know the length in advance.
pub const UNKNOWN_LEN: u64 = u64::MAX;

/// Byte offsets of the stream control words (`docs/SPEC.md`, "Layout 3b").
pub mod offsets {
    /// u64: bytes written since the start (writer's hot line, 128..192).
    pub const WRITE_POS: u64 = 128;
    /// u32: futex word "data available", bumped by the writer.
    pub const DATA_SIGNAL: u64 = 136;
    /// u32: readers sleeping on `DATA_SIGNAL`.
    pub const DATA_WAITERS: u64 = 140;
    /// u64: bytes consumed since the start (reader's hot line, 192..256).
    pub const READ_POS: u64 = 192;
    /// u32: futex word "space available", bumped by the reader.
    pub const SPACE_SIGNAL: u64 = 200;
    /// u32: writers sleeping on `SPACE_SIGNAL`.
    pub const SPACE_WAITERS: u64 = 204;
    /// u64: total bytes the stream will carry, or `u64::MAX` when unknown (writer's cold line,
    /// 256..320). Final once `writer_state` is finished.
    pub const TOTAL_LEN: u64 = 256;
    /// u32: [`WriterState`](super::WriterState).
    pub const WRITER_STATE: u64 = 264;
    /// u32: CRC-32 of every byte of the stream, valid once `writer_state` is finished.
    pub const FINAL_CRC: u64 = 268;
    /// u32: the writer's pid.
    pub const WRITER_PID: u64 = 272;
    /// u64: the writer's start time (clock ticks since boot, 0 if unknown).
    pub const WRITER_START: u64 = 280;
    /// u32: [`ReaderState`](super::ReaderState) (reader's cold line, 320..384).
    pub const READER_STATE: u64 = 320;
    /// u32: the reader's pid, 0 until a reader attaches.
    pub const READER_PID: u64 = 324;
    /// u64: the reader's start time.
    pub const READER_START: u64 = 328;
}

/// What the writer of a stream is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriterState {
    /// Writing (0).
    Streaming,
    /// Every byte is in the ring; `total_len` and the final CRC are set (1).
    Finished,
    /// The writer gave up; the data is incomplete (2).
    Aborted,
    /// A value this library does not know.
    Other(u32),
}

impl WriterState {
    fn from_code(c: u32) -> Self {
        match c {
            0 => Self::Streaming,
            1 => Self::Finished,
            2 => Self::Aborted,
            n => Self::Other(n),
        }
    }

    /// A lower-case word for listings.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::Streaming => "streaming".into(),
            Self::Finished => "finished".into(),
            Self::Aborted => "aborted".into(),
            Self::Other(n) => format!("state-{n}"),
        }
    }
}

/// What the reader of a stream is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderState {
    /// No reader has attached yet (0).
    None,
    /// A reader is attached and consuming (1).
    Attached,
    /// The reader verified every byte and is done (2).
    Done,
    /// The reader failed or gave up (3).
    Failed,
    /// A value this library does not know.
    Other(u32),
}

impl ReaderState {
    fn from_code(c: u32) -> Self {
        match c {
            0 => Self::None,
            1 => Self::Attached,
            2 => Self::Done,
            3 => Self::Failed,
            n => Self::Other(n),
        }
    }

    /// A lower-case word for listings.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::None => "none".into(),
            Self::Attached => "attached".into(),
            Self::Done => "done".into(),
            Self::Failed => "failed".into(),
            Self::Other(n) => format!("state-{n}"),
        }
    }
}

const W_STREAMING: u32 = 0;
const W_FINISHED: u32 = 1;
const W_ABORTED: u32 = 2;
const R_NONE: u32 = 0;
const R_ATTACHED: u32 = 1;
const R_DONE: u32 = 2;
const R_FAILED: u32 = 3;

/// A snapshot of a stream's control words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamStatus {
    /// Ring size in bytes.
    pub capacity: u64,
    /// Bytes written so far.
    pub write_pos: u64,
    /// Bytes consumed so far.
    pub read_pos: u64,
    /// Total length, when known.
    pub total_len: Option<u64>,
    /// The writer's state.
    pub writer_state: WriterState,
    /// The reader's state.
    pub reader_state: ReaderState,
    /// The writer's pid (in the writer's PID namespace: information only).
    pub writer_pid: u32,
    /// Whether the writer still runs.
    pub writer_alive: bool,
    /// The reader's pid (0: none attached; information only).
    pub reader_pid: u32,
    /// Whether the reader still runs (false when none attached).
    pub reader_alive: bool,
    /// The final CRC-32, once the writer finished.
    pub final_crc: Option<u32>,
}

/// Read the control words of a stream segment.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] when `framed` is not a stream; [`ErrorKind::CorruptHeader`]
/// when its header is shorter than [`STREAM_HEADER_LEN`]; [`ErrorKind::Truncated`].
pub fn status(framed: &FramedSegment) -> Result<StreamStatus> {
    let ring = Ring::new(framed)?;
    let ws = ring.u32(offsets::WRITER_STATE).load(Ordering::Acquire);
    let total = ring.u64(offsets::TOTAL_LEN).load(Ordering::Acquire);
    let reader_pid = ring.u32(offsets::READER_PID).load(Ordering::Acquire);
    Ok(StreamStatus {
        capacity: ring.cap,
        write_pos: ring.u64(offsets::WRITE_POS).load(Ordering::Acquire),
        read_pos: ring.u64(offsets::READ_POS).load(Ordering::Acquire),
        total_len: (total != UNKNOWN_LEN).then_some(total),
        writer_state: WriterState::from_code(ws),
        reader_state: ReaderState::from_code(
            ring.u32(offsets::READER_STATE).load(Ordering::Acquire),
        ),
        writer_pid: ring.u32(offsets::WRITER_PID).load(Ordering::Acquire),
        writer_alive: ring.writer_alive(),
        reader_pid,
        reader_alive: reader_pid != 0 && ring.reader_alive(),
        final_crc: (ws == W_FINISHED).then(|| ring.u32(offsets::FINAL_CRC).load(Ordering::Acquire)),
    })
}

/// Shared plumbing of both ends: validated geometry and the control words.
#[derive(Debug)]
struct Ring<'a> {
    framed: &'a FramedSegment,
    cap: u64,
}

impl<'a> Ring<'a> {
    fn new(framed: &'a FramedSegment) -> Result<Self> {
        if framed.kind() != Kind::Stream {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("this is a {} segment, not a stream", framed.kind().name()),
            )
            .with_segment(framed.name()));
        }
        if framed.header_len() < u64::from(STREAM_HEADER_LEN) {
            return Err(Error::new(
                ErrorKind::CorruptHeader,
                format!(
                    "corrupt header: a stream needs header_len of at least {STREAM_HEADER_LEN}, this one has {}",
                    framed.header_len()
                ),
            )
            .with_segment(framed.name()));
        }
        if framed.capacity() == 0 {
            return Err(Error::new(
                ErrorKind::CorruptHeader,
                "corrupt header: a stream with a ring of 0 bytes",
            )
            .with_segment(framed.name()));
        }
        framed.region().check_backing()?;
        Ok(Self {
            framed,
            cap: framed.capacity(),
        })
    }

    fn u64(&self, off: u64) -> &AtomicU64 {
        self.framed.u64_at(off)
    }

    fn u32(&self, off: u64) -> &AtomicU32 {
        self.framed.u32_at(off)
    }

    fn err(&self, kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error::new(kind, detail).with_segment(self.framed.name())
    }

    /// The liveness lock of `role`, or for a 1.0 stream the pid and start time at the offsets.
    fn alive(&self, role: Role, pid_at: u64, start_at: u64) -> bool {
        self.framed.holder_alive(role).unwrap_or_else(|| {
            let pid = self.u32(pid_at).load(Ordering::Acquire);
            pid != 0 && sys::process_alive(pid, self.u64(start_at).load(Ordering::Acquire))
        })
    }

    fn writer_alive(&self) -> bool {
        self.framed.writer_alive()
    }

    fn reader_alive(&self) -> bool {
        self.alive(
            Role::StreamReader,
            offsets::READER_PID,
            offsets::READER_START,
        )
    }

    /// Both positions, checked against each other (never trust the other side).
    fn positions(&self) -> Result<(u64, u64)> {
        let w = self.u64(offsets::WRITE_POS).load(Ordering::Acquire);
        let r = self.u64(offsets::READ_POS).load(Ordering::Acquire);
        if r > w || w - r > self.cap {
            return Err(self.err(
                ErrorKind::CorruptHeader,
                format!(
                    "corrupt stream: write_pos {w} and read_pos {r} do not fit a ring of {} bytes",
                    self.cap
                ),
            ));
        }
        Ok((w, r))
    }

    /// "Data available": bumped by the writer, slept on by the reader.
    fn data(&self) -> Event<'_> {
        Event::new(
            self.u32(offsets::DATA_SIGNAL),
            self.u32(offsets::DATA_WAITERS),
        )
    }

    /// "Space available": bumped by the reader, slept on by the writer.
    fn space(&self) -> Event<'_> {
        Event::new(
            self.u32(offsets::SPACE_SIGNAL),
            self.u32(offsets::SPACE_WAITERS),
        )
    }

    /// Fail when the reader gave up or died (a stream nobody attached to yet is fine).
    fn check_reader(&self) -> Result<()> {
        match self.u32(offsets::READER_STATE).load(Ordering::Acquire) {
            R_FAILED => Err(self.err(
                ErrorKind::PeerGone,
                "the receiver gave up (it failed or was stopped)",
            )),
            R_NONE => Ok(()),
            _ if !self.reader_alive() => Err(self.err(
                ErrorKind::PeerGone,
                format!(
                    "the receiver (pid {}) died",
                    self.u32(offsets::READER_PID).load(Ordering::Acquire)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Remove the segment's name if it still names this segment.
    fn remove_name(&self) {
        if let Some(obj) = self.framed.object() {
            let _ = obj.remove_if_same();
        }
    }
}

/// The producing end of a stream segment. It creates the segment; dropping it before
/// [`finish`](Self::finish) or [`publish_end`](Self::publish_end) aborts the stream (the reader
/// fails instead of waiting) and removes its name.
#[derive(Debug)]
pub struct StreamWriter {
    framed: FramedSegment,
    crc: crc32fast::Hasher,
    pos: u64,
    total: Option<u64>,
    /// The bounce buffer of copies from a descriptor (allocated on first use).
    bounce: Vec<u8>,
    /// The end (finished or aborted) was published.
    ended: bool,
    /// The reader confirmed the end, or the stream was aborted: nothing more to do.
    done: bool,
}

impl StreamWriter {
    /// Create the stream segment `name` with a ring of `capacity` bytes (the segment is
    /// `STREAM_HEADER_LEN + capacity` bytes), announcing `total_len` bytes when known. The
    /// segment gets its name only once every control word is set.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] for a capacity of 0; those of [`FramedSegment::create`].
    pub fn create(
        name: &str,
        capacity: u64,
        total_len: Option<u64>,
        opts: &FramedOptions,
    ) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                "a stream needs a ring of at least 1 byte",
            )
            .with_segment(name));
        }
        let framed = FramedSegment::create_kind(
            name,
            capacity,
            Kind::Stream,
            STREAM_HEADER_LEN,
            opts,
            |framed| {
                let ring = Ring::new(framed)?;
                let pid = std::process::id();
                ring.u64(offsets::TOTAL_LEN)
                    .store(total_len.unwrap_or(UNKNOWN_LEN), Ordering::Relaxed);
                ring.u64(offsets::WRITER_START)
                    .store(sys::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
                ring.u32(offsets::WRITER_PID).store(pid, Ordering::Release);
                Ok(())
            },
        )?;
        Ok(Self {
            framed,
            crc: crc32fast::Hasher::new(),
            pos: 0,
            total: total_len,
            bounce: Vec::new(),
            ended: false,
            done: false,
        })
    }

    /// The framed segment underneath.
    #[must_use]
    pub fn framed(&self) -> &FramedSegment {
        &self.framed
    }

    /// Bytes written so far.
    #[must_use]
    pub fn written(&self) -> u64 {
        self.pos
    }

    fn ring(&self) -> Ring<'_> {
        Ring {
            framed: &self.framed,
            cap: self.framed.capacity(),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.ended {
            return Err(self.ring().err(
                ErrorKind::Closed,
                "the stream has ended: nothing more can be written",
            ));
        }
        Ok(())
    }

    /// Wait for free space and return the ring's free contiguous area (its offset in the
    /// segment, its length), at most `max` bytes (and at most [`CHUNK`]).
    fn reserve(&self, max: usize, wait: &mut Wait<'_>) -> Result<(u64, usize)> {
        // Before the control words are touched: a segment shrunk below them (between steps,
        // where a shrink that did not hit a copy lands) is an error, not a SIGBUS.
        self.framed.region().check_backing()?;
        let ring = self.ring();
        let cap = ring.cap;
        let pos = self.pos;
        let r = ring.space().wait_until(
            wait,
            self.framed.name(),
            "the receiver to make room",
            || {
                let (_, r) = ring.positions()?;
                Ok((pos - r < cap).then_some(r))
            },
            || {
                self.framed.region().check_backing()?;
                ring.check_reader()
            },
        )?;
        wait.progressed();
        let free = cap - (pos - r);
        let off = pos % cap;
        let n = free.min(cap - off).min(max as u64).min(CHUNK as u64) as usize;
        Ok((self.framed.header_len() + off, n))
    }

    /// Publish `n` bytes just placed in the reserved area (already folded into the CRC-32).
    fn commit(&mut self, n: usize) {
        self.pos += n as u64;
        let ring = self.ring();
        ring.u64(offsets::WRITE_POS)
            .store(self.pos, Ordering::Release);
        ring.data().notify(false);
    }

    /// Copy `data` into the stream, waiting for room as needed (`wait`'s inactivity limit
    /// restarts whenever the reader makes room).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PeerGone`] when the receiver died or gave up; [`ErrorKind::Timeout`] and
    /// [`ErrorKind::Aborted`] from `wait`; [`ErrorKind::InvalidArgument`] past the announced
    /// total; [`ErrorKind::Closed`] after the end.
    pub fn write(&mut self, mut data: &[u8], wait: &mut Wait<'_>) -> Result<()> {
        self.check_open()?;
        self.check_room(data.len() as u64)?;
        while !data.is_empty() {
            let (at, n) = self.reserve(data.len(), wait)?;
            self.framed.region().write_at(at, &data[..n])?;
            self.crc.update(&data[..n]);
            self.commit(n);
            data = &data[n..];
        }
        Ok(())
    }

    fn check_room(&self, more: u64) -> Result<()> {
        if let Some(t) = self.total {
            if self.pos + more > t {
                return Err(self.ring().err(
                    ErrorKind::InvalidArgument,
                    format!(
                        "writing {more} more bytes after {} would pass the announced total of {t}",
                        self.pos
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `read(2)` from `fd` into the ring (through a small buffer that stays in cache, hashed
    /// there and `pwrite`n into the segment) until end of file or `max` bytes, waiting for
    /// room as needed. Calls `progress(total written)` after each chunk; an error it
    /// returns stops the copy and is returned. Returns the bytes moved by this call.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); an OS error from `read(2)`; whatever `progress` returns.
    pub fn write_from_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        max: u64,
        wait: &mut Wait<'_>,
        mut progress: impl FnMut(u64) -> Result<()>,
    ) -> Result<u64> {
        self.check_open()?;
        let start = self.pos;
        loop {
            let left = max - (self.pos - start);
            if left == 0 {
                break;
            }
            let left = left.min(usize::MAX as u64) as usize;
            let (at, n) = self.reserve(left, wait)?;
            let name = self.framed.name();
            let crc = &mut self.crc;
            // Under the SIGBUS guard: read(2) straight into the ring, hashed in place while the
            // piece is in cache — one copy per byte instead of two.
            let direct = self.framed.region().fill_in_place(
                at,
                n,
                BOUNCE,
                "reading the input",
                |ptr, len| {
                    // SAFETY: `ptr` is writable for `len` bytes of our mapping for the call;
                    // the kernel reports a page it cannot back as EFAULT.
                    unsafe { sys::read_raw(fd, ptr, len) }
                },
                |piece| crc.update(piece),
            )?;
            let got = if let Some(got) = direct {
                got
            } else {
                if self.bounce.is_empty() {
                    self.bounce = vec![0u8; BOUNCE];
                }
                let crc = &mut self.crc;
                // Reads go on while they fill the buffer (a regular file); a pipe or
                // terminal that gives less ends the step with what it gave.
                let mut more = true;
                self.framed.region().copy_in(
                    at,
                    n,
                    &mut self.bounce,
                    |buf| {
                        if !more {
                            return Ok(0);
                        }
                        // SAFETY: `buf` is valid for writes of its length during the call.
                        let got = unsafe { sys::read_raw(fd, buf.as_mut_ptr(), buf.len()) }
                            .map_err(|e| {
                                Error::from_io(&e, "reading the input failed").with_segment(name)
                            })?;
                        more = got == buf.len();
                        Ok(got)
                    },
                    |piece| {
                        crc.update(piece);
                        Ok(())
                    },
                )?
            };
            if got == 0 {
                break;
            }
            self.commit(got);
            progress(self.pos)?;
        }
        Ok(self.pos - start)
    }

    /// End the stream ([`publish_end`](Self::publish_end)), then wait until the reader has
    /// taken and verified every byte (it confirms with [`StreamReader::finish`]), and remove
    /// the segment's name. Returns the CRC-32. When the wait fails (a timeout, an abort by the
    /// hook), the end stays published and `finish` may be called again.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when fewer bytes were written than announced (the stream
    /// is aborted); [`ErrorKind::PeerGone`] when the receiver died or rejected the data (the
    /// name is removed); [`ErrorKind::Timeout`] and [`ErrorKind::Aborted`] from `wait`.
    pub fn finish(&mut self, wait: &mut Wait<'_>) -> Result<u32> {
        let crc = self.publish_end()?;
        if self.done {
            return Ok(crc);
        }
        let ring = self.ring();
        let waited = ring.space().wait_until(
            wait,
            self.framed.name(),
            "the receiver to take every byte",
            || {
                Ok(
                    (ring.u32(offsets::READER_STATE).load(Ordering::Acquire) == R_DONE)
                        .then_some(()),
                )
            },
            || {
                self.framed.region().check_backing()?;
                ring.check_reader()
            },
        );
        if let Err(e) = &waited {
            if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Aborted) {
                return Err(waited.unwrap_err());
            }
        }
        // Confirmed, or failed for good (the receiver died or rejected the data).
        ring.remove_name();
        self.done = true;
        waited.map(|()| crc)
    }

    /// End the stream without waiting for the reader: publish the total and the CRC-32; the
    /// data stays in the ring for a reader to take (a reader can complete even after this
    /// process exits, and then removes the name). Returns the CRC-32.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when fewer bytes were written than announced (the stream
    /// is aborted instead); [`ErrorKind::Closed`] after an abort.
    pub fn publish_end(&mut self) -> Result<u32> {
        let ring = self.ring();
        if self.ended {
            return match ring.u32(offsets::WRITER_STATE).load(Ordering::Acquire) {
                W_FINISHED => Ok(self.crc.clone().finalize()),
                _ => Err(ring.err(ErrorKind::Closed, "the stream was aborted")),
            };
        }
        if let Some(t) = self.total {
            if self.pos != t {
                self.abort();
                return Err(self.ring().err(
                    ErrorKind::InvalidArgument,
                    format!(
                        "the stream ended after {} bytes but {t} were announced",
                        self.pos
                    ),
                ));
            }
        }
        let crc = self.crc.clone().finalize();
        ring.u64(offsets::TOTAL_LEN)
            .store(self.pos, Ordering::Relaxed);
        ring.u32(offsets::FINAL_CRC).store(crc, Ordering::Relaxed);
        ring.u32(offsets::WRITER_STATE)
            .store(W_FINISHED, Ordering::Release);
        self.mark_common(
            flags::PUBLISHED | flags::WRITER_CLOSED | flags::CHECKSUM,
            Some(crc),
        );
        ring.data().notify(false);
        self.ended = true;
        Ok(crc)
    }

    fn mark_common(&self, set: u32, crc: Option<u32>) {
        use crate::framed::offsets as common;
        if let Some(c) = crc {
            self.framed
                .u32_at(common::CHECKSUM)
                .store(c, Ordering::Relaxed);
        }
        self.framed
            .u32_at(common::FLAGS)
            .fetch_or(set, Ordering::AcqRel);
        self.framed.bump_and_wake();
    }

    /// Abort the stream (the reader fails at once) and remove its name. Also what dropping an
    /// unfinished writer does. A no-op once the end was published.
    pub fn abort(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.done = true;
        if self.framed.region().check_backing().is_err() {
            return;
        }
        let ring = self.ring();
        ring.u32(offsets::WRITER_STATE)
            .store(W_ABORTED, Ordering::Release);
        self.mark_common(flags::WRITER_CLOSED, None);
        ring.data().notify(false);
        ring.remove_name();
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        self.abort();
    }
}

/// The consuming end of a stream segment. Dropping it before [`finish`](Self::finish) marks
/// the reader failed, so the writer stops instead of waiting.
#[derive(Debug)]
pub struct StreamReader {
    framed: FramedSegment,
    crc: crc32fast::Hasher,
    pos: u64,
    verified: Option<u32>,
    done: bool,
    /// The bounce buffer of copies to a descriptor (allocated on first use).
    bounce: Vec<u8>,
    /// The stream reader's liveness lock, held from attach to the end.
    _lease: Lease,
}

impl StreamReader {
    /// Open the stream segment `name` (read-write: the reader moves `read_pos`) and attach.
    ///
    /// # Errors
    ///
    /// Those of [`FramedSegment::open`] and [`attach`](Self::attach).
    pub fn open(name: &str) -> Result<Self> {
        Self::attach(FramedSegment::open(name, Access::ReadWrite)?)
    }

    /// As [`open`](Self::open), waiting (as `wait` allows) for the stream to appear.
    ///
    /// # Errors
    ///
    /// Those of [`FramedSegment::open_wait`] and [`attach`](Self::attach).
    pub fn open_wait(name: &str, wait: &mut Wait<'_>) -> Result<Self> {
        Self::attach(FramedSegment::open_wait(name, Access::ReadWrite, wait)?)
    }

    /// As [`open_wait`](Self::open_wait), accepting a segment of the owners `owner` allows.
    ///
    /// # Errors
    ///
    /// As [`open_wait`](Self::open_wait) and [`attach_with_owner`](Self::attach_with_owner).
    pub fn open_wait_with_owner(
        name: &str,
        wait: &mut Wait<'_>,
        owner: &OwnerPolicy,
    ) -> Result<Self> {
        Self::attach_with_owner(
            FramedSegment::open_wait(name, Access::ReadWrite, wait)?,
            owner,
        )
    }

    /// Attach to a stream segment as its one reader.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when it is not a stream; [`ErrorKind::AlreadyExists`] when
    /// another reader is attached (or was: a stream can be read once);
    /// [`ErrorKind::PermissionDenied`] for a read-only view.
    pub fn attach(framed: FramedSegment) -> Result<Self> {
        Self::attach_with_owner(framed, &OwnerPolicy::default())
    }

    /// As [`attach`](Self::attach), accepting a segment of the owners `owner` allows
    /// ([`attach`](Self::attach), [`open`](Self::open) and [`open_wait`](Self::open_wait)
    /// accept only this user's own segments).
    ///
    /// # Errors
    ///
    /// As [`attach`](Self::attach); [`ErrorKind::PermissionDenied`] for a segment of another
    /// owner.
    pub fn attach_with_owner(framed: FramedSegment, owner: &OwnerPolicy) -> Result<Self> {
        if let Some(obj) = framed.object() {
            owner.check(obj)?;
        }
        framed.region().check_writable()?;
        let ring = Ring::new(&framed)?;
        ring.positions()?;
        let taken = || {
            ring.err(
                ErrorKind::AlreadyExists,
                "another receiver has already attached to this stream; a stream can be read once",
            )
        };
        let lease = match framed.region().fd() {
            Some(fd) => {
                Lease::try_take(fd, Role::StreamReader, true, framed.name())?.ok_or_else(taken)?
            }
            None => {
                return Err(ring.err(
                    ErrorKind::Unsupported,
                    "a stream reader needs a named segment",
                ))
            }
        };
        let pid = std::process::id();
        if ring
            .u32(offsets::READER_PID)
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(taken());
        }
        ring.u64(offsets::READER_START)
            .store(sys::process_start_time(pid).unwrap_or(0), Ordering::Release);
        ring.u32(offsets::READER_STATE)
            .store(R_ATTACHED, Ordering::Release);
        ring.space().notify(false);
        let pos = ring.u64(offsets::READ_POS).load(Ordering::Acquire);
        Ok(Self {
            framed,
            crc: crc32fast::Hasher::new(),
            pos,
            verified: None,
            done: false,
            bounce: Vec::new(),
            _lease: lease,
        })
    }

    /// The framed segment underneath.
    #[must_use]
    pub fn framed(&self) -> &FramedSegment {
        &self.framed
    }

    /// Bytes consumed so far.
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.pos
    }

    /// The total the writer announced, when known.
    #[must_use]
    pub fn total_len(&self) -> Option<u64> {
        let t = self
            .framed
            .u64_at(offsets::TOTAL_LEN)
            .load(Ordering::Acquire);
        (t != UNKNOWN_LEN).then_some(t)
    }

    /// The verified CRC-32 of the whole stream, once the end was reached.
    #[must_use]
    pub fn verified_crc(&self) -> Option<u32> {
        self.verified
    }

    fn ring(&self) -> Ring<'_> {
        Ring {
            framed: &self.framed,
            cap: self.framed.capacity(),
        }
    }

    /// Wait for data; return the next filled contiguous area (its offset in the segment, its
    /// length, at most [`CHUNK`] bytes), or `None` at the end of a stream whose count and
    /// CRC-32 were verified.
    fn next_chunk(&mut self, max: usize, wait: &mut Wait<'_>) -> Result<Option<(u64, usize)>> {
        if self.verified.is_some() {
            return Ok(None);
        }
        // As in the writer's reserve: check the real size before touching the control words.
        self.framed.region().check_backing()?;
        let ring = self.ring();
        let pos = self.pos;
        let (state, w) = ring.data().wait_until(
            wait,
            self.framed.name(),
            "the sender",
            || {
                let (w, _) = ring.positions()?;
                let state = ring.u32(offsets::WRITER_STATE).load(Ordering::Acquire);
                Ok((w > pos || state != W_STREAMING).then_some((state, w)))
            },
            || {
                self.framed.region().check_backing()?;
                if ring.writer_alive() {
                    return Ok(());
                }
                Err(ring.err(
                    ErrorKind::PeerGone,
                    format!(
                        "the sender (pid {}) died before the stream was complete; {pos} bytes received, nothing accepted",
                        ring.u32(offsets::WRITER_PID).load(Ordering::Acquire),
                    ),
                ))
            },
        )?;
        wait.progressed();
        if w > pos {
            let off = pos % ring.cap;
            let n = (w - pos)
                .min(ring.cap - off)
                .min(max as u64)
                .min(CHUNK as u64) as usize;
            return Ok(Some((self.framed.header_len() + off, n)));
        }
        match state {
            W_FINISHED => {
                let total = ring.u64(offsets::TOTAL_LEN).load(Ordering::Acquire);
                let want_crc = ring.u32(offsets::FINAL_CRC).load(Ordering::Acquire);
                let got = self.crc.clone().finalize();
                if total != pos {
                    return Err(ring.err(
                        ErrorKind::Truncated,
                        format!("the stream ended after {pos} bytes but the sender says it wrote {total}"),
                    ));
                }
                if got != want_crc {
                    return Err(ring.err(
                        ErrorKind::ChecksumMismatch,
                        format!("checksum mismatch: the stream's CRC-32 is {got:08x}, the sender says {want_crc:08x}"),
                    ));
                }
                self.verified = Some(got);
                Ok(None)
            }
            W_ABORTED => Err(ring.err(
                ErrorKind::PeerGone,
                format!("the sender aborted the stream after {pos} bytes; nothing accepted"),
            )),
            other => Err(ring.err(
                ErrorKind::CorruptHeader,
                format!("corrupt stream: unknown writer state {other}"),
            )),
        }
    }

    /// Release `n` bytes (from `next_chunk`, already folded into the CRC-32).
    fn consume(&mut self, n: usize) {
        self.pos += n as u64;
        let ring = self.ring();
        ring.u64(offsets::READ_POS)
            .store(self.pos, Ordering::Release);
        ring.space().notify(false);
    }

    /// Copy the next bytes into `buf`, waiting for data as `wait` allows (its inactivity limit
    /// restarts whenever data comes); `Ok(0)` at the end of a verified stream.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PeerGone`] when the writer died or aborted before the end;
    /// [`ErrorKind::ChecksumMismatch`] / [`ErrorKind::Truncated`] when the end does not verify;
    /// [`ErrorKind::Timeout`] and [`ErrorKind::Aborted`] from `wait`.
    pub fn read(&mut self, buf: &mut [u8], wait: &mut Wait<'_>) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.next_chunk(buf.len(), wait)? {
            None => Ok(0),
            Some((at, n)) => {
                self.framed.region().read_at(at, &mut buf[..n])?;
                self.crc.update(&buf[..n]);
                self.consume(n);
                Ok(n)
            }
        }
    }

    /// `write(2)` every byte of the stream to `fd` (`pread` from the ring into a small buffer
    /// that stays in cache, hashed there), until the verified end. Calls `progress(total consumed)` after each chunk; an error it returns stops the
    /// copy and is returned. Returns the CRC-32.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); an OS error from `write(2)`; whatever `progress` returns.
    pub fn read_to_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        wait: &mut Wait<'_>,
        mut progress: impl FnMut(u64) -> Result<()>,
    ) -> Result<u32> {
        while let Some((at, n)) = self.next_chunk(CHUNK, wait)? {
            let name = self.framed.name();
            let write_out = |ptr: *const u8, len: usize| {
                // SAFETY: `ptr` is readable for `len` bytes for the call (a private buffer, or
                // our mapping, where the kernel reports a missing page as EFAULT).
                unsafe { sys::write_all_raw(fd, ptr, len) }
                    .map_err(|e| Error::from_io(&e, "writing the output failed").with_segment(name))
            };
            let crc = &mut self.crc;
            // Under the SIGBUS guard: hashed in place and write(2) straight from the ring —
            // one copy per byte instead of two.
            let direct = self.framed.region().drain_in_place(
                at,
                n,
                BOUNCE,
                |piece| crc.update(piece),
                &write_out,
            )?;
            if !direct {
                if self.bounce.is_empty() {
                    self.bounce = vec![0u8; BOUNCE];
                }
                let crc = &mut self.crc;
                self.framed
                    .region()
                    .copy_out(at, n, &mut self.bounce, |piece| {
                        crc.update(piece);
                        write_out(piece.as_ptr(), piece.len())
                    })?;
            }
            self.consume(n);
            progress(self.pos)?;
        }
        Ok(self.verified.unwrap_or(0))
    }

    /// Tell the writer every byte arrived and was verified (and, for a file, is in place), and
    /// remove the stream's name. The writer's [`StreamWriter::finish`] returns then.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when the end of the stream has not been reached and
    /// verified yet.
    pub fn finish(mut self) -> Result<u32> {
        let Some(crc) = self.verified else {
            return Err(self.ring().err(
                ErrorKind::InvalidArgument,
                "the stream has not been read to its verified end",
            ));
        };
        self.done = true;
        let ring = self.ring();
        ring.u32(offsets::READER_STATE)
            .store(R_DONE, Ordering::Release);
        ring.space().notify(false);
        ring.remove_name();
        Ok(crc)
    }
}

impl Drop for StreamReader {
    fn drop(&mut self) {
        if self.done || self.framed.region().check_backing().is_err() {
            return;
        }
        let ring = self.ring();
        ring.u32(offsets::READER_STATE)
            .store(R_FAILED, Ordering::Release);
        ring.space().notify(false);
        if !ring.writer_alive() {
            // Nobody is left who could complete or clean up this stream.
            ring.remove_name();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::unique;
    use crate::segment::ShmObject;
    use std::time::Duration;

    struct Rm(String);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = ShmObject::remove(&self.0);
        }
    }

    #[test]
    fn control_words_sit_at_their_spec_offsets() {
        let name = unique("shmb_t_st_");
        let _rm = Rm(name.clone());
        let mut w = StreamWriter::create(&name, 1000, Some(5), &FramedOptions::default()).unwrap();
        let r = w.framed().region();
        assert_eq!(r.get::<u32>(12).unwrap(), STREAM_HEADER_LEN);
        assert_eq!(r.get::<u32>(16).unwrap(), 2);
        assert_eq!(r.get::<u64>(24).unwrap(), 1000);
        assert_eq!(r.get::<u64>(256).unwrap(), 5);
        assert_eq!(r.get::<u32>(272).unwrap(), std::process::id());
        w.write(b"hello", &mut Wait::forever()).unwrap();
        assert_eq!(w.framed().region().get::<u64>(128).unwrap(), 5);
        let mut rd = StreamReader::open(&name).unwrap();
        let r2 = rd.framed().region();
        assert_eq!(r2.get::<u32>(324).unwrap(), std::process::id());
        assert_eq!(r2.get::<u32>(320).unwrap(), 1);
        let mut buf = [0u8; 16];
        assert_eq!(rd.read(&mut buf, &mut Wait::forever()).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(rd.framed().region().get::<u64>(192).unwrap(), 5);
        let crc = w.publish_end().unwrap();
        assert_eq!(crc, crc32fast::hash(b"hello"));
        assert_eq!(rd.read(&mut buf, &mut Wait::forever()).unwrap(), 0);
        let r3 = rd.framed().region();
        assert_eq!(r3.get::<u32>(264).unwrap(), 1);
        assert_eq!(r3.get::<u32>(268).unwrap(), crc);
        assert_eq!(rd.finish().unwrap(), crc);
        let st = status(w.framed()).unwrap();
        assert_eq!(st.reader_state, ReaderState::Done);
        assert_eq!(st.writer_state, WriterState::Finished);
        w.finish(&mut Wait::timeout(Duration::from_secs(5)))
            .unwrap();
    }

    #[test]
    fn a_small_ring_carries_much_more_than_its_size_across_threads() {
        let name = unique("shmb_t_st_");
        let _rm = Rm(name.clone());
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let w = StreamWriter::create(&name, 4099, None, &FramedOptions::default()).unwrap();
        let n2 = name.clone();
        let reader = std::thread::spawn(move || {
            let mut rd = StreamReader::open(&n2).unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0u8; 1000];
            loop {
                let n = rd
                    .read(&mut buf, &mut Wait::timeout(Duration::from_secs(20)))
                    .unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            rd.finish().unwrap();
            out
        });
        let mut w = w;
        for part in data.chunks(777) {
            w.write(part, &mut Wait::timeout(Duration::from_secs(20)))
                .unwrap();
        }
        w.finish(&mut Wait::timeout(Duration::from_secs(20)))
            .unwrap();
        assert_eq!(reader.join().unwrap(), data);
    }

    #[test]
    fn dropped_writer_aborts_and_dropped_reader_fails_the_writer() {
        let name = unique("shmb_t_st_");
        let _rm = Rm(name.clone());
        let mut w = StreamWriter::create(&name, 64, None, &FramedOptions::default()).unwrap();
        w.write(b"partial", &mut Wait::forever()).unwrap();
        let mut rd = StreamReader::open(&name).unwrap();
        drop(w);
        let mut buf = [0u8; 64];
        assert_eq!(rd.read(&mut buf, &mut Wait::forever()).unwrap(), 7);
        let err = rd.read(&mut buf, &mut Wait::forever()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
        let _ = ShmObject::remove(&name);

        let mut w = StreamWriter::create(&name, 64, None, &FramedOptions::default()).unwrap();
        let rd = StreamReader::open(&name).unwrap();
        let err = StreamReader::open(&name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        drop(rd);
        w.write(&[1u8; 64], &mut Wait::forever()).unwrap();
        let err = w
            .write(&[1u8; 1], &mut Wait::timeout(Duration::from_secs(5)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
    }

    #[test]
    fn corrupt_positions_are_rejected_and_idle_waits_time_out() {
        let name = unique("shmb_t_st_");
        let _rm = Rm(name.clone());
        let w = StreamWriter::create(&name, 64, None, &FramedOptions::default()).unwrap();
        let mut rd = StreamReader::open(&name).unwrap();
        let mut buf = [0u8; 8];
        let err = rd
            .read(&mut buf, &mut Wait::timeout(Duration::from_millis(50)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        w.framed()
            .region()
            .set(offsets::WRITE_POS, 1000u64)
            .unwrap();
        let err = rd.read(&mut buf, &mut Wait::forever()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptHeader, "{err}");
    }
}
