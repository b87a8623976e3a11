//! DLPack export: an array as a `DLManagedTensor` (legacy, capsule `"dltensor"`) or a
//! `DLManagedTensorVersioned` (DLPack 1.x, capsule `"dltensor_versioned"`), laid out as in
//! `dlpack.h`, for numpy, `torch`, `jax`, `cupy`, ... to take without a copy.
//!
//! The structures are `#[repr(C)]` copies of `dlpack.h` (version 1.0; the layout up to
//! `flags` is frozen by DLPack for every 1.x). Strides are in elements, as DLPack counts
//! them; the array header's rule that byte strides are multiples of the element size makes
//! that exact.

use std::ffi::c_void;

use super::header::ArrayHeader;

/// `kDLCPU`: the device type of host memory.
pub const KDL_CPU: i32 = 1;
/// The DLPack version of the versioned structure this module fills.
pub const VERSION: DLPackVersion = DLPackVersion { major: 1, minor: 0 };
/// `DLPACK_FLAG_BITMASK_READ_ONLY`: the consumer must not write the data.
pub const FLAG_READ_ONLY: u64 = 1 << 0;
/// `DLPACK_FLAG_BITMASK_IS_COPIED`: the data is a copy the consumer owns alone.
pub const FLAG_IS_COPIED: u64 = 1 << 1;

/// `DLDevice`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct DLDevice {
    /// `DLDeviceType` (`kDLCPU` = 1).
    pub device_type: i32,
    /// Device number (0 for the CPU).
    pub device_id: i32,
}

/// `DLDataType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct DLDataType {
    /// `DLDataTypeCode`: 0 int, 1 uint, 2 float, 5 complex, 6 bool.
    pub code: u8,
    /// Bits per lane.
    pub bits: u8,
    /// Lanes (1: not a vector type).
    pub lanes: u16,
}

/// `DLTensor`.
#[derive(Debug)]
#[repr(C)]
pub struct DLTensor {
    /// The data: element `(0, ..., 0)` here (`byte_offset` is 0).
    pub data: *mut c_void,
    /// Where the data is.
    pub device: DLDevice,
    /// Number of dimensions.
    pub ndim: i32,
    /// Element type.
    pub dtype: DLDataType,
    /// `ndim` extents.
    pub shape: *mut i64,
    /// `ndim` strides, in elements (never null: DLPack 1.2 requires them).
    pub strides: *mut i64,
    /// Bytes from `data` to element `(0, ..., 0)`.
    pub byte_offset: u64,
}

