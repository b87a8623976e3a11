//! Everything an export does with its arguments, in one place: borrowing pointers and handles,
//! checking them for NULL, converting the ABI's numbers (open mode, access, permissions,
//! timeout, transfer, owner) into the core's types, and writing outputs.
//!
//! # The one safety argument
//!
//! Every export states in its `# Safety` section what each pointer argument must be: NULL, or
//! valid for what its documentation names (a NUL-terminated string, a live handle, `len`
//! readable bytes, a writable output) for the duration of the call, and handles not used by
//! another thread meanwhile. The unsafe helpers below ask exactly that of the pointer they
//! are given, nothing more, each in its own `# Safety`. So an export that hands one of its own
//! pointer arguments to a helper meets the helper's contract by its own: that is the whole
//! reason, and [`arg!`] states it once instead of at every call. A block that needs more (a
//! callback, a pointer the library made itself) carries its own `// SAFETY:` reason.
//!
//! Outputs are written only on success: an export checks an output pointer first (so that a
//! NULL output fails before anything happens) with [`out_arg`], and writes it last with
//! [`write_out`] or [`give`]; optional outputs (NULL: not wanted) with [`put`].

use std::ffi::{c_char, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::time::Duration;

use shmbridge::{
    Access, FramedOptions, MapAccess, OpenMode, OwnerPolicy, SegmentOptions, TransferMode,
};

use shmbridge::array::{ArrayHeader, DType, Order, MAX_NDIM};

use crate::array::{shmb_dtype, shmb_order, SHMB_ORDER_C, SHMB_ORDER_F};
use crate::error::{shmb_result, FfiError, FfiResult};
use crate::transfer::{
    shmb_transfer_mode, SHMB_OWNER_ANY, SHMB_OWNER_SELF, SHMB_TRANSFER_AUTO,
    SHMB_TRANSFER_ONE_SHOT, SHMB_TRANSFER_STREAM,
};
use crate::wait::{shmb_wait, CWait, SHMB_TIMEOUT_FOREVER};
use crate::{
    shmb_access, shmb_open_mode, SHMB_COPY_ON_WRITE, SHMB_CREATE_ONLY, SHMB_OPEN_ONLY,
    SHMB_OPEN_OR_CREATE, SHMB_PERM_DEFAULT, SHMB_READ_ONLY, SHMB_READ_WRITE,
};

/// Call an unsafe argument helper (one of this module's, or an export's own body taking the
/// same arguments) on an export's own pointer arguments.
///
/// The helper's `# Safety` asks of each pointer only what the export's `# Safety` already
/// promises of it (see the module documentation), so the call is sound wherever an export
/// passes its own arguments through unchanged. Not for anything else.
macro_rules! arg {
    ($($f:ident)::+ ( $($a:expr),* $(,)? )) => {
        // SAFETY: the pointers are the calling export's own arguments, which its `# Safety`
        // section promises are what this helper's `# Safety` asks (crate::args).
        unsafe { $($f)::+($($a),*) }
    };
}
pub(crate) use arg;

// ---------------------------------------------------------------------------------------------
// Pointers and handles.

/// Borrow a C string argument as UTF-8. NULL is `SHMB_NULL_ARGUMENT`; text that is not UTF-8
/// is `bad_utf8`.
///
/// # Safety
///
/// `p` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(
    p: *const c_char,
    func: &str,
    what: &str,
    bad_utf8: shmb_result,
) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(FfiError::null(func, what));
    }
    // SAFETY: non-NULL, and NUL-terminated and alive for 'a by this function's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|_| {
        FfiError::new(
            bad_utf8,
            format!("{func}: `{what}` is not valid UTF-8: {c:?}"),
        )
    })
}

/// Borrow a segment name argument (`name`): NULL is `SHMB_NULL_ARGUMENT`, text that is not
/// UTF-8 `SHMB_INVALID_NAME`.
///
/// # Safety
///
/// As [`str_arg`].
pub(crate) unsafe fn name_arg<'a>(p: *const c_char, func: &str) -> FfiResult<&'a str> {
    // SAFETY: this function's contract is str_arg's.
    unsafe { str_arg(p, func, "name", shmb_result::SHMB_INVALID_NAME) }
}

