//! `cargo xtask <command>`: the workspace's own tools (fetching data, benchmarks, run tracking).
//!
//! Default paths (`data/mnist`, `runs/`) are relative to the workspace root, so the commands
//! work from any folder inside it; paths given on the command line are relative to the
//! current directory as usual.

mod bench;
mod cluster;
mod compare;
mod eval;
mod fetch;
mod fixture;
mod lockstep;
mod runs;
mod table;
mod tensorboard;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Tools for the MNIST GAN workspace",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch MNIST, verify every file's SHA-256 and leave the four uncompressed files in DIR.
    FetchMnist(fetch::Args),
    /// Rebuild the small real-MNIST test fixture from a full copy of MNIST.
    MakeFixture(fixture::Args),
    /// Time the training step on real MNIST (release build); last line `train_step_ms: <median>`.
    Bench(bench::Args),
    /// List the runs under runs/ (or DIR), newest first, with their status and last-epoch losses.
    Runs(runs::Args),
    /// Compare runs: spec differences, summaries, bit-for-bit reproducibility, pictures.
    Compare(compare::Args),
    /// Measure a run's sample quality (Parzen, FID, IS, coverage, precision/recall) into metrics.json.
    Eval(eval::EvalArgs),
    /// Train (and cache) the MNIST classifier the metrics use.
    TrainClassifier(eval::TrainClassifierArgs),
    /// Write images from a run's generator as an IDX file (MNIST's format).
    Sample(eval::SampleArgs),
    /// Record a tutorial run for a step-by-step replay by TensorFlow (tools/lockstep/).
    Lockstep(lockstep::Args),
    /// Write TensorBoard logs for runs made before the runner wrote them (or rewrite them).
    Tensorboard(tensorboard::Args),
    /// Print an sbatch script running a sweep as a Slurm job array (one shard per task).
    Slurm(cluster::Args),
    /// Print a Kubernetes Indexed Job running a sweep (one shard per pod).
    K8s(cluster::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::FetchMnist(args) => fetch::run(args),
        Command::MakeFixture(args) => fixture::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Eval(args) => eval::eval(args),
        Command::TrainClassifier(args) => eval::train_classifier(args),
        Command::Sample(args) => eval::sample(args),
        Command::Lockstep(args) => lockstep::run(args),
        Command::Tensorboard(args) => tensorboard::run(args),
        Command::Slurm(args) => cluster::slurm(args),
        Command::K8s(args) => cluster::k8s(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The MNIST folder a command was given, else the runner's default `data/mnist` in the workspace.
pub fn mnist_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| project_root().join(gan_spec::DEFAULT_DATA_DIR))
}

/// The workspace root (the parent of this crate's folder).
pub fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
