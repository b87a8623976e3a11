//! Events: a futex word in shared memory, bumped by the side that publishes, and the one wait
//! loop of the library.
//!
//! The handshake (`docs/SPEC.md` 5.4): the publisher changes the state, increments the word and
//! then reads the sleeper count, waking sleepers if there are any; a sleeper increments the
//! sleeper count, then reads the word, then re-checks the state, and only then calls
//! `FUTEX_WAIT` with the word it read (which returns at once if the word moved meanwhile). The
//! word and the sleeper count are accessed with sequentially consistent operations, so either
//! the sleeper sees the new state or the publisher sees the sleeper: no wake-up is lost.
//!
//! A sleeper that cannot write the sleeper count (a read-only mapping) relies on the publisher
//! waking on every publish, which the publisher promises with a flag bit; until it does, such
//! a sleeper sleeps in short slices (see `FramedSegment::wait`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::wait::Wait;
use crate::error::Result;
use crate::sys;

/// The longest a waiter spins (re-reading shared words, no system call) before it sleeps.
/// A reply that comes within this is caught at memory speed; a longer spin would only burn
/// the CPU, and on a single CPU it would starve the very peer it waits for.
pub(crate) const SPIN: Duration = Duration::from_micros(30);

/// The slice an unregistered sleeper uses while the publisher has not yet promised to wake it.
pub(crate) const UNREGISTERED_SLICE: Duration = Duration::from_millis(1);

/// How long to spin, for this process: nothing when it may run on one CPU only (spinning
/// there only delays the peer, which needs that CPU to make progress).
fn spin_budget() -> Duration {
    static BUDGET: OnceLock<Duration> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        if sys::cpus_allowed() > 1 {
            SPIN
        } else {
            Duration::ZERO
        }
    })
}

/// How a waiter tells the publisher that it sleeps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sleepers<'a> {
    /// By incrementing this count for the duration of each sleep.
    Count(&'a AtomicU32),
    /// It cannot (its mapping is read-only). It sleeps in full slices only once bit `bit` of
    /// `flags` says the publisher wakes on every publish; in [`UNREGISTERED_SLICE`]s before.
    Unregistered {
        /// The word holding the promise.
        flags: &'a AtomicU32,
        /// The promise's bit.
        bit: u32,
    },
}

/// A futex word and how its sleepers are counted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Event<'a> {
    word: &'a AtomicU32,
    sleepers: Sleepers<'a>,
}

impl<'a> Event<'a> {
    /// An event whose sleepers register in `sleepers`.
    pub(crate) fn new(word: &'a AtomicU32, sleepers: &'a AtomicU32) -> Self {
        Self {
            word,
            sleepers: Sleepers::Count(sleepers),
        }
    }

    /// An event waited on by a process that cannot register (see [`Sleepers::Unregistered`]).
    pub(crate) fn unregistered(word: &'a AtomicU32, flags: &'a AtomicU32, bit: u32) -> Self {
        Self {
            word,
            sleepers: Sleepers::Unregistered { flags, bit },
        }
    }

    /// Publish: increment the word, then wake every sleeper if there is one (or if `always`).
    /// Costs no system call when nobody sleeps.
    pub(crate) fn notify(&self, always: bool) {
        self.word.fetch_add(1, Ordering::SeqCst);
        if always || self.has_sleepers() {
            sys::futex_wake_all(self.word);
        }
    }

    /// Wake the sleepers, if there are any, for an event whose word is only a wake-up channel
    /// (the state lives elsewhere: a stream's positions, a channel's head and cursors). Costs
    /// one load when nobody sleeps: the word is bumped only for sleepers.
    ///
    /// Correct because of the order both sides keep: the signaller changes the state and then
    /// reads the sleeper count; a sleeper increments the count, then reads the word, then
    /// re-checks the state (all sequentially consistent). Either the sleeper sees the new
    /// state, or the signaller sees the sleeper and bumps the word after the sleeper read it,
    /// so `FUTEX_WAIT` returns at once or is woken. Not for counter words that readers compare
    /// with a value they saw (a framed segment's `publish_count`): use [`notify`](Self::notify).
    pub(crate) fn signal(&self) {
        if self.has_sleepers() {
            self.word.fetch_add(1, Ordering::SeqCst);
            sys::futex_wake_all(self.word);
        }
    }

