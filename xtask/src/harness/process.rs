//! Release binaries, temporary directories, child processes that die with us, random keys,
//! and RSS and CPU-time readings.

use std::fs::File;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::{cargo_command, run, workspace_root};

/// How long a started process may take to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The release binaries the measurements run.
pub(crate) struct Binaries {
    /// `webops-mcp`.
    pub(crate) server: PathBuf,
    /// `webops-mock` (the testkit's mock WebOps API).
    pub(crate) mock: PathBuf,
}

/// The binaries in `bin_dir` when given (e.g. a profiling build), else `webops-mcp` and
/// `webops-mock` built in release mode (honouring `CARGO_TARGET_DIR`).
pub(crate) fn binaries(bin_dir: Option<&Path>) -> Result<Binaries> {
    let release = match bin_dir {
        Some(dir) => dir.to_path_buf(),
        None => build_release()?,
    };
    let binaries = Binaries {
        server: release.join("webops-mcp"),
        mock: release.join("webops-mock"),
    };
    for bin in [&binaries.server, &binaries.mock] {
        if !bin.is_file() {
            bail!("{} does not exist", bin.display());
        }
    }
    Ok(binaries)
}

fn build_release() -> Result<PathBuf> {
    run(cargo_command().args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "webops-mcp-server",
        "-p",
        "webops-mcp-testkit",
        "--bins",
    ]))?;
    Ok(target_dir().join("release"))
}

/// The server of git revision `rev`, built in release mode from a temporary worktree (into
/// the workspace's own target directory, so only the workspace's crates compile) and copied
/// to `into`. Call it before [`binaries`]: the build of `rev` replaces the release binaries
/// there until the current sources are built again.
pub(crate) fn baseline_server(rev: &str, into: &TempDir) -> Result<PathBuf> {
    let checkout = into.join("src");
    run(Command::new("git")
        .arg("-C")
        .arg(workspace_root())
        .args(["worktree", "add", "--detach", "--quiet"])
        .arg(&checkout)
        .arg(rev))?;
    let worktree = Worktree(checkout);
    eprintln!("bench: building {rev} in release mode (a temporary worktree)");
    run(cargo_command()
        .current_dir(&worktree.0)
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "webops-mcp-server",
            "--bin",
            "webops-mcp",
        ]))?;
    let server = into.join("webops-mcp");
    std::fs::copy(target_dir().join("release").join("webops-mcp"), &server)
        .with_context(|| format!("copying the server of {rev}"))?;
    Ok(server)
}

/// A temporary git worktree, removed (with `git worktree remove --force`) on drop.
struct Worktree(PathBuf);

impl Drop for Worktree {
    fn drop(&mut self) {
        let _ = Command::new("git")
            .arg("-C")
            .arg(workspace_root())
            .args(["worktree", "remove", "--force"])
            .arg(&self.0)
            .status();
    }
}

/// In a debug build of xtask (what `cargo xtask` runs), rebuilds xtask in release mode and
/// runs `xtask <command> <args>` from it, so the load generator does not measure its own
/// unoptimized HTTP stack; returns `false` when this process already is optimized.
pub(crate) fn rerun_optimized(command: &str, args: &[String]) -> Result<bool> {
    if !cfg!(debug_assertions) {
        return Ok(false);
    }
    run(cargo_command().args(["build", "--release", "--quiet", "-p", "xtask"]))?;
    let xtask = target_dir().join("release").join("xtask");
    let status = Command::new(&xtask)
        .arg(command)
        .args(args)
        .status()
        .with_context(|| format!("running {}", xtask.display()))?;
    if !status.success() {
        bail!("{command} failed ({status})");
    }
    Ok(true)
}

/// `CARGO_TARGET_DIR` (relative to the workspace root) or `<root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path =
            std::env::temp_dir().join(format!("webops-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed (and reaped) on drop; its stderr goes to a file shown on failure.
pub(crate) struct Proc {
    name: String,
    child: Child,
    stderr: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdin and stdout closed and stderr to `stderr`.
    pub(crate) fn spawn(name: &str, cmd: &mut Command, stderr: PathBuf) -> Result<Proc> {
        let log =
            File::create(&stderr).with_context(|| format!("creating {}", stderr.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails (with the end of its stderr) when the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited with {status}; the end of its stderr:\n{}",
                self.name,
                tail_of(&self.stderr, 2000)
            );
        }
        Ok(())
    }

    /// The end of its stderr, for error messages.
    pub(crate) fn stderr_tail(&self) -> String {
        tail_of(&self.stderr, 2000)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn tail_of(path: &Path, max: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_string(&mut text);
    }
    let start = text.len().saturating_sub(max);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

/// A free loopback port (bound and released; the short race is harmless here).
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh random key and the hex SHA-256 digest the server configuration holds.
pub(crate) fn new_key(prefix: &str) -> Result<(String, String)> {
    let mut bytes = [0u8; 24];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    let key = format!("{prefix}{}", hex::encode(bytes));
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    Ok((key, digest))
}

/// Resident set size of a process, from `/proc/<pid>/status`.
pub(crate) fn rss_of_pid(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .context("no VmRSS line in /proc/<pid>/status")?;
    Ok(kb * 1024)
}

/// User + system CPU time a process has used, from `/proc/<pid>/stat` (clock ticks of
/// 1/100 s, Linux's USER_HZ on every common architecture).
pub(crate) fn cpu_of_pid(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, inside parentheses); utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .context("malformed /proc/<pid>/stat")
    };
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// `GET url` until it answers 200, or fail after [`READY_TIMEOUT`].
pub(crate) async fn wait_ready(http: &reqwest::Client, url: &str, proc: &mut Proc) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        proc.check_alive()?;
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{url} did not answer within {READY_TIMEOUT:?}; stderr:\n{}",
                proc.stderr_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `process_resident_memory_bytes` from a server's `/metrics`.
pub(crate) async fn rss_from_metrics(
    http: &reqwest::Client,
    metrics_url: &str,
    key: &str,
) -> Result<u64> {
    let text = http
        .get(metrics_url)
        .bearer_auth(key)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .with_context(|| format!("{metrics_url} has no process_resident_memory_bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_rss_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_of_pid(pid).unwrap() > 0);
        assert!(cpu_of_pid(pid).is_ok());
        assert!(rss_of_pid(u32::MAX).is_err());
    }
}
