//! The tutorial's losses and gradients in plain dfdx autograd: the straightforward way to
//! write the step, kept as the oracle the fast step is tested against (and timed against in
//! the benchmark). Not used for training.

use dfdx::prelude::*;

use crate::config::GeneratorLoss;
use crate::params::Mlp;

/// The loss (in the tutorial's sign: the objective maximised) and the gradient of the
/// minimised loss with respect to every parameter, laid out like `Mlp::params`.
#[derive(Debug, Clone)]
pub struct LossAndGrad {
    pub objective: f32,
    pub grad: Vec<f32>,
}

struct Net {
    w1: Tensor<(usize, usize), f32, Cpu>,
    b1: Tensor<(usize,), f32, Cpu>,
    w2: Tensor<(usize, usize), f32, Cpu>,
    b2: Tensor<(usize,), f32, Cpu>,
    hidden: usize,
    output: usize,
}

impl Net {
    fn new(dev: &Cpu, m: &Mlp) -> Net {
        Net {
            w1: dev.tensor_from_vec(m.w1().to_vec(), (m.hidden, m.input)),
            b1: dev.tensor_from_vec(m.b1().to_vec(), (m.hidden,)),
            w2: dev.tensor_from_vec(m.w2().to_vec(), (m.output, m.hidden)),
            b2: dev.tensor_from_vec(m.b2().to_vec(), (m.output,)),
            hidden: m.hidden,
            output: m.output,
        }
    }

    /// Pre-sigmoid output, with the tape (if any) carried by the input.
    fn logits<T: Tape<f32, Cpu> + Merge<NoneTape>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
    ) -> Tensor<(usize, usize), f32, Cpu, T> {
        let rows = x.shape().0;
        let h = (x.matmul(self.w1.clone().permute())
            + self
                .b1
                .clone()
                .broadcast_like::<_, Axis<0>>(&(rows, self.hidden)))
        .relu();
        h.matmul(self.w2.clone().permute())
            + self
                .b2
                .clone()
                .broadcast_like::<_, Axis<0>>(&(rows, self.output))
    }

    fn grads(&self, g: &Gradients<f32, Cpu>) -> Vec<f32> {
        [
            g.get(&self.w1).as_vec(),
            g.get(&self.b1).as_vec(),
            g.get(&self.w2).as_vec(),
            g.get(&self.b2).as_vec(),
        ]
        .concat()
    }
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
