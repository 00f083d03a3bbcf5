//! Fault injection, rate limiting, latency and the request log: the knobs a test turns.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

/// A scripted misbehaviour for the next matching request(s); see [`crate::MockWebOps::inject`].
///
/// A faulted request is answered by the fault and does not touch the mock's state (except
/// [`Fault::delay`], which waits and then lets the request through). Rules are consumed in the
/// order they were injected: a request takes the first rule that matches it.
///
/// ```
/// use std::time::Duration;
/// use webops_mcp_testkit::Fault;
///
/// // The next two GETs of a path containing "/logs/" get a 503 with `Retry-After: 1`.
/// let fault = Fault::status(503).retry_after(1).times(2).on_method("GET").on_path("/logs/");
/// // The next request waits 2 s before being answered normally.
/// let slow = Fault::delay(Duration::from_secs(2));
/// # let _ = (fault, slow);
/// ```
#[derive(Debug, Clone)]
pub struct Fault {
    kind: FaultKind,
    times: usize,
    retry_after: Option<u64>,
    path: Option<String>,
    method: Option<String>,
    after_handling: bool,
}

#[derive(Debug, Clone)]
enum FaultKind {
    Status(u16),
    Said(u16, String),
    Html(u16),
    TruncatedJson(u16),
    Empty(u16),
    Delay(Duration),
}

impl Fault {
    fn new(kind: FaultKind) -> Fault {
        Fault {
            kind,
            times: 1,
            retry_after: None,
            path: None,
            method: None,
            after_handling: false,
        }
    }

    /// Answers with `status` and the contract's error envelope carrying the matching code
    /// (400 `VALIDATION_ERROR`, 401 `AUTHENTICATION_REQUIRED`, 403 `PERMISSION_DENIED`,
    /// 404 `RESOURCE_NOT_FOUND`, 409 `CONFLICT`, 422 `DEPLOYMENT_FAILED`, 429
    /// `RATE_LIMIT_EXCEEDED`, 500 `INTERNAL_ERROR`, 502 `BAD_GATEWAY`, 503
    /// `SERVICE_UNAVAILABLE`, 504 `GATEWAY_TIMEOUT`, ...). A status below 400 gets a success
    /// envelope with `data: null`. An invalid status code is answered as 500.
    pub fn status(status: u16) -> Fault {
        Fault::new(FaultKind::Status(status))
    }

    /// Like [`Fault::status`], with `message` as the envelope's `message` and, for a 400, as
    /// the problem of the `repo_url` and `name` fields in its `details`: text a test controls,
    /// e.g. one that tries to instruct the model reading it.
    pub fn said(status: u16, message: &str) -> Fault {
        Fault::new(FaultKind::Said(status, message.to_owned()))
    }

    /// Answers with `status` and an HTML error page, like a reverse proxy's.
    pub fn html(status: u16) -> Fault {
        Fault::new(FaultKind::Html(status))
    }

    /// Answers with `status`, `Content-Type: application/json` and a JSON body cut short, e.g.
    /// `{"success": true, "data": {"id": 1,`.
    pub fn truncated_json(status: u16) -> Fault {
        Fault::new(FaultKind::TruncatedJson(status))
    }

    /// Answers with `status` and an empty body.
    pub fn empty(status: u16) -> Fault {
        Fault::new(FaultKind::Empty(status))
    }

    /// Waits `d`, then answers normally (to trigger client timeouts).
    pub fn delay(d: Duration) -> Fault {
        Fault::new(FaultKind::Delay(d))
    }

    /// Applies to the next `n` matching requests (default 1; 0 makes the rule inert).
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    /// Adds a `Retry-After: <secs>` header to the answer.
    pub fn retry_after(mut self, secs: u64) -> Fault {
        self.retry_after = Some(secs);
        self
    }

    /// Only requests whose path (without the query) contains `substring`.
    pub fn on_path(mut self, substring: &str) -> Fault {
        self.path = Some(substring.to_owned());
        self
    }

    /// Lets the request take effect first and only then replaces its answer, like a proxy
    /// that times out (504) after the backend already acted. No effect on [`Fault::delay`].
    pub fn after_handling(mut self) -> Fault {
        self.after_handling = true;
        self
    }

    /// Only requests with this method (case-insensitive).
    pub fn on_method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| path.contains(p))
    }
}

/// What a matched fault makes the mock do.
#[derive(Debug)]
pub(crate) enum FaultAction {
    /// Wait, then serve normally.
    Delay(Duration),
    /// Answer with this response.
    Respond(Response),
    /// Serve normally, then answer with this response instead.
    Replace(Response),
}

