//! Typed arrays (`docs/SPEC.md` section 7): named array segments (7.5, `shmb_array_segment`)
//! and arrays in channel messages (7.6: `shmb_channel_writer_loan_array()`,
//! `shmb_channel_message_array()`). Thin shells over the core's `shmbridge::array`: every
//! header is built, encoded and validated there; this module converts arguments and fills
//! the plain `shmb_array_info`.

use std::ffi::{c_char, c_void, CString};

use shmbridge::array::{received_header, ArrayHeader, ArraySegment, DType};

use crate::args::{
    self, arg, array_layout_arg, bytes_arg, bytes_out, c_string, give, len_out, mut_arg, name_arg,
    opt_ref, out_arg, put, ref_arg, take, wait_arg, write_out,
};
use crate::channel::{
    shmb_channel_loan, shmb_channel_message, shmb_channel_reader, shmb_channel_writer, Loaned,
};
use crate::error::{guard, guard_value, shmb_result, FfiError, FfiResult};
use crate::shmb_access;
use crate::wait::shmb_wait;

/// The framed kind of an array segment (`shmb_header_info.kind`).
pub const SHMB_KIND_ARRAY: u32 = 4;

/// The most dimensions an array has (the length of `shmb_array_info.shape` and `.strides`).
pub const SHMB_MAX_NDIM: usize = 32;

/// An element type: the array header's kind letter times 256 plus its bits
/// (`docs/SPEC.md` 7.3), so `SHMB_DTYPE_FLOAT32` is `('f' << 8) | 32`. Any other value is
/// `SHMB_INVALID_ARGUMENT`.
pub type shmb_dtype = u32;
/// `bool`: one byte, 0 is false, anything else true.
pub const SHMB_DTYPE_BOOL: shmb_dtype = 0x6208;
/// `int8_t`.
pub const SHMB_DTYPE_INT8: shmb_dtype = 0x6908;
/// `int16_t`.
pub const SHMB_DTYPE_INT16: shmb_dtype = 0x6910;
/// `int32_t`.
pub const SHMB_DTYPE_INT32: shmb_dtype = 0x6920;
/// `int64_t`.
pub const SHMB_DTYPE_INT64: shmb_dtype = 0x6940;
/// `uint8_t`.
pub const SHMB_DTYPE_UINT8: shmb_dtype = 0x7508;
/// `uint16_t`.
pub const SHMB_DTYPE_UINT16: shmb_dtype = 0x7510;
/// `uint32_t`.
pub const SHMB_DTYPE_UINT32: shmb_dtype = 0x7520;
/// `uint64_t`.
pub const SHMB_DTYPE_UINT64: shmb_dtype = 0x7540;
/// IEEE 754 binary16 (numpy `float16`; `_Float16` where the compiler has it).
pub const SHMB_DTYPE_FLOAT16: shmb_dtype = 0x6610;
/// `float`.
pub const SHMB_DTYPE_FLOAT32: shmb_dtype = 0x6620;
/// `double`.
pub const SHMB_DTYPE_FLOAT64: shmb_dtype = 0x6640;
/// `float _Complex` / `std::complex<float>`: two floats, the real part first.
pub const SHMB_DTYPE_COMPLEX64: shmb_dtype = 0x6340;
/// `double _Complex` / `std::complex<double>`.
pub const SHMB_DTYPE_COMPLEX128: shmb_dtype = 0x6380;

/// The memory order of a new contiguous array (used when no strides are given). Any other
/// value is `SHMB_INVALID_ARGUMENT`.
pub type shmb_order = u32;
/// Row-major: the last index varies fastest (C arrays, numpy's default).
pub const SHMB_ORDER_C: shmb_order = 0;
/// Column-major: the first index varies fastest (Fortran, Eigen's default).
pub const SHMB_ORDER_F: shmb_order = 1;

