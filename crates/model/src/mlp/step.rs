//! The perceptrons' trainer ([`Trainer`]): a run's state, the buffers its step works in, and
//! the step of the tutorial and its family (any depth, any of the activations, dropout,
//! labels), computed by hand-derived gradients on flat buffers, layer by layer.
//!
//! The step is the tutorial's: draw one noise batch `z`, update D on `(x, G(z))`, then update
//! G with the same `z` against the updated D. Work the tutorial's graph does but does not
//! need is skipped: no gradient for the real images or the noise, G's forward pass is done
//! once and serves both updates (G does not change in between), real and fake images go
//! through D as one batch, D's weight gradients are not formed in G's step, and every buffer
//! is allocated once. `crate::mlp::reference` holds the same step in plain dfdx autograd, which
//! the tests use to check these gradients.

use rand_chacha::ChaCha8Rng;

use crate::kernels::{self, matmul, Split, View};
use crate::layers::activation::{
    bias_activation, bias_output, scale_by_derivative, scale_by_output_derivative, Activation,
    Output,
};
use crate::layers::dropout::{apply_mask, draw_mask, Mask};
use crate::loss;
use crate::mlp::networks::{split_layers_mut, Gan, Mlp};
use crate::mlp::phases::{self, Phase};
use crate::optim::adam::{self, Adam};
use crate::optim::average::update_average;
use crate::rng::{stream, Stream};
use crate::train::awake::with_workers_awake;
use crate::train::config::{Arch, ModelConfig, TrainConfig, IMAGE_PIXELS};
use crate::train::flops::{Pass, Product};
use crate::train::input::{draw_input, join_one_hot, LabelOdds};
use crate::train::step::{check_finite, Step, StepStats, TrainError, TrainerState};

/// The whole training state of a run plus the buffers one step works in.
pub struct Trainer {
    cfg: TrainConfig,
    gan: Gan,
    adam_g: Adam,
    adam_d: Adam,
    noise: ChaCha8Rng,
    /// Draws D's dropout masks (untouched without dropout).
    dropout: ChaCha8Rng,
    /// How G's labels are drawn (a conditional GAN's).
    label_odds: LabelOdds,
    /// The moving average of G's weights (with `g_ema`).
    ema: Option<Mlp>,
    steps_done: u64,
    ws: Workspace,
    /// The next D update's G input, drawn during this one on the core that would otherwise
    /// wait for G's forward pass. `noise` itself stays at the step boundary (checkpoints
    /// save it), so this is only a cache, used when `noise` still equals its `from`.
    ahead: Option<NoiseAhead>,
}

/// G's input drawn one D update early: what `draw_input` gives from stream state `from`,
/// leaving it at `after`.
struct NoiseAhead {
    from: ChaCha8Rng,
    after: ChaCha8Rng,
    z: Vec<f32>,
    labels: Vec<u8>,
}

/// Floats the perceptrons of `model` need, counted without allocating (for memory
/// estimates): `(G's parameters, D's parameters, the step's buffers)` for batches of `batch`.
/// The buffers are the workspace's, the step G's output weights take, and the padded weight
/// copies of the forward products ([`kernels::forward_scratch_len`]).
pub fn float_counts(model: &ModelConfig, batch: usize) -> (u128, u128, u128) {
    let (g, d) = (model.generator_sizes(), model.discriminator_sizes());
    let params = |sizes: &[usize]| -> u128 {
        sizes
            .windows(2)
            .map(|io| io[0] as u128 * io[1] as u128 + io[1] as u128)
            .sum()
    };
    let widths =
        |sizes: &[usize]| -> u128 { sizes[1..sizes.len() - 1].iter().map(|&w| w as u128).sum() };
    let (z, x, b) = (g[0] as u128, IMAGE_PIXELS as u128, batch as u128);
    // Dropout masks (2B rows for D's update, B for G's); a conditional GAN's separate pixel
    // buffers (2B rows).
    let masks = if model.d_dropout > 0.0 {
        3 * widths(&d)
    } else {
        0
    };
    let pixels = if model.classes > 0 { 2 * x } else { 0 };
    let workspace = b * (z + 2 * widths(&g) + 4 * widths(&d) + 3 * x + 4 + masks + pixels);
    let output_step = g[g.len() - 2] as u128 * x;
    let padded = |sizes: &[usize]| kernels::forward_scratch_len(sizes) as u128;
    let buffers = workspace + output_step + padded(&g) + padded(&d);
    (params(&g), params(&d), buffers)
}

