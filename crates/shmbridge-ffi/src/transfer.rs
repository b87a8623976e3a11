//! File transfer (`shmb_send_file`, `shmb_recv_file`) and byte streams
//! (`shmb_stream_writer`, `shmb_stream_reader`): thin shells over the core's
//! `shmbridge::transfer` and `shmbridge::stream`.

use std::ffi::{c_char, c_int, c_void, CString};
use std::ops::ControlFlow;
use std::sync::Arc;

use shmbridge::{
    FramedOptions, OwnerPolicy, Progress, ProgressFn, RecvOptions, Report, SegmentOptions,
    SendOptions, StreamReader, StreamWriter, TransferMode,
};

use crate::error::{guard, guard_value, out_arg, shmb_result, str_arg, FfiError};
use crate::file::path_arg;
use crate::wait::{shmb_wait, timeout, CWait, SHMB_TIMEOUT_FOREVER};
use crate::{c_string, give, take};

/// How a file travels (`shmb_send_options.mode`, `shmb_transfer_report.mode`). Any other
/// value is `SHMB_INVALID_ARGUMENT`.
pub type shmb_transfer_mode = u32;
/// One-shot unless `segment_size` is set and the file does not fit in it (then streaming).
pub const SHMB_TRANSFER_AUTO: shmb_transfer_mode = 0;
/// One framed segment sized to the file; the sender returns once it is published.
pub const SHMB_TRANSFER_ONE_SHOT: shmb_transfer_mode = 1;
/// A fixed-size ring the file streams through; the sender returns once the receiver has
/// taken and verified every byte.
pub const SHMB_TRANSFER_STREAM: shmb_transfer_mode = 2;

/// The `total` a progress callback or `shmb_stream_reader_total()` reports when the length is
/// not known in advance, and the `total` to give `shmb_stream_writer_create()` then.
pub const SHMB_UNKNOWN_TOTAL: u64 = u64::MAX;

/// `allow_owner` of `shmb_recv_options` (and of `shmb_stream_reader_open_owner()`): accept
/// only segments owned by this process's effective user (the default; root is not exempt).
pub const SHMB_OWNER_SELF: i64 = -1;
/// `allow_owner`: accept a segment of any owner (its bytes are then only as trustworthy as
/// every local user).
pub const SHMB_OWNER_ANY: i64 = -2;

/// The core's owner policy for an `allow_owner` value: `SHMB_OWNER_SELF`, `SHMB_OWNER_ANY`,
/// or a user id (0 to 2^32-1) accepted besides this process's own.
pub(crate) fn owner_policy(func: &str, allow_owner: i64) -> Result<OwnerPolicy, FfiError> {
    match allow_owner {
        SHMB_OWNER_SELF => Ok(OwnerPolicy::SameUser),
        SHMB_OWNER_ANY => Ok(OwnerPolicy::Any),
        uid => u32::try_from(uid).map(|u| OwnerPolicy::Allow(vec![u])).map_err(|_| {
            FfiError::new(
                shmb_result::SHMB_INVALID_ARGUMENT,
                format!(
                    "{func}: allow_owner {uid} is not a user id, SHMB_OWNER_SELF (-1) or SHMB_OWNER_ANY (-2)"
                ),
            )
        }),
    }
}

/// A progress callback: called from the thread doing the transfer, after each chunk (about
/// every 256 KiB one-shot, 1 MiB streaming), with the bytes moved so far, the total
/// (`SHMB_UNKNOWN_TOTAL` if unknown) and the caller's `user` pointer. Return 0 to go on, any
/// other value to stop the transfer: the call then fails with `SHMB_ABORTED`, cleaning up as
/// for any failure. It must not unwind or `longjmp` out (a C++ callback catches its
/// exceptions), and must not call back into the same transfer.
pub type shmb_progress_fn =
    Option<unsafe extern "C" fn(done: u64, total: u64, user: *mut c_void) -> c_int>;

