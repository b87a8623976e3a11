//! Listing the named segments of this machine.

use std::ffi::{c_char, CString};

use shmbridge::{Detected, SegmentInfo};

use crate::args::{arg, c_string, give, opt_ref, out_arg, ref_arg, take, write_out};
use crate::error::{guard, guard_value, shmb_result, FfiError};
use crate::framed::shmb_header_info;

/// What the first bytes of a listed segment say it is.
pub type shmb_detected = u32;
/// No framed header: raw bytes, a size-prefixed layout, or another program's data.
pub const SHMB_DETECTED_UNFRAMED: shmb_detected = 0;
/// A valid shmbridge framed header (`shmb_segment_info.header` is filled in).
pub const SHMB_DETECTED_FRAMED: shmb_detected = 1;
/// The framed magic, but a header that does not validate.
pub const SHMB_DETECTED_BAD_FRAMED: shmb_detected = 2;
/// The segment could not be opened to look (another user's 0600 segment, say).
pub const SHMB_DETECTED_UNREADABLE: shmb_detected = 3;

/// One listed segment, filled in by `shmb_list_get()`. `name` is borrowed from the list and
/// valid until the list is freed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_segment_info {
    /// The name, NUL-terminated (borrowed from the list).
    pub name: *const c_char,
    /// Real size in bytes.
    pub size: u64,
    /// Owner's user id.
    pub uid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Last modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// `SHMB_DETECTED_*`.
    pub detected: shmb_detected,
    /// The header, when `detected` is `SHMB_DETECTED_FRAMED`; zeroed otherwise.
    pub header: shmb_header_info,
}

/// A snapshot of the named segments, sorted by name. Created by `shmb_list_segments()`, released by
/// `shmb_list_free()`.
pub struct shmb_list {
    items: Vec<(CString, SegmentInfo)>,
}

/// Take a snapshot of every named segment on this machine (`/dev/shm` on Linux), sorted by name.
///
/// Ownership: on success the caller owns `*out` and releases it with `shmb_list_free()`.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OS` / `SHMB_PERMISSION_DENIED` when the directory
/// cannot be read.
///
/// # Safety
///
/// `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_list_segments(out: *mut *mut shmb_list) -> shmb_result {
    const F: &str = "shmb_list_segments";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let items = shmbridge::list()?
            .into_iter()
            .map(|i| (c_string(&i.name), i))
            .collect();
        arg!(give(out, shmb_list { items }));
        Ok(())
    })
}

/// The number of segments in the list; 0 when `list` is NULL.
///
/// # Safety
///
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn shmb_list_len(list: *const shmb_list) -> usize {
    guard_value(0, || arg!(opt_ref(list)).map_or(0, |l| l.items.len()))
}

/// Fill the caller's `*out` with entry `index` of the list.
///
/// Errors: `SHMB_NULL_ARGUMENT`, `SHMB_OUT_OF_BOUNDS` (`index >= shmb_list_len(list)`).
///
/// # Safety
///
/// `list` is NULL or a live list; `out` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_list_get(
    list: *const shmb_list,
    index: usize,
    out: *mut shmb_segment_info,
) -> shmb_result {
    const F: &str = "shmb_list_get";
    guard(F, || {
        let out = out_arg(out, F, "out")?;
        let l = arg!(ref_arg(list, F, "list"))?;
        let (name, info) = l.items.get(index).ok_or_else(|| {
            FfiError::new(
                shmb_result::SHMB_OUT_OF_BOUNDS,
                format!(
                    "{F}: index {index} is past the end of a list of {}",
                    l.items.len()
                ),
            )
        })?;
        let (detected, header) = match &info.detected {
            Detected::Framed(h) => (SHMB_DETECTED_FRAMED, shmb_header_info::from(h)),
            Detected::BadFramed(_) => (SHMB_DETECTED_BAD_FRAMED, shmb_header_info::default()),
            Detected::Unreadable(_) => (SHMB_DETECTED_UNREADABLE, shmb_header_info::default()),
            Detected::Unframed => (SHMB_DETECTED_UNFRAMED, shmb_header_info::default()),
        };
        let entry = shmb_segment_info {
            name: name.as_ptr(),
            size: info.size,
            uid: info.uid,
            mode: info.mode,
            mtime_ns: i64::try_from(info.mtime_ns).unwrap_or(i64::MAX),
            detected,
            header,
        };
        arg!(write_out(out, entry));
        Ok(())
    })
}

/// Release a list (and the names borrowed from it). NULL is a no-op.
///
/// # Safety
///
/// `list` is NULL or a list from `shmb_list_segments()` not freed yet.
#[no_mangle]
pub unsafe extern "C" fn shmb_list_free(list: *mut shmb_list) {
    guard_value((), || arg!(take(list)));
}
