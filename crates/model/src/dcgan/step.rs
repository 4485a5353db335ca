//! The DCGAN family (Radford, Metz and Chintala 2016) at MNIST's size, trained by the same
//! step as the MLPs (one noise batch, D's update on real and fake images, then G's with the
//! same noise against the updated D), on flat buffers with the layers of [`crate::layers::conv`]:
//!
//! ```text
//! G: z -> Linear -> C1 x 7 x 7 -> BN -> act -> ConvTranspose(C1 -> C2, 4, 2, 1) -> BN -> act
//!      -> ConvTranspose(C2 -> 1, 4, 2, 1) -> sigmoid or tanh                       (28 x 28)
//! D: 1 x 28 x 28 -> Conv(1 -> C1, 4, 2, 1) -> act -> Conv(C1 -> C2, 4, 2, 1) -> BN -> act
//!      [-> Linear(C2 x 7 x 7 -> H) -> act]  -> Linear(-> 1)                         (logit)
//! ```
//!
//! (the bracketed dense layer only with `model.d_dense: H`, as InfoGAN's MNIST D has one).
//!
//! Layers followed by batch normalisation have no bias (the normalisation removes it). D
//! normalises its real and its fake images as two batches, each with its own statistics, as
//! PyTorch's DCGAN example does by calling D on each; D keeps no running statistics (it is
//! never used outside training). G keeps PyTorch's running statistics (momentum 0.1), which
//! pictures and evaluation use. Parameter names follow the PyTorch modules of
//! `tools/peers/gan_torch_dcgan.py`, so its `state_dict` and these checkpoints read alike.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::kernels::{self, matmul, Split, View};
use crate::layers::conv::{self, ConvShape, Grads, Running, Scratch, Sides};
use crate::mlp::networks::{Activation, Output, ParamSlot};
use crate::mlp::step::{
    apply_mask, check_finite, draw_input, draw_mask, scale_by_derivative as scale_masked,
    update_average, Mask, StepStats, TrainError,
};
use crate::optim::adam::Adam;
use crate::rng::{stream, Stream};
use crate::train::config::{DcganShape, TrainConfig};
use crate::train::input::LabelOdds;
use crate::IMAGE_PIXELS;

/// The side of G's first image (MNIST's 28 halved twice).
const SEED_SIDE: usize = 7;
const SEED_PIXELS: usize = SEED_SIDE * SEED_SIDE;
/// The side between the two stride-2 layers.
const MID_SIDE: usize = 14;
const MID_PIXELS: usize = MID_SIDE * MID_SIDE;
const IMAGE_SIDE: usize = 28;
/// PyTorch's batch-normalisation defaults.
const BN_EPS: f32 = 1e-5;
const BN_MOMENTUM: f32 = 0.1;

/// PyTorch's DCGAN example at MNIST's size, as `tools/peers/gan_torch_dcgan.py` trains it:
/// noise 100, G 128-64 and D 64-128 channels, ReLU in G and LeakyReLU(0.2) in D, a tanh
/// output, weights from N(0, 0.02), Adam(2e-4, betas 0.5 and 0.999), batch 100.
pub fn pytorch_example() -> TrainConfig {
    TrainConfig {
        model: crate::ModelConfig {
            noise_dim: 100,
            g_act: Activation::Relu,
            d_act: Activation::LeakyRelu(0.2),
            g_output: Output::Tanh,
            init_std: 0.02,
            arch: crate::Arch::Dcgan(DcganShape::default()),
            ..crate::ModelConfig::default()
        },
        adam: crate::AdamConfig {
            beta1: 0.5,
            ..crate::AdamConfig::default()
        },
        ..TrainConfig::tutorial()
    }
}

/// Multiply-adds of one image through G's layers and through D's: `(G, D)`. `input` is
/// G's input row (the noise and a conditional GAN's one-hot label).
pub fn macs_per_image(input: usize, shape: &DcganShape, classes: usize) -> (usize, usize) {
    let ([g1, g2], [d1, d2]) = (shape.g_channels, shape.d_channels);
    let k = 16;
    let g = input * g1 * SEED_PIXELS + SEED_PIXELS * k * g1 * g2 + MID_PIXELS * k * g2;
    let h = shape.d_dense;
    let logit_inputs = if h > 0 { h } else { d2 * SEED_PIXELS };
    // A conditional D's projection is a second dot product over the logit's inputs.
    let head = if h > 0 { d2 * SEED_PIXELS * h } else { 0 }
        + logit_inputs * if classes > 0 { 2 } else { 1 };
    let d = MID_PIXELS * k * d1 + SEED_PIXELS * k * d1 * d2 + head;
    (g, d)
}

/// Floats of D's dropout masks (`model.d_dropout > 0`) for batches of `batch`: one per unit
/// after each activation, for the `2B` images of D's update (G's update reuses `B` rows).
pub fn dropout_mask_floats(shape: &DcganShape, batch: usize) -> u128 {
    let [d1, d2] = shape.d_channels;
    2 * batch as u128 * (d1 * MID_PIXELS + d2 * SEED_PIXELS) as u128
}

/// Floats a DCGAN needs, counted without allocating (for memory estimates): `(G's
/// parameters, D's parameters, the step's buffers)` for batches of `batch`; `input` is G's
/// input row (the noise and a conditional GAN's one-hot label).
pub fn float_counts(
    input: usize,
    shape: &DcganShape,
    classes: usize,
    batch: usize,
) -> (u128, u128, u128) {
    let ([g1, g2], [d1, d2]) = (shape.g_channels, shape.d_channels);
    let [g1, g2, d1, d2, z, b, h, classes] =
        [g1, g2, d1, d2, input, batch, shape.d_dense, classes].map(|v| v as u128);
    let k = 16;
    let (seed, mid, image) = (
        SEED_PIXELS as u128,
        MID_PIXELS as u128,
        IMAGE_PIXELS as u128,
    );
    let g = g1 * seed * z + 2 * g1 + g1 * g2 * k + 2 * g2 + g2 * k + 1 + 2 * (g1 + g2);
    let head = if h > 0 {
        d2 * seed * h + h + h
    } else {
        d2 * seed
    };
    let logit_inputs = if h > 0 { h } else { d2 * seed };
    let d = d1 * k + d1 + d1 * d2 * k + 2 * d2 + head + 1 + classes * logit_inputs;
    // D's buffers over 2B images (the dense layer's two and its weight gradient), G's over
    // B, D's input, the gradients.
    let d_buffers = 2 * b * (2 * d1 * mid + 4 * d2 * seed + 2 * h) + d2 * seed * h + 8 * d2 + 4 * b;
    let g_buffers = b * (z + 4 * g1 * seed + 4 * g2 * mid + image) + 6 * (g1 + g2);
    // Each lane's scratch, sized for the largest layer: im2col columns, staging, a weight
    // gradient and a padded plane (30 x 30 for the 28 x 28 layers, split in two phases of 15).
    let group = conv::GROUP.min(batch) as u128;
    let layers = [
        (g2 * k * group * seed, g1 * group * seed, g1 * g2 * k),
        (k * group * mid, g2 * group * mid, g2 * k),
        (k * group * mid, d1 * group * mid, d1 * k),
        (d1 * k * group * seed, d2 * group * seed, d1 * d2 * k),
    ];
    let largest = |f: fn(&(u128, u128, u128)) -> u128| layers.iter().map(f).max().unwrap_or(0);
    let lane = largest(|l| l.0) + largest(|l| l.1) + largest(|l| l.2) + 30 * 30;
    let scratch = conv::LANES as u128 * lane;
    (g, d, d_buffers + g_buffers + 2 * b * image + scratch)
}

