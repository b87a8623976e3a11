//! Named array segments: one n-dimensional array in a framed segment of kind `array`
//! (`docs/SPEC.md` 7.5), replaced in place by one writer under the seqlock.
//!
//! The array header (SPEC 7) sits at the start of the payload, written once by the creator
//! before the segment has a name, and never changes: element type and shape are fixed for the
//! segment's life, so a reader needs no out-of-band information. The data area follows at the
//! header's `data_offset` (64-byte aligned). A writer brackets each new version with
//! [`ArraySegment::begin_write`] / [`ArrayWrite::publish`]: the sequence is odd meanwhile, and
//! `publish_count` is bumped (waking [`ArraySegment::wait`]ers) at the end. Readers either take
//! a consistent copy ([`ArraySegment::read_data_into`], retried under the seqlock, never
//! torn), or view the memory in place ([`ArraySegment::view`], zero-copy, racing the writer).
//!
//! A reader whose copies keep losing to a writer that publishes back to back sets the copy
//! request word (SPEC 7.5); the writer's next `begin_write` then holds off for at most the time
//! the reader asked for (capped at [`MAX_COPY_WINDOW`]), so a copy always gets a window and
//! the retry loop cannot livelock; it is bounded in time in any case (2 s, then
//! [`ErrorKind::Timeout`]).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::dtype::{DType, Element};
use super::header::{ArrayHeader, Order, MAX_HEADER_LEN};
use super::view::{ArrayView, ArrayViewMut};
use crate::error::{Error, ErrorKind, Result};
use crate::framed::{FramedOptions, FramedSegment, Kind};
use crate::mode::Access;
use crate::segment::{OwnerPolicy, SegmentOptions};
use crate::sync::Wait;

/// The framed `header_len` of an array segment: the common 128 bytes, then one 64-byte line
/// of the kind's own words. The array header starts here (payload offset 0).
pub const ARRAY_SEGMENT_HEADER_LEN: u32 = 192;

/// Byte offsets of the array kind's own words (SPEC 7.5), from the segment start.
pub mod offsets {
    /// u64: the copy request: 0, or how many microseconds a reader whose copies keep racing
    /// the writer asks it to hold off its next write.
    pub const COPY_REQUEST: u64 = 128;
}

/// The longest a writer holds off a write for a reader's copy request.
pub const MAX_COPY_WINDOW: Duration = Duration::from_millis(100);

/// The least window a reader asks for.
const MIN_COPY_WINDOW: Duration = Duration::from_millis(1);

/// What a consistent copy saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArraySnapshot {
    /// The version copied: the number of writes ended before it (`sequence / 2`).
    pub version: u64,
    /// The publish counter just before the copy (pass it to [`ArraySegment::wait`] to wait for
    /// a later version).
    pub publish_count: u32,
}

/// A named array segment; see the [module documentation](self).
#[derive(Debug)]
pub struct ArraySegment {
    framed: FramedSegment,
    header: ArrayHeader,
    /// The publish counter this handle last saw (for [`wait_next`](Self::wait_next)).
    seen: AtomicU32,
}

impl ArraySegment {
    /// Create the array segment `name` holding a zeroed array of `dtype` and `shape`,
    /// contiguous in `order`. The name appears only once the header is complete; this handle
    /// is the segment's writer (its liveness lock) until dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for more than 32 dimensions or a shape whose size in
    /// bytes overflows; those of [`FramedSegment::create`] (name taken, invalid name,
    /// permissions, no space).
    pub fn create(
        name: &str,
        dtype: DType,
        shape: &[u64],
        order: Order,
        opts: &FramedOptions,
    ) -> Result<Self> {
        let header = ArrayHeader::new(dtype, shape, order).map_err(|e| e.with_segment(name))?;
        Self::create_with_header(name, &header, opts)
    }

