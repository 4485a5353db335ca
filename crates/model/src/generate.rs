//! Images from a generator, computed with dfdx's tensor operations.

use dfdx::prelude::*;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::dfdx_mlp::Net;
use crate::params::{to_unit_range, Mlp};

/// Rows pushed through the network at once, so memory stays bounded for large `n`.
const CHUNK_ROWS: usize = 1000;

/// `n` noise vectors of the generator's input size, N(0, 1), drawn from `rng`.
pub fn sample_noise(n: usize, noise_dim: usize, rng: &mut impl Rng) -> Vec<f32> {
    (0..n * noise_dim)
        .map(|_| rng.sample(StandardNormal))
        .collect()
}

/// `n` labels asking for every one of `classes` equally often: 0, 1, ..., classes - 1, 0, ...
pub fn balanced_labels(n: usize, classes: usize) -> Vec<u8> {
    (0..n).map(|i| (i % classes.max(1)) as u8).collect()
}

/// G's input rows: each noise row (`noise.len() / labels.len()` long) followed, for a
/// conditional generator (`classes > 0`), by its label one-hot. Without classes, the noise.
pub fn generator_input(noise: &[f32], labels: &[u8], classes: usize) -> Vec<f32> {
    if classes == 0 {
        return noise.to_vec();
    }
    let width = noise.len() / labels.len().max(1);
    let mut out = vec![0.0; labels.len() * (width + classes)];
    join_one_hot(&mut out, noise, labels, classes);
    out
}

/// A conditional network's input rows, written into `out`: each row of `rows`
/// (`rows.len() / labels.len()` wide) followed by its label one-hot over `classes`. G's
/// input (noise, label) and D's (pixels, label) alike.
pub fn join_one_hot(out: &mut [f32], rows: &[f32], labels: &[u8], classes: usize) {
    let width = rows.len() / labels.len().max(1);
    let out_rows = out.chunks_exact_mut(width + classes);
    for ((o, row), &label) in out_rows.zip(rows.chunks_exact(width)).zip(labels) {
        o[..width].copy_from_slice(row);
        one_hot(&mut o[width..], label);
    }
}

/// `row = one-hot(label)`.
pub(crate) fn one_hot(row: &mut [f32], label: u8) {
    row.fill(0.0);
    row[label as usize] = 1.0;
}

/// The generator's images (`rows x 784`, in [0, 1]) for its input rows `z` (`rows x
/// noise_dim`, plus a conditional generator's one-hot label: [`generator_input`]); a tanh
/// generator's [-1, 1] pixels are mapped to [0, 1].
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
