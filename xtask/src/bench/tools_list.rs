//! The cheap section of `cargo xtask bench`: what `tools/list` costs a model, in bytes and
//! estimated tokens, per tool and in all, as the binary answers it in `stdio --demo` (with
//! its defaults every tool is listed). No mock, no load run.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::harness::STDIO_CLEARED_ENV;

/// The estimate of tokens: bytes / 4, a common rule of thumb for JSON and English.
const BYTES_PER_TOKEN: usize = 4;

/// How long the server may take to answer one request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The sizes of one `tools/list` answer.
pub(super) struct ToolsList {
    /// Bytes of the JSON-RPC `result`, as sent (compact JSON).
    pub(super) total: usize,
    /// Bytes of each tool's definition, in the order listed.
    pub(super) per_tool: Vec<(String, usize)>,
}

impl ToolsList {
    /// The section of the report: a line and a table of bytes and estimated tokens.
    pub(super) fn print(&self) {
        println!(
            "tools/list (webops-mcp stdio --demo, {} tools): {} bytes, ~{} tokens (bytes/{BYTES_PER_TOKEN})",
            self.per_tool.len(),
            self.total,
            self.total / BYTES_PER_TOKEN
        );
        println!();
        println!("| tool | bytes | ~tokens |");
        println!("|---|---:|---:|");
        for (name, bytes) in &self.per_tool {
            println!("| {name} | {bytes} | {} |", bytes / BYTES_PER_TOKEN);
        }
        println!(
            "| all (the JSON-RPC `result`) | {} | {} |",
            self.total,
            self.total / BYTES_PER_TOKEN
        );
        println!();
    }
}

/// Runs `server stdio --demo` without configuration from the environment and asks it for
/// `tools/list` as a client with no capabilities would (after `initialize`).
pub(super) async fn measure(server: &Path) -> Result<ToolsList> {
    let mut command = tokio::process::Command::new(server);
    command
        .args(["stdio", "--demo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for name in STDIO_CLEARED_ENV {
        command.env_remove(name);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {} stdio --demo", server.display()))?;
    let mut stdin = child.stdin.take().context("the server's stdin")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let messages = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                          "clientInfo": {"name": "xtask-bench", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ];
    for message in messages {
        stdin.write_all(format!("{message}\n").as_bytes()).await?;
    }
    let answer = loop {
        let line = tokio::time::timeout(ANSWER_TIMEOUT, lines.next_line())
            .await
            .context("webops-mcp did not answer tools/list in time")??
            .context("webops-mcp closed its stdout before answering tools/list")?;
        let message: Value = serde_json::from_str(&line).context("a stdout line is not JSON")?;
        if message["id"] == 2 {
            break message;
        }
    };
    let Some(tools) = answer["result"]["tools"].as_array() else {
        bail!("tools/list answered without a result: {answer}");
    };
    let per_tool = tools
        .iter()
        .map(|tool| {
            let name = tool["name"].as_str().unwrap_or("?").to_owned();
            (name, tool.to_string().len())
        })
        .collect();
    Ok(ToolsList {
        total: answer["result"].to_string().len(),
        per_tool,
    })
}
