//! `cargo xtask <command>`: the workspace's own tools (fetching data, benchmarks, run tracking).
//!
//! Default paths (`data/mnist`, `runs/`) are relative to the workspace root, so the commands
//! work from any folder inside it; paths given on the command line are relative to the
//! current directory as usual.

mod bench;
mod fixture;
mod lockstep;

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
    /// Time the training step on real MNIST (release build); last line `train_step_ms: <median>`.
    Bench(bench::Args),
    /// Rebuild the small real-MNIST test fixture from a full copy of MNIST.
    MakeFixture(fixture::Args),
    /// Record a tutorial run for a step-by-step replay by TensorFlow (tools/lockstep/).
    Lockstep(lockstep::Args),
    /// The user-facing tools, the same as the installed `gan` binary's (defaults relative to
    /// the workspace root instead of the current folder).
    #[command(flatten)]
    Tools(gan_tools::Command),
}

fn main() -> ExitCode {
    gan_tools::quiet_broken_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::MakeFixture(args) => fixture::run(args),
        Command::Lockstep(args) => lockstep::run(args),
        Command::Tools(cmd) => cmd.run(&gan_tools::Paths {
            root: project_root(),
        }),
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
    gan_tools::Paths {
        root: project_root(),
    }
    .mnist_dir(given)
}

/// The workspace root (the parent of this crate's folder).
pub fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
