//! `cargo xtask load-test`: N concurrent real MCP clients calling tools for a while against a
//! server it starts (release `webops-mcp http --demo`, or one `webops-mcp stdio --demo` per
//! client) or a running one (`--url`), printing throughput, latency percentiles, errors by
//! kind and the server's RSS; `--expect-rate-limit` shows the default rate limit at work.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, ValueEnum};
use serde_json::Value;

use crate::harness::{
    self, McpClient, Mix, Outcome, Protocol, RunStats, ServerProcess, ServerSpec, Stop, TempDir,
    mib,
};

/// The rate limit of a load run: high enough never to trigger.
const RAISED_RATE_LIMIT: u32 = 1_000_000_000;

/// The server's default rate limit (docs/configuration.md), which `--expect-rate-limit` keeps.
const DEFAULT_RATE_LIMIT: u32 = 100;

/// Load-test the MCP server with concurrent real MCP clients.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask load-test")]
struct Args {
    /// Concurrent MCP clients, each calling tools back to back.
    #[arg(long, default_value_t = 10)]
    concurrent_users: usize,

    /// How long to run (e.g. 60s, 500ms, 2m).
    #[arg(long, default_value = "60s", value_parser = harness::parse_duration)]
    duration: Duration,

    /// Streamable HTTP (one server, N clients with their own connections and sessions) or
    /// stdio (one `webops-mcp stdio --demo` process per client, as agents launch it).
    #[arg(long, value_enum, default_value_t = TransportArg::Http)]
    transport: TransportArg,

    /// Call only this tool (default: a mix of the read tools).
    #[arg(long, value_name = "NAME")]
    tool: Option<String>,

    /// Arguments (a JSON object) for --tool; default: arguments suited to the demo data.
    #[arg(long, value_name = "JSON", requires = "tool")]
    args: Option<String>,

    /// MCP lifecycle of the clients.
    #[arg(long, value_enum, default_value_t = Protocol::Legacy)]
    protocol: Protocol,

    /// A running server's MCP endpoint (e.g. http://127.0.0.1:8080/mcp) instead of starting
    /// one; needs --api-key. Its RSS is read from /metrics.
    #[arg(long, value_name = "URL", requires = "api_key")]
    url: Option<String>,

    /// The API key for --url (sent as `Authorization: Bearer`).
    #[arg(long, value_name = "KEY", requires = "url")]
    api_key: Option<String>,

    /// Keep the default rate limit (100 calls per minute per user) instead of raising it,
    /// require rate-limited tool errors, and check the server keeps serving afterwards.
    #[arg(long)]
    expect_rate_limit: bool,

    /// Use rmcp's default HTTP client (a new connection per request) instead of keep-alive.
    #[arg(long)]
    fresh_connections: bool,

    /// Run the `webops-mcp` and `webops-mock` in this directory instead of building them in
    /// release mode (e.g. a profiling build).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportArg {
    Http,
    Stdio,
}

/// Runs `cargo xtask load-test ARGS`.
pub(crate) fn main(raw: &[String]) -> Result<()> {
    let args = Args::try_parse_from(
        std::iter::once("cargo xtask load-test").chain(raw.iter().map(String::as_str)),
    )
    .unwrap_or_else(|e| e.exit());
    if harness::rerun_optimized("load-test", raw)? {
        return Ok(());
    }
    if args.concurrent_users == 0 {
        bail!("--concurrent-users must be at least 1");
    }
    if args.url.is_some() && args.transport == TransportArg::Stdio {
        bail!("--url is an HTTP server; --transport stdio starts its own processes");
    }
    let mix = match &args.tool {
        Some(tool) => {
            let arguments = args
                .args
                .as_deref()
                .map(serde_json::from_str::<Value>)
                .transpose()
                .context("--args is not JSON")?;
            Mix::single(tool, arguments)?
        }
        None => Mix::read_mix(),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args, mix))
}

/// Where the load goes and how RSS is read.
enum Target {
    /// A server this run started.
    Own {
        server: ServerProcess,
        audit_log: PathBuf,
    },
    /// `--url`.
    Remote { base_url: String, key: String },
    /// One stdio server per client.
    Stdio {
        pids: Vec<u32>,
        audit_logs: Vec<PathBuf>,
    },
}

impl Target {
    /// Total RSS and (for stdio) the largest single process.
    async fn rss(&self, http: &reqwest::Client) -> Result<(u64, u64)> {
        match self {
            Target::Own { server, .. } => {
                let rss = harness::rss_of_pid(server.proc.pid())?;
                Ok((rss, rss))
            }
            Target::Remote { base_url, key } => {
                let rss =
                    harness::rss_from_metrics(http, &format!("{base_url}/metrics"), key).await?;
                Ok((rss, rss))
            }
            Target::Stdio { pids, .. } => {
                let mut total = 0;
                let mut max = 0;
                for pid in pids {
                    let rss = harness::rss_of_pid(*pid)?;
                    total += rss;
                    max = max.max(rss);
                }
                Ok((total, max))
            }
        }
    }

