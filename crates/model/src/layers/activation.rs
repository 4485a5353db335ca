//! The nonlinearities between layers and at a network's output, and their passes over flat
//! buffers: forward (with the layer's bias), and the gradient through them, taken from each
//! unit's output (every activation here is monotonic, so the output decides the derivative).

use crate::kernels::{bias_act, bias_relu, bias_sigmoid, in_halves, tanh_fast, HALVES_FROM};
use crate::layers::dropout::Mask;

/// The nonlinearity after each hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    /// `max(x, 0)`, the tutorial's.
    #[default]
    Relu,
    /// `x` for `x > 0`, `slope * x` otherwise.
    LeakyRelu(f32),
    Tanh,
}

impl Activation {
    /// `act(x)`. ReLU keeps NaN (`f32::max` would turn it into 0 and hide a diverged network).
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::LeakyRelu(slope) => {
                if x < 0.0 {
                    slope * x
                } else {
                    x
                }
            }
            Activation::Tanh => tanh_fast(x),
        }
    }

    /// `act'` at the input that gave the output `y` (every activation here is monotonic, so
    /// the output decides it).
    #[inline(always)]
    pub fn derivative_at_output(self, y: f32) -> f32 {
        match self {
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu(slope) => {
                if y > 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            Activation::Tanh => 1.0 - y * y,
        }
    }

    /// `f(self)`, with `self` rebuilt as a constant of its variant where `f` is called. A
    /// loop over `apply` or `derivative_at_output` belongs inside `f`: each variant's copy
    /// of it then compiles to a branch-free vector loop. Over a variable activation the
    /// compiler hoists the `match` out of the loop only when it can see the activation does
    /// not change; read through a closure's capture it did not, and the loop ran 5-7x slower
    /// (1.2-1.7 against 0.23 ns a value for LeakyReLU, measured alone).
    #[inline(always)]
    pub fn fixed<R>(self, f: impl FnOnce(Activation) -> R) -> R {
        match self {
            Activation::Relu => f(Activation::Relu),
            Activation::LeakyRelu(slope) => f(Activation::LeakyRelu(slope)),
            Activation::Tanh => f(Activation::Tanh),
        }
    }

    /// As written in checkpoint metadata and specs: `relu`, `leaky_relu:0.2`, `tanh`.
    pub fn name(self) -> String {
        match self {
            Activation::Relu => "relu".into(),
            Activation::LeakyRelu(s) => format!("leaky_relu:{s}"),
            Activation::Tanh => "tanh".into(),
        }
    }

    pub fn from_name(s: &str) -> Option<Activation> {
        match s.split_once(':') {
            None if s == "relu" => Some(Activation::Relu),
            None if s == "tanh" => Some(Activation::Tanh),
            Some(("leaky_relu", slope)) => slope.parse().ok().map(Activation::LeakyRelu),
            _ => None,
        }
    }
}

/// What a network's last layer puts out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// Raw values: D's logits (its loss applies the sigmoid).
    #[default]
    Identity,
    /// Pixels in [0, 1], the tutorial's generator.
    Sigmoid,
    /// Pixels in [-1, 1]; images are mapped back to [0, 1] for pictures and metrics.
    Tanh,
}

