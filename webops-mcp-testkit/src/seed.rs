//! Seed data: what a mock holds when it starts, including the rich `Demo` platform.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use crate::model::{Database, Deployment, Engine, Environment, Level, LogType, Status, Ts, User};
use crate::numbers::unit;
use crate::store::State;

/// The data set a mock starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Seed {
    /// No deployments, no databases.
    #[default]
    Empty,
    /// A realistic platform: eight Django/Python deployments across development, staging and
    /// production in all five states, five databases, logs of every type, and a security
    /// picture with real findings (see the crate's README).
    Demo,
}

/// One log line of a [`SeedDeployment`].
#[derive(Debug, Clone)]
struct SeedLog {
    log_type: String,
    level: String,
    message: String,
    ago: Option<Duration>,
}

/// A deployment the mock starts with. Every setting has a sensible default: a healthy,
/// running, production Django app on Python 3.11 with PostgreSQL, TLS on, one instance,
/// a 512M memory limit and a standard set of log lines.
///
/// ```
/// use webops_mcp_testkit::SeedDeployment;
///
/// let seed = SeedDeployment::new("shop-api")
///     .status("stopped")
///     .environment("staging")
///     .env_var("DEBUG", "False")
///     .log("application", "error", "Boom");
/// # let _ = seed;
/// ```
///
/// Seeded deployments never run a lifecycle: a seeded `pending` one stays `pending`.
/// Invalid values (an unknown status, 0 instances, ...) make [`crate::MockBuilder::start`] fail
/// with [`std::io::ErrorKind::InvalidInput`].
#[derive(Clone)]
pub struct SeedDeployment {
    name: String,
    status: String,
    environment: String,
    project_type: String,
    repo_url: Option<String>,
    branch: String,
    domain: Option<String>,
    ssl: bool,
    python_version: Option<String>,
    database_type: Option<String>,
    memory_limit: Option<String>,
    instances: u32,
    healthy: bool,
    error_rate: f64,
    env_vars: BTreeMap<String, String>,
    logs: Vec<SeedLog>,
    standard_logs: Option<bool>,
    deployed_by: String,
    age: Duration,
}

