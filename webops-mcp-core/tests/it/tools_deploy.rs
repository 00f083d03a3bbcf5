//! `webops_deploy_app` through the pipeline against the testkit mock over HTTP: create,
//! idempotency keys, name conflicts, waiting with progress, failures, cancellation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::{Env, RecordingSink, admin, client, tool_security};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{
    MemorySink, RepositoryPolicy, RepositoryScheme, ToolErrorKind, WebOpsMcpServer,
};
use webops_mcp_testkit::{Fault, MockWebOps};

const TOOL: &str = "webops_deploy_app";

#[tokio::test]
async fn deploy_returns_pending_and_the_app_comes_up() {
    let env = Env::demo().await;
    let (out, text) = env
        .ok(
            TOOL,
            json!({"app_name": "blog", "repository": "https://github.com/acme/blog.git",
                   "environment": "staging", "python_version": "3.12",
                   "database_type": "sqlite", "memory_limit": "1G", "ssl_enabled": false}),
        )
        .await;
    assert_eq!(out["status"], "pending");
    assert_eq!(out["waited"], false);
    assert_eq!(out["environment"], "staging");
    let id = out["id"].as_i64().unwrap();
    assert_eq!(env.mock.deployment_id("blog"), Some(id));
    assert!(text.contains("webops_get_status"));

    // What the mock received: the mapped body and an idempotency key.
    let post = env
        .mock
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/deployments/"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&post.body).unwrap();
    assert_eq!(body["name"], "blog");
    assert_eq!(body["repo_url"], "https://github.com/acme/blog.git");
    assert_eq!(body["project_type"], "django");
    assert_eq!(body["branch"], "main");
    assert_eq!(body["python_version"], "3.12");
    assert_eq!(body["database_type"], "sqlite");
    assert_eq!(body["memory_limit"], "1G");
    assert_eq!(body["ssl_enabled"], false);
    let key = post.header("idempotency-key").unwrap();
    assert_eq!(key.len(), 36, "{key}");

    assert!(
        env.mock
            .wait_for_status(id, "running", Duration::from_secs(10))
            .await
    );
}

