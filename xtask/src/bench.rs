//! `cargo xtask bench`: what `tools/list` costs a model (bytes and estimated tokens per
//! tool, `tools_list.rs`; alone with `--tools-list-only`); our `tools/call` throughput and
//! latency over Streamable HTTP against the baseline of calling the WebOps API directly, both
//! on the same `webops-mock` process and interleaved round by round — first with the cheap
//! load generator (pre-serialized requests on keep-alive connections, stateless 2026-07-28
//! calls) at several concurrency levels, optionally with a baseline revision's server side by
//! side, then with rmcp clients; the server's RSS over 200,000 calls; and the time from
//! spawning the release binary to its first answered request. Not a test: nothing here gates
//! CI (the `tools/list` budget is a test of the server's).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use serde_json::Value;

mod tools_list;

use crate::harness::{
    self, Binaries, Mix, MockProcess, Outcome, Protocol, RawClients, RawRequest, RunStats,
    ServerProcess, ServerSpec, Stop, TempDir, mib, ms,
};

/// The targets on the project's 2-core machine (docs/performance.md).
const TARGET_RATIO: f64 = 0.5;
const TARGET_P99: Duration = Duration::from_millis(20);
const TARGET_RSS: u64 = 50 * 1024 * 1024;
const TARGET_STARTUP: Duration = Duration::from_millis(100);
/// The mock's start (issue: `webops-mock` answers `GET /api/v1/status/` within a second).
const TARGET_MOCK_STARTUP: Duration = Duration::from_secs(1);
/// RSS may rise this much from 100k to 200k calls and still count as not growing.
const GROWTH_TOLERANCE: u64 = 2 * 1024 * 1024;

/// Benchmark the MCP server against the WebOps API it fronts.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask bench")]
struct Args {
    /// Measured rounds of each path, interleaved (direct, ours, direct, ours, ...); the
    /// report gives medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,

    /// Concurrent clients on each path.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// Length of each round (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = harness::parse_duration)]
    duration: Duration,

    /// The tool every MCP call runs.
    #[arg(long, default_value = "webops_list_deployments")]
    tool: String,

    /// The WebOps API request of the direct baseline, under /api/v1/ (the one request
    /// `webops_list_deployments` with default arguments makes).
    #[arg(long, default_value = "deployments/?per_page=100&page=1")]
    direct_path: String,

    /// MCP lifecycle of the clients.
    #[arg(long, value_enum, default_value_t = Protocol::Legacy)]
    protocol: Protocol,

    /// Use rmcp's default HTTP client (a new connection per request) instead of keep-alive.
    #[arg(long)]
    fresh_connections: bool,

    /// Run the `webops-mcp` and `webops-mock` in this directory instead of building them in
    /// release mode (e.g. a profiling build).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,

    /// Calls per half of the memory run (RSS after this many, then after twice as many).
    #[arg(long, default_value_t = 100_000)]
    memory_calls: u64,

    /// Sample RSS every this many calls in the memory run.
    #[arg(long, default_value_t = 10_000)]
    sample_every: u64,

    /// Starts measured for the startup times of server and mock (medians reported).
    #[arg(long, default_value_t = 9)]
    starts: usize,

    /// Skip the memory run.
    #[arg(long)]
    skip_memory: bool,

    /// Skip the startup measurement.
    #[arg(long)]
    skip_startup: bool,

    /// Only measure `tools/list` (bytes and estimated tokens per tool): no mock, no load run,
    /// no optimized rebuild of xtask.
    #[arg(long)]
    tools_list_only: bool,

    /// `redis`: also measure a server whose rate limit lives in a real Redis (`[state]
    /// backend = "redis"`), interleaved with the others, and report its cost against memory.
    #[arg(long, value_enum, default_value_t = StateArg::Memory)]
    state: StateArg,

    /// Concurrency levels of the cheap load generator's rounds: pre-serialized requests on
    /// keep-alive hyper connections, the direct `GET` against a stateless 2026-07-28
    /// `tools/call`.
    #[arg(long, value_delimiter = ',', default_value = "1,10,64")]
    levels: Vec<usize>,

    /// Skip the rounds of rmcp clients at `--concurrency` (the cheap generator's levels
    /// still run).
    #[arg(long)]
    skip_rmcp: bool,

    /// Also measure the server of this git revision (built in release mode in a temporary
    /// worktree) in the cheap generator's rounds, side by side with this one, against the
    /// same mock.
    #[arg(long, value_name = "REF", conflicts_with = "baseline_bin")]
    baseline: Option<String>,

