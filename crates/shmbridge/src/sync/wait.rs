//! [`Wait`]: how long a blocking call may wait, and who may stop it early.

use std::fmt;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// The longest a waiting call sleeps without looking up: between two sleeps it calls the
/// [`Wait`]'s hook and checks that its peer is still alive.
pub const TICK: Duration = Duration::from_millis(100);

/// The interrupt/progress hook of a [`Wait`]: called at least every [`TICK`] while a call
/// waits. Returning [`ControlFlow::Break`] stops the call with [`ErrorKind::Aborted`] after
/// the call's usual clean-up. This is how the fronts deliver Ctrl-C (Python's signal check,
/// the CLI's SIGINT/SIGTERM flag) or a C callback's "stop".
pub type Hook<'a> = dyn FnMut() -> ControlFlow<()> + Send + 'a;

/// How long a blocking call may wait, and who may stop it early. Every call that blocks
/// (framed `wait`, `open_wait`, stream reads, writes and `finish`, file transfers) takes one.
///
/// - A **deadline** bounds the whole call ([`Wait::timeout`]); none waits without a limit.
/// - An **inactivity limit** ([`Wait::idle`]) bounds the time without progress: streams
///   restart it whenever the peer moves data, so a long healthy transfer never times out.
/// - A **hook** ([`Wait::with_hook`]) is called at least every [`TICK`] while the call sleeps.
///
/// A `Wait` can be reused across calls: the deadline stays where it is (so a sequence of calls
/// shares one budget) and the inactivity clock restarts with each call's progress.
///
/// ```
/// use std::time::Duration;
/// use shmbridge::Wait;
/// let mut wait = Wait::timeout(Duration::from_secs(5));
/// assert!(!wait.expired());
/// let forever = Wait::secs(Some(1e300)).unwrap(); // too far to represent: no limit
/// assert!(forever.deadline().is_none());
/// assert!(Wait::secs(Some(f64::NAN)).is_err());
/// # let _ = &mut wait;
/// ```
pub struct Wait<'a> {
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    idle: Option<Duration>,
    last_progress: Instant,
    hook: Option<&'a mut Hook<'a>>,
}

impl fmt::Debug for Wait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("timeout", &self.timeout)
            .field("idle", &self.idle)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Wait<'_> {
    fn default() -> Self {
        Self::forever()
    }
}

/// Seconds, as the fronts take them, to a duration: `Ok(None)` means no limit (infinity, or
/// a value too large to represent: "effectively forever").
///
/// # Errors
///
/// [`ErrorKind::InvalidArgument`] for NaN and negative numbers.
pub fn duration_from_secs(secs: f64) -> Result<Option<Duration>> {
    if secs.is_nan() || secs < 0.0 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid timeout {secs}: it must be a non-negative number of seconds"),
        ));
    }
    Ok(Duration::try_from_secs_f64(secs).ok())
}

impl<'a> Wait<'a> {
    /// No limit and no hook.
    #[must_use]
    pub fn forever() -> Self {
        Self {
            deadline: None,
            timeout: None,
            idle: None,
            last_progress: Instant::now(),
            hook: None,
        }
    }

    /// At most `timeout` from now. A timeout too far away to represent waits without a limit.
    #[must_use]
    pub fn timeout(timeout: Duration) -> Self {
        Self::new(Some(timeout))
    }

    /// At most `timeout` from now; `None` waits without a limit.
    #[must_use]
    pub fn new(timeout: Option<Duration>) -> Self {
        let now = Instant::now();
        let deadline = timeout.and_then(|t| now.checked_add(t));
        Self {
            deadline,
            timeout: deadline.and(timeout),
            idle: None,
            last_progress: now,
            hook: None,
        }
    }

    /// At most `secs` seconds from now (`None`: no limit); see [`duration_from_secs`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for NaN and negative numbers.
    pub fn secs(secs: Option<f64>) -> Result<Self> {
        Ok(Self::new(match secs {
            None => None,
            Some(s) => duration_from_secs(s)?,
        }))
    }

    /// Also fail when no progress was made for `limit` (`None`: no inactivity limit).
    #[must_use]
    pub fn idle(mut self, limit: Option<Duration>) -> Self {
        self.idle = limit;
        self
    }

