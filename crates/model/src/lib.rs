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

mod any;
pub mod checkpoint;
pub mod dcgan;
pub mod kernels;
pub mod layers;
mod loss;
pub mod mlp;
pub mod optim;
mod rng;
pub mod train;

pub use any::{AnyState, AnyTrainer, Generator, Model};
pub use mlp::networks::{to_unit_range, Activation, Gan, Mlp, Output, ParamSlot};
pub use mlp::step::{StepStats, TrainError, Trainer, TrainerState};
pub use rng::{stream, Stream};
pub use train::config::{AdamConfig, Arch, DcganShape, Loss, ModelConfig, TrainConfig};

/// Turns flushing of denormal floats to zero on or off for the calling thread (x86_64:
/// flush-to-zero and denormals-are-zero, MXCSR bits 15 and 6; aarch64: FPCR.FZ), as
/// TensorFlow's CPU executor turns it on for its worker threads. Denormal arithmetic takes
/// microcode assists on Intel cores: a step from late weights ran 15% faster flushed on a
/// Xeon (no change on an AMD EPYC). Returns whether this architecture can (elsewhere nothing
/// changes).
pub fn set_flush_denormals(on: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        const FTZ_DAZ: u32 = 0x8040;
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register only.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr = if on { csr | FTZ_DAZ } else { csr & !FTZ_DAZ };
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
        true
    }
    #[cfg(target_arch = "aarch64")]
    {
        const FZ: u64 = 1 << 24;
        let mut fpcr: u64;
        // SAFETY: mrs/msr read and write this thread's floating-point control register only.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
            fpcr = if on { fpcr | FZ } else { fpcr & !FZ };
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack));
        }
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        let _ = on;
        false
    }
}

/// [`set_flush_denormals`]`(true)`.
pub fn flush_denormals() -> bool {
    set_flush_denormals(true)
}

/// Pixels of one MNIST image, the generator's output and the discriminator's input.
pub const IMAGE_PIXELS: usize = 28 * 28;

#[cfg(test)]
mod tests {
    use std::hint::black_box;

    #[test]
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    fn flushing_denormals_is_per_thread_and_can_be_undone() {
        let half_of_smallest_normal = || black_box(f32::MIN_POSITIVE) * black_box(0.5);
        std::thread::spawn(move || {
            assert!(super::set_flush_denormals(true));
            assert_eq!(half_of_smallest_normal(), 0.0);
            assert!(super::set_flush_denormals(false));
            assert_eq!(half_of_smallest_normal(), f32::MIN_POSITIVE / 2.0);
        })
        .join()
        .unwrap();
        // The spawned thread's setting did not leak into this one.
        assert_eq!(half_of_smallest_normal(), f32::MIN_POSITIVE / 2.0);
    }
}
