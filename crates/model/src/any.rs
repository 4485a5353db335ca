//! One type per role over every architecture, for the code around training (the runner,
//! evaluation, the tools): a run's networks ([`Model`]), the generator pictures and metrics
//! come from ([`Generator`]), a trainer ([`AnyTrainer`]) and its saved state ([`AnyState`]).
//! Each dispatches to the MLP ([`crate::mlp`]) or DCGAN ([`crate::dcgan`]) code through the
//! traits every architecture implements ([`crate::train::step`]).

use crate::dcgan::{average_generator, ConvGenerator, Dcgan, DcganTrainer};
use crate::layers::activation::Output;
use crate::mlp::{Gan, Mlp, Trainer};
use crate::train::config::{Arch, TrainConfig};
use crate::train::input::labels_to_ask;
use crate::train::step::{Step, StepStats, TrainError, TrainerState};

/// Both networks of a run, whatever their architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    Mlp(Gan),
    Dcgan(Dcgan),
}

impl Model {
    pub fn generator(&self) -> Generator {
        match self {
            Model::Mlp(gan) => Generator::Mlp(gan.generator.clone()),
            Model::Dcgan(gan) => Generator::Dcgan(gan.generator.clone()),
        }
    }

    pub fn into_generator(self) -> Generator {
        match self {
            Model::Mlp(gan) => Generator::Mlp(gan.generator),
            Model::Dcgan(gan) => Generator::Dcgan(gan.generator),
        }
    }
}

/// A generator of either architecture: what pictures, samples and evaluation draw from.
#[derive(Debug, Clone, PartialEq)]
pub enum Generator {
    Mlp(Mlp),
    Dcgan(ConvGenerator),
}

impl Generator {
    /// Images for the inputs `z` (rows of [`Generator::input_size`]), `n x 784` in [0, 1]
    /// whatever the output range.
    pub fn generate(&self, z: &[f32]) -> Vec<f32> {
        match self {
            Generator::Mlp(g) => g.generate(z),
            Generator::Dcgan(g) => g.generate(z),
        }
    }

    /// Length of one input row: the noise, then a conditional GAN's one-hot label.
    pub fn input_size(&self) -> usize {
        match self {
            Generator::Mlp(g) => g.input(),
            Generator::Dcgan(g) => g.input(),
        }
    }

    /// A conditional generator's classes (0: unconditional).
    pub fn classes(&self) -> usize {
        match self {
            Generator::Mlp(g) => g.label_inputs,
            Generator::Dcgan(g) => g.classes,
        }
    }

    /// How often sampling asks for each class, in proportion (a self-conditioned
    /// generator's cluster sizes); empty: every class equally often.
    pub fn label_counts(&self) -> &[u32] {
        match self {
            Generator::Mlp(g) => &g.label_counts,
            Generator::Dcgan(g) => &g.label_counts,
        }
    }

    /// Whether the labels it is asked for are digits: a conditional generator's, not a
    /// self-conditioned one's (whose labels are cluster ids) nor an unconditional one's.
    pub fn asks_for_digits(&self) -> bool {
        self.classes() > 0 && self.label_counts().is_empty()
    }

    /// The `n` labels sampling asks for ([`labels_to_ask`]).
    pub fn labels_to_ask(&self, n: usize) -> Vec<u8> {
        labels_to_ask(n, self.classes(), self.label_counts())
    }

    pub fn noise_dim(&self) -> usize {
        self.input_size() - self.classes()
    }

    pub fn output(&self) -> Output {
        match self {
            Generator::Mlp(g) => g.output,
            Generator::Dcgan(g) => g.output,
        }
    }

    /// Every number the generator computes with (weights, and a DCGAN's running statistics).
    pub fn numbers(&self) -> impl Iterator<Item = f32> + '_ {
        let (params, running): (&[f32], &[f32]) = match self {
            Generator::Mlp(g) => (&g.params, &[]),
            Generator::Dcgan(g) => (&g.params, &g.running),
        };
        params.iter().chain(running).copied()
    }
}

/// A training state of either architecture (what a checkpoint holds).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyState {
    Mlp(TrainerState<Gan>),
    Dcgan(TrainerState<Dcgan>),
}

