//! The panel's `/monitoring/api/…` views: the latest stored metrics sample, the stored
//! history (newest first), the system summary and the system health (no Celery worker, so
//! never healthy).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{Req, json_response};
use super::routes::{int_error, py_int};
use super::state::{PanelState, Sample, iso};

/// Rounds like Python's `round(x, 2)` (near enough for fixed samples).
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The newest stored sample (the seed always stores some).
fn latest(state: &PanelState) -> Option<&Sample> {
    state.samples.iter().max_by_key(|s| s.at)
}

/// `GET /monitoring/api/metrics/current/`: the latest *stored* sample, minutes old.
pub(crate) fn current(state: &PanelState) -> Response {
    let Some(s) = latest(state) else {
        return json_response(StatusCode::OK, json!({}));
    };
    json_response(
        StatusCode::OK,
        json!({
            "timestamp": iso(s.at),
            "cpu_percent": s.cpu,
            "memory_percent": s.memory,
            "memory_used_mb": s.memory_used_mb,
            "memory_total_mb": s.memory_total_mb,
            "disk_percent": s.disk,
            "disk_used_gb": round2(s.disk_used_gb),
            "disk_total_gb": round2(s.disk_total_gb),
            "load_average": {"1m": s.load[0], "5m": s.load[1], "15m": s.load[2]},
            "network": {"sent_mb": round2(s.sent_mb), "recv_mb": round2(s.recv_mb)},
        }),
    )
}

/// `GET /monitoring/api/metrics/history/?hours=N` (default 24): parallel arrays, newest
/// first; `hours` ≤ 0 gives empty arrays, a non-integer a 500.
pub(crate) fn history(state: &PanelState, req: &Req) -> Response {
    let text = req.param("hours").unwrap_or_else(|| "24".to_owned());
    let Some(hours) = py_int(&text) else {
        return int_error(req, &text);
    };
    let since = chrono::Utc::now() - chrono::Duration::hours(hours.clamp(-1_000_000, 1_000_000));
    let mut points: Vec<&Sample> = state.samples.iter().filter(|s| s.at >= since).collect();
    points.sort_by_key(|s| std::cmp::Reverse(s.at));
    let column = |f: &dyn Fn(&Sample) -> Value| points.iter().map(|s| f(s)).collect::<Vec<_>>();
    json_response(
        StatusCode::OK,
        json!({
            "timestamps": column(&|s| json!(iso(s.at))),
            "cpu": column(&|s| json!(s.cpu)),
            "memory": column(&|s| json!(s.memory)),
            "disk": column(&|s| json!(s.disk)),
            "load_avg_1m": column(&|s| json!(s.load[0])),
            "network_sent": column(&|s| json!(s.sent_mb)),
            "network_recv": column(&|s| json!(s.recv_mb)),
        }),
    )
}

/// `GET /monitoring/api/system/summary/`: the same for every user; no alerts, no service
/// status rows.
pub(crate) fn summary(state: &PanelState) -> Response {
    let resources = latest(state).map_or(json!({}), |s| {
        json!({
            "cpu_percent": s.cpu,
            "memory_percent": s.memory,
            "memory_used_mb": s.memory_used_mb,
            "memory_total_mb": s.memory_total_mb,
            "disk_percent": s.disk,
            "disk_used_gb": s.disk_used_gb,
            "disk_total_gb": s.disk_total_gb,
            "load_average": {"1m": s.load[0], "5m": s.load[1], "15m": s.load[2]},
        })
    });
    json_response(
        StatusCode::OK,
        json!({
            "resources": resources,
            "alerts": {"total": 0, "critical": 0, "error": 0, "warning": 0, "recent": []},
            "services": {"total": 0, "running": 0, "stopped": 0, "failed": 0},
        }),
    )
}

/// `GET /monitoring/api/system/health/`: every user's `running` deployments are checked and
/// found down (no systemd unit, nothing listening); no Celery worker, so `healthy` is false.
pub(crate) fn health(state: &PanelState) -> Response {
    let results: Vec<Value> = state
        .deployments
        .iter()
        .filter(|d| d.status == "running")
        .map(|d| {
            json!({
                "deployment": d.name,
                "deployment_id": d.id,
                "healthy": false,
                "service_status": "failed",
                "http_check": {"healthy": false, "status_code": null, "response_time_ms": null},
            })
        })
        .collect();
    let checked = results.len();
    let resources = latest(state).map_or(json!({}), |s| {
        json!({
            "cpu_percent": s.cpu,
            "memory_percent": s.memory,
            "disk_percent": s.disk,
            "load_average_1m": s.load[0],
        })
    });
    json_response(
        StatusCode::OK,
        json!({
            "healthy": false,
            "timestamp": iso(chrono::Utc::now()),
            "resources": resources,
            "celery": {"healthy": false, "worker_count": 0, "workers": []},
            "deployments": {
                "success": true,
                "total_checked": checked,
                "healthy": 0,
                "unhealthy": checked,
                "results": results,
                "auto_restart_enabled": false,
                "restart_results": [],
            },
            "alerts": {"total": 0, "critical": 0},
        }),
    )
}