/// DCGAN's layers: kernel 4, stride 2, padding 1 (doubling or halving the side).
fn stride_2(in_ch: usize, out_ch: usize) -> ConvShape {
    ConvShape {
        in_ch,
        out_ch,
        kernel: 4,
        stride: 2,
        padding: 1,
    }
}

/// Splits `buf` into consecutive parts of the given lengths.
fn split<const N: usize>(mut buf: &mut [f32], lens: [usize; N]) -> [&mut [f32]; N] {
    std::array::from_fn(|i| {
        let (part, rest) = std::mem::take(&mut buf).split_at_mut(lens[i]);
        buf = rest;
        part
    })
}

/// The same for reading.
fn split_ref<const N: usize>(mut buf: &[f32], lens: [usize; N]) -> [&[f32]; N] {
    std::array::from_fn(|i| {
        let (part, rest) = buf.split_at(lens[i]);
        buf = rest;
        part
    })
}

/// Named tensors laid end to end, in order.
fn slots(tensors: &[(&str, Vec<usize>)]) -> Vec<ParamSlot> {
    let mut start = 0;
    tensors
        .iter()
        .map(|(name, shape)| {
            let len: usize = shape.iter().product();
            let slot = ParamSlot {
                name: name.to_string(),
                shape: shape.clone(),
                range: start..start + len,
            };
            start += len;
            slot
        })
        .collect()
}

/// Fills the weight tensors (names ending in `weight` that are not batch normalisation's
/// scale) from N(0, std) in buffer order, batch normalisation's scales with 1, the rest 0.
fn init_params(slots: &[ParamSlot], params: &mut [f32], std: f32, rng: &mut impl Rng) {
    let normal = Normal::new(0.0f32, std).expect("init_std is finite and >= 0");
    for s in slots {
        let part = &mut params[s.range.clone()];
        if s.name.starts_with("bn") {
            part.fill(if s.name.ends_with("weight") { 1.0 } else { 0.0 });
        } else if s.name.ends_with("weight") {
            for p in part {
                *p = normal.sample(rng);
            }
        } else {
            part.fill(0.0);
        }
    }
}

/// A DCGAN generator: its sizes, activations and one flat parameter buffer, plus the running
/// statistics of its two batch normalisations (for sampling).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvGenerator {
    pub noise_dim: usize,
    /// A conditional generator's classes (0: unconditional): each input row is the noise,
    /// then the label one-hot, so the label enters through `fc` like the noise.
    pub classes: usize,
    /// Its odds of each class when sampled ([`crate::ModelConfig::label_counts`]; empty:
    /// every class equally often).
    pub label_counts: Vec<u32>,
    pub channels: [usize; 2],
    pub act: Activation,
    pub output: Output,
    /// `fc.weight, bn0.weight, bn0.bias, up1.weight, bn1.weight, bn1.bias, up2.weight, up2.bias`.
    pub params: Vec<f32>,
    /// `bn0.running_mean, bn0.running_var, bn1.running_mean, bn1.running_var`.
    pub running: Vec<f32>,
}

impl ConvGenerator {
    pub fn zeros(
        noise_dim: usize,
        classes: usize,
        channels: [usize; 2],
        act: Activation,
        output: Output,
    ) -> Self {
        let mut g = ConvGenerator {
            noise_dim,
            classes,
            label_counts: Vec::new(),
            channels,
            act,
            output,
            params: Vec::new(),
            running: Vec::new(),
        };
        g.params = vec![0.0; g.lens().iter().sum()];
        let [c1, c2] = channels;
        g.running = [vec![0.0; c1], vec![1.0; c1], vec![0.0; c2], vec![1.0; c2]].concat();
        g
    }

    /// Length of one input row: the noise, then a conditional generator's one-hot label.
    pub fn input(&self) -> usize {
        self.noise_dim + self.classes
    }

    fn lens(&self) -> [usize; 8] {
        let [c1, c2] = self.channels;
        let up1 = stride_2(c1, c2).weight_len();
        let up2 = stride_2(c2, 1).weight_len();
        [c1 * SEED_PIXELS * self.input(), c1, c1, up1, c2, c2, up2, 1]
    }

    /// The tensors in buffer order, named like the PyTorch peer's modules.
    pub fn slots(&self) -> Vec<ParamSlot> {
        let [c1, c2] = self.channels;
        slots(&[
            ("fc.weight", vec![c1 * SEED_PIXELS, self.input()]),
            ("bn0.weight", vec![c1]),
            ("bn0.bias", vec![c1]),
            ("up1.weight", vec![c1, c2, 4, 4]),
            ("bn1.weight", vec![c2]),
            ("bn1.bias", vec![c2]),
            ("up2.weight", vec![c2, 1, 4, 4]),
            ("up2.bias", vec![1]),
        ])
    }

    /// The running statistics' tensors, laid out in [`ConvGenerator::running`].
    pub fn running_slots(&self) -> Vec<ParamSlot> {
        let [c1, c2] = self.channels;
        slots(&[
            ("bn0.running_mean", vec![c1]),
            ("bn0.running_var", vec![c1]),
            ("bn1.running_mean", vec![c2]),
            ("bn1.running_var", vec![c2]),
        ])
    }

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
        crate::mlp::networks::to_unit_range(self.output, &mut out);
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
        batch_norm_inference(h0, c1, SEED_PIXELS, g0, b0, m0, v0, self.act);
        let up = stride_2(c1, c2);
        conv::conv_transposed_forward(&up, &sides1, h0, up1, None, h1, scratch);
        batch_norm_inference(h1, c2, MID_PIXELS, g1, b1, m1, v1, self.act);
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
/// G's asking for its classes as when sampled, [`crate::train::input::labels_to_ask`]). The live G's
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
    let noise = crate::train::input::sample_noise(n, g.noise_dim, &mut rng);
    let labels = crate::train::input::labels_to_ask(n, g.classes, &g.label_counts);
    let z = crate::train::input::generator_input(&noise, &labels, g.classes);
    g.standing_statistics(&z, batch);
    g
}

/// Images [`ConvGenerator::generate`] makes at a time.
pub const GENERATE_CHUNK: usize = 250;

/// The sides of G's two transposed convolutions over `n` images.
fn g_sides(n: usize) -> (Sides, Sides) {
    (
        Sides {
            batch: n,
            input: (SEED_SIDE, SEED_SIDE),
            output: (MID_SIDE, MID_SIDE),
        },
        Sides {
            batch: n,
            input: (MID_SIDE, MID_SIDE),
            output: (IMAGE_SIDE, IMAGE_SIDE),
        },
    )
}

/// The sides of D's two convolutions over `n` images.
fn d_sides(n: usize) -> (Sides, Sides) {
    (
        Sides {
            batch: n,
            input: (IMAGE_SIDE, IMAGE_SIDE),
            output: (MID_SIDE, MID_SIDE),
        },
        Sides {
            batch: n,
            input: (MID_SIDE, MID_SIDE),
            output: (SEED_SIDE, SEED_SIDE),
        },
    )
}

