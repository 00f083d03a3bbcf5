//! Configuration: the TOML file shape, environment and flag overrides, validation, and the
//! effective [`Config`] the transports run with.
//!
//! Precedence: defaults < TOML file < environment < flags. Every table rejects unknown keys
//! with an error naming the key and the table. Only [`ConfigLoader`] turns outside input into
//! a [`Config`]; the binary's `main` is the only place that reads the process environment
//! (and hands the values to [`ConfigLoader::env`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::PasswordHash;
use ipnet::IpNet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use webops_client::{ApiFlavor, ClientConfig, Flavor};
use webops_mcp_core::{PermissionSet, SecurityConfig};

use crate::error::Error;

/// The environment variables the configuration reads (besides `WEBOPS_MCP_CONFIG`, which
/// names the file and is handled by the command line).
pub const ENV_VARS: [&str; 7] = [
    "WEBOPS_API_URL",
    "WEBOPS_API_VERSION",
    "WEBOPS_API_KEY",
    "WEBOPS_API_FLAVOR",
    "WEBOPS_USERNAME",
    "WEBOPS_PASSWORD",
    "JWT_SECRET",
];

/// The default HTTP bind address.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// The default of `[http] request_timeout_secs`: above the longest deploy wait (600 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(660);

/// The default of `[http] read_timeout_secs`.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What is shown instead of a secret.
const REDACTED: &str = "<redacted>";

/// A secret string: `Debug` never shows it and it serializes as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; use only where it is needed (hashing, verifying, sending upstream).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

// ---------------------------------------------------------------------------------------------
// The effective configuration
// ---------------------------------------------------------------------------------------------

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
    /// `--demo`: serve an in-process mock WebOps API.
    pub demo: bool,
    /// `--demo-flavor`: which API the demo's mock speaks (default [`ApiFlavor::V1`]).
    pub demo_flavor: ApiFlavor,
    /// The configuration file that was read, if any.
    pub source: Option<PathBuf>,
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
}

