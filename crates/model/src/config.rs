//! The knobs of the model and its training, with the tutorial's values as defaults.

/// Sizes and initialisation of the two networks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelConfig {
    /// Length of the noise vector z (tutorial: 128).
    pub noise_dim: usize,
    /// Width of the hidden layer of both networks (tutorial: 256).
    pub hidden: usize,
    /// Standard deviation of the normal weight initialisation; biases start at zero (tutorial: 0.01).
    pub init_std: f32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            noise_dim: 128,
            hidden: 256,
            init_std: 0.01,
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
#[derive(Debug, Clone, Copy, PartialEq, Default)]
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
