//! One training step of the tutorial, computed by hand-derived gradients on flat buffers.
//!
//! The step is the tutorial's: draw one noise batch `z`, update D on `(x, G(z))`, then update
//! G with the same `z` against the updated D. Work the tutorial's graph does but does not
//! need is skipped: no gradient for the real images or the noise, G's forward pass is done
//! once and serves both updates (G does not change in between), real and fake images go
//! through D as one batch, D's weight gradients are not formed in G's step, and every buffer
//! is allocated once. `crate::reference` holds the same step in plain dfdx autograd, which
//! the tests use to check these gradients.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::adam::{self, Adam};
use crate::config::{GeneratorLoss, TrainConfig};
use crate::kernels::{self, matmul, sigmoid, softplus, Split, View};
use crate::params::{split_mut, Gan, Mlp};
use crate::rng::{stream, Stream};
use crate::IMAGE_PIXELS;

/// What one step reports, in the tutorial's sign convention (objectives being maximised).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// `mean(log D(x)) + mean(log(1 - D(G(z))))`, before D's update (the tutorial's `loss_D`).
    pub d_loss: f32,
    /// The objective G maximises, before G's update: `mean(log D(G(z)))` for the
    /// non-saturating loss (the tutorial's `loss_G`), `-mean(log(1 - D(G(z))))` for minimax.
    pub g_loss: f32,
    /// Mean of D(x) over the real batch.
    pub d_real: f32,
    /// Mean of D(G(z)) over the fake batch.
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

/// The whole training state of a run plus the buffers one step works in.
pub struct Trainer {
    cfg: TrainConfig,
    gan: Gan,
    adam_g: Adam,
    adam_d: Adam,
    noise: ChaCha8Rng,
    steps_done: u64,
    ws: Workspace,
}

/// Everything needed to continue training exactly where it stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerState {
    pub gan: Gan,
    pub adam_g: Adam,
    pub adam_d: Adam,
    /// Word position of the noise stream.
    pub noise_pos: u128,
    pub steps_done: u64,
}

impl TrainerState {
    /// Whether these weights are the networks `cfg` describes, so that a checkpoint is never
    /// continued under a spec whose model it does not match.
    pub fn check_fits(&self, cfg: &TrainConfig) -> Result<(), String> {
        let (g, d) = (&self.gan.generator, &self.gan.discriminator);
        let want = (cfg.model.noise_dim, cfg.model.hidden);
        if (g.input, g.hidden) != want || d.hidden != cfg.model.hidden {
            return Err(format!(
                "it holds a model with noise_dim {} and hidden {} (D hidden {}), but the spec says \
                 model.noise_dim {} and model.hidden {}",
                g.input, g.hidden, d.hidden, want.0, want.1
            ));
        }
        Ok(())
    }
}

struct Workspace {
    /// `B x noise_dim`
    z: Vec<f32>,
    /// G's hidden layer after ReLU, `B x H`.
    h1: Vec<f32>,
    /// D's input: `B` real rows, then `B` rows of G's output (G writes straight into them).
    inp: Vec<f32>,
    /// D's hidden layer after ReLU, `2B x H` (the first `B` rows serve G's step).
    k1: Vec<f32>,
    logits: Vec<f32>,
    /// Gradient of the loss with respect to the logits.
    dl: Vec<f32>,
    /// Gradient with respect to D's hidden pre-activation.
    dc1: Vec<f32>,
    grad_d: Vec<f32>,
    grad_g: Vec<f32>,
    /// Gradient with respect to G's output, then its pre-activation, `B x 784`.
    dfake: Vec<f32>,
    /// Gradient with respect to G's hidden layer, then its pre-activation, `B x H`.
    dh1: Vec<f32>,
}

impl Workspace {
    fn new(cfg: &TrainConfig, gan: &Gan) -> Workspace {
        let (b, h) = (cfg.batch_size, cfg.model.hidden);
        Workspace {
            z: vec![0.0; b * cfg.model.noise_dim],
            h1: vec![0.0; b * h],
            inp: vec![0.0; 2 * b * IMAGE_PIXELS],
            k1: vec![0.0; 2 * b * h],
            logits: vec![0.0; 2 * b],
            dl: vec![0.0; 2 * b],
            dc1: vec![0.0; 2 * b * h],
            grad_d: vec![0.0; gan.discriminator.params.len()],
            grad_g: vec![0.0; gan.generator.params.len()],
            dfake: vec![0.0; b * IMAGE_PIXELS],
            dh1: vec![0.0; b * h],
        }
    }
}

