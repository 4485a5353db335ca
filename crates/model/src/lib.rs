//! The GAN of the TensorFlow tutorial `ts_GAN.py`, a generator `noise -> hidden (ReLU) ->
//! 784 (sigmoid)` and a discriminator `784 -> hidden (ReLU) -> 1` trained with two Adam
//! optimisers, one noise batch per step, D first, then G with the same noise, and the family
//! around it: any number of hidden layers, LeakyReLU or tanh, a tanh generator output.
//!
//! * [`Trainer`] runs the step: exact in meaning, stable losses from logits, bit-identical
//!   for a seed at any thread count, and fast (see ARCHITECTURE.md for why it computes its
//!   own gradients on flat buffers instead of going through dfdx's tape).
//! * [`reference`] is the same mathematics in dfdx autograd, the oracle of the tests.
//! * [`checkpoint`] saves and loads weights and full training state as safetensors
//!   (PyTorch-readable names), through dfdx's loader.
//! * [`generate`] turns noise into images with dfdx's tensor operations.
//! * [`lockstep`] records a run's inputs so TensorFlow can replay it step for step.

pub mod adam;
mod any;
pub mod checkpoint;
pub mod clusters;
mod config;
pub mod conv;
pub mod dcgan;
mod dfdx_mlp;
pub mod generate;
pub mod kernels;
pub mod lockstep;
mod loss;
mod params;
pub mod phases;
pub mod reference;
mod rng;
mod trainer;

pub use any::{AnyState, AnyTrainer, Generator, Model};
pub use config::{AdamConfig, Arch, DcganShape, Loss, ModelConfig, TrainConfig};
pub use params::{to_unit_range, Activation, Gan, Mlp, Output, ParamSlot};
pub use rng::{stream, Stream};
pub use trainer::{StepStats, TrainError, Trainer, TrainerState};

/// Sets flush-to-zero and denormals-are-zero (MXCSR bits 15 and 6) on the calling thread, as
/// TensorFlow's CPU executor does on its worker threads. Returns whether it could (x86_64 only).
pub fn flush_denormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register only.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= 0x8040;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Pixels of one MNIST image, the generator's output and the discriminator's input.
pub const IMAGE_PIXELS: usize = 28 * 28;
