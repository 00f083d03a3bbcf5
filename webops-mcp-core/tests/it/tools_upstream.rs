//! Odd and failing upstream answers become tool errors an agent can act on: over real HTTP
//! with the testkit's fault injection, and with a scripted `MockWebOpsApi` for answers the
//! mock server never gives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::{self, Env, admin, server};
use serde_json::json;
use webops_client::{Client, Error as ApiError, ErrorKind as ApiErrorKind, MockWebOpsApi};
use webops_mcp_core::ToolErrorKind;
use webops_mcp_testkit::{Fault, MockWebOps, Seed};

#[tokio::test]
async fn wrong_server_credentials_are_an_operator_problem() {
    let mock = MockWebOps::builder()
        .seed(Seed::Demo)
        .start()
        .await
        .unwrap();
    let client = Client::builder()
        .base_url(mock.base_url())
        .token("not-the-token")
        .max_retries(0)
        .build()
        .unwrap();
    let server = server(Arc::new(client));
    let result = server
        .handle_tool_call("webops_list_deployments", json!({}), &admin())
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::Upstream));
    assert!(
        result.text().contains("WEBOPS_API_KEY"),
        "{}",
        result.text()
    );
    assert!(!result.text().contains("not-the-token"));
}

#[tokio::test]
async fn rate_limits_outages_and_garbage() {
    let env = Env::demo().await;
    let cases = [
        (
            Fault::status(429).retry_after(30),
            ToolErrorKind::Upstream,
            "retry in 30 seconds",
        ),
        (
            Fault::status(503),
            ToolErrorKind::Unavailable,
            "unreachable",
        ),
        (Fault::html(502), ToolErrorKind::Unavailable, "unreachable"),
        (
            Fault::status(500),
            ToolErrorKind::Unavailable,
            "internal error",
        ),
        (
            Fault::truncated_json(200),
            ToolErrorKind::Internal,
            "could not read",
        ),
        (Fault::empty(200), ToolErrorKind::Internal, "could not read"),
    ];
    for (fault, kind, says) in cases {
        env.mock.inject(fault);
        let msg = env.err("webops_system_health", json!({}), kind).await;
        assert!(msg.contains(says), "{kind:?}: {msg}");
    }
}

#[tokio::test]
async fn an_unreachable_webops_is_unavailable() {
    let mock = MockWebOps::builder().start().await.unwrap();
    let client = support::client(&mock);
    mock.shutdown().await;
    let server = server(Arc::new(client));
    let result = server
        .handle_tool_call("webops_get_status", json!({"deployment_id": 1}), &admin())
        .await;
    assert_eq!(
        result.error_kind,
        Some(ToolErrorKind::Unavailable),
        "{}",
        result.text()
    );
    assert!(result.text().contains("retry"));
}

#[tokio::test]
async fn a_slow_webops_is_a_timeout() {
    let mock = MockWebOps::builder()
        .seed(Seed::Demo)
        .start()
        .await
        .unwrap();
    let client = Client::builder()
        .base_url(mock.base_url())
        .token(mock.token())
        .timeout(Duration::from_millis(200))
        .max_retries(0)
        .build()
        .unwrap();
    mock.inject(Fault::delay(Duration::from_secs(5)));
    let server = server(Arc::new(client));
    let result = server
        .handle_tool_call("webops_system_health", json!({}), &admin())
        .await;
    assert_eq!(
        result.error_kind,
        Some(ToolErrorKind::Timeout),
        "{}",
        result.text()
    );
}

fn detail(status: &str) -> webops_client::DeploymentDetail {
    serde_json::from_value(json!({
        "id": 4, "name": "odd-app", "status": status, "environment": "qa",
        "project_type": "django", "repo_url": "https://github.com/acme/odd.git",
        "branch": "main", "created_at": "2025-01-01T00:00:00+00:00",
        "updated_at": "2025-01-02T00:00:00.123Z",
        "deployed_by": {"id": 1, "username": "ops"},
        "health": {"is_healthy": true}
    }))
    .unwrap()
}

#[tokio::test]
async fn unknown_states_and_environments_are_shown_as_they_are() {
    let mut api = MockWebOpsApi::new();
    api.expect_get_deployment()
        .returning(|_| Ok(detail("paused")));
    api.expect_restart().returning(|_| {
        Err(ApiError::new(
            ApiErrorKind::Conflict,
            "cannot restart a paused app",
        ))
    });
    let server = server(Arc::new(api));
    let result = server
        .handle_tool_call("webops_get_status", json!({"deployment_id": 4}), &admin())
        .await;
    assert!(!result.is_error, "{}", result.text());
    let d = &result.structured_content.as_ref().unwrap()["deployment"];
    assert_eq!(d["status"], "paused");
    assert_eq!(d["environment"], "qa");
    assert_eq!(d["instances"], 1);

    let result = server
        .handle_tool_call(
            "webops_manage_service",
            json!({"deployment_id": 4, "action": "restart"}),
            &admin(),
        )
        .await;
    assert_eq!(result.error_kind, Some(ToolErrorKind::Conflict));
    assert_eq!(
        result.text(),
        "odd-app is paused; WebOps refused to restart: cannot restart a paused app"
    );
}

#[tokio::test]
async fn an_audit_of_a_sparse_deployment_still_works() {
    let mut api = MockWebOpsApi::new();
    api.expect_get_deployment()
        .returning(|_| Ok(detail("running")));
    api.expect_databases().returning(|| Ok(Vec::new()));
    let server = server(Arc::new(api));
    let result = server
        .handle_tool_call(
            "webops_security_audit",
            json!({"deployment_id": 4, "audit_type": "compliance"}),
            &admin(),
        )
        .await;
    assert!(!result.is_error, "{}", result.text());
    let out = result.structured_content.unwrap();
    let ids: Vec<&str> = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    // ssl off (defaults to false) in a non-production environment is informational; no
    // SECRET_KEY; no memory limit.
    assert!(ids.contains(&"WEBOPS-SEC-003"), "{ids:?}");
    assert!(ids.contains(&"WEBOPS-SEC-012"), "{ids:?}");
}

#[tokio::test]
async fn every_tool_reports_an_outage_as_unavailable() {
    let env = Env::demo().await;
    let calls = [
        (
            "webops_deploy_app",
            json!({"app_name": "n", "repository": "https://github.com/acme/n.git"}),
        ),
        ("webops_get_status", json!({"deployment_id": "shop-api"})),
        ("webops_list_deployments", json!({})),
        ("webops_get_logs", json!({"deployment_id": "shop-api"})),
        (
            "webops_manage_service",
            json!({"deployment_id": "shop-api", "action": "restart"}),
        ),
        ("webops_security_audit", json!({})),
        ("webops_system_health", json!({})),
        (
            "webops_delete_deployment",
            json!({"deployment_id": "shop-api", "confirm_name": "shop-api"}),
        ),
    ];
    for (tool, args) in calls {
        let path = if tool == "webops_system_health" {
            "/monitoring/"
        } else {
            "/deployments/"
        };
        env.mock
            .inject(Fault::status(503).retry_after(2).on_path(path));
        let msg = env.err(tool, args, ToolErrorKind::Unavailable).await;
        assert!(msg.contains("retry"), "{tool}: {msg}");
    }
    assert_eq!(env.mock.deployment_count(), 8);
    assert!(env.mock.deployment_id("n").is_none());
}
