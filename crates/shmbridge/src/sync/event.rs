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

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::wait::Wait;
use crate::error::Result;
use crate::sys;

/// How long a waiter busy-spins (re-reading the shared words with `spin_loop` hints, no
/// system call) before it starts yielding: a reply that comes within this is caught at memory
/// speed. Bounded in time, not in iterations, so it means the same on every CPU.
pub(crate) const SPIN: Duration = Duration::from_micros(10);

/// Until when, from the start of the wait, a waiter keeps polling between `sched_yield`s
/// before it sleeps on the futex. Yielding lets a peer that shares this CPU run (and reply)
/// without paying a futex sleep and wake-up, which cost more than the whole yield phase (a
/// wake-up of an idle virtual CPU costs 10 to 30 us here).
pub(crate) const YIELD_UNTIL: Duration = Duration::from_micros(50);

/// A gap this long between two looks at the clock while spinning or yielding means this task
/// lost its CPU meanwhile: to another task (the CPUs are contended) — or, on a virtual
/// machine, to the hypervisor, which pauses a virtual CPU for tens to hundreds of
/// microseconds several hundred times a second even when the guest is idle. The two are told
/// apart by [`lost_cpu_to_a_task`].
const PREEMPTED: Duration = Duration::from_micros(25);

/// For how long after a waiter saw the CPUs contended every wait of the process sleeps at
/// once. Under contention a spinner or a yielder gives up its place in the scheduler's queue
/// and gets the CPU back only after the other tasks' slices (milliseconds), while a futex
/// sleeper is woken with priority; so then sleeping is the fast way, as for a pipe.
const CONTENDED_FOR: Duration = Duration::from_millis(50);

/// The slice an unregistered sleeper uses while the publisher has not yet promised to wake it.
pub(crate) const UNREGISTERED_SLICE: Duration = Duration::from_millis(1);

/// How long to busy-spin, for this process: nothing when it may run on one CPU only (spinning
/// there only delays the peer, which needs that CPU to make progress; it yields instead).
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

/// The process's clock origin for [`CONTENDED_UNTIL_US`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since [`epoch`] until which waits skip the spin and the yields (0: never).
static CONTENDED_UNTIL_US: AtomicU64 = AtomicU64::new(0);

fn micros_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

fn contended_at(t: Instant) -> bool {
    micros_since_epoch(t) < CONTENDED_UNTIL_US.load(Ordering::Relaxed)
}

/// After a gap on the clock: whether the kernel gave this thread's CPU to another task since
/// the last such check (the thread's involuntary context switches moved). One `getrusage`,
/// made only after a gap. A pause of the whole virtual CPU (hypervisor), or an interrupt,
/// moves nothing: the wait keeps spinning, since nobody here wants the CPU.
fn lost_cpu_to_a_task() -> bool {
    thread_local! {
        // The count at the previous check; the first check of a thread sees the count it
        // starts with (no evidence yet), not a change from nothing.
        static LAST: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    }
    let now = sys::involuntary_switches();
    LAST.with(|last| last.replace(Some(now)).is_some_and(|was| was != now))
}

/// When (microseconds since [`epoch`], 0: never) a waiter of this process last lost its CPU
/// to another task while spinning.
static LAST_LOST_US: AtomicU64 = AtomicU64::new(0);

/// Record that a waiter lost its CPU to another task at `t`; whether that happened before
/// within [`CONTENDED_FOR`]. One preemption is no contention — a kernel thread that ran for a
/// few microseconds does it, and 50 ms of futex sleeps would follow for nothing (on this
/// kind of virtual machine each of them costs a wake-up of 30 to 40 us); a task that keeps
/// taking the CPU (a CPU hog) does it again within the window.
fn lost_again(t: Instant) -> bool {
    let now = micros_since_epoch(t).max(1);
    let before = LAST_LOST_US.swap(now, Ordering::Relaxed);
    before != 0 && now.saturating_sub(before) < CONTENDED_FOR.as_micros() as u64
}

fn mark_contended(t: Instant) {
    let until = micros_since_epoch(t).saturating_add(CONTENDED_FOR.as_micros() as u64);
    CONTENDED_UNTIL_US.fetch_max(until, Ordering::Relaxed);
}

/// Poll without sleeping: busy-spin for `spin` (re-reading shared words, `spin_loop` hints, no
/// system call), then poll between `sched_yield`s until `until` from the start. Both phases are
/// skipped while the CPUs are contended (see [`CONTENDED_FOR`]); a gap in the clock during
/// either in which this task lost the CPU to another one, for the second time within
/// [`CONTENDED_FOR`], ends them and marks the contention.
/// `Ok(None)`: nothing.
fn spin_then_yield<T>(
    spin: Duration,
    until: Duration,
    poll: &mut impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let start = Instant::now();
    if contended_at(start) {
        return Ok(None);
    }
    let mut last = start;
    if !spin.is_zero() {
        loop {
            for _ in 0..16 {
                std::hint::spin_loop();
                if let Some(v) = poll()? {
                    return Ok(Some(v));
                }
            }
            let now = Instant::now();
            if now - last >= PREEMPTED && lost_cpu_to_a_task() && lost_again(now) {
                mark_contended(now);
                return Ok(None);
            }
            last = now;
            if now - start >= spin {
                break;
            }
        }
    }
    while last - start < until {
        sys::yield_cpu();
        if let Some(v) = poll()? {
            return Ok(Some(v));
        }
        let now = Instant::now();
        if now - last >= PREEMPTED && lost_cpu_to_a_task() && lost_again(now) {
            mark_contended(now);
            break;
        }
        last = now;
    }
    Ok(None)
}

/// Busy-spin on `poll` for at most `budget` (nothing on a single CPU or while the CPUs are
/// contended), with no system call and no yield: for a front that wants to catch a quick
/// reply before it pays for a blocking wait (Python, before it releases the GIL).
/// `Ok(None)`: nothing came.
///
/// # Errors
///
/// Whatever `poll` returns.
pub(crate) fn spin_briefly<T>(
    budget: Duration,
    mut poll: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    if let Some(v) = poll()? {
        return Ok(Some(v));
    }
    spin_then_yield(budget.min(spin_budget()), Duration::ZERO, &mut poll)
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
    /// First `poll` runs in a busy spin for [`SPIN`] (skipped when this process may use one
    /// CPU only), then between `sched_yield`s until [`YIELD_UNTIL`] from the start, and only
    /// then does the waiter register and sleep on the futex. So a reply within a few
    /// microseconds is caught without a futex sleep, and two peers pinned to one CPU hand it
    /// to each other by yielding instead of spinning against each other.
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
        if let Some(v) = spin_then_yield(spin_budget(), YIELD_UNTIL, &mut poll)? {
            return Ok(v);
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
