//! The framed layout (version 1.0): a 128-byte header, then the payload.
//!
//! The header says what the segment holds, how much of it is valid, and carries the words that
//! writers and readers synchronise on (a seqlock and a futex word). `docs/SPEC.md`, "Layout 3",
//! describes every byte; the offsets below are that table in code and nowhere else.
//!
//! A reader trusts nothing: [`FramedSegment::from_region`] checks the magic, the major version,
//! `header_len`, `capacity` and `payload_len` against the real size of the segment before it
//! touches the payload, and every read re-checks the real size, so a segment truncated by
//! another process is an error, not a `SIGBUS`.
//!
//! Concurrency: one writer at a time (the layout does not arbitrate between writers), any
//! number of readers. The writer makes `sequence` odd, writes, makes it even again; a reader
//! copies between two loads of `sequence` and retries when they differ or are odd. A writer
//! that dies mid-write leaves `sequence` odd forever, so readers time out instead of taking a
//! half-written payload.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::mode::{Access, OpenMode};
use crate::region::{Region, Scalar};
use crate::segment::{Segment, SegmentOptions, ShmObject};
use crate::sys;

/// Byte offsets of the version-1 header fields (`docs/SPEC.md`, "Layout 3").
pub mod offsets {
    /// 8 bytes: [`MAGIC`](super::MAGIC).
    pub const MAGIC: u64 = 0;
    /// u16: major version; readers reject a major they do not know.
    pub const VERSION_MAJOR: u64 = 8;
    /// u16: minor version; readers accept any minor.
    pub const VERSION_MINOR: u64 = 10;
    /// u32: offset of the payload from the start of the segment.
    pub const HEADER_LEN: u64 = 12;
    /// u32: what the payload area holds ([`Kind`](super::Kind)).
    pub const KIND: u64 = 16;
    /// u32: [`flags`](super::flags).
    pub const FLAGS: u64 = 20;
    /// u64: bytes available for the payload.
    pub const CAPACITY: u64 = 24;
    /// u64: bytes of valid payload, at most `capacity`.
    pub const PAYLOAD_LEN: u64 = 32;
    /// u64: seqlock counter, odd while a write is in progress.
    pub const SEQUENCE: u64 = 40;
    /// u32: futex word, incremented on every publish.
    pub const PUBLISH_COUNT: u64 = 48;
    /// u32: number of readers sleeping on `publish_count`.
    pub const WAITERS: u64 = 52;
    /// u32: CRC-32 (ISO-HDLC, as zlib's `crc32`) of the payload when `CHECKSUM` is set.
    pub const CHECKSUM: u64 = 56;
    /// u32: pid of the process that created the segment.
    pub const CREATOR_PID: u64 = 60;
    /// u64: that process's start time in clock ticks since boot (0 if unknown).
    pub const CREATOR_START: u64 = 64;
    /// u64: creation time, nanoseconds since the Unix epoch.
    pub const CREATED_NS: u64 = 72;
}

/// The 8 bytes every framed segment starts with: ASCII `SHMBRIDG`.
pub const MAGIC: [u8; 8] = *b"SHMBRIDG";
/// The major version this library writes and reads.
pub const VERSION_MAJOR: u16 = 1;
/// The minor version this library writes.
pub const VERSION_MINOR: u16 = 0;
/// The header length this library writes; readers accept any multiple of 64 from 128 up.
pub const HEADER_LEN: u32 = 128;
/// The least header length a reader accepts.
pub const MIN_HEADER_LEN: u32 = 128;

/// Bits of the `flags` field. Readers ignore bits they do not know.
pub mod flags {
    /// `checksum` holds the CRC-32 of the current payload.
    pub const CHECKSUM: u32 = 1 << 0;
    /// The writer has finished for good: waiting readers return.
    pub const WRITER_CLOSED: u32 = 1 << 1;
    /// At least one payload has been published.
    pub const PUBLISHED: u32 = 1 << 2;
}

/// What a framed segment's payload area holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One payload of `payload_len` bytes, replaced as a whole by each publish.
    Message,
    /// A single-producer single-consumer byte stream (a ring).
    Stream,
    /// A kind this library does not know (a newer minor version).
    Other(u32),
}

impl Kind {
    /// The number stored in the header.
    #[must_use]
    pub fn code(self) -> u32 {
        match self {
            Self::Message => 1,
            Self::Stream => 2,
            Self::Other(n) => n,
        }
    }

