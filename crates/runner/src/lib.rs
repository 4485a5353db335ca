//! The runner: one spec in, one run directory out.
//!
//! [`run`] loads and checks the spec, makes sure MNIST is there (fetching the default data
//! folder when it is empty), creates the run directory, trains, and keeps `run.json`
//! truthful at every moment: `running` while it trains, then `completed`, `failed` (with
//! the error) or `interrupted`.

mod console;
mod provenance;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::{bail, Context};
use gan_data::{load_training, Batcher, MnistFile, Split};
use gan_model::checkpoint::encode_gan;
use gan_model::generate::{generate, sample_noise};
use gan_model::{stream, AdamConfig, GeneratorLoss, ModelConfig, Stream, TrainConfig, Trainer};
use gan_plot::SampleGrid;
use gan_rundir::{rfc3339, write_atomic, LossRow, LossWriter, RunDir, RunInfo, Status};
use gan_spec::{GLoss, Spec, DEFAULT_DATA_DIR};

pub use console::{epoch_line, tutorial_number};

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: PathBuf,
    pub overrides: Vec<String>,
    /// Exactly this run directory (must not exist); otherwise `<runs_root>/<name>-<time>`.
    pub run_dir: Option<PathBuf>,
    pub runs_root: PathBuf,
    pub quiet: bool,
    /// Threads of the training step; all logical CPUs when `None`.
    pub threads: Option<usize>,
}

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed(PathBuf),
    Interrupted(PathBuf),
}

/// The model and training settings a spec describes.
pub fn train_config(spec: &Spec) -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            noise_dim: spec.model.noise_dim,
            hidden: spec.model.hidden,
            init_std: spec.model.init_std as f32,
        },
        batch_size: spec.train.batch_size,
        g_loss: match spec.train.g_loss {
            GLoss::NonSaturating => GeneratorLoss::NonSaturating,
            GLoss::Minimax => GeneratorLoss::Minimax,
        },
        adam: AdamConfig {
            lr: spec.train.lr as f32,
            beta1: spec.train.beta1 as f32,
            beta2: spec.train.beta2 as f32,
            eps: spec.train.eps as f32,
        },
    }
}

