//! Fault injection, latency and the request log.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use webops_mcp_testkit::{Fault, MockWebOps, SeedDeployment};

use crate::common::{Api, answer};

async fn api() -> Api {
    Api::with(MockWebOps::builder().deployment(SeedDeployment::new("shop"))).await
}

#[tokio::test]
async fn status_faults_answer_with_the_matching_envelope() {
    let api = api().await;
    for (status, code) in [
        (400, "VALIDATION_ERROR"),
        (401, "AUTHENTICATION_REQUIRED"),
        (403, "PERMISSION_DENIED"),
        (404, "RESOURCE_NOT_FOUND"),
        (409, "CONFLICT"),
        (422, "DEPLOYMENT_FAILED"),
        (429, "RATE_LIMIT_EXCEEDED"),
        (500, "INTERNAL_ERROR"),
        (502, "BAD_GATEWAY"),
        (503, "SERVICE_UNAVAILABLE"),
        (504, "GATEWAY_TIMEOUT"),
    ] {
        api.mock.inject(Fault::status(status));
        let faulted = api.get("deployments/").await;
        faulted.assert_error(status, code);
        assert!(faulted.header("retry-after").is_none());
        assert_eq!(faulted.header("content-type"), Some("application/json"));
        // Only the next request was faulted.
        api.get("deployments/").await.data(200);
    }
    api.mock.inject(Fault::status(200));
    let ok = api.get("deployments/").await;
    assert_eq!(ok.json, json!({"success": true, "data": null}));
}

#[tokio::test]
async fn html_truncated_and_empty_bodies() {
    let api = api().await;
    api.mock.inject(Fault::html(502));
    let html = api.get("deployments/").await;
    assert_eq!(html.status, 502);
    assert_eq!(html.header("content-type"), Some("text/html"));
    assert!(
        html.text.contains("<h1>502 Bad Gateway</h1>"),
        "{}",
        html.text
    );
    assert!(html.json.is_null(), "not JSON");

    api.mock.inject(Fault::truncated_json(200));
    let cut = api.get("deployments/1/").await;
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("content-type"), Some("application/json"));
    assert!(
        cut.text
            .starts_with(r#"{"success": true, "data": {"id": 1,"#)
    );
    assert!(serde_json::from_str::<serde_json::Value>(&cut.text).is_err());

    api.mock.inject(Fault::truncated_json(500));
    let cut = api.get("deployments/1/").await;
    assert_eq!(cut.status, 500);
    assert!(serde_json::from_str::<serde_json::Value>(&cut.text).is_err());

    api.mock.inject(Fault::empty(503).retry_after(2));
    let empty = api.get("deployments/").await;
    assert_eq!(empty.status, 503);
    assert_eq!(empty.text, "");
    assert_eq!(empty.header("retry-after"), Some("2"));
}

