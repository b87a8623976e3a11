//! Mappings (Boost's `mapped_region`): address, length, bounds-checked copies, typed
//! little-endian fields at offsets, the size-prefixed layout, and anonymous shared memory.

use std::ffi::c_void;

use shmbridge::{size_prefixed, Region, Scalar};

use crate::args::{arg, bytes_arg, bytes_out, give, opt_ref, out_arg, ref_arg, take, write_out};
use crate::error::{guard, guard_value, shmb_result, FfiError};

/// A mapping of a named object, a file, or anonymous shared memory (Boost's `mapped_region`).
/// Owned mappings come from `shmb_object_map()`, `shmb_file_map()`, `shmb_map_file()` or
/// `shmb_region_anonymous()` and are released by `shmb_region_free()`; the mapping of a
/// `shmb_segment` is borrowed from it (`shmb_segment_region()`) and must not be freed.
pub struct shmb_region {
    pub(crate) inner: Region,
}

impl shmb_region {
    pub(crate) fn new(inner: Region) -> Self {
        Self { inner }
    }
}

/// Create an anonymous shared mapping of `len` bytes (`MAP_SHARED | MAP_ANONYMOUS`),
/// zero-filled, read-write. A child made by `fork()` shares it with the parent: the seed's
/// `mmap.mmap(-1, length)` example.
///
/// Ownership: the caller owns `*out` and releases it with `shmb_region_free()`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_SIZE` (0, or larger than the address space),
/// `SHMB_NO_SPACE`.
///
/// # Safety
///
/// `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_anonymous(
    len: usize,
    out: *mut *mut shmb_region,
) -> shmb_result {
    const F: &str = "shmb_region_anonymous";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let r = Region::anonymous(len)?;
        arg!(give(out, shmb_region::new(r)));
        Ok(())
    })
}

/// Unmap and release a mapping that the caller owns. NULL is a no-op. Never pass the borrowed
/// mapping of a `shmb_segment` here.
///
/// # Safety
///
/// `region` is NULL or an owned mapping not freed yet; it (and its address) must not be used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_free(region: *mut shmb_region) {
    guard_value((), || arg!(take(region)));
}

/// The address of the first mapped byte (Boost's `get_address()`), valid for
/// `shmb_region_len()` bytes until the region is freed; NULL when `region` is NULL. Writing
/// through it is allowed only for a writable mapping. Other processes may change the bytes at
/// any time, and if the backing object is truncated below the mapping, touching them raises
/// `SIGBUS`: the copying functions below check for that, raw access cannot.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_data(region: *const shmb_region) -> *mut c_void {
    guard_value(std::ptr::null_mut(), || {
        arg!(opt_ref(region)).map_or(std::ptr::null_mut(), |r| r.inner.as_mut_ptr().cast())
    })
}

/// The length of the mapping in bytes (Boost's `get_size()`); 0 when `region` is NULL.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_len(region: *const shmb_region) -> usize {
    guard_value(0, || arg!(opt_ref(region)).map_or(0, |r| r.inner.len()))
}

/// Whether the mapping may be written; false when `region` is NULL.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_writable(region: *const shmb_region) -> bool {
    guard_value(false, || {
        arg!(opt_ref(region)).is_some_and(|r| r.inner.is_writable())
    })
}

/// Copy `len` bytes at `offset` of the mapping into the caller's `buf`.
///
/// Errors: `SHMB_NULL_ARGUMENT` (`buf` may be NULL only when `len` is 0), `SHMB_OUT_OF_BOUNDS`,
/// `SHMB_TRUNCATED` (the backing object shrank below the mapping).
///
/// # Safety
///
/// `region` is NULL or a live mapping; `buf` is NULL or valid for `len` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_read(
    region: *const shmb_region,
    offset: u64,
    buf: *mut c_void,
    len: usize,
) -> shmb_result {
    const F: &str = "shmb_region_read";
    guard(F, || {
        let r = arg!(ref_arg(region, F, "region"))?;
        let buf = arg!(bytes_out(buf, len, F, "buf"))?;
        r.inner.read_at(offset, buf)?;
        Ok(())
    })
}

/// Copy `len` bytes from the caller's `data` into the mapping at `offset`.
///
/// Errors: `SHMB_NULL_ARGUMENT` (`data` may be NULL only when `len` is 0),
/// `SHMB_PERMISSION_DENIED` (read-only mapping), `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `data` is NULL or valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_write(
    region: *const shmb_region,
    offset: u64,
    data: *const c_void,
    len: usize,
) -> shmb_result {
    const F: &str = "shmb_region_write";
    guard(F, || {
        let r = arg!(ref_arg(region, F, "region"))?;
        let data = arg!(bytes_arg(data, len, F, "data"))?;
        r.inner.write_at(offset, data)?;
        Ok(())
    })
}

