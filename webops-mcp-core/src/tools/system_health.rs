//! `webops_system_health`: platform health, services, deployment counts and resource use over
//! a time range.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use webops_client::{ErrorKind as ApiErrorKind, MetricPoint, MetricsPeriod};

use super::common::{round2, timestamp, upstream_error};
use crate::identity::Permission;
use crate::tool::{Access, Tool, ToolContext, ToolError, ToolOutput};

/// Reports platform health; see [`Tool::DESCRIPTION`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemHealth;

/// Time window of the metrics summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[schemars(inline, description = "")]
pub(crate) enum TimeRange {
    #[default]
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "6h")]
    SixHours,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl From<TimeRange> for MetricsPeriod {
    fn from(t: TimeRange) -> Self {
        match t {
            TimeRange::Hour => MetricsPeriod::Hour,
            TimeRange::SixHours => MetricsPeriod::SixHours,
            TimeRange::Day => MetricsPeriod::Day,
            TimeRange::Week => MetricsPeriod::Week,
        }
    }
}

fn yes() -> bool {
    true
}

/// Arguments of `webops_system_health`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SystemHealthArgs {
    /// Include deployment counts.
    #[serde(default = "yes")]
    pub(crate) include_deployments: bool,
    /// Include CPU, memory, disk and load now, and their min/avg/max over time_range.
    #[serde(default = "yes")]
    pub(crate) include_resources: bool,
    /// Window of the resource summary.
    #[serde(default)]
    pub(crate) time_range: TimeRange,
}

/// Deployment counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct DeploymentCountsView {
    pub(crate) total: u64,
    pub(crate) running: u64,
    pub(crate) stopped: u64,
    pub(crate) failed: u64,
}

/// Machine resources now.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct ResourcesView {
    pub(crate) cpu_percent: f64,
    pub(crate) memory_percent: f64,
    pub(crate) disk_percent: f64,
    /// 1, 5 and 15 minutes.
    pub(crate) load_average: [f64; 3],
    pub(crate) uptime_seconds: i64,
}

/// Minimum, average and maximum of a series (`stat` in the output schema's `$defs`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "stat", description = "")]
pub(crate) struct Stat {
    pub(crate) min: f64,
    pub(crate) avg: f64,
    pub(crate) max: f64,
}

impl Stat {
    fn of(values: impl Iterator<Item = f64>) -> Option<Stat> {
        let (mut min, mut max, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0u32);
        for v in values.filter(|v| v.is_finite()) {
            min = min.min(v);
            max = max.max(v);
            sum += v;
            n += 1;
        }
        (n > 0).then(|| Stat {
            min: round2(min),
            avg: round2(sum / f64::from(n)),
            max: round2(max),
        })
    }

    fn render(&self, unit: &str) -> String {
        format!(
            "min {}{unit} / avg {}{unit} / max {}{unit}",
            self.min, self.avg, self.max
        )
    }
}

/// Resource use over the time range.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(description = "")]
pub(crate) struct MetricsSummary {
    pub(crate) time_range: String,
    pub(crate) samples: usize,
    /// First sample time.
    pub(crate) from: Option<DateTime<Utc>>,
    /// Last sample time.
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) cpu_percent: Option<Stat>,
    pub(crate) memory_percent: Option<Stat>,
    pub(crate) error_rate_percent: Option<Stat>,
    pub(crate) requests_total: i64,
}

impl MetricsSummary {
    fn of(time_range: &str, points: &[MetricPoint]) -> Self {
        MetricsSummary {
            time_range: time_range.to_owned(),
            samples: points.len(),
            from: points.iter().map(|p| p.timestamp).min(),
            to: points.iter().map(|p| p.timestamp).max(),
            cpu_percent: Stat::of(points.iter().map(|p| p.cpu_percent)),
            memory_percent: Stat::of(points.iter().map(|p| p.memory_percent)),
            error_rate_percent: Stat::of(points.iter().map(|p| p.error_rate * 100.0)),
            // Upstream numbers: negatives are ignored, a huge total stops at i64::MAX.
            requests_total: points
                .iter()
                .map(|p| p.request_count.max(0))
                .fold(0, i64::saturating_add),
        }
    }
}

/// Result of `webops_system_health`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct SystemHealthOutput {
    /// healthy, degraded or unhealthy.
    pub(crate) overall_status: String,
    pub(crate) timestamp: DateTime<Utc>,
    /// Each platform service's state.
    pub(crate) services: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DeploymentCountsView")]
    pub(crate) deployments: Option<DeploymentCountsView>,
    /// Resources now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ResourcesView")]
    pub(crate) resources: Option<ResourcesView>,
    /// Resource use over time_range.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "MetricsSummary")]
    pub(crate) metrics: Option<MetricsSummary>,
    /// What could not be included, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

#[async_trait]
impl Tool for SystemHealth {
    type Args = SystemHealthArgs;
    type Output = SystemHealthOutput;

