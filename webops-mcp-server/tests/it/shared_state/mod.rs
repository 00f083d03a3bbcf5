//! A fleet on shared state: servers in this process sharing one real `redis-server` grant one
//! rate per user between them, refuse a confirmation used on another, continue a legacy
//! session opened on another and count authentication failures together; the GCRA script's
//! semantics on real Redis, namespaced and expiring keys without ids in clear; Redis stopped
//! (`deny` refuses with a clear error, `/health` degraded, `/metrics` counting; `allow_local`
//! falls back to this process) and started again (recovery without a restart); audit logs
//! verified per replica.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod config;
mod redis_server;

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use redis_server::RedisServer;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
    ElicitResult, ElicitationAction, Implementation, ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt, RoleClient};
use serde_json::{Value, json};
use webops_mcp_core::{RateDecision, RateQuota};
use webops_mcp_server::config::{OnUnavailable, RedisUrl, StateBackend, StateSettings};
use webops_mcp_server::state::SharedState;

use crate::common::{
    ADMIN_KEY, BASIC_PASSWORD, BASIC_USER, ServerOptions, TempDir, TestServer, VIEWER_KEY, basic,
    call, command, connect, initialize_body, post_mcp, standard_auth_toml, text_of,
};

/// The `[state]` table on `redis` with `policy`.
fn state_toml(redis: &RedisServer, policy: &str) -> String {
    format!(
        "\n[state]\nbackend = \"redis\"\nredis_url = \"{}\"\non_unavailable = \"{policy}\"\n",
        redis.url()
    )
}

/// A replica named `server_id` on `redis`, with `security` lines added to `[security]`, in
/// front of the mock at `api_url` (a fresh one when `None`).
async fn replica(
    redis: &RedisServer,
    server_id: &str,
    security: &str,
    policy: &str,
    api_url: Option<String>,
) -> TestServer {
    TestServer::start_with(ServerOptions {
        // The first lines belong to `[security]`, which the test server opens.
        toml: format!(
            "server_id = \"{server_id}\"\n{security}\n{}\n{}\n\
             [confirmations]\nstate_keys = [\"fleet:{}\"]\n",
            standard_auth_toml(),
            state_toml(redis, policy),
            "k".repeat(40),
        ),
        api_url,
        ..ServerOptions::default()
    })
    .await
}

/// A second replica beside `first`, sharing its mock WebOps.
async fn beside(
    first: &TestServer,
    redis: &RedisServer,
    server_id: &str,
    security: &str,
) -> TestServer {
    let api_url = first.mock.as_ref().unwrap().base_url();
    replica(redis, server_id, security, "deny", Some(api_url)).await
}

/// A raw connection to `redis` for looking at what the servers wrote.
async fn redis_connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Every key in `redis` with its time to live in ms.
async fn keys_and_ttls(redis: &RedisServer) -> Vec<(String, i64)> {
    let mut c = redis_connection(redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        out.push((key, ttl));
    }
    out
}

