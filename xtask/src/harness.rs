//! Shared machinery of `load-test` and `bench`: release binaries, child processes that die
//! with us, temporary configurations, real MCP clients (Streamable HTTP or stdio), a
//! closed-loop workload driver with latency percentiles and error classes, and RSS readings.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use rmcp::model::{CallToolRequestParams, CallToolResult, ClientConfig, ProtocolVersion};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt as _};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinSet;

use crate::{cargo_command, run, workspace_root};

/// The longest a single tool call may take before it counts as a transport timeout.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a started process may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The permissions of the load client's key: exactly what the read tools need.
const READ_PERMISSIONS: &str = r#"["deploy:read", "logs:read", "security:audit", "system:read"]"#;

// ---------------------------------------------------------------------------------------------
// Binaries, temporary files, processes

/// The release binaries the measurements run.
pub(crate) struct Binaries {
    /// `webops-mcp`.
    pub(crate) server: PathBuf,
    /// `webops-mock` (the testkit's mock WebOps API).
    pub(crate) mock: PathBuf,
}

/// The binaries in `bin_dir` when given (e.g. a profiling build), else `webops-mcp` and
/// `webops-mock` built in release mode (honouring `CARGO_TARGET_DIR`).
pub(crate) fn binaries(bin_dir: Option<&Path>) -> Result<Binaries> {
    let release = match bin_dir {
        Some(dir) => dir.to_path_buf(),
        None => build_release()?,
    };
    let binaries = Binaries {
        server: release.join("webops-mcp"),
        mock: release.join("webops-mock"),
    };
    for bin in [&binaries.server, &binaries.mock] {
        if !bin.is_file() {
            bail!("{} does not exist", bin.display());
        }
    }
    Ok(binaries)
}

fn build_release() -> Result<PathBuf> {
    run(cargo_command().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "webops-mcp-server",
        "-p",
        "webops-mcp-testkit",
        "--bins",
    ]))?;
    Ok(target_dir().join("release"))
}

/// In a debug build of xtask (what `cargo xtask` runs), rebuilds xtask in release mode and
/// runs `xtask <command> <args>` from it, so the load generator does not measure its own
/// unoptimized HTTP stack; returns `false` when this process already is optimized.
pub(crate) fn rerun_optimized(command: &str, args: &[String]) -> Result<bool> {
    if !cfg!(debug_assertions) {
        return Ok(false);
    }
    run(cargo_command().args(["build", "--release", "--quiet", "-p", "xtask"]))?;
    let xtask = target_dir().join("release").join("xtask");
    let status = Command::new(&xtask)
        .arg(command)
        .args(args)
        .status()
        .with_context(|| format!("running {}", xtask.display()))?;
    if !status.success() {
        bail!("{command} failed ({status})");
    }
    Ok(true)
}

