//! The runner: one spec in, one run directory out (or, for a spec with a `sweep:`, one
//! folder of run directories).
//!
//! [`run`] loads and checks the spec, makes sure MNIST is there (fetching the default data
//! folder when it is empty), creates the run directory and trains ([`session`]), keeping
//! `run.json` truthful at every moment: `running` while it trains, then `completed`,
//! `failed` (with the error) or `interrupted`. Checkpoints let [`resume`] continue a run
//! bit-identically; [`sweep`] fans a grid out over jobs and cluster shards.

mod checkpoint;
mod console;
mod memory;
mod provenance;
mod resume;
mod session;
mod sweep;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use anyhow::{bail, Context};
use gan_data::{load_training, MnistFile, Split};
use gan_model::{Activation, AdamConfig, Arch, DcganShape, Loss, ModelConfig, Output, TrainConfig};
use gan_rundir::{rfc3339, sha256_hex, write_atomic, RunDir, RunInfo, Status};
use gan_spec::{ActivationSpec, ArchSpec, GOutput, LossSpec, Spec, DEFAULT_DATA_DIR};

pub use console::{epoch_line, tutorial_number};
pub use sweep::Shard;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The spec to run (not needed with `resume`).
    pub spec: Option<PathBuf>,
    pub overrides: Vec<String>,
    /// Exactly this run directory (must not exist), or for a sweep its parent folder;
    /// otherwise `<runs_root>/<name>-<time>`.
    pub run_dir: Option<PathBuf>,
    pub runs_root: PathBuf,
    pub quiet: bool,
    /// Threads of the training step (shared out between sweep jobs); all logical CPUs when `None`.
    pub threads: Option<usize>,
    /// Continue this run from its newest valid checkpoint.
    pub resume: Option<PathBuf>,
    /// Resume, or rerun a sweep, even if the spec changed since the run started.
    pub force: bool,
    /// Sweep grid points run at once.
    pub jobs: usize,
    /// Only this slice of a sweep's grid.
    pub shard: Option<Shard>,
    /// Called after every training step with the run's step count (progress for programs
    /// that embed the runner; tests raise the interrupt flag at an exact step with it).
    pub on_step: Option<StepHook>,
}

/// A function called after every training step with the number of steps done.
#[derive(Clone)]
pub struct StepHook(pub std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for StepHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StepHook")
    }
}

/// How a run is carried out, whatever started it (a new run, `--resume`, a sweep point): the
/// threads it trains with, how it speaks on the console, what stops it and who hears of each
/// step. Made once from the command line; a sweep gives each point its share of it.
#[derive(Clone)]
pub(crate) struct Execution<'a> {
    pub threads: usize,
    pub quiet: bool,
    /// Printed before console lines when several runs share the console (sweep jobs).
    pub label: Option<String>,
    /// Resume, or rerun a sweep, even if the spec changed since the run started.
    pub force: bool,
    /// Raised by Ctrl-C / SIGTERM.
    pub interrupt: &'a AtomicBool,
    pub on_step: Option<&'a StepHook>,
}

impl Execution<'_> {
    /// Whether long preparations (data, k-means) stay silent: with `quiet`, or when several
    /// runs share the console.
    pub(crate) fn silent_preparation(&self) -> bool {
        self.quiet || self.label.is_some()
    }
}

/// How a run (or sweep) ended, when it did not fail.
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
            g_hidden: spec.model.g_widths(),
            d_hidden: spec.model.d_widths(),
            g_act: activation(spec.model.g_activation, spec.model.leaky_slope),
            d_act: activation(spec.model.d_activation, spec.model.leaky_slope),
            g_output: match spec.model.g_output {
                GOutput::Sigmoid => Output::Sigmoid,
                GOutput::Tanh => Output::Tanh,
            },
            init_std: spec.model.init_std as f32,
            d_dropout: spec.model.d_dropout as f32,
            classes: if spec.model.conditional {
                10
            } else {
                spec.model.clusters
            },
            // Known once the training images are clustered: [`run_config`].
            label_counts: Vec::new(),
            arch: match spec.model.arch {
                ArchSpec::Mlp => Arch::Mlp,
                ArchSpec::Dcgan => Arch::Dcgan(DcganShape {
                    g_channels: [spec.model.g_channels[0], spec.model.g_channels[1]],
                    d_channels: [spec.model.d_channels[0], spec.model.d_channels[1]],
                    d_batch_norm: spec.model.d_batch_norm,
                    d_dense: spec.model.d_dense,
                }),
            },
        },
        batch_size: spec.train.batch_size,
        loss: match spec.train.loss {
            LossSpec::NonSaturating => Loss::NonSaturating,
            LossSpec::Minimax => Loss::Minimax,
            LossSpec::LeastSquares => Loss::LeastSquares,
            LossSpec::Hinge => Loss::Hinge,
        },
        lr_g: spec.train.lr_g.map(|v| v as f32),
        lr_d: spec.train.lr_d.map(|v| v as f32),
        d_steps: spec.train.d_steps,
        real_target: (1.0 - spec.train.label_smoothing) as f32,
        g_ema: spec.train.g_ema.map(|d| d as f32),
        adam: AdamConfig {
            lr: spec.train.lr as f32,
            beta1: spec.train.beta1 as f32,
            beta2: spec.train.beta2 as f32,
            eps: spec.train.eps as f32,
        },
    }
}

/// [`train_config`] completed by the data: a self-conditioned run's cluster sizes.
pub(crate) fn run_config(spec: &Spec, data: &TrainingData) -> TrainConfig {
    let mut cfg = train_config(spec);
    cfg.model.label_counts.clone_from(&data.label_counts);
    cfg
}