#[tokio::test]
async fn two_servers_grant_one_users_rate_between_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let rate = "rate_limit_per_minute = 30";
    let a = replica(&redis, "replica-a", rate, "deny", None).await;
    let b = beside(&a, &redis, "replica-b", rate).await;
    let admin = [("x-api-key", ADMIN_KEY)];
    let (to_a, to_b) = (
        connect(&a.url(), &admin).await,
        connect(&b.url(), &admin).await,
    );
    let started = Instant::now();
    let mut accepted = [0, 0];
    let mut limited = 0;
    for n in 0..90 {
        let client = if n % 2 == 0 { &to_a } else { &to_b };
        let result = call(client, "webops_list_deployments", json!({})).await;
        if result.is_error == Some(true) {
            let text = text_of(&result);
            assert!(text.contains("at most 30 tool calls per minute"), "{text}");
            limited += 1;
        } else {
            accepted[n % 2] += 1;
        }
    }
    let elapsed = started.elapsed();
    // The bucket holds 30 and refills one every 2 s while the calls run.
    let refilled = usize::try_from(elapsed.as_secs() / 2).unwrap() + 1;
    let total = accepted[0] + accepted[1];
    eprintln!(
        "fleet rate limit: 90 calls over two servers in {elapsed:?}: {total} accepted \
         ({} on A, {} on B), {limited} limited",
        accepted[0], accepted[1]
    );
    assert!((30..=30 + refilled).contains(&total), "{total} accepted");
    assert!(accepted[0] > 0 && accepted[1] > 0);
    // Another user has a bucket of their own.
    let viewer = connect(&b.url(), &[("x-api-key", VIEWER_KEY)]).await;
    let result = call(&viewer, "webops_list_deployments", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));

    // Every key is namespaced, expires, and names no user in clear.
    let keys = keys_and_ttls(&redis).await;
    assert!(!keys.is_empty());
    for (key, ttl) in &keys {
        assert!(key.starts_with("webops-mcp:"), "{key}");
        assert!(*ttl > 0, "{key} never expires");
        assert!(!key.contains("admin") && !key.contains("viewer"), "{key}");
    }
    assert!(
        keys.iter()
            .any(|(k, ttl)| k.starts_with("webops-mcp:rate:") && *ttl <= 60_000)
    );

    // Each replica kept its own chain, its records naming it; verified together.
    for client in [to_a, to_b, viewer] {
        client.cancel().await.unwrap();
    }
    let logs = TempDir::new();
    let (log_a, log_b) = (logs.join("replica-a.jsonl"), logs.join("replica-b.jsonl"));
    std::fs::copy(a.audit_log(), &log_a).unwrap();
    std::fs::copy(b.audit_log(), &log_b).unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&log_a)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["server_id"], "replica-a");
    let out = command()
        .args(["audit", "verify"])
        .arg(&log_a)
        .arg(&log_b)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("replicas:"), "{stdout}");
    assert!(
        stdout.contains("  replica-a: 45 records, chain ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  replica-b: 46 records, chain ok"),
        "{stdout}"
    );
    // One file: the single-file output as before.
    let out = command()
        .args(["audit", "verify"])
        .arg(&log_a)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains(": OK, 45 records, hash chain intact; last hash "));
    assert!(!stdout.contains("replicas:"), "{stdout}");
    // A broken chain is named with its replica.
    let mut lines: Vec<String> = std::fs::read_to_string(&log_b)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.remove(3);
    std::fs::write(&log_b, lines.join("\n")).unwrap();
    let out = command()
        .args(["audit", "verify"])
        .arg(&log_a)
        .arg(&log_b)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.contains("  replica-a: 45 records, chain ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  replica-b: 45 records, chain BROKEN"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("FAILED"));
}

/// A client that declares form elicitation (so a confirmation is asked for), driven by hand.
#[derive(Clone)]
struct Person;

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("fleet-person", "1.0.0"),
        )
    }
}

async fn person(server: &TestServer) -> RunningService<RoleClient, Person> {
    let headers = [("x-api-key".parse().unwrap(), ADMIN_KEY.parse().unwrap())].into();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.url()).custom_headers(headers),
    );
    Person
        .serve_with_lifecycle(
            transport,
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .unwrap()
}

/// The sealed state of a 2026-07-28 call's first round.
async fn ask(client: &RunningService<RoleClient, Person>, call: &CallToolRequestParams) -> String {
    match client.call_tool_once(call.clone()).await.unwrap() {
        CallToolResponse::InputRequired(ask) => ask.request_state.unwrap(),
        other => panic!("expected input_required, got {other:?}"),
    }
}

/// The second round: the person typed `name`.
async fn answer(
    client: &RunningService<RoleClient, Person>,
    call: &CallToolRequestParams,
    state: &str,
    name: &str,
) -> CallToolResult {
    let mut typed = ElicitResult::new(ElicitationAction::Accept);
    typed.content = Some(json!({ "name": name }));
    let mut call = call.clone();
    call.request_state = Some(state.to_owned());
    call.input_responses =
        Some([("confirm".to_owned(), serde_json::to_value(&typed).unwrap())].into());
    match client.call_tool_once(call).await.unwrap() {
        CallToolResponse::Complete(result) => result,
        other => panic!("expected a result, got {other:?}"),
    }
}

