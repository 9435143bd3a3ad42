//! Latency percentiles and medians over runs.

use std::time::Duration;

use serde::Serialize;

/// Nearest-rank percentile (`p` in 0..=100) of an ascending slice; zero when empty.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let p = p.clamp(0.0, 100.0);
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of `values` (mean of the two middle ones when even); zero when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Outcome of one measured run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// Successful (HTTP 200) requests completed in the measured window.
    pub ok: u64,
    /// Other responses and transport errors in the window.
    pub errors: u64,
    /// Measured window, seconds.
    pub seconds: f64,
    /// Successful requests per second.
    pub rps: f64,
    /// Latencies of successful requests, milliseconds.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl RunStats {
    /// Builds the statistics from latencies in microseconds (sorted here).
    pub fn from_latencies(latencies_us: &mut [u32], errors: u64, window: Duration) -> Self {
        latencies_us.sort_unstable();
        let ms = |us: u32| f64::from(us) / 1000.0;
        let seconds = window.as_secs_f64();
        let ok = latencies_us.len() as u64;
        RunStats {
            ok,
            errors,
            seconds,
            rps: if seconds > 0.0 {
                ok as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(percentile(latencies_us, 50.0)),
            p90_ms: ms(percentile(latencies_us, 90.0)),
            p99_ms: ms(percentile(latencies_us, 99.0)),
            max_ms: ms(latencies_us.last().copied().unwrap_or(0)),
        }
    }
}

/// Per-metric medians over runs.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub runs: usize,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Total errors over all runs.
    pub errors: u64,
}

impl Summary {
    pub fn of(runs: &[RunStats]) -> Self {
        let m = |f: fn(&RunStats) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        Summary {
            runs: runs.len(),
            rps: m(|r| r.rps),
            p50_ms: m(|r| r.p50_ms),
            p90_ms: m(|r| r.p90_ms),
            p99_ms: m(|r| r.p99_ms),
            max_ms: m(|r| r.max_ms),
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        let v = [10, 20, 30, 40];
        assert_eq!(percentile(&v, 50.0), 20);
        assert_eq!(percentile(&v, 51.0), 30);
        assert_eq!(percentile(&v, 99.9), 40);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn run_stats() {
        let mut lat = vec![3000, 1000, 2000, 4000];
        let s = RunStats::from_latencies(&mut lat, 1, Duration::from_secs(2));
        assert_eq!(s.ok, 4);
        assert_eq!(s.rps, 2.0);
        assert_eq!(s.p50_ms, 2.0);
        assert_eq!(s.max_ms, 4.0);
    }
}
