//! The audit log: exactly one record per call for every outcome, no secrets in records, a
//! hash chain that verifies, detects tampering by line, and continues across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use webops_mcp_core::{
    AuditSink, JsonLinesFileSink, MemorySink, SecurityConfig, VerifyError, WebOpsMcpServer, verify,
};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("webops-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn file_server(path: &Path) -> WebOpsMcpServer {
    WebOpsMcpServer::builder()
        .without_builtin_tools()
        .api(Arc::new(webops_client::MockWebOpsApi::new()))
        .audit_sink(Arc::new(JsonLinesFileSink::open(path).unwrap()))
        .tool(Logs::default())
        .tool(Fails)
        .build()
        .unwrap()
}

async fn some_calls(server: &WebOpsMcpServer, n: usize) {
    let user = identity("auditor", &["logs:read"]);
    for i in 0..n {
        let tool = if i % 2 == 0 {
            "test_get_logs"
        } else {
            "test_fails"
        };
        server
            .handle_tool_call(tool, json!({"deployment_id": i}), &user)
            .await;
    }
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn one_record_per_call_for_every_outcome() {
    let blocker = Blocker::default();
    let sink = Arc::new(MemorySink::new());
    let server = builder(
        &sink,
        SecurityConfig::default()
            .rate_limit_per_minute(5)
            .max_concurrent_requests(1)
            .busy_timeout(Duration::from_millis(10)),
    )
    .tool(Logs::default())
    .tool(Fails)
    .tool(Destroy)
    .tool(blocker.clone())
    .build()
    .unwrap();
    let user = identity("erin", &["logs:read"]);

    let ok = server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 1}), &user)
        .await;
    assert!(!ok.is_error);
    server
        .handle_tool_call("test_destroy", json!({}), &user)
        .await;
    server
        .handle_tool_call("test_get_logs", json!({"lines": 1}), &user)
        .await;
    server
        .handle_tool_call("no_such_tool", json!({}), &user)
        .await;
    server
        .handle_tool_call("test_fails", json!({}), &user)
        .await;
    let cancel = CancellationToken::new();
    let running = {
        let (server, user, cancel) = (server.clone(), user.clone(), cancel.clone());
        tokio::spawn(async move {
            server
                .handle_tool_call_with("test_block", json!({}), &user, cancel, None)
                .await
        })
    };
    blocker.wait_started(1).await;
    server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 2}), &user)
        .await;
    cancel.cancel();
    running.await.unwrap();
    server
        .handle_tool_call("test_get_logs", json!({"deployment_id": 3}), &user)
        .await;

    let records = sink.records();
    let outcomes: Vec<&str> = records
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "ok",
            "denied",
            "invalid",
            "unknown_tool",
            "failed",
            "busy",
            "cancelled",
            "rate_limited"
        ]
    );
    let mut request_ids = std::collections::HashSet::new();
    for record in &records {
        let fields: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut fields = fields;
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                "arguments",
                "auth_method",
                "duration_ms",
                "error",
                "hash",
                "outcome",
                "prev_hash",
                "request_id",
                "time",
                "tool",
                "user_id"
            ]
        );
        assert!(chrono::DateTime::parse_from_rfc3339(record["time"].as_str().unwrap()).is_ok());
        assert_eq!(record["user_id"], "erin");
        assert_eq!(record["auth_method"], "api_key");
        assert!(record["duration_ms"].is_u64());
        assert!(request_ids.insert(record["request_id"].as_str().unwrap().to_owned()));
        if record["outcome"] == "ok" {
            assert_eq!(record["error"], Value::Null);
        } else {
            assert!(record["error"]["kind"].is_string(), "{record}");
            assert!(record["error"]["message"].is_string(), "{record}");
        }
    }
    assert_eq!(records[0]["tool"], "test_get_logs");
    assert_eq!(records[0]["arguments"], json!({"deployment_id": 1}));
    assert_eq!(records[1]["error"]["kind"], "permission_denied");
    assert_eq!(records[2]["error"]["kind"], "invalid_arguments");
    assert_eq!(records[3]["tool"], "no_such_tool");
    assert_eq!(records[3]["error"]["kind"], "unknown_tool");
    assert_eq!(records[7]["error"]["kind"], "rate_limited");
    let report = verify(sink.lines().join("\n").as_bytes()).unwrap();
    assert_eq!(report.records, 8);
}

#[tokio::test]
async fn no_secret_value_reaches_a_record() {
    let sink = Arc::new(MemorySink::new());
    let server = builder(&sink, SecurityConfig::default())
        .tool(Configure)
        .build()
        .unwrap();
    let user = identity("frank", &["deploy:create"]);
    let secrets = [
        "django-insecure-0123456789abcdef",
        "postgres://app:pa55word@db/app",
        "AKIAIOSFODNN7EXAMPLE",
        "sk-live-api-key-value",
        "correct horse battery staple",
        "tok_1234567890abcdef",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ];
    let ok = server
        .handle_tool_call(
            "test_configure",
            json!({
                "app_name": "shop-api",
                "env_vars": {
                    "SECRET_KEY": secrets[0],
                    "DATABASE_URL": secrets[1],
                    "AWS_ACCESS_KEY_ID": secrets[2],
                },
                "api_key": secrets[3],
                "password": secrets[4],
                "token": secrets[5],
            }),
            &user,
        )
        .await;
    assert!(!ok.is_error, "{}", ok.text());
    // Invalid calls echo no secret either: a wrong type under a secret name, an unknown
    // property holding a token.
    let invalid = server
        .handle_tool_call(
            "test_configure",
            json!({"app_name": "x", "password": ["correct horse battery staple"], "github_token": secrets[6]}),
            &user,
        )
        .await;
    assert!(invalid.is_error);
    for secret in secrets {
        assert!(!invalid.text().contains(secret), "{}", invalid.text());
    }
    // A model that pastes a token as the tool name does not get it recorded either.
    let unknown = server.handle_tool_call(secrets[6], json!({}), &user).await;
    assert!(unknown.is_error);
    assert!(!unknown.text().contains(secrets[6]), "{}", unknown.text());
    let all = sink.lines().join("\n");
    assert_eq!(sink.lines().len(), 3);
    for secret in secrets {
        assert!(!all.contains(secret), "{secret} leaked into {all}");
    }
    let first = &sink.records()[0];
    assert_eq!(first["arguments"]["app_name"], "shop-api");
    assert_eq!(first["arguments"]["env_vars"]["SECRET_KEY"], "<redacted>");
    assert_eq!(first["arguments"]["api_key"], "<redacted>");
}