impl Default for SecuritySettings {
    fn default() -> Self {
        SecuritySettings {
            rate_limit_per_minute: 100,
            max_concurrent_requests: 50,
            audit_logging: true,
            audit_log: None,
            read_only: false,
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
            JwtKeySource::Secret => f.write_str("secret(<redacted>)"),
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
fn split_origin(url: &str) -> (&str, &str) {
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

    /// The effective configuration as TOML in the file's shape, secrets replaced by
    /// `<redacted>` (what `check-config` prints).
    pub fn to_redacted_toml(&self) -> String {
        let view = FileConfig::redacted_view(self);
        toml::to_string_pretty(&view).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Assembles a [`Config`] from a file (or TOML text), environment values and flags.
#[derive(Clone, Default)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    text: Option<String>,
    env: BTreeMap<String, Secret>,
    bind: Option<String>,
    read_only: bool,
    demo: bool,
    demo_flavor: Option<ApiFlavor>,
}

/// Shows a length in place of a text that may hold secrets.
struct ByteCount(usize);

impl fmt::Debug for ByteCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// By hand: the TOML text may hold secrets, so only its length is shown.
impl fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigLoader")
            .field("file", &self.file)
            .field("text", &self.text.as_ref().map(|t| ByteCount(t.len())))
            .field("env", &self.env)
            .field("bind", &self.bind)
            .field("read_only", &self.read_only)
            .field("demo", &self.demo)
            .field("demo_flavor", &self.demo_flavor)
            .finish()
    }
}

impl ConfigLoader {
    /// Reads this TOML file (a missing file is an error).
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Uses this TOML text instead of a file (relative paths resolve against the current
    /// directory).
    pub fn toml(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// An environment value, one of [`ENV_VARS`]; others are ignored.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        if ENV_VARS.contains(&name) {
            self.env.insert(name.to_owned(), Secret::new(value));
        }
        self
    }

    /// `--bind`.
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.bind = Some(addr.into());
        self
    }

    /// `--read-only` (a flag can only turn it on).
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// `--demo`.
    pub fn demo(mut self, on: bool) -> Self {
        self.demo = on;
        self
    }

    /// `--demo-flavor`: the API the demo's mock speaks (default [`ApiFlavor::V1`]).
    pub fn demo_flavor(mut self, flavor: ApiFlavor) -> Self {
        self.demo_flavor = Some(flavor);
        self
    }

    /// Reads, merges and validates. Every problem found is reported, not just the first.
    pub fn load(self) -> Result<Config, Error> {
        let (file, base_dir) = match (&self.file, &self.text) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
                    path: path.clone(),
                    source,
                })?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (parse_file(&text, &path.display().to_string())?, dir)
            }
            (None, Some(text)) => (parse_file(text, "configuration")?, PathBuf::new()),
            (None, None) => (FileConfig::default(), PathBuf::new()),
        };
        let mut errors = Vec::new();
        let config = self.merge(file, &base_dir, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(Error::Config(errors))
        }
    }

    fn env_value(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(Secret::expose)
    }

    fn merge(&self, file: FileConfig, base_dir: &Path, errors: &mut Vec<String>) -> Config {
        let webops = self.merge_webops(file.webops, errors);
        let security = merge_security(file.security, self.read_only, base_dir, errors);
        let stdio = merge_stdio(file.stdio, errors);
        let http = self.merge_http(file.http, errors);
        let auth = self.merge_auth(file.auth, base_dir, errors);
        if let Some(anonymous) = &auth.anonymous_permissions
            && !anonymous.is_empty()
            && !http.bind.ip().is_loopback()
        {
            errors.push(format!(
                "[auth] anonymous_permissions is only allowed on a loopback bind address, but \
                 [http] bind is {}; remove anonymous_permissions or bind to 127.0.0.1",
                http.bind
            ));
        }
        Config {
            webops,
            security,
            stdio,
            http,
            auth,
            demo: self.demo,
            demo_flavor: self.demo_flavor.unwrap_or(ApiFlavor::V1),
            source: self.file.clone(),
        }
    }

    fn merge_webops(&self, file: WebopsFile, errors: &mut Vec<String>) -> ClientConfig {
        let mut config = ClientConfig::default();
        if let Some(url) = self
            .env_value("WEBOPS_API_URL")
            .map(str::to_owned)
            .or(file.api_url)
        {
            config.api_url = url;
        }
        if let Some(version) = self
            .env_value("WEBOPS_API_VERSION")
            .map(str::to_owned)
            .or(file.api_version)
        {
            config.api_version = version;
        }
        if let Some(key) = self
            .env_value("WEBOPS_API_KEY")
            .map(str::to_owned)
            .or(file.api_key.map(|s| s.0))
        {
            config.api_key = (!key.is_empty()).then_some(key);
        }
        // The flavour: an empty environment value counts as unset.
        let flavor_env = self
            .env_value("WEBOPS_API_FLAVOR")
            .filter(|v| !v.trim().is_empty());
        if let Some(name) = flavor_env.map(str::to_owned).or(file.flavor) {
            match name.parse::<Flavor>() {
                Ok(flavor) => config.flavor = flavor,
                Err(e) => errors.push(format!(
                    "[webops] flavor: {e}{}",
                    from_env_note(flavor_env.is_some(), "WEBOPS_API_FLAVOR")
                )),
            }
        }
        // The control panel login: like the API key, the environment beats the file and an
        // empty value means none.
        let username_env = self.env_value("WEBOPS_USERNAME").is_some();
        if let Some(username) = self
            .env_value("WEBOPS_USERNAME")
            .map(str::to_owned)
            .or(file.username)
        {
            config.username = (!username.is_empty()).then_some(username);
        }
        if let Some(password) = self
            .env_value("WEBOPS_PASSWORD")
            .map(str::to_owned)
            .or(file.password.map(|s| s.0))
        {
            config.password = (!password.is_empty()).then_some(password);
        }
        match (&config.username, &config.password) {
            (Some(username), _) if username.chars().any(char::is_control) => {
                errors.push(format!(
                    "[webops] username must not contain control characters{}",
                    from_env_note(username_env, "WEBOPS_USERNAME")
                ));
            }
            (Some(_), None) => errors.push(
                "[webops] username is set but password is not: the control panel login needs \
                 both (username and password, or WEBOPS_USERNAME and WEBOPS_PASSWORD)"
                    .to_owned(),
            ),
            (None, Some(_)) => errors.push(
                "[webops] password is set but username is not: the control panel login needs \
                 both (username and password, or WEBOPS_USERNAME and WEBOPS_PASSWORD)"
                    .to_owned(),
            ),
            _ => {}
        }
        if let Some(requests) = file.budget_requests {
            config.budget.requests = requests;
        }
        match file.budget_window_secs {
            Some(0) => errors.push("[webops] budget_window_secs must be at least 1".to_owned()),
            Some(secs) => config.budget.window = Duration::from_secs(secs),
            None => {}
        }
        if let Some(secs) = file.cache_ttl_secs {
            config.cache_ttl = Duration::from_secs(secs);
        }
        match file.timeout_secs {
            Some(0) => errors.push("[webops] timeout_secs must be at least 1".to_owned()),
            Some(secs) => config.timeout = Duration::from_secs(secs),
            None => {}
        }
        if let Some(retries) = file.max_retries {
            if retries > 10 {
                errors.push(format!(
                    "[webops] max_retries must be at most 10, got {retries}"
                ));
            }
            config.max_retries = retries;
        }
        if !is_http_url(&config.api_url) {
            errors.push(format!(
                "[webops] api_url must be an http:// or https:// URL, got {:?}{}",
                config.api_url,
                from_env_note(self.env_value("WEBOPS_API_URL").is_some(), "WEBOPS_API_URL")
            ));
        }
        if config.api_version.is_empty()
            || !config
                .api_version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
        {
            errors.push(format!(
                "[webops] api_version must be a path segment like \"v1\", got {:?}",
                config.api_version
            ));
        }
        config
    }

    fn merge_http(&self, file: HttpFile, errors: &mut Vec<String>) -> HttpSettings {
        let mut http = HttpSettings::default();
        let (bind, origin) = match (&self.bind, &file.bind) {
            (Some(flag), _) => (Some(flag.as_str()), "--bind"),
            (None, Some(bind)) => (Some(bind.as_str()), "[http] bind"),
            (None, None) => (None, ""),
        };
        if let Some(bind) = bind {
            match bind.trim().parse::<SocketAddr>() {
                Ok(addr) => http.bind = addr,
                Err(_) => errors.push(format!(
                    "{origin}: {bind:?} is not a socket address; use IP:PORT, e.g. \
                     \"{DEFAULT_BIND}\" or \"0.0.0.0:8080\""
                )),
            }
        }
        for host in file.allowed_hosts.unwrap_or_default() {
            let host = host.trim().to_owned();
            if host.is_empty() || host.contains('/') || host.contains("://") {
                errors.push(format!(
                    "[http] allowed_hosts: {host:?} is not a host name (write \"mcp.example.com\" \
                     or \"mcp.example.com:8443\", without scheme or path)"
                ));
            } else {
                http.allowed_hosts.push(host);
            }
        }
        for origin in file.allowed_origins.unwrap_or_default() {
            let origin = origin.trim().trim_end_matches('/').to_owned();
            if is_origin(&origin) {
                http.allowed_origins.push(origin);
            } else {
                errors.push(format!(
                    "[http] allowed_origins: {origin:?} is not an origin (write \
                     \"https://app.example.com:443\" or \"http://localhost:*\": scheme, host, \
                     optional port or :* for any port, no path)"
                ));
            }
        }
        http.metrics_require_auth = file.metrics_require_auth.unwrap_or(false);
        for proxy in file.trusted_proxies.unwrap_or_default() {
            let proxy = proxy.trim();
            let parsed = proxy
                .parse::<IpNet>()
                .or_else(|_| proxy.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => http.trusted_proxies.push(net.trunc()),
                Err(_) => errors.push(format!(
                    "[http] trusted_proxies: {proxy:?} is not an IP address or CIDR network \
                     (write \"10.0.0.7\" or \"10.0.0.0/8\")"
                )),
            }
        }
        for (key, value, into) in [
            (
                "request_timeout_secs",
                file.request_timeout_secs,
                &mut http.request_timeout,
            ),
            (
                "read_timeout_secs",
                file.read_timeout_secs,
                &mut http.read_timeout,
            ),
        ] {
            match value {
                Some(0) => errors.push(format!("[http] {key} must be at least 1")),
                Some(secs) => *into = Duration::from_secs(secs),
                None => {}
            }
        }
        http
    }

    fn merge_auth(
        &self,
        file: AuthFile,
        base_dir: &Path,
        errors: &mut Vec<String>,
    ) -> AuthSettings {
        let mut auth = AuthSettings::default();
        if let Some(list) = file.anonymous_permissions {
            match PermissionSet::parse(&list) {
                Ok(set) if set.is_empty() => {}
                Ok(set) => auth.anonymous_permissions = Some(set),
                Err(e) => errors.push(format!("[auth] anonymous_permissions: {e}")),
            }
        }
        let mut seen_digests = HashSet::new();
        for (i, key) in file.api_keys.unwrap_or_default().into_iter().enumerate() {
            let at = format!("[[auth.api_keys]] #{} (user_id {:?})", i + 1, key.user_id);
            if key.user_id.trim().is_empty() {
                errors.push(format!("{at}: user_id must not be empty"));
            }
            let permissions = match PermissionSet::parse(&key.permissions) {
                Ok(set) => set,
                Err(e) => {
                    errors.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let Some(digest) = parse_digest(&key.key_sha256) else {
                errors.push(format!(
                    "{at}: key_sha256 must be 64 hex digits (the SHA-256 of the key, as printed \
                     by `webops-mcp hash-key`), got {} characters",
                    key.key_sha256.trim().len()
                ));
                continue;
            };
            if !seen_digests.insert(digest) {
                errors.push(format!("{at}: the same key_sha256 appears twice"));
                continue;
            }
            auth.api_keys
                .push(ApiKeyEntry::new(key.user_id, digest, permissions));
        }
        let env_secret = self.env_value("JWT_SECRET").filter(|s| !s.is_empty());
        // Configured, even if invalid (its own errors are reported then).
        let jwt_configured = file.jwt.is_some() || env_secret.is_some();
        let jwt_audience_set = file
            .jwt
            .as_ref()
            .and_then(|jwt| jwt.audience.as_deref())
            .is_some_and(|audience| !audience.trim().is_empty());
        if jwt_configured {
            let jwt = file.jwt.unwrap_or_default();
            if let Some(settings) = jwt_settings(jwt, env_secret, base_dir, errors) {
                auth.jwt = Some(settings);
            }
        }
        let mut seen_users = HashSet::new();
        for (i, user) in file.basic.unwrap_or_default().into_iter().enumerate() {
            let at = format!("[[auth.basic]] #{} (username {:?})", i + 1, user.username);
            if user.username.is_empty() || user.username.contains(':') {
                errors.push(format!(
                    "{at}: username must be non-empty and must not contain ':'"
                ));
                continue;
            }
            if !seen_users.insert(user.username.clone()) {
                errors.push(format!("{at}: the username appears twice"));
                continue;
            }
            let permissions = match PermissionSet::parse(&user.permissions) {
                Ok(set) => set,
                Err(e) => {
                    errors.push(format!("{at}: {e}"));
                    continue;
                }
            };
            if let Err(why) = check_argon2id(user.password_hash.expose()) {
                errors.push(format!(
                    "{at}: password_hash {why}; create one with `webops-mcp hash-password`"
                ));
                continue;
            }
            auth.basic.push(BasicUser {
                username: user.username,
                password_hash: user.password_hash,
                permissions,
            });
        }
        if let Some(oauth) = file.oauth {
            let mut ok = true;
            if !jwt_configured {
                errors.push(
                    "[auth.oauth] needs [auth.jwt]: the metadata sends clients to \
                     authorization_servers for tokens, and only [auth.jwt] verifies them; set \
                     [auth.jwt] with the servers' public_key_pem_file (or secret / JWT_SECRET)"
                        .to_owned(),
                );
                ok = false;
            } else if !jwt_audience_set {
                errors.push(format!(
                    "[auth.oauth] needs [auth.jwt] audience: MCP authorization requires checking \
                     that a token was issued for this server, or a token meant for another \
                     resource of the same authorization servers would be accepted; set \
                     [auth.jwt] audience to the resource URL ({:?})",
                    oauth.resource
                ));
                ok = false;
            }
            if !is_http_url(&oauth.resource) {
                errors.push(format!(
                    "[auth.oauth] resource must be an absolute https:// URL, got {:?}",
                    oauth.resource
                ));
                ok = false;
            }
            if oauth.authorization_servers.is_empty() {
                errors.push("[auth.oauth] authorization_servers must name at least one".into());
                ok = false;
            }
            for server in &oauth.authorization_servers {
                if !is_http_url(server) {
                    errors.push(format!(
                        "[auth.oauth] authorization_servers: {server:?} is not an http(s) URL"
                    ));
                    ok = false;
                }
            }
            if ok {
                auth.oauth = Some(OAuthSettings {
                    resource: oauth.resource,
                    authorization_servers: oauth.authorization_servers,
                });
            }
        }
        auth
    }
}

fn merge_security(
    file: SecurityFile,
    read_only_flag: bool,
    base_dir: &Path,
    errors: &mut Vec<String>,
) -> SecuritySettings {
    let mut security = SecuritySettings::default();
    match file.rate_limit_per_minute {
        Some(0) => errors.push("[security] rate_limit_per_minute must be at least 1".to_owned()),
        Some(n) => security.rate_limit_per_minute = n,
        None => {}
    }
    match file.max_concurrent_requests {
        Some(0) => errors.push("[security] max_concurrent_requests must be at least 1".to_owned()),
        Some(n) => security.max_concurrent_requests = n,
        None => {}
    }
    if let Some(on) = file.audit_logging {
        security.audit_logging = on;
    }
    if let Some(path) = file.audit_log {
        if path.as_os_str().is_empty() {
            errors.push("[security] audit_log must not be empty (omit it for stderr)".to_owned());
        } else {
            security.audit_log = Some(resolve(base_dir, path));
        }
    }
    security.read_only = read_only_flag || file.read_only.unwrap_or(false);
    security
}

fn merge_stdio(file: StdioFile, errors: &mut Vec<String>) -> StdioSettings {
    let mut stdio = StdioSettings::default();
    if let Some(user_id) = file.user_id {
        if user_id.trim().is_empty() {
            errors.push("[stdio] user_id must not be empty".to_owned());
        } else {
            stdio.user_id = user_id;
        }
    }
    if let Some(list) = file.permissions {
        match PermissionSet::parse(&list) {
            Ok(set) => stdio.permissions = set,
            Err(e) => errors.push(format!("[stdio] permissions: {e}")),
        }
    }
    stdio
}

fn jwt_settings(
    jwt: JwtFile,
    env_secret: Option<&str>,
    base_dir: &Path,
    errors: &mut Vec<String>,
) -> Option<JwtSettings> {
    let secret = env_secret
        .map(str::to_owned)
        .or(jwt.secret.map(|s| s.0))
        .filter(|s| !s.is_empty());
    let key = match (secret, jwt.public_key_pem_file) {
        (Some(_), Some(_)) => {
            errors.push(
                "[auth.jwt] set either secret (or JWT_SECRET) for HS256 or public_key_pem_file \
                 for RS256/ES256, not both"
                    .to_owned(),
            );
            return None;
        }
        (None, None) => {
            errors.push(
                "[auth.jwt] needs a key: secret (or the JWT_SECRET environment variable) for \
                 HS256, or public_key_pem_file for RS256/ES256"
                    .to_owned(),
            );
            return None;
        }
        (Some(secret), None) => {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                errors.push(format!(
                    "[auth.jwt] the HS256 secret is {} bytes; use at least {MIN_JWT_SECRET_BYTES} \
                     random bytes (e.g. `openssl rand -hex 32`)",
                    secret.len()
                ));
                return None;
            }
            JwtKey {
                algorithm: Algorithm::HS256,
                decoding: DecodingKey::from_secret(secret.as_bytes()),
                source: JwtKeySource::Secret,
            }
        }
        (None, Some(path)) => {
            let path = resolve(base_dir, path);
            let pem = match std::fs::read(&path) {
                Ok(pem) => pem,
                Err(e) => {
                    errors.push(format!(
                        "[auth.jwt] cannot read public_key_pem_file {}: {e}",
                        path.display()
                    ));
                    return None;
                }
            };
            let (algorithm, decoding) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                (Algorithm::RS256, key)
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                (Algorithm::ES256, key)
            } else {
                errors.push(format!(
                    "[auth.jwt] public_key_pem_file {} holds no RSA or EC (P-256) public key in \
                     PEM format (\"-----BEGIN PUBLIC KEY-----\")",
                    path.display()
                ));
                return None;
            };
            JwtKey {
                algorithm,
                decoding,
                source: JwtKeySource::PemFile(path),
            }
        }
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    Some(JwtSettings {
        issuer: non_empty(jwt.issuer),
        audience: non_empty(jwt.audience),
        key,
    })
}