/// Options of `shmb_send_file()`. Fill with `shmb_send_options_init()` (or pass NULL for the
/// defaults), then change fields. Plain data owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_send_options {
    /// `SHMB_TRANSFER_AUTO` (default), `SHMB_TRANSFER_ONE_SHOT` or `SHMB_TRANSFER_STREAM`.
    pub mode: shmb_transfer_mode,
    /// Permission bits of the segment; `SHMB_PERM_DEFAULT` (0, the default) is 0600.
    pub permissions: u32,
    /// Size of the whole segment, header included, in bytes; 0 (the default) is none given:
    /// streaming then uses 16 MiB, and `SHMB_TRANSFER_AUTO` sends one-shot. Ignored one-shot.
    pub segment_size: u64,
    /// Streaming only: how long to wait for the receiver to attach or make progress, in
    /// milliseconds; `SHMB_TIMEOUT_FOREVER` (-1, the default) has no limit.
    pub timeout_ms: i64,
    /// Called as the transfer advances, or NULL (the default).
    pub progress: shmb_progress_fn,
    /// Passed to `progress`, never dereferenced by the library.
    pub progress_user: *mut c_void,
}

/// Options of `shmb_recv_file()`. Fill with `shmb_recv_options_init()` (or pass NULL for the
/// defaults), then change fields. Plain data owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_recv_options {
    /// How long to wait for the sender (for the segment to appear, for the payload, and while
    /// streaming for each next piece), in milliseconds; `SHMB_TIMEOUT_FOREVER` (-1, the
    /// default) has no limit; 0 fails at once unless the sender is ready. A sender that dies is
    /// noticed either way.
    pub timeout_ms: i64,
    /// Leave a one-shot segment in place after a successful receive (default false).
    pub keep: bool,
    /// `fsync` the file and its directory before reporting success (default false).
    pub fsync: bool,
    /// Called as the transfer advances, or NULL (the default).
    pub progress: shmb_progress_fn,
    /// Passed to `progress`, never dereferenced by the library.
    pub progress_user: *mut c_void,
    /// Whose segments are accepted: `SHMB_OWNER_SELF` (-1, the default: only this user's own;
    /// anyone can create a segment under the name a receiver waits for), `SHMB_OWNER_ANY`
    /// (-2), or one more user id to accept. Another owner's segment fails with
    /// `SHMB_PERMISSION_DENIED` and is left alone.
    pub allow_owner: i64,
}

/// What a finished transfer did, written by `shmb_send_file()` / `shmb_recv_file()` on
/// success. Plain data owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct shmb_transfer_report {
    /// Bytes transferred (and verified, on the receiving side).
    pub bytes: u64,
    /// CRC-32 of the bytes (zlib's `crc32`).
    pub crc32: u32,
    /// `SHMB_TRANSFER_ONE_SHOT` or `SHMB_TRANSFER_STREAM`: how the file travelled.
    pub mode: shmb_transfer_mode,
    /// Total size of the segment used, header included.
    pub segment_size: u64,
    /// Wall time of the call, in nanoseconds.
    pub elapsed_ns: u64,
}

impl From<&Report> for shmb_transfer_report {
    fn from(r: &Report) -> Self {
        Self {
            bytes: r.bytes,
            crc32: r.crc32,
            mode: match r.mode {
                TransferMode::Stream => SHMB_TRANSFER_STREAM,
                TransferMode::OneShot => SHMB_TRANSFER_ONE_SHOT,
                TransferMode::Auto => SHMB_TRANSFER_AUTO,
            },
            segment_size: r.segment_size,
            elapsed_ns: u64::try_from(r.elapsed.as_nanos()).unwrap_or(u64::MAX),
        }
    }
}

impl Default for shmb_send_options {
    fn default() -> Self {
        Self {
            mode: SHMB_TRANSFER_AUTO,
            permissions: crate::SHMB_PERM_DEFAULT,
            segment_size: 0,
            timeout_ms: SHMB_TIMEOUT_FOREVER,
            progress: None,
            progress_user: std::ptr::null_mut(),
        }
    }
}

