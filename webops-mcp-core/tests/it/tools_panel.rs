//! Every tool against the testkit's mock of the shipped WebOps control panel, through the
//! real panel client over loopback HTTP: what each tool can and cannot do there, said
//! honestly, and how many panel requests each one spends, cold and warm.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::support::{admin, find, server};
use serde_json::{Value, json};
use webops_client::{Client, Flavor};
use webops_mcp_core::{ToolErrorKind, WebOpsMcpServer};
use webops_mcp_testkit::{MockPanel, PANEL_PASSWORD, PANEL_USER, PanelSeed};

struct Panel {
    mock: MockPanel,
    server: WebOpsMcpServer,
}

impl Panel {
    async fn demo() -> Panel {
        let mock = MockPanel::builder()
            .seed(PanelSeed::Demo)
            // The budget is under test elsewhere: here each call's cost is counted.
            .rate_limit(None)
            .start()
            .await
            .unwrap();
        let api = Client::builder()
            .base_url(mock.base_url())
            .flavor(Flavor::Auto)
            .credentials(PANEL_USER, PANEL_PASSWORD)
            .budget(0, Duration::from_secs(60))
            .timeout(Duration::from_secs(10))
            .build_any()
            .unwrap();
        Panel {
            server: server(Arc::new(api)),
            mock,
        }
    }

    /// Calls `tool`; the result and how many panel requests it cost.
    async fn call(&self, tool: &str, args: Value) -> (bool, Value, String, usize) {
        let before = self.mock.requests().len();
        let result = self.server.handle_tool_call(tool, args, &admin()).await;
        let cost = self.mock.requests().len() - before;
        let structured = result.structured_content.clone().unwrap_or(Value::Null);
        (result.is_error, structured, result.text(), cost)
    }

    async fn ok(&self, tool: &str, args: Value) -> (Value, String, usize) {
        let (failed, structured, text, cost) = self.call(tool, args).await;
        assert!(!failed, "{tool} failed: {text}");
        (structured, text, cost)
    }

    async fn err(&self, tool: &str, args: Value, kind: ToolErrorKind) -> (String, usize) {
        let before = self.mock.requests().len();
        let result = self.server.handle_tool_call(tool, args, &admin()).await;
        assert!(result.is_error, "{tool} succeeded: {}", result.text());
        assert_eq!(result.error_kind, Some(kind), "{}", result.text());
        (result.text(), self.mock.requests().len() - before)
    }
}

