//! MCP over Streamable HTTP end to end: per-identity tool lists and permission errors,
//! read-only mode, Host/Origin and body-size protections, time limits, both protocol eras,
//! `/health`, `/metrics`, the audit log, and graceful shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::common::{
    self, ADMIN_KEY, DEPLOY_READ_KEY, READ_TOOLS, ServerOptions, TestServer, VIEWER_KEY, bearer,
    call, command, connect, connect_modern, initialize_body, post_mcp, sorted, standard_auth_toml,
    text_of, tool_names, tools_without_elicitation,
};
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use webops_mcp_server::ConfigLoader;
use webops_mcp_testkit::{MockPanel, PANEL_PASSWORD, PANEL_USER, PanelSeed};

#[tokio::test]
async fn a_viewer_deploy_is_a_tool_error_not_a_protocol_error() {
    let server = TestServer::start("").await;
    let viewer = connect(&server.url(), &[("x-api-key", VIEWER_KEY)]).await;
    let result = call(
        &viewer,
        "webops_deploy_app",
        json!({"app_name": "sneaky", "repository": "https://github.com/x/y.git"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert!(result.structured_content.is_none());
    let text = text_of(&result);
    assert!(text.contains("deploy:create"), "{text}");
    // Nothing reached WebOps.
    let mock = server.mock.as_ref().unwrap();
    assert!(
        mock.requests().iter().all(|r| r.method != "POST"),
        "{:?}",
        mock.requests()
    );
    // A permitted call works for the same client.
    let ok = call(&viewer, "webops_list_deployments", json!({})).await;
    assert_ne!(ok.is_error, Some(true), "{}", text_of(&ok));
    viewer.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn client_credentials_are_never_forwarded_to_webops() {
    let server = TestServer::start(&common::hs256_toml()).await;
    let token = common::hs256(&common::claims(
        "jwt-user",
        json!({"permissions": ["deploy:read", "logs:read"]}),
    ));
    let (name, value) = bearer(&token);
    let jwt_client = connect(&server.url(), &[(name, &value)]).await;
    let key_client = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    call(
        &jwt_client,
        "webops_get_logs",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    call(&key_client, "webops_list_deployments", json!({})).await;
    jwt_client.cancel().await.unwrap();
    key_client.cancel().await.unwrap();

    let requests = server.mock.as_ref().unwrap().requests();
    assert!(requests.len() >= 2, "{requests:?}");
    for request in &requests {
        let everything = format!("{:?}{}{:?}", request.headers, request.body, request.query);
        assert!(
            !everything.contains(&token) && !everything.contains(ADMIN_KEY),
            "{request:?}"
        );
        if request.path.ends_with("/status/") {
            continue;
        }
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {}", webops_mcp_testkit::TEST_TOKEN).as_str()),
            "{request:?}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn read_only_hides_write_tools_whatever_the_permissions() {
    let server = TestServer::start_with(ServerOptions {
        loader: |l| l.read_only(true),
        ..ServerOptions::default()
    })
    .await;
    let admin = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    assert_eq!(tool_names(&admin).await, sorted(&READ_TOOLS));
    let result = call(
        &admin,
        "webops_manage_service",
        json!({"deployment_id": "shop-api", "action": "stop"}),
    )
    .await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text_of(&result).contains("read-only"),
        "{}",
        text_of(&result)
    );
    admin.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn forbidden_host_and_origin_are_refused_and_allowed_ones_pass() {
    let server = TestServer::start(
        "\n[http]\nallowed_hosts = [\"mcp.test.example\"]\nallowed_origins = [\"https://app.test.example\"]\n",
    )
    .await;
    let body = || initialize_body().to_string().into_bytes();
    let key = ("x-api-key", ADMIN_KEY);

    let response = post_mcp(&server.url(), &[key, ("host", "evil.example")], body()).await;
    assert_eq!(response.status().as_u16(), 403);

    let response = post_mcp(
        &server.url(),
        &[key, ("origin", "https://evil.example")],
        body(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 403);

    let response = post_mcp(&server.url(), &[key, ("host", "mcp.test.example")], body()).await;
    assert_eq!(response.status().as_u16(), 200);

    let response = post_mcp(
        &server.url(),
        &[key, ("origin", "https://app.test.example")],
        body(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_session_answers_only_the_identity_that_opened_it() {
    let server = TestServer::start("").await;
    let url = server.url();
    let admin = ("x-api-key", ADMIN_KEY);
    let viewer = ("x-api-key", VIEWER_KEY);
    let opened = post_mcp(&url, &[admin], initialize_body().to_string().into_bytes()).await;
    assert_eq!(opened.status().as_u16(), 200);
    let session = opened
        .headers()
        .get("mcp-session-id")
        .expect("a legacy initialize opens a session")
        .to_str()
        .unwrap()
        .to_owned();
    drop(opened);
    let with_session = |who: (&'static str, &'static str)| {
        [
            who,
            ("mcp-session-id", ""),
            ("mcp-protocol-version", "2025-11-25"),
        ]
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});

    let mut as_admin = with_session(admin);
    as_admin[1].1 = &session;
    let response = post_mcp(&url, &as_admin, initialized.to_string().into_bytes()).await;
    assert!(response.status().is_success(), "{}", response.status());

    // Another identity presenting the id is told the session does not exist.
    let mut as_viewer = with_session(viewer);
    as_viewer[1].1 = &session;
    let response = post_mcp(&url, &as_viewer, list.to_string().into_bytes()).await;
    assert_eq!(response.status().as_u16(), 404);
    let stream = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream")
        .header("x-api-key", VIEWER_KEY)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 404);
    let delete = reqwest::Client::new()
        .delete(&url)
        .header("x-api-key", VIEWER_KEY)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status().as_u16(), 404);

    // The owner's session is untouched and still works.
    let response = post_mcp(&url, &as_admin, list.to_string().into_bytes()).await;
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("webops_deploy_app"), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let server = TestServer::start("").await;
    let mut big = initialize_body();
    big["params"]["padding"] = Value::String("x".repeat(webops_mcp_server::MAX_BODY_BYTES + 1));
    let response = post_mcp(
        &server.url(),
        &[("x-api-key", ADMIN_KEY)],
        big.to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 413);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn legacy_and_modern_clients_both_work() {
    let server = TestServer::start("").await;
    let (name, value) = bearer(ADMIN_KEY);
    let headers = [(name, value.as_str())];

    let legacy = connect(&server.url(), &headers).await;
    let legacy_version = legacy.peer_info().unwrap().protocol_version.clone();
    assert!(
        legacy_version < ProtocolVersion::V_2026_07_28,
        "legacy client negotiated {legacy_version}"
    );
    assert_eq!(
        legacy
            .peer_info()
            .unwrap()
            .server_info
            .as_ref()
            .unwrap()
            .name,
        "webops-mcp"
    );
    assert_eq!(
        tool_names(&legacy).await,
        sorted(&tools_without_elicitation())
    );
    let result = call(
        &legacy,
        "webops_get_status",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));

    let modern = connect_modern(&server.url(), &headers).await;
    assert_eq!(
        modern.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    assert_eq!(
        tool_names(&modern).await,
        sorted(&tools_without_elicitation())
    );
    let result = call(&modern, "webops_system_health", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    assert!(result.structured_content.is_some());

    legacy.cancel().await.unwrap();
    modern.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn health_reports_ok_and_an_unreachable_api_as_degraded() {
    let server = TestServer::start("").await;
    let body: Value = reqwest::get(format!("{}/health", server.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["uptime_seconds"].is_u64());
    assert_eq!(body["webops_api"]["reachable"], true);
    assert!(body["webops_api"]["latency_ms"].is_number());
    // The v1 mock, found by the auto flavour's probe.
    assert_eq!(body["webops_api"]["flavor"], "v1", "{body}");
    let reason = body["webops_api"]["flavor_reason"].as_str().unwrap();
    assert!(reason.starts_with("auto: GET /api/v1/status/"), "{reason}");
    server.stop().await.unwrap();

    // A closed port: bind, note the port, close it.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let server = TestServer::start_with(ServerOptions {
        api_url: Some(format!("http://{closed}")),
        ..ServerOptions::default()
    })
    .await;
    let response = reqwest::get(format!("{}/health", server.base()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["webops_api"]["reachable"], false);
    assert!(body["webops_api"]["latency_ms"].is_null());
    // Nothing answered the auto flavour's probe: the flavour is not known.
    assert!(body["webops_api"]["flavor"].is_null(), "{body}");
    assert!(body["webops_api"]["flavor_reason"].is_null(), "{body}");
    server.stop().await.unwrap();
}

/// `/health` (asked twice) of a server in front of a fresh demo `MockPanel`, configured by
/// `configured`, and the requests the panel received.
async fn panel_health(configured: fn(ConfigLoader) -> ConfigLoader) -> (Value, Vec<String>) {
    let panel = MockPanel::builder()
        .seed(PanelSeed::Demo)
        .start()
        .await
        .unwrap();
    let server = TestServer::start_with(ServerOptions {
        api_url: Some(panel.base_url()),
        loader: configured,
        ..ServerOptions::default()
    })
    .await;
    let response = reqwest::get(format!("{}/health", server.base()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    // Cached: a second look sends nothing more to the panel.
    let sent = panel.requests().len();
    let again: Value = reqwest::get(format!("{}/health", server.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["webops_api"], body["webops_api"]);
    let requests: Vec<String> = panel
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(requests.len(), sent, "{requests:?}");
    server.stop().await.unwrap();
    panel.shutdown().await;
    (body, requests)
}

#[tokio::test]
async fn health_names_the_panel_flavor_found_or_configured() {
    // auto: the probe finds the control panel.
    let (body, requests) = panel_health(|loader| {
        loader
            .env("WEBOPS_API_KEY", "")
            .env("WEBOPS_USERNAME", PANEL_USER)
            .env("WEBOPS_PASSWORD", PANEL_PASSWORD)
    })
    .await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["webops_api"]["reachable"], true, "{body}");
    assert!(body["webops_api"]["latency_ms"].is_number(), "{body}");
    assert_eq!(body["webops_api"]["flavor"], "panel", "{body}");
    let reason = body["webops_api"]["flavor_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("auto: ") && reason.contains("GET /api/status/"),
        "{reason}"
    );
    // The flavour costs nothing beyond the probe and the status check: no login, no list.
    assert!(
        requests.iter().all(|r| r.ends_with("/status/")),
        "{requests:?}"
    );

    // Configured: no probe at all.
    let (body, requests) = panel_health(|loader| {
        loader
            .env("WEBOPS_API_KEY", "")
            .env("WEBOPS_API_FLAVOR", "panel")
            .env("WEBOPS_USERNAME", PANEL_USER)
            .env("WEBOPS_PASSWORD", PANEL_PASSWORD)
    })
    .await;
    assert_eq!(body["webops_api"]["reachable"], true, "{body}");
    assert_eq!(body["webops_api"]["flavor"], "panel", "{body}");
    assert_eq!(
        body["webops_api"]["flavor_reason"], "configured: flavor = \"panel\"",
        "{body}"
    );
    assert_eq!(requests, ["GET /api/status/"]);
}

#[tokio::test]
async fn metrics_count_a_call_made_before() {
    let server = TestServer::start("").await;
    let admin = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    let result = call(&admin, "webops_list_deployments", json!({"limit": 5})).await;
    assert_ne!(result.is_error, Some(true));
    let response = reqwest::get(format!("{}/metrics", server.base()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for needle in [
        "webops_mcp_tool_calls_total{tool=\"webops_list_deployments\",outcome=\"ok\"} 1",
        "webops_mcp_tool_call_duration_seconds_count{tool=\"webops_list_deployments\"} 1",
        "webops_mcp_upstream_requests_total{method=\"GET\",endpoint=\"deployments/\",status=\"200\"}",
        "webops_mcp_http_requests_total{route=\"/mcp\",status=\"200\"}",
        "webops_mcp_auth_attempts_total{method=\"api_key\",outcome=\"success\"}",
        "# TYPE webops_mcp_http_requests_total counter",
        "process_start_time_seconds ",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    admin.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_can_require_authentication_and_system_read() {
    let server = TestServer::start("\n[http]\nmetrics_require_auth = true\n").await;
    let url = format!("{}/metrics", server.base());
    let http = reqwest::Client::new();
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 401);
    let status = http
        .get(&url)
        .header("x-api-key", DEPLOY_READ_KEY)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 403);
    let response = http
        .get(&url)
        .header("x-api-key", VIEWER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("webops_mcp_tool_calls_in_flight")
    );
    // /health stays open.
    let status = http
        .get(format!("{}/health", server.base()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn the_audit_log_of_a_run_verifies_and_a_tampered_copy_fails() {
    let server = TestServer::start("").await;
    let admin = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    let viewer = connect(&server.url(), &[("x-api-key", VIEWER_KEY)]).await;
    call(&admin, "webops_list_deployments", json!({})).await;
    call(
        &viewer,
        "webops_get_status",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    call(
        &viewer,
        "webops_delete_deployment",
        json!({"deployment_id": "shop-api", "confirm_name": "shop-api"}),
    )
    .await;
    admin.cancel().await.unwrap();
    viewer.cancel().await.unwrap();
    // Keep a copy: the server's directory goes with it.
    let dir = common::TempDir::new();
    let log = dir.join("audit.jsonl");
    std::fs::copy(server.audit_log(), &log).unwrap();
    server.stop().await.unwrap();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let users: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["user_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(users, ["admin", "viewer", "viewer"]);
    assert!(!text.contains(ADMIN_KEY) && !text.contains(VIEWER_KEY));

    let output = command()
        .args(["audit", "verify"])
        .arg(&log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("3 records"), "{stdout}");

    // Make the denied delete look like the admin's.
    let tampered = text.replacen("\"user_id\":\"viewer\"", "\"user_id\":\"admin\"", 1);
    assert_ne!(tampered, text);
    let copy = dir.write("tampered.jsonl", &tampered);
    let output = command()
        .args(["audit", "verify"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("FAILED") && stderr.contains("line 2"),
        "{stderr}"
    );
}

#[tokio::test]
async fn shutdown_lets_a_call_in_flight_finish() {
    let server = TestServer::start_with(ServerOptions {
        step_delay: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await;
    let admin = connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await;
    let deploy = tokio::spawn(async move {
        let result = call(
            &admin,
            "webops_deploy_app",
            json!({
                "app_name": "drain-me",
                "repository": "https://github.com/example/drain-me.git",
                "environment": "staging",
                "wait": true
            }),
        )
        .await;
        let _ = admin.cancel().await;
        result
    });
    // Wait until the deployment exists upstream: the call is in flight.
    let mock = server.mock.as_ref().unwrap();
    for _ in 0..500 {
        if mock.requests().iter().any(|r| r.method == "POST") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(mock.requests().iter().any(|r| r.method == "POST"));
    server.begin_shutdown();
    // Soon new connections are refused, while the call goes on.
    let mut refused = false;
    for _ in 0..100 {
        let attempt = reqwest::Client::new()
            .get(format!("{}/health", server.base()))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if attempt.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "the listener still accepts after shutdown began");

    let result = deploy.await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    assert_eq!(result.structured_content.unwrap()["status"], "running");
    server.join().await.unwrap();
}

#[test]
fn http_without_any_authentication_refuses_to_start() {
    let dir = common::TempDir::new();
    let file = dir.write("empty.toml", "");
    let output = command()
        .args(["http", "--bind", "127.0.0.1:0", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("webops-mcp hash-key"), "{stderr}");
}

#[tokio::test]
async fn http_demo_prints_working_keys() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(common::binary())
        .args(["http", "--demo", "--bind", "127.0.0.1:0"])
        .env_remove("WEBOPS_MCP_CONFIG")
        .env_remove("WEBOPS_API_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut url, mut admin, mut viewer) = (None, None, None);
    while url.is_none() || admin.is_none() || viewer.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("banner printed")
            .unwrap()
            .expect("banner before exit");
        let key = line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned();
        if line.contains("admin  (all permissions)") {
            admin = Some(key);
        } else if line.contains("viewer (") {
            viewer = Some(key);
        } else if line.contains("\"url\":") {
            url = Some(line.split('"').nth(3).unwrap().to_owned());
        }
    }
    let (url, admin, viewer) = (url.unwrap(), admin.unwrap(), viewer.unwrap());
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });

    let (name, value) = bearer(&admin);
    let client = connect(&url, &[(name, &value)]).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&tools_without_elicitation())
    );
    let result = call(
        &client,
        "webops_get_status",
        json!({"deployment_id": "shop-api"}),
    )
    .await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    client.cancel().await.unwrap();

    let (name, value) = bearer(&viewer);
    let client = connect(&url, &[(name, &value)]).await;
    assert_eq!(
        tool_names(&client).await,
        sorted(&[
            "webops_get_status",
            "webops_list_deployments",
            "webops_get_logs",
            "webops_system_health"
        ])
    );
    client.cancel().await.unwrap();

    // A wrong credential is refused and logged without its value.
    let bogus = "wmcp_bogus-credential-that-must-not-be-logged";
    let response = post_mcp(
        &url,
        &[("x-api-key", bogus)],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);

    // SIGTERM stops it cleanly.
    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let rest = rest.await.unwrap();
    // The banner shows the demo keys on purpose; the logs after it must not.
    let logs = &rest[rest.find("serving MCP over Streamable HTTP").unwrap()..];
    assert!(logs.contains("authentication failed"), "{logs}");
    for secret in [bogus, admin.as_str(), viewer.as_str()] {
        assert!(!logs.contains(secret), "{secret} logged:\n{logs}");
    }
}

#[tokio::test]
async fn http_demo_with_the_panel_flavor_serves_the_panel_demo_data() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::from(command())
        .args([
            "http",
            "--demo",
            "--demo-flavor",
            "panel",
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut banner = String::new();
    let (mut url, mut admin) = (None, None);
    while url.is_none() || admin.is_none() {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("banner printed")
            .unwrap()
            .expect("banner before exit");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("admin  (all permissions)") {
            admin = line.split_whitespace().last().map(str::to_owned);
        } else if line.contains("\"url\":") {
            url = Some(line.split('"').nth(3).unwrap().to_owned());
        }
    }
    let (url, admin) = (url.unwrap(), admin.unwrap());
    // The banner says which flavour runs and how the server logs in to it.
    assert!(
        banner.contains("mock WebOps control panel (flavour panel)"),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "user \"{PANEL_USER}\", password \"{PANEL_PASSWORD}\""
        )),
        "{banner}"
    );
    assert!(banner.contains("20 requests per 60 s"), "{banner}");
    let _drain = tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let (name, value) = bearer(&admin);
    let client = connect(&url, &[(name, &value)]).await;
    let result = call(&client, "webops_list_deployments", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    let output = result.structured_content.unwrap();
    let mut names: Vec<&str> = output["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    // The panel demo seed: alice's deployments (bob's are not hers to see).
    assert_eq!(names, ["api-worker", "blog", "shop"], "{output}");
    assert_eq!(output["count"], 3, "{output}");
    let blog = output["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "blog")
        .unwrap();
    assert_eq!(blog["status"], "running", "{output}");
    client.cancel().await.unwrap();

    // /health names the configured flavour.
    let base = url.trim_end_matches("/mcp");
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["webops_api"]["flavor"], "panel", "{health}");
    assert_eq!(
        health["webops_api"]["flavor_reason"], "configured: flavor = \"panel\"",
        "{health}"
    );

    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn demo_flavor_needs_demo_and_a_known_flavor() {
    let output = command()
        .args(["check-config", "--stdio", "--demo-flavor", "panel"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--demo"), "{stderr}");

    let output = command()
        .args(["check-config", "--demo", "--demo-flavor", "rest"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("v1, panel"), "{stderr}");

    let output = command()
        .args(["check-config", "--demo", "--demo-flavor", "panel"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("# webops flavour: panel (demo: --demo-flavor panel"),
        "{stdout}"
    );
}

#[tokio::test]
async fn progress_notifications_stream_over_http() {
    let server = TestServer::start_with(ServerOptions {
        step_delay: Duration::from_millis(100),
        ..ServerOptions::default()
    })
    .await;
    let key = ("x-api-key", ADMIN_KEY);
    let response = post_mcp(
        &server.url(),
        &[key],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = response.text().await.unwrap();
    let session_header = ("mcp-session-id", session.as_str());
    let version = ("mcp-protocol-version", "2025-11-25");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = post_mcp(
        &server.url(),
        &[key, session_header, version],
        initialized.to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 202);

    let call = json!({
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {
            "name": "webops_deploy_app",
            "arguments": {
                "app_name": "progress-demo",
                "repository": "https://github.com/example/progress-demo.git",
                "environment": "staging",
                "wait": true
            },
            "_meta": {"progressToken": "deploy-1"}
        }
    });
    let response = post_mcp(
        &server.url(),
        &[key, session_header, version],
        call.to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = tokio::time::timeout(Duration::from_secs(30), response.text())
        .await
        .expect("the stream ends after the result")
        .unwrap();
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "{body}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "deploy-1")
    );
    let result = messages.iter().find(|m| m["id"] == 2).expect("the result");
    assert_eq!(
        result["result"]["structuredContent"]["status"], "running",
        "{body}"
    );
    // Progress came before the result.
    let last_progress = messages
        .iter()
        .rposition(|m| m["method"] == "notifications/progress")
        .unwrap();
    let result_at = messages.iter().position(|m| m["id"] == 2).unwrap();
    assert!(last_progress < result_at);
    server.stop().await.unwrap();
}

/// Writes `bytes` on a fresh connection and waits (at most 20 s) for the server to answer
/// or close; returns what it sent, or `None` if it did neither.
async fn stall(server: &TestServer, bytes: &[u8]) -> Option<String> {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    match tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = TestServer::start("\n[http]\nread_timeout_secs = 1\n").await;
    let answer = stall(
        &server,
        b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: x",
    )
    .await;
    assert!(answer.is_some(), "the server still waits for the headers");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected() {
    let server = TestServer::start("\n[http]\nread_timeout_secs = 1\n").await;
    let answer = stall(&server, b"").await;
    assert!(
        answer.is_some(),
        "the server still waits for the first byte"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http2_without_tls_is_refused() {
    let server = TestServer::start("").await;
    // The HTTP/2 connection preface (prior knowledge, as h2c clients send it).
    let answer = stall(&server, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .expect("the server neither answered nor closed");
    assert!(!answer.starts_with("HTTP/2"), "{answer}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4") || answer.starts_with("HTTP/1.1 505"),
        "{answer}"
    );
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_answered() {
    let server = TestServer::start("\n[http]\nread_timeout_secs = 1\n").await;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: 500\r\n\r\n{{\"jsonrpc\": \"2.0\","
    );
    let answer = stall(&server, request.as_bytes())
        .await
        .expect("the server still waits for the body");
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_json_answer_is_cut_at_the_request_timeout_but_a_stream_is_not() {
    // A waiting deploy takes two steps of 1.5 s; /mcp must start answering within 1 s.
    let server = TestServer::start_with(ServerOptions {
        toml: format!(
            "{}\n[http]\nrequest_timeout_secs = 1\n",
            standard_auth_toml()
        ),
        step_delay: Duration::from_millis(1500),
        ..ServerOptions::default()
    })
    .await;
    let deploy = |name: &str| {
        let arguments = json!({
            "app_name": name,
            "repository": format!("https://github.com/example/{name}.git"),
                "environment": "staging",
            "wait": true
        });
        CallToolRequestParams::new("webops_deploy_app")
            .with_arguments(arguments.as_object().cloned().unwrap())
    };
    let key = [("x-api-key", ADMIN_KEY)];

    // A stateless (2026-07-28) call without a progress token is answered with JSON once the
    // tool is done: too late.
    let call = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "webops_deploy_app",
            "arguments": deploy("too-slow").arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1.0"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    });
    let response = post_mcp(
        &server.url(),
        &[
            key[0],
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "webops_deploy_app"),
        ],
        call.to_string().into_bytes(),
    )
    .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], "answer_timeout", "{body}");
    // The deploy is not undone: the body says so and where to look.
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("webops_get_status"),
        "{body}"
    );
    let statuses = reqwest::get(format!("{}/metrics", server.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        statuses.contains("webops_mcp_http_requests_total{route=\"/mcp\",status=\"504\"} 1"),
        "{statuses}"
    );

    // With a progress token (rmcp's client always sends one) the answer is a stream that
    // starts with the first notification: it runs to the end.
    let modern = connect_modern(&server.url(), &key).await;
    let result = modern.call_tool(deploy("streamed-modern")).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    modern.cancel().await.unwrap();

    // A legacy session's answer is a stream that starts at once: it runs to the end.
    let legacy = connect(&server.url(), &key).await;
    let result = legacy.call_tool(deploy("streamed")).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    assert_eq!(result.structured_content.unwrap()["status"], "running");
    legacy.cancel().await.unwrap();
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_long_log_pages_under_the_configured_answer_budget_in_both_eras() {
    let budget = 20_000;
    let server = TestServer::start(&format!("[limits]\nmax_answer_bytes = {budget}\n")).await;
    let mock = server.mock.as_ref().unwrap();
    let id = mock.deployment_id("shop-api").unwrap();
    for i in 0..1000 {
        mock.push_log(id, "error", "error", &format!("{i:04} {}", "e".repeat(120)));
    }
    for client in [
        connect(&server.url(), &[("x-api-key", ADMIN_KEY)]).await,
        connect_modern(&server.url(), &[("x-api-key", ADMIN_KEY)]).await,
    ] {
        let mut arguments =
            json!({"deployment_id": "shop-api", "log_type": "error", "lines": 1000});
        let mut read = Vec::new();
        loop {
            let result = call(&client, "webops_get_logs", arguments.clone()).await;
            assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
            let structured = result.structured_content.clone().unwrap();
            let bytes = text_of(&result).len() + structured.to_string().len();
            assert!(bytes <= budget, "{bytes} bytes");
            read.extend(
                structured["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["message"].as_str().unwrap()[..4].to_owned()),
            );
            match structured.get("next_cursor") {
                Some(cursor) => arguments["cursor"] = cursor.clone(),
                None => break,
            }
        }
        let expected: Vec<String> = (0..1000).map(|i| format!("{i:04}")).collect();
        assert!(
            read == expected,
            "{} lines, not the 1000 in order",
            read.len()
        );
        client.cancel().await.unwrap();
    }
    server.stop().await.unwrap();
}

/// The lean path answers a stateless `tools/call` as rmcp does. Each call is sent twice: as
/// clients send it, and with an extra `Accept` range carrying a weight (which rmcp accepts and
/// the lean path leaves to rmcp); status, media type and body (as JSON: the lean path keeps
/// the structured content's members in the order the tool wrote them) must be the same, and
/// `/metrics` counts only the first of each pair as the lean path's.
#[tokio::test]
async fn the_lean_path_answers_a_stateless_call_as_rmcp_does() {
    let server = TestServer::start("").await;
    let lean_calls = || async {
        let metrics = reqwest::get(format!("{}/metrics", server.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("webops_mcp_http_lean_calls_total "))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let send = |key: &'static str, id: Value, tool: &'static str, arguments: Value, meta: Value| {
        let body = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": {"name": tool, "arguments": arguments, "_meta": meta},
        })
        .to_string()
        .into_bytes();
        let url = server.url();
        async move {
            let mut answers = Vec::new();
            for extra in [None, Some(("accept", "application/json;q=1"))] {
                let mut headers = vec![
                    ("x-api-key", key),
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", tool),
                ];
                headers.extend(extra);
                let response = post_mcp(&url, &headers, body.clone()).await;
                let status = response.status().as_u16();
                let media = response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let text = response.text().await.unwrap();
                answers.push((status, media, text));
            }
            answers
        }
    };
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "1.0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let cases = [
        (ADMIN_KEY, json!(1), "webops_list_deployments", json!({})),
        (
            ADMIN_KEY,
            json!("two"),
            "webops_list_deployments",
            json!({"status": "running", "limit": 2}),
        ),
        (
            ADMIN_KEY,
            json!(3),
            "webops_get_logs",
            json!({"deployment_id": -1}),
        ),
        (ADMIN_KEY, json!(4), "webops_not_a_tool", json!({})),
        (
            VIEWER_KEY,
            json!(5),
            "webops_delete_deployment",
            json!({"deployment_id": 1, "confirm_name": "x"}),
        ),
        (
            VIEWER_KEY,
            json!(6),
            "webops_list_deployments",
            json!({"environment": "staging"}),
        ),
    ];
    for (i, (key, id, tool, arguments)) in cases.into_iter().enumerate() {
        let answers = send(key, id, tool, arguments, meta.clone()).await;
        let (lean, rmcp) = (&answers[0], &answers[1]);
        assert_eq!(lean.0, rmcp.0, "{tool}: {lean:?} {rmcp:?}");
        assert_eq!(lean.1, rmcp.1, "{tool}: {lean:?} {rmcp:?}");
        let (a, b): (Value, Value) = (
            serde_json::from_str(&lean.2).unwrap(),
            serde_json::from_str(&rmcp.2).unwrap(),
        );
        assert_eq!(a, b, "{tool}");
        assert_eq!(lean_calls().await, i as u64 + 1, "{tool}");
    }

    // A progress token needs rmcp's stream, and an Origin rmcp's check: not the lean path's.
    let mut with_progress = meta.clone();
    with_progress["progressToken"] = json!("p1");
    let body = |meta: &Value| {
        json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "webops_list_deployments", "arguments": {}, "_meta": meta},
        })
        .to_string()
        .into_bytes()
    };
    let headers = [
        ("x-api-key", ADMIN_KEY),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "webops_list_deployments"),
    ];
    let streamed = post_mcp(&server.url(), &headers, body(&with_progress)).await;
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().contains("structuredContent"));
    let mut from_a_page = headers.to_vec();
    from_a_page.push(("origin", "http://localhost:3000"));
    let answered = post_mcp(&server.url(), &from_a_page, body(&meta)).await;
    assert_eq!(answered.status(), 200);
    assert_eq!(lean_calls().await, 6);

    // One audit record per call, whichever path answered it.
    let audit = std::fs::read_to_string(server.audit_log()).unwrap();
    assert_eq!(audit.lines().count(), 2 * 6 + 2, "{audit}");
    server.stop().await.unwrap();
}
