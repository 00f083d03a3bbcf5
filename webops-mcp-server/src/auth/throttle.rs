//! The throttle of repeated authentication failures per client address, with reservations
//! for the attempts in progress (see the module documentation of [`super`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Failures from one address within [`FAILURE_WINDOW`] before it is refused.
pub(crate) const MAX_FAILURES: u32 = 10;

/// The window in which failures are counted, and how long an address is then refused.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// How long a Basic attempt refused only because the address's other attempts are still
/// being checked should wait.
pub(super) const PENDING_RETRY: Duration = Duration::from_secs(1);

/// Counts authentication failures per client address and refuses an address that failed
/// [`MAX_FAILURES`] times within the window, until the window passes. It also counts the
/// attempts in progress that reserved a place ([`FailureThrottle::reserve`]), so concurrent
/// attempts cannot all pass the check before the first failure is counted.
pub(crate) struct FailureThrottle {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<IpAddr, FailureWindow>>,
}

#[derive(Clone, Copy)]
struct FailureWindow {
    /// When the first failure of the window was counted.
    start: Instant,
    /// Failures within the window (0: no window running).
    failures: u32,
    /// Reserved attempts still being checked.
    pending: u32,
}

impl FailureWindow {
    fn new(now: Instant) -> Self {
        FailureWindow {
            start: now,
            failures: 0,
            pending: 0,
        }
    }

    /// Forgets the failures of a window that has passed.
    fn expire(&mut self, window: Duration) {
        if self.failures > 0 && self.start.elapsed() >= window {
            self.failures = 0;
        }
    }

    fn fail(&mut self, now: Instant) {
        if self.failures == 0 {
            self.start = now;
        }
        self.failures = self.failures.saturating_add(1);
    }

    fn idle(&self) -> bool {
        self.failures == 0 && self.pending == 0
    }
}

/// Addresses tracked at most; beyond it, expired entries are pruned first.
const MAX_TRACKED: usize = 100_000;

impl FailureThrottle {
    /// A throttle refusing after `max_failures` failures within `window`.
    pub(crate) fn new(max_failures: u32, window: Duration) -> Self {
        FailureThrottle {
            max_failures,
            window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<IpAddr, FailureWindow>> {
        crate::sync::lock(&self.entries)
    }

    /// How long `ip` is still refused because its failures reached the limit, if it is.
    pub(crate) fn retry_after(&self, ip: IpAddr) -> Option<Duration> {
        let mut entries = self.lock();
        let entry = entries.get_mut(&ip)?;
        entry.expire(self.window);
        if entry.idle() {
            entries.remove(&ip);
            return None;
        }
        (entry.failures >= self.max_failures)
            .then(|| self.window.saturating_sub(entry.start.elapsed()))
    }

    /// Takes in what the fleet counted for `ip` (its failures in the current window and the
    /// time left in it; shared state on Redis), so this replica refuses as the fleet does.
    /// Keeps its own count when that is higher.
    pub(crate) fn observe(&self, ip: IpAddr, failures: u32, remaining: Duration) {
        if failures == 0 {
            return;
        }
        let mut entries = self.lock();
        let window = self.window;
        let entry = self.entry(&mut entries, ip);
        if failures > entry.failures {
            let now = Instant::now();
            entry.failures = failures;
            entry.start = now
                .checked_sub(window.saturating_sub(remaining))
                .unwrap_or(now);
        }
    }

    /// Counts one failure of `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr) {
        let mut entries = self.lock();
        let entry = self.entry(&mut entries, ip);
        entry.fail(Instant::now());
    }

    /// Reserves an attempt of `ip`, or says how long to wait: refused while its failures
    /// plus its attempts in progress reach the limit. The attempt counts as a failure only
    /// if [`Attempt::failed`] is called; dropped, it frees its place.
    pub(crate) fn reserve(&self, ip: IpAddr) -> Result<Attempt<'_>, Duration> {
        let mut entries = self.lock();
        let max = self.max_failures;
        let window = self.window;
        let entry = self.entry(&mut entries, ip);
        if entry.failures >= max {
            return Err(window.saturating_sub(entry.start.elapsed()));
        }
        if entry.failures.saturating_add(entry.pending) >= max {
            return Err(PENDING_RETRY);
        }
        entry.pending += 1;
        Ok(Attempt {
            throttle: self,
            ip,
            failed: false,
        })
    }