impl Trainer {
    /// A fresh run: weights from the seed's init stream, noise from its noise stream.
    pub fn new(cfg: TrainConfig, seed: u64) -> Trainer {
        let gan = Gan::init(&cfg.model, &mut stream(seed, Stream::Init));
        Trainer::from_parts(cfg, gan, seed)
    }

    /// Starts training from given weights (fresh optimiser state).
    pub fn from_parts(cfg: TrainConfig, gan: Gan, seed: u64) -> Trainer {
        assert!(cfg.batch_size > 0, "batch size must be positive");
        let ws = Workspace::new(&cfg, &gan);
        Trainer {
            adam_g: Adam::new(cfg.adam, gan.generator.params.len()),
            adam_d: Adam::new(cfg.adam, gan.discriminator.params.len()),
            noise: stream(seed, Stream::Noise),
            steps_done: 0,
            ws,
            cfg,
            gan,
        }
    }

    /// Continues from a saved state; `seed` must be the run's seed, and the state must fit
    /// `cfg` (see [`TrainerState::check_fits`]).
    pub fn restore(cfg: TrainConfig, seed: u64, state: TrainerState) -> Trainer {
        let mut t = Trainer::from_parts(cfg, state.gan, seed);
        t.adam_g = state.adam_g;
        t.adam_d = state.adam_d;
        t.adam_g.cfg = cfg.adam;
        t.adam_d.cfg = cfg.adam;
        t.noise.set_word_pos(state.noise_pos);
        t.steps_done = state.steps_done;
        t
    }

    pub fn state(&self) -> TrainerState {
        TrainerState {
            gan: self.gan.clone(),
            adam_g: self.adam_g.clone(),
            adam_d: self.adam_d.clone(),
            noise_pos: self.noise.get_word_pos(),
            steps_done: self.steps_done,
        }
    }