    /// Like `--baseline`, with a server binary already built (e.g. a saved release build).
    #[arg(long, value_name = "FILE")]
    baseline_bin: Option<PathBuf>,
}

impl Args {
    /// The measured clients of one server: `--concurrency` of them, `--protocol`, keep-alive
    /// unless `--fresh-connections`.
    async fn connect(&self, url: &str, key: &str) -> Result<Vec<Arc<harness::McpClient>>> {
        harness::connect_http_many(
            self.concurrency,
            url,
            key,
            self.protocol,
            !self.fresh_connections,
        )
        .await
    }
}

/// Where the measured servers keep their shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StateArg {
    /// In memory only (the default server).
    Memory,
    /// Also a server on a real Redis.
    Redis,
}

/// Runs `cargo xtask bench ARGS`.
pub(crate) fn main(raw: &[String]) -> Result<()> {
    let args = Args::try_parse_from(
        std::iter::once("cargo xtask bench").chain(raw.iter().map(String::as_str)),
    )
    .unwrap_or_else(|e| e.exit());
    if args.tools_list_only {
        let binaries = harness::binaries(args.bin_dir.as_deref())?;
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(tools_list::measure(&binaries.server))
            .map(|sizes| sizes.print());
    }
    if harness::rerun_optimized("bench", raw)? {
        return Ok(());
    }
    if args.rounds == 0
        || args.concurrency == 0
        || args.sample_every == 0
        || args.levels.contains(&0)
    {
        bail!("--rounds, --concurrency, --levels and --sample-every must be at least 1");
    }
    if args.rounds < 3 {
        eprintln!("warning: fewer than 3 rounds; the medians are not worth quoting");
    }
    let mix = Mix::single(&args.tool, None)?;
    let baseline_dir = TempDir::new("bench-baseline")?;
    let baseline = match (&args.baseline, &args.baseline_bin) {
        (Some(rev), _) => Some((rev.clone(), harness::baseline_server(rev, &baseline_dir)?)),
        (None, Some(bin)) => Some(("baseline".to_owned(), bin.clone())),
        (None, None) => None,
    };
    let binaries = harness::binaries(args.bin_dir.as_deref())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args, mix, binaries, baseline))
}

/// The figures of one round of one path.
#[derive(Debug, Clone, Copy)]
struct Round {
    throughput: f64,
    p50: Duration,
    p95: Duration,
    p99: Duration,
    calls: u64,
    errors: u64,
    /// CPU time per call of the mock, (on our path) the server, and the load generator.
    mock_cpu: Duration,
    server_cpu: Duration,
    client_cpu: Duration,
}

impl Round {
    fn of(stats: &RunStats, cpu: Cpu) -> Round {
        let p = stats.percentiles();
        let per_call =
            |cpu: Duration| cpu / u32::try_from(stats.calls().max(1)).unwrap_or(u32::MAX);
        Round {
            throughput: stats.throughput(),
            p50: p.p50,
            p95: p.p95,
            p99: p.p99,
            calls: stats.calls(),
            errors: stats.error_count(),
            mock_cpu: per_call(cpu.mock),
            server_cpu: per_call(cpu.server),
            client_cpu: per_call(cpu.client),
        }
    }

    fn line(&self) -> String {
        format!(
            "{:>8.0}/s  p50 {:>6} ms  p95 {:>6} ms  p99 {:>6} ms  CPU/call: server {:>3} us, \
             mock {:>3} us, client {:>3} us  ({} calls, {} errors)",
            self.throughput,
            ms(self.p50),
            ms(self.p95),
            ms(self.p99),
            self.server_cpu.as_micros(),
            self.mock_cpu.as_micros(),
            self.client_cpu.as_micros(),
            self.calls,
            self.errors
        )
    }
}

/// CPU time used so far by the mock, the server and this load generator.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    mock: Duration,
    server: Duration,
    client: Duration,
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;

    fn sub(self, earlier: Cpu) -> Cpu {
        Cpu {
            mock: self.mock.saturating_sub(earlier.mock),
            server: self.server.saturating_sub(earlier.server),
            client: self.client.saturating_sub(earlier.client),
        }
    }
}

