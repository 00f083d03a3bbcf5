//! The data types of the WebOps REST API v1: what the server sends and what the client sends.
//!
//! Decoding is tolerant: unknown fields are ignored and an unknown enum value is kept as the
//! `Other(String)` variant instead of failing the whole object.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, always UTC.
pub type Timestamp = DateTime<Utc>;

/// Declares a string enum of the API with an `Other(String)` fallback for values this version
/// of the client does not know yet.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the client does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Every value this version knows, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Other(other) => other.as_str(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(match s {
                    $( $wire => $name::$variant, )+
                    other => $name::Other(other.to_owned()),
                })
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s.parse() {
                    Ok(value) => value,
                    Err(never) => match never {},
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

string_enum! {
    /// Where a deployment is in its lifecycle.
    pub enum DeploymentStatus {
        /// Accepted, not yet building.
        Pending => "pending",
        /// Cloning, installing, building.
        Building => "building",
        /// Serving traffic.
        Running => "running",
        /// Stopped by an operator.
        Stopped => "stopped",
        /// The deployment process failed.
        Failed => "failed",
    }
}

string_enum! {
    /// The environment a deployment belongs to.
    pub enum Environment {
        /// Development.
        Development => "development",
        /// Staging.
        Staging => "staging",
        /// Production.
        Production => "production",
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from a macro shared with enums without a default
impl Default for Environment {
    fn default() -> Self {
        Environment::Production
    }
}

string_enum! {
    /// The database engine attached to a deployment.
    pub enum DatabaseType {
        /// PostgreSQL.
        Postgresql => "postgresql",
        /// MySQL.
        Mysql => "mysql",
        /// SQLite.
        Sqlite => "sqlite",
    }
}

string_enum! {
    /// Severity of a log line.
    pub enum LogLevel {
        /// Debug.
        Debug => "debug",
        /// Info.
        Info => "info",
        /// Warning.
        Warning => "warning",
        /// Error.
        Error => "error",
        /// Critical.
        Critical => "critical",
    }
}

string_enum! {
    /// Which log stream of a deployment to read.
    pub enum LogType {
        /// The application's own output (the default).
        Application => "application",
        /// HTTP access log.
        Access => "access",
        /// Error log.
        Error => "error",
        /// The deployment process (clone, build, start).
        Deployment => "deployment",
    }
}

string_enum! {
    /// Overall platform health.
    pub enum OverallStatus {
        /// All good.
        Healthy => "healthy",
        /// Working with problems.
        Degraded => "degraded",
        /// Not working.
        Unhealthy => "unhealthy",
    }
}

string_enum! {
    /// State of a platform service (web server, worker, database, ...).
    pub enum ServiceState {
        /// Running.
        Running => "running",
        /// Stopped.
        Stopped => "stopped",
        /// Failed.
        Failed => "failed",
    }
}

string_enum! {
    /// Time window of `monitoring/metrics/`.
    pub enum MetricsPeriod {
        /// The last hour.
        Hour => "1h",
        /// The last six hours.
        SixHours => "6h",
        /// The last day.
        Day => "24h",
        /// The last week.
        Week => "7d",
        /// The last thirty days.
        Month => "30d",
    }
}

/// `GET status/`: the API is up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiStatus {
    /// `"ok"` when healthy.
    pub status: String,
    /// The server's version string.
    pub version: String,
    /// The server's clock.
    pub timestamp: Timestamp,
}

/// The user who deployed something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UserRef {
    /// User id.
    pub id: i64,
    /// User name.
    pub username: String,
}

/// Detailed health checks, present on [`DeploymentDetail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthChecks {
    /// The app answers HTTP.
    pub http_response: bool,
    /// The app reaches its database.
    pub database_connection: bool,
    /// Enough disk space.
    pub disk_space: bool,
}

impl HealthChecks {
    /// Names of the checks that failed, in declaration order.
    pub fn failed(&self) -> Vec<&'static str> {
        [
            ("http_response", self.http_response),
            ("database_connection", self.database_connection),
            ("disk_space", self.disk_space),
        ]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| name)
        .collect()
    }
}

