//! The GAN family's engine: the tutorial's perceptron GAN (`ts_GAN.py`) and its relatives,
//! and a DCGAN, each trained by a hand-written, deterministic step on flat buffers.
//!
//! Modules, from the ground up; each imports only from those above it in this list:
//!
//! * [`kernels`] (products and element-wise math on fixed blocks, denormal flushing) and
//!   [`stream`] / [`Stream`] (every random number of a run, from its seed);
//! * [`layers`]: activations, dropout, convolution, batch normalisation, parameter slots;
//! * [`optim`]: Adam with its config, and the moving average of G's weights;
//! * [`loss`]: the losses D and G follow, from D's logits;
//! * [`train`]: the contract every architecture shares (configs, step statistics and
//!   errors, G's input, k-means for self-conditioning);
//! * the architectures, [`mlp`] (its [`Trainer`], the dfdx autograd oracle in
//!   [`mlp::reference`], the TensorFlow lockstep recorder) and [`dcgan`];
//! * [`AnyTrainer`], [`Model`], [`Generator`], [`AnyState`]: one type per role over both,
//!   for the runner, evaluation and the tools;
//! * [`checkpoint`]: weights and training state as safetensors.
//!
//! ARCHITECTURE.md has the map and the checklist for adding an architecture.

mod any;
pub mod checkpoint;
pub mod dcgan;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod mlp;
pub mod optim;
mod rng;
pub mod train;

pub use any::{AnyState, AnyTrainer, Generator, Model};
pub use kernels::{flush_denormals, set_flush_denormals};
pub use layers::activation::{to_unit_range, Activation, Output};
pub use layers::slots::ParamSlot;
pub use loss::Loss;
pub use mlp::{Gan, Mlp, Trainer};
pub use optim::adam::AdamConfig;
pub use rng::{stream, Stream};
pub use train::config::{Arch, DcganShape, ModelConfig, TrainConfig, IMAGE_PIXELS};
pub use train::step::{Networks, Step, StepStats, TrainError, TrainerState};