    /// The kind stored as `code`.
    #[must_use]
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => Self::Message,
            2 => Self::Stream,
            n => Self::Other(n),
        }
    }

    /// `message`, `stream`, or `kind-N`.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::Message => "message".into(),
            Self::Stream => "stream".into(),
            Self::Other(n) => format!("kind-{n}"),
        }
    }
}

/// A snapshot of every header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Major version.
    pub version_major: u16,
    /// Minor version.
    pub version_minor: u16,
    /// Payload offset.
    pub header_len: u32,
    /// What the payload area holds.
    pub kind: Kind,
    /// Flag bits.
    pub flags: u32,
    /// Bytes available for the payload.
    pub capacity: u64,
    /// Bytes of valid payload.
    pub payload_len: u64,
    /// Seqlock counter.
    pub sequence: u64,
    /// Publishes so far (wraps).
    pub publish_count: u32,
    /// CRC-32 of the payload, when `flags` has `CHECKSUM`.
    pub checksum: Option<u32>,
    /// Creator's pid.
    pub creator_pid: u32,
    /// Creator's start time (clock ticks since boot).
    pub creator_start_time: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

impl HeaderInfo {
    /// Whether the process that created the segment still runs (pid and start time match).
    #[must_use]
    pub fn creator_alive(&self) -> bool {
        sys::process_alive(self.creator_pid, self.creator_start_time)
    }

    /// Whether the writer marked the segment closed.
    #[must_use]
    pub fn writer_closed(&self) -> bool {
        self.flags & flags::WRITER_CLOSED != 0
    }
}

/// Options for creating a framed segment.
#[derive(Clone, Copy, Debug, Default)]
pub struct FramedOptions {
    /// Options of the underlying segment (permissions, access, populate).
    pub segment: SegmentOptions,
}

/// A framed segment: header plus payload, over a named segment or any other [`Region`].
#[derive(Debug)]
pub struct FramedSegment {
    region: Region,
    object: Option<ShmObject>,
    header_len: u64,
    capacity: u64,
    kind: Kind,
}

/// How long a plain read retries while a write is in progress before giving up.
const READ_RACE_LIMIT: Duration = Duration::from_secs(2);

impl FramedSegment {
    /// Create the named segment with room for `capacity` payload bytes (`128 + capacity` bytes
    /// in all) and an empty message payload.
    ///
    /// # Errors
    ///
    /// Those of [`Segment::open_with`] with `CreateOnly`; [`ErrorKind::InvalidSize`] when
    /// `capacity + 128` overflows.
    pub fn create(name: &str, capacity: u64, opts: &FramedOptions) -> Result<Self> {
        Self::create_kind(name, capacity, Kind::Message, HEADER_LEN, opts)
    }

