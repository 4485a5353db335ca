//! Adam exactly as TensorFlow 1's `AdamOptimizer` applies it (the tutorial's optimiser):
//! `lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)`, `p -= lr_t * m / (sqrt(v) + eps)`.
//! (The paper's form puts epsilon inside the bias correction; the difference only shows
//! when `v` is about `eps^2`.)

use rayon::prelude::*;

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
            apply_block(k, p, g, m, v);
        });
}

/// The first half of an update applied block by block like [`apply_in_blocks`], for
/// parameters that are still being read elsewhere: after each block of the gradient `g` is
/// filled and the moments are updated, the step to subtract (`lr_t * m / (sqrt(v) + eps)`)
/// goes into `step`, and [`subtract_steps`] applies it later. The arithmetic is [`apply`]'s,
/// so the parameters end up bit-identical.
pub(crate) fn steps_in_blocks(
    k: &Coefficients,
    block: usize,
    [g, m, v, step]: [&mut [f32]; 4],
    fill: impl Fn(usize, &mut [f32]) + Sync,
) {
    g.par_chunks_mut(block)
        .zip(step.par_chunks_mut(block))
        .zip(m.par_chunks_mut(block).zip(v.par_chunks_mut(block)))
        .enumerate()
        .for_each(|(i, ((g, step), (m, v)))| {
            fill(i, g);
            steps(k, g, m, v, step);
        });
}

/// `p -= step`, element by element, in parallel blocks (the second half of
/// [`steps_in_blocks`]).
pub(crate) fn subtract_steps(p: &mut [f32], steps: &[f32]) {
    assert_eq!(p.len(), steps.len());
    p.par_chunks_mut(PARALLEL_BLOCK)
        .zip(steps.par_chunks(PARALLEL_BLOCK))
        .for_each(|(p, s)| {
            for (p, &s) in p.iter_mut().zip(s) {
                *p -= s;
            }
        });
}

/// Updates the moments and writes the step [`apply`] would subtract into `step`.
fn steps(k: &Coefficients, g: &[f32], m: &mut [f32], v: &mut [f32], step: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked above.
        return unsafe { steps_avx2(k, g, m, v, step) };
    }
    steps_portable(k, g, m, v, step)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn steps_avx2(k: &Coefficients, g: &[f32], m: &mut [f32], v: &mut [f32], step: &mut [f32]) {
    steps_portable(k, g, m, v, step)
}

#[inline(always)]
fn steps_portable(k: &Coefficients, g: &[f32], m: &mut [f32], v: &mut [f32], step: &mut [f32]) {
    let n = g.len();
    let (m, v, step) = (&mut m[..n], &mut v[..n], &mut step[..n]);
    for i in 0..n {
        step[i] = moments_and_step(k, g[i], &mut m[i], &mut v[i]);
    }
}

/// One element of an update: the new moments, and the step to subtract from the parameter.
#[inline(always)]
fn moments_and_step(k: &Coefficients, g: f32, m: &mut f32, v: &mut f32) -> f32 {
    *m = k.beta1 * *m + (1.0 - k.beta1) * g;
    *v = k.beta2 * *v + (1.0 - k.beta2) * (g * g);
    k.lr_t * *m / (v.sqrt() + k.eps)
}

/// One Adam update of `p` (and its moments `m`, `v`) with gradient `g`; large ones in
/// parallel blocks (each element's arithmetic is the same however it is cut).
pub(crate) fn apply(k: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    if p.len() > PARALLEL_BLOCK {
        return p
            .par_chunks_mut(PARALLEL_BLOCK)
            .zip(g.par_chunks(PARALLEL_BLOCK))
            .zip(
                m.par_chunks_mut(PARALLEL_BLOCK)
                    .zip(v.par_chunks_mut(PARALLEL_BLOCK)),
            )
            .for_each(|((p, g), (m, v))| apply_block(k, p, g, m, v));
    }
    apply_block(k, p, g, m, v)
}

/// Elements per parallel block of an element-wise pass.
const PARALLEL_BLOCK: usize = 1 << 15;

fn apply_block(k: &Coefficients, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
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
    let n = p.len();
    let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
    for i in 0..n {
        p[i] -= moments_and_step(k, g[i], &mut m[i], &mut v[i]);
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
    fn steps_then_subtraction_equal_one_update() {
        let cfg = AdamConfig::default();
        let grads: Vec<f32> = (0..1000)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 1e-3)
            .collect();
        let mut p1: Vec<f32> = (0..1000).map(|i| (i as f32).sin()).collect();
        let mut p2 = p1.clone();
        let (mut a1, mut a2) = (Adam::new(cfg, 1000), Adam::new(cfg, 1000));
        for round in 0..3 {
            a1.update(&mut p1, &grads);
            let k = a2.begin();
            let (mut g, mut step) = (vec![0.0; 1000], vec![0.0; 1000]);
            steps_in_blocks(
                &k,
                300,
                [&mut g, &mut a2.m, &mut a2.v, &mut step],
                |i, block| {
                    let start = i * 300;
                    block.copy_from_slice(&grads[start..start + block.len()]);
                },
            );
            assert_eq!(g, grads, "the gradient stays");
            subtract_steps(&mut p2, &step);
            assert_eq!(p1, p2, "round {round}");
            assert_eq!((&a1.m, &a1.v), (&a2.m, &a2.v));
        }
    }

    #[test]
    fn zero_gradient_leaves_fresh_parameters_alone() {
        let mut adam = Adam::new(AdamConfig::default(), 3);
        let mut p = [1.0f32, 2.0, 3.0];
        adam.update(&mut p, &[0.0; 3]);
        assert_eq!(p, [1.0, 2.0, 3.0]);
    }
}
