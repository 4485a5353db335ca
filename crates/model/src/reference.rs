//! The tutorial's losses and gradients in plain dfdx autograd: the straightforward way to
//! write the step, kept as the oracle the fast step is tested against (and timed against in
//! the benchmark). Not used for training.

use dfdx::prelude::*;

use crate::config::GeneratorLoss;
use crate::dfdx_mlp::Net;
use crate::params::Mlp;

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
    let b = real.len() / d.input;
    let inp = dev.tensor_from_vec([real, fake].concat(), (2 * b, d.input));
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
    let b = z.len() / g.input;
    let z = dev.tensor_from_vec(z.to_vec(), (b, g.input));
    let fake = gen.logits(z.leaky_traced()).sigmoid();
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
