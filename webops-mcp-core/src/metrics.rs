//! In-process metrics of tool calls and upstream WebOps requests, rendered in the Prometheus
//! text exposition format.
//!
//! The hot path is lock-free: per-tool counters and histograms are atomics allocated once
//! for the registry's fixed set of tools. Upstream requests (one per HTTP attempt) go through
//! a short mutex that is never held across an await.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use webops_client::{RequestEvent, RequestObserver};

use crate::audit::{Outcome, lock};
use crate::prometheus::{MetricKind, PrometheusWriter};

/// Upper bounds (seconds) of the duration histogram buckets.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Counters, gauges and histograms of one server. Render them with [`Metrics::render`];
/// install it as the WebOps client's [`RequestObserver`] to count upstream requests.
pub struct Metrics {
    tools: BTreeMap<&'static str, ToolStats>,
    unknown_tool_calls: AtomicU64,
    rate_limited: AtomicU64,
    denied: AtomicU64,
    in_flight: AtomicI64,
    audit_failures: AtomicU64,
    upstream: Mutex<Upstream>,
}

struct ToolStats {
    outcomes: [AtomicU64; Outcome::ALL.len()],
    duration: Histogram,
}

#[derive(Default)]
struct Upstream {
    /// (method, endpoint, status or error kind) → count.
    requests: BTreeMap<(String, String, String), u64>,
    /// endpoint → attempt durations.
    durations: BTreeMap<String, Histogram>,
}

/// A histogram with fixed buckets; counts per bucket are not cumulative until rendered.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Writes the `_bucket`, `_sum` and `_count` lines of this histogram, labelled `labels`.
    fn render(&self, w: &mut PrometheusWriter<'_>, name: &str, labels: &[(&str, &str)]) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let le = bound.to_string();
            w.sample(&bucket, &[labels, &[("le", &le)]].concat(), cumulative);
        }
        let count = self.count.load(Ordering::Relaxed);
        w.sample(&bucket, &[labels, &[("le", "+Inf")]].concat(), count);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        w.sample(&format!("{name}_sum"), labels, sum);
        w.sample(&format!("{name}_count"), labels, count);
    }
}

impl Metrics {
    /// Metrics for a server offering `tools`.
    pub(crate) fn new(tools: impl IntoIterator<Item = &'static str>) -> Self {
        Metrics {
            tools: tools
                .into_iter()
                .map(|name| {
                    (
                        name,
                        ToolStats {
                            outcomes: Default::default(),
                            duration: Histogram::default(),
                        },
                    )
                })
                .collect(),
            unknown_tool_calls: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            audit_failures: AtomicU64::new(0),
            upstream: Mutex::new(Upstream::default()),
        }
    }

