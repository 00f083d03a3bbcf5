//! `webops-mcp stdio --demo` as Claude Desktop runs it: a real rmcp client over the child's
//! stdin/stdout calls every tool, and stdout carries nothing but JSON-RPC messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use crate::common::{self, ALL_TOOLS, call, sorted, text_of};
use rmcp::ServiceExt as _;
use rmcp::model::ClientConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use webops_mcp_testkit::{MockWebOps, Seed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_demo_serves_every_tool_and_stdout_is_only_protocol() {
    let mut child = common::spawn_stdio_demo(&["--log-level", "debug"], Stdio::piped());
    let child_stdin = child.stdin.take().unwrap();
    let child_stdout = child.stdout.take().unwrap();
    let mut child_stderr = child.stderr.take().unwrap();

    // Tee stdout: keep every line, and hand it to the client through a pipe.
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (client_read, mut tee) = tokio::io::duplex(1 << 20);
    let tee_task = {
        let lines = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(child_stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line.clone());
                if tee.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                    break;
                }
            }
        })
    };
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = child_stderr.read_to_string(&mut text).await;
        text
    });

    let client = ClientConfig::default()
        .serve((client_read, child_stdin))
        .await
        .unwrap();
    let info = client.peer_info().unwrap();
    assert_eq!(info.server_info.as_ref().unwrap().name, "webops-mcp");

    let names = common::tool_names(&client).await;
    assert_eq!(names, sorted(&ALL_TOOLS), "the stdio identity is admin:*");

    let calls: Vec<(&str, Value)> = vec![
        ("webops_list_deployments", json!({})),
        ("webops_get_status", json!({"deployment_id": "shop-api"})),
        (
            "webops_get_logs",
            json!({"deployment_id": "shop-api", "lines": 20}),
        ),
        (
            "webops_manage_service",
            json!({"deployment_id": "shop-api", "action": "restart"}),
        ),
        (
            "webops_security_audit",
            json!({"deployment_id": "shop-api"}),
        ),
        ("webops_system_health", json!({})),
    ];
    for (tool, arguments) in calls {
        let result = call(&client, tool, arguments).await;
        assert_ne!(result.is_error, Some(true), "{tool}: {}", text_of(&result));
        assert!(result.structured_content.is_some(), "{tool}");
        assert!(!text_of(&result).is_empty(), "{tool}");
    }

    let deployed = call(
        &client,
        "webops_deploy_app",
        json!({
            "app_name": "stdio-e2e",
            "repository": "https://github.com/example/stdio-e2e.git",
            "wait": true
        }),
    )
    .await;
    assert_ne!(deployed.is_error, Some(true), "{}", text_of(&deployed));
    let structured = deployed.structured_content.unwrap();
    assert_eq!(structured["status"], "running", "{structured}");
    assert_eq!(structured["name"], "stdio-e2e");

    let deleted = call(
        &client,
        "webops_delete_deployment",
        json!({"deployment_id": "stdio-e2e", "confirm_name": "stdio-e2e"}),
    )
    .await;
    assert_ne!(deleted.is_error, Some(true), "{}", text_of(&deleted));

    client.cancel().await.unwrap();
    // Closing stdin ends the server.
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the server exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status}");
    tee_task.await.unwrap();
    let stderr = stderr_task.await.unwrap();

    let lines = lines.lock().unwrap().clone();
    assert!(lines.len() >= 10, "{lines:?}");
    for line in &lines {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
        assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC: {line}");
    }
    // The logs went to stderr, and the audit records with them.
    assert!(stderr.contains("serving MCP over stdio"), "{stderr}");
    assert!(stderr.contains("webops_deploy_app"), "{stderr}");
    // --log-level debug does not open the SDK's debug lines, which print raw requests.
    for sdk_debug in ["received request", "response message"] {
        assert!(!stderr.contains(sdk_debug), "{sdk_debug}:\n{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_a_message_gets_a_json_rpc_error_and_the_server_reads_on() {
    let mut child = common::spawn_stdio_demo(&[], Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), stdout.next_line())
            .await
            .expect("an answer")
            .unwrap()
            .expect("the server still runs");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}
    });
    stdin
        .write_all(format!("{initialize}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(next().await["id"], 1);
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
        .await
        .unwrap();

    // One line at a time, each answered before the next, so the order is known.
    let cases: [(&[u8], i64, Value); 5] = [
        (b"{\"jsonrpc\":\"2.0\",\"id\":2,\"meth", -32700, Value::Null),
        (b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"\xff\"}", -32700, Value::Null),
        (b"[]", -32600, Value::Null),
        (
            br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"webops_get_status","name":"webops_system_health","arguments":{}}}"#,
            -32600,
            json!(4),
        ),
        (
            br#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":["x"]}}"#,
            -32602,
            json!(5),
        ),
    ];
    for (line, code, id) in cases {
        stdin.write_all(line).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        let answer = next().await;
        assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert_eq!(answer["id"], id, "{answer}");
    }
    let deep = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/list\",\"params\":{}{}}}\n",
        "[".repeat(500),
        "]".repeat(500)
    );
    stdin.write_all(deep.as_bytes()).await.unwrap();
    assert_eq!(next().await["error"]["code"], -32700);

    // And it still serves.
    stdin
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\"}\n")
        .await
        .unwrap();
    let listed = next().await;
    assert_eq!(listed["id"], 7, "{listed}");
    assert!(
        listed["result"]["tools"].as_array().unwrap().len() >= 8,
        "{listed}"
    );
    drop(stdin);
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the server exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// The most `tools/list` may cost a model: the bytes of its JSON-RPC `result` with every
/// tool present, read on every connection. 22,550 bytes when set (38,830 before the cut of
/// issue 13, without the per-tool `_meta` permissions and the paging of the two listing
/// tools that came since). Issue 13 asks for 15,600; without dropping typed output
/// fields that is out of reach (docs/performance.md, "Tool definitions"). A change that
/// outgrows this budget should cut elsewhere first.
const TOOLS_LIST_BUDGET: usize = 22_800;

