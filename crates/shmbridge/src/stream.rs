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
//! - Two futex words, `data_signal` (bumped by the writer when it adds data or ends the
//!   stream) and `space_signal` (bumped by the reader when it frees space, attaches or ends),
//!   each with a count of sleepers so a wake costs a syscall only when someone sleeps.
//! - Liveness: the writer's and the reader's pid and start time. Each side sleeps in slices of
//!   [`LIVENESS_SLICE`] and checks its peer between slices, so a peer killed with `SIGKILL` is
//!   noticed within a slice: the writer fails instead of blocking forever, and the reader
//!   fails instead of accepting partial data.
//! - The end: the writer stores the CRC-32 of every byte it wrote and the total, then sets
//!   `writer_state` to finished. The reader accepts the stream only when its own count and
//!   CRC-32 match those, then (after the caller has put the data in place) sets
//!   `reader_state` to done, which is what the writer waits for.
//!
//! Bounded memory on both sides: data moves between a file descriptor and the ring with
//! `read(2)`/`write(2)` straight into and out of the mapping, at most [`CHUNK`] bytes at a
//! time, with no intermediate buffer.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::framed::{flags, FramedOptions, FramedSegment, Kind};
use crate::mode::Access;
use crate::sys;

/// Header length of a stream segment: the common 128 bytes plus four cache lines of control
/// words. The ring starts here.
pub const STREAM_HEADER_LEN: u32 = 384;

/// The most bytes moved by one `read(2)`/`write(2)` between a descriptor and the ring.
pub const CHUNK: usize = 1 << 20;

