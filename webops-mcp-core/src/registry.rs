//! The tool registry, built once from the built-in tools plus any custom ones, and the one
//! call pipeline every tool call goes through, whatever the transport:
//!
//! lookup → read-only filter → permission check → per-user rate limit → concurrency slot →
//! JSON Schema validation → typed deserialization → call (a read stops on cancellation, a
//! change runs to its end) → output → exactly one audit record → metrics.
//!
//! A tool never checks permissions or validates JSON itself: this module does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt as _;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use webops_client::WebOpsApi;

use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::gates::{Gates, cancelled};
use crate::identity::{Identity, Permission};
use crate::metrics::Metrics;
use crate::redact::mask_secrets_in_text;
use crate::tool::{Access, ProgressSink, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput};
use crate::validation::ArgsValidator;

/// The longest tool name MCP allows.
const MAX_NAME_LEN: usize = 128;

/// Why a registry (or a server) could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two tools share a name.
    #[error("two tools are named {name}; tool names must be unique")]
    DuplicateTool {
        /// The name.
        name: String,
    },
    /// A tool name MCP clients would reject.
    #[error("tool name {name:?} is invalid: {reason}")]
    InvalidToolName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tool without a description (models choose tools by their description).
    #[error("tool {tool} has an empty description; models choose tools by their description")]
    EmptyDescription {
        /// The tool.
        tool: String,
    },
    /// An input or output schema that is not a valid JSON Schema with an object root.
    #[error("the {which} schema of tool {tool} is invalid: {reason}")]
    InvalidSchema {
        /// The tool.
        tool: String,
        /// `input` or `output`.
        which: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The WebOps client could not be built from its configuration.
    #[error("invalid WebOps client configuration: {0}")]
    Client(#[source] webops_client::Error),
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// MCP tool annotations, derived from the tool's [`Access`], never written by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ToolAnnotations {
    /// The tool does not change the platform.
    pub read_only_hint: bool,
    /// The tool may lose something for good.
    pub destructive_hint: bool,
    /// Repeating a call with the same arguments has no further effect.
    pub idempotent_hint: bool,
    /// The tool acts on an external system (always true: the WebOps platform).
    pub open_world_hint: bool,
}

impl ToolAnnotations {
    /// The annotations of a tool with `access`.
    pub fn for_access(access: Access) -> Self {
        let (read_only_hint, destructive_hint, idempotent_hint) = match access {
            Access::Read => (true, false, true),
            Access::Write => (false, false, false),
            Access::Destructive => (false, true, false),
        };
        ToolAnnotations {
            read_only_hint,
            destructive_hint,
            idempotent_hint,
            open_world_hint: true,
        }
    }
}

/// What a client sees of a tool (`tools/list`), plus its access level and permissions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ToolDefinition {
    /// Unique name, e.g. `webops_get_status`.
    pub name: &'static str,
    /// Short human title.
    pub title: &'static str,
    /// What the tool does, for a model deciding whether to call it.
    pub description: &'static str,
    /// JSON Schema (2020-12) of the arguments; the root is `"type": "object"`.
    pub input_schema: Value,
    /// JSON Schema (2020-12) of `structuredContent`; the root is `"type": "object"`.
    pub output_schema: Value,
    /// Hints derived from `access`.
    pub annotations: ToolAnnotations,
    /// What the tool does to the platform.
    pub access: Access,
    /// Every permission a caller must hold.
    #[serde(serialize_with = "serialize_permissions")]
    pub permissions: &'static [Permission],
}

fn serialize_permissions<S: Serializer>(
    permissions: &&'static [Permission],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(permissions.iter().map(|p| p.as_str()))
}

impl ToolDefinition {
    /// Whether `identity` may call this tool (holds every permission; in read-only mode only
    /// `Read` tools).
    pub fn allows(&self, identity: &Identity, read_only: bool) -> bool {
        (!read_only || self.access == Access::Read)
            && identity.permissions.contains_all(self.permissions)
    }
}

/// A [`Tool`] with its types erased, so tools of different types live in one registry.
#[async_trait]
pub(crate) trait ErasedTool: Send + Sync {
    /// The tool's name.
    fn name(&self) -> &'static str;
    /// The definition, with schemas generated from the typed arguments and output.
    fn definition(&self) -> Result<ToolDefinition, BuildError>;
    /// Deserializes `raw_args`, calls the tool, and returns its text and structured output.
    async fn call(&self, ctx: &ToolContext, raw_args: &Value)
    -> Result<(String, Value), ToolError>;
}

#[async_trait]
impl<T: Tool> ErasedTool for T {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn definition(&self) -> Result<ToolDefinition, BuildError> {
        Ok(ToolDefinition {
            name: T::NAME,
            title: T::TITLE,
            description: T::DESCRIPTION,
            input_schema: object_schema::<T::Args>(T::NAME, "input")?,
            output_schema: object_schema::<T::Output>(T::NAME, "output")?,
            annotations: ToolAnnotations::for_access(T::ACCESS),
            access: T::ACCESS,
            permissions: T::PERMISSIONS,
        })
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        raw_args: &Value,
    ) -> Result<(String, Value), ToolError> {
        let args = T::Args::deserialize(raw_args).map_err(|e| {
            ToolError::invalid(format!(
                "invalid arguments for {}: {}",
                T::NAME,
                mask_secrets_in_text(&e.to_string())
            ))
        })?;
        let output = <T as Tool>::call(self, ctx, args).await?;
        let structured = serde_json::to_value(&output).map_err(|e| {
            ToolError::new(
                ToolErrorKind::Internal,
                format!("{} produced output that cannot be serialized: {e}", T::NAME),
            )
        })?;
        Ok((ToolOutput::to_text(&output), structured))
    }
}