/// `CARGO_TARGET_DIR` (relative to the workspace root) or `<root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("webops-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop; its stderr goes to a file shown on failure.
pub(crate) struct Proc {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin and stdout closed and stderr to `stderr`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command, stderr: PathBuf) -> Result<Proc> {
        let log =
            File::create(&stderr).with_context(|| format!("creating {}", stderr.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails (with the end of its stderr) when the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; the end of its stderr:\n{}",
                self.name,
                tail_of(&self.stderr, 2000)
            );
        }
        Ok(())
    }

    /// The end of its stderr, for error messages.
    pub(crate) fn stderr_tail(&self) -> String {
        tail_of(&self.stderr, 2000)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tail_of(path: &Path, max: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// A free loopback port (bound and released; the short race is harmless here).
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh random key and the hex SHA-256 digest the server configuration holds.
pub(crate) fn new_key(prefix: &str) -> Result<(String, String)> {
    let mut bytes = [0u8; 24];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    let key = format!("{prefix}{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    Ok((key, digest))
}

/// Resident set size of a process, from `/proc/<pid>/status`.
pub(crate) fn rss_of_pid(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("no VmRSS line in /proc/<pid>/status")?;
    Ok(kb * 1024)
}

/// User + system CPU time a process has used, from `/proc/<pid>/stat` (clock ticks of
/// 1/100 s, Linux's USER_HZ on every common architecture).
pub(crate) fn cpu_of_pid(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, inside parentheses); utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("malformed /proc/<pid>/stat")
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// `GET url` until it answers 200, or fail after [`READY_TIMEOUT`].
pub(crate) async fn wait_ready(http: &reqwest::Client, url: &str, proc: &mut Proc) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        proc.check_alive()?;
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{url} did not answer within {READY_TIMEOUT:?}; stderr:\n{}",
                proc.stderr_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The mock WebOps API and the server

/// A `webops-mock` process with the demo data.
pub(crate) struct MockProcess {
    pub(crate) proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// Its full-access bearer token.
    pub(crate) token: String,
}

impl MockProcess {
    /// Starts `webops-mock --seed demo` on a free port with a random token; request logging
    /// off (`RUST_LOG=warn`), so neither path pays for the mock's debug lines.
    pub(crate) async fn start(bin: &Path, dir: &TempDir) -> Result<MockProcess> {
        let port = free_port()?;
        let (token, _) = new_key("mock-")?;
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", &format!("127.0.0.1:{port}"), "--seed", "demo"])
            .env("WEBOPS_MOCK_TOKEN", &token)
            .env("RUST_LOG", "warn");
        let mut proc = Proc::spawn("webops-mock", &mut cmd, dir.join("mock.stderr"))?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_ready(
            &reqwest::Client::new(),
            &format!("{base_url}/api/v1/status/"),
            &mut proc,
        )
        .await?;
        Ok(MockProcess {
            proc,
            base_url,
            token,
        })
    }
}

/// How to start a `webops-mcp http` process.
pub(crate) struct ServerSpec<'a> {
    pub(crate) bin: &'a Path,
    /// `None`: `--demo` (the in-process mock); `Some`: this mock's URL and token.
    pub(crate) upstream: Option<(&'a str, &'a str)>,
    /// `None` keeps the default (100 per minute).
    pub(crate) rate_limit_per_minute: Option<u32>,
    pub(crate) max_concurrent_requests: usize,
    /// The SHA-256 digest of the client key.
    pub(crate) key_digest: &'a str,
    /// Where the audit log goes.
    pub(crate) audit_log: PathBuf,
    /// Where the configuration file is written.
    pub(crate) config_path: PathBuf,
}

impl ServerSpec<'_> {
    /// The configuration file's text.
    pub(crate) fn config_toml(&self) -> String {
        let mut toml = String::from("[security]\n");
        if let Some(n) = self.rate_limit_per_minute {
            toml.push_str(&format!("rate_limit_per_minute = {n}\n"));
        }
        toml.push_str(&format!(
            "max_concurrent_requests = {}\naudit_log = {}\n",
            self.max_concurrent_requests,
            toml_string(&self.audit_log.to_string_lossy())
        ));
        if let Some((url, _)) = self.upstream {
            toml.push_str(&format!("\n[webops]\napi_url = {}\n", toml_string(url)));
        }
        toml.push_str(&format!(
            "\n[[auth.api_keys]]\nuser_id = \"load-client\"\nkey_sha256 = \"{}\"\npermissions = {READ_PERMISSIONS}\n",
            self.key_digest
        ));
        toml
    }

    /// Writes the configuration and spawns `webops-mcp http` on `port` (not waiting).
    pub(crate) fn spawn(&self, port: u16, stderr: PathBuf) -> Result<Proc> {
        std::fs::write(&self.config_path, self.config_toml())
            .with_context(|| format!("writing {}", self.config_path.display()))?;
        let mut cmd = Command::new(self.bin);
        cmd.arg("http")
            .arg("--config")
            .arg(&self.config_path)
            .args(["--bind", &format!("127.0.0.1:{port}")]);
        for name in [
            "WEBOPS_MCP_CONFIG",
            "WEBOPS_API_URL",
            "WEBOPS_API_VERSION",
            "WEBOPS_API_KEY",
            "JWT_SECRET",
            "RUST_LOG",
        ] {
            cmd.env_remove(name);
        }
        match self.upstream {
            Some((_, token)) => {
                cmd.env("WEBOPS_API_KEY", token);
            }
            None => {
                cmd.arg("--demo");
            }
        }
        Proc::spawn("webops-mcp", &mut cmd, stderr)
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    Value::from(s).to_string()
}

/// A running `webops-mcp http`.
pub(crate) struct ServerProcess {
    pub(crate) proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
}

impl ServerProcess {
    /// Starts the server of `spec` on a free port and waits until `/health` answers.
    pub(crate) async fn start(spec: &ServerSpec<'_>, stderr: PathBuf) -> Result<ServerProcess> {
        let port = free_port()?;
        let mut proc = spec.spawn(port, stderr)?;
        let base_url = format!("http://127.0.0.1:{port}");
        wait_ready(
            &reqwest::Client::new(),
            &format!("{base_url}/health"),
            &mut proc,
        )
        .await?;
        Ok(ServerProcess { proc, base_url })
    }

    pub(crate) fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }
}

// ---------------------------------------------------------------------------------------------
// MCP clients

/// A connected MCP client.
pub(crate) type McpClient = RunningService<RoleClient, ClientConfig>;

/// Which MCP lifecycle the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Protocol {
    /// `initialize` handshake and a session (2025-11-25), what most clients do today.
    Legacy,
    /// Stateless `server/discover` (2026-07-28): no session, every request self-contained.
    Modern,
}

