//! The tutorial's losses and gradients in plain dfdx autograd: the straightforward way to
//! write the step, kept as the oracle the fast step is tested against (and timed against in
//! the benchmark). Not used for training.

use dfdx::prelude::*;

use crate::config::GeneratorLoss;
use crate::dfdx_mlp::Net;
use crate::params::Mlp;
use crate::trainer::{StepStats, TrainerState};

/// The loss (in the tutorial's sign: the objective maximised) and the gradient of the
/// minimised loss with respect to every parameter, laid out like `Mlp::params`.
#[derive(Debug, Clone)]
pub struct LossAndGrad {
    pub objective: f32,
    pub grad: Vec<f32>,
}

/// D's step: `real` and `fake` are `rows x 784`; the objective is the tutorial's `loss_D`.
pub fn discriminator_step(d: &Mlp, real: &[f32], fake: &[f32]) -> LossAndGrad {
    let dev = Cpu::default();
    let net = Net::new(&dev, d);
    let b = real.len() / d.input();
    let inp = dev.tensor_from_vec([real, fake].concat(), (2 * b, d.input()));
    let logits = net.logits(inp.leaky_traced());
    let targets = dev.tensor_from_vec([vec![1.0; b], vec![0.0; b]].concat(), (2 * b, 1));
    // BCE averages over all 2B rows; the tutorial's loss is the sum of the two B-row means.
    let loss = binary_cross_entropy_with_logits_loss(logits, targets) * 2.0;
    let value = loss.array();
    let grads = loss.backward();
    LossAndGrad {
        objective: -value,
        grad: net.grads(&grads),
    }
}

/// G's step against discriminator `d` for noise `z`.
pub fn generator_step(g: &Mlp, d: &Mlp, z: &[f32], loss: GeneratorLoss) -> LossAndGrad {
    let dev = Cpu::default();
    let gen = Net::new(&dev, g);
    let disc = Net::new(&dev, d);
    let b = z.len() / g.input();
    let z = dev.tensor_from_vec(z.to_vec(), (b, g.input()));
    let fake = gen.forward(z.leaky_traced());
    let logits = disc.logits(fake);
    let (loss, sign) = match loss {
        GeneratorLoss::NonSaturating => {
            // -mean(log D(G(z))) = BCE against "real".
            (
                binary_cross_entropy_with_logits_loss(logits, dev.ones_like(&(b, 1))),
                -1.0,
            )
        }
        GeneratorLoss::Minimax => {
            // mean(log(1 - D(G(z)))) = -BCE against "fake"; the objective reported is its negation.
            (
                binary_cross_entropy_with_logits_loss(logits, dev.zeros_like(&(b, 1))) * -1.0,
                -1.0,
            )
        }
    };
    let value = loss.array();
    let grads = loss.backward();
    LossAndGrad {
        objective: sign * value,
        grad: gen.grads(&grads),
    }
}

/// One whole step of the tutorial in dfdx autograd with this crate's Adam: D on `real` and
/// `G(z)`, then G with the same `z` against the updated D. An implementation independent of
/// [`crate::Trainer`]'s kernels (other products, summation orders and loss functions), so
/// running both from the same inputs shows how far f32 rounding alone moves a trajectory.
pub fn train_step(
    state: &mut TrainerState,
    real: &[f32],
    z: &[f32],
    loss: GeneratorLoss,
) -> StepStats {
    let gan = &mut state.gan;
    let fake = raw_output(&gan.generator, z);
    let d = discriminator_step(&gan.discriminator, real, &fake);
    let (d_real, d_fake) = (
        mean_output(&gan.discriminator, real),
        mean_output(&gan.discriminator, &fake),
    );
    state.adam_d.update(&mut gan.discriminator.params, &d.grad);
    let g = generator_step(&gan.generator, &gan.discriminator, z, loss);
    state.adam_g.update(&mut gan.generator.params, &g.grad);
    state.steps_done += 1;
    StepStats {
        d_loss: d.objective,
        g_loss: g.objective,
        d_real,
        d_fake,
    }
}

/// G's output for noise `z` as D sees it (a tanh generator's in [-1, 1], not mapped to
/// pictures' [0, 1] as `generate` does).
pub fn raw_output(g: &Mlp, z: &[f32]) -> Vec<f32> {
    let dev = Cpu::default();
    let rows = z.len() / g.input();
    let t = dev.tensor_from_vec(z.to_vec(), (rows, g.input()));
    Net::new(&dev, g).forward(t).as_vec()
}

/// Mean of `sigmoid(d(x))` over the rows of `x`.
fn mean_output(d: &Mlp, x: &[f32]) -> f32 {
    let dev = Cpu::default();
    let rows = x.len() / d.input();
    let t = dev.tensor_from_vec(x.to_vec(), (rows, d.input()));
    let p = Net::new(&dev, d).logits(t).sigmoid().as_vec();
    (p.iter().map(|&v| v as f64).sum::<f64>() / rows as f64) as f32
}
