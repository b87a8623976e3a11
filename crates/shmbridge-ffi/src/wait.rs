//! How long a blocking call may wait, and the caller's interrupt: `shmb_wait`, converted once
//! into the core's `shmbridge::Wait`.

use std::ffi::{c_int, c_void};
use std::ops::ControlFlow;
use std::time::Duration;

use shmbridge::Wait;

use crate::args::{arg, write_out};
use crate::error::FfiResult;

/// A `timeout_ms` that waits without a time limit.
pub const SHMB_TIMEOUT_FOREVER: i64 = -1;

/// The interrupt of a `shmb_wait`: called from the waiting thread at least every 100 ms while
/// a call waits, with the `interrupt_user` pointer. Return 0 to go on waiting, any other value
/// to stop: the call then fails with `SHMB_ABORTED`, after its usual clean-up. It must not
/// unwind or `longjmp` out, and must not call back into the object that waits.
pub type shmb_interrupt_fn = Option<unsafe extern "C" fn(user: *mut c_void) -> c_int>;

/// How long a blocking call may wait, and who may stop it early. Fill with `shmb_wait_init()`
/// (no limit, no interrupt), then change fields; every blocking function takes a pointer to one
/// (NULL: no limit, no interrupt). Plain data owned by the caller.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct shmb_wait {
    /// The time limit in milliseconds; `SHMB_TIMEOUT_FOREVER` (-1, the default) has none. Other
    /// negative values are `SHMB_INVALID_ARGUMENT`. Functions that move data through a stream
    /// count it as inactivity (it restarts whenever data moves); the others from the call.
    pub timeout_ms: i64,
    /// Called at least every 100 ms while waiting, or NULL (the default).
    pub interrupt: shmb_interrupt_fn,
    /// Passed to `interrupt`, never dereferenced by the library.
    pub interrupt_user: *mut c_void,
}

impl Default for shmb_wait {
    fn default() -> Self {
        Self {
            timeout_ms: SHMB_TIMEOUT_FOREVER,
            interrupt: None,
            interrupt_user: std::ptr::null_mut(),
        }
    }
}

/// Fill `*wait` with the defaults: no time limit, no interrupt. NULL is a no-op.
///
/// # Safety
///
/// `wait` is NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn shmb_wait_init(wait: *mut shmb_wait) {
    crate::error::guard_value((), || {
        if !wait.is_null() {
            arg!(write_out(wait, shmb_wait::default()));
        }
    });
}

/// The C interrupt and its user pointer.
#[derive(Clone, Copy)]
struct Interrupt {
    f: unsafe extern "C" fn(*mut c_void) -> c_int,
    user: *mut c_void,
}

// SAFETY: the core calls the hook only from the thread running the call, which is the thread
// that passed the pointer; the pointer is only handed back to the caller's function.
unsafe impl Send for Interrupt {}

/// A `shmb_wait`, checked: run a core call with it.
pub(crate) struct CWait {
    timeout: Option<Duration>,
    interrupt: Option<Interrupt>,
}

impl CWait {
    /// Check a `shmb_wait` (read by `crate::args::wait_arg`).
    pub(crate) fn new(w: &shmb_wait, func: &str) -> FfiResult<Self> {
        Ok(Self {
            timeout: crate::args::timeout(func, w.timeout_ms)?,
            interrupt: w.interrupt.map(|f| Interrupt {
                f,
                user: w.interrupt_user,
            }),
        })
    }

    /// Run `call` with the core `Wait` this describes: the timeout counts from now, or as an
    /// inactivity limit when `idle` (streams).
    pub(crate) fn run<T>(
        &self,
        idle: bool,
        call: impl FnOnce(&mut Wait<'_>) -> shmbridge::Result<T>,
    ) -> shmbridge::Result<T> {
        let interrupt = self.interrupt;
        let mut hook = move || match interrupt {
            // SAFETY: the caller's function, called as `shmb_interrupt_fn` documents.
            Some(i) if unsafe { (i.f)(i.user) } != 0 => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        };
        let wait = if idle {
            Wait::forever().idle(self.timeout)
        } else {
            Wait::new(self.timeout)
        };
        call(&mut wait.with_hook(&mut hook))
    }
}
