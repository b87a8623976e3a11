//! How a running command learns that it should stop (Ctrl-C, SIGTERM, or whatever the host
//! program decides): a function the command polls from the transfer's progress hook, which the
//! core calls after each chunk and at least every 100 ms while it waits for its peer.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Asks "should the command stop now?". Cheap to clone; called from the transferring thread.
#[derive(Clone)]
pub struct Interrupt(Arc<dyn Fn() -> bool + Send + Sync>);

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interrupt")
    }
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
}

impl Interrupt {
    /// An interrupt that asks `requested` (which must be quick: it is polled often).
    pub fn new(requested: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(requested))
    }

    /// Never interrupts.
    #[must_use]
    pub fn never() -> Self {
        Self::new(|| false)
    }

    /// Route SIGINT and SIGTERM of this process to a flag and interrupt once either arrived:
    /// what the `shmbridge` binary does, so a sender removes its segment and a receiver leaves
    /// its target untouched, and the command exits 130.
    #[must_use]
    pub fn on_signals() -> Self {
        let handler = on_signal as extern "C" fn(libc::c_int);
        for sig in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only performs an atomic store, which is async-signal-safe,
            // and it is a plain function that lives for the whole program.
            unsafe { libc::signal(sig, handler as libc::sighandler_t) };
        }
        Self::new(|| SIGNALLED.load(Ordering::SeqCst))
    }

    /// Whether a stop was asked for.
    #[must_use]
    pub fn requested(&self) -> bool {
        (self.0)()
    }
}
