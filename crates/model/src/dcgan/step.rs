//! The DCGAN's trainer: the MLPs' step (one noise batch, D's update on real and fake images,
//! then G's with the same noise against the updated D) on the DCGAN's passes (`passes.rs`),
//! with the run's state and what it saves.

use rand_chacha::ChaCha8Rng;

use crate::dcgan::networks::{d_sides, g_sides, stride_2, ConvGenerator, Dcgan};
use crate::dcgan::passes::{
    discriminator_backward, discriminator_forward, generator_backward, generator_forward,
    labels_of_one_hot, DBuffers, GBuffers,
};
use crate::dcgan::sample::average_generator;
use crate::layers::activation::Output;
use crate::layers::batch_norm;
use crate::layers::conv::Scratch;
use crate::optim::adam::Adam;
use crate::optim::average::update_average;
use crate::rng::{stream, Stream};
use crate::train::awake::with_workers_awake;
use crate::train::config::{Arch, TrainConfig, IMAGE_PIXELS};
use crate::train::input::{draw_input, LabelOdds};
use crate::train::step::{check_finite, Step, StepStats, TrainError, TrainerState};

/// A DCGAN's whole training state plus the buffers its step works in.
pub struct DcganTrainer {
    cfg: TrainConfig,
    gan: Dcgan,
    adam_g: Adam,
    adam_d: Adam,
    noise: ChaCha8Rng,
    /// Draws D's dropout masks (untouched without dropout).
    dropout: ChaCha8Rng,
    /// How G's labels are drawn (a conditional GAN's).
    label_odds: LabelOdds,
    /// The run's seed, for the averaged G's statistics ([`Step::sampling_generator`]).
    seed: u64,
    ema: Option<Vec<f32>>,
    steps_done: u64,
    /// D's input: `B` real images, then `B` of G's (G writes straight into them).
    inp: Vec<f32>,
    /// The labels of D's input rows: the real batch's, then those G was asked for (only a
    /// conditional GAN reads them).
    labels: Vec<u8>,
    d: DBuffers,
    g: GBuffers,
    grad_d: Vec<f32>,
    grad_g: Vec<f32>,
    scratch: Scratch,
}

impl Step for DcganTrainer {
    type Networks = Dcgan;
    type Generator = ConvGenerator;

    /// A fresh run of the DCGAN `cfg.model.arch` describes: weights from the seed's init
    /// stream, noise from its noise stream.
    fn new(cfg: TrainConfig, seed: u64) -> DcganTrainer {
        let Arch::Dcgan(shape) = &cfg.model.arch else {
            panic!("DcganTrainer::new needs model.arch = dcgan");
        };
        let gan = Dcgan::init(&cfg, shape, &mut stream(seed, Stream::Init));
        DcganTrainer::from_parts(cfg, gan, seed)
    }

    /// Continues from a saved state; `seed` must be the run's seed, and the state must fit
    /// `cfg` ([`TrainerState::check_fits`]).
    fn restore(cfg: TrainConfig, seed: u64, state: TrainerState<Dcgan>) -> DcganTrainer {
        let (adam_g, adam_d) = (cfg.adam_g(), cfg.adam_d());
        let mut t = DcganTrainer::from_parts(cfg, state.gan, seed);
        t.adam_g = state.adam_g;
        t.adam_d = state.adam_d;
        t.adam_g.cfg = adam_g;
        t.adam_d.cfg = adam_d;
        t.noise.set_word_pos(state.noise_pos);
        t.dropout.set_word_pos(state.dropout_pos);
        if let (Some(ema), Some(params)) = (t.ema.as_mut(), state.g_ema) {
            *ema = params;
        }
        t.steps_done = state.steps_done;
        t
    }

    fn state(&self) -> TrainerState<Dcgan> {
        TrainerState {
            gan: self.gan.clone(),
            adam_g: self.adam_g.clone(),
            adam_d: self.adam_d.clone(),
            noise_pos: self.noise.get_word_pos(),
            dropout_pos: self.dropout.get_word_pos(),
            g_ema: self.ema.clone(),
            steps_done: self.steps_done,
        }
    }

    fn steps_done(&self) -> u64 {
        self.steps_done
    }

    /// One step whose real batches `fill_real` writes (`batch_size x 784` in [0, 1], and the
    /// labels), once before each D update.
    fn step_with(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        self.step_inner(fill_real, None, None)
    }

    /// The generator to sample from: with `g_ema`, G with the moving average of its weights
    /// and batch-normalisation statistics of its own ([`average_generator`]), G itself
    /// otherwise.
    fn sampling_generator(&self) -> ConvGenerator {
        match &self.ema {
            Some(ema) => {
                average_generator(&self.gan.generator, ema, self.cfg.batch_size, self.seed)
            }
            None => self.gan.generator.clone(),
        }
    }

