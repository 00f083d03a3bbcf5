//! Tool selection through the embedding API (`WebOpsMcpServerBuilder::select_tools`): the
//! tools kept, built-in and custom alike; a tool left out answers like an unknown one; an
//! unknown name fails the build with every valid name; read-only mode still applies; and each
//! tool's permissions in its `_meta` over MCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::support::*;
use rmcp::model::{CallToolRequestParams, ErrorCode};
use rmcp::{ServiceError, ServiceExt};
use serde_json::{Value, json};
use webops_client::MockWebOpsApi;
use webops_mcp_core::{
    BuildError, MemorySink, PERMISSIONS_META_KEY, SecurityConfig, ToolSelection, Toolset,
    WebOpsMcpServer, WebOpsMcpServerBuilder,
};

/// The built-in tools plus the custom `test_get_logs` and `test_destroy`, over a mock API
/// that must never be called.
fn builder(security: SecurityConfig) -> WebOpsMcpServerBuilder {
    WebOpsMcpServer::builder()
        .api(Arc::new(MockWebOpsApi::new()))
        .audit_sink(Arc::new(MemorySink::new()))
        .security(security)
        .tool(Logs::default())
        .tool(Destroy)
}

/// The names of `server`'s registry, in registration order.
fn names(server: &WebOpsMcpServer) -> Vec<&'static str> {
    server.registry().names().collect()
}

#[test]
fn nothing_selected_keeps_every_tool() {
    let server = builder(SecurityConfig::default()).build().unwrap();
    assert_eq!(server.registry().len(), 10);
}

#[tokio::test]
async fn a_selection_keeps_the_named_tools_and_toolsets_only() {
    let selection = ToolSelection::all()
        .with_tools(["test_get_logs", "webops_get_status"])
        .with_toolsets([Toolset::Security, Toolset::Admin]);
    let server = builder(SecurityConfig::default())
        .select_tools(selection)
        .build()
        .unwrap();
    assert_eq!(
        names(&server),
        [
            "webops_get_status",
            "webops_security_audit",
            "webops_delete_deployment",
            "test_get_logs"
        ]
    );
    let left_out = server
        .handle_tool_call("webops_list_deployments", json!({}), &admin())
        .await;
    assert!(left_out.is_error);
    assert_eq!(left_out.error_kind, None, "answered like an unknown tool");
    let text = left_out.text();
    assert!(
        text.starts_with("unknown tool 'webops_list_deployments'; available tools: "),
        "{text}"
    );
    assert!(!text.contains("test_destroy"), "{text}");
}

#[test]
fn an_unknown_name_fails_the_build_with_every_valid_name() {
    let err = builder(SecurityConfig::default())
        .select_tools(ToolSelection::all().with_tools(["webops_get_stats"]))
        .build()
        .unwrap_err();
    let BuildError::UnknownTools(unknown) = &err else {
        panic!("expected UnknownTools, got {err:?}");
    };
    assert_eq!(unknown.unknown, ["webops_get_stats"]);
    assert!(unknown.valid.iter().any(|t| t == "test_destroy"));
    let text = err.to_string();
    for name in ["webops_get_status", "test_get_logs", "observe", "admin"] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
}

#[test]
fn read_only_hides_the_selected_tools_that_change_something() {
    let selection = ToolSelection::all().with_toolsets([Toolset::Deploy, Toolset::Security]);
    let server = builder(SecurityConfig::default().read_only(true))
        .select_tools(selection)
        .build()
        .unwrap();
    assert_eq!(server.registry().len(), 3);
    let offered: Vec<&str> = server.tools().iter().map(|t| t.name).collect();
    assert_eq!(offered, ["webops_security_audit"]);
}

#[tokio::test]
async fn every_listed_tool_names_its_permissions_in_its_meta_and_the_rest_are_unknown() {
    // Calls a person must confirm run on the tools' own checks: the destructive tool is listed.
    let server = builder(tool_security())
        .select_tools(ToolSelection::all().with_tools(["test_destroy", "webops_get_logs"]))
        .default_identity(admin())
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
    let tools = client.list_all_tools().await.unwrap();
    let metas: Vec<(String, Value)> = tools
        .iter()
        .map(|t| (t.name.to_string(), serde_json::to_value(&t.meta).unwrap()))
        .collect();
    assert_eq!(
        metas,
        [
            (
                "webops_get_logs".to_owned(),
                json!({ PERMISSIONS_META_KEY: ["logs:read"] })
            ),
            (
                "test_destroy".to_owned(),
                json!({ PERMISSIONS_META_KEY: ["deploy:read", "deploy:delete"] })
            ),
        ]
    );
    let err = client
        .call_tool(CallToolRequestParams::new("webops_get_status"))
        .await
        .unwrap_err();
    let ServiceError::McpError(error) = err else {
        panic!("expected a JSON-RPC error, got {err:?}");
    };
    assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
    assert!(
        error.message.contains("webops_get_status"),
        "{}",
        error.message
    );
    client.cancel().await.unwrap();
}
