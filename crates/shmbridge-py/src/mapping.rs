//! `Mapping`: a mapped region (segment, file or anonymous memory) as a Python object.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use pyo3::IntoPyObjectExt;
use shmbridge::{FileMapping, MapAccess, Region};

use crate::args;
use crate::errors::{self, IntoPy};
use crate::exporter::{self, InputBuffer};
use crate::handle::Handle;

/// Copies at least this long release the GIL.
pub(crate) const RELEASE_GIL_AT: usize = 64 * 1024;

/// A `*mut u8` that may cross into a closure run without the GIL.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut u8);

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    pub(crate) fn get(self) -> *mut u8 {
        self.0
    }
}
// SAFETY: only used to copy into memory that stays valid (kept alive by an owner held across
// the call) while the closure runs.
unsafe impl Send for SendPtr {}
// SAFETY: as above; the pointer is only copied, never used to create shared references.
unsafe impl Sync for SendPtr {}

/// Copy `src` into `dst` at `offset`, without the GIL when long; a source that overlaps the
/// destination (a view of the same mapping) goes through a private copy first.
pub(crate) fn write_region(
    py: Python<'_>,
    dst: &Arc<Region>,
    offset: u64,
    src: &InputBuffer,
) -> PyResult<()> {
    let data = private_if_overlapping(dst, src);
    if data.len() >= RELEASE_GIL_AT {
        py.detach(|| dst.write_at(offset, &data)).py()
    } else {
        dst.write_at(offset, &data).py()
    }
}

/// `src`'s bytes, copied first when they lie in `dst` itself (a view of the same mapping):
/// the core copies with `copy_nonoverlapping`.
pub(crate) fn private_if_overlapping<'a>(dst: &Region, src: &'a InputBuffer) -> Cow<'a, [u8]> {
    let start = src.ptr() as usize;
    let end = start + src.len();
    let ours = dst.as_ptr() as usize;
    if src.len() > 0 && start < ours + dst.len() && ours < end {
        Cow::Owned(src.as_slice().to_vec())
    } else {
        Cow::Borrowed(src.as_slice())
    }
}

/// Read `len` bytes at `offset` into a new `bytes`, without the GIL when long.
pub(crate) fn read_region<'py>(
    py: Python<'py>,
    region: &Arc<Region>,
    offset: u64,
    len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    region.check_range(offset, len).py()?;
    PyBytes::new_with(py, len, |out| {
        if out.len() >= RELEASE_GIL_AT {
            py.detach(|| region.read_at(offset, out)).py()
        } else {
            region.read_at(offset, out).py()
        }
    })
}

