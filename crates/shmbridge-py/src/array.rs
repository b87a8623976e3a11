//! Typed array views over a mapping: the array header of docs/SPEC.md section 7, validated in
//! place by the core, exported through the buffer protocol (element format, shape, strides)
//! and DLPack.
//!
//! `ArrayView` needs the buffer protocol, which PyO3 offers under the 3.9 stable ABI only
//! from 3.11 (see `exporter`). So the view is two types: `_ArrayViewBase`, an ordinary PyO3
//! class with the state and every method, and `ArrayView`, a subclass built here with
//! `PyType_FromSpecWithBases` that adds the `bf_getbuffer` slot and nothing else (instance
//! layout, constructor and deallocation are the base's).
//!
//! Lifetime: a view owns an `Arc<Region>`; a buffer export holds a reference to the view; a
//! DLPack capsule's deleter owns its own `Arc<Region>`. So `Mapping.close()` with live views,
//! arrays or capsules only drops the mapping's reference, and the memory is unmapped when the
//! last of them goes.

use std::ffi::{c_int, c_void, CStr};
use std::sync::Arc;

use pyo3::exceptions::{PyBufferError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyTuple, PyType};
use shmbridge::array::{self, dlpack, AlignedBuffer, ArrayHeader, DType, Order};
use shmbridge::Region;

use crate::errors::{self, IntoPy};
use crate::exporter::{
    get_buffer, heap_type, PyBufferView, PyBuffer_Release, PYBUF_WRITABLE, PY_BF_GETBUFFER,
};
use crate::mapping::{Mapping, SendPtr, RELEASE_GIL_AT};

// Buffer-protocol request flags (object.h, unchanged since 3.0).
const PYBUF_FORMAT: c_int = 0x0004;
const PYBUF_ND: c_int = 0x0008;
const PYBUF_STRIDES: c_int = 0x0010 | PYBUF_ND;
const PYBUF_C_CONTIGUOUS: c_int = 0x0020 | PYBUF_STRIDES;
const PYBUF_F_CONTIGUOUS: c_int = 0x0040 | PYBUF_STRIDES;
const PYBUF_ANY_CONTIGUOUS: c_int = 0x0080 | PYBUF_STRIDES;
const PYBUF_RECORDS_RO: c_int = PYBUF_STRIDES | PYBUF_FORMAT;

const LEGACY_NAME: &CStr = c"dltensor";
const LEGACY_USED: &CStr = c"used_dltensor";
const VERSIONED_NAME: &CStr = c"dltensor_versioned";
const VERSIONED_USED: &CStr = c"used_dltensor_versioned";

/// The buffer-protocol format of each element type, NUL-terminated, from the core's table.
fn format_of(dtype: DType) -> &'static CStr {
    match dtype.buffer_format() {
        "?" => c"?",
        "b" => c"b",
        "h" => c"h",
        "i" => c"i",
        "q" => c"q",
        "B" => c"B",
        "H" => c"H",
        "I" => c"I",
        "Q" => c"Q",
        "e" => c"e",
        "f" => c"f",
        "d" => c"d",
        "Zf" => c"Zf",
        _ => c"Zd",
    }
}

fn offset_arg(offset: i64) -> PyResult<u64> {
    u64::try_from(offset).map_err(|_| errors::out_of_bounds(format!("negative offset {offset}")))
}

/// The mapping argument: a `Mapping` (a segment's `.mapping`, `map_file`, `anonymous`).
fn region_of(mapping: &Bound<'_, PyAny>) -> PyResult<Arc<Region>> {
    match mapping.cast::<Mapping>() {
        Ok(m) => m.get().region(),
        Err(_) => Err(PyTypeError::new_err(format!(
            "expected a shmbridge Mapping, not {}",
            mapping.get_type().name()?
        ))),
    }
}

/// `numpy.dtype(obj).str`, importing numpy (only for an argument that is a type: a numpy
/// scalar type or a Python one, whose meaning numpy defines).
fn numpy_dtype_str(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    obj.py()
        .import("numpy")?
        .getattr("dtype")?
        .call1((obj,))?
        .getattr("str")?
        .extract()
}