    const NAME: &'static str = "webops_system_health";
    const TITLE: &'static str = "Platform health";
    const DESCRIPTION: &'static str = "Health of the WebOps platform itself: services, \
        deployment counts, resources now and over a time range. Use it when several apps \
        misbehave; for one app use webops_get_status.";
    const ACCESS: Access = Access::Read;
    const PERMISSIONS: &'static [Permission] = &[Permission::SystemRead];

    async fn call(
        &self,
        ctx: &ToolContext,
        args: SystemHealthArgs,
    ) -> Result<SystemHealthOutput, ToolError> {
        let period = MetricsPeriod::from(args.time_range);
        let metrics = async {
            if args.include_resources {
                Some(ctx.api().metrics(period.clone(), None).await)
            } else {
                None
            }
        };
        let (health, metrics) = tokio::join!(ctx.api().system_health(), metrics);
        let health = health.map_err(|e| upstream_error(e, None))?;
        let mut notes = Vec::new();
        let metrics = match metrics {
            None => None,
            Some(Ok(m)) => Some(MetricsSummary::of(period.as_str(), &m.points)),
            Some(Err(e)) if e.kind() == ApiErrorKind::Unsupported => {
                notes.push("This WebOps server does not provide metrics history.".to_owned());
                None
            }
            Some(Err(e)) => return Err(upstream_error(e, None)),
        };
        let now = Utc::now();
        let newest_sample = metrics.as_ref().and_then(|m| m.to);
        for (what, at) in [
            ("health report", Some(health.timestamp)),
            ("resource sample of the time range", newest_sample),
        ] {
            if let Some(note) = at.and_then(|at| stale_note(what, at, now)) {
                notes.push(note);
            }
        }
        let s = &health.system;
        Ok(SystemHealthOutput {
            overall_status: health.overall_status.to_string(),
            timestamp: health.timestamp,
            services: health
                .services
                .iter()
                .map(|(name, state)| (name.clone(), state.to_string()))
                .collect(),
            deployments: args.include_deployments.then(|| {
                let d = health.deployments;
                DeploymentCountsView {
                    total: d.total,
                    running: d.running,
                    stopped: d.stopped,
                    failed: d.failed,
                }
            }),
            resources: args.include_resources.then(|| ResourcesView {
                cpu_percent: round2(s.cpu_percent),
                memory_percent: round2(s.memory_percent),
                disk_percent: round2(s.disk_percent),
                load_average: s.load_average.map(round2),
                uptime_seconds: s.uptime_seconds,
            }),
            metrics,
            notes,
        })
    }
}

/// Older than this, a sample is reported with its age.
const STALE_AFTER_MINUTES: i64 = 15;

/// A note when `at` is stale: WebOps may report its latest stored sample instead of a fresh
/// measurement (the control panel stores one every five minutes, and only while its
/// scheduler runs).
fn stale_note(what: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let minutes = (now - at).num_minutes();
    (minutes >= STALE_AFTER_MINUTES).then(|| {
        let age = if minutes >= 120 {
            format!("{} hours", minutes / 60)
        } else {
            format!("{minutes} minutes")
        };
        format!(
            "The newest {what} is {age} old (taken {}): WebOps reported its latest stored \
             sample, not a fresh measurement.",
            timestamp(&at)
        )
    })
}