impl Protocol {
    fn lifecycle(self) -> ClientLifecycleMode {
        match self {
            Protocol::Legacy => ClientLifecycleMode::Initialize,
            Protocol::Modern => ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Legacy => "legacy: initialize handshake, a session over HTTP",
            Protocol::Modern => "modern: stateless 2026-07-28",
        })
    }
}

/// An initialized Streamable HTTP client sending `Authorization: Bearer <key>`. With
/// `keep_alive` its reqwest client pools connections (like the direct baseline); without,
/// it is rmcp's default (a new connection per request).
pub(crate) async fn connect_http(
    url: &str,
    key: &str,
    protocol: Protocol,
    keep_alive: bool,
) -> Result<McpClient> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key);
    let transport = if keep_alive {
        StreamableHttpClientTransport::with_client(reqwest::Client::new(), config)
    } else {
        StreamableHttpClientTransport::from_config(config)
    };
    ClientConfig::default()
        .serve_with_lifecycle(transport, protocol.lifecycle())
        .await
        .with_context(|| format!("connecting an MCP client to {url}"))
}

/// `count` clients, connected a few at a time.
pub(crate) async fn connect_http_many(
    count: usize,
    url: &str,
    key: &str,
    protocol: Protocol,
    keep_alive: bool,
) -> Result<Vec<Arc<McpClient>>> {
    let mut clients = Vec::with_capacity(count);
    for chunk_start in (0..count).step_by(16) {
        let mut set = JoinSet::new();
        for i in chunk_start..count.min(chunk_start + 16) {
            let (url, key) = (url.to_owned(), key.to_owned());
            set.spawn(async move { (i, connect_http(&url, &key, protocol, keep_alive).await) });
        }
        let mut chunk: Vec<(usize, McpClient)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (i, client) = joined?;
            chunk.push((i, client?));
        }
        chunk.sort_by_key(|(i, _)| *i);
        clients.extend(chunk.into_iter().map(|(_, c)| Arc::new(c)));
    }
    Ok(clients)
}

/// A `webops-mcp stdio --demo` child with an MCP client on its stdin/stdout.
pub(crate) struct StdioClient {
    pub(crate) client: Arc<McpClient>,
    pub(crate) pid: u32,
}

/// Spawns `webops-mcp stdio --demo --config <config>` and connects a client to it. The
/// child's stderr goes to `stderr`; the child dies with the client.
pub(crate) async fn connect_stdio(
    bin: &Path,
    config: &Path,
    stderr: &Path,
    protocol: Protocol,
) -> Result<StdioClient> {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["stdio", "--demo", "--config"])
        .arg(config)
        .kill_on_drop(true);
    for name in [
        "WEBOPS_MCP_CONFIG",
        "WEBOPS_API_URL",
        "WEBOPS_API_KEY",
        "RUST_LOG",
    ] {
        cmd.env_remove(name);
    }
    let log = File::create(stderr).with_context(|| format!("creating {}", stderr.display()))?;
    let (transport, _) = TokioChildProcess::builder(cmd)
        .stderr(log)
        .spawn()
        .context("starting webops-mcp stdio")?;
    let pid = transport.id().context("the stdio server has no pid")?;
    let client = ClientConfig::default()
        .serve_with_lifecycle(transport, protocol.lifecycle())
        .await
        .with_context(|| {
            format!(
                "connecting to webops-mcp stdio; its stderr:\n{}",
                tail_of(stderr, 2000)
            )
        })?;
    Ok(StdioClient {
        client: Arc::new(client),
        pid,
    })
}

