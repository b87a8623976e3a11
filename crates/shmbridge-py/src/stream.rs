//! Streams: any amount of data through a fixed ring (`shmbridge::stream`), one writer and one
//! reader, as Python classes.
//!
//! Every wait is the core's, run by [`blocking`] without the GIL with Ctrl-C let through; the
//! timeouts measure inactivity (no room made, no data arrived), as the core's do. The lifecycle
//! (who removes the name, and when) is the core's too: see `shmbridge::stream`.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use shmbridge::stream as core;
use shmbridge::{Error, ErrorKind, FramedOptions};

use crate::args;
use crate::errors::{self, IntoPy};
use crate::exporter::InputBuffer;
use crate::handle::Handle;
use crate::mapping::SendPtr;
use crate::wait::{blocking, Limit};

/// The chunk `read()` without a size and iteration take at a time.
const READ_CHUNK: usize = 1 << 20;

/// The writing end of a stream: creates the segment `name` with a ring of `capacity` bytes
/// (the segment is `STREAM_HEADER_LEN` more), announcing `total` bytes when known. Any
/// amount of data passes through; `write()` waits for the reader to make room.
///
/// A stream is used once, and its name goes when it is over (the core's rule, the same in every
/// language): `finish()` (end the stream, wait until the reader verified every byte), and
/// `abort()` or `close()` before the end remove it. A `finish()` that timed out or was
/// interrupted leaves the end published and may be called again. As a context manager it
/// finishes on a normal exit and aborts on an exception. `timeout` (seconds of inactivity,
/// None: no limit) is the default of `write()` and `finish()`; every wait lets Ctrl-C through.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct StreamWriter {
    slot: Handle<core::StreamWriter>,
    name: String,
    capacity: u64,
    total: Option<u64>,
    timeout: Option<Duration>,
    state: Mutex<WriterEnd>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WriterEnd {
    Open,
    Finished(u32),
    Aborted,
}

impl StreamWriter {
    fn end(&self) -> WriterEnd {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_end(&self, e: WriterEnd) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = e;
    }

    fn timeout(&self, given: Option<f64>) -> PyResult<Option<Duration>> {
        match given {
            Some(_) => args::timeout(given),
            None => Ok(self.timeout),
        }
    }
}

