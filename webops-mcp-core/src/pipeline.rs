//! The one call pipeline every tool call goes through, whatever the transport:
//!
//! lookup → read-only filter → permission check → per-user rate limit → concurrency slot →
//! JSON Schema validation → typed deserialization → call (a read stops on cancellation, a
//! change runs to its end) → output → exactly one audit record → metrics.
//!
//! A tool never checks permissions or validates JSON itself: this module does.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use webops_client::WebOpsApi;

use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::gates::{Gates, cancelled};
use crate::identity::{Identity, Permission};
use crate::metrics::Metrics;
use crate::redact::mask_secrets_in_text;
use crate::registry::{MAX_NAME_LEN, Registry, ToolDefinition};
use crate::tool::{Access, ProgressSink, ToolContext, ToolError, ToolErrorKind};

/// One call, as the transports hand it to [`Pipeline::call`].
pub(crate) struct CallRequest {
    /// The tool name as requested (possibly unknown).
    pub(crate) name: String,
    /// The raw arguments; `None` means `{}`.
    pub(crate) arguments: Option<Value>,
    /// The caller.
    pub(crate) identity: Identity,
    /// Where progress goes, when the caller asked for it.
    pub(crate) progress: Option<Arc<dyn ProgressSink>>,
    /// Fires when the caller cancels.
    pub(crate) cancel: CancellationToken,
}

/// A successful call.
#[derive(Debug)]
pub(crate) struct CallOutput {
    /// The readable text block.
    pub(crate) text: String,
    /// `structuredContent`, conforming to the output schema.
    pub(crate) structured: Value,
}

/// A failed call.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No such tool (MCP: JSON-RPC -32602); the message names it and lists the available ones.
    UnknownTool(String),
    /// The tool, or a gate before it, failed (MCP: a result with `isError: true`).
    Tool(ToolError),
}

impl CallError {
    fn outcome(&self) -> Outcome {
        match self {
            CallError::UnknownTool(_) => Outcome::UnknownTool,
            CallError::Tool(e) => Outcome::of_error(e.kind()),
        }
    }

    fn kind_and_message(&self) -> (&str, &str) {
        match self {
            CallError::UnknownTool(message) => ("unknown_tool", message),
            CallError::Tool(e) => (e.kind().as_str(), e.message()),
        }
    }
}

impl From<ToolError> for CallError {
    fn from(error: ToolError) -> Self {
        CallError::Tool(error)
    }
}

/// The registry plus everything a call passes through.
pub(crate) struct Pipeline {
    pub(crate) registry: Registry,
    pub(crate) gates: Gates,
    pub(crate) audit: Option<AuditLog>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) api: Arc<dyn WebOpsApi>,
    pub(crate) read_only: bool,
}

impl Pipeline {
    /// Runs one call through every stage; writes exactly one audit record and counts it in
    /// metrics, even when the returned future is dropped before it completes.
    pub(crate) async fn call(&self, request: CallRequest) -> Result<CallOutput, CallError> {
        let CallRequest {
            name,
            arguments,
            identity,
            progress,
            cancel,
        } = request;
        let arguments = match arguments {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(arguments) => arguments,
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut record = CallRecord {
            pipeline: self,
            request_id: &request_id,
            identity: &identity,
            tool: &name,
            arguments: &arguments,
            started: Instant::now(),
            done: false,
        };
        // Everything logged during the call (client retries included) carries its request id.
        let span = tracing::debug_span!(
            "tool_call",
            request_id = %request_id,
            user_id = %identity.user_id,
        );
        let result = self
            .run(&name, &arguments, &identity, &request_id, progress, &cancel)
            .instrument(span)
            .await;
        record.finish(&result);
        result
    }

    async fn run(
        &self,
        name: &str,
        arguments: &Value,
        identity: &Identity,
        request_id: &str,
        progress: Option<Arc<dyn ProgressSink>>,
        cancel: &CancellationToken,
    ) -> Result<CallOutput, CallError> {
        let Some(entry) = self.registry.entry(name) else {
            return Err(CallError::UnknownTool(self.unknown_tool(name, identity)));
        };
        let definition = &entry.definition;
        if self.read_only && definition.access != Access::Read {
            return Err(self.read_only_refusal(definition, identity).into());
        }
        let missing = identity.permissions.missing(definition.permissions);
        if !missing.is_empty() {
            return Err(permission_denied(definition, identity, &missing).into());
        }
        self.gates.check_rate(&identity.user_id)?;
        let _permit = self.gates.acquire(cancel).await?;
        let _in_flight = self.metrics.in_flight();
        entry.input.check(definition.name, arguments)?;
        // A caller that already gave up gets nothing started on its behalf.
        if cancel.is_cancelled() {
            return Err(cancelled().into());
        }

        let mut ctx = ToolContext::new(identity.clone(), Arc::clone(&self.api), request_id)
            .with_cancellation(cancel.clone());
        if let Some(progress) = progress {
            ctx = ctx.with_progress(progress);
        }
        let call = AssertUnwindSafe(entry.tool.call(&ctx, arguments)).catch_unwind();
        // A read is dropped on cancellation: nothing is lost. A change is not: stopping it
        // halfway would leave the platform in a state nobody reported, so it runs to its end
        // (its WebOps requests are bounded by the client's timeout, and a tool that waits
        // watches `ctx.cancellation()` itself) and its real outcome is returned and audited.
        let result = if definition.access == Access::Read {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(cancelled().into()),
                result = call => result,
            }
        } else {
            call.await
        };
        let (text, structured) = match result {
            Ok(result) => result?,
            Err(_panic) => {
                tracing::error!(tool = definition.name, request_id, "tool panicked");
                return Err(ToolError::new(
                    ToolErrorKind::Internal,
                    format!(
                        "{} failed unexpectedly (an internal error, logged as request \
                         {request_id}); retrying will probably not help",
                        definition.name
                    ),
                )
                .into());
            }
        };
        #[cfg(debug_assertions)]
        if !entry.output.is_valid(&structured) {
            tracing::error!(
                tool = definition.name,
                "structured output does not conform to the tool's output schema"
            );
        }
        Ok(CallOutput { text, structured })
    }

