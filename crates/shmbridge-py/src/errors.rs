//! Core errors as Python exceptions.
//!
//! Where the standard library has a case, the standard library's class: `OSError(errno, ...)`
//! (which Python turns into `FileExistsError`, `FileNotFoundError`, `PermissionError`, ...),
//! `ValueError` for bad names and sizes. The library's own cases derive from
//! `shmbridge.Error`; a few also derive from the built-in class a caller would expect
//! (`Timeout` is a `TimeoutError`, `OutOfBounds` an `IndexError`, `ClosedError` a
//! `ValueError`, as for a closed file).

use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyIndexError, PyIsADirectoryError,
    PyOSError, PyPermissionError, PyTimeoutError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use shmbridge::{Error, ErrorKind};

/// Our exception classes, in [`CLASSES`] order.
static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// Name, extra built-in base (besides `Error`, or `Exception` for `Error` itself), doc.
const CLASSES: &[(&str, Option<&str>, &str)] = &[
    ("Error", None, "Base class of shmbridge's own errors."),
    (
        "BadMagic",
        None,
        "The segment is not a shmbridge framed segment (wrong magic).",
    ),
    (
        "UnsupportedVersion",
        None,
        "A framed layout version this library cannot read.",
    ),
    (
        "CorruptHeader",
        None,
        "A framed header whose fields do not add up.",
    ),
    (
        "Truncated",
        None,
        "The segment is smaller than its header or declared lengths say.",
    ),
    (
        "ChecksumMismatch",
        None,
        "The payload does not match its checksum.",
    ),
    ("Timeout", Some("TimeoutError"), "A wait ran out of time."),
    (
        "WriterClosed",
        None,
        "The writer closed the segment before the awaited data arrived.",
    ),
    ("PeerGone", None, "The other side of a transfer went away."),
    (
        "OutOfBounds",
        Some("IndexError"),
        "An access past the end of a mapping or payload.",
    ),
    ("ClosedError", Some("ValueError"), "The object was closed."),
    (
        "Unsupported",
        None,
        "Not supported on this platform or for this kind of segment.",
    ),
];

fn builtin<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyType> {
    match name {
        "TimeoutError" => py.get_type::<PyTimeoutError>(),
        "IndexError" => py.get_type::<PyIndexError>(),
        _ => py.get_type::<PyValueError>(),
    }
}

/// Create the classes and add them to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let types = TYPES.get_or_try_init(py, || -> PyResult<Vec<Py<PyType>>> {
        let type_ = py.get_type::<PyType>();
        let mut out: Vec<Py<PyType>> = Vec::with_capacity(CLASSES.len());
        for (name, extra, doc) in CLASSES {
            let mut bases = Vec::new();
            match out.first() {
                Some(base) => bases.push(base.bind(py).clone()),
                None => bases.push(py.get_type::<PyException>()),
            }
            if let Some(extra) = extra {
                bases.push(builtin(py, extra));
            }
            let dict = PyDict::new(py);
            dict.set_item("__module__", "shmbridge")?;
            dict.set_item("__doc__", *doc)?;
            let cls = type_.call1((*name, PyTuple::new(py, bases)?, dict))?;
            out.push(cls.cast_into::<PyType>()?.unbind());
        }
        Ok(out)
    })?;
    for ((name, _, _), cls) in CLASSES.iter().zip(types) {
        m.add(*name, cls.bind(py))?;
    }
    Ok(())
}

/// Our class called `name`, or `shmbridge.Error` when there is no class of that name.
fn ours(name: &str, msg: String) -> PyErr {
    Python::attach(|py| {
        let index = CLASSES.iter().position(|c| c.0 == name).unwrap_or(0);
        match TYPES.get(py) {
            Some(types) => PyErr::from_type(types[index].bind(py).clone(), msg),
            None => PyException::new_err(msg),
        }
    })
}

/// `shmbridge.ClosedError` for an object used after `close()`.
pub(crate) fn closed(what: &str) -> PyErr {
    ours("ClosedError", format!("{what} is closed"))
}

