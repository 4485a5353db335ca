//! `run.json`: what a run is, where it stands and what it ran on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const RUN_FORMAT: &str = "gan-run-v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    Completed,
    Failed,
    /// Stopped by Ctrl-C (SIGINT) or SIGTERM.
    Interrupted,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitInfo {
    pub commit: String,
    /// Tracked files differ from the commit.
    pub dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Machine {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpu: String,
    pub logical_cpus: usize,
}

/// This machine's host name, as `run.json` records it and as stale-run detection compares it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The contents of `run.json`. Timings live here, never in `losses.csv`, so identical runs
/// have identical loss logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub format: String,
    pub name: String,
    pub status: Status,
    /// Why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub seed: u64,
    /// RFC 3339, UTC.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    pub epochs_planned: usize,
    pub epochs_done: usize,
    pub steps_done: u64,
    /// Wall time of each finished epoch.
    pub epoch_seconds: Vec<f64>,
    /// Threads of the training step.
    pub threads: usize,
    /// Process that runs (or ran) it, with `machine.hostname`: how a dead `running` run is told.
    pub pid: u32,
    pub machine: Machine,
    /// The repository the runner was started in, if it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitInfo>,
    /// Versions of the runner, rustc and the crates that decide the numbers.
    pub versions: BTreeMap<String, String>,
    /// The spec file the run was started from, as given, and the `--set` overrides
    /// (for a sweep point: the sweep file and the user's overrides; `sweep_point` names the
    /// point, whose own overrides the sweep gives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// The grid point's name when the run is part of a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_point: Option<String>,
    /// SHA-256 of `spec.yaml` as written at the start: a resume refuses an edited spec.
    #[serde(default)]
    pub spec_sha256: String,
    /// When the run was resumed, each time (RFC 3339).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resumed_at: Vec<String>,
    /// SHA-256 of `model.safetensors` as written: readers refuse a damaged or replaced file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
}

impl RunInfo {
    /// Total wall time of the finished epochs.
    pub fn wall_seconds(&self) -> f64 {
        self.epoch_seconds.iter().sum()
    }
}
