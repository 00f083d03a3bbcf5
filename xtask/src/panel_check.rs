//! `cargo xtask panel`: the `panel` backend of `webops-mcp` against the REAL WebOps control
//! panel ([`crate::panel`], mode B), driven by a REAL MCP client (the official Python SDK,
//! `xtask/python/check_panel.py`).
//!
//! Three panel instances run side by side, each with its own 20-requests-per-60-s limiter (the
//! panel limits per client address, and every client here is 127.0.0.1): `mcp-stdio` for the
//! stdio run (the script spawns `webops-mcp stdio`), `mcp-http` for the Streamable HTTP run
//! (`webops-mcp http` started here with an API key), and `mcp-auth` for the login failures (a
//! wrong password, a user with two-factor login), whose requests must not eat into the budget
//! of the other two servers. The two runs go in parallel: both are paced by the request
//! budget, not by the machine.
//!
//! The deploys clone the fixture repository from [`GitHttp`] (smart HTTP on loopback), as an
//! operator's internal Git host: both servers run with `[webops] repository_schemes = ["https",
//! "http"]` and `allowed_repository_hosts = ["127.0.0.1"]` ([`panel::REPOSITORY_CONFIG`]); the
//! script also checks that the binary with its defaults refuses `file:///etc/passwd`.
//!
//! After the runs this side checks what the script cannot see whole: no panel log holds a 429
//! (or a refused rate-limit check), no file the run wrote (tool outputs, server logs, audit
//! logs, the script's own output) holds one of the fixture secrets unmasked, the audit hash
//! chain of each of the servers is intact, and the panel really cloned over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::interop::{self, ApiKey, Checks, ServerProcess};
use crate::panel::{
    self, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, DEPLOY_REPO, FIXTURE_APP_SECRET_KEY,
    FIXTURE_DB_PASSWORD, FIXTURE_DEPLOYMENT, FIXTURE_LOGS, GitHttp, PanelInstance,
    REPOSITORY_CONFIG, UNCLONABLE_REPO,
};
use crate::toolchain::{self, PYTHON_REQUIREMENTS};
use crate::workspace_root;

/// How long one run of the script may take (the budget paces it: about 4 minutes).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(480);

/// The `.env` secret of the fixture repository (`panel::FIXTURE_DOTENV`'s `API_TOKEN`).
const FIXTURE_API_TOKEN: &str = "fixture-api-token-8c1f0e2d9b7a";

/// The log filter of every `webops-mcp` here: debug, so the secret scan reads as much of what
/// the server says as an operator could make it say.
const SERVER_LOG_LEVEL: &str = "debug";

/// One transport's run: its panel and how the script reaches the server.
struct RunSpec<'a> {
    label: &'static str,
    panel: &'a PanelInstance,
    /// Extra script arguments.
    args: Vec<String>,
    /// Extra script environment.
    env: Vec<(&'static str, String)>,
}

