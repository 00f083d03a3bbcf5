//! [`ClientConfig`], [`ClientBuilder`] and the checks of the settings they build from;
//! [`RequestObserver`], the metrics hook called per HTTP attempt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::{Client, Inner};
use crate::any::AnyClient;
use crate::decode::REDACTED;
use crate::error::{Error, ErrorKind, Result};
use crate::flavor::Flavor;
use crate::panel::{PanelClient, RequestBudget, TransportConfig};
use crate::retry::{Backoff, RetryPolicy};
use crate::trace::RequestTracer;

/// Connection settings, e.g. assembled from a config file or [`ClientConfig::from_env`].
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Base URL of the WebOps server, e.g. `http://localhost:8000`.
    pub api_url: String,
    /// API version path segment, e.g. `v1`.
    pub api_version: String,
    /// Bearer token (secret: never shown by `Debug`).
    pub api_key: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Which API the server speaks (default: find out at first use).
    pub flavor: Flavor,
    /// The control panel user to log in as.
    pub username: Option<String>,
    /// Its password (secret: never shown by `Debug`).
    pub password: Option<String>,
    /// Requests the panel client may send per window.
    pub budget: RequestBudget,
    /// How long the panel client reuses the deployment list (and its id ↔ name map).
    pub cache_ttl: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            api_url: "http://localhost:8000".to_owned(),
            api_version: "v1".to_owned(),
            api_key: None,
            timeout: Duration::from_secs(30),
            max_retries: 3,
            flavor: Flavor::Auto,
            username: None,
            password: None,
            budget: RequestBudget::default(),
            cache_ttl: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_url", &without_userinfo(&self.api_url))
            .field("api_version", &self.api_version)
            .field("api_key", &self.api_key.as_ref().map(|_| REDACTED))
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("flavor", &self.flavor)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("budget", &self.budget)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

impl ClientConfig {
    /// Reads `WEBOPS_API_URL`, `WEBOPS_API_VERSION`, `WEBOPS_API_KEY`, `WEBOPS_API_FLAVOR`,
    /// `WEBOPS_USERNAME` and `WEBOPS_PASSWORD`; unset ones keep their defaults.
    ///
    /// Values are trimmed, and an empty value counts as unset; an unknown flavour is kept as
    /// `auto`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ClientConfig::from_env`] over any source of variables.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_owned())
                .filter(|value| !value.is_empty())
        };
        let mut config = ClientConfig::default();
        if let Some(url) = var("WEBOPS_API_URL") {
            config.api_url = url;
        }
        if let Some(version) = var("WEBOPS_API_VERSION") {
            config.api_version = version;
        }
        config.api_key = var("WEBOPS_API_KEY");
        if let Some(flavor) = var("WEBOPS_API_FLAVOR") {
            config.flavor = flavor.parse().unwrap_or_default();
        }
        config.username = var("WEBOPS_USERNAME");
        config.password = var("WEBOPS_PASSWORD");
        config
    }

    /// A builder preset with these settings.
    pub fn builder(&self) -> ClientBuilder {
        ClientBuilder {
            config: self.clone(),
            user_agent: None,
            policy: RetryPolicy {
                max_retries: self.max_retries,
                ..RetryPolicy::default()
            },
            observer: None,
            tracer: None,
        }
    }
}

/// What the client saw of one HTTP attempt, for metrics.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestEvent<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path below the API root with ids replaced by `{id}`, e.g. `deployments/{id}/logs/`.
    pub endpoint: &'a str,
    /// HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Error kind, when the attempt failed (also set with `status` for an error answer).
    pub error: Option<ErrorKind>,
    /// How long the attempt took, body included.
    pub duration: Duration,
    /// 0 for the first attempt, then 1, 2, ... for retries.
    pub attempt: u32,
}

/// Receives a [`RequestEvent`] after every HTTP attempt.
pub trait RequestObserver: Send + Sync {
    /// Called once per attempt; must be cheap and must not block.
    fn observe(&self, event: &RequestEvent<'_>);
}

/// Builds a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    config: ClientConfig,
    user_agent: Option<String>,
    policy: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
    tracer: Option<Arc<dyn RequestTracer>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("user_agent", &self.user_agent)
            .field("max_retry_after", &self.policy.max_retry_after)
            .field("backoff", &self.policy.backoff)
            .field("observer", &self.observer.is_some())
            .field("tracer", &self.tracer.is_some())
            .finish()
    }
}

