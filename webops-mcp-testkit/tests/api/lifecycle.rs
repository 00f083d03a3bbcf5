//! The deployment lifecycle: create, build, actions, scale, update, delete.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use webops_mcp_testkit::{MockWebOps, SeedDeployment};

use crate::common::{Api, WAIT};

fn messages(logs: &Value) -> Vec<String> {
    logs["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

fn position(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:#?}"))
}

#[tokio::test]
async fn create_answers_201_pending_with_a_task_and_all_fields() {
    // A long step keeps the deployment pending for the whole test.
    let api = Api::with(MockWebOps::builder().step_delay(Duration::from_secs(3600))).await;
    let answer = api
        .post(
            "deployments/",
            json!({"name": "shop-api", "repo_url": "https://github.com/acme/shop-api.git",
                   "environment": "staging", "memory_limit": "512M",
                   "env_vars": {"DEBUG": "False"}}),
        )
        .await;
    let data = answer.data(201);
    assert_eq!(data["id"], 1);
    assert_eq!(data["name"], "shop-api");
    assert_eq!(data["status"], "pending");
    assert!(
        data["deployment_task_id"]
            .as_str()
            .unwrap()
            .starts_with("task-")
    );
    let eta = data["estimated_completion"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(eta).is_ok(), "{eta}");

    let detail = api.get("deployments/1/").await;
    let d = detail.data(200);
    for field in [
        "id",
        "name",
        "status",
        "environment",
        "project_type",
        "repo_url",
        "branch",
        "domain",
        "url",
        "port",
        "ssl_enabled",
        "python_version",
        "database_type",
        "memory_limit",
        "instances",
        "created_at",
        "updated_at",
        "deployed_by",
        "health",
        "env_vars",
        "metrics",
    ] {
        assert!(d.get(field).is_some(), "{field} missing: {d}");
    }
    assert_eq!(d["status"], "pending");
    assert_eq!(d["environment"], "staging");
    assert_eq!(d["branch"], "main");
    assert_eq!(d["project_type"], "django");
    assert_eq!(d["python_version"], "3.11");
    assert_eq!(d["ssl_enabled"], true);
    assert_eq!(d["memory_limit"], "512M");
    assert_eq!(d["instances"], 1);
    assert_eq!(d["env_vars"]["DEBUG"], "False");
    assert_eq!(d["health"]["is_healthy"], false);
    assert!(d["health"]["last_check"].is_null());
    for check in ["http_response", "database_connection", "disk_space"] {
        assert!(d["health"]["checks"][check].is_boolean(), "{check}");
    }
    for metric in [
        "cpu_usage",
        "memory_usage",
        "request_count_24h",
        "error_rate",
    ] {
        assert!(d["metrics"][metric].is_number(), "{metric}");
    }
    let created = d["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "UTC timestamps: {created}");
    assert_eq!(api.mock.deployment_json(1).unwrap()["name"], "shop-api");
    assert_eq!(api.mock.status_history(1).unwrap(), ["pending"]);
}

#[tokio::test]
async fn a_good_build_goes_pending_building_running_and_logs_each_step() {
    let api = Api::start().await;
    let id = api
        .create("shop-api", "https://github.com/acme/shop-api.git")
        .await;
    assert!(api.mock.wait_for_status(id, "running", WAIT).await);
    assert_eq!(
        api.mock.status_history(id).unwrap(),
        ["pending", "building", "running"]
    );
    assert_eq!(api.status_of(id).await, "running");

    let logs = api
        .get(&format!("deployments/{id}/logs/?type=deployment"))
        .await;
    let lines = messages(logs.data(200));
    let queued = position(&lines, "Deployment queued");
    let building = position(
        &lines,
        "Build started: cloning https://github.com/acme/shop-api.git",
    );
    let migrate = position(&lines, "manage.py migrate");
    let succeeded = position(&lines, "Deployment succeeded");
    assert!(queued < building && building < migrate && migrate < succeeded);
    assert!(
        logs.data(200)["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["source"] == "webops.deploy")
    );

    let d = api.get(&format!("deployments/{id}/")).await;
    let d = d.data(200);
    assert_eq!(d["health"]["is_healthy"], true);
    assert!(d["health"]["last_check"].is_string());
    assert!(d["metrics"]["cpu_usage"].as_f64().unwrap() > 0.0);
    let app = api.get(&format!("deployments/{id}/logs/")).await;
    assert!(messages(app.data(200))[0].starts_with("Listening at"));
}

#[tokio::test]
async fn a_repo_url_that_is_not_https_is_accepted_but_the_build_fails() {
    let api = Api::start().await;
    for (name, url) in [
        ("plain-http", "http://github.com/acme/app.git"),
        ("ssh", "git@github.com:acme/app.git"),
        ("nonsense", "not a url"),
    ] {
        let id = api.create(name, url).await;
        assert!(api.mock.wait_for_status(id, "failed", WAIT).await, "{name}");
        assert_eq!(
            api.mock.status_history(id).unwrap(),
            ["pending", "building", "failed"]
        );
        let logs = api
            .get(&format!(
                "deployments/{id}/logs/?type=deployment&level=error"
            ))
            .await;
        let lines = messages(logs.data(200));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("not a valid https Git repository URL")),
            "{lines:?}"
        );
        let errors = api.get(&format!("deployments/{id}/logs/?type=error")).await;
        assert_eq!(errors.data(200)["total_lines"], 1);
        let d = api.get(&format!("deployments/{id}/")).await;
        assert_eq!(d.data(200)["health"]["is_healthy"], false);
    }
}

#[tokio::test]
async fn fail_builds_of_makes_builds_of_that_name_fail() {
    let api = Api::start().await;
    api.mock.fail_builds_of("doomed");
    let id = api
        .create("doomed", "https://github.com/acme/doomed.git")
        .await;
    assert!(api.mock.wait_for_status(id, "failed", WAIT).await);
    let logs = api
        .get(&format!(
            "deployments/{id}/logs/?type=deployment&level=error"
        ))
        .await;
    let lines = messages(logs.data(200));
    assert!(lines.iter().any(|l| l.contains("pip install")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("Deployment failed")),
        "{lines:?}"
    );

    // Other names build fine.
    api.running("fine").await;

    // Starting a failed deployment rebuilds it, and it fails again.
    let start = api
        .post(&format!("deployments/{id}/start/"), json!({}))
        .await;
    assert_eq!(start.data(200)["status"], "building");
    assert!(api.mock.wait_for_status(id, "failed", WAIT).await);
    assert_eq!(
        api.mock.status_history(id).unwrap(),
        ["pending", "building", "failed", "building", "failed"]
    );
}

#[tokio::test]
async fn stop_start_restart_redeploy_scale() {
    let api = Api::start().await;
    let id = api.running("shop-api").await;
    let path = |action: &str| format!("deployments/{id}/{action}/");

    let stop = api.post(&path("stop"), json!({})).await;
    let data = stop.data(200);
    assert_eq!(
        (data["id"].as_i64(), data["status"].as_str()),
        (Some(id), Some("stopped"))
    );
    assert!(data["message"].as_str().unwrap().contains("stopped"));
    assert_eq!(api.status_of(id).await, "stopped");
    let d = api.get(&format!("deployments/{id}/")).await;
    assert_eq!(d.data(200)["health"]["is_healthy"], false);
    assert_eq!(d.data(200)["health"]["uptime_seconds"], 0);

    let start = api.post(&path("start"), json!({})).await;
    assert_eq!(start.data(200)["status"], "running");
    assert_eq!(api.status_of(id).await, "running");

    let restart = api.post(&path("restart"), json!({})).await;
    assert_eq!(restart.data(200)["status"], "running");
    let logs = api
        .get(&format!("deployments/{id}/logs/?type=deployment&lines=2"))
        .await;
    assert_eq!(
        messages(logs.data(200)),
        ["Restart requested", "Restarted 1 instance(s)"]
    );

    let scale = api.post(&path("scale"), json!({"instances": 4})).await;
    let data = scale.data(200);
    assert_eq!(data["instances"], 4);
    assert_eq!(data["status"], "running");
    let d = api.get(&format!("deployments/{id}/")).await;
    assert_eq!(d.data(200)["instances"], 4);

    let redeploy = api.post(&path("redeploy"), json!({})).await;
    assert_eq!(redeploy.data(200)["status"], "building");
    assert!(api.mock.wait_for_status(id, "running", WAIT).await);
    assert_eq!(
        api.mock.status_history(id).unwrap(),
        [
            "pending", "building", "running", "stopped", "running", "building", "running"
        ]
    );
    let logs = api
        .get(&format!("deployments/{id}/logs/?type=deployment"))
        .await;
    let lines = messages(logs.data(200));
    assert!(position(&lines, "Redeploy requested") < lines.len() - 1);
    assert!(lines.last().unwrap().starts_with("Deployment succeeded"));
    // Scaling survives a redeploy.
    assert!(
        lines
            .iter()
            .any(|l| l == "Starting 4 instance(s) on port 8001")
    );
}

#[tokio::test]
async fn a_redeploy_supersedes_a_build_in_progress() {
    // Seeded pending and building deployments have no build running: a redeploy is the way on.
    let api = Api::with(
        MockWebOps::builder()
            .step_delay(Duration::from_millis(20))
            .deployment(SeedDeployment::new("queued").status("pending"))
            .deployment(SeedDeployment::new("stuck").status("building")),
    )
    .await;
    for id in [1, 2] {
        let redeploy = api
            .post(&format!("deployments/{id}/redeploy/"), json!({}))
            .await;
        assert_eq!(redeploy.data(200)["status"], "building");
        assert!(api.mock.wait_for_status(id, "running", WAIT).await);
        let logs = api
            .get(&format!("deployments/{id}/logs/?type=deployment"))
            .await;
        let lines = messages(logs.data(200));
        position(&lines, "the build in progress is superseded");
    }

    // A build of its own is superseded too: the first build never finishes it.
    let api = Api::with(MockWebOps::builder().step_delay(Duration::from_millis(200))).await;
    let id = api.create("app", "https://github.com/acme/app.git").await;
    let redeploy = api
        .post(&format!("deployments/{id}/redeploy/"), json!({}))
        .await;
    assert_eq!(redeploy.data(200)["status"], "building");
    assert!(api.mock.wait_for_status(id, "running", WAIT).await);
    // Every build has ended, the superseded one too: it changed nothing.
    api.mock.settle().await;
    let history = api.mock.status_history(id).unwrap();
    assert_eq!(history, ["pending", "building", "running"], "{history:?}");
}

#[tokio::test]
async fn delete_works_in_every_state_and_a_later_get_is_404() {
    let api = Api::with(
        MockWebOps::builder()
            .deployment(SeedDeployment::new("a-running"))
            .deployment(SeedDeployment::new("b-stopped").status("stopped"))
            .deployment(SeedDeployment::new("c-failed").status("failed"))
            .deployment(SeedDeployment::new("d-pending").status("pending"))
            .deployment(SeedDeployment::new("e-building").status("building")),
    )
    .await;
    for id in 1..=5 {
        let answer = api.delete(&format!("deployments/{id}/")).await;
        let data = answer.data(200);
        assert_eq!(data["id"], id);
        assert_eq!(data["deleted"], true);
        api.get(&format!("deployments/{id}/"))
            .await
            .assert_error(404, "RESOURCE_NOT_FOUND");
        api.delete(&format!("deployments/{id}/"))
            .await
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    assert_eq!(api.mock.deployment_count(), 0);
}

#[tokio::test]
async fn a_build_under_way_does_not_bring_a_deleted_deployment_back() {
    let api = Api::start().await;
    let doomed = api
        .create("doomed", "https://github.com/acme/doomed.git")
        .await;
    api.delete(&format!("deployments/{doomed}/"))
        .await
        .data(200);
    // A later deployment's build finishes after the deleted one's would have.
    api.running("later").await;
    assert_eq!(api.mock.deployment_count(), 1);
    assert!(api.mock.deployment_json(doomed).is_none());
    // The name is free again.
    api.running("doomed").await;
}

#[tokio::test]
async fn put_updates_branch_domain_and_env_vars() {
    let api = Api::with(
        MockWebOps::builder().deployment(SeedDeployment::new("shop").env_var("OLD", "1")),
    )
    .await;
    let answer = api
        .send(
            Method::PUT,
            "deployments/1/",
            Some(json!({"branch": "release", "domain": "shop.example.com",
                        "env_vars": {"DEBUG": "False"}})),
        )
        .await;
    let d = answer.data(200);
    assert_eq!(d["branch"], "release");
    assert_eq!(d["domain"], "shop.example.com");
    assert_eq!(d["url"], "https://shop.example.com");
    assert_eq!(d["env_vars"], json!({"DEBUG": "False"}));

    let cleared = api
        .send(Method::PUT, "deployments/1/", Some(json!({"domain": null})))
        .await;
    assert!(cleared.data(200)["domain"].is_null());
    assert_eq!(cleared.data(200)["branch"], "release");

    let bad = api
        .send(
            Method::PUT,
            "deployments/1/",
            Some(json!({"branch": "", "env_vars": {"X": 1}})),
        )
        .await;
    bad.assert_error(400, "VALIDATION_ERROR");
    assert!(!bad.details("branch").is_empty());
    assert!(!bad.details("env_vars").is_empty());
    api.send(Method::PUT, "deployments/99/", Some(json!({"branch": "x"})))
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
}
