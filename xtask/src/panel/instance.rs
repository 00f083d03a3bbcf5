//! Running panels: [`PanelInstance`] copies the template into its own directory, starts
//! `manage.py runserver` (and, in [`PanelMode::Redis`], Redis and a Celery worker) in process
//! groups of their own and waits for `GET /api/status/`.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::redis::{start_redis, wait_for_worker};
use super::setup::{layout, manage, python};
use super::{FIXTURE_DEPLOYMENT, FIXTURE_DOTENV, FIXTURE_DOTENV_EXAMPLE, PanelSetup};
use crate::interop::tail;

/// How long a panel may take to answer `/api/status/` after the start.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

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
pub(super) struct GroupChild {
    what: &'static str,
    child: Option<Child>,
}

impl GroupChild {
    pub(super) fn spawn(mut cmd: Command, log: &Path, what: &'static str) -> Result<GroupChild> {
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
    pub(super) fn check_running(&mut self) -> Result<()> {
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

fn repo_dir_in(instance_dir: &Path, deployment: &str) -> PathBuf {
    instance_dir
        .join("webops/deployments")
        .join(deployment)
        .join("repo")
}

pub(super) fn free_port() -> Result<u16> {
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