/// `cargo xtask panel`.
pub(crate) fn main() -> Result<()> {
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut lap = Instant::now();
    let mut mark = |what: &'static str, timings: &mut Vec<(&str, Duration)>| {
        timings.push((what, lap.elapsed()));
        lap = Instant::now();
    };

    // The panel's source first: without it nothing else is worth doing.
    let setup = panel::ensure_setup()?;
    mark("panel setup", &mut timings);
    let python = toolchain::python_venv(&PYTHON_REQUIREMENTS)?;
    let binaries = interop::build_debug()?;
    mark("python venv + debug build", &mut timings);
    let dir = interop::scratch_dir("panel-check")?;

    let stdio_panel = PanelInstance::start(&setup, "mcp-stdio")?;
    let http_panel = PanelInstance::start(&setup, "mcp-http")?;
    let auth_panel = PanelInstance::start(&setup, "mcp-auth")?;
    let git = GitHttp::start(&setup.git_root)?;
    mark("three panels and the git HTTP server started", &mut timings);

    let stdio_config = dir.join("stdio.toml");
    std::fs::write(
        &stdio_config,
        format!(
            "# Written by cargo xtask panel.\n[security]\naudit_log = \"audit-stdio.jsonl\"\n\n\
             {REPOSITORY_CONFIG}"
        ),
    )?;
    let (http_server, key) = start_http_server(&binaries.server, &dir, http_panel.base_url())?;
    mark("webops-mcp http started", &mut timings);

    let server_bin = binaries.server.display().to_string();
    let common = |panel: &PanelInstance| -> Vec<String> {
        let mut args = vec![
            "--server-bin".to_owned(),
            server_bin.clone(),
            "--panel-url".to_owned(),
            panel.base_url().to_owned(),
            "--panel-log".to_owned(),
            panel.log_path().display().to_string(),
            "--panel-db".to_owned(),
            panel.dir().join("db.sqlite3").display().to_string(),
            "--deploy-repo".to_owned(),
            git.url(DEPLOY_REPO),
            "--unclonable-repo".to_owned(),
            git.url(UNCLONABLE_REPO),
            "--fixture".to_owned(),
            FIXTURE_DEPLOYMENT.to_owned(),
            "--user".to_owned(),
            ALICE.to_owned(),
            "--out-dir".to_owned(),
            dir.display().to_string(),
            "--log-level".to_owned(),
            SERVER_LOG_LEVEL.to_owned(),
        ];
        args.extend([
            "--bob".to_owned(),
            BOB.to_owned(),
            "--fixture-logs".to_owned(),
            serde_json::to_string(&FIXTURE_LOGS).unwrap_or_default(),
        ]);
        args
    };
    let mut stdio_args = common(&stdio_panel);
    stdio_args.extend([
        "--transport".to_owned(),
        "stdio".to_owned(),
        "--stdio-config".to_owned(),
        stdio_config.display().to_string(),
        "--auth-panel-url".to_owned(),
        auth_panel.base_url().to_owned(),
        "--auth-panel-log".to_owned(),
        auth_panel.log_path().display().to_string(),
    ]);
    let mut http_args = common(&http_panel);
    http_args.extend([
        "--transport".to_owned(),
        "http".to_owned(),
        "--http-url".to_owned(),
        http_server.url.clone(),
    ]);
    let runs = [
        RunSpec {
            label: "stdio",
            panel: &stdio_panel,
            args: stdio_args,
            env: vec![],
        },
        RunSpec {
            label: "http",
            panel: &http_panel,
            args: http_args,
            env: vec![("WEBOPS_MCP_KEY", key.key.clone())],
        },
    ];

    eprintln!(
        "panel: the stdio and HTTP runs go in parallel (paced by the 20-requests-per-minute \
         budget; output in {})",
        dir.display()
    );
    let script = workspace_root().join("xtask/python/check_panel.py");
    let outcomes: Vec<(String, Result<()>, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|run| {
                let (python, script, dir) = (&python, &script, &dir);
                scope.spawn(move || {
                    let begun = Instant::now();
                    let result = run_script(python, script, dir, run);
                    (run.label.to_owned(), result, begun.elapsed())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    (
                        "?".to_owned(),
                        Err(anyhow::anyhow!("the script thread panicked")),
                        Duration::ZERO,
                    )
                })
            })
            .collect()
    });
    mark("both script runs (in parallel)", &mut timings);
    let http_log_tail = http_server.log_tail();
    drop(http_server);

    let mut checks = Checks::default();
    for (label, result, took) in outcomes {
        eprintln!(
            "\n===== {label} run ({:.0} s): {} =====",
            took.as_secs_f64(),
            dir.join(format!("script-{label}.log")).display()
        );
        eprint!(
            "{}",
            std::fs::read_to_string(dir.join(format!("script-{label}.log"))).unwrap_or_default()
        );
        add_script_checks(&mut checks, &dir, &label);
        checks.run(&format!("{label}: the script ran to its end"), || {
            result.map_err(|e| {
                if label == "http" {
                    anyhow::anyhow!("{e:#}\n{http_log_tail}")
                } else {
                    e
                }
            })
        });
    }
    eprintln!("\n===== after the runs =====");
    for panel in [&stdio_panel, &http_panel, &auth_panel] {
        checks.run(
            &format!(
                "panel {}: no 429 and no refused rate-limit check in its whole log",
                panel.name()
            ),
            || no_rate_limit_hits(panel.log_path()),
        );
    }
    checks.run(
        "zero secrets: no fixture secret unmasked in any tool output, server log, audit log or \
         script output",
        || no_secrets(&dir),
    );
    checks.run(
        "the panel cloned the fixture repository over HTTP, and found no repository at the \
         unclonable URL",
        || cloned_over_http(&git.requests()),
    );
    drop(git);
    for file in [
        "audit-stdio.jsonl",
        "audit-http.jsonl",
        "audit-stdio-wrong-password.jsonl",
        "audit-stdio-two-factor.jsonl",
    ] {
        checks.run(&format!("{file}: written, hash chain intact"), || {
            let path = dir.join(file);
            if !path.is_file() {
                bail!("{} was not written", path.display());
            }
            interop::verify_audit(&binaries.server, &path)
        });
    }
    drop(auth_panel);
    drop(http_panel);
    drop(stdio_panel);

    eprintln!("\npanel: timings");
    for (what, took) in &timings {
        eprintln!("  {:>6.1} s  {what}", took.as_secs_f64());
    }
    eprintln!("  {:>6.1} s  in all", started.elapsed().as_secs_f64());
    let (passed, failed) = checks.counts();
    eprintln!("panel: {passed} passed, {failed} failed");
    checks.finish("panel")
}