/// The contract's error code for an HTTP status.
pub(crate) fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "VALIDATION_ERROR",
        401 => "AUTHENTICATION_REQUIRED",
        403 => "PERMISSION_DENIED",
        404 => "RESOURCE_NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        409 => "CONFLICT",
        413 => "PAYLOAD_TOO_LARGE",
        422 => "DEPLOYMENT_FAILED",
        429 => "RATE_LIMIT_EXCEEDED",
        502 => "BAD_GATEWAY",
        503 => "SERVICE_UNAVAILABLE",
        504 => "GATEWAY_TIMEOUT",
        402..=499 => "BAD_REQUEST",
        _ => "INTERNAL_ERROR",
    }
}

impl FaultKind {
    fn respond(self, retry_after: Option<u64>) -> FaultAction {
        let (status, content_type, body) = match self {
            FaultKind::Delay(d) => return FaultAction::Delay(d),
            FaultKind::Status(code) => {
                let status = status_of(code);
                let body = if status.as_u16() < 400 {
                    serde_json::json!({"success": true, "data": null})
                } else {
                    serde_json::json!({
                        "success": false,
                        "error": {
                            "code": code_for(status),
                            "message": format!("Injected fault: {}", reason(status)),
                        }
                    })
                };
                (status, Some("application/json"), body.to_string())
            }
            FaultKind::Said(code, message) => {
                let status = status_of(code);
                let mut error = serde_json::json!({"code": code_for(status), "message": message});
                if status.as_u16() == 400 {
                    error["details"] =
                        serde_json::json!({"repo_url": [message], "name": [message]});
                }
                let body = serde_json::json!({"success": false, "error": error});
                (status, Some("application/json"), body.to_string())
            }
            FaultKind::Html(code) => {
                let status = status_of(code);
                let title = format!("{} {}", status.as_u16(), reason(status));
                let body = format!(
                    "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n\
                     <center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n\
                     </body>\r\n</html>\r\n"
                );
                (status, Some("text/html"), body)
            }
            FaultKind::TruncatedJson(code) => {
                let status = status_of(code);
                let body = if status.as_u16() < 400 {
                    r#"{"success": true, "data": {"id": 1,"#
                } else {
                    r#"{"success": false, "error": {"code": "INTERNAL_"#
                };
                (status, Some("application/json"), body.to_owned())
            }
            FaultKind::Empty(code) => (status_of(code), None, String::new()),
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        if let Some(content_type) = content_type {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        FaultAction::Respond(response)
    }
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

/// A fixed-window request limit; past it the mock answers 429 `RATE_LIMIT_EXCEEDED` with
/// `Retry-After: retry_after_secs`. See [`crate::MockWebOps::set_rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max_requests: u32,
    /// Length of the window, counted from the first request in it.
    pub window: std::time::Duration,
    /// Value of the `Retry-After` header on a 429.
    pub retry_after_secs: u64,
}

impl RateLimit {
    /// `max_requests` per `window`, answering 429 with `Retry-After: retry_after_secs`.
    pub fn new(max_requests: u32, window: Duration, retry_after_secs: u64) -> RateLimit {
        RateLimit {
            max_requests,
            window,
            retry_after_secs,
        }
    }
}

/// One request the mock received, and what it answered.
#[derive(Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `"/api/v1/deployments/3/logs/"`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    /// Headers by lower-case name (repeated headers joined with `", "`).
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8), cut after 64 KiB and then ending in `…`.
    pub body: String,
    /// The status the mock answered (0 while no answer has been sent yet).
    pub status: u16,
}

impl RecordedRequest {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Hides credentials: `authorization`, `proxy-authorization`, `x-api-key` and `cookie` values stay
/// out of `Debug` output (read them with [`RecordedRequest::header`]).
impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = match k.as_str() {
                    "authorization" | "x-api-key" | "cookie" | "proxy-authorization" => {
                        "<redacted>"
                    }
                    _ => v.as_str(),
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("status", &self.status)
            .finish()
    }
}

/// How many requests the log keeps (the newest): enough for any test, and a long-running
/// mock (`webops-mock`, `webops-mcp --demo`) stays the same size however long it serves.
pub(crate) const REQUEST_LOG_CAPACITY: usize = 10_000;

/// The knobs and the request log, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Control {
    faults: VecDeque<Fault>,
    pub(crate) latency: Duration,
    rate_limit: Option<RateLimit>,
    window: Option<(Instant, u32)>,
    requests: VecDeque<(u64, RecordedRequest)>,
    next_request: u64,
}

impl Control {
    /// Queues a fault rule.
    pub(crate) fn inject(&mut self, fault: Fault) {
        if fault.times > 0 {
            self.faults.push_back(fault);
        }
    }