impl AnyState {
    pub fn steps_done(&self) -> u64 {
        match self {
            AnyState::Mlp(s) => s.steps_done,
            AnyState::Dcgan(s) => s.steps_done,
        }
    }

    /// The moving average of G's weights the state holds (`train.g_ema`), as the run would
    /// sample it: a DCGAN's with its own batch-normalisation statistics, from the run's
    /// `seed` and `batch_size` ([`average_generator`]). `None` without one.
    pub fn average_generator(&self, batch_size: usize, seed: u64) -> Option<Generator> {
        match self {
            AnyState::Mlp(s) => s.g_ema.as_ref().map(|ema| {
                let mut g = s.gan.generator.clone();
                g.params.clone_from(ema);
                Generator::Mlp(g)
            }),
            AnyState::Dcgan(s) => s.g_ema.as_ref().map(|ema| {
                Generator::Dcgan(average_generator(&s.gan.generator, ema, batch_size, seed))
            }),
        }
    }

    /// Whether the state's networks are those `cfg` describes, so that a checkpoint is never
    /// continued under a spec whose model it does not match.
    pub fn check_fits(&self, cfg: &TrainConfig) -> Result<(), String> {
        match self {
            AnyState::Mlp(s) => s.check_fits(cfg),
            AnyState::Dcgan(s) => s.check_fits(cfg),
        }
    }
}

/// A trainer of the architecture its config names.
pub enum AnyTrainer {
    Mlp(Box<Trainer>),
    Dcgan(Box<DcganTrainer>),
}

impl AnyTrainer {
    /// A fresh run of `cfg.model.arch`.
    pub fn new(cfg: TrainConfig, seed: u64) -> AnyTrainer {
        match cfg.model.arch {
            Arch::Mlp => AnyTrainer::Mlp(Box::new(Trainer::new(cfg, seed))),
            Arch::Dcgan(_) => AnyTrainer::Dcgan(Box::new(DcganTrainer::new(cfg, seed))),
        }
    }

    /// Continues from `state`, which must fit `cfg` ([`AnyState::check_fits`]).
    pub fn restore(cfg: TrainConfig, seed: u64, state: AnyState) -> AnyTrainer {
        match state {
            AnyState::Mlp(s) => AnyTrainer::Mlp(Box::new(Trainer::restore(cfg, seed, s))),
            AnyState::Dcgan(s) => AnyTrainer::Dcgan(Box::new(DcganTrainer::restore(cfg, seed, s))),
        }
    }

    pub fn state(&self) -> AnyState {
        match self {
            AnyTrainer::Mlp(t) => AnyState::Mlp(t.state()),
            AnyTrainer::Dcgan(t) => AnyState::Dcgan(t.state()),
        }
    }

    pub fn steps_done(&self) -> u64 {
        match self {
            AnyTrainer::Mlp(t) => t.steps_done(),
            AnyTrainer::Dcgan(t) => t.steps_done(),
        }
    }

    /// One step whose real batches `fill_real` writes (see [`Step::step_with`]).
    pub fn step_with(
        &mut self,
        fill_real: &mut (dyn FnMut(&mut [f32], &mut [u8]) + Send),
    ) -> Result<StepStats, TrainError> {
        match self {
            AnyTrainer::Mlp(t) => t.step_with(fill_real),
            AnyTrainer::Dcgan(t) => t.step_with(fill_real),
        }
    }

    /// The generator pictures and evaluation use (the moving average of G's weights with
    /// `g_ema`).
    pub fn sampling_generator(&self) -> Generator {
        match self {
            AnyTrainer::Mlp(t) => Generator::Mlp(t.sampling_generator()),
            AnyTrainer::Dcgan(t) => Generator::Dcgan(t.sampling_generator()),
        }
    }

    /// The networks to save as the run's model.
    pub fn model_to_save(&self) -> Model {
        match self {
            AnyTrainer::Mlp(t) => Model::Mlp(t.model_to_save()),
            AnyTrainer::Dcgan(t) => Model::Dcgan(t.model_to_save()),
        }
    }
}