/// Env var values are secrets: only their names are shown.
impl std::fmt::Debug for SeedDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedDeployment")
            .field("name", &self.name)
            .field("status", &self.status)
            .field("environment", &self.environment)
            .field("env_vars", &self.env_vars.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SeedDeployment {
    /// A deployment named `name` with the defaults.
    pub fn new(name: impl Into<String>) -> SeedDeployment {
        SeedDeployment {
            name: name.into(),
            status: "running".to_owned(),
            environment: "production".to_owned(),
            project_type: "django".to_owned(),
            repo_url: None,
            branch: "main".to_owned(),
            domain: None,
            ssl: true,
            python_version: Some("3.11".to_owned()),
            database_type: Some("postgresql".to_owned()),
            memory_limit: Some("512M".to_owned()),
            instances: 1,
            healthy: true,
            error_rate: 0.002,
            env_vars: BTreeMap::new(),
            logs: Vec::new(),
            standard_logs: None,
            deployed_by: "alice".to_owned(),
            age: Duration::from_secs(14 * 86_400),
        }
    }

    /// `pending`, `building`, `running` (default), `stopped` or `failed`.
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }

    /// `development`, `staging` or `production` (default).
    pub fn environment(mut self, environment: &str) -> Self {
        self.environment = environment.to_owned();
        self
    }

    /// Repository URL (default `https://github.com/example/<name>.git`).
    pub fn repo_url(mut self, url: impl Into<String>) -> Self {
        self.repo_url = Some(url.into());
        self
    }

    /// Git branch (default `main`).
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = branch.into();
        self
    }

    /// Custom domain (default none).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether TLS is enabled (default true).
    pub fn ssl(mut self, enabled: bool) -> Self {
        self.ssl = enabled;
        self
    }

    /// Python version (default `3.11`; any string, so end-of-life versions can be seeded; an
    /// empty string means none).
    pub fn python_version(mut self, version: impl Into<String>) -> Self {
        self.python_version = Some(version.into()).filter(|v| !v.is_empty());
        self
    }

    /// `postgresql` (default), `mysql` or `sqlite`; an empty string means none.
    pub fn database_type(mut self, engine: impl Into<String>) -> Self {
        self.database_type = Some(engine.into()).filter(|v| !v.is_empty());
        self
    }

    /// Memory limit such as `512M` (default), or none.
    pub fn memory_limit(mut self, limit: Option<&str>) -> Self {
        self.memory_limit = limit.map(str::to_owned);
        self
    }

    /// Number of instances, 1..=10 (default 1).
    pub fn instances(mut self, n: u32) -> Self {
        self.instances = n;
        self
    }

    /// Whether it passes its health checks while running (default true).
    pub fn healthy(mut self, healthy: bool) -> Self {
        self.healthy = healthy;
        self
    }

    /// Share of failed requests while running, 0.0..=1.0 (default 0.002).
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.error_rate = rate;
        self
    }

    /// Adds an environment variable.
    pub fn env_var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env_vars.insert(key.into(), value.into());
        self
    }

    /// `django` (default), `python`, `nodejs`, `static`, `docker`, ...
    pub fn project_type(mut self, project_type: impl Into<String>) -> Self {
        self.project_type = project_type.into();
        self
    }

    /// Adds a log line (type `application`/`access`/`error`/`deployment`, level
    /// `debug`/`info`/`warning`/`error`/`critical`). Lines added this way are stamped one minute
    /// apart, the last one a minute before the mock started. Once a deployment has explicit
    /// lines it gets no standard ones unless [`SeedDeployment::standard_logs`] says so.
    pub fn log(mut self, log_type: &str, level: &str, message: impl Into<String>) -> Self {
        self.logs.push(SeedLog {
            log_type: log_type.to_owned(),
            level: level.to_owned(),
            message: message.into(),
            ago: None,
        });
        self
    }

    /// Adds a log line stamped `ago` before the mock started.
    pub fn log_at(
        mut self,
        log_type: &str,
        level: &str,
        message: impl Into<String>,
        ago: Duration,
    ) -> Self {
        self.logs.push(SeedLog {
            log_type: log_type.to_owned(),
            level: level.to_owned(),
            message: message.into(),
            ago: Some(ago),
        });
        self
    }

    /// Whether to generate the standard log lines (build, application, access, error) too
    /// (default: only when no explicit line was added).
    pub fn standard_logs(mut self, on: bool) -> Self {
        self.standard_logs = Some(on);
        self
    }

    /// User name in `deployed_by` (default `alice`).
    pub fn deployed_by(mut self, username: impl Into<String>) -> Self {
        self.deployed_by = username.into();
        self
    }

    /// How long before the mock started it was created (default 14 days).
    pub fn created_ago(mut self, age: Duration) -> Self {
        self.age = age;
        self
    }

    fn invalid(&self, what: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("seed deployment '{}': {what}", self.name),
        )
    }

    /// Builds the record; `ordinal` (1-based position in the seed) varies a few figures.
    fn build(&self, ordinal: i64, started: Ts) -> io::Result<Deployment> {
        let status = Status::parse(&self.status)
            .ok_or_else(|| self.invalid(format!("status {}", Status::one_of())))?;
        let environment = Environment::parse(&self.environment)
            .ok_or_else(|| self.invalid(format!("environment {}", Environment::one_of())))?;
        let database_type = match &self.database_type {
            None => None,
            Some(e) => Some(
                Engine::parse(e)
                    .ok_or_else(|| self.invalid(format!("database_type {}", Engine::one_of())))?,
            ),
        };
        if self.name.is_empty() {
            return Err(self.invalid("the name must not be empty".to_owned()));
        }
        if !(1..=10).contains(&self.instances) {
            return Err(self.invalid("instances must be from 1 to 10".to_owned()));
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(self.invalid("error_rate must be from 0.0 to 1.0".to_owned()));
        }
        let mut explicit = Vec::with_capacity(self.logs.len());
        for log in &self.logs {
            let log_type = LogType::parse(&log.log_type)
                .ok_or_else(|| self.invalid(format!("log type {}", LogType::one_of())))?;
            let level = Level::parse(&log.level)
                .ok_or_else(|| self.invalid(format!("log level {}", Level::one_of())))?;
            explicit.push((log_type, level, log));
        }

        let timeline = Timeline::of(status, started, self.age);
        let mut d = Deployment {
            id: ordinal,
            name: self.name.clone(),
            status,
            environment,
            project_type: self.project_type.clone(),
            repo_url: self
                .repo_url
                .clone()
                .unwrap_or_else(|| format!("https://github.com/example/{}.git", self.name)),
            branch: self.branch.clone(),
            domain: self.domain.clone(),
            ssl_enabled: self.ssl,
            python_version: self.python_version.clone(),
            database_type,
            memory_limit: self.memory_limit.clone(),
            instances: self.instances,
            created_at: timeline.created,
            updated_at: timeline.updated,
            deployed_by: User {
                id: 100 + i64::from(self.deployed_by.bytes().map(u32::from).sum::<u32>() % 900),
                username: self.deployed_by.clone(),
            },
            healthy: self.healthy,
            started_at: (status == Status::Running).then_some(timeline.deployed),
            env_vars: self.env_vars.clone(),
            error_rate: self.error_rate,
            logs: Vec::new(),
            history: vec![status],
            generation: 0,
        };
        if self.standard_logs.unwrap_or(explicit.is_empty()) {
            let explains_failure = explicit
                .iter()
                .any(|(t, l, _)| *t == LogType::Deployment && *l >= Level::Error);
            standard_logs(&mut d, ordinal, &timeline, explains_failure);
        }
        let count = explicit.iter().filter(|(_, _, l)| l.ago.is_none()).count();
        let mut k = 0u32;
        for (log_type, level, log) in explicit {
            let ago = log.ago.unwrap_or_else(|| {
                k += 1;
                Duration::from_secs(60 * u64::from(count as u32 - k + 1))
            });
            let at = before(started, ago);
            d.log(at, log_type, level, log.message.clone());
        }
        Ok(d)
    }
}

