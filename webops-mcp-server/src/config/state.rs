//! `[state]`: where the state a fleet of servers shares lives (rate limits, the
//! authentication failure throttle, legacy sessions, confirmation nonces) — this process's
//! memory, or Redis — and what happens while Redis cannot be reached. Also the Redis URL,
//! which may hold a password: [`RedisUrl`] shows it masked everywhere.

use std::fmt;

use redis::IntoConnectionInfo as _;
use serde::{Deserialize, Serialize};

use super::env;
use super::secret::{REDACTED, Secret};

/// `[state] backend`: where shared state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateBackend {
    /// This process's memory: one server, nothing else needed (the default).
    #[default]
    Memory,
    /// A Redis server shared by every replica (`[state] redis_url`).
    Redis,
}

impl StateBackend {
    /// The configuration's name of the backend.
    pub fn as_str(self) -> &'static str {
        match self {
            StateBackend::Memory => "memory",
            StateBackend::Redis => "redis",
        }
    }
}

/// `[state] on_unavailable`: what calls that need shared state do while Redis cannot be
/// reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnUnavailable {
    /// Refuse them at once, saying the shared state store is unavailable (the default).
    #[default]
    Deny,
    /// Use this process's own in-memory limits, throttle and nonces until Redis returns
    /// (each replica then grants the full rate on its own).
    AllowLocal,
}

impl OnUnavailable {
    /// The configuration's name of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            OnUnavailable::Deny => "deny",
            OnUnavailable::AllowLocal => "allow_local",
        }
    }
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StateSettings {
    /// Where shared state lives.
    pub backend: StateBackend,
    /// The Redis server (required for [`StateBackend::Redis`]).
    pub redis_url: Option<RedisUrl>,
    /// What happens while Redis cannot be reached.
    pub on_unavailable: OnUnavailable,
    /// The first part of every Redis key (`<prefix>:<purpose>:...`), so several
    /// deployments can share one Redis.
    pub key_prefix: String,
}

/// The default `[state] key_prefix`.
pub(crate) const DEFAULT_KEY_PREFIX: &str = "webops-mcp";

/// The longest `[state] key_prefix`.
const MAX_KEY_PREFIX: usize = 64;

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            backend: StateBackend::Memory,
            redis_url: None,
            on_unavailable: OnUnavailable::Deny,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

/// A Redis URL that parses. It may hold a password (in its user part or its query), so it is
/// a secret: `Debug`, `Display` and serialization show it masked
/// (`redis://<redacted>@host:6379/0`); only [`RedisUrl::expose`] gives the URL itself.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: Secret,
    masked: String,
}

impl RedisUrl {
    /// Checks that `url` is a Redis URL the client can connect with. The error never
    /// contains the URL.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let url = url.trim();
        url.into_connection_info().map_err(|e| e.to_string())?;
        Ok(RedisUrl {
            masked: mask_url(url),
            url: Secret::new(url),
        })
    }

    /// The URL itself, password included: only for connecting.
    pub fn expose(&self) -> &str {
        self.url.expose()
    }

    /// The URL with its credentials and query masked: for logs and `check-config`.
    pub fn masked(&self) -> &str {
        &self.masked
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

/// `url` with the user part (`user:password@`) and the query (`?pass=...`) replaced by
/// [`REDACTED`]; a text that is no URL is replaced whole.
pub(crate) fn mask_url(url: &str) -> String {
    let Some(parsed) = redis::parse_redis_url(url) else {
        return REDACTED.to_owned();
    };
    let mut out = format!("{}://", parsed.scheme());
    if !parsed.username().is_empty() || parsed.password().is_some() {
        out.push_str(REDACTED);
        out.push('@');
    }
    if let Some(host) = parsed.host_str() {
        out.push_str(host);
    }
    if let Some(port) = parsed.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(parsed.path());
    if parsed.query().is_some() {
        out.push('?');
        out.push_str(REDACTED);
    }
    match parsed.fragment() {
        Some("insecure") => out.push_str("#insecure"),
        Some(_) => {
            out.push('#');
            out.push_str(REDACTED);
        }
        None => {}
    }
    out
}

/// `[state]` as the file holds it.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) backend: Option<StateBackend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) redis_url: Option<UrlText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) on_unavailable: Option<OnUnavailable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) key_prefix: Option<String>,
}

/// `[state] redis_url` as written: read as it is, shown (`Debug`, serialization) masked
/// whatever it holds.
pub(super) struct UrlText(String);

impl<'de> Deserialize<'de> for UrlText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(UrlText)
    }
}

impl Serialize for UrlText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&mask_url(&self.0))
    }
}

impl fmt::Debug for UrlText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_url(&self.0))
    }
}

impl StateFile {
    /// The effective settings in the file's shape, the URL masked.
    pub(super) fn view(state: &StateSettings) -> StateFile {
        StateFile {
            backend: Some(state.backend),
            redis_url: state
                .redis_url
                .as_ref()
                .map(|url| UrlText(url.expose().to_owned())),
            on_unavailable: Some(state.on_unavailable),
            key_prefix: Some(state.key_prefix.clone()),
        }
    }
}

