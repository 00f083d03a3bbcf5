//! Project automation: `cargo xtask <command>`.
//!
//! `ci` is the README's one test command; the others prove the server against software we did
//! not write and measure it. Every external tool (Node 22, npm packages, the Python MCP SDK) is
//! installed by [`toolchain`] into `.cache/` from the package registries.

mod bench;
mod conformance;
mod fleet;
mod harness;
mod interop;
mod load;
mod panel;
mod panel_check;
mod redis;
mod tidy;
mod toolchain;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci           tidy, fmt --check, clippy -D warnings, the whole test suite, docs with warnings denied
  tidy         docs and sources free of drift: dead links, machine paths, hand-kept tool and env lists, //! docs
  toolchain    install Node 22, the npm packages and the Python venv into .cache/ (ci does this itself)
  schema       rewrite the tool definition snapshots (webops-mcp-core/tests/snapshots/tools/) and docs/tools.md
  conformance  the official MCP conformance suite against the fixture server and webops-mcp http --demo ([--next] [--target T] [--scenario NAME]; docs/conformance.md)
  python-client  the official MCP Python SDK over stdio and HTTP, legacy and 2026-07-28 modes (docs/conformance.md)
  inspector    the MCP Inspector CLI over stdio and HTTP: JSON results and exit codes (docs/conformance.md)
  load-test    N concurrent MCP clients for a while against a release server (see --help; docs/performance.md)
  bench        tools/call vs the direct WebOps API, RSS over 200k calls, startup time (see --help)
  panel        the panel backend against the REAL WebOps control panel with the official MCP Python
               SDK over stdio and HTTP (needs WEBOPS_PANEL_TARBALL or WEBOPS_PANEL_SRC; xtask/src/panel_check.rs)
  fleet        three replicas on one Redis behind nginx, with real MCP clients and an OTLP
               receiver: shared rate limit, sessions, confirmations, a replica stopped, Redis
               down and back, spans (xtask/src/fleet/mod.rs)
  panel-up     set up the real WebOps panel (WEBOPS_PANEL_TARBALL or WEBOPS_PANEL_SRC) and run it on
               loopback until Ctrl-C ([--setup-only] [--redis] [NAME ...]; one instance per name)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("tidy") => tidy::main(),
        Some("toolchain") => toolchain::install_all().map(|_| ()),
        Some("schema") => schema(),
        Some("conformance") => conformance::main(&args[1..]),
        Some("python-client") => interop::python_client(),
        Some("inspector") => interop::inspector(),
        Some("load-test") => load::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        Some("panel") => panel_check::main(),
        Some("panel-up") => panel::panel_up(&args[1..]),
        Some("fleet") => fleet::main(),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing command")
        }
    }
}

/// The workspace root (the parent of this crate).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `cargo` as invoked by `cargo xtask`, run from the workspace root.
pub(crate) fn cargo_command() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd`, echoing it, and fails on a non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn ci() -> Result<()> {
    tidy::main()?;
    run(cargo_command().args(["fmt", "--all", "--check"]))?;
    run(cargo_command().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The server's shared-state tests run against a real redis-server.
    let redis = redis::redis_server()?;
    eprintln!("ci: the shared-state tests use {}", redis.display());
    run(cargo_command().args(["test", "--workspace", "--all-features"]))?;
    run(cargo_command()
        .args(["doc", "--workspace", "--no-deps", "--all-features"])
        .env("RUSTDOCFLAGS", "-D warnings"))?;
    // Software we did not write, against the binaries the tests just built.
    conformance::ci()?;
    interop::python_client()?;
    interop::inspector()?;
    // The panel backend against the real WebOps control panel.
    panel_check::main()?;
    // Three replicas on one Redis behind nginx, with an OTLP receiver.
    fleet::main()?;
    eprintln!("ci: all checks passed");
    Ok(())
}

/// Rewrites the checked-in tool definitions and `docs/tools.md` from the code: the snapshot
/// test does it when `UPDATE_SNAPSHOTS=1`.
fn schema() -> Result<()> {
    run(cargo_command()
        .args([
            "test",
            "-p",
            "webops-mcp-core",
            "--test",
            "it",
            "schema_snapshots",
        ])
        .env("UPDATE_SNAPSHOTS", "1"))?;
    eprintln!("schema: snapshots and docs/tools.md rewritten; review them with git diff");
    Ok(())
}
