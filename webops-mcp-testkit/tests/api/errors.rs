//! Every error path: validation, authentication, permission, not found, method, conflict,
//! rate limit.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use webops_mcp_testkit::{MockWebOps, RateLimit, Seed, SeedDeployment};

use crate::common::{Api, answer};

fn valid() -> Value {
    json!({"name": "shop-api", "repo_url": "https://github.com/acme/shop-api.git"})
}

fn with(field: &str, value: Value) -> Value {
    let mut body = valid();
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = valid();
    body.as_object_mut().unwrap().remove(field);
    body
}

#[tokio::test]
async fn create_validates_every_field_with_details() {
    let api = Api::start().await;
    let cases: Vec<(&str, Value)> = vec![
        ("name", without("name")),
        ("name", with("name", json!(""))),
        ("name", with("name", json!("a".repeat(64)))),
        ("name", with("name", json!("Shop-API"))),
        ("name", with("name", json!("shop_api"))),
        ("name", with("name", json!("-shop"))),
        ("name", with("name", json!(42))),
        ("repo_url", without("repo_url")),
        ("repo_url", with("repo_url", json!(""))),
        ("environment", with("environment", json!("prod"))),
        ("python_version", with("python_version", json!("3.8"))),
        ("python_version", with("python_version", json!("3.13"))),
        ("python_version", with("python_version", json!(3.11))),
        ("database_type", with("database_type", json!("oracle"))),
        ("memory_limit", with("memory_limit", json!("512"))),
        ("memory_limit", with("memory_limit", json!("lots"))),
        ("memory_limit", with("memory_limit", json!("1.5G"))),
        ("env_vars", with("env_vars", json!(["A=1"]))),
        ("env_vars", with("env_vars", json!({"A": 1}))),
        ("env_vars", with("env_vars", json!({"1BAD": "x"}))),
        ("ssl_enabled", with("ssl_enabled", json!("yes"))),
        ("branch", with("branch", json!("two words"))),
        ("domain", with("domain", json!("not a host"))),
        ("project_type", with("project_type", json!("Django!"))),
    ];
    for (field, body) in cases {
        let answer = api.post("deployments/", body.clone()).await;
        answer.assert_error(400, "VALIDATION_ERROR");
        assert!(
            !answer.details(field).is_empty(),
            "{field} not in details for {body}: {}",
            answer.text
        );
    }
    // Every accepted value passes.
    for (i, (field, value)) in [
        ("name", json!("a")),
        ("name", json!("1st-app")),
        ("python_version", json!("3.9")),
        ("python_version", json!("3.12")),
        ("database_type", json!("mysql")),
        ("memory_limit", json!("1G")),
        ("environment", json!("development")),
        ("env_vars", json!({"DEBUG": "False", "_X": ""})),
        ("domain", json!("Shop.Example.com")),
        ("python_version", json!(null)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = with(field, value);
        if field != "name" {
            body["name"] = json!(format!("ok-{i}"));
        }
        api.post("deployments/", body).await.data(201);
    }
    assert_eq!(api.mock.deployment_count(), 10);
}

#[tokio::test]
async fn malformed_or_missing_bodies_are_400() {
    let api = Api::start().await;
    for raw in ["{\"name\": ", "not json", "[1, 2]", "", "   "] {
        let answer = answer(
            api.http
                .post(api.url("deployments/"))
                .bearer_auth(api.mock.token())
                .header("content-type", "application/json")
                .body(raw),
        )
        .await;
        answer.assert_error(400, "VALIDATION_ERROR");
        assert!(!answer.details("body").is_empty(), "{raw:?}");
    }
    assert_eq!(api.mock.deployment_count(), 0);
}

#[tokio::test]
async fn authentication_is_required_everywhere_but_status() {
    let api = Api::with(MockWebOps::builder().seed(Seed::Demo)).await;
    let endpoints: &[(Method, &str)] = &[
        (Method::GET, "deployments/"),
        (Method::POST, "deployments/"),
        (Method::GET, "deployments/1/"),
        (Method::PUT, "deployments/1/"),
        (Method::DELETE, "deployments/1/"),
        (Method::POST, "deployments/1/start/"),
        (Method::POST, "deployments/1/stop/"),
        (Method::POST, "deployments/1/restart/"),
        (Method::POST, "deployments/1/redeploy/"),
        (Method::POST, "deployments/1/scale/"),
        (Method::GET, "deployments/1/logs/"),
        (Method::GET, "databases/"),
        (Method::GET, "monitoring/health/"),
        (Method::GET, "monitoring/metrics/"),
    ];
    for token in [None, Some("wrong-token"), Some("")] {
        for (method, path) in endpoints {
            let answer = api
                .as_token(token)
                .send(method.clone(), path, Some(json!({})))
                .await;
            answer.assert_error(401, "AUTHENTICATION_REQUIRED");
            assert!(
                answer
                    .header("www-authenticate")
                    .unwrap()
                    .starts_with("Bearer"),
                "{method} {path}"
            );
        }
    }
    // Another scheme is not accepted either.
    let basic = answer(
        api.http
            .get(api.url("deployments/"))
            .header("authorization", format!("Token {}", api.mock.token())),
    )
    .await;
    basic.assert_error(401, "AUTHENTICATION_REQUIRED");
    // Nothing changed.
    assert_eq!(api.mock.deployment_count(), 8);

    let status = api.as_token(None).send(Method::GET, "status/", None).await;
    let data = status.data(200);
    assert_eq!(data["status"], "ok");
    assert!(data["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(data["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_read_only_token_reads_but_may_not_write() {
    let api = Api::with(
        MockWebOps::builder()
            .read_only_token("viewer")
            .deployment(SeedDeployment::new("shop-api")),
    )
    .await;
    assert_eq!(api.mock.read_only_token(), Some("viewer"));
    let viewer = api.as_token(Some("viewer"));
    for (method, path, body) in [
        (Method::POST, "deployments/", valid()),
        (Method::PUT, "deployments/1/", json!({"branch": "x"})),
        (Method::DELETE, "deployments/1/", json!({})),
        (Method::POST, "deployments/1/start/", json!({})),
        (Method::POST, "deployments/1/stop/", json!({})),
        (Method::POST, "deployments/1/restart/", json!({})),
        (Method::POST, "deployments/1/redeploy/", json!({})),
        (
            Method::POST,
            "deployments/1/scale/",
            json!({"instances": 2}),
        ),
    ] {
        viewer
            .send(method.clone(), path, Some(body))
            .await
            .assert_error(403, "PERMISSION_DENIED");
    }
    for path in [
        "deployments/",
        "deployments/1/",
        "deployments/1/logs/",
        "databases/",
        "monitoring/health/",
        "monitoring/metrics/",
    ] {
        viewer.send(Method::GET, path, None).await.data(200);
    }
    let d = api.mock.deployment_json(1).unwrap();
    assert_eq!(
        (d["status"].as_str(), d["instances"].as_i64()),
        (Some("running"), Some(1))
    );
    assert_eq!(api.mock.deployment_count(), 1);
}

#[tokio::test]
async fn unknown_ids_and_paths_are_404_with_an_envelope() {
    let api = Api::with(MockWebOps::builder().deployment(SeedDeployment::new("a"))).await;
    for path in [
        "deployments/99/",
        "deployments/abc/",
        "deployments/99/logs/",
        "deployments/-1/",
    ] {
        api.get(path).await.assert_error(404, "RESOURCE_NOT_FOUND");
    }
    for action in ["start", "stop", "restart", "redeploy"] {
        api.post(&format!("deployments/99/{action}/"), json!({}))
            .await
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    api.post("deployments/99/scale/", json!({"instances": 2}))
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    api.get("monitoring/metrics/?deployment_id=99")
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    for path in [
        "nothing/",
        "deployments/1/pause/",
        "deployments/1/logs/extra/",
    ] {
        api.get(path).await.assert_error(404, "RESOURCE_NOT_FOUND");
    }
    // Paths end with '/'.
    let no_slash = api.get("deployments").await;
    no_slash.assert_error(404, "RESOURCE_NOT_FOUND");
    assert!(no_slash.text.contains("ends with '/'"));
    let root = answer(api.http.get(format!("{}/", api.mock.base_url()))).await;
    root.assert_error(404, "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_405_with_an_envelope() {
    let api = Api::with(MockWebOps::builder().deployment(SeedDeployment::new("a"))).await;
    for (method, path, allow) in [
        (Method::DELETE, "deployments/", "GET,HEAD,POST"),
        (Method::POST, "deployments/1/", "GET,HEAD,PUT,DELETE"),
        (Method::GET, "deployments/1/start/", "POST"),
        (Method::POST, "deployments/1/logs/", "GET,HEAD"),
        (Method::POST, "status/", "GET,HEAD"),
        (Method::PUT, "monitoring/health/", "GET,HEAD"),
    ] {
        let answer = api.send(method.clone(), path, None).await;
        answer.assert_error(405, "METHOD_NOT_ALLOWED");
        let mut got: Vec<&str> = answer.header("allow").unwrap().split(',').collect();
        let mut want: Vec<&str> = allow.split(',').collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{method} {path}");
    }
    // Without a token too: the method is wrong whoever asks.
    api.as_token(None)
        .send(Method::DELETE, "deployments/", None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn invalid_transitions_and_duplicate_names_are_409() {
    let api = Api::with(
        MockWebOps::builder()
            .deployment(SeedDeployment::new("running"))
            .deployment(SeedDeployment::new("stopped").status("stopped"))
            .deployment(SeedDeployment::new("failed").status("failed"))
            .deployment(SeedDeployment::new("pending").status("pending"))
            .deployment(SeedDeployment::new("building").status("building")),
    )
    .await;
    let conflicts: &[(i64, &str)] = &[
        (1, "start"),
        (2, "stop"),
        (2, "restart"),
        (2, "scale"),
        (3, "stop"),
        (3, "restart"),
        (3, "scale"),
        (4, "start"),
        (4, "stop"),
        (4, "restart"),
        (4, "scale"),
        (5, "start"),
        (5, "stop"),
        (5, "restart"),
        (5, "scale"),
    ];
    for (id, action) in conflicts {
        let answer = api
            .post(
                &format!("deployments/{id}/{action}/"),
                json!({"instances": 2}),
            )
            .await;
        answer.assert_error(409, "CONFLICT");
        let message = answer.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(&id.to_string()), "{message}");
    }
    // Nothing moved.
    for (id, status) in [
        (1, "running"),
        (2, "stopped"),
        (3, "failed"),
        (4, "pending"),
        (5, "building"),
    ] {
        assert_eq!(api.status_of(id).await, status);
    }
    let dup = api
        .post(
            "deployments/",
            json!({"name": "running", "repo_url": "https://github.com/a/b.git"}),
        )
        .await;
    dup.assert_error(409, "CONFLICT");
    assert!(
        dup.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
}

#[tokio::test]
async fn scale_validates_instances() {
    let api = Api::with(MockWebOps::builder().deployment(SeedDeployment::new("a"))).await;
    for body in [
        json!({}),
        json!({"instances": 0}),
        json!({"instances": 11}),
        json!({"instances": "2"}),
    ] {
        let answer = api.post("deployments/1/scale/", body.clone()).await;
        answer.assert_error(400, "VALIDATION_ERROR");
        assert!(!answer.details("instances").is_empty(), "{body}");
    }
    let empty = answer(
        api.http
            .post(api.url("deployments/1/scale/"))
            .bearer_auth(api.mock.token()),
    )
    .await;
    empty.assert_error(400, "VALIDATION_ERROR");
    assert!(!empty.details("instances").is_empty());
    for n in [1, 10] {
        let answer = api
            .post("deployments/1/scale/", json!({"instances": n}))
            .await;
        assert_eq!(answer.data(200)["instances"], n);
    }
}

#[tokio::test]
async fn past_the_rate_limit_the_answer_is_429_with_retry_after() {
    let api = Api::with(MockWebOps::builder().deployment(SeedDeployment::new("a"))).await;
    api.mock.set_rate_limit(Some(RateLimit {
        max_requests: 3,
        window: Duration::from_secs(3600),
        retry_after_secs: 42,
    }));
    for _ in 0..3 {
        api.get("deployments/").await.data(200);
    }
    for path in ["deployments/", "status/"] {
        let limited = api.get(path).await;
        limited.assert_error(429, "RATE_LIMIT_EXCEEDED");
        assert_eq!(limited.header("retry-after"), Some("42"));
    }
    // A limited create creates nothing.
    api.post("deployments/", valid())
        .await
        .assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(api.mock.deployment_count(), 1);

    api.mock.set_rate_limit(None);
    api.get("deployments/").await.data(200);
    // A fresh limit starts a fresh window.
    api.mock
        .set_rate_limit(Some(RateLimit::new(1, Duration::from_secs(3600), 1)));
    api.get("deployments/").await.data(200);
    api.get("deployments/")
        .await
        .assert_error(429, "RATE_LIMIT_EXCEEDED");
}
