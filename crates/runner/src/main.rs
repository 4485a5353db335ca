//! `runner SPEC.yaml`: trains the tutorial's GAN as the spec says and writes a run directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use runner::{Options, Outcome};

const AFTER_HELP: &str = "\
Examples:
  runner experiments/baseline.yaml                       train the tutorial
  runner experiments/smoke.yaml --set seed=7 --run-dir runs/s7
  runner --resume runs/baseline-20261128T101500Z         continue after Ctrl-C, a crash or kill -9
  runner experiments/seeds.yaml --jobs 2                 a sweep, two grid points at a time
  runner experiments/seeds.yaml --run-dir runs/seeds --shard 0/3   one of three cluster shards

Spec keys (defaults are the tutorial's; a spec holds only what differs; full reference in
docs/spec.md; a `sweep:` section maps keys to lists of values):
";

#[derive(Parser)]
#[command(
    name = "runner",
    version,
    about = "Train the TensorFlow tutorial's MNIST GAN from a seeded YAML spec into a reproducible run directory",
    after_help = after_help()
)]
struct Cli {
    /// The experiment spec (YAML), e.g. experiments/baseline.yaml
    #[arg(required_unless_present = "resume")]
    spec: Option<PathBuf>,
    /// Override a spec key, type-checked like the file: --set train.epochs=1 --set seed=7
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Write the run into exactly this directory (it must not exist yet)
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// Parent of the default run directories <name>-<UTC time>
    #[arg(long, value_name = "DIR", default_value = "runs")]
    runs_root: PathBuf,
    /// Threads of the training step [default: all logical CPUs; 0 means the same, as in rayon];
    /// results do not depend on it
    #[arg(long, value_name = "N", env = "RAYON_NUM_THREADS")]
    threads: Option<u16>,
    /// Print nothing but errors (for scripts)
    #[arg(long, short)]
    quiet: bool,
    /// Continue an interrupted or killed run from its newest valid checkpoint
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["overrides", "run_dir"])]
    resume: Option<PathBuf>,
    /// With --resume: continue even if the spec changed since the run started; when rerunning
    /// a sweep into its --run-dir: go on although the spec changed (finished points are kept)
    #[arg(long)]
    force: bool,
    /// Sweeps: run up to N grid points at once, sharing out the threads
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    jobs: u16,
    /// Sweeps: run only the I-th (from 0) of N disjoint slices of the grid, e.g. --shard "$SLURM_ARRAY_TASK_ID/4"
    #[arg(long, value_name = "I/N")]
    shard: Option<runner::Shard>,
}

fn after_help() -> String {
    let width = gan_spec::KEYS
        .iter()
        .map(|k| k.key.len())
        .max()
        .unwrap_or(0);
    let mut s = AFTER_HELP.to_string();
    for k in gan_spec::KEYS {
        s.push_str(&format!(
            "  {:width$}  {} (default {})\n",
            k.key, k.meaning, k.default
        ));
    }
    s
}

fn main() -> ExitCode {
    gan_tools::quiet_broken_pipe();
    let cli = Cli::parse();
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupt.clone();
        // The first Ctrl-C / SIGTERM stops training at the next step boundary with a
        // checkpoint; a second one exits at once (every file is written atomically, so that is
        // as safe as kill -9, and the run resumes from its newest checkpoint).
        let handler = move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("stopped at once (second interrupt)");
                std::process::exit(130);
            }
        };
        if let Err(e) = ctrlc::set_handler(handler) {
            eprintln!("warning: Ctrl-C will not stop the run cleanly: {e}");
        }
    }
    let opts = Options {
        spec: cli.spec,
        overrides: cli.overrides,
        run_dir: cli.run_dir,
        runs_root: cli.runs_root,
        quiet: cli.quiet,
        threads: cli.threads.filter(|&n| n > 0).map(usize::from),
        resume: cli.resume,
        force: cli.force,
        jobs: cli.jobs.into(),
        shard: cli.shard,
        on_step: None,
    };
    match runner::run(&opts, &interrupt) {
        Ok(Outcome::Completed(_)) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted(dir)) => {
            if dir.join(gan_rundir::SWEEP_FILE).is_file() {
                eprintln!(
                    "interrupted: the sweep in {} stopped; run the same command again to continue it",
                    dir.display()
                );
            } else {
                eprintln!(
                    "interrupted: {} is marked `interrupted`; continue it with `runner --resume {}`",
                    dir.display(),
                    dir.display()
                );
            }
            ExitCode::from(130)
        }
        Ok(Outcome::NotStarted(what)) => {
            eprintln!("{what}: nothing was written");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