#[tokio::test]
async fn every_tool_against_a_control_panel() {
    let panel = Panel::demo().await;

    // list: cold = 2 flavour probes + 2 for the login + 1 page; warm = served from the cache.
    let (out, _, cold) = panel.ok("webops_list_deployments", json!({})).await;
    assert_eq!(cold, 5);
    let blog = find(&out["deployments"], "name", "blog");
    assert_eq!(blog["environment"], "none");
    let (_, _, warm) = panel
        .ok("webops_list_deployments", json!({"status": "running"}))
        .await;
    assert_eq!(warm, 0);
    let (text, _) = panel
        .err(
            "webops_list_deployments",
            json!({"environment": "production"}),
            ToolErrorKind::Unsupported,
        )
        .await;
    assert!(text.contains("no environments"), "{text}");

    // status with logs: the deployment log (the panel keeps no other), newest rows, notes.
    let (out, _, cost) = panel
        .ok(
            "webops_get_status",
            json!({"deployment_id": "blog", "include_logs": true, "include_metrics": true}),
        )
        .await;
    assert_eq!(cost, 2, "detail + logs, the name from the cache");
    let notes = out["deployment"]["notes"].to_string();
    assert!(notes.contains("no health checks"), "{notes}");
    assert!(notes.contains("deployment (build) log"), "{notes}");
    assert!(out["deployment"]["metrics"].is_null());

    // logs: newest `lines`, oldest first; application is refused naming what exists.
    let (out, text, cost) = panel
        .ok(
            "webops_get_logs",
            json!({"deployment_id": "api-worker", "log_type": "deployment", "lines": 10}),
        )
        .await;
    assert_eq!(cost, 2);
    assert!(text.contains("UNTRUSTED LOG DATA"));
    assert!(out["entries"].as_array().unwrap().len() <= 10);
    let (out, _, _) = panel
        .ok(
            "webops_get_logs",
            json!({"deployment_id": "api-worker", "log_type": "error"}),
        )
        .await;
    assert!(
        out["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["level"] == "error")
    );
    let (text, _) = panel
        .err(
            "webops_get_logs",
            json!({"deployment_id": "blog"}),
            ToolErrorKind::Unsupported,
        )
        .await;
    assert!(
        text.contains("deployment") && text.contains("error"),
        "{text}"
    );

    // manage: start works; stop is a clear error that says nothing changed; scale unsupported.
    let (out, _, cost) = panel
        .ok(
            "webops_manage_service",
            json!({"deployment_id": "shop", "action": "start"}),
        )
        .await;
    assert_eq!(out["status"], "running");
    // The write policy reads the deployment first to know whether it is production.
    assert_eq!(cost, 3, "detail (policy) + detail + start");
    let (text, cost) = panel
        .err(
            "webops_manage_service",
            json!({"deployment_id": "blog", "action": "stop"}),
            ToolErrorKind::Upstream,
        )
        .await;
    assert_eq!(
        cost, 4,
        "detail (policy) + detail + the failed stop + a read to check nothing changed"
    );
    assert!(text.contains("did not happen"), "{text}");
    assert!(text.contains("UNTRUSTED WEBOPS TEXT"), "{text}");
    assert_eq!(
        panel.mock.deployment_status("blog").as_deref(),
        Some("running")
    );
    let (text, _) = panel
        .err(
            "webops_manage_service",
            json!({"deployment_id": "blog", "action": "scale_up"}),
            ToolErrorKind::Unsupported,
        )
        .await;
    assert!(text.contains("no instances"), "{text}");

    // deploy: an explicit option the panel cannot honour is refused, with no create sent.
    let before = panel.mock.requests().len();
    let (text, _) = panel
        .err(
            "webops_deploy_app",
            json!({"app_name": "fresh", "repository": "https://example.com/acme/fresh.git",
                   "environment": "staging"}),
            ToolErrorKind::Unsupported,
        )
        .await;
    assert!(text.contains("environment"), "{text}");
    assert!(
        panel.mock.requests()[before..]
            .iter()
            .all(|r| r.method != "POST")
    );
    let (out, text, cost) = panel
        .ok(
            "webops_deploy_app",
            json!({"app_name": "fresh", "repository": "https://example.com/acme/fresh.git"}),
        )
        .await;
    assert_eq!(cost, 1, "the create alone");
    assert_eq!(out["status"], "pending");
    assert_eq!(out["environment"], "none");
    assert!(text.contains("fresh"));

    // security audit: the repo .env and the panel's checks are read; what it lacks is listed.
    let (out, text, cost) = panel
        .ok("webops_security_audit", json!({"deployment_id": "blog"}))
        .await;
    let rules: Vec<&str> = out["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"WEBOPS-SEC-018"), "{rules:?}");
    let evidence = |id: &str| {
        out["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule_id"] == id)
            .unwrap()["evidence"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Names are shown (values never): the reader must know which keys to rotate.
    let env_file = evidence("WEBOPS-SEC-018");
    assert!(
        env_file.contains("SECRET_KEY") && env_file.contains("DATABASE_URL"),
        "{env_file}"
    );
    assert!(env_file.contains("look like secrets"), "{env_file}");
    assert!(!env_file.contains("<redacted>"), "{env_file}");
    assert!(rules.contains(&"WEBOPS-SEC-019"), "{rules:?}");
    assert!(rules.contains(&"WEBOPS-SEC-002"), "{rules:?}");
    let not_checked: Vec<&str> = out["not_checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_id"].as_str().unwrap())
        .collect();
    assert!(not_checked.contains(&"WEBOPS-SEC-001"), "{not_checked:?}");
    assert!(!out["rules_run"].to_string().contains("WEBOPS-SEC-001"));
    assert!(text.contains("this is not a pass"), "{text}");
    assert!(
        cost <= 5,
        "detail, databases, .env, project checks (+ list): {cost}"
    );

    // system health: the panel's health endpoint and history; its stale sample is dated.
    let (out, _, cost) = panel
        .ok("webops_system_health", json!({"time_range": "24h"}))
        .await;
    assert_eq!(cost, 2);
    assert!(out["services"].to_string().contains("celery"));

    // delete: requested, never "deleted"; the panel keeps listing it.
    let (out, text, cost) = panel
        .ok(
            "webops_delete_deployment",
            json!({"deployment_id": "fresh", "confirm_name": "fresh"}),
        )
        .await;
    assert_eq!(out["deleted"], false);
    assert_eq!(
        cost, 3,
        "detail (confirmation) + detail + delete (the audit's list already knows the name)"
    );
    assert!(text.starts_with("Delete requested"), "{text}");
    assert_eq!(panel.mock.is_deleted("fresh"), Some(true));
}