    /// As [`create`](Self::create), with any validated header (general strides, a data area
    /// further out); the segment's payload is exactly the header's
    /// [`total_len`](ArrayHeader::total_len).
    ///
    /// # Errors
    ///
    /// As [`create`](Self::create).
    pub fn create_with_header(
        name: &str,
        header: &ArrayHeader,
        opts: &FramedOptions,
    ) -> Result<Self> {
        let total = header.total_len();
        let framed = FramedSegment::create_kind(
            name,
            total,
            Kind::Array,
            ARRAY_SEGMENT_HEADER_LEN,
            opts,
            |f| {
                header.write_to(f.region(), f.header_len())?;
                f.u64_at(crate::framed::offsets::PAYLOAD_LEN)
                    .store(total, Ordering::Release);
                Ok(())
            },
        )?;
        Ok(Self {
            seen: AtomicU32::new(framed.publish_count()),
            framed,
            header: header.clone(),
        })
    }

    /// Open the array segment `name` (this user's own segments only).
    ///
    /// # Errors
    ///
    /// Those of [`FramedSegment::open`]; those of [`attach`](Self::attach).
    pub fn open(name: &str, access: Access) -> Result<Self> {
        Self::open_with_owner(name, access, &OwnerPolicy::default())
    }

    /// As [`open`](Self::open), accepting the owners `owner` allows.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open); [`ErrorKind::PermissionDenied`] for an owner `owner` does not
    /// allow.
    pub fn open_with_owner(name: &str, access: Access, owner: &OwnerPolicy) -> Result<Self> {
        let opts = SegmentOptions {
            access,
            ..SegmentOptions::default()
        };
        Self::attach(FramedSegment::open_with(name, &opts)?, owner)
    }

    /// Open the array segment `name`, waiting as `wait` allows for it to appear, accepting
    /// the owners `owner` allows (a reader trusts what it views in place, so by default only
    /// this user's segments: [`OwnerPolicy::default`]).
    ///
    /// # Errors
    ///
    /// Those of [`FramedSegment::open_wait`] ([`ErrorKind::Timeout`] when no segment of that
    /// name appeared, [`ErrorKind::Aborted`]); those of [`attach`](Self::attach).
    pub fn open_wait(
        name: &str,
        access: Access,
        owner: &OwnerPolicy,
        wait: &mut Wait<'_>,
    ) -> Result<Self> {
        let opts = SegmentOptions {
            access,
            ..SegmentOptions::default()
        };
        Self::attach(FramedSegment::open_wait_with(name, &opts, wait)?, owner)
    }

    /// View an open framed segment as an array segment: check its owner, its kind and its
    /// array header against the segment's real size (SPEC 7.2 with `L` = the capacity, 7.5).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] for an owner `owner` does not allow;
    /// [`ErrorKind::Unsupported`] when it is not an array segment, or the header names too
    /// many dimensions or an unknown element type; [`ErrorKind::CorruptHeader`],
    /// [`ErrorKind::Truncated`], [`ErrorKind::BadMagic`], [`ErrorKind::UnsupportedVersion`]
    /// as SPEC 7.2 gives them; every error names the segment.
    pub fn attach(framed: FramedSegment, owner: &OwnerPolicy) -> Result<Self> {
        if let Some(obj) = framed.object() {
            owner.check(obj)?;
        }
        let header = header_of(&framed)?;
        Ok(Self {
            seen: AtomicU32::new(framed.publish_count()),
            framed,
            header,
        })
    }

    /// The framed segment underneath.
    #[must_use]
    pub fn framed(&self) -> &FramedSegment {
        &self.framed
    }