/// A database the mock starts with (private, TLS required, unlinked by default).
///
/// ```
/// use webops_mcp_testkit::SeedDatabase;
///
/// let db = SeedDatabase::new("shop-db", "postgresql").public(true).deployment("shop-api");
/// # let _ = db;
/// ```
#[derive(Debug, Clone)]
pub struct SeedDatabase {
    name: String,
    engine: String,
    public: bool,
    ssl_required: bool,
    deployment: Option<String>,
}

impl SeedDatabase {
    /// A database `name` of `engine` (`postgresql`, `mysql` or `sqlite`).
    pub fn new(name: impl Into<String>, engine: &str) -> SeedDatabase {
        SeedDatabase {
            name: name.into(),
            engine: engine.to_owned(),
            public: false,
            ssl_required: true,
            deployment: None,
        }
    }

    /// Whether it is reachable from the internet (default false).
    pub fn public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// Whether it requires TLS (default true).
    pub fn ssl_required(mut self, required: bool) -> Self {
        self.ssl_required = required;
        self
    }

    /// Links it to the seeded deployment named `name`.
    pub fn deployment(mut self, name: impl Into<String>) -> Self {
        self.deployment = Some(name.into());
        self
    }
}

/// `ago` before `t`, or the earliest representable time for absurd durations.
fn before(t: Ts, ago: Duration) -> Ts {
    chrono::Duration::from_std(ago)
        .ok()
        .and_then(|ago| t.checked_sub_signed(ago))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// Key moments of a seeded deployment's history.
struct Timeline {
    created: Ts,
    /// When its last build began.
    deployed: Ts,
    /// When it last changed.
    updated: Ts,
    /// Up to when it served traffic (running: the mock's start).
    served_until: Option<Ts>,
}

impl Timeline {
    fn of(status: Status, started: Ts, age: Duration) -> Timeline {
        let ago = |secs: i64| started - chrono::Duration::seconds(secs);
        let deployed = match status {
            Status::Pending => ago(20),
            Status::Building => ago(120),
            Status::Running => ago(26 * 3600),
            Status::Stopped => ago(40 * 3600),
            Status::Failed => ago(2 * 3600),
        };
        let created = before(started, age).min(deployed);
        let (updated, served_until) = match status {
            Status::Pending | Status::Building => (deployed, None),
            Status::Running => (deployed, Some(started)),
            Status::Stopped => (ago(5 * 3600), Some(ago(5 * 3600))),
            Status::Failed => (ago(2 * 3600 - 150), None),
        };
        Timeline {
            created,
            deployed,
            updated,
            served_until,
        }
    }
}

const APP_MESSAGES: &[(&str, &str)] = &[
    ("info", "Booting worker with pid {pid}"),
    ("info", "Cache warmed: {n} keys loaded"),
    (
        "info",
        "Background job cleanup_expired_sessions finished in {ms} ms",
    ),
    ("info", "Sent {n} notification emails"),
    ("debug", "Connection pool: {n} idle, 2 in use"),
    (
        "info",
        "Scheduled task sync_exchange_rates finished in {ms} ms",
    ),
    (
        "warning",
        "Slow query ({ms} ms): SELECT ... FROM orders_order WHERE ...",
    ),
];

const PATHS: &[&str] = &[
    "/",
    "/api/products/",
    "/api/orders/",
    "/api/cart/",
    "/accounts/login/",
    "/static/css/site.css",
    "/health/",
];

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.32.3",
];