    /// Create a framed segment of any kind; the kind's own area (if any) must follow the
    /// common header within `header_len` (see SPEC.md). Used by the stream layer.
    pub(crate) fn create_kind(
        name: &str,
        capacity: u64,
        kind: Kind,
        header_len: u32,
        opts: &FramedOptions,
    ) -> Result<Self> {
        let total = capacity.checked_add(u64::from(header_len)).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidSize,
                format!("invalid capacity {capacity}: too large"),
            )
            .with_segment(name)
        })?;
        let seg = Segment::open_with(name, OpenMode::CreateOnly, total, &opts.segment)?;
        let (object, region) = seg.into_parts();
        match Self::init_with_header(region, kind, header_len) {
            Ok(mut framed) => {
                framed.object = Some(object);
                Ok(framed)
            }
            Err(e) => {
                let _ = ShmObject::remove(object.name());
                Err(e)
            }
        }
    }

    /// Write a fresh version-1 header into `region` (which must be writable and at least 128
    /// bytes) and return the framed view of it. Whatever the region held is replaced.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] for a read-only region; [`ErrorKind::InvalidSize`] when
    /// it is smaller than the header.
    pub fn init(region: Region, kind: Kind) -> Result<Self> {
        Self::init_with_header(region, kind, HEADER_LEN)
    }

    /// As [`init`](Self::init), with a longer header (a multiple of 64, at least 128) whose
    /// bytes past the common 128 belong to the kind (the stream kind's control words).
    pub(crate) fn init_with_header(region: Region, kind: Kind, header_len32: u32) -> Result<Self> {
        debug_assert!(header_len32 >= MIN_HEADER_LEN && header_len32 % 64 == 0);
        region.check_writable()?;
        let header_len = u64::from(header_len32);
        if (region.len() as u64) < header_len {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                format!(
                    "{} bytes is too small for a framed segment (the header alone is {header_len})",
                    region.len()
                ),
            )
            .with_segment(region.label()));
        }
        region.check_backing()?;
        let capacity = region.len() as u64 - header_len;
        let pid = std::process::id();
        let created_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        region.fill(0, header_len32 as usize, 0)?;
        region.set(offsets::VERSION_MAJOR, VERSION_MAJOR)?;
        region.set(offsets::VERSION_MINOR, VERSION_MINOR)?;
        region.set(offsets::HEADER_LEN, header_len32)?;
        region.set(offsets::KIND, kind.code())?;
        region.set(offsets::CAPACITY, capacity)?;
        region.set(offsets::CREATOR_PID, pid)?;
        region.set(
            offsets::CREATOR_START,
            sys::process_start_time(pid).unwrap_or(0),
        )?;
        region.set(offsets::CREATED_NS, created_ns)?;
        // The magic goes last: a reader that sees it sees a complete header.
        fence(Ordering::Release);
        region.write_at(offsets::MAGIC, &MAGIC)?;
        Ok(Self {
            region,
            object: None,
            header_len,
            capacity,
            kind,
        })
    }

    /// Open the named framed segment and validate its header.
    ///
    /// # Errors
    ///
    /// Those of [`Segment::open`], then those of [`from_region`](Self::from_region).
    pub fn open(name: &str, access: Access) -> Result<Self> {
        let (object, region) = Segment::open(name, access)?.into_parts();
        let mut framed = Self::from_region(region)?;
        framed.object = Some(object);
        Ok(framed)
    }

    /// Validate the header in `region` and return the framed view of it.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::BadMagic`]: too small for a header, or the magic is not `SHMBRIDG`
    ///   (a raw or size-prefixed segment, say);
    /// - [`ErrorKind::UnsupportedVersion`]: a major version other than 1;
    /// - [`ErrorKind::CorruptHeader`]: `header_len` below 128 or not a multiple of 64, or
    ///   `payload_len` above `capacity`;
    /// - [`ErrorKind::Truncated`]: `header_len` or `header_len + capacity` past the real size.
    pub fn from_region(region: Region) -> Result<Self> {
        region.check_backing()?;
        let name = region.label().to_owned();
        let err = |kind, detail: String| Err(Error::new(kind, detail).with_segment(&name));
        let size = region.len() as u64;
        if size < 16 {
            return err(
                ErrorKind::BadMagic,
                format!("not a framed segment: {size} bytes is smaller than a framed header"),
            );
        }
        let mut magic = [0u8; 8];
        region.read_at(offsets::MAGIC, &mut magic)?;
        if magic != MAGIC {
            return err(
                ErrorKind::BadMagic,
                format!(
                    "not a framed segment: it starts with {:?}, not the magic \"SHMBRIDG\" (a raw or size-prefixed segment?)",
                    String::from_utf8_lossy(&magic)
                ),
            );
        }
        fence(Ordering::Acquire);
        let major: u16 = region.get(offsets::VERSION_MAJOR)?;
        let minor: u16 = region.get(offsets::VERSION_MINOR)?;
        if major != VERSION_MAJOR {
            return err(
                ErrorKind::UnsupportedVersion,
                format!("framed layout version {major}.{minor} is not supported (this library reads {VERSION_MAJOR}.x)"),
            );
        }
        let header_len: u32 = region.get(offsets::HEADER_LEN)?;
        if header_len < MIN_HEADER_LEN || header_len % 64 != 0 {
            return err(
                ErrorKind::CorruptHeader,
                format!("corrupt header: header_len {header_len} must be a multiple of 64 and at least {MIN_HEADER_LEN}"),
            );
        }
        let header_len = u64::from(header_len);
        if header_len > size {
            return err(
                ErrorKind::Truncated,
                format!(
                    "truncated: header_len is {header_len} but the segment is only {size} bytes"
                ),
            );
        }
        let capacity: u64 = region.get(offsets::CAPACITY)?;
        if capacity > size - header_len {
            return err(
                ErrorKind::Truncated,
                format!(
                    "truncated: the header declares {capacity} bytes of capacity but only {} follow the header",
                    size - header_len
                ),
            );
        }
        let kind = Kind::from_code(region.get(offsets::KIND)?);
        let framed = Self {
            region,
            object: None,
            header_len,
            capacity,
            kind,
        };
        let payload_len = framed.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Acquire);
        if payload_len > capacity && kind == Kind::Message {
            return err(
                ErrorKind::CorruptHeader,
                format!(
                    "corrupt header: payload_len {payload_len} is larger than capacity {capacity}"
                ),
            );
        }
        Ok(framed)
    }

    /// The segment name (or path) this framed view is over.
    #[must_use]
    pub fn name(&self) -> &str {
        self.region.label()
    }

    /// The underlying mapping (header included).
    #[must_use]
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The named object, when the view was opened or created by name.
    #[must_use]
    pub fn object(&self) -> Option<&ShmObject> {
        self.object.as_ref()
    }

    /// Bytes available for the payload.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Offset of the payload in the segment.
    #[must_use]
    pub fn header_len(&self) -> u64 {
        self.header_len
    }

    /// What the payload area holds.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The address of the payload area (`capacity()` bytes).
    #[must_use]
    pub fn payload_ptr(&self) -> *mut u8 {
        // SAFETY: header_len <= region.len() was validated on open/init.
        unsafe { self.region.as_mut_ptr().add(self.header_len as usize) }
    }

    pub(crate) fn u64_at(&self, offset: u64) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= self.header_len);
        // SAFETY: offset is one of the 8-aligned header fields, inside the mapping (header_len
        // >= 128 was validated), the mapping is page-aligned, and the region lives as long as
        // the returned reference. Other processes access the word only atomically.
        unsafe { AtomicU64::from_ptr(self.region.as_mut_ptr().add(offset as usize).cast()) }
    }

    pub(crate) fn u32_at(&self, offset: u64) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= self.header_len);
        // SAFETY: as in u64_at, for a 4-aligned u32 field.
        unsafe { AtomicU32::from_ptr(self.region.as_mut_ptr().add(offset as usize).cast()) }
    }

    /// A snapshot of the header fields.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`] when the segment shrank below its header.
    pub fn header(&self) -> Result<HeaderInfo> {
        self.region.check_backing()?;
        let fl = self.u32_at(offsets::FLAGS).load(Ordering::Acquire);
        Ok(HeaderInfo {
            version_major: self.region.get(offsets::VERSION_MAJOR)?,
            version_minor: self.region.get(offsets::VERSION_MINOR)?,
            header_len: self.header_len as u32,
            kind: self.kind,
            flags: fl,
            capacity: self.capacity,
            payload_len: self.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Acquire),
            sequence: self.u64_at(offsets::SEQUENCE).load(Ordering::Acquire),
            publish_count: self.u32_at(offsets::PUBLISH_COUNT).load(Ordering::Acquire),
            checksum: (fl & flags::CHECKSUM != 0)
                .then(|| self.u32_at(offsets::CHECKSUM).load(Ordering::Acquire)),
            creator_pid: self.region.get(offsets::CREATOR_PID)?,
            creator_start_time: self.region.get(offsets::CREATOR_START)?,
            created_ns: self.region.get(offsets::CREATED_NS)?,
        })
    }

    fn require_message(&self) -> Result<()> {
        if self.kind == Kind::Message {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "this is a {} segment; only message segments have a single payload",
                self.kind.name()
            ),
        )
        .with_segment(self.name()))
    }

    /// Publish `data` as the new payload, with its CRC-32.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `data` is larger than the capacity; those of
    /// [`begin_write`](Self::begin_write).
    pub fn write(&self, data: &[u8]) -> Result<()> {
        // Refuse before the write starts, so a payload too large leaves the old one intact.
        self.payload_offset(0, data.len())?;
        let mut w = self.begin_write()?;
        w.write_at(0, data)?;
        w.commit(data.len() as u64, true)
    }

    /// Start replacing the payload: the sequence turns odd, so readers wait or retry until
    /// [`PayloadWriter::commit`]. Dropping the writer without committing publishes an empty
    /// payload (the old one was partly overwritten) and wakes nobody.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only view; [`ErrorKind::Unsupported`] on a
    /// stream segment; [`ErrorKind::Truncated`] if the segment shrank.
    pub fn begin_write(&self) -> Result<PayloadWriter<'_>> {
        self.require_message()?;
        self.region.check_writable()?;
        self.region.check_backing()?;
        let seq = self.u64_at(offsets::SEQUENCE);
        let s = seq.load(Ordering::Relaxed);
        // Odd means a previous writer died mid-write: take over from it.
        let start = s | 1;
        seq.store(start, Ordering::Relaxed);
        fence(Ordering::Release);
        Ok(PayloadWriter {
            framed: self,
            start,
            done: false,
        })
    }

    fn end_write(&self, start: u64, len: u64, crc: Option<u32>, publish: bool) {
        self.u64_at(offsets::PAYLOAD_LEN)
            .store(len, Ordering::Relaxed);
        self.u32_at(offsets::CHECKSUM)
            .store(crc.unwrap_or(0), Ordering::Relaxed);
        let fl = self.u32_at(offsets::FLAGS);
        let mut set = if publish { flags::PUBLISHED } else { 0 };
        if crc.is_some() {
            set |= flags::CHECKSUM;
        }
        let keep = fl.load(Ordering::Relaxed) & !(flags::CHECKSUM);
        fl.store(keep | set, Ordering::Relaxed);
        self.u64_at(offsets::SEQUENCE)
            .store(start.wrapping_add(1), Ordering::Release);
        if publish {
            self.bump_and_wake();
        }
    }

    /// Increment the futex word and wake the readers sleeping on it.
    pub(crate) fn bump_and_wake(&self) {
        let word = self.u32_at(offsets::PUBLISH_COUNT);
        word.fetch_add(1, Ordering::SeqCst);
        if self.u32_at(offsets::WAITERS).load(Ordering::SeqCst) > 0 {
            sys::futex_wake_all(word);
        }
    }

    /// Mark the segment closed by its writer and wake every waiting reader.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only view.
    pub fn close_writer(&self) -> Result<()> {
        self.region.check_writable()?;
        self.region.check_backing()?;
        self.u32_at(offsets::FLAGS)
            .fetch_or(flags::WRITER_CLOSED, Ordering::AcqRel);
        // Wake sleepers without bumping the counter: a bump would look like a publish.
        sys::futex_wake_all(self.u32_at(offsets::PUBLISH_COUNT));
        Ok(())
    }

    /// The current value of the publish counter; pass it to [`wait`](Self::wait) to wait for
    /// the next publish.
    #[must_use]
    pub fn publish_count(&self) -> u32 {
        self.u32_at(offsets::PUBLISH_COUNT).load(Ordering::Acquire)
    }

    /// Wait until the publish counter differs from `seen` (a publish happened since), the
    /// writer closes the segment, or `timeout` passes (`None`: forever). Spins briefly (a
    /// bounded spin, without system calls), then sleeps on the futex word in the shared
    /// mapping (`FUTEX_WAIT`, not the private variant). A read-only view cannot register as a
    /// sleeper, so it re-checks every millisecond; open read-write for immediate wake-ups.
    /// Returns the new counter.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`]; [`ErrorKind::WriterClosed`] when the writer closed the segment
    /// without publishing after `seen`; [`ErrorKind::Truncated`].
    pub fn wait(&self, seen: u32, timeout: Option<Duration>) -> Result<u32> {
        const SPINS: u32 = 200;
        let word = self.u32_at(offsets::PUBLISH_COUNT);
        let deadline = timeout.map(|t| Instant::now() + t);
        let closed =
            || self.u32_at(offsets::FLAGS).load(Ordering::Acquire) & flags::WRITER_CLOSED != 0;
        let mut spins = 0;
        loop {
            let now = word.load(Ordering::Acquire);
            if now != seen {
                return Ok(now);
            }
            if closed() {
                return Err(
                    Error::new(ErrorKind::WriterClosed, "the writer closed the segment")
                        .with_segment(self.name()),
                );
            }
            if spins < SPINS {
                // The spin stays in user space: the size check (a syscall) is made once on
                // entry and before each sleep, not per spin.
                if spins == 0 {
                    self.region.check_backing()?;
                }
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            self.region.check_backing()?;
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Timeout,
                            "timed out waiting for a publish",
                        )
                        .with_segment(self.name()))
                    }
                },
            };
            // A read-write view registers as a sleeper so the writer knows to wake it. A
            // read-only view cannot write the count (the page is read-only), so it sleeps in
            // short slices instead and notices a publish within a millisecond.
            let registered = self.region.is_writable();
            let max_slice = if registered {
                Duration::from_millis(100)
            } else {
                Duration::from_millis(1)
            };
            let waiters = self.u32_at(offsets::WAITERS);
            if registered {
                waiters.fetch_add(1, Ordering::SeqCst);
            }
            // Re-check after registering, so a publish between the load and the sleep is seen
            // (FUTEX_WAIT also returns at once if the word moved).
            if word.load(Ordering::SeqCst) == seen {
                // Sleep in slices so a writer that dies without waking us is noticed.
                let slice = left.map_or(max_slice, |l| l.min(max_slice));
                sys::futex_wait(word, seen, Some(slice));
            }
            if registered {
                waiters.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Copy the current payload out, consistently (retrying while a write races the copy),
    /// and verify its checksum when it has one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when a write stays in progress for 2 s (a writer that died
    /// mid-write); [`ErrorKind::ChecksumMismatch`]; [`ErrorKind::CorruptHeader`] when
    /// `payload_len` exceeds the capacity; [`ErrorKind::Truncated`].
    pub fn read(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(&mut out)?;
        Ok(out)
    }

    /// As [`read`](Self::read), into `out` (replacing its contents); returns the sequence
    /// number of the snapshot.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn read_into(&self, out: &mut Vec<u8>) -> Result<u64> {
        self.read_with(|payload_ptr, len| {
            out.clear();
            out.reserve(len);
            // SAFETY: read_with guarantees `len` bytes at payload_ptr inside the mapping; `out`
            // has room for `len` bytes after reserve, and set_len follows the copy.
            unsafe {
                std::ptr::copy_nonoverlapping(payload_ptr, out.as_mut_ptr(), len);
                out.set_len(len);
            }
            Ok(crc32fast::hash(out))
        })
        .map(|(_, seq)| seq)
    }

    /// Run `f` over the payload in place (`f(ptr, len)`) inside a consistent read: `f` may run
    /// more than once when writes race it, and its result is returned only for a run that no
    /// write overlapped. `f` returns the CRC-32 of what it saw, checked against the header's
    /// checksum when there is one. Returns `f`'s last result and the snapshot's sequence.
    ///
    /// The bytes may change while `f` runs (that is what the retry catches): `f` must copy or
    /// hash them, not keep references.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), plus whatever `f` returns.
    pub fn read_with<F>(&self, mut f: F) -> Result<(u32, u64)>
    where
        F: FnMut(*const u8, usize) -> Result<u32>,
    {
        self.require_message()?;
        let seq = self.u64_at(offsets::SEQUENCE);
        let deadline = Instant::now() + READ_RACE_LIMIT;
        let mut spins = 0u32;
        loop {
            self.region.check_backing()?;
            let s1 = seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let len = self.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Relaxed);
                let fl = self.u32_at(offsets::FLAGS).load(Ordering::Relaxed);
                let want = self.u32_at(offsets::CHECKSUM).load(Ordering::Relaxed);
                if len > self.capacity {
                    // Could be a torn read of a racing write; only an error if stable.
                    fence(Ordering::Acquire);
                    if seq.load(Ordering::Relaxed) == s1 {
                        return Err(Error::new(
                            ErrorKind::CorruptHeader,
                            format!(
                                "corrupt header: payload_len {len} is larger than capacity {}",
                                self.capacity
                            ),
                        )
                        .with_segment(self.name()));
                    }
                } else {
                    let got = f(self.payload_ptr(), len as usize)?;
                    fence(Ordering::Acquire);
                    if seq.load(Ordering::Relaxed) == s1 {
                        if fl & flags::CHECKSUM != 0 && got != want {
                            return Err(Error::new(
                                ErrorKind::ChecksumMismatch,
                                format!(
                                    "checksum mismatch: the payload's CRC-32 is {got:08x}, the header says {want:08x}"
                                ),
                            )
                            .with_segment(self.name()));
                        }
                        return Ok((got, s1));
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "timed out: a write stayed in progress for 2 s (the writer may have died mid-write)",
                )
                .with_segment(self.name()));
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Current payload length (a snapshot; a racing write may change it).
    #[must_use]
    pub fn payload_len(&self) -> u64 {
        self.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Acquire)
    }

    /// Read a little-endian scalar at `offset` in the payload area.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when it does not fit in the capacity; [`ErrorKind::Truncated`].
    pub fn get<T: Scalar>(&self, offset: u64) -> Result<T> {
        self.payload_offset(offset, T::SIZE)?;
        self.region.get(self.header_len + offset)
    }

    /// Write a little-endian scalar at `offset` in the payload area (in place; not a publish).
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get), plus [`ErrorKind::PermissionDenied`] on a read-only view.
    pub fn set<T: Scalar>(&self, offset: u64, value: T) -> Result<()> {
        self.payload_offset(offset, T::SIZE)?;
        self.region.set(self.header_len + offset, value)
    }

    fn payload_offset(&self, offset: u64, len: usize) -> Result<()> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.capacity => Ok(()),
            _ => Err(Error::new(
                ErrorKind::OutOfBounds,
                format!(
                    "out of bounds: {len} bytes at payload offset {offset} exceed the capacity {}",
                    self.capacity
                ),
            )
            .with_segment(self.name())),
        }
    }
}

