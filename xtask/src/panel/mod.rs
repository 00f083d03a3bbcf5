//! The real WebOps control panel (the Django app the `panel` backend must work against), set up
//! and run on loopback for `cargo xtask panel`.
//!
//! [`ensure_setup`] finds the panel's source (`WEBOPS_PANEL_SRC`, a WebOps checkout, or
//! `WEBOPS_PANEL_TARBALL`, a `webops-*.tar.gz` extracted into `.cache/webops-panel/src`),
//! installs a Python 3.11 venv with exactly the pinned packages the panel needs
//! (`.cache/webops-panel/venv`), migrates one template SQLite database and seeds the fixtures
//! into it (`xtask/panel/seed_fixtures.py`), and creates the git repository a deploy test
//! points at; [`GitHttp`] serves it over git's smart HTTP on loopback (as an operator's
//! internal Git host would be), so a deploy names `http://127.0.0.1:<port>/static-site.git`, which a
//! `webops-mcp` accepts only with `[webops] repository_schemes = ["https", "http"]` and
//! `allowed_repository_hosts = ["127.0.0.1"]` ([`REPOSITORY_CONFIG`]). Every step is skipped
//! when a stamp file says its result is already there.
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

mod git_http;
mod instance;
mod redis;
mod setup;
mod source;

use std::path::PathBuf;

use anyhow::{Result, bail};

pub(crate) use git_http::GitHttp;
pub(crate) use instance::{PanelInstance, PanelMode};
pub(crate) use setup::ensure_setup;

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
    /// The directory [`GitHttp`] serves: [`DEPLOY_REPO`] and no [`UNCLONABLE_REPO`].
    pub(crate) git_root: PathBuf,
}

/// The bare repository under [`PanelSetup::git_root`] with one commit of a static
/// `index.html` on `main`: a create goes clone ✔ → static-html ✔ → port ✔ → nginx config ✘ →
/// `pending`.
pub(crate) const DEPLOY_REPO: &str = "static-site.git";
/// A repository name [`GitHttp`] answers 404 for: the create's deploy ends `failed`.
pub(crate) const UNCLONABLE_REPO: &str = "no-such-repository.git";
/// The `[webops]` lines a `webops-mcp` needs to deploy from [`GitHttp`]: `http://` and the
/// loopback host are refused by default.
pub(crate) const REPOSITORY_CONFIG: &str = "[webops]\nrepository_schemes = [\"https\", \"http\"]\nallowed_repository_hosts = [\"127.0.0.1\"]\n";

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
    if setup_only {
        println!(
            "git repositories (served over HTTP by panel-up): {}",
            setup.git_root.display()
        );
        return Ok(());
    }
    let git = GitHttp::start(&setup.git_root)?;
    println!("deploy repository (→ pending): {}", git.url(DEPLOY_REPO));
    println!(
        "unclonable repository (→ failed): {}",
        git.url(UNCLONABLE_REPO)
    );
    println!("a webops-mcp deploying them needs in its configuration:\n{REPOSITORY_CONFIG}");
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
    drop(git);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
