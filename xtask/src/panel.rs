//! The real WebOps control panel (the Django app the `panel` backend must work against), set up
//! and run on loopback for `cargo xtask panel`.
//!
//! [`ensure_setup`] finds the panel's source (`WEBOPS_PANEL_SRC`, a WebOps checkout, or
//! `WEBOPS_PANEL_TARBALL`, a `webops-*.tar.gz` extracted into `.cache/webops-panel/src`),
//! installs a Python 3.11 venv with exactly the pinned packages the panel needs
//! (`.cache/webops-panel/venv`), migrates one template SQLite database and seeds the fixtures
//! into it (`xtask/panel/seed_fixtures.py`), and creates two git repositories a deploy test can
//! point at. Every step is skipped when a stamp file says its result is already there.
//!
//! [`PanelInstance::start`] copies the template into `.cache/webops-panel/run/<name>/` (its
//! own database, `WEBOPS_INSTALL_PATH`, fixture repository on disk and log), runs
//! `manage.py runserver 127.0.0.1:<free port> --noreload` in its own process group and waits for
//! `GET /api/status/`. Several instances run side by side; each is killed with its whole
//! process group when dropped.
//!
//! [`PanelMode::Eager`] ("mode B", the default): the shipped settings plus an in-memory channel
//! layer and eager Celery tasks (`xtask/panel/webops_panel_settings.py`), so no Redis and no
//! worker: a deploy runs inside the create request, which still answers
//! `201 {"status":"pending"}`; the detail right after shows the outcome ([`PanelSetup`] has a
//! repository that ends `pending` and one that ends `failed`). [`PanelMode::Redis`] ("mode A"):
//! the shipped settings, a private `redis-server` and a solo Celery worker per panel; the same
//! outcomes about 0.5 s later, and `system/health` reports the worker.
//!
//! Caveats: the fixture rows are timestamped when the template is seeded (the log rows ten
//! minutes before that), not when an instance starts; the panel also logs into
//! `control-panel/logs/webops.log` of the source (shared by all instances); two `cargo xtask`
//! processes must not set up or start the same instance name at once.
//!
//! Fixtures (the constants below are the single source of truth):
//! * `alice` / [`ALICE_PASSWORD`], no 2FA, owns [`FIXTURE_DEPLOYMENT`] (`running`, no domain,
//!   `env_vars` with `DEBUG=True` and an unmasked `SECRET_KEY`), its three log rows
//!   [`FIXTURE_LOGS`] (oldest first), and two databases [`FIXTURE_DATABASES`] (both linked to
//!   the deployment; passwords [`FIXTURE_DB_PASSWORD`], encrypted by the panel's own code);
//!   the deployment's repository directory holds [`FIXTURE_DOTENV`] and
//!   [`FIXTURE_DOTENV_EXAMPLE`].
//! * `bob` / [`BOB_PASSWORD`] has 2FA enabled: his password login ends in a redirect to
//!   `/auth/2fa/verify/`, never in a session.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use sha2::{Digest as _, Sha256};

use crate::interop::tail;
use crate::{run, workspace_root};

/// Exactly the packages the panel needs (psycopg2 even on SQLite; kombu pinned, or every
/// Celery submit fails).
pub(crate) const PANEL_REQUIREMENTS: [&str; 19] = [
    "Django==5.0.1",
    "psycopg2-binary==2.9.9",
    "dj-database-url==2.1.0",
    "celery[redis]==5.3.4",
    "python-decouple==3.8",
    "cryptography==42.0.2",
    "pyotp==2.9.0",
    "qrcode==7.4.2",
    "Pillow==10.2.0",
    "requests==2.31.0",
    "huggingface-hub==0.20.3",
    "GitPython==3.1.41",
    "Jinja2==3.1.3",
    "PyYAML==6.0.1",
    "psutil==7.1.3",
    "django-redis==5.4.0",
    "channels==4.0.0",
    "channels-redis==4.2.0",
    "kombu==5.5.4",
];