    /// Takes one use of the first rule matching the request.
    pub(crate) fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultAction> {
        let index = self.faults.iter().position(|f| f.matches(method, path))?;
        let rule = self.faults.get_mut(index)?;
        rule.times -= 1;
        let action = match rule.kind.clone().respond(rule.retry_after) {
            FaultAction::Respond(response) if rule.after_handling => FaultAction::Replace(response),
            action => action,
        };
        if rule.times == 0 {
            self.faults.remove(index);
        }
        Some(action)
    }

    /// Sets or removes the rate limit (and starts a fresh window).
    pub(crate) fn set_rate_limit(&mut self, limit: Option<RateLimit>) {
        self.rate_limit = limit;
        self.window = None;
    }

    /// Counts a request; `Some(retry_after_secs)` when it is over the limit.
    pub(crate) fn over_limit(&mut self, now: Instant) -> Option<u64> {
        let limit = self.rate_limit?;
        let (start, count) = match self.window {
            Some((start, count)) if now.duration_since(start) < limit.window => (start, count),
            _ => (now, 0),
        };
        if count >= limit.max_requests {
            self.window = Some((start, count));
            return Some(limit.retry_after_secs);
        }
        self.window = Some((start, count + 1));
        None
    }

    /// Logs a request as received, forgetting the oldest beyond [`REQUEST_LOG_CAPACITY`];
    /// returns its sequence number.
    pub(crate) fn record(&mut self, request: RecordedRequest) -> u64 {
        let seq = self.next_request;
        self.next_request += 1;
        if self.requests.len() >= REQUEST_LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back((seq, request));
        seq
    }

    /// Sets the answered status of a logged request (if it was not cleared meanwhile).
    pub(crate) fn answered(&mut self, seq: u64, status: u16) {
        if let Ok(i) = self.requests.binary_search_by_key(&seq, |(s, _)| *s)
            && let Some((_, request)) = self.requests.get_mut(i)
        {
            request.status = status;
        }
    }

    /// A copy of the request log, oldest first.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Empties the request log.
    pub(crate) fn clear_requests(&mut self) {
        self.requests.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_log_keeps_the_newest_requests() {
        let mut control = Control::default();
        let request = |path: &str| RecordedRequest {
            method: "GET".to_owned(),
            path: path.to_owned(),
            query: None,
            headers: BTreeMap::new(),
            body: String::new(),
            status: 0,
        };
        for i in 0..REQUEST_LOG_CAPACITY + 5 {
            let seq = control.record(request(&format!("/{i}")));
            control.answered(seq, 200);
        }
        let log = control.requests();
        assert_eq!(log.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(log[0].path, "/5");
        assert!(log.iter().all(|r| r.status == 200));
    }

    #[test]
    fn rules_are_consumed_in_order_and_counted() {
        let mut control = Control::default();
        control.inject(Fault::status(503).times(2).on_path("/logs/"));
        control.inject(Fault::status(500));
        control.inject(Fault::status(404).times(0));
        assert!(matches!(
            control.take_fault("GET", "/api/v1/deployments/"),
            Some(FaultAction::Respond(r)) if r.status() == 500
        ));
        for _ in 0..2 {
            assert!(matches!(
                control.take_fault("GET", "/api/v1/deployments/1/logs/"),
                Some(FaultAction::Respond(r)) if r.status() == 503
            ));
        }
        assert!(
            control
                .take_fault("GET", "/api/v1/deployments/1/logs/")
                .is_none()
        );
    }

    #[test]
    fn method_filter_is_case_insensitive() {
        let mut control = Control::default();
        control.inject(Fault::empty(502).on_method("post"));
        assert!(control.take_fault("GET", "/x/").is_none());
        assert!(control.take_fault("POST", "/x/").is_some());
    }

    #[test]
    fn rate_limit_window_counts_and_resets() {
        let mut control = Control::default();
        control.set_rate_limit(Some(RateLimit::new(2, Duration::from_secs(60), 7)));
        let t0 = Instant::now();
        assert_eq!(control.over_limit(t0), None);
        assert_eq!(control.over_limit(t0), None);
        assert_eq!(control.over_limit(t0), Some(7));
        assert_eq!(control.over_limit(t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn debug_hides_credentials() {
        let request = RecordedRequest {
            method: "GET".into(),
            path: "/api/v1/status/".into(),
            query: None,
            headers: [("authorization".to_owned(), "Bearer sekrit".to_owned())].into(),
            body: String::new(),
            status: 200,
        };
        assert!(!format!("{request:?}").contains("sekrit"));
        assert_eq!(request.header("Authorization"), Some("Bearer sekrit"));
    }
}
