//! Turning the panel's many kinds of failure answer into an [`Error`]: status and body to
//! [`ErrorKind`], the panel's own words (its `error` text, a traceback's first line, an HTML
//! page's title) kept apart as untrusted text, quoted without any secret the transport knows.

use std::time::Duration;

use super::{Raw, Request, Transport};
use crate::decode::REDACTED;
use crate::error::{Error, ErrorKind};

/// How many characters of the panel's own text an error quotes.
const QUOTE_CHARS: usize = 300;

impl Transport {
    /// The [`Error`] for a non-2xx answer, quoting the panel's own words (its `error` text,
    /// the first line of a traceback, or an HTML page's title) as untrusted text.
    pub(crate) fn error_of(&self, request: &Request, raw: &Raw) -> Error {
        if raw.status == 429 {
            return rate_limited(raw);
        }
        let what = format!("{} {}", request.method, request.template);
        let (said, handled) = panel_words(raw);
        let (kind, message) = classify(raw, &what, said.as_deref(), handled);
        let mut error = Error::new(kind, message).with_status(raw.status);
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
                out = out.replace(&secret, REDACTED);
            }
        }
        if out.chars().count() > QUOTE_CHARS {
            out = out.chars().take(QUOTE_CHARS).collect::<String>() + "…";
        }
        out
    }
}

/// What the panel said in a failure answer (its `error` text, else `message`, else the first
/// words of a non-JSON body), and whether the panel handled the failure itself (an `error`
/// string in JSON).
fn panel_words(raw: &Raw) -> (Option<String>, bool) {
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
    (said, handled)
}

/// The panel's rate limit, with when to retry (60 s when it does not say).
fn rate_limited(raw: &Raw) -> Error {
    let secs = raw.retry_after.map_or(60, |d| d.as_secs().max(1));
    Error::new(
        ErrorKind::RateLimited,
        format!("the WebOps panel is rate limiting this server's address, retry in {secs} s"),
    )
    .with_status(429)
    .with_retry_after(Duration::from_secs(secs))
}

/// The kind and message of a failure answer other than 429 to `what` (`METHOD template`).
fn classify(raw: &Raw, what: &str, said: Option<&str>, handled: bool) -> (ErrorKind, String) {
    let status = raw.status;
    match status {
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
        400 if said.is_some_and(|s| s.contains("already exists")) => (
            ErrorKind::Conflict,
            format!("the WebOps panel refused {what}: the name is taken"),
        ),
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
        502..=504 => (
            ErrorKind::Unavailable,
            format!("the WebOps panel is unavailable (HTTP {status} to {what})"),
        ),
        _ => (
            ErrorKind::Server,
            format!("the WebOps panel failed on {what} (HTTP {status})"),
        ),
    }
}

pub(super) fn kind_of_status(status: u16) -> ErrorKind {
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

pub(super) fn looks_like_csrf(raw: &Raw) -> bool {
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
    use std::time::Duration;

    use reqwest::Url;
    use reqwest::header::HeaderValue;

    use super::*;
    use crate::panel::budget::RequestBudget;
    use crate::panel::transport::TransportConfig;
    use crate::retry::RetryPolicy;

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
            tracer: None,
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
        assert!(!quoted.contains("pa55-w0rd-secret") && quoted.contains(REDACTED));
        assert!(quoted.chars().count() <= QUOTE_CHARS + 1);
    }
}