/// The matrix products of one step of perceptrons under `cfg`, each once with how many times
/// the step makes it: per D update G's forward pass, D's forward pass on `2B` rows, its
/// weight gradients and its hidden layers' input gradients; then D again on `B` rows and
/// back to G's output, and G's weight and hidden input gradients. Layers with one output
/// (D's last) are dot products in the step, not gemm calls, but are listed like the rest.
pub fn step_products(cfg: &TrainConfig) -> Vec<Product> {
    let (g, d) = (cfg.model.generator_sizes(), cfg.model.discriminator_sizes());
    let (b, ds) = (cfg.batch_size, cfg.d_steps);
    let mut out: Vec<Product> = Vec::new();
    let mut add = |net, sizes: &[usize], pass, rows, first_layer, count| {
        for io in sizes.windows(2).skip(first_layer) {
            let (inputs, outputs) = (io[0], io[1]);
            match out.iter_mut().find(|p| {
                (p.net, p.pass, p.rows, p.inputs, p.outputs) == (net, pass, rows, inputs, outputs)
            }) {
                Some(p) => p.count += count,
                None => out.push(Product {
                    net,
                    pass,
                    rows,
                    inputs,
                    outputs,
                    count,
                }),
            }
        }
    };
    add("G", &g, Pass::Forward, b, 0, ds);
    add("D", &d, Pass::Forward, 2 * b, 0, ds);
    add("D", &d, Pass::WeightGradient, 2 * b, 0, ds);
    add("D", &d, Pass::InputGradient, 2 * b, 1, ds);
    add("D", &d, Pass::Forward, b, 0, 1);
    add("D", &d, Pass::InputGradient, b, 0, 1);
    add("G", &g, Pass::WeightGradient, b, 0, 1);
    add("G", &g, Pass::InputGradient, b, 1, 1);
    out
}

/// The buffers one step works in, allocated once.
struct Workspace {
    /// `B x noise_dim`
    z: Vec<f32>,
    /// G's hidden layers after their activation, `B x width` each.
    g_out: Vec<Vec<f32>>,
    /// D's input: `B` real rows, then `B` rows of G's output (G writes straight into them).
    inp: Vec<f32>,
    /// D's hidden layers after their activation, `2B x width` each (the first `B` rows serve
    /// G's step).
    d_out: Vec<Vec<f32>>,
    logits: Vec<f32>,
    /// Gradient of the loss with respect to the logits.
    dl: Vec<f32>,
    /// Gradient with respect to each of D's hidden pre-activations, `2B x width`.
    d_grad: Vec<Vec<f32>>,
    grad_d: Vec<f32>,
    grad_g: Vec<f32>,
    /// The Adam step of G's output weights, subtracted once nothing reads them any more.
    g_out_step: Vec<f32>,
    /// Gradient with respect to G's output, then its pre-activation, `B x 784`.
    dfake: Vec<f32>,
    /// Gradient with respect to each of G's hidden layers, then their pre-activations.
    g_grad: Vec<Vec<f32>>,
    /// D's dropout masks in its own update, `2B x width` per hidden layer: 0 for a dropped
    /// unit, `1 / keep` for a kept one (empty without dropout).
    d_masks: Vec<Vec<f32>>,
    /// D's dropout masks in G's update (a fresh draw), `B x width` per hidden layer.
    g_masks: Vec<Vec<f32>>,
    /// The real batch's labels (the data's; only a conditional GAN reads them).
    labels: Vec<u8>,
    /// A conditional GAN's: the labels G is asked for, the real batch's pixels and G's
    /// output pixels before they are joined with labels into D's input (empty otherwise).
    fake_labels: Vec<u8>,
    real_px: Vec<f32>,
    fake_px: Vec<f32>,
    /// Padded copies of G's and D's weights for their forward products
    /// ([`kernels::matmul_by_transposed`]; empty when no row length needs one). One each,
    /// because G's forward pass runs beside D's on the real rows.
    g_pad: Vec<f32>,
    d_pad: Vec<f32>,
}

impl Workspace {
    fn new(cfg: &TrainConfig, gan: &Gan) -> Workspace {
        let b = cfg.batch_size;
        let rows = |widths: &[usize], r: usize| widths.iter().map(|w| vec![0.0; r * w]).collect();
        let (g, d) = (&gan.generator.sizes, &gan.discriminator.sizes);
        let (g_hidden, d_hidden) = (&g[1..g.len() - 1], &d[1..d.len() - 1]);
        let conditional = gan.classes() > 0;
        let masks = |r: usize| {
            if cfg.model.d_dropout > 0.0 {
                rows(d_hidden, r)
            } else {
                Vec::new()
            }
        };
        Workspace {
            z: vec![0.0; b * g[0]],
            g_out: rows(g_hidden, b),
            inp: vec![0.0; 2 * b * d[0]],
            d_out: rows(d_hidden, 2 * b),
            logits: vec![0.0; 2 * b],
            dl: vec![0.0; 2 * b],
            d_grad: rows(d_hidden, 2 * b),
            grad_d: vec![0.0; gan.discriminator.params.len()],
            grad_g: vec![0.0; gan.generator.params.len()],
            g_out_step: vec![0.0; gan.generator.weight(gan.generator.layers() - 1).len()],
            dfake: vec![0.0; b * IMAGE_PIXELS],
            g_grad: rows(g_hidden, b),
            d_masks: masks(2 * b),
            g_masks: masks(b),
            labels: vec![0; b],
            fake_labels: vec![0; if conditional { b } else { 0 }],
            real_px: vec![0.0; if conditional { b * IMAGE_PIXELS } else { 0 }],
            fake_px: vec![0.0; if conditional { b * IMAGE_PIXELS } else { 0 }],
            g_pad: vec![0.0; kernels::forward_scratch_len(g)],
            d_pad: vec![0.0; kernels::forward_scratch_len(d)],
        }
    }
}

impl Step for Trainer {
    type Networks = Gan;
    type Generator = Mlp;

