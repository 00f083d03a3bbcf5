//! `cargo xtask fleet`: three `webops-mcp http` replicas sharing one Redis (`[state] backend =
//! "redis"`), behind nginx round-robin (its configuration derived from `deploy/nginx.conf`),
//! exporting traces to an OTLP receiver, all on loopback — checked with real MCP clients:
//!
//! - one user's rate limit holds across the fleet (90 calls at 30 a minute: about 30 pass);
//! - a legacy (2025-era) session keeps working while its requests land on different replicas;
//! - a confirmation begun on one replica completes on another (2026-07-28, sealed state);
//! - a replica stopped under load loses no answered call and no audit record (the audit
//!   records of all replicas equal the answered calls);
//! - Redis stopped: calls are refused (the default `deny`), `/health` is degraded; Redis back:
//!   the fleet recovers by itself;
//! - spans arrive at the OTLP receiver with the right names and parent links, and the audit
//!   logs verify together, per replica.
//!
//! `redis-server` and `nginx` come from Debian's packages, installed when missing.

mod nginx;
mod otlp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, ProtocolVersion,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ClientLifecycleMode, ClientServiceExt as _, ErrorData, RoleClient};
use serde_json::{Value, json};

use crate::harness::{CALL_TIMEOUT, MockProcess, Proc, TempDir, free_port, new_key, wait_ready};
use crate::interop::{self, Checks};

/// The per-user limit every replica is configured with.
const RATE_PER_MINUTE: u32 = 30;
/// How many replicas run.
const REPLICAS: usize = 3;

/// `cargo xtask fleet`.
pub(crate) fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

/// The users of the run, one bucket each: every check spends its own.
const USERS: [&str; 5] = ["rate", "session", "confirm", "load", "redis"];

async fn run() -> Result<()> {
    let started = Instant::now();
    let binaries = interop::build_debug()?;
    let mock_bin = binaries.server.with_file_name("webops-mock");
    let dir = interop::scratch_dir("fleet")?;
    let scratch = TempDir::new("fleet")?;

    let redis_port = free_port()?;
    let mut redis = Some(crate::redis::start(&dir, redis_port)?);
    let receiver = otlp::Receiver::start().await?;
    let mock = MockProcess::start(&mock_bin, &scratch).await?;
    let mut keys = BTreeMap::new();
    for user in USERS {
        keys.insert(user, new_key("wmcp_fleet-")?);
    }
    let state_key = format!("fleet:{}", new_key("")?.1);
    let mut replicas = Vec::new();
    for n in 1..=REPLICAS {
        let config = replica_config(n, &dir, redis_port, &mock, &receiver.endpoint, &keys);
        replicas.push(
            Replica::start(n, &binaries.server, &dir, &config, &mock.token, &state_key).await?,
        );
    }
    let nginx_port = free_port()?;
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let nginx = nginx::Nginx::start(&ports, nginx_port, &dir)?;
    let url = format!("{}/mcp", nginx.base_url);
    println!(
        "fleet: redis :{redis_port}, replicas {ports:?}, nginx {url}, OTLP {}",
        receiver.endpoint
    );
    let key = |user: &str| keys[user].0.clone();
    let audits: Vec<PathBuf> = replicas.iter().map(|r| r.audit.clone()).collect();

    let mut checks = Checks::default();
    let result = rate_limit(&url, &key("rate"), &audits).await;
    checks.run("one user's rate limit holds across the fleet", || result);
    let result = legacy_session(&url, &key("session"), &audits).await;
    checks.run("a legacy session works across replicas", || result);
    let result = confirmation(&url, &key("confirm"), &audits).await;
    checks.run(
        "a confirmation begun on one replica completes on another",
        || result,
    );
    let result = stop_under_load(&url, &key("load"), &mut replicas, &audits).await;
    checks.run(
        "a replica stopped under load loses no answered call and no audit record",
        || result,
    );
    let result = redis_outage(
        &url,
        &nginx.base_url,
        &key("redis"),
        &mut redis,
        &dir,
        redis_port,
    )
    .await;
    checks.run(
        "Redis stopped: refused and degraded; Redis back: recovered",
        || result,
    );

    // Stop every replica gracefully: each flushes its spans.
    for replica in &mut replicas {
        replica.terminate()?;
    }
    let result = spans(&receiver).await;
    checks.run("spans arrive with MCP names and parent links", || result);
    let result = verify_audits(&binaries.server, &audits);
    checks.run(
        "the audit logs verify together, one chain per replica",
        || result,
    );
    drop(nginx);
    println!("fleet: {:.0} s", started.elapsed().as_secs_f64());
    checks.finish("fleet")
}

