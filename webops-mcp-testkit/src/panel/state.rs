//! The panel mock's data: users, sessions, deployments with their log rows and cloned
//! repositories, databases, stored metric samples, the global rate limiter, and the
//! inline ("eager Celery") deploy and delete tasks.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::fault::RecordedRequest;

/// A point in time as the panel stores it.
pub(crate) type Ts = DateTime<Utc>;

/// How many requests the log keeps (the newest ones).
const REQUEST_LOG_CAPACITY: usize = 10_000;

/// Python's `datetime.isoformat()` of an aware UTC time with microseconds.
pub(crate) fn iso(ts: Ts) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// A user of the panel.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) password: String,
    pub(crate) two_factor: bool,
}

/// A server-side session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The logged-in user; `None` for a session that only waits for a 2FA code.
    pub(crate) user: Option<String>,
    pub(crate) expires: Instant,
}

/// A deployment's cloned repository on (simulated) disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Repo {
    /// The `.env` file's lines, if the repository has one.
    pub(crate) dot_env: Option<String>,
    /// Whether the repository is a static site (`index.html`) rather than a Django project.
    pub(crate) static_site: bool,
}

/// A row of `ApplicationDeployment`.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) status: String,
    pub(crate) project_type: String,
    pub(crate) repo_url: String,
    pub(crate) branch: String,
    pub(crate) domain: String,
    pub(crate) port: Option<u16>,
    pub(crate) created_at: Ts,
    pub(crate) updated_at: Ts,
    /// As sent on create: any JSON, shown raw.
    pub(crate) env_vars: Value,
    /// Soft-deleted: still listed, nothing shows it.
    pub(crate) deleted: bool,
    /// How many delete tasks ran (the first one crashes halfway).
    pub(crate) deletes: u32,
    pub(crate) repo: Option<Repo>,
}

impl Deployment {
    /// The list item.
    pub(crate) fn summary(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "project_type": self.project_type,
            "repo_url": self.repo_url,
            "branch": self.branch,
            "domain": self.domain,
            "port": self.port,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        })
    }

    /// The detail object: the list item plus the raw `env_vars`.
    pub(crate) fn detail(&self) -> Value {
        let mut value = self.summary();
        let env = if is_falsy(&self.env_vars) {
            json!({})
        } else {
            self.env_vars.clone()
        };
        value["env_vars"] = env;
        value
    }
}

/// Python truthiness of a JSON value (`x or {}`).
fn is_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// A row of `DeploymentLog`.
#[derive(Debug, Clone)]
pub(crate) struct LogRow {
    pub(crate) id: i64,
    pub(crate) deployment: i64,
    pub(crate) level: &'static str,
    pub(crate) message: String,
    pub(crate) created_at: Ts,
}

/// A row of `Database`.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) db_type: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database_name: String,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) deployment: i64,
    pub(crate) created_at: Ts,
}

/// A stored `SystemMetrics` sample.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) at: Ts,
    pub(crate) cpu: f64,
    pub(crate) memory: f64,
    pub(crate) memory_used_mb: i64,
    pub(crate) memory_total_mb: i64,
    pub(crate) disk: f64,
    pub(crate) disk_used_gb: f64,
    pub(crate) disk_total_gb: f64,
    pub(crate) load: [f64; 3],
    pub(crate) sent_mb: f64,
    pub(crate) recv_mb: f64,
}

/// One fixed window of the global limiter for one client.
#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    resets: Instant,
}

/// The panel's global limiter: a burst window and an hourly window per client key, each
/// fixed from its first request; rejected requests are not counted.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// `(requests, window)` of the burst limit; `None`: no limiting at all.
    pub(crate) burst: Option<(u32, Duration)>,
    windows: HashMap<String, (Window, Window)>,
}

/// The hourly limit that sits beside the burst limit.
const HOURLY: (u32, Duration) = (1000, Duration::from_secs(3600));

impl Limiter {
    pub(crate) fn new(burst: Option<(u32, Duration)>) -> Limiter {
        Limiter {
            burst,
            windows: HashMap::new(),
        }
    }

