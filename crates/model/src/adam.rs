//! Adam exactly as TensorFlow 1's `AdamOptimizer` applies it (the tutorial's optimiser):
//! `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`, `p -= lr_t * m / (sqrt(v) + eps)`.
//! (The paper's form puts epsilon inside the bias correction; the difference only shows
//! when `v` is about `eps^2`.)

use rayon::prelude::*;

use crate::config::AdamConfig;

/// The state of one Adam optimiser over one flat parameter buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    pub cfg: AdamConfig,
    /// Updates applied so far.
    pub t: u64,
    /// First moment (PyTorch calls it `exp_avg`).
    pub m: Vec<f32>,
    /// Second moment (`exp_avg_sq`).
    pub v: Vec<f32>,
}

impl Adam {
    pub fn new(cfg: AdamConfig, len: usize) -> Adam {
        Adam {
            cfg,
            t: 0,
            m: vec![0.0; len],
            v: vec![0.0; len],
        }
    }

    /// Applies one update to `params` with gradient `grads` (of the loss being minimised).
    pub fn update(&mut self, params: &mut [f32], grads: &[f32]) {
        assert_eq!(params.len(), self.m.len());
        assert_eq!(grads.len(), self.m.len());
        let k = self.begin();
        apply(&k, params, grads, &mut self.m, &mut self.v);
    }

    /// Starts update `t + 1`; the caller then [`apply`]s it to every part of the parameters
    /// (in any order and split, e.g. right after each block of a gradient is computed), with
    /// the matching parts of `m` and `v`.
    pub(crate) fn begin(&mut self) -> Coefficients {
        self.t += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.cfg;
        let t = self.t as f64;
        let lr_t = (lr as f64 * (1.0 - (beta2 as f64).powf(t)).sqrt()
            / (1.0 - (beta1 as f64).powf(t))) as f32;
        Coefficients {
            beta1,
            beta2,
            eps,
            lr_t,
        }
    }
}

/// The constants of one update step.
pub(crate) struct Coefficients {
    beta1: f32,
    beta2: f32,
    eps: f32,
    lr_t: f32,
}

/// One Adam update applied block by block, each block of the gradient `g` computed by
/// `fill(i, block_of_g)` just before it is used, while it is still in cache. Blocks are
/// `block` elements; block `i` starts at element `i * block`.
pub(crate) fn apply_in_blocks(
    k: &Coefficients,
    block: usize,
    [p, g, m, v]: [&mut [f32]; 4],
    fill: impl Fn(usize, &mut [f32]) + Sync,
) {
    g.par_chunks_mut(block)
        .zip(p.par_chunks_mut(block))
        .zip(m.par_chunks_mut(block).zip(v.par_chunks_mut(block)))
        .enumerate()
        .for_each(|(i, ((g, p), (m, v)))| {
            fill(i, g);
            apply(k, p, g, m, v);
        });
}

/// One Adam update of `p` (and its moments `m`, `v`) with gradient `g`.
pub(crate) fn apply(k: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked above.
        return unsafe { apply_avx2(k, p, g, m, v) };
    }
    apply_portable(k, p, g, m, v)
}

/// The same arithmetic 8 lanes wide (no FMA contraction happens, so results are identical).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn apply_avx2(k: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    apply_portable(k, p, g, m, v)
}

#[inline(always)]
fn apply_portable(k: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (one_b1, one_b2) = (1.0 - k.beta1, 1.0 - k.beta2);
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        let gi = g[i];
        m[i] = k.beta1 * m[i] + one_b1 * gi;
        v[i] = k.beta2 * v[i] + one_b2 * (gi * gi);
        p[i] -= k.lr_t * m[i] / (v[i].sqrt() + k.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_steps_match_hand_computation() {
        let cfg = AdamConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut adam = Adam::new(cfg, 2);
        let mut p = [1.0f32, -2.0];
        adam.update(&mut p, &[0.5, -4.0]);
        // t=1: m = 0.1 g, v = 0.001 g^2, lr_t = 0.1 * sqrt(0.001) / 0.1; step = lr_t * m / sqrt(v) = 0.1 * sign(g).
        assert!(
            (p[0] - 0.9).abs() < 1e-6 && (p[1] + 1.9).abs() < 1e-6,
            "{p:?}"
        );
        adam.update(&mut p, &[0.5, 0.0]);
        let m0: f64 = 0.9 * 0.05 + 0.1 * 0.5;
        let v0: f64 = 0.999 * 0.00025 + 0.001 * 0.25;
        let lr_t = 0.1 * (1.0f64 - 0.999f64.powi(2)).sqrt() / (1.0 - 0.81);
        let want0 = 0.9 - lr_t * m0 / (v0.sqrt() + 1e-8);
        assert!((p[0] as f64 - want0).abs() < 1e-6, "{} vs {want0}", p[0]);
        assert_eq!(adam.t, 2);
    }

    #[test]
    fn zero_gradient_leaves_fresh_parameters_alone() {
        let mut adam = Adam::new(AdamConfig::default(), 3);
        let mut p = [1.0f32, 2.0, 3.0];
        adam.update(&mut p, &[0.0; 3]);
        assert_eq!(p, [1.0, 2.0, 3.0]);
    }
}
