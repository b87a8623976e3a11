//! Framed segments: a validated, versioned header, then the payload.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmbridge::{FramedOptions, ShmObject};

use crate::args;
use crate::errors::{self, IntoPy};
use crate::exporter::InputBuffer;
use crate::handle::Handle;
use crate::mapping::{get_field, set_field, Fields, SendPtr, RELEASE_GIL_AT};
use crate::wait::{blocking, Limit, SPIN_WITH_GIL};

type Core = shmbridge::FramedSegment;

impl Fields for Core {
    fn get_scalar<T: shmbridge::Scalar>(&self, offset: u64) -> shmbridge::Result<T> {
        self.get(offset)
    }
    fn set_scalar<T: shmbridge::Scalar>(&self, offset: u64, value: T) -> shmbridge::Result<()> {
        self.set(offset, value)
    }
}

/// A snapshot of a framed header.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct HeaderInfo {
    /// Major layout version.
    #[pyo3(get)]
    version_major: u16,
    /// Minor layout version.
    #[pyo3(get)]
    version_minor: u16,
    /// Offset of the payload.
    #[pyo3(get)]
    header_len: u32,
    /// "message", "stream" or "kind-N".
    #[pyo3(get)]
    kind: String,
    /// Flag bits.
    #[pyo3(get)]
    flags: u32,
    /// Bytes available for the payload.
    #[pyo3(get)]
    capacity: u64,
    /// Bytes of valid payload.
    #[pyo3(get)]
    payload_len: u64,
    /// Seqlock counter (odd while a write is in progress).
    #[pyo3(get)]
    sequence: u64,
    /// Publishes so far (wraps at 2**32).
    #[pyo3(get)]
    publish_count: u32,
    /// CRC-32 of the payload, when there is one.
    #[pyo3(get)]
    checksum: Option<u32>,
    /// The creator's pid.
    #[pyo3(get)]
    creator_pid: u32,
    /// The creator's start time (clock ticks since boot).
    #[pyo3(get)]
    creator_start_time: u64,
    /// Creation time, nanoseconds since the epoch.
    #[pyo3(get)]
    created_ns: u64,
    core: shmbridge::HeaderInfo,
}

impl From<shmbridge::HeaderInfo> for HeaderInfo {
    fn from(h: shmbridge::HeaderInfo) -> Self {
        Self {
            version_major: h.version_major,
            version_minor: h.version_minor,
            header_len: h.header_len,
            kind: h.kind.name(),
            flags: h.flags,
            capacity: h.capacity,
            payload_len: h.payload_len,
            sequence: h.sequence,
            publish_count: h.publish_count,
            checksum: h.checksum,
            creator_pid: h.creator_pid,
            creator_start_time: h.creator_start_time,
            created_ns: h.created_ns,
            core: h,
        }
    }
}

#[pymethods]
impl HeaderInfo {
    /// Whether the writer marked the segment closed.
    #[getter]
    fn writer_closed(&self) -> bool {
        self.core.writer_closed()
    }

    /// Whether a writer is alive: some process holds the segment's writer liveness lock (for
    /// a layout 1.0 segment: whether the creator's pid still runs). Works across PID
    /// namespaces.
    fn creator_alive(&self) -> bool {
        self.core.creator_alive()
    }

    fn __repr__(&self) -> String {
        format!(
            "HeaderInfo(version={}.{}, kind={:?}, capacity={}, payload_len={}, sequence={}, publish_count={}, checksum={}, creator_pid={})",
            self.version_major,
            self.version_minor,
            self.kind,
            self.capacity,
            self.payload_len,
            self.sequence,
            self.publish_count,
            self.checksum.map_or_else(|| "None".to_owned(), |c| format!("0x{c:08x}")),
            self.creator_pid
        )
    }
}

/// A framed segment: shmbridge's header (magic, version, lengths, seqlock, futex word,
/// checksum), then the payload. `write` publishes a payload, `read` copies a consistent one,
/// `wait` sleeps until the next publish.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct FramedSegment {
    inner: Handle<Arc<Core>>,
    name: String,
    capacity: u64,
    header_len: u64,
    kind: String,
    readonly: bool,
}