impl ClientBuilder {
    /// Base URL of the WebOps server, e.g. `http://localhost:8000` (no `/api/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.config.api_url = url.into();
        self
    }
    /// API version segment (default `v1`).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.config.api_version = version.into();
        self
    }
    /// Bearer token sent on every request but `GET status/`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.api_key = Some(token.into());
        self
    }
    /// Per-attempt timeout (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }
    /// Retries after the first attempt (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.config.max_retries = retries;
        self.policy.max_retries = retries;
        self
    }
    /// `User-Agent` header (default `webops-client/<version>`).
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }
    /// Longest wait honoured from a `Retry-After` header (default 30 s).
    ///
    /// When the server asks for a longer wait, the client does not wait at all: the call
    /// fails at once with [`Error::retry_after`] set, so the caller can decide.
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.policy.max_retry_after = cap;
        self
    }
    /// Exponential backoff of retries that carry no `Retry-After` (default 200 ms, at most
    /// 5 s): retry `n` waits a random time in `0..=min(max, base * 2^n)` (full jitter).
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.policy.backoff = Backoff { base, max };
        self
    }
    /// Receives every attempt, for metrics.
    pub fn observer(mut self, observer: Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
    /// Traces every attempt and sends the headers its span gives (`traceparent`); both
    /// flavours. Default: none, and no header is added.
    pub fn request_tracer(mut self, tracer: Arc<dyn RequestTracer>) -> Self {
        self.tracer = Some(tracer);
        self
    }
    /// Which API the server speaks (default [`Flavor::Auto`]); see [`ClientBuilder::build_any`].
    pub fn flavor(mut self, flavor: Flavor) -> Self {
        self.config.flavor = flavor;
        self
    }
    /// The control panel user and password the panel client logs in with.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.config.username = Some(username.into());
        self.config.password = Some(password.into());
        self
    }
    /// Requests the panel client may send per window (default 20 per 60 s, the panel's own
    /// limit; 0 requests turns the budget off).
    pub fn budget(mut self, requests: u32, window: Duration) -> Self {
        self.config.budget = RequestBudget { requests, window };
        self
    }
    /// How long the panel client reuses the deployment list (default 10 s).
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.config.cache_ttl = ttl;
        self
    }

    /// Builds the client of the configured [`Flavor`]: [`Client`] for `v1`, the control panel
    /// client for `panel`, and both for `auto`, which probes the server once at first use.
    ///
    /// Fails like [`ClientBuilder::build`], and when the panel user or password is empty or
    /// only one of them is set.
    pub fn build_any(self) -> Result<AnyClient> {
        let flavor = self.config.flavor;
        let panel = match flavor {
            Flavor::V1 => None,
            Flavor::Panel | Flavor::Auto => Some(self.panel_client()?),
        };
        let v1 = match flavor {
            Flavor::Panel => None,
            Flavor::V1 | Flavor::Auto => Some(self.build()?),
        };
        Ok(AnyClient::new(flavor, v1, panel))
    }

    fn panel_client(&self) -> Result<PanelClient> {
        let config = &self.config;
        let (base, _) = api_root(&config.api_url, &config.api_version)?;
        let base = Url::parse(&base)
            .map_err(|e| config_error(format!("the WebOps URL is invalid: {e}")))?;
        if config.timeout.is_zero() {
            return Err(config_error("the request timeout must be longer than zero"));
        }
        match (&config.username, &config.password) {
            (Some(user), _) if user.is_empty() || user.chars().any(char::is_control) => {
                return Err(config_error(
                    "the panel user name is empty or has control characters",
                ));
            }
            (Some(_), Some(password)) if password.is_empty() => {
                return Err(config_error("the panel password is empty"));
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(config_error(
                    "the panel login needs both a user name and a password",
                ));
            }
            _ => {}
        }
        if let Some(token) = &config.api_key {
            authorization(token)?;
        }
        let user_agent = self
            .user_agent
            .clone()
            .unwrap_or_else(|| concat!("webops-client/", env!("CARGO_PKG_VERSION")).to_owned());
        let user_agent = HeaderValue::from_str(&user_agent).map_err(|_| {
            config_error("the user agent is not a valid HTTP header value (visible ASCII only)")
        })?;
        PanelClient::new(
            TransportConfig {
                base,
                username: config.username.clone(),
                password: config.password.clone(),
                api_key: config.api_key.clone(),
                timeout: config.timeout,
                user_agent,
                budget: config.budget,
                policy: RetryPolicy {
                    max_retries: config.max_retries,
                    ..self.policy
                },
                observer: self.observer.clone(),
                tracer: self.tracer.clone(),
            },
            config.cache_ttl,
        )
    }
    /// Validates the settings and builds the client.
    ///
    /// Fails with [`ErrorKind::Config`] when the base URL is not an http(s) URL, the version
    /// is not one path segment, the token is empty or holds control characters, the user
    /// agent is not a valid header value, or the timeout is zero.
    pub fn build(self) -> Result<Client> {
        let ClientBuilder {
            config,
            user_agent,
            policy,
            observer,
            tracer,
        } = self;
        let (server, root) = api_root(&config.api_url, &config.api_version)?;
        if config.timeout.is_zero() {
            return Err(config_error("the request timeout must be longer than zero"));
        }
        let authorization = match &config.api_key {
            Some(token) => Some(authorization(token)?),
            None => None,
        };
        let user_agent = user_agent
            .unwrap_or_else(|| concat!("webops-client/", env!("CARGO_PKG_VERSION")).to_owned());
        let user_agent = HeaderValue::from_str(&user_agent).map_err(|_| {
            config_error("the user agent is not a valid HTTP header value (visible ASCII only)")
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(user_agent.clone())
            .default_headers(headers)
            .timeout(config.timeout)
            // Redirects would silently turn a POST into a GET; retries are ours alone, so the
            // observer sees every attempt and the POST rule holds.
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| config_error(format!("could not set up the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                plain: super::plain::for_root(&root),
                user_agent,
                http,
                server,
                root,
                token: config.api_key,
                authorization,
                timeout: config.timeout,
                policy: RetryPolicy {
                    max_retries: config.max_retries,
                    ..policy
                },
                observer,
                tracer,
            }),
        })
    }
}

