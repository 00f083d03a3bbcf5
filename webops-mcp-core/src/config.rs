//! Configuration of an embedded server: [`SecurityConfig`] (gates, audit, read-only, what a
//! deploy may name as its repository: [`RepositoryPolicy`]) and [`ServerConfig`] (WebOps
//! connection + security).
//!
//! Libraries read no environment and no files: the binary (or the embedding application)
//! assembles these values once and hands them to [`crate::WebOpsMcpServer`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use webops_client::ClientConfig;

use crate::confirm::ConfirmationConfig;
use crate::selection::ToolSelection;
use crate::subscriptions::ResourceConfig;

/// Safety settings of the call pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecurityConfig {
    /// Tool calls per user per minute (a token bucket whose burst equals this number).
    /// `0` disables the per-user rate limit. Default 100.
    pub rate_limit_per_minute: u32,
    /// Tool calls running at the same time, over all users. Must be at least 1. Default 50.
    pub max_concurrent_requests: usize,
    /// Whether every call writes an audit record. Default `true`.
    pub audit_logging: bool,
    /// Offer and run only tools that read (`Access::Read`). Default `false`.
    pub read_only: bool,
    /// How long a call waits for a free slot when `max_concurrent_requests` calls are in
    /// flight before it fails as busy. Default 2 s.
    pub busy_timeout: Duration,
    /// What `webops_deploy_app` accepts as a repository. Default: `https://` URLs of public
    /// hosts only.
    pub repositories: RepositoryPolicy,
    /// Which calls a person must confirm, and how.
    pub confirmations: ConfirmationConfig,
    /// The name of this server in every audit record (`server_id`), so the records of a
    /// fleet's replicas tell who wrote them. Default none: records name no server.
    pub server_id: Option<String>,
    /// Whether and how often subscribed resources are read again to tell their subscribers
    /// of a change. Default: never (no resource change notifications).
    pub resources: ResourceConfig,
    /// The most bytes one answer may carry: its text plus its structured content as JSON.
    /// Lists and logs page to stay under it; any other answer over it is refused with what
    /// to narrow. At least [`MIN_ANSWER_BYTES`]. Default [`DEFAULT_ANSWER_BYTES`].
    pub max_answer_bytes: usize,
}

/// The default [`SecurityConfig::max_answer_bytes`]: 60 KB, well under the 25,000 tokens
/// popular clients accept from one tool result.
pub const DEFAULT_ANSWER_BYTES: usize = 60_000;

/// The smallest [`SecurityConfig::max_answer_bytes`]: room for one page of a list or log
/// with its explanation.
pub const MIN_ANSWER_BYTES: usize = 16_384;

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            rate_limit_per_minute: 100,
            max_concurrent_requests: 50,
            audit_logging: true,
            read_only: false,
            busy_timeout: Duration::from_secs(2),
            repositories: RepositoryPolicy::default(),
            confirmations: ConfirmationConfig::default(),
            server_id: None,
            resources: ResourceConfig::default(),
            max_answer_bytes: DEFAULT_ANSWER_BYTES,
        }
    }
}

impl SecurityConfig {
    /// Sets [`SecurityConfig::rate_limit_per_minute`].
    pub fn rate_limit_per_minute(mut self, calls: u32) -> Self {
        self.rate_limit_per_minute = calls;
        self
    }

    /// Sets [`SecurityConfig::max_concurrent_requests`].
    pub fn max_concurrent_requests(mut self, calls: usize) -> Self {
        self.max_concurrent_requests = calls;
        self
    }

    /// Sets [`SecurityConfig::audit_logging`].
    pub fn audit_logging(mut self, enabled: bool) -> Self {
        self.audit_logging = enabled;
        self
    }

    /// Sets [`SecurityConfig::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Sets [`SecurityConfig::busy_timeout`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Sets [`SecurityConfig::confirmations`].
    pub fn confirmations(mut self, confirmations: ConfirmationConfig) -> Self {
        self.confirmations = confirmations;
        self
    }

    /// Sets [`SecurityConfig::server_id`].
    pub fn server_id(mut self, server_id: impl Into<String>) -> Self {
        self.server_id = Some(server_id.into());
        self
    }

    /// Sets [`SecurityConfig::resources`].
    pub fn resources(mut self, resources: ResourceConfig) -> Self {
        self.resources = resources;
        self
    }