/// Health of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentHealth {
    /// Whether the last check passed.
    pub is_healthy: bool,
    /// Seconds since the app last started.
    #[serde(default)]
    pub uptime_seconds: i64,
    /// When the last check ran.
    #[serde(default)]
    pub last_check: Option<Timestamp>,
    /// The individual checks (detail view only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<HealthChecks>,
}

/// A deployment as listed by `GET deployments/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Deployment {
    /// Numeric id, used in paths.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Lifecycle state.
    pub status: DeploymentStatus,
    /// Environment (defaults to production when the server omits it).
    #[serde(default)]
    pub environment: Environment,
    /// `django`, `python`, `nodejs`, `static`, `docker`, ...
    #[serde(default)]
    pub project_type: String,
    /// Git repository URL.
    pub repo_url: String,
    /// Git branch.
    pub branch: String,
    /// Custom domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Public URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Internal port.
    #[serde(default)]
    pub port: Option<i64>,
    /// Whether TLS is enabled.
    #[serde(default)]
    pub ssl_enabled: bool,
    /// Python version, e.g. `"3.11"`.
    #[serde(default)]
    pub python_version: Option<String>,
    /// Attached database engine.
    #[serde(default)]
    pub database_type: Option<DatabaseType>,
    /// Memory limit, e.g. `"512M"`.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// Number of instances (1..10).
    #[serde(default = "one")]
    pub instances: u32,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Who deployed it.
    pub deployed_by: UserRef,
    /// Health summary.
    pub health: DeploymentHealth,
}

fn one() -> u32 {
    1
}

/// Environment variables of a deployment. Values are secrets: `Debug` shows only the names.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EnvVars(pub BTreeMap<String, String>);

impl EnvVars {
    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Iterates over `(name, value)` pairs in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        EnvVars(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// Runtime metrics of one deployment (detail view).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentMetrics {
    /// CPU usage, percent.
    #[serde(default)]
    pub cpu_usage: f64,
    /// Memory usage, percent.
    #[serde(default)]
    pub memory_usage: f64,
    /// Requests in the last 24 hours.
    #[serde(default)]
    pub request_count_24h: i64,
    /// Share of requests that failed, 0.0..=1.0.
    #[serde(default)]
    pub error_rate: f64,
}

/// `GET deployments/{id}/`: a deployment with its env vars and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentDetail {
    /// The fields shared with [`Deployment`].
    #[serde(flatten)]
    pub deployment: Deployment,
    /// Environment variables (secret values).
    #[serde(default)]
    pub env_vars: EnvVars,
    /// Runtime metrics.
    #[serde(default)]
    pub metrics: DeploymentMetrics,
}

impl std::ops::Deref for DeploymentDetail {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        &self.deployment
    }
}

/// Pagination block of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Pagination {
    /// This page, from 1.
    pub page: u32,
    /// Items per page.
    pub per_page: u32,
    /// Items in all pages.
    pub total: u64,
    /// Number of pages.
    pub total_pages: u32,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Where this page is.
    pub pagination: Pagination,
}

impl Pagination {
    /// A pagination block (for tests and alternative [`crate::WebOpsApi`] implementations).
    pub fn new(page: u32, per_page: u32, total: u64) -> Self {
        let total_pages = if per_page == 0 {
            0
        } else {
            u32::try_from(total.div_ceil(u64::from(per_page))).unwrap_or(u32::MAX)
        };
        Pagination {
            page,
            per_page,
            total,
            total_pages,
        }
    }
}

impl<T> Page<T> {
    /// A page of `items` (for tests and alternative [`crate::WebOpsApi`] implementations).
    pub fn new(items: Vec<T>, pagination: Pagination) -> Self {
        Page { items, pagination }
    }
}

