//! Turning an HTTP answer into data or an [`Error`]: the success and error envelopes, the
//! mapping of statuses and API codes to [`ErrorKind`]s, and plain-words messages.
//!
//! An error's [`Error::message`] is this client's own words; what the server wrote is kept
//! apart as untrusted data: an envelope's `message`, a body that is not an envelope and a
//! redirect's target as [`Error::upstream_text`], an envelope's per-field `details` as
//! [`Error::details`]. Both are passed through [`redact`], so a server that echoes the API
//! token cannot leak it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind};
use crate::types::Pagination;

/// How many characters of a non-envelope body an error message quotes.
const SNIPPET_CHARS: usize = 300;

/// What the client asked, for messages and for the 404-on-an-extension rule.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<'a> {
    /// `GET`, `POST`, ...
    pub(crate) method: &'a str,
    /// The path template, e.g. `deployments/{id}/scale/`.
    pub(crate) template: &'a str,
    /// An extension endpoint: a 404 that is not a `RESOURCE_NOT_FOUND` envelope means the
    /// server does not implement it.
    pub(crate) extension: bool,
}

/// What the server answered to one attempt.
#[derive(Debug)]
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) location: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// The payload of a success envelope.
#[derive(Debug)]
pub(crate) struct Answer<T> {
    pub(crate) data: T,
    pub(crate) pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct SuccessEnvelope<T> {
    #[serde(default)]
    success: Option<bool>,
    data: T,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ApiError,
}

#[derive(Deserialize)]
struct ApiError {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// Decodes an answer: a 2xx success envelope becomes its `data`, anything else an [`Error`].
pub(crate) fn decode<T: DeserializeOwned>(
    endpoint: Endpoint<'_>,
    answer: &RawAnswer,
    token: Option<&str>,
) -> Result<Answer<T>, Error> {
    if !(200..300).contains(&answer.status) {
        return Err(error_from_answer(endpoint, answer, token));
    }
    // Text checked as UTF-8 in one pass reads faster than bytes checked string by string.
    let envelope = match std::str::from_utf8(&answer.body) {
        Ok(text) => serde_json::from_str::<SuccessEnvelope<T>>(text),
        Err(_) => serde_json::from_slice::<SuccessEnvelope<T>>(&answer.body),
    };
    match envelope {
        Ok(envelope) if envelope.success != Some(false) => Ok(Answer {
            data: envelope.data,
            pagination: envelope.pagination,
        }),
        Ok(_) => Err(error_from_answer(endpoint, answer, token)),
        Err(json) => match serde_json::from_slice::<ErrorEnvelope>(&answer.body) {
            // A 2xx that still carries an error envelope: believe the envelope.
            Ok(_) => Err(error_from_answer(endpoint, answer, token)),
            Err(_) => Err(Error::new(
                ErrorKind::Decode,
                format!(
                    "could not decode the WebOps answer to {} {} ({}): {}",
                    endpoint.method,
                    endpoint.template,
                    answer.status,
                    describe_json_error(&json),
                ),
            )
            .with_status(answer.status)),
        },
    }
}

/// The [`Error`] for an answer that is not a success: from the error envelope when there is
/// one, else from the HTTP status with the body text quoted.
pub(crate) fn error_from_answer(
    endpoint: Endpoint<'_>,
    answer: &RawAnswer,
    token: Option<&str>,
) -> Error {
    let status = answer.status;
    let envelope = serde_json::from_slice::<ErrorEnvelope>(&answer.body).ok();
    let (kind, code, detail, details) = match envelope {
        Some(ErrorEnvelope { error }) => {
            let kind = if endpoint.extension && status == 404 {
                // Only the API's own "no such deployment" is a real 404 on an extension.
                if error.code == "RESOURCE_NOT_FOUND" {
                    ErrorKind::NotFound
                } else {
                    ErrorKind::Unsupported
                }
            } else {
                kind_of_code(&error.code).unwrap_or_else(|| kind_of_status(status, endpoint))
            };
            let details = error
                .details
                .map(|d| details_of(d, token))
                .unwrap_or_default();
            (
                kind,
                Some(redact(&error.code, token)),
                collapse(&redact(&error.message, token), SNIPPET_CHARS * 2),
                details,
            )
        }
        None => (
            kind_of_status(status, endpoint),
            None,
            if answer.body.iter().all(u8::is_ascii_whitespace) {
                String::new()
            } else {
                body_snippet(&answer.body, token)
            },
            BTreeMap::new(),
        ),
    };
    let message = describe(kind, endpoint, answer);
    let quoted = quoted_text(answer, &detail, token);
    let mut error = Error::new(kind, message)
        .with_status(status)
        .with_details(details);
    if !quoted.is_empty() {
        error = error.with_upstream_text(quoted);
    }
    if let Some(code) = code {
        error = error.with_code(code);
    }
    if let Some(wait) = answer.retry_after {
        error = error.with_retry_after(wait);
    }
    error
}

/// The kind an API error code names, if it is one of the contract's.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        "VALIDATION_ERROR" => ErrorKind::Validation,
        "AUTHENTICATION_REQUIRED" => ErrorKind::Unauthorized,
        "PERMISSION_DENIED" => ErrorKind::Forbidden,
        "RESOURCE_NOT_FOUND" => ErrorKind::NotFound,
        "CONFLICT" => ErrorKind::Conflict,
        "DEPLOYMENT_FAILED" => ErrorKind::DeploymentFailed,
        "RATE_LIMIT_EXCEEDED" => ErrorKind::RateLimited,
        "INTERNAL_ERROR" => ErrorKind::Server,
        "SERVICE_UNAVAILABLE" => ErrorKind::Unavailable,
        _ => return None,
    })
}