/// `DLManagedTensor` (the legacy, unversioned structure).
#[derive(Debug)]
#[repr(C)]
pub struct DLManagedTensor {
    /// The tensor.
    pub dl_tensor: DLTensor,
    /// The producer's context.
    pub manager_ctx: *mut c_void,
    /// Frees everything, this structure included; the consumer calls it once.
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// `DLPackVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct DLPackVersion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

/// `DLManagedTensorVersioned` (DLPack 1.x).
#[derive(Debug)]
#[repr(C)]
pub struct DLManagedTensorVersioned {
    /// The DLPack version of this structure.
    pub version: DLPackVersion,
    /// The producer's context.
    pub manager_ctx: *mut c_void,
    /// Frees everything, this structure included; the consumer calls it once.
    pub deleter: Option<unsafe extern "C" fn(*mut DLManagedTensorVersioned)>,
    /// `FLAG_READ_ONLY`, `FLAG_IS_COPIED`.
    pub flags: u64,
    /// The tensor.
    pub dl_tensor: DLTensor,
}

/// A managed tensor and what it points into, freed together by the deleter. The managed
/// structure comes first, so a pointer to it is a pointer to the holder.
#[repr(C)]
struct Holder<M> {
    managed: M,
    shape: Box<[i64]>,
    strides: Box<[i64]>,
    _owner: Box<dyn Send>,
}

/// The two managed structures: where their context pointer and their tensor are.
trait Managed {
    fn parts(&mut self) -> (&mut *mut c_void, &mut DLTensor);
}

impl Managed for DLManagedTensor {
    fn parts(&mut self) -> (&mut *mut c_void, &mut DLTensor) {
        (&mut self.manager_ctx, &mut self.dl_tensor)
    }
}

impl Managed for DLManagedTensorVersioned {
    fn parts(&mut self) -> (&mut *mut c_void, &mut DLTensor) {
        (&mut self.manager_ctx, &mut self.dl_tensor)
    }
}

/// Box `managed` with its shape, strides and `owner`, then point its tensor at the shape and
/// strides and its `manager_ctx` at the box: only once the box is in place, since moving a
/// `Box` invalidates pointers taken into it before (Stacked Borrows; Miri checks it).
fn hold<M: Managed>(managed: M, header: &ArrayHeader, owner: Box<dyn Send>) -> *mut M {
    let (shape, strides) = dims(header);
    let holder = Box::into_raw(Box::new(Holder {
        managed,
        shape,
        strides,
        _owner: owner,
    }));
    // SAFETY: `holder` is a fresh, valid allocation that nothing else refers to yet; the
    // borrows of its fields are disjoint and end here, and the pointers they leave in the
    // tensor stay valid until the deleter frees the holder.
    unsafe {
        let h = &mut *holder;
        let (ctx, tensor) = h.managed.parts();
        *ctx = holder.cast();
        tensor.shape = h.shape.as_mut_ptr();
        tensor.strides = h.strides.as_mut_ptr();
    }
    holder.cast()
}

/// The tensor of `header` at `first`; `hold` fills in its shape and strides.
fn tensor(header: &ArrayHeader, first: *mut u8) -> DLTensor {
    let (code, bits, lanes) = header.dtype().dlpack();
    DLTensor {
        data: first.cast(),
        device: DLDevice {
            device_type: KDL_CPU,
            device_id: 0,
        },
        ndim: i32::try_from(header.ndim()).unwrap_or(i32::MAX), // at most 32
        dtype: DLDataType { code, bits, lanes },
        shape: std::ptr::null_mut(),
        strides: std::ptr::null_mut(),
        byte_offset: 0,
    }
}

/// Shape and element strides of a validated header (shape entries are below 2^63, byte
/// strides multiples of the element size).
#[allow(clippy::cast_possible_wrap)] // validated: below 2^63
fn dims(header: &ArrayHeader) -> (Box<[i64]>, Box<[i64]>) {
    let itemsize = header.itemsize() as i64;
    let shape = header.shape().iter().map(|&d| d as i64).collect();
    let strides = header.strides().iter().map(|&s| s / itemsize).collect();
    (shape, strides)
}

unsafe extern "C" fn delete_legacy(m: *mut DLManagedTensor) {
    if !m.is_null() {
        // SAFETY: `m` came from Box::into_raw of a Holder<DLManagedTensor> in export_legacy
        // (the managed structure is its first field) and the consumer calls this once.
        drop(unsafe { Box::from_raw(m.cast::<Holder<DLManagedTensor>>()) });
    }
}

unsafe extern "C" fn delete_versioned(m: *mut DLManagedTensorVersioned) {
    if !m.is_null() {
        // SAFETY: as in delete_legacy, for export_versioned's holder.
        drop(unsafe { Box::from_raw(m.cast::<Holder<DLManagedTensorVersioned>>()) });
    }
}

/// A legacy `DLManagedTensor` for the array `header` describes, whose element `(0, ..., 0)`
/// is at `first`. `owner` keeps the memory alive and is dropped by the deleter (from any
/// thread). The caller hands the pointer to a consumer, which calls its deleter once.
///
/// # Safety
///
/// `first` points to element `(0, ..., 0)` of memory laid out as `header` says (so every
/// element is at `first + sum(index * stride)`), valid for reads and writes for as long as
/// `owner` lives. (The legacy structure cannot say "read-only": a consumer may write.)
#[must_use]
pub unsafe fn export_legacy(
    header: &ArrayHeader,
    first: *mut u8,
    owner: Box<dyn Send>,
) -> *mut DLManagedTensor {
    let managed = DLManagedTensor {
        dl_tensor: tensor(header, first),
        manager_ctx: std::ptr::null_mut(),
        deleter: Some(delete_legacy),
    };
    hold(managed, header, owner)
}

/// A `DLManagedTensorVersioned` (version [`VERSION`]) with `flags`; otherwise as
/// [`export_legacy`].
///
/// # Safety
///
/// As [`export_legacy`], except that with [`FLAG_READ_ONLY`] in `flags` the memory need only
/// be valid for reads.
#[must_use]
pub unsafe fn export_versioned(
    header: &ArrayHeader,
    first: *mut u8,
    owner: Box<dyn Send>,
    flags: u64,
) -> *mut DLManagedTensorVersioned {
    let managed = DLManagedTensorVersioned {
        version: VERSION,
        manager_ctx: std::ptr::null_mut(),
        deleter: Some(delete_versioned),
        flags,
        dl_tensor: tensor(header, first),
    };
    hold(managed, header, owner)
}

#[cfg(test)]
mod tests {
    use super::super::{DType, Order};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(Arc<AtomicUsize>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn layouts_match_dlpack_h() {
        // dlpack.h on LP64: DLTensor 48 bytes, DLManagedTensor 64, versioned 80 with
        // dl_tensor at 32.
        assert_eq!(std::mem::size_of::<DLTensor>(), 48);
        assert_eq!(std::mem::size_of::<DLManagedTensor>(), 64);
        assert_eq!(std::mem::size_of::<DLManagedTensorVersioned>(), 80);
        assert_eq!(std::mem::offset_of!(DLManagedTensorVersioned, flags), 24);
        assert_eq!(
            std::mem::offset_of!(DLManagedTensorVersioned, dl_tensor),
            32
        );
        assert_eq!(std::mem::offset_of!(DLTensor, shape), 24);
        assert_eq!(std::mem::offset_of!(DLTensor, byte_offset), 40);
    }

    #[test]
    fn exports_shape_strides_in_elements_and_frees_once() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let h = ArrayHeader::with_layout(DType::Float64, &[3, 2], &[8, 24], 0, 48).unwrap();
        let mut data = [0f64; 6];
        // SAFETY: `data` outlives the export (the deleter runs below).
        let m = unsafe {
            export_versioned(
                &h,
                data.as_mut_ptr().cast(),
                Box::new(Count(dropped.clone())),
                FLAG_READ_ONLY,
            )
        };
        // SAFETY: m is the fresh export; the shape/strides arrays have ndim entries.
        unsafe {
            let t = &(*m).dl_tensor;
            assert_eq!((*m).version, VERSION);
            assert_eq!((*m).flags, FLAG_READ_ONLY);
            assert_eq!(t.ndim, 2);
            assert_eq!(
                t.dtype,
                DLDataType {
                    code: 2,
                    bits: 64,
                    lanes: 1
                }
            );
            assert_eq!(t.device.device_type, KDL_CPU);
            assert_eq!(std::slice::from_raw_parts(t.shape, 2), &[3, 2]);
            assert_eq!(std::slice::from_raw_parts(t.strides, 2), &[1, 3]);
            assert_eq!(t.data, data.as_mut_ptr().cast());
            assert_eq!(dropped.load(Ordering::SeqCst), 0);
            ((*m).deleter.unwrap())(m);
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 1);

        let h = ArrayHeader::new(DType::Bool, &[], Order::C).unwrap();
        let mut byte = [1u8];
        // SAFETY: as above.
        let m = unsafe { export_legacy(&h, byte.as_mut_ptr(), Box::new(Count(dropped.clone()))) };
        // SAFETY: m is the fresh export.
        unsafe {
            assert_eq!((*m).dl_tensor.ndim, 0);
            assert_eq!((*m).dl_tensor.dtype.code, 6);
            assert_eq!((*m).manager_ctx, m.cast());
            ((*m).deleter.unwrap())(m);
        }
        assert_eq!(dropped.load(Ordering::SeqCst), 2);
    }
}