/// Borrow a file path argument (`path`, any bytes but NUL). NULL is `SHMB_NULL_ARGUMENT`, the
/// empty string `SHMB_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn path_arg<'a>(p: *const c_char, func: &str) -> FfiResult<&'a Path> {
    if p.is_null() {
        return Err(FfiError::null(func, "path"));
    }
    // SAFETY: non-NULL, and NUL-terminated and alive for 'a by this function's contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(FfiError::new(
            shmb_result::SHMB_INVALID_ARGUMENT,
            format!("{func}: the path is empty"),
        ));
    }
    Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
}

/// Borrow `*p` (a handle or an options struct), or fail with `SHMB_NULL_ARGUMENT`.
///
/// # Safety
///
/// `p` is NULL or points to a live `T` that outlives `'a` and is not mutated meanwhile.
pub(crate) unsafe fn ref_arg<'a, T>(p: *const T, func: &str, what: &str) -> FfiResult<&'a T> {
    // SAFETY: NULL or valid for 'a by this function's contract.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(func, what))
}

/// Borrow `*p` mutably (a handle), or fail with `SHMB_NULL_ARGUMENT`.
///
/// # Safety
///
/// `p` is NULL or points to a live `T` that outlives `'a` and is not used elsewhere meanwhile.
pub(crate) unsafe fn mut_arg<'a, T>(p: *mut T, func: &str, what: &str) -> FfiResult<&'a mut T> {
    // SAFETY: NULL or valid and unaliased for 'a by this function's contract.
    unsafe { p.as_mut() }.ok_or_else(|| FfiError::null(func, what))
}

/// Borrow `*p` when it is not NULL: the accessors (NULL handle: a neutral answer) and the
/// optional options structs (NULL: the defaults).
///
/// # Safety
///
/// As [`ref_arg`].
pub(crate) unsafe fn opt_ref<'a, T>(p: *const T) -> Option<&'a T> {
    // SAFETY: NULL or valid for 'a by this function's contract.
    unsafe { p.as_ref() }
}

/// Borrow `*p` mutably when it is not NULL.
///
/// # Safety
///
/// As [`mut_arg`].
pub(crate) unsafe fn opt_mut<'a, T>(p: *mut T) -> Option<&'a mut T> {
    // SAFETY: NULL or valid and unaliased for 'a by this function's contract.
    unsafe { p.as_mut() }
}

/// An options struct, or its defaults when `p` is NULL.
///
/// # Safety
///
/// `p` is NULL or points to a `T`.
pub(crate) unsafe fn opts_arg<T: Copy + Default>(p: *const T) -> T {
    // SAFETY: NULL or valid by this function's contract.
    unsafe { p.as_ref() }.copied().unwrap_or_default()
}

/// The `shmb_wait` argument, checked (NULL: no limit, no interrupt).
///
/// # Safety
///
/// `p` is NULL or points to a `shmb_wait`.
pub(crate) unsafe fn wait_arg(p: *const shmb_wait, func: &str) -> FfiResult<CWait> {
    // SAFETY: NULL or valid by this function's contract.
    CWait::new(&unsafe { opts_arg(p) }, func)
}

/// Borrow a byte buffer argument of `len` bytes; NULL is allowed only for an empty buffer.
///
/// # Safety
///
/// `p` is NULL or valid for reads of `len` bytes for `'a`.
pub(crate) unsafe fn bytes_arg<'a>(
    p: *const c_void,
    len: usize,
    func: &str,
    what: &str,
) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::null(func, what));
    }
    // SAFETY: non-NULL, and `len` readable bytes for 'a by this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) })
}

/// Borrow a writable byte buffer argument of `len` bytes; NULL is allowed only for an empty
/// buffer.
///
/// # Safety
///
/// `p` is NULL or valid for writes of `len` bytes for `'a`, and not aliased meanwhile (not
/// part of a mapping the call reads).
pub(crate) unsafe fn bytes_out<'a>(
    p: *mut c_void,
    len: usize,
    func: &str,
    what: &str,
) -> FfiResult<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if p.is_null() {
        return Err(FfiError::null(func, what));
    }
    // SAFETY: non-NULL, and `len` writable, unaliased bytes for 'a by this function's contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), len) })
}

