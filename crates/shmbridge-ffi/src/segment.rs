//! Named segments: an object and one mapping of all of it (what CPython's `SharedMemory` is).

use std::ffi::{c_char, c_void};

use shmbridge::{Segment, SegmentOptions};

use crate::args::{self, arg, give, name_arg, opt_ref, out_arg, take};
use crate::error::{guard, guard_value, shmb_result};
use crate::object::shmb_object;
use crate::region::shmb_region;
use crate::{shmb_access, shmb_open_mode};

/// A named segment together with one mapping of all of it. Created by `shmb_segment_open()`,
/// released by `shmb_segment_free()` (which unmaps and closes, never removes the name).
pub struct shmb_segment {
    object: shmb_object,
    region: shmb_region,
}

/// Open or create the named segment `name` and map all of it.
///
/// `mode` is `SHMB_CREATE_ONLY`, `SHMB_OPEN_ONLY` or `SHMB_OPEN_OR_CREATE`; `access` is
/// `SHMB_READ_ONLY` or `SHMB_READ_WRITE`. A created segment has `size` bytes, zero-filled and
/// fully reserved, with permission bits `perm` (`SHMB_PERM_DEFAULT` = 0600). An opened segment
/// is mapped at its real size, which must be at least `size` (0 accepts any size). A creation
/// that fails after taking the name removes the name again.
///
/// Ownership: `name` is borrowed for the call; on success the caller owns `*out` and releases
/// it with `shmb_segment_free()`; on failure `*out` is not written.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT`,
/// `SHMB_INVALID_SIZE` (0 or absurd on create; an existing segment smaller than `size`),
/// `SHMB_ALREADY_EXISTS`, `SHMB_NOT_FOUND`, `SHMB_PERMISSION_DENIED`, `SHMB_NO_SPACE`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_open(
    name: *const c_char,
    mode: shmb_open_mode,
    access: shmb_access,
    size: u64,
    perm: u32,
    out: *mut *mut shmb_segment,
) -> shmb_result {
    const F: &str = "shmb_segment_open";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let mode = args::open_mode(F, mode)?;
        let opts = SegmentOptions {
            permissions: args::permissions(perm),
            access: args::access(F, access)?,
            populate: false,
        };
        let (object, region) = Segment::open_with(name, mode, size, &opts)?.into_parts();
        let seg = shmb_segment {
            object: shmb_object::new(object),
            region: shmb_region::new(region),
        };
        arg!(give(out, seg));
        Ok(())
    })
}

/// Unmap and close the segment; never removes its name. NULL is a no-op. The borrowed region
/// and object pointers of the segment become invalid.
///
/// # Safety
///
/// `seg` is NULL or a segment from `shmb_segment_open()` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_free(seg: *mut shmb_segment) {
    guard_value((), || arg!(take(seg)));
}

/// The segment's mapping, for the `shmb_region_*` functions. Borrowed: valid until `seg` is
/// freed; never pass it to `shmb_region_free()`. NULL when `seg` is NULL.
///
/// # Safety
///
/// `seg` is NULL or a live segment.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_region(seg: *const shmb_segment) -> *const shmb_region {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(seg)).map_or(std::ptr::null(), |s| std::ptr::from_ref(&s.region))
    })
}

/// The segment's named object, for the `shmb_object_*` functions (size, permissions, more
/// mappings). Borrowed: valid until `seg` is freed; never pass it to `shmb_object_free()`.
/// NULL when `seg` is NULL.
///
/// # Safety
///
/// `seg` is NULL or a live segment.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_object(seg: *const shmb_segment) -> *const shmb_object {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(seg)).map_or(std::ptr::null(), |s| std::ptr::from_ref(&s.object))
    })
}

/// The segment's name, NUL-terminated. Borrowed: valid until `seg` is freed. NULL when `seg`
/// is NULL.
///
/// # Safety
///
/// `seg` is NULL or a live segment.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_name(seg: *const shmb_segment) -> *const c_char {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(seg)).map_or(std::ptr::null(), |s| s.object.name.as_ptr())
    })
}

/// The address of the segment's memory; shorthand for
/// `shmb_region_data(shmb_segment_region(seg))`. Borrowed: valid until `seg` is freed.
///
/// # Safety
///
/// `seg` is NULL or a live segment.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_data(seg: *const shmb_segment) -> *mut c_void {
    guard_value(std::ptr::null_mut(), || {
        arg!(opt_ref(seg)).map_or(std::ptr::null_mut(), |s| s.region.inner.as_mut_ptr().cast())
    })
}

/// The size of the segment's mapping in bytes; 0 when `seg` is NULL.
///
/// # Safety
///
/// `seg` is NULL or a live segment.
#[no_mangle]
pub unsafe extern "C" fn shmb_segment_size(seg: *const shmb_segment) -> usize {
    guard_value(0, || arg!(opt_ref(seg)).map_or(0, |s| s.region.inner.len()))
}