/// A dtype argument: a name or type string (`"float32"`, `"<f4"`), anything with a numpy
/// style `.str` (a `numpy.dtype`) or `.dtype.str` (an array), or a scalar type such as
/// `numpy.uint8` (numpy is imported for that case only).
pub(crate) fn dtype_arg(obj: &Bound<'_, PyAny>) -> PyResult<DType> {
    let text: String = if let Ok(s) = obj.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else if let Ok(s) = obj.getattr("str").and_then(|s| s.extract::<String>()) {
        s
    } else if let Ok(s) = obj
        .getattr("dtype")
        .and_then(|d| d.getattr("str"))
        .and_then(|s| s.extract::<String>())
    {
        s
    } else if let Some(s) = obj
        .cast::<PyType>()
        .ok()
        .and_then(|_| numpy_dtype_str(obj).ok())
    {
        // A scalar type (numpy.uint8, float): numpy says which dtype it means.
        s
    } else {
        return Err(PyTypeError::new_err(format!(
            "dtype must be a string such as \"float32\" or a numpy dtype, not {}",
            obj.get_type().name()?
        )));
    };
    DType::parse(&text).py()
}

pub(crate) fn shape_arg(shape: Vec<i64>) -> PyResult<Vec<u64>> {
    shape
        .iter()
        .map(|&d| {
            u64::try_from(d).map_err(|_| {
                PyValueError::new_err(format!("negative dimension {d} in shape {shape:?}"))
            })
        })
        .collect()
}

pub(crate) fn order_arg(order: &str) -> PyResult<Order> {
    match order {
        "C" | "c" => Ok(Order::C),
        "F" | "f" => Ok(Order::F),
        _ => Err(PyValueError::new_err(format!(
            "order must be \"C\" or \"F\", not {order:?}"
        ))),
    }
}

/// The header described by the arguments of `write_array_header` / `array_size`.
fn header_arg(
    shape: Vec<i64>,
    dtype: &Bound<'_, PyAny>,
    order: &str,
    strides: Option<Vec<i64>>,
) -> PyResult<ArrayHeader> {
    let dtype = dtype_arg(dtype)?;
    let shape = shape_arg(shape)?;
    let order = order_arg(order)?;
    match strides {
        Some(strides) => ArrayHeader::with_strides(dtype, &shape, &strides),
        None => ArrayHeader::new(dtype, &shape, order),
    }
    .py()
}

/// The state and methods of `ArrayView` (the buffer slot is added by the subclass).
#[pyclass(
    module = "shmbridge._native",
    name = "_ArrayViewBase",
    subclass,
    frozen
)]
pub struct ArrayViewBase {
    region: Arc<Region>,
    header: ArrayHeader,
    /// Offset of the header in the mapping.
    offset: u64,
    /// Address of element (0, ..., 0).
    first: usize,
    readonly: bool,
    shape: Box<[ffi::Py_ssize_t]>,
    strides: Box<[ffi::Py_ssize_t]>,
    format: &'static CStr,
}

impl ArrayViewBase {
    fn open(mapping: &Bound<'_, PyAny>, offset: i64, readonly: bool) -> PyResult<Self> {
        array::check_host().py()?;
        let region = region_of(mapping)?;
        let offset = offset_arg(offset)?;
        let header = ArrayHeader::read_from(&region, offset).py()?;
        let to_ssize = |v: i128| {
            ffi::Py_ssize_t::try_from(v)
                .map_err(|_| PyValueError::new_err("the array is too large for this platform"))
        };
        let shape = header
            .shape()
            .iter()
            .map(|&d| to_ssize(i128::from(d)))
            .collect::<PyResult<_>>()?;
        let strides = header
            .strides()
            .iter()
            .map(|&s| to_ssize(i128::from(s)))
            .collect::<PyResult<_>>()?;
        // Validated: the header and its data area lie within the mapping.
        let first = region.as_ptr() as usize + (offset + header.first_element_offset()) as usize;
        Ok(Self {
            readonly: readonly || !region.is_writable(),
            format: format_of(header.dtype()),
            region,
            header,
            offset,
            first,
            shape,
            strides,
        })
    }

