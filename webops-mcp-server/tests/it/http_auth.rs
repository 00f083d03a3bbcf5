//! HTTP authentication end to end: every method accepted by a real rmcp client, every kind of
//! bad credential refused with 401 and the right challenge, repeated failures throttled, and
//! the OAuth Protected Resource Metadata.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{
    self, ADMIN_KEY, BASIC_PASSWORD, BASIC_USER, ServerOptions, TestServer, VIEWER_KEY, basic,
    bearer, challenges, claims, connect, fixture, hs256, initialize_body, jwt, now, pem_jwt_toml,
    post_mcp, sorted, standard_auth_toml, tool_names, tools_without_elicitation, unsigned_jwt,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// `[auth.oauth]` with the HS256 `[auth.jwt]` that verifies its tokens.
fn oauth_toml() -> String {
    format!(
        "{}\n[auth.oauth]\nresource = \"https://mcp.test.example/mcp\"\n\
         authorization_servers = [\"https://auth.test.example\"]\n",
        common::hs256_toml()
    )
}

/// POSTs an initialize request with one header; returns status, challenges and body.
async fn attempt(server: &TestServer, header: Option<(&str, &str)>) -> (u16, Vec<String>, Value) {
    let headers: Vec<(&str, &str)> = header.into_iter().collect();
    let response = post_mcp(
        &server.url(),
        &headers,
        initialize_body().to_string().into_bytes(),
    )
    .await;
    let status = response.status().as_u16();
    let challenges = challenges(&response);
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, challenges, body)
}

#[tokio::test]
async fn api_keys_are_accepted_as_bearer_and_as_x_api_key() {
    let server = TestServer::start("").await;
    let (name, value) = bearer(ADMIN_KEY);
    let admin = connect(&server.url(), &[(name, &value)]).await;
    assert_eq!(
        tool_names(&admin).await,
        sorted(&tools_without_elicitation())
    );

    let viewer = connect(&server.url(), &[("x-api-key", VIEWER_KEY)]).await;
    assert_eq!(
        tool_names(&viewer).await,
        sorted(&[
            "webops_get_status",
            "webops_list_deployments",
            "webops_get_logs",
            "webops_system_health"
        ])
    );
    admin.cancel().await.unwrap();
    viewer.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn hs256_jwts_are_accepted_with_permissions_or_scope() {
    let server = TestServer::start(&common::hs256_toml()).await;
    let token = hs256(&claims("jwt-admin", json!({"permissions": ["admin:*"]})));
    let (name, value) = bearer(&token);
    let client = connect(&server.url(), &[(name, &value)]).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&tools_without_elicitation())
    );
    client.cancel().await.unwrap();

    let token = hs256(&claims(
        "jwt-reader",
        json!({"scope": "deploy:read logs:read"}),
    ));
    let (name, value) = bearer(&token);
    let client = connect(&server.url(), &[(name, &value)]).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&[
            "webops_get_status",
            "webops_list_deployments",
            "webops_get_logs"
        ])
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn rs256_and_es256_jwts_are_accepted_with_their_public_keys() {
    for (public, private, alg) in [
        ("rs256-public.pem", "rs256-private.pem", Algorithm::RS256),
        ("es256-public.pem", "es256-private.pem", Algorithm::ES256),
    ] {
        let server = TestServer::start(&pem_jwt_toml(&fixture(public))).await;
        let pem = std::fs::read(fixture(private)).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
            _ => EncodingKey::from_ec_pem(&pem).unwrap(),
        };
        let token = jwt(
            alg,
            &key,
            &claims("pem-user", json!({"permissions": ["system:read"]})),
        );
        let (name, value) = bearer(&token);
        let client = connect(&server.url(), &[(name, &value)]).await;
        assert_eq!(
            tool_names(&client).await,
            sorted(&["webops_system_health"]),
            "{alg:?}"
        );
        client.cancel().await.unwrap();
        server.stop().await.unwrap();
    }
}

