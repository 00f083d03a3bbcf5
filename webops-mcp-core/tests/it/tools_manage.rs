//! `webops_manage_service` and `webops_delete_deployment` through the pipeline against the
//! testkit's demo platform over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::Env;
use serde_json::json;
use webops_mcp_core::ToolErrorKind;
use webops_mcp_testkit::Fault;

const MANAGE: &str = "webops_manage_service";
const DELETE: &str = "webops_delete_deployment";

#[tokio::test]
async fn stop_start_and_restart() {
    let env = Env::demo().await;
    let id = env.id("billing-portal");
    let (out, text) = env
        .ok(
            MANAGE,
            json!({"deployment_id": "billing-portal", "action": "stop"}),
        )
        .await;
    assert_eq!(out["previous_status"], "running");
    assert_eq!(out["status"], "stopped");
    assert!(text.contains("running → stopped"), "{text}");
    assert_eq!(env.mock.deployment_json(id).unwrap()["status"], "stopped");

    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": id, "action": "restart"}),
            ToolErrorKind::Conflict,
        )
        .await;
    assert_eq!(
        msg,
        "billing-portal is stopped; start it before restarting (action: start)."
    );

    let (out, _) = env
        .ok(MANAGE, json!({"deployment_id": id, "action": "start"}))
        .await;
    assert_eq!(out["status"], "running");
    let (out, _) = env
        .ok(MANAGE, json!({"deployment_id": id, "action": "restart"}))
        .await;
    assert_eq!(out["status"], "running");
}

#[tokio::test]
async fn scaling_by_one_to_a_count_and_within_bounds() {
    let env = Env::demo().await;
    let id = env.id("billing-portal");
    let (out, _) = env
        .ok(MANAGE, json!({"deployment_id": id, "action": "scale_up"}))
        .await;
    assert_eq!(
        (
            out["previous_instances"].as_u64(),
            out["instances"].as_u64()
        ),
        (Some(3), Some(4))
    );
    let (out, _) = env
        .ok(
            MANAGE,
            json!({"deployment_id": id, "action": "scale_up", "instances": 10}),
        )
        .await;
    assert_eq!(out["instances"], 10);
    assert_eq!(env.mock.deployment_json(id).unwrap()["instances"], 10);
    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": id, "action": "scale_up"}),
            ToolErrorKind::Conflict,
        )
        .await;
    assert!(msg.contains("the most WebOps allows"), "{msg}");
    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": id, "action": "scale_up", "instances": 2}),
            ToolErrorKind::InvalidArguments,
        )
        .await;
    assert!(msg.contains("use scale_down"), "{msg}");
    let (out, _) = env
        .ok(
            MANAGE,
            json!({"deployment_id": id, "action": "scale_down", "instances": 1}),
        )
        .await;
    assert_eq!(out["instances"], 1);
    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": id, "action": "scale_down"}),
            ToolErrorKind::Conflict,
        )
        .await;
    assert!(msg.contains("the fewest WebOps allows"), "{msg}");
}

#[tokio::test]
async fn invalid_combinations_and_states_are_explained() {
    let env = Env::demo().await;
    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": "billing-portal", "action": "restart", "instances": 2}),
            ToolErrorKind::InvalidArguments,
        )
        .await;
    assert!(msg.contains("only to scale_up and scale_down"), "{msg}");
    for bad in [
        json!({"deployment_id": "billing-portal", "action": "reboot"}),
        json!({"deployment_id": "billing-portal", "action": "scale_up", "instances": 11}),
        json!({"deployment_id": "billing-portal", "action": "scale_up", "instances": 0}),
        json!({"deployment_id": "billing-portal"}),
    ] {
        env.err(MANAGE, bad, ToolErrorKind::InvalidArguments).await;
    }
    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": "analytics-dashboard", "action": "scale_up"}),
            ToolErrorKind::Conflict,
        )
        .await;
    assert_eq!(
        msg,
        "analytics-dashboard is stopped; start it before scaling (action: start)."
    );
}

#[tokio::test]
async fn a_webops_without_scaling_says_so() {
    let env = Env::demo().await;
    env.mock.inject(Fault::status(405).on_path("/scale/"));
    let msg = env
        .err(
            MANAGE,
            json!({"deployment_id": "billing-portal", "action": "scale_up"}),
            ToolErrorKind::Unsupported,
        )
        .await;
    assert!(msg.contains("cannot scale"), "{msg}");
}

#[tokio::test]
async fn delete_needs_the_exact_name() {
    let env = Env::demo().await;
    let id = env.id("analytics-dashboard");
    for wrong in ["Analytics-Dashboard", "analytics", "docs-portal"] {
        let msg = env
            .err(
                DELETE,
                json!({"deployment_id": id, "confirm_name": wrong}),
                ToolErrorKind::Refused,
            )
            .await;
        assert!(msg.contains("Nothing was deleted"), "{msg}");
        assert!(
            msg.contains(&format!("'analytics-dashboard' (id {id}, ")),
            "{msg}"
        );
        assert!(msg.contains("confirm with the user"), "{msg}");
        assert!(
            !msg.contains("confirm_name \"analytics-dashboard\""),
            "{msg}"
        );
    }
    assert_eq!(env.mock.deployment_count(), 8);
    assert!(env.mock.requests().iter().all(|r| r.method != "DELETE"));

    let (out, text) = env
        .ok(
            DELETE,
            json!({"deployment_id": "analytics-dashboard",
                   "confirm_name": "analytics-dashboard"}),
        )
        .await;
    assert_eq!(out["deleted"], true);
    assert_eq!(out["deployment"]["id"], id);
    assert!(text.contains("cannot be undone"));
    assert_eq!(env.mock.deployment_count(), 7);
    env.err(
        "webops_get_status",
        json!({"deployment_id": id}),
        ToolErrorKind::NotFound,
    )
    .await;
    env.err(
        DELETE,
        json!({"deployment_id": id, "confirm_name": "analytics-dashboard"}),
        ToolErrorKind::NotFound,
    )
    .await;
    env.err(
        DELETE,
        json!({"deployment_id": id}),
        ToolErrorKind::InvalidArguments,
    )
    .await;
}