/// Borrow an array argument of `len` elements (`T`: `u64` shape entries, `i64` strides);
/// NULL is allowed only for an empty array.
///
/// # Safety
///
/// `p` is NULL or valid for reads of `len` `T`s for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    p: *const T,
    len: usize,
    func: &str,
    what: &str,
) -> FfiResult<&'a [T]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::null(func, what));
    }
    // SAFETY: non-NULL, and `len` readable `T`s for 'a by this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The layout arguments of a new array (`dtype`, `ndim`, `shape`, `strides` or `order`) as a
/// validated header: `ndim` is checked (at most `SHMB_MAX_NDIM`) before `shape` and `strides`
/// are read; NULL `strides` is contiguous in `order` (checked either way).
///
/// # Safety
///
/// `shape` is NULL or valid for reads of `ndim` `u64`s; `strides` is NULL or valid for reads
/// of `ndim` `i64`s.
pub(crate) unsafe fn array_layout_arg(
    func: &str,
    about: &str,
    dtype_code: shmb_dtype,
    ndim: usize,
    shape: *const u64,
    strides: *const i64,
    order_code: shmb_order,
) -> FfiResult<ArrayHeader> {
    let named = |e: FfiError| {
        let detail = e
            .message
            .strip_prefix(&format!("{func}: "))
            .unwrap_or(&e.message);
        FfiError::new(e.code, format!("{func}: {about}: {detail}"))
    };
    let dtype = dtype(func, dtype_code).map_err(named)?;
    let order = order(func, order_code).map_err(named)?;
    if ndim > MAX_NDIM {
        return Err(named(invalid(
            func,
            &format!("ndim {ndim} is more than the {MAX_NDIM} dimensions an array may have"),
        )));
    }
    // SAFETY: this function's contract.
    let shape = unsafe { slice_arg(shape, ndim, func, "shape") }?;
    let header = if strides.is_null() {
        ArrayHeader::new(dtype, shape, order)
    } else {
        // SAFETY: this function's contract.
        let strides = unsafe { slice_arg(strides, ndim, func, "strides") }?;
        ArrayHeader::with_strides(dtype, shape, strides)
    };
    header.map_err(|e| named(invalid(func, e.detail())))
}

// ---------------------------------------------------------------------------------------------
// Outputs: written only on success.

/// Check an output pointer before doing any work, so a call with a NULL output has no effect.
pub(crate) fn out_arg<T>(p: *mut T, func: &str, what: &str) -> FfiResult<*mut T> {
    if p.is_null() {
        Err(FfiError::null(func, what))
    } else {
        Ok(p)
    }
}

/// Write `value` to the output `out` (checked non-NULL by [`out_arg`]).
///
/// # Safety
///
/// `out` is valid for a write of a `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    // SAFETY: valid for a write by this function's contract.
    unsafe { out.write(value) };
}

/// Write `value` to the optional output `out`; nothing when `out` is NULL.
///
/// # Safety
///
/// `out` is NULL or valid for a write of a `T`.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL, so valid for a write by this function's contract.
        unsafe { out.write(value) };
    }
}

/// Hand a new object to C through `out` (checked non-NULL by [`out_arg`]); it is released by
/// [`take`].
///
/// # Safety
///
/// `out` is valid for a write.
pub(crate) unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: valid for a write by this function's contract.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
}

/// Release an object handed out by [`give`]; NULL is a no-op.
///
/// # Safety
///
/// `p` is NULL or came from [`give`] and was not released yet.
pub(crate) unsafe fn take<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: came from Box::into_raw in `give` and is released only once, by contract.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// Report a length into `out_len` and fail with `SHMB_BUFFER_TOO_SMALL` when it is more
/// than the caller's `cap`: the one case where an output is written on failure (the length
/// needed, as with `snprintf`).
///
/// # Safety
///
/// `out_len` is valid for a write (checked non-NULL by [`out_arg`]).
pub(crate) unsafe fn len_out(
    out_len: *mut usize,
    len: usize,
    cap: usize,
    func: &str,
    what: &str,
) -> FfiResult {
    // SAFETY: valid for a write by this function's contract.
    unsafe { write_out(out_len, len) };
    if len > cap {
        return Err(FfiError::new(
            shmb_result::SHMB_BUFFER_TOO_SMALL,
            format!("{func}: {what} is {len} bytes but the buffer holds {cap}"),
        ));
    }
    Ok(())
}

/// A C string copy of `s` (interior NULs, impossible for validated names, become `?`).
pub(crate) fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The ABI's numbers as the core's types.

