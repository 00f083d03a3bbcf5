//! The mock platform's records (deployments, log lines, databases) and their JSON form.
//!
//! The wire structs mirror the contract of `docs/webops-api.md` field for field; this crate
//! depends on no workspace crate, so it keeps its own copy of the contract's shapes.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

use crate::numbers;

/// A point in time as the mock stores it: UTC, whole milliseconds (so what goes on the wire is
/// exactly what is compared against `since`).
pub(crate) type Ts = DateTime<Utc>;

/// The current time, cut to whole milliseconds.
pub(crate) fn now() -> Ts {
    Utc::now().trunc_subsecs(3)
}

/// Declares a closed string enum of the contract: wire names, parsing, and the list of allowed
/// values for validation messages.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            #[allow(dead_code)] // not every enum needs every helper
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as it appears on the wire.
            pub(crate) fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses a wire value (exact, lower case).
            pub(crate) fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }

            /// "must be one of a, b, c" for validation messages.
            #[allow(dead_code)] // not every enum needs every helper
            pub(crate) fn one_of() -> String {
                let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                format!("must be one of: {}", names.join(", "))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Lifecycle state of a deployment.
    Status { Pending => "pending", Building => "building", Running => "running",
             Stopped => "stopped", Failed => "failed" }
}

wire_enum! {
    /// Environment of a deployment.
    Environment { Development => "development", Staging => "staging", Production => "production" }
}

wire_enum! {
    /// Database engine.
    Engine { Postgresql => "postgresql", Mysql => "mysql", Sqlite => "sqlite" }
}

wire_enum! {
    /// Log stream.
    LogType { Application => "application", Access => "access", Error => "error",
              Deployment => "deployment" }
}

wire_enum! {
    /// Log severity.
    Level { Debug => "debug", Info => "info", Warning => "warning", Error => "error",
            Critical => "critical" }
}

wire_enum! {
    /// State of a platform service.
    ServiceState { Running => "running", Stopped => "stopped", Failed => "failed" }
}

wire_enum! {
    /// Window of `monitoring/metrics/`.
    Period { Hour => "1h", SixHours => "6h", Day => "24h", Week => "7d", Month => "30d" }
}

impl Period {
    /// Seconds between two points, and how many points the window holds.
    pub(crate) fn grid(self) -> (i64, i64) {
        match self {
            Period::Hour => (300, 12),
            Period::SixHours => (1_800, 12),
            Period::Day => (3_600, 24),
            Period::Week => (21_600, 28),
            Period::Month => (86_400, 30),
        }
    }
}

/// The log lines a deployment keeps: the newest 10,000 (up to 11,000 between trims).
const MAX_LOG_LINES: usize = 10_000;

/// One line of a deployment's logs.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    pub(crate) timestamp: Ts,
    pub(crate) log_type: LogType,
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) source: String,
}

/// The user every mock deployment is deployed by.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) username: String,
}

/// A deployment, with everything the API shows about it.
#[derive(Debug, Clone)]
pub(crate) struct Deployment {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) status: Status,
    pub(crate) environment: Environment,
    pub(crate) project_type: String,
    pub(crate) repo_url: String,
    pub(crate) branch: String,
    pub(crate) domain: Option<String>,
    pub(crate) ssl_enabled: bool,
    pub(crate) python_version: Option<String>,
    pub(crate) database_type: Option<Engine>,
    pub(crate) memory_limit: Option<String>,
    pub(crate) instances: u32,
    pub(crate) created_at: Ts,
    pub(crate) updated_at: Ts,
    pub(crate) deployed_by: User,
    /// Whether the app passes its health checks while running.
    pub(crate) healthy: bool,
    /// When the app last started (running only).
    pub(crate) started_at: Option<Ts>,
    pub(crate) env_vars: BTreeMap<String, String>,
    /// Share of failed requests while running, 0.0..=1.0.
    pub(crate) error_rate: f64,
    pub(crate) logs: Vec<LogLine>,
    /// Every status it has had, oldest first.
    pub(crate) history: Vec<Status>,
    /// Bumped by every change of course (redeploy, forced status) so that a lifecycle task
    /// started earlier knows it is stale.
    pub(crate) generation: u64,
}

impl Deployment {
    /// Moves to `status`, remembering it in the history.
    pub(crate) fn set_status(&mut self, status: Status) {
        self.status = status;
        self.history.push(status);
    }

    /// Appends a log line stamped `at`.
    pub(crate) fn log(&mut self, at: Ts, log_type: LogType, level: Level, message: String) {
        let source = match log_type {
            LogType::Deployment => "webops.deploy",
            LogType::Access => "nginx",
            LogType::Error => "django.request",
            LogType::Application => {
                if self.project_type == "django" {
                    "django"
                } else {
                    "app"
                }
            }
        };
        if self.logs.len() >= MAX_LOG_LINES + MAX_LOG_LINES / 10 {
            // Drop the oldest in batches so a chatty deployment stays bounded cheaply.
            self.logs.drain(..self.logs.len() - MAX_LOG_LINES);
        }
        self.logs.push(LogLine {
            timestamp: at,
            log_type,
            level,
            message,
            source: source.to_owned(),
        });
    }

    /// Internal port of the app.
    pub(crate) fn port(&self) -> i64 {
        8000 + self.id
    }

