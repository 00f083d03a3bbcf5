//! The state a fleet of servers shares: per-user rate limits, the authentication failure
//! throttle, legacy MCP sessions (and who owns them) and confirmation nonces. With
//! `[state] backend = "memory"` (the default) all of it stays in this process, exactly as a
//! single server keeps it, and nothing here is used on a call's path. With `"redis"` it lives
//! in Redis, so replicas behind a load balancer grant one rate per user, accept a session
//! opened on another replica, and refuse a confirmation used on another replica.
//!
//! - `redis.rs` — `RedisState`: the connection (made at first use, reconnecting by itself),
//!   the availability of the store with the `on_unavailable` policy, the local fallbacks, and
//!   the core's and rmcp's store traits;
//! - `keys.rs` — key names (hashed ids) and the Lua scripts that run atomically in Redis.

mod keys;
mod redis;

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::SessionStore;
use serde_json::{Value, json};
use webops_mcp_core::{NonceStore, RateLimitStore};

use crate::config::{StateBackend, StateSettings};

pub(crate) use self::redis::RedisState;

/// Where shared state lives: this process ([`SharedState::memory`]) or Redis. Cheap to clone.
/// [`Config::shared_state`](crate::Config::shared_state) gives the one of a configuration;
/// `build_server` and `HttpApp` use it.
#[derive(Clone)]
pub struct SharedState {
    redis: Option<Arc<RedisState>>,
}

impl SharedState {
    /// The store of `settings`. For Redis, nothing connects yet: the connection is made at
    /// first use and remade by itself after Redis went away.
    pub fn new(settings: &StateSettings) -> SharedState {
        match (settings.backend, &settings.redis_url) {
            (StateBackend::Redis, Some(url)) => SharedState {
                redis: Some(Arc::new(RedisState::new(
                    url,
                    &settings.key_prefix,
                    settings.on_unavailable,
                ))),
            },
            _ => SharedState::memory(),
        }
    }

    /// State in this process's memory: the single-server default.
    pub fn memory() -> SharedState {
        SharedState { redis: None }
    }

    /// Where state lives.
    pub fn backend(&self) -> StateBackend {
        if self.redis.is_some() {
            StateBackend::Redis
        } else {
            StateBackend::Memory
        }
    }

    /// The per-user rate limit's store for the server builder, when shared (`None`: the
    /// server's own in-memory limiter).
    pub fn rate_limit_store(&self) -> Option<Arc<dyn RateLimitStore>> {
        self.redis
            .clone()
            .map(|redis| redis as Arc<dyn RateLimitStore>)
    }

    /// The confirmation nonces' store for the server builder, when shared.
    pub fn nonce_store(&self) -> Option<Arc<dyn NonceStore>> {
        self.redis.clone().map(|redis| redis as Arc<dyn NonceStore>)
    }

    /// rmcp's store of legacy sessions, when shared: a session opened on another replica is
    /// restored here from it.
    pub(crate) fn session_store(&self) -> Option<Arc<dyn SessionStore>> {
        self.redis
            .clone()
            .map(|redis| redis as Arc<dyn SessionStore>)
    }

    /// The Redis store, when shared.
    pub(crate) fn redis(&self) -> Option<&Arc<RedisState>> {
        self.redis.as_ref()
    }

    /// Whether the store can be reached now (asks Redis when its last answer is older than
    /// a second or two): `/health`'s `state` member. Memory is always reachable.
    pub async fn health(&self) -> StateHealth {
        match &self.redis {
            None => StateHealth {
                backend: StateBackend::Memory,
                reachable: true,
                error: None,
                on_unavailable: None,
            },
            Some(redis) => {
                let result = redis.check().await;
                StateHealth {
                    backend: StateBackend::Redis,
                    reachable: result.is_ok(),
                    error: result.err().map(|e| e.to_string()),
                    on_unavailable: Some(redis.policy().as_str()),
                }
            }
        }
    }

    /// Appends the store's metrics (reachability, calls that found it unavailable).
    pub(crate) fn render_metrics(&self, out: &mut String) {
        match &self.redis {
            Some(redis) => redis.render_metrics(out),
            None => redis::render_memory_metrics(out),
        }
    }
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.redis {
            None => f.write_str("SharedState(memory)"),
            Some(redis) => write!(f, "SharedState(redis {})", redis.url()),
        }
    }
}

/// Whether the shared state store can be reached, as `/health` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateHealth {
    /// Where state lives.
    pub backend: StateBackend,
    /// Whether the store answered (memory always does).
    pub reachable: bool,
    /// Why it did not (never a password).
    pub error: Option<String>,
    /// `[state] on_unavailable`, for Redis.
    pub on_unavailable: Option<&'static str>,
}

impl StateHealth {
    /// The `state` member of `/health`.
    pub(crate) fn to_json(&self) -> Value {
        let mut value = json!({
            "backend": self.backend.as_str(),
            "reachable": self.reachable,
        });
        if let Some(map) = value.as_object_mut() {
            if let Some(policy) = self.on_unavailable {
                map.insert("on_unavailable".into(), Value::from(policy));
            }
            if let Some(error) = &self.error {
                map.insert("error".into(), Value::from(error.as_str()));
            }
        }
        value
    }
}
