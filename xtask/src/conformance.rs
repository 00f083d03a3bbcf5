//! `cargo xtask conformance [--next] [--scenario NAME] [--verbose]`: the official MCP
//! conformance suite (`@modelcontextprotocol/conformance`, run by Node 22) against the
//! conformance fixture build of the server (`webops-mcp-server/examples/conformance_server.rs`:
//! the real HTTP stack, the production tools and the suite's fixtures).
//!
//! Every server scenario of the suite runs (`--suite all`); a scenario that fails and is not in
//! the version's expected-failures file under `conformance/` fails the run, and so does an
//! entry of that file that passes (a stale baseline).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::interop::{ServerProcess, build_debug, output_within, scratch_dir, tail};
use crate::toolchain::{self, CONFORMANCE, CONFORMANCE_NEXT};
use crate::workspace_root;

/// How long one whole suite may take.
const SUITE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One release of the suite and what we expect of it.
struct Suite {
    /// The npm package spec.
    package: &'static str,
    /// Expected failures, relative to `conformance/`.
    expectations: &'static str,
}

/// 0.1.16: the 2025-06-18 and 2025-11-25 revisions. Gating: `ci` runs it.
const CURRENT: Suite = Suite {
    package: CONFORMANCE,
    expectations: "expected-failures-0.1.16.yml",
};

/// 0.2.0-alpha.12: adds the 2026-07-28 revision (stateless, caching, headers) and extensions.
/// Recorded against a baseline, not run by `ci`.
const NEXT: Suite = Suite {
    package: CONFORMANCE_NEXT,
    expectations: "baseline-0.2.0-alpha.12.yml",
};

/// The usage of `cargo xtask conformance`.
const USAGE: &str = "usage: cargo xtask conformance [--next] [--scenario NAME] [--verbose]

  --next           run @modelcontextprotocol/conformance 0.2.0-alpha.12 (2026-07-28 revision)
                   against conformance/baseline-0.2.0-alpha.12.yml instead of 0.1.16 against
                   conformance/expected-failures-0.1.16.yml
  --scenario NAME  run one scenario (list them: node <package>/dist/index.js list --server)
  --verbose        print the suite's whole output, not just its summary";

/// `cargo xtask conformance ARGS`.
pub(crate) fn main(args: &[String]) -> Result<()> {
    let mut suite = &CURRENT;
    let mut scenario = None;
    let mut verbose = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--next" => suite = &NEXT,
            "--scenario" => scenario = Some(args.next().context(USAGE)?.as_str()),
            "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    run_suite(suite, scenario, verbose)
}

/// The gating run of `ci`: every 0.1.16 server scenario.
pub(crate) fn ci() -> Result<()> {
    run_suite(&CURRENT, None, false)
}

fn run_suite(suite: &Suite, scenario: Option<&str>, verbose: bool) -> Result<()> {
    let version = suite
        .package
        .rsplit_once('@')
        .map_or(suite.package, |(_, v)| v);
    let node = toolchain::node22()?;
    let package = toolchain::npm_package(suite.package)?;
    let expectations = workspace_root()
        .join("conformance")
        .join(suite.expectations);
    if !expectations.exists() {
        bail!("{} is missing", expectations.display());
    }
    let binaries = build_debug()?;
    let dir = scratch_dir(&format!("conformance/{version}"))?;
    let config = dir.join("fixture.toml");
    std::fs::write(
        &config,
        "# Written by cargo xtask conformance. The suite sends no credentials, so it runs as the\n\
         # anonymous identity, which webops-mcp accepts only on a loopback bind address.\n\
         [auth]\nanonymous_permissions = [\"admin:*\"]\n\n\
         [security]\naudit_log = \"audit.jsonl\"\n",
    )?;
    let mut cmd = Command::new(&binaries.fixture);
    cmd.arg("--config")
        .arg(&config)
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(&dir);
    let server = ServerProcess::start(cmd, &dir.join("fixture.log"), "listening on")?;
    eprintln!(
        "conformance {version}: fixture server at {}; results in {}",
        server.url,
        dir.display()
    );

    let mut cmd = Command::new(&node);
    cmd.arg(package.join("dist/index.js"))
        .args(["server", "--url", &server.url]);
    match scenario {
        Some(name) => cmd.args(["--scenario", name]),
        None => cmd.args(["--suite", "all"]),
    };
    cmd.arg("--expected-failures")
        .arg(&expectations)
        .arg("--output-dir")
        .arg(dir.join("results"))
        // The suite writes nothing else; keep even stray files out of the repository.
        .current_dir(&dir);
    eprintln!(
        "$ node {} server --url {} {} --expected-failures {}",
        package.join("dist/index.js").display(),
        server.url,
        scenario.map_or_else(|| "--suite all".to_owned(), |s| format!("--scenario {s}")),
        expectations.display()
    );
    let done = output_within(&mut cmd, SUITE_TIMEOUT)?;
    let output = format!("{}{}", done.stdout, done.stderr);
    let log = dir.join("output.txt");
    std::fs::write(&log, &output)?;
    print_report(&output, verbose || scenario.is_some());
    drop(server);
    if !done.status.success() {
        bail!(
            "conformance {version}: unexpected failures or stale expected-failure entries \
             (see above; rerun one with `cargo xtask conformance --scenario NAME` for its \
             checks; the whole output is in {}, per-scenario checks.json under {}, the server \
             log in {})\n{}",
            log.display(),
            dir.join("results").display(),
            dir.join("fixture.log").display(),
            tail(&dir.join("fixture.log"), 10)
        );
    }
    eprintln!(
        "conformance {version}: OK ({} is up to date)",
        relative(&expectations)
    );
    Ok(())
}

/// Prints the suite's summary and verdict (or everything when `all`).
fn print_report(output: &str, all: bool) {
    let start = if all {
        0
    } else {
        output
            .lines()
            .position(|l| l.contains("=== SUMMARY ==="))
            .unwrap_or(0)
    };
    for line in output.lines().skip(start) {
        println!("{line}");
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