#[tokio::test]
async fn a_confirmation_used_on_one_server_is_refused_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = replica(&redis, "replica-a", "", "deny", None).await;
    let b = beside(&a, &redis, "replica-b", "").await;
    let (on_a, on_b) = (person(&a).await, person(&b).await);
    let stop = |name: &str| {
        CallToolRequestParams::new("webops_manage_service").with_arguments(
            json!({"deployment_id": name, "action": "stop"})
                .as_object()
                .cloned()
                .unwrap(),
        )
    };

    // Asked on A, confirmed on B: one fleet, one set of keys.
    let call = stop("search-api");
    let state = ask(&on_a, &call).await;
    let done = answer(&on_b, &call, &state, "search-api").await;
    assert_eq!(done.is_error, Some(false), "{}", text_of(&done));
    // The same confirmation again, on either: refused as used.
    for client in [&on_a, &on_b] {
        let replayed = answer(client, &call, &state, "search-api").await;
        let text = text_of(&replayed);
        assert_eq!(replayed.is_error, Some(true), "{text}");
        assert!(text.contains("already used"), "{text}");
    }
    let mock = a.mock.as_ref().unwrap();
    let id = mock.deployment_id("search-api").unwrap();
    let stops = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains(&format!("/{id}/")))
        .count();
    assert_eq!(stops, 1, "stopped exactly once");
    let nonces: Vec<(String, i64)> = keys_and_ttls(&redis)
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with("webops-mcp:nonce:"))
        .collect();
    assert_eq!(nonces.len(), 1, "{nonces:?}");
    assert!(nonces[0].1 > 0 && nonces[0].1 <= 300_000, "{nonces:?}");
    on_a.cancel().await.unwrap();
    on_b.cancel().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// The JSON-RPC messages of an `/mcp` answer (JSON, or an event stream's `data:` lines).
async fn messages(response: reqwest::Response) -> Vec<Value> {
    let body = response.text().await.unwrap();
    match serde_json::from_str::<Value>(&body) {
        Ok(message) => vec![message],
        Err(_) => body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect(),
    }
}

