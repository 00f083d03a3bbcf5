//! The heart of webops-mcp: tools, the permission model, validation, gates, audit and the MCP
//! handler.

pub mod audit;
mod completion;
mod config;
mod confirm;
mod gates;
mod handler;
mod identity;
mod metrics;
mod nonce;
mod pipeline;
mod plan;
mod prometheus;
mod prompts;
mod rate;
mod redact;
mod registry;
mod resources;
mod selection;
mod server;
mod subscriptions;
mod tool;
mod tools;
mod trace;
mod validation;

/// What a tool author needs besides this crate: `#[async_trait]` for `impl Tool`, and the
/// crates behind `#[derive(Deserialize, Serialize, JsonSchema)]` of a tool's arguments and
/// output (derive through these with `#[serde(crate = "webops_mcp_core::serde")]` and
/// `#[schemars(crate = "webops_mcp_core::schemars")]`).
pub use async_trait::async_trait;
pub use {schemars, serde};

pub use audit::{
    AuditSink, JsonLinesFileSink, MemorySink, ServerRecords, StderrSink, VerifyError, VerifyReport,
    verify,
};
pub use config::{
    DEFAULT_ANSWER_BYTES, MIN_ANSWER_BYTES, RepositoryPolicy, RepositoryScheme, SecurityConfig,
    ServerConfig,
};
pub use confirm::{ConfirmationConfig, DestructivePolicy, Fallback, MAX_STATE_TTL, WritePolicy};
pub use handler::{McpHandler, PERMISSIONS_META_KEY, Served};
pub use identity::{AuthMethod, Identity, Permission, PermissionSet, UnknownPermission};
pub use metrics::Metrics;
pub use nonce::{MemoryNonceStore, NonceStore};
pub use plan::{Plan, Request as PlannedRequest, Target};
pub use prometheus::{MetricKind, PrometheusWriter};
pub use rate::{MemoryRateLimiter, RateDecision, RateLimitStore, RateQuota};
pub use registry::{BuildError, Registry, RegistryBuilder, ToolAnnotations, ToolDefinition};
pub use selection::{ToolSelection, Toolset, UnknownTools, builtin_tool_names};
pub use server::{
    DEFAULT_INSTRUCTIONS, TextContent, ToolCallResult, WebOpsMcpServer, WebOpsMcpServerBuilder,
};
pub use subscriptions::ResourceConfig;
pub use tool::{
    Access, ProgressSink, RefusalReason, Tool, ToolContext, ToolError, ToolErrorKind, ToolOutput,
};
pub use trace::{McpOutcome, McpRequest, McpSpan, McpTracer, McpTransport, TraceHeaders};

/// Compiles and runs the README's examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
