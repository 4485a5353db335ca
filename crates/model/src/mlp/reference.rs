//! The step's losses and gradients in plain dfdx autograd: the straightforward way to write
//! it, kept as the oracle the fast step is tested against (and timed against in the
//! benchmark). Not used for training.

use dfdx::prelude::*;

use crate::loss::Loss;
use crate::mlp::dfdx_net::Net;
use crate::mlp::networks::Gan;
use crate::mlp::networks::Mlp;
use crate::train::config::TrainConfig;
use crate::train::step::StepStats;
use crate::train::step::TrainerState;

/// The loss (in the tutorial's sign: the objective maximised) and the gradient of the
/// minimised loss with respect to every parameter, laid out like `Mlp::params`.
#[derive(Debug, Clone)]
pub struct LossAndGrad {
    pub objective: f32,
    pub grad: Vec<f32>,
}

/// What D's loss depends on besides the networks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    pub loss: Loss,
    /// D's target for real images (1 unless label smoothing lowers it).
    pub real_target: f32,
}

impl Objective {
    pub fn of(cfg: &TrainConfig) -> Objective {
        Objective {
            loss: cfg.loss,
            real_target: cfg.real_target,
        }
    }
}

type Column<T> = Tensor<(usize, usize), f32, Cpu, T>;

/// D's step: `real` and `fake` are `rows x input` (D's input rows); the objective is minus
/// D's loss (the tutorial's `loss_D` for cross-entropy). `masks` are D's dropout masks, one
/// `2 rows x width` matrix per hidden layer (real rows first), or none.
pub fn discriminator_step(
    d: &Mlp,
    real: &[f32],
    fake: &[f32],
    objective: Objective,
    masks: Option<&[Vec<f32>]>,
) -> LossAndGrad {
    let dev = Cpu::default();
    let net = Net::new(&dev, d);
    let b = real.len() / d.input();
    let inp = dev.tensor_from_vec([real, fake].concat(), (2 * b, d.input()));
    let logits = net.logits_masked(inp.leaky_traced(), masks);
    let t = objective.real_target;
    let targets = dev.tensor_from_vec([vec![t; b], vec![0.0; b]].concat(), (2 * b, 1));
    // Each loss is a mean over the 2B rows; D's loss is the sum of a real and a fake B-row
    // mean, so twice that (LSGAN's halves cancel the 2).
    let loss = match objective.loss {
        Loss::NonSaturating | Loss::Minimax => {
            binary_cross_entropy_with_logits_loss(logits, targets) * 2.0
        }
        Loss::LeastSquares => mse_loss(logits, targets),
        Loss::Hinge => {
            let signs = dev.tensor_from_vec([vec![1.0; b], vec![-1.0; b]].concat(), (2 * b, 1));
            ((logits * signs).negate() + 1.0).relu().mean::<(), _>() * 2.0
        }
    };
    let value = loss.array();
    let grads = loss.backward();
    LossAndGrad {
        objective: -value,
        grad: net.grads(&grads),
    }
}

/// G's step against discriminator `d` for G's input rows `z`; `masks`: D's dropout masks for
/// these rows (`rows x width` per hidden layer), or none.
pub fn generator_step(
    g: &Mlp,
    d: &Mlp,
    z: &[f32],
    loss: Loss,
    masks: Option<&[Vec<f32>]>,
) -> LossAndGrad {
    let dev = Cpu::default();
    let gen = Net::new(&dev, g);
    let disc = Net::new(&dev, d);
    let b = z.len() / g.input();
    let z_t = dev.tensor_from_vec(z.to_vec(), (b, g.input()));
    let fake = gen.forward(z_t.leaky_traced());
    // A conditional D sees each image beside the label G was asked for.
    let fake = match g.label_inputs {
        0 => fake,
        classes => {
            let labels = dev.tensor_from_vec(label_columns(g, z), (b, classes));
            (fake, labels).concat_along(Axis::<1>)
        }
    };
    let logits: Column<_> = disc.logits_masked(fake, masks);
    let loss = match loss {
        // -mean(log D(G(z))) = BCE against "real".
        Loss::NonSaturating => {
            binary_cross_entropy_with_logits_loss(logits, dev.ones_like(&(b, 1)))
        }
        // mean(log(1 - D(G(z)))) = -BCE against "fake".
        Loss::Minimax => {
            binary_cross_entropy_with_logits_loss(logits, dev.zeros_like(&(b, 1))) * -1.0
        }
        Loss::LeastSquares => mse_loss(logits, dev.ones_like(&(b, 1))) * 0.5,
        Loss::Hinge => logits.mean::<(), _>().negate(),
    };
    let value = loss.array();
    let grads = loss.backward();
    LossAndGrad {
        objective: -value,
        grad: gen.grads(&grads),
    }
}

