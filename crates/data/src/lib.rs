//! MNIST for the GAN: IDX parsing that never trusts a header, the TensorFlow tutorial's
//! train/validation/test splits, and batches whose order is fixed by a seed.
//!
//! Pixels stay `u8` in memory (47 MB for all of MNIST) and become `f32` in [0, 1] one batch
//! at a time, exactly as `input_data` scales them (`x * (1/255)` in `f32`).

mod batches;
mod idx;
mod mnist;

use std::path::PathBuf;

pub use batches::{Batcher, BatcherState};
pub use idx::{read_idx, write_idx, IdxArray, IdxWriter};
pub use mnist::{
    fixture_dir, load_pair, load_test, load_training, validation_len, Images, Mnist, MnistFile,
    Split, IMAGE_PIXELS, IMAGE_SIDE,
};

/// Everything that can be wrong with MNIST files on disk. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: the gzip stream is corrupt or cut short ({cause}); fetch the file again", path.display())]
    Gzip {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{}: not an IDX file of the expected kind: magic number 0x{found:08x}, expected 0x{expected:08x}",
        path.display()
    )]
    BadMagic {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{}: {detail}; the file is truncated or its header is corrupt", path.display())]
    Truncated { path: PathBuf, detail: String },
    #[error("{}: the file holds more bytes than its header's dimensions {dims:?} describe", path.display())]
    TrailingData { path: PathBuf, dims: Vec<usize> },
    #[error("{}: images are {rows}x{cols} pixels, MNIST's are 28x28", path.display())]
    WrongImageSize {
        path: PathBuf,
        rows: usize,
        cols: usize,
    },
    #[error(
        "{} holds {images} images but {} holds {labels} labels",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        images_path: PathBuf,
        labels_path: PathBuf,
        images: usize,
        labels: usize,
    },
    #[error("{}: label {value} at index {index} is not a digit 0-9", path.display())]
    BadLabel {
        path: PathBuf,
        index: usize,
        value: u8,
    },
    #[error(
        "no MNIST file `{name}` (or `{name}.gz`) in {}; run `gan fetch-mnist --dir {}` (`cargo xtask fetch-mnist` in the repository) to fetch it",
        dir.display(),
        dir.display()
    )]
    Missing { dir: PathBuf, name: &'static str },
    #[error("{0}")]
    InvalidBatching(String),
}
