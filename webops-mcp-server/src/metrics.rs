//! The HTTP transport's own metrics (requests, authentication, throttling) and process
//! metrics, rendered in the Prometheus text format after core's metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use webops_mcp_core::{MetricKind, PrometheusWriter};

use crate::sync::lock;

/// Counters of the HTTP layer. Cheap to update: one short lock per request.
pub(crate) struct HttpMetrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    auth: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    throttled: AtomicU64,
    lean_calls: AtomicU64,
    started: Instant,
    start_time_seconds: f64,
}

impl HttpMetrics {
    /// Counters at zero; the start time is now.
    pub(crate) fn new() -> Self {
        HttpMetrics {
            requests: Mutex::new(BTreeMap::new()),
            auth: Mutex::new(BTreeMap::new()),
            throttled: AtomicU64::new(0),
            lean_calls: AtomicU64::new(0),
            started: Instant::now(),
            start_time_seconds: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
        }
    }

    /// Seconds since start.
    pub(crate) fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// One answered request.
    pub(crate) fn record_request(&self, route: &'static str, status: u16) {
        let mut requests = lock(&self.requests);
        *requests.entry((route, status)).or_insert(0) += 1;
    }

    /// One authentication attempt: `method` (`api_key`, `jwt`, `basic`, `anonymous`,
    /// `none`) and `outcome` (`success`, `failure`).
    pub(crate) fn record_auth(&self, method: &'static str, outcome: &'static str) {
        let mut auth = lock(&self.auth);
        *auth.entry((method, outcome)).or_insert(0) += 1;
    }

    /// One request refused because its address failed too often.
    pub(crate) fn record_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// One `tools/call` answered by the lean path (`crate::lean`).
    pub(crate) fn record_lean_call(&self) {
        self.lean_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends these metrics, the number of currently throttled addresses and the process
    /// metrics to `out`.
    pub(crate) fn render(&self, out: &mut String, throttled_addresses: usize) {
        let mut w = PrometheusWriter::new(out);
        w.family(
            "webops_mcp_http_requests_total",
            MetricKind::Counter,
            "HTTP requests answered, by route and status.",
        );
        for ((route, status), n) in lock(&self.requests).iter() {
            let status = status.to_string();
            let labels = [("route", *route), ("status", status.as_str())];
            w.sample("webops_mcp_http_requests_total", &labels, n);
        }
        w.family(
            "webops_mcp_auth_attempts_total",
            MetricKind::Counter,
            "HTTP authentication attempts, by method and outcome.",
        );
        for ((method, outcome), n) in lock(&self.auth).iter() {
            let labels = [("method", *method), ("outcome", *outcome)];
            w.sample("webops_mcp_auth_attempts_total", &labels, n);
        }
        w.single(
            "webops_mcp_auth_throttled_requests_total",
            MetricKind::Counter,
            "Requests refused with 429 because their address failed authentication too often.",
            self.throttled.load(Ordering::Relaxed),
        );
        w.single(
            "webops_mcp_auth_throttled_addresses",
            MetricKind::Gauge,
            "Client addresses currently refused after repeated authentication failures.",
            throttled_addresses,
        );
        w.single(
            "webops_mcp_http_lean_calls_total",
            MetricKind::Counter,
            "Stateless tools/call requests answered by the handler directly, without rmcp's \
             per-request service (the rest of /mcp goes through rmcp).",
            self.lean_calls.load(Ordering::Relaxed),
        );
        w.family(
            "webops_mcp_build_info",
            MetricKind::Gauge,
            "Always 1; the version label is the server's version.",
        );
        let version = [("version", env!("CARGO_PKG_VERSION"))];
        w.sample("webops_mcp_build_info", &version, 1);
        w.single(
            "process_start_time_seconds",
            MetricKind::Gauge,
            "Start time of the process since the Unix epoch, in seconds.",
            self.start_time_seconds,
        );
        if let Some(process) = ProcessStats::read() {
            w.single(
                "process_resident_memory_bytes",
                MetricKind::Gauge,
                "Resident memory size in bytes.",
                process.resident_bytes,
            );
            w.single(
                "process_cpu_seconds_total",
                MetricKind::Counter,
                "Total user and system CPU time spent, in seconds.",
                process.cpu_seconds,
            );
        }
    }
}

/// Resident memory and CPU time of this process, from `/proc` (Linux only).
struct ProcessStats {
    resident_bytes: u64,
    cpu_seconds: f64,
}

impl ProcessStats {
    /// `None` where `/proc/self` does not exist.
    fn read() -> Option<ProcessStats> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Some(ProcessStats {
            resident_bytes: parse_vm_rss(&status)?,
            cpu_seconds: parse_cpu_seconds(&stat)?,
        })
    }
}

/// `VmRSS:  1234 kB` → bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `utime + stime` of `/proc/self/stat` in seconds. The kernel reports them in USER_HZ
/// ticks, which is 100 on every Linux ABI.
fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t    2048 kB\nThreads: 3\n"),
            Some(2048 * 1024)
        );
        let stat = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
    }

    #[test]
    fn render_has_help_type_and_counts() {
        let metrics = HttpMetrics::new();
        metrics.record_request("/mcp", 200);
        metrics.record_request("/mcp", 200);
        metrics.record_auth("api_key", "success");
        metrics.record_throttled();
        metrics.record_lean_call();
        let mut out = String::new();
        metrics.render(&mut out, 2);
        assert!(out.contains("# TYPE webops_mcp_http_requests_total counter"));
        assert!(out.contains("webops_mcp_http_requests_total{route=\"/mcp\",status=\"200\"} 2"));
        assert!(
            out.contains(
                "webops_mcp_auth_attempts_total{method=\"api_key\",outcome=\"success\"} 1"
            )
        );
        assert!(out.contains("webops_mcp_auth_throttled_requests_total 1"));
        assert!(out.contains("webops_mcp_auth_throttled_addresses 2"));
        assert!(out.contains("webops_mcp_http_lean_calls_total 1"));
        if cfg!(target_os = "linux") {
            assert!(out.contains("process_resident_memory_bytes "));
            assert!(out.contains("process_cpu_seconds_total "));
        }
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                out.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
        }
    }
}
