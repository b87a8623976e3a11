//! Memory-mapped files (Boost's `file_mapping`).

use std::ffi::{c_char, CStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use shmbridge::{map_file, FileMapping, MapAccess};

use crate::error::{guard, guard_value, out_arg, ref_arg, shmb_result, FfiError, FfiResult};
use crate::region::shmb_region;
use crate::{give, map_access, shmb_access, take};

/// An open file that can be mapped, whole or in part, as often as needed (Boost's
/// `file_mapping`). Created by `shmb_file_open()`, released by `shmb_file_free()`.
pub struct shmb_file {
    inner: FileMapping,
}

/// # Safety
///
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn path_arg<'a>(p: *const c_char, func: &str) -> FfiResult<&'a Path> {
    if p.is_null() {
        return Err(FfiError::null(func, "path"));
    }
    // SAFETY: non-NULL, NUL-terminated by contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: the path is empty"),
        ));
    }
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// Open the file at `path` for mapping. `access` is `SHMB_READ_ONLY` (enough for read-only and
/// copy-on-write mappings), `SHMB_READ_WRITE` (needed for read-write mappings) or
/// `SHMB_COPY_ON_WRITE` (opened read-only).
///
/// Ownership: `path` is borrowed for the call (any bytes, not only UTF-8); on success the
/// caller owns `*out` and releases it with `shmb_file_free()`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (empty path, unknown access, not a
/// regular file), `SHMB_NOT_FOUND`, `SHMB_PERMISSION_DENIED`.
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_file_open(
    path: *const c_char,
    access: shmb_access,
    out: *mut *mut shmb_file,
) -> shmb_result {
    const F: &str = "shmb_file_open";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { path_arg(path, F) }?;
        let acc = map_access(F, access)?;
        let fm = FileMapping::open(path, acc == MapAccess::ReadWrite)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { give(out, shmb_file { inner: fm }) };
        Ok(())
    })
}

/// Close the file. Mappings made from it stay valid. NULL is a no-op.
///
/// # Safety
///
/// `file` is NULL or a handle from `shmb_file_open()` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_file_free(file: *mut shmb_file) {
    // SAFETY: forwarded from this function's contract.
    guard_value((), || unsafe { take(file) });
}

/// Store the file's current size in bytes in `*out`.
///
/// # Safety
///
/// `file` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_file_size(file: *const shmb_file, out: *mut u64) -> shmb_result {
    const F: &str = "shmb_file_size";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        // SAFETY: forwarded from this function's contract.
        let f = unsafe { ref_arg(file, F, "file") }?;
        let n = f.inner.size()?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { *out = n };
        Ok(())
    })
}

/// Map `len` bytes of the file at `offset` (any offset; `len` 0 maps to the end of the file,
/// so `(0, 0)` maps all of it; an empty file gives an empty mapping). `access` is
/// `SHMB_READ_ONLY`, `SHMB_READ_WRITE` (writes reach the file) or `SHMB_COPY_ON_WRITE` (writes
/// stay private).
///
/// Ownership: the caller owns `*out` and releases it with `shmb_region_free()`; the mapping
/// stays valid after `file` is freed.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT`, `SHMB_PERMISSION_DENIED` (read-write
/// mapping of a file opened read-only), `SHMB_OUT_OF_BOUNDS`.
///
/// # Safety
///
/// `file` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_file_map(
    file: *const shmb_file,
    access: shmb_access,
    offset: u64,
    len: u64,
    out: *mut *mut shmb_region,
) -> shmb_result {
    const F: &str = "shmb_file_map";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        // SAFETY: forwarded from this function's contract.
        let f = unsafe { ref_arg(file, F, "file") }?;
        let acc = map_access(F, access)?;
        let r = f.inner.map(acc, offset, (len != 0).then_some(len))?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { give(out, shmb_region::new(r)) };
        Ok(())
    })
}

/// Map the whole file at `path` in one call: the seed's
/// `mmap.mmap(f.fileno(), 0, access=ACCESS_READ)` is `shmb_map_file(path, SHMB_READ_ONLY, &r)`.
///
/// Ownership: `path` is borrowed; the caller owns `*out` (release with `shmb_region_free()`).
///
/// Errors: those of `shmb_file_open()` and `shmb_file_map()`.
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_map_file(
    path: *const c_char,
    access: shmb_access,
    out: *mut *mut shmb_region,
) -> shmb_result {
    const F: &str = "shmb_map_file";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        // SAFETY: forwarded from this function's contract.
        let path = unsafe { path_arg(path, F) }?;
        let acc = map_access(F, access)?;
        let r = map_file(path, acc)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { give(out, shmb_region::new(r)) };
        Ok(())
    })
}