#[tokio::test]
async fn a_legacy_session_opened_on_one_server_goes_on_on_the_other() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = replica(&redis, "replica-a", "", "deny", None).await;
    let b = beside(&a, &redis, "replica-b", "").await;
    let admin = ("x-api-key", ADMIN_KEY);
    let opened = post_mcp(
        &a.url(),
        &[admin],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(opened.status().as_u16(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(opened);
    let in_session = |who| {
        [
            who,
            ("mcp-session-id", session.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ]
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post_mcp(
        &a.url(),
        &in_session(admin),
        initialized.to_string().into_bytes(),
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());

    // The load balancer sends the next requests to B.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let response = post_mcp(&b.url(), &in_session(admin), list.to_string().into_bytes()).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer = messages(response).await;
    let tools = answer
        .iter()
        .find(|m| m["id"] == 2)
        .and_then(|m| m["result"]["tools"].as_array())
        .unwrap_or_else(|| panic!("no tool list: {answer:?}"));
    assert!(tools.iter().any(|t| t["name"] == "webops_list_deployments"));
    let call = json!({
        "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "webops_list_deployments", "arguments": {}}
    });
    let response = post_mcp(&b.url(), &in_session(admin), call.to_string().into_bytes()).await;
    assert_eq!(response.status().as_u16(), 200);
    let answer = messages(response).await;
    let result = answer.iter().find(|m| m["id"] == 3).unwrap();
    assert_eq!(result["result"]["isError"], false, "{result}");

    // Another identity presenting the id is told it does not exist, on either replica.
    let viewer = ("x-api-key", VIEWER_KEY);
    for server in [&a, &b] {
        let response = post_mcp(
            &server.url(),
            &in_session(viewer),
            list.to_string().into_bytes(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 404);
    }
    // The session's entry is stored under a hashed id and expires.
    let keys = keys_and_ttls(&redis).await;
    let sessions: Vec<&(String, i64)> = keys
        .iter()
        .filter(|(k, _)| k.starts_with("webops-mcp:session:"))
        .collect();
    assert_eq!(sessions.len(), 1, "{keys:?}");
    assert!(!sessions[0].0.contains(&session));
    assert!(sessions[0].1 > 0 && sessions[0].1 <= 600_000);

    // Deleted through B, the session is gone for the fleet.
    let delete = reqwest::Client::new()
        .delete(b.url())
        .header("x-api-key", ADMIN_KEY)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    assert!(
        keys_and_ttls(&redis)
            .await
            .iter()
            .all(|(k, _)| !k.starts_with("webops-mcp:session:"))
    );
    let response = post_mcp(&b.url(), &in_session(admin), list.to_string().into_bytes()).await;
    assert_eq!(response.status().as_u16(), 404);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test]
async fn authentication_failures_are_counted_by_the_fleet() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = replica(&redis, "replica-a", "", "deny", None).await;
    let b = beside(&a, &redis, "replica-b", "").await;
    let body = initialize_body().to_string().into_bytes();
    let wrong = (
        "x-api-key",
        "wmcp_wrong-key-0123456789abcdef0123456789abcdef01",
    );
    for n in 0..10 {
        let server = if n % 2 == 0 { &a } else { &b };
        let response = post_mcp(&server.url(), &[wrong], body.clone()).await;
        assert_eq!(response.status().as_u16(), 401, "failure {}", n + 1);
    }
    // Ten failures over two replicas: both refuse the address now.
    for server in [&a, &b] {
        let response = post_mcp(&server.url(), &[wrong], body.clone()).await;
        assert_eq!(response.status().as_u16(), 429);
        assert!(response.headers().contains_key("retry-after"));
        let (name, value) = basic(BASIC_USER, BASIC_PASSWORD);
        let response = post_mcp(&server.url(), &[(name, &value)], body.clone()).await;
        assert_eq!(
            response.status().as_u16(),
            429,
            "a password is not even checked"
        );
        // A valid key is still let in.
        let response = post_mcp(&server.url(), &[("x-api-key", ADMIN_KEY)], body.clone()).await;
        assert_eq!(response.status().as_u16(), 200);
    }
    let keys = keys_and_ttls(&redis).await;
    let failures: Vec<&(String, i64)> = keys
        .iter()
        .filter(|(k, _)| k.starts_with("webops-mcp:authfail:"))
        .collect();
    assert_eq!(failures.len(), 1, "{keys:?}");
    assert!(!failures[0].0.contains("127.0.0.1"));
    assert!(failures[0].1 > 0 && failures[0].1 <= 60_000);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

async fn metrics(server: &TestServer) -> String {
    reqwest::get(format!("{}/metrics", server.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the sample `name` (with its labels) in a metrics page.
fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{page}"))
}

#[tokio::test]
async fn with_redis_gone_deny_refuses_clearly_and_the_server_recovers_by_itself() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = replica(&redis, "replica-a", "", "deny", None).await;
    let client = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    let ok = call(&client, "webops_list_deployments", json!({})).await;
    assert_ne!(ok.is_error, Some(true), "{}", text_of(&ok));
    let health = get_json(&format!("{}/health", server.base())).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["state"]["backend"], "redis");
    assert_eq!(health["state"]["reachable"], true);

    redis.stop();
    let refused = call(&client, "webops_list_deployments", json!({})).await;
    let text = text_of(&refused);
    assert_eq!(refused.is_error, Some(true), "{text}");
    assert!(
        text.contains("the shared state store (Redis) is unavailable"),
        "{text}"
    );
    assert!(text.contains("retry shortly"), "{text}");
    // Password logins cannot be checked against the fleet's failure count either.
    let (name, value) = basic(BASIC_USER, BASIC_PASSWORD);
    let response = post_mcp(
        &server.url(),
        &[(name, &value)],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "state_unavailable", "{body}");
    let health = get_json(&format!("{}/health", server.base())).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["state"]["reachable"], false);
    assert_eq!(health["state"]["on_unavailable"], "deny");
    assert!(
        health["state"]["error"]
            .as_str()
            .unwrap()
            .contains("unavailable"),
        "{health}"
    );
    let page = metrics(&server).await;
    assert_eq!(
        sample(&page, "webops_mcp_state_store_reachable{backend=\"redis\"}"),
        0.0
    );
    assert!(
        sample(
            &page,
            "webops_mcp_state_unavailable_total{operation=\"rate_limit\"}"
        ) >= 1.0
    );
    assert!(
        sample(
            &page,
            "webops_mcp_state_unavailable_total{operation=\"auth_throttle\"}"
        ) >= 1.0
    );

    // Redis comes back: the next calls work, no restart.
    redis.restart();
    let back = Instant::now();
    let deadline = back + Duration::from_secs(15);
    let mut refused_meanwhile = 0;
    loop {
        let result = call(&client, "webops_list_deployments", json!({})).await;
        if result.is_error != Some(true) {
            break;
        }
        refused_meanwhile += 1;
        assert!(
            Instant::now() < deadline,
            "no recovery: {}",
            text_of(&result)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovered {:?} after redis-server answered again ({refused_meanwhile} calls refused \
         meanwhile)",
        back.elapsed()
    );
    let health = get_json(&format!("{}/health", server.base())).await;
    assert_eq!(health["status"], "ok", "{health}");
    let page = metrics(&server).await;
    assert_eq!(
        sample(&page, "webops_mcp_state_store_reachable{backend=\"redis\"}"),
        1.0
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn with_redis_gone_allow_local_falls_back_to_this_process() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = replica(
        &redis,
        "replica-a",
        "rate_limit_per_minute = 3",
        "allow_local",
        None,
    )
    .await;
    let client = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    let ok = call(&client, "webops_list_deployments", json!({})).await;
    assert_ne!(ok.is_error, Some(true), "{}", text_of(&ok));
    redis.stop();
    // This process's own bucket of three, then its own limit.
    for _ in 0..3 {
        let result = call(&client, "webops_list_deployments", json!({})).await;
        assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    }
    let limited = call(&client, "webops_list_deployments", json!({})).await;
    let text = text_of(&limited);
    assert!(text.contains("at most 3 tool calls per minute"), "{text}");
    // A password is checked against this process's own count.
    let (name, value) = basic(BASIC_USER, BASIC_PASSWORD);
    let response = post_mcp(
        &server.url(),
        &[(name, &value)],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let health = get_json(&format!("{}/health", server.base())).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["state"]["on_unavailable"], "allow_local");
    let page = metrics(&server).await;
    assert!(
        sample(
            &page,
            "webops_mcp_state_unavailable_total{operation=\"rate_limit\"}"
        ) >= 1.0
    );
    client.cancel().await.unwrap();
    server.stop().await.unwrap();
}

fn settings(redis: &RedisServer, prefix: &str) -> StateSettings {
    let mut settings = StateSettings::default();
    settings.backend = StateBackend::Redis;
    settings.redis_url = Some(RedisUrl::parse(&redis.url()).unwrap());
    settings.key_prefix = prefix.to_owned();
    settings.on_unavailable = OnUnavailable::Deny;
    settings
}

/// The GCRA script on real Redis: a full bucket grants exactly the burst, then one call per
/// interval with the exact wait, the same for two replicas (two connections), per user, and
/// the bucket's key expires when it would be full again.
#[tokio::test]
async fn the_gcra_script_on_real_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let one = SharedState::new(&settings(&redis, "gcra"));
    let two = SharedState::new(&settings(&redis, "gcra"));
    let (one, two) = (
        one.rate_limit_store().unwrap(),
        two.rate_limit_store().unwrap(),
    );
    // 120 a minute: a burst of 120, then one every 500 ms.
    let quota = RateQuota::per_minute(NonZeroU32::new(120).unwrap());
    let interval = Duration::from_millis(500);
    let started = Instant::now();
    let mut granted = 0;
    for n in 0..240 {
        let store = if n % 2 == 0 { &one } else { &two };
        if store.take("alice", quota).await.unwrap() == RateDecision::Allowed {
            granted += 1;
        }
    }
    let RateDecision::Limited { retry_after } = one.take("alice", quota).await.unwrap() else {
        panic!("the bucket is empty");
    };
    let elapsed = started.elapsed();
    // The burst, plus one for every interval the calls took.
    let refilled = u32::try_from(elapsed.as_millis() / interval.as_millis()).unwrap();
    assert!(
        (120..=121 + refilled).contains(&granted),
        "{granted} in {elapsed:?}"
    );
    // The next call is due one interval after the last refill: within one interval.
    assert!(
        retry_after > Duration::ZERO && retry_after <= interval,
        "{retry_after:?}"
    );
    assert_eq!(
        two.take("bob", quota).await.unwrap(),
        RateDecision::Allowed,
        "a bucket per user"
    );
    // After the stated wait, exactly one more call.
    tokio::time::sleep(retry_after).await;
    assert_eq!(
        two.take("alice", quota).await.unwrap(),
        RateDecision::Allowed
    );
    assert!(matches!(
        one.take("alice", quota).await.unwrap(),
        RateDecision::Limited { .. }
    ));
    let keys = keys_and_ttls(&redis).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for (key, ttl) in keys {
        assert!(key.starts_with("gcra:rate:"), "{key}");
        assert!(!key.contains("alice") && !key.contains("bob"));
        // Full again at most a minute (the whole bucket) from now.
        assert!(ttl > 0 && ttl <= 60_500, "{key}: {ttl}");
    }
}
