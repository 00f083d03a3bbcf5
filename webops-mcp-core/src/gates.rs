//! The gates every call passes before it runs: a per-user token bucket (governor in this
//! process, or a shared [`RateLimitStore`]) and a global limit on calls in flight (a tokio
//! semaphore with a short bounded wait).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::SecurityConfig;
use crate::rate::{MemoryRateLimiter, RateDecision, RateLimitStore, RateQuota};
use crate::tool::{ToolError, ToolErrorKind};

/// Where the per-user buckets are: none, this process (synchronous, the default), or a
/// shared store.
enum Limiter {
    Off,
    Local(MemoryRateLimiter),
    Shared(Arc<dyn RateLimitStore>, RateQuota),
}

/// The rate limiter and the concurrency limiter.
pub(crate) struct Gates {
    limiter: Limiter,
    per_minute: u32,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
    busy_timeout: Duration,
}

impl Gates {
    /// Gates for `config` (already validated: at least one concurrent call), with the
    /// buckets in `store` when given, else in this process.
    pub(crate) fn new(config: &SecurityConfig, store: Option<Arc<dyn RateLimitStore>>) -> Self {
        let limiter = match (NonZeroU32::new(config.rate_limit_per_minute), store) {
            (None, _) => Limiter::Off,
            (Some(n), None) => Limiter::Local(MemoryRateLimiter::new(RateQuota::per_minute(n))),
            (Some(n), Some(store)) => Limiter::Shared(store, RateQuota::per_minute(n)),
        };
        let max_concurrent = config
            .max_concurrent_requests
            .clamp(1, Semaphore::MAX_PERMITS);
        Gates {
            limiter,
            per_minute: config.rate_limit_per_minute,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            busy_timeout: config.busy_timeout,
        }
    }

    /// Takes one token from `user_id`'s bucket, or says when to retry. In this process it
    /// never waits; a shared store that cannot answer refuses the call as unavailable.
    pub(crate) async fn check_rate(&self, user_id: &str) -> Result<(), ToolError> {
        let decision = match &self.limiter {
            Limiter::Off => return Ok(()),
            Limiter::Local(limiter) => limiter.check(user_id),
            Limiter::Shared(store, quota) => store.take(user_id, *quota).await.map_err(|e| {
                ToolError::new(
                    ToolErrorKind::Unavailable,
                    format!(
                        "the rate limit could not be checked: {e}; nothing was sent to \
                             WebOps, retry shortly"
                    ),
                )
                .with_retry_after(Duration::from_secs(1))
            })?,
        };
        match decision {
            RateDecision::Allowed => Ok(()),
            RateDecision::Limited { retry_after } => {
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
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

    #[tokio::test]
    async fn buckets_are_per_user() {
        let gates = Gates::new(&SecurityConfig::default().rate_limit_per_minute(2), None);
        assert!(gates.check_rate("alice").await.is_ok());
        assert!(gates.check_rate("alice").await.is_ok());
        let err = gates.check_rate("alice").await.unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::RateLimited);
        assert!(err.retry_after().unwrap() >= Duration::from_secs(1));
        assert!(err.message().contains("retry in"), "{}", err.message());
        assert!(gates.check_rate("bob").await.is_ok());
    }

    #[tokio::test]
    async fn zero_disables_the_rate_limit() {
        let gates = Gates::new(&SecurityConfig::default().rate_limit_per_minute(0), None);
        for _ in 0..1000 {
            assert!(gates.check_rate("alice").await.is_ok());
        }
    }

    /// A store that cannot answer, and one that counts what it is asked.
    struct Down;

    #[async_trait::async_trait]
    impl RateLimitStore for Down {
        async fn take(&self, _key: &str, _quota: RateQuota) -> Result<RateDecision, String> {
            Err("the shared state store is unavailable".to_owned())
        }
    }

    #[tokio::test]
    async fn a_shared_store_decides_and_one_that_cannot_refuses() {
        let config = SecurityConfig::default().rate_limit_per_minute(2);
        let shared = Arc::new(MemoryRateLimiter::new(RateQuota::per_minute(
            NonZeroU32::new(2).unwrap(),
        )));
        let one = Gates::new(&config, Some(shared.clone()));
        let two = Gates::new(&config, Some(shared));
        assert!(one.check_rate("alice").await.is_ok());
        assert!(two.check_rate("alice").await.is_ok());
        let err = one.check_rate("alice").await.unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::RateLimited);

        let down = Gates::new(&config, Some(Arc::new(Down)));
        let err = down.check_rate("alice").await.unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::Unavailable);
        assert!(
            err.message()
                .contains("the shared state store is unavailable"),
            "{}",
            err.message()
        );
        assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    }

    #[tokio::test(start_paused = true)]
    async fn busy_after_the_bounded_wait_and_released_on_drop() {
        let config = SecurityConfig::default()
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_millis(50));
        let gates = Gates::new(&config, None);
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
