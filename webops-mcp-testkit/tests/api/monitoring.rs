//! `databases/`, `monitoring/health/` and `monitoring/metrics/`.

use serde_json::{Value, json};
use webops_mcp_testkit::{MockWebOps, Seed, SeedDatabase, SeedDeployment};

use crate::common::Api;

#[tokio::test]
async fn databases_have_every_field_and_follow_their_deployment() {
    let api = Api::with(
        MockWebOps::builder()
            .deployment(SeedDeployment::new("shop").instances(2))
            .database(
                SeedDatabase::new("shop-db", "postgresql")
                    .public(true)
                    .deployment("shop"),
            )
            .database(SeedDatabase::new("cache", "mysql").ssl_required(false))
            .database(SeedDatabase::new("local", "sqlite")),
    )
    .await;
    let answer = api.get("databases/").await;
    let list = answer.data(200).as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    let shop = &list[0];
    for field in [
        "id",
        "name",
        "engine",
        "host",
        "port",
        "size_mb",
        "connection_count",
        "publicly_accessible",
        "ssl_required",
        "deployment",
    ] {
        assert!(shop.get(field).is_some(), "{field}");
    }
    assert_eq!(shop["name"], "shop-db");
    assert_eq!(shop["engine"], "postgresql");
    assert_eq!(shop["port"], 5432);
    assert_eq!(shop["publicly_accessible"], true);
    assert_eq!(shop["ssl_required"], true);
    assert_eq!(shop["deployment"], json!({"id": 1, "name": "shop"}));
    assert!(shop["connection_count"].as_i64().unwrap() >= 8);
    assert!(shop["size_mb"].as_f64().unwrap() > 0.0);
    assert_eq!(list[1]["port"], 3306);
    assert_eq!(list[1]["ssl_required"], false);
    assert_eq!(list[1]["publicly_accessible"], false);
    assert!(list[1]["deployment"].is_null());
    assert!(list[2]["port"].is_null());

    // Stopping the app drops its connections; deleting it unlinks the database.
    api.post("deployments/1/stop/", json!({})).await.data(200);
    let answer = api.get("databases/").await;
    assert_eq!(answer.data(200)[0]["connection_count"], 0);
    api.delete("deployments/1/").await.data(200);
    let answer = api.get("databases/").await;
    assert!(answer.data(200)[0]["deployment"].is_null());
}

