//! The closed-loop workload driver: workers calling until a stop, latency percentiles and
//! error classes, and how a run's figures are printed.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::task::JoinSet;

use super::client::McpClient;
use super::workload::{Mix, Outcome, call_tool};

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// After this long (calls in flight finish).
    After(Duration),
    /// After this many calls over all workers.
    Calls(u64),
}

/// What a run measured.
#[derive(Debug, Default)]
pub(crate) struct RunStats {
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<String, u64>,
    /// Every call's latency, answered or not.
    pub(crate) latencies: Vec<Duration>,
    pub(crate) elapsed: Duration,
}

impl RunStats {
    pub(crate) fn calls(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Calls per second.
    pub(crate) fn throughput(&self) -> f64 {
        self.calls() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentiles(&self) -> Percentiles {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let at = |q: f64| {
            if sorted.is_empty() {
                return Duration::ZERO;
            }
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[rank - 1]
        };
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// Latency percentiles (nearest rank).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Percentiles {
    pub(crate) p50: Duration,
    pub(crate) p95: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

/// Milliseconds with two decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Mebibytes with one decimal.
pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Runs `workers` closed loops of `call(worker, n)` until `stop`, timing every call.
pub(crate) async fn drive<F, Fut>(workers: usize, stop: Stop, call: F) -> Result<RunStats>
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let call = Arc::new(call);
    let claimed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut set = JoinSet::new();
    for worker in 0..workers {
        let (call, claimed) = (Arc::clone(&call), Arc::clone(&claimed));
        set.spawn(async move {
            let mut stats = RunStats::default();
            let mut n = 0u64;
            loop {
                match stop {
                    Stop::After(limit) if started.elapsed() >= limit => break,
                    Stop::Calls(total) if claimed.fetch_add(1, Ordering::Relaxed) >= total => {
                        break;
                    }
                    _ => {}
                }
                let t = Instant::now();
                let outcome = call(worker, n).await;
                stats.latencies.push(t.elapsed());
                match outcome {
                    Outcome::Ok => stats.ok += 1,
                    Outcome::Error(class) => *stats.errors.entry(class).or_default() += 1,
                }
                n += 1;
            }
            stats
        });
    }
    let mut total = RunStats::default();
    while let Some(joined) = set.join_next().await {
        let stats = joined.context("a load worker panicked")?;
        total.ok += stats.ok;
        for (class, n) in stats.errors {
            *total.errors.entry(class).or_default() += n;
        }
        total.latencies.extend(stats.latencies);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// Runs `mix` on `clients` (worker `i` uses client `i`).
pub(crate) async fn drive_mcp(
    clients: &[Arc<McpClient>],
    mix: &Mix,
    stop: Stop,
) -> Result<RunStats> {
    let clients: Arc<[Arc<McpClient>]> = Arc::from(clients.to_vec());
    let mix = mix.clone();
    drive(clients.len(), stop, move |worker, n| {
        let client = Arc::clone(&clients[worker]);
        let call = mix.pick(worker, n).clone();
        async move { call_tool(&client, &call).await }
    })
    .await
}

/// Prints a run's figures, indented.
pub(crate) fn print_stats(stats: &RunStats) {
    let p = stats.percentiles();
    println!(
        "  calls: {} in {:.1} s = {:.0}/s; ok {}, errors {}",
        stats.calls(),
        stats.elapsed.as_secs_f64(),
        stats.throughput(),
        stats.ok,
        stats.error_count()
    );
    println!(
        "  latency ms: p50 {}  p95 {}  p99 {}  max {}",
        ms(p.p50),
        ms(p.p95),
        ms(p.p99),
        ms(p.max)
    );
    if !stats.errors.is_empty() {
        println!("  errors by kind:");
        for (class, n) in &stats.errors {
            println!("    {class}: {n}");
        }
    }
}

/// `"60s"`, `"500ms"`, `"2m"`, `"1.5s"` or plain seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (e.g. 60s, 500ms, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (ms, s or m)")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let stats = RunStats {
            latencies: (1..=100).map(Duration::from_millis).collect(),
            ..RunStats::default()
        };
        let p = stats.percentiles();
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p95, Duration::from_millis(95));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(RunStats::default().percentiles().p99, Duration::ZERO);
    }
}