fn invalid(func: &str, detail: &str) -> FfiError {
    FfiError::new(
        shmb_result::SHMB_INVALID_ARGUMENT,
        format!("{func}: {detail}"),
    )
}

/// A `shmb_open_mode` (Boost's words).
pub(crate) fn open_mode(func: &str, mode: shmb_open_mode) -> FfiResult<OpenMode> {
    match mode {
        SHMB_CREATE_ONLY => Ok(OpenMode::CreateOnly),
        SHMB_OPEN_ONLY => Ok(OpenMode::OpenOnly),
        SHMB_OPEN_OR_CREATE => Ok(OpenMode::OpenOrCreate),
        other => Err(invalid(func, &format!("unknown open mode {other} (expected SHMB_CREATE_ONLY, SHMB_OPEN_ONLY or SHMB_OPEN_OR_CREATE)"))),
    }
}

/// A `shmb_access` of a named object (read-only or read-write).
pub(crate) fn access(func: &str, access: shmb_access) -> FfiResult<Access> {
    match access {
        SHMB_READ_ONLY => Ok(Access::ReadOnly),
        SHMB_READ_WRITE => Ok(Access::ReadWrite),
        other => Err(invalid(
            func,
            &format!("unknown access {other} (expected SHMB_READ_ONLY or SHMB_READ_WRITE)"),
        )),
    }
}

/// The `shmb_access` of a core access.
pub(crate) fn access_code(access: Access) -> shmb_access {
    match access {
        Access::ReadOnly => SHMB_READ_ONLY,
        Access::ReadWrite => SHMB_READ_WRITE,
    }
}

/// A `shmb_access` of a mapping (read-only, read-write, copy-on-write).
pub(crate) fn map_access(func: &str, access: shmb_access) -> FfiResult<MapAccess> {
    match access {
        SHMB_READ_ONLY => Ok(MapAccess::ReadOnly),
        SHMB_READ_WRITE => Ok(MapAccess::ReadWrite),
        SHMB_COPY_ON_WRITE => Ok(MapAccess::CopyOnWrite),
        other => Err(invalid(func, &format!("unknown access {other} (expected SHMB_READ_ONLY, SHMB_READ_WRITE or SHMB_COPY_ON_WRITE)"))),
    }
}

/// Permission bits: `SHMB_PERM_DEFAULT` is the core's default.
pub(crate) fn permissions(perm: u32) -> Option<u32> {
    (perm != SHMB_PERM_DEFAULT).then_some(perm)
}

/// The options of a new framed segment (stream, channel, message) with permission bits `perm`.
pub(crate) fn framed_options(perm: u32) -> FramedOptions {
    FramedOptions {
        segment: SegmentOptions {
            permissions: permissions(perm),
            ..SegmentOptions::default()
        },
    }
}

/// A `timeout_ms` as the core takes it: `SHMB_TIMEOUT_FOREVER` is no limit; other negative
/// values are `SHMB_INVALID_ARGUMENT`.
pub(crate) fn timeout(func: &str, timeout_ms: i64) -> FfiResult<Option<Duration>> {
    match timeout_ms {
        SHMB_TIMEOUT_FOREVER => Ok(None),
        ms => u64::try_from(ms).map(|ms| Some(Duration::from_millis(ms))).map_err(|_| {
            invalid(func, &format!("invalid timeout_ms {ms}: give a number of milliseconds (0 or more) or SHMB_TIMEOUT_FOREVER"))
        }),
    }
}

/// A `shmb_transfer_mode` (how a file travels).
pub(crate) fn transfer(func: &str, mode: shmb_transfer_mode) -> FfiResult<TransferMode> {
    match mode {
        SHMB_TRANSFER_AUTO => Ok(TransferMode::Auto),
        SHMB_TRANSFER_ONE_SHOT => Ok(TransferMode::OneShot),
        SHMB_TRANSFER_STREAM => Ok(TransferMode::Stream),
        other => Err(invalid(func, &format!("unknown transfer mode {other} (expected SHMB_TRANSFER_AUTO, SHMB_TRANSFER_ONE_SHOT or SHMB_TRANSFER_STREAM)"))),
    }
}

/// The `shmb_transfer_mode` of a core transfer mode.
pub(crate) fn transfer_code(mode: TransferMode) -> shmb_transfer_mode {
    match mode {
        TransferMode::Stream => SHMB_TRANSFER_STREAM,
        TransferMode::OneShot => SHMB_TRANSFER_ONE_SHOT,
        TransferMode::Auto => SHMB_TRANSFER_AUTO,
    }
}

