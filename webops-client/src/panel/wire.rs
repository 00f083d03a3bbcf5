//! The control panel's JSON, as it really answers, and its translation into this crate's
//! types. Decoding is tolerant: missing fields take defaults, values of an unexpected type
//! are read as text where that is harmless.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::flavor::NO_ENVIRONMENT;
use crate::types::*;

/// A timestamp as the panel writes it: RFC 3339 with offset, or naive (taken as UTC).
fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    parse_time(&text).ok_or_else(|| serde::de::Error::custom("not a timestamp"))
}

pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    if let Some(t) = crate::types::time::plain_utc(text) {
        return Some(t);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|naive| Utc.from_utc_datetime(&naive))
}

fn lenient_time_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|t| parse_time(&t)))
}

/// A JSON value as env-var text: strings as they are, anything else as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub(crate) fn env_vars(map: &BTreeMap<String, Value>) -> EnvVars {
    map.iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect()
}

/// One row of `GET /api/deployments/`, and the detail with `env_vars`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PanelDeployment {
    pub(crate) id: i64,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) project_type: Option<String>,
    #[serde(default)]
    pub(crate) repo_url: Option<String>,
    #[serde(default)]
    pub(crate) branch: Option<String>,
    #[serde(default)]
    pub(crate) domain: Option<String>,
    #[serde(default)]
    pub(crate) port: Option<i64>,
    #[serde(deserialize_with = "lenient_time")]
    pub(crate) created_at: Timestamp,
    #[serde(deserialize_with = "lenient_time")]
    pub(crate) updated_at: Timestamp,
    #[serde(default)]
    pub(crate) env_vars: Option<BTreeMap<String, Value>>,
}

impl PanelDeployment {
    /// The deployment in this crate's shape. The panel has no environments, instances,
    /// health checks or owner field: `deployed_by` is the logged-in user (the panel shows
    /// each user only their own deployments), and `health` mirrors `status == running`.
    pub(crate) fn to_deployment(&self, user: &str) -> Deployment {
        let status = DeploymentStatus::from(self.status.as_str());
        let domain = self.domain.clone().filter(|d| !d.trim().is_empty());
        Deployment {
            id: self.id,
            name: self.name.clone(),
            status: status.clone(),
            environment: Environment::Other(NO_ENVIRONMENT.to_owned()),
            project_type: self.project_type.clone().unwrap_or_default(),
            repo_url: self.repo_url.clone().unwrap_or_default(),
            branch: self.branch.clone().unwrap_or_default(),
            url: domain.as_ref().map(|d| format!("http://{d}/")),
            domain,
            port: self.port,
            ssl_enabled: false,
            python_version: None,
            database_type: None,
            memory_limit: None,
            instances: 1,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deployed_by: UserRef {
                id: 0,
                username: user.to_owned(),
            },
            health: DeploymentHealth {
                is_healthy: status == DeploymentStatus::Running,
                uptime_seconds: 0,
                last_check: None,
                checks: None,
            },
        }
    }

