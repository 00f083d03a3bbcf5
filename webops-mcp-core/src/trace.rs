//! Tracing hooks: what the MCP handler tells a tracer about each request it serves, so that
//! an embedding (the server's OpenTelemetry export) can make a span of it, and of every
//! request to WebOps made on its behalf.
//!
//! Core holds no exporter and names no span attribute. [`McpRequest`] carries the facts of a
//! request (never its arguments, which may hold secrets), [`McpOutcome`] how it ended, and
//! [`McpSpan::context`] the OpenTelemetry context the request runs in: core's one use of
//! OpenTelemetry, propagation through the API crate, so that the WebOps client's
//! [`RequestTracer`] finds its parent in the current context. Without a tracer (the default)
//! nothing of this is gathered: the handler's cost is one `Option` check per request.

use std::sync::Arc;

use webops_client::RequestTracer;

/// Makes spans of MCP requests; set with
/// [`WebOpsMcpServerBuilder::tracer`](crate::WebOpsMcpServerBuilder::tracer).
pub trait McpTracer: Send + Sync {
    /// Starts the span of `request`, before the request is handled.
    fn start(&self, request: &McpRequest<'_>) -> Box<dyn McpSpan>;

    /// Traces the WebOps client's HTTP requests (the server builds its client with it). Their
    /// parent is the current context: the span of the MCP request they serve.
    fn request_tracer(&self) -> Option<Arc<dyn RequestTracer>> {
        None
    }

    /// Sends whatever is still buffered, e.g. before the process exits. May block (waiting
    /// for an exporter): [`WebOpsMcpServer::flush_traces`](crate::WebOpsMcpServer::flush_traces)
    /// calls it on a blocking thread.
    fn flush(&self) {}
}

/// The span of one MCP request, from [`McpTracer::start`].
pub trait McpSpan: Send + Sync {
    /// The context the request runs in, with this span as its active span.
    fn context(&self) -> opentelemetry::Context;

    /// Ends the span.
    fn end(self: Box<Self>, outcome: &McpOutcome<'_>);
}

/// One MCP request, as a tracer sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct McpRequest<'a> {
    /// The MCP method: `initialize`, `server/discover`, `tools/list` or `tools/call`.
    pub method: &'static str,
    /// The tool a `tools/call` names, when it is one of this server's tools (an unknown name
    /// is the caller's text: `None`).
    pub tool: Option<&'a str>,
    /// The JSON-RPC id, as text.
    pub request_id: &'a str,
    /// The MCP protocol version of the request or its session.
    pub protocol_version: Option<&'a str>,
    /// The legacy session's id (`Mcp-Session-Id`), when there is one.
    pub session_id: Option<&'a str>,
    /// How the request arrived.
    pub transport: McpTransport,
    /// `traceparent` and `tracestate` of the request's `params._meta`.
    pub meta: TraceHeaders<'a>,
    /// `traceparent` and `tracestate` of the HTTP request that carried it (none over stdio).
    pub http: TraceHeaders<'a>,
}

/// The transport of an MCP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpTransport {
    /// Newline-delimited JSON-RPC on stdin and stdout.
    Stdio,
    /// Streamable HTTP.
    Http {
        /// The HTTP version: `"1.1"`, `"2"`, ...
        version: &'static str,
    },
}

/// The W3C trace context a request came with, unchecked: the tracer parses it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TraceHeaders<'a> {
    /// `traceparent`.
    pub traceparent: Option<&'a str>,
    /// `tracestate`.
    pub tracestate: Option<&'a str>,
}

impl<'a> TraceHeaders<'a> {
    /// From a lookup of values by key.
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<&'a str>) -> Self {
        TraceHeaders {
            traceparent: get("traceparent"),
            tracestate: get("tracestate"),
        }
    }
}

/// How an MCP request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum McpOutcome<'a> {
    /// A result.
    Ok,
    /// A `tools/call` result with `isError: true`; `kind` is its
    /// [`ToolErrorKind`](crate::ToolErrorKind) (`not_found`, `permission_denied`, ...).
    ToolError {
        /// The kind, as `ToolErrorKind::as_str` names it.
        kind: &'a str,
    },
    /// A JSON-RPC error answer.
    JsonRpcError {
        /// The JSON-RPC error code, e.g. `-32602`.
        code: i32,
        /// Its message.
        message: &'a str,
    },
    /// A 2026-07-28 input-required result: the person is asked to confirm (not an error).
    InputRequired,
    /// The request was dropped before it was answered (its connection or session ended).
    Abandoned,
}
