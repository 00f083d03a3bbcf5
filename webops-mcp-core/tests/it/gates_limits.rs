//! The gates: a per-user rate limit that leaves other users alone, a global concurrency
//! limit that answers busy after a bounded wait, and slots released on every path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{
    MemoryRateLimiter, MemorySink, RateQuota, SecurityConfig, ToolErrorKind, WebOpsMcpServer,
};

fn server(security: SecurityConfig, blocker: &Blocker) -> WebOpsMcpServer {
    let sink = Arc::new(MemorySink::new());
    builder(&sink, security)
        .tool(Logs::default())
        .tool(Fails)
        .tool(Panics)
        .tool(blocker.clone())
        .build()
        .unwrap()
}

async fn logs(server: &WebOpsMcpServer, user: &str) -> webops_mcp_core::ToolCallResult {
    server
        .handle_tool_call(
            "test_get_logs",
            json!({"deployment_id": 1}),
            &identity(user, &["logs:read"]),
        )
        .await
}

#[tokio::test]
async fn the_rate_limit_is_per_user() {
    let server = server(
        SecurityConfig::default().rate_limit_per_minute(3),
        &Blocker::default(),
    );
    for _ in 0..3 {
        assert!(!logs(&server, "alice").await.is_error);
    }
    let limited = logs(&server, "alice").await;
    assert_eq!(limited.error_kind, Some(ToolErrorKind::RateLimited));
    let text = limited.text();
    assert!(text.contains("at most 3 tool calls per minute"), "{text}");
    assert!(text.contains("retry in "), "{text}");
    assert!(limited.structured_content.is_none());
    // Another user has a bucket of their own.
    for _ in 0..3 {
        assert!(!logs(&server, "bob").await.is_error);
    }
    assert_eq!(
        logs(&server, "bob").await.error_kind,
        Some(ToolErrorKind::RateLimited)
    );
}

