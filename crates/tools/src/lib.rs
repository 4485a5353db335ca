//! The tools a user needs around runs, behind one clap subcommand enum: the installed `gan`
//! binary (crates/runner/src/bin/gan.rs) and `cargo xtask` both run these, so nothing is
//! implemented twice. `runner` itself trains and resumes.
//!
//! Default folders (`data/mnist`, `runs/`) are resolved against [`Paths::root`]: the current
//! folder for `gan`, the workspace root for `cargo xtask`.

pub mod cluster;
pub mod compare;
pub mod eval;
pub mod fetch;
pub mod runs;
pub mod sample;
mod table;
pub mod tensorboard;

use std::path::PathBuf;

/// Lets a closed pipe end the process quietly, as it does `ls` or `grep`: Rust ignores
/// SIGPIPE, so `gan runs | head` would otherwise panic in `println!` with "Broken pipe".
/// Every binary of the workspace calls this first.
pub fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default at start-up, before any thread
    // exists, is what every C program does implicitly.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Where the default folders are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    /// The MNIST folder a command was given, else `<root>/data/mnist` (the runner's default).
    pub fn mnist_dir(&self, given: Option<PathBuf>) -> PathBuf {
        given.unwrap_or_else(|| self.root.join(gan_spec::DEFAULT_DATA_DIR))
    }

    /// `<root>/runs`, where the runner puts runs by default.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }
}

/// Memory this process may use: the machine's, or its cgroup's limit when lower.
pub fn machine_memory() -> Option<u128> {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    let total = sys.total_memory();
    let limit = sys
        .cgroup_limits()
        .map(|c| c.total_memory)
        .filter(|&l| l > 0)
        .map_or(total, |l| l.min(total));
    (limit > 0).then_some(limit as u128)
}

/// `bytes` in GiB, one decimal.
pub fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// A bar over `total` `unit` on stderr, drawn only when stderr is a terminal.
pub(crate) fn progress(total: u64, unit: &str) -> indicatif::ProgressBar {
    progress_bar(
        total,
        &format!("[{{bar:40}}] {{pos}}/{{len}} {unit}, eta {{eta}}"),
    )
}

/// A bar of `total` on stderr in `template`'s words (indicatif's), in the style of every
/// bar of `runner` and `gan`; drawn only when stderr is a terminal.
pub fn progress_bar(total: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Every tool, as a subcommand.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Fetch MNIST, verify every file's SHA-256 and leave the four uncompressed files in DIR.
    FetchMnist(fetch::Args),
    /// List the runs under runs/ (or DIR), newest first, with their status and last-epoch losses.
    Runs(runs::Args),
    /// Compare runs: spec differences, summaries, bit-for-bit reproducibility, pictures.
    Compare(compare::Args),
    /// Measure a run's sample quality (Parzen, FID, IS, coverage, precision/recall) into metrics.json.
    Eval(eval::EvalArgs),
    /// Train (and cache) the MNIST classifier the metrics use.
    TrainClassifier(eval::TrainClassifierArgs),
    /// Write images from a run's generator as an IDX file (MNIST's format).
    Sample(sample::Args),
    /// Write TensorBoard logs for runs made before the runner wrote them (or rewrite them).
    Tensorboard(tensorboard::Args),
    /// Print an sbatch script running a sweep as a Slurm job array (one shard per task).
    Slurm(cluster::SlurmArgs),
    /// Print a Kubernetes Indexed Job running a sweep (one shard per pod).
    K8s(cluster::K8sArgs),
}

impl Command {
    /// The subcommands' names, as the command line spells them.
    pub fn names() -> Vec<String> {
        use clap::Subcommand;
        Command::augment_subcommands(clap::Command::new("gan"))
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect()
    }

    pub fn run(self, paths: &Paths) -> anyhow::Result<()> {
        match self {
            Command::FetchMnist(args) => fetch::run(args, paths),
            Command::Runs(args) => runs::run(args, paths),
            Command::Compare(args) => compare::run(args, paths),
            Command::Eval(args) => eval::eval(args, paths),
            Command::TrainClassifier(args) => eval::train_classifier(args, paths),
            Command::Sample(args) => sample::run(args),
            Command::Tensorboard(args) => tensorboard::run(args),
            Command::Slurm(args) => cluster::slurm(args),
            Command::K8s(args) => cluster::k8s(args),
        }
    }
}