    /// A fresh run: weights from the seed's init stream, noise from its noise stream.
    fn new(cfg: TrainConfig, seed: u64) -> Trainer {
        let gan = Gan::init(&cfg.model, &mut stream(seed, Stream::Init));
        Trainer::from_parts(cfg, gan, seed)
    }

    /// Continues from a saved state; `seed` must be the run's seed, and the state must fit
    /// `cfg` (see [`TrainerState::check_fits`]).
    fn restore(cfg: TrainConfig, seed: u64, state: TrainerState<Gan>) -> Trainer {
        let (adam_g, adam_d) = (cfg.adam_g(), cfg.adam_d());
        let mut t = Trainer::from_parts(cfg, state.gan, seed);
        t.adam_g = state.adam_g;
        t.adam_d = state.adam_d;
        t.adam_g.cfg = adam_g;
        t.adam_d.cfg = adam_d;
        t.noise.set_word_pos(state.noise_pos);
        t.dropout.set_word_pos(state.dropout_pos);
        if let (Some(ema), Some(params)) = (t.ema.as_mut(), state.g_ema) {
            ema.params = params;
        }
        t.steps_done = state.steps_done;
        t
    }

    fn state(&self) -> TrainerState<Gan> {
        TrainerState {
            gan: self.gan.clone(),
            adam_g: self.adam_g.clone(),
            adam_d: self.adam_d.clone(),
            noise_pos: self.noise.get_word_pos(),
            dropout_pos: self.dropout.get_word_pos(),
            g_ema: self.ema.as_ref().map(|m| m.params.clone()),
            steps_done: self.steps_done,
        }
    }

    fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// The real batch's gather runs on one core while the other draws the noise and runs G,
    /// so its memory latency is hidden.
    fn step_with(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        with_workers_awake(|| self.step_awake(fill_real))
    }

    /// The generator to draw pictures and samples from: the moving average of G's weights
    /// with `g_ema`, G itself otherwise.
    fn sampling_generator(&self) -> Mlp {
        self.ema.as_ref().unwrap_or(&self.gan.generator).clone()
    }

    /// The networks to save as the run's model: D and [`Step::sampling_generator`].
    fn model_to_save(&self) -> Gan {
        Gan {
            generator: self.sampling_generator(),
            discriminator: self.gan.discriminator.clone(),
        }
    }
}

impl Trainer {
    /// [`Step::step_with`]'s work, run with the pool's other threads kept awake.
    fn step_awake(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        let step = self.steps_done + 1;
        let (mut d_loss, mut d_real, mut d_fake) = self.d_step(step, fill_real)?;
        if self.cfg.d_steps > 1 {
            let mut sums = [d_loss as f64, d_real as f64, d_fake as f64];
            for _ in 1..self.cfg.d_steps {
                let more = self.d_step(step, fill_real)?;
                for (s, v) in sums.iter_mut().zip([more.0, more.1, more.2]) {
                    *s += v as f64;
                }
            }
            let k = self.cfg.d_steps as f64;
            [d_loss, d_real, d_fake] = sums.map(|s| (s / k) as f32);
        }
        let g_loss = self.g_step(step)?;
        if let (Some(ema), Some(decay)) = (self.ema.as_mut(), self.cfg.g_ema) {
            let _t = phases::time(Phase::Ema);
            update_average(&mut ema.params, &self.gan.generator.params, decay);
        }
        self.steps_done = step;
        Ok(StepStats {
            d_loss,
            g_loss,
            d_real,
            d_fake,
        })
    }

    /// Starts training from given weights (fresh optimiser state).
    pub fn from_parts(cfg: TrainConfig, gan: Gan, seed: u64) -> Trainer {
        assert!(cfg.batch_size > 0, "batch size must be positive");
        assert!(cfg.d_steps > 0, "at least one D update per step");
        assert!(
            cfg.model.arch == Arch::Mlp,
            "Trainer runs perceptrons; AnyTrainer runs every model.arch"
        );
        assert!(
            (0.0..1.0).contains(&cfg.model.d_dropout),
            "dropout probability in [0, 1)"
        );
        let ws = Workspace::new(&cfg, &gan);
        Trainer {
            adam_g: Adam::new(cfg.adam_g(), gan.generator.params.len()),
            adam_d: Adam::new(cfg.adam_d(), gan.discriminator.params.len()),
            noise: stream(seed, Stream::Noise),
            dropout: stream(seed, Stream::Dropout),
            label_odds: LabelOdds::new(&gan.generator.label_counts),
            ema: cfg.g_ema.map(|_| gan.generator.clone()),
            steps_done: 0,
            ws,
            ahead: None,
            cfg,
            gan,
        }
    }