impl Default for shmb_recv_options {
    fn default() -> Self {
        Self {
            timeout_ms: SHMB_TIMEOUT_FOREVER,
            keep: false,
            fsync: false,
            progress: None,
            progress_user: std::ptr::null_mut(),
            allow_owner: SHMB_OWNER_SELF,
        }
    }
}

/// Fill `*opts` with the defaults of `shmb_send_options` (auto mode, no segment size, no time
/// limit, 0600, no progress callback). NULL is a no-op.
///
/// # Safety
///
/// `opts` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_send_options_init(opts: *mut shmb_send_options) {
    guard_value((), || {
        if !opts.is_null() {
            // SAFETY: non-NULL and writable by contract.
            unsafe { opts.write(shmb_send_options::default()) };
        }
    });
}

/// Fill `*opts` with the defaults of `shmb_recv_options` (no time limit, remove the segment,
/// no fsync, no progress callback, only this user's segments). NULL is a no-op.
///
/// # Safety
///
/// `opts` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_recv_options_init(opts: *mut shmb_recv_options) {
    guard_value((), || {
        if !opts.is_null() {
            // SAFETY: non-NULL and writable by contract.
            unsafe { opts.write(shmb_recv_options::default()) };
        }
    });
}

/// The C callback and its user pointer, callable from the core's `ProgressFn`.
#[derive(Clone, Copy)]
struct Callback {
    f: unsafe extern "C" fn(u64, u64, *mut c_void) -> c_int,
    user: *mut c_void,
}

// SAFETY: the core calls the progress function only from the thread running the transfer,
// which is the thread that called the export with this pointer; the pointer is only handed
// back to the caller's function, never dereferenced here.
unsafe impl Send for Callback {}
// SAFETY: as above: no concurrent use.
unsafe impl Sync for Callback {}

/// The core's progress function over a C callback: a non-zero return asks the core to stop,
/// and the transfer then fails with `SHMB_ABORTED` after the core's usual clean-up.
fn progress_fn(f: shmb_progress_fn, user: *mut c_void) -> Option<ProgressFn> {
    let cb = Callback { f: f?, user };
    Some(Arc::new(move |p: Progress| {
        let cb = cb;
        // SAFETY: the caller's function, called as its documented contract says.
        let stop = unsafe { (cb.f)(p.done, p.total.unwrap_or(SHMB_UNKNOWN_TOTAL), cb.user) };
        if stop == 0 {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }))
}

/// Write `*out` on success when `out` is not NULL.
///
/// # Safety
///
/// `out` is NULL or valid for a write.
unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by contract.
        unsafe { out.write(value) };
    }
}

/// Send the file at `path` through the new segment `name` (which must not exist).
///
/// One-shot: returns once the file is published; the segment stays for the receiver, who
/// removes it. Streaming: returns once the receiver has taken and verified every byte, and
/// removes the segment. On failure nothing is published and the segment is removed.
///
/// Ownership: `path`, `name` and `opts` are borrowed for the call; `opts` may be NULL for the
/// defaults; `out` may be NULL when the report is not wanted, and is written only on success.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT` (an empty path,
/// an unknown mode, a directory or other non-regular file, a file that changed while being
/// sent), `SHMB_NOT_FOUND` / `SHMB_PERMISSION_DENIED` (the file cannot be read),
/// `SHMB_ALREADY_EXISTS` (the name is taken), `SHMB_INVALID_SIZE` (a stream segment no larger
/// than its header), `SHMB_NO_SPACE`, `SHMB_ABORTED` (the progress callback asked to stop);
/// streaming: `SHMB_PEER_GONE` (the receiver died or gave up), `SHMB_TIMEOUT`.
///
/// # Safety
///
/// `path` and `name` are NULL or NUL-terminated strings; `opts` is NULL or points to a
/// `shmb_send_options`; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_send_file(
    path: *const c_char,
    name: *const c_char,
    opts: *const shmb_send_options,
    out: *mut shmb_transfer_report,
) -> shmb_result {
    const F: &str = "shmb_send_file";
    guard(F, || {
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { path_arg(path, F) }?;
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { str_arg(name, F, "name", shmb_result::SHMB_INVALID_NAME) }?;
        // SAFETY: forwarded from this function's contract.
        let o = unsafe { opts.as_ref() }.copied().unwrap_or_default();
        let mode = match o.mode {
            SHMB_TRANSFER_AUTO => TransferMode::Auto,
            SHMB_TRANSFER_ONE_SHOT => TransferMode::OneShot,
            SHMB_TRANSFER_STREAM => TransferMode::Stream,
            other => {
                return Err(FfiError::new(
                    shmb_result::SHMB_INVALID_ARGUMENT,
                    format!("{F}: unknown transfer mode {other} (expected SHMB_TRANSFER_AUTO, SHMB_TRANSFER_ONE_SHOT or SHMB_TRANSFER_STREAM)"),
                ))
            }
        };
        let progress = progress_fn(o.progress, o.progress_user);
        let core = SendOptions {
            mode,
            segment_size: (o.segment_size != 0).then_some(o.segment_size),
            timeout: timeout(F, o.timeout_ms)?,
            permissions: crate::perm(o.permissions),
            progress,
        };
        let report = shmbridge::send_file(path, name, &core)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, shmb_transfer_report::from(&report)) };
        Ok(())
    })
}

