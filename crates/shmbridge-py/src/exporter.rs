//! Zero-copy export of a mapping through the buffer protocol, on every CPython from 3.9.
//!
//! The extension is built for the stable ABI of 3.9 (one wheel for all versions), whose
//! headers leave out the buffer protocol: PyO3 only offers `__getbuffer__` from 3.11 under
//! `abi3`. The protocol itself has been part of CPython since 3.0 with the same `Py_buffer`
//! layout, `PyType_FromSpec` accepts the `bf_getbuffer` slot since 3.9, and 3.11 merely
//! declared all of it stable. So this module declares the few pieces it needs itself and
//! builds one small type, `BufferExporter`, by hand:
//!
//! - an exporter owns an `Arc<Region>`; `memoryview(exporter)` (and anything sliced or
//!   exported from that view, numpy arrays included) keeps the exporter, and so the mapping,
//!   alive. The mapping is unmapped when the last reference to it goes, whoever closes what;
//! - read-only regions export read-only buffers (a writable request raises `BufferError`).
//!
//! It also reads arguments that support the buffer protocol ([`InputBuffer`]).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Arc;

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use shmbridge::Region;

/// CPython's `Py_buffer` (identical from 3.3 to 3.14).
#[repr(C)]
pub(crate) struct PyBufferView {
    pub(crate) buf: *mut c_void,
    pub(crate) obj: *mut ffi::PyObject,
    pub(crate) len: ffi::Py_ssize_t,
    pub(crate) itemsize: ffi::Py_ssize_t,
    pub(crate) readonly: c_int,
    pub(crate) ndim: c_int,
    pub(crate) format: *mut c_char,
    pub(crate) shape: *mut ffi::Py_ssize_t,
    pub(crate) strides: *mut ffi::Py_ssize_t,
    pub(crate) suboffsets: *mut ffi::Py_ssize_t,
    pub(crate) internal: *mut c_void,
}

/// `PyBUF_SIMPLE`: a contiguous run of bytes.
const PYBUF_SIMPLE: c_int = 0;
/// `PyBUF_WRITABLE`.
pub(crate) const PYBUF_WRITABLE: c_int = 0x0001;
/// The `Py_bf_getbuffer` type slot (typeslots.h: 1 in every version up to 3.14).
pub(crate) const PY_BF_GETBUFFER: c_int = 1;

extern "C" {
    fn PyBuffer_FillInfo(
        view: *mut PyBufferView,
        obj: *mut ffi::PyObject,
        buf: *mut c_void,
        len: ffi::Py_ssize_t,
        readonly: c_int,
        flags: c_int,
    ) -> c_int;
    pub(crate) fn PyObject_GetBuffer(
        obj: *mut ffi::PyObject,
        view: *mut PyBufferView,
        flags: c_int,
    ) -> c_int;
    pub(crate) fn PyBuffer_Release(view: *mut PyBufferView);
}

/// The instance layout of `BufferExporter`.
#[repr(C)]
struct ExporterObject {
    ob_base: ffi::PyObject,
    /// From `Arc::into_raw`; null only for an instance made from Python (which exports nothing).
    region: *const Region,
}

static EXPORTER_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

unsafe extern "C" fn exporter_getbuffer(
    obj: *mut ffi::PyObject,
    view: *mut PyBufferView,
    flags: c_int,
) -> c_int {
    // SAFETY: CPython calls this slot with an instance of our type (laid out as
    // ExporterObject), a valid view to fill, and the GIL held.
    unsafe {
        let region = (*obj.cast::<ExporterObject>()).region;
        if region.is_null() {
            (*view).obj = std::ptr::null_mut();
            ffi::PyErr_SetString(
                ffi::PyExc_BufferError,
                c"this BufferExporter holds no mapping".as_ptr(),
            );
            return -1;
        }
        let region = &*region;
        let Ok(len) = ffi::Py_ssize_t::try_from(region.len()) else {
            (*view).obj = std::ptr::null_mut();
            ffi::PyErr_SetString(ffi::PyExc_BufferError, c"mapping too large".as_ptr());
            return -1;
        };
        // Fills a one-dimensional unsigned-byte buffer, takes a reference to `obj`, and raises
        // BufferError for a writable request on a read-only region.
        PyBuffer_FillInfo(
            view,
            obj,
            region.as_mut_ptr().cast(),
            len,
            c_int::from(!region.is_writable()),
            flags,
        )
    }
}

unsafe extern "C" fn exporter_dealloc(obj: *mut ffi::PyObject) {
    // SAFETY: CPython calls tp_dealloc once, when the last reference goes; the region pointer
    // came from Arc::into_raw in `export` and is released exactly here. The type is a heap
    // type, so the instance holds a reference to it, dropped after freeing the memory.
    unsafe {
        let this = obj.cast::<ExporterObject>();
        let region = std::mem::replace(&mut (*this).region, std::ptr::null());
        if !region.is_null() {
            drop(Arc::from_raw(region));
        }
        let tp = ffi::Py_TYPE(obj);
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        if !free.is_null() {
            let free: ffi::freefunc = std::mem::transmute(free);
            free(obj.cast());
        }
        ffi::Py_DECREF(tp.cast());
    }
}