    /// The entry of `ip` with its passed window forgotten, made if missing; prunes first
    /// when too many addresses are tracked.
    fn entry<'m>(
        &self,
        entries: &'m mut HashMap<IpAddr, FailureWindow>,
        ip: IpAddr,
    ) -> &'m mut FailureWindow {
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&ip) {
            let window = self.window;
            entries.retain(|_, e| {
                e.expire(window);
                !e.idle()
            });
            if entries.len() >= MAX_TRACKED {
                // Still full of live entries: forget the older half of those not in use
                // rather than grow.
                let mut starts: Vec<Instant> = entries.values().map(|e| e.start).collect();
                starts.sort_unstable();
                let cutoff = starts[starts.len() / 2];
                entries.retain(|_, e| e.pending > 0 || e.start > cutoff);
            }
        }
        let entry = entries
            .entry(ip)
            .or_insert_with(|| FailureWindow::new(Instant::now()));
        entry.expire(self.window);
        entry
    }

    /// Ends a reserved attempt of `ip`, counting it as a failure or not.
    fn finish(&self, ip: IpAddr, failed: bool) {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&ip) else {
            return;
        };
        entry.pending = entry.pending.saturating_sub(1);
        entry.expire(self.window);
        if failed {
            entry.fail(Instant::now());
        } else if entry.idle() {
            entries.remove(&ip);
        }
    }

    /// Addresses refused right now.
    pub(crate) fn throttled_addresses(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.failures >= self.max_failures && e.start.elapsed() < self.window)
            .count()
    }
}

/// A reserved authentication attempt ([`FailureThrottle::reserve`]).
pub(crate) struct Attempt<'a> {
    throttle: &'a FailureThrottle,
    ip: IpAddr,
    failed: bool,
}

impl Attempt<'_> {
    /// The attempt failed: it counts as a failure of its address.
    pub(crate) fn failed(mut self) {
        self.failed = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.throttle.finish(self.ip, self.failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_refuses_after_the_limit_and_other_addresses_are_unaffected() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        let b = IpAddr::from([10, 0, 0, 2]);
        for _ in 0..2 {
            throttle.record_failure(a);
        }
        assert!(throttle.retry_after(a).is_none());
        throttle.record_failure(a);
        let wait = throttle.retry_after(a).unwrap();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(0));
        assert!(throttle.retry_after(b).is_none());
        assert_eq!(throttle.throttled_addresses(), 1);
    }

    #[test]
    fn throttle_window_expires() {
        let throttle = FailureThrottle::new(1, Duration::from_millis(1));
        let a = IpAddr::from([10, 0, 0, 1]);
        throttle.record_failure(a);
        std::thread::sleep(Duration::from_millis(5));
        assert!(throttle.retry_after(a).is_none());
        assert_eq!(throttle.throttled_addresses(), 0);
    }

    #[test]
    fn reservations_count_against_the_limit_until_they_end() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        let first = throttle.reserve(a).unwrap();
        let second = throttle.reserve(a).unwrap();
        let third = throttle.reserve(a).unwrap();
        // Three attempts in progress: a fourth must wait, though nothing has failed yet.
        assert_eq!(throttle.reserve(a).err(), Some(PENDING_RETRY));
        assert!(throttle.reserve(IpAddr::from([10, 0, 0, 2])).is_ok());
        // A success frees its place.
        drop(first);
        let fourth = throttle.reserve(a).unwrap();
        // Failures take the places for the window.
        second.failed();
        third.failed();
        fourth.failed();
        assert!(throttle.retry_after(a).is_some());
        let wait = throttle.reserve(a).err().unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert_eq!(throttle.throttled_addresses(), 1);
    }

    #[test]
    fn the_fleets_count_refuses_here_too() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        throttle.observe(a, 2, Duration::from_secs(40));
        assert!(throttle.retry_after(a).is_none());
        assert!(throttle.reserve(a).is_ok());
        throttle.observe(a, 3, Duration::from_secs(40));
        let wait = throttle.retry_after(a).unwrap();
        assert!(
            wait <= Duration::from_secs(40) && wait > Duration::from_secs(38),
            "{wait:?}"
        );
        assert_eq!(throttle.throttled_addresses(), 1);
        // A lower count from the fleet does not undo this replica's own.
        throttle.observe(a, 1, Duration::from_secs(59));
        assert!(throttle.retry_after(a).is_some());
    }

    #[test]
    fn a_finished_attempt_leaves_no_entry_behind() {
        let throttle = FailureThrottle::new(3, Duration::from_secs(60));
        let a = IpAddr::from([10, 0, 0, 1]);
        drop(throttle.reserve(a).unwrap());
        assert!(throttle.lock().is_empty());
    }
}