    /// A private C-contiguous copy of the elements, 64-byte aligned, and its header.
    fn copy_out(&self, py: Python<'_>) -> PyResult<(ArrayHeader, AlignedBuffer)> {
        let h = &self.header;
        let copy = ArrayHeader::new(h.dtype(), h.shape(), Order::C).py()?;
        let mut buf = AlignedBuffer::zeroed(copy.nbytes() as usize);
        self.region.check_backing().py()?;
        let (src, dst) = (SendPtr(self.first as *mut u8), SendPtr(buf.as_mut_ptr()));
        let run = || {
            // SAFETY: the source layout was validated against the mapping, which self.region
            // keeps alive (and the backing size was checked just above); the destination is
            // a fresh private buffer of exactly the C-order size; they cannot overlap.
            unsafe {
                array::copy_strided(
                    h.shape(),
                    h.itemsize(),
                    src.get(),
                    h.strides(),
                    dst.get(),
                    copy.strides(),
                );
            }
        };
        if buf.len() >= RELEASE_GIL_AT {
            py.detach(run);
        } else {
            run();
        }
        Ok((copy, buf))
    }
}

#[pymethods]
impl ArrayViewBase {
    /// View the array whose header starts at `offset` of `mapping` (a multiple of 64).
    #[new]
    #[pyo3(signature = (mapping, offset = 0, *, readonly = false))]
    fn new(mapping: &Bound<'_, PyAny>, offset: i64, readonly: bool) -> PyResult<Self> {
        Self::open(mapping, offset, readonly)
    }