/// What an array is and where its elements lie: filled in by `shmb_array_segment_info()`,
/// `shmb_channel_writer_loan_array()` and `shmb_channel_message_array()`. Plain data owned by
/// the caller; `data` is borrowed from the segment, loan or message it came from and valid as
/// long as that is.
///
/// Element `(i0, ..., i(ndim-1))` starts at `(char *)data + origin + i0 * strides[0] + ...`.
/// Every element the shape reaches lies inside the `data_len` bytes at `data` and is aligned
/// to its size: the library checked the header against the real size before filling this in.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_array_info {
    /// The element type (`SHMB_DTYPE_*`).
    pub dtype: shmb_dtype,
    /// Bytes per element.
    pub itemsize: u32,
    /// Number of dimensions, 0 (one element) to `SHMB_MAX_NDIM`.
    pub ndim: u32,
    /// The extents; entries from `ndim` on are 0.
    pub shape: [u64; SHMB_MAX_NDIM],
    /// The strides in bytes (negative and zero allowed); entries from `ndim` on are 0.
    pub strides: [i64; SHMB_MAX_NDIM],
    /// The number of elements (the product of the shape; 1 for 0 dimensions).
    pub len: u64,
    /// The first byte of the data area (64-byte aligned). Writable for a segment opened
    /// read-write and for a loan; read only for a received message.
    pub data: *mut c_void,
    /// Length of the data area in bytes.
    pub data_len: usize,
    /// Offset of element `(0, ..., 0)` from `data` (0 unless a stride is negative).
    pub origin: u64,
    /// Whether the elements are contiguous in C order (row-major) from `data + origin`.
    pub c_contiguous: bool,
    /// Whether they are contiguous in Fortran order (column-major).
    pub f_contiguous: bool,
}

/// `h` as C sees it, its data area at `data`.
pub(crate) fn info_of(h: &ArrayHeader, data: *mut u8) -> shmb_array_info {
    let mut shape = [0u64; SHMB_MAX_NDIM];
    let mut strides = [0i64; SHMB_MAX_NDIM];
    shape[..h.ndim()].copy_from_slice(h.shape());
    strides[..h.ndim()].copy_from_slice(h.strides());
    shmb_array_info {
        dtype: args::dtype_code(h.dtype()),
        itemsize: h.itemsize() as u32,
        ndim: h.ndim() as u32,
        shape,
        strides,
        len: h.len(),
        data: data.cast(),
        data_len: h.data_len() as usize,
        origin: h.origin(),
        c_contiguous: h.is_c_contiguous(),
        f_contiguous: h.is_f_contiguous(),
    }
}

/// The size in bytes of an element of `dtype`; 0 for a code that is no `SHMB_DTYPE_*`.
#[no_mangle]
pub extern "C" fn shmb_dtype_itemsize(dtype: shmb_dtype) -> usize {
    guard_value(0, || {
        args::dtype("shmb_dtype_itemsize", dtype).map_or(0, DType::itemsize)
    })
}

/// The numpy name of `dtype` (`"float32"`, `"complex64"`, ...) as a static NUL-terminated
/// string, not to be freed; NULL for a code that is no `SHMB_DTYPE_*`.
#[no_mangle]
pub extern "C" fn shmb_dtype_name(dtype: shmb_dtype) -> *const c_char {
    guard_value(std::ptr::null(), || {
        args::dtype("shmb_dtype_name", dtype).map_or(std::ptr::null(), |d| d.c_name().as_ptr())
    })
}

// ---------------------------------------------------------------------------------------------
// Array segments.

/// A named array segment (`docs/SPEC.md` 7.5): one array whose element type and shape are
/// fixed when it is created, replaced in place by one writer in versions published under the
/// seqlock. Created by `shmb_array_segment_create()` or opened by `shmb_array_segment_open()`,
/// released by `shmb_array_segment_free()`. One thread at a time.
pub struct shmb_array_segment {
    inner: ArraySegment,
    /// The token of the write in progress (`shmb_array_segment_begin_write()`), if any.
    write: Option<u64>,
    name: CString,
}

impl Drop for shmb_array_segment {
    fn drop(&mut self) {
        if let Some(token) = self.write.take() {
            let _ = self.inner.end_write_raw(token, false);
        }
    }
}

impl shmb_array_segment {
    fn new(inner: ArraySegment) -> Self {
        Self {
            name: c_string(inner.name()),
            inner,
            write: None,
        }
    }

    fn about(&self, func: &str, detail: &str) -> FfiError {
        FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: array segment {:?}: {detail}", self.inner.name()),
        )
    }
}

