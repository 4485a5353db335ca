//! Recording a run so another program can replay it step for step: the lockstep comparison
//! with the tutorial's TensorFlow program (`tools/lockstep/`) feeds TensorFlow the very
//! initial weights, batches and noise this trainer used, then compares what both computed.

use sha2::{Digest, Sha256};

use crate::mlp::networks::Gan;
use crate::mlp::reference;
use crate::mlp::step::Trainer;
use crate::train::config::{TrainConfig, IMAGE_PIXELS};
use crate::train::step::{Step, StepStats, TrainError, TrainerState};

/// Everything that decides a run's first steps besides the images themselves, and what the
/// trainer computed from it.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The state before the first step: weights, both Adam states, step count.
    pub init: TrainerState<Gan>,
    /// The training-image indices of every step, `steps x batch_size`.
    pub indices: Vec<u32>,
    /// The noise batch of every step, `steps x batch_size x noise_dim`.
    pub noise: Vec<f32>,
    /// What every step reported.
    pub stats: Vec<StepStats>,
}

impl Recording {
    /// SHA-256 (hex) of the inputs a replay needs: the initial weights and Adam moments
    /// (generator then discriminator, each in buffer order), the Adam step counts, indices
    /// and noise, all little-endian. A committed
    /// trace of another program names the digest of the inputs it was made from, so a change
    /// to the initialisation, data order or noise is told apart from a change to the step.
    pub fn input_digest(&self) -> String {
        let mut h = Sha256::new();
        let s = &self.init;
        for v in [&s.gan.generator.params, &s.gan.discriminator.params]
            .into_iter()
            .chain([&s.adam_g.m, &s.adam_g.v, &s.adam_d.m, &s.adam_d.v])
            .chain([&self.noise])
            .flatten()
        {
            h.update(v.to_le_bytes());
        }
        h.update(s.adam_g.t.to_le_bytes());
        h.update(s.adam_d.t.to_le_bytes());
        for i in &self.indices {
            h.update(i.to_le_bytes());
        }
        hex(&h.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `steps` steps of `trainer`, recording their inputs. `next_batch` writes the step's
/// real images into the buffer it is given and returns their indices; `after_step` sees the
/// trainer after every step (for weight dumps).
pub fn record(
    trainer: &mut Trainer,
    steps: usize,
    next_batch: &mut (dyn FnMut(&mut [f32]) -> Vec<u32> + Send),
    after_step: &mut dyn FnMut(&Trainer),
) -> Result<Recording, TrainError> {
    let cfg = trainer.config().clone();
    let mut rec = Recording {
        init: trainer.state(),
        indices: Vec::with_capacity(steps * cfg.batch_size),
        noise: Vec::with_capacity(steps * cfg.batch_size * cfg.model.noise_dim),
        stats: Vec::with_capacity(steps),
    };
    for _ in 0..steps {
        let mut indices = Vec::new();
        let stats = trainer.step_with(&mut |real, _| indices = next_batch(real))?;
        rec.indices.extend(indices);
        rec.noise.extend_from_slice(trainer.last_noise());
        rec.stats.push(stats);
        after_step(trainer);
    }
    Ok(rec)
}

/// Replays a recording's inputs with [`reference::train_step`] (dfdx autograd) instead of the
/// fast step: the same maths in other f32 arithmetic. `gather` writes the real images of a
/// step's indices into the buffer it is given; `after_step` sees the state after every step.
pub fn replay_reference(
    rec: &Recording,
    cfg: &TrainConfig,
    gather: &mut dyn FnMut(&[u32], &mut [f32]),
    after_step: &mut dyn FnMut(&TrainerState<Gan>),
) -> Vec<StepStats> {
    let steps = rec.stats.len();
    let mut state = rec.init.clone();
    let noise_dim = state.gan.generator.input();
    let batch = rec.indices.len() / steps.max(1);
    let mut real = vec![0.0; batch * IMAGE_PIXELS];
    (0..steps)
        .map(|s| {
            gather(&rec.indices[s * batch..(s + 1) * batch], &mut real);
            let z = &rec.noise[s * batch * noise_dim..(s + 1) * batch * noise_dim];
            let stats = reference::train_step(&mut state, &[(&real, z)], cfg);
            after_step(&state);
            stats
        })
        .collect()
}