/// The kind an HTTP status means on its own.
pub(crate) fn kind_of_status(status: u16, endpoint: Endpoint<'_>) -> ErrorKind {
    match status {
        400 => ErrorKind::Validation,
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 if endpoint.extension => ErrorKind::Unsupported,
        404 => ErrorKind::NotFound,
        405 => ErrorKind::Unsupported,
        409 => ErrorKind::Conflict,
        422 => ErrorKind::DeploymentFailed,
        429 => ErrorKind::RateLimited,
        502..=504 => ErrorKind::Unavailable,
        _ => ErrorKind::Server,
    }
}

/// What the server wrote in an error answer besides its per-field `details`, one untrusted
/// text: its message (or body) and where it redirected to; at most [`SNIPPET_CHARS`] × 2
/// characters.
fn quoted_text(answer: &RawAnswer, detail: &str, token: Option<&str>) -> String {
    let mut out = detail.to_owned();
    if (300..400).contains(&answer.status)
        && let Some(location) = &answer.location
    {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str("redirected to ");
        out.push_str(&redact(location, token));
    }
    collapse(&out, SNIPPET_CHARS * 2)
}

/// The plain-words message of an error answer: this client's words only (what the server
/// wrote is [`quoted_text`]).
fn describe(kind: ErrorKind, endpoint: Endpoint<'_>, answer: &RawAnswer) -> String {
    let status = answer.status;
    let wait = answer
        .retry_after
        .map(|d| format!("retry after {} s", ceil_secs(d)));
    let mut message = match kind {
        ErrorKind::Unauthorized => format!("WebOps rejected the API token ({status})"),
        ErrorKind::Forbidden => format!(
            "WebOps does not allow this API token to call {} {} ({status})",
            endpoint.method, endpoint.template
        ),
        ErrorKind::NotFound => format!("WebOps has no such resource ({status})"),
        ErrorKind::Validation => format!("WebOps rejected the request as invalid ({status})"),
        ErrorKind::Conflict => format!("WebOps refused the request as conflicting ({status})"),
        ErrorKind::DeploymentFailed => format!("the WebOps deployment failed ({status})"),
        ErrorKind::RateLimited => match &wait {
            Some(wait) => format!("WebOps rate limit reached; {wait}"),
            None => format!("WebOps rate limit reached ({status})"),
        },
        ErrorKind::Unavailable => format!("WebOps is temporarily unavailable ({status})"),
        ErrorKind::Unsupported => {
            return format!(
                "this WebOps server does not support {} {} ({status})",
                endpoint.method, endpoint.template
            );
        }
        _ if (300..400).contains(&status) => format!(
            "WebOps redirected {} {} ({status}); check the API URL",
            endpoint.method, endpoint.template
        ),
        _ if (500..600).contains(&status) => {
            format!("WebOps failed with an internal error ({status})")
        }
        _ => format!(
            "WebOps answered {} {} with unexpected status {status}",
            endpoint.method, endpoint.template
        ),
    };
    if kind == ErrorKind::Unavailable
        && let Some(wait) = wait
    {
        message.push_str("; ");
        message.push_str(&wait);
    }
    message
}

