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
//! number of readers, through the [`crate::sync`] module: the payload is replaced under its
//! seqlock (a writer that dies mid-write leaves it odd, so readers time out instead of taking
//! a half-written payload), each publish bumps the futex word readers wait on, and the writer
//! proves it is alive with its liveness lock.
//!
//! Readiness: [`FramedSegment::create`] sets up the whole header in an object that has no name
//! yet and names it only then, so a reader never sees a half-made header; readers that start
//! first wait for the name with [`FramedSegment::open_wait`].

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::mode::{Access, OpenMode};
use crate::region::{Region, Scalar};
use crate::segment::{Draft, Segment, SegmentOptions, ShmObject};
use crate::sync::event::Event;
use crate::sync::liveness::{self, Lease, Role};
use crate::sync::seqlock::SeqLock;
use crate::sync::Wait;
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
/// The minor version this library writes. 1.1 added the liveness locks (SPEC 5.5), named
/// creation (5.1) and the `WAKE_ALWAYS` flag; a 1.0 reader reads 1.1 segments unchanged.
pub const VERSION_MINOR: u16 = 1;
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
    /// (1.1) The writer wakes sleepers on every publish, whether or not `waiters` counts them:
    /// read-only readers, which cannot count themselves, are waiting.
    pub const WAKE_ALWAYS: u32 = 1 << 3;
}

