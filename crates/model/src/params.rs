//! The parameters of the two networks, each held as one flat `f32` buffer so the optimiser
//! runs over a single slice and the training step reads weights without copying.
//!
//! Weights use PyTorch's `nn.Linear` layout, `[out, in]` row-major, so a checkpoint loads
//! straight into `nn.Sequential(nn.Linear, nn.ReLU, nn.Linear, ...)` under the same names.

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::config::ModelConfig;
use crate::IMAGE_PIXELS;

/// A two-layer perceptron `input -> hidden (ReLU) -> output`, the shape of both networks.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub input: usize,
    pub hidden: usize,
    pub output: usize,
    /// `w1 [hidden, input]`, `b1 [hidden]`, `w2 [output, hidden]`, `b2 [output]`, in that order.
    pub params: Vec<f32>,
}

/// One named tensor of an [`Mlp`]: its name suffix in a checkpoint, shape and place in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSlot {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub range: std::ops::Range<usize>,
}

impl Mlp {
    /// Weights from N(0, std), biases zero, drawn in layout order (w1 then w2).
    pub fn init(input: usize, hidden: usize, output: usize, std: f32, rng: &mut impl Rng) -> Mlp {
        let mut mlp = Mlp::zeros(input, hidden, output);
        let normal = Normal::new(0.0f32, std).expect("init_std is finite and >= 0");
        let [w1, _, w2, _] = layout(mlp.dims());
        for range in [w1, w2] {
            for p in &mut mlp.params[range] {
                *p = normal.sample(rng);
            }
        }
        mlp
    }

    pub fn zeros(input: usize, hidden: usize, output: usize) -> Mlp {
        let len = layout((input, hidden, output))[3].end;
        Mlp {
            input,
            hidden,
            output,
            params: vec![0.0; len],
        }
    }

    /// The four tensors in buffer order, named like PyTorch's `nn.Sequential` of
    /// `Linear(0), ReLU(1), Linear(2)`.
    pub fn slots(&self) -> [ParamSlot; 4] {
        let (i, h, o) = self.dims();
        let [w1, b1, w2, b2] = layout(self.dims());
        let slot = |name, shape, range| ParamSlot { name, shape, range };
        [
            slot("0.weight", vec![h, i], w1),
            slot("0.bias", vec![h], b1),
            slot("2.weight", vec![o, h], w2),
            slot("2.bias", vec![o], b2),
        ]
    }

    pub fn w1(&self) -> &[f32] {
        self.part(0)
    }

    pub fn b1(&self) -> &[f32] {
        self.part(1)
    }

    pub fn w2(&self) -> &[f32] {
        self.part(2)
    }

    pub fn b2(&self) -> &[f32] {
        self.part(3)
    }

    /// Part `k` of the buffer in layout order (0 = w1, ..., 3 = b2).
    fn part(&self, k: usize) -> &[f32] {
        let ranges = layout(self.dims());
        &self.params[ranges[k].clone()]
    }

    pub(crate) fn dims(&self) -> Dims {
        (self.input, self.hidden, self.output)
    }
}

/// The layer sizes of an [`Mlp`]: (input, hidden, output).
pub(crate) type Dims = (usize, usize, usize);

/// Where w1, b1, w2 and b2 lie in the flat buffer of an MLP of `dims`: the one place that
/// knows the layout.
fn layout((i, h, o): Dims) -> [std::ops::Range<usize>; 4] {
    let w1 = 0..h * i;
    let b1 = w1.end..w1.end + h;
    let w2 = b1.end..b1.end + o * h;
    let b2 = w2.end..w2.end + o;
    [w1, b1, w2, b2]
}

/// Splits a flat buffer laid out like an MLP of `dims` into its parts (w1, b1, w2, b2).
pub(crate) fn split_mut(dims: Dims, buf: &mut [f32]) -> [&mut [f32]; 4] {
    let [w1, b1, w2, _] = layout(dims).map(|r| r.len());
    let (pw1, rest) = buf.split_at_mut(w1);
    let (pb1, rest) = rest.split_at_mut(b1);
    let (pw2, pb2) = rest.split_at_mut(w2);
    [pw1, pb1, pw2, pb2]
}

/// The generator `noise -> hidden -> 784 (sigmoid)` and discriminator `784 -> hidden -> 1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gan {
    pub generator: Mlp,
    pub discriminator: Mlp,
}

impl Gan {
    /// The tutorial's initialisation; `rng` should be the run's [`crate::Stream::Init`] stream.
    pub fn init(cfg: &ModelConfig, rng: &mut impl Rng) -> Gan {
        let generator = Mlp::init(cfg.noise_dim, cfg.hidden, IMAGE_PIXELS, cfg.init_std, rng);
        let discriminator = Mlp::init(IMAGE_PIXELS, cfg.hidden, 1, cfg.init_std, rng);
        Gan {
            generator,
            discriminator,
        }
    }

    pub fn zeros(cfg: &ModelConfig) -> Gan {
        Gan {
            generator: Mlp::zeros(cfg.noise_dim, cfg.hidden, IMAGE_PIXELS),
            discriminator: Mlp::zeros(IMAGE_PIXELS, cfg.hidden, 1),
        }
    }
}
