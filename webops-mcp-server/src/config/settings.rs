//! The effective, validated configuration the transports run with: [`Config`] and its
//! tables. Nothing here reads outside input (but the host name, the default `server_id`);
//! [`ConfigLoader`](super::ConfigLoader) builds it.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use jsonwebtoken::{Algorithm, DecodingKey};
use webops_client::{ApiFlavor, ClientConfig};
use webops_mcp_core::{
    ConfirmationConfig, DEFAULT_ANSWER_BYTES, PermissionSet, RepositoryPolicy, ResourceConfig,
    SecurityConfig, ToolSelection,
};

use super::file::FileConfig;
use super::secret::{REDACTED, Secret};
use super::state::{StateSettings, host_name};
use super::telemetry::TelemetrySettings;
use super::{ConfigLoader, DEFAULT_READ_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};
use crate::error::Error;
use crate::state::SharedState;

/// The effective, validated configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// How to reach the WebOps API (the server's own credentials).
    pub webops: ClientConfig,
    /// Rate limits, concurrency, audit and read-only mode.
    pub security: SecuritySettings,
    /// The identity of a stdio agent.
    pub stdio: StdioSettings,
    /// The HTTP transport.
    pub http: HttpSettings,
    /// HTTP authentication.
    pub auth: AuthSettings,
    /// `[confirmations]`: which calls a person must confirm, and how.
    pub confirmations: ConfirmationConfig,
    /// `[resources]`: whether and how often subscribed resources are watched for changes.
    pub resources: ResourceConfig,
    /// `[state]`: where the state a fleet shares lives.
    pub state: StateSettings,
    /// `[telemetry]`: OpenTelemetry export (off unless an endpoint is set).
    pub telemetry: TelemetrySettings,
    /// `[tools]`, `--tools`, `--toolsets`: which tools exist on the server (default: every
    /// tool); `read_only` still hides those that change something.
    pub tools: ToolSelection,
    /// `--demo`: serve an in-process mock WebOps API.
    pub demo: bool,
    /// `--demo-flavor`: which API the demo's mock speaks (default [`ApiFlavor::V1`]).
    pub demo_flavor: ApiFlavor,
    /// The configuration file that was read, if any.
    pub source: Option<PathBuf>,
    /// The store of `state`, made at first use and shared by this configuration's clones.
    pub(crate) shared: SharedStateCell,
}

/// The [`SharedState`] of a [`Config`]: one store (one Redis connection) for every server
/// and HTTP app built from the configuration and its clones.
#[derive(Clone, Default)]
pub(crate) struct SharedStateCell(std::sync::Arc<std::sync::Mutex<Option<SharedState>>>);

impl fmt::Debug for SharedStateCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedStateCell")
    }
}

/// `[security]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecuritySettings {
    /// Tool calls per user per minute.
    pub rate_limit_per_minute: u32,
    /// Tool calls in flight at once, over all users.
    pub max_concurrent_requests: usize,
    /// Whether every tool call writes an audit record.
    pub audit_logging: bool,
    /// The JSON-lines audit file; `None` writes audit records to stderr.
    pub audit_log: Option<PathBuf>,
    /// Offer only read tools.
    pub read_only: bool,
    /// What a deploy may name as its repository: `[webops] repository_schemes` and
    /// `[webops] allowed_repository_hosts`.
    pub repositories: RepositoryPolicy,
    /// The name of this server in every audit record (default: the host name).
    pub server_id: String,
    /// `[limits] max_answer_bytes`: the most bytes one tool answer may carry.
    pub max_answer_bytes: usize,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            rate_limit_per_minute: 100,
            max_concurrent_requests: 50,
            audit_logging: true,
            audit_log: None,
            read_only: false,
            repositories: RepositoryPolicy::default(),
            server_id: host_name(),
            max_answer_bytes: DEFAULT_ANSWER_BYTES,
        }
    }
}

impl SecuritySettings {
    /// The core library's view of these settings.
    pub fn to_core(&self) -> SecurityConfig {
        SecurityConfig::default()
            .rate_limit_per_minute(self.rate_limit_per_minute)
            .max_concurrent_requests(self.max_concurrent_requests)
            .audit_logging(self.audit_logging)
            .read_only(self.read_only)
            .repositories(self.repositories.clone())
            .server_id(self.server_id.clone())
            .max_answer_bytes(self.max_answer_bytes)
    }
}

/// `[stdio]`: who a stdio agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StdioSettings {
    /// The user id in audit records.
    pub user_id: String,
    /// What the agent may do.
    pub permissions: PermissionSet,
}