fn fill(template: &str, seed: f64) -> String {
    template
        .replace("{pid}", &(1000 + (seed * 30_000.0) as u32).to_string())
        .replace("{n}", &(3 + (seed * 400.0) as u32).to_string())
        .replace("{ms}", &(40 + (seed * 2_000.0) as u32).to_string())
}

/// The build, application, access and error lines of a seeded deployment's history.
/// `explained`: the seed brings its own lines saying why a failed build failed.
fn standard_logs(d: &mut Deployment, ordinal: i64, t: &Timeline, explained: bool) {
    let at = |base: Ts, secs: i64| base + chrono::Duration::seconds(secs);
    let deployed = t.deployed;
    let python = d.python_version.clone().unwrap_or_else(|| "3".to_owned());
    let (repo, branch) = (d.repo_url.clone(), d.branch.clone());
    let info = |d: &mut Deployment, secs: i64, message: String| {
        d.log(
            at(deployed, secs),
            LogType::Deployment,
            Level::Info,
            message,
        );
    };
    info(d, 0, "Deployment queued".to_owned());
    if d.status == Status::Pending {
        return;
    }
    info(
        d,
        10,
        format!("Build started: cloning {repo} (branch {branch})"),
    );
    info(
        d,
        60,
        format!("Installing dependencies from requirements.txt (Python {python})"),
    );
    if d.status == Status::Building {
        return;
    }
    if d.status == Status::Failed {
        if !explained {
            d.log(
                at(deployed, 150),
                LogType::Deployment,
                Level::Error,
                "Deployment failed: build step exited with status 1".to_owned(),
            );
        }
        return;
    }
    if d.project_type == "django" {
        info(
            d,
            100,
            "Running migrations: python manage.py migrate --noinput".to_owned(),
        );
        info(
            d,
            110,
            "Collecting static files: python manage.py collectstatic --noinput".to_owned(),
        );
    }
    let (instances, port, url) = (d.instances, d.port(), d.url());
    info(
        d,
        170,
        format!("Starting {instances} instance(s) on port {port}"),
    );
    info(d, 180, format!("Deployment succeeded: {url} is live"));
    d.log(
        at(deployed, 181),
        LogType::Application,
        Level::Info,
        format!(
            "Listening at: http://0.0.0.0:{port} ({} workers)",
            instances * 2 + 1
        ),
    );

    let Some(until) = t.served_until else {
        return;
    };
    if d.status == Status::Stopped {
        d.log(
            until,
            LogType::Deployment,
            Level::Info,
            format!("Stopped {instances} instance(s)"),
        );
    }
    // Application lines every 45 minutes, access lines every 20, over what was served.
    let from = at(deployed, 240);
    let mut k = 0i64;
    let mut when = from;
    while when < until {
        let r = unit(ordinal, k, 21);
        let (level, template) = APP_MESSAGES[(k as usize + ordinal as usize) % APP_MESSAGES.len()];
        let level = Level::parse(level).unwrap_or(Level::Info);
        d.log(when, LogType::Application, level, fill(template, r));
        k += 1;
        when = at(from, 45 * 60 * k);
    }
    let mut k = 0i64;
    let mut when = from;
    while when < until {
        let r = unit(ordinal, k, 22);
        let path = PATHS[(r * PATHS.len() as f64) as usize % PATHS.len()];
        let failed = unit(ordinal, k, 23) < d.error_rate;
        let code = if failed {
            500
        } else if path == "/accounts/login/" && r > 0.8 {
            302
        } else {
            200
        };
        let bytes = 200 + (unit(ordinal, k, 24) * 9_000.0) as u32;
        let agent = AGENTS[k as usize % AGENTS.len()];
        let client = 2 + (unit(ordinal, k, 25) * 250.0) as u32;
        let method = if path == "/api/cart/" { "POST" } else { "GET" };
        d.log(
            when,
            LogType::Access,
            if failed { Level::Error } else { Level::Info },
            format!("203.0.113.{client} - - \"{method} {path} HTTP/1.1\" {code} {bytes} \"-\" \"{agent}\""),
        );
        if failed {
            d.log(
                when,
                LogType::Error,
                Level::Error,
                format!("Internal Server Error: {path}"),
            );
        }
        k += 1;
        when = at(from, 20 * 60 * k);
    }
    d.log(
        at(from, 3 * 3600 + 17),
        LogType::Error,
        Level::Warning,
        "Not Found: /wp-login.php".to_owned(),
    );
}