/// Create the array segment `name` (`create_only`) holding a zeroed array of `dtype` and the
/// `ndim` extents at `shape`, laid out with the `ndim` byte strides at `strides` (negative and
/// zero strides allowed: the data area is the smallest that holds every element), or, when
/// `strides` is NULL, contiguous in `order`. The name appears only once the header is
/// complete; the handle is the segment's writer.
///
/// Ownership: `name`, `shape` and `strides` are borrowed; on success the caller owns `*out`.
/// Freeing the handle does not remove the name (`shmb_remove()` does).
///
/// Errors: `SHMB_NULL_ARGUMENT` (`shape` may be NULL only when `ndim` is 0), `SHMB_INVALID_NAME`,
/// `SHMB_INVALID_ARGUMENT` (an unknown dtype or order code, `ndim` over `SHMB_MAX_NDIM`, a size
/// that overflows, strides that are not multiples of the element size, bad permission bits),
/// `SHMB_INVALID_SIZE`, `SHMB_ALREADY_EXISTS`, `SHMB_NO_SPACE`, `SHMB_PERMISSION_DENIED`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `shape` is NULL or valid for `ndim` reads;
/// `strides` is NULL or valid for `ndim` reads; `out` is NULL or valid for a write.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn shmb_array_segment_create(
    name: *const c_char,
    dtype: shmb_dtype,
    ndim: usize,
    shape: *const u64,
    strides: *const i64,
    order: shmb_order,
    perm: u32,
    out: *mut *mut shmb_array_segment,
) -> shmb_result {
    const F: &str = "shmb_array_segment_create";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let name = arg!(name_arg(name, F))?;
        let about = format!("array segment {name:?}");
        let header = arg!(array_layout_arg(
            F, &about, dtype, ndim, shape, strides, order
        ))?;
        let seg = ArraySegment::create_with_header(name, &header, &args::framed_options(perm))?;
        arg!(give(out, shmb_array_segment::new(seg)));
        Ok(())
    })
}

/// Open the array segment `name` with `access` (`SHMB_READ_ONLY`, or `SHMB_READ_WRITE` to
/// write or to ask a writer for a copy window), waiting for it to appear as `wait` allows
/// (NULL: without a limit; a `timeout_ms` of 0 does not wait). Only this user's segments are
/// accepted (see `shmb_array_segment_open_owner()`). The element type and shape come from the
/// segment's header, checked against its real size.
///
/// Ownership: `name` is borrowed; on success the caller owns `*out`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_NAME`, `SHMB_INVALID_ARGUMENT` (an unknown
/// access, a bad `timeout_ms`), `SHMB_TIMEOUT` (no such segment appeared in time),
/// `SHMB_ABORTED`, `SHMB_PERMISSION_DENIED` (another owner's segment, or the OS refused),
/// `SHMB_UNSUPPORTED` (not an array segment; too many dimensions or an unknown element type in
/// its header), `SHMB_BAD_MAGIC`, `SHMB_UNSUPPORTED_VERSION`, `SHMB_CORRUPT_HEADER` (a header
/// that does not add up: strides reaching outside the data area, misaligned strides, a shape
/// that overflows), `SHMB_TRUNCATED` (the segment is shorter than its header says).
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `wait` is NULL or points to a `shmb_wait`; `out`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_open(
    name: *const c_char,
    access: shmb_access,
    wait: *const shmb_wait,
    out: *mut *mut shmb_array_segment,
) -> shmb_result {
    const F: &str = "shmb_array_segment_open";
    arg!(array_segment_open(
        F,
        name,
        access,
        crate::SHMB_OWNER_SELF,
        wait,
        out
    ))
}

/// As `shmb_array_segment_open()`, accepting a segment owned by `allow_owner` as well as this
/// user's own: `SHMB_OWNER_SELF` (-1: only this user's), `SHMB_OWNER_ANY` (-2), or a user id.
/// A reader trusts what it views in place, and anyone can create a segment under the name it
/// waits for, so another owner's segment fails with `SHMB_PERMISSION_DENIED` unless allowed.
///
/// Errors: those of `shmb_array_segment_open()`; `SHMB_INVALID_ARGUMENT` for an
/// `allow_owner` that is none of those.
///
/// # Safety
///
/// As `shmb_array_segment_open()`.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_open_owner(
    name: *const c_char,
    access: shmb_access,
    allow_owner: i64,
    wait: *const shmb_wait,
    out: *mut *mut shmb_array_segment,
) -> shmb_result {
    const F: &str = "shmb_array_segment_open_owner";
    arg!(array_segment_open(F, name, access, allow_owner, wait, out))
}