/// A heap type made from a spec: `name` and `doc` (static: CPython keeps pointers to them),
/// the `(slot, function)` pairs, an instance size (0: the base's) and an optional base class.
pub(crate) fn heap_type(
    py: Python<'_>,
    name: &'static CStr,
    doc: &'static CStr,
    funcs: &[(c_int, *mut c_void)],
    basicsize: usize,
    base: Option<&Bound<'_, PyType>>,
) -> PyResult<Py<PyType>> {
    let mut slots: Vec<ffi::PyType_Slot> = funcs
        .iter()
        .map(|&(slot, pfunc)| ffi::PyType_Slot { slot, pfunc })
        .collect();
    slots.push(ffi::PyType_Slot {
        slot: ffi::Py_tp_doc,
        pfunc: doc.as_ptr().cast_mut().cast(),
    });
    slots.push(ffi::PyType_Slot {
        slot: 0,
        pfunc: std::ptr::null_mut(),
    });
    let mut spec = ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: c_int::try_from(basicsize).expect("small struct"),
        itemsize: 0,
        flags: ffi::Py_TPFLAGS_DEFAULT as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    };
    let bases = base.map(|b| PyTuple::new(py, [b])).transpose()?;
    let bases_ptr = bases.as_ref().map_or(std::ptr::null_mut(), Bound::as_ptr);
    // SAFETY: the spec and slots are valid for the call (CPython copies what it keeps, except
    // the name and doc, which are static strings); `bases` is a tuple or null; the GIL is held.
    let tp = unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpecWithBases(&raw mut spec, bases_ptr))
    }?;
    Ok(tp.cast_into::<PyType>()?.unbind())
}

fn exporter_type(py: Python<'_>) -> PyResult<&Py<PyType>> {
    EXPORTER_TYPE.get_or_try_init(py, || {
        heap_type(
            py,
            c"shmbridge._native.BufferExporter",
            c"Exports a shmbridge mapping through the buffer protocol; \
              memoryview(exporter) views it without a copy.",
            &[
                (PY_BF_GETBUFFER, exporter_getbuffer as *mut c_void),
                (ffi::Py_tp_dealloc, exporter_dealloc as *mut c_void),
            ],
            std::mem::size_of::<ExporterObject>(),
            None,
        )
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("BufferExporter", exporter_type(m.py())?.bind(m.py()))
}

/// A new `memoryview` over all of `region`, keeping it mapped for as long as the view, or
/// anything exported from it, lives.
pub(crate) fn memoryview<'py>(
    py: Python<'py>,
    region: &Arc<Region>,
) -> PyResult<Bound<'py, PyAny>> {
    let tp = exporter_type(py)?.bind(py);
    let exporter = {
        // SAFETY: allocating an instance of our heap type with its own tp_alloc, with the GIL
        // held; the memory is zeroed (region null) until we store the Arc.
        unsafe {
            let tp_ptr = tp.as_ptr().cast::<ffi::PyTypeObject>();
            let alloc = ffi::PyType_GetSlot(tp_ptr, ffi::Py_tp_alloc);
            let alloc: ffi::allocfunc = if alloc.is_null() {
                ffi::PyType_GenericAlloc
            } else {
                std::mem::transmute::<*mut c_void, ffi::allocfunc>(alloc)
            };
            let obj = Bound::from_owned_ptr_or_err(py, alloc(tp_ptr, 0))?;
            (*obj.as_ptr().cast::<ExporterObject>()).region = Arc::into_raw(Arc::clone(region));
            obj
        }
    };
    // SAFETY: PyMemoryView_FromObject with a valid object and the GIL held; it returns a new
    // reference or null with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyMemoryView_FromObject(exporter.as_ptr())) }
}

/// A contiguous buffer borrowed from a Python object (`bytes`, `bytearray`, `memoryview`,
/// numpy arrays, ...), released on drop. While it lives the exporter keeps the memory in
/// place (a `bytearray` cannot resize, for example).
pub(crate) struct InputBuffer {
    view: Box<PyBufferView>,
}

/// `PyObject_GetBuffer(obj, flags)` into a new view, or the exporter's exception. The caller
/// releases the view with `PyBuffer_Release` (with the GIL held) when done.
pub(crate) fn get_buffer(
    obj: &Bound<'_, PyAny>,
    flags: c_int,
    what: &str,
) -> PyResult<Box<PyBufferView>> {
    let mut view = Box::new(PyBufferView {
        buf: std::ptr::null_mut(),
        obj: std::ptr::null_mut(),
        len: 0,
        itemsize: 0,
        readonly: 0,
        ndim: 0,
        format: std::ptr::null_mut(),
        shape: std::ptr::null_mut(),
        strides: std::ptr::null_mut(),
        suboffsets: std::ptr::null_mut(),
        internal: std::ptr::null_mut(),
    });
    // SAFETY: a valid object and a writable view, with the GIL held (obj is Bound).
    let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &raw mut *view, flags) };
    if rc != 0 {
        return Err(PyErr::take(obj.py()).unwrap_or_else(|| PyTypeError::new_err(what.to_owned())));
    }
    Ok(view)
}

impl InputBuffer {
    /// Borrow `obj`'s bytes; `writable` asks for a buffer we may write into.
    pub(crate) fn get(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<Self> {
        let flags = if writable {
            PYBUF_SIMPLE | PYBUF_WRITABLE
        } else {
            PYBUF_SIMPLE
        };
        let view = get_buffer(obj, flags, "a bytes-like object is required")?;
        Ok(Self { view })
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.view.len).unwrap_or(0)
    }

    /// The first byte.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.view.buf.cast()
    }

    /// The bytes, read-only.
    ///
    /// The exporter pins the memory; another thread could still change it while we copy,
    /// which is no different from another process writing shared memory as we read it.
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.len() == 0 {
            return &[];
        }
        // SAFETY: PyObject_GetBuffer succeeded with PyBUF_SIMPLE: `len` contiguous bytes at
        // `buf`, valid until PyBuffer_Release in Drop.
        unsafe { std::slice::from_raw_parts(self.ptr(), self.len()) }
    }
}

impl Drop for InputBuffer {
    fn drop(&mut self) {
        Python::attach(|_py| {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released
            // once, with the GIL held.
            unsafe { PyBuffer_Release(&raw mut *self.view) };
        });
    }
}
