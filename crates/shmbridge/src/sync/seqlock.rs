//! The seqlock: consistent snapshots of data one writer replaces in place (`docs/SPEC.md` 5.3).
//!
//! The writer makes the counter odd, writes, and makes it even again; a reader reads between
//! two loads of the counter and keeps the result only when both loads are equal and even.
//! A writer that dies mid-write leaves the counter odd: readers give up after
//! [`RACE_LIMIT`] with a timeout instead of taking a torn snapshot.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// How long a reader retries while a write stays in progress before it gives up.
pub(crate) const RACE_LIMIT: Duration = Duration::from_secs(2);

/// A seqlock counter in shared memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SeqLock<'a>(pub(crate) &'a AtomicU64);

impl SeqLock<'_> {
    /// Start a write: the counter turns odd (if it already was, a previous writer died
    /// mid-write and this one takes over). Returns the token for [`end_write`](Self::end_write).
    pub(crate) fn begin_write(self) -> u64 {
        let start = self.0.load(Ordering::Relaxed) | 1;
        self.0.store(start, Ordering::Relaxed);
        // Orders the odd counter before every data store that follows.
        fence(Ordering::Release);
        start
    }

    /// End a write: the counter turns even, publishing every store made since `begin_write`.
    pub(crate) fn end_write(self, start: u64) {
        self.0.store(start.wrapping_add(1), Ordering::Release);
    }

    /// Run `attempt` until one run overlaps no write, and return its result with the (even)
    /// counter it saw. `attempt` may run several times and must only copy or hash what it reads;
    /// it returns `Err` to stop at once, and `Ok(None)` when what it read does not add up
    /// (checked again on a stable counter: `invalid` then gives the error to return).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when a write stays in progress for [`RACE_LIMIT`] (naming
    /// `subject`); whatever `attempt` or `invalid` return.
    pub(crate) fn read<T>(
        self,
        subject: &str,
        attempt: impl FnMut() -> Result<Option<T>>,
        invalid: impl Fn() -> Error,
    ) -> Result<(T, u64)> {
        self.read_raced(subject, attempt, invalid, |_| {})
    }

    /// As [`read`](Self::read), calling `raced(Some(took))` after every attempt a write
    /// overlapped, with how long that attempt took, and `raced(None)` on every look at an odd
    /// counter once a short spin found it odd throughout: a reader whose copies keep losing to
    /// a writer that publishes back to back (its counter is odd nearly all the time) asks it
    /// for a window there (the array kind's copy request, SPEC 7.5).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub(crate) fn read_raced<T>(
        self,
        subject: &str,
        mut attempt: impl FnMut() -> Result<Option<T>>,
        invalid: impl Fn() -> Error,
        mut raced: impl FnMut(Option<Duration>),
    ) -> Result<(T, u64)> {
        let mut deadline = None;
        let mut spins = 0u32;
        loop {
            let s1 = self.0.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let began = Instant::now();
                let got = attempt()?;
                fence(Ordering::Acquire);
                if self.0.load(Ordering::Relaxed) == s1 {
                    return match got {
                        Some(v) => Ok((v, s1)),
                        None => Err(invalid()),
                    };
                }
                raced(Some(began.elapsed()));
            } else if spins >= 64 {
                raced(None);
            }
            let d = *deadline.get_or_insert_with(|| Instant::now() + RACE_LIMIT);
            if Instant::now() > d {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "timed out: a write stayed in progress for {RACE_LIMIT:?} (the writer may have died mid-write)"
                    ),
                )
                .with_segment(subject));
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}
