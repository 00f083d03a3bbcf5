//! What a [`MockPanel`](super::MockPanel) starts with: users, the demo data set, and builders
//! for custom deployments and databases.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::state::{Database, Deployment, PanelState, Repo, Sample, Ts, User};

/// The demo user who owns the demo deployments.
pub const PANEL_USER: &str = "alice";
/// [`PANEL_USER`]'s password.
pub const PANEL_PASSWORD: &str = "alice-password";
/// A second demo user, with two-factor authentication enabled (a correct password only
/// leads to `/auth/2fa/verify/`).
pub const PANEL_2FA_USER: &str = "bob";
/// [`PANEL_2FA_USER`]'s password.
pub const PANEL_2FA_PASSWORD: &str = "bob-password";

/// A user account of the panel.
#[derive(Clone)]
pub struct PanelUser {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) two_factor: bool,
}

impl std::fmt::Debug for PanelUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanelUser")
            .field("username", &self.username)
            .field("two_factor", &self.two_factor)
            .finish_non_exhaustive()
    }
}

impl PanelUser {
    /// A user without two-factor authentication.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        PanelUser {
            username: username.into(),
            password: password.into(),
            two_factor: false,
        }
    }

    /// Turns two-factor authentication on or off.
    pub fn two_factor(mut self, enabled: bool) -> Self {
        self.two_factor = enabled;
        self
    }
}

/// The default users: [`PANEL_USER`] and [`PANEL_2FA_USER`] (2FA on).
pub(crate) fn default_users() -> Vec<PanelUser> {
    vec![
        PanelUser::new(PANEL_USER, PANEL_PASSWORD),
        PanelUser::new(PANEL_2FA_USER, PANEL_2FA_PASSWORD).two_factor(true),
    ]
}

/// The data set a panel starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PanelSeed {
    /// No deployments, no databases; one stored metrics sample.
    #[default]
    Empty,
    /// `alice` owns `blog` (running, env vars with `SECRET_KEY` and `DEBUG=True`, a repo
    /// `.env`), `api-worker` (failed: its clone failed) and `shop` (pending after a deploy
    /// that could not install its nginx config), and the databases `blog-db` and `shop-db`;
    /// `bob` owns `bob-site` (running). Every deployment has log rows.
    Demo,
}

/// A deployment to seed.
#[derive(Debug, Clone)]
pub struct PanelDeployment {
    name: String,
    owner: String,
    status: String,
    project_type: String,
    repo_url: String,
    branch: String,
    port: Option<u16>,
    env_vars: Map<String, Value>,
    dot_env: Option<String>,
    cloned: bool,
    logs: Vec<(&'static str, String)>,
    age_minutes: i64,
}

impl PanelDeployment {
    /// A `pending` Django deployment of `https://github.com/<owner>/<name>.git` (branch `main`)
    /// owned by `owner`, not cloned, created a minute before the panel started.
    pub fn new(name: impl Into<String>, owner: impl Into<String>) -> Self {
        let (name, owner) = (name.into(), owner.into());
        PanelDeployment {
            repo_url: format!("https://github.com/{owner}/{name}.git"),
            name,
            owner,
            status: "pending".to_owned(),
            project_type: "django".to_owned(),
            branch: "main".to_owned(),
            port: None,
            env_vars: Map::new(),
            dot_env: None,
            cloned: false,
            logs: Vec::new(),
            age_minutes: 1,
        }
    }

    /// The status (`pending`, `building`, `running`, `stopped`, `failed`, or anything else).
    pub fn status(mut self, status: impl Into<String>) -> Self {
        self.status = status.into();
        self
    }

    /// The project type (`django`, `static`, ...).
    pub fn project_type(mut self, project_type: impl Into<String>) -> Self {
        self.project_type = project_type.into();
        self
    }

    /// The repository URL.
    pub fn repo_url(mut self, url: impl Into<String>) -> Self {
        self.repo_url = url.into();
        self
    }

    /// The branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = branch.into();
        self
    }

    /// The allocated port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Adds an entry to the stored `env_vars` (any JSON value, shown raw by the detail).
    pub fn env_var(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.env_vars.insert(key.into(), value.into());
        self
    }

    /// Marks the repository as cloned (so `env/` and `project/validate/` can read it).
    pub fn cloned(mut self) -> Self {
        self.cloned = true;
        self
    }