/// The formats JSON Schema 2020-12 defines. schemars also writes its own (`uint32`, `double`,
/// ...), which clients do not know and some warn about; the `type` and bounds already say it.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Drops a `format` that JSON Schema does not define.
fn keep_standard_formats(schema: &mut Schema) {
    if let Some(Value::String(format)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        schema.remove("format");
    }
}

/// The JSON Schema of `S`: subschemas inlined, input schemas for what deserializes and
/// output schemas for what serializes, only standard formats, root `title`/`description`
/// (type-name noise) removed.
fn object_schema<S: JsonSchema>(tool: &str, which: &'static str) -> Result<Value, BuildError> {
    let settings = SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let settings = settings.with_transform(RecursiveTransform(keep_standard_formats));
    let settings = if which == "output" {
        settings.for_serialize()
    } else {
        settings.for_deserialize()
    };
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<S>()
        .to_value();
    let invalid = |reason: &str| BuildError::InvalidSchema {
        tool: tool.to_owned(),
        which,
        reason: reason.to_owned(),
    };
    let Value::Object(root) = &mut schema else {
        return Err(invalid(
            "the root must be a JSON object with \"type\": \"object\"",
        ));
    };
    if root.get("type").and_then(Value::as_str) != Some("object") {
        return Err(invalid(
            "the root must have \"type\": \"object\" (use a struct with named fields)",
        ));
    }
    root.remove("title");
    root.remove("description");
    Ok(schema)
}

/// Builds the set of tools a server offers.
#[derive(Default)]
pub struct RegistryBuilder {
    tools: Vec<Arc<dyn ErasedTool>>,
}

impl RegistryBuilder {
    /// An empty builder (no tools).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the built-in tools of the design brief.
    pub fn with_builtin_tools(self) -> Self {
        crate::tools::register_builtin(self)
    }

    /// Names of the tools added so far, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tools.iter().map(|t| t.name()).collect()
    }

    /// Adds a tool.
    pub fn tool<T: Tool>(mut self, tool: T) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// Adds every tool of `other` after these.
    pub(crate) fn append(mut self, other: RegistryBuilder) -> Self {
        self.tools.extend(other.tools);
        self
    }

    /// Generates and checks every definition and compiles every schema. A duplicate name,
    /// an invalid name, an empty description or an invalid schema is an error.
    pub fn build(self) -> Result<Registry, BuildError> {
        let mut entries = Vec::with_capacity(self.tools.len());
        let mut index = HashMap::with_capacity(self.tools.len());
        for tool in self.tools {
            let definition = tool.definition()?;
            check_name(definition.name)?;
            if definition.description.trim().is_empty() {
                return Err(BuildError::EmptyDescription {
                    tool: definition.name.to_owned(),
                });
            }
            if index.insert(definition.name, entries.len()).is_some() {
                return Err(BuildError::DuplicateTool {
                    name: definition.name.to_owned(),
                });
            }
            let compile = |schema: &Value, which| {
                ArgsValidator::new(schema.clone()).map_err(|reason| BuildError::InvalidSchema {
                    tool: definition.name.to_owned(),
                    which,
                    reason,
                })
            };
            let input = compile(&definition.input_schema, "input")?;
            let output = compile(&definition.output_schema, "output")?;
            entries.push(Entry {
                definition,
                tool,
                input,
                output,
            });
        }
        Ok(Registry { entries, index })
    }
}

/// MCP tool names: 1 to 128 characters of `A-Z a-z 0-9 _ - .`.
fn check_name(name: &str) -> Result<(), BuildError> {
    let invalid = |reason: &str| BuildError::InvalidToolName {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(invalid("it must be 1 to 128 characters long"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(invalid("only A-Z, a-z, 0-9, '_', '-' and '.' are allowed"));
    }
    Ok(())
}

struct Entry {
    definition: ToolDefinition,
    tool: Arc<dyn ErasedTool>,
    input: ArgsValidator,
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    output: ArgsValidator,
}

/// An immutable set of tools with their definitions and compiled schemas.
pub struct Registry {
    entries: Vec<Entry>,
    index: HashMap<&'static str, usize>,
}

impl Registry {
    /// Every tool's definition, in registration order.
    pub fn definitions(&self) -> impl Iterator<Item = &ToolDefinition> {
        self.entries.iter().map(|e| &e.definition)
    }

    /// The definition of the tool named `name`.
    pub fn definition(&self, name: &str) -> Option<&ToolDefinition> {
        self.entry(name).map(|e| &e.definition)
    }

    /// Only the tools `identity` may call (every permission held; in read-only mode only
    /// `Read` tools), in registration order.
    pub fn definitions_for(&self, identity: &Identity, read_only: bool) -> Vec<&ToolDefinition> {
        self.definitions()
            .filter(|d| d.allows(identity, read_only))
            .collect()
    }

    /// Tool names, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.iter().map(|e| e.definition.name)
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn entry(&self, name: &str) -> Option<&Entry> {
        self.index.get(name).map(|&i| &self.entries[i])
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

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