/// Batch normalisation with running statistics, then `act`, in place.
#[allow(clippy::too_many_arguments)]
fn batch_norm_inference(
    x: &mut [f32],
    channels: usize,
    pixels: usize,
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    act: Activation,
) {
    for image in x.chunks_exact_mut(channels * pixels) {
        for (c, plane) in image.chunks_exact_mut(pixels).enumerate() {
            let inv_std = 1.0 / (var[c] + BN_EPS).sqrt();
            for v in plane {
                *v = act.apply(gamma[c] * ((*v - mean[c]) * inv_std) + beta[c]);
            }
        }
    }
}

fn output_activation(out: &mut [f32], output: Output) {
    match output {
        Output::Sigmoid => out.iter_mut().for_each(|v| *v = kernels::sigmoid(*v)),
        // libm's tanh, not `kernels::tanh_fast` (which tanh layers use): one pass over the
        // output is well under 1% of a DCGAN step, and keeping it keeps the DCGAN specs'
        // bits (and the results quoted for them) as they were.
        Output::Tanh => out.iter_mut().for_each(|v| *v = v.tanh()),
        Output::Identity => {}
    }
}

/// Element-wise passes over at least this many floats run in two halves side by side: a
/// layer's pass (20,000 to 630,000 floats) takes longer than the hand-off. Each entry's
/// arithmetic is the same wherever the cut falls.
const HALVES_FROM: usize = 16_384;

/// `f` on `x`, in two halves side by side if it is long enough.
fn in_halves(x: &mut [f32], f: impl Fn(&mut [f32]) + Sync) {
    if x.len() < HALVES_FROM {
        return f(x);
    }
    let (a, b) = x.split_at_mut(x.len() / 2);
    rayon::join(|| f(a), || f(b));
}

/// `f` on `x` and the same entries of `y` (and of `mask`, if given), in two halves side by
/// side if they are long enough.
fn in_halves_with(
    x: &mut [f32],
    y: &[f32],
    mask: Mask,
    f: impl Fn(&mut [f32], &[f32], Mask) + Sync,
) {
    let y = &y[..x.len()];
    if x.len() < HALVES_FROM {
        return f(x, y, mask);
    }
    let (len, half) = (x.len(), x.len() / 2);
    let (xa, xb) = x.split_at_mut(half);
    let (ya, yb) = y.split_at(half);
    let (ma, mb) = match mask {
        Some((m, keep)) => {
            let (a, b) = m[..len].split_at(half);
            (Some((a, keep)), Some((b, keep)))
        }
        None => (None, None),
    };
    rayon::join(|| f(xa, ya, ma), || f(xb, yb, mb));
}

/// The MLP trainer's `scale_by_derivative` (with a dropout mask), in halves.
fn scale_masked_in_halves(grad: &mut [f32], out: &[f32], act: Activation, mask: Mask) {
    in_halves_with(grad, out, mask, |g, y, m| scale_masked(g, y, act, m));
}

/// `grad ⊙= act'` at the layer's outputs, in halves (the closures capture `act`: see
/// [`Activation::fixed`]).
fn scale_by_derivative(grad: &mut [f32], out: &[f32], act: Activation) {
    in_halves_with(grad, out, None, |grad, out, _| {
        act.fixed(|act| {
            for (g, &y) in grad.iter_mut().zip(out) {
                *g *= act.derivative_at_output(y);
            }
        })
    });
}

/// `act` on every entry, in halves.
fn activate(x: &mut [f32], act: Activation) {
    in_halves(x, |x| {
        act.fixed(|act| x.iter_mut().for_each(|v| *v = act.apply(*v)))
    });
}

/// A DCGAN discriminator: its widths, activation, whether its second convolution is batch
/// normalised, and one flat parameter buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvDiscriminator {
    pub channels: [usize; 2],
    pub act: Activation,
    /// PyTorch's DCGAN example normalises; TensorFlow's DCGAN tutorial does not (its second
    /// convolution has a bias instead), and a batch of fakes normalised on its own hides
    /// the batch's mean features from D.
    pub batch_norm: bool,
    /// Units of the dense hidden layer between the convolutions and the logit (0: none).
    /// A conv D's logit is a linear function of local features; a hidden layer lets it
    /// judge the digit as a whole.
    pub dense: usize,
    /// A conditional D's classes (0: unconditional). It judges an image against its label
    /// by projection (Miyato and Koyama 2018): the logit gains `embed[label] . h`, `h` the
    /// logit's input features, so the label costs one dot product per image.
    pub classes: usize,
    /// `conv1.weight, conv1.bias, conv2.weight, bn2.weight, bn2.bias, [dense.weight,
    /// dense.bias,] fc.weight, fc.bias[, embed.weight]`; without batch normalisation
    /// `conv2.bias` instead of `bn2.weight, bn2.bias`.
    pub params: Vec<f32>,
}

impl ConvDiscriminator {
    pub fn zeros(
        channels: [usize; 2],
        act: Activation,
        batch_norm: bool,
        dense: usize,
        classes: usize,
    ) -> Self {
        let mut d = ConvDiscriminator {
            channels,
            act,
            batch_norm,
            dense,
            classes,
            params: Vec::new(),
        };
        d.params = vec![0.0; d.lens().iter().sum()];
        d
    }

    /// Units per image after each activation (where dropout acts).
    fn widths(&self) -> [usize; 2] {
        [
            self.channels[0] * MID_PIXELS,
            self.channels[1] * SEED_PIXELS,
        ]
    }

    /// Features per image after the convolutions (the dense layer's or the logit's input).
    fn conv_features(&self) -> usize {
        self.channels[1] * SEED_PIXELS
    }

    /// The width of the logit's input: the dense layer's units, or the conv features.
    fn fc_inputs(&self) -> usize {
        if self.dense > 0 {
            self.dense
        } else {
            self.conv_features()
        }
    }

    /// The parts of `params`: `[conv1, bias1, conv2, gamma or bias2, beta, dense, dense_bias,
    /// fc, fc_bias, embed]`, `beta` empty without batch normalisation, `dense` and
    /// `dense_bias` empty without the dense layer, `embed` (`classes x fc_inputs`) empty
    /// unless conditional.
    fn lens(&self) -> [usize; 10] {
        let [c1, c2] = self.channels;
        let conv1 = stride_2(1, c1).weight_len();
        let conv2 = stride_2(c1, c2).weight_len();
        let beta = if self.batch_norm { c2 } else { 0 };
        let h = self.dense;
        let dense = h * self.conv_features();
        let embed = self.classes * self.fc_inputs();
        [
            conv1,
            c1,
            conv2,
            c2,
            beta,
            dense,
            h,
            self.fc_inputs(),
            1,
            embed,
        ]
    }

