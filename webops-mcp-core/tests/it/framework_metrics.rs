//! Metrics: every family has HELP and TYPE, the exposition parses, counts move with calls,
//! and upstream WebOps requests are counted by the client the server builds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use regex::Regex;
use serde_json::json;
use webops_client::ClientConfig;
use webops_mcp_core::{MemorySink, SecurityConfig, ServerConfig, WebOpsMcpServer};

const FAMILIES: [(&str, &str); 9] = [
    ("webops_mcp_tool_calls_total", "counter"),
    ("webops_mcp_unknown_tool_calls_total", "counter"),
    ("webops_mcp_tool_call_duration_seconds", "histogram"),
    ("webops_mcp_rate_limited_total", "counter"),
    ("webops_mcp_permission_denied_total", "counter"),
    ("webops_mcp_tool_calls_in_flight", "gauge"),
    ("webops_mcp_audit_write_failures_total", "counter"),
    ("webops_mcp_upstream_requests_total", "counter"),
    ("webops_mcp_upstream_request_duration_seconds", "histogram"),
];

fn render(server: &WebOpsMcpServer) -> String {
    let mut out = String::new();
    server.metrics().render(&mut out);
    out
}

/// The value of the sample line starting with `series ` (exact series, labels included).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .unwrap()
}

/// Checks the exposition format: HELP and TYPE for every family, well-formed samples, and
/// every sample belonging to a declared family.
fn check_format(text: &str) {
    let sample =
        Regex::new(r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInf]+$"#)
            .unwrap();
    let mut typed = HashSet::new();
    for (name, kind) in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "no TYPE {kind} for {name}"
        );
        typed.insert(name);
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let captures = sample
            .captures(line)
            .unwrap_or_else(|| panic!("malformed sample line: {line}"));
        let name = &captures[1];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| typed.contains(base))
            .unwrap_or(name);
        assert!(typed.contains(family), "{name} has no TYPE");
    }
}

#[tokio::test]
async fn counts_move_with_calls() {
    let blocker = Blocker::default();
    let sink = Arc::new(MemorySink::new());
    let server = builder(&sink, SecurityConfig::default().rate_limit_per_minute(3))
        .tool(Logs::default())
        .tool(Fails)
        .tool(Destroy)
        .tool(blocker.clone())
        .build()
        .unwrap();
    let before = render(&server);
    check_format(&before);
    assert_eq!(
        value(
            &before,
            "webops_mcp_tool_calls_total{tool=\"test_get_logs\",outcome=\"ok\"}"
        ),
        0.0
    );

    let user = identity("u", &["logs:read"]);
    server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 1}), &user)
        .await;
    server
        .handle_tool_call("test_fails", json!({}), &user)
        .await;
    server
        .handle_tool_call("test_destroy", json!({}), &user)
        .await;
    server.handle_tool_call("nope", json!({}), &user).await;
    let running = {
        let (server, user) = (server.clone(), user.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call("test_block", json!({}), &user)
                .await
        })
    };
    blocker.wait_started(1).await;
    let during = render(&server);
    assert_eq!(value(&during, "webops_mcp_tool_calls_in_flight"), 1.0);
    let limited = server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 1}), &user)
        .await;
    assert!(limited.is_error);
    blocker.release.add_permits(1);
    running.await.unwrap();

    let after = render(&server);
    check_format(&after);
    let calls = |tool: &str, outcome: &str| {
        value(
            &after,
            &format!("webops_mcp_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(calls("test_get_logs", "ok"), 1.0);
    assert_eq!(calls("test_get_logs", "rate_limited"), 1.0);
    assert_eq!(calls("test_fails", "failed"), 1.0);
    assert_eq!(calls("test_destroy", "denied"), 1.0);
    assert_eq!(calls("test_block", "ok"), 1.0);
    assert_eq!(value(&after, "webops_mcp_unknown_tool_calls_total"), 1.0);
    assert_eq!(value(&after, "webops_mcp_rate_limited_total"), 1.0);
    assert_eq!(value(&after, "webops_mcp_permission_denied_total"), 1.0);
    assert_eq!(value(&after, "webops_mcp_tool_calls_in_flight"), 0.0);
    assert_eq!(
        value(
            &after,
            "webops_mcp_tool_call_duration_seconds_count{tool=\"test_get_logs\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &after,
            "webops_mcp_tool_call_duration_seconds_bucket{tool=\"test_get_logs\",le=\"+Inf\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn the_client_built_by_new_reports_upstream_requests() {
    // A port nobody listens on: the attempt fails with a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut webops = ClientConfig::default();
    webops.api_url = format!("http://127.0.0.1:{port}");
    webops.max_retries = 0;
    webops.timeout = Duration::from_secs(10);
    let security = SecurityConfig::default().audit_logging(false);
    let server = WebOpsMcpServer::new(ServerConfig::new(webops, security)).unwrap();
    assert!(server.tools().len() >= 8, "the built-in tools");

    let err = server.api().status().await.unwrap_err();
    assert_eq!(err.kind(), webops_client::ErrorKind::Connection);
    let text = render(&server);
    check_format(&text);
    assert_eq!(
        value(
            &text,
            "webops_mcp_upstream_requests_total{method=\"GET\",endpoint=\"status/\",status=\"connection\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "webops_mcp_upstream_request_duration_seconds_count{endpoint=\"status/\"}"
        ),
        1.0
    );
}