    /// The segment's name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.framed.name()
    }

    /// The array header (fixed for the segment's life).
    #[must_use]
    pub fn header(&self) -> &ArrayHeader {
        &self.header
    }

    /// The element type.
    #[must_use]
    pub fn dtype(&self) -> DType {
        self.header.dtype()
    }

    /// The shape.
    #[must_use]
    pub fn shape(&self) -> &[u64] {
        self.header.shape()
    }

    /// The strides in bytes.
    #[must_use]
    pub fn strides(&self) -> &[i64] {
        self.header.strides()
    }

    /// Whether this handle may write.
    #[must_use]
    pub fn is_writable(&self) -> bool {
        self.framed.region().is_writable()
    }

    /// The current version: the number of writes ended so far (`sequence / 2`; a write in
    /// progress is not counted).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.framed.seqlock().0.load(Ordering::Acquire) >> 1
    }

    /// The publish counter (wraps); see [`wait`](Self::wait).
    #[must_use]
    pub fn publish_count(&self) -> u32 {
        self.framed.publish_count()
    }

    /// Offset of the data area from the segment start.
    fn data_at(&self) -> u64 {
        self.framed.header_len() + self.header.data_offset()
    }

    /// The first byte of the data area in this process's mapping (64-byte aligned). Element
    /// `(0, ..., 0)` is at `data_ptr() + header().origin()`.
    #[must_use]
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the header was validated against the capacity, so the data area lies inside
        // the mapping.
        unsafe {
            self.framed
                .region()
                .as_mut_ptr()
                .add(self.data_at() as usize)
        }
    }

    /// Length of the data area in bytes.
    #[must_use]
    pub fn data_len(&self) -> usize {
        self.header.data_len() as usize
    }

    /// The header and data bytes, where they lie in the mapping, after re-checking the real
    /// size.
    fn buffer(&self) -> Result<&[u8]> {
        self.framed.region().check_backing()?;
        // SAFETY: header_len + total_len <= header_len + capacity <= the mapping (validated);
        // the caller's contract (see `view`) covers concurrent writers.
        Ok(unsafe {
            std::slice::from_raw_parts(self.framed.payload_ptr(), self.header.total_len() as usize)
        })
    }

    /// A zero-copy typed view of the array in place, the header re-checked against the
    /// segment's real size.
    ///
    /// # Safety
    ///
    /// The view reads shared memory that the writer may replace meanwhile (elements then read
    /// as whatever is there, possibly half old and half new: take a
    /// [`read_data_into`](Self::read_data_into) copy for a consistent one), and that another
    /// process could shrink (`SIGBUS` on access, the layout's safety boundary). The caller
    /// must not let a write through this process's own handles overlap the view's use.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `T` is not the element type;
    /// [`ErrorKind::Truncated`] when the segment shrank.
    pub unsafe fn view<T: Element>(&self) -> Result<ArrayView<'_, T>> {
        ArrayView::new(self.buffer()?).map_err(|e| e.with_segment(self.name()))
    }

    /// Start a new version: the sequence turns odd, so readers' copies wait or retry until
    /// [`ArrayWrite::publish`]. Holds off first, boundedly, for a reader's copy request.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only handle; [`ErrorKind::Truncated`] when
    /// the segment shrank.
    pub fn begin_write(&self) -> Result<ArrayWrite<'_>> {
        let start = self.begin_write_raw()?;
        Ok(ArrayWrite {
            segment: self,
            start,
            done: false,
        })
    }

    /// As [`begin_write`](Self::begin_write), for the fronts: a write that does not borrow
    /// the segment. Returns the token to give [`end_write_raw`](Self::end_write_raw).
    ///
    /// # Errors
    ///
    /// As [`begin_write`](Self::begin_write).
    pub fn begin_write_raw(&self) -> Result<u64> {
        let region = self.framed.region();
        region.check_writable()?;
        region.check_backing()?;
        self.framed.claim_writer();
        self.yield_to_copy();
        Ok(self.framed.seqlock().begin_write())
    }

    /// End a write begun with [`begin_write_raw`](Self::begin_write_raw): the sequence turns
    /// even; when `publish`, `publish_count` is bumped and waiters wake. An unpublished end
    /// (an abandoned write) makes what was written the current data without waking anyone.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`] when the segment shrank (its header words are gone: nothing
    /// is stored).
    pub fn end_write_raw(&self, token: u64, publish: bool) -> Result<()> {
        self.framed.region().check_backing()?;
        self.framed
            .end_write(token, self.header.total_len(), None, publish);
        Ok(())
    }

    /// Publish a new version of data written in place outside a write (a version bump: readers
    /// that copied meanwhile may have seen the data half written; bracket writes with
    /// [`begin_write`](Self::begin_write) for consistent copies).
    ///
    /// # Errors
    ///
    /// As [`begin_write`](Self::begin_write).
    pub fn publish(&self) -> Result<()> {
        self.begin_write()?.publish()
    }

    /// Replace the data area with `data` (exactly [`data_len`](Self::data_len) bytes) and
    /// publish, in one write.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for another length; as
    /// [`begin_write`](Self::begin_write).
    pub fn write_data(&self, data: &[u8]) -> Result<()> {
        self.check_len(data.len())?;
        let w = self.begin_write()?;
        self.framed.region().write_at(self.data_at(), data)?;
        w.publish()
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len == self.data_len() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{len} bytes given for an array data area of {} bytes ({} {:?})",
                self.data_len(),
                self.dtype(),
                self.shape()
            ),
        )
        .with_segment(self.name()))
    }

    /// Hold off (at most the reader's window, capped at [`MAX_COPY_WINDOW`]) while a reader
    /// asks for a window to copy in, then clear its request (a dead reader costs one wait).
    fn yield_to_copy(&self) {
        let word = self.copy_request();
        let asked = word.load(Ordering::Acquire);
        if asked == 0 {
            return;
        }
        let window = Duration::from_micros(asked).min(MAX_COPY_WINDOW);
        let began = Instant::now();
        let mut spins = 0u32;
        while word.load(Ordering::Acquire) != 0 && began.elapsed() < window {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if spins < 128 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(20));
            }
        }
        let _ = word.compare_exchange(asked, 0, Ordering::AcqRel, Ordering::Relaxed);
    }

    fn copy_request(&self) -> &AtomicU64 {
        self.framed.u64_at(offsets::COPY_REQUEST)
    }

    /// Copy the data area (exactly [`data_len`](Self::data_len) bytes, in memory order: the
    /// header's strides describe it) into `out`, consistently: a copy a write overlapped is
    /// retried, so it is never torn. Also sets what [`wait_next`](Self::wait_next) waits past.
    ///
    /// A reader that keeps racing a writer asks it (through the copy request word, a
    /// read-write handle only) for a window; a writer killed mid-write, or one that ignores
    /// requests, makes the copy fail after 2 s rather than loop.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `out` has another length; [`ErrorKind::Timeout`]
    /// when no consistent copy could be taken for 2 s; [`ErrorKind::Truncated`].
    pub fn read_data_into(&self, out: &mut [u8]) -> Result<ArraySnapshot> {
        self.check_len(out.len())?;
        let region = self.framed.region();
        region.check_backing()?;
        let at = self.data_at();
        let writable = region.is_writable();
        let req = self.copy_request();
        let mut asked = 0u64;
        let mut raced = 0u32;
        // Until a copy was timed: 1 GB/s, a slow copy.
        let mut took = Duration::from_nanos(self.header.data_len());
        let result = self.framed.seqlock().read_raced(
            self.name(),
            || {
                let count = self.framed.publish_count();
                region.read_at(at, out)?;
                Ok(Some(count))
            },
            || unreachable_invalid(self.name()),
            |overlapped| {
                if let Some(t) = overlapped {
                    took = t;
                    raced += 1;
                } else if asked != 0 && req.load(Ordering::Relaxed) == asked {
                    return; // asked already, and not yet served
                }
                if writable {
                    // Twice the copy's time, doubled with every race lost, so that a reader
                    // the scheduler is slow to run still gets its window soon.
                    let window = took
                        .saturating_mul(2 << raced.min(8))
                        .clamp(MIN_COPY_WINDOW, MAX_COPY_WINDOW);
                    asked = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
                    req.store(asked, Ordering::Release);
                }
            },
        );
        if asked != 0 {
            // Only our own request goes; another reader's newer one stays.
            let _ = req.compare_exchange(asked, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
        let (count, sequence) = result?;
        self.seen.store(count, Ordering::Relaxed);
        Ok(ArraySnapshot {
            version: sequence >> 1,
            publish_count: count,
        })
    }

    /// A consistent copy of the data area, as [`read_data_into`](Self::read_data_into).
    ///
    /// # Errors
    ///
    /// As [`read_data_into`](Self::read_data_into).
    pub fn read_data(&self) -> Result<(Vec<u8>, ArraySnapshot)> {
        let mut out = vec![0u8; self.data_len()];
        let snap = self.read_data_into(&mut out)?;
        Ok((out, snap))
    }

    /// A consistent copy of the elements in logical (C) order, as `T`s.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `T` is not the element type; as
    /// [`read_data_into`](Self::read_data_into).
    pub fn to_vec<T: Element>(&self) -> Result<(Vec<T>, ArraySnapshot)> {
        let total = self.header.total_len() as usize;
        let start = self.header.data_offset() as usize;
        let mut buf = super::copy::AlignedBuffer::zeroed(total);
        let head = self.header.encode();
        // SAFETY: `buf` is our own buffer of `total` bytes; the header (header_len <=
        // data_offset) and the data area (data_offset + data_len = total) lie inside it.
        let whole = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr(), total) };
        whole[..head.len()].copy_from_slice(&head);
        let snap = self.read_data_into(&mut whole[start..])?;
        let view = ArrayView::<T>::new(buf.as_slice()).map_err(|e| e.with_segment(self.name()))?;
        Ok((view.to_vec(), snap))
    }

    /// Wait until the publish counter differs from `seen` (a version was published since),
    /// the writer closes the segment or is gone, or `wait` runs out. Returns the new counter.
    ///
    /// # Errors
    ///
    /// As [`FramedSegment::wait`]: [`ErrorKind::WriterClosed`], [`ErrorKind::PeerGone`],
    /// [`ErrorKind::Timeout`], [`ErrorKind::Aborted`], [`ErrorKind::Truncated`].
    pub fn wait(&self, seen: u32, wait: &mut Wait<'_>) -> Result<u32> {
        self.framed.wait(seen, wait)
    }

    /// Wait for a version this handle has not seen yet (published after it opened, after its
    /// last copy, or after the last `wait_next`), and remember it as seen.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub fn wait_next(&self, wait: &mut Wait<'_>) -> Result<u32> {
        let now = self.framed.wait(self.seen.load(Ordering::Relaxed), wait)?;
        self.seen.store(now, Ordering::Relaxed);
        Ok(now)
    }

    /// Mark the segment closed by its writer: waiting readers get
    /// [`ErrorKind::WriterClosed`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] on a read-only handle.
    pub fn close_writer(&self) -> Result<()> {
        self.framed.close_writer()
    }
}

