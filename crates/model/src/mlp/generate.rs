//! Images from a perceptron generator, computed with dfdx's tensor operations (the same
//! forward pass the autograd oracle uses).

use dfdx::prelude::*;

use crate::layers::activation::to_unit_range;
use crate::mlp::dfdx_net::Net;
use crate::mlp::networks::Mlp;

/// Rows pushed through the network at once, so memory stays bounded for large `n`.
const CHUNK_ROWS: usize = 1000;

impl Mlp {
    /// The generator's images (`rows x 784`, in [0, 1]) for its input rows `z` (`rows x
    /// noise_dim`, plus a conditional generator's one-hot label:
    /// [`crate::train::input::generator_input`]); a tanh generator's [-1, 1] pixels are
    /// mapped to [0, 1].
    pub fn generate(&self, z: &[f32]) -> Vec<f32> {
        let dev = Cpu::default();
        let (i, o) = (self.input(), self.output_size());
        assert_eq!(z.len() % i, 0, "noise is not whole rows");
        let net = Net::new(&dev, self);
        let mut out = Vec::with_capacity(z.len() / i * o);
        for chunk in z.chunks(CHUNK_ROWS * i) {
            let z = dev.tensor_from_vec(chunk.to_vec(), (chunk.len() / i, i));
            out.extend(net.forward(z).as_vec());
        }
        to_unit_range(self.output, &mut out);
        out
    }
}