impl Default for StdioSettings {
    fn default() -> Self {
        StdioSettings {
            user_id: "local".to_owned(),
            permissions: PermissionSet::all(),
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpSettings {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Host names accepted in the `Host` header besides the loopback ones.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted in the `Origin` header (requests without one pass).
    pub allowed_origins: Vec<String>,
    /// Whether `/metrics` requires authentication (and `system:read`).
    pub metrics_require_auth: bool,
    /// Reverse proxies whose `X-Forwarded-For` names the client, besides loopback peers.
    pub trusted_proxies: Vec<IpNet>,
    /// How long `/mcp` may take to start its answer (a stream, once started, is not cut).
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers, and, counted separately, the
    /// time within which an `/mcp` request's whole body must arrive (not a pause between
    /// pieces: the body as a whole).
    pub read_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            metrics_require_auth: false,
            trusted_proxies: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

/// `[auth]`: how HTTP callers prove who they are.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AuthSettings {
    /// The permissions of a caller that sends no credentials; `None` (the default) refuses
    /// such callers. Only allowed on a loopback bind address.
    pub anonymous_permissions: Option<PermissionSet>,
    /// `[[auth.api_keys]]`.
    pub api_keys: Vec<ApiKeyEntry>,
    /// `[auth.jwt]`.
    pub jwt: Option<JwtSettings>,
    /// `[[auth.basic]]`.
    pub basic: Vec<BasicUser>,
    /// `[auth.oauth]`: publishes OAuth Protected Resource Metadata (RFC 9728).
    pub oauth: Option<OAuthSettings>,
}

impl AuthSettings {
    /// Whether any authentication method is configured.
    pub fn any_method(&self) -> bool {
        !self.api_keys.is_empty()
            || self.jwt.is_some()
            || !self.basic.is_empty()
            || self.anonymous_permissions.is_some()
    }
}

/// One `[[auth.api_keys]]` entry: the SHA-256 digest of a key and what it may do.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyEntry {
    /// The owner, as in audit records.
    pub user_id: String,
    /// SHA-256 of the key.
    pub digest: [u8; 32],
    /// What the key may do.
    pub permissions: PermissionSet,
}

impl ApiKeyEntry {
    /// A new entry.
    pub fn new(user_id: impl Into<String>, digest: [u8; 32], permissions: PermissionSet) -> Self {
        ApiKeyEntry {
            user_id: user_id.into(),
            digest,
            permissions,
        }
    }
}

impl fmt::Debug for ApiKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("user_id", &self.user_id)
            .field("key_sha256", &hex::encode(self.digest))
            .field("permissions", &self.permissions)
            .finish()
    }
}

/// `[auth.jwt]`: how bearer JWTs are verified.
#[derive(Clone)]
#[non_exhaustive]
pub struct JwtSettings {
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
    pub(crate) key: JwtKey,
}

impl JwtSettings {
    /// The one signature algorithm tokens must use (fixed by the key type).
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm
    }
}

impl fmt::Debug for JwtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSettings")
            .field("algorithm", &self.key.algorithm)
            .field("key", &self.key.source)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// A verification key and the algorithm it fixes.
#[derive(Clone)]
pub(crate) struct JwtKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
    pub(crate) source: JwtKeySource,
}

/// Where the key came from (for `check-config` and `Debug`; never the secret itself).
#[derive(Clone)]
pub(crate) enum JwtKeySource {
    /// An HS256 secret (the value is only in the decoding key).
    Secret,
    /// A PEM public key file.
    PemFile(PathBuf),
}

impl fmt::Debug for JwtKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtKeySource::Secret => write!(f, "secret({REDACTED})"),
            JwtKeySource::PemFile(path) => write!(f, "pem_file({})", path.display()),
        }
    }
}

/// One `[[auth.basic]]` user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BasicUser {
    /// The user name (and user id).
    pub username: String,
    /// The argon2id PHC string.
    pub password_hash: Secret,
    /// What the user may do.
    pub permissions: PermissionSet,
}

/// `[auth.oauth]`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthSettings {
    /// This server's resource identifier, e.g. `https://mcp.example.com/mcp`.
    pub resource: String,
    /// The authorization servers that issue tokens for it.
    pub authorization_servers: Vec<String>,
}

impl OAuthSettings {
    /// The RFC 9728 metadata URL of [`OAuthSettings::resource`]: the well-known path inserted
    /// between the authority and the resource's path.
    pub fn metadata_url(&self) -> String {
        let (origin, path) = split_origin(&self.resource);
        let path = path.trim_end_matches('/');
        format!("{origin}/.well-known/oauth-protected-resource{path}")
    }
}

/// Splits `https://host:port/path?q` into `https://host:port` and `/path`.
pub(super) fn split_origin(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find(['?', '#'])
        .map(|i| i + after_scheme)
        .unwrap_or(url.len());
    match url[after_scheme..end].find('/') {
        Some(i) => (&url[..after_scheme + i], &url[after_scheme + i..end]),
        None => (&url[..end], ""),
    }
}

impl Config {
    /// A loader with nothing set: defaults only.
    pub fn loader() -> ConfigLoader {
        ConfigLoader::default()
    }

    /// Checks what `webops-mcp http` needs beyond a valid configuration: some authentication
    /// method, unless in demo mode (which creates keys).
    pub fn check_http_auth(&self) -> Result<(), Error> {
        if self.auth.any_method() || self.demo {
            Ok(())
        } else {
            Err(Error::NoHttpAuth)
        }
    }

    /// Whether the server has WebOps credentials of its own: an API key, or a control panel
    /// user name and password.
    pub fn has_webops_credentials(&self) -> bool {
        self.webops.api_key.is_some()
            || (self.webops.username.is_some() && self.webops.password.is_some())
    }

    /// The shared state store of `[state]`: this process's memory, or a Redis client that
    /// connects at its first use and reconnects by itself. Made once and shared by every
    /// server and HTTP app built from this configuration and its clones, so they share one
    /// connection, one availability and one set of counters; load the configuration again
    /// for a store of its own.
    pub fn shared_state(&self) -> SharedState {
        crate::sync::lock(&self.shared.0)
            .get_or_insert_with(|| SharedState::new(&self.state))
            .clone()
    }

    /// The effective configuration as TOML in the file's shape, secrets replaced by
    /// `<redacted>` (what `check-config` prints).
    pub fn to_redacted_toml(&self) -> String {
        let view = FileConfig::redacted_view(self);
        toml::to_string_pretty(&view).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}
