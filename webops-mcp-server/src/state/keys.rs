//! What the Redis store writes: key names (`<prefix>:<purpose>:<SHA-256 of the id>`, so no
//! user id, address, nonce or session id is stored in clear) and the two Lua scripts that
//! must run atomically across replicas — the per-user GCRA rate limit and the failure count
//! of an address.

use std::time::Duration;

use sha2::{Digest, Sha256};
use webops_mcp_core::{RateDecision, RateQuota};

/// What a key is for: the second part of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A user's rate-limit bucket (its theoretical arrival time).
    Rate,
    /// A used confirmation nonce.
    Nonce,
    /// An address's authentication failures in the current window.
    AuthFailures,
    /// A legacy MCP session: its `initialize` parameters and its owner.
    Session,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Rate => "rate",
            Purpose::Nonce => "nonce",
            Purpose::AuthFailures => "authfail",
            Purpose::Session => "session",
        }
    }
}

/// The key of `id` for `purpose`: `<prefix>:<purpose>:<hex SHA-256 of id>`.
pub(crate) fn key(prefix: &str, purpose: Purpose, id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    format!("{prefix}:{}:{}", purpose.as_str(), hex::encode(digest))
}

/// The generic cell rate algorithm for one bucket, atomic in Redis, on Redis's clock (so
/// replicas with skewed clocks agree). `KEYS[1]` holds the theoretical arrival time (TAT) in
/// microseconds; `ARGV[1]` is the emission interval (µs per call), `ARGV[2]` the burst.
/// A call is allowed when `TAT + interval - interval * burst <= now`: a full bucket lets
/// `burst` calls through at once, then one per interval. The key expires when the bucket
/// would be full again. Returns `{1, 0}` when allowed, `{0, ms to wait}` when not.
pub(crate) const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, math.ceil((allow_at - now) / 1000)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
";

/// The arguments of [`GCRA`] for `quota`: the interval in µs and the burst.
pub(crate) fn gcra_args(quota: RateQuota) -> (u64, u32) {
    let interval = u64::try_from(quota.interval().as_micros()).unwrap_or(u64::MAX);
    (interval.max(1), quota.calls_per_minute().get())
}

/// [`GCRA`]'s reply as a decision (a wait of at least 1 ms when refused).
pub(crate) fn gcra_decision((allowed, wait_ms): (i64, i64)) -> RateDecision {
    if allowed == 1 {
        RateDecision::Allowed
    } else {
        RateDecision::Limited {
            retry_after: Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0).max(1)),
        }
    }
}

/// Counts one failure of an address, atomically: the first failure starts the window
/// (`ARGV[1]` ms), later ones fall into it. Returns `{failures, ms left in the window}`.
pub(crate) const COUNT_FAILURE: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
";

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    #[test]
    fn keys_are_namespaced_and_hold_no_id_in_clear() {
        let k = key("webops-mcp", Purpose::Session, "4f1c-session-id");
        assert!(k.starts_with("webops-mcp:session:"), "{k}");
        assert!(!k.contains("4f1c"), "{k}");
        let hash = k.rsplit(':').next().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        // SHA-256, so every replica names the same id alike.
        assert_eq!(
            key("p", Purpose::Rate, "alice"),
            "p:rate:2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
        );
        assert_ne!(
            key("p", Purpose::Rate, "alice"),
            key("p", Purpose::Nonce, "alice")
        );
        assert_ne!(
            key("p", Purpose::Rate, "alice"),
            key("q", Purpose::Rate, "alice")
        );
        for purpose in [
            Purpose::Rate,
            Purpose::Nonce,
            Purpose::AuthFailures,
            Purpose::Session,
        ] {
            assert!(key("fleet:a", purpose, "10.0.0.7").starts_with("fleet:a:"));
        }
    }

    #[test]
    fn gcra_arguments_and_replies() {
        let quota = |n| RateQuota::per_minute(NonZeroU32::new(n).unwrap());
        assert_eq!(gcra_args(quota(30)), (2_000_000, 30));
        assert_eq!(gcra_args(quota(100)), (600_000, 100));
        assert_eq!(gcra_args(quota(7)), (8_571_428, 7));
        assert_eq!(gcra_decision((1, 0)), RateDecision::Allowed);
        assert_eq!(
            gcra_decision((0, 2000)),
            RateDecision::Limited {
                retry_after: Duration::from_secs(2)
            }
        );
        assert_eq!(
            gcra_decision((0, 0)),
            RateDecision::Limited {
                retry_after: Duration::from_millis(1)
            }
        );
    }

    /// The script's arithmetic, replayed in Rust with a fixed clock: a full bucket grants
    /// the burst at once, then one call per interval; the wait it reports is exact.
    #[test]
    fn gcra_semantics() {
        struct Bucket {
            tat: Option<f64>,
        }
        impl Bucket {
            fn take(&mut self, now: f64, interval: f64, burst: f64) -> (i64, i64) {
                let tat = self.tat.unwrap_or(now).max(now);
                let new_tat = tat + interval;
                let allow_at = new_tat - interval * burst;
                if allow_at > now {
                    return (0, ((allow_at - now) / 1000.0).ceil() as i64);
                }
                self.tat = Some(new_tat);
                (1, 0)
            }
        }
        let (interval, burst) = (2_000_000.0, 30.0);
        let mut bucket = Bucket { tat: None };
        let now = 1_700_000_000_000_000.0;
        let granted = (0..90)
            .filter(|_| bucket.take(now, interval, burst).0 == 1)
            .count();
        assert_eq!(granted, 30);
        assert_eq!(bucket.take(now, interval, burst), (0, 2000));
        assert_eq!(bucket.take(now + 1_999_000.0, interval, burst), (0, 1));
        assert_eq!(bucket.take(now + 2_000_000.0, interval, burst), (1, 0));
        assert_eq!(bucket.take(now + 2_000_000.0, interval, burst).0, 0);
        // A minute later the bucket is full again.
        let later = now + 62_000_000.0;
        let granted = (0..90)
            .filter(|_| bucket.take(later, interval, burst).0 == 1)
            .count();
        assert_eq!(granted, 30);
        // The script is that arithmetic.
        assert!(GCRA.contains("local allow_at = new_tat - interval * burst"));
        assert!(GCRA.contains("redis.call('TIME')"));
    }
}