/// `webops-mcp http` on a free loopback port with one admin API key, logging in to the panel
/// at `panel_url` as alice (flavour auto); returns it and the key.
fn start_http_server(
    server: &Path,
    dir: &Path,
    panel_url: &str,
) -> Result<(ServerProcess, ApiKey)> {
    let key = ApiKey::generate(server)?;
    let config = dir.join("http.toml");
    std::fs::write(
        &config,
        format!(
            "# Written by cargo xtask panel: one admin key (digest only).\n\
             [[auth.api_keys]]\nuser_id = \"panel-check\"\nkey_sha256 = \"{}\"\n\
             permissions = [\"admin:*\"]\n\n\
             [security]\naudit_log = \"audit-http.jsonl\"\n\n{REPOSITORY_CONFIG}",
            key.digest
        ),
    )?;
    let mut cmd = Command::new(server);
    cmd.args(["--log-level", SERVER_LOG_LEVEL, "--config"])
        .arg(&config)
        .args(["http", "--bind", "127.0.0.1:0"])
        .current_dir(dir);
    webops_env(&mut cmd, panel_url);
    let marker = "serving MCP over Streamable HTTP";
    let server = ServerProcess::start_until(cmd, &dir.join("http-server.log"), marker, |line| {
        if !line.contains(marker) {
            return None;
        }
        let address = line.split("address=").nth(1)?.split_whitespace().next()?;
        Some(format!("http://{address}/mcp"))
    })?;
    eprintln!(
        "panel: webops-mcp http serves {} (WebOps: {panel_url})",
        server.url
    );
    Ok((server, key))
}