/// The fixed-width little-endian types of `get` / `set`, by name or `struct` code.
#[derive(Clone, Copy)]
pub(crate) enum Scalar {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Scalar {
    pub(crate) fn parse(kind: &str) -> PyResult<Self> {
        Ok(match kind {
            "u8" | "B" => Self::U8,
            "i8" | "b" => Self::I8,
            "u16" | "H" => Self::U16,
            "i16" | "h" => Self::I16,
            "u32" | "I" => Self::U32,
            "i32" | "i" => Self::I32,
            "u64" | "Q" => Self::U64,
            "i64" | "q" => Self::I64,
            "f32" | "f" => Self::F32,
            "f64" | "d" => Self::F64,
            _ => {
                return Err(PyValueError::new_err(format!(
                    "unknown field type {kind:?}: use u8, i8, u16, i16, u32, i32, u64, i64, f32, \
                     f64 (or the struct codes B b H h I i Q q f d)"
                )))
            }
        })
    }
}

/// Something that reads and writes scalars at an offset (a region, a framed payload).
pub(crate) trait Fields {
    fn get_scalar<T: shmbridge::Scalar>(&self, offset: u64) -> shmbridge::Result<T>;
    fn set_scalar<T: shmbridge::Scalar>(&self, offset: u64, value: T) -> shmbridge::Result<()>;
}

impl Fields for Region {
    fn get_scalar<T: shmbridge::Scalar>(&self, offset: u64) -> shmbridge::Result<T> {
        self.get(offset)
    }
    fn set_scalar<T: shmbridge::Scalar>(&self, offset: u64, value: T) -> shmbridge::Result<()> {
        self.set(offset, value)
    }
}

pub(crate) fn get_field<F: Fields>(
    py: Python<'_>,
    target: &F,
    kind: &str,
    offset: u64,
) -> PyResult<Py<PyAny>> {
    let t = target;
    match Scalar::parse(kind)? {
        Scalar::U8 => t.get_scalar::<u8>(offset).py()?.into_py_any(py),
        Scalar::I8 => t.get_scalar::<i8>(offset).py()?.into_py_any(py),
        Scalar::U16 => t.get_scalar::<u16>(offset).py()?.into_py_any(py),
        Scalar::I16 => t.get_scalar::<i16>(offset).py()?.into_py_any(py),
        Scalar::U32 => t.get_scalar::<u32>(offset).py()?.into_py_any(py),
        Scalar::I32 => t.get_scalar::<i32>(offset).py()?.into_py_any(py),
        Scalar::U64 => t.get_scalar::<u64>(offset).py()?.into_py_any(py),
        Scalar::I64 => t.get_scalar::<i64>(offset).py()?.into_py_any(py),
        Scalar::F32 => f64::from(t.get_scalar::<f32>(offset).py()?).into_py_any(py),
        Scalar::F64 => t.get_scalar::<f64>(offset).py()?.into_py_any(py),
    }
}

fn int<T: TryFrom<i128>>(value: &Bound<'_, PyAny>, kind: &str) -> PyResult<T> {
    let v: i128 = value.extract()?;
    T::try_from(v).map_err(|_| PyValueError::new_err(format!("{v} is out of range for {kind}")))
}

pub(crate) fn set_field<F: Fields>(
    target: &F,
    kind: &str,
    offset: u64,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let t = target;
    match Scalar::parse(kind)? {
        Scalar::U8 => t.set_scalar(offset, int::<u8>(value, kind)?),
        Scalar::I8 => t.set_scalar(offset, int::<i8>(value, kind)?),
        Scalar::U16 => t.set_scalar(offset, int::<u16>(value, kind)?),
        Scalar::I16 => t.set_scalar(offset, int::<i16>(value, kind)?),
        Scalar::U32 => t.set_scalar(offset, int::<u32>(value, kind)?),
        Scalar::I32 => t.set_scalar(offset, int::<i32>(value, kind)?),
        Scalar::U64 => t.set_scalar(offset, int::<u64>(value, kind)?),
        Scalar::I64 => t.set_scalar(offset, int::<i64>(value, kind)?),
        #[allow(clippy::cast_possible_truncation)] // f32 fields hold f32 values, as struct "f"
        Scalar::F32 => t.set_scalar(offset, value.extract::<f64>()? as f32),
        Scalar::F64 => t.set_scalar(offset, value.extract::<f64>()?),
    }
    .py()
}

/// A mapping of shared memory, a file, or anonymous shared memory.
///
/// `buf` is a zero-copy `memoryview`. `close()` drops this object's reference to the mapping;
/// the memory stays mapped while any view of it (or numpy array over it) is alive.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct Mapping {
    region: Handle<Arc<Region>>,
    label: String,
    size: usize,
    readonly: bool,
    kind: &'static str,
}

impl Mapping {
    pub(crate) fn new(region: Region, kind: &'static str) -> Self {
        Self {
            label: region.label().to_owned(),
            size: region.len(),
            readonly: !region.is_writable(),
            kind,
            region: Handle::new(Arc::new(region), "the mapping"),
        }
    }

    /// The region, or `ClosedError`.
    pub(crate) fn region(&self) -> PyResult<Arc<Region>> {
        self.region.get()
    }

    /// Drop this object's reference to the mapping (`close()`).
    pub(crate) fn release(&self) {
        drop(self.region.close());
    }
}