/// Whether `hash` is an argon2id PHC string; the error says what is wrong.
fn check_argon2id(hash: &str) -> Result<(), &'static str> {
    let parsed =
        PasswordHash::new(hash).map_err(|_| "is not a PHC string (\"$argon2id$v=19$...\")")?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err("must be an argon2id hash (\"$argon2id$...\")");
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("lacks its salt or hash part");
    }
    Ok(())
}

fn parse_digest(hex_digits: &str) -> Option<[u8; 32]> {
    let trimmed = hex_digits.trim();
    if trimmed.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(trimmed, &mut digest).ok()?;
    Some(digest)
}

/// `null`, or `scheme://host[:port]` with an http(s) scheme and no path; a trailing `:*`
/// (any port) is accepted in place of the port.
fn is_origin(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let (base, any_port) = match origin.strip_suffix(":*") {
        Some(base) => (base, true),
        None => (origin, false),
    };
    let Ok(uri) = base.parse::<http::Uri>() else {
        return false;
    };
    is_http_url(base)
        && split_origin(base).1.is_empty()
        && uri.query().is_none()
        && !(any_port && uri.port().is_some())
}

fn is_http_url(url: &str) -> bool {
    match url.parse::<http::Uri>() {
        Ok(uri) => {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some_and(|a| !a.host().is_empty())
        }
        Err(_) => false,
    }
}