#[tokio::test]
async fn the_chain_verifies_and_every_kind_of_tampering_is_found_by_line() {
    let dir = TempDir::new();
    let path = dir.file("audit.jsonl");
    some_calls(&file_server(&path), 6).await;
    let lines = lines_of(&path);
    assert_eq!(lines.len(), 6);
    let report = verify(std::fs::read(&path).unwrap().as_slice()).unwrap();
    assert_eq!(report.records, 6);
    let last: Value = serde_json::from_str(&lines[5]).unwrap();
    assert_eq!(report.last_hash, last["hash"].as_str().unwrap());

    let check = |tampered: Vec<String>| verify(tampered.join("\n").as_bytes()).unwrap_err();

    // Edited: a value changed in line 3.
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("\"user_id\":\"auditor\"", "\"user_id\":\"mallory\"");
    assert_ne!(edited[2], lines[2]);
    let err = check(edited);
    assert!(matches!(err, VerifyError::Modified { line: 3 }), "{err}");
    assert!(err.to_string().starts_with("line 3:"), "{err}");

    // Removed: line 4 deleted; the record now on line 4 does not chain.
    let mut removed = lines.clone();
    removed.remove(3);
    let err = check(removed);
    assert!(matches!(err, VerifyError::ChainBroken { line: 4 }), "{err}");

    // Inserted: a copy of line 1 inserted as line 3.
    let mut inserted = lines.clone();
    inserted.insert(2, lines[0].clone());
    let err = check(inserted);
    assert!(matches!(err, VerifyError::ChainBroken { line: 3 }), "{err}");

    // Swapped: lines 5 and 6.
    let mut swapped = lines.clone();
    swapped.swap(4, 5);
    let err = check(swapped);
    assert_eq!(err.line(), Some(5), "{err}");

    // Truncated at the start: line 1 no longer chains to the genesis hash.
    let err = check(lines[1..].to_vec());
    assert!(matches!(err, VerifyError::ChainBroken { line: 1 }), "{err}");

    // Not JSON.
    let mut garbage = lines.clone();
    garbage[1] = "{not json".to_owned();
    let err = check(garbage);
    assert!(
        matches!(err, VerifyError::Malformed { line: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_restart_continues_the_chain() {
    let dir = TempDir::new();
    let path = dir.file("audit.jsonl");
    some_calls(&file_server(&path), 3).await;
    let before = lines_of(&path);
    let last: Value = serde_json::from_str(&before[2]).unwrap();

    let reopened = JsonLinesFileSink::open(&path).unwrap();
    assert_eq!(reopened.last_hash().as_deref(), last["hash"].as_str());
    drop(reopened);

    some_calls(&file_server(&path), 2).await;
    let after = lines_of(&path);
    assert_eq!(after.len(), 5);
    assert_eq!(after[..3], before[..]);
    let fourth: Value = serde_json::from_str(&after[3]).unwrap();
    assert_eq!(fourth["prev_hash"], last["hash"]);
    assert_eq!(
        verify(std::fs::read(&path).unwrap().as_slice())
            .unwrap()
            .records,
        5
    );
}

#[tokio::test]
async fn a_torn_last_line_refuses_to_open() {
    let dir = TempDir::new();
    let path = dir.file("audit.jsonl");
    some_calls(&file_server(&path), 2).await;
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"time\":\"2026-");
    std::fs::write(&path, text).unwrap();
    let err = JsonLinesFileSink::open(&path).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("audit verify"), "{err}");
}

struct BrokenSink;

impl AuditSink for BrokenSink {
    fn write_line(&self, _line: &str) -> io::Result<()> {
        Err(io::Error::other("disk full"))
    }
}

#[tokio::test]
async fn a_failing_sink_never_fails_the_call() {
    let server = WebOpsMcpServer::builder()
        .without_builtin_tools()
        .api(Arc::new(webops_client::MockWebOpsApi::new()))
        .audit_sink(Arc::new(BrokenSink))
        .tool(Logs::default())
        .build()
        .unwrap();
    let result = server
        .handle_tool_call(
            "test_get_logs",
            json!({"deployment_id": 1}),
            &identity("u", &["logs:read"]),
        )
        .await;
    assert!(!result.is_error, "{}", result.text());
    let mut metrics = String::new();
    server.metrics().render(&mut metrics);
    assert!(
        metrics.contains("webops_mcp_audit_write_failures_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn audit_logging_off_writes_nothing() {
    let sink = Arc::new(MemorySink::new());
    let server = builder(&sink, SecurityConfig::default().audit_logging(false))
        .tool(Logs::default())
        .build()
        .unwrap();
    server
        .handle_tool_call(
            "test_get_logs",
            json!({"deployment_id": 1}),
            &identity("u", &["logs:read"]),
        )
        .await;
    assert!(sink.lines().is_empty());
}