/// Receive the file sent through the segment `name` into `path`.
///
/// Waits up to the timeout for the sender (the segment may not exist yet), writes the data to
/// a temporary file beside `path`, and renames it onto `path` only when the byte count and
/// CRC-32 match. Removes the segment afterwards unless `keep`. On any failure `path` is
/// untouched and no temporary file is left.
///
/// Ownership: `name`, `path` and `opts` are borrowed for the call; `opts` may be NULL for the
/// defaults; `out` may be NULL, and is written only on success.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT` (an empty path,
/// a directory as target), `SHMB_PERMISSION_DENIED` and other OS errors (the target directory
/// cannot be written: checked before anything is consumed), `SHMB_TIMEOUT` (no sender, or it
/// stalled), `SHMB_PEER_GONE` / `SHMB_WRITER_CLOSED` (the sender died or gave up),
/// `SHMB_CHECKSUM_MISMATCH` / `SHMB_TRUNCATED` (the data does not verify), `SHMB_BAD_MAGIC`
/// and the other header errors (not a framed segment), `SHMB_ALREADY_EXISTS` (another receiver
/// took the stream), `SHMB_ABORTED` (the progress callback asked to stop).
///
/// # Safety
///
/// `name` and `path` are NULL or NUL-terminated strings; `opts` is NULL or points to a
/// `shmb_recv_options`; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_recv_file(
    name: *const c_char,
    path: *const c_char,
    opts: *const shmb_recv_options,
    out: *mut shmb_transfer_report,
) -> shmb_result {
    const F: &str = "shmb_recv_file";
    guard(F, || {
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { str_arg(name, F, "name", shmb_result::SHMB_INVALID_NAME) }?;
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { path_arg(path, F) }?;
        // SAFETY: forwarded from this function's contract.
        let o = unsafe { opts.as_ref() }.copied().unwrap_or_default();
        let progress = progress_fn(o.progress, o.progress_user);
        let core = RecvOptions {
            timeout: timeout(F, o.timeout_ms)?,
            keep: o.keep,
            fsync: o.fsync,
            progress,
        };
        let owner = owner_policy(F, o.allow_owner)?;
        let report = shmbridge::recv_file_with_owner(name, path, &core, &owner)?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out, shmb_transfer_report::from(&report)) };
        Ok(())
    })
}

/// The writing end of a stream segment (a single-producer single-consumer byte ring). Created
/// by `shmb_stream_writer_create()`, released by `shmb_stream_writer_free()`. One thread at a
/// time.
pub struct shmb_stream_writer {
    inner: Option<StreamWriter>,
    name: CString,
}

/// The reading end of a stream segment. Created by `shmb_stream_reader_open()`, released by
/// `shmb_stream_reader_free()`. One thread at a time.
pub struct shmb_stream_reader {
    inner: Option<StreamReader>,
    name: CString,
}

