//! Named shared-memory objects (Boost's `shared_memory_object`): open, size, map, remove.

use std::ffi::{c_char, CString};

use shmbridge::ShmObject;

use crate::args::{
    self, arg, c_string, give, name_arg, opt_ref, out_arg, ref_arg, str_arg, take, write_out,
};
use crate::error::{guard, guard_value, shmb_result, FfiError};
use crate::region::shmb_region;
use crate::{shmb_access, shmb_open_mode};

/// A named POSIX shared-memory object without a mapping (Boost's `shared_memory_object`).
/// Created by `shmb_object_open()`, released by `shmb_object_free()`, which closes it but never
/// removes its name.
pub struct shmb_object {
    pub(crate) inner: ShmObject,
    pub(crate) name: CString,
}

impl shmb_object {
    pub(crate) fn new(inner: ShmObject) -> Self {
        let name = c_string(inner.name());
        Self { inner, name }
    }
}

/// Open or create the named object `name` (a plain name such as `"shm_test"`; one leading `/`
/// is accepted) and store a new handle in `*out`.
///
/// `mode` is `SHMB_CREATE_ONLY`, `SHMB_OPEN_ONLY` or `SHMB_OPEN_OR_CREATE`; `access` is
/// `SHMB_READ_ONLY` or `SHMB_READ_WRITE`. A created object has size 0 (give it a size with
/// `shmb_object_truncate()`, as Boost does) and the permission bits `perm`
/// (`SHMB_PERM_DEFAULT`, i.e. 0, means 0600), applied exactly, whatever the umask.
///
/// Ownership: `name` is borrowed for the call. On success the caller owns `*out` and releases
/// it with `shmb_object_free()`; on failure `*out` is not written.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT` (unknown mode or
/// access, permission bits outside 0777), `SHMB_ALREADY_EXISTS`, `SHMB_NOT_FOUND`,
/// `SHMB_PERMISSION_DENIED`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_open(
    name: *const c_char,
    mode: shmb_open_mode,
    access: shmb_access,
    perm: u32,
    out: *mut *mut shmb_object,
) -> shmb_result {
    const F: &str = "shmb_object_open";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let mode = args::open_mode(F, mode)?;
        let access = args::access(F, access)?;
        let obj = ShmObject::open(name, mode, access, args::permissions(perm))?;
        arg!(give(out, shmb_object::new(obj)));
        Ok(())
    })
}

/// Release an object handle: closes it (mappings made from it stay valid) but never removes
/// the name. NULL is a no-op.
///
/// # Safety
///
/// `obj` is NULL or a handle from `shmb_object_open()` not freed yet; it must not be used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_free(obj: *mut shmb_object) {
    guard_value((), || arg!(take(obj)));
}

/// The object's name (without a leading `/`), NUL-terminated. Borrowed: valid until `obj` is
/// freed. NULL when `obj` is NULL.
///
/// # Safety
///
/// `obj` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_name(obj: *const shmb_object) -> *const c_char {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(obj)).map_or(std::ptr::null(), |o| o.name.as_ptr())
    })
}

/// Store the object's real size in bytes (`fstat`) in `*out`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OS`.
///
/// # Safety
///
/// `obj` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_size(obj: *const shmb_object, out: *mut u64) -> shmb_result {
    const F: &str = "shmb_object_size";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let obj = arg!(ref_arg(obj, F, "obj"))?;
        let size = obj.inner.size()?;
        arg!(write_out(out, size));
        Ok(())
    })
}

/// Set the object's size to `size` bytes (`ftruncate`) and reserve its memory, so that a full
/// `/dev/shm` is reported here (`SHMB_NO_SPACE`) and not as a `SIGBUS` later. Boost's
/// `shared_memory_object::truncate`. A size of 0 is allowed (it empties the object).
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_PERMISSION_DENIED` (read-only handle),
/// `SHMB_INVALID_SIZE` (larger than the platform allows), `SHMB_NO_SPACE`.
///
/// # Safety
///
/// `obj` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_truncate(obj: *const shmb_object, size: u64) -> shmb_result {
    const F: &str = "shmb_object_truncate";
    guard(F, || {
        let obj = arg!(ref_arg(obj, F, "obj"))?;
        obj.inner.truncate(size)?;
        Ok(())
    })
}

/// The access the handle was opened with (`SHMB_READ_ONLY` or `SHMB_READ_WRITE`); 0 when `obj`
/// is NULL.
///
/// # Safety
///
/// `obj` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_access(obj: *const shmb_object) -> shmb_access {
    guard_value(0, || {
        arg!(opt_ref(obj)).map_or(0, |o| args::access_code(o.inner.access()))
    })
}

/// Whether this handle created the object (always true after `SHMB_CREATE_ONLY`; says which
/// happened after `SHMB_OPEN_OR_CREATE`). False when `obj` is NULL.
///
/// # Safety
///
/// `obj` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_created(obj: *const shmb_object) -> bool {
    guard_value(false, || {
        arg!(opt_ref(obj)).is_some_and(|o| o.inner.created())
    })
}

/// Store the object's permission bits (e.g. 0600) in `*out`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OS`.
///
/// # Safety
///
/// `obj` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_permissions(
    obj: *const shmb_object,
    out: *mut u32,
) -> shmb_result {
    const F: &str = "shmb_object_permissions";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let obj = arg!(ref_arg(obj, F, "obj"))?;
        let p = obj.inner.permissions()?;
        arg!(write_out(out, p));
        Ok(())
    })
}

