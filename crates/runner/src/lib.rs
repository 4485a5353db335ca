//! The runner: one spec in, one run directory out (or, for a spec with a `sweep:`, one
//! folder of run directories).
//!
//! [`run`] loads and checks the spec (`memory`: refused before anything is allocated if it
//! cannot fit), makes sure MNIST is there (`data`: fetching the default data folder when it
//! is empty, k-means for self-conditioning), creates the run directory (`fresh`) and trains
//! (`session`), keeping `run.json` truthful at every moment: `running` while it trains, then
//! `completed`, `failed` (with the error) or `interrupted`. Checkpoints (`checkpoint`) let
//! `resume` continue a run bit-identically; `sweep` fans a grid out over jobs and cluster
//! shards. `options` holds what the command line asks and how each run is carried out,
//! `config` the spec's settings as the model crate's `TrainConfig`.

mod checkpoint;
mod config;
mod console;
mod data;
mod fresh;
mod memory;
mod options;
mod provenance;
mod resume;
mod session;
mod sweep;

use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use anyhow::bail;
use gan_rundir::{RunDir, Status};

pub use config::{train_config, training_setup};
pub use console::{epoch_line, tutorial_number};
pub use options::{Options, Outcome, Shard, StepHook};

use data::training_images;
use fresh::{run_fresh, RunSource};
use options::Execution;

/// Runs what `opts` asks for. `interrupt` is raised by Ctrl-C / SIGTERM.
pub fn run(opts: &Options, interrupt: &AtomicBool) -> anyhow::Result<Outcome> {
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let exec = Execution {
        threads,
        quiet: opts.quiet,
        label: None,
        force: opts.force,
        interrupt,
        on_step: opts.on_step.as_ref(),
    };
    if let Some(dir) = &opts.resume {
        if opts.spec.is_some() || !opts.overrides.is_empty() || opts.shard.is_some() {
            bail!("--resume takes the run's own spec.yaml: give no SPEC, --set or --shard with it");
        }
        let dir = RunDir::open(dir)?;
        return match resume::resume_session(&dir, &exec) {
            Err(e) if data::stopped(&e) => Ok(Outcome::NotStarted(e.to_string())),
            status => finish(status, &dir),
        };
    }
    let Some(spec_path) = &opts.spec else {
        bail!("give a spec to run (e.g. experiments/baseline.yaml) or --resume RUN_DIR");
    };
    let spec = gan_spec::load_spec(spec_path, &opts.overrides)?;
    let points = gan_spec::expand_sweep(&spec, &spec_path.display().to_string())?;
    let origin = spec_path.display().to_string();
    if points.is_empty() {
        memory::check_fits(&spec, &origin)?;
    }
    for p in &points {
        memory::check_fits(&p.spec, &format!("{origin} sweep point {}", p.name))?;
    }
    if !points.is_empty() {
        return sweep::run_sweep(spec_path, &spec, points, opts, &exec);
    }
    if opts.shard.is_some() || opts.jobs > 1 {
        bail!(
            "--shard and --jobs split a sweep; {} has no `sweep:` section",
            spec_path.display()
        );
    }
    if opts.force {
        bail!(
            "--force applies to --resume and to rerunning a sweep; a new run has nothing to force"
        );
    }
    let train = match training_images(&spec, opts.quiet, threads, interrupt) {
        // Ctrl-C during the preparation: no run directory is made.
        Err(e) if data::stopped(&e) => return Ok(Outcome::NotStarted(e.to_string())),
        other => other?,
    };
    let started = SystemTime::now();
    let dir = match &opts.run_dir {
        Some(path) => RunDir::create(path)?,
        None => RunDir::create_timestamped(&opts.runs_root, &spec.name, started)?,
    };
    if !opts.quiet {
        println!("run directory: {}", dir.path().display());
    }
    let source = RunSource {
        spec: spec_path,
        overrides: &opts.overrides,
        sweep_point: None,
    };
    let result = run_fresh(&spec, &train, &dir, &source, &exec);
    finish(result, &dir)
}

/// Maps a session's result to an outcome, naming the run in errors.
fn finish(result: anyhow::Result<Status>, dir: &RunDir) -> anyhow::Result<Outcome> {
    let path = dir.path().to_path_buf();
    match result {
        Ok(Status::Interrupted) => Ok(Outcome::Interrupted(path)),
        Ok(_) => Ok(Outcome::Completed(path)),
        Err(e) => Err(e.context(format!("run {} failed", path.display()))),
    }
}
