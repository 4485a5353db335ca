//! `cargo xtask bench`: times the training step on real MNIST with an optimised build.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

#[derive(clap::Args)]
pub struct Args {
    /// Training steps to time (the first 20 are warm-up and not counted)
    #[arg(long, default_value_t = 620)]
    steps: usize,
    /// Threads of the training step
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Folder with MNIST [default: <workspace>/data/mnist]
    #[arg(long)]
    data: Option<PathBuf>,
    /// Time this spec's step (its model, loss, D steps and batch size) instead of the
    /// tutorial's, e.g. experiments/improved.yaml
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Start from this checkpoint of a run (same spec) instead of fresh weights, e.g.
    /// runs/<run>/checkpoints/step-....safetensors: late epochs cost more than fresh ones
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Keep denormal floats on the step's threads, as `train.flush_denormals: false` does;
    /// without it the spec's setting holds (flushed to zero by default, as TensorFlow does)
    #[arg(long)]
    keep_denormals: bool,
    /// Time the DCGAN of PyTorch's example at MNIST's size (as `tools/peers/peer.sh dcgan`
    /// trains it) instead of a spec's MLP
    #[arg(long, conflicts_with_all = ["spec", "checkpoint", "phases"])]
    dcgan: bool,
    /// Also print where the step's time goes, phase by phase (builds the step with timers, so
    /// its total is a little above the plain figure)
    #[arg(long)]
    phases: bool,
    /// Also measure the machine's multiply-add ceiling (an FMA loop on 1 and on --threads
    /// threads) and the least time the step's products could take at it
    #[arg(long)]
    ceiling: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = crate::mnist_dir(args.data);
    if gan_data::MnistFile::TrainImages.locate(&data).is_err() {
        bail!(
            "no MNIST in {}; run `cargo xtask fetch-mnist` first (or pass --data)",
            data.display()
        );
    }
    let spec = path_flag("--spec", args.spec)?;
    let checkpoint = path_flag("--checkpoint", args.checkpoint)?;
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(crate::project_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "runner",
            "--example",
            "bench_step",
        ])
        .args(
            args.phases
                .then_some(["--features", "phases"])
                .into_iter()
                .flatten(),
        )
        .arg("--")
        .arg("--steps")
        .arg(args.steps.to_string())
        .arg("--threads")
        .arg(args.threads.to_string())
        .arg("--data")
        .arg(&data)
        .args(spec)
        .args(checkpoint)
        .args(args.keep_denormals.then_some("--keep-denormals"))
        .args(args.dcgan.then_some("--dcgan"))
        .args(args.phases.then_some("--phases"))
        .args(args.ceiling.then_some("--ceiling"))
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// `[flag, absolute path]` for the benchmark's command line, or nothing: cargo runs the
/// example from the workspace root, so a relative path is made the caller's.
fn path_flag(flag: &str, path: Option<PathBuf>) -> anyhow::Result<Vec<std::ffi::OsString>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let absolute = std::path::absolute(&path).with_context(|| format!("{}", path.display()))?;
    Ok(vec![flag.into(), absolute.into_os_string()])
}
