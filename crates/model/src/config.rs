//! The knobs of the model and its training, with the tutorial's values as defaults.

use crate::params::{Activation, Output};
use crate::IMAGE_PIXELS;

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
        }
    }
}

impl ModelConfig {
    /// `[noise_dim, g_hidden..., 784]`
    pub fn generator_sizes(&self) -> Vec<usize> {
        [&[self.noise_dim][..], &self.g_hidden, &[IMAGE_PIXELS]].concat()
    }

    /// `[784, d_hidden..., 1]`
    pub fn discriminator_sizes(&self) -> Vec<usize> {
        [&[IMAGE_PIXELS][..], &self.d_hidden, &[1]].concat()
    }

    /// The model of a pair of networks (for checkpoints read without their spec).
    pub fn of(gan: &crate::Gan) -> ModelConfig {
        let (g, d) = (&gan.generator, &gan.discriminator);
        ModelConfig {
            noise_dim: g.input(),
            g_hidden: g.sizes[1..g.sizes.len() - 1].to_vec(),
            d_hidden: d.sizes[1..d.sizes.len() - 1].to_vec(),
            g_act: g.hidden_act,
            d_act: d.hidden_act,
            g_output: g.output,
            init_std: ModelConfig::default().init_std,
        }
    }
}

/// Which objective the generator follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeneratorLoss {
    /// The tutorial's choice: maximise `mean(log D(G(z)))`.
    #[default]
    NonSaturating,
    /// The GAN paper's original form: minimise `mean(log(1 - D(G(z))))`.
    Minimax,
}

/// Adam with TensorFlow 1's update rule (`tf.train.AdamOptimizer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

impl Default for AdamConfig {
    /// The tutorial's learning rate with TensorFlow's default betas and epsilon.
    fn default() -> Self {
        AdamConfig {
            lr: 0.0002,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

/// Everything one training step needs to know.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub batch_size: usize,
    pub g_loss: GeneratorLoss,
    pub adam: AdamConfig,
}

impl TrainConfig {
    /// The tutorial: batch 100, non-saturating G loss, Adam(0.0002).
    pub fn tutorial() -> Self {
        TrainConfig {
            batch_size: 100,
            ..Default::default()
        }
    }
}