#[tokio::test]
async fn servers_sharing_a_rate_limit_store_grant_one_bucket_between_them() {
    let security = SecurityConfig::default().rate_limit_per_minute(3);
    let quota = RateQuota::per_minute(std::num::NonZeroU32::new(3).unwrap());
    let store = Arc::new(MemoryRateLimiter::new(quota));
    let replica = || {
        let sink = Arc::new(MemorySink::new());
        builder(&sink, security.clone())
            .tool(Logs::default())
            .rate_limit_store(store.clone())
            .build()
            .unwrap()
    };
    let (one, two) = (replica(), replica());
    let mut allowed = 0;
    for n in 0..6 {
        let server = if n % 2 == 0 { &one } else { &two };
        if !logs(server, "alice").await.is_error {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 3, "one bucket of three over both servers");
}

#[tokio::test]
async fn calls_beyond_the_limit_get_busy_after_the_bounded_wait() {
    let blocker = Blocker::default();
    let server = server(
        SecurityConfig::default()
            .max_concurrent_requests(2)
            .busy_timeout(Duration::from_millis(30)),
        &blocker,
    );
    let user = identity("u", &["logs:read"]);
    let running: Vec<_> = (0..2)
        .map(|_| {
            let (server, user) = (server.clone(), user.clone());
            tokio::spawn(async move {
                server
                    .handle_tool_call("test_block", json!({}), &user)
                    .await
            })
        })
        .collect();
    blocker.wait_started(2).await;
    let mut metrics = String::new();
    server.metrics().render(&mut metrics);
    assert!(
        metrics.contains("webops_mcp_tool_calls_in_flight 2"),
        "{metrics}"
    );

    let busy = logs(&server, "u").await;
    assert_eq!(busy.error_kind, Some(ToolErrorKind::Busy));
    assert_eq!(busy.text(), "server busy: 2 calls in flight; retry shortly");

    blocker.release.add_permits(2);
    for call in running {
        assert!(!call.await.unwrap().is_error);
    }
    let mut metrics = String::new();
    server.metrics().render(&mut metrics);
    assert!(
        metrics.contains("webops_mcp_tool_calls_in_flight 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_waiting_call_takes_a_slot_freed_during_its_wait() {
    let blocker = Blocker::default();
    let server = server(
        SecurityConfig::default()
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_secs(30)),
        &blocker,
    );
    let user = identity("u", &["logs:read"]);
    let holder = {
        let (server, user) = (server.clone(), user.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call("test_block", json!({}), &user)
                .await
        })
    };
    blocker.wait_started(1).await;
    let waiting = {
        let server = server.clone();
        tokio::spawn(async move { logs(&server, "u").await })
    };
    blocker.release.add_permits(1);
    assert!(!holder.await.unwrap().is_error);
    let waited = waiting.await.unwrap();
    assert!(!waited.is_error, "{}", waited.text());
}

/// With one slot, `n` sequential calls that each end some way must leave the slot free.
async fn slot_is_free(server: &WebOpsMcpServer) {
    let ok = logs(server, "u").await;
    assert!(!ok.is_error, "the slot leaked: {}", ok.text());
}

#[tokio::test]
async fn slots_are_released_after_errors_panics_and_cancellation() {
    let blocker = Blocker::default();
    let server = server(
        SecurityConfig::default()
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_millis(10)),
        &blocker,
    );
    let user = identity("u", &["logs:read"]);

    let failed = server
        .handle_tool_call("test_fails", json!({}), &user)
        .await;
    assert_eq!(failed.error_kind, Some(ToolErrorKind::Conflict));
    slot_is_free(&server).await;

    let invalid = server
        .handle_tool_call("test_get_logs", json!({"lines": -1}), &user)
        .await;
    assert_eq!(invalid.error_kind, Some(ToolErrorKind::InvalidArguments));
    slot_is_free(&server).await;

    let panicked = server
        .handle_tool_call("test_panics", json!({}), &user)
        .await;
    assert_eq!(panicked.error_kind, Some(ToolErrorKind::Internal));
    slot_is_free(&server).await;

    let cancel = CancellationToken::new();
    let call = {
        let (server, user, cancel) = (server.clone(), user.clone(), cancel.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call_with("test_block", json!({}), &user, cancel, None)
                .await
        })
    };
    blocker.wait_started(1).await;
    cancel.cancel();
    assert_eq!(
        call.await.unwrap().error_kind,
        Some(ToolErrorKind::Cancelled)
    );
    slot_is_free(&server).await;

    // A call whose future is dropped (client gone) frees its slot too.
    let call = {
        let (server, user) = (server.clone(), user.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call("test_block", json!({}), &user)
                .await
        })
    };
    blocker.wait_started(1).await;
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    slot_is_free(&server).await;

    let mut metrics = String::new();
    server.metrics().render(&mut metrics);
    assert!(
        metrics.contains("webops_mcp_tool_calls_in_flight 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_call_cancelled_while_waiting_for_a_slot_is_cancelled() {
    let blocker = Blocker::default();
    let server = server(
        SecurityConfig::default()
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_secs(60)),
        &blocker,
    );
    let user = identity("u", &["logs:read"]);
    let holder = {
        let (server, user) = (server.clone(), user.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call("test_block", json!({}), &user)
                .await
        })
    };
    blocker.wait_started(1).await;
    let cancel = CancellationToken::new();
    let waiting = {
        let (server, user, cancel) = (server.clone(), user.clone(), cancel.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call_with(
                    "test_get_logs",
                    json!({"deployment_id": 1}),
                    &user,
                    cancel,
                    None,
                )
                .await
        })
    };
    cancel.cancel();
    assert_eq!(
        waiting.await.unwrap().error_kind,
        Some(ToolErrorKind::Cancelled)
    );
    blocker.release.add_permits(1);
    assert!(!holder.await.unwrap().is_error);
}
