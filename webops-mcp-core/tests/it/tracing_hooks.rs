//! The tracing hooks against a real rmcp client in-process: a span per request (initialize,
//! tools/list, tools/call) with its facts and `_meta` trace context, how each ended (a tool
//! error by its kind, an unknown tool as -32602), and the WebOps client's requests made
//! inside the span's context.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use rmcp::model::{CallToolRequestParams, ErrorCode, RequestMetaObject};
use rmcp::{ServiceError, ServiceExt as _};
use serde_json::json;
use webops_client::{ClientConfig, RequestSpan, RequestTracer, TracedRequest};
use webops_mcp_core::{
    McpOutcome, McpRequest, McpSpan, McpTracer, McpTransport, MemorySink, WebOpsMcpServer,
};
use webops_mcp_testkit::MockWebOps;

use crate::support::{admin, tool_security};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// What the tracer saw of one MCP request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: &'static str,
    tool: Option<String>,
    request_id: String,
    meta_traceparent: Option<String>,
    stdio: bool,
    outcome: Option<String>,
}

#[derive(Default)]
struct Log {
    requests: Vec<Seen>,
    /// `url_template` of each WebOps request, with the trace id current when it started.
    upstream: Vec<(String, String)>,
}

#[derive(Default, Clone)]
struct TestTracer(Arc<Mutex<Log>>);

struct TestSpan {
    index: usize,
    context: opentelemetry::Context,
    log: Arc<Mutex<Log>>,
}

impl McpTracer for TestTracer {
    fn start(&self, request: &McpRequest<'_>) -> Box<dyn McpSpan> {
        let mut log = self.0.lock().unwrap();
        log.requests.push(Seen {
            method: request.method,
            tool: request.tool.map(str::to_owned),
            request_id: request.request_id.to_owned(),
            meta_traceparent: request.meta.traceparent.map(str::to_owned),
            stdio: request.transport == McpTransport::Stdio,
            outcome: None,
        });
        // The trace of the `_meta` context, else one of our own.
        let trace = request
            .meta
            .traceparent
            .and_then(|t| t.split('-').nth(1))
            .unwrap_or("0af7651916cd43dd8448eb211c80319c");
        let span = SpanContext::new(
            TraceId::from_hex(trace).unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        Box::new(TestSpan {
            index: log.requests.len() - 1,
            context: opentelemetry::Context::new().with_remote_span_context(span),
            log: Arc::clone(&self.0),
        })
    }

    fn request_tracer(&self) -> Option<Arc<dyn RequestTracer>> {
        Some(Arc::new(self.clone()))
    }
}

impl McpSpan for TestSpan {
    fn context(&self) -> opentelemetry::Context {
        self.context.clone()
    }

    fn end(self: Box<Self>, outcome: &McpOutcome<'_>) {
        let text = match outcome {
            McpOutcome::Ok => "ok".to_owned(),
            McpOutcome::ToolError { kind } => format!("tool_error {kind}"),
            McpOutcome::JsonRpcError { code, .. } => format!("jsonrpc {code}"),
            McpOutcome::InputRequired => "input_required".to_owned(),
            McpOutcome::Abandoned => "abandoned".to_owned(),
            _ => "other".to_owned(),
        };
        self.log.lock().unwrap().requests[self.index].outcome = Some(text);
    }
}

impl RequestTracer for TestTracer {
    fn start(&self, request: &TracedRequest<'_>) -> Option<Box<dyn RequestSpan>> {
        let trace = opentelemetry::Context::map_current(|cx| {
            cx.span().span_context().trace_id().to_string()
        });
        self.0
            .lock()
            .unwrap()
            .upstream
            .push((request.url_template.to_owned(), trace));
        None
    }
}

#[tokio::test]
async fn each_request_is_a_span_and_webops_requests_run_in_its_context() {
    let mock = MockWebOps::start().await;
    let tracer = TestTracer::default();
    let mut webops = ClientConfig::default();
    webops.api_url = mock.base_url();
    webops.api_key = Some(mock.token().to_owned());
    let server = WebOpsMcpServer::builder()
        .webops(webops)
        .security(tool_security())
        .audit_sink(Arc::new(MemorySink::new()))
        .default_identity(admin())
        .tracer(Arc::new(tracer.clone()))
        .build()
        .unwrap();
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let handler = server.mcp_handler();
    tokio::spawn(async move {
        if let Ok(running) = handler.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let client = ().serve(client_io).await.unwrap();
    client.list_all_tools().await.unwrap();

    let mut meta = RequestMetaObject::new();
    meta.insert(
        "traceparent".to_owned(),
        json!(format!("00-{TRACE}-00f067aa0ba902b7-01")),
    );
    let mut params = CallToolRequestParams::new("webops_get_status").with_arguments(
        json!({"deployment_id": 999_999})
            .as_object()
            .unwrap()
            .clone(),
    );
    params.meta = Some(meta);
    let missing = client.call_tool(params).await.unwrap();
    assert_eq!(missing.is_error, Some(true));
    let error = client
        .call_tool(CallToolRequestParams::new("no_such_tool"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ServiceError::McpError(e) if e.code == ErrorCode::INVALID_PARAMS),
        "{error:?}"
    );
    client.cancel().await.unwrap();

    let log = tracer.0.lock().unwrap();
    let summary: Vec<(&str, Option<&str>, Option<&str>)> = log
        .requests
        .iter()
        .map(|s| (s.method, s.tool.as_deref(), s.outcome.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            ("initialize", None, Some("ok")),
            ("tools/list", None, Some("ok")),
            (
                "tools/call",
                Some("webops_get_status"),
                Some("tool_error not_found")
            ),
            // An unknown name is the caller's text: no tool, a JSON-RPC error.
            ("tools/call", None, Some("jsonrpc -32602")),
        ]
    );
    assert!(log.requests.iter().all(|s| s.stdio));
    let call = &log.requests[2];
    assert_eq!(
        call.meta_traceparent.as_deref(),
        Some(format!("00-{TRACE}-00f067aa0ba902b7-01").as_str())
    );
    assert!(!call.request_id.is_empty());
    assert_ne!(call.request_id, log.requests[3].request_id);
    // The status lookup reached WebOps inside the span's context.
    assert!(!log.upstream.is_empty());
    for (template, trace) in &log.upstream {
        assert!(template.starts_with("/api/v1/"), "{template}");
        assert_eq!(trace, TRACE, "{template}");
    }
}