/// The body of both opens.
///
/// # Safety
///
/// As `shmb_array_segment_open()`.
unsafe fn array_segment_open(
    func: &str,
    name: *const c_char,
    access: shmb_access,
    allow_owner: i64,
    wait: *const shmb_wait,
    out: *mut *mut shmb_array_segment,
) -> shmb_result {
    guard(func, || {
        let out = out_arg(out, func, "out")?;
        let name = arg!(name_arg(name, func))?;
        let access = args::access(func, access)?;
        let owner = args::owner_policy(func, allow_owner)?;
        let wait = arg!(wait_arg(wait, func))?;
        let seg = wait.run(false, |w| ArraySegment::open_wait(name, access, &owner, w))?;
        arg!(give(out, shmb_array_segment::new(seg)));
        Ok(())
    })
}

/// Fill the caller's `*out` with the array's element type, shape, strides and data area (in
/// this process's mapping; the header is fixed for the segment's life, so this never changes).
///
/// Errors: `SHMB_NULL_ARGUMENT`.
///
/// # Safety
///
/// `segment` is NULL or a live handle; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_info(
    segment: *const shmb_array_segment,
    out: *mut shmb_array_info,
) -> shmb_result {
    const F: &str = "shmb_array_segment_info";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let s = &arg!(ref_arg(segment, F, "segment"))?.inner;
        arg!(write_out(out, info_of(s.header(), s.data_ptr())));
        Ok(())
    })
}

/// The segment's name. Borrowed: valid until `segment` is freed. NULL when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_name(
    segment: *const shmb_array_segment,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(segment)).map_or(std::ptr::null(), |s| s.name.as_ptr())
    })
}

/// The element type (`SHMB_DTYPE_*`); 0 when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_dtype(
    segment: *const shmb_array_segment,
) -> shmb_dtype {
    guard_value(0, || {
        arg!(opt_ref(segment)).map_or(0, |s| args::dtype_code(s.inner.dtype()))
    })
}

/// The number of dimensions (0 to `SHMB_MAX_NDIM`); 0 when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_ndim(segment: *const shmb_array_segment) -> usize {
    guard_value(0, || {
        arg!(opt_ref(segment)).map_or(0, |s| s.inner.header().ndim())
    })
}

/// The `ndim` extents. Borrowed: valid until `segment` is freed (not to be read when `ndim` is
/// 0). NULL when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_shape(
    segment: *const shmb_array_segment,
) -> *const u64 {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(segment)).map_or(std::ptr::null(), |s| s.inner.shape().as_ptr())
    })
}

/// The `ndim` strides in bytes. Borrowed: valid until `segment` is freed (not to be read when
/// `ndim` is 0). NULL when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_strides(
    segment: *const shmb_array_segment,
) -> *const i64 {
    guard_value(std::ptr::null(), || {
        arg!(opt_ref(segment)).map_or(std::ptr::null(), |s| s.inner.strides().as_ptr())
    })
}

/// The first byte of the data area in this process's mapping (64-byte aligned; element
/// `(0, ..., 0)` is `shmb_array_info.origin` bytes further). Zero-copy: it races the writer
/// (take `shmb_array_segment_read()` for a consistent copy), and another process could shrink
/// the segment under it (`SIGBUS` on access, the layout's safety boundary). Writable only
/// through a read-write handle. NULL when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_data(
    segment: *const shmb_array_segment,
) -> *mut c_void {
    guard_value(std::ptr::null_mut(), || {
        arg!(opt_ref(segment)).map_or(std::ptr::null_mut(), |s| s.inner.data_ptr().cast())
    })
}

/// Length of the data area in bytes (what `shmb_array_segment_read()` copies); 0 when
/// `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_data_len(segment: *const shmb_array_segment) -> usize {
    guard_value(0, || {
        arg!(opt_ref(segment)).map_or(0, |s| s.inner.data_len())
    })
}

/// The current version: the number of writes ended so far (a write in progress is not
/// counted); 0 when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_version(segment: *const shmb_array_segment) -> u64 {
    guard_value(0, || {
        arg!(opt_ref(segment)).map_or(0, |s| s.inner.version())
    })
}

