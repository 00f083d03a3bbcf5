//! `Idempotency-Key` on `POST deployments/`.

use serde_json::json;
use webops_mcp_testkit::MockWebOps;

use crate::common::{Api, answer};

async fn create_with_key(api: &Api, key: &str, body: &serde_json::Value) -> crate::common::Answer {
    answer(
        api.http
            .post(api.url("deployments/"))
            .bearer_auth(api.mock.token())
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

#[tokio::test]
async fn a_repeated_key_returns_the_first_answer_and_creates_nothing() {
    let api = Api::start().await;
    let body = json!({"name": "shop-api", "repo_url": "https://github.com/acme/shop-api.git"});
    let first = create_with_key(&api, "key-1", &body).await;
    first.data(201);
    assert!(first.header("idempotent-replayed").is_none());
    let id = first.json["data"]["id"].as_i64().unwrap();
    assert!(
        api.mock
            .wait_for_status(id, "running", crate::common::WAIT)
            .await
    );

    // The same body with keys reordered and whitespace changed is the same request.
    let reordered: serde_json::Value = serde_json::from_str(
        r#"{ "repo_url": "https://github.com/acme/shop-api.git",   "name": "shop-api" }"#,
    )
    .unwrap();
    for again in [&body, &reordered] {
        let replay = create_with_key(&api, "key-1", again).await;
        assert_eq!(replay.status, 201);
        assert_eq!(replay.json, first.json, "the very same body");
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    }
    assert_eq!(api.mock.deployment_count(), 1);

    // Without the key, the same body is a duplicate name.
    api.post("deployments/", body.clone())
        .await
        .assert_error(409, "CONFLICT");
    // A new key with the same name too.
    create_with_key(&api, "key-2", &body)
        .await
        .assert_error(409, "CONFLICT");
    assert_eq!(api.mock.deployment_count(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_conflict_saying_so() {
    let api = Api::start().await;
    let first = json!({"name": "a", "repo_url": "https://github.com/acme/a.git"});
    let other = json!({"name": "b", "repo_url": "https://github.com/acme/b.git"});
    create_with_key(&api, "k", &first).await.data(201);
    let conflict = create_with_key(&api, "k", &other).await;
    conflict.assert_error(409, "CONFLICT");
    let message = conflict.json["error"]["message"].as_str().unwrap();
    assert!(message.contains("Idempotency-Key"), "{message}");
    assert!(message.contains("different request body"), "{message}");
    assert_eq!(api.mock.deployment_count(), 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_deployment() {
    let api = Api::start().await;
    let body = json!({"name": "racy", "repo_url": "https://github.com/acme/racy.git"});
    let answers = futures_join(&api, &body).await;
    assert!(answers.iter().all(|a| a.status == 201));
    assert!(answers.windows(2).all(|w| w[0].json == w[1].json));
    assert_eq!(api.mock.deployment_count(), 1);
}

async fn futures_join(api: &Api, body: &serde_json::Value) -> Vec<crate::common::Answer> {
    let (a, b, c, d) = tokio::join!(
        create_with_key(api, "same", body),
        create_with_key(api, "same", body),
        create_with_key(api, "same", body),
        create_with_key(api, "same", body),
    );
    vec![a, b, c, d]
}

#[tokio::test]
async fn a_failed_create_is_not_remembered_and_keys_are_validated() {
    let api = Api::start().await;
    let invalid = json!({"name": "Bad Name", "repo_url": "https://github.com/acme/x.git"});
    create_with_key(&api, "k", &invalid)
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // The key was not used up by the 400: a valid body with it creates.
    let valid = json!({"name": "good", "repo_url": "https://github.com/acme/x.git"});
    create_with_key(&api, "k", &valid).await.data(201);

    let long = "x".repeat(256);
    let answer = create_with_key(&api, &long, &valid).await;
    answer.assert_error(400, "VALIDATION_ERROR");
    assert!(!answer.details("Idempotency-Key").is_empty());
}

#[tokio::test]
async fn keys_are_kept_per_mock() {
    // Two mocks do not share idempotency state.
    let one = Api::start().await;
    let two = Api::with(MockWebOps::builder()).await;
    let body = json!({"name": "a", "repo_url": "https://github.com/acme/a.git"});
    create_with_key(&one, "k", &body).await.data(201);
    create_with_key(&two, "k", &body).await.data(201);
    assert_eq!(one.mock.deployment_count() + two.mock.deployment_count(), 2);
}