    /// Call `hook` at least every [`TICK`] while waiting; a `Break` stops the call with
    /// [`ErrorKind::Aborted`].
    #[must_use]
    pub fn with_hook(mut self, hook: &'a mut Hook<'a>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The deadline, if any.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Restart the inactivity clock: the peer made progress.
    pub fn progressed(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Time left before the deadline or the inactivity limit, whichever comes first
    /// (`None`: no limit).
    #[must_use]
    pub fn remaining(&self) -> Option<Duration> {
        let now = Instant::now();
        let by_deadline = self.deadline.map(|d| d.saturating_duration_since(now));
        let by_idle = self
            .idle
            .map(|i| i.saturating_sub(now.saturating_duration_since(self.last_progress)));
        match (by_deadline, by_idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the deadline or the inactivity limit has passed.
    #[must_use]
    pub fn expired(&self) -> bool {
        self.remaining().is_some_and(|r| r.is_zero())
    }

    /// Call the hook (if any) now; `Err(Aborted)` when it asks to stop.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Aborted`], naming `subject` and saying what was being waited for.
    pub fn poll_hook(&mut self, subject: &str, what: &str) -> Result<()> {
        match self.hook.as_mut().map(|h| h()) {
            Some(ControlFlow::Break(())) => Err(Error::new(
                ErrorKind::Aborted,
                format!("aborted by the caller while waiting for {what}"),
            )
            .with_segment(subject)),
            _ => Ok(()),
        }
    }

    /// Between two sleeps: call the hook, fail if the time is up, and return how long the next
    /// sleep may last (at most [`TICK`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Aborted`] when the hook asks to stop; [`ErrorKind::Timeout`] when the
    /// deadline or the inactivity limit passed; both name `subject` and `what` was awaited.
    pub(crate) fn next_slice(&mut self, subject: &str, what: &str) -> Result<Duration> {
        self.poll_hook(subject, what)?;
        self.slice()
            .ok_or_else(|| self.timeout_error(subject, what))
    }

    /// How long the next sleep may last, or `None` when the time is up.
    pub(crate) fn slice(&self) -> Option<Duration> {
        match self.remaining() {
            None => Some(TICK),
            Some(r) if r.is_zero() => None,
            Some(r) => Some(r.min(TICK)),
        }
    }

    /// The error of a wait whose time is up.
    pub(crate) fn timeout_error(&self, subject: &str, what: &str) -> Error {
        let now = Instant::now();
        let by_deadline = self.deadline.is_some_and(|d| now >= d);
        let detail = match (by_deadline, self.timeout, self.idle) {
            (true, Some(t), _) => format!("timed out after {t:?} waiting for {what}"),
            (_, _, Some(i)) => {
                format!("timed out: nothing happened for {i:?} while waiting for {what}")
            }
            _ => format!("timed out waiting for {what}"),
        };
        Error::new(ErrorKind::Timeout, detail).with_segment(subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_validated_and_huge_ones_mean_forever() {
        assert_eq!(
            duration_from_secs(1.5).unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(duration_from_secs(0.0).unwrap(), Some(Duration::ZERO));
        assert_eq!(duration_from_secs(1e20).unwrap(), None);
        assert!(Wait::secs(Some(1e19)).unwrap().deadline().is_none());
        assert_eq!(duration_from_secs(f64::INFINITY).unwrap(), None);
        for bad in [f64::NAN, -1.0, -0.001, f64::NEG_INFINITY] {
            let e = duration_from_secs(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.to_string().contains("non-negative"), "{e}");
        }
        // A duration that overflows Instant also means forever, never a panic.
        let w = Wait::timeout(Duration::MAX);
        assert!(w.deadline().is_none() && w.remaining().is_none());
    }

    #[test]
    fn expiry_idle_and_hook() {
        let mut w = Wait::timeout(Duration::ZERO);
        assert!(w.expired());
        let e = w.next_slice("seg", "the writer").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.to_string().contains("waiting for the writer"), "{e}");

        let mut w = Wait::forever().idle(Some(Duration::from_millis(30)));
        assert!(!w.expired());
        std::thread::sleep(Duration::from_millis(40));
        assert!(w.expired());
        w.progressed();
        assert!(!w.expired(), "progress restarts the inactivity clock");

        let mut calls = 0;
        let mut hook = || {
            calls += 1;
            if calls >= 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let mut w = Wait::forever().with_hook(&mut hook);
        assert!(w.next_slice("seg", "x").unwrap() <= TICK);
        assert_eq!(
            w.next_slice("seg", "x").unwrap_err().kind(),
            ErrorKind::Aborted
        );
    }
}
