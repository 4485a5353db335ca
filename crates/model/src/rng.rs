//! Every random number of a run comes from one seed through independent `rand_chacha` streams,
//! one per purpose, so changing how much one consumer draws never shifts another.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is for. The numbers are part of the reproducibility contract: changing one
/// changes every run's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    /// Initial weights.
    Init = 0,
    /// The order of training images.
    Data = 1,
    /// The noise batch of every training step.
    Noise = 2,
    /// The fixed noise of the sample images saved during training.
    Samples = 3,
    /// Noise for evaluation samples.
    Eval = 4,
    /// D's dropout masks.
    Dropout = 5,
    /// The noise that gives an averaged convolutional G its batch-normalisation statistics.
    Standing = 6,
    /// The k-means seeds of self-conditioning (`model.clusters`).
    Clusters = 7,
}

/// The stream `which` of `seed`, at its start.
pub fn stream(seed: u64, which: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(which as u64);
    rng
}