/// The publish counter (wraps; bumped by every published version); 0 when `segment` is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_publish_count(
    segment: *const shmb_array_segment,
) -> u32 {
    guard_value(0, || {
        arg!(opt_ref(segment)).map_or(0, |s| s.inner.publish_count())
    })
}

/// Whether the handle may write (created, or opened `SHMB_READ_WRITE`); false when `segment`
/// is NULL.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_writable(segment: *const shmb_array_segment) -> bool {
    guard_value(false, || {
        arg!(opt_ref(segment)).is_some_and(|s| s.inner.is_writable())
    })
}

/// Start a new version: until `shmb_array_segment_end_write()`, readers' consistent copies
/// wait or retry. Write the data area in place meanwhile (`shmb_array_segment_data()`). Holds
/// off first, for at most 100 ms, while a reader asks for a window to copy in. One write at a
/// time per handle; freeing the handle ends a write in progress unpublished.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_PERMISSION_DENIED` (a read-only handle),
/// `SHMB_TRUNCATED` (the segment shrank), `SHMB_INVALID_ARGUMENT` (a write of this handle is
/// in progress already).
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_begin_write(
    segment: *mut shmb_array_segment,
) -> shmb_result {
    const F: &str = "shmb_array_segment_begin_write";
    guard(F, || {
        let s = arg!(mut_arg(segment, F, "segment"))?;
        if s.write.is_some() {
            return Err(s.about(F, "a write is in progress already (end it first)"));
        }
        s.write = Some(s.inner.begin_write_raw()?);
        Ok(())
    })
}

/// End the write begun by `shmb_array_segment_begin_write()`. When `publish`, it becomes a new
/// version: the publish counter is bumped and waiting readers wake. Otherwise (an abandoned
/// write) what was written is the current data without waking anyone.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (no write in progress),
/// `SHMB_TRUNCATED` (the segment shrank: nothing is stored, and the write is over).
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_end_write(
    segment: *mut shmb_array_segment,
    publish: bool,
) -> shmb_result {
    const F: &str = "shmb_array_segment_end_write";
    guard(F, || {
        let s = arg!(mut_arg(segment, F, "segment"))?;
        let token = s.write.take().ok_or_else(|| {
            s.about(
                F,
                "no write is in progress (call shmb_array_segment_begin_write first)",
            )
        })?;
        s.inner.end_write_raw(token, publish)?;
        Ok(())
    })
}

/// Publish a new version of data written in place outside a write (`begin_write` and
/// `end_write` in one: readers that copied meanwhile may have seen the data half written).
///
/// Errors: as `shmb_array_segment_begin_write()`.
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_publish(
    segment: *mut shmb_array_segment,
) -> shmb_result {
    const F: &str = "shmb_array_segment_publish";
    guard(F, || {
        let s = arg!(mut_arg(segment, F, "segment"))?;
        if s.write.is_some() {
            return Err(s.about(
                F,
                "a write is in progress (end it with shmb_array_segment_end_write)",
            ));
        }
        s.inner.publish()?;
        Ok(())
    })
}

/// Replace the data area with the `len` bytes at `data` (exactly `data_len`, in memory order)
/// and publish them as a new version, in one write.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (another length, or a write in
/// progress), and those of `shmb_array_segment_begin_write()`.
///
/// # Safety
///
/// `segment` is NULL or a live handle; `data` is NULL or valid for `len` bytes of reads (not
/// inside this segment's mapping).
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_write(
    segment: *mut shmb_array_segment,
    data: *const c_void,
    len: usize,
) -> shmb_result {
    const F: &str = "shmb_array_segment_write";
    guard(F, || {
        let s = arg!(mut_arg(segment, F, "segment"))?;
        let data = arg!(bytes_arg(data, len, F, "data"))?;
        if s.write.is_some() {
            return Err(s.about(
                F,
                "a write is in progress (end it with shmb_array_segment_end_write)",
            ));
        }
        s.inner.write_data(data)?;
        Ok(())
    })
}