/// Query of `GET deployments/`. Every field is optional; `Default` lists the first page.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct DeploymentFilter {
    /// Only this status.
    pub status: Option<DeploymentStatus>,
    /// Only this environment.
    pub environment: Option<Environment>,
    /// Only this project type.
    pub project_type: Option<String>,
    /// Substring search on names.
    pub search: Option<String>,
    /// Page number, from 1.
    pub page: Option<u32>,
    /// Items per page, 1..=100 (server default 20).
    pub per_page: Option<u32>,
}

impl DeploymentFilter {
    /// An empty filter.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only deployments in `status`.
    pub fn status(mut self, status: DeploymentStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Only deployments in `environment`.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }
    /// Only deployments of `project_type`.
    pub fn project_type(mut self, project_type: impl Into<String>) -> Self {
        self.project_type = Some(project_type.into());
        self
    }
    /// Names containing `search`.
    pub fn search(mut self, search: impl Into<String>) -> Self {
        self.search = Some(search.into());
        self
    }
    /// Page number, from 1.
    pub fn page(mut self, page: u32) -> Self {
        self.page = Some(page);
        self
    }
    /// Items per page, 1..=100.
    pub fn per_page(mut self, per_page: u32) -> Self {
        self.per_page = Some(per_page);
        self
    }
}

/// Body of `POST deployments/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NewDeployment {
    /// Unique name.
    pub name: String,
    /// Git repository URL (https).
    pub repo_url: String,
    /// Branch (server default `main`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Project type (server default `django`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_type: Option<String>,
    /// Environment (server default production).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// Python version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
    /// Database engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_type: Option<DatabaseType>,
    /// Custom domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// TLS (server default on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_enabled: Option<bool>,
    /// Memory limit, e.g. `"512M"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// Environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<EnvVars>,
}

impl NewDeployment {
    /// A deployment of `repo_url` named `name`, everything else the server's default.
    pub fn new(name: impl Into<String>, repo_url: impl Into<String>) -> Self {
        NewDeployment {
            name: name.into(),
            repo_url: repo_url.into(),
            branch: None,
            project_type: None,
            environment: None,
            python_version: None,
            database_type: None,
            domain: None,
            ssl_enabled: None,
            memory_limit: None,
            env_vars: None,
        }
    }
    /// Git branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }
    /// Project type.
    pub fn project_type(mut self, project_type: impl Into<String>) -> Self {
        self.project_type = Some(project_type.into());
        self
    }
    /// Environment.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }
    /// Python version.
    pub fn python_version(mut self, version: impl Into<String>) -> Self {
        self.python_version = Some(version.into());
        self
    }
    /// Database engine.
    pub fn database_type(mut self, database_type: DatabaseType) -> Self {
        self.database_type = Some(database_type);
        self
    }
    /// Custom domain.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
    /// TLS on or off.
    pub fn ssl_enabled(mut self, enabled: bool) -> Self {
        self.ssl_enabled = Some(enabled);
        self
    }
    /// Memory limit.
    pub fn memory_limit(mut self, limit: impl Into<String>) -> Self {
        self.memory_limit = Some(limit.into());
        self
    }
    /// Environment variables.
    pub fn env_vars(mut self, env_vars: EnvVars) -> Self {
        self.env_vars = Some(env_vars);
        self
    }
}

/// Answer of `POST deployments/` (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreatedDeployment {
    /// New id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Always `pending` on creation.
    pub status: DeploymentStatus,
    /// Id of the background deployment task.
    #[serde(default)]
    pub deployment_task_id: String,
    /// When the server expects it to be done.
    #[serde(default)]
    pub estimated_completion: Option<Timestamp>,
}

/// Body of `PUT deployments/{id}/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct DeploymentUpdate {
    /// New branch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// New domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// New environment variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<EnvVars>,
}

impl DeploymentUpdate {
    /// An update that changes nothing.
    pub fn new() -> Self {
        Self::default()
    }
    /// Change the branch.
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }
    /// Change the domain.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
    /// Replace the environment variables.
    pub fn env_vars(mut self, env_vars: EnvVars) -> Self {
        self.env_vars = Some(env_vars);
        self
    }
}

