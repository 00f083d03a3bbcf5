//! `cargo xtask python-client`: the official MCP Python SDK against `webops-mcp`.

use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

use super::process::{build_debug, run_within, scratch_dir};
use super::{HttpDemo, registry_tool_names, verify_audit};
use crate::toolchain::{self, PYTHON_REQUIREMENTS};
use crate::workspace_root;

/// How long the whole Python client run may take.
const PYTHON_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs `xtask/python/check_client.py` (the official Python SDK) against `webops-mcp` over
/// stdio and Streamable HTTP, in the SDK's legacy and auto modes.
pub(crate) fn python_client() -> Result<()> {
    let python = toolchain::python_venv(&PYTHON_REQUIREMENTS)?;
    let binaries = build_debug()?;
    let dir = scratch_dir("python-client")?;
    let stdio_config = dir.join("stdio.toml");
    std::fs::write(
        &stdio_config,
        "# Written by cargo xtask python-client.\n[security]\naudit_log = \"audit-stdio.jsonl\"\n\n\
         # Resource change notifications, polled every second (the admin runs wait for one).\n\
         [resources]\npoll_interval_secs = 1\n",
    )?;
    let demo = HttpDemo::start(&binaries.server, &dir)?;
    let script = workspace_root().join("xtask/python/check_client.py");
    let (all_tools, read_tools) = registry_tool_names()?;
    let mut cmd = Command::new(&python);
    cmd.arg(&script)
        .arg("--tools")
        .arg(all_tools.join(","))
        .arg("--read-tools")
        .arg(read_tools.join(","))
        .arg("--server-bin")
        .arg(&binaries.server)
        .arg("--stdio-config")
        .arg(&stdio_config)
        .arg("--http-url")
        .arg(&demo.server.url)
        // Keys go through the environment, never the command line.
        .env("WEBOPS_MCP_ADMIN_KEY", &demo.admin.key)
        .env("WEBOPS_MCP_VIEWER_KEY", &demo.viewer.key)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&dir);
    eprintln!("$ {} {} ...", python.display(), script.display());
    if let Err(e) = run_within(&mut cmd, PYTHON_TIMEOUT) {
        bail!("{e:#}\n{}", demo.server.log_tail());
    }
    verify_audit(&binaries.server, &dir.join("audit-http.jsonl"))?;
    verify_audit(&binaries.server, &dir.join("audit-stdio.jsonl"))?;
    eprintln!("python-client: OK");
    Ok(())
}
