//! Synchronisation: the one home of everything that waits, publishes or proves it is alive.
//!
//! Every layout that moves data between processes (framed messages, streams, file transfer,
//! and the channel and array kinds) stands on three questions, and this module answers each
//! of them once:
//!
//! - **Has the peer published?** An [`Event`](event::Event) is a futex word in shared memory
//!   that the signalling side bumps, plus a count of sleepers so that a publish costs a system
//!   call only when somebody sleeps. [`Event::wait_until`](event::Event::wait_until) is the one
//!   wait loop: a spin bounded in time (no system call), then `FUTEX_WAIT` (the shared kind)
//!   in slices of at most [`TICK`], calling the caller's liveness check and the [`Wait`]'s
//!   hook between slices. A [`SeqLock`](seqlock::SeqLock) gives readers consistent snapshots
//!   of data a writer replaces in place.
//! - **Is the segment ready?** Segments get their name only once complete (see
//!   `Draft` in the segment module and `docs/SPEC.md` 5.1), so readiness is existence, and
//!   waiting for a name to appear is [`crate::FramedSegment::open_wait`].
//! - **Is the peer alive?** [`liveness`]: each live participant holds an OFD lock on a byte
//!   range of the segment that the kernel drops when it dies, whatever its PID namespace.
//!
//! The fronts (C, C++, Python, the CLI) only build a [`Wait`] from their timeout and their
//! interrupt (a C callback, Python's signal check, the CLI's SIGINT/SIGTERM flag) and pass it
//! down; none of them slices, polls or retries on its own.
//!
//! This module knows only shared words and descriptors, nothing of the layouts above it.

pub(crate) mod event;
pub(crate) mod liveness;
pub(crate) mod seqlock;
mod wait;

pub use wait::{duration_from_secs, Hook, Wait, TICK};