/// The user the MCP server logs in as.
pub(crate) const ALICE: &str = "alice";
/// `alice`'s password.
pub(crate) const ALICE_PASSWORD: &str = "alice-fixture-password-7Qk2";
/// A user with 2FA enabled: a password login cannot get a session.
pub(crate) const BOB: &str = "bob";
/// `bob`'s password (correct, yet not enough).
pub(crate) const BOB_PASSWORD: &str = "bob-fixture-password-3Wn8";
/// `alice`'s one deployment.
pub(crate) const FIXTURE_DEPLOYMENT: &str = "fixture-app";
/// Its `repo_url` (never cloned: the row is seeded as `running`).
pub(crate) const FIXTURE_REPO_URL: &str = "https://example.invalid/acme/fixture-app.git";
/// The unmasked `SECRET_KEY` in its `env_vars` (beside `DEBUG=True`, `ALLOWED_HOSTS=*`).
pub(crate) const FIXTURE_APP_SECRET_KEY: &str =
    "django-insecure-fixture-5f4dcc3b5aa765d61d8327deb882cf99";
/// Its log rows, oldest first: (level, message), one minute apart, ten minutes ago.
pub(crate) const FIXTURE_LOGS: [(&str, &str); 3] = [
    ("info", "fixture log 1/3: cloning repository"),
    ("info", "fixture log 2/3: installing dependencies"),
    ("error", "fixture log 3/3: build failed: exit status 1"),
];
/// `alice`'s databases: (name, db_type, linked deployment). Both are linked to her deployment:
/// the panel lists only databases whose deployment the user owns (an unlinked one is invisible
/// to every user).
pub(crate) const FIXTURE_DATABASES: [(&str, &str, Option<&str>); 2] = [
    ("fixture-db", "postgresql", Some(FIXTURE_DEPLOYMENT)),
    ("fixture-cache", "redis", Some(FIXTURE_DEPLOYMENT)),
];
/// The password of both databases (stored encrypted; the API shows it masked).
pub(crate) const FIXTURE_DB_PASSWORD: &str = "fixture-db-password-Zp9x";
/// The `.env` in the fixture deployment's repository directory (`GET …/env/` reads it).
pub(crate) const FIXTURE_DOTENV: &str = "DEBUG=True\n\
    API_TOKEN=fixture-api-token-8c1f0e2d9b7a\n\
    DATABASE_URL=postgres://app:fixture-db-password-Zp9x@localhost:5432/fixture\n";
/// Its `.env.example`: `SENTRY_DSN` is missing from `.env`, so `…/env/validate/` reports it.
pub(crate) const FIXTURE_DOTENV_EXAMPLE: &str = "DEBUG=\nAPI_TOKEN=\nDATABASE_URL=\nSENTRY_DSN=\n";

/// The Django `SECRET_KEY` of every panel instance (loopback only).
const PANEL_SECRET_KEY: &str = "webops-mcp-xtask-panel-not-a-secret-0123456789abcdefghij";

/// How long a panel may take to answer `/api/status/` after the start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`ensure_setup`] prepared.
#[derive(Debug, Clone)]
pub(crate) struct PanelSetup {
    /// `.cache/webops-panel`.
    pub(crate) root: PathBuf,
    /// The panel's `control-panel/` (where `manage.py` is).
    pub(crate) control_panel: PathBuf,
    /// `cli/webops_cli/system-templates` of the same source.
    pub(crate) system_templates: PathBuf,
    /// The venv's python.
    pub(crate) python: PathBuf,
    /// The migrated and seeded database every instance starts from.
    pub(crate) template_db: PathBuf,
    /// The Fernet key every instance uses (the template's encrypted passwords need it).
    pub(crate) encryption_key: String,
    /// A `file://` bare repository with one commit of a static `index.html` on `main`: a
    /// create goes clone ✔ → static-html ✔ → port ✔ → nginx config ✘ → `pending`.
    pub(crate) deploy_repo_url: String,
    /// A `file://` URL where no repository exists: the create's deploy ends `failed`.
    pub(crate) unclonable_repo_url: String,
}