fn from_env_note(from_env: bool, name: &str) -> String {
    if from_env {
        format!(" (from the environment variable {name})")
    } else {
        String::new()
    }
}

fn resolve(base_dir: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() || base_dir.as_os_str().is_empty() {
        path
    } else {
        base_dir.join(path)
    }
}

// ---------------------------------------------------------------------------------------------
// The file shape
// ---------------------------------------------------------------------------------------------

/// Parses the file, turning serde errors into messages that name the table and the key and
/// never show a secret value.
fn parse_file(text: &str, label: &str) -> Result<FileConfig, Error> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        Error::Config(vec![format!(
            "{label}: TOML syntax error{}: {}",
            line_of(text, e.span()),
            e.message().trim()
        )])
    })?;
    serde_path_to_error::deserialize::<_, FileConfig>(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let at = line_of(text, inner.span());
        let table = table_of(&path);
        let key = path.rsplit('.').next().unwrap_or_default();
        let message = inner.message().trim();
        let message = if SECRET_KEYS.contains(&key) {
            "invalid value (not shown: this key holds a secret); expected a string".to_owned()
        } else if let Some(rest) = message.strip_prefix("unknown field ") {
            format!("unknown key {rest}")
        } else {
            message.to_owned()
        };
        let location = match table {
            Some(table) => format!("in {table}"),
            None => "at the top level".to_owned(),
        };
        Error::Config(vec![format!("{label}{at}: {location}: {message}")])
    })
}

