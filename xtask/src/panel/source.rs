//! Where the panel's source comes from: a WebOps checkout (`WEBOPS_PANEL_SRC`) or a
//! `webops-*.tar.gz` (`WEBOPS_PANEL_TARBALL`) extracted into `.cache/webops-panel/src`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::run;

/// Where the panel's source comes from.
pub(super) enum Source {
    /// A checkout with `control-panel/` and `cli/`.
    Checkout(PathBuf),
    /// A `webops-*.tar.gz`.
    Tarball(PathBuf),
}

pub(super) fn source() -> Result<Source> {
    if let Some(dir) = std::env::var_os("WEBOPS_PANEL_SRC").filter(|v| !v.is_empty()) {
        let dir = std::path::absolute(PathBuf::from(dir))?;
        if !dir.join("control-panel/manage.py").is_file() {
            bail!(
                "WEBOPS_PANEL_SRC={} is not a WebOps checkout (no control-panel/manage.py)",
                dir.display()
            );
        }
        return Ok(Source::Checkout(dir));
    }
    if let Some(file) = std::env::var_os("WEBOPS_PANEL_TARBALL").filter(|v| !v.is_empty()) {
        let file = std::path::absolute(PathBuf::from(file))?;
        if !file.is_file() {
            bail!("WEBOPS_PANEL_TARBALL={} does not exist", file.display());
        }
        return Ok(Source::Tarball(file));
    }
    bail!(
        "the real WebOps panel's source is needed: set WEBOPS_PANEL_TARBALL to the path of a \
         webops-<commit>.tar.gz (the WebOps repository at some commit: control-panel/ and cli/ \
         under one top directory), or WEBOPS_PANEL_SRC to a WebOps checkout that has \
         control-panel/ and cli/"
    )
}

fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Extracts `tarball` into `<root>/src` unless the stamp says it already is; returns the
/// directory holding `control-panel/` and the tarball's digest.
pub(super) fn extract(tarball: &Path, root: &Path) -> Result<(PathBuf, String)> {
    let dest = root.join("src");
    let stamp = root.join("src.stamp");
    let digest = sha256_file(tarball)?;
    let id = format!("tarball sha256 {digest}");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(id.as_str()) {
        if dest.exists() {
            std::fs::remove_dir_all(&dest)
                .with_context(|| format!("cannot empty {}", dest.display()))?;
        }
        std::fs::create_dir_all(&dest)?;
        run(Command::new("tar")
            .arg("-xzf")
            .arg(tarball)
            .arg("-C")
            .arg(&dest))
        .context("extracting the WebOps panel tarball")?;
        std::fs::write(&stamp, &id)?;
    }
    // The tarball has one top directory (`webops/`); accept a flat one too.
    if dest.join("control-panel").is_dir() {
        return Ok((dest, id));
    }
    for entry in std::fs::read_dir(&dest)? {
        let path = entry?.path();
        if path.join("control-panel").is_dir() {
            return Ok((path, id));
        }
    }
    bail!("{} holds no control-panel/", tarball.display())
}
