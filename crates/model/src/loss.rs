//! The per-row losses of both networks from D's logits, and their gradients with respect to
//! the logits: the one place every architecture's step takes them from.

use crate::kernels::{sigmoid, softplus};

/// The pair of objectives D and G follow. `l` is D's raw output (its logit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Loss {
    /// The tutorial's: D minimises the cross-entropy of `sigmoid(l)` against real/fake, G
    /// maximises `mean(log D(G(z)))`.
    #[default]
    NonSaturating,
    /// The GAN paper's original form: D as above, G minimises `mean(log(1 - D(G(z))))`.
    Minimax,
    /// LSGAN (Mao et al. 2017, targets 0 and 1): D minimises
    /// `0.5 mean((l_real - 1)^2) + 0.5 mean(l_fake^2)`, G minimises `0.5 mean((l_fake - 1)^2)`.
    LeastSquares,
    /// The hinge loss (Lim and Ye 2017; SAGAN): D minimises
    /// `mean(relu(1 - l_real)) + mean(relu(1 + l_fake))`, G minimises `-mean(l_fake)`.
    Hinge,
}

impl Loss {
    /// Whether D's output is read as a probability `sigmoid(l)` (cross-entropy losses), so the
    /// reported `d_real` / `d_fake` are probabilities; otherwise they are mean raw scores `l`.
    pub fn is_cross_entropy(self) -> bool {
        matches!(self, Loss::NonSaturating | Loss::Minimax)
    }
}

/// D's loss over a batch, as sums over rows (divide by the batch size for means).
pub(crate) struct DSums {
    pub loss_real: f64,
    pub loss_fake: f64,
    /// `sigmoid(l)` summed over the real rows for the cross-entropy losses, `l` otherwise.
    pub d_real: f64,
    pub d_fake: f64,
}

/// D's loss over `logits` (`B` real rows, then `B` fake ones) and `dl`, its gradient with
/// respect to each logit (of the mean loss); `real_target` is `1 - s` for one-sided label
/// smoothing `s`.
pub(crate) fn discriminator(loss: Loss, real_target: f32, logits: &[f32], dl: &mut [f32]) -> DSums {
    let b = logits.len() / 2;
    let (mut loss_real, mut loss_fake, mut d_real, mut d_fake) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let inv_b = 1.0 / b as f32;
    let (real_logits, fake_logits) = logits.split_at(b);
    let (dl_real, dl_fake) = dl.split_at_mut(b);
    let t = real_target;
    match loss {
        Loss::NonSaturating | Loss::Minimax => {
            // Cross-entropy against target t (1 unless smoothed): with t = 1 the second
            // term is exactly zero, so the tutorial's values are unchanged bit for bit.
            let (t_real, t_fake) = (t as f64, 1.0 - t as f64);
            for (&l, dl) in real_logits.iter().zip(dl_real) {
                let p = sigmoid(l);
                loss_real += t_real * softplus(-l) as f64 + t_fake * softplus(l) as f64;
                d_real += p as f64;
                *dl = (p - t) * inv_b;
            }
            for (&l, dl) in fake_logits.iter().zip(dl_fake) {
                let p = sigmoid(l);
                loss_fake += softplus(l) as f64;
                d_fake += p as f64;
                *dl = p * inv_b;
            }
        }
        Loss::LeastSquares => {
            for (&l, dl) in real_logits.iter().zip(dl_real) {
                loss_real += 0.5 * ((l - t) as f64).powi(2);
                d_real += l as f64;
                *dl = (l - t) * inv_b;
            }
            for (&l, dl) in fake_logits.iter().zip(dl_fake) {
                loss_fake += 0.5 * (l as f64).powi(2);
                d_fake += l as f64;
                *dl = l * inv_b;
            }
        }
        Loss::Hinge => {
            for (&l, dl) in real_logits.iter().zip(dl_real) {
                loss_real += (1.0 - l as f64).max(0.0);
                d_real += l as f64;
                *dl = if l < 1.0 { -inv_b } else { 0.0 };
            }
            for (&l, dl) in fake_logits.iter().zip(dl_fake) {
                loss_fake += (1.0 + l as f64).max(0.0);
                d_fake += l as f64;
                *dl = if l > -1.0 { inv_b } else { 0.0 };
            }
        }
    }
    DSums {
        loss_real,
        loss_fake,
        d_real,
        d_fake,
    }
}

/// The objective G maximises, summed over the rows of `logits` (D's on G's images), and
/// `dl`, the gradient of G's mean loss with respect to each logit.
pub(crate) fn generator(loss: Loss, logits: &[f32], dl: &mut [f32]) -> f64 {
    let inv_b = 1.0 / logits.len() as f32;
    let mut objective = 0.0f64;
    for (&l, dl) in logits.iter().zip(dl) {
        match loss {
            Loss::NonSaturating => {
                objective -= softplus(-l) as f64;
                *dl = (sigmoid(l) - 1.0) * inv_b;
            }
            Loss::Minimax => {
                objective += softplus(l) as f64;
                *dl = -sigmoid(l) * inv_b;
            }
            Loss::LeastSquares => {
                objective -= 0.5 * ((l - 1.0) as f64).powi(2);
                *dl = (l - 1.0) * inv_b;
            }
            Loss::Hinge => {
                objective += l as f64;
                *dl = -inv_b;
            }
        }
    }
    objective
}