// ---------------------------------------------------------------------------------------------
// The workload

/// One tool call of a workload.
#[derive(Debug, Clone)]
pub(crate) struct ToolCall {
    pub(crate) tool: String,
    pub(crate) arguments: Map<String, Value>,
}

impl ToolCall {
    fn new(tool: &str, arguments: Value) -> ToolCall {
        ToolCall {
            tool: tool.to_owned(),
            arguments: arguments.as_object().cloned().unwrap_or_default(),
        }
    }

    fn params(&self) -> CallToolRequestParams {
        CallToolRequestParams::new(self.tool.clone()).with_arguments(self.arguments.clone())
    }
}

/// The read tools a load test may run, with realistic arguments against the demo data.
pub(crate) const READ_TOOLS: [&str; 5] = [
    "webops_list_deployments",
    "webops_get_status",
    "webops_get_logs",
    "webops_system_health",
    "webops_security_audit",
];

/// A cycle of calls; client `c` makes call `(c + n) % len` as its `n`th, so the clients
/// interleave the mix.
#[derive(Debug, Clone)]
pub(crate) struct Mix(Arc<[ToolCall]>);

impl Mix {
    /// A realistic mix of the read tools an agent uses to look around: 3 lists, 2 status
    /// reads (one with metrics), 2 log reads, 2 health checks, 1 security audit in 10 calls.
    pub(crate) fn read_mix() -> Mix {
        Mix(Arc::from(vec![
            ToolCall::new("webops_list_deployments", json!({})),
            ToolCall::new("webops_get_status", json!({"deployment_id": "shop-api"})),
            ToolCall::new(
                "webops_get_logs",
                json!({"deployment_id": "shop-api", "lines": 50}),
            ),
            ToolCall::new("webops_list_deployments", json!({"status": "running"})),
            ToolCall::new("webops_system_health", json!({})),
            ToolCall::new(
                "webops_get_status",
                json!({"deployment_id": "billing-portal", "include_metrics": true}),
            ),
            ToolCall::new(
                "webops_list_deployments",
                json!({"environment": "production"}),
            ),
            ToolCall::new(
                "webops_get_logs",
                json!({"deployment_id": "billing-portal", "log_type": "error"}),
            ),
            ToolCall::new("webops_system_health", json!({"time_range": "24h"})),
            ToolCall::new(
                "webops_security_audit",
                json!({"deployment_id": "shop-api", "audit_type": "basic"}),
            ),
        ]))
    }

    /// Only `tool`, with `arguments` or its default arguments against the demo data.
    pub(crate) fn single(tool: &str, arguments: Option<Value>) -> Result<Mix> {
        let arguments = match arguments {
            Some(arguments) => arguments,
            None => match tool {
                "webops_list_deployments" | "webops_system_health" => json!({}),
                "webops_get_status" | "webops_get_logs" | "webops_security_audit" => {
                    json!({"deployment_id": "shop-api"})
                }
                _ => bail!(
                    "no default arguments for {tool}: load tests run the read tools ({}); pass \
                     --args JSON for another (a write tool changes the platform under test)",
                    READ_TOOLS.join(", ")
                ),
            },
        };
        if !arguments.is_object() {
            bail!("--args must be a JSON object");
        }
        Ok(Mix(Arc::from(vec![ToolCall::new(tool, arguments)])))
    }

    pub(crate) fn pick(&self, client: usize, n: u64) -> &ToolCall {
        let len = self.0.len() as u64;
        &self.0[((client as u64 + n) % len) as usize]
    }