    /// Sets [`SecurityConfig::max_answer_bytes`].
    pub fn max_answer_bytes(mut self, bytes: usize) -> Self {
        self.max_answer_bytes = bytes;
        self
    }

    /// Sets [`SecurityConfig::repositories`].
    pub fn repositories(mut self, policy: RepositoryPolicy) -> Self {
        self.repositories = policy;
        self
    }

    /// Checks the values; the message names the offending setting.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_concurrent_requests == 0 {
            return Err("max_concurrent_requests must be at least 1".to_owned());
        }
        self.resources.validate()?;
        if self.max_answer_bytes < MIN_ANSWER_BYTES {
            return Err(format!(
                "max_answer_bytes must be at least {MIN_ANSWER_BYTES}; got {}",
                self.max_answer_bytes
            ));
        }
        self.repositories.validate()
    }
}

/// A form of repository URL that `webops_deploy_app` may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RepositoryScheme {
    /// `https://host/path` (always the default).
    Https,
    /// `http://host/path`: unencrypted, for a Git server on a trusted network.
    Http,
    /// `ssh://[user@]host[:port]/path`.
    Ssh,
    /// The scp-like form `[user@]host:path`, e.g. `git@github.com:acme/shop.git`.
    Scp,
}

impl RepositoryScheme {
    /// Every scheme, in the order they are documented.
    pub const ALL: &'static [RepositoryScheme] = &[
        RepositoryScheme::Https,
        RepositoryScheme::Http,
        RepositoryScheme::Ssh,
        RepositoryScheme::Scp,
    ];

    /// The configuration name: `https`, `http`, `ssh` or `scp`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepositoryScheme::Https => "https",
            RepositoryScheme::Http => "http",
            RepositoryScheme::Ssh => "ssh",
            RepositoryScheme::Scp => "scp",
        }
    }
}

impl fmt::Display for RepositoryScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RepositoryScheme {
    type Err = String;

    /// Parses a configuration name (exact, lowercase); the error lists the allowed names.
    fn from_str(name: &str) -> Result<Self, String> {
        RepositoryScheme::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown repository scheme {name:?}; allowed: \"https\", \"http\", \"ssh\", \
                     \"scp\""
                )
            })
    }
}

/// What `webops_deploy_app` accepts as its `repository`: the URL forms
/// ([`RepositoryScheme`]) and the hosts allowed although they look internal (loopback,
/// private, link-local or metadata addresses, `localhost`, `*.internal`, `*.local`, names
/// without a dot). The default accepts `https://` URLs of public hosts only.
///
/// The check reads the URL only; it resolves no names. A public name that resolves to a
/// private address is not caught here: firewall the WebOps server's egress for that.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RepositoryPolicy {
    /// The accepted URL forms. Default: `[Https]`.
    pub schemes: Vec<RepositoryScheme>,
    /// Host names or IP literals (`git.corp`, `10.0.0.5`, `::1`) accepted although they look
    /// internal; compared case-insensitively. Default: none.
    pub allowed_hosts: Vec<String>,
}

impl Default for RepositoryPolicy {
    fn default() -> Self {
        RepositoryPolicy {
            schemes: vec![RepositoryScheme::Https],
            allowed_hosts: Vec::new(),
        }
    }
}

impl RepositoryPolicy {
    /// Sets [`RepositoryPolicy::schemes`].
    pub fn schemes(mut self, schemes: impl IntoIterator<Item = RepositoryScheme>) -> Self {
        self.schemes = schemes.into_iter().collect();
        self
    }

    /// Sets [`RepositoryPolicy::allowed_hosts`].
    pub fn allowed_hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.allowed_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Whether URLs of this form are accepted.
    pub fn allows_scheme(&self, scheme: RepositoryScheme) -> bool {
        self.schemes.contains(&scheme)
    }

    /// Whether `host` (a name, or an IP literal with or without brackets) is one of
    /// [`RepositoryPolicy::allowed_hosts`]: names case-insensitively, IP literals by address.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.allowed_hosts
            .iter()
            .any(|allowed| normalize_host(allowed) == host)
    }

    /// Checks the values; the message names the offending setting and what is allowed.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.schemes.is_empty() {
            return Err(
                "repository schemes must name at least one of \"https\", \"http\", \
                        \"ssh\", \"scp\""
                    .to_owned(),
            );
        }
        for host in &self.allowed_hosts {
            Self::check_allowed_host(host)?;
        }
        Ok(())
    }

    /// Whether an entry of [`RepositoryPolicy::allowed_hosts`] is a host name or an IP literal
    /// (no scheme, user, port or path); the message says what to write instead.
    pub fn check_allowed_host(host: &str) -> Result<(), String> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let is_name = !bare.is_empty()
            && bare.len() <= 253
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if bare.parse::<IpAddr>().is_ok() || is_name {
            Ok(())
        } else {
            Err(format!(
                "allowed repository host {host:?} is not a host name or an IP address (write \
                 \"git.example.internal\" or \"10.0.0.5\": no scheme, user, port or path)"
            ))
        }
    }
}

