//! The one call pipeline every tool call goes through, whatever the transport:
//!
//! lookup → read-only filter → permission check → per-user rate limit → concurrency slot →
//! JSON Schema validation → typed deserialization → for a Write or Destructive tool: its plan
//! when it is a dry run (answered, nothing sent) or must be confirmed (a person asked, see
//! [`crate::confirm`]) → call (a read stops on cancellation, a change runs to its end) →
//! output → exactly one audit record → metrics.
//!
//! A tool never checks permissions or validates JSON itself: this module does.

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use webops_client::WebOpsApi;

use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::confirm::{Asker, Confirmations, Confirmed, InputRequired, NotConfirmed, Requirement};
use crate::gates::{Gates, cancelled};
use crate::identity::{Identity, Permission};
use crate::metrics::Metrics;
use crate::plan::{DryRun, Plan};
use crate::redact::mask_secrets_in_text;
use crate::registry::{DRY_RUN, Entry, MAX_NAME_LEN, Registry, ToolDefinition};
use crate::tool::{Access, ProgressSink, ToolContext, ToolError, ToolErrorKind, structured_json};

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
    /// How the client can reach its person, for calls that must be confirmed.
    pub(crate) asker: Asker,
}

/// A successful call.
#[derive(Debug)]
pub(crate) struct CallOutput {
    /// The readable text block.
    pub(crate) text: String,
    /// `structuredContent`, conforming to the output schema, as written once.
    pub(crate) structured: Box<RawValue>,
    /// A dry run (nothing was sent).
    pub(crate) dry_run: bool,
    /// How the call was confirmed, when it had to be.
    pub(crate) confirmed: Option<Confirmed>,
}

/// A failed call.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No such tool (MCP: JSON-RPC -32602); the message names it and lists the available ones.
    UnknownTool(String),
    /// The tool, or a gate before it, failed (MCP: a result with `isError: true`).
    Tool(ToolError),
    /// A 2026-07-28 call must ask the person first (MCP: an input-required result).
    InputRequired(InputRequired),
}

impl CallError {
    fn outcome(&self) -> Outcome {
        match self {
            CallError::UnknownTool(_) => Outcome::UnknownTool,
            CallError::Tool(e) => Outcome::of_error(e.kind()),
            CallError::InputRequired(_) => Outcome::InputRequired,
        }
    }

    /// `(kind, message)` for the audit record; none for a question to the person.
    fn kind_and_message(&self) -> Option<(&str, &str)> {
        match self {
            CallError::UnknownTool(message) => Some(("unknown_tool", message)),
            CallError::Tool(e) => Some((e.kind().as_str(), e.message())),
            CallError::InputRequired(_) => None,
        }
    }
}

impl From<ToolError> for CallError {
    fn from(error: ToolError) -> Self {
        CallError::Tool(error)
    }
}