impl ToolOutput for SystemHealthOutput {
    fn to_text(&self) -> String {
        let mut out = format!(
            "WebOps is {} (as of {}).\n",
            self.overall_status,
            timestamp(&self.timestamp)
        );
        if !self.services.is_empty() {
            let services: Vec<String> = self
                .services
                .iter()
                .map(|(name, state)| format!("{name} {state}"))
                .collect();
            let _ = writeln!(out, "Services: {}.", services.join(", "));
        }
        if let Some(d) = &self.deployments {
            let _ = writeln!(
                out,
                "Deployments: {} in all, {} running, {} stopped, {} failed.",
                d.total, d.running, d.stopped, d.failed
            );
        }
        if let Some(r) = &self.resources {
            let _ = writeln!(
                out,
                "Now: CPU {}%, memory {}%, disk {}%, load {} {} {}.",
                r.cpu_percent,
                r.memory_percent,
                r.disk_percent,
                r.load_average[0],
                r.load_average[1],
                r.load_average[2]
            );
        }
        if let Some(m) = &self.metrics {
            if m.samples == 0 {
                let _ = writeln!(out, "No samples over the last {}.", m.time_range);
            } else {
                let _ = writeln!(
                    out,
                    "Last {} ({} samples, {} requests):",
                    m.time_range, m.samples, m.requests_total
                );
                for (label, stat) in [
                    ("CPU", &m.cpu_percent),
                    ("memory", &m.memory_percent),
                    ("error rate", &m.error_rate_percent),
                ] {
                    if let Some(stat) = stat {
                        let _ = writeln!(out, "  {label}: {}", stat.render("%"));
                    }
                }
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "Note: {note}");
        }
        out.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use webops_client::{Error as ApiError, Metrics, MockWebOpsApi};

    use super::*;
    use crate::tool::ToolErrorKind;
    use crate::tools::test_support::ctx;

    fn health() -> webops_client::SystemHealth {
        serde_json::from_value(json!({
            "overall_status": "degraded", "timestamp": "2025-01-02T00:00:00Z",
            "system": {"cpu_percent": 41.234, "memory_percent": 60.0, "disk_percent": 70.5,
                       "load_average": [1.0, 0.5, 0.25], "uptime_seconds": 86400},
            "services": {"nginx": "running", "celery": "failed"},
            "deployments": {"total": 6, "running": 4, "stopped": 1, "failed": 1}
        }))
        .unwrap()
    }

    fn metrics() -> Metrics {
        serde_json::from_value(json!({"period": "6h", "points": [
            {"timestamp": "2025-01-01T18:00:00Z", "cpu_percent": 10.0, "memory_percent": 50.0,
             "request_count": 100, "error_rate": 0.01},
            {"timestamp": "2025-01-01T21:00:00Z", "cpu_percent": 30.0, "memory_percent": 55.0,
             "request_count": 300, "error_rate": 0.03},
            {"timestamp": "2025-01-02T00:00:00Z", "cpu_percent": 20.0, "memory_percent": 60.0,
             "request_count": 200, "error_rate": 0.02}
        ]}))
        .unwrap()
    }

    fn args(v: serde_json::Value) -> SystemHealthArgs {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn everything_by_default_with_min_avg_max() {
        let mut api = MockWebOpsApi::new();
        api.expect_system_health().returning(|| Ok(health()));
        api.expect_metrics().returning(|period, id| {
            assert_eq!(period, MetricsPeriod::SixHours);
            assert_eq!(id, None);
            Ok(metrics())
        });
        let out = SystemHealth
            .call(&ctx(api), args(json!({"time_range": "6h"})))
            .await
            .unwrap();
        assert_eq!(out.overall_status, "degraded");
        assert_eq!(out.deployments.unwrap().failed, 1);
        assert_eq!(out.resources.as_ref().unwrap().cpu_percent, 41.23);
        let m = out.metrics.as_ref().unwrap();
        assert_eq!(m.samples, 3);
        assert_eq!(m.requests_total, 600);
        assert_eq!(
            m.cpu_percent,
            Some(Stat {
                min: 10.0,
                avg: 20.0,
                max: 30.0
            })
        );
        assert_eq!(m.error_rate_percent.unwrap().max, 3.0);
        let text = out.to_text();
        assert!(text.contains("celery failed"));
        assert!(text.contains("CPU: min 10% / avg 20% / max 30%"));
    }

    #[test]
    fn request_totals_saturate_and_ignore_negatives() {
        let points: Vec<MetricPoint> = serde_json::from_value(json!([
            {"timestamp": "2025-01-01T18:00:00Z", "cpu_percent": 1.0, "memory_percent": 1.0,
             "request_count": i64::MAX, "error_rate": 0.0},
            {"timestamp": "2025-01-01T19:00:00Z", "cpu_percent": 1.0, "memory_percent": 1.0,
             "request_count": -5, "error_rate": 0.0},
            {"timestamp": "2025-01-01T20:00:00Z", "cpu_percent": 1.0, "memory_percent": 1.0,
             "request_count": i64::MAX, "error_rate": 0.0}
        ]))
        .unwrap();
        assert_eq!(MetricsSummary::of("1h", &points).requests_total, i64::MAX);
        assert_eq!(MetricsSummary::of("1h", &points[1..2]).requests_total, 0);
    }

    #[tokio::test]
    async fn include_flags_leave_parts_out() {
        let mut api = MockWebOpsApi::new();
        api.expect_system_health().returning(|| Ok(health()));
        api.expect_metrics().never();
        let out = SystemHealth
            .call(
                &ctx(api),
                args(json!({"include_deployments": false, "include_resources": false})),
            )
            .await
            .unwrap();
        assert!(out.deployments.is_none() && out.resources.is_none() && out.metrics.is_none());
        let structured = serde_json::to_value(&out).unwrap();
        for absent in ["deployments", "resources", "metrics"] {
            assert!(structured.get(absent).is_none(), "{absent}");
        }
        let text = out.to_text();
        assert!(!text.contains("Deployments:") && !text.contains("CPU"));
    }

    #[tokio::test]
    async fn missing_metrics_endpoint_is_a_note_and_outage_an_error() {
        let mut api = MockWebOpsApi::new();
        api.expect_system_health().returning(|| Ok(health()));
        api.expect_metrics()
            .returning(|_, _| Err(ApiError::new(ApiErrorKind::Unsupported, "404")));
        let out = SystemHealth.call(&ctx(api), args(json!({}))).await.unwrap();
        assert!(out.notes[0].contains("metrics"));
        assert!(out.resources.is_some());

        let mut api = MockWebOpsApi::new();
        api.expect_system_health()
            .returning(|| Err(ApiError::new(ApiErrorKind::Unavailable, "503")));
        api.expect_metrics().returning(|_, _| Ok(metrics()));
        let err = SystemHealth
            .call(&ctx(api), args(json!({})))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ToolErrorKind::Unavailable);
    }
}
