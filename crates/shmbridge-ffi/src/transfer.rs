//! File transfer (`shmb_send_file`, `shmb_recv_file`): thin shells over the core's
//! `shmbridge::transfer`. The byte streams a transfer may use are in `stream.rs`.

use std::ffi::{c_char, c_int, c_void};
use std::ops::ControlFlow;
use std::sync::Arc;

use shmbridge::{Progress, ProgressFn, RecvOptions, Report, SendOptions};

use crate::args::{self, arg, name_arg, opts_arg, path_arg, put, write_out};
use crate::error::{guard, guard_value, shmb_result};
use crate::wait::SHMB_TIMEOUT_FOREVER;

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
            mode: args::transfer_code(r.mode),
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
            arg!(write_out(opts, shmb_send_options::default()));
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
            arg!(write_out(opts, shmb_recv_options::default()));
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
        let path = arg!(path_arg(path, F))?;
        let name = arg!(name_arg(name, F))?;
        let o = arg!(opts_arg(opts));
        let mode = args::transfer(F, o.mode)?;
        let progress = progress_fn(o.progress, o.progress_user);
        let core = SendOptions {
            mode,
            segment_size: (o.segment_size != 0).then_some(o.segment_size),
            timeout: args::timeout(F, o.timeout_ms)?,
            permissions: args::permissions(o.permissions),
            progress,
        };
        let report = shmbridge::send_file(path, name, &core)?;
        arg!(put(out, shmb_transfer_report::from(&report)));
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
        let name = arg!(name_arg(name, F))?;
        let path = arg!(path_arg(path, F))?;
        let o = arg!(opts_arg(opts));
        let progress = progress_fn(o.progress, o.progress_user);
        let core = RecvOptions {
            timeout: args::timeout(F, o.timeout_ms)?,
            keep: o.keep,
            fsync: o.fsync,
            progress,
        };
        let owner = args::owner_policy(F, o.allow_owner)?;
        let report = shmbridge::recv_file_with_owner(name, path, &core, &owner)?;
        arg!(put(out, shmb_transfer_report::from(&report)));
        Ok(())
    })
}