/// The WebOps environment of a server that logs in to the panel at `panel_url` as alice, with
/// the default flavour (auto) and nothing inherited that could point it elsewhere.
fn webops_env(cmd: &mut Command, panel_url: &str) {
    for name in [
        "WEBOPS_API_KEY",
        "WEBOPS_API_FLAVOR",
        "WEBOPS_API_VERSION",
        "WEBOPS_MCP_CONFIG",
        "RUST_LOG",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("WEBOPS_API_URL", panel_url)
        .env("WEBOPS_USERNAME", ALICE)
        .env("WEBOPS_PASSWORD", ALICE_PASSWORD);
}

/// Runs the script for one transport; its stdout and stderr go to `script-<label>.log`. Exit
/// 0 (all passed) and 1 (checks failed, named in its summary) are both a run to the end.
fn run_script(python: &Path, script: &Path, dir: &Path, run: &RunSpec<'_>) -> Result<()> {
    let log = dir.join(format!("script-{}.log", run.label));
    let file = std::fs::File::create(&log)?;
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(&run.args)
        .arg("--label")
        .arg(run.label)
        // Passwords go through the environment, never the command line.
        .env("WEBOPS_CHECK_PASSWORD", ALICE_PASSWORD)
        .env("WEBOPS_CHECK_BOB_PASSWORD", BOB_PASSWORD)
        .envs(run.env.iter().map(|(k, v)| (k, v)))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .current_dir(dir);
    let what = format!(
        "the {} run against panel {} ({})",
        run.label,
        run.panel.name(),
        run.panel.base_url()
    );
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    let status = interop::wait_within(&mut child, SCRIPT_TIMEOUT).with_context(|| what.clone())?;
    match status.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!("{what} ended with {status}"),
    }
}

/// The script's own checks (`summary-<label>.json`: `passed` and `failed` names) as checks here.
fn add_script_checks(checks: &mut Checks, dir: &Path, label: &str) {
    let path = dir.join(format!("summary-{label}.json"));
    let summary: Value = match std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(v) => v,
        None => {
            checks.run(&format!("{label}: the script wrote its summary"), || {
                bail!("{} is missing or not JSON", path.display())
            });
            return;
        }
    };
    let passed = summary["passed"].as_array().map_or(0, Vec::len);
    let failed = summary["failed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{label}: {}: {}",
                f["check"].as_str().unwrap_or("?"),
                f["why"].as_str().unwrap_or("?")
            )
        })
        .collect();
    checks.absorb(passed, failed);
}

/// The git server's log shows at least one clone of [`DEPLOY_REPO`] (its refs read, then a
/// pack fetched) and a 404 for [`UNCLONABLE_REPO`].
fn cloned_over_http(requests: &[String]) -> Result<()> {
    let count = |wanted: String| requests.iter().filter(|r| **r == wanted).count();
    let refs = count(format!("200 GET /{DEPLOY_REPO}/info/refs"));
    let packs = count(format!("200 POST /{DEPLOY_REPO}/git-upload-pack"));
    let missing = count(format!("404 GET /{UNCLONABLE_REPO}/info/refs"));
    if refs == 0 || packs == 0 || missing == 0 {
        bail!(
            "expected a clone of {DEPLOY_REPO} and a miss of {UNCLONABLE_REPO}, got {refs} refs \
             reads, {packs} pack fetches and {missing} misses: {requests:?}"
        );
    }
    eprintln!(
        "  (git over HTTP: {} requests, {packs} pack fetches of {DEPLOY_REPO}, {missing} misses)",
        requests.len()
    );
    Ok(())
}

/// No access line with status 429 and no `allowed=False` rate-limit line in a panel's log.
fn no_rate_limit_hits(log: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let hits: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.contains("allowed=False")
                || (line.contains(" HTTP/1.") && line.contains("\" 429 "))
        })
        .collect();
    let requests = text.lines().filter(|l| l.contains(" HTTP/1.1\" ")).count();
    if !hits.is_empty() {
        bail!(
            "{} rate-limit hit(s) among {requests} requests in {}, first: {}",
            hits.len(),
            log.display(),
            hits[0]
        );
    }
    eprintln!(
        "  ({}: {requests} HTTP/1.1 requests, none limited)",
        log.display()
    );
    Ok(())
}

