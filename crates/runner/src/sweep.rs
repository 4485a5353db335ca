//! Sweeps: one spec with a `sweep:` grid becomes one folder with a run directory per grid
//! point, named by the point's overrides (no timestamps), plus `sweep.json` listing them.
//! `--jobs N` runs points side by side on one machine; `--shard I/N` runs only the points
//! whose index is I modulo N, so a cluster's array job can split the grid; shards can share
//! the folder. A point whose directory exists is skipped when completed and resumed otherwise,
//! so a restarted (pre-empted) shard picks up where it stopped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context};
use gan_rundir::{write_json_atomic, RunDir, Shown, Status, SWEEP_FILE};
use gan_spec::{Spec, SweepPoint};
use serde::{Deserialize, Serialize};

use crate::data::{ensure_data, stopped, training_images};
use crate::fresh::{run_fresh, RunSource};
use crate::options::{Execution, Options, Outcome};
use crate::resume::resume_session;

/// `sweep.json`: the grid, in order. Its content never varies between runs of one sweep, so
/// shards that start together can all write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SweepIndex {
    format: String,
    name: String,
    spec_source: String,
    overrides: Vec<String>,
    points: Vec<IndexedPoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct IndexedPoint {
    index: usize,
    name: String,
    overrides: Vec<String>,
    /// The point's resolved spec (its `spec.yaml`), so a rerun can tell a changed experiment
    /// from a restarted one. Absent in sweeps started before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spec: Option<String>,
}

pub(crate) fn run_sweep(
    spec_path: &Path,
    spec: &Spec,
    points: Vec<SweepPoint>,
    opts: &Options,
    exec: &Execution,
) -> anyhow::Result<Outcome> {
    let (threads, interrupt) = (exec.threads, exec.interrupt);
    let parent = match &opts.run_dir {
        Some(p) => p.clone(),
        None => opts.runs_root.join(format!(
            "{}-{}",
            spec.name,
            gan_rundir::compact_timestamp(SystemTime::now())
        )),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    write_index(
        &parent,
        spec_path,
        spec,
        &points,
        &opts.overrides,
        opts.force,
    )?;

    // Things every point needs, done once before the points race for them.
    for p in &points {
        ensure_data(&p.spec, opts.quiet)?;
    }
    for p in points.iter().filter(|p| p.spec.eval.enabled) {
        let mut log = |s: &str| {
            if !opts.quiet {
                eprintln!("{s}")
            }
        };
        let stop = || interrupt.load(Ordering::SeqCst);
        match gan_eval::ensure_classifier_unless(Path::new(&p.spec.data.dir), &mut log, &stop) {
            // Ctrl-C before any point started: the sweep stops with its points untouched.
            Err(gan_eval::EvalError::Interrupted) => return Ok(Outcome::Interrupted(parent)),
            other => other?,
        };
    }

    let selected: Vec<&SweepPoint> = points
        .iter()
        .filter(|p| opts.shard.is_none_or(|s| s.contains(p.index)))
        .collect();
    let jobs = opts.jobs.clamp(1, selected.len().max(1));
    let per_job = (threads / jobs).max(1);
    if !opts.quiet {
        let shard = opts
            .shard
            .map(|s| {
                format!(
                    " (shard {}/{}: {} of them)",
                    s.index,
                    s.count,
                    selected.len()
                )
            })
            .unwrap_or_default();
        println!(
            "sweep {}: {} grid points{shard}, {jobs} at a time with {per_job} threads each, in {}",
            spec.name,
            points.len(),
            parent.display()
        );
    }

    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, anyhow::Result<Status>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= selected.len() || interrupt.load(Ordering::SeqCst) {
                    break;
                }
                let point = selected[k];
                let label = (jobs > 1).then(|| point.name.clone());
                if jobs == 1 && !opts.quiet {
                    println!(
                        "== point {} of {}: {} ==",
                        point.index + 1,
                        points.len(),
                        point.name
                    );
                }
                let started = Instant::now();
                let exec = Execution {
                    threads: per_job,
                    label,
                    ..exec.clone()
                };
                let result = run_point(spec_path, point, &parent, &opts.overrides, &exec);
                if jobs > 1 && !opts.quiet {
                    let how = match &result {
                        Ok(s) => s.to_string(),
                        Err(e) => format!("failed: {e:#}"),
                    };
                    println!(
                        "[{}] {how} ({:.1} s)",
                        point.name,
                        started.elapsed().as_secs_f64()
                    );
                }
                results
                    .lock()
                    .expect("no job panics")
                    .push((point.name.clone(), result));
            });
        }
    });

    let results = results.into_inner().expect("no job panics");
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e:#}")))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} sweep points failed:\n  {}",
            failed.len(),
            selected.len(),
            failed.join("\n  ")
        );
    }
    let interrupted = results.len() < selected.len()
        || results
            .iter()
            .any(|(_, r)| matches!(r, Ok(Status::Interrupted)));
    if interrupted {
        return Ok(Outcome::Interrupted(parent));
    }
    if !opts.quiet {
        println!(
            "sweep complete: {} points in {}",
            results.len(),
            parent.display()
        );
    }
    Ok(Outcome::Completed(parent))
}