/// Write the changes of a read-write file mapping back to the file (`msync`); a no-op for
/// other mappings.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_flush(region: *const shmb_region) -> shmb_result {
    const F: &str = "shmb_region_flush";
    guard(F, || {
        let r = arg!(ref_arg(region, F, "region"))?;
        r.inner.flush()?;
        Ok(())
    })
}

/// Check that the object behind the mapping still covers it: `SHMB_TRUNCATED` when another
/// process shrank it. Touching the missing pages through `shmb_region_data()` reads zeros (the
/// library's `SIGBUS` guard puts a private zero page there instead of letting the process
/// die); this call then reports it, and so does every checked call on the region.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_check(region: *const shmb_region) -> shmb_result {
    const F: &str = "shmb_region_check";
    guard(F, || {
        let r = arg!(ref_arg(region, F, "region"))?;
        r.inner.check_backing()?;
        Ok(())
    })
}

/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
unsafe fn get<T: Scalar>(
    func: &str,
    region: *const shmb_region,
    offset: u64,
    out: *mut T,
) -> shmb_result {
    guard(func, || {
        let out = out_arg(out, func, "out")?;
        let r = arg!(ref_arg(region, func, "region"))?;
        let v = r.inner.get::<T>(offset)?;
        arg!(write_out(out, v));
        Ok(())
    })
}

/// # Safety
///
/// `region` is NULL or a live mapping.
unsafe fn set<T: Scalar>(
    func: &str,
    region: *const shmb_region,
    offset: u64,
    value: T,
) -> shmb_result {
    guard(func, || {
        let r = arg!(ref_arg(region, func, "region"))?;
        r.inner.set(offset, value)?;
        Ok(())
    })
}

/// Read the unsigned 8-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_u8(
    region: *const shmb_region,
    offset: u64,
    out: *mut u8,
) -> shmb_result {
    arg!(get("shmb_region_get_u8", region, offset, out))
}

/// Write `value` as a unsigned 8-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_u8(
    region: *const shmb_region,
    offset: u64,
    value: u8,
) -> shmb_result {
    arg!(set("shmb_region_set_u8", region, offset, value))
}

/// Read the signed 8-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_i8(
    region: *const shmb_region,
    offset: u64,
    out: *mut i8,
) -> shmb_result {
    arg!(get("shmb_region_get_i8", region, offset, out))
}

/// Write `value` as a signed 8-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_i8(
    region: *const shmb_region,
    offset: u64,
    value: i8,
) -> shmb_result {
    arg!(set("shmb_region_set_i8", region, offset, value))
}

/// Read the unsigned 16-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_u16(
    region: *const shmb_region,
    offset: u64,
    out: *mut u16,
) -> shmb_result {
    arg!(get("shmb_region_get_u16", region, offset, out))
}

/// Write `value` as a unsigned 16-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_u16(
    region: *const shmb_region,
    offset: u64,
    value: u16,
) -> shmb_result {
    arg!(set("shmb_region_set_u16", region, offset, value))
}

/// Read the signed 16-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_i16(
    region: *const shmb_region,
    offset: u64,
    out: *mut i16,
) -> shmb_result {
    arg!(get("shmb_region_get_i16", region, offset, out))
}

/// Write `value` as a signed 16-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_i16(
    region: *const shmb_region,
    offset: u64,
    value: i16,
) -> shmb_result {
    arg!(set("shmb_region_set_i16", region, offset, value))
}

/// Read the unsigned 32-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_u32(
    region: *const shmb_region,
    offset: u64,
    out: *mut u32,
) -> shmb_result {
    arg!(get("shmb_region_get_u32", region, offset, out))
}

/// Write `value` as a unsigned 32-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_u32(
    region: *const shmb_region,
    offset: u64,
    value: u32,
) -> shmb_result {
    arg!(set("shmb_region_set_u32", region, offset, value))
}

/// Read the signed 32-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_i32(
    region: *const shmb_region,
    offset: u64,
    out: *mut i32,
) -> shmb_result {
    arg!(get("shmb_region_get_i32", region, offset, out))
}

/// Write `value` as a signed 32-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_i32(
    region: *const shmb_region,
    offset: u64,
    value: i32,
) -> shmb_result {
    arg!(set("shmb_region_set_i32", region, offset, value))
}

/// Read the unsigned 64-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_u64(
    region: *const shmb_region,
    offset: u64,
    out: *mut u64,
) -> shmb_result {
    arg!(get("shmb_region_get_u64", region, offset, out))
}

/// Write `value` as a unsigned 64-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_u64(
    region: *const shmb_region,
    offset: u64,
    value: u64,
) -> shmb_result {
    arg!(set("shmb_region_set_u64", region, offset, value))
}

