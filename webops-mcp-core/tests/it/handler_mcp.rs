//! The MCP handler against a real rmcp client in-process over `tokio::io::duplex`:
//! initialize, server info, per-identity tools/list, tools/call ok and error, unknown tool
//! as -32602, progress notifications, and cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;
use rmcp::model::{
    CallToolRequestParams, ClientRequest, ErrorCode, ProgressNotificationParam, ProtocolVersion,
    Request, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{
    ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceError, ServiceExt,
};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use webops_mcp_core::{MemorySink, SecurityConfig, WebOpsMcpServer};

/// A client that forwards every progress notification to a channel.
struct Recorder {
    progress: mpsc::UnboundedSender<ProgressNotificationParam>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.progress.send(params);
    }
}

type Client = RunningService<RoleClient, Recorder>;

async fn connect(
    server: &WebOpsMcpServer,
) -> (Client, mpsc::UnboundedReceiver<ProgressNotificationParam>) {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let handler = server.mcp_handler();
    tokio::spawn(async move {
        if let Ok(running) = handler.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Recorder { progress: tx }.serve(client_io).await.unwrap();
    (client, rx)
}

fn server(
    default_identity: Option<&[&str]>,
    blocker: &Blocker,
) -> (WebOpsMcpServer, Arc<MemorySink>) {
    let sink = Arc::new(MemorySink::new());
    let mut b = builder(&sink, SecurityConfig::default())
        .tool(Logs::default())
        .tool(Configure)
        .tool(Destroy)
        .tool(Fails)
        .tool(blocker.clone());
    if let Some(perms) = default_identity {
        b = b.default_identity(identity("stdio-user", perms));
    }
    (b.build().unwrap(), sink)
}

fn args(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn initialize_advertises_webops_mcp() {
    let (server, _) = server(Some(&["admin:*"]), &Blocker::default());
    let (client, _) = connect(&server).await;
    let info = client.peer_info().unwrap();
    let implementation = info.server_info.as_ref().unwrap();
    assert_eq!(implementation.name, "webops-mcp");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(implementation.title.as_deref(), Some("WebOps MCP"));
    assert!(info.capabilities.tools.is_some());
    let instructions = info.instructions.as_deref().unwrap();
    assert!(instructions.contains("webops_list_deployments"));
    assert!(instructions.contains("confirm_name"));
    assert!(
        [ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_11_25]
            .contains(&info.protocol_version),
        "{}",
        info.protocol_version
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_list_is_filtered_by_the_default_identity() {
    let (server, _) = server(Some(&["logs:read", "deploy:create"]), &Blocker::default());
    let (client, _) = connect(&server).await;
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "test_get_logs",
            "test_configure",
            "test_fails",
            "test_block"
        ]
    );
    let logs = &tools[0];
    assert_eq!(logs.title.as_deref(), Some("Get logs"));
    assert_eq!(logs.description.as_deref(), Some("Reads logs (test tool)."));
    assert_eq!(logs.input_schema["type"], "object");
    assert_eq!(logs.output_schema.as_ref().unwrap()["type"], "object");
    // What MCP's defaults do not say: a read tool is read-only (destructive and idempotent
    // mean nothing then), and every tool acts on an open world (the default).
    let hints = logs.annotations.as_ref().unwrap();
    assert_eq!(hints.read_only_hint, Some(true));
    assert_eq!(hints.destructive_hint, None);
    assert_eq!(hints.idempotent_hint, None);
    assert_eq!(hints.open_world_hint, None);
    // A Write tool says it is not destructive (the default would say it is).
    let configure = tools[1].annotations.as_ref().unwrap();
    assert_eq!(configure.read_only_hint, Some(false));
    assert_eq!(configure.destructive_hint, Some(false));
    assert_eq!(configure.idempotent_hint, None);
    assert_eq!(configure.open_world_hint, None);
    client.cancel().await.unwrap();

    // Without a default identity a stdio caller has no permissions.
    let (server, _) = server_no_identity();
    let (client, _) = connect(&server).await;
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert_eq!(
        names,
        ["test_fails", "test_block"],
        "only tools needing nothing"
    );
    client.cancel().await.unwrap();
}

fn server_no_identity() -> (WebOpsMcpServer, Arc<MemorySink>) {
    server(None, &Blocker::default())
}

#[tokio::test]
async fn tools_call_returns_text_and_structured_content() {
    let (server, sink) = server(Some(&["logs:read"]), &Blocker::default());
    let (client, _) = connect(&server).await;
    let result = client
        .call_tool(
            CallToolRequestParams::new("test_get_logs")
                .with_arguments(args(json!({"deployment_id": "shop-api", "lines": 20}))),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(
        result.structured_content,
        Some(json!({"said": "20 Application lines of shop-api"}))
    );
    let text = result.content[0].as_text().unwrap();
    assert_eq!(text.text, "20 Application lines of shop-api");
    let record = &sink.records()[0];
    assert_eq!(record["user_id"], "stdio-user");
    assert_eq!(record["outcome"], "ok");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tool_failures_are_error_results() {
    let (server, _) = server(Some(&["logs:read"]), &Blocker::default());
    let (client, _) = connect(&server).await;

    let failed = client
        .call_tool(CallToolRequestParams::new("test_fails"))
        .await
        .unwrap();
    assert_eq!(failed.is_error, Some(true));
    assert!(failed.structured_content.is_none());
    assert_eq!(
        failed.content[0].as_text().unwrap().text,
        "shop-api is stopped; start it first"
    );

    let invalid = client
        .call_tool(
            CallToolRequestParams::new("test_get_logs")
                .with_arguments(args(json!({"deployment_id": 1, "lines": 5000}))),
        )
        .await
        .unwrap();
    assert_eq!(invalid.is_error, Some(true));
    assert_eq!(
        invalid.content[0].as_text().unwrap().text,
        "invalid arguments for test_get_logs: /lines: 5000 is greater than the maximum of 1000"
    );

    let denied = client
        .call_tool(CallToolRequestParams::new("test_destroy"))
        .await
        .unwrap();
    assert_eq!(denied.is_error, Some(true));
    assert!(
        denied.content[0]
            .as_text()
            .unwrap()
            .text
            .contains("permission denied: test_destroy requires deploy:read, deploy:delete")
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_unknown_tool_is_invalid_params() {
    let (server, sink) = server(Some(&["logs:read"]), &Blocker::default());
    let (client, _) = connect(&server).await;
    let err = client
        .call_tool(CallToolRequestParams::new("webops_launch_rockets"))
        .await
        .unwrap_err();
    let ServiceError::McpError(error) = err else {
        panic!("expected a JSON-RPC error, got {err:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert_eq!(error.code.0, -32602);
    assert!(
        error.message.contains("webops_launch_rockets"),
        "{}",
        error.message
    );
    assert!(error.message.contains("test_get_logs"), "{}", error.message);
    assert_eq!(sink.records()[0]["outcome"], "unknown_tool");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn progress_notifications_carry_the_requests_token() {
    let blocker = Blocker::default();
    let (server, _) = server(Some(&[]), &blocker);
    let (client, mut progress) = connect(&server).await;
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(
                CallToolRequestParams::new("test_block")
                    .with_arguments(args(json!({"reports": 3}))),
            )),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let note = tokio::time::timeout(Duration::from_secs(30), progress.recv())
            .await
            .expect("no progress notification")
            .unwrap();
        seen.push(note);
    }
    for (i, note) in seen.iter().enumerate() {
        let step = (i + 1) as f64;
        assert_eq!(note.progress_token, handle.progress_token);
        assert_eq!(note.progress, step);
        assert_eq!(note.total, Some(3.0));
        assert_eq!(
            note.message.as_deref(),
            Some(format!("step {}", i + 1).as_str())
        );
    }
    blocker.release.add_permits(1);
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("expected a tool result");
    };
    assert_eq!(result.structured_content, Some(json!({"said": "released"})));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn cancellation_stops_a_slow_tool() {
    let blocker = Blocker::default();
    let (server, sink) = server(Some(&["logs:read"]), &blocker);
    let (client, _) = connect(&server).await;
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new("test_block"))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    blocker.wait_started(1).await;
    handle
        .cancel(Some("the user changed their mind".into()))
        .await
        .unwrap();
    eventually(|| {
        sink.records()
            .iter()
            .any(|r| r["tool"] == "test_block" && r["outcome"] == "cancelled")
    })
    .await;
    assert_eq!(blocker.finished.load(Ordering::SeqCst), 0);
    // The server is still serving, and the slot was released.
    let next = client
        .call_tool(
            CallToolRequestParams::new("test_get_logs")
                .with_arguments(args(json!({"deployment_id": 1}))),
        )
        .await
        .unwrap();
    assert_eq!(next.is_error, Some(false));
    let mut metrics = String::new();
    server.metrics().render(&mut metrics);
    assert!(
        metrics.contains("webops_mcp_tool_calls_in_flight 0"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("webops_mcp_tool_calls_total{tool=\"test_block\",outcome=\"cancelled\"} 1"),
        "{metrics}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_stateless_2026_client_discovers_lists_and_calls() {
    let (server, sink) = server(Some(&["logs:read"]), &Blocker::default());
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let handler = server.mcp_handler();
    tokio::spawn(async move {
        if let Ok(running) = handler.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (tx, _rx) = mpsc::unbounded_channel();
    let client = Recorder { progress: tx }
        .serve_with_lifecycle(
            client_io,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.protocol_version, ProtocolVersion::V_2026_07_28);
    assert_eq!(info.server_info.as_ref().unwrap().name, "webops-mcp");
    let names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    assert!(names.contains(&"test_get_logs".to_owned()), "{names:?}");
    let result = client
        .call_tool(
            CallToolRequestParams::new("test_get_logs")
                .with_arguments(args(json!({"deployment_id": 9}))),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false));
    assert_eq!(sink.records()[0]["user_id"], "stdio-user");
    client.cancel().await.unwrap();
}
