//! Result codes, the per-thread last error, and the panic boundary every export goes through.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use shmbridge::{Error, ErrorKind};

use crate::args::{arg, out_arg, write_out};

/// The result of every fallible function: `SHMB_OK` (0) or what went wrong.
///
/// Codes 1 to 21 are the core's error kinds, one to one, with the same numbers; codes from
/// 100 up belong to the C ABI itself. The numbers are stable. A failed call also records a
/// detailed message and the OS errno for this thread: see `shmb_last_error_message()` and
/// `shmb_last_error_errno()`.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum shmb_result {
    /// Success.
    SHMB_OK = 0,
    /// A name that cannot be a segment name (empty, contains `/` or NUL, too long, not UTF-8).
    SHMB_INVALID_NAME = 1,
    /// A size of zero where one is needed, or larger than the platform can map.
    SHMB_INVALID_SIZE = 2,
    /// Any other argument out of its range (an unknown open mode, bad permission bits, ...).
    SHMB_INVALID_ARGUMENT = 3,
    /// `create_only` on a name that exists.
    SHMB_ALREADY_EXISTS = 4,
    /// `open_only` on a name (or a path) that does not exist.
    SHMB_NOT_FOUND = 5,
    /// The OS refused access, or a write through a read-only handle or mapping.
    SHMB_PERMISSION_DENIED = 6,
    /// No space left to reserve the segment (`ENOSPC`, e.g. `/dev/shm` is full).
    SHMB_NO_SPACE = 7,
    /// Not a shmbridge framed segment (the magic is missing): a raw segment, say.
    SHMB_BAD_MAGIC = 8,
    /// A framed segment of a major version this library does not know.
    SHMB_UNSUPPORTED_VERSION = 9,
    /// A framed header whose fields do not add up.
    SHMB_CORRUPT_HEADER = 10,
    /// The segment is smaller than its header or its declared lengths, or shrank under a mapping.
    SHMB_TRUNCATED = 11,
    /// An access past the end of a mapping or a payload.
    SHMB_OUT_OF_BOUNDS = 12,
    /// The payload does not match its checksum.
    SHMB_CHECKSUM_MISMATCH = 13,
    /// A wait ran out of time.
    SHMB_TIMEOUT = 14,
    /// The writer closed the segment before the awaited data arrived.
    SHMB_WRITER_CLOSED = 15,
    /// The peer of a transfer went away.
    SHMB_PEER_GONE = 16,
    /// The object was already closed.
    SHMB_CLOSED = 17,
    /// Not supported on this platform or for this kind of segment.
    SHMB_UNSUPPORTED = 18,
    /// Any other OS error; `shmb_last_error_errno()` says which.
    SHMB_OS = 19,
    /// A progress callback asked to stop: the transfer was abandoned and cleaned up.
    SHMB_ABORTED = 20,
    /// The payload changed while it was being read (a file changed while it was being sent,
    /// a one-shot payload rewritten while it was being written out).
    SHMB_CHANGED = 21,
    /// A required pointer argument was NULL.
    SHMB_NULL_ARGUMENT = 100,
    /// The caller's buffer is too small; the size needed is reported where the function says.
    SHMB_BUFFER_TOO_SMALL = 101,
    /// A bug: the library panicked. The panic was caught at the ABI boundary.
    SHMB_PANIC = 102,
}

use shmb_result::{
    SHMB_ABORTED, SHMB_ALREADY_EXISTS, SHMB_BAD_MAGIC, SHMB_BUFFER_TOO_SMALL, SHMB_CHANGED,
    SHMB_CHECKSUM_MISMATCH, SHMB_CLOSED, SHMB_CORRUPT_HEADER, SHMB_INVALID_ARGUMENT,
    SHMB_INVALID_NAME, SHMB_INVALID_SIZE, SHMB_NOT_FOUND, SHMB_NO_SPACE, SHMB_NULL_ARGUMENT,
    SHMB_OK, SHMB_OS, SHMB_OUT_OF_BOUNDS, SHMB_PANIC, SHMB_PEER_GONE, SHMB_PERMISSION_DENIED,
    SHMB_TIMEOUT, SHMB_TRUNCATED, SHMB_UNSUPPORTED, SHMB_UNSUPPORTED_VERSION, SHMB_WRITER_CLOSED,
};

