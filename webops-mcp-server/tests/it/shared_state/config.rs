//! `[state]` and `[security] server_id` in the configuration: defaults, the environment's
//! Redis URL beating the file's, unknown keys and values listing what is allowed, and the
//! URL's password never shown — not by `check-config`, not in an error, not in the logs of a
//! server that cannot reach Redis.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::Stdio;

use serde_json::Value;

use webops_mcp_server::Config;
use webops_mcp_server::config::{OnUnavailable, StateBackend};

use crate::common::{TempDir, command};

const PASSWORD: &str = "redis-pa55word-not-for-eyes";

fn errors(toml: &str) -> Vec<String> {
    match Config::loader().toml(toml).load() {
        Err(webops_mcp_server::Error::Config(errors)) => errors,
        other => panic!("expected configuration errors, got {other:?}"),
    }
}

#[test]
fn state_defaults_to_memory_and_server_id_to_the_host_name() {
    let config = Config::loader().load().unwrap();
    assert_eq!(config.state.backend, StateBackend::Memory);
    assert_eq!(config.state.on_unavailable, OnUnavailable::Deny);
    assert_eq!(config.state.key_prefix, "webops-mcp");
    assert!(config.state.redis_url.is_none());
    assert!(!config.security.server_id.is_empty());
    assert_eq!(
        config.shared_state().backend(),
        StateBackend::Memory,
        "one process needs no Redis"
    );

    let config = Config::loader()
        .toml(
            "[security]\nserver_id = \"web-2\"\n[state]\nbackend = \"redis\"\n\
             redis_url = \"redis://file.internal:6379/1\"\non_unavailable = \"allow_local\"\n\
             key_prefix = \"fleet:prod\"\n",
        )
        .env(
            "WEBOPS_MCP_REDIS_URL",
            format!("redis://:{PASSWORD}@env.internal:6379/0"),
        )
        .load()
        .unwrap();
    assert_eq!(config.security.server_id, "web-2");
    assert_eq!(config.state.backend, StateBackend::Redis);
    assert_eq!(config.state.on_unavailable, OnUnavailable::AllowLocal);
    assert_eq!(config.state.key_prefix, "fleet:prod");
    let url = config.state.redis_url.as_ref().unwrap();
    assert_eq!(url.masked(), "redis://<redacted>@env.internal:6379/0");
    assert!(!format!("{config:?}").contains(PASSWORD));
    assert_eq!(config.shared_state().backend(), StateBackend::Redis);
}

#[test]
fn unknown_keys_and_values_say_what_is_allowed() {
    let unknown = errors("[state]\nbackend = \"redis\"\nredis = \"redis://h\"\n");
    assert!(
        unknown[0].contains("in [state]: unknown key `redis`")
            && unknown[0].contains("`redis_url`"),
        "{unknown:?}"
    );
    let backend = errors("[state]\nbackend = \"etcd\"\n");
    assert!(
        backend[0].contains("[state]")
            && backend[0].contains("`memory`")
            && backend[0].contains("`redis`"),
        "{backend:?}"
    );
    let policy = errors("[state]\non_unavailable = \"allow\"\n");
    assert!(
        policy[0].contains("`deny`") && policy[0].contains("`allow_local`"),
        "{policy:?}"
    );
    let all = errors(
        "[security]\nserver_id = \" \"\n[state]\nbackend = \"redis\"\nkey_prefix = \"a b\"\n",
    );
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(all.iter().any(|e| e.contains("[security] server_id")));
    assert!(all.iter().any(|e| e.contains("[state] key_prefix")));
    assert!(all.iter().any(|e| e.contains("needs redis_url")));
    let bad_url = errors(&format!(
        "[state]\nbackend = \"redis\"\nredis_url = \"https://:{PASSWORD}@h/\"\n"
    ));
    assert!(bad_url[0].contains("is not a Redis URL"), "{bad_url:?}");
    assert!(!bad_url[0].contains(PASSWORD), "{bad_url:?}");
    let wrong_type = errors("[state]\nredis_url = 6379\n");
    assert!(wrong_type[0].contains("not shown"), "{wrong_type:?}");
}

#[test]
fn check_config_shows_the_redis_url_masked() {
    let dir = TempDir::new();
    let file = dir.write(
        "webops-mcp.toml",
        &format!(
            "[security]\nserver_id = \"web-1\"\n[state]\nbackend = \"redis\"\n\
             redis_url = \"rediss://default:{PASSWORD}@cache.internal:6380/0\"\n"
        ),
    );
    let output = command()
        .args(["check-config", "--stdio", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("server_id = \"web-1\""), "{stdout}");
    assert!(stdout.contains("[state]"), "{stdout}");
    assert!(stdout.contains("backend = \"redis\""), "{stdout}");
    assert!(
        stdout.contains("redis_url = \"rediss://<redacted>@cache.internal:6380/0\""),
        "{stdout}"
    );
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    // The same from the environment.
    let output = command()
        .args(["check-config", "--stdio"])
        .env(
            "WEBOPS_MCP_REDIS_URL",
            format!("redis://u:{PASSWORD}@env.internal/2"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("redis_url = \"redis://<redacted>@env.internal/2\""),
        "{stdout}"
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains(PASSWORD));
}

#[test]
fn a_server_that_cannot_reach_redis_logs_it_once_without_the_password() {
    // Nothing listens on port 1: the store is unavailable from the start.
    let dir = TempDir::new();
    let file = dir.write("c.toml", "[state]\nbackend = \"redis\"\n");
    let mut child = command()
        .args(["stdio", "--demo", "--log-level", "info", "--config"])
        .arg(&file)
        .env(
            "WEBOPS_MCP_REDIS_URL",
            format!("redis://:{PASSWORD}@127.0.0.1:1/0"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Two tool calls, which need the shared rate limit.
    for line in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"webops_list_deployments","arguments":{}}}"#,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"webops_list_deployments","arguments":{}}}"#,
    ] {
        writeln!(stdin, "{line}").unwrap();
    }
    // Wait for both answers, then end the input.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answers = Vec::new();
    for line in stdout.lines() {
        let message: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if message["id"] == 2 || message["id"] == 3 {
            answers.push(message);
            if answers.len() == 2 {
                break;
            }
        }
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    for answer in &answers {
        let text = answer["result"]["content"][0]["text"].as_str().unwrap();
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert!(
            text.contains("the shared state store (Redis) is unavailable"),
            "{text}"
        );
        assert!(!text.contains(PASSWORD));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    assert_eq!(
        stderr
            .matches("the shared state store (Redis) is unavailable; until it returns")
            .count(),
        1,
        "logged once: {stderr}"
    );
    assert!(
        stderr.contains("redis://<redacted>@127.0.0.1:1/0"),
        "{stderr}"
    );
}
