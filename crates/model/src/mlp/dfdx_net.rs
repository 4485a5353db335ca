//! An [`Mlp`] as dfdx tensors: the forward pass that generation and the autograd oracle share.

use dfdx::prelude::*;

use crate::layers::activation::{Activation, Output};
use crate::mlp::networks::Mlp;

type Matrix = Tensor<(usize, usize), f32, Cpu>;
type Vector = Tensor<(usize,), f32, Cpu>;

/// The layers of an [`Mlp`] on the CPU device.
pub(crate) struct Net {
    layers: Vec<(Matrix, Vector)>,
    sizes: Vec<usize>,
    act: Activation,
    output: Output,
}

impl Net {
    pub(crate) fn new(dev: &Cpu, m: &Mlp) -> Net {
        let layers = (0..m.layers())
            .map(|l| {
                let (i, o) = (m.sizes[l], m.sizes[l + 1]);
                (
                    dev.tensor_from_vec(m.weight(l).to_vec(), (o, i)),
                    dev.tensor_from_vec(m.bias(l).to_vec(), (o,)),
                )
            })
            .collect();
        Net {
            layers,
            sizes: m.sizes.clone(),
            act: m.hidden_act,
            output: m.output,
        }
    }

    /// The last layer's values before the output nonlinearity (D's logits), with the tape
    /// (if any) carried by the input.
    pub(crate) fn logits<T: Tape<f32, Cpu> + Merge<NoneTape>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
    ) -> Tensor<(usize, usize), f32, Cpu, T> {
        self.logits_masked(x, None)
    }

    /// [`Net::logits`] with each hidden layer's output multiplied by a fixed dropout mask
    /// (`rows x width`, 0 or `1 / keep`), as training with dropout computes it.
    pub(crate) fn logits_masked<T: Tape<f32, Cpu> + Merge<NoneTape>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
        masks: Option<&[Vec<f32>]>,
    ) -> Tensor<(usize, usize), f32, Cpu, T> {
        let rows = x.shape().0;
        let dev = x.device().clone();
        let mut x = x;
        for (l, (w, b)) in self.layers.iter().enumerate() {
            let out = self.sizes[l + 1];
            x = x.matmul(w.clone().permute())
                + b.clone().broadcast_like::<_, Axis<0>>(&(rows, out));
            if l + 1 < self.layers.len() {
                x = match self.act {
                    Activation::Relu => x.relu(),
                    Activation::LeakyRelu(slope) => x.prelu(slope),
                    Activation::Tanh => x.tanh(),
                };
                if let Some(masks) = masks {
                    let m = dev.tensor_from_vec(masks[l][..rows * out].to_vec(), (rows, out));
                    x = x * m;
                }
            }
        }
        x
    }

    /// The network's output: the logits through the output nonlinearity (G's pixels).
    pub(crate) fn forward<T: Tape<f32, Cpu> + Merge<NoneTape>>(
        &self,
        x: Tensor<(usize, usize), f32, Cpu, T>,
    ) -> Tensor<(usize, usize), f32, Cpu, T> {
        let y = self.logits(x);
        match self.output {
            Output::Identity => y,
            Output::Sigmoid => y.sigmoid(),
            Output::Tanh => y.tanh(),
        }
    }

    /// The gradients of every layer's weights and biases, laid out like `Mlp::params`.
    pub(crate) fn grads(&self, g: &Gradients<f32, Cpu>) -> Vec<f32> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [g.get(w).as_vec(), g.get(b).as_vec()])
            .flatten()
            .collect()
    }
}