/// Copy the data area, consistently (never torn: a copy a write overlapped is retried), into
/// `buf` (`cap` bytes, at least `data_len`), in memory order (the strides describe it). Stores
/// the bytes copied in `*out_len`, and the version copied in `*out_version` when that is not
/// NULL; marks that version seen for `shmb_array_segment_wait()`.
///
/// Errors: `SHMB_NULL_ARGUMENT` (`buf` may be NULL only when `data_len` is 0),
/// `SHMB_BUFFER_TOO_SMALL` (`*out_len` is set to `data_len`), `SHMB_TIMEOUT` (no consistent
/// copy for 2 s: a writer killed mid-write, or one publishing back to back while this handle
/// is read-only), `SHMB_TRUNCATED` (the segment shrank).
///
/// # Safety
///
/// `segment` is NULL or a live handle; `buf` is NULL or valid for `cap` bytes of writes;
/// `out_len` is NULL or valid for a write; `out_version` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_read(
    segment: *const shmb_array_segment,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
    out_version: *mut u64,
) -> shmb_result {
    const F: &str = "shmb_array_segment_read";
    guard(F, || {
        let out_len = out_arg(out_len, F, "out_len")?;
        let s = &arg!(ref_arg(segment, F, "segment"))?.inner;
        let n = s.data_len();
        // A NULL `buf` fails before `*out_len` is written; a short one reports the length.
        let buf = if n <= cap {
            Some(arg!(bytes_out(buf, n, F, "buf"))?)
        } else {
            None
        };
        arg!(len_out(out_len, n, cap, F, "the array's data area"))?;
        let snap = s.read_data_into(buf.unwrap_or_default())?;
        arg!(put(out_version, snap.version));
        Ok(())
    })
}

/// Wait, as `wait` allows (NULL: no limit), for a version this handle has not seen yet (one
/// published after it opened, after its last `shmb_array_segment_read()` or after the last
/// wait), and mark it seen. Stores the publish counter in `*out_count` when that is not NULL.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_WRITER_CLOSED` (the writer closed the segment),
/// `SHMB_PEER_GONE` (the writer died), `SHMB_TIMEOUT`, `SHMB_ABORTED`, `SHMB_INVALID_ARGUMENT`
/// (a bad `timeout_ms`), `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `segment` is NULL or a live handle; `wait` is NULL or points to a `shmb_wait`; `out_count`
/// is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_wait(
    segment: *const shmb_array_segment,
    wait: *const shmb_wait,
    out_count: *mut u32,
) -> shmb_result {
    const F: &str = "shmb_array_segment_wait";
    guard(F, || {
        let s = &arg!(ref_arg(segment, F, "segment"))?.inner;
        let wait = arg!(wait_arg(wait, F))?;
        let count = wait.run(false, |w| s.wait_next(w))?;
        arg!(put(out_count, count));
        Ok(())
    })
}

/// Mark the segment closed by its writer: readers waiting for a version get
/// `SHMB_WRITER_CLOSED`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_PERMISSION_DENIED` (a read-only handle).
///
/// # Safety
///
/// `segment` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_close_writer(
    segment: *const shmb_array_segment,
) -> shmb_result {
    const F: &str = "shmb_array_segment_close_writer";
    guard(F, || {
        let s = &arg!(ref_arg(segment, F, "segment"))?.inner;
        s.close_writer()?;
        Ok(())
    })
}

/// Release the handle (a write in progress ends unpublished); the name stays
/// (`shmb_remove()` removes it). NULL is a no-op.
///
/// # Safety
///
/// `segment` is NULL or a handle not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_array_segment_free(segment: *mut shmb_array_segment) {
    guard_value((), || arg!(take(segment)));
}

// ---------------------------------------------------------------------------------------------
// Arrays in channel messages.

/// The body of both array loans: `loan(writer, header)` claims the slot (or `None`).
///
/// # Safety
///
/// As `shmb_channel_writer_loan_array()`.
#[allow(clippy::too_many_arguments)]
unsafe fn loan_array(
    func: &str,
    writer: *mut shmb_channel_writer,
    dtype: shmb_dtype,
    ndim: usize,
    shape: *const u64,
    strides: *const i64,
    order: shmb_order,
    out: *mut shmb_channel_loan,
    out_info: *mut shmb_array_info,
    loan: impl FnOnce(
        &mut shmbridge::ChannelWriter,
        &ArrayHeader,
    ) -> shmbridge::Result<Option<shmbridge::array::RawArrayLoan>>,
) -> FfiResult<bool> {
    let out = out_arg(out, func, "out")?;
    let out_info = out_arg(out_info, func, "out_info")?;
    let w = arg!(mut_arg(writer, func, "writer"))?;
    let about = format!("channel {:?}", w.inner.framed().name());
    let header = arg!(array_layout_arg(
        func, &about, dtype, ndim, shape, strides, order
    ))?;
    let Some(a) = loan(&mut w.inner, &header)? else {
        return Ok(false);
    };
    let c = shmb_channel_loan {
        data: a.raw().as_mut_ptr().cast(),
        len: a.raw().len(),
        capacity: usize::try_from(w.inner.max_message()).unwrap_or(usize::MAX),
        slot: a.raw().slot(),
    };
    let info = info_of(a.header(), a.data_ptr());
    w.loans.push(Loaned::Array(a));
    arg!(write_out(out, c));
    arg!(write_out(out_info, info));
    Ok(true)
}

