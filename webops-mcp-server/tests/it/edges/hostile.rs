//! 10,000 hostile JSON-RPC requests against the `webops-mcp` binary (`http --demo`, an
//! anonymous read-only loopback identity, `--read-only`): mutations of valid requests
//! (truncation, invalid UTF-8, deep nesting, wrong types, huge numbers, duplicate keys,
//! batches, flipped bytes). Every answer must be JSON (a JSON body, or SSE events whose data
//! is JSON; a notification's 202 has none), no answer may be a 5xx, and the server must still
//! serve a normal client afterwards. Deterministic (fixed seed), loopback only.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use crate::common::{TempDir, binary, initialize_body, post_mcp};

/// How many hostile requests are sent.
const REQUESTS: usize = 10_000;
/// How many are in flight at once.
const CONCURRENCY: usize = 8;
/// The seed of the mutations.
const SEED: u64 = 0x5eed_0fc0_ffee;

/// splitmix64: a small deterministic generator, enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Valid requests the mutations start from.
fn bases() -> Vec<Value> {
    vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
               "params": {"name": "webops_list_deployments", "arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": "s-4", "method": "tools/call",
               "params": {"name": "webops_get_status", "arguments": {"deployment_id": "shop-api"}}}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": "webops_get_logs", "arguments": {"deployment_id": "shop-api", "lines": 5}}}),
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/call",
               "params": {"name": "webops_deploy_app", "arguments": {"app_name": "x", "repository": "https://github.com/x/y.git"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
        json!({"jsonrpc": "2.0", "id": 8, "method": "resources/list"}),
        json!({"jsonrpc": "2.0", "id": 9, "method": "completion/complete",
               "params": {"ref": {"type": "ref/prompt", "name": "x"}, "argument": {"name": "a", "value": "b"}}}),
    ]
}

/// A value of a random JSON type.
fn wrong_value(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(1.5e300),
        4 => json!("text"),
        5 => json!([1, "two", null]),
        6 => json!({"nested": {"deeper": []}}),
        7 => json!(u64::MAX),
        _ => json!(""),
    }
}

/// Replaces a random field (top level, params or arguments) with a value of another type.
fn wrong_types(rng: &mut Rng, mut message: Value) -> Vec<u8> {
    let target = rng.below(3);
    let object = match target {
        0 => message.as_object_mut(),
        1 => message.get_mut("params").and_then(Value::as_object_mut),
        _ => message
            .get_mut("params")
            .and_then(|p| p.get_mut("arguments"))
            .and_then(Value::as_object_mut),
    };
    if let Some(object) = object
        && !object.is_empty()
    {
        let keys: Vec<String> = object.keys().cloned().collect();
        let key = rng.pick(&keys).clone();
        object.insert(key, wrong_value(rng));
    }
    message.to_string().into_bytes()
}

/// One hostile request body.
fn mutate(rng: &mut Rng, bases: &[Value]) -> Vec<u8> {
    let base = rng.pick(bases).clone();
    let text = base.to_string();
    match rng.below(11) {
        // Truncated anywhere.
        0 => text.as_bytes()[..rng.below(text.len())].to_vec(),
        // Invalid UTF-8 inserted.
        1 => {
            let mut bytes = text.into_bytes();
            let at = rng.below(bytes.len());
            let bad: &[&[u8]] = &[b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28"];
            bytes.splice(at..at, rng.pick(bad).iter().copied());
            bytes
        }
        // Deep nesting (beyond and within serde_json's limit of 128).
        2 => {
            let depth = 50 + rng.below(1_000);
            let (open, close) = if rng.below(2) == 0 {
                ("[".repeat(depth), "]".repeat(depth))
            } else {
                ("{\"a\":".repeat(depth), "}".repeat(depth))
            };
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"webops_list_deployments","arguments":{{"x":{open}1{close}}}}}}}"#
            )
            .into_bytes()
        }
        3 => wrong_types(rng, base),
        // Huge and odd numbers.
        4 => {
            let numbers = [
                "1e999",
                "-1e999",
                "123456789012345678901234567890",
                "18446744073709551616",
                "-0",
                "1.0e-400",
                "9223372036854775808",
            ];
            let number = rng.pick(&numbers);
            match rng.below(3) {
                0 => format!(r#"{{"jsonrpc":"2.0","id":{number},"method":"tools/list"}}"#),
                1 => format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"webops_get_logs","arguments":{{"deployment_id":"shop-api","lines":{number}}}}}}}"#
                ),
                _ => format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"cursor":{number}}}}}"#
                ),
            }
            .into_bytes()
        }
        // Duplicate keys.
        5 => {
            let duplicates = [
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"webops_get_status","name":"webops_list_deployments","arguments":{}}}"#,
                r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}"#,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"ping"}"#,
                r#"{"jsonrpc":"2.0","jsonrpc":"1.0","id":1,"method":"ping"}"#,
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"webops_get_status","arguments":{"deployment_id":"a","deployment_id":"b"}}}"#,
            ];
            rng.pick(&duplicates).as_bytes().to_vec()
        }
        // Batches.
        6 => {
            let count = rng.below(5);
            let items: Vec<Value> = (0..count).map(|_| rng.pick(bases).clone()).collect();
            Value::Array(items).to_string().into_bytes()
        }
        // Flipped bytes.
        7 => {
            let mut bytes = text.into_bytes();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = (rng.next() & 0xff) as u8;
            }
            bytes
        }
        // Not an object at all.
        8 => {
            let others = [
                "",
                " ",
                "null",
                "true",
                "\"text\"",
                "[]",
                "{}",
                "{\"jsonrpc\":\"2.0\"}",
            ];
            rng.pick(&others).as_bytes().to_vec()
        }
        // Bad escapes and control characters.
        9 => {
            let strings = [r#""\ud800""#, r#""\u00""#, "\"a\u{1}b\"", r#""\x41""#];
            format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":{},"arguments":{{}}}}}}"#,
                rng.pick(&strings)
            )
            .into_bytes()
        }
        // Left valid.
        _ => text.into_bytes(),
    }
}

