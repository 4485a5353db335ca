//! `cargo xtask <command>`: the workspace's own tools (fetching data, benchmarks, run tracking).
//!
//! Default paths (`data/mnist`, `runs/`) are relative to the workspace root, so the commands
//! work from any folder inside it; paths given on the command line are relative to the
//! current directory as usual.

mod bench;
mod fetch;
mod fixture;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::FetchMnist(args) => fetch::run(args),
        Command::MakeFixture(args) => fixture::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's folder).
pub fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}
