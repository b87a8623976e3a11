//! Named array segments (`shmbridge::array::ArraySegment`, docs/SPEC.md 7.5) as the native
//! class `ArraySegment`, which `shmbridge.SharedArray` (python/shmbridge/arrays.py) wraps with
//! numpy.
//!
//! Everything about the layout, versions, copies and waits is the core's. This class adds the
//! lifetimes Python needs: zero-copy views (`ArrayView` over `mapping`, numpy arrays over
//! those) go through a second mapping of the same object (`Region::remap`), so `close()` drops
//! the handle (its writer lock, its mapping) while views made before keep their own mapping
//! alive, as `SharedMemory` does.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use shmbridge::array::{ArrayHeader, ArraySegment as Core};
use shmbridge::{Access, FramedOptions, ShmObject};

use crate::args;
use crate::array::{dtype_arg, order_arg, shape_arg};
use crate::errors::{self, IntoPy};
use crate::exporter::InputBuffer;
use crate::mapping::{Mapping, SendPtr, RELEASE_GIL_AT};
use crate::wait::{blocking, Limit};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A named array segment: one array (its element type and shape in its header) replaced in
/// place by one writer. `mapping` and `header_offset` give the array (as `ArrayView`);
/// `begin_write()` / `publish()` make a new version, `copy_into()` takes a consistent copy,
/// `wait()` sleeps until a version this handle has not seen. The Python API is
/// `shmbridge.SharedArray`.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct ArraySegment {
    inner: Mutex<Option<Arc<Core>>>,
    /// The views' own mapping of the object.
    mapping: Py<Mapping>,
    /// The token of the write `begin_write()` opened.
    write: Mutex<Option<u64>>,
    name: String,
    header: ArrayHeader,
    header_offset: u64,
    readonly: bool,
}

impl ArraySegment {
    fn wrap(py: Python<'_>, core: Core) -> PyResult<Self> {
        let readonly = !core.is_writable();
        let views = core.framed().region().remap(!readonly).py()?;
        Ok(Self {
            mapping: Py::new(py, Mapping::new(views, "array"))?,
            write: Mutex::new(None),
            name: core.name().to_owned(),
            header: core.header().clone(),
            header_offset: core.framed().header_len(),
            readonly,
            inner: Mutex::new(Some(Arc::new(core))),
        })
    }

    fn inner(&self) -> PyResult<Arc<Core>> {
        lock(&self.inner)
            .clone()
            .ok_or_else(|| errors::closed(&format!("array segment {:?}", self.name)))
    }
}

#[pymethods]
impl ArraySegment {
    /// Create the array segment `name` holding a zeroed array of `shape` and `dtype` (a name
    /// such as "float32", or a numpy dtype), contiguous in `order` ("C" or "F"). This handle
    /// is the segment's writer.
    #[staticmethod]
    #[pyo3(signature = (name, shape, dtype, *, order = "C", permissions = None))]
    fn create(
        py: Python<'_>,
        name: &str,
        shape: Vec<i64>,
        dtype: &Bound<'_, PyAny>,
        order: &str,
        permissions: Option<u32>,
    ) -> PyResult<Self> {
        let dtype = dtype_arg(dtype)?;
        let shape = shape_arg(shape)?;
        let order = order_arg(order)?;
        let opts = FramedOptions {
            segment: args::segment_options(false, permissions, false),
        };
        let name = name.to_owned();
        let core = py
            .detach(|| Core::create(&name, dtype, &shape, order, &opts))
            .py()?;
        Self::wrap(py, core)
    }

    /// Open the array segment `name` and check its header against the segment's real size.
    /// Only this user's own segments are opened (`PermissionError` otherwise) unless `owner`
    /// allows another (`"any"`, a user id, or a sequence of them). With a `timeout` (seconds;
    /// `math.inf` for no limit), wait that long for it to appear (without the GIL; Ctrl-C
    /// interrupts).
    #[staticmethod]
    #[pyo3(signature = (name, *, readonly = false, timeout = None, owner = None))]
    fn open(
        py: Python<'_>,
        name: &str,
        readonly: bool,
        timeout: Option<f64>,
        owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let owner = args::owner(owner)?;
        let access = if readonly {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        let core = match timeout {
            None => Core::open_with_owner(name, access, &owner).py()?,
            Some(t) => blocking(py, args::timeout(Some(t))?, Limit::Deadline, |w| {
                Core::open_wait(name, access, &owner, w)
            })?
            .py()?,
        };
        Self::wrap(py, core)
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// numpy's type string of the elements ("<f4", "|u1", ...).
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

    /// Offset of element (0, ..., 0) from the start of the data area.
    #[getter]
    fn origin(&self) -> u64 {
        self.header.origin()
    }

    /// Length of the data area in bytes (what `copy_into` fills).
    #[getter]
    fn data_len(&self) -> u64 {
        self.header.data_len()
    }

    /// Offset of the array header in the segment (and in `mapping`).
    #[getter]
    fn header_offset(&self) -> u64 {
        self.header_offset
    }

    /// The views' mapping of the segment (an `ArrayView(mapping, header_offset)` is the
    /// array); it stays mapped after `close()` while views of it live.
    #[getter]
    fn mapping(&self, py: Python<'_>) -> Py<Mapping> {
        self.mapping.clone_ref(py)
    }

    /// Whether this handle cannot write.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.inner).is_none()
    }

    /// The current version: the number of writes ended so far.
    #[getter]
    fn version(&self) -> PyResult<u64> {
        Ok(self.inner()?.version())
    }

    /// The publish counter (wraps at 2**32).
    #[getter]
    fn publish_count(&self) -> PyResult<u32> {
        Ok(self.inner()?.publish_count())
    }

    /// Whether a write opened by `begin_write()` is in progress.
    #[getter]
    fn writing(&self) -> bool {
        lock(&self.write).is_some()
    }

    /// Start a new version: copies readers take wait (or retry) until `publish()`. Calling it
    /// while a write is open does nothing.
    fn begin_write(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner()?;
        let mut w = lock(&self.write);
        if w.is_none() {
            *w = Some(py.detach(|| inner.begin_write_raw()).py()?);
        }
        Ok(())
    }

    /// Publish a new version: end the write `begin_write()` opened, or (with none open) mark
    /// the data written in place since as a new version. Wakes waiting readers.
    fn publish(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner()?;
        let token = lock(&self.write).take();
        match token {
            Some(t) => inner.end_write_raw(t, true).py(),
            None => py.detach(|| inner.publish()).py(),
        }
    }

    /// Copy the data area (`data_len` bytes, in memory order) into `out`, a writable buffer of
    /// exactly that length, consistently (never torn by a concurrent write), without the GIL
    /// for large arrays. Returns the version copied.
    fn copy_into(&self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<u64> {
        let inner = self.inner()?;
        let dst = InputBuffer::get(out, true)?;
        let room = dst.len();
        let ptr = SendPtr(dst.ptr());
        let copy = || {
            // SAFETY: `room` writable bytes at `ptr`, kept alive by `dst` across the call; the
            // core copies into them through the descriptor (a buffer in the mapping itself is
            // possible but only overwrites the array with itself).
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr.get(), room) };
            inner.read_data_into(buf)
        };
        let snap = if room >= RELEASE_GIL_AT {
            py.detach(copy)
        } else {
            copy()
        };
        drop(dst);
        Ok(snap.py()?.version)
    }

