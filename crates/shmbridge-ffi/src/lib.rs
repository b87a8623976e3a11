//! The C ABI of shmbridge: `include/shmbridge.h` is generated from this crate by cbindgen
//! (`make header`).
//!
//! Conventions (as in rustls-ffi):
//!
//! - Every name starts with `shmb_`; every type is opaque and owned through the pointer its
//!   constructor hands out, released by its `_free` function (which accepts NULL).
//! - Every fallible function returns a [`shmb_result`]: `SHMB_OK` or a code. Outputs (`out`
//!   parameters) are written only on success. Every pointer argument is checked for NULL
//!   (`SHMB_NULL_ARGUMENT`), and checked before anything happens, so a NULL output never leaves
//!   a created segment behind.
//! - A failure records a detailed message and the OS errno for the calling thread:
//!   `shmb_last_error_message()`, `shmb_last_error_errno()`.
//! - No panic crosses the ABI: every export runs behind `catch_unwind` and turns a panic into
//!   `SHMB_PANIC`.
//! - Borrowed pointers (names, region addresses) stay valid until the object they came from
//!   is freed.
//!
//! Each export is a thin shell over a plain Rust function of the core.

#![allow(non_camel_case_types)]

mod channel;
mod error;
mod file;
mod framed;
mod list;
mod object;
mod region;
mod segment;
mod transfer;
mod wait;

pub use channel::*;
pub use error::shmb_result;
pub use file::*;
pub use framed::*;
pub use list::*;
pub use object::*;
pub use region::*;
pub use segment::*;
pub use transfer::*;
pub use wait::*;

use error::{FfiError, FfiResult};
use shmbridge::{Access, MapAccess, OpenMode};

/// Major version of the library this header belongs to.
pub const SHMB_VERSION_MAJOR: u32 = 0;
/// Minor version of the library this header belongs to.
pub const SHMB_VERSION_MINOR: u32 = 1;
/// Patch version of the library this header belongs to.
pub const SHMB_VERSION_PATCH: u32 = 0;

/// How to open a named object, in Boost.Interprocess's words (`SHMB_CREATE_ONLY`,
/// `SHMB_OPEN_ONLY`, `SHMB_OPEN_OR_CREATE`). Any other value is `SHMB_INVALID_ARGUMENT`.
pub type shmb_open_mode = u32;
/// Create; fail with `SHMB_ALREADY_EXISTS` if the name is taken.
pub const SHMB_CREATE_ONLY: shmb_open_mode = 1;
/// Open an existing object; fail with `SHMB_NOT_FOUND` if there is none.
pub const SHMB_OPEN_ONLY: shmb_open_mode = 2;
/// Open the object if it exists, create it otherwise (race-free).
pub const SHMB_OPEN_OR_CREATE: shmb_open_mode = 3;

/// Access to an object or a mapping (`SHMB_READ_ONLY`, `SHMB_READ_WRITE`, and for file
/// mappings `SHMB_COPY_ON_WRITE`). Any other value is `SHMB_INVALID_ARGUMENT`.
pub type shmb_access = u32;
/// Read only.
pub const SHMB_READ_ONLY: shmb_access = 1;
/// Read and write.
pub const SHMB_READ_WRITE: shmb_access = 2;
/// Copy on write (file mappings only): writes stay private to the mapping.
pub const SHMB_COPY_ON_WRITE: shmb_access = 3;

/// Pass as `perm` for the default permission bits of a created segment (0600).
pub const SHMB_PERM_DEFAULT: u32 = 0;

/// The version of the library, as a static NUL-terminated string (e.g. `"0.1.0"`); compare it
/// with `SHMB_VERSION_STRING` to check that header and library match. Never NULL; not to be freed.
#[no_mangle]
pub extern "C" fn shmb_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

pub(crate) fn open_mode(func: &str, mode: shmb_open_mode) -> FfiResult<OpenMode> {
    match mode {
        SHMB_CREATE_ONLY => Ok(OpenMode::CreateOnly),
        SHMB_OPEN_ONLY => Ok(OpenMode::OpenOnly),
        SHMB_OPEN_OR_CREATE => Ok(OpenMode::OpenOrCreate),
        other => Err(FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: unknown open mode {other} (expected SHMB_CREATE_ONLY, SHMB_OPEN_ONLY or SHMB_OPEN_OR_CREATE)"),
        )),
    }
}

pub(crate) fn access(func: &str, access: shmb_access) -> FfiResult<Access> {
    match access {
        SHMB_READ_ONLY => Ok(Access::ReadOnly),
        SHMB_READ_WRITE => Ok(Access::ReadWrite),
        other => Err(FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: unknown access {other} (expected SHMB_READ_ONLY or SHMB_READ_WRITE)"),
        )),
    }
}

pub(crate) fn map_access(func: &str, access: shmb_access) -> FfiResult<MapAccess> {
    match access {
        SHMB_READ_ONLY => Ok(MapAccess::ReadOnly),
        SHMB_READ_WRITE => Ok(MapAccess::ReadWrite),
        SHMB_COPY_ON_WRITE => Ok(MapAccess::CopyOnWrite),
        other => Err(FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: unknown access {other} (expected SHMB_READ_ONLY, SHMB_READ_WRITE or SHMB_COPY_ON_WRITE)"),
        )),
    }
}

pub(crate) fn perm(perm: u32) -> Option<u32> {
    (perm != SHMB_PERM_DEFAULT).then_some(perm)
}

/// Hand a new object to C through `out` (checked non-NULL beforehand).
///
/// # Safety
///
/// `out` is valid for a write.
pub(crate) unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller checked `out` and guarantees it is writable.
    unsafe { *out = Box::into_raw(Box::new(value)) };
}

/// Release an object handed out by [`give`]; NULL is a no-op.
///
/// # Safety
///
/// `p` is NULL or came from [`give`] and was not freed yet.
pub(crate) unsafe fn take<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: the caller guarantees `p` came from Box::into_raw and is freed only once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A C string copy of `s` (interior NULs, impossible for validated names, become `?`).
pub(crate) fn c_string(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s.replace('\0', "?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_the_crate() {
        assert_eq!(
            SHMB_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            SHMB_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            SHMB_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        // SAFETY: shmb_version returns a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(shmb_version()) };
        assert_eq!(
            v.to_str().unwrap(),
            format!("{SHMB_VERSION_MAJOR}.{SHMB_VERSION_MINOR}.{SHMB_VERSION_PATCH}")
        );
    }
}