/// The one table from the core's error kinds to result codes (checked against
/// [`ErrorKind::ALL`] by a test: every kind is here, with its own number).
const KIND_CODES: [(ErrorKind, shmb_result); ErrorKind::ALL.len()] = [
    (ErrorKind::InvalidName, SHMB_INVALID_NAME),
    (ErrorKind::InvalidSize, SHMB_INVALID_SIZE),
    (ErrorKind::InvalidArgument, SHMB_INVALID_ARGUMENT),
    (ErrorKind::AlreadyExists, SHMB_ALREADY_EXISTS),
    (ErrorKind::NotFound, SHMB_NOT_FOUND),
    (ErrorKind::PermissionDenied, SHMB_PERMISSION_DENIED),
    (ErrorKind::NoSpace, SHMB_NO_SPACE),
    (ErrorKind::BadMagic, SHMB_BAD_MAGIC),
    (ErrorKind::UnsupportedVersion, SHMB_UNSUPPORTED_VERSION),
    (ErrorKind::CorruptHeader, SHMB_CORRUPT_HEADER),
    (ErrorKind::Truncated, SHMB_TRUNCATED),
    (ErrorKind::OutOfBounds, SHMB_OUT_OF_BOUNDS),
    (ErrorKind::ChecksumMismatch, SHMB_CHECKSUM_MISMATCH),
    (ErrorKind::Timeout, SHMB_TIMEOUT),
    (ErrorKind::WriterClosed, SHMB_WRITER_CLOSED),
    (ErrorKind::PeerGone, SHMB_PEER_GONE),
    (ErrorKind::Closed, SHMB_CLOSED),
    (ErrorKind::Unsupported, SHMB_UNSUPPORTED),
    (ErrorKind::Os, SHMB_OS),
    (ErrorKind::Aborted, SHMB_ABORTED),
    (ErrorKind::Changed, SHMB_CHANGED),
];

/// The codes of the C ABI itself (no core kind), with their descriptions.
const ABI_CODES: [(shmb_result, &str); 4] = [
    (SHMB_OK, "success"),
    (SHMB_NULL_ARGUMENT, "a required pointer argument was NULL"),
    (SHMB_BUFFER_TOO_SMALL, "the buffer is too small"),
    (
        SHMB_PANIC,
        "internal error: the library panicked (a bug; please report it)",
    ),
];

impl shmb_result {
    /// The code with number `n`, if there is one.
    #[must_use]
    pub fn from_u32(n: u32) -> Option<Self> {
        KIND_CODES
            .iter()
            .map(|(_, c)| *c)
            .chain(ABI_CODES.iter().map(|(c, _)| *c))
            .find(|c| *c as u32 == n)
    }

    /// The code of a core error kind (the same number). A kind this table does not know yet
    /// (impossible while the test holds) is `SHMB_OS`.
    #[must_use]
    pub fn from_kind(kind: ErrorKind) -> Self {
        KIND_CODES
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(SHMB_OS, |(_, c)| *c)
    }

    /// The core error kind of this code; `None` for the C ABI's own codes.
    #[must_use]
    pub fn kind(self) -> Option<ErrorKind> {
        KIND_CODES.iter().find(|(_, c)| *c == self).map(|(k, _)| *k)
    }

    /// A short, stable description of the code: the core kind's label, or the ABI's own.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self.kind() {
            Some(ErrorKind::Aborted) => "stopped at the request of the progress callback",
            Some(kind) => kind.as_str(),
            None => ABI_CODES
                .iter()
                .find(|(c, _)| *c == self)
                .map_or("unknown result code", |(_, d)| d),
        }
    }
}

/// A failure inside the ABI: its code, the OS errno (0 if none) and a full sentence.
#[derive(Clone, Debug)]
pub(crate) struct FfiError {
    pub code: shmb_result,
    pub errno: i32,
    pub message: String,
}

impl FfiError {
    pub fn new(code: shmb_result, message: impl Into<String>) -> Self {
        Self {
            code,
            errno: 0,
            message: message.into(),
        }
    }

    /// A NULL pointer passed as argument `what` of function `func`.
    pub fn null(func: &str, what: &str) -> Self {
        Self::new(
            SHMB_NULL_ARGUMENT,
            format!("{func}: the argument `{what}` must not be NULL"),
        )
    }
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        Self {
            code: shmb_result::from_kind(e.kind()),
            errno: e.errno().unwrap_or(0),
            message: e.to_string(),
        }
    }
}