    fn describe_rss(&self, (total, max): (u64, u64)) -> String {
        match self {
            Target::Stdio { pids, .. } => format!(
                "{} MiB over {} processes (largest {} MiB)",
                mib(total),
                pids.len(),
                mib(max)
            ),
            _ => format!("{} MiB", mib(total)),
        }
    }

    fn audit_logs(&self) -> Vec<PathBuf> {
        match self {
            Target::Own { audit_log, .. } => vec![audit_log.clone()],
            Target::Stdio { audit_logs, .. } => audit_logs.clone(),
            Target::Remote { .. } => Vec::new(),
        }
    }
}

async fn run(args: Args, mix: Mix) -> Result<()> {
    let http = reqwest::Client::new();
    let dir = TempDir::new("load")?;
    let binaries = match args.url {
        Some(_) => None,
        None => Some(harness::binaries(args.bin_dir.as_deref())?),
    };
    let rate_limit = if args.expect_rate_limit {
        None
    } else {
        Some(RAISED_RATE_LIMIT)
    };
    let max_concurrent = args.concurrent_users.max(50);

    // Start (or find) the server and connect the clients.
    let (target, clients) = match (&binaries, args.transport) {
        (None, _) => {
            let url = args.url.clone().unwrap_or_default();
            let key = args.api_key.clone().unwrap_or_default();
            let base_url = url
                .strip_suffix("/mcp")
                .with_context(|| format!("--url {url} does not end with /mcp"))?
                .to_owned();
            let clients = harness::connect_http_many(
                args.concurrent_users,
                &url,
                &key,
                args.protocol,
                !args.fresh_connections,
            )
            .await?;
            (Target::Remote { base_url, key }, clients)
        }
        (Some(bins), TransportArg::Http) => {
            let (key, digest) = harness::new_key("wmcp_load-")?;
            let spec = ServerSpec {
                bin: &bins.server,
                upstream: None,
                rate_limit_per_minute: rate_limit,
                max_concurrent_requests: max_concurrent,
                key_digest: &digest,
                audit_log: dir.join("audit.jsonl"),
                config_path: dir.join("webops-mcp.toml"),
                extra_toml: String::new(),
            };
            let server = ServerProcess::start(&spec, dir.join("server.stderr")).await?;
            println!(
                "server: {} http --demo (pid {}), config {}",
                bins.server.display(),
                server.proc.pid(),
                spec.config_path.display()
            );
            let idle = harness::rss_of_pid(server.proc.pid())?;
            println!("server RSS idle: {} MiB", mib(idle));
            let clients = harness::connect_http_many(
                args.concurrent_users,
                &server.mcp_url(),
                &key,
                args.protocol,
                !args.fresh_connections,
            )
            .await?;
            (
                Target::Own {
                    server,
                    audit_log: spec.audit_log,
                },
                clients,
            )
        }
        (Some(bins), TransportArg::Stdio) => {
            let mut clients = Vec::new();
            let mut pids = Vec::new();
            let mut audit_logs = Vec::new();
            for i in 0..args.concurrent_users {
                let audit_log = dir.join(&format!("audit-{i}.jsonl"));
                let config = dir.join(&format!("stdio-{i}.toml"));
                let mut toml = String::from("[security]\n");
                if let Some(n) = rate_limit {
                    toml.push_str(&format!("rate_limit_per_minute = {n}\n"));
                }
                toml.push_str(&format!(
                    "audit_log = {}\n",
                    Value::from(audit_log.to_string_lossy())
                ));
                std::fs::write(&config, toml)?;
                let stdio = harness::connect_stdio(
                    &bins.server,
                    &config,
                    &dir.join(&format!("stdio-{i}.stderr")),
                    args.protocol,
                )
                .await?;
                clients.push(stdio.client);
                pids.push(stdio.pid);
                audit_logs.push(audit_log);
            }
            println!(
                "servers: {} x `{} stdio --demo` (one process per client)",
                args.concurrent_users,
                bins.server.display()
            );
            (Target::Stdio { pids, audit_logs }, clients)
        }
    };

    let before = target.rss(&http).await?;
    println!(
        "load: {} concurrent MCP clients over {} ({}{}), {:.1} s, calling {}",
        args.concurrent_users,
        match args.transport {
            TransportArg::Http => "Streamable HTTP",
            TransportArg::Stdio => "stdio",
        },
        args.protocol,
        if args.transport == TransportArg::Http && args.fresh_connections {
            ", a new connection per request"
        } else {
            ""
        },
        args.duration.as_secs_f64(),
        mix.describe()
    );
    match rate_limit {
        Some(n) if binaries.is_some() => println!("rate limit raised to {n} calls per minute"),
        None if binaries.is_some() => {
            println!("rate limit: the default {DEFAULT_RATE_LIMIT} calls per minute per user")
        }
        _ => {}
    }
    println!("server RSS before: {}", target.describe_rss(before));

    let stats = harness::drive_mcp(&clients, &mix, Stop::After(args.duration)).await?;

    let after = target.rss(&http).await?;
    println!("results:");
    harness::print_stats(&stats);
    println!("server RSS after: {}", target.describe_rss(after));

    let mut failures = Vec::new();
    check_errors(&args, &stats, &mut failures);
    check_audit(&binaries, &target, &stats, &mut failures)?;
    check_still_serving(&args, &http, &target, &clients, &mix, &mut failures).await?;
    if let (true, Some(_)) = (args.expect_rate_limit, &binaries) {
        check_budget(&args, &stats, &mut failures);
    }
    drop(clients);

    if failures.is_empty() {
        println!("load-test: OK");
        Ok(())
    } else {
        for failure in &failures {
            eprintln!("FAILED: {failure}");
        }
        bail!("load-test failed ({} problems)", failures.len())
    }
}

