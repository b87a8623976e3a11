//! The framed layout: shmbridge's validated, versioned header, then the payload.

use std::ffi::{c_char, c_void, CString};

use shmbridge::{FramedSegment, HeaderInfo};

use crate::args::{
    self, arg, bytes_arg, bytes_out, c_string, give, len_out, name_arg, opt_ref, out_arg, ref_arg,
    take, wait_arg, write_out,
};
use crate::error::{guard, guard_value, shmb_result};
use crate::shmb_access;
use crate::wait::shmb_wait;

/// The payload area holds one message, replaced as a whole by each write.
pub const SHMB_KIND_MESSAGE: u32 = 1;
/// The payload area holds a single-producer single-consumer byte stream.
pub const SHMB_KIND_STREAM: u32 = 2;
/// Flag: the header's checksum is the CRC-32 of the current payload.
pub const SHMB_FLAG_CHECKSUM: u32 = 1;
/// Flag: the writer has finished for good.
pub const SHMB_FLAG_WRITER_CLOSED: u32 = 2;
/// Flag: at least one payload has been published.
pub const SHMB_FLAG_PUBLISHED: u32 = 4;
/// Flag (layout 1.1): the writer wakes on every publish, because read-only readers wait.
pub const SHMB_FLAG_WAKE_ALWAYS: u32 = 8;

/// A snapshot of a framed header (see docs/SPEC.md, "Layout 3"), filled in by
/// `shmb_framed_header()` and `shmb_list_get()`. Plain data owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmb_header_info {
    /// Major layout version (1).
    pub version_major: u16,
    /// Minor layout version.
    pub version_minor: u16,
    /// Offset of the payload from the start of the segment.
    pub header_len: u32,
    /// `SHMB_KIND_MESSAGE`, `SHMB_KIND_STREAM`, or another number from a newer minor version.
    pub kind: u32,
    /// `SHMB_FLAG_*` bits.
    pub flags: u32,
    /// Bytes available for the payload.
    pub capacity: u64,
    /// Bytes of valid payload.
    pub payload_len: u64,
    /// Seqlock counter (odd while a write is in progress).
    pub sequence: u64,
    /// Number of publishes so far (wraps).
    pub publish_count: u32,
    /// Whether `checksum` holds the CRC-32 of the payload.
    pub has_checksum: bool,
    /// CRC-32 (zlib's) of the payload when `has_checksum`.
    pub checksum: u32,
    /// Pid of the process that created the segment (in its own PID namespace: information).
    pub creator_pid: u32,
    /// Whether a writer is alive: some process holds the segment's writer liveness lock (for a
    /// layout 1.0 segment: whether the creator's pid still runs).
    pub creator_alive: bool,
    /// That process's start time, in clock ticks since boot (0 if unknown).
    pub creator_start_time: u64,
    /// Creation time, nanoseconds since the Unix epoch.
    pub created_ns: u64,
}

impl From<&HeaderInfo> for shmb_header_info {
    fn from(h: &HeaderInfo) -> Self {
        Self {
            version_major: h.version_major,
            version_minor: h.version_minor,
            header_len: h.header_len,
            kind: h.kind.code(),
            flags: h.flags,
            capacity: h.capacity,
            payload_len: h.payload_len,
            sequence: h.sequence,
            publish_count: h.publish_count,
            has_checksum: h.checksum.is_some(),
            checksum: h.checksum.unwrap_or(0),
            creator_pid: h.creator_pid,
            creator_alive: h.creator_alive(),
            creator_start_time: h.creator_start_time,
            created_ns: h.created_ns,
        }
    }
}

/// A framed segment: a validated header, then the payload. Created by `shmb_framed_create()`
/// or `shmb_framed_open()`, released by `shmb_framed_free()` (which never removes the name).
pub struct shmb_framed {
    inner: FramedSegment,
    name: CString,
}

impl shmb_framed {
    fn new(inner: FramedSegment) -> Self {
        let name = c_string(inner.name());
        Self { inner, name }
    }
}

