//! Process plumbing shared by the interop, conformance and panel checks: the debug binaries,
//! scratch directories under `.cache/`, server processes killed on drop, and commands run with a
//! time limit.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{cargo_command, run, workspace_root};

/// How long a started server may take to print its address (debug build, loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The debug binaries the checks run.
pub(crate) struct DebugBinaries {
    /// `webops-mcp`.
    pub(crate) server: PathBuf,
    /// The conformance fixture (`webops-mcp-server/examples/conformance_server.rs`).
    pub(crate) fixture: PathBuf,
}

/// Builds (or finds up to date) the debug `webops-mcp` and the conformance fixture. The
/// selection and features are those of `cargo test --workspace --all-features`, so after the
/// tests this is a no-op: with `-p webops-mcp-server` alone cargo would unify features
/// differently and rebuild the server.
pub(crate) fn build_debug() -> Result<DebugBinaries> {
    run(cargo_command().args([
        "build",
        "--quiet",
        "--workspace",
        "--all-features",
        "--bins",
        "--examples",
    ]))?;
    let debug = target_dir()?.join("debug");
    let binaries = DebugBinaries {
        server: debug.join(exe("webops-mcp")),
        fixture: debug.join("examples").join(exe("conformance_server")),
    };
    for path in [&binaries.server, &binaries.fixture] {
        if !path.exists() {
            bail!("{} was not built", path.display());
        }
    }
    Ok(binaries)
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, `.cargo/config.toml` and all).
fn target_dir() -> Result<PathBuf> {
    let out = cargo_command()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed with {}", out.status);
    }
    let metadata: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata names no target_directory")
}

/// `.cache/<name>/`, emptied: where a check writes its configuration, logs and results.
pub(crate) fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = workspace_root().join(".cache").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A server child process, killed when dropped. Its stdout and stderr go to a log file.
pub(crate) struct ServerProcess {
    child: Child,
    /// The MCP endpoint it printed.
    pub(crate) url: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `cmd` (stdin kept open, both output streams copied to `log`) and waits until a
    /// line of its output contains `marker` followed by an `http://` URL.
    pub(crate) fn start(cmd: Command, log: &Path, marker: &str) -> Result<ServerProcess> {
        Self::start_until(cmd, log, marker, |line| url_after(line, marker))
    }

    /// Like [`ServerProcess::start`], but ready at the first line for which `url_in` gives the
    /// endpoint; `what_line` describes that line in errors.
    pub(crate) fn start_until(
        mut cmd: Command,
        log: &Path,
        what_line: &str,
        url_in: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerProcess> {
        let what = describe_program(&cmd);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not start {what}"))?;
        let file = Arc::new(Mutex::new(
            File::create(log).with_context(|| format!("cannot create {}", log.display()))?,
        ));
        let (tx, rx) = mpsc::channel::<String>();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let (file, tx) = (file.clone(), tx.clone());
            // Drains the pipe for the whole life of the process, so it never blocks on a full pipe.
            thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                    let _ = writeln!(file, "{line}");
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let mut server = ServerProcess {
            child,
            url: String::new(),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(url) = url_in(&line) {
                        server.url = url;
                        return Ok(server);
                    }
                }
                Err(RecvTimeoutError::Timeout) => bail!(
                    "{what} printed no {what_line:?} within {} s\n{}",
                    READY_TIMEOUT.as_secs(),
                    server.log_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().ok();
                    bail!(
                        "{what} exited ({}) before it was ready\n{}",
                        status.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                        server.log_tail()
                    )
                }
            }
        }
    }

    /// The last lines of the server's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `http://…` URL that follows `marker` in `line`.
fn url_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let start = rest.find("http://")?;
    let url = rest[start..].split_whitespace().next()?;
    Some(url.to_owned())
}

/// The last `lines` lines of a file, indented, with its path.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let mut out = format!("--- last lines of {} ---\n", path.display());
    for line in &all[all.len().saturating_sub(lines)..] {
        let _ = writeln!(out, "  {line}");
    }
    out
}

fn describe_program(cmd: &Command) -> String {
    Path::new(cmd.get_program()).file_name().map_or_else(
        || "process".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// What a finished process left: exit status and both outputs.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `cmd` to completion with its output captured, killing it after `limit`.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> Result<Finished> {
    let what = describe_program(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {what}"))?;
    let read = |stream: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = wait_within(&mut child, limit).with_context(|| format!("{what} timed out"))?;
    Ok(Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Runs `cmd` with inherited output, killing it after `limit`; fails on a non-zero exit.
pub(crate) fn run_within(cmd: &mut Command, limit: Duration) -> Result<()> {
    let what = describe_program(cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start {what}"))?;
    let status = wait_within(&mut child, limit).with_context(|| format!("{what} timed out"))?;
    if !status.success() {
        bail!("{what} failed with {status}");
    }
    Ok(())
}

pub(crate) fn wait_within(child: &mut Child, limit: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("killed after {} s", limit.as_secs());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_their_marker() {
        assert_eq!(
            url_after("listening on http://127.0.0.1:4000/mcp", "listening on").as_deref(),
            Some("http://127.0.0.1:4000/mcp")
        );
        assert_eq!(
            url_after(
                "MCP endpoint: http://127.0.0.1:9/mcp (authenticate with the keys)",
                "MCP endpoint:"
            )
            .as_deref(),
            Some("http://127.0.0.1:9/mcp")
        );
        assert_eq!(url_after("MCP endpoint: none", "MCP endpoint:"), None);
        assert_eq!(url_after("http://x/mcp", "listening on"), None);
    }
}