#[pymethods]
impl StreamWriter {
    #[new]
    #[pyo3(signature = (name, capacity, *, total = None, timeout = None, permissions = None))]
    fn new(
        py: Python<'_>,
        name: &str,
        capacity: u64,
        total: Option<u64>,
        timeout: Option<f64>,
        permissions: Option<u32>,
    ) -> PyResult<Self> {
        let timeout = args::timeout(timeout)?;
        let opts = FramedOptions {
            segment: args::segment_options(false, permissions, false),
        };
        let owned = name.to_owned();
        let w = py
            .detach(|| core::StreamWriter::create(&owned, capacity, total, &opts))
            .py()?;
        let name = w.framed().name().to_owned();
        Ok(Self {
            slot: Handle::new(w, format!("stream writer {name:?}")),
            name,
            capacity,
            total,
            timeout,
            state: Mutex::new(WriterEnd::Open),
        })
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The ring size in bytes.
    #[getter]
    fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The announced total, if any.
    #[getter]
    fn total(&self) -> Option<u64> {
        self.total
    }

    /// Bytes written so far.
    #[getter]
    fn written(&self) -> PyResult<u64> {
        let w = self.slot.take()?;
        let n = w.written();
        self.slot.put(w);
        Ok(n)
    }

    /// Whether the writer was closed (by `finish`, `abort` or `close`).
    #[getter]
    fn closed(&self) -> bool {
        self.slot.is_closed()
    }

    /// Write all of `data`, waiting for room; returns `len(data)`.
    #[pyo3(signature = (data, timeout = None))]
    fn write(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let timeout = self.timeout(timeout)?;
        let src = InputBuffer::get(data, false)?;
        let bytes = src.as_slice();
        let mut w = self.slot.take()?;
        let result = blocking(py, timeout, Limit::Idle, |wt| w.write(bytes, wt));
        self.slot.put(w);
        result?.py()?;
        Ok(bytes.len())
    }

    /// End the stream and wait until the reader has taken and verified every byte; returns
    /// the CRC-32, and the segment's name is gone. After a timeout or Ctrl-C the end stays
    /// published and `finish()` may be called again.
    #[pyo3(signature = (timeout = None))]
    fn finish(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<u32> {
        if let WriterEnd::Finished(crc) = self.end() {
            return Ok(crc);
        }
        let timeout = self.timeout(timeout)?;
        let mut w = self.slot.take()?;
        let result = blocking(py, timeout, Limit::Idle, |wt| w.finish(wt));
        let retry = match &result {
            Err(_) => true,
            Ok(Err(e)) => matches!(e.kind(), ErrorKind::Timeout | ErrorKind::Aborted),
            Ok(Ok(_)) => false,
        };
        if retry {
            self.slot.put(w);
        } else {
            drop(self.slot.close());
            drop(w);
        }
        match result? {
            Ok(crc) => {
                self.set_end(WriterEnd::Finished(crc));
                Ok(crc)
            }
            Err(e) => {
                if !retry {
                    self.set_end(WriterEnd::Aborted);
                }
                Err(errors::to_py(&e))
            }
        }
    }

    /// Abort the stream (the reader fails at once) and remove the segment. Does nothing once
    /// the end was published by `finish()`.
    fn abort(&self) {
        if matches!(self.end(), WriterEnd::Finished(_)) {
            return;
        }
        if let Some(mut w) = self.slot.close() {
            w.abort();
        }
        if self.end() == WriterEnd::Open {
            self.set_end(WriterEnd::Aborted);
        }
    }

    /// As `abort()` unless finished: a writer closed before `finish()` aborts the stream.
    fn close(&self) {
        self.abort();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// On a normal exit, `finish()` (waiting for the reader); on an exception, `abort()`.
    #[pyo3(signature = (*args))]
    fn __exit__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<()> {
        let failed = args.get_item(0).is_ok_and(|t| !t.is_none());
        if failed || self.slot.is_closed() {
            self.abort();
            return Ok(());
        }
        let r = self.finish(py, None).map(drop);
        if r.is_err() {
            self.abort();
        }
        r
    }

    fn __repr__(&self) -> String {
        format!(
            "StreamWriter({:?}, capacity={}, total={})",
            self.name,
            self.capacity,
            self.total
                .map_or_else(|| "None".to_owned(), |t| t.to_string())
        )
    }
}

/// The reading end of a stream: attaches to the segment `name` as its one reader (a stream
/// is read once). `read()` returns `b""` at the end, once the byte count and CRC-32 verified;
/// `finish()` then tells the writer. Iterating yields chunks of at most 1 MiB. As a context
/// manager it finishes when the verified end was read and gives up otherwise (the writer
/// then fails with `PeerGone`). A dead or aborting writer raises `shmbridge.PeerGone`.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct StreamReader {
    slot: Handle<core::StreamReader>,
    name: String,
    capacity: u64,
    timeout: Option<Duration>,
    crc: Mutex<Option<u32>>,
}

impl StreamReader {
    fn timeout(&self, given: Option<f64>) -> PyResult<Option<Duration>> {
        match given {
            Some(_) => args::timeout(given),
            None => Ok(self.timeout),
        }
    }

    /// Read up to `len` bytes into `ptr`; 0 at the verified end.
    fn read_raw(
        &self,
        py: Python<'_>,
        ptr: SendPtr,
        len: usize,
        timeout: Option<Duration>,
    ) -> PyResult<usize> {
        let mut r = self.slot.take()?;
        let result = blocking(py, timeout, Limit::Idle, |w| {
            // SAFETY: the caller guarantees `len` writable bytes at `ptr` for this call, not
            // accessed by anyone else meanwhile.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr.get(), len) };
            r.read(buf, w)
        });
        self.slot.put(r);
        result?.py()
    }
}

#[pymethods]
impl StreamReader {
    /// Attach to the stream `name`, waiting up to `timeout` (None: no limit) for its writer to
    /// create it; `timeout` is also the default of `read()`. Only a stream owned by this user
    /// is accepted (`PermissionError` otherwise) unless `owner` allows it (`"any"`, a user id,
    /// or a sequence of user ids), as for `recv_file`.
    #[new]
    #[pyo3(signature = (name, *, timeout = None, owner = None))]
    fn new(
        py: Python<'_>,
        name: &str,
        timeout: Option<f64>,
        owner: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let timeout = args::timeout(timeout)?;
        let owner = args::owner(owner)?;
        let r = blocking(py, timeout, Limit::Deadline, |w| {
            core::StreamReader::open_wait_with_owner(name, w, &owner)
        })?
        .py()?;
        let name = r.framed().name().to_owned();
        let capacity = r.framed().capacity();
        Ok(Self {
            slot: Handle::new(r, format!("stream reader {name:?}")),
            name,
            capacity,
            timeout,
            crc: Mutex::new(None),
        })
    }

    /// The segment name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The ring size in bytes.
    #[getter]
    fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The total the writer announced (or, once finished, wrote), if known.
    #[getter]
    fn total(&self) -> PyResult<Option<u64>> {
        let r = self.slot.take()?;
        let t = r.total_len();
        self.slot.put(r);
        Ok(t)
    }

    /// Bytes read so far.
    #[getter]
    fn consumed(&self) -> PyResult<u64> {
        let r = self.slot.take()?;
        let n = r.consumed();
        self.slot.put(r);
        Ok(n)
    }

    /// The verified CRC-32 of the whole stream, once its end was read.
    #[getter]
    fn crc32(&self) -> PyResult<Option<u32>> {
        if let Some(c) = *self.crc.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(Some(c));
        }
        let r = self.slot.take()?;
        let c = r.verified_crc();
        self.slot.put(r);
        Ok(c)
    }

    /// Whether the reader was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.slot.is_closed()
    }