    /// numpy's type string of the elements: `"<f4"`, `"|b1"`, ...
    #[getter]
    fn dtype(&self) -> &'static str {
        self.header.dtype().typestr()
    }

    /// The shape.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.header.shape())
    }

    /// The strides, in bytes.
    #[getter]
    fn strides<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.header.strides())
    }

    /// Number of dimensions.
    #[getter]
    fn ndim(&self) -> usize {
        self.header.ndim()
    }

    /// Size of one element in bytes.
    #[getter]
    fn itemsize(&self) -> usize {
        self.header.itemsize()
    }

    /// Number of elements.
    #[getter]
    fn size(&self) -> u64 {
        self.header.len()
    }

    /// Size of the elements in bytes.
    #[getter]
    fn nbytes(&self) -> u64 {
        self.header.nbytes()
    }

    /// Whether writes through the view are refused.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// Offset of the header in the mapping.
    #[getter]
    fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset of the data area in the mapping.
    #[getter]
    fn data_offset(&self) -> u64 {
        self.offset + self.header.data_offset()
    }

    /// Whether the elements are C-contiguous.
    #[getter]
    fn c_contiguous(&self) -> bool {
        self.header.is_c_contiguous()
    }

    /// Whether the elements are F-contiguous.
    #[getter]
    fn f_contiguous(&self) -> bool {
        self.header.is_f_contiguous()
    }

    /// The DLPack device: `(1, 0)`, the CPU.
    fn __dlpack_device__(&self) -> (i32, i32) {
        (dlpack::KDL_CPU, 0)
    }

    /// Export as a DLPack capsule, without a copy (unless `copy=True`).
    ///
    /// A consumer that passes `max_version` with a major of at least 1 gets a DLPack 1.x
    /// `"dltensor_versioned"` capsule (read-only views are flagged read-only); others get the
    /// legacy `"dltensor"` capsule, which cannot say "read-only" and is therefore refused for
    /// read-only views. The capsule keeps the mapping alive until its consumer is done.
    #[pyo3(signature = (*, stream = None, max_version = None, dl_device = None, copy = None))]
    fn __dlpack__<'py>(
        &self,
        py: Python<'py>,
        stream: Option<&Bound<'py, PyAny>>,
        max_version: Option<(u32, u32)>,
        dl_device: Option<(i32, i32)>,
        copy: Option<bool>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if stream.is_some() {
            return Err(PyBufferError::new_err(
                "stream must be None: the array is in CPU memory",
            ));
        }
        if let Some(device) = dl_device {
            if device != (dlpack::KDL_CPU, 0) {
                return Err(PyBufferError::new_err(format!(
                    "cannot export to device {device:?}: the array is in CPU memory, device \
                     (1, 0)"
                )));
            }
        }
        let versioned = max_version.is_some_and(|(major, _)| major >= 1);
        let (header, first, owner, flags): (ArrayHeader, *mut u8, Box<dyn Send>, u64) =
            if copy == Some(true) {
                let (header, mut buf) = self.copy_out(py)?;
                let first = buf.as_mut_ptr();
                (header, first, Box::new(buf), dlpack::FLAG_IS_COPIED)
            } else {
                if self.readonly && !versioned {
                    return Err(PyBufferError::new_err(
                        "a read-only array view exports only as a DLPack 1.x capsule, which \
                         can mark it read-only: the consumer must pass max_version=(1, 0) or \
                         later (numpy >= 2.1 does), or ask for copy=True",
                    ));
                }
                let flags = if self.readonly {
                    dlpack::FLAG_READ_ONLY
                } else {
                    0
                };
                (
                    self.header.clone(),
                    self.first as *mut u8,
                    Box::new(Arc::clone(&self.region)),
                    flags,
                )
            };
        // SAFETY: `first` is element (0, ..., 0) of memory laid out as `header` says: the
        // validated mapping (kept mapped by the Arc<Region> owner; writable unless flagged
        // read-only, and legacy exports happen only for writable views) or the private copy
        // (owned by the owner).
        unsafe {
            if versioned {
                let m = dlpack::export_versioned(&header, first, owner, flags);
                capsule(py, m.cast(), VERSIONED_NAME, destroy_versioned, || {
                    if let Some(d) = (*m).deleter {
                        d(m);
                    }
                })
            } else {
                let m = dlpack::export_legacy(&header, first, owner);
                capsule(py, m.cast(), LEGACY_NAME, destroy_legacy, || {
                    if let Some(d) = (*m).deleter {
                        d(m);
                    }
                })
            }
        }
    }

    fn __repr__(&self) -> String {
        let ro = if self.readonly { ", readonly" } else { "" };
        let shape = self
            .header
            .shape()
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>();
        let shape = match shape.len() {
            1 => format!("({},)", shape[0]),
            _ => format!("({})", shape.join(", ")),
        };
        format!(
            "ArrayView({:?}, offset={}, shape={shape}, dtype={:?}{ro})",
            self.region.label(),
            self.offset,
            self.header.dtype().typestr()
        )
    }
}

/// A capsule named `name` around `ptr`; on failure, `free` releases the export.
///
/// # Safety
///
/// `ptr` is a fresh DLPack export that `destructor` knows how to free, and `free` frees it.
unsafe fn capsule<'py>(
    py: Python<'py>,
    ptr: *mut c_void,
    name: &'static CStr,
    destructor: unsafe extern "C" fn(*mut ffi::PyObject),
    free: impl FnOnce(),
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the GIL is held; `name` is static (a capsule keeps a pointer to its name).
    let made = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyCapsule_New(ptr, name.as_ptr(), Some(destructor)))
    };
    if made.is_err() {
        free();
    }
    made
}

/// The destructor of a legacy capsule: frees the export unless a consumer took it (and
/// renamed the capsule `"used_dltensor"`; the consumer then calls the deleter itself).
unsafe extern "C" fn destroy_legacy(capsule: *mut ffi::PyObject) {
    // SAFETY: CPython calls this with the capsule, GIL held. PyCapsule_IsValid sets no
    // exception; the pointer of a capsule still named "dltensor" is our DLManagedTensor,
    // never consumed, so its deleter runs exactly once, here.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, LEGACY_USED.as_ptr()) == 1
            || ffi::PyCapsule_IsValid(capsule, LEGACY_NAME.as_ptr()) != 1
        {
            return;
        }
        let m = ffi::PyCapsule_GetPointer(capsule, LEGACY_NAME.as_ptr())
            .cast::<dlpack::DLManagedTensor>();
        if let Some(deleter) = (*m).deleter {
            deleter(m);
        }
    }
}

