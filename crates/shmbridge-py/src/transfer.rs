//! File transfer: `send_file`, `recv_file` and their report, over the core's
//! `shmbridge::send_file` / `shmbridge::recv_file`.
//!
//! The core runs without the GIL. Python is touched from inside it only through the core's
//! progress hook, which the core calls after each chunk and at least every 100 ms while it
//! waits for its peer. [`Hook`] rate-limits it: at most every [`PROGRESS_INTERVAL`] (plus the
//! final call) it takes the GIL, checks for signals (Ctrl-C) and calls the user's callback.
//! An exception from either is kept and the hook returns `ControlFlow::Break`: the core stops
//! with `ErrorKind::Aborted`, cleaning up as for any failure (a sender removes its segment, a
//! receiver leaves the target untouched), and the kept exception is raised from the call.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use shmbridge::{ErrorKind, Progress, ProgressFn, RecvOptions, SendOptions};

use crate::args;
use crate::errors;

/// The most often the progress hook takes the GIL (the final call always happens).
pub(crate) const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Default)]
struct HookState {
    last: Option<Instant>,
    error: Option<PyErr>,
    final_done: bool,
}

/// The bridge from a core progress call to Python: rate limit, signals, callback, errors.
pub(crate) struct Hook {
    callback: Option<Py<PyAny>>,
    state: Mutex<HookState>,
}

