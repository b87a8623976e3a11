//! The C ABI of shmbridge (`include/shmbridge.h`). Filled in by the C/C++ issue.

/// The version of the library, as a NUL-terminated string.
#[no_mangle]
pub extern "C" fn shmb_version() -> *const std::ffi::c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