    /// Counts a request from `key`; `Err(retry_after_secs)` when it must be refused.
    pub(crate) fn check(&mut self, key: &str, now: Instant) -> Result<(), u64> {
        let Some((burst_max, burst_window)) = self.burst else {
            return Ok(());
        };
        let fresh = |window: Duration| Window {
            count: 0,
            resets: now + window,
        };
        let (hour, burst) = self
            .windows
            .entry(key.to_owned())
            .or_insert_with(|| (fresh(HOURLY.1), fresh(burst_window)));
        if now >= hour.resets {
            *hour = fresh(HOURLY.1);
        }
        if now >= burst.resets {
            *burst = fresh(burst_window);
        }
        let wait = |w: &Window| w.resets.saturating_duration_since(now).as_secs_f64().ceil() as u64;
        let mut retry = None::<u64>;
        if hour.count >= HOURLY.0 {
            retry = Some(wait(hour));
        }
        if burst.count >= burst_max {
            retry = Some(retry.map_or(wait(burst), |r| r.min(wait(burst))));
        }
        if let Some(retry) = retry {
            return Err(retry.max(1));
        }
        hour.count += 1;
        burst.count += 1;
        Ok(())
    }
}

/// Everything one panel holds.
#[derive(Debug)]
pub(crate) struct PanelState {
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) deployments: Vec<Deployment>,
    pub(crate) logs: Vec<LogRow>,
    pub(crate) databases: Vec<Database>,
    pub(crate) samples: Vec<Sample>,
    pub(crate) limiter: Limiter,
    pub(crate) requests: VecDeque<RecordedRequest>,
    next_deployment: i64,
    next_log: i64,
    next_port: u16,
}

impl PanelState {
    pub(crate) fn new(users: BTreeMap<String, User>, limit: Option<(u32, Duration)>) -> Self {
        PanelState {
            users,
            sessions: HashMap::new(),
            deployments: Vec::new(),
            logs: Vec::new(),
            databases: Vec::new(),
            samples: Vec::new(),
            limiter: Limiter::new(limit),
            requests: VecDeque::new(),
            next_deployment: 1,
            next_log: 1,
            next_port: 8001,
        }
    }

    /// Remembers an answered request, keeping the newest [`REQUEST_LOG_CAPACITY`].
    pub(crate) fn record(&mut self, request: RecordedRequest) {
        if self.requests.len() == REQUEST_LOG_CAPACITY {
            self.requests.pop_front();
        }
        self.requests.push_back(request);
    }

    /// The user a session cookie belongs to, if it is a live, logged-in session.
    pub(crate) fn session_user(&mut self, key: &str, now: Instant) -> Option<String> {
        let session = self.sessions.get(key)?;
        if session.expires <= now {
            self.sessions.remove(key);
            return None;
        }
        session.user.clone()
    }

