//! The [`Tool`] trait every tool implements, and what a call gets ([`ToolContext`]) and
//! gives back ([`ToolOutput`], [`ToolError`]).
//!
//! A tool declares its name, description, access level, required permissions, typed arguments
//! and typed output. It never checks permissions or validates JSON itself: the registry's one
//! call pipeline does that before `call` runs.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;
use webops_client::WebOpsApi;

use crate::identity::{Identity, Permission};
use crate::plan::Plan;

/// What a tool does to the platform. The MCP annotations (`readOnlyHint`, `destructiveHint`,
/// `idempotentHint`, `openWorldHint`) are derived from it, and `--read-only` keeps only `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Access {
    /// Reads only.
    Read,
    /// Changes state, nothing is lost (deploy, start, stop, scale).
    Write,
    /// Loses something for good (delete).
    Destructive,
}

/// `output` as compact JSON, written once: a tool's `structuredContent` as the pipeline
/// checks it against the answer budget and the HTTP transport writes it out. `tool` names the
/// tool in the error of an output that cannot be serialized.
pub(crate) fn structured_json(
    tool: &str,
    output: &(impl Serialize + ?Sized),
) -> Result<Box<RawValue>, ToolError> {
    serde_json::value::to_raw_value(output).map_err(|e| {
        ToolError::new(
            ToolErrorKind::Internal,
            format!("{tool} produced output that cannot be serialized: {e}"),
        )
    })
}

/// [`structured_json`]'s JSON as a value. JSON serde_json wrote always reads back, so the
/// `Null` fallback is never taken.
pub(crate) fn structured_value(json: &RawValue) -> serde_json::Value {
    serde_json::from_str(json.get()).unwrap_or_default()
}

/// The bytes an answer takes: `text` plus `structured` as compact JSON.
pub(crate) fn answer_bytes(text: &str, structured: &(impl Serialize + ?Sized)) -> usize {
    text.len() + json_len(structured)
}

/// The length of `value` as compact JSON, counted without writing it anywhere.
fn json_len(value: &(impl Serialize + ?Sized)) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Only a failing `Serialize` impl errs; its partial count is as good an answer as any.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The typed output of a tool: serialized as `structuredContent` (its schema is the tool's
/// `outputSchema`, so it must be a struct) and rendered as a concise readable text block.
pub trait ToolOutput: Serialize + JsonSchema + Send + 'static {
    /// The text block a model reads. Untrusted text (log lines) must stay inside the
    /// boundary markers the tool puts around it.
    fn to_text(&self) -> String;

    /// The bytes this output takes in an answer: its text plus its structured content as
    /// JSON (what [`ToolContext::answer_budget`] bounds).
    fn answer_bytes(&self) -> usize {
        answer_bytes(&self.to_text(), self)
    }
}

/// A tool. Adding one = one file in `tools/` plus one registration line.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Arguments; the derived JSON Schema is the tool's `inputSchema` and field doc comments
    /// are the descriptions a model reads. Use `#[serde(deny_unknown_fields)]`.
    type Args: DeserializeOwned + JsonSchema + Send + Sync + 'static;
    /// Output; see [`ToolOutput`].
    type Output: ToolOutput;

    /// Unique name, e.g. `webops_get_status`.
    const NAME: &'static str;
    /// What the tool does, for a model deciding whether to call it.
    const DESCRIPTION: &'static str;
    /// What it does to the platform.
    const ACCESS: Access;
    /// Every permission a caller must hold.
    const PERMISSIONS: &'static [Permission];
    /// A short human title.
    const TITLE: &'static str;

    /// Runs the tool. Arguments are already validated against the schema.
    async fn call(&self, ctx: &ToolContext, args: Self::Args) -> Result<Self::Output, ToolError>;

    /// What `call` would do with `args`, without doing it: it may read WebOps, never change
    /// it. Every Write and Destructive tool implements it; the pipeline answers `dry_run`
    /// with it and shows it to the person asked to confirm. The default says the tool
    /// cannot describe a call.
    async fn plan(&self, ctx: &ToolContext, args: &Self::Args) -> Result<Plan, ToolError> {
        let _ = (ctx, args);
        Err(ToolError::new(
            ToolErrorKind::Unsupported,
            format!(
                "{} cannot describe a call without making it, so it has no dry run and \
                 cannot be confirmed",
                Self::NAME
            ),
        ))
    }
}

/// Receives progress of a long call (e.g. a deploy with `wait: true`).
#[async_trait]
pub trait ProgressSink: Send + Sync {
    /// `progress` grows with every report; `total` when known; `message` says what happens.
    async fn report(&self, progress: f64, total: Option<f64>, message: String);
}

/// Everything a tool call gets besides its arguments.
#[derive(Clone)]
pub struct ToolContext {
    identity: Identity,
    api: Arc<dyn WebOpsApi>,
    progress: Option<Arc<dyn ProgressSink>>,
    cancel: CancellationToken,
    request_id: String,
    answer_budget: usize,
}

impl ToolContext {
    /// A context for one call.
    pub fn new(identity: Identity, api: Arc<dyn WebOpsApi>, request_id: impl Into<String>) -> Self {
        ToolContext {
            identity,
            api,
            progress: None,
            cancel: CancellationToken::new(),
            request_id: request_id.into(),
            answer_budget: crate::config::DEFAULT_ANSWER_BYTES,
        }
    }

