//! Talking to the panel over HTTP: the request budget, the session (form login, cookies,
//! CSRF), one login at a time, re-login on a redirect to the login page, and turning the
//! panel's many kinds of failure answer into an [`Error`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

use super::budget::{Budget, RequestBudget};
use crate::client::{RequestEvent, RequestObserver};
use crate::decode::describe_json_error;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, parse_retry_after};

/// The largest answer read.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How many characters of the panel's own text an error quotes.
const QUOTE_CHARS: usize = 300;

/// One request to the panel.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    /// For metrics and messages, with names as `{name}`: `api/deployments/{name}/logs/`.
    pub(crate) template: &'static str,
    /// Path segments below the base URL, each percent-encoded when sent.
    pub(crate) segments: Vec<String>,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<serde_json::Value>,
    /// Sent without the session (no login needed).
    pub(crate) anonymous: bool,
    /// A longer time limit than the client's, for the panel's slow endpoints.
    pub(crate) min_timeout: Option<Duration>,
}

impl Request {
    pub(crate) fn new(method: Method, template: &'static str, segments: &[&str]) -> Self {
        Request {
            method,
            template,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            anonymous: false,
            min_timeout: None,
        }
    }

    pub(crate) fn get(template: &'static str, segments: &[&str]) -> Self {
        Request::new(Method::GET, template, segments)
    }

    fn unsafe_method(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD)
    }
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) location: Option<String>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
}

impl Raw {
    fn redirects_to_login(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307)
            && self
                .location
                .as_deref()
                .is_some_and(|l| l.contains("/auth/login/"))
    }
}

/// The settings of a [`Transport`].
pub(crate) struct TransportConfig {
    pub(crate) base: Url,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) user_agent: HeaderValue,
    pub(crate) budget: RequestBudget,
    pub(crate) policy: RetryPolicy,
    pub(crate) observer: Option<Arc<dyn RequestObserver>>,
}

/// The panel over HTTP.
pub(crate) struct Transport {
    http: reqwest::Client,
    /// The panel's root, ending in `/`.
    base: Url,
    /// `scheme://host[:port]/`: the same-origin `Referer` unsafe requests carry.
    referer: HeaderValue,
    username: Option<String>,
    password: Option<String>,
    api_key: Option<String>,
    /// Try `Authorization: Bearer` before the session (older panels accepted it).
    bearer: AtomicBool,
    cookies: RwLock<Jar>,
    /// One login at a time.
    login: tokio::sync::Mutex<()>,
    budget: Budget,
    timeout: Duration,
    policy: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
}

/// The cookies the panel set, by name, and how many logins produced them.
#[derive(Debug, Default, Clone)]
struct Jar {
    cookies: BTreeMap<String, String>,
    logins: u64,
}

