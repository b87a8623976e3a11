//! Named segments, listing and the size-prefixed layout.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmbridge::{size_prefixed, Detected, ShmObject};

use crate::args;
use crate::errors::IntoPy;
use crate::exporter::InputBuffer;
use crate::framed::HeaderInfo;
use crate::handle::Handle;
use crate::mapping::{private_if_overlapping, read_region, Mapping};

/// A named POSIX shared-memory segment (`/dev/shm/<name>`) and one mapping of all of it.
///
/// Closing (or dropping) it never removes the name; only `unlink()` / `remove()` do.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct Segment {
    name: String,
    created: bool,
    readonly: bool,
    size: usize,
    object: Handle<ShmObject>,
    mapping: Py<Mapping>,
}

impl Segment {
    pub(crate) fn from_core(py: Python<'_>, seg: shmbridge::Segment) -> PyResult<Self> {
        let (object, region) = seg.into_parts();
        let name = object.name().to_owned();
        Ok(Self {
            name: name.clone(),
            created: object.created(),
            readonly: !object.access().is_writable(),
            size: region.len(),
            object: Handle::new(object, format!("segment {name:?}")),
            mapping: Py::new(py, Mapping::new(region, "segment"))?,
        })
    }

    fn with_object<T>(&self, f: impl FnOnce(&ShmObject) -> shmbridge::Result<T>) -> PyResult<T> {
        self.object.with(f)?.py()
    }
}

#[pymethods]
impl Segment {
    /// Open or create the segment `name`. `mode` is `"create_only"`, `"open_only"` or
    /// `"open_or_create"`; `size` is the size of a created segment (an opened one is mapped at
    /// its real size). `permissions` (default 0o600) are applied exactly, whatever the umask.
    #[new]
    #[pyo3(signature = (name, mode = "open_only", size = 0, *, readonly = false, permissions = None, populate = false))]
    fn new(
        py: Python<'_>,
        name: &str,
        mode: &str,
        size: i64,
        readonly: bool,
        permissions: Option<u32>,
        populate: bool,
    ) -> PyResult<Self> {
        let mode = args::open_mode(mode)?;
        let size = args::size("size", size)?;
        let opts = args::segment_options(readonly, permissions, populate);
        let name = name.to_owned();
        // Creating reserves every page (posix_fallocate): slow for big segments.
        let seg = py
            .detach(|| shmbridge::Segment::open_with(&name, mode, size, &opts))
            .py()?;
        Self::from_core(py, seg)
    }

    /// The name, without a leading '/'.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Size of the mapping in bytes (the segment's real size when it was opened).
    #[getter]
    fn size(&self) -> usize {
        self.size
    }

    /// Whether this handle created the segment.
    #[getter]
    fn created(&self) -> bool {
        self.created
    }

    /// Whether the segment was opened read-only.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// The mapping of the whole segment.
    #[getter]
    fn mapping(&self, py: Python<'_>) -> Py<Mapping> {
        self.mapping.clone_ref(py)
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.object.is_closed()
    }

    /// The segment's size now, from the OS (`fstat`).
    fn real_size(&self) -> PyResult<u64> {
        self.with_object(ShmObject::size)
    }

    /// The permission bits now (e.g. 0o600).
    fn permissions(&self) -> PyResult<u32> {
        self.with_object(ShmObject::permissions)
    }

    /// Remove the name (processes that have it mapped keep their memory).
    fn unlink(&self) -> PyResult<()> {
        ShmObject::remove(&self.name).py()
    }

    /// Close the handle and drop this object's reference to the mapping; views of the memory
    /// stay valid until released. Never removes the name. Calling it again does nothing.
    fn close(&self) {
        drop(self.object.close());
        self.mapping.get().release();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        format!("Segment({:?}, size={})", self.name, self.size)
    }
}

/// Remove the segment `name`. Raises `FileNotFoundError` when there is none.
#[pyfunction]
pub fn remove(name: &str) -> PyResult<()> {
    ShmObject::remove(name).py()
}

/// Whether a segment called `name` exists.
#[pyfunction]
pub fn exists(name: &str) -> bool {
    ShmObject::exists(name)
}

/// A fresh name no other process is likely to use: `prefix`, the pid, random hex digits.
#[pyfunction]
#[pyo3(signature = (prefix = "shmb_"))]
pub fn unique_name(prefix: &str) -> String {
    shmbridge::name::unique(prefix)
}