    /// Read up to `size` bytes (`size < 0`: everything to the end); `b""` at the verified end.
    #[pyo3(signature = (size = -1, timeout = None), text_signature = "($self, size=-1, timeout=None)")]
    fn read<'py>(
        &self,
        py: Python<'py>,
        size: i64,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let timeout = self.timeout(timeout)?;
        let Ok(want) = usize::try_from(size) else {
            let mut all = Vec::new();
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                let n = self.read_raw(py, SendPtr(buf.as_mut_ptr()), buf.len(), timeout)?;
                if n == 0 {
                    return Ok(PyBytes::new(py, &all));
                }
                all.extend_from_slice(&buf[..n]);
            }
        };
        let mut buf = vec![0u8; want.min(usize::try_from(self.capacity).unwrap_or(usize::MAX))];
        let n = self.read_raw(py, SendPtr(buf.as_mut_ptr()), buf.len(), timeout)?;
        Ok(PyBytes::new(py, &buf[..n]))
    }

    /// Read into the writable buffer `out`; returns the bytes read (0 at the verified end).
    #[pyo3(signature = (out, timeout = None))]
    fn readinto(
        &self,
        py: Python<'_>,
        out: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<usize> {
        let timeout = self.timeout(timeout)?;
        let dst = InputBuffer::get(out, true)?;
        let n = self.read_raw(py, SendPtr(dst.ptr()), dst.len(), timeout)?;
        drop(dst);
        Ok(n)
    }

    /// Tell the writer every byte arrived and verified; returns the CRC-32. Only after
    /// reading to the end (`read()` returned `b""`).
    fn finish(&self) -> PyResult<u32> {
        if let Some(c) = *self.crc.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(c);
        }
        let r = self.slot.take()?;
        if r.verified_crc().is_none() {
            let e = Error::new(
                ErrorKind::InvalidArgument,
                "the stream has not been read to its verified end (read() until it returns b\"\")",
            )
            .with_segment(&self.name);
            self.slot.put(r);
            return Err(errors::to_py(&e));
        }
        drop(self.slot.close());
        let crc = r.finish().py()?;
        *self.crc.lock().unwrap_or_else(PoisonError::into_inner) = Some(crc);
        Ok(crc)
    }

    /// Give up: the writer fails at once (unless `finish()` was called).
    fn abort(&self) {
        drop(self.slot.close());
    }

    /// Finish if the verified end was read, else `abort()`.
    fn close(&self) {
        let at_end = self
            .slot
            .with(|r| r.verified_crc().is_some())
            .unwrap_or(false);
        if at_end {
            let _ = self.finish();
        }
        self.abort();
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// `close()`: finish when every byte was read and verified, abort otherwise.
    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) {
        self.close();
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// The next chunk (at most 1 MiB); stops at the verified end.
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = self.read(py, 1 << 20, None)?;
        if b.as_bytes().is_empty() {
            return Err(PyStopIteration::new_err(()));
        }
        Ok(b)
    }

    fn __repr__(&self) -> String {
        format!("StreamReader({:?}, capacity={})", self.name, self.capacity)
    }
}
