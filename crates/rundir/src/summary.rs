//! What the tracking tools show about a run, read without ever failing: a damaged or foreign
//! directory becomes a summary with a `problem`, never an error that stops a listing.

use std::path::{Path, PathBuf};

use crate::{epoch_means, EpochMeans, LossRow, RunDir, RunInfo, Status, METRICS_FILE};

/// Status as the tools show it: `stale` is a `running` run whose process is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Run(Status),
    Stale,
    Damaged,
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Run(s) => write!(f, "{s}"),
            Shown::Stale => f.write_str("stale"),
            Shown::Damaged => f.write_str("damaged"),
        }
    }
}

impl Shown {
    /// How a run with this `run.json` is shown: `stale` when it says `running` but its
    /// process is gone.
    pub fn of(info: &RunInfo) -> Shown {
        if is_stale(info) {
            Shown::Stale
        } else {
            Shown::Run(info.status)
        }
    }
}

/// The headline sample-quality numbers of `metrics.json`, when a run has them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Headline {
    pub parzen_ll: Option<f64>,
    pub fid: Option<f64>,
    /// Digit classes holding at least 5% of the samples (of 10).
    pub coverage: Option<u64>,
    /// A conditional run's share of samples showing the digit asked for.
    pub label_accuracy: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub info: Option<RunInfo>,
    pub shown: Shown,
    /// Means over the last epoch in `losses.csv` (complete or not).
    pub last_epoch: Option<EpochMeans>,
    pub losses: Vec<LossRow>,
    pub headline: Option<Headline>,
    /// Why parts of the run could not be read.
    pub problem: Option<String>,
}

/// Reads what can be read of the run at `path`.
pub fn summarize(path: &Path) -> RunSummary {
    let mut s = RunSummary {
        dir: path.to_path_buf(),
        info: None,
        shown: Shown::Damaged,
        last_epoch: None,
        losses: Vec::new(),
        headline: None,
        problem: None,
    };
    let dir = match RunDir::open(path) {
        Ok(d) => d,
        Err(e) => {
            s.problem = Some(e.to_string());
            return s;
        }
    };
    match dir.read_info() {
        Ok(info) => {
            s.shown = Shown::of(&info);
            s.info = Some(info);
        }
        Err(e) => s.problem = Some(e.to_string()),
    }
    match dir.read_losses() {
        Ok(rows) => {
            s.last_epoch = epoch_means(&rows).last().copied();
            s.losses = rows;
        }
        Err(e) => {
            s.shown = Shown::Damaged;
            s.problem.get_or_insert(e.to_string());
        }
    }
    s.headline = read_headline(&dir);
    s
}

/// Every run directory under `root` (one level, plus the runs inside sweep folders), newest first.
pub fn list_runs(root: &Path) -> std::io::Result<Vec<RunSummary>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.join(crate::RUN_FILE).is_file() {
            found.push(summarize(&path));
        } else if path.join(crate::SWEEP_FILE).is_file() {
            found.extend(sweep_runs(&path)?.iter().map(|p| summarize(p)));
        } else if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            // A folder that is not a run: shown, so a damaged run is never silently skipped.
            found.push(summarize(&path));
        }
    }
    found.sort_by(|a, b| {
        let start = |s: &RunSummary| {
            s.info
                .as_ref()
                .map(|i| i.started_at.clone())
                .unwrap_or_default()
        };
        start(b).cmp(&start(a)).then_with(|| a.dir.cmp(&b.dir))
    });
    Ok(found)
}

/// The run directories inside a sweep folder (one holding `sweep.json`), in name order.
pub fn sweep_runs(sweep: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(sweep)?
        .flatten()
        .map(|e| e.path())
        .filter(|d| d.join(crate::RUN_FILE).is_file())
        .collect();
    runs.sort();
    Ok(runs)
}

fn read_headline(dir: &RunDir) -> Option<Headline> {
    if !dir.file(METRICS_FILE).is_file() {
        return None;
    }
    let m = dir.read_metrics().ok()?;
    Some(Headline {
        parzen_ll: m.generated.parzen.as_ref().map(|p| p.mean_ll),
        fid: Some(m.generated.fid),
        coverage: Some(m.generated.coverage.classes_over_5pct),
        label_accuracy: m.generated.label_accuracy,
    })
}

/// A run marked `running` on this machine whose process no longer exists (or is another
/// program): it was killed or crashed without a chance to say so.
pub fn is_stale(info: &RunInfo) -> bool {
    info.status == Status::Running && process_is_gone(info)
}

fn process_is_gone(info: &RunInfo) -> bool {
    let here = crate::hostname();
    if here.is_empty() || here != info.machine.hostname {
        return false; // another machine's run: we cannot tell
    }
    let proc = PathBuf::from(format!("/proc/{}", info.pid));
    if !proc.exists() {
        return Path::new("/proc/self").exists();
    }
    match std::fs::read(proc.join("cmdline")) {
        Ok(cmd) => !String::from_utf8_lossy(&cmd).contains("runner"),
        Err(_) => false,
    }
}

/// Where two loss logs first differ, bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub enum LossComparison {
    Identical {
        steps: usize,
    },
    /// Equal for the `common` steps both have; one log is longer.
    Prefix {
        common: usize,
        longer_by: usize,
        first_is_longer: bool,
    },
    Diverged {
        /// Step (1-based) of the first difference.
        step: u64,
        column: &'static str,
        first: f32,
        second: f32,
        /// Largest absolute difference from that step on, and where.
        max_diff: f64,
        max_diff_step: u64,
        max_diff_column: &'static str,
    },
}

/// Compares two loss logs step by step.
pub fn compare_losses(a: &[LossRow], b: &[LossRow]) -> LossComparison {
    let cols = |r: &LossRow| -> [(&'static str, f32); 4] {
        [
            ("d_loss", r.d_loss),
            ("g_loss", r.g_loss),
            ("d_real", r.d_real),
            ("d_fake", r.d_fake),
        ]
    };
    let first = a.iter().zip(b).position(|(x, y)| {
        x.step != y.step
            || cols(x)
                .iter()
                .zip(cols(y))
                .any(|((_, p), (_, q))| p.to_bits() != q.to_bits())
    });
    let Some(i) = first else {
        return if a.len() == b.len() {
            LossComparison::Identical { steps: a.len() }
        } else {
            LossComparison::Prefix {
                common: a.len().min(b.len()),
                longer_by: a.len().abs_diff(b.len()),
                first_is_longer: a.len() > b.len(),
            }
        };
    };
    let (column, first_v, second_v) = cols(&a[i])
        .into_iter()
        .zip(cols(&b[i]))
        .find(|((_, p), (_, q))| p.to_bits() != q.to_bits())
        .map(|((name, p), (_, q))| (name, p, q))
        .unwrap_or(("step", a[i].step as f32, b[i].step as f32));
    let (mut max_diff, mut max_diff_step, mut max_diff_column) = (0.0f64, a[i].step, column);
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        for ((name, p), (_, q)) in cols(x).into_iter().zip(cols(y)) {
            let d = (p as f64 - q as f64).abs();
            if d > max_diff || (d.is_nan() && !max_diff.is_nan()) {
                (max_diff, max_diff_step, max_diff_column) = (d, x.step, name);
            }
        }
    }
    LossComparison::Diverged {
        step: a[i].step,
        column,
        first: first_v,
        second: second_v,
        max_diff,
        max_diff_step,
        max_diff_column,
    }
}