/// Whole seconds, rounded up, for "retry after N s".
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `details` of an error envelope as field → messages, whatever shape the server used.
fn details_of(value: serde_json::Value, token: Option<&str>) -> BTreeMap<String, Vec<String>> {
    use serde_json::Value;
    let text = |v: Value| -> String {
        match v {
            Value::String(s) => redact(&s, token),
            other => redact(&other.to_string(), token),
        }
    };
    let Value::Object(fields) = value else {
        return BTreeMap::new();
    };
    fields
        .into_iter()
        .map(|(field, problems)| {
            let problems = match problems {
                Value::Array(items) => items.into_iter().map(text).collect(),
                other => vec![text(other)],
            };
            (redact(&field, token), problems)
        })
        .collect()
}

/// Up to [`SNIPPET_CHARS`] characters of a body, whitespace collapsed, token removed.
pub(crate) fn body_snippet(body: &[u8], token: Option<&str>) -> String {
    let text = String::from_utf8_lossy(body);
    let snippet = collapse(&redact(&text, token), SNIPPET_CHARS);
    if snippet.is_empty() {
        "empty body".to_owned()
    } else {
        snippet
    }
}

/// `text` with runs of whitespace made one space, trimmed, cut to `max` characters.
fn collapse(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= max {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// What a whole secret is replaced with wherever the workspace hides one: in `Debug` output,
/// in quoted server text, and in the tool output and audit records of `webops-mcp-core`.
/// (A masked value that tells its length is a different rendering, of core's own.)
pub const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of the token replaced by [`REDACTED`].
pub(crate) fn redact(text: &str, token: Option<&str>) -> String {
    match token {
        Some(token) if !token.is_empty() && text.contains(token) => text.replace(token, REDACTED),
        _ => text.to_owned(),
    }
}

/// serde_json's description of a decoding failure, without the offending value (a value in
/// the wrong place could be a secret, e.g. an env var, and is the server's words).
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    for prefix in ["unknown variant ", "unknown field "] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some(at) = rest.find(", expected")
        {
            return format!("{prefix}(value hidden){}", &rest[at..]);
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix)
            && let Some(at) = rest.rfind(", expected")
            && let Some(quote) = rest[..at].find(['`', '"'])
        {
            let what = rest[..quote].trim_end();
            return format!("{prefix}{what} (value hidden){}", &rest[at..]);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: Endpoint<'static> = Endpoint {
        method: "GET",
        template: "deployments/{id}/",
        extension: false,
    };
    const SCALE: Endpoint<'static> = Endpoint {
        method: "POST",
        template: "deployments/{id}/scale/",
        extension: true,
    };

    fn answer(status: u16, body: &str) -> RawAnswer {
        RawAnswer {
            status,
            retry_after: None,
            location: None,
            body: body.as_bytes().to_vec(),
        }
    }

    fn envelope(code: &str, message: &str) -> String {
        serde_json::json!({"success": false, "error": {"code": code, "message": message}})
            .to_string()
    }

    fn err(endpoint: Endpoint<'_>, a: &RawAnswer) -> Error {
        match decode::<serde_json::Value>(endpoint, a, Some("s3cr3t-token")) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn success_envelope_yields_data_and_pagination() {
        let body = r#"{"success":true,"data":[1,2],"message":"ok","extra":1,
            "pagination":{"page":2,"per_page":2,"total":6,"total_pages":3}}"#;
        let a = decode::<Vec<i32>>(GET, &answer(200, body), None).unwrap();
        assert_eq!(a.data, vec![1, 2]);
        let p = a.pagination.unwrap();
        assert_eq!((p.page, p.per_page, p.total, p.total_pages), (2, 2, 6, 3));
        let a = decode::<i32>(GET, &answer(201, r#"{"data":7}"#), None).unwrap();
        assert_eq!(a.data, 7);
        assert!(a.pagination.is_none());
    }

    #[test]
    fn statuses_map_to_kinds() {
        let cases = [
            (400, ErrorKind::Validation),
            (401, ErrorKind::Unauthorized),
            (403, ErrorKind::Forbidden),
            (404, ErrorKind::NotFound),
            (405, ErrorKind::Unsupported),
            (409, ErrorKind::Conflict),
            (422, ErrorKind::DeploymentFailed),
            (429, ErrorKind::RateLimited),
            (500, ErrorKind::Server),
            (501, ErrorKind::Server),
            (502, ErrorKind::Unavailable),
            (503, ErrorKind::Unavailable),
            (504, ErrorKind::Unavailable),
            (418, ErrorKind::Server),
            (302, ErrorKind::Server),
        ];
        for (status, kind) in cases {
            let e = err(GET, &answer(status, "<html><body>oops</body></html>"));
            assert_eq!(e.kind(), kind, "{status}");
            assert_eq!(e.status(), Some(status));
            assert_eq!(e.code(), None);
            // The body is the server's words: quoted apart, never in the message.
            assert!(!e.message().contains("oops"), "{status}: {}", e.message());
            let quoted = e.upstream_text().unwrap_or_default();
            assert!(quoted.contains("oops"), "{status}: {quoted}");
        }
    }

    #[test]
    fn codes_map_to_kinds() {
        let cases = [
            ("VALIDATION_ERROR", 400, ErrorKind::Validation),
            ("AUTHENTICATION_REQUIRED", 401, ErrorKind::Unauthorized),
            ("PERMISSION_DENIED", 403, ErrorKind::Forbidden),
            ("RESOURCE_NOT_FOUND", 404, ErrorKind::NotFound),
            ("CONFLICT", 409, ErrorKind::Conflict),
            ("DEPLOYMENT_FAILED", 422, ErrorKind::DeploymentFailed),
            ("RATE_LIMIT_EXCEEDED", 429, ErrorKind::RateLimited),
            ("INTERNAL_ERROR", 500, ErrorKind::Server),
            ("SERVICE_UNAVAILABLE", 503, ErrorKind::Unavailable),
            // an unknown code falls back on the status
            ("TEAPOT", 409, ErrorKind::Conflict),
        ];
        for (code, status, kind) in cases {
            let e = err(GET, &answer(status, &envelope(code, "what happened")));
            assert_eq!(e.kind(), kind, "{code}");
            assert_eq!(e.code(), Some(code));
            assert!(!e.message().contains("what happened"), "{}", e.message());
            assert_eq!(e.upstream_text(), Some("what happened"));
        }
    }

    #[test]
    fn messages_are_plain_words() {
        let e = err(
            GET,
            &answer(401, &envelope("AUTHENTICATION_REQUIRED", "bad token")),
        );
        assert_eq!(e.message(), "WebOps rejected the API token (401)");
        assert_eq!(e.upstream_text(), Some("bad token"));
        let mut limited = answer(429, &envelope("RATE_LIMIT_EXCEEDED", ""));
        limited.retry_after = Some(Duration::from_secs(12));
        let e = err(GET, &limited);
        assert_eq!(e.message(), "WebOps rate limit reached; retry after 12 s");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
        let mut busy = answer(503, "");
        busy.retry_after = Some(Duration::from_millis(1500));
        let e = err(GET, &busy);
        assert_eq!(
            e.message(),
            "WebOps is temporarily unavailable (503); retry after 2 s"
        );
        assert_eq!(e.upstream_text(), None);
        let mut moved = answer(301, "");
        moved.location = Some("https://example.test/api/v1/".into());
        let e = err(GET, &moved);
        assert!(e.message().contains("redirected"), "{}", e.message());
        assert!(!e.message().contains("example.test"), "{}", e.message());
        assert_eq!(
            e.upstream_text(),
            Some("redirected to https://example.test/api/v1/")
        );
    }

    #[test]
    fn validation_details_are_kept_and_shown() {
        let body = serde_json::json!({"success": false, "error": {
            "code": "VALIDATION_ERROR", "message": "Invalid input",
            "details": {"name": ["is required"], "per_page": "must be 1..100", "n": 3}
        }})
        .to_string();
        let e = err(GET, &answer(400, &body));
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(e.details()["name"], vec!["is required".to_owned()]);
        assert_eq!(e.details()["per_page"], vec!["must be 1..100".to_owned()]);
        assert_eq!(e.details()["n"], vec!["3".to_owned()]);
        assert!(!e.message().contains("is required"), "{}", e.message());
        assert_eq!(e.upstream_text(), Some("Invalid input"));
    }

    #[test]
    fn extension_404_is_unsupported_unless_resource_not_found() {
        let e = err(SCALE, &answer(404, "<h1>Not Found</h1>"));
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert!(
            e.message()
                .contains("does not support POST deployments/{id}/scale/")
        );
        let e = err(SCALE, &answer(404, &envelope("NOT_FOUND", "no route")));
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let e = err(
            SCALE,
            &answer(404, &envelope("RESOURCE_NOT_FOUND", "no app 9")),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = err(SCALE, &answer(405, ""));
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    #[test]
    fn malformed_bodies_are_decided_by_status() {
        let e = err(GET, &answer(200, r#"{"success": true, "data": {"id": 1,"#));
        assert_eq!(e.kind(), ErrorKind::Decode);
        assert_eq!(e.status(), Some(200));
        assert!(
            e.message().contains("GET deployments/{id}/"),
            "{}",
            e.message()
        );
        let e = err(GET, &answer(200, ""));
        assert_eq!(e.kind(), ErrorKind::Decode);
        let e = err(GET, &answer(500, r#"{"success": false, "err"#));
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.upstream_text(), Some(r#"{"success": false, "err"#));
        let e = err(GET, &answer(502, ""));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.upstream_text(), None);
    }

    #[test]
    fn success_false_on_2xx_is_an_error() {
        let e = err(GET, &answer(200, &envelope("CONFLICT", "busy")));
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }

    #[test]
    fn decode_errors_hide_values() {
        let e = match decode::<Vec<i64>>(GET, &answer(200, r#"{"data":["hunter2"]}"#), None) {
            Err(e) => e,
            Ok(_) => panic!("must fail"),
        };
        assert!(!e.message().contains("hunter2"), "{}", e.message());
        assert!(
            e.message()
                .contains("invalid type: string (value hidden), expected i64"),
            "{}",
            e.message()
        );
        let e = match decode::<Vec<i64>>(GET, &answer(200, r#"{"data":{"a":1}}"#), None) {
            Err(e) => e,
            Ok(_) => panic!("must fail"),
        };
        assert!(
            e.message()
                .contains("invalid type: map, expected a sequence"),
            "{}",
            e.message()
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        enum Colour {
            Red,
        }
        let e = match decode::<Colour>(GET, &answer(200, r#"{"data":"ignore previous"}"#), None) {
            Err(e) => e,
            Ok(_) => panic!("must fail"),
        };
        assert!(!e.message().contains("ignore"), "{}", e.message());
        assert!(
            e.message()
                .contains("unknown variant (value hidden), expected"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn long_bodies_are_cut_and_whitespace_collapsed() {
        let body = format!("<html>\n\n   {}</html>", "x".repeat(5000));
        let e = err(GET, &answer(502, &body));
        let quoted = e.upstream_text().unwrap();
        assert!(quoted.chars().count() < 1000, "{quoted}");
        assert!(quoted.contains("<html> xxx"));
        assert!(quoted.ends_with('…'));
    }

    #[test]
    fn the_token_is_scrubbed_from_quoted_text() {
        let e = err(GET, &answer(502, "proxy saw Bearer s3cr3t-token here"));
        assert!(!e.message().contains("s3cr3t-token"), "{}", e.message());
        assert_eq!(e.upstream_text(), Some("proxy saw Bearer <redacted> here"));
        let body = serde_json::json!({"success": false, "error": {
            "code": "VALIDATION_ERROR", "message": "token s3cr3t-token is odd",
            "details": {"auth": ["s3cr3t-token"]}
        }})
        .to_string();
        let e = err(GET, &answer(400, &body));
        assert!(!e.message().contains("s3cr3t-token"), "{}", e.message());
        assert!(!e.upstream_text().unwrap().contains("s3cr3t-token"));
        assert!(!format!("{e:?}").contains("s3cr3t-token"));
    }

    #[test]
    fn collapse_counts_characters_not_bytes() {
        assert_eq!(collapse("  a \n\t b  ", 10), "a b");
        assert_eq!(collapse("ééééé", 3), "ééé…");
        assert_eq!(collapse("", 3), "");
    }
}