impl FramedSegment {
    fn wrap(core: Core, readonly: bool) -> Self {
        let core_name = core.name().to_owned();
        Self {
            name: core.name().to_owned(),
            capacity: core.capacity(),
            header_len: core.header_len(),
            kind: core.kind().name(),
            readonly,
            inner: Handle::new(Arc::new(core), format!("framed segment {core_name:?}")),
        }
    }

    fn inner(&self) -> PyResult<Arc<Core>> {
        self.inner.get()
    }
}

#[pymethods]
impl FramedSegment {
    /// Create the segment `name` with room for `capacity` payload bytes and an empty payload.
    #[staticmethod]
    #[pyo3(signature = (name, capacity, *, permissions = None, populate = false))]
    fn create(
        py: Python<'_>,
        name: &str,
        capacity: i64,
        permissions: Option<u32>,
        populate: bool,
    ) -> PyResult<Self> {
        let capacity = args::size("capacity", capacity)?;
        let opts = FramedOptions {
            segment: args::segment_options(false, permissions, populate),
        };
        let name = name.to_owned();
        let core = py.detach(|| Core::create(&name, capacity, &opts)).py()?;
        Ok(Self::wrap(core, false))
    }

    /// Open the framed segment `name` and validate its header. With a `timeout` (seconds;
    /// `math.inf` for no limit), wait that long for the segment to appear if it does not exist
    /// yet (without the GIL; Ctrl-C interrupts); without one it must exist now. A segment that
    /// exists but is not framed fails at once either way.
    #[staticmethod]
    #[pyo3(signature = (name, *, readonly = false, timeout = None))]
    fn open(py: Python<'_>, name: &str, readonly: bool, timeout: Option<f64>) -> PyResult<Self> {
        let access = args::access(readonly);
        let core = match timeout {
            None => Core::open(name, access).py()?,
            Some(t) => blocking(py, args::timeout(Some(t))?, Limit::Deadline, |w| {
                Core::open_wait(name, access, w)
            })?
            .py()?,
        };
        Ok(Self::wrap(core, readonly))
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Bytes available for the payload.
    #[getter]
    fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Offset of the payload in the segment.
    #[getter]
    fn header_len(&self) -> u64 {
        self.header_len
    }

    /// "message" or "stream" (or "kind-N" for a kind this version does not know).
    #[getter]
    fn kind(&self) -> &str {
        &self.kind
    }

    /// Whether the segment was opened read-only.
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Current payload length (a snapshot).
    #[getter]
    fn payload_len(&self) -> PyResult<u64> {
        Ok(self.inner()?.payload_len())
    }

    /// The publish counter now; pass it to `wait()` to wait for the next publish.
    #[getter]
    fn publish_count(&self) -> PyResult<u32> {
        Ok(self.inner()?.publish_count())
    }

    /// A snapshot of every header field.
    fn header(&self) -> PyResult<HeaderInfo> {
        Ok(self.inner()?.header().py()?.into())
    }

    /// Publish `data` (any bytes-like object) as the new payload, with its CRC-32, and wake
    /// the waiting readers.
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let inner = self.inner()?;
        let src = InputBuffer::get(data, false)?;
        let bytes = src.as_slice();
        // The core's write clears the current payload when the new one does not fit (its
        // writer is dropped uncommitted); refuse before touching it instead.
        if bytes.len() as u64 > inner.capacity() {
            return Err(errors::out_of_bounds(format!(
                "segment {:?}: a payload of {} bytes does not fit the capacity of {} bytes",
                self.name,
                bytes.len(),
                inner.capacity()
            )));
        }
        if bytes.len() >= RELEASE_GIL_AT {
            py.detach(|| inner.write(bytes)).py()
        } else {
            inner.write(bytes).py()
        }
    }

