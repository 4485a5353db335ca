//! Where the perceptrons' training step's time goes: wall time per phase of
//! [`crate::mlp::Trainer`]'s step, summed over steps, printed by `cargo xtask bench --phases`.
//!
//! Only compiled in with the `phases` feature; without it a [`Timer`] is an empty value the
//! optimiser removes, so the step everyone runs carries no timing code. Phases that run side
//! by side (the two arms of a `rayon::join`) are each timed on their own thread, so with two
//! threads the phases sum to more than the step's wall time; with one they add up to it.

/// A part of the step, in the order the step runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Drawing `z` (and a conditional GAN's labels).
    Noise,
    /// G's forward pass: its products, biases and activations.
    GForward,
    /// The batch callback (data order and gather), pixel scaling, label join, dropout masks.
    Gather,
    /// D's first layer on the real rows.
    DForwardReal,
    /// D's first layer on the fake rows, its deeper layers and the logits.
    DForwardFake,
    /// D's loss and `dL/dlogit`, and D's gradients at its hidden layers.
    DBackward,
    /// D's weight gradients, each block updated by Adam at once.
    DWeightsAdam,
    /// D (just updated) on the fake rows again, G's loss.
    GStepDForward,
    /// Back through D to G's output pixels, and the output's derivative.
    BackToImage,
    /// The gradient at G's last hidden layer (through G's output weights).
    GHiddenGrad,
    /// G's output-layer weight gradient with Adam (one arm of a join).
    GOutputAdam,
    /// G's hidden layers: their gradients, weight gradients and Adam (the other arm).
    GHiddenAdam,
    /// The moving average of G's weights.
    Ema,
}

impl Phase {
    pub const ALL: [Phase; 13] = [
        Phase::Noise,
        Phase::GForward,
        Phase::Gather,
        Phase::DForwardReal,
        Phase::DForwardFake,
        Phase::DBackward,
        Phase::DWeightsAdam,
        Phase::GStepDForward,
        Phase::BackToImage,
        Phase::GHiddenGrad,
        Phase::GOutputAdam,
        Phase::GHiddenAdam,
        Phase::Ema,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Noise => "noise",
            Phase::GForward => "G forward",
            Phase::Gather => "batch gather",
            Phase::DForwardReal => "D forward, real rows",
            Phase::DForwardFake => "D forward, fake rows",
            Phase::DBackward => "D loss and hidden gradients",
            Phase::DWeightsAdam => "D weight gradients + Adam",
            Phase::GStepDForward => "G step: D forward again",
            Phase::BackToImage => "G step: back through D",
            Phase::GHiddenGrad => "G step: G hidden gradient",
            Phase::GOutputAdam => "G output weights + Adam",
            Phase::GHiddenAdam => "G hidden weights + Adam",
            Phase::Ema => "G weight average",
        }
    }
}

#[cfg(feature = "phases")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use super::Phase;

    static NANOS: [AtomicU64; Phase::ALL.len()] = [const { AtomicU64::new(0) }; Phase::ALL.len()];

    /// Adds the time from its start to its drop to its phase.
    pub struct Timer(Phase, Instant);

    impl Drop for Timer {
        fn drop(&mut self) {
            let ns = self.1.elapsed().as_nanos() as u64;
            NANOS[self.0 as usize].fetch_add(ns, Ordering::Relaxed);
        }
    }

    pub fn time(phase: Phase) -> Timer {
        Timer(phase, Instant::now())
    }

    pub fn take() -> Option<Vec<(Phase, Duration)>> {
        Some(
            Phase::ALL
                .iter()
                .map(|&p| {
                    let ns = NANOS[p as usize].swap(0, Ordering::Relaxed);
                    (p, Duration::from_nanos(ns))
                })
                .collect(),
        )
    }
}

#[cfg(not(feature = "phases"))]
mod imp {
    use std::time::Duration;

    use super::Phase;

    /// Nothing: timing is compiled out.
    pub struct Timer;

    // Empty, so a phase can be ended with `drop` in both builds; the optimiser removes it.
    impl Drop for Timer {
        #[inline(always)]
        fn drop(&mut self) {}
    }

    #[inline(always)]
    pub fn time(_: Phase) -> Timer {
        Timer
    }

    pub fn take() -> Option<Vec<(Phase, Duration)>> {
        None
    }
}

/// The time summed per phase since the last call (and resets it); `None` when timing is
/// compiled out.
pub use imp::take;
/// Starts timing `phase` until the returned value is dropped.
pub use imp::time;
pub use imp::Timer;
