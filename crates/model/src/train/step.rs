//! What every architecture's training step shares: what a step reports ([`StepStats`]), how
//! it fails ([`TrainError`]), and the checks that stop a diverged or mismatched run.

use crate::train::config::TrainConfig;

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
