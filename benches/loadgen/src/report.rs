//! Run reports: latency summaries, the machine, and the JSON and Markdown
//! files each run writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// Percentiles of a set of durations, in microseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Summary {
    /// Nearest-rank percentiles of `samples` (nanoseconds).
    pub fn of(mut samples: Vec<u64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1] as f64 / 1000.0
        };
        Self {
            count: samples.len(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: at(1.0),
        }
    }
}

/// Counts by label, for errors and refusals.
pub type Counts = BTreeMap<String, u64>;

pub fn add(counts: &mut Counts, label: String) {
    *counts.entry(label).or_default() += 1;
}

/// The machine a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub open_files_limit: u64,
}

impl Machine {
    pub fn here() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            open_files_limit: rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map_or(0, |(soft, _)| soft),
        }
    }
}

/// Raises this process's open-files limit to its hard limit (children
/// inherit it). Returns the limit now in force.
pub fn raise_open_files_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

pub fn kib(bytes: u64) -> f64 {
    (bytes as f64 / 1024.0 * 10.0).round() / 10.0
}

/// A finished run: what to write.
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
}

/// Writes `{scenario}-{unix seconds}.json` and `.md` into `dir`.
pub fn write(
    dir: &Path,
    scenario: &str,
    report: &impl Serialize,
    markdown: &str,
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let json = dir.join(format!("{scenario}-{stamp}.json"));
    let md = dir.join(format!("{scenario}-{stamp}.md"));
    std::fs::write(&json, serde_json::to_vec_pretty(report)?)?;
    std::fs::write(&md, markdown)?;
    Ok(Written { json, markdown: md })
}

/// A two-column Markdown table.
pub fn table(title: &str, rows: &[(&str, String)]) -> String {
    let mut out = format!("### {title}\n\n| measure | value |\n|---|---:|\n");
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out
}

pub fn counts_text(counts: &Counts) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = Summary::of((1..=100).map(|us| us * 1000).collect());
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 50.0);
        assert_eq!(s.p90_us, 90.0);
        assert_eq!(s.p99_us, 99.0);
        assert_eq!(s.max_us, 100.0);
        assert_eq!(Summary::of(vec![7_000]).p99_us, 7.0);
        assert_eq!(Summary::of(Vec::new()), Summary::default());
    }
}
