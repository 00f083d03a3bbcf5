//! The protocol edges of the HTTP transport, tried as an outside client would: loopback
//! `Origin`s by default, JSON-RPC errors (not plain text) for what is not a valid message,
//! JSON bodies for HTTP misuse, ambiguous `Host`s refused; and in `hostile`, 10,000 hostile
//! requests against the `webops-mcp` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod hostile;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{ADMIN_KEY, ServerOptions, TestServer, initialize_body, post_mcp};

/// Sends `request` as it is on a new connection and returns the status and body of the answer.
async fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The JSON body of an answer, which must be JSON.
async fn json_body(response: reqwest::Response) -> Value {
    let media = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(media.starts_with("application/json"), "{media}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test]
async fn a_loopback_server_accepts_loopback_origins_by_default_and_refuses_foreign_ones() {
    let server = TestServer::start("").await;
    let key = ("x-api-key", ADMIN_KEY);
    let port = server.addr.port().to_string();
    let own = format!("http://127.0.0.1:{port}");
    for origin in [
        own.as_str(),
        "http://localhost:5173",
        "http://localhost",
        "http://[::1]:3000",
        "https://localhost:8443",
    ] {
        let response = post_mcp(
            &server.url(),
            &[key, ("origin", origin)],
            initialize_body().to_string().into_bytes(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 200, "{origin}");
    }
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example:8080",
        "http://127.0.0.1.nip.io:8080",
        "http://127.0.0.2:8080",
        "null",
        "not an origin",
    ] {
        let response = post_mcp(
            &server.url(),
            &[key, ("origin", origin)],
            initialize_body().to_string().into_bytes(),
        )
        .await;
        assert_eq!(response.status().as_u16(), 403, "{origin}");
        let body = json_body(response).await;
        assert_eq!(body["error"]["code"], -32000, "{body}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_server_bound_to_all_addresses_accepts_no_origin_unless_listed() {
    let server = TestServer::start_with(ServerOptions {
        loader: |l| l.bind("0.0.0.0:8080"),
        ..ServerOptions::default()
    })
    .await;
    let response = post_mcp(
        &server.url(),
        &[
            ("x-api-key", ADMIN_KEY),
            ("origin", "http://localhost:5173"),
        ],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 403);
    // Clients that send no Origin (not browsers) still pass.
    let response = post_mcp(
        &server.url(),
        &[("x-api-key", ADMIN_KEY)],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn what_is_not_a_valid_message_gets_400_with_a_json_rpc_error() {
    let server = TestServer::start("").await;
    let key = ("x-api-key", ADMIN_KEY);
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{}{}}}",
        "[".repeat(300),
        "]".repeat(300)
    );
    let cases: Vec<(&str, Vec<u8>, i64, Value)> = vec![
        ("truncated", br#"{"jsonrpc":"2.0","id":1,"meth"#.to_vec(), -32700, Value::Null),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/\xc3\x28list\"}".to_vec(),
            -32700,
            Value::Null,
        ),
        ("too deep", deep.into_bytes(), -32700, Value::Null),
        ("empty", Vec::new(), -32700, Value::Null),
        ("huge number", br#"{"jsonrpc":"2.0","id":1e999,"method":"ping"}"#.to_vec(), -32700, Value::Null),
        ("batch", br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(), -32600, Value::Null),
        ("scalar", b"42".to_vec(), -32600, Value::Null),
        ("no version", br#"{"id":9,"method":"ping"}"#.to_vec(), -32600, json!(9)),
        (
            "duplicate name",
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"webops_get_status","name":"webops_list_deployments","arguments":{}}}"#.to_vec(),
            -32600,
            json!(7),
        ),
        (
            "wrong type",
            br#"{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":42}}"#.to_vec(),
            -32602,
            json!("x"),
        ),
    ];
    for (what, body, code, id) in cases {
        let response = post_mcp(&server.url(), &[key], body).await;
        assert_eq!(response.status().as_u16(), 400, "{what}");
        let answer = json_body(response).await;
        assert_eq!(answer["jsonrpc"], "2.0", "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert_eq!(answer["id"], id, "{what}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{what}: {answer}");
        if what == "duplicate name" {
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains("duplicate key \"name\""), "{message}");
        }
    }
    // Still serving.
    let response = post_mcp(
        &server.url(),
        &[key],
        initialize_body().to_string().into_bytes(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn http_misuse_stays_4xx_with_a_json_body() {
    let server = TestServer::start("").await;
    let client = reqwest::Client::new();
    let url = server.url();
    let body = initialize_body().to_string();
    let wrong_type = client
        .post(&url)
        .header("x-api-key", ADMIN_KEY)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "text/plain")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let no_accept = client
        .post(&url)
        .header("x-api-key", ADMIN_KEY)
        .header("accept", "text/html")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let wrong_method = client
        .put(&url)
        .header("x-api-key", ADMIN_KEY)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let unknown_session = post_mcp(
        &url,
        &[
            ("x-api-key", ADMIN_KEY),
            ("mcp-session-id", "no-such-session"),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
            .to_string()
            .into_bytes(),
    )
    .await;
    // A JSON request's error carries its id (a client matches answers by id); one whose body
    // was not read as JSON-RPC gets `null`.
    let initialize_id = initialize_body()["id"].clone();
    for (what, response, status, code, id) in [
        ("wrong media type", wrong_type, 415, -32000, Value::Null),
        (
            "not accepting JSON and SSE",
            no_accept,
            406,
            -32000,
            initialize_id,
        ),
        ("wrong method", wrong_method, 405, -32000, Value::Null),
        ("unknown session", unknown_session, 404, -32001, json!(2)),
    ] {
        assert_eq!(response.status().as_u16(), status, "{what}");
        let answer = json_body(response).await;
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        assert_eq!(answer["id"], id, "{what}: {answer}");
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn two_hosts_or_a_target_naming_another_host_get_400() {
    let server = TestServer::start("").await;
    let addr = server.addr;
    let body = initialize_body().to_string();
    let post = |target: &str, hosts: &[String]| {
        let mut request = format!("POST {target} HTTP/1.1\r\n");
        for host in hosts {
            request.push_str(&format!("Host: {host}\r\n"));
        }
        request.push_str(&format!(
            "X-API-Key: {ADMIN_KEY}\r\nAccept: application/json, text/event-stream\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        request
    };
    let own = format!("127.0.0.1:{}", addr.port());

    let (status, answer) = raw_http(addr, &post("/mcp", std::slice::from_ref(&own))).await;
    assert_eq!(status, 200, "{answer}");

    for hosts in [
        vec![own.clone(), "evil.example".to_owned()],
        vec!["evil.example".to_owned(), own.clone()],
        vec![own.clone(), own.clone()],
    ] {
        let (status, answer) = raw_http(addr, &post("/mcp", &hosts)).await;
        assert_eq!(status, 400, "{hosts:?}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["code"], -32000, "{answer}");
    }
    let (status, _) = raw_http(
        addr,
        &format!(
            "GET /health HTTP/1.1\r\nHost: {own}\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 400);

    let (status, answer) = raw_http(
        addr,
        &post("http://evil.example/mcp", std::slice::from_ref(&own)),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = raw_http(
        addr,
        &post(
            &format!("http://127.0.0.1:{}/mcp", addr.port() ^ 1),
            std::slice::from_ref(&own),
        ),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    // The same authority in both places is fine.
    let (status, answer) = raw_http(
        addr,
        &post(&format!("http://{own}/mcp"), std::slice::from_ref(&own)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    server.stop().await.unwrap();
}
