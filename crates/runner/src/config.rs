//! A spec's model and training settings as the model crate's [`TrainConfig`], completed by
//! the data it trains on.

use gan_data::Split;
use gan_model::{Activation, AdamConfig, Arch, DcganShape, Loss, ModelConfig, Output, TrainConfig};
use gan_spec::{ActivationSpec, ArchSpec, GOutput, LossSpec, Spec};

use crate::data::{training_images, TrainingData};

/// The model and training settings a spec describes.
pub fn train_config(spec: &Spec) -> TrainConfig {
    TrainConfig {
        model: ModelConfig {
            noise_dim: spec.model.noise_dim,
            g_hidden: spec.model.g_widths(),
            d_hidden: spec.model.d_widths(),
            g_act: activation(spec.model.g_activation, spec.model.leaky_slope),
            d_act: activation(spec.model.d_activation, spec.model.leaky_slope),
            g_output: match spec.model.g_output {
                GOutput::Sigmoid => Output::Sigmoid,
                GOutput::Tanh => Output::Tanh,
            },
            init_std: spec.model.init_std as f32,
            d_dropout: spec.model.d_dropout as f32,
            classes: if spec.model.conditional {
                10
            } else {
                spec.model.clusters
            },
            // Known once the training images are clustered: [`run_config`].
            label_counts: Vec::new(),
            arch: match spec.model.arch {
                ArchSpec::Mlp => Arch::Mlp,
                ArchSpec::Dcgan => Arch::Dcgan(DcganShape {
                    g_channels: [spec.model.g_channels[0], spec.model.g_channels[1]],
                    d_channels: [spec.model.d_channels[0], spec.model.d_channels[1]],
                    d_batch_norm: spec.model.d_batch_norm,
                    d_dense: spec.model.d_dense,
                }),
            },
        },
        batch_size: spec.train.batch_size,
        loss: match spec.train.loss {
            LossSpec::NonSaturating => Loss::NonSaturating,
            LossSpec::Minimax => Loss::Minimax,
            LossSpec::LeastSquares => Loss::LeastSquares,
            LossSpec::Hinge => Loss::Hinge,
        },
        lr_g: spec.train.lr_g.map(|v| v as f32),
        lr_d: spec.train.lr_d.map(|v| v as f32),
        d_steps: spec.train.d_steps,
        real_target: (1.0 - spec.train.label_smoothing) as f32,
        g_ema: spec.train.g_ema.map(|d| d as f32),
        adam: AdamConfig {
            lr: spec.train.lr as f32,
            beta1: spec.train.beta1 as f32,
            beta2: spec.train.beta2 as f32,
            eps: spec.train.eps as f32,
        },
    }
}

/// [`train_config`] completed by the data: a self-conditioned run's cluster sizes.
pub(crate) fn run_config(spec: &Spec, data: &TrainingData) -> TrainConfig {
    let mut cfg = train_config(spec);
    cfg.model.label_counts.clone_from(&data.label_counts);
    cfg
}

fn activation(a: ActivationSpec, slope: f64) -> Activation {
    match a {
        ActivationSpec::Relu => Activation::Relu,
        ActivationSpec::LeakyRelu => Activation::LeakyRelu(slope as f32),
        ActivationSpec::Tanh => Activation::Tanh,
    }
}

/// A spec's training split and complete training configuration as `runner` would train
/// them (a self-conditioned spec's images clustered first): for tools that time the step
/// outside a run, such as `bench_step`.
pub fn training_setup(
    spec: &Spec,
    quiet: bool,
    threads: usize,
) -> anyhow::Result<(Split, TrainConfig)> {
    let data = training_images(
        spec,
        quiet,
        threads,
        &std::sync::atomic::AtomicBool::new(false),
    )?;
    let cfg = run_config(spec, &data);
    Ok((data.split, cfg))
}
