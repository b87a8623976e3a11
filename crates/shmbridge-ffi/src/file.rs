//! Memory-mapped files (Boost's `file_mapping`).

use std::ffi::c_char;

use shmbridge::{map_file, FileMapping, MapAccess};

use crate::args::{self, arg, give, out_arg, path_arg, ref_arg, take, write_out};
use crate::error::{guard, guard_value, shmb_result};
use crate::region::shmb_region;
use crate::shmb_access;

/// An open file that can be mapped, whole or in part, as often as needed (Boost's
/// `file_mapping`). Created by `shmb_file_open()`, released by `shmb_file_free()`.
pub struct shmb_file {
    inner: FileMapping,
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
        let path = arg!(path_arg(path, F))?;
        let acc = args::map_access(F, access)?;
        let fm = FileMapping::open(path, acc == MapAccess::ReadWrite)?;
        arg!(give(out, shmb_file { inner: fm }));
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
    guard_value((), || arg!(take(file)));
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
        let f = arg!(ref_arg(file, F, "file"))?;
        let n = f.inner.size()?;
        arg!(write_out(out, n));
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
        let f = arg!(ref_arg(file, F, "file"))?;
        let acc = args::map_access(F, access)?;
        let r = f.inner.map(acc, offset, (len != 0).then_some(len))?;
        arg!(give(out, shmb_region::new(r)));
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
        let path = arg!(path_arg(path, F))?;
        let acc = args::map_access(F, access)?;
        let r = map_file(path, acc)?;
        arg!(give(out, shmb_region::new(r)));
        Ok(())
    })
}
