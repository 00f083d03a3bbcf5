//! The gates every call passes before it runs: a per-user token bucket (governor) and a
//! global limit on calls in flight (a tokio semaphore with a short bounded wait).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::SecurityConfig;
use crate::tool::{ToolError, ToolErrorKind};

/// Forget idle users' buckets every this many rate checks, so the map stays small.
const RETAIN_EVERY: u64 = 4096;

/// The rate limiter and the concurrency limiter.
pub(crate) struct Gates {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    per_minute: u32,
    checks: AtomicU64,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    busy_timeout: Duration,
}

impl Gates {
    /// Gates for `config` (already validated: at least one concurrent call).
    pub(crate) fn new(config: &SecurityConfig) -> Self {
        let limiter = NonZeroU32::new(config.rate_limit_per_minute)
            .map(|per_minute| RateLimiter::keyed(Quota::per_minute(per_minute)));
        let max_concurrent = config
            .max_concurrent_requests
            .clamp(1, Semaphore::MAX_PERMITS);
        Gates {
            limiter,
            per_minute: config.rate_limit_per_minute,
            checks: AtomicU64::new(0),
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            busy_timeout: config.busy_timeout,
        }
    }

    /// Takes one token from `user_id`'s bucket, or says when to retry.
    pub(crate) fn check_rate(&self, user_id: &str) -> Result<(), ToolError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            limiter.retain_recent();
        }
        match limiter.check_key(&user_id.to_owned()) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let seconds = seconds.max(1);
                Err(ToolError::new(
                    ToolErrorKind::RateLimited,
                    format!(
                        "rate limit exceeded: at most {} tool calls per minute per user; \
                         retry in {seconds} s",
                        self.per_minute
                    ),
                )
                .with_retry_after(Duration::from_secs(seconds)))
            }
        }
    }

    /// A slot among the concurrent calls, waiting at most the busy timeout; released when
    /// the permit drops (on every path, including panics and cancellation).
    pub(crate) async fn acquire(
        &self,
        cancel: &CancellationToken,
    ) -> Result<OwnedSemaphorePermit, ToolError> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        let wait = tokio::time::timeout(self.busy_timeout, Arc::clone(&self.slots).acquire_owned());
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(cancelled()),
            waited = wait => match waited {
                Ok(Ok(permit)) => Ok(permit),
                // Timed out, or the semaphore was closed (never happens: we never close it).
                _ => Err(ToolError::new(
                    ToolErrorKind::Busy,
                    format!(
                        "server busy: {} calls in flight; retry shortly",
                        self.max_concurrent
                    ),
                )
                .with_retry_after(Duration::from_secs(1))),
            },
        }
    }

    /// Free slots right now (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.slots.available_permits()
    }
}

/// The error of a call the caller cancelled.
pub(crate) fn cancelled() -> ToolError {
    ToolError::new(
        ToolErrorKind::Cancelled,
        "the call was cancelled by the client",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_user() {
        let gates = Gates::new(&SecurityConfig::default().rate_limit_per_minute(2));
        assert!(gates.check_rate("alice").is_ok());
        assert!(gates.check_rate("alice").is_ok());
        let err = gates.check_rate("alice").unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::RateLimited);
        assert!(err.retry_after().unwrap() >= Duration::from_secs(1));
        assert!(err.message().contains("retry in"), "{}", err.message());
        assert!(gates.check_rate("bob").is_ok());
    }

    #[test]
    fn zero_disables_the_rate_limit() {
        let gates = Gates::new(&SecurityConfig::default().rate_limit_per_minute(0));
        for _ in 0..1000 {
            assert!(gates.check_rate("alice").is_ok());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn busy_after_the_bounded_wait_and_released_on_drop() {
        let config = SecurityConfig::default()
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_millis(50));
        let gates = Gates::new(&config);
        let never = CancellationToken::new();
        let held = gates.acquire(&never).await.unwrap();
        let err = gates.acquire(&never).await.unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::Busy);
        assert!(err.message().contains("1 calls in flight"));
        drop(held);
        assert_eq!(gates.available(), 1);
        let again = gates.acquire(&never).await.unwrap();
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert_eq!(
            gates.acquire(&cancel).await.unwrap_err().kind(),
            ToolErrorKind::Cancelled
        );
        drop(again);
    }
}
