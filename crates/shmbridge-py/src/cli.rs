//! `cli_main(argv) -> int`: the `shmbridge` command (the `shmbridge-cli` crate's `run`), for
//! the console script and `python -m shmbridge` (python/shmbridge/__main__.py).
//!
//! The command runs without the GIL. Its interrupt is Python's own signal handling: the
//! command polls it from the transfer's progress hook (after each chunk, and at least every
//! 100 ms while waiting), and at most every [`shmbridge::TICK`] it takes the GIL and runs the
//! pending signal handlers (`PyErr_CheckSignals`). A handler that raises (Ctrl-C's
//! `KeyboardInterrupt`, or SIGTERM routed to it by `__main__.py`) stops the command cleanly:
//! exit 130, as the binary does. Any other exception a handler raises is re-raised after the
//! command has cleaned up.

use std::ffi::OsString;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

use shmbridge::TICK as SIGNAL_SLICE;

/// What the interrupt has seen.
struct Seen {
    last_check: Instant,
    /// The exception a signal handler raised; once set, the command is stopping.
    raised: Option<PyErr>,
}

/// Exit code for a panic inside the command (as Rust's own for a panicking `main`): a panic
/// must not cross into Python.
const PANIC_EXIT: u8 = 101;

/// Run the `shmbridge` command with the arguments `argv` (the program name first, as
/// `sys.argv`) and return its exit code. It writes to this process's stdout and stderr
/// (file descriptors 1 and 2: flush `sys.stdout` first). Ctrl-C stops a transfer cleanly and
/// returns 130.
#[pyfunction]
#[allow(clippy::redundant_closure_for_method_calls)] // the closure: check_signals is lifetime-bound
pub fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> PyResult<u8> {
    let seen = Arc::new(Mutex::new(Seen {
        last_check: Instant::now(),
        raised: None,
    }));
    let state = Arc::clone(&seen);
    let interrupt = shmbridge_cli::Interrupt::new(move || {
        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.raised.is_some() {
            return true;
        }
        if st.last_check.elapsed() < SIGNAL_SLICE {
            return false;
        }
        st.last_check = Instant::now();
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            st.raised = Some(e);
            return true;
        }
        false
    });
    let code = py.detach(|| {
        // Unwind safe enough: after a panic nothing of the command is used again, and the
        // state behind the interrupt is a Mutex (poison is taken into account).
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shmbridge_cli::run(argv, &interrupt)
        }))
        .unwrap_or(PANIC_EXIT)
    });
    let raised = seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .raised
        .take();
    match raised {
        Some(e) if !e.is_instance_of::<PyKeyboardInterrupt>(py) => Err(e),
        _ => Ok(code),
    }
}