/// The snapshot reads nothing that can be invalid: this is never called.
fn unreachable_invalid(name: &str) -> Error {
    Error::new(ErrorKind::CorruptHeader, "inconsistent array copy").with_segment(name)
}

/// Read and validate the array header of an array segment (SPEC 7.5): the kind, the kind
/// area, and the array header (SPEC 7.2) against the segment's capacity. For listing and
/// for [`ArraySegment::attach`].
///
/// # Errors
///
/// As [`ArraySegment::attach`], without the owner check.
pub fn header_of(framed: &FramedSegment) -> Result<ArrayHeader> {
    let name = framed.name();
    if framed.kind() != Kind::Array {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "this is a {} segment, not an array segment",
                framed.kind().name()
            ),
        )
        .with_segment(name));
    }
    let header_len = framed.header_len();
    if header_len < u64::from(ARRAY_SEGMENT_HEADER_LEN) {
        return Err(Error::new(
            ErrorKind::CorruptHeader,
            format!(
                "corrupt header: an array segment's header_len is at least \
                 {ARRAY_SEGMENT_HEADER_LEN}, this one says {header_len}"
            ),
        )
        .with_segment(name));
    }
    let region = framed.region();
    region.check_backing()?;
    let cap = framed.capacity();
    let mut raw = [0u8; MAX_HEADER_LEN];
    let take = cap.min(MAX_HEADER_LEN as u64) as usize;
    region.read_at(header_len, &mut raw[..take])?;
    ArrayHeader::decode(&raw[..take], cap).map_err(|e| e.with_segment(name))
}