/// Read the signed 64-bit little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_i64(
    region: *const shmb_region,
    offset: u64,
    out: *mut i64,
) -> shmb_result {
    arg!(get("shmb_region_get_i64", region, offset, out))
}

/// Write `value` as a signed 64-bit little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_i64(
    region: *const shmb_region,
    offset: u64,
    value: i64,
) -> shmb_result {
    arg!(set("shmb_region_set_i64", region, offset, value))
}

/// Read the 32-bit IEEE float little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_f32(
    region: *const shmb_region,
    offset: u64,
    out: *mut f32,
) -> shmb_result {
    arg!(get("shmb_region_get_f32", region, offset, out))
}

/// Write `value` as a 32-bit IEEE float little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_f32(
    region: *const shmb_region,
    offset: u64,
    value: f32,
) -> shmb_result {
    arg!(set("shmb_region_set_f32", region, offset, value))
}

/// Read the 64-bit IEEE float little-endian value at byte `offset` of the mapping (any alignment) into
/// `*out`: the seed's `struct.unpack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`. Ownership: nothing is retained.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_get_f64(
    region: *const shmb_region,
    offset: u64,
    out: *mut f64,
) -> shmb_result {
    arg!(get("shmb_region_get_f64", region, offset, out))
}

/// Write `value` as a 64-bit IEEE float little-endian value at byte `offset` of the mapping (any
/// alignment): the seed's `struct.pack` at an offset. Errors: `SHMB_NULL_ARGUMENT`,
/// `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping.
#[no_mangle]
pub unsafe extern "C" fn shmb_region_set_f64(
    region: *const shmb_region,
    offset: u64,
    value: f64,
) -> shmb_result {
    arg!(set("shmb_region_set_f64", region, offset, value))
}

/// Read the length prefix of a size-prefixed layout (an 8-byte little-endian length, then the
/// data: the seed's mmap samples) into `*out`, after checking it against the mapping.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_TRUNCATED` (shorter than 8 bytes, or than the length
/// it declares).
///
/// # Safety
///
/// `region` is NULL or a live mapping; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_prefixed_len(
    region: *const shmb_region,
    out: *mut u64,
) -> shmb_result {
    const F: &str = "shmb_prefixed_len";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let r = arg!(ref_arg(region, F, "region"))?;
        let n = size_prefixed::payload_len(&r.inner)?;
        arg!(write_out(out, n));
        Ok(())
    })
}

/// Copy the data of a size-prefixed layout into the caller's `buf` (capacity `cap`) and store
/// its length in `*out_len`. When `cap` is too small, returns `SHMB_BUFFER_TOO_SMALL`, copies
/// nothing, and stores the length needed in `*out_len`.
///
/// Errors: `SHMB_NULL_ARGUMENT` (`buf` may be NULL only when `cap` is 0), `SHMB_TRUNCATED`,
/// `SHMB_BUFFER_TOO_SMALL`.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `buf` is NULL or valid for `cap` bytes of writes;
/// `out_len` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_prefixed_read(
    region: *const shmb_region,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> shmb_result {
    const F: &str = "shmb_prefixed_read";
    guard(F, || {
        let out_len = out_arg(out_len, F, "out_len")?;
        let r = arg!(ref_arg(region, F, "region"))?;
        let buf = arg!(bytes_out(buf, cap, F, "buf"))?;
        let n = size_prefixed::payload_len(&r.inner)?;
        let n_usize = usize::try_from(n).unwrap_or(usize::MAX);
        if n_usize > cap {
            arg!(write_out(out_len, n_usize));
            return Err(FfiError::new(
                shmb_result::SHMB_BUFFER_TOO_SMALL,
                format!("{F}: the data is {n} bytes but the buffer holds {cap}"),
            ));
        }
        r.inner
            .read_at(size_prefixed::PREFIX_LEN, &mut buf[..n_usize])?;
        arg!(write_out(out_len, n_usize));
        Ok(())
    })
}

/// Write `len` bytes of `data` after an 8-byte little-endian length prefix into the mapping
/// (the size-prefixed layout). The prefix is written last.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_PERMISSION_DENIED`, `SHMB_OUT_OF_BOUNDS` (8 + `len`
/// does not fit), `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `region` is NULL or a live mapping; `data` is NULL or valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn shmb_prefixed_write(
    region: *const shmb_region,
    data: *const c_void,
    len: usize,
) -> shmb_result {
    const F: &str = "shmb_prefixed_write";
    guard(F, || {
        let r = arg!(ref_arg(region, F, "region"))?;
        let data = arg!(bytes_arg(data, len, F, "data"))?;
        size_prefixed::write(&r.inner, data)?;
        Ok(())
    })
}