    /// Gives the cloned repository a `.env` file with this text (implies [`Self::cloned`]).
    pub fn dot_env(mut self, text: impl Into<String>) -> Self {
        self.cloned = true;
        self.dot_env = Some(text.into());
        self
    }

    /// Appends a log row (`info`, `warning`, `error` or `success`; anything else is `info`).
    pub fn log(mut self, level: &str, message: impl Into<String>) -> Self {
        let level = match level {
            "warning" => "warning",
            "error" => "error",
            "success" => "success",
            _ => "info",
        };
        self.logs.push((level, message.into()));
        self
    }

    /// How long before the panel's start it was created (default 1 minute); the list is
    /// newest first.
    pub fn age_minutes(mut self, minutes: i64) -> Self {
        self.age_minutes = minutes;
        self
    }
}

/// A database to seed.
#[derive(Debug, Clone)]
pub struct PanelDatabase {
    name: String,
    deployment: String,
    db_type: String,
    username: String,
    password: String,
}

impl PanelDatabase {
    /// A PostgreSQL database on `localhost:5432` attached to deployment `deployment` (whose
    /// owner owns it), user `<name>_user`, password `<name>-pass`.
    pub fn new(name: impl Into<String>, deployment: impl Into<String>) -> Self {
        let name = name.into();
        PanelDatabase {
            username: format!("{}_user", name.replace('-', "_")),
            password: format!("{name}-pass"),
            name,
            deployment: deployment.into(),
            db_type: "postgresql".to_owned(),
        }
    }

    /// The type (`postgresql`, `mysql`, `redis`, ...); the port follows it.
    pub fn db_type(mut self, db_type: impl Into<String>) -> Self {
        self.db_type = db_type.into();
        self
    }

    /// The user name and password.
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = username.into();
        self.password = password.into();
        self
    }
}

/// The demo deployments and databases.
pub(crate) fn demo() -> (Vec<PanelDeployment>, Vec<PanelDatabase>) {
    let blog = PanelDeployment::new("blog", PANEL_USER)
        .status("running")
        .port(8001)
        .env_var("DEBUG", "True")
        .env_var("SECRET_KEY", "django-insecure-7f3kq9x2m1v8w4zb6n0c5j")
        .env_var("ALLOWED_HOSTS", "*")
        .env_var("WORKERS", 2)
        .dot_env(
            "# local settings\nDATABASE_URL=postgresql://blog_user:blog-db-pass@localhost:5432/blog\n\
             SECRET_KEY=\"dotenv-secret-4b1d\"\nDEBUG=True\nSITE_NAME='Alice writes'\n",
        )
        .log("info", "Starting deployment process")
        .log("info", "Cloning repository: https://github.com/alice/blog.git")
        .log("success", "Repository cloned successfully (branch: main)")
        .log("info", "Allocated port: 8001")
        .log("success", "Deployment prepared successfully")
        .age_minutes(9 * 24 * 60);
    let worker = PanelDeployment::new("api-worker", PANEL_USER)
        .status("failed")
        .repo_url("https://git.unreachable.example/alice/api-worker.git")
        .log("info", "Starting deployment process")
        .log(
            "info",
            "Cloning repository: https://git.unreachable.example/alice/api-worker.git",
        )
        .log(
            "error",
            "Failed to clone repository: Cmd('git') failed due to: exit code(128)\n  cmdline: git \
             clone -v --depth=1 -- https://git.unreachable.example/alice/api-worker.git\n  \
             stderr: 'fatal: unable to access \
             'https://git.unreachable.example/alice/api-worker.git/': Could not resolve host: \
             git.unreachable.example'",
        )
        .age_minutes(3 * 24 * 60);
    let shop = PanelDeployment::new("shop", PANEL_USER)
        .project_type("static")
        .port(8002)
        .branch("main")
        .env_var("DEBUG", "False")
        .env_var("N", 1)
        .cloned()
        .log("info", "Starting deployment process")
        .log(
            "info",
            "Cloning repository: https://github.com/alice/shop.git",
        )
        .log("success", "Repository cloned successfully (branch: main)")
        .log("info", "Detected buildpack: static-html")
        .log("info", "Allocated port: 8002")
        .log("success", "Deployment prepared successfully")
        .log(
            "warning",
            "Failed to install Nginx config: [Errno 2] No such file or directory: \
             '/etc/nginx/sites-available/shop'",
        )
        .age_minutes(120);
    let bob = PanelDeployment::new("bob-site", PANEL_2FA_USER)
        .status("running")
        .project_type("static")
        .port(8003)
        .cloned()
        .log("success", "Deployment prepared successfully")
        .age_minutes(24 * 60);
    let databases = vec![
        PanelDatabase::new("blog-db", "blog").credentials("blog_user", "blog-db-pass"),
        PanelDatabase::new("shop-db", "shop").credentials("shop_user", "shop-db-pass"),
    ];
    (vec![blog, worker, bob, shop], databases)
}