/// Runs one spec. `interrupt` is raised by Ctrl-C / SIGTERM.
pub fn run(opts: &Options, interrupt: &AtomicBool) -> anyhow::Result<Outcome> {
    let spec = gan_spec::load_spec(&opts.spec, &opts.overrides)?;
    let train = training_images(&spec, opts.quiet)?;
    let started = SystemTime::now();
    let dir = match &opts.run_dir {
        Some(path) => RunDir::create(path)?,
        None => RunDir::create_timestamped(&opts.runs_root, &spec.name, started)?,
    };
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let mut info = RunInfo {
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
    };
    write_atomic(&dir.file(gan_rundir::SPEC_FILE), spec.to_yaml().as_bytes())?;
    dir.write_info(&info)?;
    if !opts.quiet {
        println!("run directory: {}", dir.path().display());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the training threads")?;
    let result = pool.install(|| train_run(&spec, &train, &dir, &mut info, opts.quiet, interrupt));
    info.ended_at = Some(rfc3339(SystemTime::now()));
    if let Err(e) = write_loss_plot(&dir, &spec.name) {
        eprintln!(
            "warning: could not draw {}: {e:#}",
            dir.file(gan_rundir::LOSSES_PLOT).display()
        );
    }
    match result {
        Ok(status) => {
            info.status = status;
            dir.write_info(&info)?;
            let path = dir.path().to_path_buf();
            Ok(match status {
                Status::Interrupted => Outcome::Interrupted(path),
                _ => Outcome::Completed(path),
            })
        }
        Err(e) => {
            info.status = Status::Failed;
            info.error = Some(format!("{e:#}"));
            // The run's own failure matters more than a failure to record it.
            let _ = dir.write_info(&info);
            Err(e.context(format!("run {} failed", dir.path().display())))
        }
    }
}

/// The `eval:` section: metrics of the final generator into `metrics.json`.
fn evaluate(spec: &Spec, dir: &RunDir, quiet: bool) -> anyhow::Result<()> {
    let data = Path::new(&spec.data.dir);
    let mut log = |s: &str| {
        if !quiet {
            eprintln!("{s}")
        }
    };
    let classifier = gan_eval::ensure_classifier(data, &mut log)
        .context("evaluation: preparing the MNIST classifier")?;
    let eval_data = gan_eval::EvalData::load(data, &classifier)
        .context("evaluation: loading the test images")?;
    let m = gan_eval::evaluate_run(
        dir,
        &eval_data,
        &classifier,
        spec.eval.samples,
        spec.eval.seed,
    )
    .context("evaluation")?;
    if !quiet {
        let p = m.generated.parzen.as_ref();
        println!(
            "Metrics ({} samples, {:.1} s): Parzen {} nats, FID {:.2}, IS {:.2}, coverage {}/10, precision {:.3}, recall {:.3}",
            m.samples,
            m.seconds,
            p.map(|p| format!("{:.1} +- {:.1}", p.mean_ll, p.std_err)).unwrap_or_else(|| "-".into()),
            m.generated.fid,
            m.generated.inception_score,
            m.generated.coverage.classes_over_5pct,
            m.generated.precision,
            m.generated.recall
        );
    }
    Ok(())
}

/// `losses.png`: the run's per-epoch loss curves, drawn however the run ended.
fn write_loss_plot(dir: &RunDir, name: &str) -> anyhow::Result<()> {
    let rows = dir.read_losses()?;
    if rows.is_empty() {
        return Ok(());
    }
    let curve = gan_plot::Curve::from_losses(name, &rows);
    // Nothing run-specific beyond the spec's name, so identical runs draw identical pictures.
    let png = gan_plot::loss_panels(&[curve], &format!("{name}: per-epoch means of losses.csv"))?;
    write_atomic(&dir.file(gan_rundir::LOSSES_PLOT), &png)?;
    Ok(())
}

/// The training split (limited as the spec says), fetching MNIST into the default folder
/// when it is not there yet.
fn training_images(spec: &Spec, quiet: bool) -> anyhow::Result<Split> {
    let dir = Path::new(&spec.data.dir);
    let missing = MnistFile::ALL.iter().any(|f| f.locate(dir).is_err());
    if missing && spec.data.dir == DEFAULT_DATA_DIR {
        if !quiet {
            eprintln!("MNIST is not in {DEFAULT_DATA_DIR} yet: fetching it (the same as `cargo xtask fetch-mnist`)");
        }
        let opts = gan_fetch::Options {
            verbose: !quiet,
            ..gan_fetch::Options::new(dir, gan_fetch::default_sources())
        };
        let report = gan_fetch::fetch_mnist(&opts).context(
            "fetching MNIST failed; fetch it yourself with `cargo xtask fetch-mnist --from <mirror or folder>`",
        )?;
        if !quiet {
            eprintln!("{report}");
        }
    }
    let (train, _) = load_training(dir)
        .with_context(|| format!("loading MNIST for data.dir = {}", spec.data.dir))?;
    let available = train.len();
    let train = match spec.data.limit {
        Some(n) => train.take_first(n),
        None => train,
    };
    if spec.train.batch_size > train.len() {
        let limit = match spec.data.limit {
            Some(n) if n < available => format!(" (data.limit is {n})"),
            _ => String::new(),
        };
        bail!(
            "train.batch_size {} is larger than the {} training images{limit}",
            spec.train.batch_size,
            train.len()
        );
    }
    Ok(train)
}

/// The training loop; returns `Completed` or `Interrupted`.
fn train_run(
    spec: &Spec,
    train: &Split,
    dir: &RunDir,
    info: &mut RunInfo,
    quiet: bool,
    interrupt: &AtomicBool,
) -> anyhow::Result<Status> {
    let cfg = train_config(spec);
    let mut trainer = Trainer::new(cfg, spec.seed);
    let mut batches = Batcher::new(train.len(), cfg.batch_size, stream(spec.seed, Stream::Data))?;
    let steps_per_epoch = batches.steps_per_epoch();
    let fixed_noise = sample_noise(
        spec.samples.count,
        cfg.model.noise_dim,
        &mut stream(spec.seed, Stream::Samples),
    );
    let sample_epochs: Vec<usize> = spec.sample_epochs().collect();
    let mut losses = LossWriter::create(&dir.file(gan_rundir::LOSSES_FILE))?;
    let bar = console::progress((spec.train.epochs * steps_per_epoch) as u64, quiet);

    for epoch in 0..spec.train.epochs {
        bar.set_message(format!("epoch {epoch:04}"));
        let started = Instant::now();
        let mut last = None;
        for _ in 0..steps_per_epoch {
            if interrupt.load(Ordering::SeqCst) {
                losses.flush()?;
                bar.abandon();
                return Ok(Status::Interrupted);
            }
            train
                .images
                .gather_f32(batches.next_batch(), trainer.real_batch_mut());
            let stats = match trainer.step() {
                Ok(s) => s,
                Err(e) => {
                    losses.flush()?;
                    bar.abandon();
                    return Err(e.into());
                }
            };
            losses.write(&LossRow {
                epoch,
                step: trainer.steps_done(),
                d_loss: stats.d_loss,
                g_loss: stats.g_loss,
                d_real: stats.d_real,
                d_fake: stats.d_fake,
            })?;
            last = Some(stats);
            bar.inc(1);
        }
        losses.flush()?;
        info.epochs_done = epoch + 1;
        info.steps_done = trainer.steps_done();
        info.epoch_seconds.push(started.elapsed().as_secs_f64());
        dir.write_info(info)?;
        if let (Some(s), false) = (last, quiet) {
            let secs = started.elapsed().as_secs_f64();
            bar.suspend(|| println!("{} ({secs:.1} s)", epoch_line(epoch, s.d_loss, s.g_loss)));
        }
        if sample_epochs.contains(&epoch) {
            let images = generate(&trainer.gan().generator, &fixed_noise);
            let png = SampleGrid::default().encode_png(&images)?;
            write_atomic(&dir.sample_path(epoch), &png)?;
        }
    }
    bar.finish_and_clear();
    write_atomic(
        &dir.file(gan_rundir::MODEL_FILE),
        &encode_gan(trainer.gan()),
    )?;
    if spec.eval.enabled {
        evaluate(spec, dir, quiet)?;
    }
    if !quiet {
        println!(
            "Optimization complete: {} ({} epochs, {:.1} s)",
            dir.path().display(),
            info.epochs_done,
            info.wall_seconds()
        );
    }
    Ok(Status::Completed)
}
