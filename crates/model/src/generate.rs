//! Images from a generator, computed with dfdx's tensor operations.

use std::path::Path;

use dfdx::prelude::*;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::checkpoint::{load_gan, CheckpointError};
use crate::params::Mlp;
use crate::rng::{stream, Stream};

/// Rows pushed through the network at once, so memory stays bounded for large `n`.
const CHUNK_ROWS: usize = 1000;

/// `n` noise vectors of the generator's input size, N(0, 1), drawn from `rng`.
pub fn sample_noise(n: usize, noise_dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n * noise_dim)
        .map(|_| rng.sample(StandardNormal))
        .collect()
}

/// The generator's images (`rows x 784`, in [0, 1]) for noise `z` (`rows x noise_dim`).
pub fn generate(generator: &Mlp, z: &[f32]) -> Vec<f32> {
    let dev = Cpu::default();
    let (i, h, o) = (generator.input, generator.hidden, generator.output);
    assert_eq!(z.len() % i, 0, "noise is not whole rows");
    let tensor2 = |v: &[f32], r: usize, c: usize| dev.tensor_from_vec(v.to_vec(), (r, c));
    let w1 = tensor2(generator.w1(), h, i);
    let b1 = dev.tensor_from_vec(generator.b1().to_vec(), (h,));
    let w2 = tensor2(generator.w2(), o, h);
    let b2 = dev.tensor_from_vec(generator.b2().to_vec(), (o,));
    let mut out = Vec::with_capacity(z.len() / i * o);
    for chunk in z.chunks(CHUNK_ROWS * i) {
        let rows = chunk.len() / i;
        let z = tensor2(chunk, rows, i);
        let hidden = (z.matmul(w1.clone().permute())
            + b1.clone().broadcast_like::<_, Axis<0>>(&(rows, h)))
        .relu();
        let images = (hidden.matmul(w2.clone().permute())
            + b2.clone().broadcast_like::<_, Axis<0>>(&(rows, o)))
        .sigmoid();
        out.extend(images.as_vec());
    }
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
    let z = sample_noise(n, gan.generator.input, &mut stream(seed, Stream::Eval));
    Ok(generate(&gan.generator, &z))
}