/// `[state]` from the file and `WEBOPS_MCP_REDIS_URL` (which beats the file; empty counts as
/// unset).
pub(super) fn merge_state(
    file: StateFile,
    url_env: Option<&str>,
    errors: &mut Vec<String>,
) -> StateSettings {
    let mut state = StateSettings::default();
    if let Some(backend) = file.backend {
        state.backend = backend;
    }
    if let Some(policy) = file.on_unavailable {
        state.on_unavailable = policy;
    }
    if let Some(prefix) = file.key_prefix {
        if is_key_prefix(&prefix) {
            state.key_prefix = prefix;
        } else {
            errors.push(format!(
                "[state] key_prefix must be 1 to {MAX_KEY_PREFIX} characters of letters, \
                 digits, '.', '_', '-' and ':' (e.g. \"{DEFAULT_KEY_PREFIX}\" or \
                 \"webops-mcp:staging\"), got {prefix:?}"
            ));
        }
    }
    let url_env = url_env.filter(|v| !v.trim().is_empty());
    let (url, from_env) = match (url_env, &file.redis_url) {
        (Some(url), _) => (Some(url), true),
        (None, Some(text)) => (Some(text.0.as_str()), false),
        (None, None) => (None, false),
    };
    if let Some(url) = url {
        match RedisUrl::parse(url) {
            Ok(url) => state.redis_url = Some(url),
            Err(why) => errors.push(format!(
                "[state] redis_url is not a Redis URL ({why}); write \
                 redis://[user:password@]host[:port][/db], rediss://... for TLS, or \
                 redis+unix:///path/to/socket (the value is not shown: it may hold a \
                 password){}",
                if from_env {
                    format!(" (from the environment variable {})", env::REDIS_URL)
                } else {
                    String::new()
                }
            )),
        }
    } else if state.backend == StateBackend::Redis {
        errors.push(format!(
            "[state] backend = \"redis\" needs redis_url (or the environment variable {}), \
             e.g. \"redis://redis.internal:6379/0\"",
            env::REDIS_URL
        ));
    }
    state
}

fn is_key_prefix(prefix: &str) -> bool {
    (1..=MAX_KEY_PREFIX).contains(&prefix.len())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
}

/// This machine's host name, the default `[security] server_id` (`"webops-mcp"` when it has
/// none that can be shown).
pub(crate) fn host_name() -> String {
    let name = gethostname::gethostname();
    let name = name.to_string_lossy();
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        "webops-mcp".to_owned()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_shown_without_its_password_or_query() {
        for (url, shown) in [
            (
                "redis://:s3cret@redis.internal:6379/0",
                "redis://<redacted>@redis.internal:6379/0",
            ),
            (
                "rediss://default:s3cret@cache.example.com:6380/2#insecure",
                "rediss://<redacted>@cache.example.com:6380/2#insecure",
            ),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis+unix:///run/redis.sock?db=1&pass=s3cret",
                "redis+unix:///run/redis.sock?<redacted>",
            ),
            ("redis://[::1]:6379/0", "redis://[::1]:6379/0"),
            ("not a url s3cret", "<redacted>"),
        ] {
            assert_eq!(mask_url(url), shown, "{url}");
        }
        let url = RedisUrl::parse("redis://u:s3cret@h:1/0").unwrap();
        assert_eq!(url.expose(), "redis://u:s3cret@h:1/0");
        assert!(!format!("{url:?} {url}").contains("s3cret"));
    }

    #[test]
    fn a_url_that_is_not_one_says_why_without_the_value() {
        for bad in ["http://:s3cret@h:1/", "redis://:s3cret@h:1/x", "s3cret"] {
            let why = RedisUrl::parse(bad).unwrap_err();
            assert!(!why.contains("s3cret"), "{why}");
        }
        let mut errors = Vec::new();
        let file = StateFile {
            redis_url: Some(UrlText("ftp://:s3cret@h".into())),
            ..StateFile::default()
        };
        merge_state(file, None, &mut errors);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("[state] redis_url is not a Redis URL"));
        assert!(!errors[0].contains("s3cret"), "{}", errors[0]);
    }

    #[test]
    fn redis_needs_a_url_and_the_environment_beats_the_file() {
        let mut errors = Vec::new();
        let file = StateFile {
            backend: Some(StateBackend::Redis),
            ..StateFile::default()
        };
        merge_state(file, Some(" "), &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("needs redis_url"), "{}", errors[0]);

        let mut errors = Vec::new();
        let file = StateFile {
            backend: Some(StateBackend::Redis),
            redis_url: Some(UrlText("redis://file:6379".into())),
            key_prefix: Some("fleet:a".into()),
            on_unavailable: Some(OnUnavailable::AllowLocal),
        };
        let state = merge_state(file, Some("redis://env:6379"), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(state.redis_url.unwrap().expose(), "redis://env:6379");
        assert_eq!(state.key_prefix, "fleet:a");
        assert_eq!(state.on_unavailable, OnUnavailable::AllowLocal);
    }

    #[test]
    fn key_prefixes() {
        assert!(is_key_prefix("webops-mcp"));
        assert!(is_key_prefix("a.b_c-d:e9"));
        for bad in ["", "has space", "star*", "new\nline", &"x".repeat(65)] {
            assert!(!is_key_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_host_name_is_a_usable_server_id() {
        let name = host_name();
        assert!(!name.is_empty());
        assert!(!name.chars().any(char::is_control));
    }
}