fn closed(func: &str, what: &str) -> FfiError {
    FfiError::new(
        shmb_result::SHMB_CLOSED,
        format!("{func}: the {what} was already finished or aborted"),
    )
}

/// # Safety
///
/// `p` is NULL or a live handle not used elsewhere during `'a`.
unsafe fn mut_arg<'a, T>(p: *mut T, func: &str, what: &str) -> Result<&'a mut T, FfiError> {
    // SAFETY: forwarded from the caller's contract.
    unsafe { p.as_mut() }.ok_or_else(|| FfiError::null(func, what))
}

/// Create the stream segment `name` (`create_only`) with a ring of `capacity` bytes (the
/// segment is 384 + `capacity` bytes), announcing `total` bytes (`SHMB_UNKNOWN_TOTAL` when
/// unknown; a known total is enforced), permission bits `perm` (`SHMB_PERM_DEFAULT` = 0600).
///
/// Ownership: `name` is borrowed; on success the caller owns `*out`. The segment gets its name
/// only once every control word is set. A stream is used once, and the writer removes its name
/// when the stream is over: when `shmb_stream_writer_finish()` returns (other than with
/// `SHMB_TIMEOUT` or `SHMB_ABORTED`), on `shmb_stream_writer_abort()`, and when a writer is
/// freed unfinished (which aborts the stream).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_SIZE` (capacity 0),
/// `SHMB_INVALID_ARGUMENT`, `SHMB_ALREADY_EXISTS`, `SHMB_NO_SPACE`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_create(
    name: *const c_char,
    capacity: u64,
    total: u64,
    perm: u32,
    out: *mut *mut shmb_stream_writer,
) -> shmb_result {
    const F: &str = "shmb_stream_writer_create";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { str_arg(name, F, "name", shmb_result::SHMB_INVALID_NAME) }?;
        let opts = FramedOptions {
            segment: SegmentOptions {
                permissions: crate::perm(perm),
                ..SegmentOptions::default()
            },
        };
        let total = (total != SHMB_UNKNOWN_TOTAL).then_some(total);
        let w = StreamWriter::create(name, capacity, total, &opts)?;
        let name = c_string(w.framed().name());
        // SAFETY: checked non-NULL; writable by contract.
        unsafe {
            give(
                out,
                shmb_stream_writer {
                    inner: Some(w),
                    name,
                },
            );
        };
        Ok(())
    })
}

/// Copy `len` bytes of `data` into the stream, waiting for room as needed, as `wait` allows
/// (NULL: no limit; its `timeout_ms` is an inactivity limit: it restarts whenever the reader
/// makes room).
///
/// Errors: `SHMB_NULL_ARGUMENT` (`data` may be NULL only when `len` is 0), `SHMB_PEER_GONE`
/// (the reader died or gave up), `SHMB_TIMEOUT`, `SHMB_ABORTED` (the interrupt asked to
/// stop), `SHMB_INVALID_ARGUMENT` (past the announced total, or a bad `timeout_ms`),
/// `SHMB_CLOSED` (already finished or aborted).
///
/// # Safety
///
/// `writer` is NULL or a live handle; `data` is NULL or valid for `len` bytes of reads; `wait`
/// is NULL or points to a `shmb_wait`.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_write(
    writer: *mut shmb_stream_writer,
    data: *const c_void,
    len: usize,
    wait: *const shmb_wait,
) -> shmb_result {
    const F: &str = "shmb_stream_writer_write";
    guard(F, || {
        // SAFETY: forwarded from this function's contract.
        let w = unsafe { mut_arg(writer, F, "writer") }?;
        let data: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(FfiError::null(F, "data"));
        } else {
            // SAFETY: non-NULL, `len` readable bytes by contract.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
        };
        // SAFETY: forwarded from this function's contract.
        let wait = unsafe { CWait::from_c(wait, F) }?;
        let inner = w.inner.as_mut().ok_or_else(|| closed(F, "stream writer"))?;
        wait.run(true, |wt| inner.write(data, wt))?;
        Ok(())
    })
}

