//! Liveness: whether the process on the other side of a segment still runs, in any PID
//! namespace.
//!
//! Each live participant holds an OFD lock (Linux `F_OFD_SETLK`) on one byte of the segment at
//! the offset of its [`Role`] (`docs/SPEC.md` 5.5). The kernel drops the lock when the
//! participant's last descriptor of that open file description closes, which includes any
//! death; others test it with `F_OFD_GETLK`. Nothing here names a pid, so processes in
//! different PID namespaces sharing `/dev/shm` (containers in one pod, `--ipc=host`) see each
//! other correctly. Pids and start times stay in the headers as information for listings, and
//! are the fallback for segments of layout 1.0, which had no locks.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::sys;

/// Where the lock ranges start: far past any data, so they never overlap what a segment holds
/// (OFD locks may lie past the end of a file; they are advisory and never affect I/O).
pub const LOCK_BASE: u64 = 1 << 62;

/// Who holds a liveness lock, and so at which offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The writer: a framed segment's creator, or the process currently writing it.
    Writer,
    /// A stream's one reader.
    StreamReader,
    /// Read-only readers that wait for publishes (shared locks): they cannot register as
    /// sleepers, so the writer wakes on every publish while any of them exists.
    ReadOnlyWaiter,
    /// A channel's reader place `n` (exclusive: taking it is how a reader claims the place).
    Reader(u32),
}

impl Role {
    /// The byte offset of this role's lock.
    #[must_use]
    pub const fn offset(self) -> u64 {
        LOCK_BASE
            + match self {
                Self::Writer => 0,
                Self::StreamReader => 1,
                Self::ReadOnlyWaiter => 2,
                Self::Reader(n) => 64 + n as u64,
            }
    }

    fn name(self) -> String {
        match self {
            Self::Writer => "writer".into(),
            Self::StreamReader => "stream reader".into(),
            Self::ReadOnlyWaiter => "read-only waiter".into(),
            Self::Reader(n) => format!("reader {n}"),
        }
    }
}

/// A liveness lock this process holds; released when dropped (or when the descriptor closes,
/// or the process dies).
#[derive(Debug)]
pub(crate) struct Lease {
    fd: Arc<OwnedFd>,
    role: Role,
}

impl Lease {
    /// Take `role`'s lock through `fd` without waiting: exclusive (needs a descriptor open for
    /// writing) or shared. `Ok(None)` when another open file description holds it.
    ///
    /// # Errors
    ///
    /// An OS error from `fcntl`, naming `subject`.
    pub(crate) fn try_take(
        fd: &Arc<OwnedFd>,
        role: Role,
        exclusive: bool,
        subject: &str,
    ) -> Result<Option<Self>> {
        match sys::ofd_try_lock(fd.as_fd(), role.offset(), exclusive) {
            Ok(true) => Ok(Some(Self {
                fd: Arc::clone(fd),
                role,
            })),
            Ok(false) => Ok(None),
            Err(e) => Err(Error::from_io(
                &e,
                format!("cannot take the {} liveness lock", role.name()),
            )
            .with_segment(subject)),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        sys::ofd_unlock(self.fd.as_fd(), self.role.offset());
    }
}

/// Whether some other open file description holds `role`'s lock: `Some(true)` alive,
/// `Some(false)` nobody (gone), `None` when the kernel cannot tell (no OFD locks here).
pub(crate) fn held(fd: &OwnedFd, role: Role) -> Option<bool> {
    sys::ofd_probe(fd.as_fd(), role.offset()).ok()
}