/// A write in progress on an [`ArraySegment`]; see [`ArraySegment::begin_write`]. Dropping it
/// without [`publish`](Self::publish) ends the write unpublished (what was written stays, and
/// nobody is woken).
#[derive(Debug)]
pub struct ArrayWrite<'a> {
    segment: &'a ArraySegment,
    start: u64,
    done: bool,
}

impl ArrayWrite<'_> {
    /// The array header.
    #[must_use]
    pub fn header(&self) -> &ArrayHeader {
        &self.segment.header
    }

    /// The data area's bytes, for filling in place. Zero-copy: writing faults (`SIGBUS`) if
    /// another process shrank the segment (the layout's safety boundary).
    #[must_use]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: the data area lies in the writable mapping (validated); this write's
        // `&mut self` is the only writer in this process (one writer per segment by contract).
        unsafe { std::slice::from_raw_parts_mut(self.segment.data_ptr(), self.segment.data_len()) }
    }

    /// A writable typed view of the array in place.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when `T` is not the element type;
    /// [`ErrorKind::Truncated`] when the segment shrank.
    pub fn view_mut<T: Element>(&mut self) -> Result<ArrayViewMut<'_, T>> {
        let seg = self.segment;
        seg.framed.region().check_backing()?;
        // SAFETY: as in `data_mut`, over the header and the data area.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                seg.framed.payload_ptr(),
                seg.header.total_len() as usize,
            )
        };
        ArrayViewMut::new(buf).map_err(|e| e.with_segment(seg.name()))
    }

    /// The elements as one contiguous slice of `T`s in memory order (every layout shmbridge
    /// creates by default is contiguous).
    ///
    /// # Errors
    ///
    /// As [`view_mut`](Self::view_mut); [`ErrorKind::Unsupported`] for a layout that is not
    /// contiguous.
    pub fn as_mut_slice<T: Element>(&mut self) -> Result<&mut [T]> {
        let name = self.segment.name().to_owned();
        let h = &self.segment.header;
        if !(h.is_c_contiguous() || h.is_f_contiguous()) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the array is not contiguous: use view_mut",
            )
            .with_segment(name));
        }
        let n = h.len() as usize;
        let origin = h.origin() as usize;
        // The type, alignment and size checks.
        self.view_mut::<T>()?;
        // SAFETY: checked above: T is the element type, the data area is aligned and holds the
        // n contiguous elements from origin.
        Ok(unsafe {
            std::slice::from_raw_parts_mut(self.segment.data_ptr().add(origin).cast::<T>(), n)
        })
    }

    /// End the write and publish it as a new version: the sequence turns even, the publish
    /// counter is bumped and waiters wake.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Truncated`] when the segment shrank.
    pub fn publish(mut self) -> Result<()> {
        self.done = true;
        self.segment.end_write_raw(self.start, true)
    }
}

impl Drop for ArrayWrite<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.segment.end_write_raw(self.start, false);
        }
    }
}