/// As [`destroy_legacy`], for `"dltensor_versioned"` capsules.
unsafe extern "C" fn destroy_versioned(capsule: *mut ffi::PyObject) {
    // SAFETY: as in destroy_legacy.
    unsafe {
        if ffi::PyCapsule_IsValid(capsule, VERSIONED_USED.as_ptr()) == 1
            || ffi::PyCapsule_IsValid(capsule, VERSIONED_NAME.as_ptr()) != 1
        {
            return;
        }
        let m = ffi::PyCapsule_GetPointer(capsule, VERSIONED_NAME.as_ptr())
            .cast::<dlpack::DLManagedTensorVersioned>();
        if let Some(deleter) = (*m).deleter {
            deleter(m);
        }
    }
}

/// Set `BufferError(msg)`, clear the view's object, return -1 (a failed `bf_getbuffer`).
unsafe fn buffer_error(view: *mut PyBufferView, msg: &CStr) -> c_int {
    // SAFETY: called from array_getbuffer with its valid view and the GIL held.
    unsafe {
        (*view).obj = std::ptr::null_mut();
        ffi::PyErr_SetString(ffi::PyExc_BufferError, msg.as_ptr());
    }
    -1
}

// itemsize is at most 16 and ndim at most 32: the casts below cannot wrap.
#[allow(clippy::cast_possible_wrap)]
unsafe extern "C" fn array_getbuffer(
    obj: *mut ffi::PyObject,
    view: *mut PyBufferView,
    flags: c_int,
) -> c_int {
    // SAFETY: CPython calls this slot with an instance of ArrayView (a subclass of
    // _ArrayViewBase, laid out as PyO3 lays it out), a valid view to fill, and the GIL held.
    unsafe {
        let py = Python::assume_attached();
        let any = Bound::from_borrowed_ptr(py, obj);
        let Ok(this) = any.cast::<ArrayViewBase>() else {
            return buffer_error(view, c"not an ArrayView");
        };
        let this = this.get();
        let h = &this.header;
        if flags & PYBUF_WRITABLE != 0 && this.readonly {
            return buffer_error(view, c"the array view is read-only");
        }
        let (c, f) = (h.is_c_contiguous(), h.is_f_contiguous());
        let wants = |req: c_int| flags & req == req;
        if (wants(PYBUF_C_CONTIGUOUS) && !c)
            || (wants(PYBUF_F_CONTIGUOUS) && !f)
            || (wants(PYBUF_ANY_CONTIGUOUS) && !(c || f))
        {
            return buffer_error(
                view,
                c"the array is not contiguous in the order the consumer asked for",
            );
        }
        // Without strides (or without a shape) the consumer assumes C order.
        if !wants(PYBUF_STRIDES) && !c {
            return buffer_error(
                view,
                c"the array is not C-contiguous: the consumer must accept strides",
            );
        }
        let Ok(len) = ffi::Py_ssize_t::try_from(h.nbytes()) else {
            return buffer_error(view, c"the array is too large");
        };
        let v = &mut *view;
        v.buf = this.first as *mut c_void;
        ffi::Py_INCREF(obj);
        v.obj = obj;
        v.len = len;
        v.readonly = c_int::from(this.readonly);
        v.format = if wants(PYBUF_FORMAT) {
            this.format.as_ptr().cast_mut()
        } else {
            std::ptr::null_mut()
        };
        v.suboffsets = std::ptr::null_mut();
        v.internal = std::ptr::null_mut();
        if wants(PYBUF_ND) {
            v.itemsize = h.itemsize() as ffi::Py_ssize_t;
            v.ndim = h.ndim() as c_int;
            let (shape, strides) = if h.ndim() == 0 {
                (std::ptr::null_mut(), std::ptr::null_mut())
            } else {
                (
                    this.shape.as_ptr().cast_mut(),
                    this.strides.as_ptr().cast_mut(),
                )
            };
            v.shape = shape;
            v.strides = if wants(PYBUF_STRIDES) {
                strides
            } else {
                std::ptr::null_mut()
            };
        } else {
            // A plain run of bytes (PyBUF_SIMPLE): C-contiguous, checked above.
            v.itemsize = if wants(PYBUF_FORMAT) {
                h.itemsize() as ffi::Py_ssize_t
            } else {
                1
            };
            v.ndim = 1;
            v.shape = std::ptr::null_mut();
            v.strides = std::ptr::null_mut();
        }
        0
    }
}