#[tokio::test]
async fn basic_users_are_accepted() {
    let server = TestServer::start("").await;
    let (name, value) = basic(BASIC_USER, BASIC_PASSWORD);
    let client = connect(&server.url(), &[(name, &value)]).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&["webops_get_status", "webops_list_deployments"])
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn missing_and_wrong_credentials_get_401_with_the_right_challenges() {
    let server = TestServer::start(&oauth_toml()).await;
    let metadata =
        "resource_metadata=\"https://mcp.test.example/.well-known/oauth-protected-resource/mcp\"";

    let (status, challenges, body) = attempt(&server, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "missing_credentials");
    assert_eq!(challenges.len(), 2, "{challenges:?}");
    assert!(
        challenges[0].starts_with("Bearer realm=\"webops-mcp\""),
        "{challenges:?}"
    );
    assert!(challenges[0].contains(metadata), "{challenges:?}");
    assert!(
        !challenges[0].contains("error="),
        "no error without a token: {challenges:?}"
    );
    assert!(
        challenges[1].starts_with("Basic realm=\"webops-mcp\""),
        "{challenges:?}"
    );

    let wrong = "wmcp_0000000000000000000000000000000000000000000000000000000000000000";
    let header = format!("Bearer {wrong}");
    let (status, challenges, body) = attempt(&server, Some(("authorization", &header))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unknown_api_key");
    assert!(
        challenges[0].contains("error=\"invalid_token\""),
        "{challenges:?}"
    );
    assert!(challenges[0].contains(metadata), "{challenges:?}");
    assert!(
        !body.to_string().contains(wrong),
        "never echoes the credential"
    );
    assert!(!challenges.concat().contains(wrong));

    let (status, _, body) = attempt(&server, Some(("x-api-key", "not-a-key"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unknown_api_key"))
    );

    let (name, value) = basic(BASIC_USER, "wrong password");
    let (status, challenges, body) = attempt(&server, Some((name, &value))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_credentials");
    assert_eq!(challenges.len(), 2);

    let (name, value) = basic("mallory", BASIC_PASSWORD);
    let (status, _, body) = attempt(&server, Some((name, &value))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_credentials"))
    );

    let (status, _, body) =
        attempt(&server, Some(("authorization", "Digest username=\"x\""))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unsupported_scheme"))
    );

    server.stop().await.unwrap();

    // A JWT where no [auth.jwt] is configured.
    let server = TestServer::start("").await;
    let token = hs256(&claims("x", json!({"permissions": ["admin:*"]})));
    let header = format!("Bearer {token}");
    let (status, _, body) = attempt(&server, Some(("authorization", &header))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("jwt_not_accepted"))
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn bad_hs256_tokens_are_refused() {
    let server = TestServer::start(&common::hs256_toml()).await;
    let cases: Vec<(String, &str)> = vec![
        (
            hs256(&claims(
                "x",
                json!({"exp": now() - 3600, "permissions": ["admin:*"]}),
            )),
            "expired_token",
        ),
        (
            hs256(&claims("x", json!({"aud": "https://other.example/mcp"}))),
            "invalid_audience",
        ),
        (
            hs256(&claims("x", json!({"iss": "https://evil.example"}))),
            "invalid_issuer",
        ),
        (
            jwt(
                Algorithm::HS256,
                &EncodingKey::from_secret(b"another-secret-0123456789abcdef0123456789"),
                &claims("x", json!({"permissions": ["admin:*"]})),
            ),
            "invalid_token",
        ),
        (
            unsigned_jwt(&claims("x", json!({"permissions": ["admin:*"]}))),
            "invalid_token",
        ),
        (
            hs256(&claims(
                "x",
                json!({"permissions": ["deploy:read", "root:*"]}),
            )),
            "unknown_permission",
        ),
        (
            hs256(&claims("x", json!({"scope": "openid profile"}))),
            "no_permission",
        ),
        (
            hs256(&json!({"sub": "x", "iss": common::JWT_ISSUER, "aud": common::JWT_AUDIENCE})),
            "invalid_token",
        ),
    ];
    assert!(cases.len() < 10, "stay under the failure throttle");
    for (token, code) in cases {
        let header = format!("Bearer {token}");
        let (status, challenges, body) = attempt(&server, Some(("authorization", &header))).await;
        assert_eq!(status, 401, "{code}: {body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            challenges[0].contains("error=\"invalid_token\""),
            "{challenges:?}"
        );
        assert!(!body.to_string().contains(&token));
        if code == "unknown_permission" {
            assert!(
                body["message"].as_str().unwrap().contains("root:*"),
                "{body}"
            );
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn alg_none_and_algorithm_confusion_are_refused_by_a_public_key_server() {
    let server = TestServer::start(&pem_jwt_toml(&fixture("rs256-public.pem"))).await;
    let public_pem = std::fs::read(fixture("rs256-public.pem")).unwrap();
    // HS256 signed with the public key as the HMAC secret: the classic confusion attack.
    let confused = jwt(
        Algorithm::HS256,
        &EncodingKey::from_secret(&public_pem),
        &claims("attacker", json!({"permissions": ["admin:*"]})),
    );
    let none = unsigned_jwt(&claims("attacker", json!({"permissions": ["admin:*"]})));
    for (token, expect) in [(confused, "accepts only RS256"), (none, "alg none")] {
        let header = format!("Bearer {token}");
        let (status, challenges, body) = attempt(&server, Some(("authorization", &header))).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "invalid_token");
        assert!(body["message"].as_str().unwrap().contains(expect), "{body}");
        assert_eq!(challenges.len(), 2, "bearer and basic challenges");
    }
    server.stop().await.unwrap();
}

/// POSTs an initialize request with `headers`; returns the status.
async fn status_with(server: &TestServer, headers: &[(&str, &str)]) -> u16 {
    post_mcp(
        &server.url(),
        headers,
        initialize_body().to_string().into_bytes(),
    )
    .await
    .status()
    .as_u16()
}

async fn metrics_text(server: &TestServer) -> String {
    reqwest::get(format!("{}/metrics", server.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_throttled() {
    let server = TestServer::start(&common::hs256_toml()).await;
    // Requests without credentials guess nothing and are not counted.
    for _ in 0..12 {
        let (status, _, _) = attempt(&server, None).await;
        assert_eq!(status, 401);
    }
    for i in 0..10 {
        let (status, _, _) = attempt(&server, Some(("x-api-key", "wrong"))).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    // Now the address is over the limit: wrong credentials get 429.
    let response = post_mcp(
        &server.url(),
        &[("authorization", "Bearer wmcp_still-wrong")],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_failures");

    // So does a password: it is guessable and checked only under the limit.
    let (name, value) = basic(BASIC_USER, BASIC_PASSWORD);
    assert_eq!(status_with(&server, &[(name, &value)]).await, 429);

    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains("webops_mcp_auth_throttled_addresses 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("webops_mcp_auth_throttled_requests_total 2"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("webops_mcp_auth_attempts_total{method=\"api_key\",outcome=\"failure\"} 11"),
        "{metrics}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn api_keys_and_jwts_still_work_from_an_address_over_the_limit() {
    // Behind Docker's port publishing every client has the same address: one client's
    // wrong keys must not lock out the others, whose keys and tokens cannot be guessed.
    let server = TestServer::start(&common::hs256_toml()).await;
    for _ in 0..10 {
        assert_eq!(status_with(&server, &[("x-api-key", "wrong")]).await, 401);
    }
    assert_eq!(status_with(&server, &[("x-api-key", "wrong")]).await, 429);

    let client = connect(&server.url(), &[("x-api-key", VIEWER_KEY)]).await;
    assert_eq!(tool_names(&client).await.len(), 4);
    client.cancel().await.unwrap();
    let (name, value) = bearer(ADMIN_KEY);
    let client = connect(&server.url(), &[(name, &value)]).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&tools_without_elicitation())
    );
    client.cancel().await.unwrap();
    let token = hs256(&claims(
        "jwt-reader",
        json!({"permissions": ["system:read"]}),
    ));
    let (name, value) = bearer(&token);
    let client = connect(&server.url(), &[(name, &value)]).await;
    assert_eq!(tool_names(&client).await, sorted(&["webops_system_health"]));
    client.cancel().await.unwrap();

    // The address is still refused for wrong ones.
    assert_eq!(status_with(&server, &[("x-api-key", "wrong")]).await, 429);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_password_guesses_cannot_pass_the_limit() {
    let server = TestServer::start("").await;
    let (name, value) = basic(BASIC_USER, "guess");
    let guesses: Vec<_> = (0..30)
        .map(|_| {
            let url = server.url();
            let value = value.clone();
            tokio::spawn(async move {
                post_mcp(
                    &url,
                    &[(name, &value)],
                    initialize_body().to_string().into_bytes(),
                )
                .await
                .status()
                .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    // 429: refused by the throttle; 503: no argon2 permit within its wait (a loaded box),
    // not checked and not counted as a failure either.
    let refused = statuses.iter().filter(|s| [429, 503].contains(*s)).count();
    // Each attempt reserved its place before argon2 ran: at most the limit was checked.
    assert!((1..=10).contains(&checked), "{statuses:?}");
    assert_eq!(checked + refused, 30, "{statuses:?}");
    let metrics = metrics_text(&server).await;
    let failures =
        format!("webops_mcp_auth_attempts_total{{method=\"basic\",outcome=\"failure\"}} {checked}");
    assert!(metrics.contains(&failures), "{metrics}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn forwarded_for_from_a_loopback_peer_names_each_client() {
    // The test client connects from 127.0.0.1, a trusted (loopback) peer: each forwarded
    // address is its own client.
    let server = TestServer::start("").await;
    for i in 0..10 {
        let client = format!("203.0.113.{i}");
        let headers = [("x-api-key", "wrong"), ("x-forwarded-for", client.as_str())];
        assert_eq!(status_with(&server, &headers).await, 401);
    }
    let next = [("x-api-key", "wrong"), ("x-forwarded-for", "203.0.113.200")];
    assert_eq!(status_with(&server, &next).await, 401, "a different client");
    let first = [("x-api-key", "wrong"), ("x-forwarded-for", "203.0.113.0")];
    assert_eq!(
        status_with(&server, &first).await,
        401,
        "one failure so far"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn protected_resource_metadata_is_published_without_auth() {
    let server = TestServer::start(&oauth_toml()).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let response = reqwest::get(format!("{}{path}", server.base()))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["resource"], "https://mcp.test.example/mcp");
        assert_eq!(
            body["authorization_servers"],
            json!(["https://auth.test.example"])
        );
        assert_eq!(body["bearer_methods_supported"], json!(["header"]));
        let scopes: Vec<&str> = body["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for scope in ["deploy:read", "deploy:create", "logs:read", "admin:*"] {
            assert!(scopes.contains(&scope), "{scopes:?}");
        }
    }
    server.stop().await.unwrap();

    // Without [auth.oauth] there is no metadata.
    let server = TestServer::start_with(ServerOptions {
        toml: standard_auth_toml(),
        ..ServerOptions::default()
    })
    .await;
    let response = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource",
        server.base()
    ))
    .await
    .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn anonymous_identity_gets_only_its_permissions() {
    let server = TestServer::start("\n[auth]\nanonymous_permissions = [\"system:read\"]\n").await;
    let client = connect(&server.url(), &[]).await;
    assert_eq!(tool_names(&client).await, sorted(&["webops_system_health"]));
    client.cancel().await.unwrap();
    // Credentials, when sent, must still be right.
    let (status, _, _) = attempt(&server, Some(("x-api-key", "wrong"))).await;
    assert_eq!(status, 401);
    server.stop().await.unwrap();
}
