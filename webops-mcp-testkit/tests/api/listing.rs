//! `GET deployments/`: filters, search, pagination and query validation.

use serde_json::Value;
use webops_mcp_testkit::{MockWebOps, Seed, SeedDeployment};

use crate::common::Api;

fn names(data: &Value) -> Vec<String> {
    data.as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn mixed() -> Api {
    Api::with(
        MockWebOps::builder()
            .deployment(SeedDeployment::new("shop-api"))
            .deployment(
                SeedDeployment::new("shop-web")
                    .environment("staging")
                    .project_type("nodejs"),
            )
            .deployment(
                SeedDeployment::new("blog")
                    .status("stopped")
                    .environment("development"),
            )
            .deployment(
                SeedDeployment::new("worker")
                    .status("failed")
                    .project_type("python"),
            )
            .deployment(
                SeedDeployment::new("docs")
                    .status("pending")
                    .environment("staging"),
            ),
    )
    .await
}

#[tokio::test]
async fn filters_and_search() {
    let api = mixed().await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["shop-api", "shop-web", "blog", "worker", "docs"]),
        ("status=running", &["shop-api", "shop-web"]),
        ("status=stopped", &["blog"]),
        ("status=failed", &["worker"]),
        ("status=pending", &["docs"]),
        ("status=building", &[]),
        ("environment=staging", &["shop-web", "docs"]),
        ("environment=production", &["shop-api", "worker"]),
        ("environment=development", &["blog"]),
        ("project_type=nodejs", &["shop-web"]),
        ("project_type=django", &["shop-api", "blog", "docs"]),
        ("project_type=cobol", &[]),
        ("search=shop", &["shop-api", "shop-web"]),
        ("search=SHOP-A", &["shop-api"]),
        (
            "search=o",
            &["shop-api", "shop-web", "blog", "worker", "docs"],
        ),
        ("search=zzz", &[]),
        ("status=running&environment=staging", &["shop-web"]),
        ("search=shop&project_type=django", &["shop-api"]),
        (
            "status=",
            &["shop-api", "shop-web", "blog", "worker", "docs"],
        ),
    ];
    for (query, expected) in cases {
        let answer = api.get(&format!("deployments/?{query}")).await;
        let data = answer.data(200);
        assert_eq!(names(data), *expected, "?{query}");
        assert_eq!(
            answer.json["pagination"]["total"],
            expected.len(),
            "?{query}"
        );
    }
}

#[tokio::test]
async fn list_items_are_deployments_without_detail_fields() {
    let api = mixed().await;
    let answer = api.get("deployments/").await;
    let first = &answer.data(200)[0];
    assert_eq!(first["id"], 1);
    assert!(first["health"]["is_healthy"].is_boolean());
    assert!(
        first.get("env_vars").is_none(),
        "secrets stay in the detail view"
    );
    assert!(first["health"].get("checks").is_none());
    assert_eq!(first["deployed_by"]["username"], "alice");
}

#[tokio::test]
async fn pagination_over_more_than_a_hundred() {
    let api = Api::with(MockWebOps::builder().generated_deployments(150)).await;
    let page1 = api.get("deployments/?per_page=100").await;
    assert_eq!(page1.data(200).as_array().unwrap().len(), 100);
    assert_eq!(
        page1.json["pagination"],
        serde_json::json!({"page": 1, "per_page": 100, "total": 150, "total_pages": 2})
    );
    assert_eq!(page1.json["data"][0]["name"], "gen-app-001");
    let page2 = api.get("deployments/?per_page=100&page=2").await;
    let items = page2.data(200).as_array().unwrap();
    assert_eq!(items.len(), 50);
    assert_eq!(items[0]["name"], "gen-app-101");
    assert_eq!(items[49]["name"], "gen-app-150");
    assert_eq!(page2.json["pagination"]["page"], 2);

    let past = api.get("deployments/?per_page=100&page=3").await;
    assert!(past.data(200).as_array().unwrap().is_empty());
    assert_eq!(past.json["pagination"]["total"], 150);
    assert_eq!(past.json["pagination"]["total_pages"], 2);

    let default = api.get("deployments/").await;
    assert_eq!(default.data(200).as_array().unwrap().len(), 20);
    assert_eq!(default.json["pagination"]["per_page"], 20);
    assert_eq!(default.json["pagination"]["total_pages"], 8);

    // Filters apply before paging; generated environments cycle.
    let prod = api
        .get("deployments/?environment=production&per_page=100")
        .await;
    assert_eq!(prod.json["pagination"]["total"], 50);
    assert_eq!(prod.data(200)[0]["name"], "gen-app-003");

    // An empty list has no pages.
    let none = api.get("deployments/?search=nothing").await;
    assert_eq!(none.json["pagination"]["total_pages"], 0);
}

#[tokio::test]
async fn query_values_out_of_range_are_400_naming_the_field() {
    let api = Api::with(MockWebOps::builder().seed(Seed::Demo)).await;
    for (query, field, allowed) in [
        ("per_page=0", "per_page", "1 to 100"),
        ("per_page=101", "per_page", "1 to 100"),
        ("per_page=ten", "per_page", "1 to 100"),
        ("page=0", "page", "at least 1"),
        ("page=-3", "page", "at least 1"),
        (
            "status=error",
            "status",
            "pending, building, running, stopped, failed",
        ),
        (
            "environment=prod",
            "environment",
            "development, staging, production",
        ),
    ] {
        let answer = api.get(&format!("deployments/?{query}")).await;
        answer.assert_error(400, "VALIDATION_ERROR");
        let details = answer.details(field);
        assert!(
            details.iter().any(|m| m.contains(allowed)),
            "?{query}: {details:?}"
        );
    }
    // Several problems at once are all reported.
    let answer = api.get("deployments/?page=0&per_page=500&status=x").await;
    for field in ["page", "per_page", "status"] {
        assert!(!answer.details(field).is_empty(), "{field}");
    }
}