    /// Wait (without the GIL; Ctrl-C interrupts) until a version this handle has not seen is
    /// published: one after it opened, after its last `copy_into`, or after the last `wait`.
    /// Returns the publish counter. `timeout` in seconds (None: no limit); raises
    /// `shmbridge.Timeout`, `shmbridge.WriterClosed`, or `shmbridge.PeerGone` when the
    /// writer is gone.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<u32> {
        let inner = self.inner()?;
        let timeout = args::timeout(timeout)?;
        blocking(py, timeout, Limit::Deadline, |w| inner.wait_next(w))?.py()
    }

    /// Mark the segment closed by its writer: waiting readers raise `WriterClosed`.
    fn close_writer(&self) -> PyResult<()> {
        self.inner()?.close_writer().py()
    }

    /// Remove the segment's name.
    fn unlink(&self) -> PyResult<()> {
        ShmObject::remove(&self.name).py()
    }

    /// Close the handle (an open write is published first); never removes the name. Views
    /// made before stay valid (they keep their own mapping). Calling it again does nothing.
    fn close(&self) {
        let taken = lock(&self.inner).take();
        if let (Some(core), Some(token)) = (taken.as_ref(), lock(&self.write).take()) {
            let _ = core.end_write_raw(token, true);
        }
        drop(taken);
        self.mapping.get().release();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `close()`.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        format!(
            "ArraySegment({:?}, shape={:?}, dtype={:?}{})",
            self.name,
            self.header.shape(),
            self.header.dtype().typestr(),
            if self.closed() { ", closed" } else { "" }
        )
    }
}

impl Drop for ArraySegment {
    /// A handle collected with a write still open ends it unpublished (readers' copies can go
    /// on; nobody is woken), rather than leaving the sequence odd for good.
    fn drop(&mut self) {
        let core = self
            .inner
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let token = self
            .write
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let (Some(core), Some(token)) = (core, token) {
            let _ = core.end_write_raw(token, false);
        }
    }
}

/// `numpy.ndarray` and `numpy.frombuffer`.
static NUMPY: pyo3::sync::PyOnceLock<(Py<PyAny>, Py<PyAny>)> = pyo3::sync::PyOnceLock::new();

/// A numpy array over the buffer `obj` exports (a loan, a message), laid out as `header` says
/// with the header at the buffer's start: `numpy.ndarray(shape, dtype, buffer=obj, offset,
/// strides)`, zero-copy, read-only when the buffer is. The array keeps a memoryview of `obj`
/// (and so its export, which holds the slot) alive. numpy is imported on first use.
pub(crate) fn ndarray_over<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    header: &ArrayHeader,
) -> PyResult<Bound<'py, PyAny>> {
    let (ndarray, frombuffer) = NUMPY
        .get_or_try_init(py, || {
            let np = py.import("numpy")?;
            Ok::<_, PyErr>((
                np.getattr("ndarray")?.unbind(),
                np.getattr("frombuffer")?.unbind(),
            ))
        })
        .map(|(a, b)| (a.bind(py), b.bind(py)))?;
    // numpy keeps the object given to `ndarray(buffer=...)` as the base but lets go of the
    // buffer it took from it at once; `frombuffer` keeps a memoryview, and so the export that
    // holds a message's slot, for as long as the array (its base's base) lives.
    let flat = frombuffer.call1((obj, "u1"))?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("shape", PyTuple::new(py, header.shape())?)?;
    kwargs.set_item("dtype", header.dtype().typestr())?;
    kwargs.set_item("buffer", flat)?;
    kwargs.set_item("offset", header.data_offset() + header.origin())?;
    kwargs.set_item("strides", PyTuple::new(py, header.strides())?)?;
    ndarray.call((), Some(&kwargs))
}
