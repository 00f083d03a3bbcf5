//! The one error type of the client, with a [`ErrorKind`] an agent-facing layer can branch on.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// 401: the API token is missing, invalid or expired.
    Unauthorized,
    /// 403: the token may not do this.
    Forbidden,
    /// 404 on a resource: no such deployment or database.
    NotFound,
    /// 409: name taken, or the action is invalid in the current state.
    Conflict,
    /// 400: invalid input; [`Error::details`] says which field.
    Validation,
    /// 422: the deployment process failed.
    DeploymentFailed,
    /// 429: too many requests; [`Error::retry_after`] says when to try again.
    RateLimited,
    /// 502/503/504: the API is temporarily unavailable.
    Unavailable,
    /// The request took longer than the configured timeout.
    Timeout,
    /// The API could not be reached (refused, reset, DNS).
    Connection,
    /// This WebOps server does not support the operation (404/405 on an extension endpoint,
    /// or a capability its flavour lacks).
    Unsupported,
    /// The answer could not be decoded.
    Decode,
    /// Any other server error (500 and unexpected statuses).
    Server,
    /// The client was configured wrongly (bad base URL, bad header value).
    Config,
}

impl ErrorKind {
    /// A stable snake_case name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Validation => "validation",
            ErrorKind::DeploymentFailed => "deployment_failed",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connection => "connection",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Decode => "decode",
            ErrorKind::Server => "server",
            ErrorKind::Config => "config",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed API call. `Display` is a plain-words message that never contains the API token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    code: Option<String>,
    details: BTreeMap<String, Vec<String>>,
    retry_after: Option<Duration>,
    /// The request may have reached WebOps although no answer came back.
    unanswered: bool,
    /// Text quoted from the server's answer (bounded, secrets removed): untrusted data.
    upstream_text: Option<String>,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            status: None,
            code: None,
            details: BTreeMap::new(),
            retry_after: None,
            unanswered: false,
            upstream_text: None,
        }
    }

    /// Marks a failure after the request may have been sent: WebOps may have acted on it.
    pub(crate) fn unanswered(mut self) -> Self {
        self.unanswered = true;
        self
    }

    /// Whether WebOps may have acted on the request although this error is all that came
    /// back: the connection failed after sending, or a proxy answered 502 or 504.
    pub(crate) fn may_have_acted(&self) -> bool {
        self.unanswered || matches!(self.status, Some(502 | 504))
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the API's error code (`VALIDATION_ERROR`, ...).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the per-field validation messages.
    pub fn with_details(mut self, details: BTreeMap<String, Vec<String>>) -> Self {
        self.details = details;
        self
    }

    /// Sets how long the server asked to wait.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// Attaches text quoted from the server's answer. It is untrusted data: whoever shows it
    /// to a model must fence it as such. The caller bounds it and removes secrets first.
    pub fn with_upstream_text(mut self, text: impl Into<String>) -> Self {
        self.upstream_text = Some(text.into());
        self
    }

    /// Replaces the message (used to add context such as the number of attempts).
    pub(crate) fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The plain-words message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The API's error code, when the body was an error envelope.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Field name → messages, for [`ErrorKind::Validation`].
    pub fn details(&self) -> &BTreeMap<String, Vec<String>> {
        &self.details
    }

    /// How long the server asked to wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Text quoted from the server's answer, kept out of [`Error::message`] because it is
    /// untrusted: bounded and with the client's secrets removed, but still the server's words.
    pub fn upstream_text(&self) -> Option<&str> {
        self.upstream_text.as_deref()
    }
}

/// Result of a client call.
pub type Result<T, E = Error> = std::result::Result<T, E>;