/// The configuration of replica `n`: its own audit file and `server_id`, the shared Redis,
/// the OTLP receiver, and an admin key per user of the run.
fn replica_config(
    n: usize,
    dir: &Path,
    redis_port: u16,
    mock: &MockProcess,
    otlp: &str,
    keys: &BTreeMap<&str, (String, String)>,
) -> String {
    let mut toml = format!(
        "[security]\nrate_limit_per_minute = {RATE_PER_MINUTE}\naudit_log = {}\nserver_id = \"replica-{n}\"\n\n\
         [webops]\napi_url = {}\n\n\
         [state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{redis_port}/0\"\n\n\
         [telemetry]\notlp_endpoint = {}\n",
        Value::from(
            dir.join(format!("audit-{n}.jsonl"))
                .to_string_lossy()
                .as_ref()
        ),
        Value::from(mock.base_url.as_str()),
        Value::from(otlp),
    );
    for (user, (_, digest)) in keys {
        toml.push_str(&format!(
            "\n[[auth.api_keys]]\nuser_id = \"fleet-{user}\"\nkey_sha256 = \"{digest}\"\npermissions = [\"admin:*\"]\n"
        ));
    }
    toml
}

/// One `webops-mcp http` of the fleet.
struct Replica {
    proc: Option<Proc>,
    port: u16,
    audit: PathBuf,
}

impl Replica {
    async fn start(
        n: usize,
        bin: &Path,
        dir: &Path,
        config: &str,
        webops_token: &str,
        state_key: &str,
    ) -> Result<Replica> {
        let path = dir.join(format!("replica-{n}.toml"));
        std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["--log-level", "warn", "--config"])
            .arg(&path)
            .args(["http", "--bind", &format!("127.0.0.1:{port}")])
            .env_remove("WEBOPS_MCP_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("WEBOPS_API_KEY", webops_token)
            .env("WEBOPS_MCP_CONFIRMATION_KEYS", state_key);
        let mut proc = Proc::spawn(
            "webops-mcp",
            &mut cmd,
            dir.join(format!("replica-{n}.stderr")),
        )?;
        wait_ready(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{port}/health"),
            &mut proc,
        )
        .await?;
        Ok(Replica {
            proc: Some(proc),
            port,
            audit: dir.join(format!("audit-{n}.jsonl")),
        })
    }

