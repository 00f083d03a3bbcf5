//! A deployment as the API shows it: list row, detail, health, env vars; and how a caller
//! names one ([`DeploymentRef`]).

use super::*;
use crate::decode::REDACTED;

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
            .entries(self.0.keys().map(|k| (k, REDACTED)))
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
    fn env_vars_debug_hides_values() {
        let vars: EnvVars = [("SECRET_KEY", "hunter2")].into_iter().collect();
        let shown = format!("{vars:?}");
        assert!(shown.contains("SECRET_KEY"));
        assert!(!shown.contains("hunter2"));
    }
}
