//! Every built-in tool × a set of permission sets: a tool runs iff the caller holds its
//! permission (otherwise the call is a permission-denied error naming it), and each caller's
//! tool listing shows exactly the tools it may run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::support::{Env, client, identity};
use serde_json::{Value, json};
use webops_mcp_core::{MemorySink, SecurityConfig, ToolErrorKind, WebOpsMcpServer};
use webops_mcp_testkit::{MockWebOps, Seed};

/// Each tool, the one permission it needs (from the design brief, not from the code), and
/// arguments that succeed on the demo platform.
fn tools() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "webops_deploy_app",
            "deploy:create",
            json!({"app_name": "matrix-app", "repository": "https://github.com/acme/m.git"}),
        ),
        ("webops_get_status", "deploy:read", json!({})),
        (
            "webops_list_deployments",
            "deploy:read",
            json!({"limit": 5}),
        ),
        (
            "webops_get_logs",
            "logs:read",
            json!({"deployment_id": "billing-portal"}),
        ),
        (
            "webops_manage_service",
            "deploy:manage",
            json!({"deployment_id": "billing-portal", "action": "restart"}),
        ),
        (
            "webops_security_audit",
            "security:audit",
            json!({"deployment_id": "billing-portal"}),
        ),
        ("webops_system_health", "system:read", json!({})),
        (
            "webops_delete_deployment",
            "deploy:delete",
            json!({"deployment_id": "gen-app-001", "confirm_name": "gen-app-001"}),
        ),
    ]
}

const ALL: [&str; 7] = [
    "deploy:read",
    "deploy:create",
    "deploy:manage",
    "deploy:delete",
    "system:read",
    "security:audit",
    "logs:read",
];

/// Permission sets as configured, with what they expand to.
fn permission_sets() -> Vec<(Vec<&'static str>, BTreeSet<&'static str>)> {
    let mut sets: Vec<(Vec<&str>, BTreeSet<&str>)> = ALL
        .iter()
        .map(|p| (vec![*p], BTreeSet::from([*p])))
        .collect();
    sets.push((vec![], BTreeSet::new()));
    sets.push((
        vec!["deploy:*"],
        BTreeSet::from([
            "deploy:read",
            "deploy:create",
            "deploy:manage",
            "deploy:delete",
        ]),
    ));
    sets.push((vec!["admin:*"], ALL.into_iter().collect()));
    sets.push((
        vec!["deploy:read", "logs:read", "system:read"],
        BTreeSet::from(["deploy:read", "logs:read", "system:read"]),
    ));
    sets
}

#[tokio::test]
async fn each_tool_runs_iff_the_caller_holds_its_permission() {
    for (configured, held) in permission_sets() {
        let env = Env::with(
            MockWebOps::builder()
                .seed(Seed::Demo)
                .generated_deployments(1),
        )
        .await;
        let caller = identity("tester", &configured);
        let expected: BTreeSet<&str> = tools()
            .iter()
            .filter(|(_, needs, _)| held.contains(needs))
            .map(|(name, _, _)| *name)
            .collect();
        let listed: BTreeSet<&str> = env
            .server
            .tools_for(&caller)
            .iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(listed, expected, "listing for {configured:?}");

        for (name, needs, args) in tools() {
            let result = env.server.handle_tool_call(name, args, &caller).await;
            if held.contains(needs) {
                assert!(
                    !result.is_error,
                    "{name} with {configured:?} failed: {}",
                    result.text()
                );
            } else {
                assert_eq!(
                    result.error_kind,
                    Some(ToolErrorKind::PermissionDenied),
                    "{name} with {configured:?}: {}",
                    result.text()
                );
                assert!(result.text().contains(needs), "{}", result.text());
            }
        }
        // Denied calls changed nothing.
        assert_eq!(
            env.mock.deployment_id("gen-app-001").is_some(),
            !held.contains("deploy:delete"),
            "{configured:?}"
        );
        assert_eq!(
            env.mock.deployment_id("matrix-app").is_some(),
            held.contains("deploy:create"),
            "{configured:?}"
        );
    }
}

#[tokio::test]
async fn read_only_mode_offers_and_runs_only_read_tools() {
    let mock = MockWebOps::builder()
        .seed(Seed::Demo)
        .generated_deployments(1)
        .start()
        .await
        .unwrap();
    let server = WebOpsMcpServer::builder()
        .api(Arc::new(client(&mock)))
        .audit_sink(Arc::new(MemorySink::new()))
        .security(
            SecurityConfig::default()
                .rate_limit_per_minute(0)
                .read_only(true),
        )
        .build()
        .unwrap();
    let admin = identity("tester", &["admin:*"]);
    let listed: BTreeSet<&str> = server.tools_for(&admin).iter().map(|d| d.name).collect();
    let read: BTreeSet<&str> = [
        "webops_get_status",
        "webops_list_deployments",
        "webops_get_logs",
        "webops_security_audit",
        "webops_system_health",
    ]
    .into_iter()
    .collect();
    assert_eq!(listed, read);
    for (name, _, args) in tools() {
        let result = server.handle_tool_call(name, args, &admin).await;
        assert_eq!(
            result.is_error,
            !read.contains(name),
            "{name}: {}",
            result.text()
        );
    }
    assert_eq!(mock.deployment_count(), 9);
}