    /// The networks to save as the run's model: D and [`Step::sampling_generator`].
    fn model_to_save(&self) -> Dcgan {
        Dcgan {
            generator: self.sampling_generator(),
            discriminator: self.gan.discriminator.clone(),
        }
    }
}

impl DcganTrainer {
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Starts training from given networks (fresh optimiser state).
    pub fn from_parts(cfg: TrainConfig, gan: Dcgan, seed: u64) -> DcganTrainer {
        assert!(cfg.batch_size > 0, "batch size must be positive");
        assert!(cfg.d_steps > 0, "at least one D update per step");
        let drop_p = cfg.model.d_dropout;
        assert!(
            (0.0..1.0).contains(&drop_p),
            "dropout probability in [0, 1)"
        );
        let b = cfg.batch_size;
        let [g1, g2] = gan.generator.channels;
        let [d1, d2] = gan.discriminator.channels;
        let mut scratch = Scratch::default();
        let (s1, s2) = g_sides(b);
        scratch.reserve(&stride_2(g1, g2), &s1, true);
        scratch.reserve(&stride_2(g2, 1), &s2, true);
        let (s1, s2) = d_sides(2 * b);
        scratch.reserve(&stride_2(1, d1), &s1, false);
        scratch.reserve(&stride_2(d1, d2), &s2, false);
        let zeros = |n: usize| vec![0.0f32; n];
        let d = DBuffers::new(b, &gan.discriminator, drop_p);
        let g = GBuffers::new(b, &gan.generator);
        DcganTrainer {
            adam_g: Adam::new(cfg.adam_g(), gan.generator.params.len()),
            adam_d: Adam::new(cfg.adam_d(), gan.discriminator.params.len()),
            noise: stream(seed, Stream::Noise),
            dropout: stream(seed, Stream::Dropout),
            label_odds: LabelOdds::new(&gan.generator.label_counts),
            seed,
            ema: cfg.g_ema.map(|_| gan.generator.params.clone()),
            steps_done: 0,
            inp: zeros(2 * b * IMAGE_PIXELS),
            labels: vec![0; 2 * b],
            grad_d: zeros(gan.discriminator.params.len()),
            grad_g: zeros(gan.generator.params.len()),
            d,
            g,
            scratch,
            cfg,
            gan,
        }
    }

    pub fn gan(&self) -> &Dcgan {
        &self.gan
    }

    /// The buffer the next step reads its real images from (`batch_size x 784`, [0, 1]).
    pub fn real_batch_mut(&mut self) -> &mut [f32] {
        &mut self.inp[..self.cfg.batch_size * IMAGE_PIXELS]
    }

    /// The gradients of the last step's minimised losses, laid out like the parameters:
    /// `(generator, discriminator)`.
    pub fn last_gradients(&self) -> (&[f32], &[f32]) {
        (&self.grad_g, &self.grad_d)
    }

    /// G's input in the last step (`batch_size x (noise_dim + classes)`: the noise, then a
    /// conditional G's one-hot label).
    pub fn last_noise(&self) -> &[f32] {
        &self.g.z
    }

    /// One step with the given noise (`batch_size` rows of G's input for each D update; a
    /// conditional G's rows end in the label one-hot, which is the label D sees with the
    /// image) instead of the noise stream's: for replaying another program's inputs, as the
    /// oracle tests do.
    pub fn step_with_noise(
        &mut self,
        noise: &[f32],
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        self.step_inner(fill_real, Some(noise), None)
    }

    /// [`DcganTrainer::step_with_noise`] with D's dropout masks given too (0 for a dropped
    /// unit, `1 / (1 - d_dropout)` for a kept one) in the order the step draws them: for
    /// each D update the `2B` rows of D's first layer (`C1 x 14 x 14` each), then the `2B`
    /// of its second (`C2 x 7 x 7`); then the `B` rows of each for G's update.
    pub fn step_with_noise_and_masks(
        &mut self,
        noise: &[f32],
        masks: &[f32],
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        let per_row: usize = self.gan.discriminator.widths().iter().sum();
        let rows = (2 * self.cfg.d_steps + 1) * self.cfg.batch_size;
        assert!(
            self.cfg.model.d_dropout > 0.0,
            "masks need model.d_dropout > 0"
        );
        assert_eq!(masks.len(), rows * per_row, "one mask per unit and row");
        self.step_inner(fill_real, Some(noise), Some(masks))
    }

    fn step_inner(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
        noise: Option<&[f32]>,
        masks: Option<&[f32]>,
    ) -> Result<StepStats, TrainError> {
        with_workers_awake(|| self.step_awake(fill_real, noise, masks))
    }

