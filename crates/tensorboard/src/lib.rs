//! TensorBoard logs of a run directory, so `tensorboard --logdir runs` shows every run:
//! loss curves per step and per epoch, the sample pictures with a step slider, the spec as
//! text, and the spec's keys with the final metrics in the HParams tab.
//!
//! * [`proto`]: the TensorBoard protobuf messages, derived with prost;
//! * [`EventWriter`]: event files (TFRecord framing with masked CRC-32C) and summaries;
//! * [`RunLog`]: a run's log, appended to while it trains and rebuilt from its files.

pub mod proto;
mod run;
mod writer;

use std::path::PathBuf;

pub use run::{unix_seconds, RunLog};
pub use writer::{read_events, EventWriter, HParam};

#[derive(Debug, thiserror::Error)]
pub enum TensorBoardError {
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: not a valid event file: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "{}: it holds {rows} of the {steps} steps run.json records (cut short, or deleted); \
         the TensorBoard log is left as it is, since it may hold the last copy of those losses",
        path.display()
    )]
    LossesShort {
        path: PathBuf,
        rows: usize,
        steps: u64,
    },
    #[error(transparent)]
    RunDir(#[from] gan_rundir::RunDirError),
}