/// Create the framed segment `name` with room for `capacity` payload bytes (the segment is
/// `128 + capacity` bytes) and an empty payload; permission bits `perm` (`SHMB_PERM_DEFAULT`
/// = 0600). Always `create_only`.
///
/// Ownership: `name` is borrowed; on success the caller owns `*out` (release with
/// `shmb_framed_free()`); removing the name is up to the caller (`shmb_remove()`).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_SIZE`,
/// `SHMB_INVALID_ARGUMENT`, `SHMB_ALREADY_EXISTS`, `SHMB_NO_SPACE`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_create(
    name: *const c_char,
    capacity: u64,
    perm: u32,
    out: *mut *mut shmb_framed,
) -> shmb_result {
    const F: &str = "shmb_framed_create";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let opts = args::framed_options(perm);
        let f = FramedSegment::create(name, capacity, &opts)?;
        arg!(give(out, shmb_framed::new(f)));
        Ok(())
    })
}

/// Open the framed segment `name` and validate its header against the segment's real size.
/// `access` is `SHMB_READ_ONLY` or `SHMB_READ_WRITE`.
///
/// Ownership: `name` is borrowed; on success the caller owns `*out`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT`,
/// `SHMB_NOT_FOUND`, `SHMB_PERMISSION_DENIED`, `SHMB_BAD_MAGIC` (a raw or size-prefixed
/// segment), `SHMB_UNSUPPORTED_VERSION`, `SHMB_CORRUPT_HEADER`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_open(
    name: *const c_char,
    access: shmb_access,
    out: *mut *mut shmb_framed,
) -> shmb_result {
    const F: &str = "shmb_framed_open";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let acc = args::access(F, access)?;
        let f = FramedSegment::open(name, acc)?;
        arg!(give(out, shmb_framed::new(f)));
        Ok(())
    })
}

/// As `shmb_framed_open()`, but when no segment `name` exists yet, wait for one to appear, as
/// `wait` allows (NULL: without a limit). A segment that exists but is not a valid framed
/// segment fails at once: segments get their name only once their header is complete.
///
/// Ownership: `name` and `wait` are borrowed; on success the caller owns `*out`.
///
/// Errors: those of `shmb_framed_open()` except `SHMB_NOT_FOUND`; `SHMB_TIMEOUT` (no such
/// segment appeared in time), `SHMB_ABORTED` (the interrupt asked to stop),
/// `SHMB_INVALID_ARGUMENT` (a bad `timeout_ms`).
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `wait` is NULL or points to a `shmb_wait`; `out`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_open_wait(
    name: *const c_char,
    access: shmb_access,
    wait: *const shmb_wait,
    out: *mut *mut shmb_framed,
) -> shmb_result {
    const F: &str = "shmb_framed_open_wait";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let acc = args::access(F, access)?;
        let w = arg!(wait_arg(wait, F))?;
        let f = w.run(false, |w| FramedSegment::open_wait(name, acc, w))?;
        arg!(give(out, shmb_framed::new(f)));
        Ok(())
    })
}

/// Unmap and close; never removes the name. NULL is a no-op.
///
/// # Safety
///
/// `framed` is NULL or a handle not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_free(framed: *mut shmb_framed) {
    guard_value((), || arg!(take(framed)));
}

/// The segment's name. Borrowed: valid until `framed` is freed. NULL when `framed` is NULL.
///
/// # Safety
///
/// `framed` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_name(framed: *const shmb_framed) -> *const c_char {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(framed)).map_or(std::ptr::null(), |f| f.name.as_ptr())
    })
}

/// Bytes available for the payload; 0 when `framed` is NULL.
///
/// # Safety
///
/// `framed` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_capacity(framed: *const shmb_framed) -> u64 {
    guard_value(0, || {
        arg!(opt_ref(framed)).map_or(0, |f| f.inner.capacity())
    })
}

/// The current payload length (a snapshot: a racing write may change it); 0 when `framed` is
/// NULL.
///
/// # Safety
///
/// `framed` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_payload_len(framed: *const shmb_framed) -> u64 {
    guard_value(0, || {
        arg!(opt_ref(framed)).map_or(0, |f| f.inner.payload_len())
    })
}

/// Fill the caller's `*out` with a snapshot of the header.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `framed` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_header(
    framed: *const shmb_framed,
    out: *mut shmb_header_info,
) -> shmb_result {
    const F: &str = "shmb_framed_header";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let f = arg!(ref_arg(framed, F, "framed"))?;
        let h = f.inner.header()?;
        arg!(write_out(out, shmb_header_info::from(&h)));
        Ok(())
    })
}