    /// Deployment `name` owned by `owner`.
    pub(crate) fn owned(&self, owner: &str, name: &str) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.name == name && d.owner == owner)
    }

    pub(crate) fn owned_mut(&mut self, owner: &str, name: &str) -> Option<&mut Deployment> {
        self.deployments
            .iter_mut()
            .find(|d| d.name == name && d.owner == owner)
    }

    pub(crate) fn by_name_mut(&mut self, name: &str) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.name == name)
    }

    /// Inserts a deployment row (its `id` is assigned); returns its id.
    pub(crate) fn insert(&mut self, mut deployment: Deployment) -> i64 {
        deployment.id = self.next_deployment;
        self.next_deployment += 1;
        let id = deployment.id;
        self.deployments.push(deployment);
        id
    }

    /// Appends a log row to deployment `id`.
    pub(crate) fn log(&mut self, id: i64, level: &'static str, message: String, at: Ts) {
        self.logs.push(LogRow {
            id: self.next_log,
            deployment: id,
            level,
            message,
            created_at: at,
        });
        self.next_log += 1;
    }

    /// A port nobody holds yet.
    pub(crate) fn allocate_port(&mut self) -> u16 {
        loop {
            let port = self.next_port;
            self.next_port = self.next_port.wrapping_add(1).max(8001);
            if !self.deployments.iter().any(|d| d.port == Some(port)) {
                return port;
            }
        }
    }

    /// The deploy task, run inline like Celery in eager mode: clone, detect, allocate a port,
    /// prepare, then fail to install the nginx config, which leaves the deployment `pending`.
    /// A repository that cannot be cloned (see [`clone_error`]) ends `failed`.
    pub(crate) fn run_deploy(&mut self, id: i64, now: Ts) {
        let Some(d) = self.deployments.iter().find(|d| d.id == id) else {
            return;
        };
        let (name, url, branch) = (d.name.clone(), d.repo_url.clone(), d.branch.clone());
        let mut t = now;
        let mut step = |state: &mut PanelState, level: &'static str, message: String| {
            t += chrono::Duration::milliseconds(37);
            state.log(id, level, message, t);
        };
        step(self, "info", "Starting deployment process".to_owned());
        self.set_status(id, "building", now);
        step(self, "info", format!("Cloning repository: {url}"));
        if let Some(error) = clone_error(&url) {
            step(
                self,
                "error",
                format!("Failed to clone repository: {error}"),
            );
            self.set_status(id, "failed", now);
            return;
        }
        step(
            self,
            "success",
            format!("Repository cloned successfully (branch: {branch})"),
        );
        step(self, "info", "Detected buildpack: static-html".to_owned());
        let port = self.allocate_port();
        step(self, "info", format!("Allocated port: {port}"));
        step(
            self,
            "success",
            "Deployment prepared successfully".to_owned(),
        );
        step(
            self,
            "info",
            "[validation] Static site detected (index.html found)".to_owned(),
        );
        step(
            self,
            "warning",
            format!(
                "Failed to install Nginx config: [Errno 2] No such file or directory: \
                 '/etc/nginx/sites-available/{name}'"
            ),
        );
        if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
            d.project_type = "static".to_owned();
            d.port = Some(port);
            d.repo = Some(Repo {
                dot_env: None,
                static_site: true,
            });
        }
        self.set_status(id, "pending", now);
    }

    /// The delete task, run inline: removes the repository and soft-deletes the row; the
    /// first run crashes in the trash manager after that (as the shipped panel does).
    pub(crate) fn run_delete(&mut self, id: i64, now: Ts) {
        let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) else {
            return;
        };
        d.repo = None;
        d.deleted = true;
        d.deletes += 1;
        let (first, name) = (d.deletes == 1, d.name.clone());
        if first {
            self.log(
                id,
                "error",
                "Failed to delete deployment: TrashManager.move_to_trash() missing 1 required \
                 positional argument: 'original_path'"
                    .to_owned(),
                now,
            );
        } else {
            self.log(
                id,
                "info",
                format!("Deployment {name} deleted successfully"),
                now,
            );
        }
    }

    fn set_status(&mut self, id: i64, status: &str, now: Ts) {
        if let Some(d) = self.deployments.iter_mut().find(|d| d.id == id) {
            d.status = status.to_owned();
            d.updated_at = now;
        }
    }
}

/// Why `git clone` of `url` fails, or `None` when it succeeds. The rule: a URL whose text
/// contains `unreachable` or `.invalid`, a `file://` URL whose path does not exist on this
/// machine, or anything that is not an `http(s)://`, `ssh://`, `git://`, `git@` or `file://`
/// URL cannot be cloned.
pub(crate) fn clone_error(url: &str) -> Option<String> {
    let fatal = |detail: String| {
        Some(format!(
            "Cmd('git') failed due to: exit code(128)\n  cmdline: git clone -v --depth=1 -- \
             {url}\n  stderr: 'fatal: {detail}'"
        ))
    };
    if let Some(path) = url.strip_prefix("file://") {
        if std::path::Path::new(path).exists() {
            return None;
        }
        return fatal(format!("'{path}' does not appear to be a git repository"));
    }
    let known = ["https://", "http://", "ssh://", "git://", "git@"]
        .iter()
        .any(|p| url.starts_with(p));
    if !known {
        return fatal(format!("repository '{url}' does not exist"));
    }
    if url.contains("unreachable") || url.contains(".invalid") {
        let host = url
            .split("://")
            .nth(1)
            .unwrap_or(url)
            .split(['/', ':'])
            .next()
            .unwrap_or_default()
            .trim_start_matches("git@");
        return fatal(format!(
            "unable to access '{url}/': Could not resolve host: {host}"
        ));
    }
    None
}

/// A fresh random-looking token of `len` characters from `[a-zA-Z0-9]` (not cryptographic:
/// a mock's sessions protect nothing).
pub(crate) fn token(len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (std::process::id() as u64) << 32
        | 1;
    (0..len)
        .map(|_| {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            char::from(ALPHABET[(v >> 58) as usize % ALPHABET.len()])
        })
        .collect()
}