/// A host as compared: lowercase, without IPv6 brackets or a final dot, an IP literal in its
/// canonical form.
fn normalize_host(host: &str) -> String {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => bare.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// Everything [`crate::WebOpsMcpServer::new`] needs.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// How to reach the WebOps API (the server's own credentials).
    pub webops: ClientConfig,
    /// Gates, audit and read-only mode.
    pub security: SecurityConfig,
    /// Which tools the server has (default: every tool). Read-only mode still hides the
    /// selected tools that change something.
    pub tools: ToolSelection,
}

impl ServerConfig {
    /// A configuration from its two parts.
    pub fn new(webops: ClientConfig, security: SecurityConfig) -> Self {
        ServerConfig {
            webops,
            security,
            tools: ToolSelection::all(),
        }
    }

    /// Sets [`ServerConfig::webops`].
    pub fn webops(mut self, webops: ClientConfig) -> Self {
        self.webops = webops;
        self
    }

    /// Sets [`ServerConfig::security`].
    pub fn security(mut self, security: SecurityConfig) -> Self {
        self.security = security;
        self
    }

    /// Sets [`ServerConfig::tools`].
    pub fn tools(mut self, selection: ToolSelection) -> Self {
        self.tools = selection;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_brief() {
        let s = SecurityConfig::default();
        assert_eq!(s.rate_limit_per_minute, 100);
        assert_eq!(s.max_concurrent_requests, 50);
        assert!(s.audit_logging);
        assert!(!s.read_only);
        assert_eq!(s.busy_timeout, Duration::from_secs(2));
        assert_eq!(s.repositories.schemes, [RepositoryScheme::Https]);
        assert!(s.repositories.allowed_hosts.is_empty());
        assert!(s.validate().is_ok());
    }

    #[test]
    fn zero_concurrency_is_rejected() {
        let s = SecurityConfig::default().max_concurrent_requests(0);
        assert!(
            s.validate()
                .unwrap_err()
                .contains("max_concurrent_requests")
        );
    }

    #[test]
    fn repository_schemes_parse_by_their_names_only() {
        for scheme in RepositoryScheme::ALL {
            assert_eq!(scheme.as_str().parse::<RepositoryScheme>(), Ok(*scheme));
        }
        let err = "ftp".parse::<RepositoryScheme>().unwrap_err();
        assert!(err.contains("\"ftp\"") && err.contains("\"scp\""), "{err}");
        assert!("HTTPS".parse::<RepositoryScheme>().is_err());
    }

    #[test]
    fn allowed_hosts_match_names_case_insensitively_and_ips_by_address() {
        let policy = RepositoryPolicy::default().allowed_hosts(["Git.Corp", "::1", "127.0.0.1"]);
        assert!(policy.allows_host("git.corp"));
        assert!(policy.allows_host("GIT.CORP."));
        assert!(policy.allows_host("[::1]"));
        assert!(policy.allows_host("[0:0:0:0:0:0:0:1]"));
        assert!(policy.allows_host("127.0.0.1"));
        assert!(!policy.allows_host("127.0.0.2"));
        assert!(!policy.allows_host("corp"));
    }

    #[test]
    fn a_policy_needs_a_scheme_and_hosts_without_scheme_or_path() {
        let none = SecurityConfig::default().repositories(RepositoryPolicy::default().schemes([]));
        assert!(none.validate().unwrap_err().contains("at least one"));
        for bad in [
            "",
            "https://git.corp",
            "git.corp/x",
            "git@corp",
            "corp:22",
            "a b",
        ] {
            let policy = RepositoryPolicy::default().allowed_hosts([bad]);
            let err = policy.validate().unwrap_err();
            assert!(err.contains("not a host name"), "{bad}: {err}");
        }
        let good = RepositoryPolicy::default().allowed_hosts(["git.corp", "10.0.0.5", "[fd00::1]"]);
        assert!(good.validate().is_ok());
    }
}