    pub(crate) fn to_detail(&self, user: &str) -> DeploymentDetail {
        DeploymentDetail {
            deployment: self.to_deployment(user),
            env_vars: self.env_vars.as_ref().map(env_vars).unwrap_or_default(),
            metrics: DeploymentMetrics::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PanelPagination {
    #[serde(default)]
    pub(crate) pages: u32,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeploymentList {
    #[serde(default)]
    pub(crate) deployments: Vec<PanelDeployment>,
    #[serde(default)]
    pub(crate) pagination: Option<PanelPagination>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Created {
    pub(crate) id: i64,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) status: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct LogRow {
    #[serde(default)]
    pub(crate) level: String,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(deserialize_with = "lenient_time")]
    pub(crate) created_at: Timestamp,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogRows {
    #[serde(default)]
    pub(crate) logs: Vec<LogRow>,
}

impl LogRow {
    pub(crate) fn to_entry(&self) -> LogEntry {
        LogEntry {
            timestamp: self.created_at,
            level: LogLevel::from(self.level.to_ascii_lowercase().as_str()),
            message: self.message.clone(),
            source: "deployment".to_owned(),
        }
    }

    pub(crate) fn is_error(&self) -> bool {
        matches!(
            self.level.to_ascii_lowercase().as_str(),
            "error" | "critical"
        )
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RepoEnv {
    #[serde(default)]
    pub(crate) env_vars: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Validation {
    #[serde(default)]
    pub(crate) results: Vec<ValidationResult>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ValidationResult {
    #[serde(default)]
    pub(crate) passed: bool,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) level: String,
    #[serde(default)]
    pub(crate) details: Option<Value>,
}

impl ValidationResult {
    pub(crate) fn to_check(&self) -> ProjectCheck {
        let security_risk = self
            .details
            .as_ref()
            .and_then(|d| d.get("security_risk"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        ProjectCheck {
            passed: self.passed,
            level: self.level.clone(),
            message: self.message.clone(),
            security_risk,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Databases {
    #[serde(default)]
    pub(crate) databases: Vec<PanelDatabase>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PanelDatabase {
    pub(crate) id: i64,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) db_type: String,
    #[serde(default)]
    pub(crate) host: Option<String>,
    #[serde(default)]
    pub(crate) port: Option<u16>,
    #[serde(default)]
    pub(crate) deployment: Option<DeploymentLink>,
}

impl PanelDatabase {
    pub(crate) fn to_database(&self) -> Database {
        Database {
            id: self.id,
            name: self.name.clone(),
            engine: DatabaseType::from(self.db_type.as_str()),
            host: self.host.clone().unwrap_or_default(),
            port: self.port,
            size_mb: 0.0,
            connection_count: 0,
            publicly_accessible: None,
            ssl_required: None,
            deployment: self.deployment.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Health {
    #[serde(default)]
    pub(crate) healthy: bool,
    #[serde(default, deserialize_with = "lenient_time_opt")]
    pub(crate) timestamp: Option<Timestamp>,
    #[serde(default)]
    pub(crate) resources: Resources,
    #[serde(default)]
    pub(crate) celery: Option<Celery>,
    #[serde(default)]
    pub(crate) deployments: Option<HealthDeployments>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Resources {
    #[serde(default)]
    pub(crate) cpu_percent: f64,
    #[serde(default)]
    pub(crate) memory_percent: f64,
    #[serde(default)]
    pub(crate) disk_percent: f64,
    #[serde(default)]
    pub(crate) load_average_1m: f64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Celery {
    #[serde(default)]
    pub(crate) healthy: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct HealthDeployments {
    #[serde(default)]
    pub(crate) total_checked: u64,
    #[serde(default)]
    pub(crate) healthy: u64,
    #[serde(default)]
    pub(crate) unhealthy: u64,
}

impl Health {
    /// The panel's verdict in this crate's shape: the background worker is a service, the
    /// deployments it checked (all users' `running` ones) are counted as running and, when
    /// unhealthy, as failed.
    pub(crate) fn to_system_health(&self) -> SystemHealth {
        let mut services = BTreeMap::new();
        if let Some(celery) = &self.celery {
            let state = if celery.healthy {
                ServiceState::Running
            } else {
                ServiceState::Failed
            };
            services.insert("background worker (celery)".to_owned(), state);
        }
        let checked = self.deployments.as_ref();
        let deployments = DeploymentCounts {
            total: checked.map_or(0, |d| d.total_checked),
            running: checked.map_or(0, |d| d.healthy),
            stopped: 0,
            failed: checked.map_or(0, |d| d.unhealthy),
        };
        SystemHealth {
            overall_status: if self.healthy {
                OverallStatus::Healthy
            } else {
                OverallStatus::Degraded
            },
            timestamp: self.timestamp.unwrap_or_else(Utc::now),
            system: SystemStats {
                cpu_percent: self.resources.cpu_percent,
                memory_percent: self.resources.memory_percent,
                disk_percent: self.resources.disk_percent,
                load_average: [self.resources.load_average_1m, 0.0, 0.0],
                uptime_seconds: 0,
            },
            services,
            deployments,
        }
    }
}

/// `metrics/history/`: parallel arrays, newest first.
#[derive(Debug, Deserialize)]
pub(crate) struct History {
    #[serde(default)]
    pub(crate) timestamps: Vec<String>,
    #[serde(default)]
    pub(crate) cpu: Vec<Option<f64>>,
    #[serde(default)]
    pub(crate) memory: Vec<Option<f64>>,
}

impl History {
    /// The samples oldest first, as [`Metrics::points`] promises.
    pub(crate) fn points(&self) -> Vec<MetricPoint> {
        let mut points: Vec<MetricPoint> = self
            .timestamps
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                Some(MetricPoint {
                    timestamp: parse_time(t)?,
                    cpu_percent: self.cpu.get(i).copied().flatten().unwrap_or(0.0),
                    memory_percent: self.memory.get(i).copied().flatten().unwrap_or(0.0),
                    request_count: 0,
                    error_rate: 0.0,
                })
            })
            .collect();
        points.sort_by_key(|p| p.timestamp);
        points
    }
}

/// Hours of history for a metrics period.
pub(crate) fn hours(period: &MetricsPeriod) -> Option<u32> {
    match period {
        MetricsPeriod::Hour => Some(1),
        MetricsPeriod::SixHours => Some(6),
        MetricsPeriod::Day => Some(24),
        MetricsPeriod::Week => Some(168),
        MetricsPeriod::Month => Some(720),
        MetricsPeriod::Other(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_panel_shapes() {
        let row: PanelDeployment = serde_json::from_value(serde_json::json!({
            "id": 5, "name": "shop", "status": "pending", "project_type": "django",
            "repo_url": "https://example.invalid/x.git", "branch": "main", "domain": "",
            "port": null, "created_at": "2026-12-02T16:29:19.059166+00:00",
            "updated_at": "2026-12-02T16:29:19", "env_vars": {"DEBUG": "False", "N": 1}
        }))
        .unwrap();
        let detail = row.to_detail("alice");
        assert_eq!(detail.name, "shop");
        assert_eq!(detail.domain, None);
        assert_eq!(detail.environment.as_str(), NO_ENVIRONMENT);
        assert_eq!(detail.env_vars.get("N"), Some("1"));
        assert_eq!(detail.deployed_by.username, "alice");
        assert!(!detail.health.is_healthy);
    }

    #[test]
    fn history_comes_out_oldest_first() {
        let history: History = serde_json::from_value(serde_json::json!({
            "timestamps": ["2026-12-02T10:05:00+00:00", "2026-12-02T10:00:00+00:00"],
            "cpu": [20.0, 10.0], "memory": [50.0, null]
        }))
        .unwrap();
        let points = history.points();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].cpu_percent, 10.0);
        assert_eq!(points[0].memory_percent, 0.0);
        assert!(points[0].timestamp < points[1].timestamp);
    }
}