/// Where the panel's source comes from.
enum Source {
    /// A checkout with `control-panel/` and `cli/`.
    Checkout(PathBuf),
    /// A `webops-*.tar.gz`.
    Tarball(PathBuf),
}

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
    let (deploy_repo_url, unclonable_repo_url) = deploy_repos(&root)?;
    let setup = PanelSetup {
        template_db: root.join("template/db.sqlite3"),
        root,
        control_panel,
        system_templates,
        python,
        encryption_key,
        deploy_repo_url,
        unclonable_repo_url,
    };
    template_db(&setup, &source_id)?;
    eprintln!(
        "panel: set up in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        setup.root.display()
    );
    Ok(setup)
}

fn source() -> Result<Source> {
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
fn extract(tarball: &Path, root: &Path) -> Result<(PathBuf, String)> {
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

/// The python of `<root>/venv` with exactly [`PANEL_REQUIREMENTS`] (the style of
/// `toolchain::python_venv`).
fn venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join("venv");
    let python = venv.join("bin/python");
    let stamp = venv.join(".installed");
    let wanted = PANEL_REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    if !python.exists() {
        run(Command::new("python3.11").args(["-m", "venv"]).arg(&venv))
            .context("creating the panel's Python 3.11 venv (is python3.11 with venv on PATH?)")?;
    }
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PANEL_REQUIREMENTS))
    .context("installing the panel's Python packages from PyPI")?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
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

