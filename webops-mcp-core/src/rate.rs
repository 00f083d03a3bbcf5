//! The per-user rate limit's store: [`RateLimitStore`] takes one call from a user's bucket.
//! [`MemoryRateLimiter`] (governor, in this process) is the default; a fleet of servers
//! shares one store so that together they grant each user one rate.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Forget idle users' buckets every this many checks, so the map stays small.
const RETAIN_EVERY: u64 = 4096;

/// A per-user rate: a bucket of `per_minute` calls (the burst), refilled evenly over a
/// minute (one call every `60 s / per_minute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    per_minute: NonZeroU32,
}

impl RateQuota {
    /// `per_minute` calls a minute, all of them at once if the bucket is full.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        RateQuota { per_minute }
    }

    /// Calls a minute, which is also the burst.
    pub fn calls_per_minute(&self) -> NonZeroU32 {
        self.per_minute
    }

    /// The time in which one call comes back into the bucket.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.get()
    }
}

/// What a [`RateLimitStore`] decided about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateDecision {
    /// A call was taken from the bucket: the call may run.
    Allowed,
    /// The bucket is empty: retry after this long.
    Limited {
        /// How long until the bucket holds a call again.
        retry_after: Duration,
    },
}

/// Where the per-user buckets live.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Takes one call from the bucket of `key` (a user id) under `quota`. `Err` says why the
    /// store cannot decide now (the call is then refused as unavailable, never let through
    /// unchecked).
    async fn take(&self, key: &str, quota: RateQuota) -> Result<RateDecision, String>;
}

/// Per-user buckets in this process's memory (governor's GCRA): synchronous and cheap. The
/// server's default; a fleet shares a store instead.
pub struct MemoryRateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    quota: RateQuota,
    checks: AtomicU64,
}

impl MemoryRateLimiter {
    /// Empty buckets of `quota`.
    pub fn new(quota: RateQuota) -> Self {
        MemoryRateLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(quota.per_minute)),
            quota,
            checks: AtomicU64::new(0),
        }
    }

    /// The quota of every bucket.
    pub fn quota(&self) -> RateQuota {
        self.quota
    }

    /// Takes one call from `key`'s bucket, or says when to retry.
    pub fn check(&self, key: &str) -> RateDecision {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&key.to_owned()) {
            Ok(()) => RateDecision::Allowed,
            Err(not_until) => RateDecision::Limited {
                retry_after: not_until.wait_time_from(self.limiter.clock().now()),
            },
        }
    }
}

impl std::fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRateLimiter")
            .field("quota", &self.quota)
            .finish_non_exhaustive()
    }
}

/// The buckets of [`MemoryRateLimiter::quota`]; a call with another quota is checked against
/// them all the same (one process has one quota).
#[async_trait]
impl RateLimitStore for MemoryRateLimiter {
    async fn take(&self, key: &str, _quota: RateQuota) -> Result<RateDecision, String> {
        Ok(self.check(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(n: u32) -> RateQuota {
        RateQuota::per_minute(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn the_burst_is_the_per_minute_number_and_refills_evenly() {
        let limiter = MemoryRateLimiter::new(quota(3));
        for _ in 0..3 {
            assert_eq!(limiter.check("alice"), RateDecision::Allowed);
        }
        let RateDecision::Limited { retry_after } = limiter.check("alice") else {
            panic!("the fourth call of a burst of three is refused");
        };
        assert!(retry_after <= Duration::from_secs(20) && retry_after > Duration::from_secs(19));
        assert_eq!(limiter.check("bob"), RateDecision::Allowed);
        assert_eq!(quota(3).interval(), Duration::from_secs(20));
        assert_eq!(quota(7).interval(), Duration::from_secs(60) / 7);
    }
}