    /// Copy the current payload into a new `bytes`, consistently (retrying while a write
    /// races the copy) and checked against its CRC-32.
    fn read<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = self.inner()?;
        let mut len = inner.payload_len().min(inner.capacity());
        loop {
            let Ok(n) = usize::try_from(len) else {
                return Err(PyValueError::new_err("payload too large"));
            };
            let mut got = 0u64;
            let bytes = PyBytes::new_with(py, n, |out| {
                let ptr = SendPtr(out.as_mut_ptr());
                let copy = || {
                    // SAFETY: `ptr` is the start of the `n`-byte bytes object under
                    // construction, which nothing else touches during the copy.
                    let buf = unsafe { std::slice::from_raw_parts_mut(ptr.get(), n) };
                    inner.read_into_slice(buf)
                };
                let snap = if n >= RELEASE_GIL_AT {
                    py.detach(copy)
                } else {
                    copy()
                }
                .py()?;
                got = snap.len;
                Ok(())
            })?;
            if got == len {
                return Ok(bytes);
            }
            // A publish of another length came between the length and the copy: again.
            len = got;
        }
    }

    /// Copy the current payload into the writable buffer `out` (consistently, checked);
    /// returns its length, which is exactly what was copied. Raises `shmbridge.OutOfBounds`
    /// when `out` is too small.
    fn readinto(&self, py: Python<'_>, out: &Bound<'_, PyAny>) -> PyResult<usize> {
        let inner = self.inner()?;
        let dst = InputBuffer::get(out, true)?;
        let room = dst.len();
        let ptr = SendPtr(dst.ptr());
        let copy = || {
            // SAFETY: `room` writable bytes at `ptr`, kept alive by `dst` across the call and
            // not part of the mapping.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr.get(), room) };
            inner.read_into_slice(buf)
        };
        let snap = if room >= RELEASE_GIL_AT {
            py.detach(copy)
        } else {
            copy()
        };
        drop(dst);
        let snap = snap.py()?;
        let len = usize::try_from(snap.len).unwrap_or(usize::MAX);
        if len > room {
            return Err(errors::out_of_bounds(format!(
                "segment {:?}: the payload is {len} bytes, the buffer holds {room}",
                self.name
            )));
        }
        Ok(len)
    }

    /// Wait until a publish after `seen` (a value of `publish_count`), without the GIL.
    /// Returns the new counter. `timeout` in seconds (None: no limit); raises
    /// `shmbridge.Timeout`, `shmbridge.WriterClosed` when the writer closed the segment, or
    /// `shmbridge.PeerGone` when no process holds it as its writer any more. Ctrl-C
    /// interrupts it. Read-only handles sleep as read-write ones do.
    #[pyo3(signature = (seen, timeout = None))]
    fn wait(&self, py: Python<'_>, seen: u32, timeout: Option<f64>) -> PyResult<u32> {
        let inner = self.inner()?;
        let timeout = args::timeout(timeout)?;
        // A publish that is there, or comes within a few microseconds, is taken without
        // releasing the GIL.
        if let Some(now) = inner.wait_briefly(seen, SPIN_WITH_GIL).py()? {
            return Ok(now);
        }
        blocking(py, timeout, Limit::Deadline, |w| inner.wait(seen, w))?.py()
    }

    /// Mark the segment closed by its writer and wake every waiting reader.
    fn close_writer(&self) -> PyResult<()> {
        self.inner()?.close_writer().py()
    }

    /// Read a little-endian field at `offset` in the payload area (see `Mapping.get`).
    fn get(&self, py: Python<'_>, kind: &str, offset: u64) -> PyResult<Py<PyAny>> {
        get_field(py, &*self.inner()?, kind, offset)
    }

    /// Write a little-endian field at `offset` in the payload area, in place (not a publish).
    fn set(&self, kind: &str, offset: u64, value: &Bound<'_, PyAny>) -> PyResult<()> {
        set_field(&*self.inner()?, kind, offset, value)
    }

    /// Remove the segment's name.
    fn unlink(&self) -> PyResult<()> {
        ShmObject::remove(&self.name).py()
    }

    /// Unmap and close; never removes the name. Calling it again does nothing.
    fn close(&self) {
        drop(self.inner.close());
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) {
        self.close();
    }

    fn __repr__(&self) -> String {
        format!(
            "FramedSegment({:?}, capacity={}, kind={:?})",
            self.name, self.capacity, self.kind
        )
    }
}
