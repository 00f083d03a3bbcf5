//! No env var value (or other secret) of a deployment ever reaches a caller: every tool is
//! called through the pipeline on the demo's `shop-api`, whose environment holds a Django
//! secret key, a database password and AWS keys that also appear in its logs, and on
//! `private-app`, deployed from repository URLs with tokens in their user part, and every
//! text, structured result, error message and audit record is searched for them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::support::{RecordingSink, admin, client, tool_security};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{MemorySink, WebOpsMcpServer};
use webops_mcp_testkit::{MockWebOps, Seed, SeedDeployment};

/// Tokens in the user part of repository URLs (`https://TOKEN@host`,
/// `https://TOKEN:x-oauth-basic@host`), as GitHub documents them.
const URL_TOKENS: [&str; 3] = [
    "ghp_Zq8Xw2Vb6Nm4Lk1Jh9Gf7Dd5Ss3Aa0Pp2Oo4",
    "github_pat_11ABCDEF0aaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
];

/// Whether an env var `name` of the demo seed names a secret: this test's own list, not the
/// server's (which it checks).
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["KEY", "SECRET", "PASSWORD", "TOKEN", "DSN", "CREDENTIAL"]
        .iter()
        .any(|part| upper.contains(part))
}

/// The values that must never be shown: every env var value of `shop-api` of six characters
/// or more, and the secret-named env var values of every deployment.
fn forbidden(mock: &MockWebOps) -> Vec<String> {
    let mut values = Vec::new();
    let shop = mock.deployment_id("shop-api").unwrap();
    for id in 1..=20 {
        let Some(detail) = mock.deployment_json(id) else {
            continue;
        };
        for (name, value) in detail["env_vars"].as_object().unwrap() {
            let value = value.as_str().unwrap();
            if value.len() >= 6 && (id == shop || is_secret_name(name)) {
                values.push(value.to_owned());
            }
        }
    }
    assert!(values.len() >= 8, "{values:?}");
    // Parts of values, and a token that only the access log holds.
    values
        .extend(["S3cretPass", "blogpass", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"].map(str::to_owned));
    values.extend(URL_TOKENS.map(str::to_owned));
    // Parts of the tokens: the masking must take the whole user part.
    values.extend(["Zq8Xw2Vb6Nm4", "11ABCDEF0aaa", "0f1e2d3c4b5a"].map(str::to_owned));
    values
}

/// A deployment cloned with a token in its repository URL, whose build log shows another.
fn private_app() -> SeedDeployment {
    SeedDeployment::new("private-app")
        .repo_url(format!(
            "https://{}@github.com/acme/private.git",
            URL_TOKENS[0]
        ))
        .log(
            "deployment",
            "info",
            format!(
                "Cloning https://{}:x-oauth-basic@github.com/acme/private.git",
                URL_TOKENS[1]
            ),
        )
        .log("deployment", "info", "Build finished")
}

#[tokio::test]
async fn no_tool_output_or_audit_record_contains_an_env_var_value() {
    let mock = MockWebOps::builder()
        .seed(Seed::Demo)
        .deployment(private_app())
        .start()
        .await
        .unwrap();
    let secrets = forbidden(&mock);
    let sink = Arc::new(MemorySink::new());
    let server = WebOpsMcpServer::builder()
        .api(Arc::new(client(&mock)))
        .audit_sink(sink.clone())
        .security(tool_security())
        .build()
        .unwrap();

    let shop = "shop-api";
    let mut calls = vec![
        (
            "webops_get_status",
            json!({"deployment_id": shop, "include_logs": true,
                                     "include_metrics": true}),
        ),
        ("webops_get_status", json!({})),
        ("webops_list_deployments", json!({"limit": 200})),
        ("webops_system_health", json!({"time_range": "7d"})),
        ("webops_security_audit", json!({"deployment_id": shop})),
        ("webops_security_audit", json!({"audit_type": "compliance"})),
        (
            "webops_security_audit",
            json!({"audit_type": "basic",
                                         "include_recommendations": false}),
        ),
        (
            "webops_deploy_app",
            json!({"app_name": shop,
                                     "repository": "https://github.com/acme/shop-api.git"}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": shop, "action": "scale_up"}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": shop, "action": "restart"}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": shop, "action": "stop"}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": shop, "action": "restart"}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": shop, "action": "start"}),
        ),
        // Secrets a caller pastes into arguments are not echoed back either.
        (
            "webops_get_logs",
            json!({"deployment_id": shop,
                                   "since": "SECRET_KEY=django-insecure-changeme"}),
        ),
        (
            "webops_delete_deployment",
            json!({"deployment_id": shop,
                                            "confirm_name": "password=S3cretPass"}),
        ),
    ];
    // The tokens in repository URLs: in summaries, details, logs, audits and arguments.
    let private = "private-app";
    calls.extend([
        ("webops_get_status", json!({"deployment_id": private})),
        (
            "webops_get_logs",
            json!({"deployment_id": private, "log_type": "deployment"}),
        ),
        ("webops_security_audit", json!({"deployment_id": private})),
        (
            "webops_deploy_app",
            json!({"app_name": "cloned",
                   "repository": format!("https://{}:x-oauth-basic@github.com/acme/cloned.git",
                                         URL_TOKENS[2])}),
        ),
        ("webops_list_deployments", json!({"limit": 200})),
        ("webops_get_status", json!({})),
    ]);
    // Secrets pasted as property names are not echoed either (nor audited).
    let mut pasted = serde_json::Map::new();
    pasted.insert("deployment_id".into(), json!(private));
    pasted.insert(URL_TOKENS[0].into(), json!(true));
    pasted.insert("password=S3cretPass".into(), json!(1));
    calls.push(("webops_get_status", Value::Object(pasted)));
    for log_type in ["application", "access", "error", "deployment"] {
        calls.push((
            "webops_get_logs",
            json!({"deployment_id": shop, "log_type": log_type, "lines": 1000}),
        ));
    }
    calls.push((
        "webops_delete_deployment",
        json!({"deployment_id": shop, "confirm_name": shop}),
    ));

    let mut seen = Vec::new();
    for (tool, args) in calls {
        let result = server.handle_tool_call(tool, args.clone(), &admin()).await;
        seen.push((
            format!("{tool} {args}"),
            result.text(),
            result
                .structured_content
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default(),
        ));
    }
    // A deployment followed with wait, with its progress messages.
    let sink_progress = Arc::new(RecordingSink::default());
    let result = server
        .handle_tool_call_with(
            "webops_deploy_app",
            json!({"app_name": "fresh", "repository": "https://github.com/acme/fresh.git",
                   "wait": true}),
            &admin(),
            CancellationToken::new(),
            Some(sink_progress.clone()),
        )
        .await;
    assert!(!result.is_error, "{}", result.text());
    let progress: Vec<String> = sink_progress.reports().into_iter().map(|r| r.2).collect();
    assert!(!progress.is_empty());
    seen.push(("deploy wait".to_owned(), result.text(), progress.join("\n")));

    for (call, text, structured) in &seen {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{call}: text shows {secret:?}:\n{text}"
            );
            assert!(
                !structured.contains(secret.as_str()),
                "{call}: structured content shows {secret:?}"
            );
        }
    }
    let records = sink.lines();
    assert!(records.len() >= seen.len());
    for record in &records {
        for secret in &secrets {
            assert!(
                !record.contains(secret.as_str()),
                "audit record shows {secret:?}"
            );
        }
    }
    // The calls did real work: the logs were read and the deployment is gone.
    assert!(
        seen.iter()
            .any(|(_, text, _)| text.contains("Connecting to database"))
    );
    assert!(mock.deployment_id(shop).is_none());
    assert!(
        seen.iter()
            .any(|(_, text, _)| text.contains("Cloning https://<redacted>@github.com"))
    );
    assert!(seen.iter().any(|(call, _, structured)| {
        call.starts_with("webops_get_status {\"deployment_id\":\"private-app\"")
            && structured.contains("https://<redacted>@github.com/acme/private.git")
    }));
    // The deploy with a token in its repository URL was refused before it reached WebOps.
    assert!(mock.deployment_id("cloned").is_none());
    assert!(seen.iter().any(|(call, text, _)| {
        call.starts_with("webops_deploy_app {\"app_name\":\"cloned\"")
            && text.contains("it contains a password")
    }));
}