/// Answer of `DELETE deployments/{id}/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Deleted {
    /// The deleted id.
    pub id: i64,
    /// True when the deployment is gone; false when WebOps only accepted the request and
    /// deletes in the background (the control panel).
    pub deleted: bool,
}

impl Deleted {
    /// A delete answer (for alternative [`crate::WebOpsApi`] implementations).
    pub fn new(id: i64, deleted: bool) -> Self {
        Deleted { id, deleted }
    }
}

/// One of the server's own checks of a deployment's project (the control panel's project
/// validation). The message is the server's text: untrusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProjectCheck {
    /// Whether the check passed.
    pub passed: bool,
    /// `info`, `warning`, `error`, ...
    pub level: String,
    /// What the server found.
    pub message: String,
    /// The server marked the finding as a security risk.
    pub security_risk: bool,
}

/// Answer of start/stop/restart/redeploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionResult {
    /// Deployment id.
    pub id: i64,
    /// Status after the action.
    pub status: DeploymentStatus,
    /// Human-readable message.
    #[serde(default)]
    pub message: String,
}

/// Answer of `POST deployments/{id}/scale/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScaleResult {
    /// Deployment id.
    pub id: i64,
    /// Instances now.
    pub instances: u32,
    /// Status after scaling.
    pub status: DeploymentStatus,
}

/// Query of `GET deployments/{id}/logs/`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LogQuery {
    /// Which stream (server default application).
    pub log_type: Option<LogType>,
    /// How many of the newest lines, 1..=1000 (server default 100).
    pub lines: Option<u32>,
    /// Only this level.
    pub level: Option<LogLevel>,
    /// Only lines at or after this time.
    pub since: Option<Timestamp>,
}

impl LogQuery {
    /// The server's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Which stream.
    pub fn log_type(mut self, log_type: LogType) -> Self {
        self.log_type = Some(log_type);
        self
    }
    /// How many lines.
    pub fn lines(mut self, lines: u32) -> Self {
        self.lines = Some(lines);
        self
    }
    /// Only this level.
    pub fn level(mut self, level: LogLevel) -> Self {
        self.level = Some(level);
        self
    }
    /// Only lines since.
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogEntry {
    /// When.
    pub timestamp: Timestamp,
    /// Severity.
    pub level: LogLevel,
    /// The text (untrusted: written by the app).
    pub message: String,
    /// Which component wrote it.
    #[serde(default)]
    pub source: String,
}

/// Answer of `GET deployments/{id}/logs/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Logs {
    /// The lines, oldest first.
    pub logs: Vec<LogEntry>,
    /// Lines in the stream in all.
    #[serde(default)]
    pub total_lines: u64,
    /// Whether the stream is still being written.
    #[serde(default)]
    pub is_live: bool,
}

/// A deployment a database belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentLink {
    /// Deployment id.
    pub id: i64,
    /// Deployment name.
    pub name: String,
}

/// One database of `GET databases/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Database {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Engine (`postgresql`, `mysql`, ...).
    pub engine: DatabaseType,
    /// Host.
    #[serde(default)]
    pub host: String,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// Size in MiB.
    #[serde(default)]
    pub size_mb: f64,
    /// Open connections.
    #[serde(default)]
    pub connection_count: i64,
    /// Reachable from the internet (extension; `None` when the server does not say).
    #[serde(default)]
    pub publicly_accessible: Option<bool>,
    /// Requires TLS (extension; `None` when the server does not say).
    #[serde(default)]
    pub ssl_required: Option<bool>,
    /// The owning deployment.
    #[serde(default)]
    pub deployment: Option<DeploymentLink>,
}