    /// [`DcganTrainer::step_inner`]'s work, run with the pool's other threads kept awake.
    fn step_awake(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
        noise: Option<&[f32]>,
        masks: Option<&[f32]>,
    ) -> Result<StepStats, TrainError> {
        let step = self.steps_done + 1;
        let k = self.cfg.d_steps;
        let per_update = self.g.z.len();
        let d_masks =
            2 * self.cfg.batch_size * self.gan.discriminator.widths().iter().sum::<usize>();
        let mut sums = [0.0f64; 3];
        for i in 0..k {
            let z = noise.map(|n| &n[i * per_update..(i + 1) * per_update]);
            let m = masks.map(|m| &m[i * d_masks..(i + 1) * d_masks]);
            let (loss, real, fake) = self.d_step(step, fill_real, z, m)?;
            for (s, v) in sums.iter_mut().zip([loss, real, fake]) {
                *s += v as f64;
            }
        }
        let [d_loss, d_real, d_fake] = sums.map(|s| (s / k as f64) as f32);
        let g_loss = self.g_step(step, masks.map(|m| &m[k * d_masks..]))?;
        if let (Some(ema), Some(decay)) = (self.ema.as_mut(), self.cfg.g_ema) {
            update_average(ema, &self.gan.generator.params, decay);
        }
        self.steps_done = step;
        Ok(StepStats {
            d_loss,
            g_loss,
            d_real,
            d_fake,
        })
    }

    fn d_step(
        &mut self,
        step: u64,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
        given_noise: Option<&[f32]>,
        given_masks: Option<&[f32]>,
    ) -> Result<(f32, f32, f32), TrainError> {
        let b = self.cfg.batch_size;
        let (real, fake) = self.inp.split_at_mut(b * IMAGE_PIXELS);
        let (g, gbuf, noise) = (&mut self.gan.generator, &mut self.g, &mut self.noise);
        let odds = &self.label_odds;
        let (real_labels, fake_labels) = self.labels.split_at_mut(b);
        let tanh = g.output == Output::Tanh;
        let scratch = &mut self.scratch;
        let (masks, dropout) = (&mut self.d.dropout, &mut self.dropout);
        let widths = self.gan.discriminator.widths();
        // G's forward pass beside the real batch's gather, which does not depend on it.
        rayon::join(
            || {
                match given_noise {
                    Some(z) => {
                        gbuf.z.copy_from_slice(z);
                        labels_of_one_hot(z, g.classes, fake_labels);
                    }
                    None => draw_input(&mut gbuf.z, g.input(), fake_labels, g.classes, odds, noise),
                }
                generator_forward(g, gbuf, fake, scratch, batch_norm::MOMENTUM);
            },
            || {
                masks.draw(2 * b, widths, dropout, given_masks);
                fill_real(real, real_labels);
                if tanh {
                    // A tanh generator draws on [-1, 1]: so do the real images it faces.
                    for v in real.iter_mut() {
                        *v = 2.0 * *v - 1.0;
                    }
                }
            },
        );
        let d = &self.gan.discriminator;
        let labels = &self.labels;
        discriminator_forward(
            d,
            &self.inp,
            2 * b,
            2,
            labels,
            &mut self.d,
            &mut self.scratch,
        );
        let sums = crate::loss::discriminator(
            self.cfg.loss,
            self.cfg.real_target,
            &self.d.logits,
            &mut self.d.dl,
        );
        let d_loss = (-(sums.loss_real + sums.loss_fake) / b as f64) as f32;
        check_finite(step, "d_loss", d_loss)?;
        self.grad_d.fill(0.0);
        discriminator_backward(
            d,
            &self.inp,
            2 * b,
            2,
            labels,
            &mut self.d,
            Some(&mut self.grad_d),
            None,
            &mut self.scratch,
        );
        self.adam_d
            .update(&mut self.gan.discriminator.params, &self.grad_d);
        Ok((
            d_loss,
            (sums.d_real / b as f64) as f32,
            (sums.d_fake / b as f64) as f32,
        ))
    }

    fn g_step(&mut self, step: u64, given_masks: Option<&[f32]>) -> Result<f32, TrainError> {
        let b = self.cfg.batch_size;
        let d = &self.gan.discriminator;
        let fake = &self.inp[b * IMAGE_PIXELS..];
        self.d
            .dropout
            .draw(b, d.widths(), &mut self.dropout, given_masks);
        // G has not changed since the D update: its output and layers are reused, and only D
        // runs again, on the fake images alone.
        let labels = &self.labels[b..];
        discriminator_forward(d, fake, b, 1, labels, &mut self.d, &mut self.scratch);
        let objective =
            crate::loss::generator(self.cfg.loss, &self.d.logits[..b], &mut self.d.dl[..b]);
        let g_loss = (objective / b as f64) as f32;
        check_finite(step, "g_loss", g_loss)?;
        discriminator_backward(
            d,
            fake,
            b,
            1,
            labels,
            &mut self.d,
            None,
            Some(&mut self.g.dout),
            &mut self.scratch,
        );
        self.grad_g.fill(0.0);
        generator_backward(
            &self.gan.generator,
            fake,
            &mut self.g,
            &mut self.grad_g,
            &mut self.scratch,
        );
        self.adam_g
            .update(&mut self.gan.generator.params, &self.grad_g);
        Ok(g_loss)
    }
}