/// End the stream (publish the byte count and CRC-32), then wait, as `wait` allows (NULL: no
/// limit), for the reader to take and verify every byte, and remove the segment's name.
/// Stores the CRC-32 in `*out_crc` when `out_crc` is not NULL. On `SHMB_TIMEOUT` and
/// `SHMB_ABORTED` the end stays published and the call may be repeated; after any other
/// result the writer is done: only `_free` remains.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (fewer bytes written than announced:
/// the stream is aborted; or a bad `timeout_ms`), `SHMB_PEER_GONE`, `SHMB_TIMEOUT`,
/// `SHMB_ABORTED`, `SHMB_CLOSED`.
///
/// # Safety
///
/// `writer` is NULL or a live handle; `wait` is NULL or points to a `shmb_wait`; `out_crc` is
/// NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_finish(
    writer: *mut shmb_stream_writer,
    wait: *const shmb_wait,
    out_crc: *mut u32,
) -> shmb_result {
    const F: &str = "shmb_stream_writer_finish";
    guard(F, || {
        // SAFETY: forwarded from this function's contract.
        let w = unsafe { mut_arg(writer, F, "writer") }?;
        // SAFETY: forwarded from this function's contract.
        let wait = unsafe { CWait::from_c(wait, F) }?;
        let inner = w.inner.as_mut().ok_or_else(|| closed(F, "stream writer"))?;
        let result = wait.run(true, |wt| inner.finish(wt));
        if !matches!(&result, Err(e) if matches!(e.kind(), shmbridge::ErrorKind::Timeout | shmbridge::ErrorKind::Aborted))
        {
            w.inner = None;
        }
        let crc = result?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_crc, crc) };
        Ok(())
    })
}

/// Mark the stream aborted (the reader fails at once) and remove its name. Also what freeing
/// an unfinished writer does. NULL, or a writer already finished or aborted, is a no-op.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_abort(writer: *mut shmb_stream_writer) {
    guard_value((), || {
        // SAFETY: forwarded from this function's contract.
        if let Some(w) = unsafe { writer.as_mut() } {
            if let Some(mut inner) = w.inner.take() {
                inner.abort();
            }
        }
    });
}

/// Bytes written so far; 0 when `writer` is NULL or finished.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_written(writer: *const shmb_stream_writer) -> u64 {
    guard_value(0, || {
        // SAFETY: forwarded from this function's contract.
        unsafe { writer.as_ref() }
            .and_then(|w| w.inner.as_ref())
            .map_or(0, StreamWriter::written)
    })
}

/// The segment's name. Borrowed: valid until `writer` is freed. NULL when `writer` is NULL.
///
/// # Safety
///
/// `writer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_name(
    writer: *const shmb_stream_writer,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: forwarded from this function's contract.
        unsafe { writer.as_ref() }.map_or(std::ptr::null(), |w| w.name.as_ptr())
    })
}

/// Release the writer. An unfinished stream is aborted and its name removed; a stream whose
/// end was published keeps its name for the reader. NULL is a no-op.
///
/// # Safety
///
/// `writer` is NULL or a handle not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_writer_free(writer: *mut shmb_stream_writer) {
    // SAFETY: forwarded from this function's contract.
    guard_value((), || unsafe { take(writer) });
}

/// Open the stream segment `name` and attach as its one reader, waiting for the writer to
/// create it as `wait` allows (NULL: without a limit; a `timeout_ms` of 0 does not wait).
///
/// Ownership: `name` is borrowed; on success the caller owns `*out`. Freeing the reader before
/// `shmb_stream_reader_finish()` tells the writer the reader gave up.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_TIMEOUT` (no such stream appeared
/// in time), `SHMB_ABORTED`, `SHMB_PERMISSION_DENIED`, `SHMB_UNSUPPORTED` (not a stream),
/// `SHMB_ALREADY_EXISTS` (another reader attached: a stream is read once), `SHMB_BAD_MAGIC`
/// and the other header errors, `SHMB_INVALID_ARGUMENT` (a bad `timeout_ms`).
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `wait` is NULL or points to a `shmb_wait`; `out`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_open(
    name: *const c_char,
    wait: *const shmb_wait,
    out: *mut *mut shmb_stream_reader,
) -> shmb_result {
    const F: &str = "shmb_stream_reader_open";
    // SAFETY: forwarded from this function's contract.
    unsafe { stream_reader_open(F, name, SHMB_OWNER_SELF, wait, out) }
}

