//! Blocking calls from Python: the core's [`Wait`] built from a `timeout` in seconds, run
//! without the GIL, with a hook that lets Ctrl-C (any pending signal) through.
//!
//! This is the only place the extension waits. The core wakes the hook at least every
//! [`shmbridge::TICK`] while it sleeps; the hook takes the GIL, runs the signal handlers, and
//! when one raises (`KeyboardInterrupt`), keeps the exception and asks the core to stop. The
//! core then cleans up as for any failure and returns `Aborted`, and the kept exception is
//! raised instead. Nothing here slices, polls or retries.

use std::ops::ControlFlow;
use std::time::Duration;

use pyo3::prelude::*;
use shmbridge::{ErrorKind, Wait};

/// How long a wait busy-spins with the GIL held before it releases the GIL and blocks (the
/// core's [`FramedSegment::wait_briefly`](shmbridge::FramedSegment::wait_briefly) and
/// [`ChannelReader::ready_briefly`](shmbridge::channel::ChannelReader::ready_briefly): no
/// system call, nothing on a single CPU). Releasing and re-taking the GIL costs about half a
/// microsecond, a sixth of a Python round trip; a reply from a busy peer usually comes within
/// this. Short enough that other Python threads hardly notice.
pub(crate) const SPIN_WITH_GIL: Duration = Duration::from_micros(5);

/// How a blocking call counts its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    /// From the call (waiting for a publish, for a segment to appear).
    Deadline,
    /// As inactivity: it restarts whenever data moves (streams).
    Idle,
}

/// Run the core call `call` without the GIL, with a [`Wait`] of `timeout` counted as `limit`
/// and a hook that runs Python's signal handlers. The outer `Err` is the exception a signal
/// handler raised (the core stopped cleanly); the inner result is the core's.
pub(crate) fn blocking<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    limit: Limit,
    call: impl FnOnce(&mut Wait<'_>) -> shmbridge::Result<T> + Send,
) -> PyResult<shmbridge::Result<T>> {
    let mut pending: Option<PyErr> = None;
    let result = py.detach(|| {
        #[allow(clippy::redundant_closure_for_method_calls)] // the closure fixes the lifetime
        let mut hook = || match Python::attach(|py| py.check_signals()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                pending = Some(e);
                ControlFlow::Break(())
            }
        };
        let wait = match limit {
            Limit::Deadline => Wait::new(timeout),
            Limit::Idle => Wait::forever().idle(timeout),
        };
        call(&mut wait.with_hook(&mut hook))
    });
    match (result, pending) {
        (Err(e), Some(raised)) if e.kind() == ErrorKind::Aborted => Err(raised),
        (result, _) => Ok(result),
    }
}
