//! What ties an architecture to the shared machinery: its networks ([`Networks`]: their
//! parameter slots and config) and its step ([`Step`]), with what every step reports
//! ([`StepStats`]), how it fails ([`TrainError`]), the state a run continues from
//! ([`TrainerState`]), and the checks that stop a diverged or mismatched run.
//!
//! Adding an architecture means implementing both traits (ARCHITECTURE.md has the whole
//! checklist); the dispatch over architectures and checkpoints use nothing else of it.

use crate::layers::slots::ParamSlot;
use crate::optim::adam::Adam;
use crate::train::config::{ModelConfig, TrainConfig};

/// A pair of networks of one architecture, as the shared machinery sees them.
pub trait Networks: Clone {
    /// G's and D's named tensors, each laid out in its flat parameter buffer (Adam's
    /// moments and G's moving average are laid out alike).
    fn slots(&self) -> [Vec<ParamSlot>; 2];
    /// G's and D's parameter buffers.
    fn params(&self) -> [&[f32]; 2];
    /// The model config these networks are (checkpoints are read without their spec).
    fn config(&self) -> ModelConfig;
}

/// An architecture's training step: one noise batch, D's update(s) on real and fake images,
/// then G's with the same noise against the updated D, bit-identical for a seed at any
/// thread count, resumable from [`Step::state`].
pub trait Step: Sized {
    type Networks: Networks;
    /// The generator pictures, samples and evaluation draw from.
    type Generator;
    /// A fresh run: weights from the seed's init stream, noise from its noise stream.
    fn new(cfg: TrainConfig, seed: u64) -> Self;
    /// Continues from a saved state; `seed` must be the run's seed, and the state must fit
    /// `cfg` ([`TrainerState::check_fits`]).
    fn restore(cfg: TrainConfig, seed: u64, state: TrainerState<Self::Networks>) -> Self;
    fn state(&self) -> TrainerState<Self::Networks>;
    fn steps_done(&self) -> u64;
    /// One step whose real batches `fill_real` writes (`batch_size x 784` in [0, 1], and
    /// the labels), once before each D update. (A trait object, not a generic, so the step
    /// is always the optimised copy compiled in this crate.)
    fn step_with(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError>;
    /// The generator to sample from: the moving average of G's weights with `g_ema`, G
    /// itself otherwise.
    fn sampling_generator(&self) -> Self::Generator;
    /// The networks to save as the run's model: D and [`Step::sampling_generator`].
    fn model_to_save(&self) -> Self::Networks;
}

/// What one step reports, in the tutorial's sign convention (objectives being maximised, so
/// each is minus the loss minimised). With several D updates per step, D's figures are their
/// means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// D's objective before its update: `mean(log D(x)) + mean(log(1 - D(G(z))))` for the
    /// cross-entropy losses (the tutorial's `loss_D`), minus D's LSGAN or hinge loss otherwise.
    pub d_loss: f32,
    /// The objective G maximises, before G's update: `mean(log D(G(z)))` for the
    /// non-saturating loss (the tutorial's `loss_G`), `-mean(log(1 - D(G(z))))` for minimax,
    /// minus G's LSGAN or hinge loss otherwise.
    pub g_loss: f32,
    /// Mean of D(x) over the real batch: `sigmoid(l)` for the cross-entropy losses, the raw
    /// score `l` for least squares and hinge.
    pub d_real: f32,
    /// The same over the fake batch.
    pub d_fake: f32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    #[error(
        "training diverged at step {step}: {what} became {value}; lower train.lr or change the seed"
    )]
    NonFinite {
        step: u64,
        what: &'static str,
        value: f32,
    },
}

/// `Ok` if `value` (the quantity `what` at `step`) is finite.
pub(crate) fn check_finite(step: u64, what: &'static str, value: f32) -> Result<(), TrainError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFinite { step, what, value })
    }
}

/// Whether a checkpoint that does (or does not) hold an average of G's weights can continue
/// under `cfg`.
pub(crate) fn check_average_fits(has_average: bool, cfg: &TrainConfig) -> Result<(), String> {
    match (has_average, cfg.g_ema) {
        (true, None) => {
            Err("it holds an average of G's weights (train.g_ema), but the spec keeps none".into())
        }
        (false, Some(_)) => Err(
            "the spec keeps an average of G's weights (train.g_ema), but it \
                                 holds none to continue"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// Everything needed to continue training exactly where it stopped, for networks `N` of any
/// architecture (what a checkpoint holds).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState<N> {
    /// Both networks (a DCGAN G's running statistics included).
    pub gan: N,
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

impl<N: Networks> TrainerState<N> {
    /// Whether these weights are the networks `cfg` describes, so that a checkpoint is never
    /// continued under a spec whose model it does not match.
    pub fn check_fits(&self, cfg: &TrainConfig) -> Result<(), String> {
        let have = self.gan.config();
        if !have.same_networks(&cfg.model) {
            return Err(format!(
                "it holds {}, but the spec says {}",
                have.describe(),
                cfg.model.describe()
            ));
        }
        have.same_label_counts(&cfg.model)?;
        check_average_fits(self.g_ema.is_some(), cfg)
    }
}
