//! `webops-mock`: serves the mock WebOps REST API v1 (or, with `--flavor panel`, a mock of
//! the shipped control panel's API) for manual use, demos and contract checks.
//!
//! ```text
//! webops-mock --bind 127.0.0.1:8000 --token TOKEN [--read-only-token TOKEN]
//!             [--seed demo|empty] [--step-delay-ms 1000] [--flavor v1|panel]
//! ```
//! With `--flavor panel` the token options are ignored: log in with the printed user.
//! Logs go to stderr, one line per answered request by default (`RUST_LOG` filters them).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use webops_mcp_testkit::{MockPanel, MockWebOps, PANEL_PASSWORD, PANEL_USER, PanelSeed, Seed};

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

    /// Which API to serve: the documented REST API v1, or the shipped control panel's.
    #[arg(long, value_enum, default_value_t = Flavor::V1)]
    flavor: Flavor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Flavor {
    /// The documented WebOps REST API v1 under `/api/v1/`, bearer tokens.
    V1,
    /// The shipped control panel: form login, CSRF and session cookies, `/api/...`.
    Panel,
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
    if args.flavor == Flavor::Panel {
        return serve_panel(&args).await;
    }
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

/// Serves the panel flavour until Ctrl-C.
async fn serve_panel(args: &Args) -> ExitCode {
    let panel = match MockPanel::builder()
        .bind(args.bind)
        .seed(match args.seed {
            SeedArg::Demo => PanelSeed::Demo,
            SeedArg::Empty => PanelSeed::Empty,
        })
        .start()
        .await
    {
        Ok(panel) => panel,
        Err(e) => {
            eprintln!("webops-mock: cannot start on {}: {e}", args.bind);
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        base_url = %panel.base_url(),
        user = PANEL_USER,
        password = PANEL_PASSWORD,
        "webops-mock panel listening (log in at /auth/login/)"
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C; stopping");
    }
    tracing::info!("webops-mock stopping");
    panel.shutdown().await;
    ExitCode::SUCCESS
}