/// Publish `len` bytes of `data` as the new payload, with its CRC-32, and wake waiting
/// readers. Readers never see a half-written payload (seqlock).
///
/// Errors: `SHMB_NULL_ARGUMENT` (`data` may be NULL only when `len` is 0),
/// `SHMB_PERMISSION_DENIED` (read-only handle), `SHMB_OUT_OF_BOUNDS` (larger than the
/// capacity), `SHMB_UNSUPPORTED` (a stream segment), `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `framed` is NULL or a live handle; `data` is NULL or valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_write(
    framed: *const shmb_framed,
    data: *const c_void,
    len: usize,
) -> shmb_result {
    const F: &str = "shmb_framed_write";
    guard(F, || {
        let f = arg!(ref_arg(framed, F, "framed"))?;
        let data = arg!(bytes_arg(data, len, F, "data"))?;
        f.inner.write(data)?;
        Ok(())
    })
}

/// Copy the current payload consistently into the caller's `buf` (capacity `cap`), verify its
/// checksum, and store its length in `*out_len`. When `cap` is too small, returns
/// `SHMB_BUFFER_TOO_SMALL` and stores the length needed in `*out_len` (size the buffer with
/// `shmb_framed_capacity()` to avoid the retry).
///
/// Errors: `SHMB_NULL_ARGUMENT` (`buf` may be NULL only when `cap` is 0),
/// `SHMB_BUFFER_TOO_SMALL`, `SHMB_CHECKSUM_MISMATCH`, `SHMB_CORRUPT_HEADER`, `SHMB_TIMEOUT` (a
/// writer died mid-write), `SHMB_UNSUPPORTED` (a stream segment), `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `framed` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes of writes;
/// `out_len` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_read(
    framed: *const shmb_framed,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> shmb_result {
    const F: &str = "shmb_framed_read";
    guard(F, || {
        let out_len = out_arg(out_len, F, "out_len")?;
        let f = arg!(ref_arg(framed, F, "framed"))?;
        let buf = arg!(bytes_out(buf, cap, F, "buf"))?;
        let len = f.inner.read_into_slice(buf)?.len;
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        arg!(len_out(out_len, len, cap, F, "the payload"))
    })
}

/// The current publish counter; pass it to `shmb_framed_wait()` to wait for the next publish.
/// 0 when `framed` is NULL.
///
/// # Safety
///
/// `framed` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_publish_count(framed: *const shmb_framed) -> u32 {
    guard_value(0, || {
        arg!(opt_ref(framed)).map_or(0, |f| f.inner.publish_count())
    })
}

/// Wait until the publish counter differs from `seen`, the writer closes the segment or is
/// gone, or `wait` runs out (NULL: no limit, no interrupt). Spins briefly, then sleeps on a
/// futex in the shared mapping (read-only handles too). Stores the new counter in
/// `*out_count`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_TIMEOUT`, `SHMB_ABORTED` (the interrupt asked to stop),
/// `SHMB_WRITER_CLOSED`, `SHMB_PEER_GONE` (no process holds the segment as its writer any
/// more), `SHMB_TRUNCATED`, `SHMB_INVALID_ARGUMENT` (a bad `timeout_ms`).
///
/// # Safety
///
/// `framed` is NULL or a live handle; `wait` is NULL or points to a `shmb_wait`; `out_count`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_wait(
    framed: *const shmb_framed,
    seen: u32,
    wait: *const shmb_wait,
    out_count: *mut u32,
) -> shmb_result {
    const F: &str = "shmb_framed_wait";
    guard(F, || {
        let out_count = out_arg(out_count, F, "out_count")?;
        let f = arg!(ref_arg(framed, F, "framed"))?;
        let w = arg!(wait_arg(wait, F))?;
        let n = w.run(false, |w| f.inner.wait(seen, w))?;
        arg!(write_out(out_count, n));
        Ok(())
    })
}

/// Mark the segment closed by its writer and wake every waiting reader.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_PERMISSION_DENIED`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `framed` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_framed_close_writer(framed: *const shmb_framed) -> shmb_result {
    const F: &str = "shmb_framed_close_writer";
    guard(F, || {
        let f = arg!(ref_arg(framed, F, "framed"))?;
        f.inner.close_writer()?;
        Ok(())
    })
}
