//! The `Demo` seed: a rich, deterministic platform with real security findings.

use serde_json::Value;
use std::collections::BTreeSet;
use webops_mcp_testkit::{MockWebOps, Seed};

use crate::common::Api;

async fn demo() -> Api {
    Api::with(MockWebOps::builder().seed(Seed::Demo)).await
}

async fn detail(api: &Api, name: &str) -> Value {
    let id = api.mock.deployment_id(name).unwrap();
    api.get(&format!("deployments/{id}/"))
        .await
        .data(200)
        .clone()
}

async fn log_text(api: &Api, name: &str, log_type: &str) -> String {
    let id = api.mock.deployment_id(name).unwrap();
    let answer = api
        .get(&format!(
            "deployments/{id}/logs/?type={log_type}&lines=1000"
        ))
        .await;
    answer.data(200)["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn spans_every_state_and_environment() {
    let api = demo().await;
    let list = api.get("deployments/?per_page=100").await;
    let items = list.data(200).as_array().unwrap().clone();
    assert!(items.len() >= 6);
    let states: BTreeSet<&str> = items
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        BTreeSet::from(["building", "failed", "pending", "running", "stopped"])
    );
    let envs: BTreeSet<&str> = items
        .iter()
        .map(|d| d["environment"].as_str().unwrap())
        .collect();
    assert_eq!(
        envs,
        BTreeSet::from(["development", "production", "staging"])
    );
    // Every deployment has metrics and logs of its build.
    for d in &items {
        let name = d["name"].as_str().unwrap();
        assert!(detail(&api, name).await["metrics"].is_object());
        assert!(
            !log_text(&api, name, "deployment").await.is_empty(),
            "{name}"
        );
    }
    // Running apps have application and access lines.
    for name in ["shop-api", "billing-portal", "search-api", "legacy-blog"] {
        assert!(
            !log_text(&api, name, "application").await.is_empty(),
            "{name}"
        );
        assert!(!log_text(&api, name, "access").await.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn shop_api_is_insecure_in_specific_ways() {
    let api = demo().await;
    let shop = detail(&api, "shop-api").await;
    assert_eq!(shop["environment"], "production");
    assert_eq!(shop["status"], "running");
    assert_eq!(shop["ssl_enabled"], false);
    assert_eq!(shop["instances"], 1);
    assert!(shop["memory_limit"].is_null());
    let env = &shop["env_vars"];
    assert_eq!(env["DEBUG"], "True");
    assert_eq!(env["ALLOWED_HOSTS"], "*");
    assert!(
        env["SECRET_KEY"]
            .as_str()
            .unwrap()
            .starts_with("django-insecure-")
    );
    let key = env["AWS_ACCESS_KEY_ID"].as_str().unwrap();
    assert!(key.starts_with("AKIA") && key.len() == 20);
    assert_eq!(env["AWS_SECRET_ACCESS_KEY"].as_str().unwrap().len(), 40);
    let app = log_text(&api, "shop-api", "application").await;
    assert!(
        app.contains("DATABASE_URL=postgres://shop:S3cretPass@"),
        "{app}"
    );
    let build = log_text(&api, "shop-api", "deployment").await;
    assert!(build.contains("security.W018"));
}

#[tokio::test]
async fn billing_portal_is_done_right() {
    let api = demo().await;
    let billing = detail(&api, "billing-portal").await;
    assert_eq!(billing["environment"], "production");
    assert_eq!(billing["ssl_enabled"], true);
    assert_eq!(billing["instances"], 3);
    assert!(billing["memory_limit"].is_string());
    assert!(
        billing["repo_url"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    assert_eq!(billing["health"]["is_healthy"], true);
    let env = &billing["env_vars"];
    assert_eq!(env["DEBUG"], "False");
    let secret = env["SECRET_KEY"].as_str().unwrap();
    assert_eq!(secret.len(), 50);
    assert!(!secret.starts_with("django-insecure"));
    assert!(secret.chars().collect::<BTreeSet<_>>().len() > 20);
    assert_ne!(env["ALLOWED_HOSTS"], "*");
    assert!(billing["metrics"]["error_rate"].as_f64().unwrap() < 0.01);
}

#[tokio::test]
async fn the_failed_eol_stopped_pending_and_unhealthy_ones() {
    let api = demo().await;
    let failed = detail(&api, "inventory-sync").await;
    assert_eq!(failed["status"], "failed");
    let build = log_text(&api, "inventory-sync", "deployment").await;
    assert!(build.contains("Traceback (most recent call last):"));
    assert!(build.contains("ModuleNotFoundError: No module named"));

    let legacy = detail(&api, "legacy-blog").await;
    assert_eq!(legacy["python_version"], "3.8");
    assert_eq!(legacy["environment"], "staging");
    assert!(!legacy["repo_url"].as_str().unwrap().starts_with("https://"));

    assert_eq!(
        detail(&api, "analytics-dashboard").await["status"],
        "stopped"
    );

    let search = detail(&api, "search-api").await;
    assert_eq!(search["status"], "running");
    assert_eq!(search["health"]["is_healthy"], false);
    assert_eq!(search["health"]["checks"]["http_response"], false);
    assert!(search["metrics"]["error_rate"].as_f64().unwrap() > 0.05);
    assert!(
        log_text(&api, "search-api", "error")
            .await
            .contains("OperationalError")
    );

    // Seeded pending and building deployments run no lifecycle.
    let pending = api.mock.deployment_id("docs-portal").unwrap();
    let building = api.mock.deployment_id("payments-worker").unwrap();
    assert!(
        !api.mock
            .wait_for_status(pending, "building", api.mock.step_delay() * 10)
            .await
    );
    assert_eq!(api.status_of(pending).await, "pending");
    assert_eq!(api.status_of(building).await, "building");
}

#[tokio::test]
async fn databases_and_health_of_the_demo() {
    let api = demo().await;
    let answer = api.get("databases/").await;
    let dbs = answer.data(200).as_array().unwrap().clone();
    assert!(dbs.len() >= 3);
    assert!(dbs.iter().any(|d| d["publicly_accessible"] == true));
    assert!(dbs.iter().any(|d| d["ssl_required"] == false));
    let shop_db = dbs.iter().find(|d| d["name"] == "shop-db").unwrap();
    assert_eq!(shop_db["deployment"]["name"], "shop-api");
    assert_eq!(
        shop_db["deployment"]["id"].as_i64(),
        api.mock.deployment_id("shop-api")
    );

    let health = api.get("monitoring/health/").await;
    let data = health.data(200);
    assert_eq!(data["overall_status"], "degraded");
    assert_eq!(data["deployments"]["total"], 8);
    assert_eq!(data["deployments"]["running"], 4);
    assert_eq!(data["deployments"]["failed"], 1);
    assert_eq!(data["deployments"]["stopped"], 1);
}

#[tokio::test]
async fn two_demo_mocks_hold_the_same_data() {
    let (a, b) = (demo().await, demo().await);
    for id in 1..=8 {
        let mut x = a.mock.deployment_json(id).unwrap();
        let mut y = b.mock.deployment_json(id).unwrap();
        for v in [&mut x, &mut y] {
            let o = v.as_object_mut().unwrap();
            for volatile in ["created_at", "updated_at", "health"] {
                o.remove(volatile);
            }
        }
        assert_eq!(x, y);
        let path = format!("deployments/{id}/logs/?type=access&lines=1000");
        let strip = |v: &Value| -> Vec<Value> {
            v["logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["message"].clone())
                .collect()
        };
        assert_eq!(
            strip(a.get(&path).await.data(200)),
            strip(b.get(&path).await.data(200))
        );
    }
}