/// An open write of a framed payload; see [`FramedSegment::begin_write`].
#[derive(Debug)]
pub struct PayloadWriter<'a> {
    framed: &'a FramedSegment,
    start: u64,
    done: bool,
}

impl PayloadWriter<'_> {
    /// The payload area, `capacity()` bytes, for filling in place (e.g. `read(2)` straight from
    /// a file).
    #[must_use]
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.framed.payload_ptr()
    }

    /// Bytes available.
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.framed.capacity
    }

    /// Copy `data` into the payload area at `offset`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] past the capacity; [`ErrorKind::Truncated`].
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.framed.payload_offset(offset, data.len())?;
        self.framed
            .region
            .write_at(self.framed.header_len + offset, data)
    }

    /// Publish the first `len` bytes of the payload area: set `payload_len`, the checksum when
    /// `checksum` is true (computed here over the payload), end the write and wake waiters.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `len` exceeds the capacity.
    pub fn commit(self, len: u64, checksum: bool) -> Result<()> {
        let crc = if checksum {
            self.framed.payload_offset(0, len as usize)?;
            self.framed.region.check_backing()?;
            // SAFETY: len <= capacity (checked), the mapping covers it (check_backing), and we
            // are the writer, so the bytes do not change under us.
            let bytes =
                unsafe { std::slice::from_raw_parts(self.framed.payload_ptr(), len as usize) };
            Some(crc32fast::hash(bytes))
        } else {
            None
        };
        self.commit_with_crc(len, crc)
    }

    /// As [`commit`](Self::commit), with a CRC-32 the caller computed while filling.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfBounds`] when `len` exceeds the capacity.
    pub fn commit_with_crc(mut self, len: u64, crc: Option<u32>) -> Result<()> {
        self.framed.payload_offset(0, len as usize)?;
        self.done = true;
        self.framed.end_write(self.start, len, crc, true);
        Ok(())
    }
}