/// Writes `sweep.json`, or checks that the one already there describes the same grid and,
/// point by point, the same resolved specs (a changed spec is refused unless `force`, and
/// `force` records the new specs). Points already on disk are checked against their own
/// `spec.yaml` too, which also covers sweeps whose index predates the recorded specs.
fn write_index(
    parent: &Path,
    spec_path: &Path,
    spec: &Spec,
    points: &[SweepPoint],
    overrides: &[String],
    force: bool,
) -> anyhow::Result<()> {
    let index = SweepIndex {
        format: "gan-sweep-v1".into(),
        name: spec.name.clone(),
        spec_source: spec_path.display().to_string(),
        overrides: overrides.to_vec(),
        points: points
            .iter()
            .map(|p| IndexedPoint {
                index: p.index,
                name: p.name.clone(),
                overrides: p.overrides.clone(),
                spec: Some(p.spec.to_yaml()),
            })
            .collect(),
    };
    let path = parent.join(SWEEP_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let existing: SweepIndex = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a sweep index", path.display()))?;
        let names = |i: &SweepIndex| i.points.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        if names(&existing) != names(&index) || existing.name != index.name {
            bail!(
                "{} already holds a different sweep ({}, {} points); choose another --run-dir",
                parent.display(),
                existing.name,
                existing.points.len()
            );
        }
        let mut changes = SpecChanges::default();
        for (old, new) in existing.points.iter().zip(points) {
            let new_yaml = new.spec.to_yaml();
            if let Some(old_yaml) = &old.spec {
                changes.add(&new.name, old_yaml, &new_yaml);
            }
            let own = parent.join(&new.name).join(gan_rundir::SPEC_FILE);
            if let Ok(on_disk) = std::fs::read_to_string(&own) {
                changes.add(&new.name, &on_disk, &new_yaml);
            }
        }
        if changes.is_empty() || (force && existing.points == index.points) {
            return Ok(());
        }
        if !force {
            bail!(
                "{} was started with a different spec: {}. Rerunning would mix two experiments \
                 in one sweep; choose another --run-dir for the new one, or give --force to go on \
                 anyway (finished points are kept as they are, new points use the new spec)",
                parent.display(),
                changes.describe()
            );
        }
        eprintln!(
            "warning: --force: {} continues with a changed spec ({})",
            parent.display(),
            changes.describe()
        );
    }
    write_json_atomic(&path, &index)?;
    Ok(())
}