/// `shmbridge.OutOfBounds` with a message.
pub(crate) fn out_of_bounds(msg: String) -> PyErr {
    ours("OutOfBounds", msg)
}

/// The one conversion of a core error into a Python exception: the class below, with the
/// core's kind in its `kind` attribute, by its name (`"NotFound"`, `"Changed"`, ...: the
/// `ErrorKind` names every front uses), on every path.
pub(crate) fn to_py(err: &Error) -> PyErr {
    let e = class_for(err);
    Python::attach(|py| {
        // Best effort: an attribute on an exception instance cannot fail in practice.
        let _ = e.value(py).setattr("kind", err.kind().name());
    });
    e
}

/// The exception class (and arguments) for `err`.
///
/// - OS errors of the kinds the stdlib has classes for: `OSError(errno, detail, name)`, which
///   Python turns into `FileExistsError`, `FileNotFoundError`, ... by errno, as the stdlib's
///   own `shm_open` errors do;
/// - a directory given to a transfer where a file belongs: `IsADirectoryError`, as `open()`
///   raises;
/// - bad names, sizes and arguments: `ValueError`;
/// - the library's own cases: their `shmbridge.Error` subclass, or `shmbridge.Error` itself
///   for a kind without one (`Changed`, `Aborted`, ...).
fn class_for(err: &Error) -> PyErr {
    let msg = err.to_string();
    if let Some(errno) = err.errno() {
        if matches!(
            err.kind(),
            ErrorKind::AlreadyExists
                | ErrorKind::NotFound
                | ErrorKind::PermissionDenied
                | ErrorKind::NoSpace
                | ErrorKind::Os
        ) {
            let filename = err.segment().unwrap_or_default().to_owned();
            return PyOSError::new_err((errno, err.detail().to_owned(), filename));
        }
    }
    // The transfers refuse a directory in so many words ("... is a directory"); a mapping of
    // one stays a ValueError ("not a regular file"), as it always was.
    if err.kind() == ErrorKind::InvalidArgument
        && err.is_path()
        && err.detail().contains("is a directory")
    {
        if let Some(dir) = err.segment().filter(|p| std::path::Path::new(p).is_dir()) {
            return PyIsADirectoryError::new_err((
                libc::EISDIR,
                err.detail().to_owned(),
                dir.to_owned(),
            ));
        }
    }
    match err.kind() {
        ErrorKind::AlreadyExists => PyFileExistsError::new_err(msg),
        ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        ErrorKind::InvalidName | ErrorKind::InvalidSize | ErrorKind::InvalidArgument => {
            PyValueError::new_err(msg)
        }
        ErrorKind::NoSpace | ErrorKind::Os => PyOSError::new_err(msg),
        ErrorKind::Closed => ours("ClosedError", msg),
        kind => ours(kind.name(), msg),
    }
}

/// The exception shmbridge raises for an error of the kind named `kind` (an `ErrorKind` name,
/// as `ERROR_KINDS` lists them), with the message `message`: for code that re-raises a
/// failure as shmbridge would, and for the tests that check every kind reaches Python.
#[pyfunction]
#[pyo3(signature = (kind, message = ""))]
pub fn error_for_kind(py: Python<'_>, kind: &str, message: &str) -> PyResult<Py<PyAny>> {
    let k = ErrorKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| PyValueError::new_err(format!("unknown error kind {kind:?}")))?;
    Ok(to_py(&Error::new(k, message)).into_value(py).into_any())
}

/// Register `error_for_kind` and `ERROR_KINDS` (every `ErrorKind` name, in number order).
pub(crate) fn register_kinds(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(error_for_kind, m)?)?;
    let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    m.add("ERROR_KINDS", PyTuple::new(m.py(), names)?)?;
    Ok(())
}

/// `result.map_err(to_py)` as a method.
pub(crate) trait IntoPy<T> {
    /// Convert the core error into the Python exception.
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for shmbridge::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| to_py(&e))
    }
}