/// `url` with any `user:password@` replaced, for messages: a URL that must not carry
/// credentials may still have been given some.
fn without_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!(
            "{}{REDACTED}{}",
            &url[..scheme_end],
            &url[scheme_end + at..]
        ),
        None => url.to_owned(),
    }
}

pub(super) fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// Checks the base URL and version; returns the server URL (for messages) and the API root
/// `{api_url}/api/{api_version}/`.
fn api_root(api_url: &str, api_version: &str) -> Result<(String, Url)> {
    let shown = without_userinfo(api_url.trim());
    let url = Url::parse(api_url.trim())
        .map_err(|e| config_error(format!("the WebOps API URL '{shown}' is invalid: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(config_error(format!(
            "the WebOps API URL '{shown}' must start with http:// or https:// and name a host"
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            "the WebOps API URL must not contain a user name or password; use the API token",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config_error(format!(
            "the WebOps API URL '{shown}' must not have a query or fragment"
        )));
    }
    let version_ok = !api_version.is_empty()
        && api_version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !version_ok {
        return Err(config_error(format!(
            "the WebOps API version '{api_version}' must be one path segment such as 'v1'"
        )));
    }
    let root = format!("{}/api/{api_version}/", url.as_str().trim_end_matches('/'));
    let root = Url::parse(&root)
        .map_err(|e| config_error(format!("could not build the API root URL: {e}")))?;
    Ok((url.to_string(), root))
}

/// The `Authorization` header of `token`, marked sensitive.
fn authorization(token: &str) -> Result<HeaderValue> {
    if token.is_empty() {
        return Err(config_error("the API token is empty"));
    }
    if token.chars().any(char::is_control) {
        return Err(config_error("the API token contains control characters"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(config_error(
            "the API token must be visible ASCII characters without spaces",
        ));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| config_error("the API token is not a valid HTTP header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(url: &str, version: &str) -> Result<String> {
        api_root(url, version).map(|(_, root)| root.to_string())
    }

    #[test]
    fn api_root_joins_url_and_version() {
        assert_eq!(
            root("http://localhost:8000", "v1").unwrap(),
            "http://localhost:8000/api/v1/"
        );
        assert_eq!(
            root("http://localhost:8000/", "v1").unwrap(),
            "http://localhost:8000/api/v1/"
        );
        assert_eq!(
            root(" https://ops.example.com/webops/ ", "v2").unwrap(),
            "https://ops.example.com/webops/api/v2/"
        );
        let (_, base) = api_root("http://127.0.0.1:9", "v1").unwrap();
        assert_eq!(
            base.join("deployments/42/logs/").unwrap().as_str(),
            "http://127.0.0.1:9/api/v1/deployments/42/logs/"
        );
        let (server, _) = api_root("http://127.0.0.1:9", "v1").unwrap();
        assert_eq!(server, "http://127.0.0.1:9/");
    }

    #[test]
    fn bad_settings_are_config_errors() {
        for (url, version) in [
            ("localhost:8000", "v1"),
            ("ftp://example.com", "v1"),
            ("not a url", "v1"),
            ("", "v1"),
            ("http://user:pw@example.com", "v1"),
            ("ftp://user:pw@example.com", "v1"),
            ("http://user:pw@bad host/", "v1"),
            ("https://pw@example.com/?x=1", "v1"),
            ("http://example.com/?x=1", "v1"),
            ("http://example.com", ""),
            ("http://example.com", "v1/../x"),
            ("http://example.com", "v 1"),
        ] {
            let error = api_root(url, version).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config, "{url} {version}");
            assert!(!error.message().contains("pw"), "{}", error.message());
        }
        let config = ClientConfig {
            api_url: "https://user:pw@example.com/base".to_owned(),
            ..ClientConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            shown.contains("https://<redacted>@example.com/base"),
            "{shown}"
        );
        for token in ["", "abc\ndef", "tab\there", "nul\0"] {
            let error = Client::builder().token(token).build().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
        }
        let error = Client::builder().token("ünïcode").build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(!error.message().contains("ünïcode"));
        let error = Client::builder()
            .user_agent("bad\nagent")
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        let error = Client::builder()
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(Client::builder().build().is_ok());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let config = ClientConfig {
            api_key: Some("very-secret-token".into()),
            ..ClientConfig::default()
        };
        assert!(!format!("{config:?}").contains("very-secret-token"));
        let builder = config.builder().max_retries(1);
        assert!(!format!("{builder:?}").contains("very-secret-token"));
        let client = builder.build().unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("very-secret-token"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("http://localhost:8000/api/v1/"));
    }

    #[test]
    fn config_from_lookup_reads_the_three_variables() {
        let config = ClientConfig::from_lookup(|name| match name {
            "WEBOPS_API_URL" => Some("https://ops.example.com".into()),
            "WEBOPS_API_VERSION" => Some(" v2 ".into()),
            "WEBOPS_API_KEY" => Some("tok\n".into()),
            _ => None,
        });
        assert_eq!(config.api_url, "https://ops.example.com");
        assert_eq!(config.api_version, "v2");
        assert_eq!(config.api_key.as_deref(), Some("tok"));
        let config = ClientConfig::from_lookup(|name| match name {
            "WEBOPS_API_KEY" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(config, ClientConfig::default());
    }

    #[test]
    fn builder_presets_from_config() {
        let config = ClientConfig {
            api_url: "http://10.0.0.1:9000".into(),
            max_retries: 7,
            ..ClientConfig::default()
        };
        let builder = config.builder();
        assert_eq!(builder.config, config);
        assert_eq!(builder.policy.max_retries, 7);
        assert_eq!(builder.policy.max_retry_after, Duration::from_secs(30));
        let client = builder.build().unwrap();
        assert_eq!(client.inner.root.as_str(), "http://10.0.0.1:9000/api/v1/");
        assert_eq!(client.inner.policy.max_retries, 7);
    }
}