/// Loan a slot for an array message of `dtype` and the `ndim` extents at `shape`, laid out
/// with the byte strides at `strides` or, when `strides` is NULL, contiguous in `order`,
/// waiting for a slot as `wait` allows (NULL: no limit), as `shmb_channel_writer_loan()`. The
/// array header is written into the slot at once. Writes `*out` (the loan: `data` is the
/// header's start, `len` the whole message) and `*out_info` (the array: fill its elements at
/// `out_info->data` in place), then publish the loan with `shmb_channel_writer_publish()`
/// (with `len` = `out->len`; the message gets `SHMB_MESSAGE_ARRAY`) or give it back with
/// `shmb_channel_writer_discard()`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (an unknown dtype or order code,
/// `ndim` over `SHMB_MAX_NDIM`, a size that overflows, strides that are not multiples of the
/// element size, a bad `timeout_ms`), `SHMB_OUT_OF_BOUNDS` (header and data exceed
/// `max_message`), and those of `shmb_channel_writer_loan()`.
///
/// # Safety
///
/// `writer` is NULL or a live handle; `shape` is NULL or valid for `ndim` reads; `strides` is
/// NULL or valid for `ndim` reads; `wait` is NULL or points to a `shmb_wait`; `out` and
/// `out_info` are NULL or valid for a write.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn shmb_channel_writer_loan_array(
    writer: *mut shmb_channel_writer,
    dtype: shmb_dtype,
    ndim: usize,
    shape: *const u64,
    strides: *const i64,
    order: shmb_order,
    wait: *const shmb_wait,
    out: *mut shmb_channel_loan,
    out_info: *mut shmb_array_info,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_loan_array";
    guard(F, || {
        let wait = arg!(wait_arg(wait, F))?;
        arg!(loan_array(
            F,
            writer,
            dtype,
            ndim,
            shape,
            strides,
            order,
            out,
            out_info,
            |w, h| wait.run(false, |wt| w.loan_array_raw(h, wt)).map(Some)
        ))?;
        Ok(())
    })
}

/// As `shmb_channel_writer_loan_array()`, without waiting: sets `*out_loaned` to true and
/// fills `*out` and `*out_info` when a slot was free; sets it to false (leaving the others
/// alone) when none is right now: that is not an error.
///
/// Errors: as `shmb_channel_writer_loan_array()`, without the waiting ones.
///
/// # Safety
///
/// As `shmb_channel_writer_loan_array()`; `out_loaned` is NULL or valid for a write.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn shmb_channel_writer_try_loan_array(
    writer: *mut shmb_channel_writer,
    dtype: shmb_dtype,
    ndim: usize,
    shape: *const u64,
    strides: *const i64,
    order: shmb_order,
    out: *mut shmb_channel_loan,
    out_info: *mut shmb_array_info,
    out_loaned: *mut bool,
) -> shmb_result {
    const F: &str = "shmb_channel_writer_try_loan_array";
    guard(F, || {
        let out_loaned = out_arg(out_loaned, F, "out_loaned")?;
        let loaned = arg!(loan_array(
            F,
            writer,
            dtype,
            ndim,
            shape,
            strides,
            order,
            out,
            out_info,
            shmbridge::ChannelWriter::try_loan_array_raw
        ))?;
        arg!(write_out(out_loaned, loaned));
        Ok(())
    })
}