    pub fn gan(&self) -> &Gan {
        &self.gan
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    pub fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// The buffer the next step reads its real images from (`batch_size x 784`, [0, 1]).
    pub fn real_batch_mut(&mut self) -> &mut [f32] {
        &mut self.ws.inp[..self.cfg.batch_size * IMAGE_PIXELS]
    }

    /// One step on the real batch in [`Trainer::real_batch_mut`].
    pub fn step(&mut self) -> Result<StepStats, TrainError> {
        self.step_with(&mut |_| {})
    }

    /// One step whose real batch `fill_real` writes (`batch_size x 784`, [0, 1]) into the
    /// input buffer. The gather runs on one core while the other draws the noise and runs G,
    /// so its memory latency is hidden. (A trait object, not a generic, so the step is always
    /// the optimised copy compiled in this crate.)
    pub fn step_with(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32]) + Send),
    ) -> Result<StepStats, TrainError> {
        let step = self.steps_done + 1;
        let (d_loss, d_real, d_fake) = self.d_step(step, fill_real)?;
        let g_loss = self.g_step(step)?;
        self.steps_done = step;
        Ok(StepStats {
            d_loss,
            g_loss,
            d_real,
            d_fake,
        })
    }

    /// The noise batch of the last step (`batch_size x noise_dim`), for recording a run.
    pub fn last_noise(&self) -> &[f32] {
        &self.ws.z
    }

    /// The gradients of the last step's minimised losses, laid out like the parameters:
    /// `(generator, discriminator)`. For tests and diagnostics.
    pub fn last_gradients(&self) -> (&[f32], &[f32]) {
        (&self.ws.grad_g, &self.ws.grad_d)
    }

    /// Draws z, runs G forward into D's input and updates D. Returns (d_loss, d_real, d_fake).
    fn d_step(
        &mut self,
        step: u64,
        fill_real: &mut (dyn FnMut(&mut [f32]) + Send),
    ) -> Result<(f32, f32, f32), TrainError> {
        let b = self.cfg.batch_size;
        let x = IMAGE_PIXELS;
        let ws = &mut self.ws;
        let g = &self.gan.generator;
        let h = g.hidden;
        {
            // G's forward pass (writing its output as the fake half of D's input) runs beside
            // the real batch's gather and D's forward pass on it, which do not depend on G: two
            // independent chains keep both cores busy without cutting any product.
            let d = &self.gan.discriminator;
            let noise = &mut self.noise;
            let (z, h1) = (&mut ws.z, &mut ws.h1);
            let (real, fake) = ws.inp.split_at_mut(b * x);
            let (k_real, k_fake) = ws.k1.split_at_mut(b * h);
            rayon::join(
                || {
                    for v in z.iter_mut() {
                        *v = noise.sample(StandardNormal);
                    }
                    hidden_layer(h1, z, g, Split::None);
                    matmul(
                        fake,
                        View::rows(h1, b, h),
                        View::transposed(g.w2(), x, h),
                        Split::None,
                    );
                    kernels::bias_sigmoid(fake, g.b2());
                },
                || {
                    fill_real(real);
                    hidden_layer(k_real, real, d, Split::None);
                },
            );
            hidden_layer(k_fake, fake, d, Split::Cols(2));
            kernels::rows_dot(&mut ws.logits, &ws.k1, d.w2(), d.b2()[0]);
        }

        let (mut loss_real, mut loss_fake, mut d_real, mut d_fake) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let inv_b = 1.0 / b as f32;
        for (i, (&l, dl)) in ws.logits.iter().zip(&mut ws.dl).enumerate() {
            let p = sigmoid(l);
            if i < b {
                loss_real += softplus(-l) as f64;
                d_real += p as f64;
                *dl = (p - 1.0) * inv_b;
            } else {
                loss_fake += softplus(l) as f64;
                d_fake += p as f64;
                *dl = p * inv_b;
            }
        }
        let d_loss = (-(loss_real + loss_fake) / b as f64) as f32;
        check_finite(step, "d_loss", d_loss)?;

        let d = &mut self.gan.discriminator;
        let dims = d.dims();
        let [gw1, gb1, gw2, gb2] = split_mut(dims, &mut ws.grad_d);
        gw2.fill(0.0);
        for (row, &gl) in ws.k1.chunks_exact(h).zip(&ws.dl) {
            for (o, &a) in gw2.iter_mut().zip(row) {
                *o += gl * a;
            }
        }
        gb2[0] = ws.dl.iter().sum();
        hidden_grad(&ws.k1, &ws.dl, d.w2(), &mut ws.dc1);
        kernels::column_sums(gb1, &ws.dc1);

        // D's weight gradient (no gradient for its input: neither the real images nor G's
        // output need one), cut into blocks of rows, each updated by Adam as soon as its
        // gradient is computed, while it is still in cache.
        let k = self.adam_d.begin();
        let [pw1, pb1, pw2, pb2] = split_mut(dims, &mut d.params);
        let [mw1, mb1, mw2, mb2] = split_mut(dims, &mut self.adam_d.m);
        let [vw1, vb1, vw2, vb2] = split_mut(dims, &mut self.adam_d.v);
        let (dc1, inp) = (&ws.dc1, &ws.inp);
        adam::apply_in_blocks(&k, W1_ROW_BLOCK * x, [pw1, gw1, mw1, vw1], |i, g| {
            let lhs = View::transposed(dc1, 2 * b, h);
            kernels::matmul_rows(g, lhs, View::rows(inp, 2 * b, x), i * W1_ROW_BLOCK);
        });
        adam::apply(&k, pb1, gb1, mb1, vb1);
        adam::apply(&k, pw2, gw2, mw2, vw2);
        adam::apply(&k, pb2, gb2, mb2, vb2);
        Ok((
            d_loss,
            (d_real / b as f64) as f32,
            (d_fake / b as f64) as f32,
        ))
    }

    /// Updates G with the z of the D step, against the updated D. Returns g_loss.
    fn g_step(&mut self, step: u64) -> Result<f32, TrainError> {
        let b = self.cfg.batch_size;
        let x = IMAGE_PIXELS;
        let ws = &mut self.ws;
        let d = &self.gan.discriminator;
        let h = d.hidden;
        let fake = &ws.inp[b * x..];
        let rows = b * h;
        // G did not change since the D step, so its output and hidden layer are reused.
        let k1 = &mut ws.k1[..rows];
        hidden_layer(k1, fake, d, Split::Cols(2));
        kernels::rows_dot(&mut ws.logits[..b], k1, d.w2(), d.b2()[0]);
        let inv_b = 1.0 / b as f32;
        let mut objective = 0.0f64;
        for (&l, dl) in ws.logits[..b].iter().zip(&mut ws.dl[..b]) {
            let p = sigmoid(l);
            match self.cfg.g_loss {
                GeneratorLoss::NonSaturating => {
                    objective -= softplus(-l) as f64;
                    *dl = (p - 1.0) * inv_b;
                }
                GeneratorLoss::Minimax => {
                    objective += softplus(l) as f64;
                    *dl = -p * inv_b;
                }
            }
        }
        let g_loss = (objective / b as f64) as f32;
        check_finite(step, "g_loss", g_loss)?;
        // Back through D to G's output only: D's weight gradients are not needed here.
        hidden_grad(&ws.k1[..rows], &ws.dl[..b], d.w2(), &mut ws.dc1[..rows]);
        matmul(
            &mut ws.dfake,
            View::rows(&ws.dc1[..rows], b, h),
            View::rows(d.w1(), h, x),
            Split::Cols(2),
        );
        for (dy, &y) in ws.dfake.iter_mut().zip(fake) {
            *dy *= y * (1.0 - y);
        }

        // The gradient at G's hidden layer needs G's output weights before their update.
        let g = &mut self.gan.generator;
        let dims = g.dims();
        let zd = g.input;
        matmul(
            &mut ws.dh1,
            View::rows(&ws.dfake, b, x),
            View::rows(g.w2(), x, h),
            Split::Cols(2),
        );

        let k = self.adam_g.begin();
        let [gw1, gb1, gw2, gb2] = split_mut(dims, &mut ws.grad_g);
        let [pw1, pb1, pw2, pb2] = split_mut(dims, &mut g.params);
        let [mw1, mb1, mw2, mb2] = split_mut(dims, &mut self.adam_g.m);
        let [vw1, vb1, vw2, vb2] = split_mut(dims, &mut self.adam_g.v);
        let (dfake, h1, dh1, z) = (&ws.dfake, &ws.h1, &mut ws.dh1, &ws.z);
        rayon::join(
            || {
                // The output layer's weight gradient in blocks of rows, each updated at once.
                adam::apply_in_blocks(&k, W2_ROW_BLOCK * h, [pw2, gw2, mw2, vw2], |i, g| {
                    let lhs = View::transposed(dfake, b, x);
                    kernels::matmul_rows(g, lhs, View::rows(h1, b, h), i * W2_ROW_BLOCK);
                });
            },
            || {
                kernels::column_sums(gb2, dfake);
                adam::apply(&k, pb2, gb2, mb2, vb2);
                for (dy, &y) in dh1.iter_mut().zip(h1) {
                    if y <= 0.0 {
                        *dy = 0.0;
                    }
                }
                matmul(
                    gw1,
                    View::transposed(dh1, b, h),
                    View::rows(z, b, zd),
                    Split::None,
                );
                kernels::column_sums(gb1, dh1);
                adam::apply(&k, pw1, gw1, mw1, vw1);
                adam::apply(&k, pb1, gb1, mb1, vb1);
            },
        );
        Ok(g_loss)
    }
}