/// Change the object's permission bits (`fchmod`; bits outside 0777 are
/// `SHMB_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `obj` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_set_permissions(
    obj: *const shmb_object,
    perm: u32,
) -> shmb_result {
    const F: &str = "shmb_object_set_permissions";
    guard(F, || {
        let obj = arg!(ref_arg(obj, F, "obj"))?;
        obj.inner.set_permissions(perm)?;
        Ok(())
    })
}

/// Map `len` bytes of the object at `offset` (any offset: the library aligns it) and store the
/// new mapping in `*out`. `len` 0 maps from `offset` to the end, so `(0, 0)` maps the whole
/// object, as Boost's `mapped_region(shm, mode)` does. `access` is `SHMB_READ_ONLY` or
/// `SHMB_READ_WRITE` (a read-write mapping needs a read-write handle).
///
/// Ownership: the caller owns `*out` and releases it with `shmb_region_free()`. The mapping
/// keeps the object open: it stays valid after `obj` is freed.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (unknown access),
/// `SHMB_UNSUPPORTED` (copy-on-write), `SHMB_PERMISSION_DENIED`, `SHMB_INVALID_SIZE` (the
/// object is empty: truncate it first), `SHMB_OUT_OF_BOUNDS`.
///
/// # Safety
///
/// `obj` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_object_map(
    obj: *const shmb_object,
    access: shmb_access,
    offset: u64,
    len: u64,
    out: *mut *mut shmb_region,
) -> shmb_result {
    const F: &str = "shmb_object_map";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let obj = arg!(ref_arg(obj, F, "obj"))?;
        if access == crate::SHMB_COPY_ON_WRITE {
            return Err(FfiError::new(
                shmb_result::SHMB_UNSUPPORTED,
                format!("{F}: copy-on-write mappings of shared memory are not supported; map read_only or read_write"),
            ));
        }
        let acc = args::access(F, access)?;
        let region = if offset == 0 && len == 0 {
            obj.inner.map(acc)?
        } else {
            let len = if len == 0 {
                let size = obj.inner.size()?;
                if offset >= size {
                    return Err(FfiError::new(
                        shmb_result::SHMB_OUT_OF_BOUNDS,
                        format!("segment {:?}: cannot map at offset {offset}: the segment is {size} bytes", obj.inner.name()),
                    ));
                }
                size - offset
            } else {
                len
            };
            obj.inner.map_range(offset, len, acc)?
        };
        arg!(give(out, shmb_region::new(region)));
        Ok(())
    })
}

/// Remove the name `name` (`shm_unlink`). Processes that have the object open or mapped keep
/// their memory; it is freed when the last of them lets go. Boost's
/// `shared_memory_object::remove`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_NOT_FOUND`,
/// `SHMB_PERMISSION_DENIED`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmb_remove(name: *const c_char) -> shmb_result {
    const F: &str = "shmb_remove";
    guard(F, || {
        let name = arg!(name_arg(name, F))?;
        ShmObject::remove(name)?;
        Ok(())
    })
}

/// Whether a segment called `name` exists now. False for NULL or invalid names.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn shmb_exists(name: *const c_char) -> bool {
    guard_value(false, || {
        arg!(str_arg(
            name,
            "shmb_exists",
            "name",
            shmb_result::SHMB_INVALID_NAME
        ))
        .is_ok_and(ShmObject::exists)
    })
}

/// The longest segment name this platform accepts, in bytes (255 on Linux).
#[no_mangle]
pub extern "C" fn shmb_max_name_len() -> usize {
    shmbridge::name::max_name_len()
}
