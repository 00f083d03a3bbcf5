//! `cargo xtask conformance [--next] [--target fixture|production] [--scenario NAME]
//! [--verbose]`: the official MCP conformance suite (`@modelcontextprotocol/conformance`, run by
//! Node 22) against
//!
//! - the conformance fixture build of the server (`webops-mcp-server/examples/conformance_server/`:
//!   the real HTTP stack, the production tools and the suite's fixtures), and
//! - the production binary, `webops-mcp http --demo`, as the anonymous loopback identity (0.1.16
//!   only): every scenario that applies to a server without the suite's fixtures.
//!
//! Every server scenario of the suite runs (`--suite all`); a scenario that fails and is not in
//! the target's expected-failures file under `conformance/` fails the run, and so does an entry
//! of that file that passes (a stale baseline). For production that file lists the scenarios
//! that do not apply to it, each with the reason.

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
    /// Expected failures of the fixture build, relative to `conformance/`.
    expectations: &'static str,
    /// The scenarios that do not apply to the production binary (its expected failures),
    /// relative to `conformance/`; `None`: production is not run with this release.
    production: Option<&'static str>,
}

/// 0.1.16: the 2025-06-18 and 2025-11-25 revisions. Gating: `ci` runs it.
const CURRENT: Suite = Suite {
    package: CONFORMANCE,
    expectations: "expected-failures-0.1.16.yml",
    production: Some("production-not-applicable-0.1.16.yml"),
};

/// 0.2.0-alpha.12: adds the 2026-07-28 revision (stateless, caching, headers) and extensions.
/// Recorded against a baseline, not run by `ci`.
const NEXT: Suite = Suite {
    package: CONFORMANCE_NEXT,
    expectations: "baseline-0.2.0-alpha.12.yml",
    production: None,
};

/// What the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The conformance fixture build (the product plus the suite's fixtures).
    Fixture,
    /// `webops-mcp http --demo`, the product as shipped.
    Production,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Fixture => "fixture",
            Target::Production => "production",
        }
    }
}

/// The usage of `cargo xtask conformance`.
const USAGE: &str = "usage: cargo xtask conformance [--next] [--target fixture|production] [--scenario NAME] [--verbose]

  --next           run @modelcontextprotocol/conformance 0.2.0-alpha.12 (2026-07-28 revision)
                   against conformance/baseline-0.2.0-alpha.12.yml (fixture only) instead of
                   0.1.16 against conformance/expected-failures-0.1.16.yml (fixture) and
                   conformance/production-not-applicable-0.1.16.yml (webops-mcp http --demo)
  --target T       run against one target only: the fixture build or the production binary
  --scenario NAME  run one scenario (list them: node <package>/dist/index.js list --server)
  --verbose        print the suite's whole output, not just its summary";

/// `cargo xtask conformance ARGS`.
pub(crate) fn main(args: &[String]) -> Result<()> {
    let mut suite = &CURRENT;
    let mut targets = vec![Target::Fixture, Target::Production];
    let mut scenario = None;
    let mut verbose = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--next" => suite = &NEXT,
            "--target" => {
                targets = match args.next().map(String::as_str) {
                    Some("fixture") => vec![Target::Fixture],
                    Some("production") => vec![Target::Production],
                    _ => bail!("--target takes fixture or production\n{USAGE}"),
                }
            }
            "--scenario" => scenario = Some(args.next().context(USAGE)?.as_str()),
            "--verbose" => verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    if suite.production.is_none() {
        if targets == [Target::Production] {
            bail!("--next runs against the fixture build only");
        }
        targets.retain(|t| *t == Target::Fixture);
    }
    run_suite(suite, &targets, scenario, verbose)
}

/// The gating run of `ci`: every 0.1.16 server scenario, against the fixture build and the
/// production binary.
pub(crate) fn ci() -> Result<()> {
    run_suite(
        &CURRENT,
        &[Target::Fixture, Target::Production],
        None,
        false,
    )
}

