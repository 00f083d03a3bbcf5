//! `cargo xtask inspector`: the MCP Inspector CLI (`--cli --format json`) against
//! `webops-mcp` over stdio and HTTP, its JSON and its exit codes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

use super::process::{build_debug, output_within, scratch_dir};
use super::{Checks, HttpDemo, KEY_PREFIX, registry_tool_names, verify_audit};
use crate::toolchain::{self, INSPECTOR};

/// How long one Inspector invocation may take.
const INSPECTOR_TIMEOUT: Duration = Duration::from_secs(120);

/// The Inspector CLI's exit codes (its `docs/cli-smoke-testing.md`).
const EXIT_OK: i32 = 0;
const EXIT_AUTH: i32 = 3;
const EXIT_TOOL_ERROR: i32 = 5;

/// How the Inspector reaches the server.
enum Target<'a> {
    /// Spawns `webops-mcp stdio --demo`.
    Stdio(&'a Path),
    /// Streamable HTTP with these extra headers.
    Http(&'a str, Vec<String>),
}

struct Inspector {
    node: PathBuf,
    cli: PathBuf,
    /// Isolated Inspector state (catalog, OAuth store, client config).
    home: PathBuf,
}

/// What one Inspector invocation gave.
struct Answer {
    code: i32,
    /// The `--format json` envelope on stdout.
    json: Value,
    /// The last stderr line parsed as the error envelope, if it is one.
    error: Value,
    stderr: String,
}

impl Inspector {
    fn call(&self, target: &Target<'_>, args: &[&str]) -> Result<Answer> {
        let mut cmd = Command::new(&self.node);
        cmd.arg(&self.cli).arg("--cli");
        match target {
            Target::Stdio(server) => {
                // Everything before `--` is the server command (the Inspector's v2 rule).
                cmd.arg(server)
                    .args(["--log-level", "warn", "stdio", "--demo", "--"]);
            }
            Target::Http(url, headers) => {
                cmd.args([
                    "--transport",
                    "http",
                    "--server-url",
                    url,
                    "--stored-auth-only",
                ]);
                for header in headers {
                    cmd.args(["--header", header]);
                }
            }
        }
        cmd.args(args)
            .args(["--format", "json", "--connect-timeout", "60000"])
            .env("MCP_STORAGE_DIR", &self.home)
            .env(
                "MCP_INSPECTOR_OAUTH_STATE_PATH",
                self.home.join("oauth.json"),
            )
            .env("MCP_CATALOG_PATH", self.home.join("mcp.json"))
            .env("MCP_CLIENT_CONFIG_PATH", self.home.join("client.json"))
            .env("MCP_AUTO_OPEN_ENABLED", "false")
            .current_dir(&self.home);
        let done = output_within(&mut cmd, INSPECTOR_TIMEOUT)?;
        let code = done.status.code().unwrap_or(-1);
        let json = serde_json::from_str(done.stdout.trim()).unwrap_or(Value::Null);
        let error = done
            .stderr
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        Ok(Answer {
            code,
            json,
            error,
            stderr: done.stderr,
        })
    }
}

impl Answer {
    fn expect_code(&self, code: i32) -> Result<()> {
        if self.code != code {
            let last: Vec<&str> = self.stderr.lines().rev().take(5).collect();
            bail!(
                "exit code {} (expected {code}); stderr ends with: {}",
                self.code,
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(())
    }

    fn tool_names(&self) -> Vec<String> {
        self.json["result"]["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Runs the Inspector CLI (`--cli --format json`) against `webops-mcp` over stdio and HTTP and
/// checks its JSON and its exit codes, failures included.
pub(crate) fn inspector() -> Result<()> {
    let node = toolchain::node22()?;
    let package = toolchain::npm_package(INSPECTOR)?;
    let cli = package.join("clients/launcher/build/index.js");
    if !cli.exists() {
        bail!("{} is missing; is {INSPECTOR} installed?", cli.display());
    }
    let binaries = build_debug()?;
    let dir = scratch_dir("inspector")?;
    let home = dir.join("inspector-home");
    std::fs::create_dir_all(&home)?;
    let inspector = Inspector { node, cli, home };
    let (all_tools, read_tools) = registry_tool_names()?;
    let demo = HttpDemo::start(&binaries.server, &dir)?;

    let stdio = Target::Stdio(&binaries.server);
    let admin = Target::Http(
        &demo.server.url,
        vec![format!("Authorization: Bearer {}", demo.admin.key)],
    );
    let viewer = Target::Http(
        &demo.server.url,
        vec![format!("X-API-Key: {}", demo.viewer.key)],
    );
    let anonymous = Target::Http(&demo.server.url, Vec::new());
    let wrong_key = Target::Http(
        &demo.server.url,
        vec![format!(
            "Authorization: Bearer {KEY_PREFIX}not-a-configured-key"
        )],
    );

    // The Inspector CLI declares no elicitation, so over HTTP the server (by default) cannot
    // ask its person to confirm a delete and does not offer it; over stdio the fallback is
    // the typed name, and every tool is offered.
    let unconfirmable: Vec<String> = all_tools
        .iter()
        .filter(|t| *t != "webops_delete_deployment")
        .cloned()
        .collect();
    let mut checks = Checks::default();
    for (label, target, tools) in [
        ("stdio", &stdio, &all_tools),
        ("http", &admin, &unconfirmable),
    ] {
        checks.run(
            &format!(
                "{label}: tools/list --strict lists the {} tools it may call",
                tools.len()
            ),
            || {
                let answer = inspector.call(target, &["--method", "tools/list", "--strict"])?;
                answer.expect_code(EXIT_OK)?;
                expect_tools(&answer, tools)?;
                for tool in answer.json["result"]["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    if !tool["outputSchema"].is_object() || !tool["annotations"].is_object() {
                        bail!("{} lacks an outputSchema or annotations", tool["name"]);
                    }
                }
                Ok(())
            },
        );
        checks.run(
            &format!("{label}: tools/call webops_list_deployments"),
            || {
                let answer = inspector.call(
                    target,
                    &[
                        "--method",
                        "tools/call",
                        "--tool-name",
                        "webops_list_deployments",
                        "--tool-args-json",
                        r#"{"limit": 3}"#,
                    ],
                )?;
                answer.expect_code(EXIT_OK)?;
                let result = &answer.json["result"];
                let listed = result["structuredContent"]["deployments"]
                    .as_array()
                    .map_or(0, Vec::len);
                if result["isError"] == Value::Bool(true) || !(1..=3).contains(&listed) {
                    bail!("unexpected result: {result}");
                }
                Ok(())
            },
        );
        checks.run(
            &format!("{label}: a bad argument exits {EXIT_TOOL_ERROR} with isError"),
            || {
                let answer = inspector.call(
                    target,
                    &[
                        "--method",
                        "tools/call",
                        "--tool-name",
                        "webops_get_logs",
                        "--tool-args-json",
                        r#"{"deployment_id": "shop-api", "lines": 5}"#,
                    ],
                )?;
                answer.expect_code(EXIT_TOOL_ERROR)?;
                let text = answer.json["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default();
                if answer.json["result"]["isError"] != Value::Bool(true) || !text.contains("lines")
                {
                    bail!("unexpected result: {}", answer.json);
                }
                expect_error_code(&answer, "tool_is_error")
            },
        );
        checks.run(
            &format!("{label}: an unknown tool exits {EXIT_TOOL_ERROR} (tool_not_found)"),
            || {
                let answer = inspector.call(
                    target,
                    &[
                        "--method",
                        "tools/call",
                        "--tool-name",
                        "webops_no_such_tool",
                    ],
                )?;
                answer.expect_code(EXIT_TOOL_ERROR)?;
                expect_error_code(&answer, "tool_not_found")
            },
        );
    }
    checks.run("http (2026-07-28 era): tools/list", || {
        let answer = inspector.call(
            &admin,
            &["--method", "tools/list", "--protocol-era", "modern"],
        )?;
        answer.expect_code(EXIT_OK)?;
        expect_tools(&answer, &unconfirmable)
    });
    checks.run(
        "http (2026-07-28 era): tools/call webops_system_health",
        || {
            let answer = inspector.call(
                &admin,
                &[
                    "--method",
                    "tools/call",
                    "--tool-name",
                    "webops_system_health",
                    "--protocol-era",
                    "modern",
                ],
            )?;
            answer.expect_code(EXIT_OK)?;
            if !answer.json["result"]["structuredContent"].is_object() {
                bail!("no structuredContent: {}", answer.json);
            }
            Ok(())
        },
    );
    checks.run(
        "http: the viewer key (X-API-Key) sees only the read tools",
        || {
            let answer = inspector.call(&viewer, &["--method", "tools/list"])?;
            answer.expect_code(EXIT_OK)?;
            expect_tools(&answer, &read_tools)
        },
    );
    checks.run(
        &format!("http: the viewer cannot call webops_deploy_app (exit {EXIT_TOOL_ERROR})"),
        || {
            // The viewer's tools/list leaves the tool out, so the Inspector refuses the call
            // itself: per-identity tool lists seen from a real client.
            let answer = inspector.call(
                &viewer,
                &[
                    "--method",
                    "tools/call",
                    "--tool-name",
                    "webops_deploy_app",
                    "--tool-args-json",
                    r#"{"app_name": "inspector-try", "repository": "https://github.com/acme/x.git"}"#,
                ],
            )?;
            answer.expect_code(EXIT_TOOL_ERROR)?;
            expect_error_code(&answer, "tool_not_found")
        },
    );
    checks.run(
        &format!("http: no credentials exits {EXIT_AUTH} (auth_required)"),
        || {
            let answer = inspector.call(&anonymous, &["--method", "tools/list"])?;
            answer.expect_code(EXIT_AUTH)?;
            expect_error_code(&answer, "auth_required")
        },
    );
    checks.run(&format!("http: a wrong key exits {EXIT_AUTH}"), || {
        let answer = inspector.call(&wrong_key, &["--method", "tools/list"])?;
        answer.expect_code(EXIT_AUTH)
    });
    drop(demo);
    verify_audit(&binaries.server, &dir.join("audit-http.jsonl"))?;
    checks.finish("inspector")
}

fn expect_tools(answer: &Answer, expected: &[String]) -> Result<()> {
    let mut names = answer.tool_names();
    names.sort();
    let mut want = expected.to_vec();
    want.sort_unstable();
    if names != want {
        bail!("tools/list shows {names:?}, expected {want:?}");
    }
    Ok(())
}

fn expect_error_code(answer: &Answer, code: &str) -> Result<()> {
    match answer.error["error"]["code"].as_str() {
        Some(c) if c == code => Ok(()),
        _ => bail!(
            "the stderr error envelope is {} (expected code {code:?})",
            answer.error
        ),
    }
}
