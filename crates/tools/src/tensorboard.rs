//! `gan tensorboard RUN...`: writes (or rewrites) runs' TensorBoard logs from their
//! files, for runs made before the runner wrote logs, so `tensorboard --logdir runs` shows them.

use std::path::PathBuf;

use anyhow::{bail, Context};
use gan_rundir::{RunDir, RunDirError};
use gan_tensorboard::RunLog;

#[derive(clap::Args)]
pub struct Args {
    /// Run directories or sweep folders
    #[arg(required = true)]
    runs: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let dirs = crate::compare::expand(&args.runs)?;
    let mut failed = Vec::new();
    for path in dirs {
        let dir = RunDir::open(&path)?;
        // A run being written keeps its own log up to date; never write it from here.
        let _lock = match dir.lock() {
            Ok(l) => l,
            Err(e @ RunDirError::InUse { .. }) => {
                println!("skipped: {e}");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        match RunLog::rebuild(&dir, None) {
            Ok(_) => println!("{}", RunLog::path(&dir).display()),
            Err(e) => failed.push(format!("{}: {e}", path.display())),
        }
    }
    if !failed.is_empty() {
        bail!("no log written for:\n  {}", failed.join("\n  "));
    }
    let root = std::env::current_dir().context("the current folder")?;
    println!(
        "view them with `tensorboard --logdir {}` (run folders are TensorBoard's run names)",
        args.runs
            .first()
            .and_then(|p| p.parent())
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| root.display().to_string())
    );
    Ok(())
}