pub(crate) type FfiResult<T = ()> = Result<T, FfiError>;

thread_local! {
    static LAST: RefCell<Option<FfiError>> = const { RefCell::new(None) };
}

/// Record `e` as this thread's last error. Never panics: during thread (or process) teardown,
/// when the thread-local is already gone (an `atexit` handler calling `shmb_remove()`, say),
/// the error is only returned, not recorded.
fn set_last(e: FfiError) {
    let _ = LAST.try_with(|l| {
        if let Ok(mut slot) = l.try_borrow_mut() {
            *slot = Some(e);
        }
    });
}

/// Read this thread's last error through `f`; `None` when there is none (or it is gone).
fn with_last<T>(f: impl FnOnce(&FfiError) -> T) -> Option<T> {
    LAST.try_with(|l| l.try_borrow().ok().and_then(|e| e.as_ref().map(f)))
        .ok()
        .flatten()
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Run `f` behind the panic boundary: its error (or a caught panic) becomes the result code
/// and this thread's last error.
pub(crate) fn guard(func: &str, f: impl FnOnce() -> FfiResult) -> shmb_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SHMB_OK,
        Ok(Err(e)) => {
            let code = e.code;
            set_last(e);
            code
        }
        Err(payload) => {
            set_last(FfiError::new(
                SHMB_PANIC,
                format!(
                    "{func}: internal error (a bug, please report it): {}",
                    panic_text(&*payload)
                ),
            ));
            SHMB_PANIC
        }
    }
}

/// Run an infallible accessor behind the panic boundary; `fallback` if it panics.
pub(crate) fn guard_value<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// Write `text` NUL-terminated into `buf` (capacity `len`) and its length into `*out_n`.
///
/// # Safety
///
/// `buf` is NULL or valid for `len` bytes of writes; `out_n` is NULL or valid for a write.
unsafe fn write_message(
    func: &str,
    text: &str,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> FfiResult {
    let out_n = out_arg(out_n, func, "out_n")?;
    if buf.is_null() && len > 0 {
        return Err(FfiError::null(func, "buf"));
    }
    let bytes = text.as_bytes();
    if bytes.len() >= len {
        // SAFETY: out_n was checked non-NULL; the caller guarantees it is writable.
        arg!(write_out(out_n, bytes.len()));
        if len > 0 {
            let keep = len - 1;
            // SAFETY: buf is non-NULL (checked) and valid for `len` bytes; we write `keep + 1`.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), keep);
                *buf.add(keep) = 0;
            }
        }
        return Err(FfiError::new(
            SHMB_BUFFER_TOO_SMALL,
            format!(
                "{func}: the message needs {} bytes (with its NUL) but the buffer has {len}",
                bytes.len() + 1
            ),
        ));
    }
    // SAFETY: bytes.len() + 1 <= len bytes of `buf` are valid for writes (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), bytes.len());
        *buf.add(bytes.len()) = 0;
        *out_n = bytes.len();
    }
    Ok(())
}

/// Write a short description of `code` (any number; unknown numbers are described as such)
/// into `buf`, NUL-terminated.
///
/// `buf` (capacity `len` bytes, owned by the caller) receives the text and `*out_n` its length
/// without the NUL. When the text does not fit, the function returns `SHMB_BUFFER_TOO_SMALL`,
/// writes as much as fits (still NUL-terminated, when `len > 0`) and sets `*out_n` to the full
/// length: the one case where outputs are written on failure, as with `snprintf`. `buf` may be
/// NULL only when `len` is 0. This call never changes the thread's last error.
///
/// # Safety
///
/// `buf` is NULL or valid for `len` bytes of writes; `out_n` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_result_message(
    code: u32,
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> shmb_result {
    const F: &str = "shmb_result_message";
    let r = catch_unwind(AssertUnwindSafe(|| {
        let text = match shmb_result::from_u32(code) {
            Some(c) => c.describe().to_owned(),
            None => format!("unknown result code {code}"),
        };
        arg!(write_message(F, &text, buf, len, out_n))
    }));
    match r {
        Ok(Ok(())) => SHMB_OK,
        Ok(Err(e)) => e.code,
        Err(_) => SHMB_PANIC,
    }
}

