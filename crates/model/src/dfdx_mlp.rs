//! An [`Mlp`] as dfdx tensors: the forward pass that generation and the autograd oracle share.

use dfdx::prelude::*;

use crate::params::Mlp;

/// The four tensors of an [`Mlp`] on the CPU device.
pub(crate) struct Net {
    w1: Tensor<(usize, usize), f32, Cpu>,
    b1: Tensor<(usize,), f32, Cpu>,
    w2: Tensor<(usize, usize), f32, Cpu>,
    b2: Tensor<(usize,), f32, Cpu>,
    hidden: usize,
    output: usize,
}

impl Net {
    pub(crate) fn new(dev: &Cpu, m: &Mlp) -> Net {
        Net {
            w1: dev.tensor_from_vec(m.w1().to_vec(), (m.hidden, m.input)),
            b1: dev.tensor_from_vec(m.b1().to_vec(), (m.hidden,)),
            w2: dev.tensor_from_vec(m.w2().to_vec(), (m.output, m.hidden)),
            b2: dev.tensor_from_vec(m.b2().to_vec(), (m.output,)),
            hidden: m.hidden,
            output: m.output,
        }
    }

    /// Pre-sigmoid output `relu(x w1^T + b1) w2^T + b2`, with the tape (if any) carried by
    /// the input.
    pub(crate) fn logits<T: Tape<f32, Cpu> + Merge<NoneTape>>(
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

    /// The gradients of the four tensors, laid out like `Mlp::params`.
    pub(crate) fn grads(&self, g: &Gradients<f32, Cpu>) -> Vec<f32> {
        [
            g.get(&self.w1).as_vec(),
            g.get(&self.b1).as_vec(),
            g.get(&self.w2).as_vec(),
            g.get(&self.b2).as_vec(),
        ]
        .concat()
    }
}
