//! `runner --resume RUN_DIR`: continue from the newest valid checkpoint, so the finished run
//! is byte-identical to one that was never interrupted.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use anyhow::{bail, Context};
use gan_rundir::{rfc3339, sha256_hex, RunDir, Status};
use gan_spec::{expand_sweep, load_spec, parse_spec, Spec};

use crate::checkpoint::{self, Resume};
use crate::session::{execute, Session};
use crate::{finish, train_config, training_images, Outcome};

pub(crate) fn resume(
    path: &Path,
    force: bool,
    threads: usize,
    quiet: bool,
    interrupt: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let dir = RunDir::open(path)?;
    let status = resume_session(&dir, force, threads, quiet, None, interrupt)?;
    finish(Ok(status), &dir)
}

/// Resumes the run in `dir` (also used for the points of a restarted sweep).
pub(crate) fn resume_session(
    dir: &RunDir,
    force: bool,
    threads: usize,
    quiet: bool,
    label: Option<String>,
    interrupt: &AtomicBool,
) -> anyhow::Result<Status> {
    let mut info = dir.read_info()?;
    match info.status {
        Status::Completed => {
            if !quiet {
                println!(
                    "{} is already completed: nothing to resume",
                    dir.path().display()
                );
            }
            return Ok(Status::Completed);
        }
        Status::Running if !gan_rundir::is_stale(&info) && !force => bail!(
            "{} is marked running (pid {} on {}); if that process is gone, resume with --force",
            dir.path().display(),
            info.pid,
            info.machine.hostname
        ),
        _ => {}
    }
    let spec = checked_spec(dir, &info, force)?;
    let train = training_images(&spec, quiet)?;
    let start = newest_checkpoint(dir, &spec)?;
    if !quiet {
        match &start {
            Some(r) => println!(
                "resuming {} at step {} (epoch {}, step {} of it)",
                dir.path().display(),
                r.trainer.steps_done,
                r.epoch,
                r.step_in_epoch
            ),
            None => println!(
                "no usable checkpoint in {}: starting the run over",
                dir.path().display()
            ),
        }
    }
    if start.is_none() {
        info.epoch_seconds.clear();
        info.epochs_done = 0;
        info.steps_done = 0;
    }
    info.resumed_at.push(rfc3339(SystemTime::now()));
    let session = Session {
        spec: &spec,
        train: &train,
        dir,
        info,
        start,
        threads,
        quiet,
        label,
        interrupt,
    };
    execute(session)
}

/// The run's own `spec.yaml`, refused (unless `force`) if it, or the file the run was started
/// from, changed since the run started.
fn checked_spec(dir: &RunDir, info: &gan_rundir::RunInfo, force: bool) -> anyhow::Result<Spec> {
    let path = dir.file(gan_rundir::SPEC_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let spec = parse_spec(&text, &path.display().to_string(), &info.name, &[])?;
    if !force && !info.spec_sha256.is_empty() && sha256_hex(text.as_bytes()) != info.spec_sha256 {
        bail!(
            "{} was edited after the run started; resuming would mix two experiments (--force resumes with it as it is now)",
            path.display()
        );
    }
    if let Some(source) = info
        .spec_source
        .as_deref()
        .filter(|s| Path::new(s).is_file())
    {
        let now = load_spec(Path::new(source), &info.overrides)
            .and_then(|s| match &info.sweep_point {
                Some(point) => expand_sweep(&s, source).map(|points| {
                    points
                        .into_iter()
                        .find(|p| &p.name == point)
                        .map(|p| p.spec)
                }),
                None => Ok(Some(s)),
            })
            .ok()
            .flatten();
        if !force && now.as_ref().map(Spec::to_yaml) != Some(text.clone()) {
            bail!(
                "{source} changed since the run started (it no longer gives this run's spec.yaml); \
                 --force resumes with the run's own spec.yaml"
            );
        }
    }
    Ok(spec)
}

/// The newest checkpoint that reads back whole; damaged ones are reported and skipped.
fn newest_checkpoint(dir: &RunDir, spec: &Spec) -> anyhow::Result<Option<Resume>> {
    let adam = train_config(spec).adam;
    for c in dir.checkpoints().iter().rev() {
        let decoded = dir
            .read_checkpoint(c)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| checkpoint::decode(&bytes, adam));
        match decoded {
            Ok(r) if r.trainer.steps_done == c.steps => return Ok(Some(r)),
            Ok(_) => eprintln!(
                "checkpoint {} disagrees with its name; trying the previous one",
                c.path.display()
            ),
            // Reported even with --quiet: falling back is a warning worth seeing.
            Err(e) => eprintln!(
                "checkpoint {} is damaged ({e:#}); trying the previous one",
                c.path.display()
            ),
        }
    }
    Ok(None)
}
