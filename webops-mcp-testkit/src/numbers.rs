//! Deterministic figures: deployment metrics, metric series, system statistics.
//!
//! No randomness: every number is a function of ids, time indices and the current state, so
//! two runs of the same scenario see the same values.

use std::f64::consts::TAU;

use chrono::TimeZone;
use serde::Serialize;

use crate::model::{Database, Deployment, Engine, MetricsWire, Period, Status, Ts};

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A number in `0.0..1.0` fixed by `(a, b, channel)`.
pub(crate) fn unit(a: i64, b: i64, channel: u64) -> f64 {
    let h = mix(mix(mix(a as u64) ^ (b as u64)) ^ channel);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Rounds to `digits` decimals.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Daily traffic curve in `0.0..=1.0` for a Unix time: low at night, high in the afternoon.
fn daily(t: i64) -> f64 {
    let phase = t.rem_euclid(86_400) as f64 / 86_400.0;
    0.5 - 0.5 * (phase * TAU).cos()
}

/// Figures of a deployment as if running: (cpu %, memory %, requests per minute).
fn base(d: &Deployment) -> (f64, f64, f64) {
    let cpu = 4.0 + 46.0 * unit(d.id, 0, 1);
    let memory = 18.0 + 55.0 * unit(d.id, 0, 2);
    let rpm = (5.0 + 60.0 * unit(d.id, 0, 3)) * f64::from(d.instances);
    (cpu, memory, rpm)
}

/// `metrics` of a deployment detail: live figures while running, zero otherwise.
pub(crate) fn deployment_metrics(d: &Deployment) -> MetricsWire {
    if d.status != Status::Running {
        return MetricsWire {
            cpu_usage: 0.0,
            memory_usage: 0.0,
            request_count_24h: 0,
            error_rate: 0.0,
        };
    }
    let (cpu, memory, rpm) = base(d);
    MetricsWire {
        cpu_usage: round(cpu, 1),
        memory_usage: round(memory, 1),
        request_count_24h: (rpm * 60.0 * 24.0).round() as i64,
        error_rate: round(d.error_rate, 4),
    }
}

/// One sample of `monitoring/metrics/`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PointWire {
    timestamp: Ts,
    cpu_percent: f64,
    memory_percent: f64,
    request_count: i64,
    error_rate: f64,
}

/// Raw figures of one deployment at Unix time `t`, `None` when it was not serving then.
fn sample(d: &Deployment, t: i64, step: i64) -> Option<(f64, f64, f64, f64)> {
    if t < d.created_at.timestamp() {
        return None;
    }
    if d.status != Status::Running && t >= d.updated_at.timestamp() {
        return None;
    }
    if matches!(d.status, Status::Pending | Status::Building) {
        return None;
    }
    let index = t.div_euclid(step);
    let (cpu, memory, rpm) = base(d);
    let load = 0.4 + 0.6 * daily(t);
    let cpu = cpu * (0.7 + 0.6 * unit(d.id, index, 4)) * (0.6 + 0.4 * load);
    let memory = memory * (0.9 + 0.2 * unit(d.id, index, 5));
    let requests = rpm * (step as f64 / 60.0) * load * (0.8 + 0.4 * unit(d.id, index, 6));
    let error_rate = d.error_rate * (0.7 + 0.6 * unit(d.id, index, 7));
    Some((cpu, memory, requests, error_rate))
}

/// The timestamps of `period`'s grid ending at `at`, oldest first.
fn grid(period: Period, at: Ts) -> impl Iterator<Item = i64> {
    let (step, count) = period.grid();
    let last = at.timestamp().div_euclid(step) * step;
    (0..count).map(move |i| last - (count - 1 - i) * step)
}

fn point(t: i64, cpu: f64, memory: f64, requests: f64, error_rate: f64) -> PointWire {
    PointWire {
        timestamp: chrono::Utc.timestamp_opt(t, 0).single().unwrap_or_default(),
        cpu_percent: round(cpu.clamp(0.0, 100.0), 1),
        memory_percent: round(memory.clamp(0.0, 100.0), 1),
        request_count: requests.round() as i64,
        error_rate: round(error_rate.clamp(0.0, 1.0), 4),
    }
}

/// The series of one deployment.
pub(crate) fn deployment_points(d: &Deployment, period: Period, at: Ts) -> Vec<PointWire> {
    let (step, _) = period.grid();
    grid(period, at)
        .map(|t| match sample(d, t, step) {
            Some((cpu, memory, requests, error_rate)) => {
                point(t, cpu, memory, requests, error_rate)
            }
            None => point(t, 0.0, 0.0, 0.0, 0.0),
        })
        .collect()
}