static ARRAY_VIEW_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn array_view_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    ARRAY_VIEW_TYPE.get_or_try_init(py, || {
        heap_type(
            py,
            c"shmbridge._native.ArrayView",
            c"ArrayView(mapping, offset=0, *, readonly=False)\n--\n\n\
              A typed view of the array whose header (docs/SPEC.md section 7) starts at \
              `offset` of `mapping`, validated in place against the mapping's real size. \
              `numpy.asarray(view)` is a zero-copy ndarray with the header's dtype, shape and \
              strides (buffer protocol); `numpy.from_dlpack(view)` and `torch.from_dlpack(view)` \
              take it through DLPack. Read-only when the mapping is, or with readonly=True. The \
              view keeps the memory mapped, even after the mapping's close().",
            &[(PY_BF_GETBUFFER, array_getbuffer as *mut c_void)],
            // 0: the base's instance layout (the PyO3 object holding ArrayViewBase).
            0,
            Some(&py.get_type::<ArrayViewBase>()),
        )
    })
}

/// A strided, typed buffer borrowed from a Python object (numpy arrays, memoryviews, ...),
/// released on drop.
struct StridedInput {
    view: Box<PyBufferView>,
}

impl StridedInput {
    fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let view = get_buffer(
            obj,
            PYBUF_RECORDS_RO,
            "data must support the buffer protocol",
        )?;
        Ok(Self { view })
    }

    fn dtype(&self) -> Option<DType> {
        let format = if self.view.format.is_null() {
            "B"
        } else {
            // SAFETY: a filled view's format is a NUL-terminated string while it lives.
            unsafe { CStr::from_ptr(self.view.format) }.to_str().ok()?
        };
        DType::from_buffer_format(format, usize::try_from(self.view.itemsize).ok()?)
    }

    fn dims(&self) -> (Vec<u64>, Vec<i64>) {
        let n = usize::try_from(self.view.ndim).unwrap_or(0);
        if n == 0 || self.view.shape.is_null() {
            return (Vec::new(), Vec::new());
        }
        // SAFETY: PyBUF_STRIDES was requested: shape and strides hold ndim entries.
        let (shape, strides) = unsafe {
            (
                std::slice::from_raw_parts(self.view.shape, n),
                std::slice::from_raw_parts(self.view.strides, n),
            )
        };
        (
            shape.iter().map(|&d| d.unsigned_abs() as u64).collect(),
            strides.iter().map(|&s| s as i64).collect(),
        )
    }
}

impl Drop for StridedInput {
    fn drop(&mut self) {
        Python::attach(|_py| {
            // SAFETY: filled by a successful PyObject_GetBuffer, released once, GIL held.
            unsafe { PyBuffer_Release(&raw mut *self.view) };
        });
    }
}