impl Jar {
    fn header(&self) -> Option<HeaderValue> {
        if self.cookies.is_empty() {
            return None;
        }
        let text = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut value = HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Takes the `Set-Cookie` headers of an answer: a cookie with `Max-Age=0` or an empty
    /// value is removed.
    fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut parts = text.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim().trim_matches('"'));
            let expired = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-")
            });
            if expired || value.is_empty() {
                self.cookies.remove(name);
            } else if !name.is_empty() {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent)
            .default_headers(headers)
            .timeout(config.timeout)
            // A redirect means something (log in again, a missing slash): never follow it.
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("could not set up the HTTP client: {e}"),
                )
            })?;
        let origin = config.base.origin().ascii_serialization();
        let referer = HeaderValue::from_str(&format!("{origin}/"))
            .map_err(|_| Error::new(ErrorKind::Config, "the panel URL is not a valid Referer"))?;
        Ok(Transport {
            http,
            referer,
            bearer: AtomicBool::new(config.api_key.is_some()),
            base: config.base,
            username: config.username,
            password: config.password,
            api_key: config.api_key,
            cookies: RwLock::new(Jar::default()),
            login: tokio::sync::Mutex::new(()),
            budget: Budget::new(config.budget),
            timeout: config.timeout,
            policy: config.policy,
            observer: config.observer,
        })
    }

    pub(crate) fn budget(&self) -> RequestBudget {
        self.budget.settings()
    }

    pub(crate) fn username(&self) -> &str {
        self.username.as_deref().unwrap_or("")
    }

    /// Requests still in the budget now.
    pub(crate) fn budget_available(&self) -> u32 {
        self.budget.available()
    }

    fn jar(&self) -> Jar {
        self.cookies
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn jar_mut(&self) -> std::sync::RwLockWriteGuard<'_, Jar> {
        self.cookies
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every secret this transport knows, to remove from quoted text.
    fn secrets(&self) -> Vec<String> {
        let jar = self.jar();
        let mut secrets: Vec<String> = [&self.password, &self.api_key]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        secrets.extend(jar.cookies.values().cloned());
        secrets.retain(|s| s.len() >= 4);
        secrets
    }

    /// Sends `request` and decodes a 2xx JSON answer as `T`.
    pub(crate) async fn json<T: DeserializeOwned>(&self, request: &Request) -> Result<T> {
        let raw = self.send(request).await?;
        serde_json::from_slice(&raw.body).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                format!(
                    "could not read the WebOps panel's answer to {} {} ({}): {}",
                    request.method,
                    request.template,
                    raw.status,
                    describe_json_error(&e)
                ),
            )
            .with_status(raw.status)
        })
    }

    /// Sends `request` with the session (logging in first when there is none, and once more
    /// when the panel sends us to its login page), retrying a GET that met a passing
    /// failure. A 2xx answer is returned; anything else is an [`Error`].
    pub(crate) async fn send(&self, request: &Request) -> Result<Raw> {
        let mut relogged = false;
        let mut attempt = 0;
        loop {
            let use_bearer = self.bearer.load(Ordering::Relaxed);
            let jar = if request.anonymous || use_bearer {
                None
            } else {
                Some(self.session().await?)
            };
            let raw = match self.once(request, jar.as_ref(), use_bearer, attempt).await {
                Ok(raw) => raw,
                Err(error) => {
                    match self
                        .policy
                        .wait_before_retry(&error, attempt, !request.unsafe_method())
                    {
                        Some(wait) if error.kind() == ErrorKind::Connection => {
                            tokio::time::sleep(wait.duration()).await;
                            attempt += 1;
                            continue;
                        }
                        _ => return Err(error),
                    }
                }
            };
            if (200..300).contains(&raw.status) {
                return Ok(raw);
            }
            // A redirect to the login page, or a CSRF refusal (a session or token the panel no
            // longer knows): the panel did not run the view, so sending it again is safe.
            let csrf_refusal = raw.status == 403 && looks_like_csrf(&raw);
            if !request.anonymous && (raw.redirects_to_login() || csrf_refusal) {
                if use_bearer {
                    tracing::info!(
                        "the WebOps panel does not accept the API key; using a login session"
                    );
                    self.bearer.store(false, Ordering::Relaxed);
                    continue;
                }
                if !relogged {
                    relogged = true;
                    self.login_after(jar.map_or(0, |j| j.logins)).await?;
                    continue;
                }
                if csrf_refusal {
                    return Err(self.error_of(request, &raw));
                }
                return Err(Error::new(
                    ErrorKind::Unauthorized,
                    format!(
                        "the WebOps panel sent {} {} to its login page again right after a \
                         fresh login as '{}': the session is not kept (cookies refused?)",
                        request.method,
                        request.template,
                        self.username()
                    ),
                )
                .with_status(raw.status)
                .with_code("PANEL_LOGIN"));
            }
            let error = self.error_of(request, &raw);
            if error.kind() == ErrorKind::Unavailable
                && let Some(wait) =
                    self.policy
                        .wait_before_retry(&error, attempt, !request.unsafe_method())
            {
                tokio::time::sleep(wait.duration()).await;
                attempt += 1;
                continue;
            }
            return Err(error);
        }
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> Result<Jar> {
        let jar = self.jar();
        if jar.get("sessionid").is_some() {
            return Ok(jar);
        }
        self.login_after(jar.logins).await?;
        Ok(self.jar())
    }

    /// Logs in, unless another call already did since the session numbered `seen` (one
    /// login at a time: concurrent calls wait for it and share the new session).
    async fn login_after(&self, seen: u64) -> Result<()> {
        let _one = self.login.lock().await;
        let jar = self.jar();
        if jar.logins != seen && jar.get("sessionid").is_some() {
            return Ok(());
        }
        self.log_in().await?;
        self.jar_mut().logins = seen.max(jar.logins) + 1;
        Ok(())
    }

    /// The panel's form login: the login page for a CSRF cookie, then the form with
    /// `remember_me=on` (a 14-day session); the panel rotates the CSRF cookie on success.
    async fn log_in(&self) -> Result<()> {
        let (Some(username), Some(password)) = (&self.username, &self.password) else {
            return Err(Error::new(
                ErrorKind::Unauthorized,
                "the WebOps panel needs a login: set the panel user's name and password \
                 (WEBOPS_USERNAME and WEBOPS_PASSWORD, or [webops] username and password)",
            )
            .with_code("PANEL_LOGIN"));
        };
        self.take_budget(2, "log in")?;
        self.jar_mut().cookies.remove("sessionid");
        let page = Request::get("auth/login/", &["auth", "login"]);
        let jar = self.jar();
        let answer = self.once_counted(&page, Some(&jar), false, 0).await?;
        if answer.status != 200 {
            return Err(self.error_of(&page, &answer));
        }
        let Some(csrf) = self.jar().get("csrftoken").map(str::to_owned) else {
            return Err(Error::new(
                ErrorKind::Decode,
                "the WebOps panel's login page set no csrftoken cookie; is this a WebOps panel?",
            )
            .with_code("PANEL_LOGIN"));
        };
        let form = [
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("username", username.as_str()),
            ("password", password.as_str()),
            ("remember_me", "on"),
        ];
        let mut post = Request::new(Method::POST, "auth/login/", &["auth", "login"]);
        post.min_timeout = Some(Duration::from_secs(10));
        let url = self.url(&post)?;
        let started = Instant::now();
        let result = self
            .http
            .post(url)
            .timeout(self.timeout.max(Duration::from_secs(10)))
            .header(
                header::COOKIE,
                self.jar().header().unwrap_or(HeaderValue::from_static("")),
            )
            .header(header::REFERER, self.referer.clone())
            .form(&form)
            .send()
            .await;
        let answer = self.read(&post, result, started, 0).await?;
        let location = answer.location.as_deref().unwrap_or("");
        match answer.status {
            302 | 303 if location.contains("/2fa/") => Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "the WebOps panel user '{username}' has two-factor login enabled, which this \
                     server cannot complete: use a panel user without two-factor login for \
                     webops-mcp"
                ),
            )
            .with_code("PANEL_LOGIN")),
            302 | 303 if self.jar().get("sessionid").is_some() => Ok(()),
            200 => Err(Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "the WebOps panel refused the login of user '{username}': wrong user name or \
                     password (it answered with its login form again)"
                ),
            )
            .with_code("PANEL_LOGIN")),
            _ => Err(self.error_of(&post, &answer)),
        }
    }

    fn take_budget(&self, n: u32, what: &str) -> Result<()> {
        self.budget.take(n).map_err(|wait| {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let budget = self.budget.settings();
            Error::new(
                ErrorKind::RateLimited,
                format!(
                    "WebOps rate budget exhausted, retry in {secs} s (this server sends the WebOps \
                     panel at most {} requests per {} s, the panel's own limit; it needed {n} \
                     to {what})",
                    budget.requests,
                    budget.window.as_secs()
                ),
            )
            .with_retry_after(Duration::from_secs(secs.max(1)))
            .with_code("BUDGET_EXHAUSTED")
        })
    }

    fn url(&self, request: &Request) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| Error::new(ErrorKind::Config, "the panel URL cannot take a path"))?;
            path.pop_if_empty();
            path.extend(&request.segments);
            // Every panel path ends in a slash (without it: a redirect, or a 500 on POST).
            path.push("");
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }

    /// One attempt, paid from the budget.
    async fn once(
        &self,
        request: &Request,
        jar: Option<&Jar>,
        bearer: bool,
        attempt: u32,
    ) -> Result<Raw> {
        self.take_budget(1, &format!("{} {}", request.method, request.template))?;
        self.once_counted(request, jar, bearer, attempt).await
    }

    /// One attempt already paid for.
    async fn once_counted(
        &self,
        request: &Request,
        jar: Option<&Jar>,
        bearer: bool,
        attempt: u32,
    ) -> Result<Raw> {
        let url = self.url(request)?;
        let timeout = request
            .min_timeout
            .map_or(self.timeout, |t| t.max(self.timeout));
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .timeout(timeout);
        if let Some(cookie) = jar.and_then(Jar::header) {
            builder = builder.header(header::COOKIE, cookie);
        }
        if bearer && let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                Error::new(ErrorKind::Config, "the API key is not a valid header value")
            })?;
            value.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, value);
        }
        if request.unsafe_method() {
            // Django checks the header against the CSRF cookie, and over HTTPS that the
            // Referer is of the same origin.
            builder = builder.header(header::REFERER, self.referer.clone());
            if let Some(token) = jar.and_then(|j| j.get("csrftoken"))
                && let Ok(value) = HeaderValue::from_str(token)
            {
                builder = builder.header("X-CSRFToken", value);
            }
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let started = Instant::now();
        let result = builder.send().await;
        self.read(request, result, started, attempt).await
    }

    /// Reads an answer whole, keeps its cookies and reports it to the observer.
    async fn read(
        &self,
        request: &Request,
        result: reqwest::Result<reqwest::Response>,
        started: Instant,
        attempt: u32,
    ) -> Result<Raw> {
        let outcome = async {
            let mut response = result.map_err(|e| self.transport_error(request, &e))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            self.jar_mut().store(&headers);
            let text = |name: header::HeaderName| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| self.transport_error(request, &e))?
            {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(Error::new(
                        ErrorKind::Decode,
                        format!(
                            "the WebOps panel's answer to {} {} is larger than {} MiB",
                            request.method,
                            request.template,
                            MAX_BODY_BYTES >> 20
                        ),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Raw {
                status,
                content_type: text(header::CONTENT_TYPE).unwrap_or_default(),
                location: text(header::LOCATION),
                retry_after: text(header::RETRY_AFTER)
                    .and_then(|v| parse_retry_after(&v, Utc::now())),
                body,
            })
        }
        .await;
        if let Some(observer) = &self.observer {
            let status = outcome.as_ref().ok().map(|raw| raw.status);
            observer.observe(&RequestEvent {
                method: request.method.as_str(),
                endpoint: request.template,
                status,
                error: match &outcome {
                    Err(e) => Some(e.kind()),
                    Ok(raw) if raw.status >= 400 => Some(kind_of_status(raw.status)),
                    Ok(_) => None,
                },
                duration: started.elapsed(),
                attempt,
            });
        }
        if let Ok(raw) = &outcome
            && raw.status == 429
        {
            self.budget
                .block_for(raw.retry_after.unwrap_or(Duration::from_secs(60)));
        }
        outcome
    }

    fn transport_error(&self, request: &Request, error: &reqwest::Error) -> Error {
        let what = format!("{} {}", request.method, request.template);
        if error.is_timeout() {
            let limit = request
                .min_timeout
                .map_or(self.timeout, |t| t.max(self.timeout));
            return Error::new(
                ErrorKind::Timeout,
                format!(
                    "the WebOps panel did not answer {what} within {} s",
                    limit.as_secs()
                ),
            )
            .unanswered();
        }
        let server = self.base.origin().ascii_serialization();
        if error.is_connect() {
            return Error::new(
                ErrorKind::Connection,
                format!("could not connect to WebOps at {server}"),
            );
        }
        Error::new(
            ErrorKind::Connection,
            format!("the connection to WebOps at {server} failed during {what}"),
        )
        .unanswered()
    }

    /// The [`Error`] for a non-2xx answer, quoting the panel's own words (its `error` text,
    /// the first line of a traceback, or an HTML page's title) as untrusted text.
    pub(crate) fn error_of(&self, request: &Request, raw: &Raw) -> Error {
        let what = format!("{} {}", request.method, request.template);
        let json: Option<serde_json::Value> = serde_json::from_slice(&raw.body).ok();
        let said = json
            .as_ref()
            .and_then(|v| match v.get("error") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(_) => v.get("message").and_then(|m| m.as_str()).map(str::to_owned),
                None => None,
            })
            .or_else(|| first_words(raw));
        let handled = json
            .as_ref()
            .is_some_and(|v| v.get("error").is_some_and(serde_json::Value::is_string));
        let status = raw.status;
        let (kind, message) = match status {
            301 | 308 => (
                ErrorKind::Server,
                format!(
                    "the WebOps panel redirected {what} elsewhere (HTTP {status}); is the panel \
                     URL right (https:// behind a TLS proxy)?"
                ),
            ),
            302 | 303 | 307 => (
                ErrorKind::Unauthorized,
                format!("the WebOps panel redirected {what} (HTTP {status})"),
            ),
            400 if said
                .as_deref()
                .is_some_and(|s| s.contains("already exists")) =>
            {
                (
                    ErrorKind::Conflict,
                    format!("the WebOps panel refused {what}: the name is taken"),
                )
            }
            400 | 422 => (
                ErrorKind::Validation,
                format!("the WebOps panel refused {what} as invalid (HTTP {status})"),
            ),
            401 => (
                ErrorKind::Unauthorized,
                format!("the WebOps panel refused {what} as unauthenticated (HTTP 401)"),
            ),
            403 if looks_like_csrf(raw) => (
                ErrorKind::Forbidden,
                format!(
                    "the WebOps panel's CSRF check refused {what} (HTTP 403); if the panel is \
                     behind a proxy, its URL here must be the one it is served at"
                ),
            ),
            403 => (
                ErrorKind::Forbidden,
                format!("the WebOps panel refused {what} (HTTP 403)"),
            ),
            404 if handled => (
                ErrorKind::NotFound,
                format!("the WebOps panel found no such resource for {what}"),
            ),
            404 | 405 | 501 => (
                ErrorKind::Unsupported,
                format!(
                    "this WebOps panel has no {what} (HTTP {status}): its version does not \
                     offer it"
                ),
            ),
            429 => {
                let secs = raw.retry_after.map_or(60, |d| d.as_secs().max(1));
                return Error::new(
                    ErrorKind::RateLimited,
                    format!(
                        "the WebOps panel is rate limiting this server's address, retry in \
                         {secs} s"
                    ),
                )
                .with_status(429)
                .with_retry_after(Duration::from_secs(secs));
            }
            502..=504 => (
                ErrorKind::Unavailable,
                format!("the WebOps panel is unavailable (HTTP {status} to {what})"),
            ),
            _ => (
                ErrorKind::Server,
                format!("the WebOps panel failed on {what} (HTTP {status})"),
            ),
        };
        let mut error = Error::new(kind, message).with_status(status);
        if let Some(text) = said.map(|s| self.quote(&s)).filter(|s| !s.is_empty()) {
            error = error.with_upstream_text(text);
        }
        if let Some(wait) = raw.retry_after {
            error = error.with_retry_after(wait);
        }
        error
    }

    /// `text` bounded to one line of [`QUOTE_CHARS`] with every known secret removed.
    pub(crate) fn quote(&self, text: &str) -> String {
        let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for secret in self.secrets() {
            if out.contains(&secret) {
                out = out.replace(&secret, "[redacted]");
            }
        }
        if out.chars().count() > QUOTE_CHARS {
            out = out.chars().take(QUOTE_CHARS).collect::<String>() + "…";
        }
        out
    }
}

fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        400 | 422 => ErrorKind::Validation,
        401 | 302 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 => ErrorKind::NotFound,
        405 => ErrorKind::Unsupported,
        429 => ErrorKind::RateLimited,
        502..=504 => ErrorKind::Unavailable,
        _ => ErrorKind::Server,
    }
}

fn looks_like_csrf(raw: &Raw) -> bool {
    String::from_utf8_lossy(&raw.body).contains("CSRF")
}

/// What a non-JSON body says first: an HTML page's title, else its first non-empty line
/// (a traceback's exception line).
fn first_words(raw: &Raw) -> Option<String> {
    let text = String::from_utf8_lossy(&raw.body);
    if raw.content_type.contains("html") || text.trim_start().starts_with('<') {
        let lower = text.to_ascii_lowercase();
        let start = lower.find("<title>")? + "<title>".len();
        let end = start + lower[start..].find("</title>")?;
        return Some(text[start..end].trim().to_owned());
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, content_type: &str, body: &str) -> Raw {
        Raw {
            status,
            content_type: content_type.to_owned(),
            location: None,
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_first_words_of_tracebacks_and_pages() {
        let trace = raw(
            500,
            "text/plain",
            "\nValueError at /api/deployments/x/stop/\nUnknown Celery task\n",
        );
        assert_eq!(
            first_words(&trace).as_deref(),
            Some("ValueError at /api/deployments/x/stop/")
        );
        let page = raw(
            404,
            "text/html",
            "<html><head><TITLE> Page not found at /api/v1/ </TITLE></head></html>",
        );
        assert_eq!(
            first_words(&page).as_deref(),
            Some("Page not found at /api/v1/")
        );
    }

    fn transport() -> Transport {
        Transport::new(TransportConfig {
            base: Url::parse("http://127.0.0.1:9/").unwrap(),
            username: Some("ops".into()),
            password: Some("pa55-w0rd-secret".into()),
            api_key: None,
            timeout: Duration::from_secs(5),
            user_agent: HeaderValue::from_static("test"),
            budget: RequestBudget::default(),
            policy: RetryPolicy::default(),
            observer: None,
        })
        .unwrap()
    }

    #[test]
    fn every_shape_of_failure_becomes_a_bounded_error() {
        let t = transport();
        let get = Request::get("api/deployments/", &["api", "deployments"]);
        let cases = [
            (
                raw(
                    404,
                    "application/json",
                    r#"{"error":"Deployment x not found"}"#,
                ),
                ErrorKind::NotFound,
                Some("Deployment x not found"),
            ),
            (
                raw(
                    404,
                    "text/html",
                    "<html><title>Page not found at /api/v1/</title></html>",
                ),
                ErrorKind::Unsupported,
                Some("Page not found at /api/v1/"),
            ),
            (
                raw(
                    500,
                    "application/json",
                    r#"{"error":true,"status":500,"message":"An unexpected error occurred."}"#,
                ),
                ErrorKind::Server,
                Some("An unexpected error occurred."),
            ),
            (
                raw(
                    500,
                    "text/plain",
                    "ZeroDivisionError at /api/deployments/\nmore",
                ),
                ErrorKind::Server,
                Some("ZeroDivisionError at /api/deployments/"),
            ),
            (
                raw(
                    400,
                    "application/json",
                    r#"{"error":"Deployment shop already exists"}"#,
                ),
                ErrorKind::Conflict,
                Some("Deployment shop already exists"),
            ),
            (raw(405, "", ""), ErrorKind::Unsupported, None),
            (
                raw(
                    403,
                    "text/html",
                    "<html><title>403 Forbidden</title>CSRF verification failed</html>",
                ),
                ErrorKind::Forbidden,
                Some("403 Forbidden"),
            ),
            (raw(301, "", ""), ErrorKind::Server, None),
            (raw(503, "text/html", ""), ErrorKind::Unavailable, None),
        ];
        for (answer, kind, quoted) in cases {
            let error = t.error_of(&get, &answer);
            assert_eq!(error.kind(), kind, "{answer:?}");
            assert_eq!(error.upstream_text(), quoted, "{answer:?}");
            assert!(
                error.message().contains("GET api/deployments/"),
                "{}",
                error.message()
            );
        }
        let limited = Raw {
            retry_after: Some(Duration::from_secs(49)),
            ..raw(
                429,
                "application/json",
                r#"{"error":"Global rate limit exceeded"}"#,
            )
        };
        let error = t.error_of(&get, &limited);
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(49)));
        // The panel echoing a secret, at length: masked and bounded.
        let echo = format!(
            r#"{{"error":"bad password pa55-w0rd-secret {}"}}"#,
            "x".repeat(1000)
        );
        let error = t.error_of(&get, &raw(400, "application/json", &echo));
        let quoted = error.upstream_text().unwrap();
        assert!(!quoted.contains("pa55-w0rd-secret") && quoted.contains("[redacted]"));
        assert!(quoted.chars().count() <= QUOTE_CHARS + 1);
    }

    #[test]
    fn the_jar_keeps_and_drops_cookies() {
        let mut jar = Jar::default();
        let mut headers = HeaderMap::new();
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("csrftoken=abc; Path=/; SameSite=Lax"),
        );
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_static("sessionid=s1; HttpOnly; Max-Age=1209600"),
        );
        jar.store(&headers);
        assert_eq!(jar.get("csrftoken"), Some("abc"));
        assert_eq!(jar.get("sessionid"), Some("s1"));
        let mut gone = HeaderMap::new();
        gone.append(
            header::SET_COOKIE,
            HeaderValue::from_static("sessionid=\"\"; Max-Age=0; Path=/"),
        );
        jar.store(&gone);
        assert_eq!(jar.get("sessionid"), None);
        assert_eq!(jar.header().unwrap().to_str().unwrap(), "csrftoken=abc");
    }
}