    pub(crate) fn describe(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for call in self.0.iter() {
            *counts.entry(call.tool.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(tool, n)| format!("{tool} x{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How one call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// An error, by class (`isError: rate_limited`, `JSON-RPC -32602`, `transport: closed`…).
    Error(String),
}

/// Calls `call` on `client` (with [`CALL_TIMEOUT`]) and classifies the answer.
pub(crate) async fn call_tool(client: &McpClient, call: &ToolCall) -> Outcome {
    match tokio::time::timeout(CALL_TIMEOUT, client.call_tool(call.params())).await {
        Err(_) => Outcome::Error("transport: timeout".to_owned()),
        Ok(Ok(result)) => classify_result(&result),
        Ok(Err(e)) => Outcome::Error(classify_service_error(&e)),
    }
}

fn classify_result(result: &CallToolResult) -> Outcome {
    if result.is_error != Some(true) {
        return if result.structured_content.is_some() {
            Outcome::Ok
        } else {
            Outcome::Error("result without structuredContent".to_owned())
        };
    }
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.as_str()))
        .collect::<Vec<_>>()
        .join(" ");
    Outcome::Error(format!("isError: {}", error_class(&text)))
}

/// The class of a tool error message (the pipeline's and the tools' wording).
pub(crate) fn error_class(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.starts_with("rate limit exceeded") {
        "rate_limited"
    } else if m.starts_with("server busy") {
        "busy"
    } else if m.starts_with("permission denied") || m.contains("this server is read-only") {
        "permission_denied"
    } else if m.starts_with("invalid arguments") {
        "invalid_arguments"
    } else if m.contains("the call was cancelled") {
        "cancelled"
    } else if m.contains("webops is rate limiting") {
        "upstream_rate_limited"
    } else if m.contains("webops did not answer in time") {
        "upstream_timeout"
    } else if m.starts_with("webops is unreachable") || m.starts_with("webops failed") {
        "upstream_unavailable"
    } else if m.starts_with("no deployment") {
        "not_found"
    } else {
        "other"
    }
}

fn classify_service_error(error: &ServiceError) -> String {
    match error {
        ServiceError::McpError(data) => format!("JSON-RPC {}", data.code.0),
        ServiceError::TransportClosed => "transport: closed".to_owned(),
        ServiceError::TransportSend(_) => "transport: send failed".to_owned(),
        ServiceError::Timeout { .. } => "transport: timeout".to_owned(),
        ServiceError::Cancelled { .. } => "transport: cancelled".to_owned(),
        other => format!("transport: {other}"),
    }
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// After this long (calls in flight finish).
    After(Duration),
    /// After this many calls over all workers.
    Calls(u64),
}

/// What a run measured.
#[derive(Debug, Default)]
pub(crate) struct RunStats {
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    /// Every call's latency, answered or not.
    pub(crate) latencies: Vec<Duration>,
    pub(crate) elapsed: Duration,
}

impl RunStats {
    pub(crate) fn calls(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Calls per second.
    pub(crate) fn throughput(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentiles(&self) -> Percentiles {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let at = |q: f64| {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Latency percentiles (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Percentiles {
    pub(crate) p50: Duration,
    pub(crate) p95: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

/// Milliseconds with two decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Mebibytes with one decimal.
pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Runs `workers` closed loops of `call(worker, n)` until `stop`, timing every call.
pub(crate) async fn drive<F, Fut>(workers: usize, stop: Stop, call: F) -> Result<RunStats>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let call = Arc::new(call);
    let claimed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for worker in 0..workers {
        let (call, claimed) = (Arc::clone(&call), Arc::clone(&claimed));
        set.spawn(async move {
            let mut stats = RunStats::default();
            let mut n = 0u64;
            loop {
                match stop {
                    Stop::After(limit) if started.elapsed() >= limit => break,
                    Stop::Calls(total) if claimed.fetch_add(1, Ordering::Relaxed) >= total => {
                        break;
                    }
                    _ => {}
                }
                let t = Instant::now();
                let outcome = call(worker, n).await;
                stats.latencies.push(t.elapsed());
                match outcome {
                    Outcome::Ok => stats.ok += 1,
                    Outcome::Error(class) => *stats.errors.entry(class).or_default() += 1,
                }
                n += 1;
            }
            stats
        });
    }
    let mut total = RunStats::default();
    while let Some(joined) = set.join_next().await {
        let stats = joined.context("a load worker panicked")?;
        total.ok += stats.ok;
        for (class, n) in stats.errors {
            *total.errors.entry(class).or_default() += n;
        }
        total.latencies.extend(stats.latencies);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Runs `mix` on `clients` (worker `i` uses client `i`).
pub(crate) async fn drive_mcp(
    clients: &[Arc<McpClient>],
    mix: &Mix,
    stop: Stop,
) -> Result<RunStats> {
    let clients: Arc<[Arc<McpClient>]> = Arc::from(clients.to_vec());
    let mix = mix.clone();
    drive(clients.len(), stop, move |worker, n| {
        let client = Arc::clone(&clients[worker]);
        let call = mix.pick(worker, n).clone();
        async move { call_tool(&client, &call).await }
    })
    .await
}

/// `process_resident_memory_bytes` from a server's `/metrics`.
pub(crate) async fn rss_from_metrics(
    http: &reqwest::Client,
    metrics_url: &str,
    key: &str,
) -> Result<u64> {
    let text = http
        .get(metrics_url)
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .with_context(|| format!("{metrics_url} has no process_resident_memory_bytes"))
}

/// Prints a run's figures, indented.
pub(crate) fn print_stats(stats: &RunStats) {
    let p = stats.percentiles();
    println!(
        "  calls: {} in {:.1} s = {:.0}/s; ok {}, errors {}",
        stats.calls(),
        stats.elapsed.as_secs_f64(),
        stats.throughput(),
        stats.ok,
        stats.error_count()
    );
    println!(
        "  latency ms: p50 {}  p95 {}  p99 {}  max {}",
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        ms(p.max)
    );
    if !stats.errors.is_empty() {
        println!("  errors by kind:");
        for (class, n) in &stats.errors {
            println!("    {class}: {n}");
        }
    }
}

/// `"60s"`, `"500ms"`, `"2m"`, `"1.5s"` or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 60s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s or m)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_rss_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_of_pid(pid).unwrap() > 0);
        assert!(cpu_of_pid(pid).is_ok());
        assert!(rss_of_pid(u32::MAX).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn error_classes_follow_the_pipeline_wording() {
        assert_eq!(
            error_class(
                "rate limit exceeded: at most 100 tool calls per minute per user; retry in 1 s"
            ),
            "rate_limited"
        );
        assert_eq!(
            error_class("server busy: 50 calls in flight; retry shortly"),
            "busy"
        );
        assert_eq!(
            error_class("permission denied: webops_get_logs requires logs:read; ..."),
            "permission_denied"
        );
        assert_eq!(
            error_class("WebOps is unreachable or unavailable right now (x); retry shortly."),
            "upstream_unavailable"
        );
        assert_eq!(error_class("something else"), "other");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let stats = RunStats {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            ..RunStats::default()
        };
        let p = stats.percentiles();
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p95, Duration::from_millis(95));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(RunStats::default().percentiles().p99, Duration::ZERO);
    }

    #[test]
    fn the_mix_interleaves_clients_and_single_needs_known_arguments() {
        let mix = Mix::read_mix();
        assert_ne!(mix.pick(0, 0).arguments, mix.pick(1, 0).arguments);
        assert_eq!(mix.pick(3, 0).tool, mix.pick(0, 3).tool);
        for tool in READ_TOOLS {
            assert!(Mix::single(tool, None).is_ok(), "{tool}");
            assert!(mix.describe().contains(tool), "{tool}");
        }
        assert!(Mix::single("webops_delete_deployment", None).is_err());
        assert!(Mix::single("webops_delete_deployment", Some(json!([1]))).is_err());
    }

    #[test]
    fn the_server_configuration_raises_limits_and_keeps_secrets_out() {
        let spec = ServerSpec {
            bin: Path::new("webops-mcp"),
            upstream: Some(("http://127.0.0.1:9", "mock-token")),
            rate_limit_per_minute: Some(1_000_000),
            max_concurrent_requests: 256,
            key_digest: "ab",
            audit_log: PathBuf::from("scratch/a \"b\".jsonl"),
            config_path: PathBuf::from("scratch/c.toml"),
        };
        let toml = spec.config_toml();
        assert!(toml.contains("rate_limit_per_minute = 1000000\n"), "{toml}");
        assert!(
            toml.contains(r#"audit_log = "scratch/a \"b\".jsonl""#),
            "{toml}"
        );
        assert!(toml.contains("api_url = \"http://127.0.0.1:9\""), "{toml}");
        assert!(
            !toml.contains("mock-token"),
            "the WebOps token goes in the environment"
        );
        let default = ServerSpec {
            rate_limit_per_minute: None,
            upstream: None,
            ..spec
        };
        assert!(!default.config_toml().contains("rate_limit_per_minute"));
        assert!(!default.config_toml().contains("[webops]"));
    }
}