/// Copy `data`'s elements into the array `header` describes at `offset` of `region`.
fn copy_in(
    py: Python<'_>,
    region: &Arc<Region>,
    offset: u64,
    header: &ArrayHeader,
    data: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let src = StridedInput::get(data)?;
    let (shape, strides) = src.dims();
    match src.dtype() {
        Some(d) if d == header.dtype() => {}
        other => {
            return Err(PyValueError::new_err(format!(
                "data holds {} elements, the array {}",
                other.map_or("unsupported".to_owned(), |d| d.name().to_owned()),
                header.dtype()
            )))
        }
    }
    if shape != header.shape() {
        return Err(PyValueError::new_err(format!(
            "data has shape {shape:?}, the array {:?}",
            header.shape()
        )));
    }
    region.check_backing().py()?;
    let dst = SendPtr(
        (region.as_ptr() as usize + (offset + header.first_element_offset()) as usize) as *mut u8,
    );
    let itemsize = header.itemsize();
    // A source inside this very mapping (a view of it) may overlap the destination: stage it.
    let base = region.as_ptr() as usize;
    let inside = (base..=base + region.len()).contains(&(src.view.buf as usize));
    let mut staged = None;
    let (from, from_strides) = if inside && !header.is_empty() {
        let c = ArrayHeader::new(header.dtype(), header.shape(), Order::C).py()?;
        let mut buf = AlignedBuffer::zeroed(c.nbytes() as usize);
        // SAFETY: the exporter guarantees its layout while `src` lives; the staging buffer is
        // private and of the C-order size.
        unsafe {
            array::copy_strided(
                &shape,
                itemsize,
                src.view.buf.cast(),
                &strides,
                buf.as_mut_ptr(),
                c.strides(),
            );
        }
        let ptr = SendPtr(buf.as_mut_ptr());
        staged = Some(buf);
        (ptr, c.strides().to_vec())
    } else {
        (SendPtr(src.view.buf.cast()), strides)
    };
    let run = || {
        // SAFETY: the source layout is the exporter's (valid while `src` lives) or the staged
        // copy; the destination was validated by write_to against the mapping, which
        // `region` keeps alive; the two are disjoint (a source in this mapping was staged).
        unsafe {
            array::copy_strided(
                header.shape(),
                itemsize,
                from.get(),
                &from_strides,
                dst.get(),
                header.strides(),
            );
        }
    };
    if header.nbytes() >= RELEASE_GIL_AT as u64 {
        py.detach(run);
    } else {
        run();
    }
    drop(staged);
    drop(src);
    Ok(())
}

/// Write an array header (docs/SPEC.md section 7) at `offset` of `mapping` (a multiple of
/// 64), the magic last, and optionally copy `data` (any buffer of that dtype and shape, in
/// any layout) into its data area. Returns the bytes used from `offset` (header and data).
#[pyfunction]
#[pyo3(signature = (mapping, offset, shape, dtype, *, order = "C", strides = None, data = None))]
#[allow(clippy::too_many_arguments)]
pub fn write_array_header(
    py: Python<'_>,
    mapping: &Bound<'_, PyAny>,
    offset: i64,
    shape: Vec<i64>,
    dtype: &Bound<'_, PyAny>,
    order: &str,
    strides: Option<Vec<i64>>,
    data: Option<&Bound<'_, PyAny>>,
) -> PyResult<u64> {
    let region = region_of(mapping)?;
    let offset = offset_arg(offset)?;
    let header = header_arg(shape, dtype, order, strides)?;
    header.write_to(&region, offset).py()?;
    if let Some(data) = data {
        copy_in(py, &region, offset, &header, data)?;
    }
    Ok(header.total_len())
}

/// Bytes an array of `shape` and `dtype` needs from its header's start: header and data.
#[pyfunction]
#[pyo3(signature = (shape, dtype, *, order = "C", strides = None))]
pub fn array_size(
    shape: Vec<i64>,
    dtype: &Bound<'_, PyAny>,
    order: &str,
    strides: Option<Vec<i64>>,
) -> PyResult<u64> {
    Ok(header_arg(shape, dtype, order, strides)?.total_len())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ArrayView", array_view_type(m.py())?.bind(m.py()))?;
    m.add_function(wrap_pyfunction!(write_array_header, m)?)?;
    m.add_function(wrap_pyfunction!(array_size, m)?)?;
    m.add(
        "ARRAY_MAGIC",
        pyo3::types::PyBytes::new(m.py(), &array::MAGIC),
    )?;
    m.add("ARRAY_MAX_NDIM", array::MAX_NDIM)?;
    Ok(())
}
