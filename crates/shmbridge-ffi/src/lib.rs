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
//! Each export is a thin shell over a plain Rust function of the core: `args` converts and
//! checks its arguments (and states, once, why borrowing them is sound), `error` turns the
//! core's error into the result code and the thread's last error.

#![allow(non_camel_case_types)]

mod args;
mod array;
mod channel;
mod error;
mod file;
mod framed;
mod list;
mod object;
mod region;
mod segment;
mod stream;
mod transfer;
mod wait;

pub use array::*;
pub use channel::*;
pub use error::shmb_result;
pub use file::*;
pub use framed::*;
pub use list::*;
pub use object::*;
pub use region::*;
pub use segment::*;
pub use stream::*;
pub use transfer::*;
pub use wait::*;

/// A decimal number at compile time (the parts of `CARGO_PKG_VERSION`).
const fn decimal(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut n = 0u32;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "a version part is a decimal number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The version, from Cargo's metadata. The header's `SHMB_VERSION_*` defines come from the same
// metadata (scripts/header.sh, run by `make header` and `make check-header`); cbindgen skips
// these constants (cbindgen.toml `[export] exclude`).
/// Major version of the library.
pub const SHMB_VERSION_MAJOR: u32 = decimal(env!("CARGO_PKG_VERSION_MAJOR"));
/// Minor version of the library.
pub const SHMB_VERSION_MINOR: u32 = decimal(env!("CARGO_PKG_VERSION_MINOR"));
/// Patch version of the library.
pub const SHMB_VERSION_PATCH: u32 = decimal(env!("CARGO_PKG_VERSION_PATCH"));

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