impl From<NotConfirmed> for CallError {
    fn from(not: NotConfirmed) -> Self {
        match not {
            NotConfirmed::Ask(question) => CallError::InputRequired(question),
            NotConfirmed::Refused(error) => CallError::Tool(error),
        }
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
    pub(crate) confirmations: Confirmations,
    /// [`crate::SecurityConfig::max_answer_bytes`].
    pub(crate) max_answer_bytes: usize,
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
            asker,
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
        // Everything logged during the call (client retries included) carries its request id,
        // and the trace id of the MCP request's span when it is traced (see `crate::trace`).
        let span = tracing::debug_span!(
            "tool_call",
            request_id = %request_id,
            user_id = %identity.user_id,
            trace_id = tracing::field::Empty,
        );
        if !span.is_disabled() {
            record_trace_id(&span);
        }
        let result = self
            .run(
                &name,
                &arguments,
                &identity,
                &request_id,
                progress,
                &cancel,
                asker,
            )
            .instrument(span)
            .await;
        record.finish(&result).await;
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        name: &str,
        arguments: &Value,
        identity: &Identity,
        request_id: &str,
        progress: Option<Arc<dyn ProgressSink>>,
        cancel: &CancellationToken,
        asker: Asker,
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
        self.gates.check_rate(&identity.user_id).await?;
        let _permit = self.gates.acquire(cancel).await?;
        let _in_flight = self.metrics.in_flight();
        entry.input.check(definition.name, arguments)?;
        // A caller that already gave up gets nothing started on its behalf.
        if cancel.is_cancelled() {
            return Err(cancelled().into());
        }

        let mut ctx = ToolContext::new(identity.clone(), Arc::clone(&self.api), request_id)
            .with_cancellation(cancel.clone())
            .with_answer_budget(self.max_answer_bytes);
        if let Some(progress) = progress {
            ctx = ctx.with_progress(progress);
        }
        let (arguments, dry_run) = split_dry_run(definition.access, arguments);
        let requirement = self.confirmations.requirement(definition.access);
        let mut confirmed = None;
        if dry_run || requirement != Requirement::Never {
            // Only reads so far: the caller going away ends it.
            let plan = match unless_cancelled(cancel, plan_of(entry, &ctx, &arguments)).await? {
                Ok(plan) => plan,
                // A tool that cannot describe its calls cannot say it touches production: it
                // runs. Where every call must be confirmed, it is refused (fail closed).
                Err(e)
                    if e.kind() == ToolErrorKind::Unsupported
                        && !dry_run
                        && requirement == Requirement::IfProduction =>
                {
                    return self.run_tool(entry, &ctx, &arguments, cancel, None).await;
                }
                Err(e) => return Err(e.into()),
            };
            // A person sees it now: with the full blast radius.
            let shown = dry_run || (requirement.applies(&plan) && asker.asks_now());
            let plan = if shown {
                plan.with_databases(ctx.api()).await
            } else {
                plan
            };
            if dry_run {
                let text = format!("Dry run: nothing was sent to WebOps.\n{}", plan.to_text());
                return Ok(CallOutput {
                    text,
                    structured: structured_json(definition.name, &DryRun { dry_run: plan })?,
                    dry_run: true,
                    confirmed: None,
                });
            }
            if requirement.applies(&plan) {
                let confirm = self.confirmations.confirm(
                    definition.name,
                    &arguments,
                    identity,
                    asker,
                    &plan,
                    || plan_of(entry, &ctx, &arguments),
                );
                confirmed = Some(unless_cancelled(cancel, confirm).await??);
            }
        }
        self.run_tool(entry, &ctx, &arguments, cancel, confirmed)
            .await
    }

    /// Calls the tool itself and checks its output.
    async fn run_tool(
        &self,
        entry: &Entry,
        ctx: &ToolContext,
        arguments: &Value,
        cancel: &CancellationToken,
        confirmed: Option<Confirmed>,
    ) -> Result<CallOutput, CallError> {
        let definition = &entry.definition;
        let request_id = ctx.request_id();
        let call = AssertUnwindSafe(entry.tool.call(ctx, arguments)).catch_unwind();
        // A read is dropped on cancellation: nothing is lost. A change is not: stopping it
        // halfway would leave the platform in a state nobody reported, so it runs to its end
        // (its WebOps requests are bounded by the client's timeout, and a tool that waits
        // watches `ctx.cancellation()` itself) and its real outcome is returned and audited.
        let result = if definition.access == Access::Read {
            unless_cancelled(cancel, call).await?
        } else {
            call.await
        };
        let (text, structured) = match result {
            Ok(result) => result?,
            Err(_panic) => return Err(panicked(definition.name, request_id).into()),
        };
        let bytes = text.len() + structured.get().len();
        if bytes > self.max_answer_bytes {
            return Err(too_large(definition, bytes, self.max_answer_bytes).into());
        }
        #[cfg(debug_assertions)]
        if !entry
            .output
            .is_valid(&crate::tool::structured_value(&structured))
        {
            tracing::error!(
                tool = definition.name,
                "structured output does not conform to the tool's output schema"
            );
        }
        Ok(CallOutput {
            text,
            structured,
            dry_run: false,
            confirmed,
        })
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

/// Records the trace id of the current OpenTelemetry context in `span`, when there is one.
fn record_trace_id(span: &tracing::Span) {
    use opentelemetry::trace::TraceContextExt as _;
    opentelemetry::Context::map_current(|cx| {
        let active = cx.span();
        let context = active.span_context();
        if context.is_valid() {
            span.record("trace_id", tracing::field::display(context.trace_id()));
        }
    });
}

/// `future`'s output, unless the caller cancels first (checked before every poll): then a
/// cancelled error and `future` is dropped.
async fn unless_cancelled<T>(
    cancel: &CancellationToken,
    future: impl Future<Output = T>,
) -> Result<T, ToolError> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(cancelled()),
        output = future => Ok(output),
    }
}