    pub fn slots(&self) -> Vec<ParamSlot> {
        let [c1, c2] = self.channels;
        let middle = if self.batch_norm {
            vec![("bn2.weight", vec![c2]), ("bn2.bias", vec![c2])]
        } else {
            vec![("conv2.bias", vec![c2])]
        };
        let mut tensors = vec![
            ("conv1.weight", vec![c1, 1, 4, 4]),
            ("conv1.bias", vec![c1]),
            ("conv2.weight", vec![c2, c1, 4, 4]),
        ];
        tensors.extend(middle);
        if self.dense > 0 {
            tensors.push(("dense.weight", vec![self.dense, c2 * SEED_PIXELS]));
            tensors.push(("dense.bias", vec![self.dense]));
        }
        tensors.push(("fc.weight", vec![1, self.fc_inputs()]));
        tensors.push(("fc.bias", vec![1]));
        if self.classes > 0 {
            tensors.push(("embed.weight", vec![self.classes, self.fc_inputs()]));
        }
        slots(&tensors)
    }
}

/// A DCGAN's two networks.
#[derive(Debug, Clone, PartialEq)]
pub struct Dcgan {
    pub generator: ConvGenerator,
    pub discriminator: ConvDiscriminator,
}

impl Dcgan {
    pub fn zeros(cfg: &TrainConfig, shape: &DcganShape) -> Dcgan {
        let m = &cfg.model;
        let mut generator = ConvGenerator::zeros(
            m.noise_dim,
            m.classes,
            shape.g_channels,
            m.g_act,
            m.g_output,
        );
        generator.label_counts.clone_from(&m.label_counts);
        Dcgan {
            generator,
            discriminator: ConvDiscriminator::zeros(
                shape.d_channels,
                m.d_act,
                shape.d_batch_norm,
                shape.d_dense,
                m.classes,
            ),
        }
    }

    /// Initial weights from `rng` (the run's init stream), G's first, each network's in
    /// buffer order: weights N(0, init_std), batch normalisation's scales 1, biases 0.
    pub fn init(cfg: &TrainConfig, shape: &DcganShape, rng: &mut impl Rng) -> Dcgan {
        let mut gan = Dcgan::zeros(cfg, shape);
        let std = cfg.model.init_std;
        let g = &mut gan.generator;
        init_params(&g.slots(), &mut g.params, std, rng);
        let d = &mut gan.discriminator;
        init_params(&d.slots(), &mut d.params, std, rng);
        gan
    }
}

/// D's buffers for `2B` images (G's step uses the first `B` of each).
struct DBuffers {
    /// After the first convolution and the activation.
    e1: Vec<f32>,
    /// The second convolution's output, before batch normalisation.
    h2: Vec<f32>,
    /// After batch normalisation and the activation.
    e2: Vec<f32>,
    /// Each half's batch statistics, `2 x C2`.
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    logits: Vec<f32>,
    dl: Vec<f32>,
    /// Gradients at `e2` (then at the normalisation's output), at `h2` and at `e1`.
    de2: Vec<f32>,
    dh2: Vec<f32>,
    de1: Vec<f32>,
    /// Where G's step puts the normalisation's parameter gradients it does not need.
    unused: Vec<f32>,
    /// The normalisation's backward pass's working memory (`2 x C2`).
    bn_work: Vec<f32>,
    /// The dense layer's activations (`2B x H`), the gradient at them, and its weight
    /// gradient before it is added to D's (all empty without the layer).
    e3: Vec<f32>,
    de3: Vec<f32>,
    d_dense: Vec<f32>,
    dropout: DropoutMasks,
}

/// D's dropout masks after each activation (`model.d_dropout`; empty without): 0 for a
/// dropped unit, `1 / keep` for a kept one, `2B` rows in D's update, the first `B` redrawn
/// for G's.
struct DropoutMasks {
    layers: [Vec<f32>; 2],
    /// The probability of dropping a unit.
    drop: f32,
}

impl DropoutMasks {
    /// Masks for `rows` images of D's layers `widths` units wide, if `drop > 0`.
    fn new(drop: f32, rows: usize, widths: [usize; 2]) -> DropoutMasks {
        let len = |w: usize| if drop > 0.0 { rows * w } else { 0 };
        DropoutMasks {
            layers: widths.map(|w| vec![0.0; len(w)]),
            drop,
        }
    }

    /// The masks of `n` rows of each layer (none without dropout).
    fn of_rows(&self, n: usize, widths: [usize; 2]) -> [Mask<'_>; 2] {
        let keep = 1.0 - self.drop;
        let [m1, m2] = &self.layers;
        if m1.is_empty() {
            return [None, None];
        }
        [
            Some((&m1[..n * widths[0]], keep)),
            Some((&m2[..n * widths[1]], keep)),
        ]
    }

    /// Fresh masks for the first `n` rows of each layer (nothing without dropout): from
    /// `rng`, or copied from `given` (layer 1's rows, then layer 2's).
    fn draw(&mut self, n: usize, widths: [usize; 2], rng: &mut ChaCha8Rng, given: Option<&[f32]>) {
        if self.layers[0].is_empty() {
            return;
        }
        let mut given = given;
        for (mask, w) in self.layers.iter_mut().zip(widths) {
            let mask = &mut mask[..n * w];
            match given {
                Some(g) => {
                    let (this, rest) = g.split_at(mask.len());
                    mask.copy_from_slice(this);
                    given = Some(rest);
                }
                None => draw_mask(mask, rng, self.drop),
            }
        }
    }
}

/// G's buffers for `B` images.
struct GBuffers {
    z: Vec<f32>,
    /// The linear layer's output (`B x C1 x 7 x 7`), then after normalisation and activation.
    h0: Vec<f32>,
    a0: Vec<f32>,
    h1: Vec<f32>,
    a1: Vec<f32>,
    mean0: Vec<f32>,
    inv_std0: Vec<f32>,
    mean1: Vec<f32>,
    inv_std1: Vec<f32>,
    /// Gradients at G's output pixels, at `a1`/`h1` and at `a0`/`h0`.
    dout: Vec<f32>,
    da1: Vec<f32>,
    dh1: Vec<f32>,
    da0: Vec<f32>,
    dh0: Vec<f32>,
    /// The normalisations' backward passes' working memory (`2 x max(C1, C2)`).
    bn_work: Vec<f32>,
}

impl GBuffers {
    /// G's buffers for `b` images.
    fn new(b: usize, g: &ConvGenerator) -> GBuffers {
        let [g1, g2] = g.channels;
        let zeros = |n: usize| vec![0.0f32; n];
        GBuffers {
            z: zeros(b * g.input()),
            h0: zeros(b * g1 * SEED_PIXELS),
            a0: zeros(b * g1 * SEED_PIXELS),
            h1: zeros(b * g2 * MID_PIXELS),
            a1: zeros(b * g2 * MID_PIXELS),
            mean0: zeros(g1),
            inv_std0: zeros(g1),
            mean1: zeros(g2),
            inv_std1: zeros(g2),
            dout: zeros(b * IMAGE_PIXELS),
            da1: zeros(b * g2 * MID_PIXELS),
            dh1: zeros(b * g2 * MID_PIXELS),
            da0: zeros(b * g1 * SEED_PIXELS),
            dh0: zeros(b * g1 * SEED_PIXELS),
            bn_work: zeros(2 * g1.max(g2)),
        }
    }
}

