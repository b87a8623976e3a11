//! Byte streams (`shmb_stream_writer`, `shmb_stream_reader`): thin shells over the core's
//! `shmbridge::stream`, the single-producer single-consumer ring a streamed transfer uses.

use std::ffi::{c_char, c_void, CString};

use shmbridge::{StreamReader, StreamWriter};

use crate::args::{
    self, arg, bytes_arg, bytes_out, c_string, closed, give, mut_arg, name_arg, opt_mut, opt_ref,
    out_arg, put, take, wait_arg, write_out,
};
use crate::error::{guard, guard_value, shmb_result, FfiError};
use crate::transfer::{SHMB_OWNER_SELF, SHMB_UNKNOWN_TOTAL};
use crate::wait::shmb_wait;

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
        let name = arg!(name_arg(name, F))?;
        let opts = args::framed_options(perm);
        let total = (total != SHMB_UNKNOWN_TOTAL).then_some(total);
        let w = StreamWriter::create(name, capacity, total, &opts)?;
        let name = c_string(w.framed().name());
        arg!(give(
            out,
            shmb_stream_writer {
                inner: Some(w),
                name,
            },
        ));
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
        let w = arg!(mut_arg(writer, F, "writer"))?;
        let data = arg!(bytes_arg(data, len, F, "data"))?;
        let wait = arg!(wait_arg(wait, F))?;
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
        let w = arg!(mut_arg(writer, F, "writer"))?;
        let wait = arg!(wait_arg(wait, F))?;
        let inner = w.inner.as_mut().ok_or_else(|| closed(F, "stream writer"))?;
        let result = wait.run(true, |wt| inner.finish(wt));
        if !matches!(&result, Err(e) if matches!(e.kind(), shmbridge::ErrorKind::Timeout | shmbridge::ErrorKind::Aborted))
        {
            w.inner = None;
        }
        let crc = result?;
        arg!(put(out_crc, crc));
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
        if let Some(w) = arg!(opt_mut(writer)) {
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
        arg!(opt_ref(writer))
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
        arg!(opt_ref(writer)).map_or(std::ptr::null(), |w| w.name.as_ptr())
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
    guard_value((), || arg!(take(writer)));
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
    arg!(stream_reader_open(F, name, SHMB_OWNER_SELF, wait, out))
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
    arg!(stream_reader_open(F, name, allow_owner, wait, out))
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
        let owner = args::owner_policy(func, allow_owner)?;
        let out = out_arg(out, func, "out")?;
        let name = arg!(name_arg(name, func))?;
        let wait = arg!(wait_arg(wait, func))?;
        let r = wait.run(false, |w| {
            StreamReader::open_wait_with_owner(name, w, &owner)
        })?;
        let name = c_string(r.framed().name());
        arg!(give(
            out,
            shmb_stream_reader {
                inner: Some(r),
                name,
            },
        ));
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
        let r = arg!(mut_arg(reader, F, "reader"))?;
        let buf = arg!(bytes_out(buf, cap, F, "buf"))?;
        let wait = arg!(wait_arg(wait, F))?;
        let inner = r.inner.as_mut().ok_or_else(|| closed(F, "stream reader"))?;
        let n = if buf.is_empty() {
            0
        } else {
            wait.run(true, |w| inner.read(buf, w))?
        };
        arg!(write_out(out_n, n));
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
        let r = arg!(mut_arg(reader, F, "reader"))?;
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
        arg!(put(out_crc, crc.unwrap_or(0)));
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
        if let Some(r) = arg!(opt_mut(reader)) {
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
        arg!(opt_ref(reader))
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
        arg!(opt_ref(reader))
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
        arg!(opt_ref(reader)).map_or(std::ptr::null(), |r| r.name.as_ptr())
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
    guard_value((), || arg!(take(reader)));
}
