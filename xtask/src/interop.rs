//! Interoperability with clients we did not write: the official MCP Python SDK
//! (`cargo xtask python-client`) and the MCP Inspector CLI (`cargo xtask inspector`), plus the
//! plumbing they share with `cargo xtask conformance`: the debug binaries, scratch directories
//! under `.cache/`, API keys from `webops-mcp hash-key`, and server processes that are always
//! stopped (a guard kills them on drop, also when a check fails or panics).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::tidy;
use crate::toolchain::{self, INSPECTOR, PYTHON_REQUIREMENTS};
use crate::{cargo_command, run, workspace_root};

/// How long a started server may take to print its address (debug build, loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one Inspector invocation may take.
const INSPECTOR_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the whole Python client run may take.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(600);

/// The registry's tools, all of them and those that only read (from the tool snapshots, see
/// [`tidy::registry_tools`]): what tools/list shows the admin and the viewer key.
fn registry_tool_names() -> Result<(Vec<String>, Vec<String>)> {
    let tools = tidy::registry_tools(&workspace_root())?;
    let read = tools
        .iter()
        .filter(|t| t.access == "read")
        .map(|t| t.name.clone())
        .collect();
    Ok((tools.into_iter().map(|t| t.name).collect(), read))
}

/// What the viewer key of the interop configuration may do: the read tools.
const VIEWER_PERMISSIONS: &str = r#"["deploy:read", "logs:read", "system:read", "security:audit"]"#;

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/// The debug binaries the checks run.
pub(crate) struct DebugBinaries {
    /// `webops-mcp`.
    pub(crate) server: PathBuf,
    /// The conformance fixture (`webops-mcp-server/examples/conformance_server.rs`).
    pub(crate) fixture: PathBuf,
}

/// Builds (or finds up to date) the debug `webops-mcp` and the conformance fixture. The
/// selection and features are those of `cargo test --workspace --all-features`, so after the
/// tests this is a no-op: with `-p webops-mcp-server` alone cargo would unify features
/// differently and rebuild the server.
pub(crate) fn build_debug() -> Result<DebugBinaries> {
    run(cargo_command().args([
        "build",
        "--quiet",
        "--workspace",
        "--all-features",
        "--bins",
        "--examples",
    ]))?;
    let debug = target_dir()?.join("debug");
    let binaries = DebugBinaries {
        server: debug.join(exe("webops-mcp")),
        fixture: debug.join("examples").join(exe("conformance_server")),
    };
    for path in [&binaries.server, &binaries.fixture] {
        if !path.exists() {
            bail!("{} was not built", path.display());
        }
    }
    Ok(binaries)
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, `.cargo/config.toml` and all).
fn target_dir() -> Result<PathBuf> {
    let out = cargo_command()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed with {}", out.status);
    }
    let metadata: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata names no target_directory")
}

/// `.cache/<name>/`, emptied: where a check writes its configuration, logs and results.
pub(crate) fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = workspace_root().join(".cache").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A server child process, killed when dropped. Its stdout and stderr go to a log file.
pub(crate) struct ServerProcess {
    child: Child,
    /// The MCP endpoint it printed.
    pub(crate) url: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `cmd` (stdin kept open, both output streams copied to `log`) and waits until a
    /// line of its output contains `marker` followed by an `http://` URL.
    pub(crate) fn start(cmd: Command, log: &Path, marker: &str) -> Result<ServerProcess> {
        Self::start_until(cmd, log, marker, |line| url_after(line, marker))
    }