/// How long a side sleeps on a futex before it checks that its peer is still alive.
pub const LIVENESS_SLICE: Duration = Duration::from_millis(100);

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
    /// The writer's pid.
    pub writer_pid: u32,
    /// Whether the writer still runs.
    pub writer_alive: bool,
    /// The reader's pid (0: none attached).
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

    fn writer_alive(&self) -> bool {
        let pid = self.u32(offsets::WRITER_PID).load(Ordering::Acquire);
        pid != 0 && sys::process_alive(pid, self.u64(offsets::WRITER_START).load(Ordering::Acquire))
    }

    fn reader_alive(&self) -> bool {
        let pid = self.u32(offsets::READER_PID).load(Ordering::Acquire);
        pid != 0 && sys::process_alive(pid, self.u64(offsets::READER_START).load(Ordering::Acquire))
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

    /// Bump a futex word and wake its sleepers, if any.
    fn signal(&self, word: u64, waiters: u64) {
        let w = self.u32(word);
        w.fetch_add(1, Ordering::SeqCst);
        if self.u32(waiters).load(Ordering::SeqCst) > 0 {
            sys::futex_wake_all(w);
        }
    }

    /// Wait until `ready()` says so. Spins briefly, then sleeps on the futex `word` in slices
    /// of [`LIVENESS_SLICE`], calling `check()` (peer liveness) between slices. `timeout` is an
    /// inactivity limit: it restarts whenever the futex word moves (the peer made progress).
    fn wait_until(
        &self,
        word: u64,
        waiters: u64,
        timeout: Option<Duration>,
        what: &str,
        mut ready: impl FnMut() -> Result<bool>,
        mut check: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        const SPINS: u32 = 64;
        for _ in 0..SPINS {
            if ready()? {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        let w = self.u32(word);
        let mut seen = w.load(Ordering::SeqCst);
        let mut since = Instant::now();
        loop {
            if ready()? {
                return Ok(());
            }
            check()?;
            self.framed.region().check_backing()?;
            let slice = match timeout {
                None => LIVENESS_SLICE,
                Some(t) => match t.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(LIVENESS_SLICE),
                    _ => {
                        return Err(self.err(
                            ErrorKind::Timeout,
                            format!("timed out after {t:?} waiting for {what}"),
                        ))
                    }
                },
            };
            let count = self.u32(waiters);
            count.fetch_add(1, Ordering::SeqCst);
            if !ready()? {
                sys::futex_wait(w, seen, Some(slice));
            }
            count.fetch_sub(1, Ordering::SeqCst);
            let now = w.load(Ordering::SeqCst);
            if now != seen {
                seen = now;
                since = Instant::now();
            }
        }
    }
}

/// The producing end of a stream segment. It creates the segment; dropping it before
/// [`finish`](Self::finish) marks the stream aborted, so the reader fails instead of waiting.
#[derive(Debug)]
pub struct StreamWriter {
    framed: FramedSegment,
    crc: crc32fast::Hasher,
    pos: u64,
    total: Option<u64>,
    done: bool,
}

impl StreamWriter {
    /// Create the stream segment `name` with a ring of `capacity` bytes (the segment is
    /// `STREAM_HEADER_LEN + capacity` bytes), announcing `total_len` bytes when known.
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
        let framed =
            FramedSegment::create_kind(name, capacity, Kind::Stream, STREAM_HEADER_LEN, opts)?;
        let ring = Ring::new(&framed)?;
        let pid = std::process::id();
        ring.u64(offsets::TOTAL_LEN)
            .store(total_len.unwrap_or(UNKNOWN_LEN), Ordering::Relaxed);
        ring.u64(offsets::WRITER_START)
            .store(sys::process_start_time(pid).unwrap_or(0), Ordering::Relaxed);
        ring.u32(offsets::WRITER_PID).store(pid, Ordering::Release);
        Ok(Self {
            framed,
            crc: crc32fast::Hasher::new(),
            pos: 0,
            total: total_len,
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

    fn check_reader(ring: &Ring<'_>) -> Result<()> {
        match ring.u32(offsets::READER_STATE).load(Ordering::Acquire) {
            R_FAILED => Err(ring.err(
                ErrorKind::PeerGone,
                "the receiver gave up (it failed or was stopped)",
            )),
            R_NONE => Ok(()),
            _ if !ring.reader_alive() => Err(ring.err(
                ErrorKind::PeerGone,
                format!(
                    "the receiver (pid {}) died",
                    ring.u32(offsets::READER_PID).load(Ordering::Acquire)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Wait for free space and return the ring's free contiguous area (pointer, length), at
    /// most `max` bytes (and at most [`CHUNK`]).
    fn reserve(
        &self,
        max: usize,
        timeout: Option<Duration>,
        tick: &mut dyn FnMut() -> Result<()>,
    ) -> Result<(*mut u8, usize)> {
        let ring = self.ring();
        let cap = ring.cap;
        let pos = self.pos;
        ring.wait_until(
            offsets::SPACE_SIGNAL,
            offsets::SPACE_WAITERS,
            timeout,
            "the receiver to make room",
            || {
                let (_, r) = ring.positions()?;
                Ok(pos - r < cap)
            },
            || {
                Self::check_reader(&ring)?;
                tick()
            },
        )?;
        let (_, r) = ring.positions()?;
        let free = cap - (pos - r);
        let off = pos % cap;
        let n = free.min(cap - off).min(max as u64).min(CHUNK as u64) as usize;
        // SAFETY: off < cap, and the payload area holds cap bytes.
        Ok((unsafe { self.framed.payload_ptr().add(off as usize) }, n))
    }

    /// Publish `n` bytes just placed at the reserved area `ptr`.
    fn commit(&mut self, ptr: *const u8, n: usize) {
        // SAFETY: ptr..ptr+n is the area reserve() returned: inside the ring and owned by the
        // writer until write_pos moves past it, so the reader does not touch it meanwhile.
        self.crc
            .update(unsafe { std::slice::from_raw_parts(ptr, n) });
        self.pos += n as u64;
        let ring = self.ring();
        ring.u64(offsets::WRITE_POS)
            .store(self.pos, Ordering::Release);
        ring.signal(offsets::DATA_SIGNAL, offsets::DATA_WAITERS);
    }

    /// Copy `data` into the stream, waiting for room as needed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PeerGone`] when the receiver died or gave up; [`ErrorKind::Timeout`] when
    /// it made no room for `timeout`; [`ErrorKind::InvalidArgument`] past the announced total.
    pub fn write(&mut self, mut data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.check_room(data.len() as u64)?;
        while !data.is_empty() {
            let (ptr, n) = self.reserve(data.len(), timeout, &mut || Ok(()))?;
            // SAFETY: reserve() returned n writable bytes at ptr owned by the writer; data has
            // at least n bytes and does not overlap the mapping's ring area we own.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, n) };
            self.commit(ptr, n);
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

    /// `read(2)` from `fd` straight into the ring until end of file or `max` bytes, waiting
    /// for room as needed. Calls `progress(total written)` after each chunk and between the
    /// slices of a wait (at least every 100 ms); an error it returns stops the copy and is
    /// returned. Returns the bytes moved by this call.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write); an OS error from `read(2)`; whatever `progress` returns.
    pub fn write_from_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        max: u64,
        timeout: Option<Duration>,
        mut progress: impl FnMut(u64) -> Result<()>,
    ) -> Result<u64> {
        let start = self.pos;
        loop {
            let left = max - (self.pos - start);
            if left == 0 {
                break;
            }
            let left = left.min(usize::MAX as u64) as usize;
            let pos = self.pos;
            let (ptr, n) = self.reserve(left, timeout, &mut || progress(pos))?;
            // SAFETY: reserve() returned n writable bytes at ptr, owned by the writer.
            let got = unsafe { sys::read_raw(fd, ptr, n) }.map_err(|e| {
                Error::from_io(&e, "reading the input failed").with_segment(self.framed.name())
            })?;
            if got == 0 {
                break;
            }
            self.commit(ptr, got);
            progress(self.pos)?;
        }
        Ok(self.pos - start)
    }

    /// End the stream: publish the total and the CRC-32, then wait until the reader has taken
    /// and verified every byte (it confirms with [`StreamReader::finish`]). Returns the CRC.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when fewer bytes were written than announced (the stream
    /// is aborted); [`ErrorKind::PeerGone`] when the receiver died or rejected the data;
    /// [`ErrorKind::Timeout`] when it made no progress for `timeout`.
    pub fn finish(self, timeout: Option<Duration>) -> Result<u32> {
        self.finish_with(timeout, || Ok(()))
    }

    /// As [`finish`](Self::finish), calling `tick()` between the slices of the wait (at least
    /// every 100 ms); an error it returns stops the wait (the stream is then aborted, as when
    /// a writer is dropped unfinished) and is returned.
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish), and whatever `tick` returns.
    pub fn finish_with(
        mut self,
        timeout: Option<Duration>,
        mut tick: impl FnMut() -> Result<()>,
    ) -> Result<u32> {
        let crc = self.publish_end()?;
        let ring = self.ring();
        ring.wait_until(
            offsets::SPACE_SIGNAL,
            offsets::SPACE_WAITERS,
            timeout,
            "the receiver to take every byte",
            || Ok(ring.u32(offsets::READER_STATE).load(Ordering::Acquire) == R_DONE),
            || {
                Self::check_reader(&ring)?;
                tick()
            },
        )?;
        Ok(crc)
    }

    /// As [`finish`](Self::finish) without waiting for the reader: the data stays in the ring
    /// for a reader to take (and a reader can complete even after this process exits).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when fewer bytes were written than announced.
    pub fn publish_end(&mut self) -> Result<u32> {
        if self.done {
            return Ok(self.crc.clone().finalize());
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
        let ring = self.ring();
        ring.u64(offsets::TOTAL_LEN)
            .store(self.pos, Ordering::Relaxed);
        ring.u32(offsets::FINAL_CRC).store(crc, Ordering::Relaxed);
        ring.u32(offsets::WRITER_STATE)
            .store(W_FINISHED, Ordering::Release);
        self.mark_common(
            flags::PUBLISHED | flags::WRITER_CLOSED | flags::CHECKSUM,
            Some(crc),
        );
        ring.signal(offsets::DATA_SIGNAL, offsets::DATA_WAITERS);
        self.done = true;
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

    /// Mark the stream aborted (the reader fails at once). Also what dropping an unfinished
    /// writer does.
    pub fn abort(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        if self.framed.region().check_backing().is_err() {
            return;
        }
        let ring = self.ring();
        ring.u32(offsets::WRITER_STATE)
            .store(W_ABORTED, Ordering::Release);
        self.mark_common(flags::WRITER_CLOSED, None);
        ring.signal(offsets::DATA_SIGNAL, offsets::DATA_WAITERS);
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

    /// Attach to a stream segment as its one reader.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when it is not a stream; [`ErrorKind::AlreadyExists`] when
    /// another reader is attached (or was: a stream can be read once);
    /// [`ErrorKind::PermissionDenied`] for a read-only view.
    pub fn attach(framed: FramedSegment) -> Result<Self> {
        framed.region().check_writable()?;
        let ring = Ring::new(&framed)?;
        ring.positions()?;
        let pid = std::process::id();
        let claimed = ring.u32(offsets::READER_PID).compare_exchange(
            0,
            pid,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        if let Err(other) = claimed {
            return Err(ring.err(
                ErrorKind::AlreadyExists,
                format!("another receiver (pid {other}) has already attached to this stream; a stream can be read once"),
            ));
        }
        ring.u64(offsets::READER_START)
            .store(sys::process_start_time(pid).unwrap_or(0), Ordering::Release);
        ring.u32(offsets::READER_STATE)
            .store(R_ATTACHED, Ordering::Release);
        ring.signal(offsets::SPACE_SIGNAL, offsets::SPACE_WAITERS);
        let pos = ring.u64(offsets::READ_POS).load(Ordering::Acquire);
        Ok(Self {
            framed,
            crc: crc32fast::Hasher::new(),
            pos,
            verified: None,
            done: false,
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

    /// Wait for data; return the next filled contiguous area (at most [`CHUNK`] bytes), or
    /// `None` at the end of a stream whose count and CRC-32 were verified.
    fn next_chunk(
        &mut self,
        max: usize,
        timeout: Option<Duration>,
        tick: &mut dyn FnMut() -> Result<()>,
    ) -> Result<Option<(*const u8, usize)>> {
        if self.verified.is_some() {
            return Ok(None);
        }
        let ring = self.ring();
        let pos = self.pos;
        ring.wait_until(
            offsets::DATA_SIGNAL,
            offsets::DATA_WAITERS,
            timeout,
            "the sender",
            || {
                let (w, _) = ring.positions()?;
                Ok(w > pos || ring.u32(offsets::WRITER_STATE).load(Ordering::Acquire) != W_STREAMING)
            },
            || {
                tick()?;
                if ring.writer_alive() {
                    Ok(())
                } else {
                    Err(ring.err(
                        ErrorKind::PeerGone,
                        format!(
                            "the sender (pid {}) died before the stream was complete; {} bytes received, nothing accepted",
                            ring.u32(offsets::WRITER_PID).load(Ordering::Acquire),
                            pos
                        ),
                    ))
                }
            },
        )?;
        let state = ring.u32(offsets::WRITER_STATE).load(Ordering::Acquire);
        let (w, _) = ring.positions()?;
        if w > pos {
            let off = pos % ring.cap;
            let n = (w - pos)
                .min(ring.cap - off)
                .min(max as u64)
                .min(CHUNK as u64) as usize;
            // SAFETY: off < cap and the payload area is cap bytes long.
            return Ok(Some((
                unsafe { self.framed.payload_ptr().add(off as usize) },
                n,
            )));
        }
        match state {
            W_FINISHED => {
                let total = ring.u64(offsets::TOTAL_LEN).load(Ordering::Acquire);
                let want = ring.u32(offsets::FINAL_CRC).load(Ordering::Acquire);
                let got = self.crc.clone().finalize();
                if total != pos {
                    return Err(ring.err(
                        ErrorKind::Truncated,
                        format!("the stream ended after {pos} bytes but the sender says it wrote {total}"),
                    ));
                }
                if got != want {
                    return Err(ring.err(
                        ErrorKind::ChecksumMismatch,
                        format!("checksum mismatch: the stream's CRC-32 is {got:08x}, the sender says {want:08x}"),
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

    /// Hash and release `n` bytes at `ptr` (from `next_chunk`).
    fn consume(&mut self, ptr: *const u8, n: usize) {
        // SAFETY: ptr..ptr+n is a filled area next_chunk returned; the writer does not touch it
        // until read_pos moves past it.
        self.crc
            .update(unsafe { std::slice::from_raw_parts(ptr, n) });
        self.pos += n as u64;
        let ring = self.ring();
        ring.u64(offsets::READ_POS)
            .store(self.pos, Ordering::Release);
        ring.signal(offsets::SPACE_SIGNAL, offsets::SPACE_WAITERS);
    }

    /// Copy the next bytes into `buf`; `Ok(0)` at the end of a verified stream.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PeerGone`] when the writer died or aborted before the end;
    /// [`ErrorKind::ChecksumMismatch`] / [`ErrorKind::Truncated`] when the end does not verify;
    /// [`ErrorKind::Timeout`] when no data came for `timeout`.
    pub fn read(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        match self.next_chunk(buf.len(), timeout, &mut || Ok(()))? {
            None => Ok(0),
            Some((ptr, n)) => {
                // SAFETY: ptr has n readable bytes (next_chunk); buf has at least n.
                unsafe { std::ptr::copy_nonoverlapping(ptr, buf.as_mut_ptr(), n) };
                self.consume(ptr, n);
                Ok(n)
            }
        }
    }

    /// `write(2)` every byte of the stream straight from the ring to `fd`, until the verified
    /// end. Calls `progress(total consumed)` after each chunk and between the slices of a wait
    /// (at least every 100 ms); an error it returns stops the copy and is returned. Returns
    /// the CRC-32.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); an OS error from `write(2)`; whatever `progress` returns.
    pub fn read_to_fd(
        &mut self,
        fd: BorrowedFd<'_>,
        timeout: Option<Duration>,
        mut progress: impl FnMut(u64) -> Result<()>,
    ) -> Result<u32> {
        loop {
            let pos = self.pos;
            let Some((ptr, n)) = self.next_chunk(CHUNK, timeout, &mut || progress(pos))? else {
                break;
            };
            // SAFETY: next_chunk returned n readable bytes at ptr, stable until consume().
            unsafe { sys::write_all_raw(fd, ptr, n) }.map_err(|e| {
                Error::from_io(&e, "writing the output failed").with_segment(self.framed.name())
            })?;
            self.consume(ptr, n);
            progress(self.pos)?;
        }
        Ok(self.verified.unwrap_or(0))
    }

    /// Tell the writer every byte arrived and was verified (and, for a file, is in place). The
    /// writer's [`StreamWriter::finish`] returns then.
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
        ring.signal(offsets::SPACE_SIGNAL, offsets::SPACE_WAITERS);
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
        ring.signal(offsets::SPACE_SIGNAL, offsets::SPACE_WAITERS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::unique;
    use crate::segment::ShmObject;

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
        w.write(b"hello", None).unwrap();
        assert_eq!(w.framed().region().get::<u64>(128).unwrap(), 5);
        let mut rd = StreamReader::open(&name).unwrap();
        let r2 = rd.framed().region();
        assert_eq!(r2.get::<u32>(324).unwrap(), std::process::id());
        assert_eq!(r2.get::<u32>(320).unwrap(), 1);
        let mut buf = [0u8; 16];
        assert_eq!(rd.read(&mut buf, None).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(rd.framed().region().get::<u64>(192).unwrap(), 5);
        let crc = w.publish_end().unwrap();
        assert_eq!(crc, crc32fast::hash(b"hello"));
        assert_eq!(rd.read(&mut buf, None).unwrap(), 0);
        let r3 = rd.framed().region();
        assert_eq!(r3.get::<u32>(264).unwrap(), 1);
        assert_eq!(r3.get::<u32>(268).unwrap(), crc);
        assert_eq!(rd.finish().unwrap(), crc);
        let st = status(w.framed()).unwrap();
        assert_eq!(st.reader_state, ReaderState::Done);
        assert_eq!(st.writer_state, WriterState::Finished);
        w.finish(Some(Duration::from_secs(5))).unwrap();
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
                let n = rd.read(&mut buf, Some(Duration::from_secs(20))).unwrap();
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
            w.write(part, Some(Duration::from_secs(20))).unwrap();
        }
        w.finish(Some(Duration::from_secs(20))).unwrap();
        assert_eq!(reader.join().unwrap(), data);
    }

    #[test]
    fn dropped_writer_aborts_and_dropped_reader_fails_the_writer() {
        let name = unique("shmb_t_st_");
        let _rm = Rm(name.clone());
        let mut w = StreamWriter::create(&name, 64, None, &FramedOptions::default()).unwrap();
        w.write(b"partial", None).unwrap();
        let mut rd = StreamReader::open(&name).unwrap();
        drop(w);
        let mut buf = [0u8; 64];
        assert_eq!(rd.read(&mut buf, None).unwrap(), 7);
        let err = rd.read(&mut buf, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerGone, "{err}");
        let _ = ShmObject::remove(&name);

        let mut w = StreamWriter::create(&name, 64, None, &FramedOptions::default()).unwrap();
        let rd = StreamReader::open(&name).unwrap();
        let err = StreamReader::open(&name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        drop(rd);
        w.write(&[1u8; 64], None).unwrap();
        let err = w
            .write(&[1u8; 1], Some(Duration::from_secs(5)))
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
            .read(&mut buf, Some(Duration::from_millis(50)))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        w.framed()
            .region()
            .set(offsets::WRITE_POS, 1000u64)
            .unwrap();
        let err = rd.read(&mut buf, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CorruptHeader, "{err}");
    }
}