/// Write the detailed message of the last failed call on this thread into `buf`, e.g.
/// `segment "frames": create_only (read_write): a segment with this name already exists
/// (os error 17: File exists)`. The empty string when no call has failed on this thread.
///
/// Buffer rules as for `shmb_result_message()`. Reading the message does not clear it: the
/// last error stays until the next failure on the same thread (successful calls leave it).
///
/// # Safety
///
/// `buf` is NULL or valid for `len` bytes of writes; `out_n` is valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_last_error_message(
    buf: *mut c_char,
    len: usize,
    out_n: *mut usize,
) -> shmb_result {
    const F: &str = "shmb_last_error_message";
    let r = catch_unwind(AssertUnwindSafe(|| {
        let text = with_last(|e| e.message.clone());
        arg!(write_message(
            F,
            text.as_deref().unwrap_or(""),
            buf,
            len,
            out_n
        ))
    }));
    match r {
        Ok(Ok(())) => SHMB_OK,
        Ok(Err(e)) => e.code,
        Err(_) => SHMB_PANIC,
    }
}

/// The OS errno of the last failed call on this thread, or 0 when that failure did not come
/// from the OS (or nothing failed yet).
#[no_mangle]
pub extern "C" fn shmb_last_error_errno() -> c_int {
    guard_value(0, || with_last(|e| e.errno).unwrap_or(0))
}

/// The code of the last failed call on this thread (`SHMB_OK` when nothing failed yet).
#[no_mangle]
pub extern "C" fn shmb_last_error_code() -> shmb_result {
    guard_value(SHMB_PANIC, || with_last(|e| e.code).unwrap_or(SHMB_OK))
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn every_core_kind_has_its_own_code_with_its_number() {
        let mut seen = Vec::new();
        for kind in ErrorKind::ALL {
            let code = shmb_result::from_kind(kind);
            assert_eq!(code as u32, kind.code(), "{kind:?} keeps its number");
            assert_eq!(code.kind(), Some(kind));
            assert_eq!(shmb_result::from_u32(kind.code()), Some(code));
            assert!(!seen.contains(&code), "{kind:?} shares {code:?}");
            seen.push(code);
        }
        for (code, _) in ABI_CODES {
            assert_eq!(code.kind(), None);
            assert!(code as u32 == 0 || code as u32 >= 100, "{code:?}");
            assert_eq!(shmb_result::from_u32(code as u32), Some(code));
        }
        assert_eq!(shmb_result::from_u32(ErrorKind::ALL.len() as u32 + 1), None);
    }

    #[test]
    fn the_result_enum_doc_names_the_range_of_kind_codes() {
        let src = include_str!("error.rs");
        let range = format!(
            "Codes 1 to {} are the core's error kinds",
            ErrorKind::ALL.len()
        );
        assert!(
            src.contains(&range),
            "the shmb_result doc must say: {range}"
        );
    }

    #[test]
    fn messages_fit_or_say_how_much_is_needed() {
        let mut buf = [0 as c_char; 8];
        let mut n = 0usize;
        // SAFETY: buf has 8 bytes, n is a valid usize.
        let r = unsafe { shmb_result_message(4, buf.as_mut_ptr(), buf.len(), &raw mut n) };
        assert_eq!(r, SHMB_BUFFER_TOO_SMALL);
        assert_eq!(n, "already exists".len());
        // SAFETY: buf is NUL-terminated by the call.
        assert_eq!(
            // SAFETY: buf is NUL-terminated by the call.
            unsafe { CStr::from_ptr(buf.as_ptr()) }.to_bytes(),
            b"already"
        );
        let mut big = [0 as c_char; 64];
        // SAFETY: as above.
        let r = unsafe { shmb_result_message(4, big.as_mut_ptr(), big.len(), &raw mut n) };
        assert_eq!(r, SHMB_OK);
        // SAFETY: as above.
        assert_eq!(
            // SAFETY: big is NUL-terminated by the call.
            unsafe { CStr::from_ptr(big.as_ptr()) }.to_bytes(),
            b"already exists"
        );
    }

    #[test]
    fn panics_become_a_code_and_a_message() {
        let r = guard("test_fn", || panic!("boom"));
        assert_eq!(r, SHMB_PANIC);
        assert_eq!(shmb_last_error_code(), SHMB_PANIC);
        let msg = with_last(|e| e.message.clone()).unwrap();
        assert!(msg.contains("boom") && msg.contains("test_fn"), "{msg}");
    }
}