/// What a framed segment's payload area holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One payload of `payload_len` bytes, replaced as a whole by each publish.
    Message,
    /// A single-producer single-consumer byte stream (a ring).
    Stream,
    /// One writer, many readers, variable-size messages in slots (`crate::channel`).
    Channel,
    /// One n-dimensional array (an array header, then its data) replaced in place under the
    /// seqlock (`crate::array::ArraySegment`, SPEC 7.5).
    Array,
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
            Self::Channel => 3,
            Self::Array => 4,
            Self::Other(n) => n,
        }
    }

    /// The kind stored as `code`.
    #[must_use]
    pub fn from_code(code: u32) -> Self {
        match code {
            1 => Self::Message,
            2 => Self::Stream,
            3 => Self::Channel,
            4 => Self::Array,
            n => Self::Other(n),
        }
    }

    /// `message`, `stream`, or `kind-N`.
    #[must_use]
    pub fn name(self) -> String {
        match self {
            Self::Message => "message".into(),
            Self::Stream => "stream".into(),
            Self::Channel => "channel".into(),
            Self::Array => "array".into(),
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
    /// Whether a writer is alive: its liveness lock is held (1.1; for a 1.0 segment, whether
    /// the creator's pid and start time still match a running process).
    pub writer_alive: bool,
}

impl HeaderInfo {
    /// Whether a writer is alive (see [`writer_alive`](Self::writer_alive)).
    #[must_use]
    pub fn creator_alive(&self) -> bool {
        self.writer_alive
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
    version_minor: u16,
    /// This handle's writer lock, once it created or wrote the segment.
    writer: Mutex<Option<Lease>>,
    /// A read-only handle's shared lock, taken before it first sleeps in [`Self::wait`].
    ro_waiter: OnceLock<Option<Lease>>,
    /// When this handle last looked for read-only waiters (ms since [`epoch`]), as a writer.
    ro_checked_ms: AtomicU64,
}

/// What a consistent read saw: see [`FramedSegment::read_into`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The payload's length. When a read into a caller's buffer finds it longer than the
    /// buffer, nothing was copied and this says how long the buffer must be.
    pub len: u64,
    /// The payload's CRC-32 from the header, verified against the bytes copied; `None` when
    /// the payload was published without one.
    pub checksum: Option<u32>,
    /// The seqlock counter of the snapshot (even; it grows by 2 with each publish).
    pub sequence: u64,
}

/// A fixed point in time for the coarse clock writers use to pace their checks.
fn epoch_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// How often a writer that finds no read-only waiters looks again.
const RO_CHECK_EVERY_MS: u64 = 100;

impl FramedSegment {
    /// Create the named segment with room for `capacity` payload bytes (`128 + capacity` bytes
    /// in all) and an empty message payload. The name appears only once the header is
    /// complete; this handle holds the writer's liveness lock until it is dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyExists`] when the name is taken; [`ErrorKind::InvalidName`],
    /// [`ErrorKind::InvalidArgument`] (permissions), [`ErrorKind::NoSpace`];
    /// [`ErrorKind::InvalidSize`] when `capacity + 128` overflows.
    pub fn create(name: &str, capacity: u64, opts: &FramedOptions) -> Result<Self> {
        Self::create_kind(name, capacity, Kind::Message, HEADER_LEN, opts, |_| Ok(()))
    }

    /// Create a framed segment of any kind: the common header is written, then `setup` fills
    /// the kind's own area (which must follow the common header within `header_len`, see
    /// SPEC.md), and only then does the segment get its name.
    pub(crate) fn create_kind(
        name: &str,
        capacity: u64,
        kind: Kind,
        header_len: u32,
        opts: &FramedOptions,
        setup: impl FnOnce(&Self) -> Result<()>,
    ) -> Result<Self> {
        let bare = crate::name::validate(name)?;
        let total = capacity.checked_add(u64::from(header_len)).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidSize,
                format!("invalid capacity {capacity}: too large"),
            )
            .with_segment(bare)
        })?;
        let draft = Draft::create(bare, total, opts.segment.permissions)?;
        let lease = Lease::try_take(draft.fd(), Role::Writer, true, bare)?;
        let mut framed =
            Self::init_with_header(draft.map(opts.segment.populate)?, kind, header_len)?;
        *framed
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = lease;
        setup(&framed)?;
        framed.object = Some(draft.publish()?);
        Ok(framed)
    }

    /// Write a fresh header into `region` (which must be writable and at least 128 bytes) and
    /// return the framed view of it. Whatever the region held is replaced.
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
            return Err(region.about(Error::new(
                ErrorKind::InvalidSize,
                format!(
                    "{} bytes is too small for a framed segment (the header alone is {header_len})",
                    region.len()
                ),
            )));
        }
        region.check_backing()?;
        let capacity = region.len() as u64 - header_len;
        let pid = std::process::id();
        let created_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        // The header is assembled privately and written through the descriptor (a hole on a
        // full /dev/shm is then ENOSPC, not SIGBUS); only afterwards is the header page used
        // through the mapping.
        let mut hdr = vec![0u8; header_len32 as usize];
        let mut put = |off: u64, bytes: &[u8]| {
            hdr[off as usize..off as usize + bytes.len()].copy_from_slice(bytes);
        };
        put(offsets::VERSION_MAJOR, &VERSION_MAJOR.to_le_bytes());
        put(offsets::VERSION_MINOR, &VERSION_MINOR.to_le_bytes());
        put(offsets::HEADER_LEN, &header_len32.to_le_bytes());
        put(offsets::KIND, &kind.code().to_le_bytes());
        put(offsets::CAPACITY, &capacity.to_le_bytes());
        put(offsets::CREATOR_PID, &pid.to_le_bytes());
        put(
            offsets::CREATOR_START,
            &sys::process_start_time(pid).unwrap_or(0).to_le_bytes(),
        );
        put(offsets::CREATED_NS, &created_ns.to_le_bytes());
        region.write_at(MAGIC.len() as u64, &hdr[MAGIC.len()..])?;
        // The magic goes last: a reader of a mapping that is already shared (an anonymous one
        // across fork) that sees it sees a complete header.
        fence(Ordering::Release);
        region.write_at(offsets::MAGIC, &MAGIC)?;
        let mut region = region;
        region.set_direct_prefix(sys::page_size());
        Ok(Self::with_parts(
            region,
            header_len,
            capacity,
            kind,
            VERSION_MINOR,
        ))
    }

    fn with_parts(
        region: Region,
        header_len: u64,
        capacity: u64,
        kind: Kind,
        version_minor: u16,
    ) -> Self {
        Self {
            region,
            object: None,
            header_len,
            capacity,
            kind,
            version_minor,
            writer: Mutex::new(None),
            ro_waiter: OnceLock::new(),
            ro_checked_ms: AtomicU64::new(0),
        }
    }

    /// Open the named framed segment and validate its header.
    ///
    /// # Errors
    ///
    /// Those of [`Segment::open`], then those of [`from_region`](Self::from_region).
    pub fn open(name: &str, access: Access) -> Result<Self> {
        Self::open_with(
            name,
            &SegmentOptions {
                access,
                ..SegmentOptions::default()
            },
        )
    }

    pub(crate) fn open_with(name: &str, opts: &SegmentOptions) -> Result<Self> {
        let (object, region) = Segment::open_with(name, OpenMode::OpenOnly, 0, opts)?.into_parts();
        let mut framed = Self::from_region(region)?;
        framed.object = Some(object);
        Ok(framed)
    }

    /// Open the named framed segment, waiting (as `wait` allows) for it to appear if it does
    /// not exist yet. A segment that exists but is not a valid framed segment fails at once,
    /// as with [`open`](Self::open): segments get their name only once their header is
    /// complete, so there is nothing to wait for.
    ///
    /// # Errors
    ///
    /// Those of [`open`](Self::open) other than [`ErrorKind::NotFound`];
    /// [`ErrorKind::Timeout`] when no segment of that name appeared in time;
    /// [`ErrorKind::Aborted`] when the wait's hook asked to stop.
    pub fn open_wait(name: &str, access: Access, wait: &mut Wait<'_>) -> Result<Self> {
        Self::open_wait_with(
            name,
            &SegmentOptions {
                access,
                ..SegmentOptions::default()
            },
            wait,
        )
    }

    pub(crate) fn open_wait_with(
        name: &str,
        opts: &SegmentOptions,
        wait: &mut Wait<'_>,
    ) -> Result<Self> {
        let bare = crate::name::validate(name)?;
        let attempt = || match Self::open_with(bare, opts) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            other => other.map(Some),
        };
        if let Some(f) = attempt()? {
            return Ok(f);
        }
        // Watch for the name before looking again, so a creation in between is not missed.
        let watch = sys::DirWatch::new().ok();
        loop {
            if let Some(f) = attempt()? {
                return Ok(f);
            }
            let slice = wait
                .next_slice(bare, "the segment to appear")
                .map_err(|e| {
                    if e.kind() == ErrorKind::Timeout {
                        Error::new(
                            ErrorKind::Timeout,
                            format!("{}: no segment with this name appeared", e.detail()),
                        )
                        .with_segment(bare)
                    } else {
                        e
                    }
                })?;
            match &watch {
                Some(w) => w.wait(slice),
                None => std::thread::sleep(slice.min(Duration::from_millis(10))),
            }
        }
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
        let (name, is_path) = (region.label().to_owned(), region.label_is_path());
        let err = |kind, detail: String| Err(Error::new(kind, detail).with_subject(&name, is_path));
        let size = region.len() as u64;
        if size < 16 {
            return err(
                ErrorKind::BadMagic,
                format!("not a framed segment: {size} bytes is smaller than a framed header"),
            );
        }
        // The common header is read once through the descriptor: a hostile sparse object on a
        // full /dev/shm reads as zeros (bad magic) instead of faulting.
        let mut hdr = [0u8; MIN_HEADER_LEN as usize];
        let seen = hdr.len().min(region.len());
        region.read_at(0, &mut hdr[..seen])?;
        let u16_at = |o: u64| u16::from_le_bytes([hdr[o as usize], hdr[o as usize + 1]]);
        let u32_at = |o: u64| {
            let o = o as usize;
            u32::from_le_bytes([hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]])
        };
        let u64_at = |o: u64| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&hdr[o as usize..o as usize + 8]);
            u64::from_le_bytes(b)
        };
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&hdr[..8]);
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
        let major = u16_at(offsets::VERSION_MAJOR);
        let minor = u16_at(offsets::VERSION_MINOR);
        if major != VERSION_MAJOR {
            return err(
                ErrorKind::UnsupportedVersion,
                format!("framed layout version {major}.{minor} is not supported (this library reads {VERSION_MAJOR}.x)"),
            );
        }
        // Bytes past a short segment's end stay zero here; header_len (at least 128) is then
        // past the real size, which the checks below report as truncated.
        let header_len = u32_at(offsets::HEADER_LEN);
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
        let capacity = u64_at(offsets::CAPACITY);
        if capacity > size - header_len {
            return err(
                ErrorKind::Truncated,
                format!(
                    "truncated: the header declares {capacity} bytes of capacity but only {} follow the header",
                    size - header_len
                ),
            );
        }
        let kind = Kind::from_code(u32_at(offsets::KIND));
        // The magic is there, so the first page holds data (it is no hole): from here on the
        // header words are used through the mapping, and small payloads in that page too.
        let mut region = region;
        region.set_direct_prefix(sys::page_size());
        let framed = Self::with_parts(region, header_len, capacity, kind, minor);
        let payload_len = framed.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Acquire);
        if payload_len > capacity && matches!(kind, Kind::Message | Kind::Array) {
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

    /// A u64 word anywhere in the segment (a kind's control words past the header: a
    /// channel's reader table, queue and slot headers). The caller computes `offset` from a
    /// layout validated against the real size, so it is 8-aligned and inside the mapping.
    pub(crate) fn word64(&self, offset: u64) -> &AtomicU64 {
        debug_assert!(offset % 8 == 0 && offset + 8 <= self.region.len() as u64);
        // SAFETY: as in u64_at: an aligned word inside the live mapping (the caller's layout
        // was validated against the mapping's length), accessed only atomically by everyone.
        unsafe { AtomicU64::from_ptr(self.region.as_mut_ptr().add(offset as usize).cast()) }
    }

    /// A u32 word anywhere in the segment; see [`word64`](Self::word64).
    pub(crate) fn word32(&self, offset: u64) -> &AtomicU32 {
        debug_assert!(offset % 4 == 0 && offset + 4 <= self.region.len() as u64);
        // SAFETY: as in word64, for a 4-aligned u32.
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
            writer_alive: self.writer_alive(),
        })
    }

    /// The minor layout version of the segment.
    #[must_use]
    pub fn version_minor(&self) -> u16 {
        self.version_minor
    }

    /// Whether the process holding `role`'s liveness lock is alive: `None` when the segment
    /// cannot tell (a 1.0 segment, an anonymous mapping, no OFD locks), and the caller must
    /// fall back on what it has.
    pub(crate) fn holder_alive(&self, role: Role) -> Option<bool> {
        if self.version_minor < 1 {
            return None;
        }
        liveness::held(self.region.fd()?, role)
    }

    /// Whether a writer is alive: this handle is the writer, or another process holds the
    /// writer's liveness lock. For a 1.0 segment (no locks), whether the creator's pid and
    /// start time still match a running process.
    #[must_use]
    pub fn writer_alive(&self) -> bool {
        if self.holds_writer_lock() {
            return true;
        }
        self.holder_alive(Role::Writer).unwrap_or_else(|| {
            let pid = self.region.get::<u32>(offsets::CREATOR_PID).unwrap_or(0);
            let start = self.region.get::<u64>(offsets::CREATOR_START).unwrap_or(0);
            pid != 0 && sys::process_alive(pid, start)
        })
    }

    fn holds_writer_lock(&self) -> bool {
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Take the writer's liveness lock if this handle does not hold it and nobody else does
    /// (best effort: the layout does not arbitrate between writers).
    pub(crate) fn claim_writer(&self) {
        let Some(fd) = self.region.fd() else { return };
        let mut slot = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() && self.region.is_writable() {
            *slot = Lease::try_take(fd, Role::Writer, true, self.name())
                .ok()
                .flatten();
        }
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
        // The checksum of the caller's bytes, not a second pass over the segment.
        w.commit_with_crc(data.len() as u64, Some(crc32fast::hash(data)))
    }

    /// Start replacing the payload: the sequence turns odd, so readers wait or retry until
    /// [`PayloadWriter::commit`]. Dropping the writer without committing publishes an empty
    /// payload (the old one was partly overwritten) and wakes nobody. The handle becomes the
    /// segment's live writer (its liveness lock) unless another process holds that role.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only view; [`ErrorKind::Unsupported`] on a
    /// stream segment; [`ErrorKind::Truncated`] if the segment shrank.
    pub fn begin_write(&self) -> Result<PayloadWriter<'_>> {
        self.require_message()?;
        self.region.check_writable()?;
        self.region.check_mapped()?;
        self.claim_writer();
        let start = self.seqlock().begin_write();
        Ok(PayloadWriter {
            framed: self,
            start,
            done: false,
        })
    }

    pub(crate) fn seqlock(&self) -> SeqLock<'_> {
        SeqLock(self.u64_at(offsets::SEQUENCE))
    }

    /// End a write begun on the seqlock: store `len` and the checksum, make the sequence even
    /// and, when `publish`, bump `publish_count` and wake sleepers (SPEC 5.3).
    pub(crate) fn end_write(&self, start: u64, len: u64, crc: Option<u32>, publish: bool) {
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
        self.seqlock().end_write(start);
        if publish {
            self.bump_and_wake();
        }
    }

    /// The publish event: `publish_count` and its sleepers.
    fn publish_event(&self) -> Event<'_> {
        Event::new(
            self.u32_at(offsets::PUBLISH_COUNT),
            self.u32_at(offsets::WAITERS),
        )
    }

    /// Increment the futex word and wake the readers sleeping on it: those counted in
    /// `waiters`, and read-only ones (which cannot count themselves) once the writer has seen
    /// them; it looks for them at most every 100 ms.
    pub(crate) fn bump_and_wake(&self) {
        let fl = self.u32_at(offsets::FLAGS);
        let mut always = fl.load(Ordering::Relaxed) & flags::WAKE_ALWAYS != 0;
        if !always {
            let now = epoch_ms();
            let last = self.ro_checked_ms.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= RO_CHECK_EVERY_MS || last == 0 {
                self.ro_checked_ms.store(now.max(1), Ordering::Relaxed);
                if self.holder_alive(Role::ReadOnlyWaiter) == Some(true) {
                    fl.fetch_or(flags::WAKE_ALWAYS, Ordering::SeqCst);
                    always = true;
                }
            }
        }
        self.publish_event().notify(always);
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
        self.publish_event().wake();
        Ok(())
    }

    /// The current value of the publish counter; pass it to [`wait`](Self::wait) to wait for
    /// the next publish.
    #[must_use]
    pub fn publish_count(&self) -> u32 {
        self.u32_at(offsets::PUBLISH_COUNT).load(Ordering::Acquire)
    }

    /// Wait until the publish counter differs from `seen` (a publish happened since), the
    /// writer closes the segment or is gone, or `wait` runs out. Spins briefly (bounded in
    /// time, no system call), then sleeps on the futex word in the shared mapping. A read-only
    /// view sleeps too: it announces itself with a shared liveness lock, and the writer then
    /// wakes on every publish. Returns the new counter.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WriterClosed`] when the writer closed the segment without publishing after
    /// `seen`; [`ErrorKind::PeerGone`] when no process holds the segment as its writer any
    /// more (it died, or finished without closing), so no publish can come;
    /// [`ErrorKind::Timeout`]; [`ErrorKind::Aborted`]; [`ErrorKind::Truncated`].
    pub fn wait(&self, seen: u32, wait: &mut Wait<'_>) -> Result<u32> {
        let word = self.u32_at(offsets::PUBLISH_COUNT);
        let fl = self.u32_at(offsets::FLAGS);
        let event = if self.region.is_writable() {
            self.publish_event()
        } else {
            self.announce_read_only_waiter();
            Event::unregistered(word, fl, flags::WAKE_ALWAYS)
        };
        event.wait_until(
            wait,
            self.name(),
            "a publish",
            || self.poll_publish(word, fl, seen),
            || {
                self.region.check_backing()?;
                if self.writer_alive() {
                    return Ok(());
                }
                Err(Error::new(
                    ErrorKind::PeerGone,
                    "the writer is gone (no process holds this segment as its writer): no publish can come",
                )
                .with_segment(self.name()))
            },
        )
    }

    /// As [`wait`](Self::wait), but without sleeping or yielding: look, then busy-spin for at
    /// most `spin` (nothing when this process may use one CPU only, or while the CPUs are
    /// contended), with no system call. `Ok(None)` when no publish came; then call
    /// [`wait`](Self::wait). For fronts that want to catch a quick reply before they pay for a
    /// blocking call (Python spins here before it releases the GIL).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WriterClosed`] when the writer closed the segment without publishing after
    /// `seen`. (Liveness and size are checked by [`wait`](Self::wait) only, before it sleeps.)
    pub fn wait_briefly(&self, seen: u32, spin: std::time::Duration) -> Result<Option<u32>> {
        let word = self.u32_at(offsets::PUBLISH_COUNT);
        let fl = self.u32_at(offsets::FLAGS);
        crate::sync::event::spin_briefly(spin, || self.poll_publish(word, fl, seen))
    }

    /// One look for a publish after `seen` (no system call): the new counter, or the writer's
    /// close.
    fn poll_publish(&self, word: &AtomicU32, fl: &AtomicU32, seen: u32) -> Result<Option<u32>> {
        let now = word.load(Ordering::Acquire);
        if now != seen {
            // A counter read from a zero page (the SIGBUS guard's, after a shrink) is no publish.
            self.region.check_mapped()?;
            return Ok(Some(now));
        }
        if fl.load(Ordering::Acquire) & flags::WRITER_CLOSED != 0 {
            return Err(
                Error::new(ErrorKind::WriterClosed, "the writer closed the segment")
                    .with_segment(self.name()),
            );
        }
        Ok(None)
    }

    /// Take the shared lock that tells writers a read-only reader waits (once per handle).
    fn announce_read_only_waiter(&self) {
        self.ro_waiter.get_or_init(|| {
            let fd = self.region.fd()?;
            Lease::try_take(fd, Role::ReadOnlyWaiter, false, self.name())
                .ok()
                .flatten()
        });
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

    /// As [`read`](Self::read), into `out` (replacing its contents). Returns what was read:
    /// the length, the verified checksum and the sequence, all of the same snapshot.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn read_into(&self, out: &mut Vec<u8>) -> Result<Snapshot> {
        self.read_with(|region, at, len, want_crc| {
            out.clear();
            out.resize(len, 0);
            region.read_at(at, out)?;
            Ok(want_crc.then(|| crc32fast::hash(out)))
        })
    }

    /// As [`read`](Self::read), into the caller's buffer. When the payload is longer than
    /// `buf`, nothing is copied and the snapshot's `len` says how long it is (check
    /// `len <= buf.len()`); otherwise the first `len` bytes of `buf` hold it.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn read_into_slice(&self, buf: &mut [u8]) -> Result<Snapshot> {
        self.read_with(|region, at, len, want_crc| {
            if len > buf.len() {
                return Ok(None);
            }
            region.read_at(at, &mut buf[..len])?;
            Ok(want_crc.then(|| crc32fast::hash(&buf[..len])))
        })
    }

    /// The one consistent read: run `f(region, offset, len, want_crc)` over the payload
    /// (`len` bytes at `offset` in `region`) inside the seqlock. `f` may run more than once
    /// when writes race it (only a run that no write overlapped counts); it copies or writes
    /// out the bytes with the region's checked copies ([`Region::read_at`],
    /// [`Region::copy_out`]: through the descriptor, so a shrink is an error, not a signal)
    /// and returns their CRC-32 when `want_crc` is true (the header has a checksum to
    /// verify) — or `None` to skip verification (a buffer too small).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read), plus whatever `f` returns.
    pub(crate) fn read_with(
        &self,
        mut f: impl FnMut(&Region, u64, usize, bool) -> Result<Option<u32>>,
    ) -> Result<Snapshot> {
        self.require_message()?;
        let corrupt_len = std::cell::Cell::new(0u64);
        let ((len, got, want), sequence) = self
            .seqlock()
            .read(
                self.name(),
                || {
                    let len = self.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Relaxed);
                    let fl = self.u32_at(offsets::FLAGS).load(Ordering::Relaxed);
                    let want = (fl & flags::CHECKSUM != 0)
                        .then(|| self.u32_at(offsets::CHECKSUM).load(Ordering::Relaxed));
                    if len > self.capacity {
                        // Could be a torn read of a racing write; only an error if stable.
                        corrupt_len.set(len);
                        return Ok(None);
                    }
                    let got = f(&self.region, self.header_len, len as usize, want.is_some())?;
                    Ok(Some((len, got, want)))
                },
                || {
                    Error::new(
                        ErrorKind::CorruptHeader,
                        format!(
                            "corrupt header: payload_len {} is larger than capacity {}",
                            corrupt_len.get(),
                            self.capacity
                        ),
                    )
                    .with_segment(self.name())
                },
            )
            // A read that went wrong on a shrunk segment is reported as the shrink.
            .map_err(|e| self.region.check_backing().err().unwrap_or(e))?;
        // Header words read from a zero page (the SIGBUS guard's, after a shrink) are no read.
        self.region.check_mapped()?;
        if want.is_none() {
            // Nothing verifies these bytes: a shrink that kept the first page zeroed the rest of
            // it without a fault, so look at the real size (checksummed payloads, what `write`
            // publishes, are verified by their CRC-32 instead and skip this system call).
            self.region.check_backing()?;
        }
        if let (Some(want), Some(got)) = (want, got) {
            if got != want {
                self.region.check_backing()?;
                return Err(Error::new(
                    ErrorKind::ChecksumMismatch,
                    format!(
                        "checksum mismatch: the payload's CRC-32 is {got:08x}, the header says {want:08x}"
                    ),
                )
                .with_segment(self.name()));
            }
        }
        Ok(Snapshot {
            len,
            checksum: want.filter(|_| got.is_some()),
            sequence,
        })
    }

    /// Current payload length (a snapshot; a racing write may change it). 0 when this mapping
    /// is known to no longer show its segment (the `SIGBUS` guard replaced a page after another
    /// process shrank it; a read then reports [`ErrorKind::Truncated`]).
    #[must_use]
    pub fn payload_len(&self) -> u64 {
        let len = self.u64_at(offsets::PAYLOAD_LEN).load(Ordering::Acquire);
        // Checked after the load: a word read from the guard's zero page is no length.
        if self.region.check_mapped().is_err() {
            return 0;
        }
        len
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
    /// The payload area, `capacity()` bytes, for filling in place. Zero-copy: writing through
    /// it faults (`SIGBUS`) if another process shrank the segment; the checked ways are
    /// [`write_at`](Self::write_at) and the transfer functions.
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
            let mut hasher = crc32fast::Hasher::new();
            let mut bounce = vec![0u8; (len as usize).clamp(1, crate::region::BOUNCE_LEN)];
            self.framed.region.copy_out(
                self.framed.header_len,
                len as usize,
                &mut bounce,
                |piece| {
                    hasher.update(piece);
                    Ok(())
                },
            )?;
            Some(hasher.finalize())
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
        // Under the SIGBUS guard, a shrink that the header stores ran into shows here.
        self.framed.region.check_mapped()
    }
}

