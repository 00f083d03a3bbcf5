//! Setting the panel up once for every instance: the Python 3.11 venv, the Fernet key, the
//! deploy test's git repositories (served over HTTP by [`super::GitHttp`]) and the migrated,
//! seeded template database; and the
//! `manage.py` / python commands with the panel's environment.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use super::source::{Source, extract, source};
use super::{
    ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, DEPLOY_REPO, FIXTURE_APP_SECRET_KEY,
    FIXTURE_DATABASES, FIXTURE_DB_PASSWORD, FIXTURE_DEPLOYMENT, FIXTURE_LOGS, FIXTURE_REPO_URL,
    PANEL_REQUIREMENTS, PanelSetup,
};
use crate::interop::tail;
use crate::{run, toolchain, workspace_root};

/// The Django `SECRET_KEY` of every panel instance (loopback only).
const PANEL_SECRET_KEY: &str = "webops-mcp-xtask-panel-not-a-secret-0123456789abcdefghij";

/// Finds or builds everything a panel instance needs; quick when nothing changed.
pub(crate) fn ensure_setup() -> Result<PanelSetup> {
    let started = Instant::now();
    let root = workspace_root().join(".cache").join("webops-panel");
    std::fs::create_dir_all(&root)?;
    let (checkout, source_id) = match source()? {
        Source::Checkout(dir) => {
            let id = format!("checkout {}", dir.display());
            (dir, id)
        }
        Source::Tarball(tarball) => extract(&tarball, &root)?,
    };
    let control_panel = checkout.join("control-panel");
    let system_templates = checkout.join("cli/webops_cli/system-templates");
    for dir in [&control_panel, &system_templates] {
        if !dir.is_dir() {
            bail!(
                "the WebOps source at {} has no {}",
                checkout.display(),
                dir.display()
            );
        }
    }
    let python = venv(&root)?;
    let encryption_key = encryption_key(&root, &python)?;
    let git_root = deploy_repos(&root)?;
    let setup = PanelSetup {
        template_db: root.join("template/db.sqlite3"),
        root,
        control_panel,
        system_templates,
        python,
        encryption_key,
        git_root,
    };
    template_db(&setup, &source_id)?;
    eprintln!(
        "panel: set up in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        setup.root.display()
    );
    Ok(setup)
}

/// The python of `<root>/venv` (made by Python 3.11) with exactly [`PANEL_REQUIREMENTS`].
fn venv(root: &Path) -> Result<PathBuf> {
    toolchain::python_venv_at(&root.join("venv"), "python3.11", &PANEL_REQUIREMENTS)
        .context("setting up the panel's Python 3.11 venv")
}

/// A Fernet key made once by the venv's `cryptography` and kept in `<root>/fernet.key`.
fn encryption_key(root: &Path, python: &Path) -> Result<String> {
    let file = root.join("fernet.key");
    if let Ok(key) = std::fs::read_to_string(&file)
        && key.trim().len() == 44
    {
        return Ok(key.trim().to_owned());
    }
    let out = Command::new(python)
        .args([
            "-c",
            "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())",
        ])
        .output()
        .context("generating a Fernet key")?;
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || key.len() != 44 {
        bail!(
            "generating a Fernet key failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&file, &key)?;
    Ok(key)
}

/// `<root>/git/`, holding [`DEPLOY_REPO`] (created once: `git init --bare` plus one commit of
/// an `index.html` on `main`) and no [`super::UNCLONABLE_REPO`]; [`super::GitHttp`] serves it.
fn deploy_repos(root: &Path) -> Result<PathBuf> {
    let git_dir = root.join("git");
    let bare = git_dir.join(DEPLOY_REPO);
    if bare.join("refs/heads/main").is_file() {
        return Ok(git_dir);
    }
    if git_dir.exists() {
        std::fs::remove_dir_all(&git_dir)?;
    }
    let work = git_dir.join("static-site");
    std::fs::create_dir_all(&work)?;
    run(Command::new("git")
        .args(["init", "--quiet", "--bare", "--initial-branch=main"])
        .arg(&bare))?;
    run(Command::new("git")
        .args(["init", "--quiet", "--initial-branch=main"])
        .arg(&work))?;
    std::fs::write(
        work.join("index.html"),
        "<!doctype html>\n<title>static site</title>\n<h1>Deployed by cargo xtask panel</h1>\n",
    )?;
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&work)
            .args([
                "-c",
                "user.name=xtask",
                "-c",
                "user.email=xtask@example.invalid",
            ])
            .args(args);
        cmd
    };
    run(&mut git(&["add", "index.html"]))?;
    run(&mut git(&["commit", "--quiet", "-m", "static site"]))?;
    run(git(&["push", "--quiet"]).arg(&bare).arg("main"))?;
    Ok(git_dir)
}

/// The files whose content decides the template database.
fn helper(name: &str) -> PathBuf {
    workspace_root().join("xtask/panel").join(name)
}