/// A DCGAN's whole training state plus the buffers its step works in.
pub struct DcganTrainer {
    cfg: TrainConfig,
    gan: Dcgan,
    adam_g: Adam,
    adam_d: Adam,
    noise: ChaCha8Rng,
    /// Draws D's dropout masks (untouched without dropout).
    dropout: ChaCha8Rng,
    /// How G's labels are drawn (a conditional GAN's).
    label_odds: LabelOdds,
    /// The run's seed, for the averaged G's statistics ([`DcganTrainer::sampling_generator`]).
    seed: u64,
    ema: Option<Vec<f32>>,
    steps_done: u64,
    /// D's input: `B` real images, then `B` of G's (G writes straight into them).
    inp: Vec<f32>,
    /// The labels of D's input rows: the real batch's, then those G was asked for (only a
    /// conditional GAN reads them).
    labels: Vec<u8>,
    d: DBuffers,
    g: GBuffers,
    grad_d: Vec<f32>,
    grad_g: Vec<f32>,
    scratch: Scratch,
}

/// Everything needed to continue a DCGAN's training exactly where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct DcganState {
    /// Both networks, G's running statistics included.
    pub gan: Dcgan,
    pub adam_g: Adam,
    pub adam_d: Adam,
    /// Word position of the noise stream.
    pub noise_pos: u128,
    /// Word position of the dropout stream (0 without dropout).
    pub dropout_pos: u128,
    /// The moving average of G's parameters (with `g_ema`), laid out like them.
    pub g_ema: Option<Vec<f32>>,
    pub steps_done: u64,
}

impl DcganState {
    /// Whether these networks are the ones `cfg` describes (see
    /// [`crate::TrainerState::check_fits`]).
    pub fn check_fits(&self, cfg: &TrainConfig) -> Result<(), String> {
        let have = crate::ModelConfig::of_dcgan(&self.gan);
        if !have.same_networks(&cfg.model) {
            return Err(format!(
                "it holds {}, but the spec says {}",
                have.describe(),
                cfg.model.describe()
            ));
        }
        have.same_label_counts(&cfg.model)?;
        crate::mlp::step::check_average_fits(self.g_ema.is_some(), cfg)
    }
}

impl DcganTrainer {
    /// A fresh run of the DCGAN `cfg.model.arch` describes: weights from the seed's init
    /// stream, noise from its noise stream.
    pub fn new(cfg: TrainConfig, seed: u64) -> DcganTrainer {
        let crate::Arch::Dcgan(shape) = &cfg.model.arch else {
            panic!("DcganTrainer::new needs model.arch = dcgan");
        };
        let gan = Dcgan::init(&cfg, shape, &mut stream(seed, Stream::Init));
        DcganTrainer::from_parts(cfg, gan, seed)
    }

    /// Continues from a saved state; `seed` must be the run's seed, and the state must fit
    /// `cfg` ([`DcganState::check_fits`]).
    pub fn restore(cfg: TrainConfig, seed: u64, state: DcganState) -> DcganTrainer {
        let (adam_g, adam_d) = (cfg.adam_g(), cfg.adam_d());
        let mut t = DcganTrainer::from_parts(cfg, state.gan, seed);
        t.adam_g = state.adam_g;
        t.adam_d = state.adam_d;
        t.adam_g.cfg = adam_g;
        t.adam_d.cfg = adam_d;
        t.noise.set_word_pos(state.noise_pos);
        t.dropout.set_word_pos(state.dropout_pos);
        if let (Some(ema), Some(params)) = (t.ema.as_mut(), state.g_ema) {
            *ema = params;
        }
        t.steps_done = state.steps_done;
        t
    }