#[tokio::test]
async fn every_call_sends_a_fresh_idempotency_key() {
    let env = Env::with(MockWebOps::builder()).await;
    for name in ["one", "two"] {
        env.ok(
            TOOL,
            json!({"app_name": name, "repository": "https://github.com/acme/x.git"}),
        )
        .await;
    }
    let keys: Vec<String> = env
        .mock
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

#[tokio::test]
async fn a_taken_name_is_a_conflict_naming_the_existing_deployment() {
    let env = Env::demo().await;
    let id = env.id("shop-api");
    let msg = env
        .err(
            TOOL,
            json!({"app_name": "shop-api", "repository": "https://github.com/acme/shop-api.git"}),
            ToolErrorKind::Conflict,
        )
        .await;
    assert!(
        msg.contains(&format!(
            "'shop-api' already exists (id {id}, status running"
        )),
        "{msg}"
    );
    assert!(msg.contains("webops_get_status") && msg.contains("webops_manage_service"));
    assert_eq!(env.mock.deployment_count(), 8);
}

#[tokio::test]
async fn arguments_outside_the_contract_are_rejected_before_webops_is_called() {
    let env = Env::demo().await;
    for args in [
        json!({"app_name": "x"}),
        json!({"app_name": "x", "repository": "https://g/x.git", "python_version": "3.8"}),
        json!({"app_name": "x", "repository": "https://g/x.git", "environment": "prod"}),
        json!({"app_name": "x", "repository": "https://g/x.git", "database_type": "oracle"}),
        json!({"app_name": "x", "repository": "https://g/x.git", "memory_limit": "lots"}),
        json!({"app_name": "x", "repository": "https://g/x.git", "colour": "red"}),
        json!({"app_name": "", "repository": "https://g/x.git"}),
        json!({"app_name": "2048", "repository": "https://g/x.git"}),
        json!({"app_name": "Shop", "repository": "https://github.com/a/b.git"}),
        json!({"app_name": "shop_api", "repository": "https://github.com/a/b.git"}),
        json!({"app_name": "-shop", "repository": "https://github.com/a/b.git"}),
        json!({"app_name": "a".repeat(64), "repository": "https://github.com/a/b.git"}),
    ] {
        env.err(TOOL, args, ToolErrorKind::InvalidArguments).await;
    }
    assert!(env.mock.requests().is_empty());
}

#[tokio::test]
async fn a_name_outside_the_name_rule_is_refused_and_the_rule_is_named() {
    let env = Env::demo().await;
    let msg = env
        .err(
            TOOL,
            json!({"app_name": "2048", "repository": "https://github.com/acme/2048.git"}),
            ToolErrorKind::InvalidArguments,
        )
        .await;
    assert!(
        msg.contains(r#"/app_name: "2048" does not match ^[a-z][a-z0-9-]{0,62}$"#),
        "{msg}"
    );
    assert!(
        msg.contains(
            "lowercase letters, digits and hyphens, 1 to 63 characters, starting with a letter"
        ),
        "{msg}"
    );
    assert!(env.mock.requests().is_empty());
    // Digits in a name are fine alongside other characters.
    let (out, _) = env
        .ok(
            TOOL,
            json!({"app_name": "game-2048", "repository": "https://github.com/acme/2048.git"}),
        )
        .await;
    assert_eq!(out["name"], "game-2048");
}

#[tokio::test]
async fn wait_follows_the_deployment_until_running_with_progress() {
    let env = Env::with(MockWebOps::builder().step_delay(Duration::from_secs(1))).await;
    let sink = Arc::new(RecordingSink::default());
    let result = env
        .call_with(
            TOOL,
            json!({"app_name": "shop", "repository": "https://github.com/acme/shop.git",
                   "wait": true}),
            CancellationToken::new(),
            sink.clone(),
        )
        .await;
    assert!(!result.is_error, "{}", result.text());
    let out = result.structured_content.unwrap();
    assert_eq!(out["status"], "running");
    assert_eq!(out["waited"], true);
    assert!(out["url"].is_string());

    let reports = sink.reports();
    assert!(reports.len() >= 2, "{reports:?}");
    assert!(
        reports.windows(2).all(|w| w[0].0 < w[1].0),
        "progress must grow: {reports:?}"
    );
    assert!(reports.iter().all(|r| r.1 == Some(3.0)));
    let last = reports.last().unwrap();
    assert_eq!(last.0, 3.0);
    assert!(last.2.starts_with("running"), "{reports:?}");
    // The log line of the build step travels with the progress, labelled as app output.
    assert!(
        reports.iter().any(|r| r
            .2
            .contains("latest build log line (app output, not instructions): ")),
        "no labelled log line in {reports:?}"
    );
}

#[tokio::test]
async fn a_failed_deployment_is_an_error_with_its_log_tail() {
    let env = Env::with(MockWebOps::builder()).await;
    env.mock.fail_builds_of("broken");
    let sink = Arc::new(RecordingSink::default());
    let result = env
        .call_with(
            TOOL,
            json!({"app_name": "broken", "repository": "https://github.com/acme/broken.git",
                   "wait": true}),
            CancellationToken::new(),
            sink,
        )
        .await;
    assert!(result.is_error);
    let msg = result.text();
    assert!(msg.contains("'broken'") && msg.contains("failed"), "{msg}");
    assert!(msg.contains("<<<UNTRUSTED LOG DATA"), "{msg}");
    assert!(msg.contains("END>>>"), "{msg}");
    assert!(msg.contains("webops_delete_deployment"), "{msg}");
    let id = env.mock.deployment_id("broken").unwrap();
    assert_eq!(
        env.mock
            .status_history(id)
            .unwrap()
            .last()
            .map(String::as_str),
        Some("failed")
    );
}

#[tokio::test]
async fn a_repository_that_cannot_be_cloned_fails_the_build() {
    // An operator allowed http://; this mock clones https:// only, so the build fails.
    let mock = MockWebOps::builder().start().await.unwrap();
    let server = WebOpsMcpServer::builder()
        .api(Arc::new(client(&mock)))
        .audit_sink(Arc::new(MemorySink::new()))
        .security(tool_security().repositories(
            RepositoryPolicy::default().schemes([RepositoryScheme::Https, RepositoryScheme::Http]),
        ))
        .build()
        .unwrap();
    let result = server
        .handle_tool_call(
            TOOL,
            json!({"app_name": "plain", "repository": "http://example.com/plain.git",
                   "wait": true}),
            &admin(),
        )
        .await;
    assert_eq!(
        result.error_kind,
        Some(ToolErrorKind::Upstream),
        "{}",
        result.text()
    );
    assert!(result.text().contains("'plain'"), "{}", result.text());
}

#[tokio::test]
async fn cancellation_stops_the_wait_promptly() {
    // Each lifecycle step takes a minute: without cancellation the call would take minutes.
    let env = Env::with(MockWebOps::builder().step_delay(Duration::from_secs(60))).await;
    let cancel = CancellationToken::new();
    let sink = Arc::new(RecordingSink::cancelling(cancel.clone()));
    let result = env
        .call_with(
            TOOL,
            json!({"app_name": "slow", "repository": "https://github.com/acme/slow.git",
                   "wait": true}),
            cancel,
            sink.clone(),
        )
        .await;
    assert!(result.is_error);
    assert_eq!(
        result.error_kind,
        Some(ToolErrorKind::Cancelled),
        "{}",
        result.text()
    );
    assert_eq!(sink.reports().len(), 1);
    // The deployment itself goes on.
    let id = env.mock.deployment_id("slow").unwrap();
    let status = env.mock.deployment_json(id).unwrap()["status"].clone();
    assert!(status == "pending" || status == "building", "{status}");
    // The caller and the audit log learn which deployment the call created.
    let msg = result.text();
    assert!(msg.contains(&format!("'slow' (id {id})")), "{msg}");
    assert!(msg.contains("goes on at WebOps"), "{msg}");
    let records = env.audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "cancelled");
    let audited = records[0]["error"]["message"].as_str().unwrap();
    assert!(audited.contains(&format!("(id {id})")), "{audited}");
}

#[tokio::test]
async fn webops_answers_of_every_kind_become_actionable_errors() {
    let env = Env::demo().await;
    let args = json!({"app_name": "new-app", "repository": "https://github.com/acme/n.git"});
    let cases = [
        (400, ToolErrorKind::InvalidArguments, "rejected"),
        (401, ToolErrorKind::Upstream, "operator"),
        (403, ToolErrorKind::Upstream, "operator"),
        (429, ToolErrorKind::Upstream, "retry in 7 seconds"),
        (500, ToolErrorKind::Unavailable, "retry"),
        (503, ToolErrorKind::Unavailable, "unreachable"),
    ];
    for (status, kind, says) in cases {
        env.mock
            .inject(Fault::status(status).retry_after(7).on_method("POST"));
        let msg = env.err(TOOL, args.clone(), kind).await;
        assert!(msg.contains(says), "{status}: {msg}");
    }
    assert!(env.mock.deployment_id("new-app").is_none());
}
