//! `gan <command>`: the tools around runs for installed users (`cargo install --path
//! crates/runner` installs it beside `runner`): list, compare, evaluate and sample runs, write
//! cluster scripts and TensorBoard logs, fetch MNIST. The same code as `cargo xtask`.

use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "gan",
    version,
    about = "Look after MNIST GAN runs: list, compare, evaluate, sample, cluster scripts, TensorBoard logs, MNIST",
    after_help = "Training and resuming are `runner`'s (runner --help). Default folders (data/mnist, runs/) \
                  are relative to the current folder."
)]
struct Cli {
    #[command(subcommand)]
    command: gan_tools::Command,
}

fn main() -> ExitCode {
    gan_tools::quiet_broken_pipe();
    let cli = Cli::parse();
    let paths = gan_tools::Paths {
        root: std::path::PathBuf::from("."),
    };
    match cli.command.run(&paths) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
