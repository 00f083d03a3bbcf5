//! OpenTelemetry traces end to end: the server exports to an OTLP/HTTP receiver in this test
//! (protobuf decoded with `opentelemetry-proto`). The MCP span's parent is the incoming
//! context (the HTTP `traceparent`, or `params._meta.traceparent`, which wins and links the
//! HTTP one), the WebOps CLIENT spans are its children, and the mock WebOps receives their
//! `traceparent`. With telemetry off, no `traceparent` reaches WebOps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use rmcp::ServiceError;
use rmcp::model::{CallToolRequestParams, ErrorCode, RequestMetaObject};
use serde_json::json;

use crate::common::{ADMIN_KEY, TestServer, bearer, call, connect, text_of};

/// The trace and parent of the HTTP request's `traceparent`.
const HTTP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const HTTP_PARENT: &str = "00f067aa0ba902b7";
/// The trace and parent of a request's `_meta.traceparent`.
const META_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const META_PARENT: &str = "b7ad6b7169203331";

/// What an OTLP/HTTP receiver was sent: spans, and log records with their service name.
#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    logs: Vec<(String, LogRecord)>,
}

/// An OTLP/HTTP receiver on 127.0.0.1.
struct Receiver {
    url: String,
    received: Arc<Mutex<Received>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Received::default()));
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .route("/v1/logs", post(logs))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, received }
    }

    fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    fn logs(&self) -> Vec<(String, LogRecord)> {
        self.received.lock().unwrap().logs.clone()
    }
}

// Both answer with an empty Export*ServiceResponse.
async fn traces(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> &'static [u8] {
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let mut received = received.lock().unwrap();
    for resource in request.resource_spans {
        for scope in resource.scope_spans {
            received.spans.extend(scope.spans);
        }
    }
    b""
}