/// Keys whose values differ between a sweep's recorded specs and the current ones.
#[derive(Default)]
struct SpecChanges {
    /// `key: old -> new` and the points where it differs.
    keys: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl SpecChanges {
    fn add(&mut self, point: &str, old_yaml: &str, new_yaml: &str) {
        // By content: keys added to the spec since the sweep started are not changes.
        let old_yaml = &gan_spec::normalized_yaml(old_yaml).unwrap_or_else(|| old_yaml.to_string());
        if old_yaml == new_yaml {
            return;
        }
        let flat = |y: &str| {
            serde_yaml::from_str::<serde_yaml::Value>(y)
                .map(|v| gan_spec::flatten(&v))
                .unwrap_or_default()
        };
        let (old, new) = (flat(old_yaml), flat(new_yaml));
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let missing = || "(none)".to_string();
        for key in keys {
            let (a, b) = (old.get(key), new.get(key));
            if a != b {
                let change = format!(
                    "{key}: {} -> {}",
                    a.cloned().unwrap_or_else(missing),
                    b.cloned().unwrap_or_else(missing)
                );
                self.keys
                    .entry(change)
                    .or_default()
                    .insert(point.to_string());
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn describe(&self) -> String {
        self.keys
            .iter()
            .map(|(change, points)| match points.len() {
                1 => format!("{change} (point {})", points.first().expect("one")),
                n => format!("{change} ({n} points)"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Refuses a run directory that holds another grid point's run: its `spec.yaml` must have
/// this point's value at every key the sweep varies (a folder named by an older, ambiguous
/// naming of points could hold another point's run).
fn check_same_point(dir: &RunDir, point: &SweepPoint) -> anyhow::Result<()> {
    let path = dir.file(gan_rundir::SPEC_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let theirs = serde_yaml::from_str(&text)
        .map(|v| gan_spec::flatten(&v))
        .with_context(|| format!("reading {}", path.display()))?;
    let ours = gan_spec::flatten(
        &serde_yaml::from_str(&point.spec.to_yaml()).expect("a spec's YAML reads back"),
    );
    for o in &point.overrides {
        let key = o.split_once('=').map_or(o.as_str(), |(k, _)| k);
        if theirs.get(key) != ours.get(key) {
            bail!(
                "{} holds the run of another grid point ({key} is {} there, {} in this point): \
                 move it out of the sweep folder, or run the sweep into another --run-dir",
                dir.path().display(),
                theirs.get(key).map_or("unset", String::as_str),
                ours.get(key).map_or("unset", String::as_str),
            );
        }
    }
    Ok(())
}

/// Runs one grid point: fresh, skipped (completed, or running elsewhere) or resumed.
fn run_point(
    spec_path: &Path,
    point: &SweepPoint,
    parent: &Path,
    overrides: &[String],
    exec: &Execution,
) -> anyhow::Result<Status> {
    let path: PathBuf = parent.join(&point.name);
    if path.join(gan_rundir::RUN_FILE).is_file() {
        let dir = RunDir::open(&path)?;
        check_same_point(&dir, point)?;
        match Shown::of(&dir.read_info()?) {
            Shown::Run(Status::Completed) => {
                if !exec.quiet {
                    println!("{}: already completed, skipped", point.name);
                }
                return Ok(Status::Completed);
            }
            Shown::Run(Status::Running) => {
                bail!(
                    "{} is running in another process; not started twice",
                    path.display()
                )
            }
            _ => {
                return match resume_session(&dir, exec) {
                    // Ctrl-C before its training started: the sweep stops there.
                    Err(e) if stopped(&e) => Ok(Status::Interrupted),
                    other => other,
                };
            }
        }
    }
    let train = match training_images(
        &point.spec,
        exec.silent_preparation(),
        exec.threads,
        exec.interrupt,
    ) {
        // Ctrl-C before the point's training started: no folder is made for it.
        Err(e) if stopped(&e) => return Ok(Status::Interrupted),
        other => other?,
    };
    let dir = RunDir::create(&path)?;
    let source = RunSource {
        spec: spec_path,
        overrides,
        sweep_point: Some(&point.name),
    };
    run_fresh(&point.spec, &train, &dir, &source, exec)
}