    /// The public URL.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.ssl_enabled { "https" } else { "http" };
        match &self.domain {
            Some(domain) => format!("{scheme}://{domain}"),
            None => format!("{scheme}://{}.apps.webops.test", self.name),
        }
    }

    /// Whether the app currently passes its health checks.
    pub(crate) fn is_healthy(&self) -> bool {
        self.status == Status::Running && self.healthy
    }

    /// The summary object of `GET deployments/`.
    pub(crate) fn summary(&self, at: Ts) -> DeploymentWire<'_> {
        self.wire(at, false)
    }

    /// The detail object of `GET deployments/{id}/`.
    pub(crate) fn detail(&self, at: Ts) -> DetailWire<'_> {
        let metrics = numbers::deployment_metrics(self);
        DetailWire {
            base: self.wire(at, true),
            env_vars: &self.env_vars,
            metrics,
        }
    }

    fn wire(&self, at: Ts, detail: bool) -> DeploymentWire<'_> {
        let running = self.status == Status::Running;
        let uptime_seconds = match (running, self.started_at) {
            (true, Some(started)) => (at - started).num_seconds().max(0),
            _ => 0,
        };
        let last_check = match self.status {
            Status::Pending | Status::Building => None,
            Status::Running => Some(at),
            Status::Stopped | Status::Failed => Some(self.updated_at),
        };
        let healthy = self.is_healthy();
        let checks = detail.then(|| ChecksWire {
            http_response: healthy,
            database_connection: if self.database_type.is_some() {
                healthy
            } else {
                running
            },
            disk_space: true,
        });
        DeploymentWire {
            id: self.id,
            name: &self.name,
            status: self.status,
            environment: self.environment,
            project_type: &self.project_type,
            repo_url: &self.repo_url,
            branch: &self.branch,
            domain: self.domain.as_deref(),
            url: Some(self.url()),
            port: Some(self.port()),
            ssl_enabled: self.ssl_enabled,
            python_version: self.python_version.as_deref(),
            database_type: self.database_type,
            memory_limit: self.memory_limit.as_deref(),
            instances: self.instances,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deployed_by: &self.deployed_by,
            health: HealthWire {
                is_healthy: healthy,
                uptime_seconds,
                last_check,
                checks,
            },
        }
    }
}

/// `Deployment` of the contract.
#[derive(Debug, Serialize)]
pub(crate) struct DeploymentWire<'a> {
    id: i64,
    name: &'a str,
    status: Status,
    environment: Environment,
    project_type: &'a str,
    repo_url: &'a str,
    branch: &'a str,
    domain: Option<&'a str>,
    url: Option<String>,
    port: Option<i64>,
    ssl_enabled: bool,
    python_version: Option<&'a str>,
    database_type: Option<Engine>,
    memory_limit: Option<&'a str>,
    instances: u32,
    created_at: Ts,
    updated_at: Ts,
    deployed_by: &'a User,
    health: HealthWire,
}

/// `health` of a deployment; `checks` only in the detail view.
#[derive(Debug, Serialize)]
struct HealthWire {
    is_healthy: bool,
    uptime_seconds: i64,
    last_check: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<ChecksWire>,
}

#[derive(Debug, Serialize)]
struct ChecksWire {
    http_response: bool,
    database_connection: bool,
    disk_space: bool,
}

/// `DeploymentDetail` of the contract.
#[derive(Debug, Serialize)]
pub(crate) struct DetailWire<'a> {
    #[serde(flatten)]
    base: DeploymentWire<'a>,
    env_vars: &'a BTreeMap<String, String>,
    metrics: MetricsWire,
}

/// `metrics` of a deployment detail.
#[derive(Debug, Serialize)]
pub(crate) struct MetricsWire {
    pub(crate) cpu_usage: f64,
    pub(crate) memory_usage: f64,
    pub(crate) request_count_24h: i64,
    pub(crate) error_rate: f64,
}

/// `LogEntry` of the contract.
#[derive(Debug, Serialize)]
pub(crate) struct LogEntryWire<'a> {
    timestamp: Ts,
    level: Level,
    message: &'a str,
    source: &'a str,
}

impl<'a> From<&'a LogLine> for LogEntryWire<'a> {
    fn from(line: &'a LogLine) -> Self {
        LogEntryWire {
            timestamp: line.timestamp,
            level: line.level,
            message: &line.message,
            source: &line.source,
        }
    }
}

/// A database of the platform.
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) engine: Engine,
    pub(crate) publicly_accessible: bool,
    pub(crate) ssl_required: bool,
    pub(crate) deployment_id: Option<i64>,
}

/// `{id, name}` of the deployment a database belongs to.
#[derive(Debug, Serialize)]
pub(crate) struct LinkWire<'a> {
    pub(crate) id: i64,
    pub(crate) name: &'a str,
}

/// One item of `GET databases/`.
#[derive(Debug, Serialize)]
pub(crate) struct DatabaseWire<'a> {
    pub(crate) id: i64,
    pub(crate) name: &'a str,
    pub(crate) engine: Engine,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    pub(crate) size_mb: f64,
    pub(crate) connection_count: i64,
    pub(crate) publicly_accessible: bool,
    pub(crate) ssl_required: bool,
    pub(crate) deployment: Option<LinkWire<'a>>,
}
