//! Rules over what runs the deployment: the Python version against its end of life,
//! databases, capacity, health and error rate.

use chrono::NaiveDate;

use webops_client::{DeploymentStatus, HealthChecks};

use super::{Hit, Severity, Subject, hit};

/// A Python version as (major, minor).
pub(super) type PythonMinor = (u32, u32);
/// A month as (year, month).
pub(super) type YearMonth = (i32, u32);

/// End of security support of Python versions (first day of the month it ends).
pub(super) const PYTHON_EOL: &[(PythonMinor, YearMonth)] = &[
    ((3, 8), (2024, 10)),
    ((3, 9), (2025, 10)),
    ((3, 10), (2026, 10)),
    ((3, 11), (2027, 10)),
    ((3, 12), (2028, 10)),
];

/// The (major, minor) of a version string like `3.11` or `3.11.4`.
pub(super) fn python_minor(version: &str) -> Option<(u32, u32)> {
    let trimmed = version.trim();
    let bare = match trimmed.get(..6) {
        Some(prefix) if prefix.eq_ignore_ascii_case("python") => trimmed[6..].trim_start(),
        _ => trimmed,
    };
    let mut parts = bare.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// When `version` stops (or stopped) getting security fixes; `None` for versions newer than
/// the table.
pub(super) fn python_eol(version: (u32, u32)) -> Option<NaiveDate> {
    if let Some((_, (y, m))) = PYTHON_EOL.iter().find(|(v, _)| *v == version) {
        return NaiveDate::from_ymd_opt(*y, *m, 1);
    }
    // Anything older than the oldest version in the table ended before it.
    let oldest = PYTHON_EOL.first().map(|(v, _)| *v)?;
    (version < oldest).then_some(NaiveDate::MIN)
}

pub(super) fn python_end_of_life(s: &Subject<'_>) -> Vec<Hit> {
    let Some(text) = s.deployment.python_version.as_deref() else {
        return vec![];
    };
    let Some(version) = python_minor(text) else {
        return vec![];
    };
    match python_eol(version) {
        Some(eol) if eol <= s.now.date_naive() => {
            let when = if eol == NaiveDate::MIN {
                "long ago".to_owned()
            } else {
                format!("in {}", eol.format("%Y-%m"))
            };
            hit(
                Severity::High,
                format!(
                    "Python {}.{} reached end of life {when} and gets no security fixes",
                    version.0, version.1
                ),
            )
        }
        _ => vec![],
    }
}

pub(super) fn python_near_end_of_life(s: &Subject<'_>) -> Vec<Hit> {
    let Some(version) = s
        .deployment
        .python_version
        .as_deref()
        .and_then(python_minor)
    else {
        return vec![];
    };
    let today = s.now.date_naive();
    match python_eol(version) {
        Some(eol) if eol > today && (eol - today).num_days() <= 365 => hit(
            Severity::Low,
            format!(
                "Python {}.{} reaches end of life in {} ({} days from now)",
                version.0,
                version.1,
                eol.format("%Y-%m"),
                (eol - today).num_days()
            ),
        ),
        _ => vec![],
    }
}

pub(super) fn database_public(s: &Subject<'_>) -> Vec<Hit> {
    s.databases
        .iter()
        .filter(|db| db.publicly_accessible == Some(true))
        .map(|db| Hit {
            severity: Severity::High,
            evidence: format!(
                "database '{}' ({}) is reachable from the internet",
                db.name, db.engine
            ),
        })
        .collect()
}

pub(super) fn database_without_tls(s: &Subject<'_>) -> Vec<Hit> {
    s.databases
        .iter()
        .filter(|db| db.ssl_required == Some(false))
        .map(|db| Hit {
            severity: Severity::Medium,
            evidence: format!(
                "database '{}' ({}) accepts connections without TLS",
                db.name, db.engine
            ),
        })
        .collect()
}

pub(super) fn single_instance_in_production(s: &Subject<'_>) -> Vec<Hit> {
    let d = s.deployment;
    if s.production() && d.instances <= 1 && d.status == DeploymentStatus::Running {
        hit(
            Severity::Low,
            format!("runs {} instance in production", d.instances),
        )
    } else {
        vec![]
    }
}

pub(super) fn no_memory_limit(s: &Subject<'_>) -> Vec<Hit> {
    match s.deployment.memory_limit.as_deref().map(str::trim) {
        Some(limit) if !limit.is_empty() => vec![],
        _ => hit(Severity::Low, "no memory limit is set"),
    }
}

pub(super) fn unhealthy(s: &Subject<'_>) -> Vec<Hit> {
    let d = s.deployment;
    if d.status != DeploymentStatus::Running {
        return vec![];
    }
    let failed: Vec<&str> = d
        .health
        .checks
        .as_ref()
        .map(HealthChecks::failed)
        .unwrap_or_default();
    if failed.is_empty() && d.health.is_healthy {
        return vec![];
    }
    let evidence = if failed.is_empty() {
        "the last health check failed".to_owned()
    } else {
        format!("failing health checks: {}", failed.join(", "))
    };
    hit(Severity::Medium, evidence)
}

/// Error rates above these are findings.
pub(super) const ERROR_RATE_MEDIUM: f64 = 0.05;
pub(super) const ERROR_RATE_HIGH: f64 = 0.20;

pub(super) fn high_error_rate(s: &Subject<'_>) -> Vec<Hit> {
    let m = &s.deployment.metrics;
    let severity = if m.error_rate > ERROR_RATE_HIGH {
        Severity::High
    } else if m.error_rate > ERROR_RATE_MEDIUM {
        Severity::Medium
    } else {
        return vec![];
    };
    hit(
        severity,
        format!(
            "{:.1}% of requests failed in the last 24 hours ({} requests)",
            m.error_rate * 100.0,
            m.request_count_24h
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::security_audit::rules::fixtures::*;

    #[test]
    fn python_end_of_life_against_now() {
        // now = 2026-03-01
        for (version, eol, near) in [
            ("3.8", Some(Severity::High), None),
            ("3.9", Some(Severity::High), None),
            ("3.7", Some(Severity::High), None),
            ("3.10", None, Some(Severity::Low)),
            ("3.10.12", None, Some(Severity::Low)),
            ("3.11", None, None),
            ("3.12", None, None),
            ("3.13", None, None),
        ] {
            let d = with(json!({"python_version": version}));
            assert_eq!(fires("WEBOPS-SEC-006", &d), eol, "{version}");
            assert_eq!(fires("WEBOPS-SEC-007", &d), near, "{version}");
        }
        let d = with(json!({"python_version": null}));
        assert_eq!(fires("WEBOPS-SEC-006", &d), None);
    }

    #[test]
    fn databases() {
        let d = with(json!({}));
        let public = database(true, true);
        let plain = database(false, false);
        assert_eq!(
            run("WEBOPS-SEC-009", &d, &[&public])[0].severity,
            Severity::High
        );
        assert!(run("WEBOPS-SEC-009", &d, &[&plain]).is_empty());
        assert_eq!(
            run("WEBOPS-SEC-010", &d, &[&plain])[0].severity,
            Severity::Medium
        );
        assert!(run("WEBOPS-SEC-010", &d, &[&public]).is_empty());
    }

    #[test]
    fn capacity_rules() {
        assert_eq!(
            fires("WEBOPS-SEC-011", &with(json!({"instances": 1}))),
            Some(Severity::Low)
        );
        assert_eq!(
            fires(
                "WEBOPS-SEC-011",
                &with(json!({"instances": 1, "environment": "staging"}))
            ),
            None
        );
        assert_eq!(
            fires("WEBOPS-SEC-012", &with(json!({"memory_limit": null}))),
            Some(Severity::Low)
        );
        assert_eq!(
            fires("WEBOPS-SEC-012", &with(json!({"memory_limit": "1G"}))),
            None
        );
    }

    #[test]
    fn health_and_errors() {
        let sick = with(json!({"health": {"is_healthy": false, "uptime_seconds": 1,
            "checks": {"http_response": true, "database_connection": false, "disk_space": true}}}));
        let hits = run("WEBOPS-SEC-013", &sick, &[]);
        assert!(hits[0].evidence.contains("database_connection"));
        let stopped = with(json!({"status": "stopped", "health": {"is_healthy": false}}));
        assert!(run("WEBOPS-SEC-013", &stopped, &[]).is_empty());

        let metrics = |rate: f64| {
            with(json!({"metrics": {"cpu_usage": 1.0, "memory_usage": 1.0,
                                    "request_count_24h": 1000, "error_rate": rate}}))
        };
        assert_eq!(fires("WEBOPS-SEC-014", &metrics(0.05)), None);
        assert_eq!(
            fires("WEBOPS-SEC-014", &metrics(0.08)),
            Some(Severity::Medium)
        );
        assert_eq!(
            fires("WEBOPS-SEC-014", &metrics(0.35)),
            Some(Severity::High)
        );
    }
}