impl Drop for PayloadWriter<'_> {
    fn drop(&mut self) {
        // A segment shrunk below its header (the likely reason the write failed) is left
        // alone: its header words are gone.
        if !self.done && self.framed.region.check_backing().is_ok() {
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
        assert_eq!(r.get::<u16>(10).unwrap(), 1);
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
            "version 2.1",
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
    fn wait_briefly_sees_a_publish_or_a_close_and_never_blocks() {
        let f = framed(16);
        let seen = f.publish_count();
        assert_eq!(
            f.wait_briefly(seen, Duration::from_micros(20)).unwrap(),
            None
        );
        f.write(b"x").unwrap();
        assert_eq!(
            f.wait_briefly(seen, Duration::ZERO).unwrap(),
            Some(seen.wrapping_add(1))
        );
        let now = f.publish_count();
        f.close_writer().unwrap();
        assert_eq!(
            f.wait_briefly(now, Duration::from_micros(20))
                .unwrap_err()
                .kind(),
            ErrorKind::WriterClosed
        );
    }

    #[test]
    fn wait_sees_publishes_from_another_thread_and_times_out() {
        let f = std::sync::Arc::new(framed(16));
        let seen = f.publish_count();
        assert_eq!(
            f.wait(seen, &mut Wait::timeout(Duration::from_millis(20)))
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
        let g = std::sync::Arc::clone(&f);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            g.write(b"ping").unwrap();
        });
        let now = f
            .wait(seen, &mut Wait::timeout(Duration::from_secs(10)))
            .unwrap();
        assert_ne!(now, seen);
        assert_eq!(f.read().unwrap(), b"ping");
        t.join().unwrap();
        f.close_writer().unwrap();
        assert_eq!(
            f.wait(now, &mut Wait::forever()).unwrap_err().kind(),
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
