//! [`RedisState`]: shared state in Redis. One multiplexed connection (redis' connection
//! manager: made at first use, remade by itself after Redis went away), every operation
//! bounded by [`OP_TIMEOUT`], and the store's availability: after a failure, calls fail fast
//! for [`RETRY_AFTER`] before Redis is asked again, each outage is logged once (and its end
//! once), and `[state] on_unavailable` decides what the calls get meanwhile — an error saying
//! the store is unavailable (`deny`), or this process's own in-memory limiter, nonces and
//! throttle (`allow_local`).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rmcp::transport::streamable_http_server::session::{
    SessionState, SessionStore, SessionStoreError,
};
use webops_mcp_core::{
    MemoryNonceStore, MemoryRateLimiter, MetricKind, NonceStore, PrometheusWriter, RateDecision,
    RateLimitStore, RateQuota, async_trait,
};

use super::keys::{COUNT_FAILURE, GCRA, Purpose, gcra_args, gcra_decision, key};
use crate::config::{OnUnavailable, RedisUrl};
use crate::sync::lock;

/// The longest one operation may take, connecting included, before the store counts as
/// unavailable.
const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long calls fail fast after a failure before Redis is asked again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long a health answer is reused instead of asking Redis again.
const HEALTH_FRESH: Duration = Duration::from_secs(2);

/// How long a legacy session's entry lives unused (every use renews it).
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(600);

/// What was being done when the store could not be reached (the label of
/// `webops_mcp_state_unavailable_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    RateLimit,
    Nonce,
    Session,
    AuthThrottle,
}

impl Operation {
    const ALL: [Operation; 4] = [
        Operation::RateLimit,
        Operation::Nonce,
        Operation::Session,
        Operation::AuthThrottle,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Operation::RateLimit => "rate_limit",
            Operation::Nonce => "nonce",
            Operation::Session => "session",
            Operation::AuthThrottle => "auth_throttle",
        }
    }
}

/// The store could not answer: why, in words that never hold the URL or its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable(String);

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the shared state store (Redis) is unavailable: {}",
            self.0
        )
    }
}

impl std::error::Error for Unavailable {}

/// Whether Redis answers, and since when it does not.
#[derive(Default)]
struct Availability {
    /// When Redis last failed, while it does; `None` while it answers.
    down_since: Option<Instant>,
    /// Calls fail fast until then.
    retry_at: Option<Instant>,
    /// Why it last failed.
    last_error: String,
    /// When Redis last answered or failed.
    last_outcome: Option<Instant>,
}

/// Shared state in Redis, with this process's fallbacks for `allow_local`.
pub(crate) struct RedisState {
    /// `Err`: the URL cannot make a client (every operation is then unavailable).
    client: Result<redis::Client, String>,
    connection: tokio::sync::OnceCell<ConnectionManager>,
    url: String,
    /// The URL's password, scrubbed from any error text that might carry it.
    password: Option<String>,
    prefix: String,
    policy: OnUnavailable,
    gcra: redis::Script,
    count_failure: redis::Script,
    availability: Mutex<Availability>,
    reachable: AtomicBool,
    unavailable: Mutex<BTreeMap<Operation, u64>>,
    local_rate: OnceLock<MemoryRateLimiter>,
    local_nonces: MemoryNonceStore,
}

impl RedisState {
    /// A store on `url` whose keys start with `prefix`; nothing connects yet.
    pub(crate) fn new(url: &RedisUrl, prefix: &str, policy: OnUnavailable) -> Self {
        let client = redis::Client::open(url.expose()).map_err(|e| e.to_string());
        let password = client
            .as_ref()
            .ok()
            .and_then(|c| c.get_connection_info().redis_settings().password())
            .map(str::to_owned);
        RedisState {
            client,
            connection: tokio::sync::OnceCell::new(),
            url: url.masked().to_owned(),
            password,
            prefix: prefix.to_owned(),
            policy,
            gcra: redis::Script::new(GCRA),
            count_failure: redis::Script::new(COUNT_FAILURE),
            availability: Mutex::new(Availability::default()),
            reachable: AtomicBool::new(false),
            unavailable: Mutex::new(BTreeMap::new()),
            local_rate: OnceLock::new(),
            local_nonces: MemoryNonceStore::new(),
        }
    }

    /// The URL, masked.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `[state] on_unavailable`.
    pub(crate) fn policy(&self) -> OnUnavailable {
        self.policy
    }

    fn key(&self, purpose: Purpose, id: &str) -> String {
        key(&self.prefix, purpose, id)
    }