/// Whether an answer is JSON: a JSON body, SSE events carrying JSON, or nothing for 202.
fn is_json_answer(status: u16, media: &str, body: &[u8]) -> Result<(), String> {
    if status == 202 && body.is_empty() {
        return Ok(());
    }
    let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    if media.starts_with("text/event-stream") {
        let mut messages = 0;
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim();
                if data.is_empty() {
                    continue;
                }
                serde_json::from_str::<Value>(data)
                    .map_err(|e| format!("SSE data ({e}): {data}"))?;
                messages += 1;
            }
        }
        return if messages > 0 {
            Ok(())
        } else {
            Err(format!("an event stream without a message: {text:?}"))
        };
    }
    if !media.starts_with("application/json") {
        return Err(format!("media type {media:?}: {text:?}"));
    }
    serde_json::from_str::<Value>(text)
        .map(|_| ())
        .map_err(|e| format!("not JSON ({e}): {text:?}"))
}

/// Opens a legacy MCP session (initialize, then initialized) and returns its id.
async fn open_session(url: &str) -> String {
    let opened = post_mcp(url, &[], initialize_body().to_string().into_bytes()).await;
    assert_eq!(opened.status().as_u16(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(opened);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let headers = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", "2025-11-25"),
    ];
    let done = post_mcp(url, &headers, initialized.to_string().into_bytes()).await;
    assert!(done.status().is_success());
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_hostile_requests_get_only_json_answers_and_the_server_stays_up() {
    let dir = TempDir::new();
    let config = dir.write(
        "hostile.toml",
        &format!(
            "[auth]\nanonymous_permissions = [\"deploy:read\", \"logs:read\", \"system:read\"]\n\
             [[auth.api_keys]]\nuser_id = \"nobody\"\nkey_sha256 = \"{}\"\npermissions = [\"deploy:read\"]\n\
             [security]\naudit_log = \"{}\"\n",
            "0".repeat(64),
            dir.join("audit.jsonl").display()
        ),
    );
    let mut child = tokio::process::Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args(["--read-only", "http", "--demo", "--bind", "127.0.0.1:0"])
        .env_remove("WEBOPS_MCP_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the server starts")
            .unwrap()
            .expect("the server prints its endpoint before it exits");
        if let Some(rest) = line.split("MCP endpoint: ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let mut rng = Rng(SEED);
    let bases = bases();
    let bodies: Vec<(bool, Vec<u8>)> = (0..REQUESTS)
        // One in ten goes without the session.
        .map(|_| (rng.below(10) != 0, mutate(&mut rng, &bases)))
        .collect();
    let bodies = Arc::new(bodies);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        // A legacy session per worker, so valid mutations reach the handler; one worker sends
        // one request at a time, so no two requests of a session share an id in flight (rmcp
        // then ends one of the two streams without an answer).
        let session = open_session(&url).await;
        let (bodies, client, url) = (bodies.clone(), client.clone(), url.clone());
        workers.spawn(async move {
            let mut statuses = BTreeMap::<String, usize>::new();
            let mut failures = Vec::new();
            for i in (worker..bodies.len()).step_by(CONCURRENCY) {
                let (with_session, body) = &bodies[i];
                let mut request = client
                    .post(&url)
                    .header("accept", "application/json, text/event-stream")
                    .header("content-type", "application/json")
                    .body(body.clone());
                if *with_session {
                    request = request
                        .header("mcp-session-id", &session)
                        .header("mcp-protocol-version", "2025-11-25");
                }
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(e) => {
                        failures.push(format!("#{i}: no answer: {e}"));
                        continue;
                    }
                };
                let status = response.status().as_u16();
                let media = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let answer = match response.bytes().await {
                    Ok(answer) => answer,
                    Err(e) => {
                        failures.push(format!("#{i}: answer cut: {e}"));
                        continue;
                    }
                };
                let code = serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_i64())
                    .map_or(String::new(), |c| format!(" {c}"));
                *statuses.entry(format!("{status}{code}")).or_default() += 1;
                if status >= 500 {
                    failures.push(format!("#{i}: {status}"));
                }
                if let Err(why) = is_json_answer(status, &media, &answer) {
                    failures.push(format!(
                        "#{i} ({status}) to {:?}: {why}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    ));
                }
            }
            (statuses, failures)
        });
    }
    let mut statuses = BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    while let Some(done) = workers.join_next().await {
        let (s, f) = done.unwrap();
        for (k, v) in s {
            *statuses.entry(k).or_default() += v;
        }
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "hostile: {REQUESTS} requests in {:.1} s; answers by status and JSON-RPC code: {statuses:?}",
        elapsed.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} answers were not JSON or were 5xx; first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );

    // Still up, and still serving a normal client.
    assert!(child.try_wait().unwrap().is_none(), "the server exited");
    let response = post_mcp(&url, &[], initialize_body().to_string().into_bytes()).await;
    assert_eq!(response.status().as_u16(), 200);
    let client = crate::common::connect(&url, &[]).await;
    let names = crate::common::tool_names(&client).await;
    assert!(names.contains(&"webops_get_status".to_owned()), "{names:?}");
    client.cancel().await.unwrap();
    child.kill().await.unwrap();
}
