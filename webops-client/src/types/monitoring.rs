//! Monitoring: `GET monitoring/health/` and `GET monitoring/metrics/`.

use super::*;

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
    #[serde(deserialize_with = "crate::types::time::deserialize")]
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
    #[serde(deserialize_with = "crate::types::time::deserialize")]
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