    /// Like [`ServerProcess::start`], but ready at the first line for which `url_in` gives the
    /// endpoint; `what_line` describes that line in errors.
    pub(crate) fn start_until(
        mut cmd: Command,
        log: &Path,
        what_line: &str,
        url_in: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerProcess> {
        let what = describe_program(&cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {what}"))?;
        let file = Arc::new(Mutex::new(
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?,
        ));
        let (tx, rx) = mpsc::channel::<String>();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let (file, tx) = (file.clone(), tx.clone());
            // Drains the pipe for the whole life of the process, so it never blocks on a full pipe.
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = writeln!(file, "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let mut server = ServerProcess {
            child,
            url: String::new(),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(url) = url_in(&line) {
                        server.url = url;
                        return Ok(server);
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{what} printed no {what_line:?} within {} s\n{}",
                    READY_TIMEOUT.as_secs(),
                    server.log_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().ok();
                    bail!(
                        "{what} exited ({}) before it was ready\n{}",
                        status.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                        server.log_tail()
                    )
                }
            }
        }
    }

    /// The last lines of the server's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `http://…` URL that follows `marker` in `line`.
fn url_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let start = rest.find("http://")?;
    let url = rest[start..].split_whitespace().next()?;
    Some(url.to_owned())
}

/// The last `lines` lines of a file, indented, with its path.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let mut out = format!("--- last lines of {} ---\n", path.display());
    for line in &all[all.len().saturating_sub(lines)..] {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn describe_program(cmd: &Command) -> String {
    Path::new(cmd.get_program()).file_name().map_or_else(
        || "process".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What a finished process left: exit status and both outputs.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `cmd` to completion with its output captured, killing it after `limit`.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> Result<Finished> {
    let what = describe_program(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {what}"))?;
    let read = |stream: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = wait_within(&mut child, limit).with_context(|| format!("{what} timed out"))?;
    Ok(Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs `cmd` with inherited output, killing it after `limit`; fails on a non-zero exit.
pub(crate) fn run_within(cmd: &mut Command, limit: Duration) -> Result<()> {
    let what = describe_program(cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {what}"))?;
    let status = wait_within(&mut child, limit).with_context(|| format!("{what} timed out"))?;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    Ok(())
}

pub(crate) fn wait_within(child: &mut Child, limit: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("killed after {} s", limit.as_secs());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A fresh API key and its SHA-256 digest, made by `webops-mcp hash-key`.
pub(crate) struct ApiKey {
    pub(crate) key: String,
    pub(crate) digest: String,
}

impl ApiKey {
    pub(crate) fn generate(server: &Path) -> Result<ApiKey> {
        let out = Command::new(server)
            .arg("hash-key")
            .output()
            .context("running webops-mcp hash-key")?;
        if !out.status.success() {
            bail!("webops-mcp hash-key failed with {}", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let word = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        };
        let key = word(KEY_PREFIX).context("hash-key printed no key")?;
        let digest = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("key_sha256 = \""))
            .and_then(|l| l.strip_suffix('"'))
            .context("hash-key printed no digest")?
            .to_owned();
        Ok(ApiKey { key, digest })
    }
}

/// The prefix of the keys `webops-mcp hash-key` makes.
const KEY_PREFIX: &str = "wmcp_";

/// A running `webops-mcp http --demo` with an admin and a viewer API key.
struct HttpDemo {
    server: ServerProcess,
    admin: ApiKey,
    viewer: ApiKey,
}

impl HttpDemo {
    /// Writes `http.toml` into `dir` (two keys, audit log `audit-http.jsonl`) and starts the
    /// server on a free loopback port.
    fn start(server_bin: &Path, dir: &Path) -> Result<HttpDemo> {
        let admin = ApiKey::generate(server_bin)?;
        let viewer = ApiKey::generate(server_bin)?;
        let config = dir.join("http.toml");
        std::fs::write(
            &config,
            format!(
                "# Written by cargo xtask: an admin and a read-only key (digests only).\n\
                 [[auth.api_keys]]\nuser_id = \"interop-admin\"\nkey_sha256 = \"{}\"\n\
                 permissions = [\"admin:*\"]\n\n\
                 [[auth.api_keys]]\nuser_id = \"interop-viewer\"\nkey_sha256 = \"{}\"\n\
                 permissions = {VIEWER_PERMISSIONS}\n\n\
                 [security]\naudit_log = \"audit-http.jsonl\"\n",
                admin.digest, viewer.digest
            ),
        )?;
        let mut cmd = Command::new(server_bin);
        cmd.arg("--config")
            .arg(&config)
            .args(["http", "--demo", "--bind", "127.0.0.1:0"])
            .current_dir(dir);
        let server = ServerProcess::start(cmd, &dir.join("http-server.log"), "MCP endpoint:")?;
        eprintln!("interop: webops-mcp http --demo serves {}", server.url);
        Ok(HttpDemo {
            server,
            admin,
            viewer,
        })
    }
}

/// `webops-mcp audit verify FILE`: the server's audit hash chain is intact after the run.
pub(crate) fn verify_audit(server_bin: &Path, file: &Path) -> Result<()> {
    let out = Command::new(server_bin)
        .args(["audit", "verify"])
        .arg(file)
        .output()
        .context("running webops-mcp audit verify")?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "audit log {} failed verification: {}{}",
            file.display(),
            report.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprintln!("interop: {}", report.trim());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cargo xtask python-client

/// Runs `xtask/python/check_client.py` (the official Python SDK) against `webops-mcp` over
/// stdio and Streamable HTTP, in the SDK's legacy and auto modes.
pub(crate) fn python_client() -> Result<()> {
    let python = toolchain::python_venv(&PYTHON_REQUIREMENTS)?;
    let binaries = build_debug()?;
    let dir = scratch_dir("python-client")?;
    let stdio_config = dir.join("stdio.toml");
    std::fs::write(
        &stdio_config,
        "# Written by cargo xtask python-client.\n[security]\naudit_log = \"audit-stdio.jsonl\"\n",
    )?;
    let demo = HttpDemo::start(&binaries.server, &dir)?;
    let script = workspace_root().join("xtask/python/check_client.py");
    let (all_tools, read_tools) = registry_tool_names()?;
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--tools")
        .arg(all_tools.join(","))
        .arg("--read-tools")
        .arg(read_tools.join(","))
        .arg("--server-bin")
        .arg(&binaries.server)
        .arg("--stdio-config")
        .arg(&stdio_config)
        .arg("--http-url")
        .arg(&demo.server.url)
        // Keys go through the environment, never the command line.
        .env("WEBOPS_MCP_ADMIN_KEY", &demo.admin.key)
        .env("WEBOPS_MCP_VIEWER_KEY", &demo.viewer.key)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&dir);
    eprintln!("$ {} {} ...", python.display(), script.display());
    if let Err(e) = run_within(&mut cmd, PYTHON_TIMEOUT) {
        bail!("{e:#}\n{}", demo.server.log_tail());
    }
    verify_audit(&binaries.server, &dir.join("audit-http.jsonl"))?;
    verify_audit(&binaries.server, &dir.join("audit-stdio.jsonl"))?;
    eprintln!("python-client: OK");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// cargo xtask inspector

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

    let mut checks = Checks::default();
    for (label, target) in [("stdio", &stdio), ("http", &admin)] {
        checks.run(
            &format!(
                "{label}: tools/list --strict lists the {} tools",
                all_tools.len()
            ),
            || {
                let answer = inspector.call(target, &["--method", "tools/list", "--strict"])?;
                answer.expect_code(EXIT_OK)?;
                expect_tools(&answer, &all_tools)?;
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
        expect_tools(&answer, &all_tools)
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

/// Named checks: each one runs, failures are collected and reported together.
#[derive(Default)]
pub(crate) struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    pub(crate) fn run(&mut self, name: &str, check: impl FnOnce() -> Result<()>) {
        match check() {
            Ok(()) => {
                self.passed += 1;
                eprintln!("  ok    {name}");
            }
            Err(e) => {
                eprintln!("  FAIL  {name}: {e:#}");
                self.failed.push(format!("{name}: {e:#}"));
            }
        }
    }

    /// Counts checks that ran elsewhere (and printed their own lines): `passed` of them passed,
    /// each of `failed` (named, with why) failed.
    pub(crate) fn absorb(&mut self, passed: usize, failed: Vec<String>) {
        self.passed += passed;
        self.failed.extend(failed);
    }

    /// How many checks passed and failed so far.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.passed, self.failed.len())
    }

    pub(crate) fn finish(self, what: &str) -> Result<()> {
        if self.failed.is_empty() {
            eprintln!("{what}: all {} checks passed", self.passed);
            return Ok(());
        }
        bail!(
            "{what}: {} of {} checks failed:\n  {}",
            self.failed.len(),
            self.passed + self.failed.len(),
            self.failed.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_their_marker() {
        assert_eq!(
            url_after("listening on http://127.0.0.1:4000/mcp", "listening on").as_deref(),
            Some("http://127.0.0.1:4000/mcp")
        );
        assert_eq!(
            url_after(
                "MCP endpoint: http://127.0.0.1:9/mcp (authenticate with the keys)",
                "MCP endpoint:"
            )
            .as_deref(),
            Some("http://127.0.0.1:9/mcp")
        );
        assert_eq!(url_after("MCP endpoint: none", "MCP endpoint:"), None);
        assert_eq!(url_after("http://x/mcp", "listening on"), None);
    }

    #[test]
    fn checks_collect_failures() {
        let mut checks = Checks::default();
        checks.run("passes", || Ok(()));
        checks.run("fails", || bail!("broken"));
        let error = checks.finish("demo").unwrap_err().to_string();
        assert!(error.contains("1 of 2 checks failed"), "{error}");
        assert!(error.contains("fails: broken"), "{error}");
    }
}
