//! A new run: its `spec.yaml` and first `run.json` in a new run directory, then its session
//! to the end.

use std::path::Path;
use std::time::SystemTime;

use gan_rundir::{rfc3339, sha256_hex, write_atomic, RunDir, RunInfo, Status};
use gan_spec::Spec;

use crate::data::TrainingData;
use crate::options::Execution;
use crate::{provenance, session};

/// Where a run's spec came from, for `run.json` (and the spec checks of a resume).
pub(crate) struct RunSource<'a> {
    pub spec: &'a Path,
    pub overrides: &'a [String],
    pub sweep_point: Option<&'a str>,
}

/// Starts `spec` in the new directory `dir` and trains it to the end.
pub(crate) fn run_fresh(
    spec: &Spec,
    train: &TrainingData,
    dir: &RunDir,
    source: &RunSource,
    exec: &Execution,
) -> anyhow::Result<Status> {
    let _lock = dir.lock()?;
    let info = start_run(spec, dir, SystemTime::now(), exec.threads, source)?;
    session::execute(session::Session {
        spec,
        train,
        dir,
        info,
        start: None,
        exec: exec.clone(),
    })
}

/// Writes `spec.yaml` and the first `run.json` of a fresh run.
fn start_run(
    spec: &Spec,
    dir: &RunDir,
    started: SystemTime,
    threads: usize,
    source: &RunSource,
) -> anyhow::Result<RunInfo> {
    let yaml = spec.to_yaml();
    write_atomic(&dir.file(gan_rundir::SPEC_FILE), yaml.as_bytes())?;
    let info = RunInfo {
        format: gan_rundir::RUN_FORMAT.into(),
        name: spec.name.clone(),
        status: Status::Running,
        error: None,
        seed: spec.seed,
        started_at: rfc3339(started),
        ended_at: None,
        epochs_planned: spec.train.epochs,
        epochs_done: 0,
        steps_done: 0,
        epoch_seconds: Vec::new(),
        threads,
        pid: std::process::id(),
        machine: provenance::machine(),
        git: provenance::git(),
        versions: provenance::versions(),
        spec_source: Some(source.spec.display().to_string()),
        overrides: source.overrides.to_vec(),
        sweep_point: source.sweep_point.map(String::from),
        spec_sha256: sha256_hex(yaml.as_bytes()),
        resumed_at: Vec::new(),
        model_sha256: None,
    };
    dir.write_info(&info)?;
    Ok(info)
}