/// `<root>/git/static-site.git` (created once: `git init --bare` plus one commit of an
/// `index.html` on `main`) and a sibling URL with no repository; both as `file://` URLs.
fn deploy_repos(root: &Path) -> Result<(String, String)> {
    let git_dir = root.join("git");
    let bare = git_dir.join("static-site.git");
    let url = |p: &Path| format!("file://{}", p.display());
    let unclonable = url(&git_dir.join("no-such-repository.git"));
    if bare.join("refs/heads/main").is_file() {
        return Ok((url(&bare), unclonable));
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
    Ok((url(&bare), unclonable))
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
fn layout(setup: &PanelSetup, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir.join("webops/deployments"))?;
    // The panel loads its templates from the parent of WEBOPS_INSTALL_PATH.
    std::os::unix::fs::symlink(&setup.system_templates, dir.join("system-templates"))
        .context("linking system-templates")?;
    Ok(())
}

/// `python manage.py` for the instance directory `dir`, with the panel's environment (mode B
/// settings; [`PanelMode::Redis`] changes them in [`PanelInstance::start_with`]).
fn manage(setup: &PanelSetup, dir: &Path) -> Command {
    let mut cmd = python(setup, dir);
    cmd.arg("manage.py");
    cmd
}

/// The venv's python in `control-panel/`, with the panel's environment for instance `dir`.
fn python(setup: &PanelSetup, dir: &Path) -> Command {
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

/// Environment variables to add to a command.
type EnvVars = Vec<(String, String)>;

/// How a panel does its background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PanelMode {
    /// No Redis, no worker: in-memory channel layer, Celery tasks run eagerly inside the request
    /// (a create answers 201 after the deploy has already ended). `system/health` reports
    /// `celery.healthy: false`, so `healthy: false`.
    Eager,
    /// The shipped settings with a private `redis-server` on a free port and a
    /// `celery -A config worker -P solo`: deploy and delete run asynchronously, as in
    /// production. Needs `redis-server` (installed with apt-get when missing and run as root).
    Redis,
}

/// A child in its own process group, killed with the group when dropped.
struct GroupChild {
    what: &'static str,
    child: Option<Child>,
}

impl GroupChild {
    fn spawn(mut cmd: Command, log: &Path, what: &'static str) -> Result<GroupChild> {
        let file = File::create(log)?;
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {what}"))?;
        Ok(GroupChild {
            what,
            child: Some(child),
        })
    }

    /// `Err` when it has exited.
    fn check_running(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("{} exited ({status})", self.what);
        }
        Ok(())
    }

    /// SIGTERM to the group, SIGKILL after 5 s (or at once to what is left when the leader
    /// has gone).
    fn kill(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let group = format!("-{}", child.id());
        let signal = |sig: &str| {
            Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status()
        };
        let _ = signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                let _ = signal("-KILL");
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = signal("-KILL");
        child.wait()?;
        Ok(())
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// One running panel (plus, in [`PanelMode::Redis`], its Redis and worker); everything is
/// killed with its process group when dropped.
pub(crate) struct PanelInstance {
    name: String,
    dir: PathBuf,
    base_url: String,
    log: PathBuf,
    /// Stopped in this order: runserver, worker, Redis.
    children: Vec<GroupChild>,
}

impl PanelInstance {
    /// [`PanelInstance::start_with`] in [`PanelMode::Eager`].
    pub(crate) fn start(setup: &PanelSetup, name: &str) -> Result<PanelInstance> {
        Self::start_with(setup, name, PanelMode::Eager)
    }

    /// Starts a fresh panel named `name` (letters, digits, `-`, `_`): empties
    /// `.cache/webops-panel/run/<name>/`, copies the template database, writes the fixture
    /// repository, runs `runserver` on a free loopback port and waits for `/api/status/`.
    pub(crate) fn start_with(
        setup: &PanelSetup,
        name: &str,
        mode: PanelMode,
    ) -> Result<PanelInstance> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("panel instance name {name:?}: use letters, digits, - and _");
        }
        let dir = setup.root.join("run").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot empty {}", dir.display()))?;
        }
        layout(setup, &dir)?;
        std::fs::copy(&setup.template_db, dir.join("db.sqlite3"))?;
        let repo = repo_dir_in(&dir, FIXTURE_DEPLOYMENT);
        std::fs::create_dir_all(&repo)?;
        std::fs::write(repo.join(".env"), FIXTURE_DOTENV)?;
        std::fs::write(repo.join(".env.example"), FIXTURE_DOTENV_EXAMPLE)?;

        let started = Instant::now();
        let mut children = Vec::new();
        let redis_env = match mode {
            PanelMode::Eager => None,
            PanelMode::Redis => {
                let (redis, redis_port, env) = start_redis(&dir)?;
                children.push(redis);
                let mut worker = python(setup, &dir);
                worker
                    .args(["-m", "celery", "-A", "config", "worker", "-P", "solo"])
                    .args(["--loglevel=info", "--without-gossip", "--without-mingle"])
                    .arg(format!("--hostname=webops-{name}@%h"))
                    .env("DJANGO_SETTINGS_MODULE", "config.settings")
                    .envs(env.iter().map(|(k, v)| (k, v)));
                let log = dir.join("worker.log");
                let mut worker = GroupChild::spawn(worker, &log, "the celery worker")?;
                wait_for_worker(&mut worker, redis_port, &log)?;
                children.push(worker);
                Some(env)
            }
        };

        let port = free_port()?;
        let log = dir.join("panel.log");
        let mut cmd = manage(setup, &dir);
        cmd.args(["runserver", &format!("127.0.0.1:{port}"), "--noreload"]);
        if let Some(env) = &redis_env {
            cmd.env("DJANGO_SETTINGS_MODULE", "config.settings")
                .envs(env.iter().map(|(k, v)| (k, v)));
        }
        children.insert(0, GroupChild::spawn(cmd, &log, "manage.py runserver")?);
        let mut panel = PanelInstance {
            name: name.to_owned(),
            dir,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
            children,
        };
        let runserver_started = Instant::now();
        let mut probe = 0u32;
        loop {
            probe += 1;
            if status_answers(port, probe) {
                eprintln!(
                    "panel {name} ({mode:?}): {} answers {:.1} s after runserver started, {:.1} s \
                     in all (log {})",
                    panel.base_url,
                    runserver_started.elapsed().as_secs_f64(),
                    started.elapsed().as_secs_f64(),
                    panel.log.display()
                );
                return Ok(panel);
            }
            for child in &mut panel.children {
                if let Err(e) = child.check_running() {
                    bail!("panel {name}: {e} before it answered\n{}", panel.log_tail());
                }
            }
            if runserver_started.elapsed() > READY_TIMEOUT {
                bail!(
                    "panel {name} did not answer GET /api/status/ within {} s\n{}",
                    READY_TIMEOUT.as_secs(),
                    panel.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The file holding the panel's stdout and stderr (`worker.log` and `redis.log` beside it
    /// in [`PanelMode::Redis`]).
    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// `.cache/webops-panel/run/<name>/`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The instance's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the panel keeps a deployment's repository (`<WEBOPS_INSTALL_PATH>/deployments/
    /// <name>/repo`, read by `…/env/` and `…/project/validate/`).
    pub(crate) fn repo_dir(&self, deployment: &str) -> PathBuf {
        repo_dir_in(&self.dir, deployment)
    }

    /// The last lines of the panel's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        tail(&self.log, 40)
    }

    /// Stops the panel and everything it started (each child's process group).
    pub(crate) fn stop(mut self) -> Result<()> {
        let mut result = Ok(());
        for child in &mut self.children {
            if let Err(e) = child.kill() {
                result = Err(e);
            }
        }
        result
    }
}

/// Starts `redis-server` on a free loopback port (no persistence, files in `dir`) and waits for
/// its PONG; returns it, its port and the panel's environment for it.
fn start_redis(dir: &Path) -> Result<(GroupChild, u16, EnvVars)> {
    let binary = redis_server()?;
    let port = free_port()?;
    let mut cmd = Command::new(binary);
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir);
    let log = dir.join("redis.log");
    let mut redis = GroupChild::spawn(cmd, &log, "redis-server")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if redis_pong(port) {
            break;
        }
        redis.check_running().with_context(|| tail(&log, 20))?;
        if Instant::now() > deadline {
            bail!(
                "redis-server did not answer PING within 10 s\n{}",
                tail(&log, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = |db: u8| format!("redis://127.0.0.1:{port}/{db}");
    let env = vec![
        ("CELERY_BROKER_URL".to_owned(), url(0)),
        ("CELERY_RESULT_BACKEND".to_owned(), url(1)),
        ("REDIS_URL".to_owned(), url(3)),
    ];
    Ok((redis, port, env))
}

fn redis_pong(port: u16) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        stream.read_exact(&mut answer)?;
        Ok(&answer == b"+PONG\r\n")
    };
    attempt().unwrap_or(false)
}

/// `redis-server` on PATH; when missing and running as root with apt-get,
/// `apt-get install -y redis-server` (about 10 s) first.
fn redis_server() -> Result<PathBuf> {
    let find = || {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("redis-server"))
                .find(|candidate| candidate.is_file())
        })
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0");
    if !root {
        bail!("redis-server is not on PATH; install it (e.g. apt-get install -y redis-server)");
    }
    let install = || run(Command::new("apt-get").args(["install", "-y", "-q", "redis-server"]));
    if install().is_err() {
        // Empty package lists on a fresh machine.
        run(Command::new("apt-get").args(["update", "-q"]))?;
        install().context("apt-get install redis-server")?;
    }
    find().context("apt-get installed redis-server, yet it is not on PATH")
}