/// What must never appear: the fixture secrets, each with a distinctive part of it (a
/// mask that keeps a prefix may show the start of a value, never its end).
fn secrets() -> Vec<(&'static str, &'static str)> {
    vec![
        ("alice's password", ALICE_PASSWORD),
        (
            "alice's password (its end)",
            &ALICE_PASSWORD[ALICE_PASSWORD.len() - 10..],
        ),
        ("bob's password", BOB_PASSWORD),
        ("the fixture SECRET_KEY", FIXTURE_APP_SECRET_KEY),
        (
            "the fixture SECRET_KEY (its end)",
            &FIXTURE_APP_SECRET_KEY[FIXTURE_APP_SECRET_KEY.len() - 16..],
        ),
        ("the .env API_TOKEN", FIXTURE_API_TOKEN),
        (
            "the .env API_TOKEN (its end)",
            &FIXTURE_API_TOKEN[FIXTURE_API_TOKEN.len() - 12..],
        ),
        ("the database password", FIXTURE_DB_PASSWORD),
        (
            "the database password (its end)",
            &FIXTURE_DB_PASSWORD[FIXTURE_DB_PASSWORD.len() - 9..],
        ),
    ]
}

/// Every file under `dir` (tool outputs, server stderr logs, audit logs, the scripts' output)
/// is free of [`secrets`].
fn no_secrets(dir: &Path) -> Result<()> {
    let files = files_under(dir)?;
    let mut scanned = 0usize;
    let mut bytes = 0usize;
    let mut found = Vec::new();
    for file in &files {
        let Ok(data) = std::fs::read(file) else {
            continue;
        };
        scanned += 1;
        bytes += data.len();
        let text = String::from_utf8_lossy(&data);
        for (what, value) in secrets() {
            if let Some(at) = text.find(value) {
                let line = text[..at].matches('\n').count() + 1;
                found.push(format!("{what} in {}:{line}", file.display()));
            }
        }
    }
    let must_exist = [
        "outputs-stdio.jsonl",
        "outputs-http.jsonl",
        "http-server.log",
    ];
    for name in must_exist {
        if !dir.join(name).is_file() {
            bail!("{} was not written, so it could not be scanned", name);
        }
    }
    if !found.is_empty() {
        bail!("{}", found.join("; "));
    }
    eprintln!(
        "  (scanned {scanned} files, {} KiB, for {} secret strings)",
        bytes / 1024,
        secrets().len()
    );
    Ok(())
}

fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_token_is_the_fixture_env_files() {
        assert!(panel::FIXTURE_DOTENV.contains(&format!("API_TOKEN={FIXTURE_API_TOKEN}\n")));
    }

    #[test]
    fn clones_over_http_are_recognised() {
        let log: Vec<String> = [
            format!("200 GET /{DEPLOY_REPO}/info/refs"),
            format!("200 POST /{DEPLOY_REPO}/git-upload-pack"),
            format!("404 GET /{UNCLONABLE_REPO}/info/refs"),
        ]
        .into();
        assert!(cloned_over_http(&log).is_ok());
        assert!(cloned_over_http(&log[..2]).is_err());
        assert!(cloned_over_http(&log[1..]).is_err());
        assert!(cloned_over_http(&[]).is_err());
    }

    #[test]
    fn rate_limit_hits_are_found() {
        let dir = std::env::temp_dir().join(format!("panel-check-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("panel.log");
        std::fs::write(
            &log,
            "Rate limit check for 127.0.0.1 on /api/deployments/: allowed=True\n\
             INFO \"GET /api/deployments/ HTTP/1.1\" 200 371\n",
        )
        .unwrap();
        assert!(no_rate_limit_hits(&log).is_ok());
        std::fs::write(&log, "WARNING \"GET /api/deployments/ HTTP/1.1\" 429 120\n").unwrap();
        assert!(no_rate_limit_hits(&log).is_err());
        std::fs::write(
            &log,
            "Rate limit check for 127.0.0.1 on /api/deployments/: allowed=False\n",
        )
        .unwrap();
        assert!(no_rate_limit_hits(&log).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