impl Drop for PayloadWriter<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.framed.end_write(self.start, 0, None, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(capacity: usize) -> FramedSegment {
        FramedSegment::init(Region::anonymous(128 + capacity).unwrap(), Kind::Message).unwrap()
    }

    #[test]
    fn header_fields_sit_at_their_spec_offsets() {
        let f = framed(1000);
        f.write(b"abc").unwrap();
        let r = f.region();
        let mut magic = [0u8; 8];
        r.read_at(0, &mut magic).unwrap();
        assert_eq!(&magic, b"SHMBRIDG");
        assert_eq!(r.get::<u16>(8).unwrap(), 1);
        assert_eq!(r.get::<u16>(10).unwrap(), 0);
        assert_eq!(r.get::<u32>(12).unwrap(), 128);
        assert_eq!(r.get::<u32>(16).unwrap(), 1);
        assert_eq!(
            r.get::<u32>(20).unwrap(),
            flags::CHECKSUM | flags::PUBLISHED
        );
        assert_eq!(r.get::<u64>(24).unwrap(), 1000);
        assert_eq!(r.get::<u64>(32).unwrap(), 3);
        assert_eq!(r.get::<u64>(40).unwrap(), 2);
        assert_eq!(r.get::<u32>(48).unwrap(), 1);
        assert_eq!(r.get::<u32>(56).unwrap(), crc32fast::hash(b"abc"));
        assert_eq!(r.get::<u32>(60).unwrap(), std::process::id());
        let mut tail = [0xffu8; 48];
        r.read_at(80, &mut tail).unwrap();
        assert_eq!(tail, [0u8; 48], "reserved bytes are zero");
        let h = f.header().unwrap();
        assert!(h.creator_alive());
        assert_eq!(h.checksum, Some(crc32fast::hash(b"abc")));
    }

    #[test]
    fn write_read_round_trip_and_capacity_limit() {
        let f = framed(10);
        assert_eq!(f.read().unwrap(), b"");
        f.write(b"0123456789").unwrap();
        assert_eq!(f.read().unwrap(), b"0123456789");
        let err = f.write(b"0123456789x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfBounds);
        assert_eq!(
            f.read().unwrap(),
            b"0123456789",
            "a refused write leaves the old payload"
        );
        let mut w = f.begin_write().unwrap();
        w.write_at(0, b"partial").unwrap();
        drop(w);
        assert_eq!(
            f.read().unwrap(),
            b"",
            "an abandoned write publishes an empty payload, not a torn one"
        );
    }

    #[test]
    fn validation_rejects_what_does_not_add_up() {
        let check = |mutate: &dyn Fn(&Region), kind: ErrorKind, needle: &str| {
            let f = framed(64);
            let region = f.region;
            mutate(&region);
            let err = FramedSegment::from_region(region).unwrap_err();
            assert_eq!(err.kind(), kind, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        };
        check(
            &|r| r.write_at(0, b"NOTMAGIC").unwrap(),
            ErrorKind::BadMagic,
            "not a framed segment",
        );
        check(
            &|r| r.set(8, 2u16).unwrap(),
            ErrorKind::UnsupportedVersion,
            "version 2.0",
        );
        check(
            &|r| r.set(12, 96u32).unwrap(),
            ErrorKind::CorruptHeader,
            "header_len 96",
        );
        check(
            &|r| r.set(12, 130u32).unwrap(),
            ErrorKind::CorruptHeader,
            "multiple of 64",
        );
        check(
            &|r| r.set(12, 256u32).unwrap(),
            ErrorKind::Truncated,
            "header_len is 256",
        );
        check(
            &|r| r.set(24, 65u64).unwrap(),
            ErrorKind::Truncated,
            "65 bytes of capacity",
        );
        check(
            &|r| r.set(32, 65u64).unwrap(),
            ErrorKind::CorruptHeader,
            "payload_len 65",
        );
        // A newer minor version is accepted.
        let f = framed(8);
        f.region.set(10, 7u16).unwrap();
        FramedSegment::from_region(f.region).unwrap();
        let tiny = Region::anonymous(10).unwrap();
        assert_eq!(
            FramedSegment::from_region(tiny).unwrap_err().kind(),
            ErrorKind::BadMagic
        );
    }

    #[test]
    fn checksum_mismatch_is_detected() {
        let f = framed(16);
        f.write(b"payload").unwrap();
        f.region().write_at(128, b"X").unwrap();
        let err = f.read().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ChecksumMismatch);
    }

    #[test]
    fn writer_dead_mid_write_makes_readers_time_out() {
        let f = framed(16);
        f.write(b"old").unwrap();
        f.u64_at(offsets::SEQUENCE).fetch_add(1, Ordering::SeqCst);
        let err = f.read().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("died mid-write"), "{err}");
        // A new writer takes over and readers recover.
        f.write(b"new").unwrap();
        assert_eq!(f.read().unwrap(), b"new");
    }

    #[test]
    fn wait_sees_publishes_from_another_thread_and_times_out() {
        let f = std::sync::Arc::new(framed(16));
        let seen = f.publish_count();
        assert_eq!(
            f.wait(seen, Some(Duration::from_millis(20)))
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
        let g = std::sync::Arc::clone(&f);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            g.write(b"ping").unwrap();
        });
        let now = f.wait(seen, Some(Duration::from_secs(10))).unwrap();
        assert_ne!(now, seen);
        assert_eq!(f.read().unwrap(), b"ping");
        t.join().unwrap();
        f.close_writer().unwrap();
        assert_eq!(
            f.wait(now, None).unwrap_err().kind(),
            ErrorKind::WriterClosed
        );
    }

    #[test]
    fn typed_fields_in_payload() {
        let f = framed(16);
        f.set(4, -128i32).unwrap();
        f.set(12, 1.414f32).unwrap();
        assert_eq!(f.get::<i32>(4).unwrap(), -128);
        assert_eq!(f.region().get::<i32>(128 + 4).unwrap(), -128);
        assert_eq!(f.get::<u64>(9).unwrap_err().kind(), ErrorKind::OutOfBounds);
    }
}