/// Builds the state: users, deployments (oldest first), their logs, databases and the stored
/// metric samples. Fails on a database naming an unknown deployment or a duplicate name.
pub(crate) fn build(
    users: &[PanelUser],
    deployments: &[PanelDeployment],
    databases: &[PanelDatabase],
    limit: Option<(u32, std::time::Duration)>,
    started: Ts,
) -> std::io::Result<PanelState> {
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    let users: BTreeMap<String, User> = users
        .iter()
        .map(|u| {
            let user = User {
                password: u.password.clone(),
                two_factor: u.two_factor,
            };
            (u.username.clone(), user)
        })
        .collect();
    let mut state = PanelState::new(users, limit);
    let micros = |n: i64| chrono::Duration::microseconds(n * 7919 + 123);
    let mut ordered: Vec<&PanelDeployment> = deployments.iter().collect();
    ordered.sort_by_key(|d| std::cmp::Reverse(d.age_minutes));
    for (i, seed) in ordered.into_iter().enumerate() {
        if state.deployments.iter().any(|d| d.name == seed.name) {
            return Err(invalid(format!("duplicate deployment name {}", seed.name)));
        }
        let created = started - chrono::Duration::minutes(seed.age_minutes) + micros(i as i64);
        let id = state.insert(Deployment {
            id: 0,
            name: seed.name.clone(),
            owner: seed.owner.clone(),
            status: seed.status.clone(),
            project_type: seed.project_type.clone(),
            repo_url: seed.repo_url.clone(),
            branch: seed.branch.clone(),
            domain: String::new(),
            port: seed.port,
            created_at: created,
            updated_at: created + chrono::Duration::seconds(42),
            env_vars: Value::Object(seed.env_vars.clone()),
            deleted: false,
            deletes: 0,
            repo: seed.cloned.then(|| Repo {
                dot_env: seed.dot_env.clone(),
                static_site: seed.project_type == "static",
            }),
        });
        for (n, (level, message)) in seed.logs.iter().enumerate() {
            let at = created + chrono::Duration::milliseconds(250 * (n as i64 + 1));
            state.log(id, level, message.clone(), at);
        }
    }
    for (i, seed) in databases.iter().enumerate() {
        let Some(deployment) = state.deployments.iter().find(|d| d.name == seed.deployment) else {
            return Err(invalid(format!(
                "database {} names unknown deployment {}",
                seed.name, seed.deployment
            )));
        };
        let port = match seed.db_type.as_str() {
            "mysql" => 3306,
            "redis" => 6379,
            "mongodb" => 27017,
            _ => 5432,
        };
        state.databases.push(Database {
            id: i as i64 + 1,
            name: seed.name.clone(),
            db_type: seed.db_type.clone(),
            host: "localhost".to_owned(),
            port,
            database_name: seed.name.replace('-', "_"),
            username: seed.username.clone(),
            password: seed.password.clone(),
            deployment: deployment.id,
            created_at: deployment.created_at + chrono::Duration::minutes(5),
        });
    }
    // Samples as a beat collector would have stored them; the newest is minutes old.
    for (i, minutes) in [26 * 60, 50, 7].into_iter().enumerate() {
        let f = i as f64;
        state.samples.push(Sample {
            at: started - chrono::Duration::minutes(minutes) + micros(i as i64 + 40),
            cpu: 12.5 + 4.0 * f,
            memory: 41.3 + 2.2 * f,
            memory_used_mb: 3306 + 170 * i as i64,
            memory_total_mb: 7941,
            disk: 57.8 + 0.1 * f,
            disk_used_gb: 55.44 + 0.07 * f,
            disk_total_gb: 96.73,
            load: [0.42 + 0.1 * f, 0.37, 0.31],
            sent_mb: 1520.17 + 3.5 * f,
            recv_mb: 8842.61 + 12.25 * f,
        });
    }
    Ok(state)
}
