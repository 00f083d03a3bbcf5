//! Interoperability with clients we did not write: the official MCP Python SDK
//! (`cargo xtask python-client`) and the MCP Inspector CLI (`cargo xtask inspector`), plus the
//! plumbing they share with `cargo xtask conformance`: the debug binaries, scratch directories
//! under `.cache/`, API keys from `webops-mcp hash-key`, and server processes that are always
//! stopped (a guard kills them on drop, also when a check fails or panics).
//!
//! `process.rs` holds the process plumbing (debug binaries, [`ServerProcess`], waits with a
//! limit), `checks.rs` the [`Checks`] tally, `python.rs` and `inspector.rs` the two checks.

mod checks;
mod inspector;
mod process;
mod python;

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail};

pub(crate) use checks::Checks;
pub(crate) use inspector::inspector;
pub(crate) use process::{
    ServerProcess, build_debug, output_within, scratch_dir, tail, wait_within,
};
pub(crate) use python::python_client;

use crate::{tidy, workspace_root};

/// The registry's tools, all of them and those that only read (from the tool snapshots, see
/// [`tidy::registry_tools`]): what tools/list shows the admin and the viewer key.
fn registry_tool_names() -> Result<(Vec<String>, Vec<String>)> {
    let tools = tidy::registry_tools(&workspace_root())?;
    let read = tools
        .iter()
        .filter(|t| t.access == "read")
        .map(|t| t.name.clone())
        .collect();
    Ok((tools.into_iter().map(|t| t.name).collect(), read))
}

/// What the viewer key of the interop configuration may do: the read tools.
const VIEWER_PERMISSIONS: &str = r#"["deploy:read", "logs:read", "system:read", "security:audit"]"#;

/// A fresh API key and its SHA-256 digest, made by `webops-mcp hash-key`.
pub(crate) struct ApiKey {
    pub(crate) key: String,
    pub(crate) digest: String,
}

impl ApiKey {
    pub(crate) fn generate(server: &Path) -> Result<ApiKey> {
        let out = Command::new(server)
            .arg("hash-key")
            .output()
            .context("running webops-mcp hash-key")?;
        if !out.status.success() {
            bail!("webops-mcp hash-key failed with {}", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let word = |prefix: &str| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with(prefix))
                .map(str::to_owned)
        };
        let key = word(KEY_PREFIX).context("hash-key printed no key")?;
        let digest = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("key_sha256 = \""))
            .and_then(|l| l.strip_suffix('"'))
            .context("hash-key printed no digest")?
            .to_owned();
        Ok(ApiKey { key, digest })
    }
}

/// The prefix of the keys `webops-mcp hash-key` makes.
const KEY_PREFIX: &str = "wmcp_";

/// A running `webops-mcp http --demo` with an admin and a viewer API key.
struct HttpDemo {
    server: ServerProcess,
    admin: ApiKey,
    viewer: ApiKey,
}

impl HttpDemo {
    /// Writes `http.toml` into `dir` (two keys, audit log `audit-http.jsonl`, resource change
    /// notifications every second) and starts the server on a free loopback port.
    fn start(server_bin: &Path, dir: &Path) -> Result<HttpDemo> {
        let admin = ApiKey::generate(server_bin)?;
        let viewer = ApiKey::generate(server_bin)?;
        let config = dir.join("http.toml");
        std::fs::write(
            &config,
            format!(
                "# Written by cargo xtask: an admin and a read-only key (digests only).\n\
                 [[auth.api_keys]]\nuser_id = \"interop-admin\"\nkey_sha256 = \"{}\"\n\
                 permissions = [\"admin:*\"]\n\n\
                 [[auth.api_keys]]\nuser_id = \"interop-viewer\"\nkey_sha256 = \"{}\"\n\
                 permissions = {VIEWER_PERMISSIONS}\n\n\
                 [security]\naudit_log = \"audit-http.jsonl\"\n\n\
                 # Resource change notifications, polled every second.\n\
                 [resources]\npoll_interval_secs = 1\n",
                admin.digest, viewer.digest
            ),
        )?;
        let mut cmd = Command::new(server_bin);
        cmd.arg("--config")
            .arg(&config)
            .args(["http", "--demo", "--bind", "127.0.0.1:0"])
            .current_dir(dir);
        let server = ServerProcess::start(cmd, &dir.join("http-server.log"), "MCP endpoint:")?;
        eprintln!("interop: webops-mcp http --demo serves {}", server.url);
        Ok(HttpDemo {
            server,
            admin,
            viewer,
        })
    }
}

/// `webops-mcp audit verify FILE`: the server's audit hash chain is intact after the run.
pub(crate) fn verify_audit(server_bin: &Path, file: &Path) -> Result<()> {
    let out = Command::new(server_bin)
        .args(["audit", "verify"])
        .arg(file)
        .output()
        .context("running webops-mcp audit verify")?;
    let report = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "audit log {} failed verification: {}{}",
            file.display(),
            report.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprintln!("interop: {}", report.trim());
    Ok(())
}