/// Waits up to 60 s until a client of the Redis at `port` blocks in BRPOP: the worker
/// consumes its queue. (Its "ready." line never reaches the log: the panel's logging config
/// swallows the worker's own messages.)
fn wait_for_worker(worker: &mut GroupChild, port: u16, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if redis_client_list(port).is_some_and(|list| list.contains("cmd=brpop")) {
            return Ok(());
        }
        worker.check_running().with_context(|| tail(log, 30))?;
        if Instant::now() > deadline {
            bail!(
                "the celery worker did not consume its queue within 60 s\n{}",
                tail(log, 30)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The answer to `CLIENT LIST` (a RESP bulk string).
fn redis_client_list(port: u16) -> Option<String> {
    let attempt = || -> std::io::Result<Option<String>> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"CLIENT LIST\r\n")?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            let Some((head, body)) = text.split_once("\r\n") else {
                continue;
            };
            let Some(len) = head.strip_prefix('$').and_then(|l| l.parse::<usize>().ok()) else {
                return Ok(None);
            };
            if body.len() >= len {
                return Ok(Some(body[..len].to_owned()));
            }
        }
    };
    attempt().ok().flatten()
}

fn repo_dir_in(instance_dir: &Path, deployment: &str) -> PathBuf {
    instance_dir
        .join("webops/deployments")
        .join(deployment)
        .join("repo")
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether `GET /api/status/` answers 200. Each probe claims its own `X-Forwarded-For`
/// address, so the probes do not spend the rate-limit budget (20 requests per 60 s per
/// address) of the client that comes next.
fn status_answers(port: u16, probe: u32) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET /api/status/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\
             X-Forwarded-For: 198.51.{}.{}\r\nAccept: application/json\r\n\r\n",
            100 + probe / 250 % 100,
            1 + probe % 250
        )?;
        let mut head = [0u8; 16];
        let mut read = 0;
        while read < head.len() {
            match stream.read(&mut head[read..])? {
                0 => break,
                n => read += n,
            }
        }
        Ok(head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200"))
    };
    attempt().unwrap_or(false)
}

