//! The DCGAN's networks (Radford, Metz and Chintala 2016) at MNIST's size, their parameter
//! buffers and sizes, built from [`crate::layers`]:
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
use rand_distr::{Distribution, Normal};

use crate::layers::activation::{Activation, Output};
use crate::layers::conv::{self, ConvShape, Sides};
use crate::layers::slots::{laid_end_to_end, ParamSlot};
use crate::optim::adam::AdamConfig;
use crate::train::config::{Arch, DcganShape, ModelConfig, TrainConfig, IMAGE_PIXELS};
use crate::train::step::Networks;

/// The side of G's first image (MNIST's 28 halved twice).
pub const SEED_SIDE: usize = 7;

pub(crate) const SEED_PIXELS: usize = SEED_SIDE * SEED_SIDE;

/// The side between the two stride-2 layers.
pub(crate) const MID_SIDE: usize = 14;

pub(crate) const MID_PIXELS: usize = MID_SIDE * MID_SIDE;

pub(crate) const IMAGE_SIDE: usize = 28;

/// PyTorch's DCGAN example at MNIST's size, as `tools/peers/gan_torch_dcgan.py` trains it:
/// noise 100, G 128-64 and D 64-128 channels, ReLU in G and LeakyReLU(0.2) in D, a tanh
/// output, weights from N(0, 0.02), Adam(2e-4, betas 0.5 and 0.999), batch 100.
pub fn pytorch_example() -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            noise_dim: 100,
            g_act: Activation::Relu,
            d_act: Activation::LeakyRelu(0.2),
            g_output: Output::Tanh,
            init_std: 0.02,
            arch: Arch::Dcgan(DcganShape::default()),
            ..ModelConfig::default()
        },
        adam: AdamConfig {
            beta1: 0.5,
            ..AdamConfig::default()
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

/// FLOPs of one step's products under `cfg` (a DCGAN of `shape`): per D update G's forward
/// pass, D's forward pass on `2B` images and its backward pass (weights, and the input
/// gradient of every layer but the first); then D's forward and backward passes to G's
/// output on `B` images and G's backward pass (weights, and the input gradient of every
/// layer but the first).
pub fn step_flops(cfg: &TrainConfig, shape: &DcganShape) -> f64 {
    let input = cfg.model.noise_dim + cfg.model.classes;
    let (g, d) = macs_per_image(input, shape, cfg.model.classes);
    let b = cfg.batch_size;
    let first_g = input * shape.g_channels[0] * SEED_PIXELS;
    let first_d = MID_PIXELS * 16 * shape.d_channels[0];
    let d_update = g * b + 3 * d * 2 * b - first_d * 2 * b;
    let g_update = 2 * d * b + 2 * g * b - first_g * b;
    2.0 * (cfg.d_steps * d_update + g_update) as f64
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
pub fn stride_2(in_ch: usize, out_ch: usize) -> ConvShape {
    ConvShape {
        in_ch,
        out_ch,
        kernel: 4,
        stride: 2,
        padding: 1,
    }
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
    /// Its odds of each class when sampled ([`ModelConfig::label_counts`]; empty:
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

    pub(crate) fn lens(&self) -> [usize; 8] {
        let [c1, c2] = self.channels;
        let up1 = stride_2(c1, c2).weight_len();
        let up2 = stride_2(c2, 1).weight_len();
        [c1 * SEED_PIXELS * self.input(), c1, c1, up1, c2, c2, up2, 1]
    }

    /// The tensors in buffer order, named like the PyTorch peer's modules.
    pub fn slots(&self) -> Vec<ParamSlot> {
        let [c1, c2] = self.channels;
        laid_end_to_end(&[
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
        laid_end_to_end(&[
            ("bn0.running_mean", vec![c1]),
            ("bn0.running_var", vec![c1]),
            ("bn1.running_mean", vec![c2]),
            ("bn1.running_var", vec![c2]),
        ])
    }
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
    pub(crate) fn widths(&self) -> [usize; 2] {
        [
            self.channels[0] * MID_PIXELS,
            self.channels[1] * SEED_PIXELS,
        ]
    }

    /// Features per image after the convolutions (the dense layer's or the logit's input).
    pub(crate) fn conv_features(&self) -> usize {
        self.channels[1] * SEED_PIXELS
    }

    /// The width of the logit's input: the dense layer's units, or the conv features.
    pub(crate) fn fc_inputs(&self) -> usize {
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
    pub(crate) fn lens(&self) -> [usize; 10] {
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
        laid_end_to_end(&tensors)
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

impl Networks for Dcgan {
    /// G's parameters (not its running statistics, which no optimiser updates), and D's.
    fn slots(&self) -> [Vec<ParamSlot>; 2] {
        [self.generator.slots(), self.discriminator.slots()]
    }

    fn params(&self) -> [&[f32]; 2] {
        [&self.generator.params, &self.discriminator.params]
    }

    /// The model config these networks are (for checkpoints read without their spec).
    fn config(&self) -> ModelConfig {
        let (g, d) = (&self.generator, &self.discriminator);
        ModelConfig {
            noise_dim: g.noise_dim,
            classes: g.classes,
            label_counts: g.label_counts.clone(),
            g_act: g.act,
            d_act: d.act,
            g_output: g.output,
            arch: Arch::Dcgan(DcganShape {
                g_channels: g.channels,
                d_channels: d.channels,
                d_batch_norm: d.batch_norm,
                d_dense: d.dense,
            }),
            ..ModelConfig::default()
        }
    }
}

/// The sides of G's two transposed convolutions over `n` images.
pub fn g_sides(n: usize) -> (Sides, Sides) {
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
pub fn d_sides(n: usize) -> (Sides, Sides) {
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