/// The production binary with its defaults, `stdio --demo` (the stdio identity holds every
/// permission, so every tool is listed), asked for `tools/list` by a raw client: the
/// serialized `result` stays within [`TOOLS_LIST_BUDGET`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_of_the_demo_stays_within_its_byte_budget() {
    let mut child = common::spawn_stdio_demo(&[], Stdio::null());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = async |message: Value| {
        stdin
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    };
    send(json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "budget", "version": "1"}}
    }))
    .await;
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    let listed = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), stdout.next_line())
            .await
            .expect("an answer")
            .unwrap()
            .expect("the server still runs");
        let message: Value = serde_json::from_str(&line).unwrap();
        if message["id"] == 2 {
            break message;
        }
    };
    let tools = listed["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    assert_eq!(names, ALL_TOOLS, "every tool, in registration order");

    let bytes = serde_json::to_string(&listed["result"]).unwrap().len();
    let per_tool: Vec<String> = tools
        .iter()
        .map(|t| format!("{} {}", t["name"], serde_json::to_string(t).unwrap().len()))
        .collect();
    println!("tools/list result: {bytes} bytes; {}", per_tool.join(", "));
    assert!(
        bytes <= TOOLS_LIST_BUDGET,
        "tools/list is {bytes} bytes, over its budget of {TOOLS_LIST_BUDGET} ({})",
        per_tool.join(", ")
    );
}

/// A WebOps behind a proxy of the environment (`HTTP_PROXY`) is still reached through that
/// proxy: the API client sends plain HTTP on hyper's client itself only when no proxy
/// intercepts the URL, and leaves proxies to reqwest. The mock stands in for the proxy (it
/// answers the absolute-form request itself); the API URL names a host that does not
/// resolve, so only the proxy can have answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webops_behind_a_proxy_of_the_environment_is_reached_through_it() {
    let mock = MockWebOps::builder()
        .seed(Seed::Demo)
        .start()
        .await
        .unwrap();
    let mut command = tokio::process::Command::from(common::command());
    for name in [
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        command.env_remove(name);
    }
    let mut child = command
        .arg("stdio")
        .env("WEBOPS_API_URL", "http://webops.invalid")
        .env("WEBOPS_API_FLAVOR", "v1")
        .env("WEBOPS_API_KEY", mock.token())
        .env("HTTP_PROXY", mock.base_url())
        .env("NO_PROXY", "")
        .env("no_proxy", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (stdout, stdin) = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
    let client = ClientConfig::default()
        .serve((stdout, stdin))
        .await
        .unwrap();
    let result = call(&client, "webops_list_deployments", json!({})).await;
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    let listed = result.structured_content.unwrap();
    assert_eq!(listed["count"], 8, "{listed}");
    let through_proxy = mock
        .requests()
        .into_iter()
        .any(|r| r.path == "/api/v1/deployments/" && r.headers["host"] == "webops.invalid");
    assert!(through_proxy, "{:?}", mock.requests());
    client.cancel().await.unwrap();
    mock.shutdown().await;
}