    /// Limits the answer to `bytes` (its text plus its structured content as JSON).
    pub fn with_answer_budget(mut self, bytes: usize) -> Self {
        self.answer_budget = bytes;
        self
    }

    /// Sends progress to `sink` (set when the request carried a progress token).
    pub fn with_progress(mut self, sink: Arc<dyn ProgressSink>) -> Self {
        self.progress = Some(sink);
        self
    }

    /// Cancels the call when `cancel` fires.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// The caller.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The WebOps API, called with the server's own credentials.
    pub fn api(&self) -> &dyn WebOpsApi {
        self.api.as_ref()
    }

    /// Reports progress when the caller asked for it; a no-op otherwise.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        if let Some(sink) = &self.progress {
            sink.report(progress, total, message.into()).await;
        }
    }

    /// Fires when the caller cancels the request.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The id of this call, as in the audit record.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The most bytes the answer may carry: its text plus its structured content as JSON
    /// ([`crate::SecurityConfig::max_answer_bytes`]). A tool whose answer can grow pages to
    /// stay under it; the pipeline refuses any answer over it.
    pub fn answer_budget(&self) -> usize {
        self.answer_budget
    }
}

impl fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolContext")
            .field("identity", &self.identity)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// Why a tool call failed, in words a model can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// Arguments do not match the schema or make no sense together.
    InvalidArguments,
    /// The caller lacks a permission.
    PermissionDenied,
    /// The per-user rate limit is exhausted.
    RateLimited,
    /// Too many calls in flight.
    Busy,
    /// No such deployment (or other resource).
    NotFound,
    /// Invalid in the current state, or a name already taken.
    Conflict,
    /// Refused on purpose (e.g. delete without the exact confirmation name).
    Refused,
    /// WebOps rejected the server's own credentials or is rate limiting it.
    Upstream,
    /// WebOps is unreachable or unavailable.
    Unavailable,
    /// WebOps does not support this (an extension endpoint is missing).
    Unsupported,
    /// Took too long.
    Timeout,
    /// The answer would be larger than the server's answer budget.
    TooLarge,
    /// The caller cancelled.
    Cancelled,
    /// A bug or an unexpected answer.
    Internal,
}

impl ToolErrorKind {
    /// A stable snake_case name, for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolErrorKind::InvalidArguments => "invalid_arguments",
            ToolErrorKind::PermissionDenied => "permission_denied",
            ToolErrorKind::RateLimited => "rate_limited",
            ToolErrorKind::Busy => "busy",
            ToolErrorKind::NotFound => "not_found",
            ToolErrorKind::Conflict => "conflict",
            ToolErrorKind::Refused => "refused",
            ToolErrorKind::Upstream => "upstream",
            ToolErrorKind::Unavailable => "unavailable",
            ToolErrorKind::Unsupported => "unsupported",
            ToolErrorKind::Timeout => "timeout",
            ToolErrorKind::TooLarge => "too_large",
            ToolErrorKind::Cancelled => "cancelled",
            ToolErrorKind::Internal => "internal",
        }
    }
}

/// Why a call was refused on purpose: recorded in its audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefusalReason {
    /// The person declined.
    Declined,
    /// The person dismissed the question.
    Cancelled,
    /// The client cannot ask the person, and the policy does not allow the fallback.
    NoElicitation,
    /// The deployment changed since the person saw it.
    StaleConfirmation,
    /// The confirmation is too old.
    Expired,
    /// The confirmation was already used.
    Replayed,
    /// The answer or the confirmation does not check out (a wrong name, a forged state).
    Validation,
}

impl RefusalReason {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Declined => "declined",
            RefusalReason::Cancelled => "cancelled",
            RefusalReason::NoElicitation => "no_elicitation",
            RefusalReason::StaleConfirmation => "stale_confirmation",
            RefusalReason::Expired => "expired",
            RefusalReason::Replayed => "replayed",
            RefusalReason::Validation => "validation",
        }
    }
}

/// A failed tool call: becomes a result with `isError: true` and this message.
///
/// A `webops_client::Error` converts into one (`?` in a tool) with the mapping the built-in
/// tools use: the error kind a model can act on (not found, unavailable, timeout, rate
/// limited with when to retry, ...) and a message with secrets masked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    kind: ToolErrorKind,
    message: String,
    retry_after: Option<Duration>,
    reason: Option<RefusalReason>,
}

impl ToolError {
    /// A new error.
    pub fn new(kind: ToolErrorKind, message: impl Into<String>) -> Self {
        ToolError {
            kind,
            message: message.into(),
            retry_after: None,
            reason: None,
        }
    }

    /// A [`ToolErrorKind::Refused`] error for `reason`.
    pub fn refused(reason: RefusalReason, message: impl Into<String>) -> Self {
        ToolError {
            reason: Some(reason),
            ..Self::new(ToolErrorKind::Refused, message)
        }
    }

    /// Shorthand for [`ToolErrorKind::InvalidArguments`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::InvalidArguments, message)
    }

    /// Says when a retry may succeed.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// The kind.
    pub fn kind(&self) -> ToolErrorKind {
        self.kind
    }

    /// The message a model reads.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// When a retry may succeed.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Why it was refused, for a [`ToolError::refused`] error.
    pub fn reason(&self) -> Option<RefusalReason> {
        self.reason
    }
}