/// Every error is unexpected, except rate-limited ones with `--expect-rate-limit` (which
/// must then appear).
fn check_errors(args: &Args, stats: &RunStats, failures: &mut Vec<String>) {
    let expected = "isError: rate_limited";
    for (class, n) in &stats.errors {
        if !(args.expect_rate_limit && class == expected) {
            failures.push(format!("{n} unexpected errors of kind {class}"));
        }
    }
    if args.expect_rate_limit {
        match stats.errors.get(expected) {
            Some(n) => println!("rate limiting: {n} calls refused with isError (rate limited)"),
            None => failures.push("--expect-rate-limit: no call was rate limited".to_owned()),
        }
    }
    if stats.ok == 0 {
        failures.push("no call succeeded".to_owned());
    }
}

/// With the default limit (burst 100, refilled at 100 a minute), one user can have at most
/// 100 + 100 x minutes calls accepted. Over HTTP the clients share one key (one user); over
/// stdio each process has its own limiter.
fn check_budget(args: &Args, stats: &RunStats, failures: &mut Vec<String>) {
    let buckets = match args.transport {
        TransportArg::Http => 1.0,
        TransportArg::Stdio => args.concurrent_users as f64,
    };
    let rate = f64::from(DEFAULT_RATE_LIMIT);
    let budget = buckets * (rate + rate * args.duration.as_secs_f64() / 60.0);
    println!(
        "accepted calls: {} (the limit allows at most {budget:.0}: {buckets} x (a burst of \
         {DEFAULT_RATE_LIMIT} plus {DEFAULT_RATE_LIMIT}/min x {:.1} s))",
        stats.ok,
        args.duration.as_secs_f64()
    );
    if stats.ok as f64 > budget.ceil() + buckets {
        failures.push(format!(
            "{} calls were accepted but the rate limit allows at most {budget:.0}",
            stats.ok
        ));
    }
}

/// Exactly one audit record per call, and the hash chain intact (`webops-mcp audit verify`).
fn check_audit(
    binaries: &Option<harness::Binaries>,
    target: &Target,
    stats: &RunStats,
    failures: &mut Vec<String>,
) -> Result<()> {
    let Some(bins) = binaries else {
        return Ok(());
    };
    let mut records = 0u64;
    let mut verified = true;
    for log in target.audit_logs() {
        let text =
            std::fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        records += text.lines().count() as u64;
        let output = Command::new(&bins.server)
            .args(["audit", "verify"])
            .arg(&log)
            .output()?;
        if !output.status.success() {
            verified = false;
            failures.push(format!(
                "audit verify {}: {}",
                log.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
    }
    println!(
        "audit: {records} records for {} calls; hash chain {}",
        stats.calls(),
        if verified { "intact" } else { "BROKEN" }
    );
    if records != stats.calls() {
        failures.push(format!(
            "{records} audit records for {} calls (expected exactly one per call)",
            stats.calls()
        ));
    }
    Ok(())
}

/// `/health` answers 200 after the run; with `--expect-rate-limit`, a call is accepted again
/// once the bucket has refilled.
async fn check_still_serving(
    args: &Args,
    http: &reqwest::Client,
    target: &Target,
    clients: &[Arc<McpClient>],
    mix: &Mix,
    failures: &mut Vec<String>,
) -> Result<()> {
    let base_url = match target {
        Target::Own { server, .. } => Some(server.base_url.clone()),
        Target::Remote { base_url, .. } => Some(base_url.clone()),
        Target::Stdio { .. } => None,
    };
    if let Some(base_url) = base_url {
        let health = http.get(format!("{base_url}/health")).send().await;
        match health {
            Ok(response) if response.status().is_success() => {
                let body: Value = response.json().await.unwrap_or_default();
                println!(
                    "after the run: /health 200, status {}",
                    body.get("status").unwrap_or(&Value::Null)
                );
            }
            Ok(response) => failures.push(format!("/health answered {}", response.status())),
            Err(e) => failures.push(format!("/health did not answer: {e}")),
        }
    }
    if args.expect_rate_limit
        && let Some(client) = clients.first()
    {
        // The bucket refills one call per 0.6 s at 100 a minute.
        let mut accepted = false;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if harness::call_tool(client, mix.pick(0, 0)).await == Outcome::Ok {
                accepted = true;
                break;
            }
        }
        if accepted {
            println!("after the run: a new call was accepted once the bucket refilled");
        } else {
            failures.push("no call was accepted again within 7 s after the run".to_owned());
        }
    }
    Ok(())
}
