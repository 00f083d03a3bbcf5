//! The request budget of the panel client: at most N requests in any window of W seconds,
//! so the panel's own limiter (20 per 60 s per client address) never has to refuse us.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// How many requests the client may send to the panel per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    /// Requests per window; 0 turns the budget off.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl Default for RequestBudget {
    /// The shipped panel's limit: 20 requests per 60 s.
    fn default() -> Self {
        RequestBudget {
            requests: 20,
            window: Duration::from_secs(60),
        }
    }
}

/// Added to the window: the panel counts a request when it arrives, a little after we sent
/// it, and rounds its clock down to whole seconds.
const MARGIN: Duration = Duration::from_secs(1);

/// A sliding log of the requests sent: at most `requests` in any `window` also means at most
/// that many in any fixed window the server may count in.
#[derive(Debug)]
pub(crate) struct Budget {
    budget: RequestBudget,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    sent: VecDeque<Instant>,
    /// The server said to wait until then (`Retry-After` on a 429).
    blocked_until: Option<Instant>,
}

impl Budget {
    pub(crate) fn new(budget: RequestBudget) -> Self {
        Budget {
            budget,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn settings(&self) -> RequestBudget {
        self.budget
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Takes `n` requests from the budget now, or says how long until they are available.
    pub(crate) fn take(&self, n: u32) -> Result<(), Duration> {
        self.take_at(n, Instant::now())
    }

    fn take_at(&self, n: u32, now: Instant) -> Result<(), Duration> {
        let mut state = self.state();
        if let Some(until) = state.blocked_until {
            if until > now {
                return Err(until - now);
            }
            state.blocked_until = None;
        }
        if self.budget.requests == 0 {
            return Ok(());
        }
        let window = self.budget.window + MARGIN;
        while state
            .sent
            .front()
            .is_some_and(|&at| now.duration_since(at) >= window)
        {
            state.sent.pop_front();
        }
        let limit = self.budget.requests as usize;
        let n = n as usize;
        if n > limit {
            return Err(window);
        }
        let used = state.sent.len();
        if used + n > limit {
            // The oldest request that must leave the window before n more fit.
            let must_expire = state.sent[used + n - limit - 1];
            return Err((must_expire + window).saturating_duration_since(now));
        }
        state.sent.extend(std::iter::repeat_n(now, n));
        Ok(())
    }

    /// The server refused with `Retry-After: wait`: take nothing before then.
    pub(crate) fn block_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.state();
        state.blocked_until = Some(state.blocked_until.map_or(until, |u| u.max(until)));
    }

    /// Requests still available now (what the tests read).
    #[cfg(test)]
    fn available(&self) -> u32 {
        let mut state = self.state();
        let now = Instant::now();
        if state.blocked_until.is_some_and(|u| u > now) {
            return 0;
        }
        let window = self.budget.window + MARGIN;
        state.sent.retain(|&at| now.duration_since(at) < window);
        self.budget
            .requests
            .saturating_sub(u32::try_from(state.sent.len()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(requests: u32, secs: u64) -> Budget {
        Budget::new(RequestBudget {
            requests,
            window: Duration::from_secs(secs),
        })
    }

    #[test]
    fn allows_the_limit_then_says_when() {
        let b = budget(3, 10);
        let t0 = Instant::now();
        assert!(b.take_at(2, t0).is_ok());
        assert!(b.take_at(1, t0 + Duration::from_secs(1)).is_ok());
        let wait = b.take_at(1, t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(9));
        // Two at once need the two oldest gone, both sent at t0.
        let wait = b.take_at(2, t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(9));
        // Three need the one of t0 + 1 gone too.
        let wait = b.take_at(3, t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        assert!(b.take_at(2, t0 + Duration::from_secs(11)).is_ok());
        let wait = b.take_at(1, t0 + Duration::from_secs(11)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
    }

    #[test]
    fn more_than_the_limit_never_fits_and_zero_is_off() {
        assert!(budget(2, 10).take(3).is_err());
        let off = budget(0, 10);
        for _ in 0..100 {
            assert!(off.take(2).is_ok());
        }
    }

    #[test]
    fn retry_after_blocks_everything() {
        let b = budget(20, 60);
        b.block_for(Duration::from_secs(30));
        let wait = b.take(1).unwrap_err();
        assert!(wait > Duration::from_secs(28) && wait <= Duration::from_secs(30));
        assert_eq!(b.available(), 0);
    }
}