/// Fill the caller's `*out` with the array header of the message `*msg` that `reader` holds
/// (its dtype, shape and strides; `out->data`, read only, is the data area in place, valid
/// until the message is released). The header is checked against the message's length
/// before anything is written.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_INVALID_ARGUMENT` (the message carries no array header:
/// its `SHMB_MESSAGE_ARRAY` flag is clear; or it is not held by this reader), and what a
/// header that does not add up gives, naming the channel and the message's sequence number:
/// `SHMB_BAD_MAGIC`, `SHMB_UNSUPPORTED_VERSION`, `SHMB_UNSUPPORTED` (too many dimensions, an
/// unknown element type), `SHMB_CORRUPT_HEADER`, `SHMB_TRUNCATED`.
///
/// # Safety
///
/// `reader` is NULL or a live handle; `msg` is NULL or points to a `shmb_channel_message`;
/// `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_channel_message_array(
    reader: *const shmb_channel_reader,
    msg: *const shmb_channel_message,
    out: *mut shmb_array_info,
) -> shmb_result {
    const F: &str = "shmb_channel_message_array";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let r = arg!(ref_arg(reader, F, "reader"))?;
        let msg = arg!(ref_arg(msg, F, "msg"))?;
        let name = r.inner.framed().name();
        let held = r
            .held
            .iter()
            .find(|h| h.slot == msg.slot && h.seq == msg.seq)
            .ok_or_else(|| {
                FfiError::new(
                    shmb_result::SHMB_INVALID_ARGUMENT,
                    format!(
                        "{F}: channel {name:?}: message {} (slot {}) is not held by this reader \
                         (released already?)",
                        msg.seq, msg.slot
                    ),
                )
            })?;
        // SAFETY: the reader holds the message (found among its held ones), so its bytes stay
        // mapped and unreused for this call.
        let header = unsafe { received_header(held, name) }?;
        // SAFETY: the data area lies inside the message (the header was checked against its
        // length), which lies in the mapping.
        let data = unsafe { held.as_ptr().add(header.data_offset() as usize) };
        arg!(write_out(out, info_of(&header, data.cast_mut())));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shmbridge::array::MAX_NDIM;

    #[test]
    fn dtype_codes_are_the_headers_kind_and_bits_and_unknown_ones_are_refused() {
        assert_eq!(SHMB_MAX_NDIM, MAX_NDIM);
        let named = [
            (SHMB_DTYPE_BOOL, DType::Bool),
            (SHMB_DTYPE_INT8, DType::Int8),
            (SHMB_DTYPE_INT16, DType::Int16),
            (SHMB_DTYPE_INT32, DType::Int32),
            (SHMB_DTYPE_INT64, DType::Int64),
            (SHMB_DTYPE_UINT8, DType::UInt8),
            (SHMB_DTYPE_UINT16, DType::UInt16),
            (SHMB_DTYPE_UINT32, DType::UInt32),
            (SHMB_DTYPE_UINT64, DType::UInt64),
            (SHMB_DTYPE_FLOAT16, DType::Float16),
            (SHMB_DTYPE_FLOAT32, DType::Float32),
            (SHMB_DTYPE_FLOAT64, DType::Float64),
            (SHMB_DTYPE_COMPLEX64, DType::Complex64),
            (SHMB_DTYPE_COMPLEX128, DType::Complex128),
        ];
        assert_eq!(named.len(), DType::ALL.len());
        for (code, d) in named {
            assert_eq!(args::dtype_code(d), code, "{d}");
            assert_eq!(args::dtype("t", code).unwrap(), d);
            assert_eq!(shmb_dtype_itemsize(code), d.itemsize());
            // SAFETY: shmb_dtype_name returns a static C string for a known code.
            let n = unsafe { std::ffi::CStr::from_ptr(shmb_dtype_name(code)) };
            assert_eq!(n.to_str().unwrap(), d.name());
        }
        for bad in [0, 0x6621, 0x7808, 0x1_6620, u32::MAX] {
            let e = args::dtype("t", bad).unwrap_err();
            assert_eq!(e.code, shmb_result::SHMB_INVALID_ARGUMENT);
            assert!(e.message.contains("unknown dtype code"), "{}", e.message);
            assert_eq!(shmb_dtype_itemsize(bad), 0);
            assert!(shmb_dtype_name(bad).is_null());
        }
        assert_eq!(SHMB_KIND_ARRAY, shmbridge::Kind::Array.code());
        assert!(args::order("t", 2).is_err());
    }
}