fn activation(a: ActivationSpec, slope: f64) -> Activation {
    match a {
        ActivationSpec::Relu => Activation::Relu,
        ActivationSpec::LeakyRelu => Activation::LeakyRelu(slope as f32),
        ActivationSpec::Tanh => Activation::Tanh,
    }
}

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
        return resume::resume(dir, &exec);
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
    let train = training_images(&spec, opts.quiet, threads)?;
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

/// Maps a session's result to an outcome, naming the run in errors.
fn finish(result: anyhow::Result<Status>, dir: &RunDir) -> anyhow::Result<Outcome> {
    let path = dir.path().to_path_buf();
    match result {
        Ok(Status::Interrupted) => Ok(Outcome::Interrupted(path)),
        Ok(_) => Ok(Outcome::Completed(path)),
        Err(e) => Err(e.context(format!("run {} failed", path.display()))),
    }
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

/// Fetches MNIST into the default data folder when it is not complete there yet.
fn ensure_data(spec: &Spec, quiet: bool) -> anyhow::Result<()> {
    let dir = Path::new(&spec.data.dir);
    let missing = MnistFile::ALL.iter().any(|f| f.locate(dir).is_err());
    if missing && spec.data.dir == DEFAULT_DATA_DIR {
        if !quiet {
            eprintln!(
                "MNIST is not in {DEFAULT_DATA_DIR} yet: fetching it (the same as `gan fetch-mnist`)"
            );
        }
        let opts = gan_fetch::Options {
            verbose: !quiet,
            ..gan_fetch::Options::new(dir, gan_fetch::default_sources())
        };
        let report = gan_fetch::fetch_mnist(&opts).context(
            "fetching MNIST failed; fetch it yourself with `gan fetch-mnist --from <mirror or folder>`",
        )?;
        if !quiet {
            eprintln!("{report}");
        }
    }
    Ok(())
}

/// A spec's training split and complete training configuration as `runner` would train
/// them (a self-conditioned spec's images clustered first): for tools that time the step
/// outside a run, such as `bench_step`.
pub fn training_setup(
    spec: &Spec,
    quiet: bool,
    threads: usize,
) -> anyhow::Result<(Split, TrainConfig)> {
    let data = training_images(spec, quiet, threads)?;
    let cfg = run_config(spec, &data);
    Ok((data.split, cfg))
}

/// What a run trains on.
pub(crate) struct TrainingData {
    /// MNIST's training split as the spec limits it; with `model.clusters` its labels are
    /// the images' cluster ids instead of their digits.
    pub split: Split,
    /// The clusters' sizes (empty without `model.clusters`).
    pub label_counts: Vec<u32>,
}

/// Rounds of Lloyd's k-means for `model.clusters` (as in `tools/peers/dcgan_screen.py`).
const KMEANS_ROUNDS: usize = 30;

/// The training split (limited as the spec says), fetching MNIST into the default folder
/// when it is not there yet; clustered with `threads` threads for `model.clusters`.
fn training_images(spec: &Spec, quiet: bool, threads: usize) -> anyhow::Result<TrainingData> {
    ensure_data(spec, quiet)?;
    let (train, _) = load_training(Path::new(&spec.data.dir))
        .with_context(|| format!("loading MNIST for data.dir = {}", spec.data.dir))?;
    let available = train.len();
    let mut train = match spec.data.limit {
        Some(n) => train.take_first(n),
        None => train,
    };
    let limit = match spec.data.limit {
        Some(n) if n < available => format!(" (data.limit is {n})"),
        _ => String::new(),
    };
    if spec.train.batch_size > train.len() {
        bail!(
            "train.batch_size {} is larger than the {} training images{limit}",
            spec.train.batch_size,
            train.len()
        );
    }
    let k = spec.model.clusters;
    if k > train.len() {
        bail!(
            "model.clusters {k} is more than the {} training images{limit}: each cluster needs \
             an image",
            train.len()
        );
    }
    let label_counts = if k > 0 {
        cluster_labels(&mut train, spec, quiet, threads)?
    } else {
        Vec::new()
    };
    Ok(TrainingData {
        split: train,
        label_counts,
    })
}

/// Self-conditioning: replaces the images' labels with their k-means cluster ids (the seed's
/// own stream, so a resumed run finds the same clusters) and returns the clusters' sizes.
fn cluster_labels(
    train: &mut Split,
    spec: &Spec,
    quiet: bool,
    threads: usize,
) -> anyhow::Result<Vec<u32>> {
    let k = spec.model.clusters;
    let started = std::time::Instant::now();
    let bar = console::rounds(
        KMEANS_ROUNDS as u64,
        quiet,
        format!("k-means of {} images into {k} clusters", train.len()),
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting the k-means threads")?;
    let clusters = pool.install(|| {
        gan_model::train::clusters::kmeans(
            train.images.as_bytes(),
            gan_model::IMAGE_PIXELS,
            k,
            KMEANS_ROUNDS,
            &mut gan_model::stream(spec.seed, gan_model::Stream::Clusters),
            &mut |round| bar.set_position(round as u64),
        )
    });
    bar.finish_and_clear();
    if !quiet {
        let (small, large) = (
            clusters.sizes.iter().min().copied().unwrap_or(0),
            clusters.sizes.iter().max().copied().unwrap_or(0),
        );
        println!(
            "model.clusters: {} training images in {k} k-means clusters of {small} to {large} \
             images ({:.1} s)",
            train.len(),
            started.elapsed().as_secs_f64()
        );
    }
    train.labels = clusters.ids;
    Ok(clusters.sizes)
}
