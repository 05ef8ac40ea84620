//! Small helpers every benchmark uses: errors, statistics, process memory, result files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

/// Median, 90th percentile and range of a set of measurements.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: usize,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    /// Nearest-rank percentiles: with ten runs, p90 is the ninth value, a real measurement.
    pub fn of(values: &[f64]) -> Summary {
        if values.is_empty() {
            return Summary::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[index - 1]
        };
        Summary {
            count: sorted.len(),
            median: rank(0.5),
            p90: rank(0.9),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Nearest rank, as [`Summary::of`]: the value at or below which a share `p` of `values` lie
/// (0 for none).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[index - 1]
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A `VmHWM`-style line of /proc/PID/status, in KiB. The kernel's peak resident set size is
/// what Lambda bills memory against, so that is the figure to compare with a function's size.
pub fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// This process's peak resident set size (KiB).
pub fn own_peak_rss_kib() -> u64 {
    proc_status_kib("self", "VmHWM").unwrap_or(0)
}

/// `/proc/loadavg`'s first three fields: how busy the machine was while measuring.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Where the benchmarks leave their results for `report`.
pub fn result_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

pub fn write_results<T: Serialize>(dir: &Path, name: &str, results: &T) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = result_path(dir, name);
    std::fs::write(&path, serde_json::to_vec_pretty(results)?)?;
    eprintln!("[{name}] results written to {}", path.display());
    Ok(())
}

pub fn read_results<T: DeserializeOwned>(dir: &Path, name: &str) -> Option<T> {
    let bytes = std::fs::read(result_path(dir, name)).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(results) => Some(results),
        Err(e) => {
            eprintln!("[report] ignoring {name}.json: {e}");
            None
        }
    }
}

/// Progress on stderr, so stdout stays the figures.
pub fn note(bench: &str, message: impl std::fmt::Display) {
    eprintln!("[{bench}] {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        let summary = Summary::of(&values);
        assert_eq!(summary.median, 5.0);
        assert_eq!(summary.p90, 9.0);
        assert_eq!(summary.min, 1.0);
        assert_eq!(summary.max, 10.0);
        assert_eq!(Summary::of(&[3.0]).p90, 3.0);
        let hundred: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&hundred, 0.99), 99.0);
        assert_eq!(percentile(&hundred, 0.5), 50.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn reads_its_own_peak_rss() {
        assert!(own_peak_rss_kib() > 0);
    }
}