#[pymethods]
impl Mapping {
    /// A zero-copy memoryview of the whole mapping (read-only for read-only mappings).
    #[getter]
    fn buf<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        exporter::memoryview(py, &self.region()?)
    }

    /// Length in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.size
    }

    fn __len__(&self) -> usize {
        self.size
    }

    /// Whether writes are refused.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// The segment name or file path (`<anonymous>` for anonymous memory).
    #[getter]
    fn label(&self) -> &str {
        &self.label
    }

    /// `"segment"`, `"file"` or `"anonymous"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.region.is_closed()
    }

    /// Copy `size` bytes at `offset` (default: to the end) into a new `bytes`.
    #[pyo3(signature = (offset = 0, size = None))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        offset: i64,
        size: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let region = self.region()?;
        let offset = args::offset(offset)?;
        let size = match size {
            Some(s) => s,
            None => usize::try_from(offset)
                .ok()
                .and_then(|o| region.len().checked_sub(o))
                .ok_or_else(|| {
                    errors::out_of_bounds(format!(
                        "offset {offset} is past the end ({} bytes)",
                        region.len()
                    ))
                })?,
        };
        read_region(py, &region, offset, size)
    }

    /// Copy `data` (any bytes-like object) into the mapping at `offset`; returns its length.
    fn write(&self, py: Python<'_>, offset: i64, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let region = self.region()?;
        let offset = args::offset(offset)?;
        let src = InputBuffer::get(data, false)?;
        write_region(py, &region, offset, &src)?;
        Ok(src.len())
    }

    /// Copy bytes at `offset` into the writable buffer `out` (a bytearray, a numpy array...),
    /// as many as it holds; returns that number.
    #[pyo3(signature = (out, offset = 0))]
    fn readinto(&self, py: Python<'_>, out: &Bound<'_, PyAny>, offset: i64) -> PyResult<usize> {
        let region = self.region()?;
        let offset = args::offset(offset)?;
        let dst = InputBuffer::get(out, true)?;
        let len = dst.len();
        let ptr = crate::mapping::SendPtr(dst.ptr());
        let copy = move || {
            // SAFETY: `dst` (the writable export of `out`) lives across this call, so `len`
            // bytes at ptr stay valid; nobody else holds a Rust reference to them.
            let out = unsafe { std::slice::from_raw_parts_mut(ptr.get(), len) };
            region.read_at(offset, out)
        };
        if len >= RELEASE_GIL_AT {
            py.detach(copy).py()?;
        } else {
            copy().py()?;
        }
        drop(dst);
        Ok(len)
    }

    /// Read a little-endian field: `kind` is u8, i8, u16, i16, u32, i32, u64, i64, f32, f64
    /// (or a struct code: B b H h I i Q q f d).
    fn get(&self, py: Python<'_>, kind: &str, offset: i64) -> PyResult<Py<PyAny>> {
        get_field(py, &*self.region()?, kind, args::offset(offset)?)
    }

    /// Write a little-endian field (see `get`); out-of-range values raise `ValueError`.
    fn set(&self, kind: &str, offset: i64, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_field(&*self.region()?, kind, args::offset(offset)?, value)
    }

    /// Fill `size` bytes at `offset` (default: to the end) with `byte`.
    #[pyo3(signature = (byte = 0, offset = 0, size = None))]
    fn fill(&self, py: Python<'_>, byte: u8, offset: i64, size: Option<usize>) -> PyResult<()> {
        let region = self.region()?;
        let offset = args::offset(offset)?;
        let size = size.unwrap_or_else(|| {
            usize::try_from(offset).map_or(0, |o| region.len().saturating_sub(o))
        });
        py.detach(|| region.fill(offset, size, byte)).py()
    }

    /// Write a file mapping's changes back to the file (`msync`); a no-op otherwise.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let region = self.region()?;
        py.detach(|| region.flush()).py()
    }

    /// Raise `shmbridge.Truncated` if another process shrank the object under the mapping.
    fn check(&self) -> PyResult<()> {
        self.region()?.check_backing().py()
    }

    /// Drop this object's reference to the mapping. Views of it stay valid; the memory is
    /// unmapped when the last of them goes. Calling it again does nothing.
    fn close(&self) {
        self.release();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.release();
    }

    fn __repr__(&self) -> String {
        let state = if self.closed() { ", closed" } else { "" };
        let ro = if self.readonly { ", readonly" } else { "" };
        format!(
            "Mapping({:?}, size={}, kind={:?}{ro}{state})",
            self.label, self.size, self.kind
        )
    }
}

/// Map a file: `access` is "r" (read-only), "w" (read-write, changes reach the file) or "c"
/// (copy-on-write, changes stay private). `size=None` maps to the end of the file. `mode=` is
/// the deprecated old name of `access=` (a `DeprecationWarning`).
#[pyfunction]
#[pyo3(signature = (path, access = None, offset = 0, size = None, *, mode = None))]
pub fn map_file(
    py: Python<'_>,
    path: PathBuf,
    access: Option<&str>,
    offset: u64,
    size: Option<u64>,
    mode: Option<&str>,
) -> PyResult<Mapping> {
    let access = args::map_access(args::renamed(py, ("access", access), ("mode", mode), "r")?)?;
    let file = FileMapping::open(&path, access == MapAccess::ReadWrite).py()?;
    let region = file.map(access, offset, size).py()?;
    Ok(Mapping::new(region, "file"))
}

/// Anonymous shared memory of `size` bytes, zero-filled, shared with children made by
/// `os.fork()` after this call (the seed's `mmap.mmap(-1, size)` example).
#[pyfunction]
pub fn anonymous(size: i64) -> PyResult<Mapping> {
    let size = usize::try_from(size)
        .map_err(|_| PyValueError::new_err(format!("invalid size {size}: must be positive")))?;
    Ok(Mapping::new(Region::anonymous(size).py()?, "anonymous"))
}
