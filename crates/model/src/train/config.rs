//! The knobs of the networks and their training, for every architecture, with the
//! tutorial's values as defaults.

use crate::layers::activation::{Activation, Output};
use crate::loss::Loss;
use crate::optim::adam::AdamConfig;

/// Pixels of one MNIST image, the generator's output and the discriminator's input.
pub const IMAGE_PIXELS: usize = 28 * 28;

/// The two networks' shapes and initialisation, with the tutorial's as the default.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Length of the noise vector z (tutorial: 128).
    pub noise_dim: usize,
    /// Widths of G's hidden layers, input side first (tutorial: `[256]`; empty: no hidden layer).
    pub g_hidden: Vec<usize>,
    /// Widths of D's hidden layers (tutorial: `[256]`).
    pub d_hidden: Vec<usize>,
    /// G's hidden nonlinearity (tutorial: ReLU).
    pub g_act: Activation,
    /// D's hidden nonlinearity (tutorial: ReLU).
    pub d_act: Activation,
    /// G's output: sigmoid pixels in [0, 1] (tutorial) or tanh pixels in [-1, 1].
    pub g_output: Output,
    /// Standard deviation of the normal weight initialisation; biases start at zero (tutorial: 0.01).
    pub init_std: f32,
    /// Probability that each of D's hidden units is dropped in a training pass (tutorial: 0,
    /// none). Kept units are scaled by `1 / (1 - p)` (inverted dropout), so D needs no
    /// rescaling outside training.
    pub d_dropout: f32,
    /// A conditional GAN's classes (0: unconditional, the tutorial). Both networks get the
    /// label as a one-hot vector after their usual input (Mirza and Osindero 2014).
    pub classes: usize,
    /// How often G is asked for each class, in proportion: the sizes of the training images'
    /// k-means clusters when a GAN is conditioned on them (self-conditioning, `classes` of
    /// them). Empty: every class equally often (digits).
    pub label_counts: Vec<u32>,
    /// Perceptrons (the tutorial's family: `g_hidden`, `d_hidden`, dropout, labels) or a
    /// DCGAN (`noise_dim`, the activations, `g_output` and `init_std` apply to both).
    pub arch: Arch,
}

/// The networks' kind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Arch {
    /// Multi-layer perceptrons ([`crate::mlp::networks::Mlp`]), the tutorial's.
    #[default]
    Mlp,
    /// Convolutional networks ([`crate::dcgan`]) of these widths.
    Dcgan(DcganShape),
}

impl Arch {
    /// As a spec and a checkpoint name it: `mlp`, `dcgan`.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::Dcgan(_) => "dcgan",
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            noise_dim: 128,
            g_hidden: vec![256],
            d_hidden: vec![256],
            g_act: Activation::Relu,
            d_act: Activation::Relu,
            g_output: Output::Sigmoid,
            init_std: 0.01,
            d_dropout: 0.0,
            classes: 0,
            label_counts: Vec::new(),
            arch: Arch::Mlp,
        }
    }
}

impl ModelConfig {
    /// `[noise_dim + classes, g_hidden..., 784]`
    pub fn generator_sizes(&self) -> Vec<usize> {
        [
            &[self.noise_dim + self.classes][..],
            &self.g_hidden,
            &[IMAGE_PIXELS],
        ]
        .concat()
    }

    /// `[784 + classes, d_hidden..., 1]`
    pub fn discriminator_sizes(&self) -> Vec<usize> {
        [&[IMAGE_PIXELS + self.classes][..], &self.d_hidden, &[1]].concat()
    }

    /// What a checkpoint's networks must agree with: the shapes and nonlinearities (not the
    /// initialisation or dropout, which only shape training), in words.
    pub fn describe(&self) -> String {
        let conditional = if !self.label_counts.is_empty() {
            format!("{} clusters (self-conditioned), ", self.classes)
        } else if self.classes > 0 {
            format!("{} classes (conditional), ", self.classes)
        } else {
            String::new()
        };
        match &self.arch {
            Arch::Mlp => format!(
                "a model with {conditional}noise_dim {}, G hidden {:?} ({}, {} output), D hidden {:?} ({})",
                self.noise_dim,
                self.g_hidden,
                self.g_act.name(),
                self.g_output.name(),
                self.d_hidden,
                self.d_act.name()
            ),
            Arch::Dcgan(shape) => format!(
                "a DCGAN: {conditional}noise_dim {}, G channels {:?} ({}, {} output), D channels \
                 {:?} ({}{}{})",
                self.noise_dim,
                shape.g_channels,
                self.g_act.name(),
                self.g_output.name(),
                shape.d_channels,
                self.d_act.name(),
                if shape.d_batch_norm {
                    ", batch normalised"
                } else {
                    ", no batch normalisation"
                },
                if shape.d_dense > 0 {
                    format!(", a dense layer of {}", shape.d_dense)
                } else {
                    String::new()
                }
            ),
        }
    }