/// The tool's plan of a call; a panic is an internal error.
async fn plan_of(entry: &Entry, ctx: &ToolContext, arguments: &Value) -> Result<Plan, ToolError> {
    match AssertUnwindSafe(entry.tool.plan(ctx, arguments))
        .catch_unwind()
        .await
    {
        Ok(plan) => plan,
        Err(_panic) => Err(panicked(entry.definition.name, ctx.request_id())),
    }
}

fn panicked(tool: &str, request_id: &str) -> ToolError {
    tracing::error!(tool, request_id, "tool panicked");
    ToolError::new(
        ToolErrorKind::Internal,
        format!(
            "{tool} failed unexpectedly (an internal error, logged as request {request_id}); \
             retrying will probably not help"
        ),
    )
}

/// The arguments without `dry_run`, and whether it was set (only Write and Destructive tools
/// take it; their schema checked it is a boolean).
fn split_dry_run(access: Access, arguments: &Value) -> (Cow<'_, Value>, bool) {
    match arguments.get(DRY_RUN) {
        Some(flag) if access != Access::Read => {
            let dry_run = flag.as_bool() == Some(true);
            let mut rest = arguments.clone();
            if let Value::Object(map) = &mut rest {
                map.remove(DRY_RUN);
            }
            (Cow::Owned(rest), dry_run)
        }
        _ => (Cow::Borrowed(arguments), false),
    }
}

/// The answer of a call that came out larger than the answer budget: withheld, saying what
/// to do instead (a change was made all the same).
fn too_large(definition: &ToolDefinition, bytes: usize, budget: usize) -> ToolError {
    let what = if definition.access == Access::Read {
        "Ask for less: a filter, fewer lines, or one deployment at a time"
    } else {
        "The change itself was made; read its result with webops_get_status"
    };
    ToolError::new(
        ToolErrorKind::TooLarge,
        format!(
            "{}'s answer ({bytes} bytes) is over this server's answer budget of {budget} bytes \
             and was withheld. {what}",
            definition.name
        ),
    )
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
    /// Logs, counts and audits how the call ended, and waits until its audit record is
    /// written, so the answer never goes out before its record.
    async fn finish(&mut self, result: &Result<CallOutput, CallError>) {
        let written = match result {
            Ok(output) if output.dry_run => self.write(Outcome::DryRun, None, None, None),
            Ok(output) => self.write(Outcome::Ok, None, None, output.confirmed.as_ref()),
            Err(e) => {
                let reason = match e {
                    CallError::Tool(e) => e.reason().map(|r| r.as_str()),
                    _ => None,
                };
                self.write(e.outcome(), e.kind_and_message(), reason, None)
            }
        };
        if let Some(written) = written {
            written.await;
        }
    }

    /// Logs, counts and audits the call's end, once. The future it returns (with an audit
    /// log) waits for the record's write and logs and counts a failure.
    fn write(
        &mut self,
        outcome: Outcome,
        error: Option<(&str, &str)>,
        reason: Option<&str>,
        confirmation: Option<&Confirmed>,
    ) -> Option<impl Future<Output = ()> + Send + use<>> {
        if self.done {
            return None;
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
        let mut waited = None;
        if let Some(audit) = &self.pipeline.audit {
            let entry = AuditEntry {
                request_id: self.request_id,
                identity: self.identity,
                tool: &tool,
                arguments: self.arguments,
                outcome,
                error,
                reason,
                confirmation,
                duration,
            };
            let written = audit.record(&entry);
            let (request_id, metrics) = (self.request_id.to_owned(), self.pipeline.metrics.clone());
            waited = Some(async move {
                if let Err(e) = written.wait().await {
                    tracing::error!(error = %e, request_id, "could not write the audit record");
                    metrics.audit_write_failed();
                }
            });
        }
        self.pipeline
            .metrics
            .record_call(self.tool, outcome, duration);
        waited
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        let written = self.write(
            Outcome::Cancelled,
            Some(("cancelled", "the caller went away before the call finished")),
            None,
            None,
        );
        // The record is written either way; a task waits to log and count a failure.
        if let (Some(written), Ok(runtime)) = (written, tokio::runtime::Handle::try_current()) {
            runtime.spawn(written);
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