    fn unknown_tool(&self, name: &str, identity: &Identity) -> String {
        let shown: String = name.chars().take(MAX_NAME_LEN).collect();
        let available: Vec<&str> = self
            .registry
            .definitions_for(identity, self.read_only)
            .into_iter()
            .map(|d| d.name)
            .collect();
        let available = if available.is_empty() {
            "none for this caller".to_owned()
        } else {
            available.join(", ")
        };
        format!(
            "unknown tool '{}'; available tools: {available}",
            mask_secrets_in_text(&shown)
        )
    }

    fn read_only_refusal(&self, definition: &ToolDefinition, identity: &Identity) -> ToolError {
        let remaining: Vec<&str> = self
            .registry
            .definitions_for(identity, true)
            .into_iter()
            .map(|d| d.name)
            .collect();
        let remaining = if remaining.is_empty() {
            "none for this caller".to_owned()
        } else {
            remaining.join(", ")
        };
        ToolError::new(
            ToolErrorKind::PermissionDenied,
            format!(
                "{} is disabled: this server is read-only, so only tools that read are \
                 available ({remaining})",
                definition.name
            ),
        )
    }
}

fn permission_denied(
    definition: &ToolDefinition,
    identity: &Identity,
    missing: &[Permission],
) -> ToolError {
    let list = |ps: &[Permission]| ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
    ToolError::new(
        ToolErrorKind::PermissionDenied,
        format!(
            "permission denied: {} requires {}; user '{}' lacks {}. Ask an administrator to \
             grant it, or use a tool this user may call",
            definition.name,
            list(definition.permissions),
            identity.user_id,
            list(missing)
        ),
    )
}

/// Writes the call's audit record and metrics once: on [`CallRecord::finish`], or as
/// cancelled when the call's future is dropped before it got there.
struct CallRecord<'a> {
    pipeline: &'a Pipeline,
    request_id: &'a str,
    identity: &'a Identity,
    tool: &'a str,
    arguments: &'a Value,
    started: Instant,
    done: bool,
}

impl CallRecord<'_> {
    fn finish(&mut self, result: &Result<CallOutput, CallError>) {
        let (outcome, error) = match result {
            Ok(_) => (Outcome::Ok, None),
            Err(e) => (e.outcome(), Some(e.kind_and_message())),
        };
        self.write(outcome, error);
    }

    fn write(&mut self, outcome: Outcome, error: Option<(&str, &str)>) {
        if self.done {
            return;
        }
        self.done = true;
        let duration = self.started.elapsed();
        // A known tool's own name, or the name as requested cut short and masked (an
        // unknown name is untrusted input).
        let tool: Cow<'_, str> = match self.pipeline.registry.definition(self.tool) {
            Some(definition) => Cow::Borrowed(definition.name),
            None => {
                let shown: String = self.tool.chars().take(MAX_NAME_LEN).collect();
                Cow::Owned(mask_secrets_in_text(&shown).into_owned())
            }
        };
        tracing::debug!(
            tool = %tool,
            request_id = self.request_id,
            user_id = %self.identity.user_id,
            outcome = outcome.as_str(),
            duration_ms = duration_ms(duration),
            "tool call"
        );
        if let Some(audit) = &self.pipeline.audit {
            let entry = AuditEntry {
                request_id: self.request_id,
                identity: self.identity,
                tool: &tool,
                arguments: self.arguments,
                outcome,
                error,
                duration,
            };
            if let Err(e) = audit.record(&entry) {
                tracing::error!(
                    error = %e,
                    request_id = self.request_id,
                    "could not write the audit record"
                );
                self.pipeline.metrics.audit_write_failed();
            }
        }
        self.pipeline
            .metrics
            .record_call(self.tool, outcome, duration);
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.write(
                Outcome::Cancelled,
                Some(("cancelled", "the caller went away before the call finished")),
            );
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
