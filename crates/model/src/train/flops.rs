//! The matrix products a training step makes, counted without running it: the step's FLOPs,
//! and the list a benchmark times one by one (`cargo xtask bench --ceiling`).

/// What a product computes for a layer `inputs -> outputs` whose weights are stored
/// `outputs x inputs`, on a batch of `rows`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pass {
    /// The layer's pre-activations: `rows x inputs` times the transposed weight.
    Forward,
    /// The gradient at the layer's input: `rows x outputs` times the weight.
    InputGradient,
    /// The weight's gradient: the transposed output gradient times the input.
    WeightGradient,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Forward => "forward",
            Pass::InputGradient => "input gradient",
            Pass::WeightGradient => "weight gradient",
        }
    }
}

/// One product of a step (of network `net`, `G` or `D`), and how many times a step makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub net: &'static str,
    pub pass: Pass,
    pub rows: usize,
    pub inputs: usize,
    pub outputs: usize,
    pub count: usize,
}

impl Product {
    /// Multiply-adds times two, over the step's `count` of it.
    pub fn flops(&self) -> f64 {
        2.0 * (self.rows * self.inputs * self.outputs * self.count) as f64
    }
}

/// The FLOPs of all of `products`.
pub fn total_flops(products: &[Product]) -> f64 {
    products.iter().map(Product::flops).sum()
}
