//! Images from a generator, computed with dfdx's tensor operations.

use std::path::Path;

use dfdx::prelude::*;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::checkpoint::{load_gan, CheckpointError};
use crate::dfdx_mlp::Net;
use crate::params::{to_unit_range, Mlp};
use crate::rng::{stream, Stream};

/// Rows pushed through the network at once, so memory stays bounded for large `n`.
const CHUNK_ROWS: usize = 1000;

/// `n` noise vectors of the generator's input size, N(0, 1), drawn from `rng`.
pub fn sample_noise(n: usize, noise_dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n * noise_dim)
        .map(|_| rng.sample(StandardNormal))
        .collect()
}

/// The generator's images (`rows x 784`, in [0, 1]) for noise `z` (`rows x noise_dim`); a
/// tanh generator's [-1, 1] pixels are mapped to [0, 1].
pub fn generate(generator: &Mlp, z: &[f32]) -> Vec<f32> {
    let dev = Cpu::default();
    let (i, o) = (generator.input(), generator.output_size());
    assert_eq!(z.len() % i, 0, "noise is not whole rows");
    let net = Net::new(&dev, generator);
    let mut out = Vec::with_capacity(z.len() / i * o);
    for chunk in z.chunks(CHUNK_ROWS * i) {
        let z = dev.tensor_from_vec(chunk.to_vec(), (chunk.len() / i, i));
        out.extend(net.forward(z).as_vec());
    }
    to_unit_range(generator.output, &mut out);
    out
}

/// `n` images from the generator saved in `weights` (a `.safetensors` file), with noise from
/// `seed`'s evaluation stream: the same file, `n` and `seed` always give the same images.
pub fn generate_from_file(
    weights: &Path,
    n: usize,
    seed: u64,
) -> Result<Vec<f32>, CheckpointError> {
    let gan = load_gan(weights)?;
    let z = sample_noise(n, gan.generator.input(), &mut stream(seed, Stream::Eval));
    Ok(generate(&gan.generator, &z))
}