    /// Whether networks of `self` (read from a checkpoint) are those `want` describes.
    pub fn same_networks(&self, want: &ModelConfig) -> bool {
        let key = |m: &ModelConfig| {
            let mlp = matches!(m.arch, Arch::Mlp);
            (
                m.arch.clone(),
                m.noise_dim,
                m.g_act,
                m.d_act,
                m.g_output,
                m.classes,
                !m.label_counts.is_empty(),
                if mlp { m.g_hidden.clone() } else { Vec::new() },
                if mlp { m.d_hidden.clone() } else { Vec::new() },
            )
        };
        key(self) == key(want)
    }

    /// Whether networks of `self` (read from a checkpoint) were asked for their classes as
    /// often as `want` asks for them: a self-conditioned run's clusters must be the ones
    /// k-means finds again in the training images.
    pub fn same_label_counts(&self, want: &ModelConfig) -> Result<(), String> {
        if self.label_counts == want.label_counts {
            return Ok(());
        }
        let differ = self
            .label_counts
            .iter()
            .zip(&want.label_counts)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        Err(format!(
            "its cluster {differ} holds {} training images, but k-means of the training images \
             now puts {} there: the data (data.dir, data.limit) or the seed changed",
            self.label_counts.get(differ).copied().unwrap_or(0),
            want.label_counts.get(differ).copied().unwrap_or(0),
        ))
    }
}

/// A DCGAN's channel widths ([`crate::dcgan`]): G's feature maps at 7 x 7 and at 14 x 14,
/// D's at 14 x 14 and at 7 x 7 (PyTorch's DCGAN example at MNIST's size: `[128, 64]` and
/// `[64, 128]`), whether D normalises its second convolution (the example does), and the
/// units of a dense hidden layer between D's convolutions and its logit (0: none, as in the
/// example; InfoGAN's MNIST D has 1024).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DcganShape {
    pub g_channels: [usize; 2],
    pub d_channels: [usize; 2],
    pub d_batch_norm: bool,
    pub d_dense: usize,
}

impl Default for DcganShape {
    fn default() -> Self {
        DcganShape {
            g_channels: [128, 64],
            d_channels: [64, 128],
            d_batch_norm: true,
            d_dense: 0,
        }
    }
}

/// Everything one training step needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub batch_size: usize,
    pub loss: Loss,
    /// Adam for both networks; `lr_g` / `lr_d` override its learning rate for one of them.
    pub adam: AdamConfig,
    pub lr_g: Option<f32>,
    pub lr_d: Option<f32>,
    /// D updates per step, each on its own real batch and noise (Algorithm 1 of the GAN
    /// paper); G's update follows with the noise of the last (tutorial: 1).
    pub d_steps: usize,
    /// D's target for real images in the cross-entropy and least-squares losses: `1 - s` for
    /// one-sided label smoothing `s` (Salimans et al. 2016; tutorial: 1).
    pub real_target: f32,
    /// Decay of an exponential moving average of G's weights, updated after every G update
    /// and used for pictures, the saved model and evaluation (tutorial: none).
    pub g_ema: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: ModelConfig::default(),
            batch_size: 0,
            loss: Loss::default(),
            adam: AdamConfig::default(),
            lr_g: None,
            lr_d: None,
            d_steps: 1,
            real_target: 1.0,
            g_ema: None,
        }
    }
}

impl TrainConfig {
    /// The tutorial: batch 100, non-saturating G loss, Adam(0.0002).
    pub fn tutorial() -> Self {
        TrainConfig {
            batch_size: 100,
            ..Default::default()
        }
    }

    /// G's optimiser.
    pub fn adam_g(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr_g.unwrap_or(self.adam.lr),
            ..self.adam
        }
    }

    /// D's optimiser.
    pub fn adam_d(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr_d.unwrap_or(self.adam.lr),
            ..self.adam
        }
    }
}
