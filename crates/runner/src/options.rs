//! What the command line asks of the runner ([`Options`], [`Shard`]), how a run or sweep ends
//! ([`Outcome`]), and how each run is carried out ([`Execution`]).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use std::str::FromStr;

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

/// How a run (or sweep) ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Completed(PathBuf),
    Interrupted(PathBuf),
    /// Ctrl-C stopped the preparation (data, k-means) before training started; nothing of
    /// the run was written (a resumed run's files are as they were). Says what was stopped.
    NotStarted(String),
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

/// `I/N`: the I-th (from 0) of N disjoint slices of a sweep's grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/3")?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| format!("`{i}` is not a shard number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a shard count"))?;
        if count == 0 || index >= count {
            return Err(format!("shard {index}/{count}: I must be in 0..N (numbered from 0, as SLURM_ARRAY_TASK_ID=0.. and JOB_COMPLETION_INDEX)"));
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    pub fn contains(&self, point: usize) -> bool {
        point % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_partition_the_grid() {
        for points in 1..20 {
            for count in 1..=points {
                let mut owners = vec![0; points];
                for index in 0..count {
                    let shard: Shard = format!("{index}/{count}").parse().unwrap();
                    for (p, o) in owners.iter_mut().enumerate() {
                        *o += shard.contains(p) as usize;
                    }
                }
                assert!(
                    owners.iter().all(|&o| o == 1),
                    "{points} points, {count} shards: {owners:?}"
                );
            }
        }
    }

    #[test]
    fn shard_arguments_are_checked() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1/0", "x/2", "1", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