/// Migrates and seeds `<root>/template/db.sqlite3` unless its stamp matches the source, the
/// helper scripts, the key and the fixtures.
fn template_db(setup: &PanelSetup, source_id: &str) -> Result<()> {
    let dir = setup.root.join("template");
    let stamp = dir.join(".seeded");
    let mut hasher = Sha256::new();
    let spec = fixture_spec().to_string();
    for part in [source_id, &setup.encryption_key, &spec] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    for file in ["webops_panel_settings.py", "seed_fixtures.py"] {
        hasher.update(std::fs::read(helper(file))?);
    }
    let wanted = hex::encode(hasher.finalize());
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && setup.template_db.is_file()
    {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    layout(setup, &dir)?;
    let started = Instant::now();
    let log = dir.join("migrate.log");
    run_logged(
        manage(setup, &dir).args(["migrate", "--noinput"]),
        &log,
        "manage.py migrate",
    )?;
    eprintln!(
        "panel: migrated in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let seed = File::open(helper("seed_fixtures.py"))?;
    run_logged(
        manage(setup, &dir)
            .arg("shell")
            .env("FIXTURE_SPEC", &spec)
            .stdin(seed),
        &dir.join("seed.log"),
        "seeding the panel's fixtures",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

/// The fixtures as `seed_fixtures.py` reads them (environment variable `FIXTURE_SPEC`).
fn fixture_spec() -> serde_json::Value {
    serde_json::json!({
        "alice": {"username": ALICE, "password": ALICE_PASSWORD},
        "bob": {"username": BOB, "password": BOB_PASSWORD},
        "deployment": {
            "name": FIXTURE_DEPLOYMENT,
            "repo_url": FIXTURE_REPO_URL,
            "env_vars": {"DEBUG": "True", "SECRET_KEY": FIXTURE_APP_SECRET_KEY, "ALLOWED_HOSTS": "*"},
        },
        "logs": FIXTURE_LOGS.map(|(level, message)| serde_json::json!({"level": level, "message": message})),
        "databases": FIXTURE_DATABASES.map(|(name, db_type, deployment)| serde_json::json!({
            "name": name, "db_type": db_type, "deployment": deployment,
        })),
        "db_password": FIXTURE_DB_PASSWORD,
    })
}

/// The directories a panel expects under its instance directory `dir`.
pub(super) fn layout(setup: &PanelSetup, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("webops/deployments"))?;
    // The panel loads its templates from the parent of WEBOPS_INSTALL_PATH.
    std::os::unix::fs::symlink(&setup.system_templates, dir.join("system-templates"))
        .context("linking system-templates")?;
    Ok(())
}

/// `python manage.py` for the instance directory `dir`, with the panel's environment (mode B
/// settings; [`PanelMode::Redis`](super::PanelMode::Redis) changes them in [`PanelInstance::start_with`](super::PanelInstance::start_with)).
pub(super) fn manage(setup: &PanelSetup, dir: &Path) -> Command {
    let mut cmd = python(setup, dir);
    cmd.arg("manage.py");
    cmd
}

/// The venv's python in `control-panel/`, with the panel's environment for instance `dir`.
pub(super) fn python(setup: &PanelSetup, dir: &Path) -> Command {
    let mut cmd = Command::new(&setup.python);
    cmd.current_dir(&setup.control_panel)
        .env("DJANGO_SETTINGS_MODULE", "webops_panel_settings")
        .env("PYTHONPATH", workspace_root().join("xtask/panel"))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DEBUG", "True")
        .env("SECRET_KEY", PANEL_SECRET_KEY)
        .env("ALLOWED_HOSTS", "127.0.0.1,localhost")
        .env(
            "DATABASE_URL",
            format!("sqlite:///{}", dir.join("db.sqlite3").display()),
        )
        .env("WEBOPS_INSTALL_PATH", dir.join("webops"))
        .env("ENCRYPTION_KEY", &setup.encryption_key)
        .env("GIT_PYTHON_REFRESH", "quiet")
        // Whatever the caller's shell has must not redirect the panel elsewhere.
        .env_remove("REDIS_URL")
        .env_remove("CELERY_BROKER_URL")
        .env_remove("CELERY_RESULT_BACKEND");
    cmd
}

/// Runs `cmd` with both outputs in `log`; on failure the error shows the log's tail.
fn run_logged(cmd: &mut Command, log: &Path, what: &str) -> Result<()> {
    let file = File::create(log)?;
    let status = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!("{what} failed with {status}\n{}", tail(log, 30));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_spec_is_what_the_constants_say() {
        let spec = fixture_spec();
        let logs: Vec<(&str, &str)> = spec["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                (
                    l["level"].as_str().unwrap_or(""),
                    l["message"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(logs, FIXTURE_LOGS);
        let databases = spec["databases"].as_array().map_or(0, Vec::len);
        assert_eq!(databases, 2);
        // Every database is visible to alice: the panel lists only those of her deployments.
        for db in spec["databases"].as_array().into_iter().flatten() {
            assert_eq!(db["deployment"], FIXTURE_DEPLOYMENT);
        }
        // No domain anywhere: system/health would GET it.
        assert!(spec["deployment"].get("domain").is_none());
    }
}