fn run_suite(
    suite: &Suite,
    targets: &[Target],
    scenario: Option<&str>,
    verbose: bool,
) -> Result<()> {
    let version = suite
        .package
        .rsplit_once('@')
        .map_or(suite.package, |(_, v)| v);
    let node = toolchain::node22()?;
    let package = toolchain::npm_package(suite.package)?;
    let binaries = build_debug()?;
    let dir = scratch_dir(&format!("conformance/{version}"))?;
    let mut failed = Vec::new();
    for &target in targets {
        let expectations = match target {
            Target::Fixture => suite.expectations,
            Target::Production => suite
                .production
                .context("this release of the suite is not run against production")?,
        };
        let expectations = workspace_root().join("conformance").join(expectations);
        if !expectations.exists() {
            bail!("{} is missing", expectations.display());
        }
        let dir = match target {
            Target::Fixture => dir.clone(),
            Target::Production => {
                let dir = dir.join("production");
                std::fs::create_dir_all(&dir)?;
                dir
            }
        };
        let run = Run {
            version,
            target,
            node: &node,
            package: &package,
            expectations: &expectations,
            dir: &dir,
        };
        let server = match target {
            Target::Fixture => start_fixture(&binaries.fixture, &dir)?,
            Target::Production => start_production(&binaries.server, &dir)?,
        };
        if let Err(e) = run.against(&server, scenario, verbose) {
            eprintln!("{e:#}");
            failed.push(target.name());
        }
    }
    if !failed.is_empty() {
        bail!(
            "conformance {version}: failed against {} (see above)",
            failed.join(" and ")
        );
    }
    Ok(())
}

/// The fixture server on a free loopback port, as the anonymous identity.
fn start_fixture(fixture: &Path, dir: &Path) -> Result<ServerProcess> {
    let config = dir.join("fixture.toml");
    std::fs::write(
        &config,
        "# Written by cargo xtask conformance. The suite sends no credentials, so it runs as the\n\
         # anonymous identity, which webops-mcp accepts only on a loopback bind address.\n\
         [auth]\nanonymous_permissions = [\"admin:*\"]\n\n\
         [security]\naudit_log = \"audit.jsonl\"\n",
    )?;
    let mut cmd = Command::new(fixture);
    cmd.arg("--config")
        .arg(&config)
        .args(["--bind", "127.0.0.1:0"])
        .current_dir(dir);
    ServerProcess::start(cmd, &dir.join("server.log"), "listening on")
}

/// `webops-mcp http --demo` on a free loopback port, as the anonymous identity.
fn start_production(server: &Path, dir: &Path) -> Result<ServerProcess> {
    let config = dir.join("production.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by cargo xtask conformance. The suite sends no credentials, so it runs as \
             the\n# anonymous identity, which webops-mcp accepts only on a loopback bind address. \
             The\n# key below is one nobody holds: with a key configured, --demo makes none of its \
             own\n# and prints the endpoint on one line.\n\
             [auth]\nanonymous_permissions = [\"admin:*\"]\n\n\
             [[auth.api_keys]]\nuser_id = \"nobody\"\nkey_sha256 = \"{}\"\n\
             permissions = [\"deploy:read\"]\n\n\
             [security]\naudit_log = \"audit.jsonl\"\n",
            "0".repeat(64)
        ),
    )?;
    let mut cmd = Command::new(server);
    cmd.arg("--config")
        .arg(&config)
        .args(["http", "--demo", "--bind", "127.0.0.1:0"])
        .env_remove("WEBOPS_MCP_CONFIG")
        .current_dir(dir);
    ServerProcess::start(cmd, &dir.join("server.log"), "MCP endpoint:")
}

/// One run of the suite against one server.
struct Run<'a> {
    version: &'a str,
    target: Target,
    node: &'a Path,
    package: &'a Path,
    expectations: &'a Path,
    dir: &'a Path,
}

impl Run<'_> {
    fn against(&self, server: &ServerProcess, scenario: Option<&str>, verbose: bool) -> Result<()> {
        let Run {
            version,
            target,
            node,
            package,
            expectations,
            dir,
        } = *self;
        let what = target.name();
        eprintln!(
            "conformance {version}: {what} server at {}; results in {}",
            server.url,
            dir.display()
        );

        let mut cmd = Command::new(node);
        cmd.arg(package.join("dist/index.js"))
            .args(["server", "--url", &server.url]);
        match scenario {
            Some(name) => cmd.args(["--scenario", name]),
            None => cmd.args(["--suite", "all"]),
        };
        cmd.arg("--expected-failures")
            .arg(expectations)
            .arg("--output-dir")
            .arg(dir.join("results"))
            // The suite writes nothing else; keep even stray files out of the repository.
            .current_dir(dir);
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
        let server_log = dir.join("server.log");
        if !done.status.success() {
            bail!(
                "conformance {version} against {what}: unexpected failures or stale \
                 expected-failure entries in {} (see above; rerun one with `cargo xtask \
                 conformance --target {what} --scenario NAME` for its checks; the whole output is \
                 in {}, per-scenario checks.json under {}, the server log in {})\n{}",
                relative(expectations),
                log.display(),
                dir.join("results").display(),
                server_log.display(),
                tail(&server_log, 10)
            );
        }
        eprintln!(
            "conformance {version} against {what}: OK ({} is up to date)",
            relative(expectations)
        );
        Ok(())
    }
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
