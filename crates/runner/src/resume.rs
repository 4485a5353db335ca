//! `runner --resume RUN_DIR`: continue from the newest valid checkpoint, so the finished run
//! is byte-identical to one that was never interrupted.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Context};
use gan_model::AnyTrainer;
use gan_model::TrainConfig;
use gan_rundir::{rfc3339, sha256_hex, write_atomic, RunDir, Status};
use gan_spec::{expand_sweep, load_spec, parse_spec, Spec};

use crate::checkpoint::{self, Resume};
use crate::config::run_config;
use crate::data::training_images;
use crate::options::Execution;
use crate::session::{execute, Picture, Session};

/// Resumes the run in `dir` (also used for the points of a restarted sweep).
pub(crate) fn resume_session(dir: &RunDir, exec: &Execution) -> anyhow::Result<Status> {
    let (force, quiet) = (exec.force, exec.quiet);
    // Held until the session ends: no second process resumes the same run meanwhile.
    let _lock = dir.lock()?;
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
    crate::memory::check_fits(
        &spec,
        &dir.file(gan_rundir::SPEC_FILE).display().to_string(),
    )?;
    let train = training_images(
        &spec,
        exec.silent_preparation(),
        exec.threads,
        exec.interrupt,
    )?;
    let cfg = run_config(&spec, &train);
    let start = newest_checkpoint(dir, &cfg)?;
    if let Some(r) = &start {
        restore_pictures(dir, &spec, &cfg, r.epoch)?;
    }
    if let Some(r) = &start {
        let past = r.epoch + usize::from(r.step_in_epoch > 0);
        if past > spec.train.epochs {
            bail!(
                "{}: the newest checkpoint is in epoch {} (step {}), past the spec's \
                 train.epochs = {}; a run cannot be shortened after the fact (start a new run, \
                 or set train.epochs back to at least {past})",
                dir.path().display(),
                r.epoch,
                r.trainer.steps_done(),
                spec.train.epochs
            );
        }
    }
    if !quiet {
        match &start {
            Some(r) => println!(
                "resuming {} at step {} (epoch {}, step {} of it)",
                dir.path().display(),
                r.trainer.steps_done(),
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
        exec: exec.clone(),
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
        // By content: a spec.yaml written before keys were added still matches.
        let own = gan_spec::normalized_yaml(&text);
        if !force && (now.as_ref().map(Spec::to_yaml) != own || own.is_none()) {
            bail!(
                "{source} changed since the run started (it no longer gives this run's spec.yaml); \
                 --force resumes with the run's own spec.yaml"
            );
        }
    }
    Ok(spec)
}

/// The newest checkpoint that reads back whole; damaged ones are reported and skipped.
fn newest_checkpoint(dir: &RunDir, cfg: &TrainConfig) -> anyhow::Result<Option<Resume>> {
    let adam = cfg.adam;
    for c in dir.checkpoints().iter().rev() {
        let decoded = dir
            .read_checkpoint(c)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| checkpoint::decode(&bytes, adam));
        match decoded {
            Ok(r) if r.trainer.steps_done() == c.steps && !losses_match(dir, &r)? => eprintln!(
                "losses.csv is not what the run had written by step {} (checkpoint {}): a row \
                 was changed or lost; trying the previous checkpoint, whose later rows are \
                 computed again",
                c.steps,
                c.path.display()
            ),
            Ok(r) if r.trainer.steps_done() == c.steps => {
                // Every checkpoint of a run has the same shapes: a mismatch is the spec's.
                r.trainer.check_fits(cfg).map_err(|e| {
                    anyhow::anyhow!(
                        "checkpoint {} cannot continue under the run's spec.yaml: {e}; put the \
                         spec's model section back as it was, or start a new run",
                        c.path.display()
                    )
                })?;
                return Ok(Some(r));
            }
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

/// Whether `losses.csv` still holds, up to the checkpoint's step, the rows the run wrote
/// (checkpoints from before the hash was recorded are trusted).
fn losses_match(dir: &RunDir, r: &Resume) -> anyhow::Result<bool> {
    let Some(want) = &r.losses_sha256 else {
        return Ok(true);
    };
    let path = dir.file(gan_rundir::LOSSES_FILE);
    if !path.exists() {
        return Ok(false);
    }
    let got = gan_rundir::losses_prefix_sha256(&path, r.trainer.steps_done() as usize)?;
    Ok(got.as_deref() == Some(want.as_str()))
}

/// The sample pictures of the epochs before `epochs_done` that are missing or do not decode
/// are drawn again from the checkpoint taken right after their epoch (the weights they
/// showed, so the same bytes), or reported when no such checkpoint is kept
/// (`checkpoint.keep`, `checkpoint.every`); the run's TensorBoard log, rebuilt from its
/// files when the session starts, then holds them too.
fn restore_pictures(
    dir: &RunDir,
    spec: &Spec,
    cfg: &TrainConfig,
    epochs_done: usize,
) -> anyhow::Result<()> {
    let damaged: Vec<usize> = (0..epochs_done)
        .filter(|&e| spec.is_sample_epoch(e))
        .filter(|&e| {
            let bytes = std::fs::read(dir.sample_path(e)).unwrap_or_default();
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).is_err()
        })
        .collect();
    if damaged.is_empty() {
        return Ok(());
    }
    // Each kept checkpoint read once, until every damaged epoch has the one after it.
    let checkpoints = dir.checkpoints();
    let mut after_epoch = std::collections::BTreeMap::new();
    for c in &checkpoints {
        if after_epoch.len() == damaged.len() {
            break;
        }
        let read = dir.read_checkpoint(c).map_err(anyhow::Error::from);
        let Ok(r) = read.and_then(|bytes| checkpoint::decode(&bytes, cfg.adam)) else {
            continue;
        };
        if r.step_in_epoch == 0 && r.epoch > 0 && damaged.contains(&(r.epoch - 1)) {
            after_epoch.entry(r.epoch - 1).or_insert((c, r));
        }
    }
    let picture = Picture::new(spec, cfg);
    for epoch in damaged {
        let path = dir.sample_path(epoch);
        match after_epoch.remove(&epoch) {
            Some((c, r)) => {
                let trainer = AnyTrainer::restore(cfg.clone(), spec.seed, r.trainer);
                write_atomic(&path, &picture.render(&trainer)?)?;
                eprintln!(
                    "{} was missing or damaged: drawn again from {}",
                    path.display(),
                    c.path.display()
                );
            }
            None => eprintln!(
                "warning: {} is missing or damaged, and no kept checkpoint holds the weights \
                 it showed (checkpoint.keep): it stays missing",
                path.display()
            ),
        }
    }
    Ok(())
}
