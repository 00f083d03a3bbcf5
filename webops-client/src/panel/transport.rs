//! Talking to the panel over HTTP: the request budget, the session (form login, cookies,
//! CSRF), one login at a time, re-login on a redirect to the login page, and turning the
//! panel's many kinds of failure answer into an [`Error`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;

mod failure;
mod jar;

use self::failure::{kind_of_status, looks_like_csrf};
use self::jar::Jar;
use super::budget::{Budget, RequestBudget};
use crate::client::{RequestEvent, RequestObserver};
use crate::decode::describe_json_error;
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::sync::lock;
use crate::trace::{RequestSpan, RequestTracer, TracedRequest};

/// The largest answer read.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long a refused login is remembered before the panel is asked again.
const LOGIN_RETRY_AFTER: Duration = Duration::from_secs(60);

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
    pub(crate) tracer: Option<Arc<dyn RequestTracer>>,
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
    cookies: Mutex<Jar>,
    /// One login at a time.
    /// Held while logging in (one login at a time), with the last refused login: the panel
    /// is not asked again for [`LOGIN_RETRY_AFTER`].
    login: tokio::sync::Mutex<Option<(Instant, Error)>>,
    budget: Budget,
    timeout: Duration,
    policy: RetryPolicy,
    observer: Option<Arc<dyn RequestObserver>>,
    tracer: Option<Arc<dyn RequestTracer>>,
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
            cookies: Mutex::new(Jar::default()),
            login: tokio::sync::Mutex::new(None),
            budget: Budget::new(config.budget),
            timeout: config.timeout,
            policy: config.policy,
            observer: config.observer,
            tracer: config.tracer,
        })
    }

    pub(crate) fn budget(&self) -> RequestBudget {
        self.budget.settings()
    }

    pub(crate) fn username(&self) -> &str {
        self.username.as_deref().unwrap_or("")
    }

    fn jar(&self) -> Jar {
        lock(&self.cookies).clone()
    }

    fn jar_mut(&self) -> std::sync::MutexGuard<'_, Jar> {
        lock(&self.cookies)
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
        let mut refused = self.login.lock().await;
        let jar = self.jar();
        if jar.logins != seen && jar.get("sessionid").is_some() {
            return Ok(());
        }
        // Wrong credentials stay wrong: say so again without spending the budget (or
        // provoking the panel's lockout) on every call.
        if let Some((at, error)) = &*refused
            && at.elapsed() < LOGIN_RETRY_AFTER
        {
            let next = (LOGIN_RETRY_AFTER - at.elapsed()).as_secs().max(1);
            let message = format!(
                "{} (from a login attempt {} s ago; the next one is in {next} s)",
                error.message(),
                at.elapsed().as_secs()
            );
            return Err(error.clone().with_message(message));
        }
        match self.log_in().await {
            Err(e) if e.kind() == ErrorKind::Unauthorized && e.code() == Some("PANEL_LOGIN") => {
                *refused = Some((Instant::now(), e.clone()));
                Err(e)
            }
            Err(e) => Err(e),
            Ok(()) => {
                *refused = None;
                self.jar_mut().logins = seen.max(jar.logins) + 1;
                Ok(())
            }
        }
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
        let builder = self
            .http
            .post(url)
            .timeout(self.timeout.max(Duration::from_secs(10)))
            .header(
                header::COOKIE,
                self.jar().header().unwrap_or(HeaderValue::from_static("")),
            )
            .header(header::REFERER, self.referer.clone())
            .form(&form);
        let (result, span) = self.execute(&post, builder, 0).await;
        let answer = self.read(&post, result, started, 0, span).await?;
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
        let (result, span) = self.execute(request, builder, attempt).await;
        self.read(request, result, started, attempt, span).await
    }

    /// Sends a request; when a tracer traces it, with its span's headers, and the span.
    async fn execute(
        &self,
        request: &Request,
        builder: reqwest::RequestBuilder,
        attempt: u32,
    ) -> (
        reqwest::Result<reqwest::Response>,
        Option<Box<dyn RequestSpan>>,
    ) {
        let Some(tracer) = &self.tracer else {
            return (builder.send().await, None);
        };
        let mut http_request = match builder.build() {
            Ok(http_request) => http_request,
            Err(e) => return (Err(e), None),
        };
        // A template without names is its own path (the `auto` probe's template is the REST
        // API's label of the same request, for metrics).
        let template = if request.template.contains('{') {
            format!("{}{}", self.base.path(), request.template)
        } else {
            http_request.url().path().to_owned()
        };
        let span = tracer.start(&TracedRequest {
            method: request.method.as_str(),
            url_template: &template,
            url: http_request.url().as_str(),
            attempt,
        });
        if let Some(span) = &span {
            span.inject(http_request.headers_mut());
        }
        (self.http.execute(http_request).await, span)
    }

    /// Reads an answer whole, keeps its cookies and reports it to the observer and the
    /// attempt's span.
    async fn read(
        &self,
        request: &Request,
        result: reqwest::Result<reqwest::Response>,
        started: Instant,
        attempt: u32,
        span: Option<Box<dyn RequestSpan>>,
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
        let event = RequestEvent {
            method: request.method.as_str(),
            endpoint: request.template,
            status: outcome.as_ref().ok().map(|raw| raw.status),
            error: match &outcome {
                Err(e) => Some(e.kind()),
                Ok(raw) if raw.status >= 400 => Some(kind_of_status(raw.status)),
                Ok(_) => None,
            },
            duration: started.elapsed(),
            attempt,
        };
        if let Some(observer) = &self.observer {
            observer.observe(&event);
        }
        if let Some(span) = span {
            span.end(&event);
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
}