/// The medians of several rounds, metric by metric.
fn median_round(rounds: &[Round]) -> Round {
    let f = |get: fn(&Round) -> f64| median(rounds.iter().map(get).collect());
    let d = |get: fn(&Round) -> Duration| {
        Duration::from_secs_f64(median(
            rounds.iter().map(|r| get(r).as_secs_f64()).collect(),
        ))
    };
    Round {
        throughput: f(|r| r.throughput),
        p50: d(|r| r.p50),
        p95: d(|r| r.p95),
        p99: d(|r| r.p99),
        calls: f(|r| r.calls as f64) as u64,
        errors: rounds.iter().map(|r| r.errors).sum(),
        mock_cpu: d(|r| r.mock_cpu),
        server_cpu: d(|r| r.server_cpu),
        client_cpu: d(|r| r.client_cpu),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// What the memory run saw.
struct Memory {
    idle: u64,
    /// `(calls so far, RSS)`.
    samples: Vec<(u64, u64)>,
    errors: u64,
}

impl Memory {
    fn at(&self, calls: u64) -> Option<u64> {
        self.samples
            .iter()
            .find(|(n, _)| *n >= calls)
            .map(|(_, rss)| *rss)
    }
}

/// The errors of every run, by kind.
type Errors = std::collections::BTreeMap<String, u64>;

fn add_errors(all: &mut Errors, stats: &RunStats) {
    for (class, n) in &stats.errors {
        *all.entry(class.clone()).or_insert(0) += n;
    }
}

/// CPU time so far of the mock, a server (none on the direct path) and this process.
fn cpu_now(mock_pid: u32, server_pid: Option<u32>) -> Result<Cpu> {
    Ok(Cpu {
        mock: harness::cpu_of_pid(mock_pid)?,
        server: match server_pid {
            Some(pid) => harness::cpu_of_pid(pid)?,
            None => Duration::ZERO,
        },
        client: harness::cpu_of_pid(std::process::id())?,
    })
}

/// A server whose `tools/call` the cheap generator measures: this build's, or the
/// baseline's.
struct Measured {
    /// `ours`, or `REF`.
    label: String,
    server: ServerProcess,
}

/// What the cheap generator measured at one concurrency level.
struct Level {
    clients: usize,
    direct: Vec<Round>,
    /// Per measured server (in the order given), its rounds.
    servers: Vec<Vec<Round>>,
}

impl Level {
    /// The median of the per-round ratios of server `i`'s throughput to direct.
    fn ratio(&self, i: usize) -> f64 {
        median(
            self.direct
                .iter()
                .zip(&self.servers[i])
                .map(|(d, o)| o.throughput / d.throughput.max(1e-9))
                .collect(),
        )
    }
}

/// The cheap generator at `clients` concurrent connections per path: a 1 s warm-up, then
/// `args.rounds` rounds of direct, then each server in turn.
async fn cheap_level(
    args: &Args,
    clients: usize,
    mock: &MockProcess,
    servers: &[Measured],
    key: &str,
    mix: &Mix,
    errors: &mut Errors,
) -> Result<Level> {
    let call = mix.pick(0, 0);
    let arguments = Value::Object(call.arguments.clone());
    let direct_path = format!("/api/v1/{}", args.direct_path.trim_start_matches('/'));
    let direct = RawClients::new(
        RawRequest::webops_get(&mock.base_url, &direct_path, &mock.token)?,
        clients,
    );
    let ours = servers
        .iter()
        .map(|s| {
            let request = RawRequest::tools_call(&s.server.base_url, key, &call.tool, &arguments)?;
            Ok(RawClients::new(request, clients))
        })
        .collect::<Result<Vec<_>>>()?;
    let warm_up = Stop::After(Duration::from_secs(1));
    add_errors(errors, &direct.drive(warm_up).await?);
    for path in &ours {
        add_errors(errors, &path.drive(warm_up).await?);
    }
    let mock_pid = mock.proc.pid();
    let mut level = Level {
        clients,
        direct: Vec::new(),
        servers: vec![Vec::new(); servers.len()],
    };
    for round in 1..=args.rounds {
        let before = cpu_now(mock_pid, None)?;
        let stats = direct.drive(Stop::After(args.duration)).await?;
        let d = Round::of(&stats, cpu_now(mock_pid, None)? - before);
        add_errors(errors, &stats);
        println!("{clients:>2} clients, round {round}: direct {}", d.line());
        level.direct.push(d);
        for (i, (path, measured)) in ours.iter().zip(servers).enumerate() {
            let pid = Some(measured.server.proc.pid());
            let before = cpu_now(mock_pid, pid)?;
            let stats = path.drive(Stop::After(args.duration)).await?;
            let o = Round::of(&stats, cpu_now(mock_pid, pid)? - before);
            add_errors(errors, &stats);
            println!(
                "{clients:>2} clients, round {round}: {:<6} {}",
                measured.label,
                o.line()
            );
            level.servers[i].push(o);
        }
    }
    Ok(level)
}

/// Prints the cheap generator's table: per level, direct and each server, with its ratio.
fn print_levels(args: &Args, levels: &[Level], servers: &[Measured]) {
    println!();
    println!(
        "cheap load generator (pre-serialized requests, keep-alive; stateless 2026-07-28 \
         `tools/call {}` against `GET /api/v1/{}`), medians of {} rounds:",
        args.tool, args.direct_path, args.rounds
    );
    println!();
    println!(
        "| clients | path | req/s | ratio to direct | p50 ms | p99 ms | CPU/call server | CPU/call mock | CPU/call generator |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for level in levels {
        let d = median_round(&level.direct);
        println!(
            "| {} | direct | {:.0} | | {} | {} | | {} us | {} us |",
            level.clients,
            d.throughput,
            ms(d.p50),
            ms(d.p99),
            d.mock_cpu.as_micros(),
            d.client_cpu.as_micros()
        );
        for (i, measured) in servers.iter().enumerate() {
            let o = median_round(&level.servers[i]);
            println!(
                "| {} | {} | {:.0} | {:.2} | {} | {} | {} us | {} us | {} us |",
                level.clients,
                measured.label,
                o.throughput,
                level.ratio(i),
                ms(o.p50),
                ms(o.p99),
                o.server_cpu.as_micros(),
                o.mock_cpu.as_micros(),
                o.client_cpu.as_micros()
            );
        }
    }
}

/// This build against the baseline (server 1 against server 0), level by level: medians of
/// the per-round ratios of server CPU per call and of throughput.
fn print_against_baseline(levels: &[Level], servers: &[Measured]) -> Option<f64> {
    let baseline = servers.get(1)?;
    println!();
    println!(
        "ours against {} (medians of per-round ratios):",
        baseline.label
    );
    let mut cpu_at_top = None;
    for level in levels {
        let per_round = |f: fn(&Round) -> f64| {
            median(
                level.servers[0]
                    .iter()
                    .zip(&level.servers[1])
                    .map(|(ours, base)| f(ours) / f(base).max(1e-12))
                    .collect(),
            )
        };
        let cpu = per_round(|r| r.server_cpu.as_secs_f64());
        let throughput = per_round(|r| r.throughput);
        println!(
            "  {:>2} clients: server CPU per call x{cpu:.2}, throughput x{throughput:.2}",
            level.clients
        );
        cpu_at_top = Some(cpu);
    }
    cpu_at_top
}

async fn run(
    args: Args,
    mix: Mix,
    bins: Binaries,
    baseline: Option<(String, PathBuf)>,
) -> Result<()> {
    // The cheap section first: it needs neither the mock nor load.
    tools_list::measure(&bins.server).await?.print();
    let dir = TempDir::new("bench")?;
    let mock = MockProcess::start(&bins.mock, &dir).await?;
    let (key, digest) = harness::new_key("wmcp_bench-")?;
    let spec = |name: &str| server_spec(&args, &mock, &digest, &dir, name, &bins.server);
    println!(
        "bench: the cheap load generator at {:?} clients, then {} rmcp clients; {} rounds x \
         {:.0} s per path, interleaved; tool {}; rmcp clients: {}{}",
        args.levels,
        args.concurrency,
        args.rounds,
        args.duration.as_secs_f64(),
        args.tool,
        args.protocol,
        if args.fresh_connections {
            ", a new connection per request"
        } else {
            ", keep-alive"
        }
    );
    println!(
        "one webops-mock process (pid {}) serves every path; load generator, servers and mock \
         share this machine's {} CPUs",
        mock.proc.pid(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut all_errors = Errors::new();

    // The servers the cheap generator measures: ours, and the baseline's.
    let mut servers = vec![Measured {
        label: "ours".to_owned(),
        server: ServerProcess::start(&spec("bench"), dir.join("bench-server.stderr")).await?,
    }];
    if let Some((rev, bin)) = &baseline {
        let server = ServerProcess::start(
            &server_spec(&args, &mock, &digest, &dir, "baseline", bin),
            dir.join("baseline.stderr"),
        )
        .await?;
        servers.push(Measured {
            label: rev.clone(),
            server,
        });
    }
    let mut levels = Vec::new();
    for &clients in &args.levels {
        levels
            .push(cheap_level(&args, clients, &mock, &servers, &key, &mix, &mut all_errors).await?);
    }

    // rmcp clients, interleaved with the direct path (reqwest).
    let server = &servers[0].server;
    let mut direct_rounds = Vec::new();
    let mut our_rounds = Vec::new();
    let mut redis_rounds: Vec<(Round, Round, Duration)> = Vec::new();
    if !args.skip_rmcp {
        let clients = args.connect(&server.mcp_url(), &key).await?;
        // With --state redis: the same server, its rate limit in a real Redis.
        let redis_path = match args.state {
            StateArg::Memory => None,
            StateArg::Redis => {
                Some(RedisPath::start(&args, &mix, spec("redis-state"), &dir, &key).await?)
            }
        };
        let direct_url = format!(
            "{}/api/v1/{}",
            mock.base_url,
            args.direct_path.trim_start_matches('/')
        );
        let direct_clients: Arc<[reqwest::Client]> = (0..args.concurrency)
            .map(|_| reqwest::Client::new())
            .collect();
        let direct = |stop| drive_direct(&direct_clients, &direct_url, &mock.token, stop);

        println!("rmcp clients: warm-up 2 s per path");
        direct(Stop::After(Duration::from_secs(2))).await?;
        harness::drive_mcp(&clients, &mix, Stop::After(Duration::from_secs(2))).await?;
        let (mock_pid, server_pid) = (mock.proc.pid(), server.proc.pid());
        for round in 1..=args.rounds {
            let before = cpu_now(mock_pid, Some(server_pid))?;
            let d = direct(Stop::After(args.duration)).await?;
            let middle = cpu_now(mock_pid, Some(server_pid))?;
            let o = harness::drive_mcp(&clients, &mix, Stop::After(args.duration)).await?;
            let after = cpu_now(mock_pid, Some(server_pid))?;
            add_errors(&mut all_errors, &d);
            add_errors(&mut all_errors, &o);
            let mut d = Round::of(&d, middle - before);
            d.server_cpu = Duration::ZERO;
            let o = Round::of(&o, after - middle);
            println!("rmcp round {round}: direct {}", d.line());
            println!("rmcp round {round}: ours   {}", o.line());
            if let Some(path) = &redis_path {
                let (r, redis_cpu) = path.round(&mix, args.duration, mock_pid).await?;
                println!(
                    "rmcp round {round}: redis  {}  redis-server {} us/call",
                    r.line(),
                    redis_cpu.as_micros()
                );
                redis_rounds.push((r, o, redis_cpu));
            }
            direct_rounds.push(d);
            our_rounds.push(o);
        }
    }
    let server_rss = servers
        .iter()
        .map(|s| Ok((s.label.clone(), harness::rss_of_pid(s.server.proc.pid())?)))
        .collect::<Result<Vec<_>>>()?;

    // Memory over 2 x memory_calls calls, on a fresh server.
    let memory = if args.skip_memory {
        None
    } else {
        Some(memory_run(&args, &spec("memory"), &dir, &key, &mix).await?)
    };

    // Start to first answered request.
    let startup = if args.skip_startup {
        None
    } else {
        let server = startup_run(&args, &spec("startup"), &dir).await?;
        let mock = mock_startup_run(&args, &bins.mock, &dir).await?;
        Some((server, mock))
    };

    // Report.
    let mut verdicts = Vec::new();
    print_levels(&args, &levels, &servers);
    if let Some(top) = levels.iter().max_by_key(|l| l.clients) {
        let ours = median_round(&top.servers[0]);
        verdicts.push(verdict(
            &format!(
                "throughput ratio >= 0.5 (cheap generator, {} clients)",
                top.clients
            ),
            top.ratio(0) >= TARGET_RATIO,
            format!("{:.2}", top.ratio(0)),
        ));
        verdicts.push(verdict(
            &format!("p99 <= 20 ms (cheap generator, {} clients)", top.clients),
            ours.p99 <= TARGET_P99,
            format!("{} ms", ms(ours.p99)),
        ));
    }
    if let Some(cpu) = print_against_baseline(&levels, &servers) {
        verdicts.push(verdict(
            "server CPU per call <= half the baseline's (cheap generator, most clients)",
            cpu <= 0.5,
            format!("x{cpu:.2}"),
        ));
    }
    if !our_rounds.is_empty() {
        print_rmcp_rounds(
            &args,
            &direct_rounds,
            &our_rounds,
            &redis_rounds,
            &mut verdicts,
        );
    }
    println!();
    for (label, rss) in &server_rss {
        println!("server RSS after the rounds ({label}): {} MiB", mib(*rss));
    }
    if let Some(memory) = &memory {
        print_memory(&args, memory, &mut verdicts);
        if memory.errors > 0 {
            *all_errors.entry("memory run".to_owned()).or_insert(0) += memory.errors;
        }
    }
    if let Some((server, mock)) = &startup {
        let what = "webops-mcp start to first answered /health";
        verdicts.push(startup_verdict(what, server, TARGET_STARTUP));
        let what = "webops-mock start to first answered GET /api/v1/status/";
        verdicts.push(startup_verdict(what, mock, TARGET_MOCK_STARTUP));
    }
    println!();
    println!("targets:");
    for line in &verdicts {
        println!("  {line}");
    }
    if !all_errors.is_empty() {
        println!("errors by kind: {all_errors:?}");
        bail!("calls failed during the benchmark; the figures are not valid");
    }
    Ok(())
}

/// How a measured server is started: `bin` against the mock, with a raised rate limit,
/// enough concurrency for every level, and its audit log and configuration in `dir`.
fn server_spec<'a>(
    args: &Args,
    mock: &'a MockProcess,
    digest: &'a str,
    dir: &TempDir,
    name: &str,
    bin: &'a Path,
) -> ServerSpec<'a> {
    let most_clients = args.levels.iter().copied().max().unwrap_or(0);
    ServerSpec {
        bin,
        upstream: Some((&mock.base_url, &mock.token)),
        rate_limit_per_minute: Some(1_000_000_000),
        max_concurrent_requests: args.concurrency.max(most_clients).max(50),
        key_digest: digest,
        audit_log: dir.join(&format!("{name}-audit.jsonl")),
        config_path: dir.join(&format!("{name}.toml")),
        extra_toml: String::new(),
    }
}

/// Prints the rounds of rmcp clients (and of the Redis path) and judges them.
fn print_rmcp_rounds(
    args: &Args,
    direct_rounds: &[Round],
    our_rounds: &[Round],
    redis_rounds: &[(Round, Round, Duration)],
    verdicts: &mut Vec<String>,
) {
    let direct_m = median_round(direct_rounds);
    let ours_m = median_round(our_rounds);
    let ratios: Vec<f64> = direct_rounds
        .iter()
        .zip(our_rounds)
        .map(|(d, o)| o.throughput / d.throughput.max(1e-9))
        .collect();
    let ratio = median(ratios.clone());
    println!();
    println!(
        "rmcp clients at {} (median of {} rounds; ratio = median of the per-round ratios {}):",
        args.concurrency,
        args.rounds,
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!(
        "| path | req/s | p50 ms | p95 ms | p99 ms | CPU/call server | CPU/call mock | CPU/call client |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r) in [
        (
            format!("direct WebOps API (`GET {}`)", args.direct_path),
            direct_m,
        ),
        (format!("webops-mcp `tools/call` {}", args.tool), ours_m),
    ] {
        print_round_row(&name, &r);
    }
    if !redis_rounds.is_empty() {
        print_redis_rounds(args, redis_rounds);
    }
    verdicts.push(verdict(
        &format!(
            "throughput ratio (rmcp clients, {}) >= 0.5",
            args.concurrency
        ),
        ratio >= TARGET_RATIO,
        format!("{ratio:.2}"),
    ));
    verdicts.push(verdict(
        &format!("p99 (rmcp clients, {}) <= 20 ms", args.concurrency),
        ours_m.p99 <= TARGET_P99,
        format!("{} ms", ms(ours_m.p99)),
    ));
}

/// One row of the rmcp-client table: `name` and the medians `r`.
fn print_round_row(name: &str, r: &Round) {
    println!(
        "| {name} | {:.0} | {} | {} | {} | {} us | {} us | {} us |",
        r.throughput,
        ms(r.p50),
        ms(r.p95),
        ms(r.p99),
        r.server_cpu.as_micros(),
        r.mock_cpu.as_micros(),
        r.client_cpu.as_micros()
    );
}

/// Prints the Redis path against memory.
fn print_redis_rounds(args: &Args, redis_rounds: &[(Round, Round, Duration)]) {
    let throughput = median(
        redis_rounds
            .iter()
            .map(|(r, o, _)| r.throughput / o.throughput.max(1e-9))
            .collect(),
    );
    let server_cpu = median(
        redis_rounds
            .iter()
            .map(|(r, o, _)| r.server_cpu.as_secs_f64() / o.server_cpu.as_secs_f64().max(1e-12))
            .collect(),
    );
    let redis_m = median_round(&redis_rounds.iter().map(|(r, _, _)| *r).collect::<Vec<_>>());
    let redis_cpu = median(
        redis_rounds
            .iter()
            .map(|(_, _, c)| c.as_secs_f64())
            .collect(),
    );
    print_round_row(
        &format!("webops-mcp `tools/call` {}, rate limit in Redis", args.tool),
        &redis_m,
    );
    println!();
    println!(
        "shared state on Redis vs memory (medians of per-round ratios): throughput x{throughput:.2}, \
         server CPU per call x{server_cpu:.2}; redis-server {:.0} us per call",
        redis_cpu * 1e6
    );
}

/// Prints the memory run and judges it.
fn print_memory(args: &Args, memory: &Memory, verdicts: &mut Vec<String>) {
    let half = args.memory_calls;
    let first = memory.at(half).unwrap_or(0);
    let second = memory.at(2 * half).unwrap_or(0);
    println!(
        "memory run: idle {} MiB; RSS by calls: {}",
        mib(memory.idle),
        memory
            .samples
            .iter()
            .map(|(n, rss)| format!("{}k {}", n / 1000, mib(*rss)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    verdicts.push(verdict(
        &format!("RSS after {half} calls <= 50 MiB"),
        first <= TARGET_RSS,
        format!("{} MiB", mib(first)),
    ));
    verdicts.push(verdict(
        &format!(
            "RSS not growing ({}k -> {}k calls)",
            half / 1000,
            2 * half / 1000
        ),
        second <= first + GROWTH_TOLERANCE,
        format!(
            "{} -> {} MiB ({:+.1} MiB)",
            mib(first),
            mib(second),
            (second as f64 - first as f64) / (1024.0 * 1024.0)
        ),
    ));
}

fn verdict(what: &str, met: bool, value: String) -> String {
    format!("{}  {what}: {value}", if met { "MET   " } else { "MISSED" })
}

/// The baseline: `GET url` with the bearer token, body read and parsed, on `clients`.
async fn drive_direct(
    clients: &Arc<[reqwest::Client]>,
    url: &str,
    token: &str,
    stop: Stop,
) -> Result<RunStats> {
    let clients = Arc::clone(clients);
    let (url, token): (Arc<str>, Arc<str>) = (Arc::from(url), Arc::from(token));
    harness::drive(clients.len(), stop, move |worker, _| {
        let http = clients[worker].clone();
        let (url, token) = (Arc::clone(&url), Arc::clone(&token));
        async move { direct_call(&http, &url, &token).await }
    })
    .await
}

async fn direct_call(http: &reqwest::Client, url: &str, token: &str) -> Outcome {
    let answer = async {
        let response = http.get(url).bearer_auth(token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    match tokio::time::timeout(harness::CALL_TIMEOUT, answer).await {
        Err(_) => Outcome::Error("direct: timeout".to_owned()),
        Ok(Err(e)) => Outcome::Error(format!("direct: {e}")),
        Ok(Ok((status, body))) => match serde_json::from_slice::<Value>(&body) {
            Ok(json) if status.is_success() && json["success"] == Value::Bool(true) => Outcome::Ok,
            _ => Outcome::Error(format!("direct: HTTP {status}")),
        },
    }
}

/// RSS of a fresh server, idle and every `sample_every` calls up to `2 x memory_calls`.
async fn memory_run(
    args: &Args,
    spec: &ServerSpec<'_>,
    dir: &TempDir,
    key: &str,
    mix: &Mix,
) -> Result<Memory> {
    let server = ServerProcess::start(spec, dir.join("memory-server.stderr")).await?;
    let pid = server.proc.pid();
    let idle = harness::rss_of_pid(pid)?;
    let clients = args.connect(&server.mcp_url(), key).await?;
    let total = 2 * args.memory_calls;
    println!(
        "memory run: {total} calls on a fresh server (pid {pid}), RSS every {} calls",
        args.sample_every
    );
    let mut samples = Vec::new();
    let mut done = 0u64;
    let mut errors = 0u64;
    let started = Instant::now();
    while done < total {
        let batch = args.sample_every.min(total - done);
        let stats = harness::drive_mcp(&clients, mix, Stop::Calls(batch)).await?;
        done += stats.calls();
        errors += stats.error_count();
        samples.push((done, harness::rss_of_pid(pid)?));
    }
    println!(
        "memory run: {done} calls in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Memory {
        idle,
        samples,
        errors,
    })
}

/// Prints the median, min and max of `times` (start to first answer) and judges the median.
fn startup_verdict(what: &str, times: &[Duration], target: Duration) -> String {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    println!(
        "{what} ({} starts): median {} ms, min {} ms, max {} ms",
        sorted.len(),
        ms(median),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1])
    );
    verdict(
        &format!("{what} <= {} ms", target.as_millis()),
        median <= target,
        format!("{} ms", ms(median)),
    )
}

/// Starts the release `webops-mock` `args.starts` times and times each until `GET
/// /api/v1/status/` answers.
async fn mock_startup_run(args: &Args, bin: &Path, dir: &TempDir) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(args.starts);
    for _ in 0..args.starts.max(1) {
        let started = Instant::now();
        let mock = MockProcess::start(bin, dir).await?;
        times.push(started.elapsed());
        drop(mock);
    }
    Ok(times)
}

/// Spawns the release binary `args.starts` times and times each until `/health` answers.
async fn startup_run(args: &Args, spec: &ServerSpec<'_>, dir: &TempDir) -> Result<Vec<Duration>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .context("building an HTTP client")?;
    let mut times = Vec::with_capacity(args.starts);
    for i in 0..args.starts.max(1) {
        let port = harness::free_port()?;
        let started = Instant::now();
        let mut proc = spec.spawn(port, dir.join(&format!("startup-{i}.stderr")))?;
        harness::wait_ready(&http, &format!("http://127.0.0.1:{port}/health"), &mut proc).await?;
        times.push(started.elapsed());
        drop(proc);
    }
    Ok(times)
}

/// The path of `--state redis`: a `redis-server`, a server with `[state] backend = "redis"`,
/// and its clients.
struct RedisPath {
    redis: crate::harness::Proc,
    server: ServerProcess,
    clients: Vec<Arc<harness::McpClient>>,
}

impl RedisPath {
    async fn start(
        args: &Args,
        mix: &Mix,
        mut spec: ServerSpec<'_>,
        dir: &TempDir,
        key: &str,
    ) -> Result<RedisPath> {
        let port = harness::free_port()?;
        let redis = crate::redis::start(dir.path(), port)?;
        spec.extra_toml =
            format!("\n[state]\nbackend = \"redis\"\nredis_url = \"redis://127.0.0.1:{port}/0\"\n");
        let server = ServerProcess::start(&spec, dir.join("redis-state-server.stderr")).await?;
        let clients = args.connect(&server.mcp_url(), key).await?;
        harness::drive_mcp(&clients, mix, Stop::After(Duration::from_secs(2))).await?;
        Ok(RedisPath {
            redis,
            server,
            clients,
        })
    }

    /// One round: its figures, and redis-server's CPU per call.
    async fn round(
        &self,
        mix: &Mix,
        duration: Duration,
        mock_pid: u32,
    ) -> Result<(Round, Duration)> {
        let (server_pid, redis_pid) = (self.server.proc.pid(), self.redis.pid());
        let cpu = || -> Result<(Cpu, Duration)> {
            Ok((
                Cpu {
                    mock: harness::cpu_of_pid(mock_pid)?,
                    server: harness::cpu_of_pid(server_pid)?,
                    client: harness::cpu_of_pid(std::process::id())?,
                },
                harness::cpu_of_pid(redis_pid)?,
            ))
        };
        let (before, redis_before) = cpu()?;
        let stats = harness::drive_mcp(&self.clients, mix, Stop::After(duration)).await?;
        let (after, redis_after) = cpu()?;
        let calls = u32::try_from(stats.calls().max(1)).unwrap_or(u32::MAX);
        Ok((
            Round::of(&stats, after - before),
            redis_after.saturating_sub(redis_before) / calls,
        ))
    }
}
