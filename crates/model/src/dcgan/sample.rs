//! Sampling a DCGAN's generator: images in inference mode (running statistics), and the
//! standing statistics an averaged G needs.

use crate::dcgan::networks::{g_sides, stride_2, ConvGenerator, MID_PIXELS, SEED_PIXELS};
use crate::dcgan::passes::{generator_forward, output_activation, GBuffers};
use crate::kernels::{matmul, Split, View};
use crate::layers::activation::to_unit_range;
use crate::layers::batch_norm;
use crate::layers::conv::{self, Scratch};
use crate::layers::slots::split_ref;
use crate::rng::{stream, Stream};
use crate::train::config::IMAGE_PIXELS;
use crate::train::input::{generator_input, labels_to_ask, sample_noise};

/// Images [`ConvGenerator::generate`] makes at a time.
pub const GENERATE_CHUNK: usize = 250;

impl ConvGenerator {
    /// Images for inputs `z` (`n x input()`), `n x 784` in [0, 1] whatever the output range,
    /// with batch normalisation in inference mode (the running statistics), as sampling uses.
    /// Generated [`GENERATE_CHUNK`] images at a time, so evaluation's thousands of images
    /// need only one chunk's feature maps.
    pub fn generate(&self, z: &[f32]) -> Vec<f32> {
        let n = z.len() / self.input().max(1);
        let [c1, c2] = self.channels;
        let chunk = GENERATE_CHUNK.min(n.max(1));
        let mut scratch = Scratch::default();
        let (sides1, sides2) = g_sides(chunk);
        scratch.reserve(&stride_2(c1, c2), &sides1, true);
        scratch.reserve(&stride_2(c2, 1), &sides2, true);
        let mut h0 = vec![0.0; chunk * c1 * SEED_PIXELS];
        let mut h1 = vec![0.0; chunk * c2 * MID_PIXELS];
        let mut out = vec![0.0; n * IMAGE_PIXELS];
        for (z, out) in z
            .chunks(chunk * self.input())
            .zip(out.chunks_mut(chunk * IMAGE_PIXELS))
        {
            self.generate_chunk(z, out, &mut h0, &mut h1, &mut scratch);
        }
        to_unit_range(self.output, &mut out);
        out
    }

    /// Replaces the running statistics with their average over G's batches of `batch`
    /// images from the noise `z` in training mode, each batch weighted equally ("standing
    /// statistics", Brock et al. 2019): the statistics that fit these weights, which a
    /// moving average of G's weights needs, as the live G's running statistics do not.
    pub fn standing_statistics(&mut self, z: &[f32], batch: usize) {
        let mut buf = GBuffers::new(batch, self);
        let mut scratch = Scratch::default();
        let [c1, c2] = self.channels;
        let (s1, s2) = g_sides(batch);
        scratch.reserve(&stride_2(c1, c2), &s1, true);
        scratch.reserve(&stride_2(c2, 1), &s2, true);
        let mut out = vec![0.0; batch * IMAGE_PIXELS];
        for (i, z) in z.chunks_exact(batch * self.input()).enumerate() {
            buf.z.copy_from_slice(z);
            // Momentum 1 / (i + 1) makes the running values the mean of the i + 1 batches.
            generator_forward(self, &mut buf, &mut out, &mut scratch, 1.0 / (i + 1) as f32);
        }
    }

    fn generate_chunk(
        &self,
        z: &[f32],
        out: &mut [f32],
        h0: &mut [f32],
        h1: &mut [f32],
        scratch: &mut Scratch,
    ) {
        let n = z.len() / self.input();
        let [c1, c2] = self.channels;
        let [fc, g0, b0, up1, g1, b1, up2, bias2] = split_ref(&self.params, self.lens());
        let [m0, v0, m1, v1] = split_ref(&self.running, [c1, c1, c2, c2]);
        let (sides1, sides2) = g_sides(n);
        let h0 = &mut h0[..n * c1 * SEED_PIXELS];
        let h1 = &mut h1[..n * c2 * MID_PIXELS];
        matmul(
            h0,
            View::rows(z, n, self.input()),
            View::transposed(fc, c1 * SEED_PIXELS, self.input()),
            Split::Cols(2),
        );
        batch_norm::inference(h0, c1, SEED_PIXELS, g0, b0, m0, v0, self.act);
        let up = stride_2(c1, c2);
        conv::conv_transposed_forward(&up, &sides1, h0, up1, None, h1, scratch);
        batch_norm::inference(h1, c2, MID_PIXELS, g1, b1, m1, v1, self.act);
        let up = stride_2(c2, 1);
        conv::conv_transposed_forward(&up, &sides2, h1, up2, Some(bias2), out, scratch);
        output_activation(out, self.output);
    }
}

/// Noise vectors [`average_generator`] takes its statistics from.
pub const STANDING_IMAGES: usize = 2000;

/// G with the weights `average` (a moving average of `live`'s) and running statistics
/// measured on them: [`ConvGenerator::standing_statistics`] over [`STANDING_IMAGES`] noise
/// vectors from the seed's `Standing` stream, in training batches of `batch` (a conditional
/// G's asking for its classes as when sampled, [`labels_to_ask`]). The live G's
/// running statistics belong to the live weights, not to their average. The same weights
/// and seed always give the same statistics.
pub fn average_generator(
    live: &ConvGenerator,
    average: &[f32],
    batch: usize,
    seed: u64,
) -> ConvGenerator {
    let mut g = live.clone();
    g.params.copy_from_slice(average);
    let batch = batch.clamp(2, STANDING_IMAGES);
    let n = STANDING_IMAGES / batch * batch;
    let mut rng = stream(seed, Stream::Standing);
    let noise = sample_noise(n, g.noise_dim, &mut rng);
    let labels = labels_to_ask(n, g.classes, &g.label_counts);
    let z = generator_input(&noise, &labels, g.classes);
    g.standing_statistics(&z, batch);
    g
}
