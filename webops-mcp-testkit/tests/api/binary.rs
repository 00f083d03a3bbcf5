//! The `webops-mock` binary.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Spawns the binary on a free port; returns it and its API URL (read from its log).
async fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webops-mock"))
        .args(["--bind", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("api_url=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("webops-mock exited without announcing its address");
    })
    .await
    .unwrap();
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test]
async fn the_binary_serves_status_and_the_demo_seed() {
    let (mut child, url) = spawn(&["--token", "bin-token", "--seed", "demo"]).await;
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/v1/"),
        "{url}"
    );
    let http = reqwest::Client::new();
    let status: Value = http
        .get(format!("{url}status/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["data"]["status"], "ok");

    let unauth = http.get(format!("{url}deployments/")).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    let list: Value = http
        .get(format!("{url}deployments/"))
        .bearer_auth("bin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["pagination"]["total"], 8);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_runs_the_lifecycle_with_its_step_delay() {
    let (mut child, url) =
        spawn(&["--token", "t", "--seed", "empty", "--step-delay-ms", "10"]).await;
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{url}deployments/"))
        .bearer_auth("t")
        .json(&json!({"name": "app", "repo_url": "https://github.com/acme/app.git"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["data"]["status"], "pending");
    let status = crate::common::eventually_async(|| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let d: Value = http
                .get(format!("{url}deployments/1/"))
                .bearer_auth("t")
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (d["data"]["status"] == "running").then_some(d)
        }
    })
    .await;
    assert_eq!(status["data"]["name"], "app");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_refuses_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_webops-mock"))
        .args(["--seed", "nonsense"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_webops-mock"))
        .args(["--bind", "127.0.0.1:0", "--token", ""])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}
