//! The one closable handle every Python class over a core object holds (`Mapping`,
//! `Segment`, `FramedSegment`, `StreamWriter`, `StreamReader`).
//!
//! It holds the core object until `close()`; after that every use raises
//! `shmbridge.ClosedError` naming the object, and `close()` again does nothing. Two ways in:
//!
//! - shared, for objects any number of calls may use at once: hold an `Arc` and [`get`] a
//!   clone of it, so a long call (a copy, a wait) holds no lock and `close()` never waits for
//!   it (the object is dropped when the last call finishes);
//! - exclusive, for objects a call needs `&mut` of (the stream ends): [`take`] it out for the
//!   call and [`put`] it back; a second thread meanwhile gets "in use", and a `close()`
//!   meanwhile wins (the object comes back to a closed handle and is dropped).
//!
//! [`get`]: Handle::get
//! [`take`]: Handle::take
//! [`put`]: Handle::put

use std::sync::{Mutex, MutexGuard, PoisonError};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors;

struct State<T> {
    value: Option<T>,
    closed: bool,
}

/// A core object until `close()` (see the module documentation).
pub(crate) struct Handle<T> {
    state: Mutex<State<T>>,
    /// What `ClosedError` names, e.g. `segment "frames"`.
    what: String,
}

impl<T> Handle<T> {
    /// A handle holding `value`, called `what` in errors.
    pub(crate) fn new(value: T, what: impl Into<String>) -> Self {
        Self {
            state: Mutex::new(State {
                value: Some(value),
                closed: false,
            }),
            what: what.into(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run a short `f` on the object, under the handle's lock.
    ///
    /// # Errors
    ///
    /// `ClosedError` after `close()`; `RuntimeError` while another thread has it taken.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> PyResult<R> {
        let g = self.lock();
        match (&g.value, g.closed) {
            (_, true) => Err(errors::closed(&self.what)),
            (Some(v), false) => Ok(f(v)),
            (None, false) => Err(self.in_use()),
        }
    }

    /// Take the object out for a call that needs it exclusively; give it back with [`put`].
    ///
    /// # Errors
    ///
    /// As [`with`](Self::with).
    ///
    /// [`put`]: Self::put
    pub(crate) fn take(&self) -> PyResult<T> {
        let mut g = self.lock();
        if g.closed {
            return Err(errors::closed(&self.what));
        }
        g.value.take().ok_or_else(|| self.in_use())
    }

    /// Give back what [`take`](Self::take) took. A handle closed meanwhile drops it.
    pub(crate) fn put(&self, value: T) {
        let mut g = self.lock();
        if !g.closed {
            g.value = Some(value);
        }
    }

    /// Close: from now on every use is `ClosedError`. Returns the object when it was there
    /// (`None` when already closed, or taken by a call in progress).
    pub(crate) fn close(&self) -> Option<T> {
        let mut g = self.lock();
        g.closed = true;
        g.value.take()
    }

    /// Whether `close()` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    fn in_use(&self) -> PyErr {
        PyRuntimeError::new_err(format!("{} is in use by another thread", self.what))
    }
}

impl<T: Clone> Handle<T> {
    /// A clone of the object (an `Arc`, for shared use without holding the lock).
    ///
    /// # Errors
    ///
    /// As [`with`](Self::with).
    pub(crate) fn get(&self) -> PyResult<T> {
        self.with(T::clone)
    }
}
