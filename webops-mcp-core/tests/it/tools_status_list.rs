//! `webops_get_status` and `webops_list_deployments` through the pipeline against the
//! testkit's demo platform over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{Env, find, identity};
use serde_json::json;
use webops_mcp_core::ToolErrorKind;
use webops_mcp_testkit::MockWebOps;

#[tokio::test]
async fn status_of_one_deployment_by_id_or_name() {
    let env = Env::demo().await;
    let id = env.id("billing-portal");
    for reference in [json!(id), json!("billing-portal"), json!(id.to_string())] {
        let (out, text) = env
            .ok("webops_get_status", json!({"deployment_id": reference}))
            .await;
        let d = &out["deployment"];
        assert_eq!(d["id"], id);
        assert_eq!(d["name"], "billing-portal");
        assert_eq!(d["status"], "running");
        assert_eq!(d["instances"], 3);
        assert_eq!(d["branch"], "release");
        assert!(d.get("metrics").is_none() && d.get("logs").is_none());
        assert!(
            d["env_var_names"]
                .as_array()
                .unwrap()
                .contains(&json!("SECRET_KEY"))
        );
        assert!(text.contains("billing-portal (id"), "{text}");
        assert!(out.get("summary").is_none());
    }
}

#[tokio::test]
async fn status_with_metrics_and_logs() {
    let env = Env::demo().await;
    let (out, text) = env
        .ok(
            "webops_get_status",
            json!({"deployment_id": "search-api", "include_metrics": true,
                   "include_logs": true}),
        )
        .await;
    let d = &out["deployment"];
    assert_eq!(d["health"]["healthy"], false);
    assert_eq!(d["metrics"]["error_rate_percent"], 12.7);
    let logs = d["logs"].as_array().unwrap();
    assert!(!logs.is_empty() && logs.len() <= 20);
    assert!(text.contains("<<<UNTRUSTED LOG DATA") && text.contains("END>>>"));
    assert!(text.contains("error rate 12.7%"), "{text}");
}

#[tokio::test]
async fn logs_in_status_need_logs_read() {
    let env = Env::demo().await;
    let viewer = identity("tester", &["deploy:read"]);
    let result = env
        .server
        .handle_tool_call(
            "webops_get_status",
            json!({"deployment_id": "shop-api", "include_logs": true}),
            &viewer,
        )
        .await;
    assert!(!result.is_error, "{}", result.text());
    let d = &result.structured_content.as_ref().unwrap()["deployment"];
    assert!(d.get("logs").is_none());
    assert!(d["notes"][0].as_str().unwrap().contains("logs:read"));
    assert!(!result.text().contains("UNTRUSTED LOG DATA"));
    assert!(
        env.mock
            .requests()
            .iter()
            .all(|r| !r.path.contains("/logs/")),
        "logs were fetched without logs:read"
    );
}

#[tokio::test]
async fn summary_of_all_deployments() {
    let env = Env::demo().await;
    let (out, text) = env.ok("webops_get_status", json!({})).await;
    let s = &out["summary"];
    assert_eq!(s["total"], 8);
    assert_eq!(s["by_status"]["running"], 4);
    assert_eq!(s["by_status"]["failed"], 1);
    assert_eq!(s["by_status"]["stopped"], 1);
    assert_eq!(s["by_status"]["pending"], 1);
    assert_eq!(s["by_status"]["building"], 1);
    assert_eq!(s["by_environment"]["production"], 3);
    assert_eq!(s["by_environment"]["staging"], 3);
    assert_eq!(s["by_environment"]["development"], 2);
    assert_eq!(s["deployments"].as_array().unwrap().len(), 8);
    assert_eq!(s["truncated"], false);
    assert!(text.starts_with("8 deployments:"), "{text}");
    assert_eq!(text.lines().count(), 9, "{text}");
}

#[tokio::test]
async fn unknown_deployments_say_how_to_find_one() {
    let env = Env::demo().await;
    let msg = env
        .err(
            "webops_get_status",
            json!({"deployment_id": "no-such-app"}),
            ToolErrorKind::NotFound,
        )
        .await;
    assert!(msg.contains("No deployment named 'no-such-app'"), "{msg}");
    assert!(msg.contains("webops_list_deployments"));
    let msg = env
        .err(
            "webops_get_status",
            json!({"deployment_id": 9999}),
            ToolErrorKind::NotFound,
        )
        .await;
    assert!(msg.contains("No deployment with id 9999"), "{msg}");
    env.err(
        "webops_get_status",
        json!({"deployment_id": 1.5}),
        ToolErrorKind::InvalidArguments,
    )
    .await;
}

#[tokio::test]
async fn list_filters_by_status_with_error_and_pending_mapped() {
    let env = Env::demo().await;
    let names = |out: &serde_json::Value| -> Vec<String> {
        out["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let (out, _) = env
        .ok("webops_list_deployments", json!({"status": "error"}))
        .await;
    assert_eq!(names(&out), ["inventory-sync"]);
    assert_eq!(out["status"], "error");
    assert_eq!(out["deployments"][0]["status"], "failed");

    let (out, _) = env
        .ok("webops_list_deployments", json!({"status": "pending"}))
        .await;
    let mut pending = names(&out);
    pending.sort();
    assert_eq!(pending, ["docs-portal", "payments-worker"]);

    let (out, text) = env
        .ok(
            "webops_list_deployments",
            json!({"status": "running", "environment": "production"}),
        )
        .await;
    let mut running = names(&out);
    running.sort();
    assert_eq!(running, ["billing-portal", "search-api", "shop-api"]);
    assert!(
        text.contains("environment production, status running"),
        "{text}"
    );
    let shop = find(&out["deployments"], "name", "shop-api");
    assert_eq!(shop["environment"], "production");

    let (out, text) = env
        .ok(
            "webops_list_deployments",
            json!({"status": "stopped", "environment": "production"}),
        )
        .await;
    assert_eq!(out["count"], 0);
    assert!(text.starts_with("No deployments"), "{text}");
}

#[tokio::test]
async fn list_limits_and_walks_pages() {
    let env = Env::with(MockWebOps::builder().generated_deployments(150)).await;
    let (out, text) = env
        .ok("webops_list_deployments", json!({"limit": 120}))
        .await;
    assert_eq!(out["count"], 120);
    assert_eq!(out["truncated"], true);
    assert!(text.contains("more match"), "{text}");
    let pages: Vec<String> = env
        .mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/deployments/"))
        .filter_map(|r| r.query.clone())
        .collect();
    assert!(pages.iter().any(|q| q.contains("page=2")), "{pages:?}");

    let (out, _) = env
        .ok("webops_list_deployments", json!({"limit": 200}))
        .await;
    assert_eq!(out["count"], 150);
    assert_eq!(out["truncated"], false);

    let (out, _) = env.ok("webops_list_deployments", json!({})).await;
    assert_eq!(out["count"], 50);

    for bad in [
        json!({"limit": 0}),
        json!({"limit": 201}),
        json!({"status": "failed"}),
    ] {
        env.err(
            "webops_list_deployments",
            bad,
            ToolErrorKind::InvalidArguments,
        )
        .await;
    }
}