/// `cargo xtask panel-up [--setup-only] [--redis] [NAME ...]`: sets up, starts one panel per
/// name (default `manual`; `--redis`: [`PanelMode::Redis`]), prints how to reach them and keeps
/// them running until Ctrl-C.
pub(crate) fn panel_up(args: &[String]) -> Result<()> {
    let setup_only = args.iter().any(|a| a == "--setup-only");
    let mode = if args.iter().any(|a| a == "--redis") {
        PanelMode::Redis
    } else {
        PanelMode::Eager
    };
    let mut names: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(flag) = args
        .iter()
        .find(|a| a.starts_with("--") && *a != "--setup-only" && *a != "--redis")
    {
        bail!(
            "panel-up: unknown flag {flag}; usage: cargo xtask panel-up [--setup-only] [--redis] \
             [NAME ...]"
        );
    }
    let setup = ensure_setup()?;
    println!("deploy repository (→ pending): {}", setup.deploy_repo_url);
    println!(
        "unclonable repository (→ failed): {}",
        setup.unclonable_repo_url
    );
    if setup_only {
        return Ok(());
    }
    if names.is_empty() {
        names.push("manual");
    }
    let mut panels = Vec::new();
    for name in names {
        panels.push(match mode {
            PanelMode::Eager => PanelInstance::start(&setup, name)?,
            PanelMode::Redis => PanelInstance::start_with(&setup, name, mode)?,
        });
    }
    for panel in &panels {
        println!(
            "panel {}: {}  dir {}  log {}  {FIXTURE_DEPLOYMENT} repository {}",
            panel.name(),
            panel.base_url(),
            panel.dir().display(),
            panel.log_path().display(),
            panel.repo_dir(FIXTURE_DEPLOYMENT).display()
        );
    }
    println!(
        "users: {ALICE} / {ALICE_PASSWORD} (owns {FIXTURE_DEPLOYMENT}); {BOB} / {BOB_PASSWORD} \
         (2FA enabled). Ctrl-C stops the panels."
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(tokio::signal::ctrl_c())?;
    eprintln!("panel-up: stopping");
    for panel in panels {
        panel.stop()?;
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

    #[test]
    fn the_env_example_names_a_key_the_env_lacks() {
        let keys = |text: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_owned()))
                .collect()
        };
        let env = keys(FIXTURE_DOTENV);
        let missing: Vec<String> = keys(FIXTURE_DOTENV_EXAMPLE)
            .into_iter()
            .filter(|k| !env.contains(k))
            .collect();
        assert_eq!(missing, ["SENTRY_DSN"]);
    }
}