    pub fn state(&self) -> DcganState {
        DcganState {
            gan: self.gan.clone(),
            adam_g: self.adam_g.clone(),
            adam_d: self.adam_d.clone(),
            noise_pos: self.noise.get_word_pos(),
            dropout_pos: self.dropout.get_word_pos(),
            g_ema: self.ema.clone(),
            steps_done: self.steps_done,
        }
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The networks to save as the run's model: D and [`DcganTrainer::sampling_generator`].
    pub fn model_to_save(&self) -> Dcgan {
        Dcgan {
            generator: self.sampling_generator(),
            discriminator: self.gan.discriminator.clone(),
        }
    }

    /// Starts training from given networks (fresh optimiser state).
    pub fn from_parts(cfg: TrainConfig, gan: Dcgan, seed: u64) -> DcganTrainer {
        assert!(cfg.batch_size > 0, "batch size must be positive");
        assert!(cfg.d_steps > 0, "at least one D update per step");
        let drop_p = cfg.model.d_dropout;
        assert!(
            (0.0..1.0).contains(&drop_p),
            "dropout probability in [0, 1)"
        );
        let b = cfg.batch_size;
        let [g1, g2] = gan.generator.channels;
        let [d1, d2] = gan.discriminator.channels;
        let mut scratch = Scratch::default();
        let (s1, s2) = g_sides(b);
        scratch.reserve(&stride_2(g1, g2), &s1, true);
        scratch.reserve(&stride_2(g2, 1), &s2, true);
        let (s1, s2) = d_sides(2 * b);
        scratch.reserve(&stride_2(1, d1), &s1, false);
        scratch.reserve(&stride_2(d1, d2), &s2, false);
        let zeros = |n: usize| vec![0.0f32; n];
        let d = DBuffers {
            e1: zeros(2 * b * d1 * MID_PIXELS),
            h2: zeros(2 * b * d2 * SEED_PIXELS),
            e2: zeros(2 * b * d2 * SEED_PIXELS),
            mean: zeros(2 * d2),
            inv_std: zeros(2 * d2),
            logits: zeros(2 * b),
            dl: zeros(2 * b),
            de2: zeros(2 * b * d2 * SEED_PIXELS),
            dh2: zeros(2 * b * d2 * SEED_PIXELS),
            de1: zeros(2 * b * d1 * MID_PIXELS),
            unused: zeros(2 * d2),
            bn_work: zeros(2 * d2),
            e3: zeros(2 * b * gan.discriminator.dense),
            de3: zeros(2 * b * gan.discriminator.dense),
            d_dense: zeros(gan.discriminator.lens()[5]),
            dropout: DropoutMasks::new(drop_p, 2 * b, gan.discriminator.widths()),
        };
        let g = GBuffers::new(b, &gan.generator);
        DcganTrainer {
            adam_g: Adam::new(cfg.adam_g(), gan.generator.params.len()),
            adam_d: Adam::new(cfg.adam_d(), gan.discriminator.params.len()),
            noise: stream(seed, Stream::Noise),
            dropout: stream(seed, Stream::Dropout),
            label_odds: LabelOdds::new(&gan.generator.label_counts),
            seed,
            ema: cfg.g_ema.map(|_| gan.generator.params.clone()),
            steps_done: 0,
            inp: zeros(2 * b * IMAGE_PIXELS),
            labels: vec![0; 2 * b],
            grad_d: zeros(gan.discriminator.params.len()),
            grad_g: zeros(gan.generator.params.len()),
            d,
            g,
            scratch,
            cfg,
            gan,
        }
    }

    pub fn gan(&self) -> &Dcgan {
        &self.gan
    }

    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// The generator to sample from: with `g_ema`, G with the moving average of its weights
    /// and batch-normalisation statistics of its own ([`average_generator`]), G itself
    /// otherwise.
    pub fn sampling_generator(&self) -> ConvGenerator {
        match &self.ema {
            Some(ema) => {
                average_generator(&self.gan.generator, ema, self.cfg.batch_size, self.seed)
            }
            None => self.gan.generator.clone(),
        }
    }

    /// The buffer the next step reads its real images from (`batch_size x 784`, [0, 1]).
    pub fn real_batch_mut(&mut self) -> &mut [f32] {
        &mut self.inp[..self.cfg.batch_size * IMAGE_PIXELS]
    }

    /// The gradients of the last step's minimised losses, laid out like the parameters:
    /// `(generator, discriminator)`.
    pub fn last_gradients(&self) -> (&[f32], &[f32]) {
        (&self.grad_g, &self.grad_d)
    }

    /// G's input in the last step (`batch_size x (noise_dim + classes)`: the noise, then a
    /// conditional G's one-hot label).
    pub fn last_noise(&self) -> &[f32] {
        &self.g.z
    }

    /// One step whose real batches `fill_real` writes (`batch_size x 784` in [0, 1], and the
    /// labels), once before each D update.
    pub fn step_with(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        self.step_inner(fill_real, None, None)
    }

    /// One step with the given noise (`batch_size` rows of G's input for each D update; a
    /// conditional G's rows end in the label one-hot, which is the label D sees with the
    /// image) instead of the noise stream's: for replaying another program's inputs, as the
    /// oracle tests do.
    pub fn step_with_noise(
        &mut self,
        noise: &[f32],
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        self.step_inner(fill_real, Some(noise), None)
    }

    /// [`DcganTrainer::step_with_noise`] with D's dropout masks given too (0 for a dropped
    /// unit, `1 / (1 - d_dropout)` for a kept one) in the order the step draws them: for
    /// each D update the `2B` rows of D's first layer (`C1 x 14 x 14` each), then the `2B`
    /// of its second (`C2 x 7 x 7`); then the `B` rows of each for G's update.
    pub fn step_with_noise_and_masks(
        &mut self,
        noise: &[f32],
        masks: &[f32],
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        let per_row: usize = self.gan.discriminator.widths().iter().sum();
        let rows = (2 * self.cfg.d_steps + 1) * self.cfg.batch_size;
        assert!(
            self.cfg.model.d_dropout > 0.0,
            "masks need model.d_dropout > 0"
        );
        assert_eq!(masks.len(), rows * per_row, "one mask per unit and row");
        self.step_inner(fill_real, Some(noise), Some(masks))
    }

    fn step_inner(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
        noise: Option<&[f32]>,
        masks: Option<&[f32]>,
    ) -> Result<StepStats, TrainError> {
        let step = self.steps_done + 1;
        let k = self.cfg.d_steps;
        let per_update = self.g.z.len();
        let d_masks =
            2 * self.cfg.batch_size * self.gan.discriminator.widths().iter().sum::<usize>();
        let mut sums = [0.0f64; 3];
        for i in 0..k {
            let z = noise.map(|n| &n[i * per_update..(i + 1) * per_update]);
            let m = masks.map(|m| &m[i * d_masks..(i + 1) * d_masks]);
            let (loss, real, fake) = self.d_step(step, fill_real, z, m)?;
            for (s, v) in sums.iter_mut().zip([loss, real, fake]) {
                *s += v as f64;
            }
        }
        let [d_loss, d_real, d_fake] = sums.map(|s| (s / k as f64) as f32);
        let g_loss = self.g_step(step, masks.map(|m| &m[k * d_masks..]))?;
        if let (Some(ema), Some(decay)) = (self.ema.as_mut(), self.cfg.g_ema) {
            update_average(ema, &self.gan.generator.params, decay);
        }
        self.steps_done = step;
        Ok(StepStats {
            d_loss,
            g_loss,
            d_real,
            d_fake,
        })
    }

    fn d_step(
        &mut self,
        step: u64,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
        given_noise: Option<&[f32]>,
        given_masks: Option<&[f32]>,
    ) -> Result<(f32, f32, f32), TrainError> {
        let b = self.cfg.batch_size;
        let (real, fake) = self.inp.split_at_mut(b * IMAGE_PIXELS);
        let (g, gbuf, noise) = (&mut self.gan.generator, &mut self.g, &mut self.noise);
        let odds = &self.label_odds;
        let (real_labels, fake_labels) = self.labels.split_at_mut(b);
        let tanh = g.output == Output::Tanh;
        let scratch = &mut self.scratch;
        let (masks, dropout) = (&mut self.d.dropout, &mut self.dropout);
        let widths = self.gan.discriminator.widths();
        // G's forward pass beside the real batch's gather, which does not depend on it.
        rayon::join(
            || {
                match given_noise {
                    Some(z) => {
                        gbuf.z.copy_from_slice(z);
                        labels_of_one_hot(z, g.classes, fake_labels);
                    }
                    None => draw_input(&mut gbuf.z, g.input(), fake_labels, g.classes, odds, noise),
                }
                generator_forward(g, gbuf, fake, scratch, BN_MOMENTUM);
            },
            || {
                masks.draw(2 * b, widths, dropout, given_masks);
                fill_real(real, real_labels);
                if tanh {
                    // A tanh generator draws on [-1, 1]: so do the real images it faces.
                    for v in real.iter_mut() {
                        *v = 2.0 * *v - 1.0;
                    }
                }
            },
        );
        let d = &self.gan.discriminator;
        let labels = &self.labels;
        discriminator_forward(
            d,
            &self.inp,
            2 * b,
            2,
            labels,
            &mut self.d,
            &mut self.scratch,
        );
        let sums = crate::loss::discriminator(
            self.cfg.loss,
            self.cfg.real_target,
            &self.d.logits,
            &mut self.d.dl,
        );
        let d_loss = (-(sums.loss_real + sums.loss_fake) / b as f64) as f32;
        check_finite(step, "d_loss", d_loss)?;
        self.grad_d.fill(0.0);
        discriminator_backward(
            d,
            &self.inp,
            2 * b,
            2,
            labels,
            &mut self.d,
            Some(&mut self.grad_d),
            None,
            &mut self.scratch,
        );
        self.adam_d
            .update(&mut self.gan.discriminator.params, &self.grad_d);
        Ok((
            d_loss,
            (sums.d_real / b as f64) as f32,
            (sums.d_fake / b as f64) as f32,
        ))
    }

    fn g_step(&mut self, step: u64, given_masks: Option<&[f32]>) -> Result<f32, TrainError> {
        let b = self.cfg.batch_size;
        let d = &self.gan.discriminator;
        let fake = &self.inp[b * IMAGE_PIXELS..];
        self.d
            .dropout
            .draw(b, d.widths(), &mut self.dropout, given_masks);
        // G has not changed since the D update: its output and layers are reused, and only D
        // runs again, on the fake images alone.
        let labels = &self.labels[b..];
        discriminator_forward(d, fake, b, 1, labels, &mut self.d, &mut self.scratch);
        let objective =
            crate::loss::generator(self.cfg.loss, &self.d.logits[..b], &mut self.d.dl[..b]);
        let g_loss = (objective / b as f64) as f32;
        check_finite(step, "g_loss", g_loss)?;
        discriminator_backward(
            d,
            fake,
            b,
            1,
            labels,
            &mut self.d,
            None,
            Some(&mut self.g.dout),
            &mut self.scratch,
        );
        self.grad_g.fill(0.0);
        generator_backward(
            &self.gan.generator,
            fake,
            &mut self.g,
            &mut self.grad_g,
            &mut self.scratch,
        );
        self.adam_g
            .update(&mut self.gan.generator.params, &self.grad_g);
        Ok(g_loss)
    }
}

/// The labels a conditional G's given input rows ask for (where each row's one-hot part is
/// largest); nothing for an unconditional G.
fn labels_of_one_hot(z: &[f32], classes: usize, labels: &mut [u8]) {
    if classes == 0 {
        return;
    }
    let width = z.len() / labels.len();
    for (row, label) in z.chunks_exact(width).zip(labels.iter_mut()) {
        let one_hot = &row[width - classes..];
        let best = (0..classes).fold(0, |b, c| if one_hot[c] > one_hot[b] { c } else { b });
        *label = best as u8;
    }
}

/// G in training mode: batch statistics (updating the running ones), output into `out`.
fn generator_forward(
    g: &mut ConvGenerator,
    buf: &mut GBuffers,
    out: &mut [f32],
    scratch: &mut Scratch,
    momentum: f32,
) {
    let [c1, c2] = g.channels;
    let input = g.input();
    let n = buf.z.len() / input;
    let lens = g.lens();
    let [fc, g0, b0, up1, g1, b1, up2, bias2] = split_ref(&g.params, lens);
    let [m0, v0, m1, v1] = split(&mut g.running, [c1, c1, c2, c2]);
    matmul(
        &mut buf.h0,
        View::rows(&buf.z, n, input),
        View::transposed(fc, c1 * SEED_PIXELS, input),
        Split::Cols(2),
    );
    conv::batch_norm_forward(
        (n, c1, SEED_PIXELS),
        &buf.h0,
        g0,
        b0,
        BN_EPS,
        &mut buf.a0,
        &mut buf.mean0,
        &mut buf.inv_std0,
        Some(Running {
            mean: m0,
            var: v0,
            momentum,
        }),
    );
    activate(&mut buf.a0, g.act);
    let (sides1, sides2) = g_sides(n);
    conv::conv_transposed_forward(
        &stride_2(c1, c2),
        &sides1,
        &buf.a0,
        up1,
        None,
        &mut buf.h1,
        scratch,
    );
    conv::batch_norm_forward(
        (n, c2, MID_PIXELS),
        &buf.h1,
        g1,
        b1,
        BN_EPS,
        &mut buf.a1,
        &mut buf.mean1,
        &mut buf.inv_std1,
        Some(Running {
            mean: m1,
            var: v1,
            momentum,
        }),
    );
    activate(&mut buf.a1, g.act);
    conv::conv_transposed_forward(
        &stride_2(c2, 1),
        &sides2,
        &buf.a1,
        up2,
        Some(bias2),
        out,
        scratch,
    );
    in_halves(out, |out| output_activation(out, g.output));
}

/// G's backward pass from `buf.dout` (the gradient at its output pixels `out`): adds every
/// parameter gradient to `grad`.
fn generator_backward(
    g: &ConvGenerator,
    out: &[f32],
    buf: &mut GBuffers,
    grad: &mut [f32],
    scratch: &mut Scratch,
) {
    let [c1, c2] = g.channels;
    let n = buf.z.len() / g.input();
    let lens = g.lens();
    let [_, g0, _, up1, g1, _, up2, _] = split_ref(&g.params, lens);
    let [d_fc, d_g0, d_b0, d_up1, d_g1, d_b1, d_up2, d_bias2] = split(grad, lens);
    match g.output {
        Output::Sigmoid => {
            for (d, &y) in buf.dout.iter_mut().zip(out) {
                *d *= y * (1.0 - y);
            }
        }
        Output::Tanh => {
            for (d, &y) in buf.dout.iter_mut().zip(out) {
                *d *= 1.0 - y * y;
            }
        }
        Output::Identity => {}
    }
    let (sides1, sides2) = g_sides(n);
    conv::conv_transposed_backward(
        &stride_2(c2, 1),
        &sides2,
        &buf.a1,
        up2,
        &buf.dout,
        Some(Grads {
            weight: d_up2,
            bias: Some(d_bias2),
        }),
        Some(&mut buf.da1),
        scratch,
    );
    scale_by_derivative(&mut buf.da1, &buf.a1, g.act);
    conv::batch_norm_backward(
        (n, c2, MID_PIXELS),
        &buf.h1,
        g1,
        &buf.mean1,
        &buf.inv_std1,
        &buf.da1,
        d_g1,
        d_b1,
        &mut buf.dh1,
        &mut buf.bn_work,
    );
    conv::conv_transposed_backward(
        &stride_2(c1, c2),
        &sides1,
        &buf.a0,
        up1,
        &buf.dh1,
        Some(Grads {
            weight: d_up1,
            bias: None,
        }),
        Some(&mut buf.da0),
        scratch,
    );
    scale_by_derivative(&mut buf.da0, &buf.a0, g.act);
    conv::batch_norm_backward(
        (n, c1, SEED_PIXELS),
        &buf.h0,
        g0,
        &buf.mean0,
        &buf.inv_std0,
        &buf.da0,
        d_g0,
        d_b0,
        &mut buf.dh0,
        &mut buf.bn_work,
    );
    // fc.weight's gradient: dh0^T (C1*49 x n) * z (n x noise); the noise needs none.
    matmul(
        d_fc,
        View::transposed(&buf.dh0, n, c1 * SEED_PIXELS),
        View::rows(&buf.z, n, g.input()),
        Split::Cols(2),
    );
}

/// D over the `n` images of `x` (`n x 784`) in training mode, their batch statistics taken
/// over `halves` equal parts separately (real and fake), a conditional D's with their
/// `labels`; logits into `buf.logits[..n]`.
#[allow(clippy::too_many_arguments)]
fn discriminator_forward(
    d: &ConvDiscriminator,
    x: &[f32],
    n: usize,
    halves: usize,
    labels: &[u8],
    buf: &mut DBuffers,
    scratch: &mut Scratch,
) {
    let [c1, c2] = d.channels;
    let [conv1, bias1, conv2, gamma, beta, dense, dense_bias, fc, fc_bias, embed] =
        split_ref(&d.params, d.lens());
    let (sides1, sides2) = d_sides(n);
    let (e1, h2, e2) = (
        &mut buf.e1[..n * c1 * MID_PIXELS],
        &mut buf.h2[..n * c2 * SEED_PIXELS],
        &mut buf.e2[..n * c2 * SEED_PIXELS],
    );
    conv::conv_forward(
        &stride_2(1, c1),
        &sides1,
        x,
        conv1,
        Some(bias1),
        e1,
        scratch,
    );
    activate(e1, d.act);
    let [mask1, mask2] = buf.dropout.of_rows(n, d.widths());
    if let Some((mask, _)) = mask1 {
        apply_mask(e1, mask);
    }
    if !d.batch_norm {
        let bias2 = gamma;
        conv::conv_forward(
            &stride_2(c1, c2),
            &sides2,
            e1,
            conv2,
            Some(bias2),
            e2,
            scratch,
        );
    } else {
        conv::conv_forward(&stride_2(c1, c2), &sides2, e1, conv2, None, h2, scratch);
        let per_half = n / halves;
        let part = per_half * c2 * SEED_PIXELS;
        for (h, (x, y)) in h2
            .chunks_exact(part)
            .zip(e2.chunks_exact_mut(part))
            .enumerate()
        {
            conv::batch_norm_forward(
                (per_half, c2, SEED_PIXELS),
                x,
                gamma,
                beta,
                BN_EPS,
                y,
                &mut buf.mean[h * c2..(h + 1) * c2],
                &mut buf.inv_std[h * c2..(h + 1) * c2],
                None,
            );
        }
    }
    activate(e2, d.act);
    if let Some((mask, _)) = mask2 {
        apply_mask(e2, mask);
    }
    let features: &[f32] = if d.dense > 0 {
        let (h, width) = (d.dense, d.conv_features());
        let e3 = &mut buf.e3[..n * h];
        kernels::matmul(
            e3,
            View::rows(e2, n, width),
            View::transposed(dense, h, width),
            Split::Cols(2),
        );
        kernels::bias_activation(e3, dense_bias, d.act);
        e3
    } else {
        e2
    };
    kernels::rows_dot(&mut buf.logits[..n], features, fc, fc_bias[0]);
    if d.classes > 0 {
        let w = d.fc_inputs();
        let rows = features.chunks_exact(w).zip(&labels[..n]);
        for (logit, (row, &y)) in buf.logits[..n].iter_mut().zip(rows) {
            *logit += kernels::dot(row, class_row(embed, w, y));
        }
    }
}

/// A conditional D's embedding row for digit `y` (`w` wide): the extra logit weights of
/// that digit's images.
fn class_row(embed: &[f32], w: usize, y: u8) -> &[f32] {
    &embed[y as usize * w..][..w]
}

/// D's backward pass from `buf.dl[..n]` after [`discriminator_forward`] on the same images:
/// adds its parameter gradients to `grad` if given, writes the gradient at its input pixels
/// into `dx` if given.
#[allow(clippy::too_many_arguments)]
fn discriminator_backward(
    d: &ConvDiscriminator,
    x: &[f32],
    n: usize,
    halves: usize,
    labels: &[u8],
    buf: &mut DBuffers,
    grad: Option<&mut [f32]>,
    dx: Option<&mut [f32]>,
    scratch: &mut Scratch,
) {
    let [c1, c2] = d.channels;
    let lens = d.lens();
    let [_, _, conv2, gamma, _, dense, _, fc, _, embed] = split_ref(&d.params, lens);
    let (sides1, sides2) = d_sides(n);
    let width = c2 * SEED_PIXELS;
    let (e1, h2, e2) = (
        &buf.e1[..n * c1 * MID_PIXELS],
        &buf.h2[..n * width],
        &buf.e2[..n * width],
    );
    let (de2, dh2, de1) = (
        &mut buf.de2[..n * width],
        &mut buf.dh2[..n * width],
        &mut buf.de1[..n * c1 * MID_PIXELS],
    );
    let dl = &buf.dl[..n];
    let mut grads = grad.map(|g| split(g, lens));
    // The logit's input: the dense layer's activations, or the conv features.
    let h = d.dense;
    let (features, d_features) = if h > 0 {
        (&buf.e3[..n * h], &mut buf.de3[..n * h])
    } else {
        (e2, &mut *de2)
    };
    let fc_width = d.fc_inputs();
    // A conditional D's logit weights of image i are `fc + embed[label i]`.
    for (i, (row, &g)) in d_features.chunks_exact_mut(fc_width).zip(dl).enumerate() {
        for (o, &w) in row.iter_mut().zip(fc) {
            *o = g * w;
        }
        if d.classes > 0 {
            for (o, &e) in row.iter_mut().zip(class_row(embed, fc_width, labels[i])) {
                *o += g * e;
            }
        }
    }
    if let Some([.., d_fc, d_fc_bias, d_embed]) = grads.as_mut() {
        for (i, (row, &g)) in features.chunks_exact(fc_width).zip(dl).enumerate() {
            for (o, &a) in d_fc.iter_mut().zip(row) {
                *o += g * a;
            }
            if d.classes > 0 {
                let y = labels[i] as usize;
                for (o, &a) in d_embed[y * fc_width..][..fc_width].iter_mut().zip(row) {
                    *o += g * a;
                }
            }
        }
        d_fc_bias[0] += dl.iter().sum::<f32>();
    }
    if h > 0 {
        let (e3, de3) = (&buf.e3[..n * h], &mut buf.de3[..n * h]);
        scale_masked_in_halves(de3, e3, d.act, None);
        if let Some([.., d_dense, d_dense_bias, _, _, _]) = grads.as_mut() {
            // dW = de3^T e2 in column blocks of a buffer (a fixed cut), then added.
            kernels::matmul(
                &mut buf.d_dense,
                View::transposed(de3, n, h),
                View::rows(e2, n, width),
                Split::Cols(2),
            );
            for (g, &v) in d_dense.iter_mut().zip(&buf.d_dense) {
                *g += v;
            }
            for row in de3.chunks_exact(h) {
                for (g, &v) in d_dense_bias.iter_mut().zip(row) {
                    *g += v;
                }
            }
        }
        kernels::matmul(
            de2,
            View::rows(de3, n, h),
            View::rows(dense, h, width),
            Split::Cols(2),
        );
    }
    let [mask1, mask2] = buf.dropout.of_rows(n, d.widths());
    scale_masked_in_halves(de2, e2, d.act, mask2);
    let per_half = n / halves;
    let part = per_half * width;
    for h in (0..halves).filter(|_| d.batch_norm) {
        let range = h * part..(h + 1) * part;
        let (d_gamma, d_beta) = match grads.as_mut() {
            Some([_, _, _, d_gamma, d_beta, ..]) => (&mut **d_gamma, &mut **d_beta),
            None => buf.unused.split_at_mut(c2),
        };
        conv::batch_norm_backward(
            (per_half, c2, SEED_PIXELS),
            &h2[range.clone()],
            gamma,
            &buf.mean[h * c2..(h + 1) * c2],
            &buf.inv_std[h * c2..(h + 1) * c2],
            &de2[range.clone()],
            d_gamma,
            d_beta,
            &mut dh2[range],
            &mut buf.bn_work,
        );
    }
    let (conv1_grads, conv2_grads) = match grads {
        Some([d_conv1, d_bias1, d_conv2, d_bias2, ..]) => (
            Some(Grads {
                weight: d_conv1,
                bias: Some(d_bias1),
            }),
            Some(Grads {
                weight: d_conv2,
                bias: (!d.batch_norm).then_some(d_bias2),
            }),
        ),
        None => (None, None),
    };
    // Without batch normalisation the gradient at the convolution's output is `de2`.
    let dh2: &[f32] = if d.batch_norm { dh2 } else { de2 };
    conv::conv_backward(
        &stride_2(c1, c2),
        &sides2,
        e1,
        conv2,
        dh2,
        conv2_grads,
        Some(de1),
        scratch,
    );
    scale_masked_in_halves(de1, e1, d.act, mask1);
    if conv1_grads.is_some() || dx.is_some() {
        let conv1 = &d.params[..lens[0]];
        conv::conv_backward(
            &stride_2(1, c1),
            &sides1,
            x,
            conv1,
            de1,
            conv1_grads,
            dx,
            scratch,
        );
    }
}