#[tokio::test]
async fn times_path_and_method_select_requests_in_order() {
    let api = api().await;
    api.mock.inject(
        Fault::status(503)
            .times(2)
            .on_path("/logs/")
            .on_method("get"),
    );
    api.mock.inject(Fault::status(500).on_method("POST"));
    api.mock.inject(Fault::status(429).retry_after(7));

    // The first rule does not match this; the third (any request) does.
    let limited = api.get("deployments/").await;
    limited.assert_error(429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(limited.header("retry-after"), Some("7"));
    for _ in 0..2 {
        api.get("deployments/1/logs/")
            .await
            .assert_error(503, "SERVICE_UNAVAILABLE");
    }
    api.get("deployments/1/logs/").await.data(200);
    api.post("deployments/1/restart/", json!({}))
        .await
        .assert_error(500, "INTERNAL_ERROR");
    api.post("deployments/1/restart/", json!({}))
        .await
        .data(200);
}

#[tokio::test]
async fn a_faulted_request_does_not_touch_state() {
    let api = api().await;
    api.mock.inject(Fault::status(500).on_method("POST"));
    api.post(
        "deployments/",
        json!({"name": "new", "repo_url": "https://github.com/acme/new.git"}),
    )
    .await
    .assert_error(500, "INTERNAL_ERROR");
    assert_eq!(api.mock.deployment_count(), 1);
    api.mock.inject(Fault::empty(502).on_method("DELETE"));
    let gone = api.delete("deployments/1/").await;
    assert_eq!(gone.status, 502);
    assert!(api.mock.deployment_json(1).is_some());
    // A fault even answers without authentication.
    api.mock.inject(Fault::status(503));
    api.as_token(None)
        .send(Method::GET, "deployments/", None)
        .await
        .assert_error(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn an_after_handling_fault_lets_the_request_take_effect_and_replaces_the_answer() {
    let api = api().await;
    api.mock
        .inject(Fault::status(504).on_method("DELETE").after_handling());
    let gone = api.delete("deployments/1/").await;
    gone.assert_error(504, "GATEWAY_TIMEOUT");
    assert!(api.mock.deployment_json(1).is_none(), "the delete happened");
    api.delete("deployments/1/")
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
}

#[tokio::test]
async fn a_delay_fault_trips_a_client_timeout_and_then_answers_normally() {
    let api = api().await;
    api.mock.inject(Fault::delay(Duration::from_secs(5)));
    let timed_out = api
        .http
        .get(api.url("deployments/"))
        .bearer_auth(api.mock.token())
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    // On a loaded machine the server may see the request after the client gave up.
    let recorded = crate::common::eventually(|| {
        let r = api.mock.requests();
        (r.len() == 1).then_some(r)
    })
    .await;
    assert_eq!(recorded[0].path, "/api/v1/deployments/");
    assert_eq!(recorded[0].status, 0, "no answer was sent");

    // The delay is used up; with a patient client the next delay still answers normally.
    api.get("deployments/").await.data(200);
    api.mock.inject(Fault::delay(Duration::from_millis(10)));
    api.get("deployments/1/").await.data(200);
}

#[tokio::test]
async fn latency_applies_to_every_response_until_reset() {
    let api = api().await;
    api.mock.set_latency(Duration::from_secs(5));
    for path in ["status/", "deployments/"] {
        let err = api
            .http
            .get(api.url(path))
            .bearer_auth(api.mock.token())
            .timeout(Duration::from_millis(100))
            .send()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{path}");
    }
    api.mock.set_latency(Duration::ZERO);
    api.get("deployments/").await.data(200);
}

#[tokio::test]
async fn the_request_log_records_everything() {
    let api = api().await;
    api.post("deployments/1/scale/", json!({"instances": 2}))
        .await
        .data(200);
    api.mock.inject(Fault::html(502));
    let _ = api.get("deployments/?status=running&page=1").await;
    let _ = answer(
        api.http
            .post(api.url("deployments/"))
            .bearer_auth(api.mock.token())
            .header("Idempotency-Key", "abc")
            .header("X-Custom", "1")
            .json(&json!({"name": "x", "repo_url": "https://github.com/a/x.git"})),
    )
    .await;
    let _ = api.as_token(None).send(Method::GET, "nowhere/", None).await;

    let log = api.mock.requests();
    assert_eq!(log.len(), 4);
    let scale = &log[0];
    assert_eq!(scale.method, "POST");
    assert_eq!(scale.path, "/api/v1/deployments/1/scale/");
    assert_eq!(scale.query, None);
    assert_eq!(scale.status, 200);
    assert_eq!(scale.body, r#"{"instances":2}"#);
    assert_eq!(scale.header("authorization"), Some("Bearer test-token"));
    assert_eq!(scale.header("Content-Type"), Some("application/json"));
    assert!(scale.headers.keys().all(|k| k == &k.to_lowercase()));
    let shown = format!("{scale:?}");
    assert!(!shown.contains("test-token"), "{shown}");

    assert_eq!(log[1].status, 502, "faulted requests are logged");
    assert_eq!(log[1].query.as_deref(), Some("status=running&page=1"));
    assert_eq!(log[2].status, 201);
    assert_eq!(log[2].header("idempotency-key"), Some("abc"));
    assert_eq!(log[2].header("x-custom"), Some("1"));
    assert_eq!(log[3].status, 404);
    assert_eq!(log[3].header("authorization"), None);

    api.mock.clear_requests();
    assert!(api.mock.requests().is_empty());
    api.get("status/").await.data(200);
    assert_eq!(api.mock.requests().len(), 1);
}

#[tokio::test]
async fn the_request_log_keeps_64_kib_of_a_body_and_an_oversized_body_is_413() {
    let api = api().await;
    api.mock.clear_requests();
    let big = format!(r#"{{"name": "x", "padding": "{}"}}"#, "a".repeat(100_000));
    let invalid = answer(
        api.http
            .post(api.url("deployments/"))
            .bearer_auth(api.mock.token())
            .header("Content-Type", "application/json")
            .body(big.clone()),
    )
    .await;
    invalid.assert_error(400, "VALIDATION_ERROR");
    let log = api.mock.requests();
    let body = &log[0].body;
    assert_eq!(body.len(), 64 * 1024 + '…'.len_utf8());
    assert!(body.ends_with('…') && big.starts_with(body.trim_end_matches('…')));

    let huge = "a".repeat(1024 * 1024 + 1);
    let too_large = answer(
        api.http
            .post(api.url("deployments/"))
            .bearer_auth(api.mock.token())
            .header("Content-Type", "application/json")
            .body(huge),
    )
    .await;
    too_large.assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(api.mock.deployment_count(), 1);
}
