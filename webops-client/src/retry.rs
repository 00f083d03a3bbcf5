//! The retry policy: which requests may be re-sent, after which failures, and how long to wait.
//!
//! The rules are the contract's: only idempotent requests (GET, PUT, DELETE, and a POST that
//! carries an `Idempotency-Key`) are ever re-sent. 429 and 503 wait for `Retry-After` (or back
//! off without it); connection errors and 502/503/504 back off exponentially with full jitter.
//! Timeouts, 500 and every other 4xx are final.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::error::{Error, ErrorKind};

/// Exponential backoff with full jitter: retry `n` (from 0) waits a uniformly random time in
/// `0..=min(max, base * 2^n)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The upper bound of the wait before retry `retry` (0 for the first retry).
    pub(crate) fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// A random wait in `0..=ceiling(retry)`.
    pub(crate) fn delay(&self, retry: u32) -> Duration {
        let ceiling = u64::try_from(self.ceiling(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=ceiling))
    }
}

/// The retry settings of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: u32,
    /// The longest `Retry-After` the client waits for; a longer one ends the call at once.
    pub(crate) max_retry_after: Duration,
    /// Backoff of failures that carry no `Retry-After`.
    pub(crate) backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            max_retry_after: Duration::from_secs(30),
            backoff: Backoff::default(),
        }
    }
}

/// Why a failed attempt is retried (for the debug log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The server's `Retry-After`.
    RetryAfter(Duration),
    /// Exponential backoff with jitter.
    Backoff(Duration),
}

impl Wait {
    pub(crate) fn duration(self) -> Duration {
        match self {
            Wait::RetryAfter(d) | Wait::Backoff(d) => d,
        }
    }
}

impl RetryPolicy {
    /// How long to wait before re-sending a request that failed with `error` on attempt
    /// `attempt` (0 = the first), or `None` when it must not be re-sent.
    pub(crate) fn wait_before_retry(
        &self,
        error: &Error,
        attempt: u32,
        idempotent: bool,
    ) -> Option<Wait> {
        if !idempotent || attempt >= self.max_retries {
            return None;
        }
        let retryable = match error.status() {
            Some(429 | 502 | 503 | 504) => true,
            Some(_) => false,
            None => error.kind() == ErrorKind::Connection,
        };
        if !retryable {
            return None;
        }
        match error.retry_after() {
            Some(wait) if wait <= self.max_retry_after => Some(Wait::RetryAfter(wait)),
            // The server asked for more patience than we may spend: give up now and let the
            // caller see `retry_after()`.
            Some(_) => None,
            None => Some(Wait::Backoff(self.backoff.delay(attempt))),
        }
    }
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (a past date is no wait).
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            max_retry_after: Duration::from_secs(5),
            backoff: Backoff {
                base: Duration::from_millis(100),
                max: Duration::from_secs(1),
            },
        }
    }

    fn status(code: u16) -> Error {
        Error::new(ErrorKind::Server, "x").with_status(code)
    }

    #[test]
    fn backoff_ceiling_doubles_then_caps() {
        let b = policy().backoff;
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(40), Duration::from_secs(1));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn backoff_delay_stays_within_bounds_and_varies() {
        let b = policy().backoff;
        let mut seen = std::collections::BTreeSet::new();
        for retry in 0..6 {
            for _ in 0..200 {
                let d = b.delay(retry);
                assert!(d <= b.ceiling(retry), "{d:?} > {:?}", b.ceiling(retry));
                seen.insert(d);
            }
        }
        assert!(seen.len() > 100, "full jitter should spread the waits");
        let zero = Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn only_idempotent_requests_are_retried() {
        let p = policy();
        assert!(p.wait_before_retry(&status(503), 0, false).is_none());
        assert!(p.wait_before_retry(&status(503), 0, true).is_some());
        let refused = Error::new(ErrorKind::Connection, "refused");
        assert!(p.wait_before_retry(&refused, 0, false).is_none());
        assert!(p.wait_before_retry(&refused, 0, true).is_some());
    }

    #[test]
    fn retries_stop_at_max_retries() {
        let p = policy();
        assert!(p.wait_before_retry(&status(502), 2, true).is_some());
        assert!(p.wait_before_retry(&status(502), 3, true).is_none());
        let never = RetryPolicy {
            max_retries: 0,
            ..p
        };
        assert!(never.wait_before_retry(&status(502), 0, true).is_none());
    }

    #[test]
    fn which_failures_are_retried() {
        let p = policy();
        for code in [429, 502, 503, 504] {
            assert!(
                matches!(
                    p.wait_before_retry(&status(code), 0, true),
                    Some(Wait::Backoff(_))
                ),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 405, 409, 422, 500, 501] {
            assert!(
                p.wait_before_retry(&status(code), 0, true).is_none(),
                "{code}"
            );
        }
        let timeout = Error::new(ErrorKind::Timeout, "slow");
        assert!(p.wait_before_retry(&timeout, 0, true).is_none());
        let decode = Error::new(ErrorKind::Decode, "bad json").with_status(200);
        assert!(p.wait_before_retry(&decode, 0, true).is_none());
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy();
        let limited = status(429).with_retry_after(Duration::from_secs(2));
        assert_eq!(
            p.wait_before_retry(&limited, 0, true),
            Some(Wait::RetryAfter(Duration::from_secs(2)))
        );
        let at_cap = status(503).with_retry_after(Duration::from_secs(5));
        assert_eq!(
            p.wait_before_retry(&at_cap, 1, true).map(Wait::duration),
            Some(Duration::from_secs(5))
        );
        let too_long = status(429).with_retry_after(Duration::from_secs(6));
        assert!(p.wait_before_retry(&too_long, 0, true).is_none());
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 01 Jan 2025 00:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Tue, 31 Dec 2024 23:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