/// As `shmb_stream_reader_open()`, accepting a stream owned by `allow_owner` as well as this
/// user's own: `SHMB_OWNER_SELF` (-1: only this user's, what `shmb_stream_reader_open()`
/// does), `SHMB_OWNER_ANY` (-2), or a user id. Anyone can create a segment under the name a
/// reader waits for, so another owner's stream fails with `SHMB_PERMISSION_DENIED` unless
/// allowed here.
///
/// Errors: those of `shmb_stream_reader_open()`; `SHMB_INVALID_ARGUMENT` for an
/// `allow_owner` that is none of those.
///
/// # Safety
///
/// As `shmb_stream_reader_open()`.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_open_owner(
    name: *const c_char,
    allow_owner: i64,
    wait: *const shmb_wait,
    out: *mut *mut shmb_stream_reader,
) -> shmb_result {
    const F: &str = "shmb_stream_reader_open_owner";
    // SAFETY: forwarded from this function's contract.
    unsafe { stream_reader_open(F, name, allow_owner, wait, out) }
}

/// The body of both stream reader opens.
///
/// # Safety
///
/// As `shmb_stream_reader_open()`.
unsafe fn stream_reader_open(
    func: &str,
    name: *const c_char,
    allow_owner: i64,
    wait: *const shmb_wait,
    out: *mut *mut shmb_stream_reader,
) -> shmb_result {
    guard(func, || {
        let owner = owner_policy(func, allow_owner)?;
        let out = out_arg(out, func, "out")?;
        // SAFETY: forwarded from this function's contract.
        let name = unsafe { str_arg(name, func, "name", shmb_result::SHMB_INVALID_NAME) }?;
        // SAFETY: forwarded from this function's contract.
        let wait = unsafe { CWait::from_c(wait, func) }?;
        let r = wait.run(false, |w| {
            StreamReader::open_wait_with_owner(name, w, &owner)
        })?;
        let name = c_string(r.framed().name());
        // SAFETY: checked non-NULL; writable by contract.
        unsafe {
            give(
                out,
                shmb_stream_reader {
                    inner: Some(r),
                    name,
                },
            );
        };
        Ok(())
    })
}

/// Copy the next bytes of the stream into `buf` (at most `cap`), waiting for data as `wait`
/// allows (NULL: no limit), and store how many in `*out_n`: 0 means the end of the stream,
/// whose byte count and CRC-32 were verified.
///
/// Errors: `SHMB_NULL_ARGUMENT` (`buf` may be NULL only when `cap` is 0), `SHMB_PEER_GONE`
/// (the writer died or aborted), `SHMB_CHECKSUM_MISMATCH` / `SHMB_TRUNCATED` (the end does not
/// verify), `SHMB_TIMEOUT`, `SHMB_ABORTED`, `SHMB_CLOSED`, `SHMB_INVALID_ARGUMENT` (a bad
/// `timeout_ms`).
///
/// # Safety
///
/// `reader` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes of writes; `wait`
/// is NULL or points to a `shmb_wait`; `out_n` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_read(
    reader: *mut shmb_stream_reader,
    buf: *mut c_void,
    cap: usize,
    wait: *const shmb_wait,
    out_n: *mut usize,
) -> shmb_result {
    const F: &str = "shmb_stream_reader_read";
    guard(F, || {
        let out_n = out_arg(out_n, F, "out_n")?;
        // SAFETY: forwarded from this function's contract.
        let r = unsafe { mut_arg(reader, F, "reader") }?;
        if buf.is_null() && cap > 0 {
            return Err(FfiError::null(F, "buf"));
        }
        // SAFETY: forwarded from this function's contract.
        let wait = unsafe { CWait::from_c(wait, F) }?;
        let inner = r.inner.as_mut().ok_or_else(|| closed(F, "stream reader"))?;
        let n = if cap == 0 {
            0
        } else {
            // SAFETY: non-NULL, `cap` writable bytes by contract, not part of the mapping.
            let buf = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) };
            wait.run(true, |w| inner.read(buf, w))?
        };
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { *out_n = n };
        Ok(())
    })
}