/// Platform-wide aggregate of `samples` (cpu, memory, requests, error rate; weighted by
/// instances): (cpu %, memory %, requests, error rate).
fn aggregate(samples: impl Iterator<Item = (u32, (f64, f64, f64, f64))>) -> (f64, f64, f64, f64) {
    let (mut cpu, mut memory, mut requests, mut errors) = (0.0, 0.0, 0.0, 0.0);
    for (instances, (c, m, r, e)) in samples {
        let n = f64::from(instances);
        cpu += c * n;
        memory += m * n;
        requests += r;
        errors += r * e;
    }
    let error_rate = if requests > 0.0 {
        errors / requests
    } else {
        0.0
    };
    (
        (6.0 + cpu / 6.0).min(97.0),
        (15.0 + memory / 10.0).min(97.0),
        requests,
        error_rate,
    )
}

/// The platform-wide series.
pub(crate) fn platform_points<'a>(
    deployments: impl Iterator<Item = &'a Deployment> + Clone,
    period: Period,
    at: Ts,
) -> Vec<PointWire> {
    let (step, _) = period.grid();
    grid(period, at)
        .map(|t| {
            let (cpu, memory, requests, error_rate) = aggregate(
                deployments
                    .clone()
                    .filter_map(|d| sample(d, t, step).map(|s| (d.instances, s))),
            );
            point(t, cpu, memory, requests, error_rate)
        })
        .collect()
}

/// `system` of `monitoring/health/`.
#[derive(Debug, Serialize)]
pub(crate) struct SystemWire {
    cpu_percent: f64,
    memory_percent: f64,
    disk_percent: f64,
    load_average: [f64; 3],
    uptime_seconds: i64,
}

/// Machine statistics from what runs now.
pub(crate) fn system<'a>(
    deployments: impl Iterator<Item = &'a Deployment>,
    databases: &[Database],
    at: Ts,
    booted: Ts,
) -> SystemWire {
    let mut count = 0usize;
    let running: Vec<(u32, (f64, f64, f64, f64))> = deployments
        .inspect(|_| count += 1)
        .filter(|d| d.status == Status::Running)
        .map(|d| {
            let (cpu, memory, rpm) = base(d);
            (d.instances, (cpu, memory, rpm, d.error_rate))
        })
        .collect();
    let (cpu, memory, _, _) = aggregate(running.into_iter());
    let db_mb: f64 = databases.iter().map(database_size_mb).sum();
    let disk = (22.0 + 1.5 * count as f64 + db_mb / 1024.0).min(98.0);
    let cores = 4.0;
    SystemWire {
        cpu_percent: round(cpu, 1),
        memory_percent: round(memory, 1),
        disk_percent: round(disk, 1),
        load_average: [
            round(cpu / 100.0 * cores, 2),
            round(cpu / 100.0 * cores * 0.9, 2),
            round(cpu / 100.0 * cores * 0.8, 2),
        ],
        uptime_seconds: (at - booted).num_seconds().max(0),
    }
}

/// Size of a database in MiB.
pub(crate) fn database_size_mb(db: &Database) -> f64 {
    let base = match db.engine {
        Engine::Postgresql => 180.0,
        Engine::Mysql => 120.0,
        Engine::Sqlite => 8.0,
    };
    round(base + 2_400.0 * unit(db.id, 0, 11), 1)
}

/// Open connections of a database: four per running instance of its deployment.
pub(crate) fn database_connections(db: &Database, owner: Option<&Deployment>) -> i64 {
    match owner {
        Some(d) if d.status == Status::Running => {
            i64::from(d.instances) * 4 + (unit(db.id, 0, 12) * 3.0) as i64
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_deterministic_and_in_range() {
        for a in 0..50 {
            for b in 0..50 {
                let x = unit(a, b, 3);
                assert!((0.0..1.0).contains(&x));
                assert_eq!(x.to_bits(), unit(a, b, 3).to_bits());
            }
        }
        assert_ne!(unit(1, 2, 3).to_bits(), unit(2, 1, 3).to_bits());
    }

    #[test]
    fn daily_curve_is_bounded() {
        for t in (0..86_400).step_by(600) {
            assert!((0.0..=1.0).contains(&daily(t)));
        }
        assert!(daily(43_200) > 0.99);
        assert!(daily(0) < 0.01);
    }

    #[test]
    fn grid_is_aligned_and_ordered() {
        let at = chrono::Utc
            .timestamp_opt(1_700_000_123, 0)
            .single()
            .unwrap();
        let ts: Vec<i64> = grid(Period::Day, at).collect();
        assert_eq!(ts.len(), 24);
        assert!(ts.windows(2).all(|w| w[1] - w[0] == 3_600));
        assert_eq!(ts[23], 1_700_000_123 / 3_600 * 3_600);
    }
}