/// Rows of D's first weight matrix per block of its gradient (fixed: results never depend
/// on the thread count).
const W1_ROW_BLOCK: usize = 64;
/// Rows of G's output weight matrix per block of its gradient.
const W2_ROW_BLOCK: usize = 200;

fn check_finite(step: u64, what: &'static str, value: f32) -> Result<(), TrainError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(TrainError::NonFinite { step, what, value })
    }
}

/// `out = relu(input · w1ᵀ + b1)`: `mlp`'s hidden layer for the rows of `input`.
fn hidden_layer(out: &mut [f32], input: &[f32], mlp: &Mlp, split: Split) {
    let (i, h) = (mlp.input, mlp.hidden);
    let w1 = View::transposed(mlp.w1(), h, i);
    matmul(out, View::rows(input, input.len() / i, i), w1, split);
    kernels::bias_relu(out, mlp.b1());
}

/// Gradient at D's hidden pre-activation: `dl[r] * w2` where the ReLU was active.
fn hidden_grad(k1: &[f32], dl: &[f32], w2: &[f32], dc1: &mut [f32]) {
    let h = w2.len();
    for ((row, out), &g) in k1.chunks_exact(h).zip(dc1.chunks_exact_mut(h)).zip(dl) {
        for ((o, &a), &w) in out.iter_mut().zip(row).zip(w2) {
            *o = if a > 0.0 { g * w } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;

    fn small() -> Trainer {
        let cfg = TrainConfig {
            model: ModelConfig {
                noise_dim: 8,
                hidden: 16,
                init_std: 0.1,
            },
            batch_size: 5,
            ..TrainConfig::tutorial()
        };
        let mut t = Trainer::new(cfg, 3);
        for (i, v) in t.real_batch_mut().iter_mut().enumerate() {
            *v = (i % 17) as f32 / 16.0;
        }
        t
    }

    #[test]
    fn the_d_step_changes_only_d_and_the_g_step_only_g() {
        let mut t = small();
        let before = t.gan.clone();
        t.d_step(1, &mut |_| {}).unwrap();
        assert_eq!(t.gan.generator, before.generator);
        assert_ne!(t.gan.discriminator, before.discriminator);
        let after_d = t.gan.clone();
        t.g_step(1).unwrap();
        assert_eq!(t.gan.discriminator, after_d.discriminator);
        assert_ne!(t.gan.generator, after_d.generator);
    }
}
