//! Loading: [`ConfigLoader`] reads the file (or TOML text), takes environment values and
//! flags, and merges them over the defaults — defaults < file < environment < flags —
//! collecting every problem it finds. `[auth]` is merged in [`super::merge_auth`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use webops_client::{ApiFlavor, ClientConfig, Flavor};
use webops_mcp_core::{
    ConfirmationConfig, MAX_STATE_TTL, MIN_ANSWER_BYTES, PermissionSet, RepositoryPolicy,
    RepositoryScheme,
};

use super::file::{
    ConfirmationsFile, FileConfig, HttpFile, LimitsFile, SecurityFile, StdioFile, WebopsFile,
    parse_file,
};
use super::merge_auth::merge_auth;
use super::resources::merge_resources;
use super::secret::Secret;
use super::settings::{Config, HttpSettings, SecuritySettings, StdioSettings, split_origin};
use super::state::merge_state;
use super::telemetry::merge_telemetry;
use super::tools::{ToolFlags, merge_tools};
use super::{DEFAULT_BIND, ENV_VARS, env};
use crate::error::Error;

/// Assembles a [`Config`] from a file (or TOML text), environment values and flags.
#[derive(Clone, Default)]
pub struct ConfigLoader {
    file: Option<PathBuf>,
    text: Option<String>,
    env: BTreeMap<String, Secret>,
    bind: Option<String>,
    read_only: bool,
    tools: ToolFlags,
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
            .field("tools", &self.tools)
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