/// Machine statistics of `monitoring/health/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SystemStats {
    /// CPU, percent.
    pub cpu_percent: f64,
    /// Memory, percent.
    pub memory_percent: f64,
    /// Disk, percent.
    pub disk_percent: f64,
    /// 1, 5 and 15 minute load averages.
    #[serde(default)]
    pub load_average: [f64; 3],
    /// Host uptime.
    #[serde(default)]
    pub uptime_seconds: i64,
}

/// Deployment counts of `monitoring/health/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DeploymentCounts {
    /// All.
    pub total: u64,
    /// Running.
    pub running: u64,
    /// Stopped.
    pub stopped: u64,
    /// Failed.
    pub failed: u64,
}

/// `GET monitoring/health/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SystemHealth {
    /// Overall verdict.
    pub overall_status: OverallStatus,
    /// When measured.
    pub timestamp: Timestamp,
    /// Machine statistics.
    pub system: SystemStats,
    /// Platform services by name.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceState>,
    /// Deployment counts.
    #[serde(default)]
    pub deployments: DeploymentCounts,
}

/// One sample of `monitoring/metrics/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricPoint {
    /// When.
    pub timestamp: Timestamp,
    /// CPU, percent.
    pub cpu_percent: f64,
    /// Memory, percent.
    pub memory_percent: f64,
    /// Requests in the sample interval.
    #[serde(default)]
    pub request_count: i64,
    /// Share of failed requests, 0.0..=1.0.
    #[serde(default)]
    pub error_rate: f64,
}

/// `GET monitoring/metrics/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metrics {
    /// The period asked for.
    pub period: MetricsPeriod,
    /// Samples, oldest first.
    pub points: Vec<MetricPoint>,
}

/// A deployment named by numeric id or by name. A string of digits is an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeploymentRef {
    /// The numeric id.
    Id(i64),
    /// The unique name.
    Name(String),
}

impl fmt::Display for DeploymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeploymentRef::Id(id) => write!(f, "{id}"),
            DeploymentRef::Name(name) => f.write_str(name),
        }
    }
}

impl From<i64> for DeploymentRef {
    fn from(id: i64) -> Self {
        DeploymentRef::Id(id)
    }
}

impl From<&str> for DeploymentRef {
    fn from(s: &str) -> Self {
        let trimmed = s.trim();
        match trimmed.parse::<i64>() {
            Ok(id) if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) => {
                DeploymentRef::Id(id)
            }
            _ => DeploymentRef::Name(trimmed.to_owned()),
        }
    }
}

impl From<String> for DeploymentRef {
    fn from(s: String) -> Self {
        DeploymentRef::from(s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_are_kept() {
        let s: DeploymentStatus = serde_json::from_str("\"paused\"").unwrap();
        assert_eq!(s, DeploymentStatus::Other("paused".into()));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"paused\"");
        let s: DeploymentStatus = serde_json::from_str("\"running\"").unwrap();
        assert_eq!(s, DeploymentStatus::Running);
    }

    #[test]
    fn deployment_ref_parses_digits_as_id() {
        assert_eq!(DeploymentRef::from("42"), DeploymentRef::Id(42));
        assert_eq!(DeploymentRef::from(" 7 "), DeploymentRef::Id(7));
        assert_eq!(
            DeploymentRef::from("shop-api"),
            DeploymentRef::Name("shop-api".into())
        );
        assert_eq!(DeploymentRef::from("-1"), DeploymentRef::Name("-1".into()));
    }

    #[test]
    fn pagination_counts_pages() {
        assert_eq!(Pagination::new(1, 100, 250).total_pages, 3);
        assert_eq!(Pagination::new(1, 20, 0).total_pages, 0);
        assert_eq!(Pagination::new(1, 0, 5).total_pages, 0);
    }

    #[test]
    fn env_vars_debug_hides_values() {
        let vars: EnvVars = [("SECRET_KEY", "hunter2")].into_iter().collect();
        let shown = format!("{vars:?}");
        assert!(shown.contains("SECRET_KEY"));
        assert!(!shown.contains("hunter2"));
    }
}