    pub fn gan(&self) -> &Gan {
        &self.gan
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// The buffer the next step reads its real images from (`batch_size x 784`, [0, 1]).
    pub fn real_batch_mut(&mut self) -> &mut [f32] {
        if self.gan.classes() > 0 {
            &mut self.ws.real_px
        } else {
            &mut self.ws.inp[..self.cfg.batch_size * IMAGE_PIXELS]
        }
    }

    /// The labels of the real batch in [`Trainer::real_batch_mut`] (read by a conditional GAN).
    pub fn real_labels_mut(&mut self) -> &mut [u8] {
        &mut self.ws.labels
    }

    /// One step on the real batch in [`Trainer::real_batch_mut`] and its labels.
    pub fn step(&mut self) -> Result<StepStats, TrainError> {
        self.step_with(&mut |_, _| {})
    }

    /// G's input in the last step (`batch_size x (noise_dim + classes)`: the noise, then a
    /// conditional GAN's one-hot label), for recording a run.
    pub fn last_noise(&self) -> &[f32] {
        &self.ws.z
    }

    /// The gradients of the last step's minimised losses, laid out like the parameters:
    /// `(generator, discriminator)`. For tests and diagnostics.
    pub fn last_gradients(&self) -> (&[f32], &[f32]) {
        (&self.ws.grad_g, &self.ws.grad_d)
    }

    /// D's input in the last D update: `batch_size` real rows, then as many of G's output, as
    /// D saw them (a tanh generator's real images scaled to [-1, 1]).
    pub fn last_d_input(&self) -> &[f32] {
        &self.ws.inp
    }

    /// D's dropout masks of the last step, one per hidden layer (0 for a dropped unit,
    /// `1 / keep` for a kept one): `(in the last D update, 2B rows; in G's update, B rows)`.
    /// Empty without dropout.
    pub fn last_dropout_masks(&self) -> (&[Vec<f32>], &[Vec<f32>]) {
        (&self.ws.d_masks, &self.ws.g_masks)
    }

    /// One D update: G's input, G's forward pass beside the real batch, D's forward pass,
    /// its loss, its gradients and Adam. Returns (d_loss, d_real, d_fake).
    fn d_step(
        &mut self,
        step: u64,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<(f32, f32, f32), TrainError> {
        let b = self.cfg.batch_size;
        let mut ahead = self.take_input();
        self.g_forward_beside_real_rows(fill_real, &mut ahead);
        self.ahead = Some(ahead);
        self.d_forward_fake_rows();

        let backward = phases::time(Phase::DBackward);
        let ws = &mut self.ws;
        let loss::DSums {
            loss_real,
            loss_fake,
            d_real,
            d_fake,
        } = loss::discriminator(self.cfg.loss, self.cfg.real_target, &ws.logits, &mut ws.dl);
        let d_loss = (-(loss_real + loss_fake) / b as f64) as f32;
        check_finite(step, "d_loss", d_loss)?;
        self.d_gradients();
        drop(backward);
        self.d_weights_and_adam();
        Ok((
            d_loss,
            (d_real / b as f64) as f32,
            (d_fake / b as f64) as f32,
        ))
    }

    /// This D update's G input into the workspace, and the cache the next one is drawn into.
    fn take_input(&mut self) -> NoiseAhead {
        let ws = &mut self.ws;
        let classes = self.gan.discriminator.label_inputs;
        // This update's G input: drawn during the previous one if the noise stream has not
        // been moved since (a restored checkpoint moves it), else now. The same draws from
        // the same stream either way, so the bits do not depend on it.
        let mut ahead = match self.ahead.take() {
            Some(mut a) if a.from == self.noise => {
                std::mem::swap(&mut ws.z, &mut a.z);
                std::mem::swap(&mut ws.fake_labels, &mut a.labels);
                self.noise = a.after.clone();
                a
            }
            other => {
                let _t = phases::time(Phase::Noise);
                let (g, odds) = (&self.gan.generator, &self.label_odds);
                draw_input(
                    &mut ws.z,
                    g.input(),
                    &mut ws.fake_labels,
                    classes,
                    odds,
                    &mut self.noise,
                );
                other.unwrap_or_else(|| NoiseAhead {
                    from: self.noise.clone(),
                    after: self.noise.clone(),
                    z: ws.z.clone(),
                    labels: ws.fake_labels.clone(),
                })
            }
        };
        ahead.from.clone_from(&self.noise);
        ahead.after.clone_from(&self.noise);
        ahead
    }

    /// G's forward pass (into D's fake rows) beside the real batch's gather, D's first layer
    /// on the real rows and the next update's noise (into `ahead`).
    fn g_forward_beside_real_rows(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
        ahead: &mut NoiseAhead,
    ) {
        let b = self.cfg.batch_size;
        let ws = &mut self.ws;
        let d = &self.gan.discriminator;
        let (d_in, classes) = (d.input(), d.label_inputs);
        // G's forward pass (writing its output as the fake half of D's input) runs beside
        // the real batch's gather and D's first layer on it, which do not depend on G: two
        // independent chains keep both cores busy without cutting any product. A
        // conditional GAN's images go through their own buffers first, to be joined with
        // their one-hot labels in D's input rows.
        let g = &self.gan.generator;
        let odds = &self.label_odds;
        let (z, g_out) = (&ws.z, &mut ws.g_out);
        let (g_pad, d_pad) = (&mut ws.g_pad, &mut ws.d_pad);
        let (real, fake) = ws.inp.split_at_mut(b * d_in);
        let (real_px, fake_px) = (&mut ws.real_px, &mut ws.fake_px);
        let (labels, fake_labels) = (&mut ws.labels, &ws.fake_labels);
        let mut first = ws.d_out.first_mut().map(|k| k.split_at_mut(b * d.sizes[1]));
        let (masks, dropout) = (&mut ws.d_masks, &mut self.dropout);
        let drop_p = self.cfg.model.d_dropout;
        rayon::join(
            || {
                let _t = phases::time(Phase::GForward);
                if classes == 0 {
                    generator_forward(g, z, g_out, fake, g_pad);
                } else {
                    generator_forward(g, z, g_out, fake_px, g_pad);
                    join_one_hot(fake, fake_px, fake_labels, classes);
                }
            },
            || {
                let gather = phases::time(Phase::Gather);
                let pixels = if classes == 0 {
                    &mut real[..]
                } else {
                    &mut real_px[..]
                };
                fill_real(pixels, labels);
                if g.output == Output::Tanh {
                    // A tanh generator draws on [-1, 1]: so do the real images it faces.
                    for v in pixels.iter_mut() {
                        *v = 2.0 * *v - 1.0;
                    }
                }
                if classes > 0 {
                    join_one_hot(real, real_px, labels, classes);
                }
                for mask in masks.iter_mut() {
                    draw_mask(mask, dropout, drop_p);
                }
                drop(gather);
                let d_real = phases::time(Phase::DForwardReal);
                if let Some((k_real, _)) = first.as_mut() {
                    layer_forward(k_real, real, d, 0, Split::None, d_pad);
                }
                drop(d_real);
                // This arm is the shorter by about the noise's time (`cargo xtask bench
                // --phases`), so the next update's noise goes here.
                let _t = phases::time(Phase::Noise);
                let NoiseAhead {
                    after, z, labels, ..
                } = ahead;
                draw_input(z, g.input(), labels, classes, odds, after);
            },
        );
    }

    /// D's first layer on the fake rows, its deeper layers (with dropout) and the logits of
    /// all `2B` rows.
    fn d_forward_fake_rows(&mut self) {
        let b = self.cfg.batch_size;
        let ws = &mut self.ws;
        let d = &self.gan.discriminator;
        let hidden = d.layers() - 1;
        let fake = &ws.inp[b * d.input()..];
        let first = ws.d_out.first_mut().map(|k| k.split_at_mut(b * d.sizes[1]));
        let _t = phases::time(Phase::DForwardFake);
        if let Some((_, k_fake)) = first {
            layer_forward(k_fake, fake, d, 0, Split::Cols(2), &mut ws.d_pad);
        }
        if let Some(mask) = ws.d_masks.first() {
            apply_mask(&mut ws.d_out[0], mask);
        }
        for l in 1..hidden {
            let (before, after) = ws.d_out.split_at_mut(l);
            let pad = &mut ws.d_pad;
            layer_forward(&mut after[0], &before[l - 1], d, l, Split::Cols(2), pad);
            if let Some(mask) = ws.d_masks.get(l) {
                apply_mask(&mut after[0], mask);
            }
        }
        let last = ws.d_out.last().unwrap_or(&ws.inp);
        kernels::rows_dot(&mut ws.logits, last, d.weight(hidden), d.bias(hidden)[0]);
    }

    /// D's gradients from `dl`: the output layer's weights, then every hidden layer's
    /// pre-activation (each needs the weights above it before their update) and biases.
    fn d_gradients(&mut self) {
        let b = self.cfg.batch_size;
        let ws = &mut self.ws;
        let hidden = self.gan.discriminator.layers() - 1;
        // Gradients at every hidden layer first (each needs the weights above it before their
        // update), then the weight gradients, each updated by Adam at once.
        let d = &self.gan.discriminator;
        let sizes = &d.sizes[..];
        {
            let last = ws.d_out.last().unwrap_or(&ws.inp);
            let (gw, gb) = split_layers_mut(sizes, &mut ws.grad_d)
                .next_back()
                .expect("an output layer");
            gw.fill(0.0);
            for (row, &gl) in last.chunks_exact(sizes[hidden]).zip(&ws.dl) {
                for (o, &a) in gw.iter_mut().zip(row) {
                    *o += gl * a;
                }
            }
            gb[0] = ws.dl.iter().sum();
        }
        let keep = 1.0 - self.cfg.model.d_dropout;
        if hidden > 0 {
            hidden_grad(
                &ws.d_out[hidden - 1],
                &ws.dl,
                d.weight(hidden),
                &mut ws.d_grad[hidden - 1],
                d.hidden_act,
                layer_mask(&ws.d_masks, hidden - 1, keep),
            );
            for l in (1..hidden).rev() {
                let mask = layer_mask(&ws.d_masks, l - 1, keep);
                back_through(&mut ws.d_grad, &ws.d_out, d, l, 2 * b, mask);
            }
            for ((_, gb), dg) in split_layers_mut(sizes, &mut ws.grad_d).zip(&ws.d_grad) {
                kernels::column_sums(gb, dg);
            }
        }
    }

    /// D's weight gradients, each block updated by Adam as soon as it is computed.
    fn d_weights_and_adam(&mut self) {
        let b = self.cfg.batch_size;
        let ws = &mut self.ws;
        let hidden = self.gan.discriminator.layers() - 1;
        let _t = phases::time(Phase::DWeightsAdam);
        // D's weight gradients (no gradient for its input: neither the real images nor G's
        // output need one). The first layer's, the largest, is cut into blocks of rows, each
        // updated by Adam as soon as it is computed, while it is still in cache.
        let k = self.adam_d.begin();
        let Mlp { sizes, params, .. } = &mut self.gan.discriminator;
        let sizes = &sizes[..];
        let (d_grad, d_out, inp) = (&ws.d_grad, &ws.d_out, &ws.inp);
        let layers = split_layers_mut(sizes, params)
            .zip(split_layers_mut(sizes, &mut ws.grad_d))
            .zip(
                split_layers_mut(sizes, &mut self.adam_d.m)
                    .zip(split_layers_mut(sizes, &mut self.adam_d.v)),
            );
        for (l, (((pw, pb), (gw, gb)), ((mw, mb), (vw, vb)))) in layers.enumerate() {
            if l == hidden {
                // The output layer: its gradient was formed above.
                adam::apply(&k, pw, gw, mw, vw);
                adam::apply(&k, pb, gb, mb, vb);
                continue;
            }
            let (width, below) = (sizes[l + 1], sizes[l]);
            let input = if l == 0 { &inp[..] } else { &d_out[l - 1][..] };
            adam::apply_in_blocks(&k, W1_ROW_BLOCK * below, [pw, gw, mw, vw], |i, g| {
                let lhs = View::transposed(&d_grad[l], 2 * b, width);
                kernels::matmul_rows(g, lhs, View::rows(input, 2 * b, below), i * W1_ROW_BLOCK);
            });
            adam::apply(&k, pb, gb, mb, vb);
        }
    }

    /// Updates G with the z of the D step, against the updated D. Returns g_loss.
    fn g_step(&mut self, step: u64) -> Result<f32, TrainError> {
        let forward = phases::time(Phase::GStepDForward);
        let b = self.cfg.batch_size;
        self.d_forward_on_fakes();
        let ws = &mut self.ws;
        let objective = loss::generator(self.cfg.loss, &ws.logits[..b], &mut ws.dl[..b]);
        let g_loss = (objective / b as f64) as f32;
        check_finite(step, "g_loss", g_loss)?;
        drop(forward);
        self.back_to_image();
        self.g_weights_and_adam();
        Ok(g_loss)
    }

    /// D (just updated) on G's images again, with fresh dropout masks, into the first `B`
    /// rows of its buffers and logits. G did not change since the D update, so its output
    /// and hidden layers are reused.
    fn d_forward_on_fakes(&mut self) {
        let b = self.cfg.batch_size;
        let ws = &mut self.ws;
        let d = &self.gan.discriminator;
        let d_hidden = d.layers() - 1;
        let d_in = d.input();
        // D's input rows for G's images.
        let fake = &ws.inp[b * d_in..];
        for mask in ws.g_masks.iter_mut() {
            draw_mask(mask, &mut self.dropout, self.cfg.model.d_dropout);
        }
        // G did not change since the D step, so its output and hidden layers are reused; D's
        // layers are run again on the fake rows only, into the first B rows of its buffers.
        for l in 0..d_hidden {
            let rows = b * d.sizes[l + 1];
            let (before, after) = ws.d_out.split_at_mut(l);
            let input = if l == 0 {
                fake
            } else {
                &before[l - 1][..b * d.sizes[l]]
            };
            let pad = &mut ws.d_pad;
            layer_forward(&mut after[0][..rows], input, d, l, Split::Cols(2), pad);
            if let Some(mask) = ws.g_masks.get(l) {
                apply_mask(&mut after[0][..rows], mask);
            }
        }
        let last = match ws.d_out.last() {
            Some(k) => &k[..b * d.sizes[d_hidden]],
            None => fake,
        };
        kernels::rows_dot(
            &mut ws.logits[..b],
            last,
            d.weight(d_hidden),
            d.bias(d_hidden)[0],
        );
    }

    /// The gradient of G's loss at its output's pre-activation (`dfake`), back through D's
    /// layers (not its weights: their gradients are not needed here) and G's output.
    fn back_to_image(&mut self) {
        let back = phases::time(Phase::BackToImage);
        let b = self.cfg.batch_size;
        let x = IMAGE_PIXELS;
        let ws = &mut self.ws;
        let d = &self.gan.discriminator;
        let d_hidden = d.layers() - 1;
        let d_in = d.input();
        // G's images alone (D's input rows without their labels).
        let fake_px = if d.label_inputs == 0 {
            &ws.inp[b * d_in..]
        } else {
            &ws.fake_px[..]
        };
        // Back through D to G's output only: D's weight gradients are not needed here.
        let w_out = d.weight(d_hidden);
        if d_hidden == 0 {
            for (row, &g) in ws.dfake.chunks_exact_mut(x).zip(&ws.dl[..b]) {
                for (o, &w) in row.iter_mut().zip(w_out) {
                    *o = g * w;
                }
            }
        } else {
            let top = d_hidden - 1;
            let rows = b * d.sizes[d_hidden];
            let keep = 1.0 - self.cfg.model.d_dropout;
            hidden_grad(
                &ws.d_out[top][..rows],
                &ws.dl[..b],
                w_out,
                &mut ws.d_grad[top][..rows],
                d.hidden_act,
                layer_mask(&ws.g_masks, top, keep),
            );
            for l in (1..d_hidden).rev() {
                let mask = layer_mask(&ws.g_masks, l - 1, keep);
                back_through(&mut ws.d_grad, &ws.d_out, d, l, b, mask);
            }
            // Only the pixel columns of D's first layer: the label needs no gradient.
            matmul(
                &mut ws.dfake,
                View::rows(&ws.d_grad[0][..b * d.sizes[1]], b, d.sizes[1]),
                View::strided(d.weight(0), d.sizes[1], x, d_in),
                Split::Cols(2),
            );
        }
        scale_by_output_derivative(&mut ws.dfake, fake_px, self.gan.generator.output);
        drop(back);
    }

    /// G's weight gradients layer by layer, each updated by Adam: the output layer's in
    /// blocks beside the chain through the hidden layers.
    fn g_weights_and_adam(&mut self) {
        let b = self.cfg.batch_size;
        let x = IMAGE_PIXELS;
        let ws = &mut self.ws;
        let g = &self.gan.generator;
        let g_hidden = g.layers() - 1;

        let k = self.adam_g.begin();
        let Mlp {
            sizes,
            params,
            hidden_act: act,
            ..
        } = &mut self.gan.generator;
        let (sizes, act) = (&sizes[..], *act);
        let mut grads = split_layers_mut(sizes, &mut ws.grad_g);
        let mut params = split_layers_mut(sizes, params);
        let mut ms = split_layers_mut(sizes, &mut self.adam_g.m);
        let mut vs = split_layers_mut(sizes, &mut self.adam_g.v);
        let (gw_out, gb_out) = grads.next_back().expect("an output layer");
        let (pw_out, pb_out) = params.next_back().expect("an output layer");
        let (mw_out, mb_out) = ms.next_back().expect("an output layer");
        let (vw_out, vb_out) = vs.next_back().expect("an output layer");
        let (dfake, g_out, g_grad, z) = (&ws.dfake, &ws.g_out, &mut ws.g_grad, &ws.z);
        let g_out_step = &mut ws.g_out_step;
        let below_out = sizes[g_hidden];
        let top_input: &[f32] = g_out.last().unwrap_or(z);
        // The output layer's weight gradient and Adam's moments run beside the chain through
        // G's hidden layers, which starts by reading the output weights: so their update is
        // only computed (into `g_out_step`) and subtracted after both are done.
        let pw_read: &[f32] = pw_out;
        rayon::join(
            || {
                let _t = phases::time(Phase::GOutputAdam);
                // The output layer's weight gradient in blocks of rows, each turned into its
                // update at once, while it is in cache.
                adam::steps_in_blocks(
                    &k,
                    W2_ROW_BLOCK * below_out,
                    [gw_out, mw_out, vw_out, g_out_step],
                    |i, g| {
                        let lhs = View::transposed(dfake, b, x);
                        kernels::matmul_rows(
                            g,
                            lhs,
                            View::rows(top_input, b, below_out),
                            i * W2_ROW_BLOCK,
                        );
                    },
                );
            },
            || {
                if g_hidden > 0 {
                    let _t = phases::time(Phase::GHiddenGrad);
                    matmul(
                        &mut g_grad[g_hidden - 1],
                        View::rows(dfake, b, x),
                        View::rows(pw_read, x, below_out),
                        Split::Cols(2),
                    );
                }
                let _t = phases::time(Phase::GHiddenAdam);
                kernels::column_sums(gb_out, dfake);
                adam::apply(&k, pb_out, gb_out, mb_out, vb_out);
                // Hidden layers from the top down: each layer's gradient reaches the layer
                // below through its weights before they are updated.
                let layers = params.zip(grads).zip(ms.zip(vs));
                for (l, (((pw, pb), (gw, gb)), ((mw, mb), (vw, vb)))) in layers.enumerate().rev() {
                    scale_by_derivative(&mut g_grad[l], &g_out[l], act, None);
                    if l > 0 {
                        let (below, here) = g_grad.split_at_mut(l);
                        matmul(
                            &mut below[l - 1],
                            View::rows(&here[0], b, sizes[l + 1]),
                            View::rows(pw, sizes[l + 1], sizes[l]),
                            Split::Cols(2),
                        );
                    }
                    let input = if l == 0 { &z[..] } else { &g_out[l - 1][..] };
                    matmul(
                        gw,
                        View::transposed(&g_grad[l], b, sizes[l + 1]),
                        View::rows(input, b, sizes[l]),
                        Split::Cols(2),
                    );
                    kernels::column_sums(gb, &g_grad[l]);
                    adam::apply(&k, pw, gw, mw, vw);
                    adam::apply(&k, pb, gb, mb, vb);
                }
            },
        );
        let _t = phases::time(Phase::GOutputAdam);
        adam::subtract_steps(pw_out, &ws.g_out_step);
    }
}

/// Rows of a hidden layer's weight gradient per block (fixed: results never depend on the
/// thread count).
const W1_ROW_BLOCK: usize = 64;
/// Rows of G's output weight matrix per block of its gradient.
const W2_ROW_BLOCK: usize = 200;

/// `out = act(input · W_lᵀ + b_l)`: layer `l` of `mlp` (a hidden one) for the rows of `input`.
fn layer_forward(
    out: &mut [f32],
    input: &[f32],
    mlp: &Mlp,
    l: usize,
    split: Split,
    pad: &mut [f32],
) {
    let (i, h) = (mlp.sizes[l], mlp.sizes[l + 1]);
    let a = View::rows(input, input.len() / i, i);
    kernels::matmul_by_transposed(out, a, mlp.weight(l), h, split, pad);
    bias_activation(out, mlp.bias(l), mlp.hidden_act);
}

/// G's forward pass for noise `z`: its hidden layers into `hidden`, its output into `out`.
fn generator_forward(
    g: &Mlp,
    z: &[f32],
    hidden: &mut [Vec<f32>],
    out: &mut [f32],
    pad: &mut [f32],
) {
    for l in 0..hidden.len() {
        let (before, after) = hidden.split_at_mut(l);
        let input = if l == 0 { z } else { &before[l - 1][..] };
        layer_forward(&mut after[0], input, g, l, Split::Cols(2), pad);
    }
    let top = g.layers() - 1;
    let (i, o) = (g.sizes[top], g.sizes[top + 1]);
    let input = hidden.last().map_or(z, |h| &h[..]);
    let a = View::rows(input, input.len() / i, i);
    kernels::matmul_by_transposed(out, a, g.weight(top), o, Split::Cols(2), pad);
    bias_output(out, g.bias(top), g.output);
}

/// Hidden layer `l`'s masks among `masks` (none without dropout).
fn layer_mask(masks: &[Vec<f32>], l: usize, keep: f32) -> Mask<'_> {
    masks.get(l).map(|m| (&m[..], keep))
}

/// Gradient at the last hidden layer's pre-activation of a one-unit output layer with
/// weights `w`: `dl[r] * w ⊙ act'` (and the layer's dropout mask).
fn hidden_grad(k: &[f32], dl: &[f32], w: &[f32], out: &mut [f32], act: Activation, mask: Mask) {
    let h = w.len();
    if mask.is_some() {
        for (o, &g) in out.chunks_exact_mut(h).zip(dl) {
            for (o, &w) in o.iter_mut().zip(w) {
                *o = g * w;
            }
        }
        return scale_by_derivative(&mut out[..dl.len() * h], k, act, mask);
    }
    for ((row, o), &g) in k.chunks_exact(h).zip(out.chunks_exact_mut(h)).zip(dl) {
        match act {
            Activation::Relu => {
                for ((o, &a), &w) in o.iter_mut().zip(row).zip(w) {
                    // The product is taken before the choice so the loop compiles to a
                    // select: a branch on the unit's sign is mispredicted half the time
                    // once training has mixed the units (5.7% of a late step, perf).
                    let p = g * w;
                    *o = if a > 0.0 { p } else { 0.0 };
                }
            }
            other => other.fixed(|act| {
                for ((o, &a), &w) in o.iter_mut().zip(row).zip(w) {
                    *o = g * w * act.derivative_at_output(a);
                }
            }),
        }
    }
}

/// The gradient at hidden layer `l - 1`'s pre-activation from layer `l`'s, through `W_l`,
/// for the first `rows` rows of the buffers (`mask`: layer `l - 1`'s dropout).
fn back_through(
    grad: &mut [Vec<f32>],
    out: &[Vec<f32>],
    mlp: &Mlp,
    l: usize,
    rows: usize,
    mask: Mask,
) {
    let (above, below) = (mlp.sizes[l + 1], mlp.sizes[l]);
    let (lower, upper) = grad.split_at_mut(l);
    let dst = &mut lower[l - 1][..rows * below];
    matmul(
        dst,
        View::rows(&upper[0][..rows * above], rows, above),
        View::rows(mlp.weight(l), above, below),
        Split::Cols(2),
    );
    scale_by_derivative(dst, &out[l - 1][..rows * below], mlp.hidden_act, mask);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Trainer {
        let cfg = TrainConfig {
            model: ModelConfig {
                noise_dim: 8,
                g_hidden: vec![16],
                d_hidden: vec![16],
                init_std: 0.1,
                ..ModelConfig::default()
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
        t.d_step(1, &mut |_, _| {}).unwrap();
        assert_eq!(t.gan.generator, before.generator);
        assert_ne!(t.gan.discriminator, before.discriminator);
        let after_d = t.gan.clone();
        t.g_step(1).unwrap();
        assert_eq!(t.gan.discriminator, after_d.discriminator);
        assert_ne!(t.gan.generator, after_d.generator);
    }

    /// The product list adds up to the step's FLOPs counted in closed form.
    #[test]
    fn the_products_add_up_to_the_step() {
        let macs = |sizes: &[usize], rows: usize| -> f64 {
            sizes.windows(2).map(|w| (rows * w[0] * w[1]) as f64).sum()
        };
        let mut deeper = TrainConfig::tutorial();
        deeper.model.g_hidden = vec![256, 512];
        deeper.model.d_hidden = vec![512, 256];
        deeper.d_steps = 2;
        for cfg in [TrainConfig::tutorial(), deeper] {
            let (g, d) = (cfg.model.generator_sizes(), cfg.model.discriminator_sizes());
            let b = cfg.batch_size;
            let d_update = macs(&g, b) + 2.0 * macs(&d, 2 * b) + macs(&d[1..], 2 * b);
            let g_update = 2.0 * macs(&d, b) + macs(&g, b) + macs(&g[1..], b);
            let want = 2.0 * (cfg.d_steps as f64 * d_update + g_update);
            let products = step_products(&cfg);
            assert_eq!(
                crate::train::flops::total_flops(&products),
                want,
                "{products:?}"
            );
        }
    }
}