    /// The connection manager, made at first use (inside the runtime).
    async fn connection(&self) -> Result<ConnectionManager, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let manager = self
            .connection
            .get_or_try_init(|| async {
                // One attempt per operation: the availability below decides when to try
                // again, so a call never waits out a series of retries.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(Some(OP_TIMEOUT))
                    .set_response_timeout(Some(OP_TIMEOUT));
                ConnectionManager::new_lazy_with_config(client.clone(), config)
            })
            .await
            .map_err(|e| self.scrub(&e.to_string()))?;
        Ok(manager.clone())
    }

    /// `text` without the URL's password.
    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(password) if !password.is_empty() => {
                text.replace(password.as_str(), crate::config::REDACTED)
            }
            _ => text.to_owned(),
        }
    }

    /// Runs `op` against Redis within [`OP_TIMEOUT`], or fails fast while Redis is known to
    /// be away; keeps the availability (and its log lines) up to date.
    async fn run<T, F, Fut>(&self, operation: Option<Operation>, op: F) -> Result<T, Unavailable>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if let Some(error) = self.failing_fast() {
            self.count(operation);
            return Err(error);
        }
        let result = tokio::time::timeout(OP_TIMEOUT, async {
            let connection = self.connection().await?;
            let answer = match op(connection.clone()).await {
                // Not sent (the last connection attempt was refused): the manager is
                // connecting again now, so Redis back since is used at once.
                Err(e) if e.is_connection_refusal() => op(connection).await,
                answer => answer,
            };
            answer.map_err(|e| self.scrub(&e.to_string()))
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} ms", OP_TIMEOUT.as_millis())));
        match result {
            Ok(value) => {
                self.answered();
                Ok(value)
            }
            Err(error) => {
                self.failed(&error);
                self.count(operation);
                Err(Unavailable(error))
            }
        }
    }

    /// The error to fail with at once, while Redis failed less than [`RETRY_AFTER`] ago.
    fn failing_fast(&self) -> Option<Unavailable> {
        let availability = lock(&self.availability);
        match availability.retry_at {
            Some(at) if Instant::now() < at => Some(Unavailable(availability.last_error.clone())),
            _ => None,
        }
    }

    fn answered(&self) {
        self.reachable.store(true, Ordering::Relaxed);
        let mut availability = lock(&self.availability);
        availability.last_outcome = Some(Instant::now());
        availability.retry_at = None;
        if let Some(since) = availability.down_since.take() {
            tracing::info!(
                url = %self.url,
                after_seconds = since.elapsed().as_secs(),
                "the shared state store (Redis) is reachable again"
            );
        }
    }

    fn failed(&self, error: &str) {
        self.reachable.store(false, Ordering::Relaxed);
        let now = Instant::now();
        let mut availability = lock(&self.availability);
        availability.last_outcome = Some(now);
        availability.retry_at = Some(now + RETRY_AFTER);
        error.clone_into(&mut availability.last_error);
        if availability.down_since.is_none() {
            availability.down_since = Some(now);
            let consequence = match self.policy {
                OnUnavailable::Deny => {
                    "until it returns, tool calls, password logins and sessions opened on \
                     another replica are refused ([state] on_unavailable = \"deny\")"
                }
                OnUnavailable::AllowLocal => {
                    "until it returns, this process uses its own in-memory rate limits, \
                     confirmation nonces and failure throttle ([state] on_unavailable = \
                     \"allow_local\")"
                }
            };
            tracing::warn!(url = %self.url, error, "the shared state store (Redis) is unavailable; {consequence}");
        }
    }

    fn count(&self, operation: Option<Operation>) {
        if let Some(operation) = operation {
            *lock(&self.unavailable).entry(operation).or_insert(0) += 1;
        }
    }

    /// Whether Redis answers: the last outcome when it is fresh, else a `PING`.
    pub(crate) async fn check(&self) -> Result<(), Unavailable> {
        {
            let availability = lock(&self.availability);
            if let Some(at) = availability.last_outcome
                && at.elapsed() < HEALTH_FRESH
            {
                return match availability.down_since {
                    None => Ok(()),
                    Some(_) => Err(Unavailable(availability.last_error.clone())),
                };
            }
        }
        self.run(None, |mut c| async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// Appends `webops_mcp_state_store_reachable` and `webops_mcp_state_unavailable_total`.
    pub(crate) fn render_metrics(&self, out: &mut String) {
        let counts = lock(&self.unavailable).clone();
        render(
            out,
            "redis",
            self.reachable.load(Ordering::Relaxed),
            |operation| counts.get(&operation).copied().unwrap_or(0),
        );
    }

    // --- the per-user rate limit -------------------------------------------------------

    fn local_rate(&self, quota: RateQuota) -> &MemoryRateLimiter {
        self.local_rate
            .get_or_init(|| MemoryRateLimiter::new(quota))
    }

    // --- sessions and their owners ------------------------------------------------------

    /// Who owns `session` (`"<auth method>:<user id>"`), renewing its entry; `None` for a
    /// session the fleet does not know.
    pub(crate) async fn session_owner(&self, session: &str) -> Result<Option<String>, Unavailable> {
        self.session_field(session, "owner").await
    }

    /// One field of `session`'s hash (`owner`, or rmcp's `state`), renewing the session's
    /// entry; `None` for a session the fleet does not know.
    async fn session_field(
        &self,
        session: &str,
        field: &'static str,
    ) -> Result<Option<String>, Unavailable> {
        let key = self.key(Purpose::Session, session);
        let key = key.as_str();
        let ttl = millis(SESSION_TTL);
        let (value, _): (Option<String>, i64) = self
            .run(Some(Operation::Session), |mut c| async move {
                redis::pipe()
                    .cmd("HGET")
                    .arg(key)
                    .arg(field)
                    .cmd("PEXPIRE")
                    .arg(key)
                    .arg(ttl)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(value)
    }

    /// Records the owner of a session just opened.
    pub(crate) async fn record_session_owner(
        &self,
        session: &str,
        owner: &str,
    ) -> Result<(), Unavailable> {
        let key = self.key(Purpose::Session, session);
        let key = key.as_str();
        let ttl = millis(SESSION_TTL);
        self.run(Some(Operation::Session), |mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(key)
                .arg("owner")
                .arg(owner)
                .ignore()
                .cmd("PEXPIRE")
                .arg(key)
                .arg(ttl)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Renews a session's entry; `false` when the fleet no longer knows it (deleted through
    /// another replica, or expired).
    pub(crate) async fn touch_session(&self, session: &str) -> Result<bool, Unavailable> {
        let key = self.key(Purpose::Session, session);
        let key = key.as_str();
        let ttl = millis(SESSION_TTL);
        self.run(Some(Operation::Session), |mut c| async move {
            redis::cmd("PEXPIRE")
                .arg(key)
                .arg(ttl)
                .query_async::<bool>(&mut c)
                .await
        })
        .await
    }

    /// Forgets a session its owner deleted.
    pub(crate) async fn forget_session(&self, session: &str) -> Result<(), Unavailable> {
        let key = self.key(Purpose::Session, session);
        let key = key.as_str();
        self.run(Some(Operation::Session), |mut c| async move {
            redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await
        })
        .await
    }

    // --- authentication failures ----------------------------------------------------------

    /// The failures of `client` in its current window and the time left in it.
    pub(crate) async fn auth_failures(
        &self,
        client: &str,
    ) -> Result<Option<(u32, Duration)>, Unavailable> {
        let key = self.key(Purpose::AuthFailures, client);
        let key = key.as_str();
        let (count, ttl): (Option<u32>, i64) = self
            .run(Some(Operation::AuthThrottle), |mut c| async move {
                redis::pipe()
                    .cmd("GET")
                    .arg(key)
                    .cmd("PTTL")
                    .arg(key)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(count.map(|n| (n, Duration::from_millis(u64::try_from(ttl).unwrap_or(0)))))
    }

    /// Counts one failure of `client` (the first starts a window of `window`); returns the
    /// failures in the window, this one included, and the time left in it.
    pub(crate) async fn count_auth_failure(
        &self,
        client: &str,
        window: Duration,
    ) -> Result<(u32, Duration), Unavailable> {
        let key = self.key(Purpose::AuthFailures, client);
        let key = key.as_str();
        let script = &self.count_failure;
        let (count, ttl): (i64, i64) = self
            .run(Some(Operation::AuthThrottle), |mut c| async move {
                script
                    .key(key)
                    .arg(millis(window))
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok((
            u32::try_from(count).unwrap_or(u32::MAX),
            Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        ))
    }
}

/// Milliseconds of `d`, for `PX` and `PEXPIRE`.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The state metrics of the memory backend: always reachable, never unavailable.
pub(super) fn render_memory_metrics(out: &mut String) {
    render(out, "memory", true, |_| 0);
}

fn render(out: &mut String, backend: &str, reachable: bool, count: impl Fn(Operation) -> u64) {
    let mut w = PrometheusWriter::new(out);
    w.family(
        "webops_mcp_state_store_reachable",
        MetricKind::Gauge,
        "1 when the shared state store answered its last request, 0 when it did not.",
    );
    w.sample(
        "webops_mcp_state_store_reachable",
        &[("backend", backend)],
        u8::from(reachable),
    );
    w.family(
        "webops_mcp_state_unavailable_total",
        MetricKind::Counter,
        "Operations that found the shared state store unavailable, by what they needed it for.",
    );
    for operation in Operation::ALL {
        w.sample(
            "webops_mcp_state_unavailable_total",
            &[("operation", operation.as_str())],
            count(operation),
        );
    }
}

#[async_trait]
impl RateLimitStore for RedisState {
    async fn take(&self, key: &str, quota: RateQuota) -> Result<RateDecision, String> {
        let bucket = self.key(Purpose::Rate, key);
        let bucket = bucket.as_str();
        let (interval, burst) = gcra_args(quota);
        let script = &self.gcra;
        let taken = self
            .run(Some(Operation::RateLimit), |mut c| async move {
                script
                    .key(bucket)
                    .arg(interval)
                    .arg(burst)
                    .invoke_async::<(i64, i64)>(&mut c)
                    .await
            })
            .await;
        match taken {
            Ok(reply) => Ok(gcra_decision(reply)),
            Err(_) if self.policy == OnUnavailable::AllowLocal => {
                Ok(self.local_rate(quota).check(key))
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

#[async_trait]
impl NonceStore for RedisState {
    async fn consume(&self, nonce: &str, ttl: Duration) -> Result<bool, String> {
        let key = self.key(Purpose::Nonce, nonce);
        let key = key.as_str();
        let set = self
            .run(Some(Operation::Nonce), |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl))
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await;
        match set {
            Ok(reply) => Ok(reply.is_some()),
            Err(_) if self.policy == OnUnavailable::AllowLocal => {
                self.local_nonces.consume(nonce, ttl).await
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// rmcp's store of legacy sessions: the client's `initialize` parameters, in the session's
/// hash beside its owner, renewed on every use.
#[async_trait]
impl SessionStore for RedisState {
    async fn load(&self, session_id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        match self.session_field(session_id, "state").await? {
            None => Ok(None),
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
        }
    }

    async fn store(&self, session_id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let key = self.key(Purpose::Session, session_id);
        let key = key.as_str();
        let json = serde_json::to_string(state)?;
        let json = json.as_str();
        let ttl = millis(SESSION_TTL);
        self.run(Some(Operation::Session), |mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(key)
                .arg("state")
                .arg(json)
                .ignore()
                .cmd("PEXPIRE")
                .arg(key)
                .arg(ttl)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    async fn delete(&self, session_id: &str) -> Result<(), SessionStoreError> {
        Ok(self.forget_session(session_id).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(url: &str) -> RedisState {
        RedisState::new(&RedisUrl::parse(url).unwrap(), "test", OnUnavailable::Deny)
    }

    #[test]
    fn errors_never_show_the_password() {
        let store = state("redis://user:pa55word-x@127.0.0.1:1/0");
        assert_eq!(store.url(), "redis://<redacted>@127.0.0.1:1/0");
        assert_eq!(
            store.scrub("auth failed for pa55word-x at 127.0.0.1"),
            "auth failed for <redacted> at 127.0.0.1"
        );
        let message = Unavailable("Connection refused".into()).to_string();
        assert_eq!(
            message,
            "the shared state store (Redis) is unavailable: Connection refused"
        );
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_fast_and_counts() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let store = state("redis://127.0.0.1:1/0");
        let first = store.check().await.unwrap_err();
        assert!(first.to_string().contains("unavailable"), "{first}");
        let quota = RateQuota::per_minute(std::num::NonZeroU32::new(5).unwrap());
        let refused = store.take("alice", quota).await.unwrap_err();
        assert!(
            refused.contains("the shared state store (Redis) is unavailable"),
            "{refused}"
        );
        assert!(store.consume("n", Duration::from_secs(5)).await.is_err());
        let mut out = String::new();
        store.render_metrics(&mut out);
        assert!(
            out.contains("webops_mcp_state_store_reachable{backend=\"redis\"} 0"),
            "{out}"
        );
        assert!(
            out.contains("webops_mcp_state_unavailable_total{operation=\"rate_limit\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("webops_mcp_state_unavailable_total{operation=\"nonce\"} 1"),
            "{out}"
        );

        let local = RedisState::new(
            &RedisUrl::parse("redis://127.0.0.1:1/0").unwrap(),
            "test",
            OnUnavailable::AllowLocal,
        );
        for _ in 0..5 {
            assert_eq!(local.take("alice", quota).await, Ok(RateDecision::Allowed));
        }
        assert!(matches!(
            local.take("alice", quota).await,
            Ok(RateDecision::Limited { .. })
        ));
        assert_eq!(local.consume("n", Duration::from_secs(5)).await, Ok(true));
        assert_eq!(local.consume("n", Duration::from_secs(5)).await, Ok(false));
    }
}