    /// Wake every sleeper without incrementing the word (a state change that is not a publish,
    /// e.g. "closed"; the sleepers re-check the state).
    pub(crate) fn wake(&self) {
        sys::futex_wake_all(self.word);
    }

    fn has_sleepers(&self) -> bool {
        match self.sleepers {
            Sleepers::Count(c) => c.load(Ordering::SeqCst) > 0,
            Sleepers::Unregistered { .. } => false,
        }
    }

    /// Wait until `poll` returns `Some`, the [`Wait`] runs out, or its hook asks to stop.
    ///
    /// `poll` must be cheap and make no system call: it runs in the spin. It sees every state
    /// change made before the publish that woke us. `between` runs before each sleep (liveness
    /// checks, size checks: system calls are fine there) and stops the wait with its error.
    /// `subject` (the segment) and `what` (what is awaited, e.g. "the receiver to make room")
    /// go into the timeout and abort errors.
    ///
    /// # Errors
    ///
    /// Whatever `poll` or `between` return; [`ErrorKind::Timeout`](crate::ErrorKind::Timeout)
    /// and [`ErrorKind::Aborted`](crate::ErrorKind::Aborted) from the [`Wait`].
    pub(crate) fn wait_until<T>(
        &self,
        wait: &mut Wait<'_>,
        subject: &str,
        what: &str,
        mut poll: impl FnMut() -> Result<Option<T>>,
        mut between: impl FnMut() -> Result<()>,
    ) -> Result<T> {
        if let Some(v) = poll()? {
            return Ok(v);
        }
        let budget = spin_budget();
        if !budget.is_zero() {
            let start = Instant::now();
            loop {
                for _ in 0..32 {
                    std::hint::spin_loop();
                    if let Some(v) = poll()? {
                        return Ok(v);
                    }
                }
                if start.elapsed() >= budget {
                    break;
                }
            }
        }
        loop {
            between()?;
            let mut slice = wait.next_slice(subject, what)?;
            let registered = match self.sleepers {
                Sleepers::Count(c) => {
                    c.fetch_add(1, Ordering::SeqCst);
                    Some(c)
                }
                Sleepers::Unregistered { flags, bit } => {
                    if flags.load(Ordering::SeqCst) & bit == 0 {
                        slice = slice.min(UNREGISTERED_SLICE);
                    }
                    None
                }
            };
            let seen = self.word.load(Ordering::SeqCst);
            let ready = poll();
            if matches!(ready, Ok(None)) {
                sys::futex_wait(self.word, seen, Some(slice));
            }
            if let Some(c) = registered {
                c.fetch_sub(1, Ordering::SeqCst);
            }
            if let Some(v) = ready? {
                return Ok(v);
            }
            if let Some(v) = poll()? {
                return Ok(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_publish_from_another_thread_wakes_the_waiter_and_time_runs_out() {
        let words = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
        let flag = Arc::new(AtomicBool::new(false));
        let (w2, f2) = (Arc::clone(&words), Arc::clone(&flag));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            f2.store(true, Ordering::SeqCst);
            Event::new(&w2[0], &w2[1]).notify(false);
        });
        let ev = Event::new(&words[0], &words[1]);
        let mut wait = Wait::timeout(Duration::from_secs(20));
        let got = ev
            .wait_until(
                &mut wait,
                "t",
                "the flag",
                || Ok(flag.load(Ordering::SeqCst).then_some(7)),
                || Ok(()),
            )
            .unwrap();
        assert_eq!(got, 7);
        t.join().unwrap();
        assert_eq!(
            words[1].load(Ordering::SeqCst),
            0,
            "the sleeper deregistered"
        );

        let mut wait = Wait::timeout(Duration::from_millis(30));
        let err = ev
            .wait_until(&mut wait, "t", "nothing", || Ok(None::<()>), || Ok(()))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("waiting for nothing"), "{err}");
    }

    #[test]
    fn the_check_between_sleeps_stops_the_wait() {
        let words = [AtomicU32::new(0), AtomicU32::new(0)];
        let ev = Event::new(&words[0], &words[1]);
        let mut wait = Wait::forever();
        let err = ev
            .wait_until(
                &mut wait,
                "t",
                "x",
                || Ok(None::<()>),
                || Err(crate::Error::new(ErrorKind::PeerGone, "gone")),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PeerGone);
    }
}