    /// Counts one finished call of `tool` (which may be an unknown name).
    pub(crate) fn record_call(&self, tool: &str, outcome: Outcome, duration: Duration) {
        match self.tools.get(tool) {
            Some(stats) => {
                stats.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
                stats.duration.observe(duration);
            }
            None => {
                self.unknown_tool_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
        match outcome {
            Outcome::RateLimited => {
                self.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Denied => {
                self.denied.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Counts a call as running until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    /// Counts an audit record that could not be written.
    pub(crate) fn audit_write_failed(&self) {
        self.audit_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends every metric, with `# HELP` and `# TYPE`, in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let mut w = PrometheusWriter::new(out);
        self.render_tools(&mut w);
        self.render_gates(&mut w);
        self.render_upstream(&mut w);
    }

    /// Tool calls by tool and outcome, unknown tools, and call durations by tool.
    fn render_tools(&self, w: &mut PrometheusWriter<'_>) {
        w.family(
            "webops_mcp_tool_calls_total",
            MetricKind::Counter,
            "Tool calls by tool and outcome (ok, denied, invalid, rate_limited, busy, failed, cancelled).",
        );
        for (tool, stats) in &self.tools {
            for outcome in Outcome::ALL {
                if outcome == Outcome::UnknownTool {
                    continue;
                }
                let n = stats.outcomes[outcome.index()].load(Ordering::Relaxed);
                let labels = [("tool", *tool), ("outcome", outcome.as_str())];
                w.sample("webops_mcp_tool_calls_total", &labels, n);
            }
        }
        w.single(
            "webops_mcp_unknown_tool_calls_total",
            MetricKind::Counter,
            "Calls naming a tool that does not exist.",
            self.unknown_tool_calls.load(Ordering::Relaxed),
        );
        w.family(
            "webops_mcp_tool_call_duration_seconds",
            MetricKind::Histogram,
            "Duration of tool calls, from arrival to result, by tool.",
        );
        for (tool, stats) in &self.tools {
            stats.duration.render(
                w,
                "webops_mcp_tool_call_duration_seconds",
                &[("tool", tool)],
            );
        }
    }

    /// Refusals by the rate limit and permissions, calls in flight, audit write failures.
    fn render_gates(&self, w: &mut PrometheusWriter<'_>) {
        w.single(
            "webops_mcp_rate_limited_total",
            MetricKind::Counter,
            "Tool calls refused by the per-user rate limit.",
            self.rate_limited.load(Ordering::Relaxed),
        );
        w.single(
            "webops_mcp_permission_denied_total",
            MetricKind::Counter,
            "Tool calls denied: a missing permission, or a non-read tool in read-only mode.",
            self.denied.load(Ordering::Relaxed),
        );
        w.single(
            "webops_mcp_tool_calls_in_flight",
            MetricKind::Gauge,
            "Tool calls running now.",
            self.in_flight.load(Ordering::Relaxed),
        );
        w.single(
            "webops_mcp_audit_write_failures_total",
            MetricKind::Counter,
            "Audit records that could not be written to the audit sink.",
            self.audit_failures.load(Ordering::Relaxed),
        );
    }

    /// HTTP attempts to WebOps by method, endpoint and status, and their durations.
    fn render_upstream(&self, w: &mut PrometheusWriter<'_>) {
        let upstream = lock(&self.upstream);
        w.family(
            "webops_mcp_upstream_requests_total",
            MetricKind::Counter,
            "HTTP attempts to the WebOps API by method, endpoint and status (or error kind).",
        );
        for ((method, endpoint, status), n) in &upstream.requests {
            let labels = [
                ("method", method.as_str()),
                ("endpoint", endpoint),
                ("status", status),
            ];
            w.sample("webops_mcp_upstream_requests_total", &labels, n);
        }
        w.family(
            "webops_mcp_upstream_request_duration_seconds",
            MetricKind::Histogram,
            "Duration of HTTP attempts to the WebOps API by endpoint.",
        );
        for (endpoint, histogram) in &upstream.durations {
            histogram.render(
                w,
                "webops_mcp_upstream_request_duration_seconds",
                &[("endpoint", endpoint)],
            );
        }
    }
}

impl RequestObserver for Metrics {
    fn observe(&self, event: &RequestEvent<'_>) {
        let status = match (event.status, event.error) {
            (Some(status), _) => status.to_string(),
            (None, Some(kind)) => kind.as_str().to_owned(),
            (None, None) => "unknown".to_owned(),
        };
        let mut upstream = lock(&self.upstream);
        *upstream
            .requests
            .entry((event.method.to_owned(), event.endpoint.to_owned(), status))
            .or_insert(0) += 1;
        match upstream.durations.get(event.endpoint) {
            Some(histogram) => histogram.observe(event.duration),
            None => {
                let histogram = Histogram::default();
                histogram.observe(event.duration);
                upstream
                    .durations
                    .insert(event.endpoint.to_owned(), histogram);
            }
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Decrements the in-flight gauge when dropped.
pub(crate) struct InFlight<'a>(&'a Metrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let metrics = Metrics::new(["t"]);
        metrics.record_call("t", Outcome::Ok, Duration::from_millis(3));
        metrics.record_call("t", Outcome::Ok, Duration::from_millis(700));
        metrics.record_call("t", Outcome::Failed, Duration::from_secs(1000));
        let mut out = String::new();
        metrics.render(&mut out);
        assert!(
            out.contains("webops_mcp_tool_call_duration_seconds_bucket{tool=\"t\",le=\"0.005\"} 1")
        );
        assert!(
            out.contains("webops_mcp_tool_call_duration_seconds_bucket{tool=\"t\",le=\"1\"} 2")
        );
        assert!(
            out.contains("webops_mcp_tool_call_duration_seconds_bucket{tool=\"t\",le=\"300\"} 2")
        );
        assert!(
            out.contains("webops_mcp_tool_call_duration_seconds_bucket{tool=\"t\",le=\"+Inf\"} 3")
        );
        assert!(out.contains("webops_mcp_tool_call_duration_seconds_count{tool=\"t\"} 3"));
        assert!(out.contains("webops_mcp_tool_calls_total{tool=\"t\",outcome=\"failed\"} 1"));
    }
}