/// One whole step in dfdx autograd with this crate's Adam: for each `(real, z)` of `d_batches`
/// a D update on `real` and `G(z)`, then G's update with the last `z` against the updated D.
/// An implementation independent of [`crate::mlp::step::Trainer`]'s kernels (other products, summation
/// orders and loss functions), so running both from the same inputs shows how far f32
/// rounding alone moves a trajectory. (Without dropout: its masks are the trainer's own.)
pub fn train_step(
    state: &mut TrainerState<Gan>,
    d_batches: &[(&[f32], &[f32])],
    cfg: &TrainConfig,
) -> StepStats {
    assert!(
        cfg.model.d_dropout == 0.0,
        "the reference step has no dropout"
    );
    let objective = Objective::of(cfg);
    let gan = &mut state.gan;
    let mut sums = [0.0f64; 3];
    let mut last_z: &[f32] = &[];
    for &(real, z) in d_batches {
        let fake = fake_rows(&gan.generator, z);
        let d = discriminator_step(&gan.discriminator, real, &fake, objective, None);
        let scores = [
            mean_output(&gan.discriminator, real, cfg.loss),
            mean_output(&gan.discriminator, &fake, cfg.loss),
        ];
        state.adam_d.update(&mut gan.discriminator.params, &d.grad);
        for (s, v) in sums.iter_mut().zip([d.objective, scores[0], scores[1]]) {
            *s += v as f64;
        }
        last_z = z;
    }
    let g = generator_step(&gan.generator, &gan.discriminator, last_z, cfg.loss, None);
    state.adam_g.update(&mut gan.generator.params, &g.grad);
    state.steps_done += 1;
    let k = d_batches.len() as f64;
    let [d_loss, d_real, d_fake] = sums.map(|s| (s / k) as f32);
    StepStats {
        d_loss,
        g_loss: g.objective,
        d_real,
        d_fake,
    }
}

/// G's output for its input rows `z` as D sees it (a tanh generator's in [-1, 1], not mapped
/// to pictures' [0, 1] as `generate` does).
pub fn raw_output(g: &Mlp, z: &[f32]) -> Vec<f32> {
    let dev = Cpu::default();
    let rows = z.len() / g.input();
    let t = dev.tensor_from_vec(z.to_vec(), (rows, g.input()));
    Net::new(&dev, g).forward(t).as_vec()
}

/// D's input rows for G's images on input rows `z`: the images, then (for a conditional GAN)
/// the one-hot label each was drawn for, taken from `z`.
pub fn fake_rows(g: &Mlp, z: &[f32]) -> Vec<f32> {
    let images = raw_output(g, z);
    if g.label_inputs == 0 {
        return images;
    }
    let labels = label_columns(g, z);
    let x = g.output_size();
    images
        .chunks_exact(x)
        .zip(labels.chunks_exact(g.label_inputs))
        .flat_map(|(img, label)| [img, label].concat())
        .collect()
}

/// The one-hot label columns of G's input rows `z`.
fn label_columns(g: &Mlp, z: &[f32]) -> Vec<f32> {
    let (width, classes) = (g.input(), g.label_inputs);
    z.chunks_exact(width)
        .flat_map(|row| row[width - classes..].to_vec())
        .collect()
}

/// Mean of D's output over the rows of `x`: `sigmoid(d(x))` for the cross-entropy losses,
/// the raw score otherwise (what [`StepStats`] reports).
fn mean_output(d: &Mlp, x: &[f32], loss: Loss) -> f32 {
    let dev = Cpu::default();
    let rows = x.len() / d.input();
    let t = dev.tensor_from_vec(x.to_vec(), (rows, d.input()));
    let l = Net::new(&dev, d).logits(t);
    let p = if loss.is_cross_entropy() {
        l.sigmoid().as_vec()
    } else {
        l.as_vec()
    };
    (p.iter().map(|&v| v as f64).sum::<f64>() / rows as f64) as f32
}