/// Tell the writer every byte arrived and was verified (call once a read returned 0, and the
/// data is safe). Stores the stream's CRC-32 in `*out_crc` when `out_crc` is not NULL. On
/// success the reader is done: only `_free` remains. Called before the verified end it fails
/// and changes nothing.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (the end was not reached yet),
/// `SHMB_CLOSED`.
///
/// # Safety
///
/// `reader` is NULL or a live handle; `out_crc` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_finish(
    reader: *mut shmb_stream_reader,
    out_crc: *mut u32,
) -> shmb_result {
    const F: &str = "shmb_stream_reader_finish";
    guard(F, || {
        // SAFETY: forwarded from this function's contract.
        let r = unsafe { mut_arg(reader, F, "reader") }?;
        let inner = r.inner.as_ref().ok_or_else(|| closed(F, "stream reader"))?;
        if inner.verified_crc().is_none() {
            return Err(FfiError::new(
                shmb_result::SHMB_INVALID_ARGUMENT,
                format!(
                    "{F}: stream {:?}: the stream has not been read to its verified end ({} bytes so far)",
                    inner.framed().name(),
                    inner.consumed()
                ),
            ));
        }
        let crc = r.inner.take().map(StreamReader::finish).transpose()?;
        // SAFETY: forwarded from this function's contract.
        unsafe { put(out_crc, crc.unwrap_or(0)) };
        Ok(())
    })
}

/// Give up reading: the writer fails at once. Also what freeing an unfinished reader does.
/// NULL, or a reader already finished or aborted, is a no-op.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_abort(reader: *mut shmb_stream_reader) {
    guard_value((), || {
        // SAFETY: forwarded from this function's contract.
        if let Some(r) = unsafe { reader.as_mut() } {
            drop(r.inner.take());
        }
    });
}

/// Bytes read so far; 0 when `reader` is NULL or finished.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_consumed(reader: *const shmb_stream_reader) -> u64 {
    guard_value(0, || {
        // SAFETY: forwarded from this function's contract.
        unsafe { reader.as_ref() }
            .and_then(|r| r.inner.as_ref())
            .map_or(0, StreamReader::consumed)
    })
}

/// The total the writer announced (final once the end is reached), or `SHMB_UNKNOWN_TOTAL`
/// (also when `reader` is NULL or finished).
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_total(reader: *const shmb_stream_reader) -> u64 {
    guard_value(SHMB_UNKNOWN_TOTAL, || {
        // SAFETY: forwarded from this function's contract.
        unsafe { reader.as_ref() }
            .and_then(|r| r.inner.as_ref())
            .and_then(StreamReader::total_len)
            .unwrap_or(SHMB_UNKNOWN_TOTAL)
    })
}

/// The segment's name. Borrowed: valid until `reader` is freed. NULL when `reader` is NULL.
///
/// # Safety
///
/// `reader` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_name(
    reader: *const shmb_stream_reader,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: forwarded from this function's contract.
        unsafe { reader.as_ref() }.map_or(std::ptr::null(), |r| r.name.as_ptr())
    })
}

/// Release the reader (telling the writer it gave up, if it was not finished). NULL is a
/// no-op.
///
/// # Safety
///
/// `reader` is NULL or a handle not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_stream_reader_free(reader: *mut shmb_stream_reader) {
    // SAFETY: forwarded from this function's contract.
    guard_value((), || unsafe { take(reader) });
}
