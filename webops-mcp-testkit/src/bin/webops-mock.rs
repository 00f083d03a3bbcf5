//! `webops-mock`: serves the mock WebOps REST API v1 for manual use, demos and contract checks.
//!
//! ```text
//! webops-mock --bind 127.0.0.1:8000 --token TOKEN [--read-only-token TOKEN]
//!             [--seed demo|empty] [--step-delay-ms 1000]
//! ```
//! Logs go to stderr, one line per answered request by default (`RUST_LOG` filters them).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use webops_mcp_testkit::{MockWebOps, Seed};

/// A stateful mock of the WebOps REST API v1.
#[derive(Debug, Parser)]
#[command(name = "webops-mock", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    bind: SocketAddr,

    /// API token with full access (sent as `Authorization: Bearer <token>`).
    #[arg(long, env = "WEBOPS_MOCK_TOKEN", hide_env_values = true, default_value = webops_mcp_testkit::TEST_TOKEN)]
    token: String,

    /// A token that may only read (writes get 403).
    #[arg(long, env = "WEBOPS_MOCK_READ_ONLY_TOKEN", hide_env_values = true)]
    read_only_token: Option<String>,

    /// Data to start with.
    #[arg(long, value_enum, default_value_t = SeedArg::Demo)]
    seed: SeedArg,

    /// Duration of each lifecycle step (pending → building → running), in milliseconds.
    #[arg(long, default_value_t = 1000)]
    step_delay_ms: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SeedArg {
    /// The demo platform.
    Demo,
    /// Nothing.
    Empty,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,webops_mcp_testkit=debug")
            }),
        )
        .init();
    let args = Args::parse();
    if args.token.is_empty() {
        eprintln!("webops-mock: --token must not be empty");
        return ExitCode::from(2);
    }
    let mut builder = MockWebOps::builder()
        .bind(args.bind)
        .token(args.token)
        .seed(match args.seed {
            SeedArg::Demo => Seed::Demo,
            SeedArg::Empty => Seed::Empty,
        })
        .step_delay(Duration::from_millis(args.step_delay_ms));
    if let Some(token) = args.read_only_token {
        builder = builder.read_only_token(token);
    }
    let mock = match builder.start().await {
        Ok(mock) => mock,
        Err(e) => {
            eprintln!("webops-mock: cannot start on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        api_url = %mock.api_url(),
        deployments = mock.deployment_count(),
        "webops-mock listening"
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C; stopping");
    }
    tracing::info!("webops-mock stopping");
    mock.shutdown().await;
    ExitCode::SUCCESS
}