/// The core's owner policy for an `allow_owner` value: `SHMB_OWNER_SELF`, `SHMB_OWNER_ANY`,
/// or a user id (0 to 2^32-1) accepted besides this process's own.
pub(crate) fn owner_policy(func: &str, allow_owner: i64) -> FfiResult<OwnerPolicy> {
    match allow_owner {
        SHMB_OWNER_SELF => Ok(OwnerPolicy::SameUser),
        SHMB_OWNER_ANY => Ok(OwnerPolicy::Any),
        uid => u32::try_from(uid)
            .map(|u| OwnerPolicy::Allow(vec![u]))
            .map_err(|_| {
                invalid(func, &format!("allow_owner {uid} is not a user id, SHMB_OWNER_SELF (-1) or SHMB_OWNER_ANY (-2)"))
            }),
    }
}

/// A `shmb_dtype` (`SHMB_DTYPE_*`: the header's kind letter and bits).
pub(crate) fn dtype(func: &str, code: shmb_dtype) -> FfiResult<DType> {
    let kind = u8::try_from(code >> 8).unwrap_or(0);
    let bits = (code & 0xff) as u8;
    DType::from_code(kind, bits).ok_or_else(|| {
        invalid(
            func,
            &format!("unknown dtype code {code:#06x} (expected one of the SHMB_DTYPE_* codes, such as SHMB_DTYPE_FLOAT32 = 0x6620)"),
        )
    })
}

/// The `shmb_dtype` of a core element type.
pub(crate) fn dtype_code(dtype: DType) -> shmb_dtype {
    (u32::from(dtype.kind() as u8) << 8) | u32::from(dtype.bits())
}

/// A `shmb_order` (`SHMB_ORDER_C`, `SHMB_ORDER_F`).
pub(crate) fn order(func: &str, code: shmb_order) -> FfiResult<Order> {
    match code {
        SHMB_ORDER_C => Ok(Order::C),
        SHMB_ORDER_F => Ok(Order::F),
        other => Err(invalid(
            func,
            &format!("unknown order {other} (expected SHMB_ORDER_C or SHMB_ORDER_F)"),
        )),
    }
}

/// `SHMB_CLOSED`: a handle used after it was finished or aborted.
pub(crate) fn closed(func: &str, what: &str) -> FfiError {
    FfiError::new(
        shmb_result::SHMB_CLOSED,
        format!("{func}: the {what} was already finished or aborted"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_both_ways_and_unknown_ones_are_refused() {
        for mode in [
            TransferMode::Auto,
            TransferMode::OneShot,
            TransferMode::Stream,
        ] {
            assert_eq!(transfer("t", transfer_code(mode)).unwrap(), mode);
        }
        for a in [Access::ReadOnly, Access::ReadWrite] {
            assert_eq!(access("t", access_code(a)).unwrap(), a);
        }
        let e = transfer("t", 9).unwrap_err();
        assert_eq!(e.code, shmb_result::SHMB_INVALID_ARGUMENT);
        assert!(
            e.message.contains("unknown transfer mode 9"),
            "{}",
            e.message
        );
        assert_eq!(timeout("t", -1).unwrap(), None);
        assert_eq!(timeout("t", 5).unwrap(), Some(Duration::from_millis(5)));
        assert!(timeout("t", -2).is_err());
        assert!(open_mode("t", 0).is_err());
        assert!(map_access("t", 4).is_err());
        assert!(owner_policy("t", -3).is_err());
        assert_eq!(permissions(SHMB_PERM_DEFAULT), None);
        assert_eq!(permissions(0o640), Some(0o640));
    }

    #[test]
    fn a_length_that_does_not_fit_is_reported_and_refused() {
        let mut n = 0usize;
        // SAFETY: `n` is a live usize, valid for a write.
        let r = unsafe { len_out(&raw mut n, 10, 4, "t", "the payload") };
        assert_eq!(n, 10);
        assert_eq!(r.unwrap_err().code, shmb_result::SHMB_BUFFER_TOO_SMALL);
        // SAFETY: as above.
        unsafe { len_out(&raw mut n, 3, 4, "t", "the payload") }.unwrap();
        assert_eq!(n, 3);
    }
}