/// `gen-app-001`, `gen-app-002`, ...: simple running apps whose environment cycles through
/// development, staging and production.
pub(crate) fn generated(first: usize, n: usize) -> Vec<SeedDeployment> {
    (first..first + n)
        .map(|i| {
            let environment = ["development", "staging", "production"][(i - 1) % 3];
            SeedDeployment::new(format!("gen-app-{i:03}")).environment(environment)
        })
        .collect()
}

/// The demo platform.
pub(crate) fn demo() -> (Vec<SeedDeployment>, Vec<SeedDatabase>) {
    let h = |hours: u64| Duration::from_secs(hours * 3600);
    let m = |minutes: u64| Duration::from_secs(minutes * 60);
    let deployments = vec![
        SeedDeployment::new("shop-api")
            .repo_url("https://github.com/acme/shop-api.git")
            .domain("shop.acme-demo.com")
            .ssl(false)
            .memory_limit(None)
            .error_rate(0.018)
            .deployed_by("bob")
            .created_ago(h(24 * 90))
            .env_var("DJANGO_SETTINGS_MODULE", "shop.settings")
            .env_var("DEBUG", "True")
            .env_var("SECRET_KEY", "django-insecure-changeme")
            .env_var("ALLOWED_HOSTS", "*")
            .env_var("DATABASE_URL", "postgres://shop:S3cretPass@shop-db.internal:5432/shop")
            .env_var("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env_var("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            .env_var("AWS_STORAGE_BUCKET_NAME", "acme-shop-media")
            .standard_logs(true)
            .log_at("deployment", "warning", "System check identified some issues: WARNINGS:", h(26) - m(1))
            .log_at("deployment", "warning", "?: (security.W004) You have not set a value for the SECURE_HSTS_SECONDS setting.", h(26) - m(1))
            .log_at("deployment", "warning", "?: (security.W008) Your SECURE_SSL_REDIRECT setting is not set to True.", h(26) - m(1))
            .log_at("deployment", "warning", "?: (security.W009) Your SECRET_KEY has less than 50 characters, less than 5 unique characters, or it's prefixed with 'django-insecure-'.", h(26) - m(1))
            .log_at("deployment", "warning", "?: (security.W012) SESSION_COOKIE_SECURE is not set to True.", h(26) - m(1))
            .log_at("deployment", "warning", "?: (security.W016) You have 'django.middleware.csrf.CsrfViewMiddleware' in your MIDDLEWARE, but you have not set CSRF_COOKIE_SECURE to True.", h(26) - m(1))
            .log_at("deployment", "warning", "?: (security.W018) You should not have DEBUG set to True in deployment.", h(26) - m(1))
            .log_at("application", "info", "Connecting to database with DATABASE_URL=postgres://shop:S3cretPass@shop-db.internal:5432/shop", h(26) - m(3))
            .log_at("application", "warning", "DEBUG is on: full tracebacks and settings are shown to visitors on errors", h(26) - m(3))
            .log_at("application", "info", "Uploading invoices with AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", h(3))
            .log_at("access", "info", "198.51.100.23 - - \"GET /api/export/?access_token=9f8e7d6c5b4a39281706f5e4d3c2b1a0 HTTP/1.1\" 200 88213 \"-\" \"curl/8.5.0\"", m(50))
            .log_at("error", "error", "Internal Server Error: /api/orders/42/ (DEBUG page served with settings: SECRET_KEY='django-insecure-changeme')", m(35)),
        SeedDeployment::new("billing-portal")
            .repo_url("https://github.com/acme/billing-portal.git")
            .branch("release")
            .domain("billing.acme-demo.com")
            .python_version("3.12")
            .memory_limit(Some("1G"))
            .instances(3)
            .error_rate(0.0008)
            .deployed_by("carol")
            .created_ago(h(24 * 200))
            .env_var("DJANGO_SETTINGS_MODULE", "billing.settings.production")
            .env_var("DEBUG", "False")
            .env_var("SECRET_KEY", "q8Zr2vLxT9mW4pK7sN0cF6hJ3bY5dG1eR8uI2oA4zX7nM9wQ3t")
            .env_var("ALLOWED_HOSTS", "billing.acme-demo.com")
            .env_var("SECURE_SSL_REDIRECT", "True")
            .env_var("SECURE_HSTS_SECONDS", "31536000")
            .env_var("SESSION_COOKIE_SECURE", "True")
            .env_var("CSRF_COOKIE_SECURE", "True")
            .env_var("DATABASE_URL", "postgres://billing@billing-db.internal:5432/billing?sslmode=require"),
        SeedDeployment::new("inventory-sync")
            .status("failed")
            .environment("staging")
            .repo_url("https://github.com/acme/inventory-sync.git")
            .branch("feature/celery-beat")
            .created_ago(h(24 * 30))
            .deployed_by("dave")
            .env_var("DEBUG", "False")
            .env_var("SECRET_KEY", "r7Tq1mZ9xW3vB6nK0pL4sD8fG2hJ5cY1uE9oI3aQ7zX2wR6tN4")
            .env_var("ALLOWED_HOSTS", "inventory.staging.acme-demo.com")
            .env_var("CELERY_BROKER_URL", "redis://redis.internal:6379/0")
            .standard_logs(true)
            .log_at("deployment", "info", "Running migrations: python manage.py migrate --noinput", h(2) - m(2))
            .log_at("deployment", "error", "Traceback (most recent call last):", h(2) - m(2))
            .log_at("deployment", "error", "  File \"/app/manage.py\", line 22, in <module>", h(2) - m(2))
            .log_at("deployment", "error", "    main()", h(2) - m(2))
            .log_at("deployment", "error", "  File \"/app/venv/lib/python3.11/site-packages/django/__init__.py\", line 24, in setup", h(2) - m(2))
            .log_at("deployment", "error", "    apps.populate(settings.INSTALLED_APPS)", h(2) - m(2))
            .log_at("deployment", "error", "  File \"/usr/lib/python3.11/importlib/__init__.py\", line 126, in import_module", h(2) - m(2))
            .log_at("deployment", "error", "    return _bootstrap._gcd_import(name[level:], package, level)", h(2) - m(2))
            .log_at("deployment", "error", "ModuleNotFoundError: No module named 'django_celery_beat'", h(2) - m(2))
            .log_at("deployment", "error", "Deployment failed: release command 'python manage.py migrate' exited with status 1", h(2) - m(2))
            .log_at("error", "critical", "ModuleNotFoundError: No module named 'django_celery_beat'", h(2) - m(2)),
        SeedDeployment::new("legacy-blog")
            .environment("staging")
            .repo_url("http://git.example.com/legacy/blog.git")
            .branch("master")
            .ssl(false)
            .python_version("3.8")
            .database_type("mysql")
            .memory_limit(Some("256M"))
            .error_rate(0.004)
            .deployed_by("erin")
            .created_ago(h(24 * 900))
            .env_var("DEBUG", "False")
            .env_var("SECRET_KEY", "k2Lm8Nq4Rs6Tv0Wx3Yz5Ab7Cd9Ef1Gh2Ij4Kl6Mn8Op0Qr3St")
            .env_var("ALLOWED_HOSTS", "blog.staging.acme-demo.com")
            .env_var("DATABASE_URL", "mysql://blog:blogpass@legacy-blog-db.internal:3306/blog")
            .standard_logs(true)
            .log_at("deployment", "warning", "Python 3.8 reached end of life on 2024-10-07 and gets no security fixes; upgrade to 3.12", h(26) - m(2))
            .log_at("deployment", "warning", "Cloning over plain http: the repository URL is not https", h(26) - m(2)),
        SeedDeployment::new("analytics-dashboard")
            .status("stopped")
            .environment("development")
            .repo_url("https://github.com/acme/analytics-dashboard.git")
            .branch("develop")
            .python_version("3.10")
            .deployed_by("frank")
            .created_ago(h(24 * 45))
            .env_var("DEBUG", "True")
            .env_var("SECRET_KEY", "dev-only-k9s8d7f6g5h4j3k2l1z0x9c8v7b6n5m4q3w2e1r0t9y")
            .env_var("ALLOWED_HOSTS", "localhost,127.0.0.1"),
        SeedDeployment::new("docs-portal")
            .status("pending")
            .environment("development")
            .repo_url("https://github.com/acme/docs-portal.git")
            .python_version("3.12")
            .database_type("sqlite")
            .deployed_by("alice")
            .created_ago(Duration::from_secs(20))
            .env_var("DEBUG", "True"),
        SeedDeployment::new("payments-worker")
            .status("building")
            .environment("staging")
            .repo_url("https://github.com/acme/payments-worker.git")
            .project_type("python")
            .python_version("3.12")
            .memory_limit(Some("768M"))
            .deployed_by("carol")
            .created_ago(h(24 * 60))
            .env_var("PAYMENTS_API_URL", "https://api.payments.example.com/v2")
            .env_var("PAYMENTS_API_KEY", "pk_demo_5d41402abc4b2a76b9719d911017c592"),
        SeedDeployment::new("search-api")
            .repo_url("https://github.com/acme/search-api.git")
            .domain("search.acme-demo.com")
            .instances(2)
            .healthy(false)
            .error_rate(0.127)
            .deployed_by("bob")
            .created_ago(h(24 * 120))
            .env_var("DEBUG", "False")
            .env_var("SECRET_KEY", "p0O9i8U7y6T5r4E3w2Q1a2S3d4F5g6H7j8K9l0Z1x2C3v4B5n6")
            .env_var("ALLOWED_HOSTS", "search.acme-demo.com")
            .env_var("SEARCH_DB_HOST", "search-db.internal")
            .standard_logs(true)
            .log_at("error", "error", "OperationalError: connection to server at \"search-db.internal\" (port 5432) failed: timeout expired", m(42))
            .log_at("error", "error", "OperationalError: connection to server at \"search-db.internal\" (port 5432) failed: timeout expired", m(17))
            .log_at("error", "critical", "Worker timeout (pid:4711): request exceeded 30 s and was killed", m(9))
            .log_at("application", "warning", "Health check /health/ failed 3 times in a row: database unreachable", m(5))
            .log_at("access", "error", "203.0.113.77 - - \"GET /api/search/?q=shoes HTTP/1.1\" 504 167 \"-\" \"Mozilla/5.0\"", m(4)),
    ];
    let databases = vec![
        SeedDatabase::new("shop-db", "postgresql")
            .public(true)
            .deployment("shop-api"),
        SeedDatabase::new("billing-db", "postgresql").deployment("billing-portal"),
        SeedDatabase::new("legacy-blog-db", "mysql")
            .ssl_required(false)
            .deployment("legacy-blog"),
        SeedDatabase::new("search-db", "postgresql").deployment("search-api"),
        SeedDatabase::new("analytics-db", "postgresql").deployment("analytics-dashboard"),
    ];
    (deployments, databases)
}

/// Builds the state a mock starts with.
pub(crate) fn build_state(
    deployments: &[SeedDeployment],
    databases: &[SeedDatabase],
    started: Ts,
) -> io::Result<State> {
    let mut state = State::new();
    for (i, seed) in deployments.iter().enumerate() {
        if state.by_name(&seed.name).is_some() {
            return Err(seed.invalid("the name is used twice".to_owned()));
        }
        let deployment = seed.build(i as i64 + 1, started)?;
        state.insert_seeded(deployment);
    }
    for db in databases {
        let invalid = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("seed database '{}': {what}", db.name),
            )
        };
        let engine = Engine::parse(&db.engine)
            .ok_or_else(|| invalid(format!("engine {}", Engine::one_of())))?;
        let deployment_id = match &db.deployment {
            None => None,
            Some(name) => Some(
                state
                    .by_name(name)
                    .map(|d| d.id)
                    .ok_or_else(|| invalid(format!("no seeded deployment named '{name}'")))?,
            ),
        };
        state.insert_database(Database {
            id: 0,
            name: db.name.clone(),
            engine,
            publicly_accessible: db.public,
            ssl_required: db.ssl_required,
            deployment_id,
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Ts {
        chrono::DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn demo_builds_and_is_deterministic() {
        let (d, db) = demo();
        let a = build_state(&d, &db, started()).unwrap();
        let b = build_state(&d, &db, started()).unwrap();
        assert_eq!(a.deployments.len(), 8);
        for (x, y) in a.deployments.values().zip(b.deployments.values()) {
            assert_eq!(x.logs.len(), y.logs.len());
            for (l, m) in x.logs.iter().zip(&y.logs) {
                assert_eq!((l.timestamp, &l.message), (m.timestamp, &m.message));
            }
        }
        let statuses: std::collections::BTreeSet<_> =
            a.deployments.values().map(|d| d.status).collect();
        assert_eq!(statuses.len(), 5, "all five states");
        let strong = a.by_name("billing-portal").unwrap();
        assert_eq!(strong.env_vars["SECRET_KEY"].len(), 50);
        let shop = a.by_name("shop-api").unwrap();
        assert_eq!(shop.env_vars["AWS_ACCESS_KEY_ID"].len(), 20);
        assert_eq!(shop.env_vars["AWS_SECRET_ACCESS_KEY"].len(), 40);
        for d in a.deployments.values() {
            assert!(d.logs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
            assert!(d.logs.iter().all(|l| l.timestamp < started()));
        }
    }

    #[test]
    fn invalid_seeds_are_refused() {
        for bad in [
            SeedDeployment::new("a").status("paused"),
            SeedDeployment::new("a").environment("prod"),
            SeedDeployment::new("a").instances(0),
            SeedDeployment::new("a").error_rate(2.0),
            SeedDeployment::new("a").database_type("oracle"),
            SeedDeployment::new("a").log("stdout", "info", "x"),
            SeedDeployment::new(""),
        ] {
            let e = build_state(&[bad], &[], started()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        let twice = [SeedDeployment::new("a"), SeedDeployment::new("a")];
        assert!(build_state(&twice, &[], started()).is_err());
        let orphan = [SeedDatabase::new("db", "postgresql").deployment("nope")];
        assert!(build_state(&[], &orphan, started()).is_err());
    }

    #[test]
    fn explicit_logs_are_a_minute_apart_and_replace_standard_ones() {
        let seed = SeedDeployment::new("a")
            .log("application", "info", "one")
            .log("application", "error", "two");
        let state = build_state(&[seed], &[], started()).unwrap();
        let d = state.by_name("a").unwrap();
        assert_eq!(d.logs.len(), 2);
        assert_eq!(d.logs[0].message, "one");
        assert_eq!(
            d.logs[1].timestamp - d.logs[0].timestamp,
            chrono::Duration::minutes(1)
        );
        assert_eq!(
            d.logs[1].timestamp,
            started() - chrono::Duration::minutes(1)
        );
    }

    #[test]
    fn a_failed_seed_with_its_own_reason_gets_no_generic_one() {
        let (d, db) = demo();
        let state = build_state(&d, &db, started()).unwrap();
        let failed = state.by_name("inventory-sync").unwrap();
        let last = failed
            .logs
            .iter()
            .rfind(|l| l.log_type == LogType::Deployment)
            .unwrap();
        assert!(
            last.message
                .starts_with("Deployment failed: release command")
        );
        let plain =
            build_state(&[SeedDeployment::new("x").status("failed")], &[], started()).unwrap();
        let last = plain
            .by_name("x")
            .unwrap()
            .logs
            .last()
            .unwrap()
            .message
            .clone();
        assert_eq!(last, "Deployment failed: build step exited with status 1");
    }

    #[test]
    fn absurd_ages_do_not_panic() {
        let seed = SeedDeployment::new("old")
            .created_ago(Duration::MAX)
            .log_at("application", "info", "x", Duration::MAX);
        let state = build_state(&[seed], &[], started()).unwrap();
        assert_eq!(state.by_name("old").unwrap().logs[0].message, "x");
    }

    #[test]
    fn generated_names_and_environments() {
        let g = generated(1, 4);
        let names: Vec<_> = g.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["gen-app-001", "gen-app-002", "gen-app-003", "gen-app-004"]
        );
        assert_eq!(g[3].environment, "development");
    }
}