/// Keys whose values are secrets.
const SECRET_KEYS: [&str; 4] = ["api_key", "password", "secret", "password_hash"];

/// ` (line N)` for a byte span.
fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let end = span.start.min(text.len());
            let line = text.as_bytes()[..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// The table of a serde path such as `auth.api_keys[0].oops` → `[[auth.api_keys]] #1`.
fn table_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('.').collect();
    if segments.len() < 2 {
        return None;
    }
    let table = segments[..segments.len() - 1].join(".");
    if let Some(open) = table.rfind('[')
        && table.ends_with(']')
    {
        let index: usize = table[open + 1..table.len() - 1].parse().unwrap_or(0);
        Some(format!("[[{}]] #{}", &table[..open], index + 1))
    } else {
        Some(format!("[{table}]"))
    }
}

/// A secret as it appears in the file: hidden from `Debug`.
#[derive(Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
struct FileSecret(String);

impl fmt::Debug for FileSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<FileSecret> for Secret {
    fn from(s: FileSecret) -> Self {
        Secret(s.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    webops: WebopsFile,
    #[serde(default)]
    security: SecurityFile,
    #[serde(default)]
    stdio: StdioFile,
    #[serde(default)]
    http: HttpFile,
    #[serde(default)]
    auth: AuthFile,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WebopsFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<FileSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flavor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<FileSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_requests: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_window_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_ttl_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SecurityFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_concurrent_requests: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_logging: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_log: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_only: Option<bool>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StdioFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_hosts: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_origins: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_require_auth: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trusted_proxies: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous_permissions: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_keys: Option<Vec<ApiKeyFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwt: Option<JwtFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basic: Option<Vec<BasicFile>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oauth: Option<OAuthFile>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyFile {
    user_id: String,
    key_sha256: String,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct JwtFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<FileSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_pem_file: Option<PathBuf>,
    /// Shown by `check-config` only; not a key of the file.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audience: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BasicFile {
    username: String,
    password_hash: Secret,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OAuthFile {
    resource: String,
    authorization_servers: Vec<String>,
}

impl FileConfig {
    /// The effective configuration in the file's shape, secrets redacted.
    fn redacted_view(config: &Config) -> FileConfig {
        let perms = |set: &PermissionSet| set.iter().map(|p| p.as_str().to_owned()).collect();
        let redacted = || FileSecret(REDACTED.to_owned());
        FileConfig {
            webops: WebopsFile {
                api_url: Some(config.webops.api_url.clone()),
                api_version: Some(config.webops.api_version.clone()),
                api_key: config.webops.api_key.as_ref().map(|_| redacted()),
                timeout_secs: Some(config.webops.timeout.as_secs()),
                max_retries: Some(config.webops.max_retries),
                flavor: Some(config.webops.flavor.as_str().to_owned()),
                username: config.webops.username.clone(),
                password: config.webops.password.as_ref().map(|_| redacted()),
                budget_requests: Some(config.webops.budget.requests),
                budget_window_secs: Some(config.webops.budget.window.as_secs()),
                cache_ttl_secs: Some(config.webops.cache_ttl.as_secs()),
            },
            security: SecurityFile {
                rate_limit_per_minute: Some(config.security.rate_limit_per_minute),
                max_concurrent_requests: Some(config.security.max_concurrent_requests),
                audit_logging: Some(config.security.audit_logging),
                audit_log: config.security.audit_log.clone(),
                read_only: Some(config.security.read_only),
            },
            stdio: StdioFile {
                user_id: Some(config.stdio.user_id.clone()),
                permissions: Some(perms(&config.stdio.permissions)),
            },
            http: HttpFile {
                bind: Some(config.http.bind.to_string()),
                allowed_hosts: Some(config.http.allowed_hosts.clone()),
                allowed_origins: Some(config.http.allowed_origins.clone()),
                metrics_require_auth: Some(config.http.metrics_require_auth),
                trusted_proxies: Some(
                    config
                        .http
                        .trusted_proxies
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                ),
                request_timeout_secs: Some(config.http.request_timeout.as_secs()),
                read_timeout_secs: Some(config.http.read_timeout.as_secs()),
            },
            auth: AuthFile {
                anonymous_permissions: Some(
                    config
                        .auth
                        .anonymous_permissions
                        .as_ref()
                        .map(perms)
                        .unwrap_or_default(),
                ),
                api_keys: Some(
                    config
                        .auth
                        .api_keys
                        .iter()
                        .map(|k| ApiKeyFile {
                            user_id: k.user_id.clone(),
                            key_sha256: hex::encode(k.digest),
                            permissions: perms(&k.permissions),
                        })
                        .collect(),
                ),
                jwt: config.auth.jwt.as_ref().map(|jwt| JwtFile {
                    secret: matches!(jwt.key.source, JwtKeySource::Secret).then(redacted),
                    public_key_pem_file: match &jwt.key.source {
                        JwtKeySource::PemFile(path) => Some(path.clone()),
                        JwtKeySource::Secret => None,
                    },
                    algorithm: Some(format!("{:?}", jwt.key.algorithm)),
                    issuer: jwt.issuer.clone(),
                    audience: jwt.audience.clone(),
                }),
                basic: Some(
                    config
                        .auth
                        .basic
                        .iter()
                        .map(|u| BasicFile {
                            username: u.username.clone(),
                            password_hash: u.password_hash.clone(),
                            permissions: perms(&u.permissions),
                        })
                        .collect(),
                ),
                oauth: config.auth.oauth.as_ref().map(|o| OAuthFile {
                    resource: o.resource.clone(),
                    authorization_servers: o.authorization_servers.clone(),
                }),
            },
        }
    }
}