impl Output {
    pub fn name(self) -> &'static str {
        match self {
            Output::Identity => "identity",
            Output::Sigmoid => "sigmoid",
            Output::Tanh => "tanh",
        }
    }

    pub fn from_name(s: &str) -> Option<Output> {
        [Output::Identity, Output::Sigmoid, Output::Tanh]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// The images of a generator's output in [0, 1], whatever its output range.
pub fn to_unit_range(output: Output, pixels: &mut [f32]) {
    if output == Output::Tanh {
        for p in pixels {
            *p = 0.5 * (*p + 1.0);
        }
    }
}

/// `grad ⊙= out'` at a generator's output pixels `y`: `y (1 - y)` for a sigmoid, `1 - y²`
/// for a tanh.
pub(crate) fn scale_by_output_derivative(grad: &mut [f32], y: &[f32], output: Output) {
    match output {
        Output::Sigmoid => {
            for (g, &y) in grad.iter_mut().zip(y) {
                *g *= y * (1.0 - y);
            }
        }
        Output::Tanh => {
            for (g, &y) in grad.iter_mut().zip(y) {
                *g *= 1.0 - y * y;
            }
        }
        Output::Identity => {}
    }
}

/// `out = act(out + bias)` row by row, for a hidden layer (ReLU through [`bias_relu`]).
pub fn bias_activation(out: &mut [f32], bias: &[f32], act: Activation) {
    match act {
        Activation::Relu => bias_relu(out, bias),
        // One closure type per activation, so that each gets its own `bias_act` with the
        // activation known inside: one closure over a captured `Activation` (even through
        // `Activation::fixed`) compiled to a scalar loop matching it on every entry (perf:
        // 3.6% of a one-thread `improved.yaml` step).
        Activation::LeakyRelu(slope) => bias_act(out, bias.len(), bias, move |x| {
            Activation::LeakyRelu(slope).apply(x)
        }),
        Activation::Tanh => bias_act(out, bias.len(), bias, |x| Activation::Tanh.apply(x)),
    }
}

/// `out = out_act(out + bias)` row by row, for an output layer (sigmoid through
/// [`bias_sigmoid`]).
pub fn bias_output(out: &mut [f32], bias: &[f32], output: Output) {
    match output {
        Output::Sigmoid => bias_sigmoid(out, bias),
        Output::Tanh => bias_act(out, bias.len(), bias, tanh_fast),
        Output::Identity => bias_act(out, bias.len(), bias, |x| x),
    }
}

/// `grad ⊙= act'` at the layer's outputs; with dropout also `⊙= mask`, where `out` holds the
/// masked outputs (a kept unit's `y / keep`, so `act'` is taken at `out * keep`).
pub(crate) fn scale_by_derivative(grad: &mut [f32], out: &[f32], act: Activation, mask: Mask) {
    if let Some((mask, keep)) = mask {
        return act.fixed(|act| {
            for ((g, &y), &m) in grad.iter_mut().zip(out).zip(mask) {
                *g *= m * act.derivative_at_output(y * keep);
            }
        });
    }
    match act {
        Activation::Relu => {
            // A store on every entry, so the loop compiles to a select (as `hidden_grad`'s):
            // a conditional store kept a branch per lane.
            for (g, &y) in grad.iter_mut().zip(out) {
                *g = if y <= 0.0 { 0.0 } else { *g };
            }
        }
        other => other.fixed(|act| {
            for (g, &y) in grad.iter_mut().zip(out) {
                *g *= act.derivative_at_output(y);
            }
        }),
    }
}

/// `f` on `x` and the same entries of `y` (and of `mask`, if given), in two halves side by
/// side if they are long enough.
fn in_halves_with(
    x: &mut [f32],
    y: &[f32],
    mask: Mask,
    f: impl Fn(&mut [f32], &[f32], Mask) + Sync,
) {
    let y = &y[..x.len()];
    if x.len() < HALVES_FROM {
        return f(x, y, mask);
    }
    let (len, half) = (x.len(), x.len() / 2);
    let (xa, xb) = x.split_at_mut(half);
    let (ya, yb) = y.split_at(half);
    let (ma, mb) = match mask {
        Some((m, keep)) => {
            let (a, b) = m[..len].split_at(half);
            (Some((a, keep)), Some((b, keep)))
        }
        None => (None, None),
    };
    rayon::join(|| f(xa, ya, ma), || f(xb, yb, mb));
}

/// [`scale_by_derivative`] (with a dropout mask), in halves.
pub(crate) fn scale_by_derivative_in_halves(
    grad: &mut [f32],
    out: &[f32],
    act: Activation,
    mask: Mask,
) {
    in_halves_with(grad, out, mask, |g, y, m| scale_by_derivative(g, y, act, m));
}

/// `grad ⊙= act'` at the layer's outputs as a product for every activation (a ReLU's dropped
/// gradient is `g * 0`, keeping `g`'s sign, where [`scale_by_derivative`] stores 0), in
/// halves (the closures capture `act`: see [`Activation::fixed`]).
pub(crate) fn multiply_by_derivative_in_halves(grad: &mut [f32], out: &[f32], act: Activation) {
    in_halves_with(grad, out, None, |grad, out, _| {
        act.fixed(|act| {
            for (g, &y) in grad.iter_mut().zip(out) {
                *g *= act.derivative_at_output(y);
            }
        })
    });
}

/// `act` on every entry, in halves.
pub(crate) fn activate_in_halves(x: &mut [f32], act: Activation) {
    in_halves(x, |x| {
        act.fixed(|act| x.iter_mut().for_each(|v| *v = act.apply(*v)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_names_round_trip() {
        for a in [
            Activation::Relu,
            Activation::Tanh,
            Activation::LeakyRelu(0.2),
        ] {
            assert_eq!(Activation::from_name(&a.name()), Some(a));
        }
        assert_eq!(Activation::from_name("sigmoid"), None);
        for o in [Output::Identity, Output::Sigmoid, Output::Tanh] {
            assert_eq!(Output::from_name(o.name()), Some(o));
        }
    }

    #[test]
    fn derivatives_match_finite_differences() {
        for a in [
            Activation::Relu,
            Activation::LeakyRelu(0.2),
            Activation::Tanh,
        ] {
            for x in [-2.0f32, -0.3, 0.4, 1.7] {
                let h = 1e-3;
                let fd = (a.apply(x + h) as f64 - a.apply(x - h) as f64) / (2.0 * h as f64);
                let got = a.derivative_at_output(a.apply(x)) as f64;
                assert!((fd - got).abs() < 1e-3, "{a:?} at {x}: {got} vs {fd}");
            }
        }
    }
}