fn counts(health: &Value) -> (i64, i64, i64, i64) {
    let d = &health["deployments"];
    (
        d["total"].as_i64().unwrap(),
        d["running"].as_i64().unwrap(),
        d["stopped"].as_i64().unwrap(),
        d["failed"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn health_counts_and_verdict_follow_the_state() {
    let api = Api::with(
        MockWebOps::builder()
            .deployment(SeedDeployment::new("a"))
            .deployment(SeedDeployment::new("b"))
            .deployment(SeedDeployment::new("c").status("stopped")),
    )
    .await;
    let health = api.get("monitoring/health/").await;
    let data = health.data(200).clone();
    assert_eq!(data["overall_status"], "healthy");
    assert_eq!(counts(&data), (3, 2, 1, 0));
    for field in [
        "cpu_percent",
        "memory_percent",
        "disk_percent",
        "uptime_seconds",
    ] {
        assert!(data["system"][field].is_number(), "{field}");
    }
    assert_eq!(data["system"]["load_average"].as_array().unwrap().len(), 3);
    assert!(data["system"]["uptime_seconds"].as_i64().unwrap() > 86_400);
    assert_eq!(data["services"]["nginx"], "running");
    assert!(data["timestamp"].as_str().unwrap().ends_with('Z'));
    let idle_cpu = data["system"]["cpu_percent"].as_f64().unwrap();

    api.post("deployments/3/start/", json!({})).await.data(200);
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(counts(&data), (3, 3, 0, 0));
    assert!(data["system"]["cpu_percent"].as_f64().unwrap() > idle_cpu);

    assert!(api.mock.set_deployment_status(1, "failed"));
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(counts(&data), (3, 2, 0, 1));
    assert_eq!(data["overall_status"], "degraded");

    assert!(api.mock.set_deployment_health(2, false));
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(data["overall_status"], "unhealthy");
    assert_eq!(data["deployments"]["unhealthy"], 1);

    assert!(api.mock.set_deployment_status(1, "running"));
    assert!(api.mock.set_deployment_health(2, true));
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(data["overall_status"], "healthy");

    assert!(api.mock.set_service_state("celery", "failed"));
    assert!(!api.mock.set_service_state("celery", "exploded"));
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(data["services"]["celery"], "failed");
    assert_eq!(data["overall_status"], "unhealthy");

    let id = api.running("new-app").await;
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(counts(&data), (4, 4, 0, 0));
    api.delete(&format!("deployments/{id}/")).await.data(200);
    let data = api.get("monitoring/health/").await.data(200).clone();
    assert_eq!(counts(&data).0, 3);
}

#[tokio::test]
async fn metrics_periods_have_regular_points() {
    let api = Api::with(MockWebOps::builder().seed(Seed::Demo)).await;
    for (period, count, step) in [
        ("1h", 12, 300),
        ("6h", 12, 1_800),
        ("24h", 24, 3_600),
        ("7d", 28, 21_600),
        ("30d", 30, 86_400),
    ] {
        let answer = api
            .get(&format!("monitoring/metrics/?period={period}"))
            .await;
        let data = answer.data(200);
        assert_eq!(data["period"], period);
        let points = data["points"].as_array().unwrap();
        assert_eq!(points.len(), count, "{period}");
        let times: Vec<i64> = points
            .iter()
            .map(|p| {
                chrono::DateTime::parse_from_rfc3339(p["timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp()
            })
            .collect();
        assert!(times.windows(2).all(|w| w[1] - w[0] == step), "{period}");
        for p in points {
            let cpu = p["cpu_percent"].as_f64().unwrap();
            let rate = p["error_rate"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&cpu));
            assert!((0.0..=1.0).contains(&rate));
            assert!(p["memory_percent"].is_number() && p["request_count"].is_i64());
        }
    }
    let default = api.get("monitoring/metrics/").await;
    assert_eq!(default.data(200)["period"], "24h");
    api.get("monitoring/metrics/?period=2h")
        .await
        .assert_error(400, "VALIDATION_ERROR");
    let bad = api.get("monitoring/metrics/?deployment_id=abc").await;
    bad.assert_error(400, "VALIDATION_ERROR");
    assert!(!bad.details("deployment_id").is_empty());
}

#[tokio::test]
async fn metrics_are_deterministic_and_per_deployment() {
    let api = Api::with(MockWebOps::builder().seed(Seed::Demo)).await;
    let search = api.mock.deployment_id("search-api").unwrap();
    let billing = api.mock.deployment_id("billing-portal").unwrap();
    let pending = api.mock.deployment_id("docs-portal").unwrap();
    let get = |id: i64| {
        let api = &api;
        async move {
            api.get(&format!("monitoring/metrics/?period=7d&deployment_id={id}"))
                .await
                .data(200)
                .clone()
        }
    };
    let (a, b) = (get(search).await, get(search).await);
    // Points at the same instant are equal, whenever they are asked for.
    let by_time = |v: &Value| -> std::collections::BTreeMap<String, Value> {
        v["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["timestamp"].as_str().unwrap().to_owned(), p.clone()))
            .collect()
    };
    let (ta, tb) = (by_time(&a), by_time(&b));
    assert!(ta.keys().filter(|k| tb.contains_key(*k)).count() >= 27);
    for (t, p) in &ta {
        if let Some(q) = tb.get(t) {
            assert_eq!(p, q);
        }
    }
    assert_eq!(a["deployment_id"], search);

    let mean = |v: &Value| {
        let points = v["points"].as_array().unwrap();
        points
            .iter()
            .map(|p| p["error_rate"].as_f64().unwrap())
            .sum::<f64>()
            / points.len() as f64
    };
    assert!(mean(&a) > 0.05, "search-api has a high error rate");
    assert!(mean(&get(billing).await) < 0.01);
    let never_ran = get(pending).await;
    assert!(
        never_ran["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["request_count"] == 0)
    );
}