    /// SIGTERM, then waits (up to 30 s) for the graceful exit.
    fn terminate(&mut self) -> Result<()> {
        let Some(mut proc) = self.proc.take() else {
            return Ok(());
        };
        crate::run(Command::new("kill").args(["-TERM", &proc.pid().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while proc.check_alive().is_ok() {
            if Instant::now() > deadline {
                bail!(
                    "replica on :{} did not stop within 30 s of SIGTERM",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// A person at the client: confirms by typing the name the question shows.
#[derive(Clone, Default)]
struct Person;

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::builder().enable_elicitation().build(),
            Implementation::new("fleet-check", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let ElicitRequestParams::FormElicitationParams { message, .. } = request else {
            return Ok(ElicitResult::new(ElicitationAction::Decline));
        };
        let name = message
            .lines()
            .find_map(|l| l.strip_prefix("Deployment: "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_default()
            .to_owned();
        let mut answer = ElicitResult::new(ElicitationAction::Accept);
        answer.content = Some(json!({ "name": name }));
        Ok(answer)
    }
}

type Client = RunningService<RoleClient, Person>;

async fn connect(url: &str, key: &str, lifecycle: ClientLifecycleMode) -> Result<Client> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(key);
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
    Person
        .serve_with_lifecycle(transport, lifecycle)
        .await
        .with_context(|| format!("connecting an MCP client to {url}"))
}

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// One tool call, unanswered after [`CALL_TIMEOUT`] an error: an answer lost with a stopped
/// replica must fail the call, not hang the check.
async fn call(client: &Client, tool: &str, arguments: Value) -> Result<CallToolResult> {
    let arguments = arguments.as_object().cloned().unwrap_or_default();
    let request = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    tokio::time::timeout(CALL_TIMEOUT, client.call_tool(request))
        .await
        .with_context(|| format!("{tool}: no answer within {} s", CALL_TIMEOUT.as_secs()))?
        .map_err(Into::into)
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every audit record of every replica, with the file's replica number.
fn records(audits: &[PathBuf]) -> Vec<(usize, Value)> {
    let mut all = Vec::new();
    for (n, path) in audits.iter().enumerate() {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<Value>(line) {
                all.push((n + 1, record));
            }
        }
    }
    all
}

/// The audit records of `user` (its user id is `fleet-<user>`).
fn records_of(audits: &[PathBuf], user: &str) -> Vec<(usize, Value)> {
    let id = format!("fleet-{user}");
    records(audits)
        .into_iter()
        .filter(|(_, r)| r["user_id"] == id.as_str())
        .collect()
}

async fn rate_limit(url: &str, key: &str, audits: &[PathBuf]) -> Result<()> {
    let client = connect(url, key, modern()).await?;
    let started = Instant::now();
    let mut accepted = 0u32;
    for _ in 0..90 {
        let result = call(&client, "webops_list_deployments", json!({"limit": 1})).await?;
        if result.is_error != Some(true) {
            accepted += 1;
        } else if !text(&result).contains("rate limit") {
            bail!("a call failed for another reason: {}", text(&result));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    client.cancel().await?;
    // The bucket refills at 30 a minute while the calls run.
    let refill = (seconds * f64::from(RATE_PER_MINUTE) / 60.0).ceil() as u32;
    let replicas: BTreeSet<usize> = records_of(audits, "rate")
        .into_iter()
        .filter(|(_, r)| r["outcome"] == "ok")
        .map(|(n, _)| n)
        .collect();
    println!(
        "        90 calls in {seconds:.1} s: {accepted} accepted (limit {RATE_PER_MINUTE}, refill \
         {refill}), on replicas {replicas:?}"
    );
    if accepted < RATE_PER_MINUTE || accepted > RATE_PER_MINUTE + refill + 1 {
        bail!(
            "{accepted} of 90 calls accepted; one bucket of {RATE_PER_MINUTE} (+{refill} refilled) expected"
        );
    }
    if replicas.len() < REPLICAS {
        bail!(
            "the accepted calls landed on replicas {replicas:?} only; round-robin should use all {REPLICAS}"
        );
    }
    Ok(())
}

async fn legacy_session(url: &str, key: &str, audits: &[PathBuf]) -> Result<()> {
    let client = connect(url, key, ClientLifecycleMode::Initialize).await?;
    for _ in 0..6 {
        let result = call(
            &client,
            "webops_get_status",
            json!({"deployment_id": "shop-api"}),
        )
        .await?;
        if result.is_error == Some(true) {
            bail!("a call in the session failed: {}", text(&result));
        }
    }
    client.cancel().await?;
    let replicas: BTreeSet<usize> = records_of(audits, "session")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    println!("        6 calls of one session answered by replicas {replicas:?}");
    if replicas.len() < 2 {
        bail!(
            "the session's calls all landed on replica {replicas:?}: nothing was checked across replicas"
        );
    }
    Ok(())
}

async fn confirmation(url: &str, key: &str, audits: &[PathBuf]) -> Result<()> {
    let client = connect(url, key, modern()).await?;
    let result = call(
        &client,
        "webops_manage_service",
        json!({"deployment_id": "billing-portal", "action": "restart"}),
    )
    .await?;
    client.cancel().await?;
    if result.is_error == Some(true) {
        bail!("the confirmed restart failed: {}", text(&result));
    }
    let records = records_of(audits, "confirm");
    let asked: Vec<usize> = records
        .iter()
        .filter(|(_, r)| r["outcome"] == "input_required")
        .map(|(n, _)| *n)
        .collect();
    let done: Vec<usize> = records
        .iter()
        .filter(|(_, r)| r["outcome"] == "ok")
        .map(|(n, _)| *n)
        .collect();
    println!("        asked on replica {asked:?}, confirmed and done on replica {done:?}");
    match (asked.as_slice(), done.as_slice()) {
        ([a], [d]) if a != d => Ok(()),
        _ => bail!("expected one question and one confirmed call on two replicas: {records:?}"),
    }
}

async fn stop_under_load(
    url: &str,
    key: &str,
    replicas: &mut [Replica],
    audits: &[PathBuf],
) -> Result<()> {
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Arc::new(connect(url, key, modern()).await?));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for client in &clients {
        let client = client.clone();
        tasks.spawn(async move {
            let (mut answered, mut failed) = (0u32, 0u32);
            for _ in 0..6 {
                match call(
                    &client,
                    "webops_get_status",
                    json!({"deployment_id": "shop-api"}),
                )
                .await
                {
                    Ok(_) => answered += 1,
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (answered, failed)
        });
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    replicas[1].terminate()?;
    let (mut answered, mut failed) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (a, f) = joined?;
        answered += a;
        failed += f;
    }
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            let _ = client.cancel().await;
        }
    }
    let recorded = records_of(audits, "load")
        .into_iter()
        .filter(|(_, r)| r["tool"] == "webops_get_status")
        .count();
    println!(
        "        replica 2 stopped under load: {answered} calls answered, {failed} not, {recorded} audit records"
    );
    if recorded != answered as usize {
        bail!("{answered} answered calls but {recorded} audit records");
    }
    if answered == 0 {
        bail!("no call was answered");
    }
    Ok(())
}

async fn redis_outage(
    url: &str,
    base: &str,
    key: &str,
    redis: &mut Option<Proc>,
    dir: &Path,
    port: u16,
) -> Result<()> {
    let http = reqwest::Client::new();
    let health = || async {
        let answer: Value = http
            .get(format!("{base}/health"))
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(answer)
    };
    drop(redis.take());
    let client = connect(url, key, modern()).await?;
    let refused = call(&client, "webops_list_deployments", json!({"limit": 1})).await?;
    let said = text(&refused);
    if refused.is_error != Some(true) || !said.to_lowercase().contains("shared state") {
        bail!("with Redis down a call answered: {said}");
    }
    // /health checks at most every few seconds: it may take that long to notice.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = health().await?;
        if answer["status"] == "degraded" {
            break;
        }
        if Instant::now() > deadline {
            bail!("15 s after Redis went down /health still says {answer}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    *redis = Some(crate::redis::start(dir, port)?);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let result = call(&client, "webops_list_deployments", json!({"limit": 1})).await?;
        if result.is_error != Some(true) && health().await?["status"] == "ok" {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "20 s after Redis came back the fleet still refuses: {}",
                text(&result)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    client.cancel().await?;
    println!(
        "        refused while Redis was down ({}), recovered after",
        said.lines().next().unwrap_or_default()
    );
    Ok(())
}

async fn spans(receiver: &otlp::Receiver) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let spans = loop {
        let spans = receiver.spans();
        if spans.iter().any(|s| s.kind == 3) || Instant::now() > deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mcp: Vec<&otlp::Span> = spans
        .iter()
        .filter(|s| s.name == "tools/call webops_list_deployments")
        .collect();
    let by_id: BTreeMap<&str, &otlp::Span> =
        spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let upstream_children = spans
        .iter()
        .filter(|s| s.kind == 3)
        .filter(|s| {
            by_id
                .get(s.parent_span_id.as_str())
                .is_some_and(|p| p.name.starts_with("tools/call ") && p.trace_id == s.trace_id)
        })
        .count();
    println!(
        "        {} spans; {} named 'tools/call webops_list_deployments'; {upstream_children} upstream CLIENT spans under an MCP span",
        spans.len(),
        mcp.len()
    );
    if mcp.is_empty() || mcp.iter().any(|s| s.kind != 2) {
        bail!("no SERVER span named 'tools/call webops_list_deployments'");
    }
    if upstream_children == 0 {
        bail!("no upstream CLIENT span is a child of an MCP span");
    }
    Ok(())
}

fn verify_audits(bin: &Path, audits: &[PathBuf]) -> Result<()> {
    let out = Command::new(bin)
        .args(["audit", "verify"])
        .args(audits)
        .output()
        .context("running webops-mcp audit verify")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!(
        "{}",
        stdout
            .lines()
            .map(|l| format!("        {l}\n"))
            .collect::<String>()
    );
    if !out.status.success() {
        bail!(
            "audit verify failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for n in 1..=REPLICAS {
        if !stdout.contains(&format!("replica-{n}")) {
            bail!("audit verify does not report replica-{n}");
        }
    }
    Ok(())
}