    /// `--tools`: keep these tools (by name). Given with or without `--toolsets`, the flags'
    /// selection replaces the file's whole `[tools]`.
    pub fn tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tools.tools = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// `--toolsets`: keep the tools of these toolsets (by name: `observe`, `deploy`,
    /// `security`, `admin`); with `--tools`, the union.
    pub fn toolsets<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tools.toolsets = Some(names.into_iter().map(Into::into).collect());
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
        debug_assert!(ENV_VARS.contains(&name), "{name} is not in ENV_VARS");
        self.env.get(name).map(Secret::expose)
    }

    /// The environment's value of `name`, else the file's.
    fn env_or(&self, name: &str, file: Option<String>) -> Option<String> {
        self.env_value(name).map(str::to_owned).or(file)
    }

    fn merge(&self, mut file: FileConfig, base_dir: &Path, errors: &mut Vec<String>) -> Config {
        let repositories = merge_repositories(&mut file.webops, errors);
        let webops = self.merge_webops(file.webops, errors);
        let mut security = merge_security(file.security, self.read_only, base_dir, errors);
        security.repositories = repositories;
        if let Some(bytes) = merge_limits(&file.limits, errors) {
            security.max_answer_bytes = bytes;
        }
        let stdio = merge_stdio(file.stdio, errors);
        let http = self.merge_http(file.http, errors);
        let jwt_secret = self.env_value(env::JWT_SECRET);
        let auth = merge_auth(file.auth, jwt_secret, base_dir, errors);
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
        let keys = self.env_value(env::CONFIRMATION_KEYS);
        let confirmations = merge_confirmations(file.confirmations, keys, errors);
        let resources = merge_resources(file.resources, errors);
        let state = merge_state(file.state, self.env_value(env::REDIS_URL), errors);
        let telemetry = merge_telemetry(
            file.telemetry,
            self.env_value(env::OTLP_ENDPOINT),
            self.env_value(env::SERVICE_NAME),
            errors,
        );
        let tools = merge_tools(file.tools, &self.tools, errors);
        Config {
            webops,
            security,
            stdio,
            http,
            auth,
            confirmations,
            resources,
            state,
            telemetry,
            tools,
            demo: self.demo,
            demo_flavor: self.demo_flavor.unwrap_or(ApiFlavor::V1),
            source: self.file.clone(),
            shared: Default::default(),
        }
    }

    fn merge_webops(&self, mut file: WebopsFile, errors: &mut Vec<String>) -> ClientConfig {
        let mut config = ClientConfig::default();
        if let Some(url) = self.env_or(env::API_URL, file.api_url.take()) {
            config.api_url = url;
        }
        if let Some(version) = self.env_or(env::API_VERSION, file.api_version.take()) {
            config.api_version = version;
        }
        let file_key = file.api_key.take().map(|s| s.expose().to_owned());
        if let Some(key) = self.env_or(env::API_KEY, file_key) {
            config.api_key = (!key.is_empty()).then_some(key);
        }
        self.merge_flavor(file.flavor.take(), &mut config, errors);
        self.merge_panel_login(&mut file, &mut config, errors);
        merge_webops_limits(&file, &mut config, errors);
        self.check_webops_address(&config, errors);
        config
    }

    /// The flavour: an empty environment value counts as unset.
    fn merge_flavor(
        &self,
        file: Option<String>,
        config: &mut ClientConfig,
        errors: &mut Vec<String>,
    ) {
        let flavor_env = self
            .env_value(env::API_FLAVOR)
            .filter(|v| !v.trim().is_empty());
        if let Some(name) = flavor_env.map(str::to_owned).or(file) {
            match name.parse::<Flavor>() {
                Ok(flavor) => config.flavor = flavor,
                Err(e) => errors.push(format!(
                    "[webops] flavor: {e}{}",
                    from_env_note(flavor_env.is_some(), env::API_FLAVOR)
                )),
            }
        }
    }

    /// The control panel login: like the API key, the environment beats the file and an
    /// empty value means none; one half without the other is an error.
    fn merge_panel_login(
        &self,
        file: &mut WebopsFile,
        config: &mut ClientConfig,
        errors: &mut Vec<String>,
    ) {
        let username_env = self.env_value(env::USERNAME).is_some();
        if let Some(username) = self.env_or(env::USERNAME, file.username.take()) {
            config.username = (!username.is_empty()).then_some(username);
        }
        let file_password = file.password.take().map(|s| s.expose().to_owned());
        if let Some(password) = self.env_or(env::PASSWORD, file_password) {
            config.password = (!password.is_empty()).then_some(password);
        }
        match (&config.username, &config.password) {
            (Some(username), _) if username.chars().any(char::is_control) => {
                errors.push(format!(
                    "[webops] username must not contain control characters{}",
                    from_env_note(username_env, env::USERNAME)
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
    }

    /// Whether the merged `api_url` and `api_version` can address the API.
    fn check_webops_address(&self, config: &ClientConfig, errors: &mut Vec<String>) {
        if !is_http_url(&config.api_url) {
            errors.push(format!(
                "[webops] api_url must be an http:// or https:// URL, got {:?}{}",
                config.api_url,
                from_env_note(self.env_value(env::API_URL).is_some(), env::API_URL)
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
        http.allowed_hosts = allowed_hosts(file.allowed_hosts.unwrap_or_default(), errors);
        http.allowed_origins = allowed_origins(file.allowed_origins.unwrap_or_default(), errors);
        http.metrics_require_auth = file.metrics_require_auth.unwrap_or(false);
        http.trusted_proxies = trusted_proxies(file.trusted_proxies.unwrap_or_default(), errors);
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
}

/// `[webops]` budget, cache, timeout and retries (file only).
fn merge_webops_limits(file: &WebopsFile, config: &mut ClientConfig, errors: &mut Vec<String>) {
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
}

/// `[webops] repository_schemes` and `allowed_repository_hosts` (file only, like every list):
/// what a deploy may name as its repository.
fn merge_repositories(file: &mut WebopsFile, errors: &mut Vec<String>) -> RepositoryPolicy {
    let mut policy = RepositoryPolicy::default();
    if let Some(names) = file.repository_schemes.take() {
        if names.is_empty() {
            errors.push(
                "[webops] repository_schemes must name at least one of \"https\", \"http\", \
                 \"ssh\", \"scp\" (omit it for [\"https\"])"
                    .to_owned(),
            );
        }
        let mut schemes = Vec::new();
        for name in names {
            match name.parse::<RepositoryScheme>() {
                Ok(scheme) if !schemes.contains(&scheme) => schemes.push(scheme),
                Ok(_) => {}
                Err(e) => errors.push(format!("[webops] repository_schemes: {e}")),
            }
        }
        policy = policy.schemes(schemes);
    }
    if let Some(hosts) = file.allowed_repository_hosts.take() {
        let mut allowed = Vec::new();
        for host in hosts {
            match RepositoryPolicy::check_allowed_host(&host) {
                Ok(()) => allowed.push(host),
                Err(e) => errors.push(format!("[webops] allowed_repository_hosts: {e}")),
            }
        }
        policy = policy.allowed_hosts(allowed);
    }
    policy
}

/// `[http] allowed_hosts`: host names, optionally with a port.
fn allowed_hosts(list: Vec<String>, errors: &mut Vec<String>) -> Vec<String> {
    let mut hosts = Vec::new();
    for host in list {
        let host = host.trim().to_owned();
        if host.is_empty() || host.contains('/') || host.contains("://") {
            errors.push(format!(
                "[http] allowed_hosts: {host:?} is not a host name (write \"mcp.example.com\" \
                 or \"mcp.example.com:8443\", without scheme or path)"
            ));
        } else {
            hosts.push(host);
        }
    }
    hosts
}

/// `[http] allowed_origins`: origins, without a trailing slash.
fn allowed_origins(list: Vec<String>, errors: &mut Vec<String>) -> Vec<String> {
    let mut origins = Vec::new();
    for origin in list {
        let origin = origin.trim().trim_end_matches('/').to_owned();
        if is_origin(&origin) {
            origins.push(origin);
        } else {
            errors.push(format!(
                "[http] allowed_origins: {origin:?} is not an origin (write \
                 \"https://app.example.com:443\" or \"http://localhost:*\": scheme, host, \
                 optional port or :* for any port, no path)"
            ));
        }
    }
    origins
}

/// `[http] trusted_proxies`: addresses and CIDR networks.
fn trusted_proxies(list: Vec<String>, errors: &mut Vec<String>) -> Vec<IpNet> {
    let mut networks = Vec::new();
    for proxy in list {
        let proxy = proxy.trim();
        let parsed = proxy
            .parse::<IpNet>()
            .or_else(|_| proxy.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => networks.push(net.trunc()),
            Err(_) => errors.push(format!(
                "[http] trusted_proxies: {proxy:?} is not an IP address or CIDR network \
                 (write \"10.0.0.7\" or \"10.0.0.0/8\")"
            )),
        }
    }
    networks
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
    if let Some(server_id) = file.server_id {
        let trimmed = server_id.trim();
        if trimmed.is_empty() || trimmed.len() > 128 || trimmed.chars().any(char::is_control) {
            errors.push(format!(
                "[security] server_id must be 1 to 128 characters without control characters \
                 (omit it for the host name), got {server_id:?}"
            ));
        } else {
            security.server_id = trimmed.to_owned();
        }
    }
    security
}

/// `[limits] max_answer_bytes`, when set and in range.
fn merge_limits(file: &LimitsFile, errors: &mut Vec<String>) -> Option<usize> {
    let bytes = file.max_answer_bytes?;
    if (MIN_ANSWER_BYTES..=MAX_ANSWER_BYTES).contains(&bytes) {
        return Some(bytes);
    }
    errors.push(format!(
        "[limits] max_answer_bytes must be {MIN_ANSWER_BYTES} to {MAX_ANSWER_BYTES}, got {bytes}"
    ));
    None
}

/// The largest `[limits] max_answer_bytes`: more than any client reads from one answer.
const MAX_ANSWER_BYTES: usize = 10_000_000;

fn merge_confirmations(
    file: ConfirmationsFile,
    keys_env: Option<&str>,
    errors: &mut Vec<String>,
) -> ConfirmationConfig {
    let mut config = ConfirmationConfig::default();
    if let Some(policy) = file.destructive {
        config = config.destructive(policy);
    }
    if let Some(policy) = file.write {
        config = config.write(policy);
    }
    if let Some(fallback) = file.fallback {
        config = config.fallback(fallback);
    }
    if let Some(secs) = file.state_ttl_secs {
        if secs == 0 || secs > MAX_STATE_TTL.as_secs() {
            errors.push(format!(
                "[confirmations] state_ttl_secs must be between 1 and {} (a person has at most \
                 ten minutes to answer)",
                MAX_STATE_TTL.as_secs()
            ));
        } else {
            config = config.state_ttl(Duration::from_secs(secs));
        }
    }
    let (entries, from): (Vec<&str>, _) = match (keys_env, &file.state_keys) {
        (Some(env_keys), _) => (env_keys.split(',').map(str::trim).collect(), true),
        (None, Some(keys)) => (keys.iter().map(Secret::expose).collect(), false),
        (None, None) => (Vec::new(), false),
    };
    let mut keys = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        match entry.split_once(':') {
            Some((id, secret))
                if !id.is_empty()
                    && id.len() <= 64
                    && secret.len() >= MIN_CONFIRMATION_KEY_BYTES
                    && !keys
                        .iter()
                        .any(|(known, _): &(String, Vec<u8>)| known == id) =>
            {
                keys.push((id.to_owned(), secret.as_bytes().to_vec()));
            }
            _ => errors.push(format!(
                "[confirmations] state_keys: entry #{} is not \"<key id>:<secret>\" with a \
                 unique key id of 1 to 64 characters and a secret of at least {} bytes (the \
                 value is not shown){}",
                n + 1,
                MIN_CONFIRMATION_KEY_BYTES,
                from_env_note(from, env::CONFIRMATION_KEYS)
            )),
        }
    }
    config.state_keys(keys)
}

/// The shortest secret a confirmation state key may have (HMAC-SHA256: the hash size).
const MIN_CONFIRMATION_KEY_BYTES: usize = 32;

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

pub(super) fn is_http_url(url: &str) -> bool {
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

pub(super) fn resolve(base_dir: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() || base_dir.as_os_str().is_empty() {
        path
    } else {
        base_dir.join(path)
    }
}
