//! The HTTP transport's own metrics (requests, authentication, throttling) and process
//! metrics, rendered in the Prometheus text format after core's metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Counters of the HTTP layer. Cheap to update: one short lock per request.
pub(crate) struct HttpMetrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    auth: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    throttled: AtomicU64,
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
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.entry((route, status)).or_insert(0) += 1;
    }

    /// One authentication attempt: `method` (`api_key`, `jwt`, `basic`, `anonymous`,
    /// `none`) and `outcome` (`success`, `failure`).
    pub(crate) fn record_auth(&self, method: &'static str, outcome: &'static str) {
        let mut auth = self.auth.lock().unwrap_or_else(PoisonError::into_inner);
        *auth.entry((method, outcome)).or_insert(0) += 1;
    }

    /// One request refused because its address failed too often.
    pub(crate) fn record_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends these metrics, the number of currently throttled addresses and the process
    /// metrics to `out`.
    pub(crate) fn render(&self, out: &mut String, throttled_addresses: usize) {
        header(
            out,
            "webops_mcp_http_requests_total",
            "HTTP requests answered, by route and status.",
            "counter",
        );
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "webops_mcp_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        header(
            out,
            "webops_mcp_auth_attempts_total",
            "HTTP authentication attempts, by method and outcome.",
            "counter",
        );
        for ((method, outcome), n) in self
            .auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "webops_mcp_auth_attempts_total{{method=\"{method}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        header(
            out,
            "webops_mcp_auth_throttled_requests_total",
            "Requests refused with 429 because their address failed authentication too often.",
            "counter",
        );
        let _ = writeln!(
            out,
            "webops_mcp_auth_throttled_requests_total {}",
            self.throttled.load(Ordering::Relaxed)
        );
        header(
            out,
            "webops_mcp_auth_throttled_addresses",
            "Client addresses currently refused after repeated authentication failures.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "webops_mcp_auth_throttled_addresses {throttled_addresses}"
        );
        header(
            out,
            "webops_mcp_build_info",
            "Always 1; the version label is the server's version.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "webops_mcp_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        header(
            out,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "process_start_time_seconds {}",
            self.start_time_seconds
        );
        if let Some(process) = ProcessStats::read() {
            header(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                "gauge",
            );
            let _ = writeln!(
                out,
                "process_resident_memory_bytes {}",
                process.resident_bytes
            );
            header(
                out,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent, in seconds.",
                "counter",
            );
            let _ = writeln!(out, "process_cpu_seconds_total {}", process.cpu_seconds);
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
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