impl Hook {
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Arc<Self> {
        Arc::new(Self {
            callback,
            state: Mutex::new(HookState {
                last: Some(Instant::now()),
                ..HookState::default()
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HookState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The core's progress function. Called without the GIL, from the transferring thread.
    pub(crate) fn progress_fn(self: &Arc<Self>) -> ProgressFn {
        let hook = Arc::clone(self);
        Arc::new(move |p: Progress| hook.on_progress(p))
    }

    fn on_progress(&self, p: Progress) -> ControlFlow<()> {
        let is_final = p.total == Some(p.done);
        {
            let mut st = self.state();
            let now = Instant::now();
            if !is_final
                && st
                    .last
                    .is_some_and(|t| now.duration_since(t) < PROGRESS_INTERVAL)
            {
                return ControlFlow::Continue(());
            }
            st.last = Some(now);
            st.final_done |= is_final;
        }
        let result = Python::attach(|py| -> PyResult<()> {
            py.check_signals()?;
            if let Some(cb) = &self.callback {
                cb.call1(py, (p.done, p.total))?;
            }
            Ok(())
        });
        match result {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.state().error = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    /// Run `f` (a core call using [`progress_fn`](Self::progress_fn)) without the GIL.
    /// Returns the core's result, or the Python exception that stopped it.
    pub(crate) fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce() -> shmbridge::Result<T> + Send,
    ) -> Result<shmbridge::Result<T>, PyErr> {
        match py.detach(f) {
            Err(e) if e.kind() == ErrorKind::Aborted => match self.state().error.take() {
                Some(py_err) => Err(py_err),
                None => Ok(Err(e)),
            },
            other => Ok(other),
        }
    }

    /// After success: call the callback with (bytes, bytes) unless the final call happened
    /// (an empty file, or a stream of unknown length, never reports done == total).
    pub(crate) fn finish(&self, py: Python<'_>, bytes: u64) -> PyResult<()> {
        let done = std::mem::replace(&mut self.state().final_done, true);
        match &self.callback {
            Some(cb) if !done => cb.call1(py, (bytes, Some(bytes))).map(drop),
            _ => Ok(()),
        }
    }
}

/// What a finished transfer did.
#[pyclass(module = "shmbridge._native", frozen)]
pub struct TransferReport {
    /// The segment name.
    #[pyo3(get)]
    name: String,
    /// The file sent or written.
    path: PathBuf,
    /// Bytes transferred (and verified, on the receiving side).
    #[pyo3(get)]
    bytes: u64,
    /// CRC-32 of the bytes (as `zlib.crc32`).
    #[pyo3(get)]
    crc32: u32,
    /// How the file travelled: "one-shot" or "stream".
    #[pyo3(get)]
    transfer: &'static str,
    /// Total size of the segment used, header included.
    #[pyo3(get)]
    segment_size: u64,
    /// Wall time of the call, in seconds.
    #[pyo3(get)]
    elapsed: f64,
}

impl From<shmbridge::Report> for TransferReport {
    fn from(r: shmbridge::Report) -> Self {
        Self {
            name: r.name,
            path: r.path,
            bytes: r.bytes,
            crc32: r.crc32,
            transfer: args::transfer_name(r.mode),
            segment_size: r.segment_size,
            elapsed: r.elapsed.as_secs_f64(),
        }
    }
}

#[pymethods]
impl TransferReport {
    /// Deprecated: `transfer` (this spells one-shot "oneshot", as it always did).
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        args::deprecated(py, "TransferReport.mode", "TransferReport.transfer")?;
        Ok(match self.transfer {
            "one-shot" => "oneshot",
            other => other,
        })
    }

    /// The file sent or written (a str; file-system encoding, as `os.fsdecode`).
    #[getter]
    fn path<'py>(&self, py: Python<'py>) -> Bound<'py, pyo3::types::PyString> {
        match self.path.as_os_str().into_pyobject(py) {
            Ok(s) => s,
            Err(never) => match never {},
        }
    }

    /// Bytes per second over the call.
    #[getter]
    #[allow(clippy::cast_precision_loss)]
    fn throughput(&self) -> f64 {
        self.bytes as f64 / self.elapsed.max(1e-9)
    }

    fn __repr__(&self) -> String {
        format!(
            "TransferReport(name={:?}, path={:?}, bytes={}, crc32=0x{:08x}, transfer={:?}, segment_size={}, elapsed={:.6})",
            self.name,
            self.path.display().to_string(),
            self.bytes,
            self.crc32,
            self.transfer,
            self.segment_size,
            self.elapsed
        )
    }
}

/// The segment name a file is sent under when none is given: its file name, made safe (the
/// same rule as the `shmbridge` command).
#[pyfunction]
pub fn name_for_file(path: PathBuf) -> String {
    shmbridge::name::for_file(&path)
}

/// Send the file at `path` through the segment `name` (default: the file's name, made safe),
/// which must not exist yet.
///
/// `transfer`: "one-shot" (one segment sized to the file, published with its CRC-32; returns at
/// once, leaving the segment for the receiver), "stream" (through a ring of `segment_size`
/// bytes, default 16 MiB; returns once the receiver has taken and verified every byte), or
/// "auto" (streams only when the file does not fit in `segment_size`). `timeout` (seconds,
/// streaming): how long to wait for a receiver to come or make progress. `permissions`: the
/// segment's permission bits (default 0o600). `mode=` is the deprecated old name of
/// `transfer=` (a `DeprecationWarning`). `progress(done, total)`: called with the GIL at most
/// about ten times a second, plus once at the end; an exception from it (or Ctrl-C) stops the
/// transfer, removes the segment and propagates.
///
/// Raises `FileNotFoundError` / `PermissionError` (the file), `IsADirectoryError`,
/// `ValueError` (a special file, a bad name or transfer), `shmbridge.Error` (the file changed
/// while sent: `kind` is `"Changed"`),
/// `FileExistsError` (the name is taken), `shmbridge.Timeout` and `shmbridge.PeerGone`
/// (streaming: no receiver, or it died or gave up). Every exception from the core has a
/// `kind` attribute naming the core's error kind.
#[pyfunction]
#[pyo3(signature = (path, name = None, *, transfer = None, segment_size = None, timeout = None, permissions = None, progress = None, mode = None))]
#[allow(clippy::too_many_arguments)]
pub fn send_file(
    py: Python<'_>,
    path: PathBuf,
    name: Option<String>,
    transfer: Option<&str>,
    segment_size: Option<u64>,
    timeout: Option<f64>,
    permissions: Option<u32>,
    progress: Option<Py<PyAny>>,
    mode: Option<&str>,
) -> PyResult<TransferReport> {
    let transfer = args::renamed(py, ("transfer", transfer), ("mode", mode), "auto")?;
    let name = name.unwrap_or_else(|| shmbridge::name::for_file(&path));
    let hook = Hook::new(progress);
    let opts = SendOptions {
        mode: args::transfer(transfer)?,
        segment_size,
        timeout: args::timeout(timeout)?,
        permissions,
        progress: Some(hook.progress_fn()),
    };
    match hook.run(py, || shmbridge::send_file(&path, &name, &opts)) {
        Ok(Ok(report)) => {
            hook.finish(py, report.bytes)?;
            Ok(report.into())
        }
        Ok(Err(e)) => Err(errors::to_py(&e)),
        // Stopped from Python: the core already closed and removed the segment.
        Err(e) => Err(e),
    }
}

/// Receive the file sent through the segment `name` into `path`, atomically: `path` appears
/// only once every byte arrived and its CRC-32 matched; on any failure it is untouched and no
/// temporary file is left.
///
/// Waits up to `timeout` seconds (None: no limit) for the sender: for the segment to appear,
/// to be published, and (streaming) for each next piece of data. Removes the segment
/// afterwards unless `keep`; `fsync` flushes the file and its directory first. `progress` as
/// for `send_file`. Ctrl-C interrupts the wait for the sender and a running transfer.
///
/// Raises `shmbridge.Timeout`, `shmbridge.PeerGone` / `shmbridge.WriterClosed` (the sender
/// died or gave up), `shmbridge.ChecksumMismatch` / `shmbridge.Truncated` (the data did not
/// verify), `FileNotFoundError` / `PermissionError` (the target directory; checked before
/// anything is consumed), `IsADirectoryError`, `FileExistsError` (another receiver took the
/// stream), `shmbridge.BadMagic` and the other header errors.
///
/// Only segments owned by this user are accepted (anyone can create a segment under the name
/// a receiver waits for): another owner's raises `PermissionError` and is left alone, unless
/// `owner` allows it (`"any"`, a user id, or a sequence of user ids). Root is not exempt.
#[pyfunction]
#[pyo3(signature = (name, path, *, timeout = None, keep = false, fsync = false, progress = None, owner = None))]
#[allow(clippy::too_many_arguments)]
pub fn recv_file(
    py: Python<'_>,
    name: &str,
    path: PathBuf,
    timeout: Option<f64>,
    keep: bool,
    fsync: bool,
    progress: Option<Py<PyAny>>,
    owner: Option<&Bound<'_, PyAny>>,
) -> PyResult<TransferReport> {
    let started = Instant::now();
    let owner = args::owner(owner)?;
    let timeout = args::timeout(timeout)?;
    let bare = shmbridge::name::validate(name)
        .map_err(|e| errors::to_py(&e))?
        .to_owned();
    let hook = Hook::new(progress);
    let opts = RecvOptions {
        timeout,
        keep,
        fsync,
        progress: Some(hook.progress_fn()),
    };
    match hook.run(py, || {
        shmbridge::recv_file_with_owner(&bare, &path, &opts, &owner)
    })? {
        Ok(report) => {
            hook.finish(py, report.bytes)?;
            let mut r = TransferReport::from(report);
            r.elapsed = started.elapsed().as_secs_f64();
            Ok(r)
        }
        Err(e) => Err(errors::to_py(&e)),
    }
}
