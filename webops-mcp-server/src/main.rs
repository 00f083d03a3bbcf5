//! The `webops-mcp` binary: command line, logging, signals; everything else lives in the
//! library half of this crate.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use webops_client::{ApiFlavor, Flavor};
use webops_mcp_core::WebOpsMcpServer;
use webops_mcp_server::config::{CONFIG_ENV_VAR, ENV_VARS, REDACTED, StateBackend};
use webops_mcp_server::{
    Config, Demo, HttpApp, Transport, build_server, generate_api_key, hash_password, serve_stdio,
};

/// MCP server that lets AI agents operate the WebOps hosting platform safely.
/// mimalloc instead of glibc's malloc: under load glibc spent about a third of the server's
/// CPU in `malloc`/`free` and in waits for its arena locks. Built with `no_thp` (no
/// transparent huge pages for this process), which keeps the RSS near glibc's
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "webops-mcp", version, about, long_about = None)]
struct Cli {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, global = true, env = CONFIG_ENV_VAR, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Serve an in-process mock WebOps API with demo data (no WebOps server needed).
    #[arg(long, global = true)]
    demo: bool,

    /// With --demo: which API the mock speaks, the REST API v1 or the shipped WebOps control
    /// panel (form login as the demo user, the panel's request budget).
    #[arg(
        long,
        global = true,
        value_name = "FLAVOR",
        default_value = "v1",
        value_parser = parse_demo_flavor,
        requires = "demo"
    )]
    demo_flavor: ApiFlavor,

    /// Offer only tools that read, whatever the permissions say (also among the tools
    /// --tools and --toolsets select).
    #[arg(long, global = true)]
    read_only: bool,

    /// Have only these tools (comma-separated names; with --toolsets, the union). Replaces
    /// the configuration's `[tools]`. Default: every tool.
    #[arg(long, global = true, value_name = "NAME,...", value_delimiter = ',')]
    tools: Option<Vec<String>>,

    /// Have only the tools of these toolsets (comma-separated: observe, deploy, security,
    /// admin; with --tools, the union). Replaces the configuration's `[tools]`.
    #[arg(long, global = true, value_name = "SET,...", value_delimiter = ',')]
    toolsets: Option<Vec<String>>,

    /// Log filter (tracing env-filter syntax, e.g. "info" or "webops_mcp_core=debug");
    /// defaults to RUST_LOG, else "info,rmcp=warn". Logs go to stderr. The MCP SDK logs at
    /// most at info (its debug lines hold raw requests) unless the filter names `rmcp`.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one agent over stdin/stdout (what Claude Desktop launches).
    Stdio,
    /// Serve Streamable HTTP at /mcp, with /health and /metrics.
    Http {
        /// Address to listen on (default: the configuration's http.bind, else 127.0.0.1:8080).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Validate the configuration and print it with secrets redacted; fails if `http` would
    /// refuse to start, unless --stdio.
    CheckConfig {
        /// Check for `webops-mcp stdio` only: HTTP authentication is not required.
        #[arg(long)]
        stdio: bool,
    },
    /// Make a new random API key and print it with its SHA-256 digest.
    HashKey,
    /// Read a password on stdin and print its argon2id hash.
    HashPassword,
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of audit logs (JSON lines); with several files (a fleet's
    /// replicas), also a summary per server_id.
    Verify {
        /// The audit log files (one chain each: one per replica of a fleet).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// `--demo-flavor`: `v1` or `panel`.
fn parse_demo_flavor(value: &str) -> std::result::Result<ApiFlavor, String> {
    match value.trim() {
        "v1" => Ok(ApiFlavor::V1),
        "panel" => Ok(ApiFlavor::Panel),
        other => Err(format!(
            "unknown demo flavour {other:?}; use one of: v1, panel"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let from_env = std::env::var("RUST_LOG").ok();
    init_logging(cli.log_level.as_deref().or(from_env.as_deref()));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined by ": ", each cause shown once (some errors already
/// include their cause in their own message).
fn report(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// The default log filter: our own info lines, only warnings from the MCP SDK (which logs
/// every session at info).
const DEFAULT_LOG: &str = "info,rmcp=warn";

/// The filter for `level` (`--log-level`, else `RUST_LOG`): the MCP SDK logs raw requests
/// (arguments included, which may hold credentials) at debug, so unless the filter names it,
/// it is held at the less verbose of info and the filter's own default level (`warn` gives
/// `rmcp=warn`; a filter with no default level leaves it off).
fn log_filter(level: Option<&str>) -> String {
    let Some(level) = level.map(str::trim).filter(|l| !l.is_empty()) else {
        return DEFAULT_LOG.to_owned();
    };
    let directives = || level.split(',').map(str::trim);
    let names_rmcp = directives().any(|directive| {
        let target = directive.split(['=', '[']).next().unwrap_or_default();
        target == "rmcp" || target.starts_with("rmcp::")
    });
    if names_rmcp {
        return level.to_owned();
    }
    // A directive that is a bare level sets the default; without one, unnamed targets are off.
    let default = directives()
        .filter_map(|directive| directive.parse::<LevelFilter>().ok())
        .max()
        .unwrap_or(LevelFilter::OFF);
    let sdk = default.min(LevelFilter::INFO);
    format!("{level},rmcp={}", sdk.to_string().to_ascii_lowercase())
}

fn init_logging(level: Option<&str>) {
    let filter = EnvFilter::try_new(log_filter(level)).unwrap_or_else(|_| {
        eprintln!("warning: invalid log filter; using \"{DEFAULT_LOG}\"");
        EnvFilter::new(DEFAULT_LOG)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::HashKey => hash_key(),
        Command::HashPassword => hash_password_command(),
        Command::Audit {
            command: AuditCommand::Verify { files },
        } => audit_verify(files),
        Command::CheckConfig { stdio } => check_config(&cli, *stdio),
        Command::Stdio => runtime()?.block_on(stdio(&cli)),
        Command::Http { bind } => runtime()?.block_on(http(&cli, bind.as_deref())),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The configuration from the file, the environment and the flags.
fn load_config(cli: &Cli, bind: Option<&str>) -> Result<Config> {
    let mut loader = Config::loader()
        .read_only(cli.read_only)
        .demo(cli.demo)
        .demo_flavor(cli.demo_flavor);
    if let Some(path) = &cli.config {
        loader = loader.file(path);
    }
    if let Some(names) = &cli.tools {
        loader = loader.tools(names);
    }
    if let Some(names) = &cli.toolsets {
        loader = loader.toolsets(names);
    }
    for name in ENV_VARS {
        if let Ok(value) = std::env::var(name) {
            loader = loader.env(name, value);
        }
    }
    if let Some(bind) = bind {
        loader = loader.bind(bind);
    }
    let config = loader.load()?;
    if config.state.backend == StateBackend::Memory && config.state.redis_url.is_some() {
        tracing::warn!(
            "[state] redis_url (or WEBOPS_MCP_REDIS_URL) is set but [state] backend is \"memory\": \
             the URL is not used; set backend = \"redis\" to share state with other replicas"
        );
    }
    if !config.has_webops_credentials() && !config.demo {
        tracing::warn!(
            "no WebOps credentials are set: set an API key (WEBOPS_API_KEY or [webops] api_key) \
             or a control panel login (WEBOPS_USERNAME and WEBOPS_PASSWORD, or [webops] username \
             and password); without one WebOps will refuse every call but status"
        );
    }
    Ok(config)
}

fn check_config(cli: &Cli, stdio_only: bool) -> Result<ExitCode> {
    let config = load_config(cli, None)?;
    match &config.source {
        Some(path) => println!(
            "# effective configuration: {} + environment + flags",
            path.display()
        ),
        None => println!("# effective configuration: defaults + environment + flags (no file)"),
    }
    println!("# secrets are shown as {REDACTED}");
    println!("# webops flavour: {}\n", flavour_line(&config));
    print!("{}", config.to_redacted_toml());
    if !stdio_only && let Err(e) = config.check_http_auth() {
        eprintln!(
            "error: `webops-mcp http` would refuse to start: {e}\n  (for a configuration used \
             only by `webops-mcp stdio`, run `webops-mcp check-config --stdio`)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// How long `check-config` waits for the `auto` flavour probe.
const FLAVOUR_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `check-config` says about the WebOps API flavour: the configured one, or for `auto`
/// what one probe of the server finds (never a secret: the probe is anonymous and client
/// errors carry no credentials).
fn flavour_line(config: &Config) -> String {
    if config.demo {
        return format!(
            "{} (demo: --demo-flavor {}, an in-process mock)",
            config.demo_flavor, config.demo_flavor
        );
    }
    match config.webops.flavor {
        Flavor::V1 | Flavor::Panel => format!("{} (configured)", config.webops.flavor),
        Flavor::Auto => match probe_flavour(config) {
            Ok((flavor, why)) => format!("{flavor} ({why})"),
            Err(e) => format!("undetermined (auto: {e})"),
        },
    }
}

/// Builds the client of `config` and probes the server once, within
/// [`FLAVOUR_PROBE_TIMEOUT`], without retries.
fn probe_flavour(config: &Config) -> Result<(ApiFlavor, String)> {
    let client = config
        .webops
        .builder()
        .timeout(config.webops.timeout.min(FLAVOUR_PROBE_TIMEOUT))
        .max_retries(0)
        .build_any()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match tokio::time::timeout(FLAVOUR_PROBE_TIMEOUT, client.detect()).await {
            Ok(Ok((flavor, why))) => Ok((flavor, why.to_owned())),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => bail!("no answer within {} s", FLAVOUR_PROBE_TIMEOUT.as_secs()),
        }
    })
}

async fn stdio(cli: &Cli) -> Result<ExitCode> {
    let mut config = load_config(cli, None)?;
    let _demo = if config.demo {
        let demo = Demo::start(&mut config, false).await?;
        tracing::info!(
            api = %demo.api_url(),
            flavor = %demo.flavor(),
            "demo: mock WebOps API started"
        );
        Some(demo)
    } else {
        None
    };
    let server = build_server(&config, Transport::Stdio)?;
    announce_state(&config).await;
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    tracing::info!(
        user = %config.stdio.user_id,
        read_only = config.security.read_only,
        tools = %offered_tools(&server),
        "serving MCP over stdio"
    );
    serve_stdio(server, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn http(cli: &Cli, bind: Option<&str>) -> Result<ExitCode> {
    let mut config = load_config(cli, bind)?;
    config.check_http_auth()?;
    let demo = if config.demo {
        Some(Demo::start(&mut config, true).await?)
    } else {
        None
    };
    let server = build_server(&config, Transport::Http)?;
    let listener = tokio::net::TcpListener::bind(config.http.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.bind))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let tools = offered_tools(&server);
    let app = HttpApp::new(&config, server);
    announce_state(&config).await;
    if let Some(demo) = &demo {
        eprintln!("{}", demo.banner(local));
    }
    tracing::info!(
        address = %local,
        read_only = config.security.read_only,
        tools = %tools,
        "serving MCP over Streamable HTTP at /mcp"
    );
    let shutdown = CancellationToken::new();
    spawn_signal_handler(shutdown.clone());
    app.serve(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The tools `server` offers (the selected ones, without those read-only mode hides),
/// comma-separated, for the start-up log line.
fn offered_tools(server: &WebOpsMcpServer) -> String {
    let names: Vec<&str> = server.tools().iter().map(|t| t.name).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// Says where shared state lives when it is Redis, and whether Redis answers now (an outage
/// is logged by the store itself, once).
async fn announce_state(config: &Config) {
    let Some(url) = &config.state.redis_url else {
        return;
    };
    if config.state.backend != StateBackend::Redis {
        return;
    }
    let health = config.shared_state().health().await;
    tracing::info!(
        url = %url,
        key_prefix = %config.state.key_prefix,
        on_unavailable = config.state.on_unavailable.as_str(),
        reachable = health.reachable,
        server_id = %config.security.server_id,
        "shared state on Redis"
    );
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => {
                    tokio::select! {
                        _ = interrupt => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = interrupt.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = interrupt.await;
        }
        tracing::info!("shutdown requested");
        shutdown.cancel();
    });
}

fn hash_key() -> Result<ExitCode> {
    let (key, digest) = generate_api_key()?;
    let digest = hex::encode(digest);
    println!("API key (give it to the client; it is not stored anywhere):");
    println!("  {key}");
    println!("SHA-256 digest (the server's configuration holds only this):");
    println!("  {digest}");
    println!();
    println!("# Paste into the server configuration and set user_id and permissions:");
    println!("[[auth.api_keys]]");
    println!("user_id = \"change-me\"");
    println!("key_sha256 = \"{digest}\"");
    println!("permissions = [\"deploy:read\", \"logs:read\"]");
    Ok(ExitCode::SUCCESS)
}

fn hash_password_command() -> Result<ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (input is echoed; pipe it in to avoid that): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on stdin (e.g. `printf '%s' \"$PASSWORD\" | webops-mcp hash-password`)");
    }
    println!("{}", hash_password(password)?);
    Ok(ExitCode::SUCCESS)
}

/// One server's records over the files checked.
struct Replica {
    server_id: Option<String>,
    records: usize,
    chain_ok: bool,
    files: Vec<String>,
}

/// `audit verify FILE...`: each file's chain, as one line each (the single-file output);
/// with several files, then one line per server_id found in them.
fn audit_verify(files: &[PathBuf]) -> Result<ExitCode> {
    let mut replicas: Vec<Replica> = Vec::new();
    let mut all_ok = true;
    for file in files {
        let open = || {
            std::fs::File::open(file)
                .map(std::io::BufReader::new)
                .with_context(|| format!("cannot open {}", file.display()))
        };
        let (servers, chain_ok) = match webops_mcp_core::verify(open()?) {
            Ok(report) => {
                println!(
                    "{}: OK, {} records, hash chain intact; last hash {}",
                    file.display(),
                    report.records,
                    report.last_hash
                );
                let servers = report
                    .servers
                    .into_iter()
                    .map(|s| (s.server_id, s.records))
                    .collect();
                (servers, true)
            }
            Err(e) => {
                eprintln!("{}: audit log verification FAILED: {e}", file.display());
                all_ok = false;
                (servers_in(open()?), false)
            }
        };
        for (server_id, records) in servers {
            let name = file.display().to_string();
            match replicas.iter_mut().find(|r| r.server_id == server_id) {
                Some(replica) => {
                    replica.records += records;
                    replica.chain_ok &= chain_ok;
                    if !replica.files.contains(&name) {
                        replica.files.push(name);
                    }
                }
                None => replicas.push(Replica {
                    server_id,
                    records,
                    chain_ok,
                    files: vec![name],
                }),
            }
        }
    }
    if files.len() > 1 {
        println!("replicas:");
        for replica in &replicas {
            println!(
                "  {}: {} records, chain {} ({})",
                replica.server_id.as_deref().unwrap_or("(no server_id)"),
                replica.records,
                if replica.chain_ok { "ok" } else { "BROKEN" },
                replica.files.join(", ")
            );
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `server_id`s of a log that failed verification and how many lines name each, read
/// leniently (lines that are not records are skipped).
fn servers_in(reader: impl std::io::BufRead) -> Vec<(Option<String>, usize)> {
    let mut servers: Vec<(Option<String>, usize)> = Vec::new();
    for line in reader.lines().map_while(std::result::Result::ok) {
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let id = record
            .get("server_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        match servers.iter_mut().find(|(s, _)| *s == id) {
            Some((_, n)) => *n += 1,
            None => servers.push((id, 1)),
        }
    }
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = anyhow::Error::new(webops_mcp_server::Error::ReadConfig {
            path: "/etc/x.toml".into(),
            source: io,
        });
        assert_eq!(
            report(&error),
            "cannot read the configuration file /etc/x.toml: no such file"
        );
        let error = anyhow::anyhow!("inner cause").context("doing something");
        assert_eq!(report(&error), "doing something: inner cause");
    }

    #[test]
    fn the_sdk_is_held_at_info_or_less_unless_the_filter_names_it() {
        assert_eq!(log_filter(None), DEFAULT_LOG);
        assert_eq!(log_filter(Some(" ")), DEFAULT_LOG);
        assert_eq!(log_filter(Some("debug")), "debug,rmcp=info");
        assert_eq!(log_filter(Some("TRACE")), "TRACE,rmcp=info");
        assert_eq!(log_filter(Some("info")), "info,rmcp=info");
        // Less than info asked for: the SDK gets no more than that.
        assert_eq!(log_filter(Some("warn")), "warn,rmcp=warn");
        assert_eq!(log_filter(Some("error")), "error,rmcp=error");
        assert_eq!(log_filter(Some("off")), "off,rmcp=off");
        assert_eq!(
            log_filter(Some("warn,webops_mcp_core=debug")),
            "warn,webops_mcp_core=debug,rmcp=warn"
        );
        assert_eq!(
            log_filter(Some("info,webops_mcp_core=trace")),
            "info,webops_mcp_core=trace,rmcp=info"
        );
        // No default level: targets the filter does not name, the SDK among them, stay off.
        assert_eq!(
            log_filter(Some("webops_mcp_core=debug")),
            "webops_mcp_core=debug,rmcp=off"
        );
        for named in [
            "rmcp=debug",
            "debug,rmcp::service=trace",
            "warn, rmcp[x]=debug",
        ] {
            assert_eq!(log_filter(Some(named)), named);
        }
        // A crate whose name only starts with "rmcp" is not the SDK.
        assert_eq!(log_filter(Some("rmcpx=debug")), "rmcpx=debug,rmcp=off");
        assert_eq!(
            log_filter(Some("debug,rmcpx=debug")),
            "debug,rmcpx=debug,rmcp=info"
        );
        for filter in [
            "debug",
            "warn",
            "info,webops_mcp_core=trace",
            "webops_mcp_core=debug",
        ] {
            assert!(EnvFilter::try_new(log_filter(Some(filter))).is_ok());
        }
    }

    #[test]
    fn warn_keeps_the_sdk_info_lines_out() {
        use tracing::Level;
        use tracing_subscriber::layer::SubscriberExt as _;
        let filter = EnvFilter::try_new(log_filter(Some("warn"))).unwrap();
        let subscriber = tracing_subscriber::registry().with(filter);
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(target: "rmcp::service", Level::INFO));
            assert!(tracing::enabled!(target: "rmcp::service", Level::WARN));
            assert!(!tracing::enabled!(target: "webops_mcp_server", Level::INFO));
        });
    }
}