async fn logs(State(received): State<Arc<Mutex<Received>>>, body: Bytes) -> &'static [u8] {
    let request = ExportLogsServiceRequest::decode(body).unwrap();
    let mut received = received.lock().unwrap();
    for resource in request.resource_logs {
        // `service.name=...,service.instance.id=...`
        let service = resource
            .resource
            .as_ref()
            .map(|r| {
                r.attributes
                    .iter()
                    .filter(|kv| kv.key.starts_with("service."))
                    .map(
                        |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Any::StringValue(s)) => format!("{}={s}", kv.key),
                            other => format!("{}={other:?}", kv.key),
                        },
                    )
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        for scope in resource.scope_logs {
            for record in scope.log_records {
                received.logs.push((service.clone(), record));
            }
        }
    }
    b""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The string (or integer, as text) value of attribute `key`.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span.attributes.iter().find(|kv| kv.key == key)?;
    match value.value.as_ref()?.value.as_ref()? {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
async fn mcp_and_webops_spans_reach_the_receiver_with_their_parents() {
    let receiver = Receiver::start().await;
    let server = TestServer::start(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"webops-mcp-test\"\n",
        receiver.url
    ))
    .await;
    let (auth, key) = bearer(ADMIN_KEY);
    let http_traceparent = format!("00-{HTTP_TRACE}-{HTTP_PARENT}-01");
    let client = connect(
        &server.url(),
        &[(auth, key.as_str()), ("traceparent", &http_traceparent)],
    )
    .await;

    let ok = call(
        &client,
        "webops_get_status",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    assert_ne!(ok.is_error, Some(true), "{}", text_of(&ok));

    let mut meta = RequestMetaObject::new();
    meta.insert(
        "traceparent".to_owned(),
        json!(format!("00-{META_TRACE}-{META_PARENT}-01")),
    );
    let mut params = CallToolRequestParams::new("webops_get_status").with_arguments(
        json!({"deployment_id": 999_999, "include_logs": true})
            .as_object()
            .unwrap()
            .clone(),
    );
    params.meta = Some(meta);
    let missing = client.call_tool(params).await.unwrap();
    assert_eq!(missing.is_error, Some(true));

    let unknown = client
        .call_tool(CallToolRequestParams::new("webops_no_such_tool"))
        .await
        .unwrap_err();
    assert!(
        matches!(&unknown, ServiceError::McpError(e) if e.code == ErrorCode::INVALID_PARAMS),
        "{unknown:?}"
    );
    client.cancel().await.unwrap();
    let mock_requests = server.mock.as_ref().unwrap().requests();
    // Stopping the server sends the spans still buffered.
    server.stop().await.unwrap();

    let spans = receiver.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();

    // The first call: a child of the HTTP request's context.
    let calls = named(&spans, "tools/call webops_get_status");
    assert_eq!(calls.len(), 2, "{names:?}");
    let found = calls
        .iter()
        .find(|s| hex(&s.trace_id) == HTTP_TRACE)
        .unwrap_or_else(|| panic!("no span in the HTTP trace: {names:?}"));
    assert_eq!(found.kind, SpanKind::Server as i32);
    assert_eq!(hex(&found.parent_span_id), HTTP_PARENT);
    assert_eq!(
        attribute(found, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attribute(found, "gen_ai.tool.name").as_deref(),
        Some("webops_get_status")
    );
    assert!(attribute(found, "jsonrpc.request.id").is_some());
    assert!(attribute(found, "mcp.session.id").is_some());
    assert!(attribute(found, "mcp.protocol.version").is_some());
    assert_eq!(
        attribute(found, "network.transport").as_deref(),
        Some("tcp")
    );
    assert_eq!(attribute(found, "error.type"), None);
    // No argument reaches a span.
    assert!(
        found
            .attributes
            .iter()
            .all(|kv| !format!("{:?}", kv.value).contains("shop-api")),
        "{:?}",
        found.attributes
    );

    // Its WebOps requests: CLIENT children, whose traceparent the mock received.
    let upstream: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == found.span_id)
        .collect();
    assert!(!upstream.is_empty(), "{names:?}");
    for span in &upstream {
        assert_eq!(span.kind, SpanKind::Client as i32, "{}", span.name);
        assert!(span.name.starts_with("GET /api/v1/"), "{}", span.name);
        assert_eq!(hex(&span.trace_id), HTTP_TRACE);
        assert!(attribute(span, "url.template").is_some());
        assert!(attribute(span, "http.response.status_code").is_some());
        let sent = format!("00-{HTTP_TRACE}-{}-01", hex(&span.span_id));
        assert!(
            mock_requests
                .iter()
                .any(|r| r.headers.get("traceparent") == Some(&sent)),
            "WebOps did not receive {sent}"
        );
    }

    // The second call: `_meta` is the parent, the HTTP context a link; a tool error.
    let failed = calls
        .iter()
        .find(|s| hex(&s.trace_id) == META_TRACE)
        .unwrap_or_else(|| panic!("no span in the _meta trace: {names:?}"));
    assert_eq!(hex(&failed.parent_span_id), META_PARENT);
    assert_eq!(
        failed
            .links
            .iter()
            .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
            .collect::<Vec<_>>(),
        [(HTTP_TRACE.to_owned(), HTTP_PARENT.to_owned())]
    );
    assert_eq!(
        attribute(failed, "error.type").as_deref(),
        Some("not_found")
    );
    let failed_upstream = spans
        .iter()
        .filter(|s| s.parent_span_id == failed.span_id)
        .collect::<Vec<_>>();
    assert!(
        failed_upstream
            .iter()
            .any(|s| attribute(s, "error.type").as_deref() == Some("404")),
        "{names:?}"
    );

    // The unknown tool: a JSON-RPC error, and no caller text in the span name.
    let unknown = named(&spans, "tools/call");
    assert_eq!(unknown.len(), 1, "{names:?}");
    assert_eq!(
        attribute(unknown[0], "error.type").as_deref(),
        Some("-32602")
    );
    assert_eq!(attribute(unknown[0], "gen_ai.tool.name"), None);

    // The handshake is traced too.
    assert_eq!(named(&spans, "initialize").len(), 1, "{names:?}");
}

#[tokio::test]
async fn with_telemetry_off_no_traceparent_reaches_webops() {
    let server = TestServer::start("").await;
    let (auth, key) = bearer(ADMIN_KEY);
    let client = connect(
        &server.url(),
        &[
            (auth, key.as_str()),
            ("traceparent", &format!("00-{HTTP_TRACE}-{HTTP_PARENT}-01")),
        ],
    )
    .await;
    let ok = call(
        &client,
        "webops_get_status",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    assert_ne!(ok.is_error, Some(true), "{}", text_of(&ok));
    client.cancel().await.unwrap();
    let requests = server.mock.as_ref().unwrap().requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(
            !request.headers.contains_key("traceparent"),
            "{} {}",
            request.method,
            request.path
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn audit_records_are_also_exported_as_log_records() {
    let receiver = Receiver::start().await;
    let server = TestServer::start(&format!(
        "[telemetry]\notlp_endpoint = \"{}\"\nservice_name = \"audited\"\nexport_audit = true\n",
        receiver.url
    ))
    .await;
    let instance = format!("service.instance.id={}", server.config.security.server_id);
    let (auth, key) = bearer(ADMIN_KEY);
    let client = connect(&server.url(), &[(auth, key.as_str())]).await;
    call(&client, "webops_list_deployments", json!({})).await;
    call(
        &client,
        "webops_get_status",
        json!({"deployment_id": 999_999}),
    )
    .await;
    client.cancel().await.unwrap();
    // The local log stays the source of truth; each of its lines goes out as it is.
    let lines: Vec<String> = std::fs::read_to_string(server.audit_log())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    server.stop().await.unwrap();
    assert_eq!(lines.len(), 2);
    let logs = receiver.logs();
    let bodies: Vec<String> = logs
        .iter()
        .map(
            |(_, r)| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                Some(Any::StringValue(s)) => s.clone(),
                other => panic!("{other:?}"),
            },
        )
        .collect();
    assert_eq!(bodies, lines);
    for (service, record) in &logs {
        assert!(service.contains("service.name=audited"), "{service}");
        assert!(service.contains(&instance), "{service}");
        assert_eq!(record.event_name, "webops_mcp.audit");
    }
    // Each record is in the trace of the call it audits.
    let spans = receiver.spans();
    for (_, record) in &logs {
        assert!(
            spans
                .iter()
                .any(|s| s.kind == SpanKind::Server as i32 && s.span_id == record.span_id),
            "{record:?}"
        );
    }
}