/// One named segment, as `list_segments()` and `segment_info()` describe it.
#[pyclass(module = "shmbridge._native", frozen, get_all)]
pub struct SegmentInfo {
    /// The name.
    name: String,
    /// Real size in bytes.
    size: u64,
    /// Owner's user id.
    uid: u32,
    /// Permission bits.
    permissions: u32,
    /// Last modification, nanoseconds since the epoch.
    mtime_ns: i128,
    /// "framed", "unframed" (raw or size-prefixed: they carry no marker), "bad-framed" or
    /// "unreadable".
    layout: &'static str,
    /// The framed header, for framed segments.
    header: Option<Py<HeaderInfo>>,
    /// Why a framed header is bad or the segment unreadable ("" otherwise).
    detail: String,
}

#[pymethods]
impl SegmentInfo {
    /// Deprecated: `permissions`.
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<u32> {
        args::deprecated(py, "SegmentInfo.mode", "SegmentInfo.permissions")?;
        Ok(self.permissions)
    }

    fn __repr__(&self) -> String {
        format!(
            "SegmentInfo(name={:?}, size={}, permissions=0o{:o}, layout={:?})",
            self.name, self.size, self.permissions, self.layout
        )
    }
}

fn info_to_py(py: Python<'_>, info: shmbridge::SegmentInfo) -> PyResult<SegmentInfo> {
    let (layout, header, detail) = match info.detected {
        Detected::Framed(h) => (
            "framed",
            Some(Py::new(py, HeaderInfo::from(h))?),
            String::new(),
        ),
        Detected::Unframed => ("unframed", None, String::new()),
        Detected::BadFramed(why) => ("bad-framed", None, why),
        Detected::Unreadable(why) => ("unreadable", None, why),
    };
    Ok(SegmentInfo {
        name: info.name,
        size: info.size,
        uid: info.uid,
        permissions: info.mode,
        mtime_ns: info.mtime_ns,
        layout,
        header,
        detail,
    })
}

/// Every named segment on this machine, sorted by name.
#[pyfunction]
pub fn list_segments(py: Python<'_>) -> PyResult<Vec<SegmentInfo>> {
    let all = py.detach(shmbridge::list).py()?;
    all.into_iter().map(|i| info_to_py(py, i)).collect()
}

/// Describe the segment `name`. Raises `FileNotFoundError` when there is none.
#[pyfunction]
pub fn segment_info(py: Python<'_>, name: &str) -> PyResult<SegmentInfo> {
    info_to_py(py, shmbridge::info(name).py()?)
}

/// Create the segment `name` of exactly 8 + len(data) bytes: the length, then `data`.
#[pyfunction]
#[pyo3(signature = (name, data, *, permissions = None))]
pub fn size_prefixed_create(
    py: Python<'_>,
    name: &str,
    data: &Bound<'_, PyAny>,
    permissions: Option<u32>,
) -> PyResult<Segment> {
    let src = InputBuffer::get(data, false)?;
    let bytes = src.as_slice();
    let opts = args::segment_options(false, permissions, false);
    let name = name.to_owned();
    let seg = py
        .detach(|| size_prefixed::create(&name, bytes, &opts))
        .py()?;
    Segment::from_core(py, seg)
}

/// The validated length prefix of a size-prefixed mapping.
#[pyfunction]
pub fn size_prefixed_len(mapping: &Mapping) -> PyResult<u64> {
    size_prefixed::payload_len(&*mapping.region()?).py()
}

/// Copy the payload of a size-prefixed mapping into a new `bytes`.
#[pyfunction]
pub fn size_prefixed_read<'py>(
    py: Python<'py>,
    mapping: &Mapping,
) -> PyResult<Bound<'py, PyBytes>> {
    let region = mapping.region()?;
    let len = size_prefixed::payload_len(&region).py()?;
    let len = usize::try_from(len).map_err(|_| PyValueError::new_err("payload too large"))?;
    read_region(py, &region, size_prefixed::PREFIX_LEN, len)
}

/// Write `data` after a length prefix into a mapping.
#[pyfunction]
pub fn size_prefixed_write(
    py: Python<'_>,
    mapping: &Mapping,
    data: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let region = mapping.region()?;
    let src = InputBuffer::get(data, false)?;
    let data = private_if_overlapping(&region, &src);
    if data.len() >= crate::mapping::RELEASE_GIL_AT {
        py.detach(|| size_prefixed::write(&region, &data)).py()
    } else {
        size_prefixed::write(&region, &data).py()
    }
}
